/**
 * Property-based test: random histories of faults, heals, time, keeper reports and
 * registrations over 2–4 node groups. A small model of the nodes (Postgres, keeper, WAL
 * receiver) produces the facts; the monitor is `decideUntilStable`. After every step the safety
 * rules hold (see `checkDecision`), no promoted node lacks an acknowledged commit, and once every fault heals and the keepers run long enough
 * the group converges to one `primary` and the rest `secondary`.
 */
import fc from 'fast-check';
import {
  DEFAULT_FORMATION_SETTINGS,
  WRITABLE_STATES,
  decideUntilStable,
  lsn,
  type GroupFacts,
  type NodeFacts,
  type NodeState,
} from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { T0 } from './fact-builders.js';
import { applyInOrder, checkDecision } from './simulate.js';

const SETTINGS = DEFAULT_FORMATION_SETTINGS;

/** States in which the keeper keeps Postgres running. */
const PG_STOPPED_STATES: ReadonlySet<NodeState> = new Set(['init', 'wait_standby', 'draining', 'demote_timeout', 'demoted']);
/** States in which Postgres follows a primary through its WAL receiver. */
const FOLLOWING: ReadonlySet<NodeState> = new Set(['catchingup', 'secondary', 'join_secondary', 'report_lsn', 'fast_forward']);

/** One machine: Postgres, its keeper, and what the monitor last heard from it. */
interface SimNode {
  nodeId: number;
  candidatePriority: number;
  reportedState: NodeState;
  goalState: NodeState;
  // The world.
  keeperUp: boolean;
  /** Postgres cannot run (killed, disk gone) until healed. */
  pgFault: boolean;
  /** The node's replication link is cut. */
  linkBroken: boolean;
  pgRunning: boolean;
  lsn: bigint;
  timeline: number;
  // The keeper's last report.
  lastReportMs: number | null;
  reportedPgRunning: boolean;
  reportedLsn: bigint;
  reportedTimeline: number;
  upstreamStreaming: boolean;
  lastStreamingMs: number | null;
  everRan: boolean;
}

type Action =
  | { kind: 'killKeeper'; node: number }
  | { kind: 'killPostgres'; node: number }
  | { kind: 'killMachine'; node: number }
  | { kind: 'breakStreaming'; node: number }
  | { kind: 'heal'; node: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'tick' }
  | { kind: 'tickOne'; node: number }
  | { kind: 'register'; candidatePriority: number };

class World {
  nowMs = T0;
  nodes: SimNode[] = [];
  /** Highest LSN a client saw committed under synchronous replication. */
  syncAckedLsn = 0n;
  /** Promotions of a node that lacked a synchronously acknowledged commit. */
  readonly lostWrites: string[] = [];
  readonly violations: string[] = [];
  readonly log: string[] = [];

  /** Node 1 registers and becomes single, then the other nodes register. */
  constructor(readonly maxNodes: number, priorities: number[]) {
    const [first = 50, ...others] = priorities;
    this.register(first);
    this.decide();
    this.tick(this.nodes[0]!);
    this.decide();
    for (const p of others) this.register(p);
  }

  register(candidatePriority: number): void {
    if (this.nodes.length >= this.maxNodes) return;
    this.nodes.push({
      nodeId: this.nodes.length + 1,
      candidatePriority,
      reportedState: 'init',
      goalState: 'init',
      keeperUp: true,
      pgFault: false,
      linkBroken: false,
      pgRunning: false,
      lsn: 0n,
      timeline: 1,
      lastReportMs: this.nowMs,
      reportedPgRunning: false,
      reportedLsn: 0n,
      reportedTimeline: 1,
      upstreamStreaming: false,
      lastStreamingMs: null,
      everRan: false,
    });
  }

  /** The node the monitor wants writable, if it is actually running as a primary. */
  upstream(): SimNode | undefined {
    const p = this.nodes.find((n) => WRITABLE_STATES.has(n.goalState));
    return p && p.pgRunning && !p.linkBroken && WRITABLE_STATES.has(p.reportedState) ? p : undefined;
  }

  streams(n: SimNode): boolean {
    const up = this.upstream();
    return !!up && up !== n && n.pgRunning && !n.linkBroken && FOLLOWING.has(n.reportedState);
  }

  /**
   * Writes go on at the running primary; streaming standbys replay them. With synchronous
   * replication on (the primary reported `primary` or `join_primary`), a commit is acknowledged
   * only once a synchronous standby (goal `secondary`, streaming) has its WAL: that is the LSN
   * DESIGN.md promises never to lose. Commits acknowledged in `single`/`wait_primary` carry no
   * such promise.
   */
  advance(ms: number): void {
    this.nowMs += ms;
    const up = this.upstream() ?? this.nodes.find((n) => n.pgRunning && WRITABLE_STATES.has(n.reportedState));
    if (!up) return;
    up.lsn += BigInt(ms) * 1000n;
    this.replicate();
    if (up.reportedState === 'primary' || up.reportedState === 'join_primary') {
      const synced = this.nodes.filter((n) => n !== up && n.goalState === 'secondary' && this.streams(n));
      for (const n of synced) if (n.lsn > this.syncAckedLsn) this.syncAckedLsn = n.lsn;
    }
  }

  replicate(): void {
    const up = this.upstream();
    if (!up) return;
    for (const n of this.nodes) {
      if (this.streams(n)) {
        n.lsn = up.lsn;
        n.timeline = up.timeline;
      }
    }
  }

  /** One keeper cycle: keep Postgres as its state wants it, try to reach the goal, report. */
  tick(n: SimNode): void {
    if (!n.keeperUp) return;
    if (n.pgFault) n.pgRunning = false;
    else if (!PG_STOPPED_STATES.has(n.reportedState)) n.pgRunning = true;
    if (n.goalState !== n.reportedState) this.reachGoal(n);
    if (n.pgRunning) n.everRan = true;
    this.replicate();
    const streaming = this.streams(n);
    n.lastReportMs = this.nowMs;
    n.reportedPgRunning = n.pgRunning;
    n.reportedLsn = n.lsn;
    n.reportedTimeline = n.timeline;
    n.upstreamStreaming = streaming;
    if (streaming) n.lastStreamingMs = this.nowMs;
  }

  private reachGoal(n: SimNode): void {
    const goal = n.goalState;
    if (PG_STOPPED_STATES.has(goal)) {
      n.pgRunning = false;
      n.reportedState = goal;
      return;
    }
    if (n.pgFault) return;
    if (goal === 'catchingup' && !FOLLOWING.has(n.reportedState) && n.reportedState !== 'prepare_promotion') {
      // Base backup or pg_rewind: needs the primary.
      const up = this.upstream();
      if (!up || n.linkBroken) return;
      n.lsn = up.lsn;
      n.timeline = up.timeline;
    }
    if (goal === 'stop_replication' && n.reportedState !== 'stop_replication') {
      if (n.lsn < this.syncAckedLsn) {
        this.lostWrites.push(`node ${n.nodeId} promoted at LSN ${n.lsn}, below the synchronously acknowledged LSN ${this.syncAckedLsn}`);
      }
      n.timeline += 1;
    }
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
      settings: SETTINGS,
      nodes: this.nodes.map((n) => ({
        nodeId: n.nodeId,
        name: `node${n.nodeId}`,
        candidatePriority: n.candidatePriority,
        replicationQuorum: true,
        reportedState: n.reportedState,
        goalState: n.goalState,
        lastReportMs: n.lastReportMs,
        pgIsRunning: n.reportedPgRunning,
        reportedLsn: lsn(n.reportedLsn),
        reportedTimeline: n.reportedTimeline,
        upstreamStreaming: n.upstreamStreaming,
        lastStreamingMs: n.lastStreamingMs,
        health: this.probeHealth(n),
      })),
    };
  }

  /** The monitor decides on the current facts; safety rules are checked on every decision. */
  decide(): void {
    const facts = this.facts();
    const assignments = decideUntilStable(facts, { type: 'evaluate', cause: 'report' });
    for (const v of checkDecision(facts, assignments)) this.violations.push(v);
    const after = applyInOrder(facts, assignments);
    for (const n of this.nodes) n.goalState = after.nodes.find((f) => f.nodeId === n.nodeId)!.goalState;
    if (assignments.length > 0) this.log.push(`t+${this.nowMs - T0}: ${assignments.map((a) => `${a.nodeId}->${a.goalState} (${a.rule})`).join(', ')}`);
  }

  apply(action: Action): void {
    const n = 'node' in action ? this.nodes[(action.node - 1) % this.nodes.length] : undefined;
    switch (action.kind) {
      case 'killKeeper': n!.keeperUp = false; break;
      case 'killPostgres': n!.pgFault = true; n!.pgRunning = false; break;
      case 'killMachine': n!.keeperUp = false; n!.pgFault = true; n!.pgRunning = false; break;
      case 'breakStreaming': n!.linkBroken = true; break;
      case 'heal': n!.keeperUp = true; n!.pgFault = false; n!.linkBroken = false; break;
      case 'advance': this.advance(action.ms); break;
      case 'tick': for (const m of this.nodes) this.tick(m); break;
      case 'tickOne': this.tick(n!); break;
      case 'register': this.register(action.candidatePriority); break;
    }
    this.log.push(`t+${this.nowMs - T0}: ${JSON.stringify(action)}`);
    this.decide();
  }

  healAllAndConverge(rounds: number): void {
    for (const n of this.nodes) this.apply({ kind: 'heal', node: n.nodeId });
    for (let i = 0; i < rounds; i++) {
      this.apply({ kind: 'advance', ms: 500 });
      this.apply({ kind: 'tick' });
    }
  }

  summary(): string {
    return this.nodes.map((n) => `${n.nodeId}:${n.reportedState}/${n.goalState}`).join(' ');
  }
}

const nodeArb = fc.integer({ min: 1, max: 4 });
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { weight: 2, arbitrary: nodeArb.map((node) => ({ kind: 'killKeeper', node }) as const) },
  { weight: 2, arbitrary: nodeArb.map((node) => ({ kind: 'killPostgres', node }) as const) },
  { weight: 2, arbitrary: nodeArb.map((node) => ({ kind: 'killMachine', node }) as const) },
  { weight: 2, arbitrary: nodeArb.map((node) => ({ kind: 'breakStreaming', node }) as const) },
  { weight: 3, arbitrary: nodeArb.map((node) => ({ kind: 'heal', node }) as const) },
  { weight: 4, arbitrary: fc.integer({ min: 100, max: 6_000 }).map((ms) => ({ kind: 'advance', ms }) as const) },
  { weight: 6, arbitrary: fc.constant({ kind: 'tick' } as const) },
  { weight: 3, arbitrary: nodeArb.map((node) => ({ kind: 'tickOne', node }) as const) },
  { weight: 1, arbitrary: fc.constantFrom(0, 50, 100).map((candidatePriority) => ({ kind: 'register', candidatePriority }) as const) },
);

const scenarioArb = fc
  .constantFrom(2, 3, 3, 4, 4)
  .chain((maxNodes) =>
    fc.record({
      maxNodes: fc.constant(maxNodes),
      priorities: fc.array(fc.constantFrom(50, 50, 100, 0), { minLength: Math.max(2, maxNodes - 1), maxLength: maxNodes }),
      // Mostly start from a converged group, where failovers can happen.
      warm: fc.constantFrom(true, true, true, false),
      actions: fc.array(actionArb, { minLength: 5, maxLength: 40 }),
    }),
  );

/** What a scenario is made of. */
interface Scenario {
  maxNodes: number;
  priorities: number[];
  /** Start from a converged group (primary + secondaries) instead of freshly registered nodes. */
  warm: boolean;
  actions: Action[];
}

/** What one scenario produced: failures of each property, and the history to explain them. */
interface Outcome {
  safety: string[];
  convergence: string | undefined;
  lostWrites: string[];
  history: string;
}

/** Runs one scenario: random actions, then every fault heals and keepers run for 20 s. */
function runScenario({ maxNodes, priorities, warm, actions }: Scenario): Outcome {
  const world = new World(maxNodes, priorities);
  if (warm) world.healAllAndConverge(10);
  world.apply({ kind: 'tick' });
  for (const action of actions) world.apply(action);
  world.healAllAndConverge(40);
  const primaries = world.nodes.filter((n) => n.reportedState === 'primary' && n.goalState === 'primary');
  const secondaries = world.nodes.filter((n) => n.reportedState === 'secondary' && n.goalState === 'secondary');
  const converged = primaries.length === 1 && secondaries.length === world.nodes.length - 1;
  return {
    safety: [...new Set(world.violations)],
    convergence: converged ? undefined : `no convergence after healing: ${world.summary()}`,
    lostWrites: world.lostWrites,
    history: `\n  history:\n    ${world.log.join('\n    ')}`,
  };
}

/**
 * A fixed seed keeps runs reproducible; seed 2 was picked among the first few because its 400
 * runs reach multi-standby failovers with a lagging or unreachable standby. To explore further:
 * `PGHA_FC_SEED=random PGHA_FC_RUNS=5000 npx vitest run --project unit property`.
 */
const RUN_OPTIONS = {
  numRuns: Number(process.env.PGHA_FC_RUNS ?? 400),
  ...(process.env.PGHA_FC_SEED === 'random' ? {} : { seed: Number(process.env.PGHA_FC_SEED ?? 2) }),
};
/** Room for the runs and for shrinking a counterexample. */
const PROPERTY_TIMEOUT_MS = Math.max(20_000, RUN_OPTIONS.numRuns * 50);

describe('random fault histories (fast-check)', () => {
  it('never two writable goals, never a bad promotion, only declared edges; converges once faults heal', () => {
    fc.assert(
      fc.property(scenarioArb, (scenario) => {
        const outcome = runScenario(scenario);
        if (outcome.safety.length > 0) throw new Error(`safety: ${outcome.safety.join('; ')}${outcome.history}`);
        if (outcome.convergence) throw new Error(`${outcome.convergence}${outcome.history}`);
      }),
      RUN_OPTIONS,
    );
  }, PROPERTY_TIMEOUT_MS);

  it('a promoted node has every commit acknowledged under synchronous replication (DESIGN: no lost writes)', () => {
    fc.assert(
      fc.property(scenarioArb, (scenario) => {
        const outcome = runScenario(scenario);
        if (outcome.lostWrites.length > 0) throw new Error(`lost writes: ${outcome.lostWrites.join('; ')}${outcome.history}`);
      }),
      RUN_OPTIONS,
    );
  }, PROPERTY_TIMEOUT_MS);

  it('a healthy group started from two registered nodes converges without any fault', () => {
    const ok = { safety: [], convergence: undefined, lostWrites: [] };
    expect(runScenario({ maxNodes: 2, priorities: [50, 50], warm: false, actions: [] })).toMatchObject(ok);
    expect(runScenario({
      maxNodes: 4,
      priorities: [50, 50],
      warm: false,
      actions: [{ kind: 'tick' }, { kind: 'register', candidatePriority: 50 }, { kind: 'register', candidatePriority: 0 }],
    })).toMatchObject(ok);
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
