/**
 * The timeline-divergence rule without Postgres: parsing a timeline history file, the replay
 * timeline from WAL file names, the rule itself around every boundary, the rejoin rule of an
 * old primary after a crash, when a check is due, and the watch that applies it (with fake readers: a primary that does not answer, a standby
 * that is only behind, one that diverged, one that streams again).
 */
import { describe, expect, it } from 'vitest';
import { lsn, parseLsn, type GroupMember } from '@pgha/shared';
import {
  DIVERGENCE_CHECK_AFTER_MS,
  DIVERGENCE_CHECK_INTERVAL_MS,
  divergenceCheckDue,
  divergenceProblem,
  parseTimelineHistory,
  rewindReason,
  timelineDivergence,
  walSegmentTimeline,
  type UpstreamTimeline,
} from '../src/fsm/divergence-rule.js';
import { DivergenceWatch, type TimelineReader } from '../src/divergence-watch.js';
import { parseUpstreamTimeline, psqlRow, type LocalTimeline, type RemoteTimeline } from '../src/postgres/timeline-history.js';
import type { PostgresFacts } from '@pgha/keeper';
import { memoryLogger } from './memory-logger.js';

const MB16 = 16 * 1024 * 1024;

describe('parseTimelineHistory', () => {
  it('reads what TIMELINE_HISTORY returns (Postgres 15, one promotion)', () => {
    expect(parseTimelineHistory('1\t0/4000000\tno recovery target specified\n')).toEqual([{ timeline: 1, switchLsn: lsn(0x4000000n) }]);
  });

  it('reads several ancestors, skipping blank and comment lines, with any reason text', () => {
    const text = '# written by hand\n1\t0/4000000\tno recovery target specified\n\n2\t1/A0000028\tat restore point "before"\n  3\t1/B0000000\t\n';
    expect(parseTimelineHistory(text)).toEqual([
      { timeline: 1, switchLsn: parseLsn('0/4000000') },
      { timeline: 2, switchLsn: parseLsn('1/A0000028') },
      { timeline: 3, switchLsn: parseLsn('1/B0000000') },
    ]);
  });

  it('reads an empty file as no ancestors', () => {
    expect(parseTimelineHistory('')).toEqual([]);
  });

  it('refuses a line that is not TLI X/Y, and timelines that do not increase', () => {
    expect(() => parseTimelineHistory('one\t0/4000000\treason\n')).toThrow(RangeError);
    expect(() => parseTimelineHistory('1\t4000000\treason\n')).toThrow(/expected "TLI<tab>X\/Y<tab>reason"/);
    expect(() => parseTimelineHistory('2\t0/5000000\tx\n1\t0/6000000\ty\n')).toThrow(/timelines must increase/);
    expect(() => parseTimelineHistory('1\t0/5000000\tx\n1\t0/6000000\ty\n')).toThrow(/timelines must increase/);
  });
});

describe('walSegmentTimeline', () => {
  const files = ['000000010000000000000003', '000000010000000000000004', '000000020000000000000004', '000000020000000000000005', '00000002.history', '000000010000000000000005.partial'];

  it('takes the highest timeline among the files of the segment holding the last byte replayed', () => {
    expect(walSegmentTimeline(files, lsn(0x4000100n), MB16)).toBe(2);
    expect(walSegmentTimeline(files, lsn(0x3FFFFFFn), MB16)).toBe(1);
    expect(walSegmentTimeline(files, lsn(0x5000001n), MB16)).toBe(2);
  });

  it('counts an LSN at a segment boundary in the segment before it', () => {
    expect(walSegmentTimeline(files, lsn(0x4000000n), MB16)).toBe(1);
    expect(walSegmentTimeline(files, lsn(0x5000000n), MB16)).toBe(2);
  });

  it('is undefined without a file for the segment (history and .partial files do not count), and for 0/0', () => {
    expect(walSegmentTimeline(files, lsn(0x6000100n), MB16)).toBeUndefined();
    expect(walSegmentTimeline(['000000010000000000000006.partial'], lsn(0x6000100n), MB16)).toBeUndefined();
    expect(walSegmentTimeline(files, lsn(0n), MB16)).toBeUndefined();
  });

  it('splits the segment number into log id and segment for any segment size', () => {
    // 16 MB: 256 segments per log id; 1/0 is segment 0x100, in log 1 segment 0.
    expect(walSegmentTimeline(['0000000300000001000000FF', '000000030000000200000000'], parseLsn('2/1'), MB16)).toBe(3);
    expect(walSegmentTimeline(['0000000300000001000000FF'], parseLsn('2/0'), MB16)).toBe(3);
    // 1 GB: 4 segments per log id.
    expect(walSegmentTimeline(['0000000A0000000100000003'], parseLsn('1/C0000001'), 1024 * MB16 / 16)).toBe(10);
    expect(walSegmentTimeline(['0000000A000000010000000C'], parseLsn('1/C0000001'), 1024 * MB16 / 16)).toBeUndefined();
  });
});

describe('timelineDivergence', () => {
  const two: UpstreamTimeline = { timeline: 2, history: [{ timeline: 1, switchLsn: parseLsn('0/4000000') }] };
  const three: UpstreamTimeline = { timeline: 3, history: [{ timeline: 1, switchLsn: parseLsn('0/4000000') }, { timeline: 2, switchLsn: parseLsn('0/6000000') }] };

  it('finds a standby that replayed past the fork point of its timeline', () => {
    const standby = { timeline: 1, replayLsn: parseLsn('0/400FB50') };
    expect(timelineDivergence(standby, two)).toEqual({ standby, upstreamTimeline: 2, forkLsn: parseLsn('0/4000000') });
    expect(timelineDivergence({ timeline: 1, replayLsn: parseLsn('0/4000001') }, two)?.forkLsn).toBe(parseLsn('0/4000000'));
    expect(timelineDivergence({ timeline: 2, replayLsn: parseLsn('0/6000001') }, three)?.forkLsn).toBe(parseLsn('0/6000000'));
  });

  it('leaves a standby at or behind the fork point alone: it switches timelines when it gets there', () => {
    expect(timelineDivergence({ timeline: 1, replayLsn: parseLsn('0/4000000') }, two)).toBeUndefined();
    expect(timelineDivergence({ timeline: 1, replayLsn: parseLsn('0/3000000') }, two)).toBeUndefined();
    expect(timelineDivergence({ timeline: 1, replayLsn: parseLsn('0/3FFFFFF') }, three)).toBeUndefined();
    expect(timelineDivergence({ timeline: 2, replayLsn: parseLsn('0/5000000') }, three)).toBeUndefined();
  });

  it('leaves a standby on the upstream\'s timeline (behind, or ahead), or on a newer one, alone', () => {
    expect(timelineDivergence({ timeline: 2, replayLsn: parseLsn('0/1000000') }, two)).toBeUndefined();
    expect(timelineDivergence({ timeline: 2, replayLsn: parseLsn('9/0') }, two)).toBeUndefined();
    expect(timelineDivergence({ timeline: 3, replayLsn: parseLsn('9/0') }, two)).toBeUndefined();
    expect(timelineDivergence({ timeline: 1, replayLsn: parseLsn('9/0') }, { timeline: 1, history: [] })).toBeUndefined();
  });

  it('finds a standby whose timeline is not in the upstream\'s history at all', () => {
    const forkedFromOne: UpstreamTimeline = { timeline: 3, history: [{ timeline: 1, switchLsn: parseLsn('0/4000000') }] };
    const standby = { timeline: 2, replayLsn: parseLsn('0/3000000') };
    expect(timelineDivergence(standby, forkedFromOne)).toEqual({ standby, upstreamTimeline: 3, forkLsn: null });
  });

  it('says so in one stable sentence', () => {
    const d = timelineDivergence({ timeline: 1, replayLsn: parseLsn('0/400FB50') }, two)!;
    expect(divergenceProblem(d, "the primary's")).toBe("diverged from the primary's timeline 2 at 0/4000000: rewinding");
    const lost = timelineDivergence({ timeline: 2, replayLsn: parseLsn('0/3000000') }, { timeline: 3, history: [{ timeline: 1, switchLsn: parseLsn('0/4000000') }] })!;
    expect(divergenceProblem(lost, "the primary's")).toBe("diverged from the primary's timeline 3: this node's timeline 2 is not in its history: rewinding");
  });
});

describe('divergenceCheckDue', () => {
  const since = 1_000_000;
  it('waits for the WAL receiver to have stopped streaming for a while, then checks at an interval', () => {
    expect(divergenceCheckDue(since + 10 * DIVERGENCE_CHECK_AFTER_MS, undefined, undefined)).toBe(false);
    expect(divergenceCheckDue(since + DIVERGENCE_CHECK_AFTER_MS - 1, since, undefined)).toBe(false);
    expect(divergenceCheckDue(since + DIVERGENCE_CHECK_AFTER_MS, since, undefined)).toBe(true);
    const checked = since + DIVERGENCE_CHECK_AFTER_MS;
    expect(divergenceCheckDue(checked + DIVERGENCE_CHECK_INTERVAL_MS - 1, since, checked)).toBe(false);
    expect(divergenceCheckDue(checked + DIVERGENCE_CHECK_INTERVAL_MS, since, checked)).toBe(true);
  });
});

describe('psqlRow', () => {
  it('splits a row printed with NUL separators', () => {
    expect(psqlRow('7715617485808609605\u00002\u00000/4000278\u0000\u0000')).toEqual(['7715617485808609605', '2', '0/4000278', '']);
    expect(psqlRow('00000002.history\u00001\t0/4000000\tno recovery target specified\n\u0000')).toEqual(['00000002.history', '1\t0/4000000\tno recovery target specified\n']);
  });
});

describe('parseUpstreamTimeline', () => {
  // What readUpstreamTimeline's psql printed (Postgres 15): IDENTIFY_SYSTEM's row, then TIMELINE_HISTORY's.
  const timeline2 = '7715989223481134360\u00002\u00000/3000108\u0000\u000000000002.history\u00001\t0/3000000\tno recovery target specified\n\u0000';

  it('reads the timeline and its history', () => {
    expect(parseUpstreamTimeline(psqlRow(timeline2))).toEqual({ systemId: '7715989223481134360', timeline: 2, history: [{ timeline: 1, switchLsn: lsn(0x3000000n) }] });
  });

  it('reads timeline 1, whose history psql failed to read (no file), as no history', () => {
    expect(parseUpstreamTimeline(psqlRow('7715989223481134360\u00001\u00000/1500790\u0000\u0000'))).toEqual({ systemId: '7715989223481134360', timeline: 1, history: [] });
  });

  it('says what is wrong with an answer of another shape', () => {
    expect(() => parseUpstreamTimeline([])).toThrow('unexpected answer to IDENTIFY_SYSTEM: []');
    expect(() => parseUpstreamTimeline(['x', '2', '0/1', ''])).toThrow('unexpected answer to IDENTIFY_SYSTEM');
    expect(() => parseUpstreamTimeline(['7715989223481134360', '2', '0/3000108', ''])).toThrow('no answer to TIMELINE_HISTORY 2: []');
    expect(() => parseUpstreamTimeline(['7715989223481134360', '2', '0/3000108', '', '00000002.history', 'garbage'])).toThrow('unexpected answer to TIMELINE_HISTORY 2: invalid timeline history line "garbage"');
  });
});

describe('DivergenceWatch', () => {
  const primary: GroupMember = { nodeId: 2, name: 'b', host: '127.0.0.1', port: 5433, goalState: 'wait_primary', reportedState: 'wait_primary' };
  const standbyFacts = (streaming: boolean): PostgresFacts => ({
    isInRecovery: true, lsn: parseLsn('0/400FB50'), timeline: 1, upstreamStreaming: streaming, synchronousStandbyNames: '', replayLsn: parseLsn('0/400FB50'), upstreamEndLsn: null,
  });
  const local: LocalTimeline = { systemId: '77', timeline: 1, replayLsn: parseLsn('0/400FB50') };
  const forked: RemoteTimeline = { systemId: '77', timeline: 2, history: [{ timeline: 1, switchLsn: parseLsn('0/4000000') }] };

  /** A reader answering `upstream` (or throwing it), counting its calls. */
  function reader(upstream: RemoteTimeline | Error, mine: LocalTimeline = local): TimelineReader & { calls: number } {
    const r = {
      calls: 0,
      local: async () => mine,
      upstream: async () => {
        r.calls++;
        if (upstream instanceof Error) throw upstream;
        return upstream;
      },
    };
    return r;
  }

  /** A reader whose primary answers only when the test calls `answer` (as a primary whose machine died makes psql wait for its connect timeout). */
  function heldReader(): TimelineReader & { calls: number; answer: (r: RemoteTimeline | Error) => void } {
    let settle: ((r: RemoteTimeline | Error) => void) | undefined;
    const r = {
      calls: 0,
      local: async () => local,
      upstream: () => {
        r.calls++;
        return new Promise<RemoteTimeline>((resolve, reject) => {
          settle = (v) => (v instanceof Error ? reject(v) : resolve(v));
        });
      },
      answer: (v: RemoteTimeline | Error) => settle!(v),
    };
    return r;
  }

  /** Starts a check at `nowMs` and waits for its end, as the keeper's later ticks would: whether one started. */
  async function checkToEnd(watch: DivergenceWatch, nowMs: number, r: TimelineReader): Promise<boolean> {
    const started = await watch.check(nowMs, primary, r);
    await started?.done;
    return started !== undefined;
  }

  /** A watch that saw the WAL receiver stop at `t0` and is now due for its first check; `clock` is when a check ends. */
  function stoppedWatch(t0: number, clock = { ms: t0 + DIVERGENCE_CHECK_AFTER_MS }) {
    const { log, lines } = memoryLogger();
    const watch = new DivergenceWatch(log, () => clock.ms);
    watch.observe(standbyFacts(false), t0);
    return { watch, lines, clock, due: t0 + DIVERGENCE_CHECK_AFTER_MS };
  }

  it('costs nothing while the WAL receiver streams, or before it has stopped long enough', async () => {
    const { log } = memoryLogger();
    const watch = new DivergenceWatch(log);
    const r = reader(forked);
    watch.observe(standbyFacts(true), 0);
    expect(await checkToEnd(watch, 60_000, r)).toBe(false);
    watch.observe(standbyFacts(false), 60_000);
    expect(await checkToEnd(watch, 60_000 + DIVERGENCE_CHECK_AFTER_MS - 1, r)).toBe(false);
    expect(r.calls).toBe(0);
  });

  it('makes no decision while the primary does not answer, and says so once', async () => {
    const { watch, lines, due } = stoppedWatch(0);
    const r = reader(new Error('psql: error: connection to server at "127.0.0.1", port 5433 failed: Connection refused'));
    expect(await checkToEnd(watch, due, r)).toBe(true);
    expect(await checkToEnd(watch, due + DIVERGENCE_CHECK_INTERVAL_MS, r)).toBe(true);
    expect(r.calls).toBe(2);
    expect(watch.problem).toBeUndefined();
    expect(watch.takeDivergence(due + DIVERGENCE_CHECK_INTERVAL_MS, primary.nodeId)).toBeUndefined();
    const said = lines.filter((l) => l.msg.startsWith('timeline check: cannot read the timeline history of the primary (node 2 "b" at 127.0.0.1:5433)'));
    expect(said).toHaveLength(1);
    expect(said[0]!.msg).toContain('Connection refused; no decision');
  });

  it('does not find a standby that is only behind diverged', async () => {
    const { watch, lines, due } = stoppedWatch(0);
    const behind = reader(forked, { systemId: '77', timeline: 1, replayLsn: parseLsn('0/3000000') });
    await checkToEnd(watch, due, behind);
    expect(watch.problem).toBeUndefined();
    expect(watch.takeDivergence(due, primary.nodeId)).toBeUndefined();
    expect(lines.at(-1)!.msg).toBe('timeline check: the WAL receiver does not stream, but this node (timeline 1, replay LSN 0/3000000) is on the history of the primary (node 2 "b" at 127.0.0.1:5433), timeline 2: not diverged, no rewind');
  });

  it('makes no decision against a primary of another cluster', async () => {
    const { watch, lines, due } = stoppedWatch(0);
    await checkToEnd(watch, due, reader({ ...forked, systemId: '99' }));
    expect(watch.problem).toBeUndefined();
    expect(watch.takeDivergence(due, primary.nodeId)).toBeUndefined();
    expect(lines.at(-1)!.msg).toMatch(/has system identifier 99, this node 77: not a copy of the same cluster; no decision/);
  });

  it('finds a diverged standby, reports it, hands the divergence over once, and clears the problem when the standby streams', async () => {
    const { watch, lines, due } = stoppedWatch(0);
    await checkToEnd(watch, due, reader(forked));
    expect(watch.problem).toBe("diverged from the primary's timeline 2 at 0/4000000: rewinding");
    expect(lines.at(-1)!.msg).toBe('timeline divergence: this node (timeline 1, replay LSN 0/400FB50) cannot follow the primary (node 2 "b" at 127.0.0.1:5433): its timeline 2 forked off timeline 1 at 0/4000000, before this node\'s replay LSN 0/400FB50; diverged from the primary\'s timeline 2 at 0/4000000: rewinding');
    // Not before a report has carried the problem: the monitor hears of the rewind first.
    expect(watch.takeDivergence(due + 400, primary.nodeId)).toBeUndefined();
    expect(watch.reportProblem()).toBe("diverged from the primary's timeline 2 at 0/4000000: rewinding");
    expect(watch.takeDivergence(due + 500, primary.nodeId)).toEqual({ standby: local, upstreamTimeline: 2, forkLsn: parseLsn('0/4000000') });
    expect(watch.takeDivergence(due + 600, primary.nodeId)).toBeUndefined();
    // The repair stops Postgres: the problem stays meanwhile.
    watch.observe(undefined, due + 1000);
    expect(watch.problem).toBeDefined();
    watch.observe(standbyFacts(true), due + 20_000);
    expect(watch.problem).toBeUndefined();
    expect(lines.at(-1)!.msg).toBe('timeline divergence repaired: the WAL receiver streams on timeline 1');
  });

  it('hands over no divergence found too long ago: it is checked again first', async () => {
    const { watch, due } = stoppedWatch(0);
    await checkToEnd(watch, due, reader(forked));
    watch.reportProblem();
    expect(watch.takeDivergence(due + DIVERGENCE_CHECK_INTERVAL_MS + 1, primary.nodeId)).toBeUndefined();
    expect(watch.problem).toBeDefined();
  });

  it('starts its clock again after Postgres stopped answering', async () => {
    const { watch, due } = stoppedWatch(0);
    watch.observe(undefined, due - 1);
    watch.observe(standbyFacts(false), due);
    const r = reader(forked);
    expect(await checkToEnd(watch, due + DIVERGENCE_CHECK_AFTER_MS - 1, r)).toBe(false);
    expect(r.calls).toBe(0);
    expect(await checkToEnd(watch, due + DIVERGENCE_CHECK_AFTER_MS, r)).toBe(true);
  });

  it('returns to the tick before the primary answers; a later tick takes what it found, dated when it was found', async () => {
    const { watch, due, clock } = stoppedWatch(0);
    const r = heldReader();
    const started = await watch.check(due, primary, r);
    expect(started).toBeDefined();
    // The tick went on: nothing found yet, nothing to repair.
    expect(watch.problem).toBeUndefined();
    expect(watch.takeDivergence(due, primary.nodeId)).toBeUndefined();
    clock.ms = due + 2_000;
    r.answer(forked);
    await started!.done;
    expect(watch.reportProblem()).toBe("diverged from the primary's timeline 2 at 0/4000000: rewinding");
    // Fresh for DIVERGENCE_CHECK_INTERVAL_MS from its answer, not from the check's start.
    expect(watch.takeDivergence(due + 2_000 + DIVERGENCE_CHECK_INTERVAL_MS, primary.nodeId)?.forkLsn).toBe(parseLsn('0/4000000'));
  });

  it('hands a divergence only to a repair from the primary it was found against', async () => {
    const { watch, due } = stoppedWatch(0);
    await checkToEnd(watch, due, reader(forked));
    watch.reportProblem();
    // The monitor named another primary meanwhile: compare again with that one first.
    expect(watch.takeDivergence(due + 500, primary.nodeId + 1)).toBeUndefined();
    expect(watch.takeDivergence(due + 600, primary.nodeId)).toBeUndefined();
  });

  it('starts no second check while one waits for the primary', async () => {
    const { watch, due } = stoppedWatch(0);
    const r = heldReader();
    const first = await watch.check(due, primary, r);
    expect(await watch.check(due + DIVERGENCE_CHECK_INTERVAL_MS, primary, r)).toBeUndefined();
    expect(r.calls).toBe(1);
    r.answer(new Error('psql: error: connection to server at "127.0.0.1", port 5433 failed: timeout expired'));
    await first!.done;
    expect(watch.problem).toBeUndefined();
    expect(await watch.check(due + DIVERGENCE_CHECK_INTERVAL_MS, primary, r)).toBeDefined();
    expect(r.calls).toBe(2);
  });

  it('drops an answer that comes back after the standby was promoted, stopped or streamed again', async () => {
    const ends: [string, PostgresFacts | undefined][] = [
      ['promoted', { ...standbyFacts(false), isInRecovery: false, replayLsn: null }],
      ['stopped', undefined],
      ['streaming again', standbyFacts(true)],
    ];
    for (const [label, facts] of ends) {
      const { watch, due } = stoppedWatch(0);
      const r = heldReader();
      const started = await watch.check(due, primary, r);
      watch.observe(facts, due + 100);
      // Not streaming again at once: a new stretch, whose first check is not due yet.
      watch.observe(standbyFacts(false), due + 200);
      r.answer(forked);
      await started!.done;
      watch.reportProblem();
      expect({ label, problem: watch.problem, found: watch.takeDivergence(due + 300, primary.nodeId) }).toEqual({ label, problem: undefined, found: undefined });
    }
  });
});

describe('rewindReason (an old primary after a crash)', () => {
  const upstream: UpstreamTimeline = { timeline: 3, history: [{ timeline: 1, switchLsn: lsn(0x3000000n) }, { timeline: 2, switchLsn: lsn(0x3024a00n) }] };

  it('needs no rewind when its last record starts before the fork of its timeline', () => {
    expect(rewindReason({ timeline: 2, lastRecordLsn: lsn(0x3024778n) }, upstream)).toBeUndefined();
    expect(rewindReason({ timeline: 2, lastRecordLsn: lsn(0x3024a00n - 1n) }, upstream)).toBeUndefined();
    // An older ancestor: its WAL ends before the fork of timeline 1 too.
    expect(rewindReason({ timeline: 1, lastRecordLsn: lsn(0x2fffff0n) }, upstream)).toBeUndefined();
  });

  it('needs a rewind when its last record starts at the fork or past it', () => {
    expect(rewindReason({ timeline: 2, lastRecordLsn: lsn(0x3024a00n) }, upstream)).toBe("its last WAL record starts at 0/3024A00, at or past 0/3024A00, where the primary's timeline 3 forked off timeline 2");
    expect(rewindReason({ timeline: 1, lastRecordLsn: lsn(0x3000010n) }, upstream)).toBe("its last WAL record starts at 0/3000010, at or past 0/3000000, where the primary's timeline 3 forked off timeline 1");
  });

  it('needs a rewind when its timeline is not an ancestor of the primary\'s', () => {
    expect(rewindReason({ timeline: 3, lastRecordLsn: lsn(0x100n) }, upstream)).toBe("its timeline 3 is not older than the primary's timeline 3");
    expect(rewindReason({ timeline: 4, lastRecordLsn: lsn(0x100n) }, upstream)).toBe("its timeline 4 is not older than the primary's timeline 3");
    const sibling: UpstreamTimeline = { timeline: 4, history: [{ timeline: 1, switchLsn: lsn(0x3000000n) }, { timeline: 3, switchLsn: lsn(0x3100000n) }] };
    expect(rewindReason({ timeline: 2, lastRecordLsn: lsn(0x100n) }, sibling)).toBe("its timeline 2 is not in the history of the primary's timeline 4");
    expect(rewindReason({ timeline: 1, lastRecordLsn: lsn(0x100n) }, { timeline: 2, history: [] })).toBe("its timeline 1 is not in the history of the primary's timeline 2");
  });
});
