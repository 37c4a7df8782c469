/**
 * `stopWrites`, the fence of a switchover's old primary (its keeper reports `draining` when it
 * returns, and the standby is promoted from then on): against a real Postgres, once it returns
 * no session survives and no new one is accepted, the shutdown checkpoint is written and its
 * location readable from the control file (what that report carries), and the shutdown it
 * started ends cleanly.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from '@pgha/shared';
import { pgCtlStop, postmasterPid, readClusterState, readShutdownCheckpointLsn, runPgProgram, stopWrites } from '@pgha/postgres';
import { endAllProcesses } from './helpers/processes.js';
import { startStore } from './helpers/store.js';

afterAll(async () => {
  await endAllProcesses();
});

/** `pg_controldata`'s "Latest checkpoint location" of `pgdata`. */
async function latestCheckpointLocation(pgdata: string): Promise<string> {
  const out = await runPgProgram('pg_controldata', ['--pgdata', pgdata]);
  const found = /^Latest checkpoint location:\s+(\S+)$/m.exec(out);
  if (!found) throw new Error(`no "Latest checkpoint location" in pg_controldata's output:\n${out}`);
  return found[1]!;
}

describe('stopWrites', () => {
  it('returns once Postgres takes no more writes and its shutdown checkpoint is written, with its location; the shutdown then ends cleanly', async () => {
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
    await before.query('insert into t select generate_series(1, 10000)');
    const { rows } = await before.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn');
    expect(readClusterState(running.pgdata)).toBe('in production');
    expect(readShutdownCheckpointLsn(running.pgdata)).toBeUndefined();

    const startedMs = performance.now();
    const stopped = await stopWrites(running.pgdata);
    const tookMs = performance.now() - startedMs;
    console.log(`stopWrites took ${tookMs.toFixed(1)} ms; the postmaster ${postmasterPid(running.pgdata) === undefined ? 'had exited' : 'still ran'}`);

    // Stopped for writes, and the shutdown checkpoint written (the postmaster may still run: its walsenders).
    expect(readClusterState(running.pgdata)).toBe('shut down');
    expect(stopped.why).toBeUndefined();
    expect(stopped.shutdownCheckpointLsn).toBeDefined();
    expect(readShutdownCheckpointLsn(running.pgdata)).toBe(stopped.shutdownCheckpointLsn);
    // Past every commit made before the stop.
    expect(stopped.shutdownCheckpointLsn!).toBeGreaterThanOrEqual(parseLsn(rows[0]!.lsn));
    await expect(before.query('insert into t values (2)')).rejects.toThrow();
    await expect(connect().then((c) => c.query('insert into t values (3)'))).rejects.toThrow();

    await pgCtlStop(running.pgdata);
    expect(postmasterPid(running.pgdata)).toBeUndefined();
    expect(readClusterState(running.pgdata)).toBe('shut down');
    expect(formatLsn(readShutdownCheckpointLsn(running.pgdata)!)).toBe(await latestCheckpointLocation(running.pgdata));
    expect(readShutdownCheckpointLsn(running.pgdata)).toBe(stopped.shutdownCheckpointLsn);
    // Stopped already: what the control file says.
    expect(await stopWrites(running.pgdata)).toEqual({ shutdownCheckpointLsn: stopped.shutdownCheckpointLsn });
  });

  it('returns without a location, saying why, for a Postgres stopped without a shutdown checkpoint (immediate: as after a crash)', async () => {
    const running = await startStore();
    await running.db.destroy();
    await runPgProgram('pg_ctl', ['stop', '--pgdata', running.pgdata, '--mode', 'immediate', '--wait', '--silent']);
    expect(readShutdownCheckpointLsn(running.pgdata)).toBeUndefined();
    expect(await stopWrites(running.pgdata)).toEqual({ shutdownCheckpointLsn: undefined, why: 'Postgres was not running: the control file says in production' });
  });
});
