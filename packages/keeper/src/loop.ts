/**
 * The keeper loop: read local facts → report to the monitor → receive the goal → run the one
 * transition that reaches it → persist the state file → report again. Goal changes arrive by
 * long-poll, so the keeper acts on them at once: at rest the report itself waits for them
 * (`heldTick`: one request per report cycle), else a separate goal long-poll does. A long
 * transition (a base backup) runs while a heartbeat keeps reporting.
 */
import type { Logger } from 'pino';
import {
  AuthError,
  DEFAULT_FORMATION_SETTINGS,
  MonitorUnavailableError,
  PghaError,
  ValidationError,
  STREAMING_STATES,
  WRITABLE_STATES,
  keeperSettingsOf,
  ZERO_LSN,
  formatBytes,
  formatDurationMs,
  formatLsn,
  isNodeState,
  type KeeperSettings,
  type NodeGoal,
  type NodeReport,
  type NodeState,
  type SelfFenceRecord,
  type SelfFenceReport,
} from '@pgha/shared/base';
import { fenceableState, monitorQuietForMs, type PartitionFacts } from './fsm/partition-rule.js';
import { ensureState, reachGoal } from './fsm/reach-goal.js';
import type { KeeperReloadPlan } from './config-reload.js';
import { STUCK_GRACE_MS, StuckClock, failingStepProblem, notStreamingProblem, problemSentence } from './local-problem.js';
import type { PostgresFacts } from './local-facts.js';
import { keeperMonitorUrls, loadKeeperConfig, loadKeeperState, saveKeeperState, type KeeperConfig, type KeeperState } from './keeper-config.js';
import { MonitorClient, type GoalAnswer, type MonitorChange, type ReportAnswer, type ReportRecorded } from '@pgha/client';
import { goalRevisionVerdict } from './fsm/goal-revision-rule.js';
import { delay } from '@pgha/postgres';
import { NodeControl } from './node-control.js';
import { PartitionWatchdog } from './partition-watchdog.js';
import { RoleAnnouncer } from './role-announcer.js';
import { reloadKeeperConfig } from './reload-keeper-config.js';
import { NEWER_REPORT_FIELDS, refusedNewerField, type NewerReportField } from './newer-report-fields.js';
import type { KeeperViewSource, NodeReading } from './keeper-view.js';

/** What one tick did, in one sentence (logged at info when it changes). */
export interface TickOutcome {
  summary: string;
  /** A transition completed: run the next tick at once. */
  transitioned: boolean;
  /** Something failed: wait before retrying. */
  failed: boolean;
  /** A changed goal a held report brought ({@link Keeper.heldTick}): the next tick acts on it at once. */
  next?: NodeGoal;
  /** A held report's wait was ended by the loss of the local Postgres session: the next tick reports at once. */
  woken?: boolean;
}

/** Options of {@link Keeper}. */
export interface KeeperOptions {
  /** Overrides the formation's `keeperReportIntervalMs` (ms). */
  reportIntervalMs?: number;
  retryDelayMs?: number;
  /**
   * Run the role-change hook of keeper.json (default true); `keeper create` runs without it,
   * and `keeper run` announces the role it finds.
   */
  roleChangeHooks?: boolean;
}

/** What the keeper tells its metrics (see `http/keeper-metrics.ts`). */
export interface KeeperObserver {
  /** A report to the monitor ended: answered (`ok`) or failed, after `durationMs`. */
  reportFinished(durationMs: number, ok: boolean): void;
}

/**
 * How long a restart on request waits for replication to stream again before it reports the
 * restart done anyway (ms): well within the monitor's `RESTART_ON_REQUEST_GRACE_MS`.
 */
const RESTART_STREAM_WAIT_MS = 15_000;

/** How often a catching-up standby logs its lag behind the primary, at most (ms). */
const CATCHUP_LOG_INTERVAL_MS = 1_000;

/** One node's keeper. */
export class Keeper implements KeeperViewSource {
  /** The configuration it runs with (a reload replaces its reloadable fields). */
  config: KeeperConfig;
  readonly node: NodeControl;
  /** The monitors' client (a new one when a reload changes the monitors or their CA). */
  client: MonitorClient;
  private readonly log: Logger;
  /** What {@link state} reads and writes. */
  private savedState!: KeeperState;
  /** What {@link lastGoal} reads and writes. */
  private heardGoal: NodeGoal | undefined;
  private lastLsn = ZERO_LSN;
  private lastTimeline = 0;
  private inProgress: string | null = null;
  private lastSummary = '';
  /** The last catch-up lag logged (see {@link logCatchupLag}). */
  private lastLagLog: { atMs: number; lagBytes: number } | undefined;
  private readonly reportIntervalOverrideMs: number | undefined;
  private readonly retryDelayMs: number;
  /** The formation's settings from the monitor's last answer (defaults until then). */
  private settings: KeeperSettings = keeperSettingsOf(DEFAULT_FORMATION_SETTINGS);
  /**
   * Send time of the last report that a monitor of the list answered with a current goal
   * (`Date.now()`, ms): the monitor counts as lost only when none answers. The keeper's start
   * until the first answer, so that a keeper started during a partition fences too.
   */
  private lastMonitorContactMs = Date.now();
  /** The monitors whose last answer was a goal older than the one applied (each logged once until it answers a current one). */
  private readonly staleSources = new Set<string>();
  private readonly watchdog: PartitionWatchdog;
  /** Runs the node's role-change hook when the role of the reached state changes. */
  private readonly roles: RoleAnnouncer;
  /** Told about each report to the monitor (the keeper's metrics; see `http/start-keeper-http.ts`). */
  observer: KeeperObserver | undefined;
  /** A problem of the keeper itself to report with the node's (its HTTP server not listening). */
  extraProblem: (() => string | undefined) | undefined;
  private reading: NodeReading = { facts: undefined, atMs: 0, postgresRunning: false, factsProblem: undefined, problem: null };
  /** The problems last logged (see {@link noteProblems}). */
  private loggedProblems = new Set<string>();
  /** Since when the WAL receiver has not streamed while it should (see {@link streamingProblem}). */
  private readonly notStreaming = new StuckClock();
  /** Since when the same step (`transition from X to Y`, `keeping X`) has failed on every try. */
  private readonly failingStep = new StuckClock();
  /** The last error of {@link failingStep}. */
  private failingStepMessage = '';
  private transitionAtMs: number;
  /** The last answered report said its monitor holds reports (`x-pgha-report-holds`, see {@link heldTick}). */
  private monitorHolds = false;
  /** The report fields the monitor refused as unknown (an older monitor): left out of reports from then on. */
  private readonly monitorRefuses = new Set<NewerReportField>();
  /** The last error of {@link applyParameters}, logged once. */
  private parametersFailure: string | undefined;

  constructor(config: KeeperConfig, log: Logger, options: KeeperOptions = {}) {
    this.config = config;
    this.log = log;
    this.node = new NodeControl(config, log);
    this.client = this.monitorClient(config);
    this.watchdog = new PartitionWatchdog(this, this.node, log);
    this.state = loadKeeperState(config);
    this.reportIntervalOverrideMs = options.reportIntervalMs;
    this.retryDelayMs = options.retryDelayMs ?? 300;
    this.roles = new RoleAnnouncer(config, log, options.roleChangeHooks !== false, () => this.readTimeline());
    this.transitionAtMs = Date.parse(this.state.updatedAt) || Date.now();
  }

  /** The node's timeline, read afresh when Postgres answers; the last one read otherwise (for the role-change hook). */
  private async readTimeline(): Promise<number> {
    const facts = await this.node.session.readFacts().catch(() => undefined);
    if (facts) this.lastTimeline = facts.timeline;
    return this.lastTimeline;
  }

  /**
   * Re-reads keeper.json (SIGHUP, see `reloadKeeperConfig`) and runs with its reloadable fields
   * (the role-change hook and its timeout, the monitors and their CA, the node token). Never throws.
   *
   * @returns the plan applied, or undefined when the file could not be read.
   */
  reloadConfig(): KeeperReloadPlan | undefined {
    const plan = reloadKeeperConfig(this.config, this.log);
    if (!plan) return undefined;
    this.config = plan.next;
    this.roles.configure(plan.next);
    const changed = new Set(plan.applied.map((c) => c.field));
    const monitorsChanged = changed.has('monitorUrls') || changed.has('monitorUrl') || changed.has('monitorCaCertificate');
    if (monitorsChanged || changed.has('nodeToken')) {
      const old = this.client;
      this.client = this.monitorClient(plan.next);
      if (changed.has('nodeToken')) this.log.info('reload: reports with the new node token from now on');
      if (monitorsChanged) this.log.info({ monitors: this.client.urls }, `reload: talks to the monitors ${this.client.urls.join(', ')} from now on`);
      void old.close();
    }
    return plan;
  }

  /**
   * After the monitor refused the node token (401): takes the one in keeper.json when it is not
   * the one the keeper runs with (`pgha keeper rotate-token` replaced it, and its SIGHUP has not
   * come yet), so that a rotation costs no report. Never throws.
   *
   * @returns whether the keeper now runs with another token.
   */
  private takeRotatedToken(): boolean {
    let file: KeeperConfig;
    try {
      file = loadKeeperConfig(this.config.pgdata);
    } catch {
      return false;
    }
    if (file.nodeToken === this.config.nodeToken) return false;
    this.log.info('the monitor refused the node token and keeper.json holds another one: reloading keeper.json');
    return this.reloadConfig()?.applied.some((c) => c.field === 'nodeToken') ?? false;
  }

  /** A client of the monitors of `config`, with the node's token and the monitors' CA. */
  private monitorClient(config: KeeperConfig): MonitorClient {
    return new MonitorClient(keeperMonitorUrls(config), { token: config.nodeToken, ca: config.monitorCaCertificate }, { onMonitorChange: (c) => this.noteMonitorChange(c) });
  }

  /** `current->goal` while a transition runs; null otherwise. */
  get transitionInProgress(): string | null {
    return this.inProgress;
  }

  /** What the last report read of the node. */
  get lastReading(): NodeReading {
    return this.reading;
  }

  /** When the node fenced itself, while the fence holds (`PostgresLifecycle.fencedSinceMs`). */
  get fencedSinceMs(): number | undefined {
    return this.node.postgres.fencedSinceMs;
  }

  /** When the keeper last reached a new state (`Date.now()`, ms; from `state.json` at start). */
  get lastTransitionAtMs(): number {
    return this.transitionAtMs;
  }

  /** Records a newly reached state (a self-fence not yet recorded by the monitor, the goal revision applied and the restart done stay in the file). */
  private reached(state: Omit<KeeperState, 'version' | 'updatedAt'>): KeeperState {
    const kept = {
      ...(this.state.selfFence ? { selfFence: this.state.selfFence } : {}),
      ...(this.state.goalRevision !== undefined ? { goalRevision: this.state.goalRevision } : {}),
      ...(this.state.restartDone !== undefined ? { restartDone: this.state.restartDone } : {}),
    };
    this.state = saveKeeperState(this.config.pgdata, { ...kept, ...state });
    this.transitionAtMs = Date.now();
    return this.state;
  }

  /** How often the keeper reports when nothing changes, in ms. */
  get reportIntervalMs(): number {
    return this.reportIntervalOverrideMs ?? this.settings.keeperReportIntervalMs;
  }

  /**
   * A report's limit, in ms: two report intervals. A report hung on a silent network must not
   * hold the loop (the partition watchdog does not depend on it, but the rejoin after healing does).
   */
  get reportTimeoutMs(): number {
    return 2 * this.reportIntervalMs;
  }

  /** How long the partition rule can only say `none` (see `fsm/partition-rule.ts`, `monitorQuietForMs`). */
  monitorQuietForMs(): number {
    return monitorQuietForMs(this.lastMonitorContactMs, Date.now(), this.settings);
  }

  /** The keeper's facts for the partition rule (see `PartitionWatchdog`). */
  partitionFacts(lastStandbyReplyMs: number | null): PartitionFacts {
    return {
      nowMs: Date.now(),
      currentState: this.state.currentState,
      goalState: this.goalNodeState(),
      postgresRunning: this.node.postgres.isRunning(),
      otherNodes: this.lastGoal ? this.lastGoal.nodes.filter((n) => n.nodeId !== this.config.nodeId).length : undefined,
      lastMonitorContactMs: this.lastMonitorContactMs,
      lastStandbyReplyMs,
      settings: this.settings,
    };
  }

  /**
   * Self-fencing (network partition): stops Postgres at once (`PostgresLifecycle.fence`) and records
   * `demote_timeout` as the reached state, as pg_auto_failover's keeper does; Postgres stays
   * stopped until a report reaches the monitor, whose goal then decides (rejoin as a standby,
   * or start again as the primary if nothing was promoted meanwhile). The fence is kept in
   * `state.json` (`selfFence`) and sent with each report until one is answered, so that the
   * monitor writes it as an event (`keeper-self-fenced`), also after a restart of this keeper.
   */
  async fence(reason: string): Promise<void> {
    if (this.node.postgres.fencedSinceMs !== undefined && !this.node.postgres.isRunning()) return;
    this.log.warn(`self-fencing: ${reason}; stopping Postgres (immediate shutdown)`);
    const signalledAtMs = await this.node.postgres.fence();
    const from = this.state.currentState;
    const fencedAtMs = signalledAtMs ?? Date.now();
    const selfFence: SelfFenceRecord = {
      fencedAtMs,
      // At most what a report takes, without splitting a surrogate pair.
      reason: reason.slice(0, 500).replace(/[\ud800-\udbff]$/, ''),
      fromState: from,
      monitorSilentMs: Math.max(0, Math.round(fencedAtMs - this.lastMonitorContactMs)),
      postgresStopped: !this.node.postgres.isRunning(),
    };
    this.reached({ nodeId: this.config.nodeId, currentState: 'demote_timeout', assignedState: 'demote_timeout', selfFence });
    this.log.warn(
      { fencedAtMs: signalledAtMs ?? null, stoppedAtMs: Date.now(), from },
      `Self-fenced: Postgres stopped after ${formatDurationMs(signalledAtMs === undefined ? 0 : Date.now() - signalledAtMs)}; current state is now "demote_timeout" until the monitor answers`,
    );
    // The hook learns of the demotion only once Postgres is down: a VIP must not leave a node
    // that still takes writes, nor move before it stops taking them.
    if (this.node.postgres.isRunning()) this.log.error('self-fence: Postgres still runs; the role-change hook for "demoted" waits until it has stopped');
    else await this.roles.announce('demoted', 'demote_timeout');
  }

  /** The state the keeper has reached. */
  get currentState(): NodeState {
    return this.state.currentState;
  }

  /**
   * The keeper's state (as in its state.json). A change wakes the partition watchdog when it
   * sleeps because the node was not fenceable (`PartitionWatchdog.poke`): its reached state is
   * one of the partition rule's inputs.
   */
  private get state(): KeeperState {
    return this.savedState;
  }

  private set state(next: KeeperState) {
    this.savedState = next;
    this.watchdog.poke();
  }

  /** The monitor's last goal for the node, undefined before the first; a change wakes the watchdog as {@link state}'s does. */
  private get lastGoal(): NodeGoal | undefined {
    return this.heardGoal;
  }

  private set lastGoal(goal: NodeGoal | undefined) {
    this.heardGoal = goal;
    this.watchdog.poke();
  }

  /** Whether the partition rule may fence the node (`fenceableState`): the watchdog sleeps while it may not. */
  mayFence(): boolean {
    return fenceableState(this.state.currentState, this.goalNodeState());
  }

  /** The goal state of {@link lastGoal}, undefined before the first goal or when it names no state this keeper knows. */
  private goalNodeState(): NodeState | undefined {
    const goal = this.lastGoal?.goalState;
    return goal !== undefined && isNodeState(goal) ? goal : undefined;
  }

  /** The monitor's last answer. */
  get goal(): NodeGoal | undefined {
    return this.lastGoal;
  }

  /**
   * Logs each change of what keeps the node from its goal: a new problem at warn, one that went
   * away at info; nothing while they stay the same (they are checked every tick).
   */
  private noteProblems(problems: readonly (string | undefined)[]): void {
    const now = new Set(problems.filter((p): p is string => !!p));
    for (const p of now) if (!this.loggedProblems.has(p)) this.log.warn(`problem: ${p}`);
    for (const p of this.loggedProblems) if (!now.has(p)) this.log.info(`problem solved: ${p}`);
    this.loggedProblems = now;
  }

  /**
   * The problem of a standby whose WAL receiver has not streamed for {@link STUCK_GRACE_MS}
   * while the node is to follow its upstream (`catchingup`, `secondary`, `join_secondary`,
   * `fast_forward`, `wait_maintenance`; not during an election, when the old primary is gone by
   * definition), with the WAL receiver's last error from the server log.
   */
  private streamingProblem(facts: PostgresFacts | undefined, nowMs: number): string | undefined {
    const following = STREAMING_STATES.has(this.state.currentState) && facts?.isInRecovery === true && !facts.upstreamStreaming;
    if (this.notStreaming.note(following ? 'not streaming' : undefined, nowMs) < STUCK_GRACE_MS) return undefined;
    return notStreamingProblem(this.lastGoal?.upstream ?? null, this.node.postgres.lastServerLogFailure());
  }

  /** The problem of the transition (or of keeping the state) that has failed for {@link STUCK_GRACE_MS} or more. */
  private failingStepProblem(nowMs: number): string | undefined {
    const step = this.failingStep.key;
    const heldMs = this.failingStep.heldForMs(nowMs);
    if (step === undefined || heldMs === undefined || heldMs < STUCK_GRACE_MS) return undefined;
    return failingStepProblem(step, this.failingStepMessage);
  }

  /**
   * The pending self-fence as a report carries it (see {@link fence}): with how long the
   * monitor has been unreachable, from the last answered report before the fence until now.
   */
  private selfFenceReport(): SelfFenceReport | undefined {
    const fence = this.state.selfFence;
    if (!fence) return undefined;
    return { ...fence, unreachableMs: Math.max(0, Math.round(Date.now() - (fence.fencedAtMs - fence.monitorSilentMs))) };
  }

  /**
   * Forgets the self-fence `sent` (the monitor answered a report that carried it, so it has
   * recorded it; or it refused it as invalid) and logs `done`; a newer fence stays.
   */
  private forgetSelfFence(sent: SelfFenceReport, done: string): void {
    if (this.state.selfFence?.fencedAtMs !== sent.fencedAtMs) return;
    const { selfFence: _forgotten, ...kept } = this.state;
    const { version: _v, updatedAt: _u, ...rest } = kept;
    try {
      this.state = saveKeeperState(this.config.pgdata, rest);
    } catch (err) {
      // Forgotten in memory only: a restarted keeper sends it again, and the monitor records a fence once anyway.
      this.state = kept;
      this.log.error(`${done}, but the state file could not be saved without it: ${(err as Error).message}`);
      return;
    }
    this.log.info({ fencedAtMs: sent.fencedAtMs }, done);
  }

  /** Builds the report from local facts. */
  private async buildReport(): Promise<NodeReport> {
    const facts = await this.node.session.readFacts();
    if (facts) {
      this.lastLsn = facts.lsn;
      this.lastTimeline = facts.timeline;
    }
    const postgresRunning = facts !== undefined || this.node.postgres.isRunning();
    const nowMs = Date.now();
    const factsProblem = this.node.session.factsProblem(nowMs);
    const problems = [factsProblem, this.streamingProblem(facts, nowMs), this.failingStepProblem(nowMs), this.node.localProblem() ?? undefined, this.extraProblem?.()];
    this.noteProblems(problems);
    this.reading = { facts, atMs: nowMs, postgresRunning, factsProblem, problem: problemSentence(problems) };
    const parameters = facts && !this.monitorRefuses.has('parameters') ? await this.node.replication.readParameters(!facts.isInRecovery) : undefined;
    // Only once Postgres stopped (or its shutdown checkpoint is written): while it answers, its control file says it runs.
    const shutdownCheckpointLsn = facts ? undefined : this.node.postgres.shutdownCheckpointLsn();
    return {
      reportedState: this.state.currentState,
      postgresRunning: this.reading.postgresRunning,
      isInRecovery: facts?.isInRecovery ?? null,
      lsn: formatLsn(this.lastLsn),
      timeline: this.lastTimeline,
      upstreamStreaming: facts?.upstreamStreaming ?? false,
      transitionInProgress: this.inProgress,
      transitionProgress: this.node.rebuild.transitionProgress,
      synchronousStandbyNames: facts && !facts.isInRecovery ? facts.synchronousStandbyNames : null,
      ...(shutdownCheckpointLsn !== undefined && !this.monitorRefuses.has('shutdownCheckpointLsn') ? { shutdownCheckpointLsn: formatLsn(shutdownCheckpointLsn) } : {}),
      problem: this.reading.problem,
      ...(this.state.selfFence && !this.monitorRefuses.has('selfFence') ? { selfFence: this.selfFenceReport() } : {}),
      ...(this.state.goalRevision !== undefined && !this.monitorRefuses.has('appliedGoalRevision') ? { appliedGoalRevision: this.state.goalRevision } : {}),
      ...(parameters ? { parameters } : {}),
      ...(this.state.restartDone !== undefined ? { restartDone: this.state.restartDone } : {}),
    };
  }

  /** Logs the monitor the keeper talks to when it changes (and the first one that answers). */
  private noteMonitorChange(change: MonitorChange): void {
    const failed = change.failures.length === 0 ? '' : ` (${change.failures.map((f) => `${f.url}: ${f.reason}`).join('; ')})`;
    if (change.previous === undefined) this.log.info({ monitor: change.url }, `talking to the monitor at ${change.url}${failed}`);
    else this.log[change.failures.length > 0 ? 'warn' : 'info']({ monitor: change.url, previous: change.previous }, `now talking to the monitor at ${change.url} instead of ${change.previous}${failed}`);
  }

  /**
   * The goal of an answer, unless its revision is older than the one applied
   * (`fsm/goal-revision-rule.ts`): then undefined, logged once per monitor that answers so,
   * and the next request starts at the next monitor. A newer revision is saved in `state.json`
   * before the keeper acts on the goal.
   */
  private acceptGoal({ goal, monitorUrl }: GoalAnswer): NodeGoal | undefined {
    const verdict = goalRevisionVerdict(this.state.goalRevision, goal.goalRevision);
    if (verdict.action === 'ignore') {
      if (!this.staleSources.has(monitorUrl)) this.log.warn({ monitor: monitorUrl, goalRevision: goal.goalRevision, appliedRevision: this.state.goalRevision }, `ignoring ${verdict.reason} from ${monitorUrl}`);
      this.staleSources.add(monitorUrl);
      this.client.passOver(monitorUrl);
      return undefined;
    }
    this.staleSources.delete(monitorUrl);
    if (verdict.appliedRevision !== undefined && verdict.appliedRevision !== this.state.goalRevision) this.recordGoalRevision(verdict.appliedRevision);
    return goal;
  }

  /** Keeps `revision` as the highest applied, in `state.json` (see {@link keepInState}). */
  private recordGoalRevision(revision: string): void {
    this.keepInState({ goalRevision: revision }, `goal revision ${revision} applied`);
  }

  /**
   * Writes `patch` into `state.json` with the rest of the state; in memory only when the file
   * cannot be written, which is logged as `<done>, but the state file could not be saved with it`.
   */
  private keepInState(patch: Pick<Partial<KeeperState>, 'goalRevision' | 'restartDone'>, done: string): void {
    const { version: _v, updatedAt: _u, ...rest } = this.state;
    try {
      this.state = saveKeeperState(this.config.pgdata, { ...rest, ...patch });
    } catch (err) {
      this.state = { ...this.state, ...patch };
      this.log.error(`${done}, but the state file could not be saved with it: ${(err as Error).message}`);
    }
  }

  /**
   * Reports to the monitors and records the answer. An answer with a goal older than the one
   * applied is no answer: the report goes to the next monitor, at most once to each.
   *
   * @param staleTries - how many more monitors to try after a stale answer.
   * @throws the client's errors; MonitorUnavailableError when every monitor tried answered a stale goal.
   */
  async report(staleTries = this.client.urls.length - 1): Promise<NodeGoal> {
    return (await this.sendReport(await this.buildReport(), staleTries)).goal;
  }

  /**
   * Sends `report` (built by {@link buildReport}) as {@link report} does; with `hold`, the
   * monitor may hold the goal until it changes (one request per report cycle, see
   * {@link heldTick}), and the keeper counts its contact from the moment the monitor says it
   * recorded the report.
   *
   * @returns the accepted goal, and whether the monitor holds reports.
   * @throws as {@link report}.
   */
  private async sendReport(report: NodeReport, staleTries: number, hold?: { known: string; waitMs: number; signal: AbortSignal; ack: boolean }): Promise<{ goal: NodeGoal; holds: boolean }> {
    const sentAtMs = Date.now();
    /** When a monitor said it recorded a held report: the report's time for the metrics ends there, not at the goal. */
    let recordedAtMs: number | undefined;
    const onRecorded = (r: ReportRecorded): void => {
      recordedAtMs = Date.now() - r.heldMs;
      this.noteRecorded(r);
    };
    /** The report again, built afresh (a field dropped for an older monitor, a new token), to `tries` more monitors after a stale answer. */
    const again = async (tries = staleTries): Promise<{ goal: NodeGoal; holds: boolean }> => this.sendReport(await this.buildReport(), tries, hold);
    let answer: ReportAnswer;
    try {
      answer = await this.client.report(this.config.nodeId, report, this.reportTimeoutMs, hold && { ...hold, onRecorded });
    } catch (err) {
      // A held report ended by its signal is no failed report, once recorded.
      if (!(hold?.signal.aborted && recordedAtMs !== undefined)) this.observer?.reportFinished((recordedAtMs ?? Date.now()) - sentAtMs, recordedAtMs !== undefined);
      // A monitor older than this keeper refuses a field it does not know: report without it from
      // now on rather than fail every report (the node would never get a goal). A self-fence
      // stays in state.json, for a keeper restarted once the monitor is upgraded.
      const refused = refusedNewerField(report, err);
      if (refused) {
        this.monitorRefuses.add(refused);
        this.log.warn(NEWER_REPORT_FIELDS[refused]);
        return again();
      }
      if (err instanceof AuthError && err.code === 'PGHA_ERR_UNAUTHENTICATED' && this.takeRotatedToken()) return again();
      if (report.selfFence && err instanceof ValidationError && err.field?.startsWith('body.selfFence')) {
        this.log.error(`the monitor refused the self-fence record (${err.message}): it is dropped, and is in this log only`);
        this.forgetSelfFence(report.selfFence, 'self-fence record dropped');
        return again();
      }
      throw err;
    }
    this.observer?.reportFinished((recordedAtMs ?? Date.now()) - sentAtMs, true);
    const goal = this.acceptGoal(answer);
    if (!goal) {
      if (staleTries > 0) return again(staleTries - 1);
      throw new MonitorUnavailableError(`no monitor answered a current goal: the last, ${answer.monitorUrl}, answered revision ${answer.goal.goalRevision}, older than the applied ${this.state.goalRevision}`, {
        hint: 'a monitor that lags behind its store, or lost its leadership, answers old goals; the keeper acts on none of them',
      });
    }
    if (report.selfFence) this.forgetSelfFence(report.selfFence, `the monitor recorded the self-fence of ${new Date(report.selfFence.fencedAtMs).toISOString()} (event keeper-self-fenced)`);
    // From the attempt that was answered: earlier monitors of the list may have failed first.
    this.lastMonitorContactMs = Math.max(this.lastMonitorContactMs, answer.sentAtMs);
    this.lastGoal = goal;
    if (goal.settings) this.takeSettings(goal.settings);
    this.monitorHolds = answer.holds;
    return { goal, holds: answer.holds };
  }

  /**
   * A monitor recorded a held report (its status line came, the goal has not yet): the contact
   * the self-fence counts from, unless the revision of the goal the report left is older than
   * the applied one (then that monitor's answer will be refused, as in {@link acceptGoal}).
   */
  private noteRecorded(recorded: ReportRecorded): void {
    if (recorded.goalRevision !== undefined && goalRevisionVerdict(this.state.goalRevision, recorded.goalRevision).action === 'ignore') return;
    this.lastMonitorContactMs = Math.max(this.lastMonitorContactMs, recorded.sentAtMs);
  }

  /** The formation's settings from a goal; says so when they changed (`pgha set formation …`). */
  private takeSettings(settings: KeeperSettings): void {
    const before = this.settings;
    this.settings = settings;
    if (before.keeperReportIntervalMs === settings.keeperReportIntervalMs && before.networkPartitionTimeoutMs === settings.networkPartitionTimeoutMs) return;
    this.log.info(
      { keeperReportIntervalMs: settings.keeperReportIntervalMs, networkPartitionTimeoutMs: settings.networkPartitionTimeoutMs },
      `formation settings: reports every ${formatDurationMs(settings.keeperReportIntervalMs)}, fences after ${formatDurationMs(settings.networkPartitionTimeoutMs)} without the monitor`,
    );
  }

  /**
   * A primary whose Postgres died while its goal stayed the same is restarted before the keeper
   * reports, so that the monitor sees a live keeper with a running Postgres rather than a
   * failed primary. Safe without asking: in `primary` it cannot acknowledge a commit without
   * its synchronous standby, and from `wait_primary`/`single` the monitor never fails over; if
   * the goal has changed meanwhile, the next step of this tick fences it.
   */
  private async restartInPlace(): Promise<void> {
    const current = this.state.currentState;
    if (this.lastGoal?.goalState !== current || !WRITABLE_STATES.has(current) || this.node.postgres.isRunning() || !this.node.postgres.hasData() || this.node.postgres.hasStandbySignal()) return;
    this.log.warn(`Postgres is not running in ${current}: restarting it in place`);
    await this.node.postgres.start().catch((err: Error) => {
      // A refused data directory is logged once by DataDirectoryIdentity and reported as the node's problem.
      if (!(err instanceof PghaError && err.code === 'PGHA_ERR_PGDATA')) this.log.error(`restarting Postgres failed: ${err.message}`);
    });
  }

  /**
   * One tick. Never throws: failures are facts in the outcome.
   *
   * @param fresh - a changed goal the monitor has just answered the keeper's long-poll or held
   *   report with (`MonitorClient.waitGoal`, {@link heldTick}): acted on at once, without a report first (a round trip to the
   *   monitor and a store transaction, 10–30 ms, on the path of a switchover's every step); the
   *   report after the transition tells the monitor what came of it.
   */
  async tick(fresh?: NodeGoal): Promise<TickOutcome> {
    const tickStartMs = Date.now();
    await this.restartInPlace();
    let goal: NodeGoal;
    try {
      goal = fresh ?? (await this.report());
    } catch (err) {
      return this.reportFailed(err);
    }
    this.takeAnswer(goal);
    await this.applyParameters(goal);
    const goalState = goal.goalState;
    if (!isNodeState(goalState)) return this.outcome(`unknown goal state "${goalState}" from the monitor`, { failed: true, level: 'error' });
    const current = this.state.currentState;
    const ctx = { node: this.node, goal, goalState };
    if (goalState === current && (goal.restartRequest ?? 0) > (this.state.restartDone ?? 0)) return this.restartOnRequest(goal.restartRequest!);
    if (goalState === current) return this.keepState(ctx, tickStartMs);
    this.inProgress = `${current}->${goalState}`;
    const heartbeat = this.startHeartbeat();
    try {
      await reachGoal(current, ctx, this.log);
      this.failingStep.note(undefined, Date.now());
    } catch (err) {
      this.stepFailed(`transition from ${current} to ${goalState}`, err);
      return this.outcome(`transition from ${current} to ${goalState} failed: ${(err as Error).message}`, { failed: true, level: 'error' });
    } finally {
      clearInterval(heartbeat);
      this.inProgress = null;
    }
    if (goalState === 'dropped' && goal.destroy) {
      // Its files are gone with the data directory: nothing to persist.
      this.state = { ...this.state, currentState: 'dropped', assignedState: 'dropped' };
    } else {
      try {
        this.reached({ nodeId: this.config.nodeId, currentState: goalState, assignedState: goalState });
      } catch (err) {
        // E.g. ENOSPC on a full data volume: a failed tick (retried), not a keeper crash. The
        // transitions are idempotent, so the next tick runs this one again and saves then.
        return this.outcome(`reached ${goalState} from ${current} but could not save the state file: ${(err as Error).message}`, { failed: true, level: 'error' });
      }
    }
    if (goalState === 'dropped') await this.report().catch(() => undefined);
    return this.outcome(`reached ${goalState} from ${current}`, { transitioned: true });
  }

  /** The outcome of a tick whose report no monitor answered. */
  private reportFailed(err: unknown): TickOutcome {
    if (err instanceof AuthError || (err instanceof PghaError && err.code === 'PGHA_ERR_TLS')) {
      // Not a network blip: this keeper's credentials or the monitor's certificate are wrong.
      return this.outcome(`the monitor refuses this keeper: ${err.toUserLine()} (if the node was registered again, reload this keeper: pgha keeper reload; it reads the new token from keeper.json)`, { failed: true, level: 'error' });
    }
    return this.outcome(`monitor unreachable: ${(err as Error).message}`, { failed: true, level: 'warn' });
  }

  /** What every answered report's goal tells the keeper besides its state: the catch-up lag, the end of a self-fence. */
  private takeAnswer(goal: NodeGoal): void {
    this.logCatchupLag(goal);
    if (this.node.postgres.fencedSinceMs !== undefined) {
      this.log.warn(`the monitor answers again ${formatDurationMs(Date.now() - this.node.postgres.fencedSinceMs)} after the self-fence: its goal ${goal.goalState} decides`);
      this.node.postgres.clearFence();
    }
  }

  /**
   * Keeps the reached state `ctx.goalState` (`ensureState`), with the facts of a report built
   * since `tickStartMs` when there is one (see TransitionContext.reportedFacts).
   */
  private async keepState(ctx: { node: NodeControl; goal: NodeGoal; goalState: NodeState }, tickStartMs: number): Promise<TickOutcome> {
    const current = this.state.currentState;
    // Keeping a state can take long too (a diverged standby's rewind): keep reporting.
    const heartbeat = this.startHeartbeat();
    try {
      await ensureState(this.reading.atMs >= tickStartMs ? { ...ctx, reportedFacts: { value: this.reading.facts } } : ctx);
      this.failingStep.note(undefined, Date.now());
      return this.outcome(`node is ${current}, as assigned`, {});
    } catch (err) {
      this.stepFailed(`keeping ${current}`, err);
      return this.outcome(`keeping ${current} failed: ${(err as Error).message}`, { failed: true, level: 'error' });
    } finally {
      clearInterval(heartbeat);
    }
  }

  /**
   * Whether the next tick may be a {@link heldTick}: the monitor holds reports, and the node is
   * at its goal with no restart asked for.
   */
  private mayHold(): boolean {
    return this.monitorHolds && this.lastGoal !== undefined && this.atGoal(this.lastGoal) && this.state.currentState !== 'dropped';
  }

  /** Whether `goal` asks nothing of the node but to keep its state: it is the reached state, with no restart asked for. */
  private atGoal(goal: NodeGoal): boolean {
    return goal.goalState === this.state.currentState && (goal.restartRequest ?? 0) <= (this.state.restartDone ?? 0);
  }

  /**
   * The tick of a node at its goal (issue 17 §3: one request per report cycle): reads the local
   * facts and reports them in a request the monitor holds until the node's goal changes or the
   * report interval ends (the goal long-poll and the report in one), keeping the state with the
   * same facts meanwhile. For a node in a writable state the monitor's status line comes as
   * soon as it has recorded the report (`ack`), and the self-fence counts contact from there
   * (`noteRecorded`). A goal change in the answer is acted on at once by the next tick
   * (`TickOutcome.next`), once the state has been kept; the loss of the local Postgres session
   * ends the wait (`woken`). A monitor that does not hold reports answers at once, and the loop
   * waits with a goal long-poll as before.
   */
  private async heldTick(signal: AbortSignal): Promise<TickOutcome> {
    const tickStartMs = Date.now();
    await this.restartInPlace();
    const goal = this.lastGoal!;
    let report: NodeReport;
    try {
      report = await this.buildReport();
    } catch (err) {
      return this.reportFailed(err);
    }
    await this.applyParameters(goal);
    const wake = new AbortController();
    this.node.session.onSessionLost = () => wake.abort();
    try {
      // The report goes first, as in a tick, and the state is kept while the monitor holds it.
      // A node that may have to fence itself asks for the status line at once: its self-fence
      // clock counts from it (a standby's answer is one message, with the goal).
      const hold = { known: goal.goalState, waitMs: this.reportIntervalMs, signal: AbortSignal.any([wake.signal, signal]), ack: WRITABLE_STATES.has(this.state.currentState) };
      const sent = this.sendReport(report, this.client.urls.length - 1, hold).then(
        (answer) => ({ answer }),
        (err: unknown) => ({ err }),
      );
      const kept = await this.keepState({ node: this.node, goal, goalState: this.state.currentState }, tickStartMs);
      // A failed tick waits before it retries, and its next report goes at once: no hold.
      if (kept.failed) wake.abort();
      const result = await sent;
      if ('err' in result) {
        if (kept.failed) return kept;
        if (wake.signal.aborted || signal.aborted) return { ...kept, woken: true };
        return this.reportFailed(result.err);
      }
      this.takeAnswer(result.answer.goal);
      return !this.atGoal(result.answer.goal) && !kept.failed ? { ...kept, next: result.answer.goal } : kept;
    } finally {
      this.node.session.onSessionLost = undefined;
    }
  }

  /**
   * Writes the goal's Postgres parameters into the node's `pgha.parameters.conf` and reloads
   * (`ReplicationSetup.applyParameters`). A failure is logged once per message and does not hold
   * the tick back: reaching the goal matters more than a parameter.
   */
  private async applyParameters(goal: NodeGoal): Promise<void> {
    try {
      await this.node.replication.applyParameters(goal.postgresParameters);
      this.parametersFailure = undefined;
    } catch (err) {
      const message = (err as Error).message;
      if (message !== this.parametersFailure) this.log.error(`writing the Postgres parameters failed: ${message}`);
      this.parametersFailure = message;
    }
  }

  /**
   * Restarts Postgres for the operator's restart request `request` (`pgha perform restart`),
   * reporting as usual meanwhile (transition `restart`), then records it done in state.json
   * and reports it (`NodeReport.restartDone`) at once, also when it failed (then the tick
   * fails, and the next ones start Postgres as for any stopped one). Done once the node is at
   * its goal, so that it never mixes with a transition.
   */
  private async restartOnRequest(request: number): Promise<TickOutcome> {
    this.inProgress = 'restart';
    const heartbeat = this.startHeartbeat();
    let streaming = false;
    let failure: Error | undefined;
    try {
      streaming = await this.node.postgres.restartOnRequest(RESTART_STREAM_WAIT_MS);
      // A primary's standbys stream again; give their keepers a report to tell the monitor so
      // before the restart is done and no longer excuses their silence.
      if (streaming && WRITABLE_STATES.has(this.state.currentState)) await delay(2 * this.reportIntervalMs);
      this.failingStep.note(undefined, Date.now());
    } catch (err) {
      // Done all the same: the request is not tried again, the monitor stops excusing the node
      // at once, and the loop keeps its state as for any stopped Postgres (start, problem).
      failure = err as Error;
      this.stepFailed('restart on request', err);
    } finally {
      clearInterval(heartbeat);
      this.inProgress = null;
    }
    this.keepInState({ restartDone: request }, `restart ${request} done`);
    await this.report().catch(() => undefined);
    if (failure) return this.outcome(`restart ${request} of Postgres failed: ${failure.message}`, { failed: true, level: 'error' });
    const how = streaming ? 'its replication streams again' : `its replication did not stream again within ${formatDurationMs(RESTART_STREAM_WAIT_MS)}`;
    return this.outcome(`restarted Postgres (restart ${request} asked for by the operator): ${how}`, { transitioned: true, level: streaming ? 'info' : 'warn' });
  }

  /** Reports every report interval while a transition (or the keeping of a state) runs; stop it with `clearInterval`. */
  private startHeartbeat(): NodeJS.Timeout {
    return setInterval(() => {
      this.report().catch(() => undefined);
    }, this.reportIntervalMs);
  }

  /**
   * While the node is `catchingup`: its lag behind the primary as the monitor computed it from
   * both nodes' last reports, at info, at most every {@link CATCHUP_LOG_INTERVAL_MS} and only
   * when it changed ("catching up: 40.0 MB (41943040 bytes) behind the primary").
   */
  private logCatchupLag(goal: NodeGoal): void {
    const lagBytes = goal.lagBytes;
    if (this.state.currentState !== 'catchingup' || lagBytes === undefined || lagBytes === null) {
      this.lastLagLog = undefined;
      return;
    }
    const nowMs = Date.now();
    const last = this.lastLagLog;
    if (last && (nowMs - last.atMs < CATCHUP_LOG_INTERVAL_MS || last.lagBytes === lagBytes)) return;
    this.lastLagLog = { atMs: nowMs, lagBytes };
    this.log.info({ lagBytes }, `catching up: ${formatBytes(lagBytes)} (${lagBytes} bytes) behind the primary`);
  }

  /** Records a failed step for {@link failingStepProblem}. */
  private stepFailed(step: string, err: unknown): void {
    this.failingStep.note(step, Date.now());
    this.failingStepMessage = (err as Error).message ?? String(err);
  }

  private outcome(summary: string, o: { transitioned?: boolean; failed?: boolean; level?: 'info' | 'warn' | 'error' }): TickOutcome {
    if (summary !== this.lastSummary) this.log[o.level ?? 'info'](summary);
    else this.log.debug(summary);
    this.lastSummary = summary;
    return { summary, transitioned: o.transitioned ?? false, failed: o.failed ?? false };
  }

  /**
   * Runs ticks until `signal` aborts or `until()` holds after a tick.
   *
   * @param until - e.g. "the node reached single" for `keeper create`.
   */
  async run(signal: AbortSignal, until?: (k: Keeper) => boolean): Promise<void> {
    this.watchdog.start();
    try {
      await this.runLoop(signal, until);
    } finally {
      await this.watchdog.stop();
    }
  }

  private async runLoop(signal: AbortSignal, until?: (k: Keeper) => boolean): Promise<void> {
    /** A goal change the long-poll (or a held report) brought, for the next tick to act on at once. */
    let fresh: NodeGoal | undefined;
    /** The next tick is a held one: the node is at its goal and the monitor holds reports. */
    let hold = false;
    while (!signal.aborted) {
      const out = hold ? await this.heldTick(signal) : await this.tick(fresh);
      fresh = out.next;
      hold = false;
      await this.roles.noteReached(this.state.currentState, this.lastGoal?.goalState, () => !this.node.postgres.isRunning());
      if (until?.(this)) return;
      if (this.state.currentState === 'dropped') {
        this.log.info('node dropped from the formation: the keeper stops');
        return;
      }
      if (out.transitioned || fresh || out.woken) continue;
      if (out.failed) {
        await delay(this.retryDelayMs, signal);
        continue;
      }
      if (this.mayHold()) {
        // The report and the wait for a goal change in one request (issue 17 §3).
        hold = true;
        continue;
      }
      // Wait for a goal change, the report interval, or the local Postgres going away.
      const wake = new AbortController();
      this.node.session.onSessionLost = () => wake.abort();
      try {
        const known = this.lastGoal?.goalState ?? this.state.currentState;
        const goal = this.acceptGoal(await this.client.waitGoal(this.config.nodeId, known, this.reportIntervalMs, AbortSignal.any([wake.signal, signal]), this.reportTimeoutMs));
        if (goal) {
          this.lastGoal = goal;
          if (goal.settings) this.takeSettings(goal.settings);
          if (goal.goalState !== known) fresh = goal;
        }
      } catch {
        if (!wake.signal.aborted && !signal.aborted) await delay(this.reportIntervalMs, signal);
      } finally {
        this.node.session.onSessionLost = undefined;
      }
    }
  }

  /**
   * Stops Postgres (graceful keeper stop) and closes the monitor client. With `stopPostgres`,
   * once Postgres has stopped, runs the role-change hook for `stopped` and waits for it (at
   * most its timeout and the kill grace).
   */
  async shutdown(stopPostgres: boolean): Promise<void> {
    await this.watchdog.stop();
    if (stopPostgres) {
      await this.node.postgres.stop().catch((err: Error) => this.log.error(err.message));
      if (!this.node.postgres.isRunning()) await this.roles.announce('stopped', this.state.currentState);
    }
    await this.roles.idle();
    await this.node.session.closeSession();
    await this.client.close();
  }
}
