/**
 * The life of the node's Postgres: initdb, start, stop, self-fencing, restart, reload,
 * promotion, and what its server log says when a start fails. It owns the fence (Postgres
 * stays stopped while it holds) and the last start failure; it starts and initialises only the
 * node's own data directory (`DataDirectoryIdentity`).
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, rmSync, statfsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { PghaError, formatLsn, type Lsn } from '@pgha/shared/base';
import { PARAMETERS_FILE, ensureOwnedDir, ensurePghaDir, initdb, isEmptyOrMissing, isPgData, pghaDirFor, pgCtlRestart, startPostgres, pgCtlStop, pollUntil, postmasterPid, readClusterState, readShutdownCheckpointLsn, stopWrites, runPgProgram, writeOwnedFileIfChanged } from '@pgha/postgres';
import { keeperPaths } from '../keeper-config.js';
import { diskProblem, lastServerFailure } from '../local-problem.js';
import type { DataDirectoryIdentity } from './data-directory-identity.js';
import type { LocalSession } from './local-session.js';

/** How often {@link PostgresLifecycle.promote} asks whether the stream has ended and the promotion has (ms). */
const PROMOTE_POLL_INTERVAL_MS = 5;
/** How long a promotion waits for the WAL receiver to stop streaming, at most (ms; see `PostgresLifecycle.waitForStreamEnd`). */
const STREAM_END_WAIT_MS = 2_000;
/**
 * Then how long it waits, at most, for the startup process to sleep between two tries to fetch
 * WAL (ms): longer than `wal_retrieve_retry_interval` (500 ms, docs/postgresql-parameters.md).
 */
const RETRY_SLEEP_WAIT_MS = 1_000;

/** A node a standby may stream from, as `pg_stat_wal_receiver` names it (`sender_host`, `sender_port`). */
export interface StreamSender {
  host: string;
  port: number;
}

/** See the module comment. One per node (`NodeControl.postgres`). */
export class PostgresLifecycle {
  /**
   * Set when the keeper fenced itself (network partition): Postgres stays stopped, whatever
   * the loop was doing, until a report reaches the monitor again ({@link clearFence}).
   */
  private fencedAtMs: number | undefined;

  /** Why the last start of Postgres failed (its server log's last PANIC/FATAL); cleared by a start that works. */
  private lastStartFailure: string | undefined;
  /**
   * The content of `pgha.parameters.conf` Postgres refused to start with, put back to the one it
   * last started with ({@link rollBackParameters}); undefined when none. While the monitor's
   * parameters render to this, the keeper does not write them again (`ReplicationSetup`).
   */
  refusedParameters: string | undefined;
  /** Why Postgres refused {@link refusedParameters} (its server log's FATAL line). */
  private refusedParametersReason: string | undefined;

  constructor(
    readonly pgdata: string,
    private readonly session: LocalSession,
    private readonly identity: DataDirectoryIdentity,
    private readonly log: Logger,
  ) {}

  /** When the node fenced itself (`Date.now()`, ms), while the fence holds; undefined otherwise. */
  get fencedSinceMs(): number | undefined {
    return this.fencedAtMs;
  }

  /** Directory of the Postgres server log, owned by the Postgres OS user. */
  get pgLogFile(): string {
    const dir = join(ensurePghaDir(keeperPaths(this.pgdata).dir), 'log');
    ensureOwnedDir(dir);
    return join(dir, 'postgres.log');
  }

  /** The socket directory, created for the Postgres OS user when missing. */
  socketDir(): string {
    ensurePghaDir(keeperPaths(this.pgdata).dir);
    ensureOwnedDir(this.session.local.socketDir);
    return this.session.local.socketDir;
  }

  /** Is the postmaster running. */
  isRunning(): boolean {
    return postmasterPid(this.pgdata) !== undefined;
  }

  /** True when the data directory holds Postgres data. */
  hasData(): boolean {
    return isPgData(this.pgdata);
  }

  /** True when `standby.signal` exists. */
  hasStandbySignal(): boolean {
    return existsSync(join(this.pgdata, 'standby.signal'));
  }

  /**
   * Starts Postgres if it is not running, in the node's own data directory only.
   *
   * @throws PghaError `PGHA_ERR_CONFLICT` while fenced; `PGHA_ERR_PGDATA` when the data
   *   directory is not the node's (`DataDirectoryIdentity.assertOwn`); PostgresCommandError when pg_ctl fails.
   */
  async start(): Promise<void> {
    if (this.isRunning()) return;
    if (this.fencedAtMs !== undefined) {
      throw new PghaError('PGHA_ERR_CONFLICT', 'the node fenced itself (network partition): Postgres stays stopped until the monitor answers');
    }
    this.identity.assertOwn();
    this.log.info('starting Postgres');
    this.socketDir();
    this.removeStaleLocks();
    try {
      await startPostgres(this.pgdata, this.pgLogFile);
      this.lastStartFailure = undefined;
      this.rememberStartedParameters();
    } catch (err) {
      this.lastStartFailure = lastServerFailure(this.serverLogTail()) ?? (err as Error).message.split('\n')[0];
      if (await this.rollBackParameters()) return;
      throw err;
    }
  }

  /**
   * Removes the lock files of a postmaster that is not running: one killed a moment ago may
   * linger as a zombie until it is reaped (an orphan's reaper, PID 1, can take a second or more),
   * and Postgres then refuses its lock file, a single-user postgres too (pg_rewind's crash
   * recovery). Does nothing while the postmaster runs.
   */
  removeStaleLocks(): void {
    if (this.isRunning()) return;
    rmSync(join(this.pgdata, 'postmaster.pid'), { force: true });
    rmSync(join(this.session.local.socketDir, `.s.PGSQL.${this.session.local.port}.lock`), { force: true });
  }

  /** `pgha.parameters.conf` in the data directory, and the copy of the one Postgres last started with, beside it in `<pgdata>.pgha/`. */
  private get parametersFiles(): { current: string; started: string } {
    return { current: join(this.pgdata, PARAMETERS_FILE), started: join(pghaDirFor(this.pgdata), 'parameters-started.conf') };
  }

  /**
   * Keeps a copy of the `pgha.parameters.conf` Postgres just started with (none: nothing to
   * keep). Never throws: Postgres runs whatever happens to the copy (a full disk, say); without
   * a copy, a later refused start is reported without a rollback.
   */
  private rememberStartedParameters(): void {
    const { current, started } = this.parametersFiles;
    try {
      const text = readIfExists(current);
      if (text !== undefined) writeOwnedFileIfChanged(started, text);
    } catch (err) {
      this.log.warn(`could not keep a copy of the Postgres parameters it started with (${(err as Error).message}): a value Postgres refuses at its next start will not be rolled back`);
    }
  }

  /**
   * After Postgres failed to start: when `pgha.parameters.conf` differs from the one it last
   * started with on this node, puts that one back and starts again, so that a value Postgres
   * refuses at start (e.g. `shared_buffers` beyond the machine's memory) stops the first node
   * restarted with it and no other: the node runs as before, its keeper reports why
   * ({@link parametersProblem}), and writes the refused values no more until the monitor's change.
   * Issue 16: "caught on the first node restarted and rolled back there".
   *
   * @returns true when Postgres runs again with the parameters put back.
   */
  private async rollBackParameters(): Promise<boolean> {
    const { current, started } = this.parametersFiles;
    const refused = readIfExists(current);
    const good = readIfExists(started);
    if (refused === undefined || good === undefined || refused === good) return false;
    const reason = this.lastStartFailure ?? 'no reason in its server log';
    this.log.error(`Postgres does not start with the parameters in ${PARAMETERS_FILE} (${reason}): putting back the ones it last started with on this node`);
    writeOwnedFileIfChanged(current, good);
    this.removeStaleLocks();
    try {
      await startPostgres(this.pgdata, this.pgLogFile);
    } catch {
      return false;
    }
    this.refusedParameters = refused;
    this.refusedParametersReason = reason;
    this.lastStartFailure = undefined;
    return true;
  }

  /**
   * Forgets the parameters Postgres refused, once the monitor's differ from them (the operator
   * changed or reset the value).
   */
  forgetRefusedParameters(): void {
    if (this.refusedParameters === undefined) return;
    this.log.info(`the formation's Postgres parameters changed since Postgres refused them: writing them to ${PARAMETERS_FILE} again`);
    this.refusedParameters = undefined;
    this.refusedParametersReason = undefined;
  }

  /**
   * While this node runs with the parameters it last started with because Postgres refused the
   * new ones: that sentence, with the reason and what to do; undefined otherwise.
   */
  parametersProblem(): string | undefined {
    if (this.refusedParameters === undefined) return undefined;
    return `Postgres refused to start with the new parameters (${this.refusedParametersReason}): this node runs with the ones it last started with; change the value (pgha set postgresql NAME VALUE, or --reset)`;
  }

  /** The last PANIC or FATAL line of the server log's last 8 kB (see `lastServerFailure`), if any. */
  lastServerLogFailure(): string | undefined {
    return lastServerFailure(this.serverLogTail());
  }

  /** The last `bytes` of the Postgres server log ('' when it cannot be read). */
  private serverLogTail(bytes = 8192): string {
    try {
      const file = this.pgLogFile;
      const size = statSync(file).size;
      const fd = openSync(file, 'r');
      try {
        const buf = Buffer.alloc(Math.min(bytes, size));
        readSync(fd, buf, 0, buf.length, size - buf.length);
        return buf.toString('utf8');
      } finally {
        closeSync(fd);
      }
    } catch {
      return '';
    }
  }

  /**
   * `Postgres does not start: <reason from its server log>` while Postgres is not running after
   * a failed start; undefined otherwise.
   */
  startProblem(): string | undefined {
    return this.lastStartFailure && !this.isRunning() ? `Postgres does not start: ${this.lastStartFailure}` : undefined;
  }

  /** The data directory's file system nearly full (see `diskProblem`); undefined otherwise. */
  diskProblem(): string | undefined {
    try {
      const st = statfsSync(existsSync(this.pgdata) ? this.pgdata : dirname(this.pgdata));
      return diskProblem(this.pgdata, st.bavail * st.bsize, st.blocks * st.bsize);
    } catch {
      // no file system to look at: nothing to say about it
      return undefined;
    }
  }

  /**
   * Restarts Postgres when it runs but does not answer on pgha's socket: an adopted cluster
   * started with its own port, socket directory and settings.
   *
   * @throws PghaError `PGHA_ERR_PGDATA` when the data directory is not the node's (`DataDirectoryIdentity.assertOwn`).
   */
  async restartIfUnreachable(): Promise<void> {
    if (!this.isRunning() || (await this.session.readFacts())) return;
    this.identity.assertOwn();
    this.log.info('restarting Postgres to apply the settings pgha manages (socket, port, replication)');
    this.socketDir();
    await pgCtlRestart(this.pgdata, this.pgLogFile);
    this.rememberStartedParameters();
  }

  /**
   * Restarts Postgres on the operator's request (`pgha perform restart`): `pg_ctl restart -m
   * fast`, then waits until its replication is back as it was (at most `streamWaitMs`): on a
   * standby its WAL receiver streams again; on a primary as many standbys stream from it as
   * before. The monitor excuses the node while the restart is under way
   * (`restartingOnRequest`), so the keeper reports it done only once nothing is missing.
   *
   * @returns whether replication streamed again within `streamWaitMs`.
   * @throws PghaError `PGHA_ERR_PGDATA` when the data directory is not the node's; PostgresCommandError when pg_ctl fails.
   */
  async restartOnRequest(streamWaitMs: number): Promise<boolean> {
    this.identity.assertOwn();
    const streamingBefore = await this.streamingStandbys().catch(() => 0);
    await this.session.closeSession();
    this.log.info('restarting Postgres (asked for by the operator: pgha perform restart)');
    this.socketDir();
    await pgCtlRestart(this.pgdata, this.pgLogFile);
    this.rememberStartedParameters();
    const back = await pollUntil(async () => {
      const facts = await this.session.readFacts();
      if (!facts) return false;
      return facts.isInRecovery ? facts.upstreamStreaming : (await this.streamingStandbys()) >= streamingBefore;
    }, { timeoutMs: streamWaitMs, intervalMs: 50 });
    return back === true;
  }

  /** How many standbys stream from this Postgres (`pg_stat_replication`; 0 on a standby). */
  private async streamingStandbys(): Promise<number> {
    const { rows } = await this.session.withSession((c) => c.query<{ n: number }>("select count(*)::int as n from pg_stat_replication where state = 'streaming'"));
    return rows[0]?.n ?? 0;
  }

  /**
   * Before a planned stop of a primary (a switchover's `draining`, `prepare_maintenance`): a
   * CHECKPOINT while Postgres still takes writes, so that the shutdown checkpoint of the fast
   * shutdown that follows, written while it refuses them, has little left to write (Patroni
   * runs one before it stops a primary, for the same reason). Skipped on a standby or a stopped
   * Postgres; a checkpoint that fails or takes longer than the session's query timeout (2 s)
   * is logged and the stop goes on: the shutdown checkpoint does the work then.
   */
  async checkpointBeforeStop(): Promise<void> {
    // Not once the shutdown has begun (a kept `draining`): the session would be refused.
    if (!this.isRunning() || readClusterState(this.pgdata) !== 'in production') return;
    try {
      await this.session.withSession(async (c) => {
        const { rows } = await c.query<{ r: boolean }>('select pg_is_in_recovery() as r');
        if (!rows[0]!.r) await c.query('checkpoint');
      });
    } catch (err) {
      this.log.warn(`the checkpoint before stopping Postgres failed (${(err as Error).message}); the shutdown checkpoint does its work`);
    }
  }

  /**
   * A planned stop of a primary: starts the fast shutdown and returns once Postgres takes no
   * more writes and its shutdown checkpoint is written (`stopWrites`: every session ended, the
   * control file at `shut down`), while the last WAL to the standbys and the exit go on (a
   * later {@link stop} waits for them). The report that says the stop is reached carries where
   * the checkpoint starts ({@link shutdownCheckpointLsn}), which a switchover's candidate must
   * have before it is promoted. When there is none (Postgres crashed, or was stopped
   * immediately, or the checkpoint took longer than a minute) the stop is reached all the same,
   * and why is logged: the monitor then elects a standby as after a failure.
   */
  async stopWrites(): Promise<void> {
    await this.session.closeSession();
    const running = this.isRunning();
    const before = readClusterState(this.pgdata);
    if (running && before === 'in production') this.log.info('stopping Postgres: writes first');
    const stopped = await stopWrites(this.pgdata);
    // Once per stop: a kept `draining` runs this again while the walsenders finish.
    if (stopped.shutdownCheckpointLsn !== undefined && running && before !== 'shut down') this.log.info({ shutdownCheckpointLsn: formatLsn(stopped.shutdownCheckpointLsn) }, `Postgres takes no more writes: its shutdown checkpoint is at ${formatLsn(stopped.shutdownCheckpointLsn)}`);
    if (stopped.why !== undefined && running) this.log.warn(`Postgres stopped for writes without a shutdown checkpoint to report (${stopped.why}); the monitor falls back to an election of the standby to promote`);
  }

  /**
   * Where the shutdown checkpoint of a cleanly stopped primary starts, from its control file
   * once that says `shut down` (`readShutdownCheckpointLsn`: read again only when it changed),
   * also while the postmaster still runs; undefined while Postgres runs or shuts down, after a
   * crash, and on a standby. `NodeReport.shutdownCheckpointLsn`.
   */
  shutdownCheckpointLsn(): Lsn | undefined {
    return readShutdownCheckpointLsn(this.pgdata);
  }

  /** Stops Postgres (fast, then immediate; see `pgCtlStop`) if it runs. */
  async stop(): Promise<void> {
    await this.session.closeSession();
    if (!this.isRunning()) return;
    this.log.info('stopping Postgres');
    await pgCtlStop(this.pgdata);
  }

  /**
   * Self-fencing: immediate shutdown of Postgres (SIGQUIT to the postmaster, as `pg_ctl stop
   * -m immediate` sends), then waits until the postmaster has exited. Every backend gets
   * SIGQUIT and exits without answering, so no commit is acknowledged after the signal; no
   * shutdown checkpoint and no wait for walsenders to drain to unreachable standbys (what makes
   * a fast shutdown hang on a cut network). The data directory needs crash recovery, which
   * pg_rewind runs itself when the node rejoins. Marks the node fenced first, so that nothing
   * starts Postgres again until {@link clearFence}.
   *
   * @returns the time the signal was sent (`Date.now()`, ms), or undefined when Postgres was not running.
   * @throws PostgresCommandError when the postmaster cannot be signalled and `pg_ctl stop -m immediate` fails.
   */
  async fence(): Promise<number | undefined> {
    this.fencedAtMs ??= Date.now();
    const pid = postmasterPid(this.pgdata);
    if (pid === undefined) return undefined;
    const signalledAtMs = Date.now();
    try {
      process.kill(pid, 'SIGQUIT');
    } catch {
      await runPgProgram('pg_ctl', ['stop', '--pgdata', this.pgdata, '--mode', 'immediate', '--wait', '--timeout', '30', '--silent']);
    }
    await pollUntil(() => postmasterPid(this.pgdata) === undefined, { timeoutMs: 30_000, intervalMs: 10 });
    await this.session.closeSession();
    return signalledAtMs;
  }

  /** Ends the fence: the monitor answered, its goal decides from now on. */
  clearFence(): void {
    this.fencedAtMs = undefined;
  }

  /** Reloads the configuration of a running Postgres. */
  async reload(): Promise<void> {
    await this.session.withSession((c) => c.query('select pg_reload_conf()'));
  }

  /** Runs CHECKPOINT (after promotion, so that pg_control shows the new timeline). */
  async checkpoint(): Promise<void> {
    await this.session.withSession((c) => c.query('checkpoint'));
  }

  /**
   * Promotes a standby and waits until it has left recovery (no-op when already a primary);
   * with `streamEndFrom`, first waits for the stream from those nodes to end ({@link waitForStreamEnd}):
   * `pg_promote(wait => false)` on the keeper's session, then `pg_is_in_recovery()` every
   * {@link PROMOTE_POLL_INTERVAL_MS}. Postgres takes writes from the end of recovery on, whatever
   * the keeper does; what this saves is the start of the promotion (no `pg_ctl` process to
   * spawn, 10–25 ms here) and its end (`pg_ctl promote --wait` and `pg_promote(wait => true)`
   * both look every 100 ms). Source: PostgreSQL's `pg_promote()`, pg_auto_failover's
   * `pg_ctl_promote`.
   *
   * @throws PghaError `PGHA_ERR_TIMEOUT` when it is still in recovery after `timeoutMs`; the
   *   session's errors (Postgres not answering).
   */
  async promote(options: { streamEndFrom?: readonly StreamSender[]; timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    await this.start();
    const inRecovery = (): Promise<boolean> => this.session.withSession(async (c) => (await c.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]!.r);
    if (!(await inRecovery())) return;
    if (options.streamEndFrom?.length) await this.waitForStreamEnd(options.streamEndFrom);
    this.log.info('promoting Postgres');
    await this.session.withSession((c) => c.query('select pg_promote(wait => false)'));
    if (await pollUntil(async () => !(await inRecovery()), { timeoutMs, intervalMs: PROMOTE_POLL_INTERVAL_MS })) return;
    throw new PghaError('PGHA_ERR_TIMEOUT', `Postgres is still in recovery ${timeoutMs} ms after pg_promote()`, { hint: "see the node's Postgres log (<pgdata>.pgha/log/postgres.log)" });
  }

  /**
   * Before a promotion: waits, at most {@link STREAM_END_WAIT_MS}, until the WAL receiver no
   * longer streams from one of `senders` (the nodes whose planned stop, `draining` or
   * `prepare_maintenance`, is under way). In a switchover the old primary is promoted away from as soon as it takes no
   * more writes (`stopWrites`), while its walsender still sends the last of its WAL, the
   * shutdown checkpoint included, and waits for this standby to flush it before it ends the
   * stream: promoting after that end loses nothing the old primary wrote, and its WAL stays a
   * prefix of the new timeline. Commits acknowledged under synchronous replication are here
   * already (with another standby in the group, the monitor promotes only a candidate that
   * reported WAL at or past the old primary's shutdown checkpoint, `switchoverProof`; with
   * none, this standby was the synchronous one); past the limit the promotion goes on (a
   * walsender that hangs holds nothing up). A
   * failover finds the stream ended already and does not wait; nor does a candidate that
   * streams from another standby (`fast_forward`). Then, at most {@link RETRY_SLEEP_WAIT_MS},
   * until the startup process sleeps between two tries to fetch WAL, where a promotion wakes it
   * at once (see the comment in the body).
   */
  private async waitForStreamEnd(senders: readonly StreamSender[]): Promise<void> {
    const streaming = (): Promise<boolean> =>
      this.session.withSession(async (c) => {
        const { rows } = await c.query<{ host: string | null; port: number | null }>("select sender_host as host, sender_port as port from pg_stat_wal_receiver where status = 'streaming'");
        return rows.some((r) => senders.some((s) => s.host === r.host && s.port === r.port));
      });
    if (await streaming()) {
      const ended = await pollUntil(async () => !(await streaming()), { timeoutMs: STREAM_END_WAIT_MS, intervalMs: PROMOTE_POLL_INTERVAL_MS });
      if (!ended) {
        this.log.warn(`the WAL receiver still streams ${STREAM_END_WAIT_MS} ms after the promotion was asked for: promoting all the same (the monitor found every acknowledged commit here)`);
        return;
      }
    }
    // A promotion asked for while the startup process still waits on a stream that has just
    // ended is acted on only after wal_retrieve_retry_interval (500 ms; PostgreSQL 15's
    // WaitForWALToBecomeAvailable sleeps it out once it notices the trigger there); one asked
    // for while it sleeps between two tries to fetch WAL wakes it, and it promotes at once.
    // Measured: 480 ms lost in one switchover out of five without this wait.
    const sleeping = (): Promise<boolean> =>
      this.session.withSession(async (c) => (await c.query("select 1 from pg_stat_activity where backend_type = 'startup' and wait_event = 'RecoveryRetrieveRetryInterval'")).rowCount === 1);
    await pollUntil(sleeping, { timeoutMs: RETRY_SLEEP_WAIT_MS, intervalMs: PROMOTE_POLL_INTERVAL_MS });
  }

  /** Runs initdb when the data directory is empty or missing, and records its identifier in keeper.json. */
  async initdbIfNeeded(): Promise<void> {
    if (isPgData(this.pgdata)) return;
    if (!isEmptyOrMissing(this.pgdata)) {
      throw new PghaError('PGHA_ERR_PGDATA', `${this.pgdata} is not empty and is not a Postgres data directory`, {
        hint: 'point --pgdata at an empty or new directory',
      });
    }
    ensureOwnedDir(this.pgdata);
    this.log.info({ pgdata: this.pgdata }, 'initdb');
    await initdb(this.pgdata);
    this.identity.recordOwn('initdb');
  }

  /** Removes the data directory and pgha's files for it (`pgha drop node --destroy`). */
  destroyData(): void {
    this.log.warn({ pgdata: this.pgdata }, 'removing the data directory: the node was dropped with --destroy');
    rmSync(this.pgdata, { recursive: true, force: true });
    rmSync(keeperPaths(this.pgdata).dir, { recursive: true, force: true });
  }
}

/** The text of `path`, or undefined when it cannot be read. */
function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
