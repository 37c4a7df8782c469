/**
 * The benchmark's probe (bench/lib/probe.ts) recording a full write history for the fault
 * tests' checker: for every insert, when it was sent and when it was acknowledged, and which
 * server (`inet_server_addr()`, `inet_server_port()`, timeline) acknowledged it; failed inserts
 * too. Kept free of other test helpers so that a writer child process (writer-child.ts) loads
 * only this and the probe.
 */
import type pg from 'pg';
import { Probe, connectWritable, type Ack, type Host } from '../../bench/lib/probe.js';

/** One acknowledged insert. Times are `performance.now()` of the test process, in ms. */
export interface WriteAck extends Ack {
  /** When the insert was sent (just before the query left the client). */
  sentAtMs: number;
  /** `inet_server_addr()` of the server that acknowledged it. */
  addr: string;
  /** The server's WAL insert timeline when it executed the insert: a promotion starts a new one. */
  timeline: number;
}

/** One insert that got an error (or no answer within the query timeout) instead of an acknowledgement. */
export interface WriteFailure {
  id: number;
  sentAtMs: number;
  failedAtMs: number;
  error: string;
}

/** A record as a writer streams it: an acknowledgement or a failure. */
export type WriteRecord = ({ kind: 'ack' } & WriteAck) | ({ kind: 'fail' } & WriteFailure);

/** Difference between CLOCK_MONOTONIC (shared by every process of the machine) and this process's `performance.now()`, in ms. */
const MONOTONIC_OFFSET_MS = Number(process.hrtime.bigint()) / 1e6 - performance.now();

/** This process's `performance.now()` time → the machine's monotonic clock, in ms. */
export function toMonotonicMs(perfMs: number): number {
  return perfMs + MONOTONIC_OFFSET_MS;
}

/** The machine's monotonic clock → this process's `performance.now()` time, in ms. */
export function fromMonotonicMs(monotonicMs: number): number {
  return monotonicMs - MONOTONIC_OFFSET_MS;
}

/** Options of {@link HistoryProbe}. */
export interface HistoryProbeOptions {
  /** Pause between inserts, in ms (default 10, as the benchmark). */
  intervalMs?: number;
  /**
   * Client-side limit on one insert, in ms (default 60 000): long enough that a commit
   * hanging on synchronous replication shows as a hang, not as a quick error.
   */
  queryTimeoutMs?: number;
  /** Called with every record as it is made (the writer child streams them). */
  onRecord?: (record: WriteRecord) => void;
}

/**
 * The benchmark's probe with a full history: {@link WriteAck}s in `acks` (in the order this
 * sequential client got them) and {@link WriteFailure}s in `failures`.
 */
export class HistoryProbe extends Probe {
  declare readonly acks: WriteAck[];
  readonly failures: WriteFailure[] = [];
  private readonly queryTimeoutMs: number;
  private readonly onRecord: ((record: WriteRecord) => void) | undefined;

  /**
   * @param name - the writer's name in reports.
   * @param hosts - the formation's hosts, tried in order for the writable one.
   * @param table - the table to insert into (see {@link Probe.createTable}).
   * @param firstId - first id; ids increase by one per insert attempt.
   */
  constructor(readonly name: string, hosts: readonly Host[], table: string, firstId: number, options: HistoryProbeOptions = {}) {
    super(hosts, table, firstId, 'postgres', options.intervalMs ?? 10);
    this.queryTimeoutMs = options.queryTimeoutMs ?? 60_000;
    this.onRecord = options.onRecord;
  }

  protected override connect(): Promise<pg.Client | undefined> {
    return connectWritable(this.hosts, this.user, 500, this.queryTimeoutMs);
  }

  protected override async write(client: pg.Client, id: number): Promise<void> {
    const sentAtMs = performance.now();
    try {
      const { rows } = await client.query<{ addr: string; port: number; timeline: number }>(
        `insert into ${this.table}(id) values ($1)
         returning host(inet_server_addr()) as addr, inet_server_port() as port,
                   ('x' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8))::bit(32)::int as timeline`,
        [id],
      );
      const r = rows[0]!;
      const ack: WriteAck = { id, sentAtMs, atMs: performance.now(), addr: r.addr, port: Number(r.port), timeline: Number(r.timeline) };
      this.acks.push(ack);
      this.onRecord?.({ kind: 'ack', ...ack });
    } catch (err) {
      const failure: WriteFailure = { id, sentAtMs, failedAtMs: performance.now(), error: (err as Error).message };
      this.failures.push(failure);
      this.onRecord?.({ kind: 'fail', ...failure });
      throw err;
    }
  }
}
