/**
 * `stopWrites`, the fence of a switchover's old primary (its keeper reports `draining` when it
 * returns, and the standby is promoted from then on): against a real Postgres, once it returns
 * no session survives and no new one is accepted, and the shutdown it started ends cleanly.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { SHUTDOWN_CLUSTER_STATES, pgCtlStop, postmasterPid, readClusterState, stopWrites } from '@pgha/postgres';
import { endAllProcesses } from './helpers/processes.js';
import { startStore } from './helpers/store.js';

afterAll(async () => {
  await endAllProcesses();
});

describe('stopWrites', () => {
  it('returns once Postgres takes no more writes: sessions ended, new ones refused; the shutdown then ends cleanly', async () => {
    const running = await startStore();
    await running.db.destroy();
    const connect = async (): Promise<pg.Client> => {
      const c = new pg.Client({ host: running.conn.host, port: running.conn.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2000 });
      c.on('error', () => undefined);
      await c.connect();
      return c;
    };
    const before = await connect();
    await before.query('create table t (id int)');
    await before.query('insert into t values (1)');
    expect(readClusterState(running.pgdata)).toBe('in production');

    await stopWrites(running.pgdata);

    // Stopped for writes: either the checkpointer has begun the shutdown checkpoint, or the postmaster is gone.
    const state = readClusterState(running.pgdata);
    expect(postmasterPid(running.pgdata) === undefined || (state !== undefined && SHUTDOWN_CLUSTER_STATES.has(state))).toBe(true);
    await expect(before.query('insert into t values (2)')).rejects.toThrow();
    await expect(connect().then((c) => c.query('insert into t values (3)'))).rejects.toThrow();

    await pgCtlStop(running.pgdata);
    expect(postmasterPid(running.pgdata)).toBeUndefined();
    expect(readClusterState(running.pgdata)).toBe('shut down');
  });
});
