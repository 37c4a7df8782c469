/**
 * The benchmark's probe client: one insert every ~10 ms through the formation's multi-host
 * URI with `target_session_attrs=read-write` semantics (node-postgres has no multi-host
 * support, so the probe tries each host and keeps the one that is not read-only, as libpq
 * does), each insert its own transaction, reconnecting at once on error, and trying every host
 * again {@link RETRY_DELAY_MS} after a round that found none writable. Every acknowledged id is
 * recorded with a monotonic timestamp (ms) and the port of the server that acknowledged it.
 *
 * The longest write gap it measures is what a client sees: from its last acknowledged insert
 * before a fault to its first one after, that is the outage plus one interval between inserts
 * (up to ~10 ms), plus one round of connection attempts (a few ms).
 */
import pg from 'pg';
import { delay } from '@pgha/postgres';

/**
 * Pause after a round of connection attempts that found no writable host (ms). It was 10 ms,
 * which could add up to 10 ms to a switchover's write gap (the new primary writable just after
 * a round began its pause); a client retrying in a tight loop sees the new primary as soon as
 * it is writable. Each round opens a session on every host that accepts connections, which
 * paces the loop by itself.
 */
const RETRY_DELAY_MS = 1;

/** One acknowledged write. */
export interface Ack {
  id: number;
  atMs: number;
  port: number;
}

/** A host of the formation. */
export interface Host {
  host: string;
  port: number;
}

/**
 * Connects to the first host that accepts writes, as libpq does with
 * `target_session_attrs=read-write`; undefined when none does.
 */
export async function connectWritable(hosts: readonly Host[], user = 'postgres', timeoutMs = 500, queryTimeoutMs = 10_000): Promise<pg.Client | undefined> {
  for (const h of hosts) {
    const client = new pg.Client({ host: h.host, port: h.port, user, database: 'postgres', connectionTimeoutMillis: timeoutMs, query_timeout: queryTimeoutMs });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const { rows } = await client.query<{ ro: string }>("select current_setting('transaction_read_only') as ro");
      if (rows[0]?.ro === 'off') return client;
    } catch {
      // next host
    }
    dropSession(client);
  }
  return undefined;
}

/**
 * Ends a session without waiting for it to end: ending sends a goodbye and waits for the server
 * to close the socket, which a server whose machine died never does (a write that failed with
 * "terminating connection due to unexpected postmaster exit" just before the link went down
 * held test/vip.test.ts's writer for over 60 s, until TCP gave up).
 */
function dropSession(client: pg.Client): void {
  client.end().catch(() => undefined);
}

/** The probe. */
export class Probe {
  readonly acks: Ack[] = [];
  private stopped = false;
  private loop: Promise<void> | undefined;
  private nextId: number;

  constructor(protected readonly hosts: readonly Host[], protected readonly table: string, firstId: number, protected readonly user = 'postgres', private readonly intervalMs = 10) {
    this.nextId = firstId;
  }

  /** Creates the probe table on the writable host (idempotent). */
  static async createTable(hosts: readonly Host[], table: string, user = 'postgres'): Promise<void> {
    const client = await connectWritable(hosts, user);
    if (!client) throw new Error('no writable host to create the probe table on');
    try {
      await client.query(`create table if not exists ${table} (id bigint primary key, at timestamptz default clock_timestamp())`);
    } finally {
      await client.end();
    }
  }

  /** Opens a session on the writable host (subclasses may change the timeouts). */
  protected connect(): Promise<pg.Client | undefined> {
    return connectWritable(this.hosts, this.user);
  }

  /** One insert of `id` in its own transaction; records the acknowledgement. Throws on any error. */
  protected async write(client: pg.Client, id: number): Promise<void> {
    const { rows } = await client.query<{ port: number }>(`insert into ${this.table}(id) values ($1) returning inet_server_port() as port`, [id]);
    this.acks.push({ id, atMs: performance.now(), port: Number(rows[0]!.port) });
  }

  start(): void {
    this.loop = (async () => {
      let client: pg.Client | undefined;
      while (!this.stopped) {
        if (!client) {
          client = await this.connect();
          if (!client) {
            await delay(RETRY_DELAY_MS);
            continue;
          }
        }
        const id = this.nextId++;
        try {
          await this.write(client, id);
        } catch {
          dropSession(client);
          client = undefined;
          continue;
        }
        await delay(this.intervalMs);
      }
      await client?.end().catch(() => undefined);
    })();
  }

  /** Stops the probe; returns the id after the last one used. */
  async stop(): Promise<number> {
    this.stopped = true;
    await this.loop;
    return this.nextId;
  }

  /** Longest gap between consecutive acknowledgements whose later one is after `fromMs`, in ms. */
  maxGapMs(fromMs: number, toMs = Number.POSITIVE_INFINITY): number {
    return maxAckGapMs(this.acks, fromMs, toMs);
  }

  /** Acknowledged ids missing from `present`. */
  lost(present: ReadonlySet<number>): number[] {
    return this.acks.filter((a) => !present.has(a.id)).map((a) => a.id);
  }
}

/**
 * Longest gap between consecutive acknowledgements (in `atMs` order, as one sequential client
 * records them) whose later one is at or after `fromMs` and earlier one at or before `toMs`, in ms.
 */
export function maxAckGapMs(acks: readonly { atMs: number }[], fromMs: number, toMs = Number.POSITIVE_INFINITY): number {
  let gap = 0;
  for (let i = 1; i < acks.length; i++) {
    const a = acks[i - 1]!;
    const b = acks[i]!;
    if (b.atMs >= fromMs && a.atMs <= toMs) gap = Math.max(gap, b.atMs - a.atMs);
  }
  return gap;
}

/** Reads every id of the probe table on host:port. */
export async function idsOn(host: Host, table: string, user = 'postgres'): Promise<Set<number>> {
  const client = new pg.Client({ host: host.host, port: host.port, user, database: 'postgres', connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string }>(`select id from ${table}`);
    return new Set(rows.map((r) => Number(r.id)));
  } finally {
    await client.end().catch(() => undefined);
  }
}
