/**
 * The keeper's timeline-divergence rule, pure: has this standby replayed WAL that the timeline
 * of the node it follows never had, so that its WAL receiver can never stream from it again?
 *
 * That happens to a standby that received WAL from the old primary past the point where the
 * new primary's timeline forked off (the new primary never received that WAL): Postgres then
 * logs, over and over, "requested starting point X on timeline N is not in this server's
 * history" (the WAL receiver) and "new timeline N forked off current database system timeline
 * M before current recovery point X" (the startup process), and the standby stays where it is.
 * The proof the keeper acts on is not those log lines but the upstream's own timeline history
 * (the `TIMELINE_HISTORY` replication command) against the standby's timeline and replay LSN.
 *
 * Source: pg_auto_failover has no such check (its keeper rewinds only a demoted old primary);
 * Patroni's `Rewind._check_timeline_and_lsn` (`postgresql/rewind.py`) compares the same two
 * things: the leader's `TIMELINE_HISTORY` and the replica's timeline and replay LSN.
 */
import { formatLsn, parseLsn, type Lsn } from '@pgha/shared/base';

/** One line of a timeline history file: timeline `timeline` ended at `switchLsn`, where its child began. */
export interface TimelineHistoryEntry {
  readonly timeline: number;
  readonly switchLsn: Lsn;
}

/**
 * Parses a timeline history file (`0000000N.history`, what `TIMELINE_HISTORY N` returns): one
 * line per ancestor, `parentTLI <tab> switchpoint <tab> reason`; blank lines and lines starting
 * with `#` are ignored, as Postgres's `readTimeLineHistory` does.
 *
 * @returns the ancestors of timeline N, oldest first.
 * @throws RangeError on a line that is not `TLI X/Y …`, or timelines that do not increase.
 *
 * ### Examples
 * ```ts
 * parseTimelineHistory('1\t0/4000000\tno recovery target specified\n')
 * // [{ timeline: 1, switchLsn: 0x4000000n }]
 * ```
 */
export function parseTimelineHistory(text: string): TimelineHistoryEntry[] {
  const entries: TimelineHistoryEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\d+)\s+([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})(?:\s|$)/.exec(line);
    if (!m) throw new RangeError(`invalid timeline history line "${line}": expected "TLI<tab>X/Y<tab>reason"`);
    const timeline = Number(m[1]);
    const last = entries.at(-1);
    if (last && timeline <= last.timeline) throw new RangeError(`invalid timeline history: timeline ${timeline} after ${last.timeline} (timelines must increase)`);
    entries.push({ timeline, switchLsn: parseLsn(m[2]!) });
  }
  return entries;
}

const WAL_FILE = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;

/**
 * The timeline a standby replays on, from the names of the WAL segment files in its `pg_wal`
 * (`pg_ls_waldir()`): the highest timeline among the files of the segment that holds the last
 * byte replayed (`lsn - 1`). A standby writes the WAL it receives into files named after the
 * timeline it streams, so that file exists with the timeline the WAL came on; Postgres 15 has
 * no SQL function for the replay timeline, and `pg_control_checkpoint()` shows the timeline of
 * the last restartpoint, which can be older (a standby that followed a promotion a moment ago).
 * (Patroni asks the standby itself with `IDENTIFY_SYSTEM` over a replication connection; that
 * needs a `local replication` line in pg_hba.conf, which an adopted cluster may not have.)
 *
 * @param fileNames - names in `pg_wal` (others than 24 hex digits are ignored).
 * @param lsn - the replay LSN.
 * @param walSegmentBytes - `wal_segment_size` in bytes (a power of two, 1 MB..1 GB).
 * @returns the timeline, or undefined when no file holds that segment (or `lsn` is 0/0).
 *
 * ### Examples
 * ```ts
 * walSegmentTimeline(['000000010000000000000004', '000000020000000000000004'], lsn(0x4000100n), 16 * 2 ** 20) // 2
 * ```
 */
export function walSegmentTimeline(fileNames: readonly string[], lsn: Lsn, walSegmentBytes: number): number | undefined {
  if (lsn === 0n) return undefined;
  const segmentBytes = BigInt(walSegmentBytes);
  const segmentsPerId = 0x100000000n / segmentBytes;
  const segno = (lsn - 1n) / segmentBytes;
  const wanted = [segno / segmentsPerId, segno % segmentsPerId].map((n) => n.toString(16).toUpperCase().padStart(8, '0')).join('');
  let timeline: number | undefined;
  for (const name of fileNames) {
    const m = WAL_FILE.exec(name);
    if (!m || `${m[2]}${m[3]}` !== wanted) continue;
    const tli = parseInt(m[1]!, 16);
    if (timeline === undefined || tli > timeline) timeline = tli;
  }
  return timeline;
}

/** Where a standby's recovery stands. */
export interface StandbyPosition {
  /** The timeline it replays on (`readLocalTimeline`: {@link walSegmentTimeline}, or the control file's if newer). */
  readonly timeline: number;
  /** `pg_last_wal_replay_lsn()`: the end of the last record replayed. */
  readonly replayLsn: Lsn;
}

/** The timeline of the node a standby follows, as the replication protocol tells it. */
export interface UpstreamTimeline {
  /** Its current timeline (`IDENTIFY_SYSTEM`). */
  readonly timeline: number;
  /** The ancestors of that timeline (`TIMELINE_HISTORY`); empty on timeline 1. */
  readonly history: readonly TimelineHistoryEntry[];
}

/** A standby that cannot follow its upstream: why, in numbers. */
export interface Divergence {
  /** The standby's timeline and replay LSN. */
  readonly standby: StandbyPosition;
  /** The upstream's current timeline. */
  readonly upstreamTimeline: number;
  /**
   * Where the upstream's history leaves the standby's timeline (its switchpoint); null when the
   * standby's timeline is not in that history at all.
   */
  readonly forkLsn: Lsn | null;
}

/**
 * The divergence rule. A standby on timeline T at replay LSN L can stream from an upstream on
 * timeline U exactly when (T, L) lies on U's history: T = U, or T is an ancestor of U in U's
 * history file and L is at or before the point where T ended there (its switchpoint S). Hence:
 *
 * - U ≤ T → not diverged. Same timeline: the standby is behind (or its upstream is), which
 *   streaming fixes; a standby on a newer timeline than its upstream is not for this rule.
 * - T an ancestor of U and L ≤ S → not diverged: the standby is behind the fork and switches to
 *   U when it reaches S.
 * - T an ancestor of U and L > S → diverged at S: the standby replayed WAL of T that U never had.
 * - T not in U's history → diverged (`forkLsn` null): none of the standby's WAL on T is on U.
 *
 * The replay LSN is the one that counts, not the received one: WAL received past S but not
 * replayed is ignored by the startup process when it switches to U (Postgres compares its
 * recovery point, `replayEndRecPtr`, with the switchpoint).
 *
 * @returns the divergence, or undefined when the standby can follow.
 *
 * ### Examples
 * ```ts
 * const upstream = { timeline: 2, history: [{ timeline: 1, switchLsn: lsn(0x4000000n) }] };
 * timelineDivergence({ timeline: 1, replayLsn: lsn(0x400fb50n) }, upstream)?.forkLsn // 0x4000000n
 * timelineDivergence({ timeline: 1, replayLsn: lsn(0x3000000n) }, upstream) // undefined: behind the fork
 * ```
 */
export function timelineDivergence(standby: StandbyPosition, upstream: UpstreamTimeline): Divergence | undefined {
  if (upstream.timeline <= standby.timeline) return undefined;
  const entry = upstream.history.find((e) => e.timeline === standby.timeline);
  if (entry && standby.replayLsn <= entry.switchLsn) return undefined;
  return { standby, upstreamTimeline: upstream.timeline, forkLsn: entry ? entry.switchLsn : null };
}

/**
 * The problem a diverged standby reports while it cannot follow (stable while it lasts: no
 * position that moves).
 *
 * @param whose - "the primary's" (or another upstream's, in the same form).
 *
 * ### Examples
 * ```ts
 * divergenceProblem(d, "the primary's") // "diverged from the primary's timeline 2 at 0/4000000: rewinding"
 * ```
 */
export function divergenceProblem(d: Divergence, whose: string): string {
  return d.forkLsn === null
    ? `diverged from ${whose} timeline ${d.upstreamTimeline}: this node's timeline ${d.standby.timeline} is not in its history: rewinding`
    : `diverged from ${whose} timeline ${d.upstreamTimeline} at ${formatLsn(d.forkLsn)}: rewinding`;
}

/** How long a standby's WAL receiver must have stopped streaming before the keeper compares timelines (ms). */
export const DIVERGENCE_CHECK_AFTER_MS = 2_000;
/** Least time between two timeline comparisons while the WAL receiver still does not stream (ms). */
export const DIVERGENCE_CHECK_INTERVAL_MS = 5_000;

/**
 * Is a timeline comparison due? Only while the WAL receiver has not streamed for
 * {@link DIVERGENCE_CHECK_AFTER_MS}, and then every {@link DIVERGENCE_CHECK_INTERVAL_MS}: a
 * streaming standby costs nothing, and a WAL receiver that reconnects after a restart of its
 * upstream (well under a second with pgha's `wal_retrieve_retry_interval`) is never checked.
 *
 * @param notStreamingSinceMs - when the keeper first saw the WAL receiver not streaming (ms), undefined while it streams.
 * @param lastCheckMs - when the last comparison ran in this stretch (ms), undefined before the first.
 */
export function divergenceCheckDue(nowMs: number, notStreamingSinceMs: number | undefined, lastCheckMs: number | undefined): boolean {
  if (notStreamingSinceMs === undefined || nowMs - notStreamingSinceMs < DIVERGENCE_CHECK_AFTER_MS) return false;
  return lastCheckMs === undefined || nowMs - lastCheckMs >= DIVERGENCE_CHECK_INTERVAL_MS;
}

/** Where the WAL of an old primary ends, read from its stopped data directory (`readWalEnd`). */
export interface WalEnd {
  /** The timeline it wrote its WAL on. */
  readonly timeline: number;
  /** Where its last valid WAL record starts: the last one crash recovery would replay. */
  readonly lastRecordLsn: Lsn;
}

/**
 * The rejoin rule: must an old primary whose Postgres crashed be rewound before it can follow
 * `upstream` (the new primary)? Not when its WAL is a prefix of the upstream's timeline: its
 * timeline T is an ancestor of the upstream's timeline U (in U's history, so T < U) and its last
 * valid record starts before S, the point where U forked off T. Then Postgres, started as a
 * standby, replays its own WAL up to its end (crash recovery replays all of `pg_wal` before a
 * standby streams), which is at or before S, and follows U from there, as any standby behind the
 * fork does; with WAL past S it could not (see {@link timelineDivergence}).
 *
 * Why a record that starts before S ends at S or before: up to S, timeline T's WAL is the same
 * bytes on both nodes (the upstream received it, directly or through a standby, from this node,
 * the only one that wrote T), and S is the end of a record in it (the last one the upstream
 * replayed before its promotion). Records follow one another without gaps, so a record of this
 * node that starts before S is one of those, and ends at S or before it.
 *
 * Postgres's own check is the same comparison (pg_rewind's "no rewind required"), but pg_rewind
 * first runs crash recovery on a crashed target, whose end-of-recovery and shutdown checkpoints
 * are WAL past S: after a crash it always rewinds, and copies every WAL segment file the
 * upstream holds (docs/timeouts.md, "Rejoining after a crash").
 *
 * @returns undefined when no rewind is needed; otherwise why one is, as a phrase.
 *
 * ### Examples
 * ```ts
 * const upstream = { timeline: 2, history: [{ timeline: 1, switchLsn: lsn(0x3024a00n) }] };
 * rewindReason({ timeline: 1, lastRecordLsn: lsn(0x3024778n) }, upstream) // undefined
 * rewindReason({ timeline: 1, lastRecordLsn: lsn(0x3024a00n) }, upstream)
 * // "its last WAL record starts at 0/3024A00, at or past 0/3024A00, where the primary's timeline 2 forked off timeline 1"
 * ```
 */
export function rewindReason(end: WalEnd, upstream: UpstreamTimeline): string | undefined {
  if (upstream.timeline <= end.timeline) return `its timeline ${end.timeline} is not older than the primary's timeline ${upstream.timeline}`;
  const entry = upstream.history.find((e) => e.timeline === end.timeline);
  if (!entry) return `its timeline ${end.timeline} is not in the history of the primary's timeline ${upstream.timeline}`;
  if (end.lastRecordLsn >= entry.switchLsn) {
    return `its last WAL record starts at ${formatLsn(end.lastRecordLsn)}, at or past ${formatLsn(entry.switchLsn)}, where the primary's timeline ${upstream.timeline} forked off timeline ${end.timeline}`;
  }
  return undefined;
}
