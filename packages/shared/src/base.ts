/**
 * `@pgha/shared/base`: everything of `@pgha/shared` but the group state machine (and so without
 * XState): states, LSNs, settings, errors, the API's protocol, progress and durations. What a
 * client of the monitor needs (`@pgha/client`, the CLI's client commands), so that a command
 * such as `pgha show state` does not load the decision logic it never runs (issue 17: the CLI
 * answers like a C tool). `@pgha/shared` re-exports all of it.
 */
export * from './states.js';
export * from './lsn.js';
export * from './settings.js';
export * from './errors.js';
export * from './protocol.js';
export * from './progress.js';
export * from './duration.js';
export * from './postgres-parameters.js';
export * from './histogram-tally.js';
