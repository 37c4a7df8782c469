/**
 * A local formation for end-to-end tests, brought up with `pgha up`, and a client that
 * writes through the formation's multi-host URI.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { Probe, connectWritable as connectWritableHost } from '../../bench/lib/probe.js';
import type { NodeStateRow, UpFile } from '@pgha/shared';
import { makeTestDir, runPgha, startPgha, trackPgdata } from './processes.js';
import { registerMonitor } from './monitor-access.js';
import { waitFor } from './wait-for.js';

/** A running `pgha up`. */
export interface LocalFormation {
  dir: string;
  up: UpFile;
  pid: number;
}

/** `pgha show state --json` as a user runs it. */
export async function showState(monitorUrl: string): Promise<NodeStateRow[]> {
  const r = await runPgha(['show', 'state', '--json'], { PGHA_MONITOR: monitorUrl });
  if (r.exitCode !== 0) throw new Error(`pgha show state failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as NodeStateRow[];
}

/** True when the formation shows exactly one primary and the rest secondary, all settled. */
export function isPrimaryAndSecondaries(rows: readonly NodeStateRow[]): boolean {
  const primaries = rows.filter((r) => r.reported_state === 'primary' && r.goal_state === 'primary');
  const secondaries = rows.filter((r) => r.reported_state === 'secondary' && r.goal_state === 'secondary');
  return primaries.length === 1 && primaries.length + secondaries.length === rows.length;
}

/** Starts `pgha up --nodes N` in a fresh directory under the OS temp dir and waits for primary + secondaries. */
export async function startLocalFormation(nodes: number): Promise<LocalFormation> {
  const dir = makeTestDir();
  const proc = startPgha(['up', '--nodes', String(nodes), '--dir', dir], { logFile: join(dir, 'up.log') });
  trackPgdata(join(dir, 'monitor', 'pgdata'));
  for (let i = 1; i <= nodes; i++) trackPgdata(join(dir, `node${i}`, 'pgdata'));
  const upFile = join(dir, 'up.json');
  const up = await waitFor('pgha up to write up.json', () => {
    if (proc.exitCode !== null) throw new Error(`pgha up exited early; see ${join(dir, 'up.log')}`);
    return existsSync(upFile) ? (JSON.parse(readFileSync(upFile, 'utf8')) as UpFile) : undefined;
  }, { timeoutMs: 180_000 });
  registerMonitor({ url: up.monitor.url, authTokenFile: up.auth_token_file!, caFile: up.ca_file });
  // Clients of this test connect as postgres with the password pgha up put in its pgpass file.
  process.env.PGPASSWORD = readFileSync(up.pgpass_file!, 'utf8').trim().split(':').slice(4).join(':');
  await waitFor('one primary and the rest secondary', async () => isPrimaryAndSecondaries(await showState(up.monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });
  return { dir, up, pid: proc.pid! };
}

/** host:port pairs of a multi-host URI. */
export function uriHosts(uri: string): { host: string; port: number }[] {
  const m = /^postgres(?:ql)?:\/\/(?:[^@/]*@)?([^/?]+)/.exec(uri);
  if (!m) throw new Error(`not a postgres URI: ${uri}`);
  return m[1]!.split(',').map((hp) => {
    const i = hp.lastIndexOf(':');
    return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
  });
}

/**
 * Connects to the writable host of a multi-host URI, as libpq does with
 * `target_session_attrs=read-write` (node-postgres does not implement it).
 */
export function connectWritable(uri: string, timeoutMs = 1000): Promise<pg.Client | undefined> {
  return connectWritableHost(uriHosts(uri), 'postgres', timeoutMs);
}

/** Runs one SQL statement as postgres on 127.0.0.1:`node` (a port) or on `node.host`:`node.port`. */
export async function queryNode<T extends pg.QueryResultRow>(node: number | { host: string; port: number }, sql: string, params: unknown[] = []): Promise<T[]> {
  const { host, port } = typeof node === 'number' ? { host: '127.0.0.1', port: node } : node;
  const client = new pg.Client({ host, port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The benchmark's probe, writing through a formation URI (see bench/lib/probe.ts). */
export class Writer extends Probe {
  constructor(uri: string, table: string, firstId = 1) {
    super(uriHosts(uri), table, firstId);
  }
}
