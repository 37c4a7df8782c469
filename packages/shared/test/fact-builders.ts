/**
 * Builders of `GroupFacts` for unit tests, in the style of Patroni's `get_cluster_*` helpers:
 *
 * ```ts
 * const facts = groupFacts({ nowMs: 100_000 })
 *   .primary({ lsn: '0/5000000' })
 *   .standby({ health: 'bad', keeperSilentMs: 5_000 })
 *   .build();
 * ```
 *
 * Every node starts healthy: its keeper reported at `nowMs`, Postgres runs, the monitor's probe
 * says `good`, and a standby streams (`lastStreamingMs = nowMs`) at the primary's LSN and timeline.
 * Options only state what differs from that.
 */
import {
  DEFAULT_FORMATION,
  DEFAULT_FORMATION_SETTINGS,
  parseLsn,
  lsn as toLsn,
  type FormationSettings,
  type GroupFacts,
  type Lsn,
  type NodeFacts,
  type NodeHealth,
  type NodeState,
} from '@pgha/shared';

/** The simulated clock most tests start from (any value far from 0 works). */
export const T0 = 1_000_000;

/** Default LSN of a primary built by {@link GroupFactsBuilder.primary}. */
export const DEFAULT_PRIMARY_LSN = '0/5000000';

/** What a test may say about one node; everything left out takes the healthy default. */
export interface NodeSpec {
  nodeId?: number;
  name?: string;
  candidatePriority?: number;
  replicationQuorum?: boolean;
  /** Sets both the reported and the goal state (the keeper has reached its goal). */
  state?: NodeState;
  reportedState?: NodeState;
  goalState?: NodeState;
  /** LSN as Postgres prints it (`'0/3000060'`) or as a byte position. */
  lsn?: string | bigint | number;
  timeline?: number;
  health?: NodeHealth;
  postgresRunning?: boolean;
  /** The keeper last reported this long before `nowMs` (default 0: it just reported). */
  keeperSilentMs?: number;
  /** The keeper never reported. */
  neverReported?: boolean;
  /** For standbys: the WAL receiver streams (default true for `standby()`). */
  streaming?: boolean;
  /** For standbys: the WAL receiver last streamed this long before `nowMs`. */
  notStreamingForMs?: number;
  /** The monitor changed the node's goal this long before `nowMs` (default: unknown, left out). */
  goalChangedAgoMs?: number;
  /** On a primary: the `synchronous_standby_names` its keeper reports (default: left out). */
  synchronousStandbyNames?: string;
  /** The monitor saw the node die loudly just now, after its keeper's last report (`NodeFacts.diedLoudlyMs`). */
  diedLoudly?: boolean;
  /** On a stopped primary: where its shutdown checkpoint starts, as its keeper reports it (default: left out). */
  shutdownCheckpointLsn?: string | bigint | number;
}

/** Options of {@link groupFacts}. */
export interface GroupSpec {
  nowMs?: number;
  formation?: string;
  groupId?: number;
  settings?: Partial<FormationSettings>;
}

function toLsnValue(value: string | bigint | number): Lsn {
  return typeof value === 'string' ? parseLsn(value) : toLsn(value);
}

/** Builds one group's facts, node by node. Node ids are given in order from 1 unless set. */
export class GroupFactsBuilder {
  private readonly nodes: NodeFacts[] = [];
  private readonly nowMs: number;
  private readonly settings: FormationSettings;

  constructor(private readonly spec: GroupSpec = {}) {
    this.nowMs = spec.nowMs ?? T0;
    this.settings = { ...DEFAULT_FORMATION_SETTINGS, ...spec.settings };
  }

  /** A writable node; reported and goal `primary` unless `state` says otherwise. */
  primary(spec: NodeSpec = {}): this {
    return this.add(spec, {
      state: 'primary',
      lsn: DEFAULT_PRIMARY_LSN,
      streaming: false,
    });
  }

  /** A node that has reached `single`. */
  single(spec: NodeSpec = {}): this {
    return this.primary({ state: 'single', ...spec });
  }

  /**
   * A hot standby, reported and goal `secondary` unless `state` says otherwise, streaming at the
   * LSN and timeline of the first writable node built so far.
   */
  standby(spec: NodeSpec = {}): this {
    const upstream = this.nodes.find((n) => ['single', 'wait_primary', 'primary', 'join_primary'].includes(n.goalState));
    return this.add(spec, {
      state: 'secondary',
      lsn: upstream?.reportedLsn ?? parseLsn(DEFAULT_PRIMARY_LSN),
      timeline: upstream?.reportedTimeline ?? 1,
      streaming: true,
    });
  }

  /** A node that has just registered: `init`, Postgres not set up, not probed yet. */
  registered(spec: NodeSpec = {}): this {
    return this.add(spec, {
      state: 'init',
      lsn: 0n,
      streaming: false,
      postgresRunning: false,
      health: 'unknown',
    });
  }

  /** Any node, with the plain healthy defaults and `spec` applied. */
  node(spec: NodeSpec): this {
    return this.add(spec, {});
  }

  build(): GroupFacts {
    return {
      formation: this.spec.formation ?? DEFAULT_FORMATION,
      groupId: this.spec.groupId ?? 0,
      nowMs: this.nowMs,
      settings: this.settings,
      nodes: [...this.nodes].sort((a, b) => a.nodeId - b.nodeId),
    };
  }

  private add(spec: NodeSpec, defaults: NodeSpec): this {
    const s: NodeSpec = { ...defaults, ...spec };
    const nodeId = s.nodeId ?? Math.max(0, ...this.nodes.map((n) => n.nodeId)) + 1;
    const state = s.state ?? 'init';
    const streaming = s.streaming ?? false;
    const lastReportMs = s.neverReported ? null : this.nowMs - (s.keeperSilentMs ?? 0);
    let lastStreamingMs: number | null = null;
    if (s.notStreamingForMs !== undefined) lastStreamingMs = this.nowMs - s.notStreamingForMs;
    else if (streaming) lastStreamingMs = lastReportMs;
    this.nodes.push({
      nodeId,
      name: s.name ?? `node${nodeId}`,
      candidatePriority: s.candidatePriority ?? 50,
      replicationQuorum: s.replicationQuorum ?? true,
      reportedState: s.reportedState ?? state,
      goalState: s.goalState ?? state,
      lastReportMs,
      postgresRunning: s.postgresRunning ?? true,
      reportedLsn: toLsnValue(s.lsn ?? 0n),
      reportedTimeline: s.timeline ?? 1,
      upstreamStreaming: s.notStreamingForMs !== undefined ? false : streaming,
      lastStreamingMs,
      health: s.health ?? 'good',
      ...(s.goalChangedAgoMs !== undefined ? { goalChangedMs: this.nowMs - s.goalChangedAgoMs } : {}),
      ...(s.synchronousStandbyNames !== undefined ? { synchronousStandbyNames: s.synchronousStandbyNames } : {}),
      ...(s.diedLoudly ? { diedLoudlyMs: this.nowMs } : {}),
      ...(s.shutdownCheckpointLsn !== undefined ? { shutdownCheckpointLsn: toLsnValue(s.shutdownCheckpointLsn) } : {}),
    });
    return this;
  }
}

/** Starts a group's facts. */
export function groupFacts(spec: GroupSpec = {}): GroupFactsBuilder {
  return new GroupFactsBuilder(spec);
}

/** The node with `nodeId`; throws when there is none, so tests fail with a clear message. */
export function nodeOf(facts: GroupFacts, nodeId: number): NodeFacts {
  const node = facts.nodes.find((n) => n.nodeId === nodeId);
  if (!node) throw new Error(`no node ${nodeId} in the facts`);
  return node;
}

/** Returns `facts` with one node changed. */
export function withNode(facts: GroupFacts, nodeId: number, patch: Partial<NodeFacts>): GroupFacts {
  nodeOf(facts, nodeId);
  return { ...facts, nodes: facts.nodes.map((n) => (n.nodeId === nodeId ? { ...n, ...patch } : n)) };
}
