/**
 * The report batcher's heartbeats (`driver/report-batcher.ts`): a store that records heartbeats
 * apart gets them first, and only what they cannot answer goes to a transaction.
 */
import { describe, expect, it } from 'vitest';
import type { NodeReport } from '@pgha/shared';
import { ReportBatcher } from '../src/driver/report-batcher.js';
import type { GroupDriver } from '../src/driver/group-driver.js';
import type { MonitorLag } from '../src/driver/monitor-lag.js';
import { groupKey, type FormationRecord, type NodeRecord, type ReportsRead } from '../src/store/records.js';
import type { MonitorStore, StoreTransaction } from '../src/store/store-port.js';
import { nodeRecord } from './node-record.js';

const NOW = Date.UTC(2026, 11, 6, 10, 0, 0);
const FORMATION = { formationId: 'default', settings: {}, numberSyncStandbys: 0 } as unknown as FormationRecord;

function report(extra: Partial<NodeReport> = {}): NodeReport {
  return { reportedState: 'primary', postgresRunning: true, isInRecovery: false, lsn: '0/3000148', timeline: 1, upstreamStreaming: false, transitionInProgress: null, synchronousStandbyNames: null, ...extra };
}

/** What the group's read holds: both nodes, as recorded. */
function read(nodes: NodeRecord[], recorded: readonly number[], factsChanged = false): ReportsRead {
  return {
    inputs: new Map(recorded.map((id) => [id, { node: nodes.find((n) => n.nodeId === id)!, recorded: true, before: { reportedProblem: null, lastSelfFenceAt: null }, factsChanged }])),
    groups: new Map(recorded.length > 0 ? [[groupKey('default', 0), { formationId: 'default', groupId: 0, formation: FORMATION, nodes }]] : []),
    nowMs: NOW,
  };
}

/** A store and a driver that count what the batcher asks of them. */
function fixture(options: { heartbeats?: (ids: number[]) => ReportsRead | Error; steady?: boolean }) {
  const nodes = [nodeRecord(1, NOW), nodeRecord(2, NOW)];
  const calls = { heartbeats: [] as number[][], transactions: [] as number[][], decisions: 0 };
  const store = {
    async transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
      const tx = {
        async recordReports(reports: readonly { nodeId: number }[]) {
          calls.transactions.push(reports.map((r) => r.nodeId));
          return read(nodes, reports.map((r) => r.nodeId), true);
        },
        events: { append: async () => undefined },
      } as unknown as StoreTransaction;
      return work(tx);
    },
    ...(options.heartbeats
      ? {
          async recordHeartbeats(reports: readonly { nodeId: number }[]) {
            const ids = reports.map((r) => r.nodeId);
            calls.heartbeats.push(ids);
            const out = options.heartbeats!(ids);
            if (out instanceof Error) throw out;
            return out;
          },
        }
      : {}),
  } as unknown as MonitorStore;
  const driver = {
    isSteady: () => options.steady ?? true,
    async decideRead(_tx: StoreTransaction, g: { formation: FormationRecord; nodes: NodeRecord[] }) {
      calls.decisions++;
      return { assignments: [], formation: g.formation, nodes: g.nodes };
    },
  } as unknown as GroupDriver;
  const lag = { arrived: () => () => undefined } as unknown as MonitorLag;
  return { batcher: new ReportBatcher(store, driver, lag), calls, nodes };
}

describe('ReportBatcher with a store that records heartbeats', () => {
  it('answers the heartbeats of a steady group from them, without a transaction', async () => {
    const { batcher, calls, nodes } = fixture({ heartbeats: (ids) => read([nodeRecord(1, NOW), nodeRecord(2, NOW)], ids) });
    const [a, b] = await Promise.all([batcher.report(1, report()), batcher.report(2, report({ reportedState: 'secondary', isInRecovery: true }))]);
    expect(calls).toEqual({ heartbeats: [[1, 2]], transactions: [], decisions: 0 });
    expect(a.node.nodeId).toBe(1);
    expect(b.group?.nodes.map((n) => n.nodeId)).toEqual(nodes.map((n) => n.nodeId));
    expect(b.group?.assignments).toEqual([]);
  });

  it('sends to the transaction what the store did not record, what changed the liveness, and every report of a group that is not steady', async () => {
    const notRecorded = fixture({ heartbeats: (ids) => read([nodeRecord(1, NOW), nodeRecord(2, NOW)], ids.filter((id) => id !== 2)) });
    await Promise.all([notRecorded.batcher.report(1, report()), notRecorded.batcher.report(2, report())]);
    expect(notRecorded.calls).toEqual({ heartbeats: [[1, 2]], transactions: [[2]], decisions: 1 });

    const silent = fixture({ heartbeats: (ids) => read([nodeRecord(1, NOW)], ids, true) });
    await silent.batcher.report(1, report());
    expect(silent.calls).toEqual({ heartbeats: [[1]], transactions: [[1]], decisions: 1 });

    const unsteady = fixture({ heartbeats: (ids) => read([nodeRecord(1, NOW)], ids), steady: false });
    await unsteady.batcher.report(1, report());
    expect(unsteady.calls).toEqual({ heartbeats: [[1]], transactions: [[1]], decisions: 1 });
  });

  it('never sends a self-fence or a transition as a heartbeat, nor a node with one among its reports of the batch', async () => {
    const { batcher, calls } = fixture({ heartbeats: (ids) => read([nodeRecord(1, NOW), nodeRecord(2, NOW)], ids) });
    const fence = { fencedAtMs: NOW, reason: 'network partition', fromState: 'primary' as const, monitorSilentMs: 1000, postgresStopped: true, unreachableMs: 2000 };
    await Promise.all([batcher.report(1, report({ selfFence: fence })), batcher.report(1, report()), batcher.report(2, report({ transitionInProgress: 'catchingup->secondary' }))]);
    expect(calls).toEqual({ heartbeats: [], transactions: [[1, 2]], decisions: 1 });
  });

  it('sends every report to the transaction when the heartbeats fail, and when the store does not record them apart', async () => {
    const failing = fixture({ heartbeats: () => new Error('connection terminated') });
    await failing.batcher.report(1, report());
    expect(failing.calls).toEqual({ heartbeats: [[1]], transactions: [[1]], decisions: 1 });

    const plain = fixture({});
    await plain.batcher.report(1, report());
    expect(plain.calls).toEqual({ heartbeats: [], transactions: [[1]], decisions: 1 });
  });
});
