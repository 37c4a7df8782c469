/**
 * HAProxy in front of a formation, as `pgha show haproxy` configures it: what a client on its
 * write or read port reaches, and how long writes through the write port stop when the
 * primary's machine dies. Shared by `bench/haproxy-failover.ts` and `test/haproxy.test.ts`.
 */
import pg from 'pg';
import { Probe } from './probe.js';
import { waitFor } from '@pgha/postgres';

/** Debian's HAProxy. */
export const HAPROXY_BIN = '/usr/sbin/haproxy';

/** What a session through `port` (of HAProxy, on 127.0.0.1) lands on: recovery or not, and the Postgres port. */
export async function sessionThrough(port: number, user = 'postgres'): Promise<{ inRecovery: boolean; serverPort: number }> {
  const client = new pg.Client({ host: '127.0.0.1', port, user, database: 'postgres', connectionTimeoutMillis: 1000, query_timeout: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ r: boolean; p: number }>('select pg_is_in_recovery() as r, inet_server_port() as p');
    return { inRecovery: rows[0]!.r, serverPort: Number(rows[0]!.p) };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Waits until a session through HAProxy's `port` reaches the Postgres on `serverPort`, with
 * `inRecovery` as given (HAProxy's checks have marked that node up and the others down).
 */
export async function waitForRoute(port: number, serverPort: number, inRecovery: boolean, timeoutMs = 60_000): Promise<void> {
  await waitFor(`port ${port} to reach ${inRecovery ? 'the standby' : 'the primary'} on ${serverPort}`, async () => {
    const s = await sessionThrough(port);
    return s.serverPort === serverPort && s.inRecovery === inRecovery;
  }, { timeoutMs, intervalMs: 100 });
}

/** One failover through HAProxy, measured. */
export interface HaproxyFailoverResult {
  /** From the kill to the first insert through the write port that the new primary acknowledged, ms. */
  writesBackMs: number;
  /** Inserts acknowledged in the whole run. */
  acks: number;
  /** The probe's next id (for the next run on the same table). */
  nextId: number;
}

/**
 * Writes through HAProxy's write port (one insert every ~10 ms into `table`, reconnecting at
 * once on error), runs `kill` (the primary's machine dies: SIGKILL of its keeper and
 * postmaster), and measures the time until an insert through the same port is acknowledged by
 * a Postgres other than the one on `primaryPort`.
 *
 * @throws when writes do not come back within `timeoutMs`.
 */
export async function measureHaproxyFailover(o: { writePort: number; primaryPort: number; table: string; firstId: number; kill: () => void; timeoutMs?: number }): Promise<HaproxyFailoverResult> {
  const probe = new Probe([{ host: '127.0.0.1', port: o.writePort }], o.table, o.firstId);
  probe.start();
  let writesBackMs: number | undefined;
  let error: unknown;
  try {
    await waitFor('the probe to write through HAProxy', () => probe.acks.length >= 50, { timeoutMs: 60_000, intervalMs: 50 });
    const killedAt = performance.now();
    o.kill();
    const first = await waitFor('an insert through the write port on the new primary', () => probe.acks.find((a) => a.atMs > killedAt && a.port !== o.primaryPort), { timeoutMs: o.timeoutMs ?? 120_000, intervalMs: 5 });
    writesBackMs = first.atMs - killedAt;
  } catch (err) {
    error = err;
  }
  const nextId = await probe.stop();
  if (writesBackMs === undefined) throw error;
  return { writesBackMs, acks: probe.acks.length, nextId };
}
