/**
 * Rebuilding the node's data from another node: a base backup (a new standby, or when
 * rewinding fails), pg_rewind (an old primary rejoining, a diverged standby), and the watch
 * over a standby's timeline that finds when it has diverged (`DivergenceWatch`). It owns the
 * progress of the base backup under way and the divergence watch.
 */
import { renameSync, rmSync } from 'node:fs';
import type { Logger } from 'pino';
import { PghaError, formatDurationMs, formatLsn, nodeSlotName, progressAmount, type GroupMember, type TransitionProgress } from '@pgha/shared/base';
import { ensureOwnedDir, pollUntil, readClusterState, runPgProgram, setStandbySignal } from '@pgha/postgres';
import { DivergenceWatch } from '../divergence-watch.js';
import { rewindReason, type Divergence } from '../fsm/divergence-rule.js';
import type { KeeperConfig } from '../keeper-config.js';
import { ProgressLogThrottle, parseBasebackupProgress } from '../postgres/basebackup-progress.js';
import { readLocalTimeline, readUpstreamTimeline, readWalEnd, type RemoteTimeline } from '../postgres/timeline-history.js';
import type { DataDirectoryIdentity } from './data-directory-identity.js';
import type { LocalSession } from './local-session.js';
import type { PostgresLifecycle } from './postgres-lifecycle.js';
import { conninfo, type ReplicationSetup } from './replication-setup.js';

/**
 * `PGHA_TEST_BASEBACKUP_MAX_RATE`: pg_basebackup's `--max-rate` (32k..1024M, `k` or `M`
 * suffix), set by tests only to make a base backup last long enough to watch its progress.
 *
 * @throws PghaError `PGHA_ERR_CONFIG` when it is set to something else.
 */
function testBasebackupMaxRate(): string | undefined {
  const value = process.env.PGHA_TEST_BASEBACKUP_MAX_RATE;
  if (!value) return undefined;
  if (!/^[1-9][0-9]*[kM]?$/.test(value)) {
    throw new PghaError('PGHA_ERR_CONFIG', `PGHA_TEST_BASEBACKUP_MAX_RATE="${value}" is not a rate for pg_basebackup --max-rate`, { hint: 'unset it (it is for tests only), or give e.g. 20M' });
  }
  return value;
}

/**
 * The session options of pg_rewind's connection to its source (libpq `options`): JIT off.
 * pg_rewind lists the source's files with one recursive query over `pg_ls_dir` and
 * `pg_stat_file`, whose estimated cost is past `jit_above_cost`: on a Postgres built with LLVM
 * (Debian's is), compiling it took about 300 ms of a query that runs in 15 ms without, on a
 * fresh data directory of 1,000 files (measured with psql on this project's machine; issue 17
 * §5, docs/timeouts.md "Rejoining after a crash"). JIT changes how a query is run, never its
 * result, so the rewind is the same.
 */
export const REWIND_SOURCE_OPTIONS = '-c jit=off';

/**
 * How long {@link Rebuild.waitForStream} waits, at most, for a standby that rejoined without a
 * rewind to stream the primary's timeline (ms). It streams about 100 ms after its start here.
 */
const REJOIN_STREAM_WAIT_MS = 2_000;
/** How often {@link Rebuild.waitForStream} looks (ms). */
const REJOIN_STREAM_POLL_MS = 10;

/**
 * How an old primary rejoined (`Rebuild.rejoin`): without a rewind (then `upstreamTimeline` is
 * the primary's timeline, which its WAL receiver must reach), with pg_rewind, or with a fresh base backup.
 */
export type Rejoin = { how: 'no rewind'; upstreamTimeline: number } | { how: 'pg_rewind' | 'a base backup' };

/** See the module comment. One per node (`NodeControl.rebuild`). */
export class Rebuild {
  /** Whether this standby's WAL diverged from the primary's timeline (see `divergence-watch.ts`). */
  readonly divergence: DivergenceWatch;

  /** How long the reads of the last rejoin check took (ms from its start), for its log line: where this node's WAL ends, the primary's timeline. */
  private readonly lastRejoinCheckMs: { walEndMs?: number; upstreamMs?: number } = {};

  /** How far the base backup under way has come; null when none runs. */
  private progress: TransitionProgress | null = null;

  constructor(
    private readonly config: KeeperConfig,
    private readonly session: LocalSession,
    private readonly postgres: PostgresLifecycle,
    private readonly identity: DataDirectoryIdentity,
    private readonly replication: ReplicationSetup,
    divergence: DivergenceWatch,
    private readonly log: Logger,
  ) {
    this.divergence = divergence;
  }

  private get pgdata(): string {
    return this.config.pgdata;
  }

  /**
   * How far the base backup under way has come (null when none runs): the keeper's reports
   * carry it to the monitor (`transitionProgress`).
   */
  get transitionProgress(): TransitionProgress | null {
    return this.progress;
  }

  /**
   * Clones the primary with pg_basebackup into `<pgdata>.basebackup`, then swaps it in and
   * records its database system identifier (the group's) in keeper.json. A
   * keeper killed halfway leaves the old data directory untouched and retries from scratch.
   * Its progress (`--progress`) is kept in {@link transitionProgress} and logged at info
   * every 10 % ("base backup: 42% (123.4 MB of 293.0 MB)"). For tests only,
   * `PGHA_TEST_BASEBACKUP_MAX_RATE` (pg_basebackup's `--max-rate`, e.g. `20M`) slows it down.
   *
   * @throws PostgresCommandError when pg_basebackup fails; PghaError `PGHA_ERR_CONFIG` for a
   *   malformed `PGHA_TEST_BASEBACKUP_MAX_RATE`.
   */
  async baseBackup(primary: GroupMember): Promise<void> {
    const maxRate = testBasebackupMaxRate();
    const tmp = `${this.pgdata}.basebackup`;
    rmSync(tmp, { recursive: true, force: true });
    ensureOwnedDir(tmp);
    this.log.info({ primary: `${primary.host}:${primary.port}` }, 'pg_basebackup from the primary');
    const throttle = new ProgressLogThrottle();
    this.progress = { phase: 'basebackup', doneBytes: 0, totalBytes: null };
    const onStderrLine = (line: string): void => {
      const progress = parseBasebackupProgress(line);
      if (!progress) {
        this.log.debug({ line }, 'pg_basebackup');
        return;
      }
      this.progress = progress;
      if (throttle.shouldLog(progress, Date.now())) this.log.info({ doneBytes: progress.doneBytes, totalBytes: progress.totalBytes }, `base backup: ${progressAmount(progress)}`);
    };
    this.replication.ensurePassfile();
    try {
      await runPgProgram('pg_basebackup', [
        '--pgdata', tmp,
        '--dbname', conninfo(this.replication.replicationConnection(primary, { connect_timeout: 5 })),
        '--no-password',
        '--wal-method', 'stream',
        '--checkpoint', 'fast',
        '--slot', nodeSlotName(this.config.nodeId),
        '--progress',
        ...(maxRate ? ['--max-rate', maxRate] : []),
      ], { timeoutMs: 3_600_000, onStderrLine });
    } finally {
      this.progress = null;
    }
    this.log.info('base backup complete');
    await this.postgres.stop();
    rmSync(this.pgdata, { recursive: true, force: true });
    renameSync(tmp, this.pgdata);
    this.identity.recordOwn('a base backup');
  }

  /**
   * Runs pg_rewind against `primary`, its source session with JIT off ({@link REWIND_SOURCE_OPTIONS}).
   * Its output lines are logged at debug, and the time it took at info.
   *
   * @throws PostgresCommandError when it fails.
   */
  async rewind(primary: GroupMember): Promise<void> {
    this.log.info({ primary: `${primary.host}:${primary.port}` }, 'pg_rewind from the new primary');
    // A standby.signal left over would make the single-user crash recovery that pg_rewind
    // runs first wait for WAL; pg_rewind needs a target that was a primary or shut down cleanly.
    setStandbySignal(this.pgdata, false);
    this.postgres.removeStaleLocks();
    this.replication.ensurePassfile();
    const startedAtMs = performance.now();
    await runPgProgram('pg_rewind', [
      '--target-pgdata', this.pgdata,
      '--source-server', conninfo(this.replication.replicationConnection(primary, { dbname: 'postgres', connect_timeout: 5, options: REWIND_SOURCE_OPTIONS })),
      '--no-sync',
      '--progress',
    ], { timeoutMs: 600_000, onStderrLine: (line) => this.log.debug({ line }, 'pg_rewind') });
    this.log.info({ durationMs: Math.round(performance.now() - startedAtMs) }, `pg_rewind done in ${formatDurationMs(performance.now() - startedAtMs)}`);
  }

  /**
   * pg_rewind from `source`; when that fails, a fresh base backup (the old data directory is
   * replaced only once the backup is complete). Postgres must be stopped.
   *
   * @returns which of the two did it.
   * @throws PostgresCommandError when the base backup fails too.
   */
  async rewindOrClone(source: GroupMember): Promise<'pg_rewind' | 'a base backup'> {
    try {
      await this.rewind(source);
      return 'pg_rewind';
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'pg_rewind failed, falling back to a fresh base backup');
      await this.baseBackup(source);
      return 'a base backup';
    }
  }

  /**
   * An old primary rejoining `primary` as a standby (Postgres stopped, no `standby.signal`):
   * pg_rewind from it, or a fresh base backup when that fails ({@link rewindOrClone}); but after
   * a crash, nothing when its WAL provably ends on the primary's timeline history
   * ({@link rewindNeeded}). Postgres, started as a standby next, then runs crash recovery over
   * its own WAL and follows the primary's timeline. The replication slots it kept for the
   * group's nodes as a primary are dropped once it runs as a standby, whichever way it rejoined
   * (`ReplicationSetup.followAsStandby`).
   *
   * @returns what it took.
   * @throws PostgresCommandError when the base backup fails too.
   */
  async rejoin(primary: GroupMember): Promise<Rejoin> {
    // A clean shutdown: pg_rewind tells itself, at no cost, whether a rewind is needed.
    if (readClusterState(this.pgdata) === 'in production') {
      const startedAtMs = performance.now();
      const reason = await this.rewindNeeded(primary);
      const durationMs = Math.round(performance.now() - startedAtMs);
      if (reason.rewind === false) {
        this.log.info({ durationMs, ...this.lastRejoinCheckMs }, `no rewind needed: ${reason.why} (checked in ${formatDurationMs(durationMs)})`);
        return { how: 'no rewind', upstreamTimeline: reason.upstreamTimeline };
      }
      this.log.info({ durationMs, ...this.lastRejoinCheckMs }, `pg_rewind needed: ${reason.why}`);
    }
    return { how: await this.rewindOrClone(primary) };
  }

  /**
   * After a rejoin without a rewind, once Postgres runs as a standby: waits, at most
   * {@link REJOIN_STREAM_WAIT_MS}, until its WAL receiver streams on the primary's timeline
   * `timeline` and has flushed all the primary has told it of (`pg_stat_wal_receiver`:
   * `flushed_lsn` at `latest_end_lsn`). Its start returns once it is consistent, at the end of
   * its own WAL, before it streams (after a rewind, consistency needs the primary's WAL, so the
   * start returns streaming): without this wait, the keeper's next report would show it behind,
   * and the monitor's catch-up rule would wait a report interval for the one after. Never fails:
   * past the limit, or when Postgres does not answer, the reports that follow tell.
   */
  async waitForStream(timeline: number): Promise<void> {
    const caughtUp = (): Promise<boolean> =>
      this.session.withSession(async (c) => {
        const { rows } = await c.query("select 1 from pg_stat_wal_receiver where status = 'streaming' and received_tli >= $1 and flushed_lsn >= latest_end_lsn", [timeline]);
        return rows.length === 1;
      });
    const startedAtMs = performance.now();
    if (await pollUntil(caughtUp, { timeoutMs: REJOIN_STREAM_WAIT_MS, intervalMs: REJOIN_STREAM_POLL_MS })) {
      this.log.info(`streaming the primary's timeline ${timeline} ${formatDurationMs(performance.now() - startedAtMs)} after the start`);
    } else {
      this.log.warn(`not streaming the primary's timeline ${timeline} ${formatDurationMs(REJOIN_STREAM_WAIT_MS)} after the start: reporting catchingup all the same`);
    }
  }

  /**
   * Must this crashed old primary be rewound before it follows `primary`? Reads where its WAL
   * ends (`readWalEnd`: its control file, pg_waldump) and the primary's timeline history
   * ({@link readUpstreamTimeline}) at once, and applies the rejoin rule (`rewindReason`). Any
   * doubt is a rewind: an end that cannot be told, a primary that does not answer, another
   * database system identifier.
   *
   * @returns whether to rewind, and why (a phrase for the log).
   */
  private async rewindNeeded(primary: GroupMember): Promise<{ rewind: true; why: string } | { rewind: false; why: string; upstreamTimeline: number }> {
    let local: Awaited<ReturnType<typeof readWalEnd>>;
    let upstream: RemoteTimeline;
    try {
      const timed = async <T>(read: Promise<T>, into: 'walEndMs' | 'upstreamMs'): Promise<T> => {
        const value = await read;
        this.lastRejoinCheckMs[into] = Math.round(performance.now() - startedAtMs);
        return value;
      };
      const startedAtMs = performance.now();
      [local, upstream] = await Promise.all([timed(readWalEnd(this.pgdata), 'walEndMs'), timed(this.readUpstreamTimeline(primary), 'upstreamMs')]);
    } catch (err) {
      return { rewind: true, why: `where this node's WAL ends against the primary's timeline could not be read (${(err as Error).message.split('\n')[0]})` };
    }
    if ('unknown' in local) return { rewind: true, why: `where this node's WAL ends cannot be told: ${local.unknown}` };
    if (local.systemId !== upstream.systemId) return { rewind: true, why: `the primary's database system identifier ${upstream.systemId} is not this node's ${local.systemId}` };
    const reason = rewindReason(local, upstream);
    if (reason !== undefined) return { rewind: true, why: reason };
    const fork = upstream.history.find((e) => e.timeline === local.timeline)!;
    return {
      rewind: false,
      upstreamTimeline: upstream.timeline,
      why: `this node's WAL on timeline ${local.timeline} ends with a record at ${formatLsn(local.lastRecordLsn)} (then: ${local.stop}), before ${formatLsn(fork.switchLsn)}, where the primary's timeline ${upstream.timeline} forked off it`,
    };
  }

  /**
   * The current timeline of `peer` and its history, read with psql over a replication
   * connection as the replication role, with the parameters pg_rewind uses
   * (`ReplicationSetup.replicationConnection`: passfile, TLS) and a 2 s connect timeout.
   *
   * @throws PostgresCommandError when `peer` does not answer or refuses the connection.
   */
  async readUpstreamTimeline(peer: GroupMember): Promise<RemoteTimeline> {
    this.replication.ensurePassfile();
    return readUpstreamTimeline(conninfo(this.replication.replicationConnection(peer, { replication: 'true', connect_timeout: 2, application_name: 'pgha_timeline_check' })));
  }

  /**
   * For a standby that follows `primary`: rewinds it when the last timeline check found it
   * diverged ({@link repairDivergedStandby}, once a report has carried the problem);
   * otherwise starts a comparison of timelines when one is due (`DivergenceWatch.check`; it
   * costs nothing while the standby streams, and the primary's side is read in the background,
   * so a primary that died silently does not hold the tick for its connect timeout).
   *
   * @throws PostgresCommandError when the repair's base backup fails too; PghaError
   *   `PGHA_ERR_PGDATA` when the data directory is not the node's.
   */
  async repairDivergence(primary: GroupMember): Promise<void> {
    const found = this.divergence.takeDivergence(Date.now(), primary.nodeId);
    if (found) return this.repairDivergedStandby(primary, found);
    await this.divergence.check(Date.now(), primary, {
      local: () => this.session.withSession(readLocalTimeline),
      upstream: () => this.readUpstreamTimeline(primary),
    });
  }

  /**
   * Rewinds a standby whose WAL diverged from the primary's timeline: stop Postgres (a fast
   * shutdown leaves a standby "shut down in recovery", which pg_rewind accepts), pg_rewind from
   * the primary, or a fresh base backup when that fails; the caller then follows the primary.
   *
   * Why no acknowledged write is lost. The node is a standby in the monitor's eyes (goal
   * `catchingup`, `secondary` or `join_secondary`) and `primary` is the node the monitor
   * promoted. The monitor promotes only a node at or past the last LSN synchronous replication
   * acknowledged (its election waits for enough synchronous standbys to report and picks, or
   * fast-forwards, the most advanced), and only when the old primary ran with synchronous
   * replication on (`primary`: failovers and switchovers alike; never from `wait_primary` or
   * `single`, whose commits need no standby). Every commit acknowledged on the old
   * timeline is therefore at or before the fork point, on `primary`: the WAL this node holds
   * past it (the divergence rule proves, from `primary`'s own timeline history, that it exists)
   * was written by the old primary but never acknowledged to a client — a commit waiting for a
   * synchronous standby that never confirmed it, or WAL streamed to this (asynchronous or silent)
   * standby ahead of the synchronous ones. Throwing it away loses nothing a client saw
   * committed, and keeping it would keep the node from ever following again. A standby that is
   * only behind, or whose primary does not answer, is never found diverged
   * (`timelineDivergence`, `DivergenceWatch.check`).
   *
   * Source: Patroni rewinds a replica whose timeline diverged from the leader's the same way
   * (`Rewind.rewind_or_reinitialize_needed_and_possible`); pg_auto_failover has no counterpart.
   */
  private async repairDivergedStandby(primary: GroupMember, divergence: Divergence): Promise<void> {
    // Never rewound nor replaced: a data directory that is not the node's.
    this.identity.assertOwn();
    this.log.warn(`rewinding the diverged standby from the primary's timeline ${divergence.upstreamTimeline}: stopping Postgres`);
    await this.postgres.stop();
    const how = await this.rewindOrClone(primary);
    this.log.info(`diverged standby repaired with ${how}: following the primary again`);
  }
}
