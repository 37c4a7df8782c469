/**
 * The keeper's partition watchdog: the part of self-fencing that touches Postgres. Every
 * `FENCE_CHECK_INTERVAL_MS` it asks the pure rule (`fsm/partition-rule.ts`) what to do; while
 * the monitor is quiet it keeps the standbys' replies fresh and reads them, and when the rule
 * says so it fences the node (`Keeper.fence`, which runs `PostgresLifecycle.fence`). It runs beside the keeper loop, on its own
 * Postgres session, so a report or a transition hung on a silent network never delays it.
 */
import type { Logger } from 'pino';
import type pg from 'pg';
import { FENCE_CHECK_INTERVAL_MS, FENCE_QUERY_TIMEOUT_MS } from '@pgha/shared/base';
import { partitionAction, type PartitionFacts } from './fsm/partition-rule.js';
import type { NodeControl } from './node-control.js';
import { delay, localConnection, newPgClient } from '@pgha/postgres';

/** What the watchdog needs of its keeper. */
export interface WatchdogHost {
  /** How long the rule can only answer `none` because the monitor answered (ms; see `monitorQuietForMs`). */
  monitorQuietForMs(): number;
  /**
   * Whether the rule may fence the node at all (`fenceableState` of its reached state and goal).
   * While it may not, the watchdog sleeps until {@link PartitionWatchdog.poke}: the host pokes
   * it at every change of its state and of its goal.
   */
  mayFence(): boolean;
  /** The keeper's facts now, with the watchdog's latest standby reply time. */
  partitionFacts(lastStandbyReplyMs: number | null): PartitionFacts;
  /** Fences the node; `reason` is the rule's sentence. */
  fence(reason: string): Promise<void>;
}

/**
 * One WAL record (a non-transactional logical message: no transaction id, so no commit waits
 * for synchronous replication), so that every reachable standby flushes and replies at once;
 * and the age of the latest reply of a streaming walsender, in ms (null when none streams).
 */
const STANDBY_REPLIES_SQL = `
  select pg_logical_emit_message(false, 'pgha_partition_probe', '') is not null as pinged,
         (select extract(epoch from clock_timestamp() - max(reply_time)) * 1000
            from pg_stat_replication where state = 'streaming')::float8 as reply_age_ms`;

/** The partition watchdog of one keeper. */
export class PartitionWatchdog {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private session: pg.Client | undefined;
  /** Latest reply of a streaming standby (keeper clock, ms), as last read. */
  lastStandbyReplyMs: number | null = null;

  constructor(private readonly host: WatchdogHost, private readonly node: NodeControl, private readonly log: Logger) {}

  private running = false;
  /** No check is due: the node is not fenceable, and {@link poke} wakes the watchdog. */
  private asleep = false;

  /**
   * Starts checking: every `FENCE_CHECK_INTERVAL_MS` once the monitor has been silent for
   * `watchStandbysAfterMs` (half of `networkPartitionTimeoutMs` and a report's slack), and
   * before that only when it would be (see `monitorQuietForMs`): while the monitor answers,
   * the rule can only say `none`. Not at all while the node is not fenceable (a standby at
   * rest): the rule can then only say `none`, and the watchdog sleeps until {@link poke}.
   */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.asleep = false;
    this.schedule(0);
  }

  /**
   * The node's state or goal changed: when the watchdog sleeps (the node was not fenceable),
   * it looks again at once. Cheap and synchronous up to a check; otherwise nothing.
   *
   * Why: a standby's contact with the monitor is the send time of its last answered report, and
   * its answer is held for the report interval, so the monitor looked "quiet" to its watchdog
   * for most of each cycle: it woke every `FENCE_CHECK_INTERVAL_MS` only to find the rule's
   * `none` (issue 17: an idle keeper's wake-ups).
   */
  poke(): void {
    if (!this.running || !this.asleep) return;
    this.asleep = false;
    void this.tick();
  }

  /** Stops checking and closes its session. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.closeSession();
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => void this.tick(), delayMs);
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    if (!this.host.mayFence()) {
      this.asleep = true;
      return;
    }
    // The session stays open between checks: the monitor's silence can reach the watch bound
    // for a moment when a report is slow, and a new session for each of those checks cost the
    // keeper most of a percent of a core.
    const quietMs = this.host.monitorQuietForMs();
    if (quietMs <= 0) await this.check();
    if (this.running) this.schedule(Math.max(FENCE_CHECK_INTERVAL_MS, quietMs));
  }

  /** One check; never throws. Exposed for tests. */
  async check(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      if (partitionAction(this.host.partitionFacts(this.lastStandbyReplyMs)).action === 'none') return;
      const ageMs = await this.readStandbyReplyAge();
      if (ageMs !== undefined) this.lastStandbyReplyMs = ageMs === null ? null : Date.now() - ageMs;
      const decision = partitionAction(this.host.partitionFacts(this.lastStandbyReplyMs));
      if (decision.action === 'fence') await this.host.fence(decision.reason);
    } catch (err) {
      this.log.error(`partition watchdog: ${(err as Error).message}`);
    } finally {
      this.busy = false;
    }
  }

  /**
   * Pings the standbys and reads the age of their latest reply within `FENCE_QUERY_TIMEOUT_MS`.
   *
   * @returns the age in ms, null when no walsender streams, undefined when Postgres did not
   *   answer in time (the previous reply time then ages on).
   */
  private async readStandbyReplyAge(): Promise<number | null | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), FENCE_QUERY_TIMEOUT_MS);
    });
    const query = (async () => {
      if (!this.session) {
        const client = newPgClient(localConnection(this.node.session.local, 'pgha_keeper_watchdog', FENCE_QUERY_TIMEOUT_MS));
        client.on('error', () => {
          if (this.session === client) this.session = undefined;
        });
        this.session = client;
        await client.connect();
      }
      const { rows } = await this.session.query<{ reply_age_ms: number | null }>(STANDBY_REPLIES_SQL);
      return rows[0]?.reply_age_ms ?? null;
    })();
    try {
      const result = await Promise.race([query, timeout]);
      if (result === undefined) await this.closeSession();
      return result;
    } catch {
      await this.closeSession();
      return undefined;
    } finally {
      clearTimeout(timer);
      query.catch(() => undefined);
    }
  }

  private async closeSession(): Promise<void> {
    const client = this.session;
    this.session = undefined;
    if (!client) return;
    // A session to a Postgres that does not answer: do not wait for a clean goodbye.
    await Promise.race([client.end().catch(() => undefined), delay(50)]);
  }
}
