/**
 * `@pgha/shared/core`: `@pgha/shared/base` without its zod schemas (the API's protocol and the
 * Postgres parameters' checks), and so without zod: states, LSNs, settings, errors, progress,
 * durations and the rules of names. What a reader of the monitor's answers needs: the HTTP
 * client (`@pgha/client`) and the CLI's command definitions, so that `pgha show state` loads
 * neither zod nor the state machine it never runs (issue 17 §4: the CLI answers like a C tool).
 * `@pgha/shared/base` and `@pgha/shared` re-export all of it.
 */
export * from './states.js';
export * from './lsn.js';
export * from './settings.js';
export * from './errors.js';
export * from './progress.js';
export * from './duration.js';
export * from './histogram-tally.js';
export * from './names.js';
export * from './report-hold.js';
