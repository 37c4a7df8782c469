/**
 * Probes every node's Postgres (`select pg_is_in_recovery()` as the probe role) every
 * `healthProbeIntervalMs`, records health, and re-evaluates a group whose health changed.
 * Source: pg_auto_failover's health check worker (`health_check_worker.c`), much faster.
 */
import type { Kysely } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { DEFAULT_FORMATION_SETTINGS, MONITOR_PROBE_ROLE } from '@pgha/shared';
import type { GroupDriver } from '../driver/group-driver.js';
import type { Database } from '../store/db.js';
import { recordProbe } from '../store/monitor-store.js';

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

/** The probing loop. */
export class HealthProber {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

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

  /** One round over every node. */
  async round(): Promise<void> {
    const nodes = await this.db
      .selectFrom('nodes')
      .innerJoin('formations', 'formations.formationId', 'nodes.formationId')
      .select(['nodes.nodeId', 'nodes.formationId', 'nodes.groupId', 'nodes.name', 'nodes.host', 'nodes.port', 'nodes.health', 'nodes.reportedState', 'formations.monitorProbePassword', 'formations.settings'])
      .where('nodes.goalState', '!=', 'dropped')
      .execute();
    await Promise.all(
      nodes.map(async (n) => {
        const settings = { ...DEFAULT_FORMATION_SETTINGS, ...n.settings };
        if (n.reportedState === 'init') return;
        const result = await probePostgres(n.host, n.port, n.monitorProbePassword, settings.healthProbeTimeoutMs);
        const changed = await recordProbe(this.db, n.nodeId, result.ok, result.inRecovery, settings.healthProbeRetries);
        if (changed) {
          this.log.info({ nodeId: n.nodeId, ok: result.ok, error: result.error }, `health of node ${n.nodeId} "${n.name}" is now ${result.ok ? 'good' : 'bad'}`);
          await this.driver.evaluate(n.formationId, n.groupId, 'health');
        }
      }),
    );
  }

  /** Stops probing. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
