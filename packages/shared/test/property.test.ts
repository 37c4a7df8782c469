/**
 * Property-based test: random histories of faults, heals, time, keeper reports, registrations
 * and operator commands (switchover, promotion, maintenance, dropping a node, a node's
 * replication quorum) over 2–4 node groups. A small model
 * of the nodes (Postgres, keeper, WAL receiver, the `synchronous_standby_names` a primary runs
 * with) produces the facts; the monitor is `decideUntilStable`, and a command is `decide` on it
 * followed by `decideUntilStable`, as the group driver runs them. After every step the safety
 * rules hold (see `checkDecision`), no promoted node lacks a commit acknowledged under
 * synchronous replication, and once every fault heals, maintenance is disabled and the keepers
 * run long enough, the group converges to one `primary` and the rest `secondary`.
 */
import fc from 'fast-check';
import {
  DEFAULT_FORMATION_SETTINGS,
  OUTGOING_PRIMARY_STATES,
  PLANNED_STOP_STATES,
  STANDBY_STATES,
  WRITABLE_STATES,
  decide,
  decideUntilStable,
  lsn,
  synchronousStandbyNames,
  type Assignment,
  type FormationSettings,
  type GroupFacts,
  type NodeFacts,
  type NodeState,
  type OperatorEvent,
} from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { T0 } from './fact-builders.js';
import { applyInOrder, checkDecision } from './simulate.js';

/** States in which the keeper keeps Postgres stopped. */
const PG_STOPPED_STATES: ReadonlySet<NodeState> = new Set(['init', 'wait_standby', 'draining', 'demote_timeout', 'demoted', 'prepare_maintenance']);
/** States in which the keeper leaves Postgres as it is (running or not). */
const PG_LEFT_ALONE_STATES: ReadonlySet<NodeState> = new Set(['maintenance']);
/**
 * States in which Postgres streams from the primary through its WAL receiver (see
 * `World.upstream`); a candidate still does until the switchover's old primary stops.
 */
const FOLLOWING: ReadonlySet<NodeState> = new Set(['catchingup', 'secondary', 'join_secondary', 'wait_maintenance', 'prepare_promotion']);
/** States in which the node's Postgres is a standby's, whatever it was before. */
const STANDBY_POSTGRES: ReadonlySet<NodeState> = new Set([...STANDBY_STATES, 'wait_maintenance']);
/** States in which the keeper applies the monitor's `synchronous_standby_names`. */
const SYNC_STATES: ReadonlySet<NodeState> = new Set(['primary', 'apply_settings']);

/** One machine: Postgres, its keeper, and what the monitor last heard from it. */
interface SimNode {
  nodeId: number;
  candidatePriority: number;
  reportedState: NodeState;
  goalState: NodeState;
  goalChangedMs: number;
  // The world.
  keeperUp: boolean;
  /** Postgres cannot run (killed, disk gone) until healed. */
  pgFault: boolean;
  /** The node's replication link is cut. */
  linkBroken: boolean;
  pgRunning: boolean;
  /** What its data directory is: a primary's (initdb, promoted) or a standby's (base backup, rewind). */
  role: 'primary' | 'standby';
  lsn: bigint;
  timeline: number;
  /** The `synchronous_standby_names` Postgres runs with ('' on a standby or with sync off). */
  syncNames: string;
  /** Where its shutdown checkpoint starts, once a planned stop stopped it cleanly; null while it runs and after a crash. */
  shutdownLsn: bigint | null;
  // The keeper's last report.
  lastReportMs: number | null;
  reportedPgRunning: boolean;
  reportedLsn: bigint;
  reportedTimeline: number;
  reportedSyncNames: string | null;
  reportedShutdownLsn: bigint | null;
  upstreamStreaming: boolean;
  lastStreamingMs: number | null;
  everRan: boolean;
  /** When the monitor saw the node die loudly (its keeper's connections closed, both its ports refused); null once its keeper reports again. */
  diedLoudlyMs: number | null;
  /** `pgha drop node` was accepted: the monitor leaves the node out of its facts, and its keeper stops its Postgres. */
  dropped: boolean;
  /** The node's replication quorum setting (`pgha set node replication-quorum`). */
  replicationQuorum: boolean;
}

/** `ANY n (pgha_node_2, pgha_node_3)` → n and the node ids; n = 0 when empty. */
function parseSyncNames(names: string): { n: number; members: number[] } {
  const n = Number(/^\s*ANY\s+(\d+)/i.exec(names)?.[1] ?? 0);
  return { n, members: [...names.matchAll(/pgha_node_(\d+)/g)].map((m) => Number(m[1])) };
}

type Action =
  | { kind: 'killKeeper'; node: number }
  | { kind: 'killPostgres'; node: number }
  | { kind: 'killMachine'; node: number }
  /** Every process of the node killed, its host up: the monitor sees a loud death (docs/timeouts.md). */
  | { kind: 'killMachineLoudly'; node: number }
  | { kind: 'breakStreaming'; node: number }
  | { kind: 'heal'; node: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'tick' }
  | { kind: 'tickOne'; node: number }
  | { kind: 'register'; candidatePriority: number }
  | { kind: 'switchover' }
  | { kind: 'promotion'; node: number }
  | { kind: 'maintenance'; node: number; enable: boolean; allowFailover: boolean }
  | { kind: 'drop'; node: number }
  | { kind: 'quorum'; node: number; on: boolean };

class World {
  nowMs = T0;
  nodes: SimNode[] = [];
  /** Highest LSN a client saw committed under synchronous replication. */
  syncAckedLsn = 0n;
  /** Promotions of a node that lacked a synchronously acknowledged commit. */
  readonly lostWrites: string[] = [];
  readonly violations: string[] = [];
  readonly log: string[] = [];
  /** Rule ids of every assignment made, and `refused:<command>` for every refused command. */
  readonly rules = new Set<string>();

  readonly settings: FormationSettings;

  /** Node 1 registers and becomes single, then the other nodes register. */
  constructor(readonly maxNodes: number, priorities: number[], numberSyncStandbys = 0) {
    this.settings = { ...DEFAULT_FORMATION_SETTINGS, numberSyncStandbys };
    const [first = 50, ...others] = priorities;
    this.register(first);
    this.decide();
    this.tick(this.nodes[0]!);
    this.decide();
    for (const p of others) this.register(p);
  }

  register(candidatePriority: number): void {
    if (this.live().length >= this.maxNodes) return;
    this.nodes.push({
      nodeId: this.nodes.length + 1,
      candidatePriority,
      reportedState: 'init',
      goalState: 'init',
      goalChangedMs: this.nowMs,
      keeperUp: true,
      pgFault: false,
      linkBroken: false,
      pgRunning: false,
      role: 'standby',
      lsn: 0n,
      timeline: 1,
      syncNames: '',
      shutdownLsn: null,
      lastReportMs: this.nowMs,
      reportedPgRunning: false,
      reportedLsn: 0n,
      reportedTimeline: 1,
      reportedSyncNames: null,
      reportedShutdownLsn: null,
      upstreamStreaming: false,
      lastStreamingMs: null,
      everRan: false,
      diedLoudlyMs: null,
      dropped: false,
      replicationQuorum: true,
    });
  }

  /** The nodes the monitor still knows: every node not dropped. */
  live(): SimNode[] {
    return this.nodes.filter((n) => !n.dropped);
  }

  /**
   * The node the monitor wants writable, if it actually runs as a primary (a new primary once it
   * has promoted): the one standbys stream from. Its keeper need not be up. While none is
   * wanted, the outgoing primary of a switchover, until it stops.
   */
  upstream(): SimNode | undefined {
    const runs = (p: SimNode | undefined): SimNode | undefined => (p && p.pgRunning && !p.linkBroken && WRITABLE_STATES.has(p.reportedState) ? p : undefined);
    const p = this.live().find((n) => WRITABLE_STATES.has(n.goalState));
    return p ? runs(p) : runs(this.live().find((n) => OUTGOING_PRIMARY_STATES.has(n.goalState)));
  }

  streams(n: SimNode): boolean {
    const up = this.upstream();
    return !!up && up !== n && n.pgRunning && !n.linkBroken && FOLLOWING.has(n.reportedState);
  }

  /**
   * Writes go on at the running primary; streaming standbys replay them. A commit is
   * acknowledged under synchronous replication when the primary runs with
   * `synchronous_standby_names = ANY n (…)` and n of the named standbys stream it: that is the
   * LSN DESIGN.md promises never to lose. Commits of a primary with synchronous replication off
   * carry no such promise.
   */
  advance(ms: number): void {
    this.nowMs += ms;
    const up = this.upstream() ?? this.live().find((n) => n.pgRunning && WRITABLE_STATES.has(n.reportedState));
    if (!up) return;
    up.lsn += BigInt(ms) * 1000n;
    this.replicate();
    const { n, members } = parseSyncNames(up.syncNames);
    const acks = this.live().filter((m) => m !== up && members.includes(m.nodeId) && this.streams(m) && m.lsn === up.lsn);
    if (n > 0 && acks.length >= n && up.lsn > this.syncAckedLsn) this.syncAckedLsn = up.lsn;
  }

  replicate(): void {
    const up = this.upstream();
    if (!up) return;
    for (const n of this.live()) {
      if (this.streams(n)) {
        n.lsn = up.lsn;
        n.timeline = up.timeline;
      }
    }
  }

  /** One keeper cycle: keep Postgres as its state wants it, try to reach the goal, report. */
  tick(n: SimNode): void {
    if (!n.keeperUp || n.dropped) return;
    if (n.pgFault) n.pgRunning = false;
    else if (!PG_STOPPED_STATES.has(n.reportedState) && !PG_LEFT_ALONE_STATES.has(n.reportedState)) n.pgRunning = true;
    if (n.goalState !== n.reportedState) this.reachGoal(n);
    if (n.pgRunning) {
      n.everRan = true;
      n.shutdownLsn = null;
    }
    if (n.reportedState === 'fast_forward') this.fastForward(n);
    // A primary applies the synchronous_standby_names the monitor computes; join_primary keeps what runs.
    if (SYNC_STATES.has(n.reportedState)) n.syncNames = synchronousStandbyNames(this.facts(), n.nodeId);
    else if (n.reportedState !== 'join_primary') n.syncNames = '';
    this.replicate();
    const streaming = this.streams(n);
    n.lastReportMs = this.nowMs;
    n.diedLoudlyMs = null;
    n.reportedPgRunning = n.pgRunning;
    n.reportedLsn = n.lsn;
    n.reportedTimeline = n.timeline;
    // Kept while Postgres is down, as the monitor's stores keep what it last ran with.
    if (n.pgRunning) n.reportedSyncNames = WRITABLE_STATES.has(n.reportedState) ? n.syncNames : null;
    n.reportedShutdownLsn = n.pgRunning ? null : n.shutdownLsn;
    n.upstreamStreaming = streaming;
    if (streaming) n.lastStreamingMs = this.nowMs;
  }

  /** `fast_forward`: fetch the WAL of the most advanced other standby whose Postgres runs (whatever its keeper's state). */
  private fastForward(n: SimNode): void {
    if (!n.pgRunning || n.linkBroken) return;
    const sources = this.live().filter((m) => m !== n && m.pgRunning && !m.linkBroken && m.role === 'standby' && m.lsn > n.lsn);
    const best = sources.reduce<SimNode | undefined>((b, m) => (!b || m.lsn > b.lsn ? m : b), undefined);
    if (best) {
      n.lsn = best.lsn;
      n.timeline = best.timeline;
    }
  }

  private reachGoal(n: SimNode): void {
    const goal = n.goalState;
    if (PG_STOPPED_STATES.has(goal)) {
      if (PLANNED_STOP_STATES.has(goal) && n.pgRunning && WRITABLE_STATES.has(n.reportedState)) {
        // A clean stop: the walsenders send the last WAL to every standby streaming it, and the
        // control file keeps where the shutdown checkpoint starts.
        this.replicate();
        n.shutdownLsn = n.lsn;
      }
      n.pgRunning = false;
      n.reportedState = goal;
      return;
    }
    if (PG_LEFT_ALONE_STATES.has(goal)) {
      n.reportedState = goal;
      return;
    }
    if (n.pgFault) return;
    if (goal === 'catchingup' && !STANDBY_POSTGRES.has(n.reportedState)) {
      // Base backup or pg_rewind: needs the primary.
      const up = this.upstream();
      if (!up || n.linkBroken) return;
      n.lsn = up.lsn;
      n.timeline = up.timeline;
      n.role = 'standby';
    }
    if (goal === 'stop_replication' && n.reportedState !== 'stop_replication') {
      if (n.lsn < this.syncAckedLsn) {
        this.lostWrites.push(`node ${n.nodeId} promoted at LSN ${n.lsn}, below the synchronously acknowledged LSN ${this.syncAckedLsn}`);
      }
      n.timeline += 1;
      n.role = 'primary';
    }
    if (goal === 'single') n.role = 'primary';
    n.pgRunning = true;
    n.reportedState = goal;
  }

  probeHealth(n: SimNode): NodeFacts['health'] {
    if (n.pgRunning) return 'good';
    return n.everRan ? 'bad' : 'unknown';
  }

  facts(): GroupFacts {
    return {
      formation: 'default',
      groupId: 0,
      nowMs: this.nowMs,
      settings: this.settings,
      nodes: this.live().map((n) => ({
        nodeId: n.nodeId,
        name: `node${n.nodeId}`,
        candidatePriority: n.candidatePriority,
        replicationQuorum: n.replicationQuorum,
        reportedState: n.reportedState,
        goalState: n.goalState,
        goalChangedMs: n.goalChangedMs,
        lastReportMs: n.lastReportMs,
        postgresRunning: n.reportedPgRunning,
        reportedLsn: lsn(n.reportedLsn),
        reportedTimeline: n.reportedTimeline,
        upstreamStreaming: n.upstreamStreaming,
        lastStreamingMs: n.lastStreamingMs,
        health: this.probeHealth(n),
        synchronousStandbyNames: n.reportedSyncNames,
        shutdownCheckpointLsn: n.reportedShutdownLsn === null ? null : lsn(n.reportedShutdownLsn),
        diedLoudlyMs: n.diedLoudlyMs,
      })),
    };
  }

  /** Applies the monitor's assignments (checked against the safety rules) to the nodes' goals. */
  private assign(facts: GroupFacts, assignments: readonly Assignment[]): void {
    for (const v of checkDecision(facts, assignments)) this.violations.push(v);
    for (const a of assignments) this.rules.add(a.rule);
    const after = applyInOrder(facts, assignments);
    for (const n of this.live()) {
      const goal = after.nodes.find((f) => f.nodeId === n.nodeId)!.goalState;
      if (goal !== n.goalState) n.goalChangedMs = this.nowMs;
      n.goalState = goal;
      if (goal === 'dropped') {
        // The monitor leaves it out from now on; its keeper stops Postgres and leaves the group.
        n.dropped = true;
        n.pgRunning = false;
      }
    }
    if (assignments.length > 0) this.log.push(`t+${this.nowMs - T0}: ${assignments.map((a) => `${a.nodeId}->${a.goalState} (${a.rule})`).join(', ')}`);
  }

  /** The monitor decides on the current facts; safety rules are checked on every decision. */
  decide(): void {
    const facts = this.facts();
    this.assign(facts, decideUntilStable(facts, { type: 'evaluate', cause: 'report' }));
  }

  /** An operator command: refused (nothing changes), or its goals and then the rules that follow. */
  command(event: OperatorEvent): void {
    const facts = this.facts();
    const decision = decide(facts, event);
    if (decision.refusal !== undefined) {
      this.rules.add(`refused:${event.type}`);
      this.log.push(`t+${this.nowMs - T0}: refused: ${decision.refusal}`);
      if (decision.assignments.length > 0) this.violations.push(`a refused ${event.type} assigned goals`);
      return;
    }
    this.assign(facts, decision.assignments);
    this.decide();
  }

  apply(action: Action): void {
    const n = 'node' in action ? this.nodes[(action.node - 1) % this.nodes.length] : undefined;
    this.log.push(`t+${this.nowMs - T0}: ${JSON.stringify(action)}`);
    // A dropped node's machine is gone from the formation: nothing done to it matters any more.
    if (n?.dropped) return this.decide();
    switch (action.kind) {
      case 'killKeeper': n!.keeperUp = false; break;
      case 'killPostgres': n!.pgFault = true; n!.pgRunning = false; break;
      case 'killMachine': n!.keeperUp = false; n!.pgFault = true; n!.pgRunning = false; break;
      case 'killMachineLoudly': n!.keeperUp = false; n!.pgFault = true; n!.pgRunning = false; n!.diedLoudlyMs = this.nowMs; break;
      case 'breakStreaming': n!.linkBroken = true; break;
      case 'heal': n!.keeperUp = true; n!.pgFault = false; n!.linkBroken = false; break;
      case 'advance': this.advance(action.ms); break;
      case 'tick': for (const m of this.nodes) this.tick(m); break;
      case 'tickOne': this.tick(n!); break;
      case 'register': this.register(action.candidatePriority); break;
      case 'switchover': return this.command({ type: 'perform-switchover' });
      case 'promotion': return this.command({ type: 'perform-promotion', nodeId: n!.nodeId });
      case 'maintenance':
        return this.command(action.enable
          ? { type: 'enable-maintenance', nodeId: n!.nodeId, allowFailover: action.allowFailover }
          : { type: 'disable-maintenance', nodeId: n!.nodeId });
      case 'drop': return this.command({ type: 'drop-node', nodeId: n!.nodeId });
      case 'quorum': {
        // As the settings route: refused when fewer quorum standbys than number_sync_standbys would be left.
        const others = this.live().filter((m) => m !== n && m.replicationQuorum && !WRITABLE_STATES.has(m.goalState)).length;
        if (!action.on && others < this.settings.numberSyncStandbys) {
          this.rules.add('refused:replication-quorum');
          return this.decide();
        }
        n!.replicationQuorum = action.on;
        break;
      }
    }
    this.decide();
  }

  /** Every fault heals and every node has replication quorum again; each round, maintenance is disabled where it is on, time passes and every keeper runs. */
  healAllAndConverge(rounds: number): void {
    for (const n of this.live()) this.apply({ kind: 'heal', node: n.nodeId });
    for (const n of this.live()) this.apply({ kind: 'quorum', node: n.nodeId, on: true });
    for (let i = 0; i < rounds; i++) {
      for (const n of this.live()) {
        if (n.goalState === 'maintenance' || n.goalState === 'wait_maintenance') this.command({ type: 'disable-maintenance', nodeId: n.nodeId });
      }
      this.apply({ kind: 'advance', ms: 500 });
      this.apply({ kind: 'tick' });
    }
  }

  summary(): string {
    return this.nodes.map((n) => (n.dropped ? `${n.nodeId}:dropped` : `${n.nodeId}:${n.reportedState}/${n.goalState}`)).join(' ');
  }
}

const nodeArb = fc.integer({ min: 1, max: 4 });
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { weight: 2, arbitrary: nodeArb.map((node) => ({ kind: 'killKeeper', node }) as const) },
  { weight: 2, arbitrary: nodeArb.map((node) => ({ kind: 'killPostgres', node }) as const) },
  { weight: 2, arbitrary: nodeArb.map((node) => ({ kind: 'killMachine', node }) as const) },
  { weight: 2, arbitrary: nodeArb.map((node) => ({ kind: 'killMachineLoudly', node }) as const) },
  { weight: 2, arbitrary: nodeArb.map((node) => ({ kind: 'breakStreaming', node }) as const) },
  { weight: 3, arbitrary: nodeArb.map((node) => ({ kind: 'heal', node }) as const) },
  { weight: 4, arbitrary: fc.integer({ min: 100, max: 6_000 }).map((ms) => ({ kind: 'advance', ms }) as const) },
  { weight: 6, arbitrary: fc.constant({ kind: 'tick' } as const) },
  { weight: 3, arbitrary: nodeArb.map((node) => ({ kind: 'tickOne', node }) as const) },
  { weight: 1, arbitrary: fc.constantFrom(0, 50, 100).map((candidatePriority) => ({ kind: 'register', candidatePriority }) as const) },
  // Operator commands; refusals are allowed (and change nothing).
  { weight: 1, arbitrary: fc.constant({ kind: 'switchover' } as const) },
  { weight: 1, arbitrary: nodeArb.map((node) => ({ kind: 'promotion', node }) as const) },
  { weight: 1, arbitrary: nodeArb.map((node) => ({ kind: 'drop', node }) as const) },
  { weight: 1, arbitrary: fc.record({ node: nodeArb, on: fc.boolean() }).map((q) => ({ kind: 'quorum', ...q }) as const) },
  {
    weight: 2,
    arbitrary: fc.record({ node: nodeArb, enable: fc.boolean(), allowFailover: fc.boolean() }).map((m) => ({ kind: 'maintenance', ...m }) as const),
  },
);

const scenarioArb = fc
  .constantFrom(2, 3, 3, 4, 4)
  .chain((maxNodes) =>
    fc.record({
      maxNodes: fc.constant(maxNodes),
      priorities: fc.array(fc.constantFrom(50, 50, 100, 0), { minLength: Math.max(2, maxNodes - 1), maxLength: maxNodes }),
      numberSyncStandbys: fc.constantFrom(0, 0, 0, 1),
      // Mostly start from a converged group, where failovers can happen.
      warm: fc.constantFrom(true, true, true, false),
      actions: fc.array(actionArb, { minLength: 5, maxLength: 40 }),
    }),
  );

/** What a scenario is made of. */
interface Scenario {
  maxNodes: number;
  priorities: number[];
  numberSyncStandbys: number;
  /** Start from a converged group (primary + secondaries) instead of freshly registered nodes. */
  warm: boolean;
  actions: Action[];
}

/** What one scenario produced: failures of each property, and the history to explain them. */
interface Outcome {
  rules: Set<string>;
  safety: string[];
  convergence: string | undefined;
  lostWrites: string[];
  history: string;
}

/** Runs one scenario: random actions, then every fault heals and keepers run for 20 s. */
function runScenario({ maxNodes, priorities, numberSyncStandbys, warm, actions }: Scenario): Outcome {
  const world = new World(maxNodes, priorities, numberSyncStandbys);
  if (warm) world.healAllAndConverge(10);
  world.apply({ kind: 'tick' });
  for (const action of actions) world.apply(action);
  world.healAllAndConverge(40);
  const live = world.live();
  const at = (state: NodeState): number => live.filter((n) => n.reportedState === state && n.goalState === state).length;
  // A node left alone (the others dropped) runs as `single`; none left is converged too.
  const converged = live.length <= 1 ? at('single') === live.length : at('primary') === 1 && at('secondary') === live.length - 1;
  return {
    rules: world.rules,
    safety: [...new Set(world.violations)],
    convergence: converged ? undefined : `no convergence after healing: ${world.summary()}`,
    lostWrites: world.lostWrites,
    history: `\n  number_sync_standbys: ${numberSyncStandbys}\n  candidate priorities: ${world.nodes.map((n) => `${n.nodeId}:${n.candidatePriority}`).join(' ')}\n  history:\n    ${world.log.join('\n    ')}`,
  };
}

/**
 * A fixed seed keeps runs reproducible; seed 5 was picked among the first few because its runs
 * reach multi-standby failovers with a lagging or unreachable standby, and every rule in
 * REACHED_RULES (seed 1 did until loud deaths joined the actions, seed 2 until no election
 * starts while every standby's keeper is silent, seed 3 until replication quorum changes joined
 * them: their runs then no longer reach `fast-forward-done`). To explore further:
 * `PGHA_FC_SEED=random PGHA_FC_RUNS=5000 npx vitest run --project unit property`.
 */
const RUN_OPTIONS = {
  numRuns: Number(process.env.PGHA_FC_RUNS ?? 300),
  ...(process.env.PGHA_FC_SEED === 'random' ? {} : { seed: Number(process.env.PGHA_FC_SEED ?? 5) }),
};
/** Rules and refusals the runs must reach, so that the generator keeps exercising what is new. */
const REACHED_RULES = [
  'failover-start', 'election', 'fast-forward-done', 'promote-candidate', 'promotion-done', 'standby-caught-up',
  'perform-switchover', 'perform-promotion', 'enable-maintenance', 'disable-maintenance', 'maintenance-ready', 'sync-standby-gone',
  'refused:perform-switchover', 'refused:enable-maintenance',
  'drop-node', 'lone-primary-single', 'refused:drop-node', 'switchover-election',
];
/** Room for the runs and for shrinking a counterexample. */
const PROPERTY_TIMEOUT_MS = Math.max(20_000, RUN_OPTIONS.numRuns * 50);

describe('random fault histories (fast-check)', () => {
  it('never two writable goals, never a bad promotion, never below an acknowledged commit, only declared edges; converges once faults heal', () => {
    // One pass checks every property (each scenario is costly); the rules seen show what the runs reached.
    const seen = new Set<string>();
    fc.assert(
      fc.property(scenarioArb, (scenario) => {
        const outcome = runScenario(scenario);
        for (const r of outcome.rules) seen.add(r);
        if (outcome.safety.length > 0) throw new Error(`safety: ${outcome.safety.join('; ')}${outcome.history}`);
        if (outcome.lostWrites.length > 0) throw new Error(`lost writes: ${outcome.lostWrites.join('; ')}${outcome.history}`);
        if (outcome.convergence) throw new Error(`${outcome.convergence}${outcome.history}`);
      }),
      RUN_OPTIONS,
    );
    expect([...REACHED_RULES].filter((r) => !seen.has(r)), 'rules the random runs should reach').toEqual([]);
  }, PROPERTY_TIMEOUT_MS);

  it('a healthy group started from two registered nodes converges without any fault', () => {
    const ok = { safety: [], convergence: undefined, lostWrites: [] };
    expect(runScenario({ maxNodes: 2, priorities: [50, 50], numberSyncStandbys: 0, warm: false, actions: [] })).toMatchObject(ok);
    expect(runScenario({
      maxNodes: 4,
      priorities: [50, 50],
      numberSyncStandbys: 0,
      warm: false,
      actions: [{ kind: 'tick' }, { kind: 'register', candidatePriority: 50 }, { kind: 'register', candidatePriority: 0 }],
    })).toMatchObject(ok);
  });

  it('a standby put in maintenance while the other lags: the primary dies; nothing below what it acknowledged is promoted, and ending its maintenance lets the failover go on', () => {
    const world = new World(3, [50, 50, 50]);
    world.healAllAndConverge(10);
    world.apply({ kind: 'breakStreaming', node: 2 });
    world.apply({ kind: 'advance', ms: 100 });
    world.apply({ kind: 'maintenance', node: 3, enable: true, allowFailover: false });
    for (let i = 0; i < 3; i++) { world.apply({ kind: 'advance', ms: 100 }); world.apply({ kind: 'tick' }); }
    world.apply({ kind: 'killMachine', node: 1 });
    world.apply({ kind: 'heal', node: 2 });
    for (let i = 0; i < 20; i++) { world.apply({ kind: 'advance', ms: 500 }); world.apply({ kind: 'tick' }); }
    expect(world.lostWrites, world.log.join('\n')).toEqual([]);
    expect(world.nodes.filter((n) => n.nodeId !== 1 && WRITABLE_STATES.has(n.goalState)).map((n) => n.nodeId), world.log.join('\n')).toEqual([]);
    world.apply({ kind: 'maintenance', node: 3, enable: false, allowFailover: false });
    for (let i = 0; i < 20; i++) { world.apply({ kind: 'advance', ms: 500 }); world.apply({ kind: 'tick' }); }
    // A standby is promoted; the winner first fetches what node 3 holds (fast_forward).
    expect(world.nodes.filter((n) => n.nodeId !== 1 && WRITABLE_STATES.has(n.goalState)), world.log.join('\n')).toHaveLength(1);
    expect(world.lostWrites).toEqual([]);
    expect(world.violations).toEqual([]);
  });

  it('a switchover to a standby whose stream broke just before, while the other standby acknowledged commits alone: nothing acknowledged is lost', () => {
    // ANY 1 (node 2, node 3): node 2's stream breaks, node 3 alone acknowledges the commits of the next 100 ms.
    const world = new World(3, [50, 50, 50]);
    world.healAllAndConverge(10);
    expect(world.summary(), world.log.join('\n')).toBe('1:primary/primary 2:secondary/secondary 3:secondary/secondary');
    world.apply({ kind: 'breakStreaming', node: 2 });
    world.apply({ kind: 'advance', ms: 100 });
    world.apply({ kind: 'promotion', node: 2 });
    // The old primary stops and the candidate reports before node 3 does: the monitor's LSN of node 3 is from before its last acknowledgements.
    world.apply({ kind: 'tickOne', node: 1 });
    world.apply({ kind: 'tickOne', node: 2 });
    world.apply({ kind: 'tickOne', node: 2 });
    for (let i = 0; i < 10; i++) { world.apply({ kind: 'tick' }); world.apply({ kind: 'advance', ms: 100 }); }
    expect(world.lostWrites, world.log.join('\n')).toEqual([]);
    expect(world.violations).toEqual([]);
    // An election among LSNs reported after the old primary stopped decides; the group converges.
    expect(world.rules.has('switchover-election'), world.log.join('\n')).toBe(true);
    world.healAllAndConverge(20);
    expect(world.live().filter((n) => n.goalState === 'primary' && n.reportedState === 'primary'), world.log.join('\n')).toHaveLength(1);
    expect(world.lostWrites).toEqual([]);
  });

  it("the primary's Postgres dies after a standby alone acknowledged its last commits: that standby cannot be dropped, and the failover waits for it", () => {
    // Found by random histories (2026-12-06): the monitor forgot the names the primary ran with
    // once its keeper reported Postgres down, so node 3 could be dropped and node 2 promoted
    // without node 3's commits.
    const world = new World(3, [50, 50, 50]);
    world.healAllAndConverge(10);
    world.apply({ kind: 'killMachine', node: 2 });
    world.apply({ kind: 'advance', ms: 100 });
    world.apply({ kind: 'killKeeper', node: 3 });
    world.apply({ kind: 'killPostgres', node: 1 });
    world.apply({ kind: 'tick' });
    world.apply({ kind: 'drop', node: 3 });
    expect(world.rules.has('refused:drop-node'), world.log.join('\n')).toBe(true);
    world.apply({ kind: 'heal', node: 2 });
    for (let i = 0; i < 10; i++) { world.apply({ kind: 'advance', ms: 500 }); world.apply({ kind: 'tick' }); }
    expect(world.lostWrites, world.log.join('\n')).toEqual([]);
    world.healAllAndConverge(30);
    expect(world.lostWrites, world.log.join('\n')).toEqual([]);
    expect(world.violations).toEqual([]);
  });

  it('a switchover whose candidate streams until the old primary stops: promoted on its shutdown checkpoint, without an election', () => {
    const world = new World(3, [50, 50, 50]);
    world.healAllAndConverge(10);
    world.apply({ kind: 'promotion', node: 2 });
    for (let i = 0; i < 6; i++) { world.apply({ kind: 'advance', ms: 100 }); world.apply({ kind: 'tick' }); }
    expect(world.nodes[1]!.goalState, world.log.join('\n')).toMatch(/primary/);
    expect(world.rules.has('promote-candidate'), world.log.join('\n')).toBe(true);
    expect(world.rules.has('switchover-election'), world.log.join('\n')).toBe(false);
    expect(world.lostWrites).toEqual([]);
  });

  it('the machine of a healthy primary dies: the model fails over and the old primary rejoins', () => {
    const world = new World(2, [50, 50]);
    for (let i = 0; i < 10; i++) { world.apply({ kind: 'advance', ms: 500 }); world.apply({ kind: 'tick' }); }
    expect(world.summary(), world.log.join('\n')).toBe('1:primary/primary 2:secondary/secondary');
    world.apply({ kind: 'killMachine', node: 1 });
    for (let i = 0; i < 10; i++) { world.apply({ kind: 'advance', ms: 500 }); world.apply({ kind: 'tick' }); }
    expect(world.nodes[1], world.log.join('\n')).toMatchObject({ reportedState: 'wait_primary', goalState: 'wait_primary' });
    world.healAllAndConverge(20);
    expect(world.summary()).toBe('1:secondary/secondary 2:primary/primary');
    expect(world.violations).toEqual([]);
    expect(world.lostWrites).toEqual([]);
  });
});
