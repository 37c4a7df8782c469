/** A node record for unit tests: node 1 a steady primary, the others steady streaming secondaries, last heard 300 ms before `nowMs`. */
import type { NodeRecord } from '../src/store/records.js';

export function nodeRecord(nodeId: number, nowMs: number, over: Partial<NodeRecord> = {}): NodeRecord {
  const at = new Date(nowMs - 300);
  const primary = nodeId === 1;
  return {
    nodeId, formationId: 'default', groupId: 0, name: `node${nodeId}`, host: '127.0.0.1', port: 5432 + nodeId,
    candidatePriority: 50, replicationQuorum: true, reportedState: primary ? 'primary' : 'secondary', goalState: primary ? 'primary' : 'secondary',
    reportedAt: at, postgresRunning: true, isInRecovery: !primary, reportedLsn: '0/3000148', reportedTimeline: 1,
    upstreamStreaming: !primary, lastStreamingAt: primary ? null : at, transitionInProgress: null, transitionProgress: null,
    health: 'good', healthFailures: 0, healthCheckedAt: at, probeInRecovery: !primary, goalChangedAt: at,
    goalRevision: '7', createdAt: at, reportedSyncStandbyNames: null, shutdownCheckpointLsn: null, destroyRequested: false,
    reportedProblem: null, postgresSsl: false, httpAddress: null, lastSelfFenceAt: null, restartRequest: 0, restartRequestedAt: null, restartDone: 0,
    ...over,
  };
}
