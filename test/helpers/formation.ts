/**
 * A local formation for end-to-end tests, brought up with `pgha up`, and a client that
 * writes through the formation's multi-host URI.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { NodeStateRow, UpFile } from '@pgha/shared';
import { makeTestDir, runPgha, startPgha, trackPgdata } from './processes.js';
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
 *
 * @returns a connected client on a host that is not in recovery, or undefined.
 */
export async function connectWritable(uri: string, timeoutMs = 1000): Promise<pg.Client | undefined> {
  for (const { host, port } of uriHosts(uri)) {
    const client = new pg.Client({ host, port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: timeoutMs, query_timeout: 5000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const { rows } = await client.query<{ ro: string }>("select current_setting('transaction_read_only') as ro");
      if (rows[0]?.ro === 'off') return client;
    } catch {
      // try the next host
    }
    await client.end().catch(() => undefined);
  }
  return undefined;
}

/** Runs one SQL statement on host:port as postgres. */
export async function queryNode<T extends pg.QueryResultRow>(port: number, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** One acknowledged write of the probe. */
export interface Ack {
  id: number;
  atMs: number;
  port: number;
}

/**
 * The benchmark's probe: one insert every ~`intervalMs` through the writable host, each its
 * own transaction, reconnecting at once on error; records every acknowledged id with a
 * monotonic timestamp (ms) and the port of the server that acknowledged it.
 */
export class Writer {
  readonly acks: Ack[] = [];
  private stopped = false;
  private done: Promise<void> | undefined;
  private nextId = 1;

  constructor(private readonly uri: string, private readonly table: string, private readonly intervalMs = 10) {}

  start(): void {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    let client: pg.Client | undefined;
    while (!this.stopped) {
      if (!client) {
        client = await connectWritable(this.uri, 500);
        if (!client) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
      }
      const id = this.nextId++;
      try {
        const { rows } = await client.query<{ port: number }>(`insert into ${this.table}(id) values ($1) returning inet_server_port() as port`, [id]);
        this.acks.push({ id, atMs: performance.now(), port: Number(rows[0]!.port) });
      } catch {
        await client.end().catch(() => undefined);
        client = undefined;
        continue;
      }
      await new Promise((r) => setTimeout(r, this.intervalMs));
    }
    await client?.end().catch(() => undefined);
  }

  /** Stops writing and waits for the loop to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  /** The longest gap between consecutive acknowledged writes after `fromMs`, in ms. */
  maxGapMs(fromMs = 0): number {
    let gap = 0;
    const acks = this.acks.filter((a) => a.atMs >= fromMs);
    for (let i = 1; i < acks.length; i++) gap = Math.max(gap, acks[i]!.atMs - acks[i - 1]!.atMs);
    return gap;
  }
}
