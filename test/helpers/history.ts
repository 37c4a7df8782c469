/**
 * Writers and the history checker of the fault tests.
 *
 * Writers: {@link HistoryProbe} in the test process, or {@link NamespacedWriter}, the same
 * probe in a child process inside a host's network namespace (a client on one side of a cut).
 * Both give {@link WriteAck}s and {@link WriteFailure}s on the test process's
 * `performance.now()` clock (ms).
 *
 * After a fault, {@link checkHistory} decides, from the clients' side and the monitor's:
 * (a) lost writes, (b) dual-primary windows, (c) recovery to one `primary` and the rest
 * `secondary`, (d) whether the events explain every goal change. See {@link HistoryReport}.
 */
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ResultPromise } from 'execa';
import type { EventRow, NodeStateRow } from '@pgha/shared';
import { idsOn, maxAckGapMs, type Host } from '../../bench/lib/probe.js';
import { isPrimaryAndSecondaries, showState } from './formation.js';
import { fromMonotonicMs, HistoryProbe, type WriteAck, type WriteFailure, type WriteRecord } from './history-probe.js';
import { killPid, runPgha, startTracked } from './processes.js';
import { Sampler } from './sampler.js';
import { waitFor } from './wait-for.js';
import { monitorFetch } from './monitor-access.js';

export { HistoryProbe, type WriteAck, type WriteFailure } from './history-probe.js';

/** What {@link checkHistory} needs of a writer. */
export interface HistoryWriter {
  readonly name: string;
  /** Acknowledged inserts, in the order this sequential client got them. */
  readonly acks: readonly WriteAck[];
  readonly failures: readonly WriteFailure[];
  /** Stops writing; resolves once the insert in flight has finished or failed. */
  stop(): Promise<unknown>;
}

const WRITER_CHILD = fileURLToPath(new URL('./writer-child.ts', import.meta.url));
const TSX_LOADER = fileURLToPath(new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url));

/**
 * A {@link HistoryProbe} in a child process inside network namespace `netns`
 * (`ip netns exec`), tracked and ended by PID like every test process; its records stream
 * back as JSON lines and land in `acks` and `failures` with times mapped onto this process's
 * clock. Its stderr goes to `logFile`.
 */
export class NamespacedWriter implements HistoryWriter {
  readonly acks: WriteAck[] = [];
  readonly failures: WriteFailure[] = [];
  private proc: ResultPromise | undefined;
  private started = false;

  constructor(
    readonly name: string,
    private readonly netns: string,
    private readonly config: { hosts: readonly Host[]; table: string; firstId: number; intervalMs?: number; queryTimeoutMs?: number },
    private readonly logFile: string,
  ) {}

  /** Starts the child; resolves when it runs (before its first insert). */
  async start(): Promise<void> {
    const proc = startTracked(process.execPath, ['--import', TSX_LOADER, WRITER_CHILD, JSON.stringify({ name: this.name, ...this.config })], {
      netns: this.netns,
      pipeStdout: true,
      logFile: this.logFile,
    });
    this.proc = proc;
    const lines = createInterface({ input: proc.stdout! });
    lines.on('line', (line) => {
      let r: WriteRecord | { kind: 'started' };
      try {
        r = JSON.parse(line) as WriteRecord | { kind: 'started' };
      } catch {
        return; // not a record (a stray line on stdout)
      }
      if (r.kind === 'started') this.started = true;
      else if (r.kind === 'ack') {
        const { kind: _, ...ack } = r;
        this.acks.push({ ...ack, sentAtMs: fromMonotonicMs(ack.sentAtMs), atMs: fromMonotonicMs(ack.atMs) });
      } else {
        const { kind: _, ...failure } = r;
        this.failures.push({ ...failure, sentAtMs: fromMonotonicMs(failure.sentAtMs), failedAtMs: fromMonotonicMs(failure.failedAtMs) });
      }
    });
    await waitFor(`writer ${this.name} to start in ${this.netns}`, () => {
      if (proc.exitCode !== null) throw new Error(`writer ${this.name} exited (${proc.exitCode}); see ${this.logFile}`);
      return this.started;
    }, { timeoutMs: 30_000 });
  }

  /** SIGTERM, then waits for the child to exit (SIGKILL after `graceMs`, default the query timeout + 5 s). */
  async stop(graceMs = (this.config.queryTimeoutMs ?? 60_000) + 5_000): Promise<void> {
    const proc = this.proc;
    if (!proc?.pid || proc.exitCode !== null) return;
    killPid(proc.pid, 'SIGTERM');
    const timer = setTimeout(() => killPid(proc.pid, 'SIGKILL'), graceMs);
    await proc;
    clearTimeout(timer);
  }
}

/** A moment on both clocks: the test process's `performance.now()` and the wall clock (for event times), in ms. */
export interface Instant {
  atMs: number;
  wallMs: number;
}

/** Now, as an {@link Instant}. */
export function instant(): Instant {
  return { atMs: performance.now(), wallMs: Date.now() };
}

/** `pgha show events --json` (latest `count`, oldest first). */
export async function showEvents(monitorUrl: string, count = 1000): Promise<EventRow[]> {
  const r = await runPgha(['show', 'events', '--json', '--count', String(count)], { PGHA_MONITOR: monitorUrl });
  if (r.exitCode !== 0) throw new Error(`pgha show events failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as EventRow[];
}

/** The formation as it was just before a fault. */
export interface FaultBaseline {
  /** Highest `event_id` before the fault (0 when none). */
  eventId: number;
  /** Goal state of every node before the fault, by name. */
  goals: Map<string, string>;
}

/** Records the {@link FaultBaseline} (through `pgha show state|events --json`). */
export async function takeBaseline(monitorUrl: string): Promise<FaultBaseline> {
  const [rows, events] = await Promise.all([showState(monitorUrl), showEvents(monitorUrl, 1)]);
  return { eventId: events.at(-1)?.event_id ?? 0, goals: new Map(rows.map((r) => [r.name, r.goal_state])) };
}

/** One sample of {@link StateWatcher}. */
export interface StateSample {
  atMs: number;
  rows: NodeStateRow[];
}

/**
 * Samples the formation's state from the monitor's HTTP API (`GET /v1/formations/F/state`,
 * what `pgha show state --json` prints) every `intervalMs` (default 200), to time goal
 * changes during a fault and to check that each one has an event. Samples that fail (the
 * monitor cut off from the test process) are skipped.
 */
export class StateWatcher extends Sampler<StateSample> {
  constructor(private readonly monitorUrl: string, private readonly formation = 'default', intervalMs = 200) {
    super(intervalMs);
  }

  protected async read(): Promise<StateSample | undefined> {
    const res = await monitorFetch(`${this.monitorUrl}/v1/formations/${encodeURIComponent(this.formation)}/state`, { signal: AbortSignal.timeout(1000) });
    return res.ok ? { atMs: performance.now(), rows: (await res.json()) as NodeStateRow[] } : undefined;
  }

  /** Time of the first sample at or after `fromMs` for which `predicate` holds, if any. */
  firstTime(predicate: (rows: NodeStateRow[]) => boolean, fromMs = 0): number | undefined {
    return this.samples.find((s) => s.atMs >= fromMs && predicate(s.rows))?.atMs;
  }

  /** Every goal state seen per node name. */
  goalsSeen(): Map<string, Set<string>> {
    const seen = new Map<string, Set<string>>();
    for (const s of this.samples) for (const r of s.rows) (seen.get(r.name) ?? seen.set(r.name, new Set()).get(r.name)!).add(r.goal_state);
    return seen;
  }
}

/**
 * Two primaries that both acknowledged writes at the same time. `older` had acknowledged
 * writes first; it then acknowledged a write that was sent `windowMs` after `newer` had
 * acknowledged its first one.
 */
export interface DualPrimaryWindow {
  older: string;
  newer: string;
  /** `older`'s last acknowledged write's send time − `newer`'s first acknowledgement time, ms (> 0). */
  windowMs: number;
}

/** An event after the fault began: a goal change, or a note (same goal, e.g. why no promotion happens). */
export interface GoalChange {
  eventId: number;
  node: string;
  from: string;
  to: string;
  reason: string;
  /** Event time − fault time, in ms (wall clocks of the monitor's machine, the same machine). */
  afterFaultMs: number;
}

/** What {@link checkHistory} found. Times in ms; `…AfterFaultMs` relative to the fault's start. */
export interface HistoryReport {
  fault: string;
  acknowledged: number;
  failed: number;
  /** (a) Acknowledged ids missing from the final primary. Must be empty. */
  lost: number[];
  /** Ids that got no acknowledgement but are on the final primary (the client cannot know: allowed). */
  inDoubtPresent: number;
  /** Acknowledgements per server incarnation (`addr:port tli N`). */
  servers: { server: string; acks: number; firstAckAfterFaultMs: number; lastAckAfterFaultMs: number }[];
  /** (b) Must be empty; see {@link dualPrimaryWindows}. */
  dualPrimaryWindows: DualPrimaryWindow[];
  /** Longest time between consecutive acknowledgements of one writer, the later one after the fault. */
  maxWriteGapMs: number;
  /** Longest time an insert waited for its answer (acknowledgement or error), over all writers. */
  maxCommitWaitMs: number;
  /** (c) The formation showed one `primary` and the rest `secondary` within the bound. */
  recovered: boolean;
  /**
   * (c) From the heal to the moment from which the formation showed one `primary` and the rest
   * `secondary` for good (the watcher's first such sample after its last other one, at or after
   * the heal; without a watcher, the first `pgha show state` poll that showed it). Undefined
   * when not recovered within the bound.
   */
  recoveryMs: number | undefined;
  recoveryBoundMs: number;
  finalPrimary: string | undefined;
  /** (d) Goal changes after the fault began (events whose new goal differs from the old one), from `pgha show events`. */
  goalChanges: GoalChange[];
  /** Events after the fault began that keep the goal (the monitor's notes, e.g. why it does not promote). */
  notes: GoalChange[];
  /** Acknowledgements per writer. */
  writers: { name: string; acks: number; failed: number }[];
  /** (d) Goal changes without an explaining event (or events without a reason). Must be empty. */
  unexplained: string[];
  /** One line for the test log. */
  summary: string;
}

/**
 * Dual-primary windows among acknowledged writes (check (b)).
 *
 * Definition: a primary *incarnation* is a server (`inet_server_addr():inet_server_port()`)
 * on one timeline; every promotion starts a new timeline, so a node that is primary twice is
 * two incarnations. A write acknowledged by incarnation P was committed at some instant
 * between its send time and its acknowledgement time. Order incarnations by their first
 * acknowledgement. For incarnations P before Q, P's last commit is at or after
 * `lastSent(P)` (its last acknowledged write's send time) and Q's first commit is at or
 * before `firstAck(Q)`; so when `lastSent(P) > firstAck(Q)`, P certainly committed a write
 * after Q had committed one: both acknowledged writes during at least
 * `[firstAck(Q), lastSent(P)]`, a dual-primary window of `lastSent(P) − firstAck(Q)` ms.
 * Comparing acknowledgement times alone (a write acknowledged by an old primary after the
 * new one's first acknowledgement) is the same test for one sequential client (its next
 * write is sent after its previous acknowledgement), but across clients a late
 * acknowledgement can come from an early commit, so send times are used. The check never
 * reports a window that did not happen; a window shorter than one write's round trip can go
 * unseen, which the writers' ~10 ms pace keeps small.
 */
export function dualPrimaryWindows(acks: readonly WriteAck[]): DualPrimaryWindow[] {
  const byServer = new Map<string, { firstAck: number; lastSent: number }>();
  for (const a of acks) {
    const key = `${a.addr}:${a.port} tli ${a.timeline}`;
    const s = byServer.get(key);
    if (!s) byServer.set(key, { firstAck: a.atMs, lastSent: a.sentAtMs });
    else {
      s.firstAck = Math.min(s.firstAck, a.atMs);
      s.lastSent = Math.max(s.lastSent, a.sentAtMs);
    }
  }
  const ordered = [...byServer].sort((x, y) => x[1].firstAck - y[1].firstAck);
  const windows: DualPrimaryWindow[] = [];
  for (let i = 0; i < ordered.length; i++) {
    for (let j = i + 1; j < ordered.length; j++) {
      const [older, p] = ordered[i]!;
      const [newer, q] = ordered[j]!;
      if (p.lastSent > q.firstAck) windows.push({ older, newer, windowMs: p.lastSent - q.firstAck });
    }
  }
  return windows;
}

/**
 * Check (d): every goal change since the baseline has an event with a reason. Per node, the
 * events after the baseline must chain: the first one's old goal is the goal before the
 * fault, each next one's old goal the previous one's new goal, and the last one's new goal
 * the node's goal now; every goal a {@link StateWatcher} saw must be the goal before the fault
 * or one the events assigned.
 *
 * @returns one message per unexplained change (empty when all are explained).
 */
export function unexplainedGoalChanges(baseline: FaultBaseline, events: readonly EventRow[], finalRows: readonly NodeStateRow[], seen?: Map<string, Set<string>>): string[] {
  const out: string[] = [];
  const after = events.filter((e) => e.event_id > baseline.eventId);
  for (const e of after) if (!e.reason.trim()) out.push(`event ${e.event_id} (${e.node_name} ${e.old_goal_state} → ${e.new_goal_state}) has no reason`);
  for (const row of finalRows) {
    let goal = baseline.goals.get(row.name);
    const assigned = new Set<string>(goal ? [goal] : []);
    for (const e of after.filter((x) => x.node_name === row.name)) {
      if (goal !== undefined && e.old_goal_state !== goal) out.push(`${row.name}: event ${e.event_id} changes ${e.old_goal_state} → ${e.new_goal_state}, but the goal was ${goal}`);
      goal = e.new_goal_state;
      assigned.add(goal);
    }
    if (goal !== row.goal_state) out.push(`${row.name}: goal is ${row.goal_state}, but the events end at ${goal ?? 'nothing'}`);
    for (const g of seen?.get(row.name) ?? []) if (!assigned.has(g)) out.push(`${row.name}: goal ${g} was seen but no event assigned it`);
  }
  return out;
}

/** Options of {@link checkHistory}. */
export interface CheckOptions {
  /** Name of the fault, for the summary line. */
  fault: string;
  monitorUrl: string;
  /** Table the writers insert into. */
  table: string;
  /** Writers still running; {@link checkHistory} stops them once the formation has recovered. */
  writers: readonly HistoryWriter[];
  baseline: FaultBaseline;
  /** When the fault began. */
  faultAt: Instant;
  /** When the fault was healed (the fault's start for a fault that heals by itself). */
  healedAt: Instant;
  /** How long after the heal the formation may take to show one `primary` and the rest `secondary`, in ms. */
  recoveryBoundMs: number;
  /** Goals seen during the fault, checked against the events. */
  watcher?: StateWatcher;
}

/**
 * Runs checks (c), then stops the writers and runs (a), (b) and (d):
 * (c) polls `pgha show state --json` until one `primary` and the rest `secondary` (both
 * reported and assigned), at most `recoveryBoundMs` after the heal; (a) reads every id on the
 * final primary (the node assigned `primary`, else the read-write one) and lists the
 * acknowledged ones missing; (b) {@link dualPrimaryWindows} over every writer's
 * acknowledgements; (d) {@link unexplainedGoalChanges} over `pgha show events --json`.
 */
export async function checkHistory(o: CheckOptions): Promise<HistoryReport> {
  let recoveredAt: number | undefined;
  try {
    recoveredAt = await waitFor('one primary and the rest secondary', async () => (isPrimaryAndSecondaries(await showState(o.monitorUrl)) ? performance.now() : undefined), {
      timeoutMs: Math.max(0, o.healedAt.atMs + o.recoveryBoundMs - performance.now()),
      intervalMs: 200,
    });
  } catch {
    recoveredAt = undefined;
  }
  await Promise.all(o.writers.map((w) => w.stop()));
  o.watcher?.stop();
  if (recoveredAt !== undefined && o.watcher) {
    const after = o.watcher.samples.filter((s) => s.atMs >= o.healedAt.atMs);
    let last = -1;
    after.forEach((s, i) => {
      if (!isPrimaryAndSecondaries(s.rows)) last = i;
    });
    const settled = after[last + 1];
    if (settled && settled.atMs < recoveredAt) recoveredAt = settled.atMs;
  }

  const rows = await showState(o.monitorUrl);
  const primary = rows.find((r) => r.goal_state === 'primary') ?? rows.find((r) => r.connection === 'read-write');
  const acks = o.writers.flatMap((w) => w.acks);
  const failures = o.writers.flatMap((w) => w.failures);
  const present = primary ? await idsOn({ host: primary.host, port: primary.port }, o.table) : new Set<number>();
  const lost = acks.filter((a) => !present.has(a.id)).map((a) => a.id);
  const inDoubtPresent = failures.filter((f) => present.has(f.id)).length;

  const servers = new Map<string, WriteAck[]>();
  for (const a of acks) {
    const key = `${a.addr}:${a.port} tli ${a.timeline}`;
    (servers.get(key) ?? servers.set(key, []).get(key)!).push(a);
  }
  const rel = (ms: number) => Math.round(ms - o.faultAt.atMs);
  const serverRows = [...servers].map(([server, list]) => ({
    server,
    acks: list.length,
    firstAckAfterFaultMs: rel(Math.min(...list.map((a) => a.atMs))),
    lastAckAfterFaultMs: rel(Math.max(...list.map((a) => a.atMs))),
  }));
  const windows = dualPrimaryWindows(acks);
  const maxWriteGapMs = Math.max(0, ...o.writers.map((w) => maxAckGapMs(w.acks, o.faultAt.atMs)));
  const waits = [...acks.map((a) => a.atMs - a.sentAtMs), ...failures.map((f) => f.failedAtMs - f.sentAtMs)];
  const maxCommitWaitMs = Math.max(0, ...waits);

  const page = 1000;
  const events = await showEvents(o.monitorUrl, page);
  const since = events
    .filter((e) => e.event_id > o.baseline.eventId)
    .map((e) => ({ eventId: e.event_id, node: e.node_name, from: e.old_goal_state, to: e.new_goal_state, reason: e.reason, afterFaultMs: Date.parse(e.event_time) - o.faultAt.wallMs }));
  const goalChanges = since.filter((e) => e.from !== e.to);
  const notes = since.filter((e) => e.from === e.to);
  const writers = o.writers.map((w) => ({ name: w.name, acks: w.acks.length, failed: w.failures.length }));
  const unexplained = unexplainedGoalChanges(o.baseline, events, rows, o.watcher?.goalsSeen());
  if (!primary) unexplained.push('no primary at the end');
  if (events.length === page && events[0]!.event_id > o.baseline.eventId) unexplained.push(`more than ${page} events since the fault: not all were checked`);

  const recoveryMs = recoveredAt === undefined ? undefined : Math.round(recoveredAt - o.healedAt.atMs);
  const summary =
    `[${o.fault}] acked ${acks.length} (${writers.map((w) => `${w.name} ${w.acks}`).join(', ')}; failed ${failures.length}), lost ${lost.length}, ` +
    `dual-primary windows ${windows.length}${windows.length ? ` (max ${Math.max(...windows.map((w) => w.windowMs)).toFixed(0)} ms)` : ''}, ` +
    `max write gap ${maxWriteGapMs.toFixed(0)} ms, max commit wait ${maxCommitWaitMs.toFixed(0)} ms, ` +
    `recovery ${recoveryMs === undefined ? `NOT within ${o.recoveryBoundMs}` : recoveryMs} ms after heal (bound ${o.recoveryBoundMs}), ` +
    `goal changes ${goalChanges.length}${goalChanges.length ? ` [${goalChanges.map((g) => `${g.node} ${g.from}→${g.to} @${g.afterFaultMs}ms`).join(', ')}]` : ''}, ` +
    `notes ${notes.length}, unexplained ${unexplained.length}`;
  return {
    fault: o.fault,
    acknowledged: acks.length,
    failed: failures.length,
    lost,
    inDoubtPresent,
    servers: serverRows,
    dualPrimaryWindows: windows,
    maxWriteGapMs,
    maxCommitWaitMs,
    recovered: recoveredAt !== undefined,
    recoveryMs,
    recoveryBoundMs: o.recoveryBoundMs,
    finalPrimary: primary?.name,
    goalChanges,
    notes,
    writers,
    unexplained,
    summary,
  };
}
