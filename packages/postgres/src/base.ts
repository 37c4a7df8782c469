/**
 * `@pgha/postgres/base`: the parts of `@pgha/postgres` that load neither the Postgres driver
 * (`pg`) nor zod: files beside a data directory, secrets, pid files, `/proc`, ports, client
 * networks and polling. What the CLI's client commands use, so that they start fast (issue 17).
 * `@pgha/postgres` re-exports all of it.
 */
export * from './atomic-file.js';
export * from './client-networks.js';
export * from './config-files.js';
export * from './controldata.js';
export * from './file-text.js';
export * from './os-user.js';
export * from './pgha-files.js';
export * from './pid-file.js';
export * from './poll.js';
export * from './ports.js';
export * from './proc.js';
export * from './secrets.js';
