/**
 * `startPostgres`, the start of every Postgres pgha runs (keeper and monitor): the postmaster
 * spawned directly, ready once its `postmaster.pid` says so; and a postmaster that refuses to
 * start (a bad setting) reported at once with where to read why, not after the wait's timeout.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresCommandError } from '@pgha/shared';
import { pgCtlStop, postmasterPid, readClusterState, startPostgres } from '@pgha/postgres';
import { endAllProcesses } from './helpers/processes.js';
import { queryNode } from './helpers/formation.js';
import { startStore } from './helpers/store.js';

afterAll(async () => {
  await endAllProcesses();
});

describe('startPostgres', () => {
  it('returns once Postgres accepts connections, and fails at once when the postmaster exits', async () => {
    const running = await startStore();
    await running.db.destroy();
    expect(postmasterPid(running.pgdata)).toBeDefined();
    expect(readClusterState(running.pgdata)).toBe('in production');
    const logFile = join(running.pgdata, '..', '..', 'log', 'postgres.log');
    await pgCtlStop(running.pgdata);

    // Started again: ready when it returns.
    await startPostgres(running.pgdata, logFile);
    const [row] = await queryNode<{ ok: number }>({ host: running.conn.host, port: running.conn.port }, 'select 1 as ok');
    expect(row).toEqual({ ok: 1 });
    await pgCtlStop(running.pgdata);

    appendFileSync(join(running.pgdata, 'postgresql.conf'), "no_such_parameter = 'on'\n");
    const startedAtMs = performance.now();
    const failed = await startPostgres(running.pgdata, logFile).then(() => undefined, (err: unknown) => err);
    expect(failed).toBeInstanceOf(PostgresCommandError);
    expect((failed as Error).message).toBe(`postgres failed (exit 1): the postmaster ended before it accepted connections (exit code 1); see ${logFile}`);
    // Well before the wait's 60 s: the postmaster's exit is seen as it happens.
    expect(performance.now() - startedAtMs).toBeLessThan(10_000);
    expect(postmasterPid(running.pgdata)).toBeUndefined();
    expect(readFileSync(logFile, 'utf8')).toMatch(/unrecognized configuration parameter "no_such_parameter"/);
  });
});
