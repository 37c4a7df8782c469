/**
 * Every node-postgres connection pgha opens (the keeper's local session and its watchdog, the
 * monitor's store, its LISTEN connection and its health probes) is built here, with every
 * parameter given, so that nothing comes from the environment of the process.
 *
 * node-postgres reads libpq's environment variables for whatever its configuration leaves
 * unset or falsy (`PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD`, `PGOPTIONS`,
 * `PGSSLMODE`, `PGSSLNEGOTIATION`, `PGAPPNAME`, `PGCONNECT_TIMEOUT`, `PGCLIENT_ENCODING`,
 * `PGBINARY`, `PGREPLICATION`…) when a client is constructed, and a pgpass file
 * (`PGPASSFILE`, `~/.pgpass`) when the server asks for a password it was not given. An
 * operator's `PGSSLMODE=verify-full` made the keeper send an SSLRequest over its Unix socket
 * (which libpq never does) and fail every read of its own facts. So:
 * - every value that can be given is given (`ssl: false` included);
 * - the client is constructed while no `PG*` variable is visible ({@link withoutLibpqEnvironment}),
 *   for the options that cannot be "given empty" (`options`, `binary`, `client_encoding`, …);
 * - the password is a function, so that a missing one is never looked up in a pgpass file.
 * A unit test constructs clients under a hostile environment and checks what they would send.
 *
 * node-postgres itself is loaded at the first client this module builds ({@link loadPgDriver}),
 * not when a keeper starts: on the path of a crashed primary's rejoin (issue 17 §5), the keeper
 * needs no session before it has started Postgres. Every module that uses node-postgres's values
 * (not only its types) takes them from {@link loadPgDriver}, never from `import pg from 'pg'`:
 * see there for why. The pool's client class, which needs the driver when it is defined, is
 * in `pg-pool-client.ts` (`@pgha/postgres/pg-pool-client`), for the monitor.
 */
import { createRequire } from 'node:module';
import type { ConnectionOptions } from 'node:tls';
import type pg from 'pg';

const require = createRequire(import.meta.url);

/** node-postgres, once {@link loadPgDriver} has loaded it. */
let driver: typeof pg | undefined;

/**
 * node-postgres, loaded at the first call (synchronously: it is CommonJS). Call it ahead of the
 * first client where the process waits anyway (`startPostgres` does, once the postmaster has started its
 * startup process).
 *
 * When it loads, node-postgres asks whether it runs in a Cloudflare Worker (`lib/stream.js`,
 * `isCloudflareRuntime`): from `navigator.userAgent` where there is a `navigator` (Node 21 on),
 * else by building a `Response`, which on Node 20 loads Node's whole fetch implementation (its
 * bundled undici and web streams): about 80 ms of CPU, 2 MB of heap and 2 MB outside it, kept
 * for the life of a keeper or monitor that never fetches anything (issue 17 §3, idle memory).
 * So for the time of that `require` only, a process without a `navigator` gets the one Node 21
 * would give it (`userAgent` `Node.js/20`), and loses it again right after: nothing else sees it.
 *
 * @returns the `pg` module.
 */
export function loadPgDriver(): typeof pg {
  if (driver !== undefined) return driver;
  const lent = !('navigator' in globalThis);
  if (lent) Object.defineProperty(globalThis, 'navigator', { value: { userAgent: `Node.js/${process.versions.node.split('.')[0]}` }, configurable: true });
  try {
    driver = require('pg') as typeof pg;
  } finally {
    if (lent) delete (globalThis as { navigator?: unknown }).navigator;
  }
  return driver;
}

/** The parameters of one connection; nothing else is taken from anywhere. */
export interface PgConnectionParams {
  /** Address, or the Unix socket directory (an absolute path). */
  host: string;
  port: number;
  user: string;
  database: string;
  /** The password, when the server asks for one; never from `PGPASSWORD` or a pgpass file. */
  password?: string;
  /** TLS options, or false for none (always false on a Unix socket, as libpq). */
  ssl: false | ConnectionOptions;
  /** `application_name`, shown in `pg_stat_activity`. */
  applicationName: string;
  /** Connection timeout, ms (node-postgres rounds it down to whole seconds for the server, not for itself). */
  connectTimeoutMs: number;
  /** `statement_timeout` of the session, ms; none when absent. */
  statementTimeoutMs?: number;
  /** Client-side limit of each query, ms; none when absent. */
  queryTimeoutMs?: number;
}

/**
 * True for a name libpq or node-postgres would read: `PG` followed by a capital letter or digit
 * (pgha's own `PGHA_*` variables included: they are never read while a client is built).
 */
function isLibpqVariable(name: string): boolean {
  return /^PG[A-Z0-9_]/.test(name);
}

/**
 * Runs `build` (synchronous) while the process environment holds no `PG*` variable, and puts
 * them back afterwards, even when it throws. node-postgres reads the environment only while a
 * client's parameters are constructed, which is synchronous: nothing else runs meanwhile.
 *
 * @returns what `build` returns.
 */
export function withoutLibpqEnvironment<T>(build: () => T): T {
  const hidden = hideLibpqEnvironment();
  try {
    return build();
  } finally {
    restoreEnvironment(hidden);
  }
}

/**
 * node-postgres's configuration for {@link PgConnectionParams}: every key set.
 *
 * ### Examples
 * ```ts
 * pgClientConfig({ host: '/tmp/pgha-sock', port: 5432, user: 'postgres', database: 'postgres',
 *   ssl: false, applicationName: 'pgha_keeper', connectTimeoutMs: 2000 })
 * ```
 */
export function pgClientConfig(params: PgConnectionParams): pg.ClientConfig {
  const password = params.password;
  return {
    host: params.host,
    port: params.port,
    user: params.user,
    database: params.database,
    // A function: node-postgres then never looks in a pgpass file for a missing password. Its
    // types want a string back; at run time `undefined` means "none" (client.js, _getPassword).
    password: (() => password) as () => string,
    ssl: params.ssl,
    application_name: params.applicationName,
    connectionTimeoutMillis: params.connectTimeoutMs,
    ...(params.statementTimeoutMs !== undefined ? { statement_timeout: params.statementTimeoutMs } : {}),
    ...(params.queryTimeoutMs !== undefined ? { query_timeout: params.queryTimeoutMs } : {}),
  };
}

/**
 * A new (unconnected) client for `params`, built with nothing from the environment.
 *
 * @returns a `pg.Client`; connect it with `client.connect()`.
 */
export function newPgClient(params: PgConnectionParams): pg.Client {
  const config = pgClientConfig(params);
  const { Client } = loadPgDriver();
  return withoutLibpqEnvironment(() => new Client(config));
}

/**
 * Removes every `PG*` variable from `process.env` (for a constructor that cannot pass its
 * `super` call to {@link withoutLibpqEnvironment}; put them back with {@link restoreEnvironment}).
 *
 * @returns them, name and value.
 */
export function hideLibpqEnvironment(): [string, string][] {
  const hidden: [string, string][] = [];
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && isLibpqVariable(name)) {
      hidden.push([name, value]);
      delete process.env[name];
    }
  }
  return hidden;
}

/** Puts back what {@link hideLibpqEnvironment} removed. */
export function restoreEnvironment(hidden: readonly [string, string][]): void {
  for (const [name, value] of hidden) process.env[name] = value;
}
