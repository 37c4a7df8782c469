/**
 * `@pgha/shared/base`: everything of `@pgha/shared` but the group state machine (and so without
 * XState): `@pgha/shared/core` (states, LSNs, settings, errors, progress, durations, the rules of
 * names) and the zod schemas of the API's protocol and of Postgres parameters. What the keeper
 * and the monitor's routes need without the decision logic (issue 17). `@pgha/shared`
 * re-exports all of it.
 */
export * from './core.js';
export * from './protocol.js';
export * from './postgres-parameters.js';
