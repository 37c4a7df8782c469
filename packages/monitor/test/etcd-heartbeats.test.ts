/**
 * The etcd adapter's heartbeats (`recordHeartbeatsOn`, `store/etcd/etcd-repositories.ts`):
 * which reports it records in the monitor's memory alone, read from its copy of the store, and
 * which it leaves to the report transaction. Pure: the copy is a map of encoded keys, as the
 * mirror holds them. The same path on a real etcd: `test/store-contract.ts`, "heartbeats".
 */
import { describe, expect, it } from 'vitest';
import type { NodeReport } from '@pgha/shared';
import { groupKey, type FormationRecord, type NodeRecord } from '../src/store/records.js';
import { encodeFormation, encodeNode } from '../src/store/etcd/codec.js';
import { recordHeartbeatsOn, type EtcdShared, type HeartbeatMirror } from '../src/store/etcd/etcd-repositories.js';
import type { Kv } from '../src/store/etcd/etcd-transaction.js';
import { KeyedLocks, groupLockKey } from '../src/store/etcd/keyed-locks.js';
import { StoreKeys } from '../src/store/etcd/keys.js';
import { LSN_WRITE_INTERVAL_MS, ReportOverlay } from '../src/store/etcd/report-overlay.js';
import { nodeRecord } from './node-record.js';

const NOW = Date.UTC(2026, 11, 6, 20, 0, 0);
const keys = new StoreKeys('/pgha');

const FORMATION: FormationRecord = { formationId: 'default', kind: 'pgsql', dbname: 'postgres', numberSyncStandbys: 1, settings: {}, clientNetworks: [], replicationPassword: 'r', monitorProbePassword: 'p', postgresParameters: [] };

/** A primary's report that changes nothing but its LSN. */
const PRIMARY: NodeReport = { reportedState: 'primary', postgresRunning: true, isInRecovery: false, lsn: '0/3000200', timeline: 1, upstreamStreaming: false };

/** A store copy of one formation, its group 0 a primary (node 1) and two secondaries, each heard 300 ms ago; what the mirror lets a heartbeat read. */
function setup(over: { nodes?: NodeRecord[]; caughtUp?: boolean; leader?: boolean } = {}) {
  const nodes = over.nodes ?? [1, 2, 3].map((id) => nodeRecord(id, NOW));
  const kvs = new Map<string, Kv>();
  const put = (key: string, value: string, modRevision: string): void => void kvs.set(key, { key, value, modRevision, createRevision: '2' });
  put(keys.formation('default'), encodeFormation(FORMATION, NOW - 60_000), '3');
  for (const n of nodes) put(keys.node('default', n.nodeId), encodeNode(n), '7');
  const mirror: HeartbeatMirror = {
    caughtUpNow: () => over.caughtUp ?? true,
    get: (key) => kvs.get(key),
    range: (prefix) => [...kvs.values()].filter((kv) => kv.key.startsWith(prefix)).sort((a, b) => (a.key < b.key ? -1 : 1)),
  };
  const overlay = new ReportOverlay(NOW - 60_000);
  for (const n of nodes) overlay.set(n.nodeId, { reportedAtMs: NOW - 300, reportedLsn: n.reportedLsn, lastStreamingAtMs: n.lastStreamingAt?.getTime() ?? null, transitionProgress: null, lsnWrittenAtMs: NOW - 1_000 });
  const lsnDue: number[] = [];
  const locks = new KeyedLocks();
  const shared = {
    keys,
    overlay,
    locks,
    nodeFormations: new Map(nodes.map((n) => [n.nodeId, 'default'])),
    nodeGroups: new Map(nodes.map((n) => [n.nodeId, 0])),
    lsnWriteIntervalMs: LSN_WRITE_INTERVAL_MS,
    now: () => NOW,
    revisionBase: { value: 0n },
    lsnDue: (id: number) => void lsnDue.push(id),
  } as unknown as EtcdShared;
  const beat = (nodeId: number, report: NodeReport = PRIMARY) => recordHeartbeatsOn(shared, mirror, () => over.leader ?? true, [{ nodeId, report }]);
  return { beat, overlay, locks, lsnDue };
}

describe('recordHeartbeatsOn: what it records in memory', () => {
  it('a report that changes nothing but the time and the LSN: recorded in the overlay, with its group as the mirror holds it', () => {
    const { beat, overlay } = setup();
    const read = beat(1);
    const input = read.inputs.get(1)!;
    expect(input).toMatchObject({ recorded: true, factsChanged: false, before: { reportedProblem: null, lastSelfFenceAt: null } });
    expect(input.node).toMatchObject({ reportedLsn: '0/3000200', goalState: 'primary', goalRevision: '7' });
    expect(input.node.reportedAt?.getTime()).toBe(NOW);
    expect(overlay.get(1)).toMatchObject({ reportedAtMs: NOW, reportedLsn: '0/3000200' });
    const group = read.groups.get(groupKey('default', 0))!;
    expect(group.formation).toEqual(FORMATION);
    expect(group.nodes.map((n) => [n.nodeId, n.reportedLsn])).toEqual([[1, '0/3000200'], [2, '0/3000148'], [3, '0/3000148']]);
    expect(read.nowMs).toBe(NOW);
  });

  it('a keeper not heard within freshWithinMs: recorded, its liveness changed (factsChanged)', () => {
    const { beat, overlay } = setup();
    overlay.set(1, { ...overlay.get(1)!, reportedAtMs: NOW - 60_000 });
    expect(beat(1).inputs.get(1)).toMatchObject({ recorded: true, factsChanged: true });
  });

  it('a moving LSN that is due: recorded, and handed to the store\'s LSN batch', () => {
    const { beat, overlay, lsnDue } = setup();
    overlay.set(1, { ...overlay.get(1)!, lsnWrittenAtMs: NOW - LSN_WRITE_INTERVAL_MS });
    expect(beat(1).inputs.has(1)).toBe(true);
    expect(lsnDue).toEqual([1]);
  });
});

describe('recordHeartbeatsOn: what it leaves to the report transaction', () => {
  const cases: [string, () => ReturnType<typeof setup>, NodeReport][] = [
    ['a changed persisted fact (a problem)', () => setup(), { ...PRIMARY, problem: 'disk full' }],
    ['a changed reported state', () => setup(), { ...PRIMARY, reportedState: 'wait_primary' }],
    ['a self-fence', () => setup(), { ...PRIMARY, selfFence: { fencedAtMs: NOW, reason: 'network partition', fromState: 'primary', monitorSilentMs: 1_000, postgresStopped: true, unreachableMs: 2_000 } }],
    ['a transition', () => setup(), { ...PRIMARY, transitionInProgress: 'primary' }],
    ['a goal revision above the node\'s (the store was restored)', () => setup(), { ...PRIMARY, appliedGoalRevision: '8' }],
    ['a node that never reported', () => setup({ nodes: [nodeRecord(1, NOW, { reportedAt: null })] }), PRIMARY],
    ['a node whose goal is dropped', () => setup({ nodes: [nodeRecord(1, NOW, { goalState: 'dropped' })] }), PRIMARY],
    ['a formation this monitor does not lead', () => setup({ leader: false }), PRIMARY],
    ['a mirror that does not hold this monitor\'s last commit of the formation yet', () => setup({ caughtUp: false }), PRIMARY],
  ];
  for (const [what, make, report] of cases) {
    it(what, () => {
      const { beat, overlay } = make();
      const before = overlay.get(1);
      expect(beat(1, report).inputs.size).toBe(0);
      expect(overlay.get(1)).toBe(before);
    });
  }

  it('a node whose group a transaction of this monitor holds (a decision, or another report of the group), until it lets go', async () => {
    const { beat, locks } = setup();
    const release = await locks.acquire(groupLockKey('default', 0));
    expect(beat(2, { ...PRIMARY, reportedState: 'secondary', isInRecovery: true, upstreamStreaming: true }).inputs.size).toBe(0);
    release();
    expect(beat(2, { ...PRIMARY, reportedState: 'secondary', isInRecovery: true, upstreamStreaming: true }).inputs.has(2)).toBe(true);
  });

  it('a node id this monitor has not located (it never reported here, or does not exist)', () => {
    expect(setup().beat(99).inputs.size).toBe(0);
  });
});
