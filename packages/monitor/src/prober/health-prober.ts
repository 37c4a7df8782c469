/**
 * Probes every node's Postgres (`select pg_is_in_recovery()` as the probe role) every
 * `healthProbeIntervalMs`, records health, and re-evaluates a group whose health changed.
 * Source: pg_auto_failover's health check worker (`health_check_worker.c`), much faster.
 *
 * Results are written as they come in, but many at a time: while one write is under way the
 * results that arrive wait for the next one (one statement for all of them, see
 * `recordProbes`). With thousands of nodes that is a handful of statements per round instead
 * of two per node, and a result still reaches the store within one write of its probe.
 */
import type { Kysely } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { DEFAULT_FORMATION_SETTINGS, MONITOR_PROBE_ROLE } from '@pgha/shared';
import type { GroupDriver } from '../driver/group-driver.js';
import type { Database } from '../store/db.js';
import { recordProbes, type MergedProbes } from '../store/monitor-store.js';

/** Result of one probe. */
export interface ProbeResult {
  ok: boolean;
  inRecovery: boolean | null;
  error?: string;
}

/**
 * Connects once to host:port and asks whether Postgres is in recovery.
 *
 * @param timeoutMs - connection and query timeout.
 */
export async function probePostgres(host: string, port: number, password: string, timeoutMs: number): Promise<ProbeResult> {
  const client = new pg.Client({ host, port, user: MONITOR_PROBE_ROLE, password, database: 'postgres', connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, application_name: 'pgha_probe' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ r: boolean }>('select pg_is_in_recovery() as r');
    return { ok: true, inRecovery: rows[0]?.r ?? null };
  } catch (err) {
    return { ok: false, inRecovery: null, error: (err as Error).message };
  } finally {
    client.end().catch(() => undefined);
  }
}

/** How many probes a round starts between two turns of the event loop. */
const YIELD_EVERY_PROBES = 100;

/** The probing loop. */
export class HealthProber {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Results not written yet, merged per node in the order they came. */
  private pending = new Map<number, MergedProbes & { error?: string }>();
  private writing: Promise<void> | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly driver: GroupDriver,
    private readonly log: Logger,
    private readonly intervalMs = DEFAULT_FORMATION_SETTINGS.healthProbeIntervalMs,
  ) {}

  /** Starts probing. */
  start(): void {
    const loop = async (): Promise<void> => {
      if (this.stopped) return;
      const started = Date.now();
      await this.round().catch((err: Error) => this.log.warn({ err: err.message }, 'health probe round failed'));
      if (!this.stopped) this.timer = setTimeout(() => void loop(), Math.max(0, this.intervalMs - (Date.now() - started)));
    };
    void loop();
  }

  /** One round over every node; ends when its results are written. */
  async round(): Promise<void> {
    const nodes = await this.db
      .selectFrom('nodes')
      .innerJoin('formations', 'formations.formationId', 'nodes.formationId')
      .select(['nodes.nodeId', 'nodes.formationId', 'nodes.groupId', 'nodes.name', 'nodes.host', 'nodes.port', 'nodes.health', 'nodes.reportedState', 'formations.monitorProbePassword', 'formations.settings'])
      .where('nodes.goalState', '!=', 'dropped')
      .execute();
    const probes: Promise<void>[] = [];
    for (const [i, n] of nodes.entries()) {
      // Starting a probe takes some 50 µs: let requests in between.
      if (i > 0 && i % YIELD_EVERY_PROBES === 0) await new Promise((r) => setImmediate(r));
      const settings = { ...DEFAULT_FORMATION_SETTINGS, ...n.settings };
      if (n.reportedState === 'init') continue;
      probes.push(probePostgres(n.host, n.port, n.monitorProbePassword, settings.healthProbeTimeoutMs).then((result) => this.add(n.nodeId, result, settings.healthProbeRetries)));
    }
    await Promise.all(probes);
    await this.flush();
  }

  /** Queues one probe result and starts a write if none is under way. */
  private add(nodeId: number, result: ProbeResult, retries: number): void {
    const p = this.pending.get(nodeId) ?? { nodeId, reset: false, failures: 0, inRecovery: null, retries };
    p.retries = retries;
    if (result.ok) {
      p.reset = true;
      p.failures = 0;
      p.inRecovery = result.inRecovery;
      delete p.error;
    } else {
      p.failures++;
      p.error = result.error;
    }
    this.pending.set(nodeId, p);
    if (!this.writing) void this.flush().catch((err: Error) => this.log.warn({ err: err.message }, 'recording health probes failed'));
  }

  /** Writes every pending result (several writes if results keep coming); resolves when none is left. */
  private async flush(): Promise<void> {
    while (this.writing) await this.writing.catch(() => undefined);
    if (this.pending.size === 0) return;
    this.writing = this.write().finally(() => {
      this.writing = undefined;
    });
    await this.writing;
    if (this.pending.size > 0 && !this.stopped) await this.flush();
  }

  /** One write of the pending results, then the evaluations of groups whose health changed. */
  private async write(): Promise<void> {
    // Let the probes that end in this same turn of the event loop join this write.
    await new Promise((r) => setImmediate(r));
    const batch = this.pending;
    this.pending = new Map();
    let outcome: Awaited<ReturnType<typeof recordProbes>>;
    try {
      outcome = await recordProbes(this.db, [...batch.values()].map(({ error: _error, ...p }) => p));
    } catch (err) {
      this.requeue(batch, [...batch.keys()]);
      throw err;
    }
    this.requeue(batch, outcome.skipped);
    const groups = new Map<string, { formationId: string; groupId: number }>();
    for (const c of outcome.changed) {
      const ok = c.health === 'good';
      this.log.info({ nodeId: c.nodeId, ok, error: ok ? undefined : batch.get(c.nodeId)?.error }, `health of node ${c.nodeId} "${c.name}" is now ${ok ? 'good' : 'bad'}`);
      groups.set(`${c.formationId}\u0000${c.groupId}`, { formationId: c.formationId, groupId: c.groupId });
    }
    for (const g of groups.values()) {
      await this.driver.evaluate(g.formationId, g.groupId, 'health').catch((err: Error) => this.log.warn({ err: err.message, formation: g.formationId, group: g.groupId }, 'evaluation after a health change failed'));
    }
  }

  /** Puts results that were not written back in front of any newer ones of the same nodes. */
  private requeue(batch: Map<number, MergedProbes & { error?: string }>, ids: readonly number[]): void {
    for (const id of ids) {
      const old = batch.get(id);
      if (!old) continue;
      const newer = this.pending.get(id);
      if (!newer) {
        this.pending.set(id, old);
      } else if (!newer.reset) {
        // Newer failures continue the older sequence.
        this.pending.set(id, { ...old, failures: old.failures + newer.failures, retries: newer.retries, ...(newer.error ? { error: newer.error } : {}) });
      }
      // A newer success supersedes the older results.
    }
  }

  /** Stops probing. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
