import type { Lsn } from '../lsn.js';
import type { FormationSettings } from '../settings.js';
import type { NodeState } from '../states.js';

/** Result of the monitor's Postgres probe of a node. */
export type NodeHealth = 'good' | 'bad' | 'unknown';

/**
 * What the monitor knows about one node when it decides. Times are the monitor's clock in
 * milliseconds since the epoch; `null` means "never".
 */
export interface NodeFacts {
  readonly nodeId: number;
  readonly name: string;
  readonly candidatePriority: number;
  readonly replicationQuorum: boolean;
  readonly reportedState: NodeState;
  readonly goalState: NodeState;
  /** When the keeper last reported (the keeper's heartbeat). */
  readonly lastReportMs: number | null;
  /** Keeper's view: is the postmaster running. */
  readonly pgIsRunning: boolean;
  /** Keeper's view: flush LSN on a primary, received/replayed LSN on a standby. */
  readonly reportedLsn: Lsn;
  readonly reportedTimeline: number;
  /** Keeper's view: the standby's WAL receiver is streaming from the primary. */
  readonly upstreamStreaming: boolean;
  /** Last report in which the WAL receiver was streaming. */
  readonly lastStreamingMs: number | null;
  /** Monitor's Postgres probe. */
  readonly health: NodeHealth;
}

/** Everything one decision about one group may read. Pure data: `nowMs` is a fact. */
export interface GroupFacts {
  readonly formation: string;
  readonly groupId: number;
  readonly nowMs: number;
  readonly settings: Readonly<FormationSettings>;
  /** The group's nodes, ordered by node id; `dropped` nodes are left out. */
  readonly nodes: readonly NodeFacts[];
}

/** What prompted a decision; it only changes the reason text, never the outcome. */
export type GroupEvent =
  | { type: 'evaluate'; cause: 'register' | 'report' | 'health' | 'timer' | 'settings' };

/** One goal assignment with its reason and the stable id of the rule that made it. */
export interface Assignment {
  readonly nodeId: number;
  readonly goalState: NodeState;
  readonly reason: string;
  readonly rule: string;
}
