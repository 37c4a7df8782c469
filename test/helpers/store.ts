/**
 * A monitor store on a fresh Postgres of its own (initdb'd under the OS temp dir, Unix socket
 * only), for tests that drive the store or the API in-process instead of through `pgha monitor
 * run`.
 */
import { join } from 'node:path';
import getPort from 'get-port';
import type { Kysely } from 'kysely';
import { ensureOwnedDir, initdb, startPostgres, pgCtlStop, socketDirFor, writePghaConf } from '@pgha/postgres';
import { PostgresStore, openStore, type Database, type StoreConnection } from '@pgha/monitor';
import { makeTestDir, trackPgdata } from './processes.js';

/** A running store: its data directory, where it listens, an open pool, and `stop()`. */
export interface TestStore {
  pgdata: string;
  conn: StoreConnection;
  /** The pool, for what a test reads or writes in SQL (the Postgres adapter's own tests). */
  db: Kysely<Database>;
  /** The store port's Postgres adapter on that pool. */
  store: PostgresStore;
  /** Closes the pool and stops Postgres (its postmaster is also tracked for `endAllProcesses`). */
  stop(): Promise<void>;
}

/**
 * initdb + start a Postgres configured as the monitor's (no migrations run: call
 * `running.store.migrate()` when the test needs the schema).
 *
 * ### Examples
 * ```ts
 * const running = await startStore();
 * await running.store.migrate();
 * // …
 * await running.stop();
 * ```
 */
export async function startStore(options: { max?: number } = {}): Promise<TestStore> {
  const dir = makeTestDir();
  const pgdata = join(dir, 'store', 'pgdata');
  trackPgdata(pgdata);
  ensureOwnedDir(pgdata);
  await initdb(pgdata);
  const port = await getPort({ host: '127.0.0.1' });
  ensureOwnedDir(socketDirFor(pgdata));
  writePghaConf(pgdata, { role: 'monitor', listenAddresses: '', port, socketDir: socketDirFor(pgdata), synchronousStandbyNames: '' });
  const logDir = join(dir, 'log');
  ensureOwnedDir(logDir);
  await startPostgres(pgdata, join(logDir, 'postgres.log'));
  const conn: StoreConnection = { host: socketDirFor(pgdata), port };
  const db = openStore({ ...conn, ...(options.max ? { max: options.max } : {}) });
  return {
    pgdata,
    conn,
    db,
    store: new PostgresStore(db),
    async stop() {
      await db.destroy();
      await pgCtlStop(pgdata).catch(() => undefined);
    },
  };
}
