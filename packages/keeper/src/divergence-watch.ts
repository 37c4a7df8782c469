/**
 * The keeper's watch over a standby whose WAL receiver does not stream: when it has not
 * streamed for a while, compare the primary's timeline history with the standby's own timeline
 * and replay LSN (`fsm/divergence-rule.ts`), and say so when the standby has diverged, so that
 * `followPrimary` rewinds it. It owns its state: when streaming stopped, when it last looked,
 * what it found, and the problem the keeper reports meanwhile.
 */
import type { Logger } from 'pino';
import { formatLsn, type GroupMember } from '@pgha/shared/base';
import {
  DIVERGENCE_CHECK_INTERVAL_MS,
  divergenceCheckDue,
  divergenceProblem,
  timelineDivergence,
  type Divergence,
} from './fsm/divergence-rule.js';
import type { PostgresFacts } from './local-facts.js';
import type { LocalTimeline, RemoteTimeline } from './postgres/timeline-history.js';

/** How the watch reads both sides (Postgres in the keeper, fakes in unit tests). */
export interface TimelineReader {
  /** The local standby's timeline and replay LSN; undefined when it has none yet. */
  local(): Promise<LocalTimeline | undefined>;
  /** The primary's timeline and history. @throws when it cannot be read (primary down, refused). */
  upstream(): Promise<RemoteTimeline>;
}

/** A divergence found, waiting for its repair. */
interface Pending {
  readonly divergence: Divergence;
  readonly foundAtMs: number;
  /** The node whose timeline it was found against. */
  readonly primaryNodeId: number;
  /** Whether a report has carried the problem since ({@link DivergenceWatch.reportProblem}). */
  carried: boolean;
}

/** The line of an error's message that says what failed (psql prints a few). */
function firstErrorLine(err: unknown): string {
  const lines = (err as Error).message.split('\n');
  return (lines.find((l) => /error|fatal/i.test(l)) ?? lines[0] ?? '').trim();
}

function describe(m: GroupMember): string {
  return `the primary (node ${m.nodeId} "${m.name}" at ${m.host}:${m.port})`;
}

/** See the module comment. One per node (`Rebuild.divergence`). */
export class DivergenceWatch {
  private notStreamingSinceMs: number | undefined;
  private lastCheckMs: number | undefined;
  private pending: Pending | undefined;
  /** Whether a comparison is under way (its read of the primary not back yet). */
  private inFlight = false;
  /**
   * Counts the stretches of not streaming: {@link observe} moves it on when one ends, so that
   * a comparison started in an earlier stretch is dropped when it comes back.
   */
  private stretch = 0;
  /** What the last check logged, so that a check finding the same is not logged again. */
  private lastNote: string | undefined;
  /**
   * The problem the keeper reports while the standby cannot follow ("diverged from the
   * primary's timeline 2 at 0/4000000: rewinding"); set when a divergence is found, kept
   * through the repair, cleared once the WAL receiver streams (or Postgres runs as a primary).
   */
  problem: string | undefined;

  /**
   * @param clock - the time a comparison that ends in the background found a divergence (ms);
   *   `Date.now` but in tests.
   */
  constructor(
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * Takes in the facts of each read of Postgres (`LocalSession.readFacts`), costing nothing
   * else: a standby in recovery whose WAL receiver does not stream starts (or keeps) the
   * clock; streaming, or running as a primary, ends it and clears the problem; no answer
   * from Postgres (stopped, restarting) restarts the clock at the next answer.
   */
  observe(facts: PostgresFacts | undefined, nowMs: number): void {
    if (!facts) {
      this.endStretch();
      return;
    }
    if (!facts.isInRecovery || facts.upstreamStreaming) {
      if (this.problem) {
        this.log.info(`timeline divergence repaired: ${facts.isInRecovery ? `the WAL receiver streams on timeline ${facts.timeline}` : 'Postgres runs as a primary'}`);
      }
      this.problem = undefined;
      this.pending = undefined;
      this.endStretch();
      this.lastNote = undefined;
      return;
    }
    this.notStreamingSinceMs ??= nowMs;
  }

  /** Ends a stretch of not streaming (if one was under way): its clock stops, and a comparison it started is dropped when it comes back. */
  private endStretch(): void {
    if (this.notStreamingSinceMs !== undefined) this.stretch++;
    this.notStreamingSinceMs = undefined;
    this.lastCheckMs = undefined;
  }

  /**
   * Starts a timeline comparison when one is due (`divergenceCheckDue`: the WAL receiver has
   * not streamed for `DIVERGENCE_CHECK_AFTER_MS`, then every `DIVERGENCE_CHECK_INTERVAL_MS`) and
   * none is under way. The local side is read at once; the primary's side is read in the
   * background and compared when it arrives, so the tick that started it goes straight on. A
   * standby whose WAL receiver stopped because its primary's machine died is the standby the
   * monitor is about to promote: waiting here for the dead primary's connect timeout (2 s) would
   * hold its `prepare_promotion` back by as much.
   *
   * A primary that does not answer, or answers for another cluster (system identifier), gives
   * no decision: a standby whose primary is down, or that is simply behind, is never found
   * diverged. A divergence found is logged, becomes the {@link problem}, and waits for
   * {@link takeDivergence} (a later tick, after a report has carried the problem:
   * {@link reportProblem}). A comparison
   * that ends after {@link observe} saw the standby stream again, or saw Postgres stopped or
   * running as a primary, is dropped.
   *
   * @returns the comparison under way, resolving (never rejecting) when it has ended, or
   *   undefined when none was started. The keeper does not wait for it; tests do.
   */
  async check(nowMs: number, primary: GroupMember, reader: TimelineReader): Promise<{ readonly done: Promise<void> } | undefined> {
    if (this.inFlight || !divergenceCheckDue(nowMs, this.notStreamingSinceMs, this.lastCheckMs)) return undefined;
    this.lastCheckMs = nowMs;
    const silentMs = nowMs - this.notStreamingSinceMs!;
    const stretch = this.stretch;
    let local: LocalTimeline | undefined;
    try {
      local = await reader.local();
    } catch (err) {
      this.note('warn', `timeline check: cannot read this node's timeline: ${firstErrorLine(err)}; no decision, the keeper looks again in ${DIVERGENCE_CHECK_INTERVAL_MS} ms`);
      return undefined;
    }
    if (!local) return undefined;
    this.inFlight = true;
    const done = reader.upstream().then(
      (upstream) => {
        if (stretch === this.stretch) this.compare(local, upstream, primary, silentMs);
      },
      (err: unknown) => {
        if (stretch === this.stretch) this.note('warn', `timeline check: cannot read the timeline history of ${describe(primary)}: ${firstErrorLine(err)}; no decision, the keeper looks again in ${DIVERGENCE_CHECK_INTERVAL_MS} ms`);
      },
    ).finally(() => {
      this.inFlight = false;
    });
    return { done };
  }

  /** Compares this node's timeline with the primary's, read by {@link check}; records a divergence found. */
  private compare(local: LocalTimeline, upstream: RemoteTimeline, primary: GroupMember, silentMs: number): void {
    if (local.systemId !== upstream.systemId) {
      this.note('warn', `timeline check: ${describe(primary)} has system identifier ${upstream.systemId}, this node ${local.systemId}: not a copy of the same cluster; no decision`);
      return;
    }
    const divergence = timelineDivergence(local, upstream);
    const position = `timeline ${local.timeline}, replay LSN ${formatLsn(local.replayLsn)}`;
    if (!divergence) {
      this.note('info', `timeline check: the WAL receiver does not stream, but this node (${position}) is on the history of ${describe(primary)}, timeline ${upstream.timeline}: not diverged, no rewind`);
      return;
    }
    this.pending = { divergence, foundAtMs: this.clock(), primaryNodeId: primary.nodeId, carried: false };
    this.problem = divergenceProblem(divergence, "the primary's");
    const where = divergence.forkLsn === null
      ? `timeline ${local.timeline} is not in the history of its timeline ${upstream.timeline}`
      : `its timeline ${upstream.timeline} forked off timeline ${local.timeline} at ${formatLsn(divergence.forkLsn)}, before this node's replay LSN ${formatLsn(local.replayLsn)}`;
    this.lastNote = undefined;
    this.log.warn({ silentMs }, `timeline divergence: this node (${position}) cannot follow ${describe(primary)}: ${where}; ${this.problem}`);
  }

  /**
   * The {@link problem}, for the keeper's report: from this call on, a divergence found is
   * handed to its repair ({@link takeDivergence}), so that the monitor hears of a rewind before
   * it starts.
   */
  reportProblem(): string | undefined {
    if (this.pending) this.pending.carried = true;
    return this.problem;
  }

  /**
   * The divergence the last check found, for its repair, at most once, only once a report has
   * carried its problem ({@link reportProblem}), only for a repair from the primary it was
   * found against (the check may end after the monitor named another), and only while it is
   * fresh (found within `DIVERGENCE_CHECK_INTERVAL_MS`). Otherwise it is dropped and the
   * timelines are compared again first. The {@link problem} stays until the standby streams.
   *
   * @param primaryNodeId - the node the standby is to follow now.
   */
  takeDivergence(nowMs: number, primaryNodeId: number): Divergence | undefined {
    const pending = this.pending;
    if (!pending || !pending.carried) return undefined;
    this.pending = undefined;
    if (pending.primaryNodeId !== primaryNodeId || nowMs - pending.foundAtMs > DIVERGENCE_CHECK_INTERVAL_MS) return undefined;
    return pending.divergence;
  }

  /** Logs a check's outcome once while it stays the same. */
  private note(level: 'info' | 'warn', message: string): void {
    if (message === this.lastNote) return;
    this.lastNote = message;
    this.log[level](message);
  }
}
