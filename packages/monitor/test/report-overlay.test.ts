/**
 * The etcd adapter's report overlay (`store/etcd/report-overlay.ts`): a new leader's grace
 * covers a standby's streaming time too, in the report that first reaches it, not only in reads;
 * and what a report makes it write: nothing, only a due LSN, or the node.
 */
import { describe, expect, it } from 'vitest';
import type { NodeReport, TransitionProgress } from '@pgha/shared';
import type { NodeRecord } from '../src/store/records.js';
import { LSN_WRITE_INTERVAL_MS, ReportOverlay, applyReport, mergeLiveness, mergedReportedAtMs, type NodeLiveness } from '../src/store/etcd/report-overlay.js';

const T0 = Date.UTC(2026, 11, 5, 5, 0, 0);

/** A secondary as the store holds it: its key last written (streaming) 8 s before the gain. */
function storedStandby(): NodeRecord {
  const written = new Date(T0 - 8_000);
  return {
    nodeId: 2, formationId: 'default', groupId: 0, name: 'node2', host: '127.0.0.1', port: 5433,
    candidatePriority: 50, replicationQuorum: true, reportedState: 'secondary', goalState: 'secondary',
    reportedAt: written, postgresRunning: true, isInRecovery: true, reportedLsn: '0/3000148', reportedTimeline: 1,
    upstreamStreaming: true, lastStreamingAt: written, transitionInProgress: null, transitionProgress: null,
    health: 'good', healthFailures: 0, healthCheckedAt: written, probeInRecovery: true, goalChangedAt: written,
    goalRevision: '7', createdAt: written, reportedSyncStandbyNames: null, shutdownCheckpointLsn: null, destroyRequested: false,
    reportedProblem: null, postgresSsl: false, httpAddress: null, lastSelfFenceAt: null, postgresParameters: [], reportedParameters: null, restartRequest: 0, restartRequestedAt: null, restartDone: 0,
  };
}

/** The standby's first report to the new leader, 300 ms after the gain: its primary is gone, its WAL receiver stopped. */
const REPORT: NodeReport = { reportedState: 'secondary', postgresRunning: true, isInRecovery: true, lsn: '0/3000148', timeline: 1, upstreamStreaming: false };

describe('applyReport after a gain of leadership', () => {
  it('keeps the streaming time at the gain for a standby that streamed as far as the store knows', () => {
    const overlay = new ReportOverlay(T0 - 60_000);
    overlay.startGrace('default', T0);
    const applied = applyReport(storedStandby(), undefined, REPORT, T0 + 300, 0, overlay.graceFrom('default'));
    expect(applied.node.lastStreamingAt?.getTime()).toBe(T0);
    expect(applied.live.lastStreamingAtMs).toBe(T0);
  });

  it('without a grace, the stored streaming time stands (8 s old)', () => {
    const applied = applyReport(storedStandby(), undefined, REPORT, T0 + 300);
    expect(applied.node.lastStreamingAt?.getTime()).toBe(T0 - 8_000);
  });
});

describe('applyReport: what it writes', () => {
  const streaming: NodeReport = { ...REPORT, upstreamStreaming: true };
  const live = (lsnWrittenAtMs: number) => ({ reportedAtMs: T0, reportedLsn: '0/3000148', lastStreamingAtMs: T0, transitionProgress: null, lsnWrittenAtMs });

  it('nothing for the same facts and LSN', () => {
    const applied = applyReport(storedStandby(), live(T0), streaming, T0 + 500);
    expect({ write: applied.write, lsnOnly: applied.lsnOnly }).toEqual({ write: false, lsnOnly: false });
  });

  it('nothing for a moved LSN written less than LSN_WRITE_INTERVAL_MS ago; only the LSN once it is due', () => {
    const moved = { ...streaming, lsn: '0/3000200' };
    expect(applyReport(storedStandby(), live(T0), moved, T0 + LSN_WRITE_INTERVAL_MS - 1).write).toBe(false);
    const due = applyReport(storedStandby(), live(T0), moved, T0 + LSN_WRITE_INTERVAL_MS);
    expect({ write: due.write, lsnOnly: due.lsnOnly }).toEqual({ write: true, lsnOnly: true });
  });

  it('after a write, the next LSN write comes due within half an interval of the jitter: a fleet\'s writes after one change do not come due together', () => {
    const moved = { ...streaming, lsn: '0/3000200', problem: 'disk full' };
    const jitters = [0, LSN_WRITE_INTERVAL_MS / 2, LSN_WRITE_INTERVAL_MS - 1];
    const writtenAt = jitters.map((j) => applyReport(storedStandby(), live(T0), moved, T0 + 1_000, j).live.lsnWrittenAtMs);
    expect(writtenAt).toEqual([T0 + 1_000, T0 + 1_000 - LSN_WRITE_INTERVAL_MS / 4, T0 + 1_000 - (LSN_WRITE_INTERVAL_MS - 1) / 2]);
    // Never more than the interval without an LSN write: the latest comes due a full interval after the write.
    const next = { ...streaming, lsn: '0/3000300', problem: 'disk full' };
    const lastWritten = { ...live(T0), lsnWrittenAtMs: writtenAt[0]! };
    expect(applyReport({ ...storedStandby(), reportedProblem: 'disk full' }, lastWritten, next, T0 + 1_000 + LSN_WRITE_INTERVAL_MS).lsnOnly).toBe(true);
  });

  it("nothing for the same running parameters sent again, whatever the order of each entry's fields; the node when a value changed", () => {
    const stored = { ...storedStandby(), reportedParameters: { pendingRestart: [], running: [{ name: 'max_connections', value: '100' }] } };
    const again = { ...streaming, parameters: { running: [{ value: '100', name: 'max_connections' }], pendingRestart: [] } };
    expect(applyReport(stored, live(T0), again, T0 + 500).write).toBe(false);
    const changed = { ...streaming, parameters: { pendingRestart: ['max_connections'], running: [{ name: 'max_connections', value: '100' }] } };
    const applied = applyReport(stored, live(T0), changed, T0 + 500);
    expect({ write: applied.write, lsnOnly: applied.lsnOnly }).toEqual({ write: true, lsnOnly: false });
  });

  it('the same stored and reported parameter objects, report after report: nothing; another list between them is still a change', () => {
    const stored = { ...storedStandby(), reportedParameters: Object.freeze({ pendingRestart: [], running: [{ name: 'max_connections', value: '100' }] }) };
    // As reportBody hands them on: one frozen object per distinct list, shared by the reports that send it.
    const same = Object.freeze({ pendingRestart: [], running: [{ name: 'max_connections', value: '100' }] });
    const other = Object.freeze({ pendingRestart: [], running: [{ name: 'max_connections', value: '200' }] });
    const writes = [same, same, other, same, other].map((parameters) => applyReport(stored, live(T0), { ...streaming, parameters }, T0 + 500).write);
    expect(writes).toEqual([false, false, true, false, true]);
  });

  it("a standby that stopped streaming keeps the streaming time of this monitor's last report of it, newer than the store's", () => {
    const applied = applyReport(storedStandby(), live(T0), REPORT, T0 + 500);
    expect(applied.node.lastStreamingAt?.getTime()).toBe(T0);
    expect(applied.node.reportedAt?.getTime()).toBe(T0 + 500);
  });

  it('the node, not only the LSN, when a persisted fact changed with it', () => {
    const applied = applyReport(storedStandby(), live(T0), { ...streaming, lsn: '0/3000200', problem: 'disk full' }, T0 + LSN_WRITE_INTERVAL_MS);
    expect({ write: applied.write, lsnOnly: applied.lsnOnly }).toEqual({ write: true, lsnOnly: false });
  });
});

describe('applyReport: whether a decision must look at the report (factsChanged)', () => {
  const streaming: NodeReport = { ...REPORT, upstreamStreaming: true };
  const live = (reportedAtMs: number, transitionProgress: TransitionProgress | null = null) => ({ reportedAtMs, reportedLsn: '0/3000148', lastStreamingAtMs: reportedAtMs, transitionProgress, lsnWrittenAtMs: reportedAtMs });
  const FRESH_MS = 1000;

  it('no change for the same facts, a moved LSN, and the previous report heard 500 ms before', () => {
    expect(applyReport(storedStandby(), live(T0), { ...streaming, lsn: '0/3000200' }, T0 + 500, 0, undefined, FRESH_MS).factsChanged).toBe(false);
  });

  it('a change when a persisted fact changed (the WAL receiver stopped)', () => {
    expect(applyReport(storedStandby(), live(T0), REPORT, T0 + 500, 0, undefined, FRESH_MS).factsChanged).toBe(true);
  });

  it("a change, written at once, when the shutdown checkpoint's LSN came or went (as X/Y)", () => {
    const came = applyReport(storedStandby(), live(T0), { ...streaming, shutdownCheckpointLsn: '0/300002a' }, T0 + 500, 0, undefined, FRESH_MS);
    expect({ factsChanged: came.factsChanged, write: came.write, lsnOnly: came.lsnOnly, lsn: came.node.shutdownCheckpointLsn }).toEqual({ factsChanged: true, write: true, lsnOnly: false, lsn: '0/300002A' });
    const kept = applyReport(came.node, came.live, { ...streaming, shutdownCheckpointLsn: '0/300002A' }, T0 + 1000, 0, undefined, FRESH_MS);
    expect({ factsChanged: kept.factsChanged, write: kept.write }).toEqual({ factsChanged: false, write: false });
    const went = applyReport(came.node, came.live, streaming, T0 + 1000, 0, undefined, FRESH_MS);
    expect({ factsChanged: went.factsChanged, write: went.write, lsn: went.node.shutdownCheckpointLsn }).toEqual({ factsChanged: true, write: true, lsn: null });
  });

  it('a change when the keeper was not heard within freshMs, or never by this monitor', () => {
    expect(applyReport(storedStandby(), live(T0), streaming, T0 + 1001, 0, undefined, FRESH_MS).factsChanged).toBe(true);
    expect(applyReport(storedStandby(), undefined, streaming, T0 + 500, 0, undefined, FRESH_MS).factsChanged).toBe(true);
  });

  it('a change while a transition is under way, or just ended', () => {
    const progress: TransitionProgress = { phase: 'basebackup', doneBytes: 1024, totalBytes: null };
    expect(applyReport(storedStandby(), live(T0), { ...streaming, transitionProgress: progress }, T0 + 500, 0, undefined, FRESH_MS).factsChanged).toBe(true);
    expect(applyReport(storedStandby(), live(T0, progress), streaming, T0 + 500, 0, undefined, FRESH_MS).factsChanged).toBe(true);
  });

  it('a change for a report that carries a self-fence, even one already recorded', () => {
    const fenced = { ...storedStandby(), lastSelfFenceAt: new Date(T0 - 1000) };
    expect(applyReport(fenced, live(T0), { ...streaming, selfFence: { fencedAtMs: T0 - 1000, reason: 'network partition' } } as NodeReport, T0 + 500, 0, undefined, FRESH_MS).factsChanged).toBe(true);
  });

  it('always a change without freshMs', () => {
    expect(applyReport(storedStandby(), live(T0), streaming, T0 + 500).factsChanged).toBe(true);
  });
});

describe('mergedReportedAtMs: the report time mergeLiveness gives, without the record', () => {
  const live = (reportedAtMs: number): NodeLiveness => ({ reportedAtMs, reportedLsn: '0/3000148', lastStreamingAtMs: null, transitionProgress: null, lsnWrittenAtMs: reportedAtMs });
  const never: NodeRecord = { ...storedStandby(), reportedAt: null };
  const cases: [string, NodeRecord, NodeLiveness | undefined, number | undefined][] = [
    ['the stored time when the overlay has nothing', storedStandby(), undefined, undefined],
    ["the overlay's newer report", storedStandby(), live(T0), undefined],
    ["the stored time when the overlay's is older", storedStandby(), live(T0 - 20_000), undefined],
    ['the grace start when both are older', storedStandby(), live(T0 - 20_000), T0 - 1_000],
    ['the overlay when it is after the grace start', storedStandby(), live(T0), T0 - 1_000],
    ['null for a node that never reported, grace or not', never, undefined, T0],
    ["the overlay's for a node never written with a report", never, live(T0 - 3_000), T0],
  ];
  for (const [what, record, l, grace] of cases) {
    it(what, () => {
      expect(mergedReportedAtMs(record, l, grace)).toBe(mergeLiveness(record, l, grace).reportedAt?.getTime() ?? null);
    });
  }
});
