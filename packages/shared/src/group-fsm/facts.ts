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
  readonly postgresRunning: boolean;
  /** Keeper's view: flush LSN on a primary, received/replayed LSN on a standby. */
  readonly reportedLsn: Lsn;
  readonly reportedTimeline: number;
  /** Keeper's view: the standby's WAL receiver is streaming from the primary. */
  readonly upstreamStreaming: boolean;
  /** Last report in which the WAL receiver was streaming. */
  readonly lastStreamingMs: number | null;
  /** Monitor's Postgres probe. */
  readonly health: NodeHealth;
  /** When the monitor last changed this node's goal (absent: unknown). */
  readonly goalChangedMs?: number | null;
  /**
   * Keeper's view on a primary: the `synchronous_standby_names` Postgres runs with, or last ran
   * with while its keeper reports it down (the stores keep it); null on a running standby.
   */
  readonly synchronousStandbyNames?: string | null;
  /**
   * Keeper's view on a cleanly stopped primary: where its shutdown checkpoint starts, read from
   * its control file once that says `shut down` (`pg_controldata`'s "Latest checkpoint
   * location"). Nothing is written after that record, so every commit the primary ever made,
   * acknowledged or not, lies before it. Null or absent while Postgres runs or shuts down, after
   * a crash, on a standby (`shut down in recovery`), and from an older keeper.
   */
  readonly shutdownCheckpointLsn?: Lsn | null;
  /**
   * When the operator asked for a restart of the node's Postgres that its keeper has not
   * reported done yet (`pgha perform restart`, see `restartingOnRequest`); null or absent when
   * none is under way.
   */
  readonly restartRequestedMs?: number | null;
  /**
   * When the monitor saw the node die loudly (the monitor's clock, ms since the epoch): every
   * connection of its keeper to the monitor was closed by the keeper's side, and then both its
   * keeper's HTTP port and its Postgres port refused a TCP connection, twice in a row (see
   * `diedLoudly` and docs/timeouts.md, "A loud death"). Null or absent: not seen, or the keeper
   * was heard from since.
   */
  readonly diedLoudlyMs?: number | null;
}

/** Everything one decision about one group may read. Pure data: `nowMs` is a fact. */
export interface GroupFacts {
  readonly formation: string;
  readonly groupId: number;
  readonly nowMs: number;
  readonly settings: Readonly<FormationSettings>;
  /** The group's nodes, ordered by node id; `dropped` nodes are left out. */
  readonly nodes: readonly NodeFacts[];
  /**
   * How far behind the monitor itself has lately been in answering keepers' reports (ms;
   * absent: 0). A keeper waits for the answer to one report before it sends the next, so a
   * monitor that takes this long to answer sees every keeper's last report this much older:
   * keeper silence and streaming age are judged with this much more time (see
   * `keeperIsAlive`), so that an overloaded monitor does not take its own backlog for dead
   * keepers and fail their nodes.
   */
  readonly monitorLagMs?: number;
}

/** A new fact or a tick: decide what the facts call for. */
export interface EvaluateEvent {
  type: 'evaluate';
  cause: 'register' | 'report' | 'health' | 'timer' | 'settings';
}

/**
 * An operator command. Each either yields assignments or is refused with a reason; a refused
 * command changes nothing. Its `type` is also the id of the rule its assignments carry (as
 * event rows store it). Source: pg_auto_failover's `perform_failover`, `perform_promotion`,
 * `start_maintenance`/`stop_maintenance`, `remove_node`.
 */
export type OperatorEvent =
  | { type: 'perform-switchover' }
  | { type: 'perform-failover' }
  | { type: 'perform-promotion'; nodeId: number }
  | { type: 'enable-maintenance'; nodeId: number; allowFailover: boolean }
  | { type: 'disable-maintenance'; nodeId: number }
  | { type: 'drop-node'; nodeId: number };

/** The id of an operator command's rule: its event's `type`. */
export type CommandRuleId = OperatorEvent['type'];

/** Everything the group machine reacts to. */
export type GroupEvent = EvaluateEvent | OperatorEvent;

/**
 * One goal assignment with its reason and the stable id of the rule that made it (a key of
 * `PLANS` or an operator command's {@link CommandRuleId}), which its event row stores.
 */
export interface Assignment {
  readonly nodeId: number;
  readonly goalState: NodeState;
  readonly reason: string;
  readonly rule: string;
}

/**
 * An assignment as a plan or an operator command makes it, without its rule id: the group
 * state machine adds the id of the rule that fired, so that each rule's id is written once.
 */
export type PlannedAssignment = Omit<Assignment, 'rule'>;
