/**
 * Exhaustive checks of the monitor's safety rules over 2- and 3-node groups: every combination
 * of realistic (reported, goal) pairs, health, keeper liveness, streaming and LSN order. For each
 * input the monitor can produce, `decideUntilStable` must (see `checkDecision`)
 *  (a) never leave two nodes with a writable goal;
 *  (b) never assign fast_forward/prepare_promotion/stop_replication to a node with candidate
 *      priority 0, never promote (stop_replication) a node behind a reporting standby, and let
 *      an election pick the highest candidate priority, then the most advanced LSN;
 *  (c) only assign edges (from the reported state and from the previous goal) in MONITOR_EDGES.
 */
import {
  DEFAULT_FORMATION_SETTINGS,
  decideUntilStable,
  lsn,
  CANDIDATE_STATES,
  OUTGOING_PRIMARY_STATES,
  PROMOTION_STATES,
  WRITABLE_STATES,
  type GroupFacts,
  type Lsn,
  type NodeFacts,
  type NodeHealth,
  type NodeState,
} from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { T0 } from './fact-builders.js';
import { checkDecision } from './simulate.js';

const S = DEFAULT_FORMATION_SETTINGS;
type Pair = readonly [reported: NodeState, goal: NodeState];

/** Pairs a node on the primary side of a group is seen in: reached goals and goals on the way. */
const PRIMARY_SIDE: Pair[] = [
  ['init', 'single'],
  ['single', 'single'],
  ['single', 'wait_primary'],
  ['wait_primary', 'wait_primary'],
  ['primary', 'wait_primary'],
  ['join_primary', 'wait_primary'],
  ['wait_primary', 'primary'],
  ['primary', 'primary'],
  ['join_primary', 'primary'],
  ['primary', 'join_primary'],
  ['wait_primary', 'join_primary'],
  ['join_primary', 'join_primary'],
  ['prepare_promotion', 'stop_replication'],
  ['stop_replication', 'stop_replication'],
  ['stop_replication', 'wait_primary'],
  ['primary', 'demote_timeout'],
  ['demote_timeout', 'demote_timeout'],
  ['primary', 'demoted'],
  ['demote_timeout', 'demoted'],
  ['demoted', 'demoted'],
];

/** Pairs a node on the standby side is seen in. */
const STANDBY_SIDE: Pair[] = [
  ['init', 'init'],
  ['init', 'wait_standby'],
  ['wait_standby', 'wait_standby'],
  ['wait_standby', 'catchingup'],
  ['catchingup', 'catchingup'],
  ['demoted', 'catchingup'],
  ['catchingup', 'secondary'],
  ['secondary', 'secondary'],
  ['secondary', 'catchingup'],
  ['secondary', 'prepare_promotion'],
  ['prepare_promotion', 'prepare_promotion'],
];

/** A switchover (or maintenance of the primary): the outgoing primary's pairs, and its partner's. */
const OUTGOING_SIDE: Pair[] = [
  ['primary', 'draining'],
  ['draining', 'draining'],
  ['draining', 'demoted'],
  ['primary', 'prepare_maintenance'],
  ['prepare_maintenance', 'prepare_maintenance'],
  ['prepare_maintenance', 'maintenance'],
  ['maintenance', 'maintenance'],
  ['maintenance', 'catchingup'],
];
const INCOMING_SIDE: Pair[] = [
  ['secondary', 'secondary'],
  ['secondary', 'prepare_promotion'],
  ['prepare_promotion', 'prepare_promotion'],
  ['prepare_promotion', 'stop_replication'],
  ['stop_replication', 'stop_replication'],
  ['stop_replication', 'wait_primary'],
  ['wait_primary', 'wait_primary'],
];

/** Maintenance of a standby: the primary's pairs, and the standby's. */
const MAINTAINING_PRIMARY_SIDE: Pair[] = [
  ['primary', 'primary'],
  ['primary', 'wait_primary'],
  ['wait_primary', 'wait_primary'],
  ['wait_primary', 'primary'],
];
const MAINTENANCE_SIDE: Pair[] = [
  ['secondary', 'wait_maintenance'],
  ['wait_maintenance', 'wait_maintenance'],
  ['wait_maintenance', 'maintenance'],
  ['maintenance', 'maintenance'],
  ['maintenance', 'catchingup'],
];

/** How the monitor sees one node: probe result, keeper heartbeat, WAL receiver. */
interface Condition {
  health: NodeHealth;
  /** alive: reported just now; silent: longer than nodeUnhealthyTimeoutMs ago. */
  keeper: 'alive' | 'silent';
  streaming: boolean;
}

const HEALTHS: NodeHealth[] = ['good', 'bad', 'unknown'];
/** Primary side: nothing reads a primary's WAL receiver, so streaming is left out. */
const PRIMARY_CONDITIONS: Condition[] = HEALTHS.flatMap((health) =>
  (['alive', 'silent'] as const).map((keeper) => ({ health, keeper, streaming: false })),
);
/** Standby side: streaming only matters while the keeper reports (a silent keeper's view is stale). */
const STANDBY_CONDITIONS: Condition[] = HEALTHS.flatMap((health) => [
  { health, keeper: 'alive' as const, streaming: true },
  { health, keeper: 'alive' as const, streaming: false },
  { health, keeper: 'silent' as const, streaming: true },
]);

/** Goals that only exist while a failover or switchover runs: nothing else is writable then but the promoting node. */
const IN_FAILOVER_GOALS: ReadonlySet<NodeState> = new Set([...PROMOTION_STATES, ...OUTGOING_PRIMARY_STATES]);

/**
 * Joint states the monitor can actually produce (inputs it never creates are skipped): at most
 * one writable goal; at most one candidate (fast_forward/prepare_promotion/stop_replication);
 * while a failover or switchover runs (a candidate, a voter in report_lsn, or an outgoing
 * primary), no writable goal but `stop_replication` (failover-start and the switchover demote the
 * old primary in the same decision that starts it); a `single` goal only while every other node
 * is still `init`.
 */
function reachable(nodes: readonly NodeFacts[]): boolean {
  const writable = nodes.filter((n) => WRITABLE_STATES.has(n.goalState));
  if (writable.length > 1) return false;
  if (nodes.filter((n) => CANDIDATE_STATES.has(n.goalState)).length > 1) return false;
  if (nodes.some((n) => IN_FAILOVER_GOALS.has(n.goalState)) && writable.some((n) => n.goalState !== 'stop_replication')) return false;
  if (nodes.some((n) => n.goalState === 'single') && nodes.some((n) => n.goalState !== 'single' && n.goalState !== 'init')) return false;
  return true;
}

function makeNode(nodeId: number, [reportedState, goalState]: Pair, c: Condition, reportedLsn: Lsn, extra: Partial<NodeFacts> = {}): NodeFacts {
  const lastReportMs = c.keeper === 'alive' ? T0 : T0 - S.nodeUnhealthyTimeoutMs - 1;
  return {
    nodeId,
    name: `node${nodeId}`,
    candidatePriority: 50,
    replicationQuorum: true,
    reportedState,
    goalState,
    lastReportMs,
    // A live keeper reports what the probe sees; a silent keeper's last report said "running".
    postgresRunning: !(c.keeper === 'alive' && c.health === 'bad'),
    reportedLsn,
    reportedTimeline: 1,
    upstreamStreaming: c.streaming,
    lastStreamingMs: c.streaming ? lastReportMs : T0 - S.standbyStreamingTimeoutMs - 1,
    health: c.health,
    ...extra,
  };
}

function facts(nodes: NodeFacts[]): GroupFacts {
  return { formation: 'default', groupId: 0, nowMs: T0, settings: S, nodes };
}

/** Collects violations, keeping one example per distinct message shape. */
class Findings {
  checked = 0;
  private readonly examples = new Map<string, string>();

  check(input: GroupFacts): void {
    if (!reachable(input.nodes)) return;
    this.checked++;
    const assignments = decideUntilStable(input, { type: 'evaluate', cause: 'timer' });
    for (const v of checkDecision(input, assignments)) {
      const shape = v.replace(/\d+/g, '#');
      if (!this.examples.has(shape)) {
        const nodes = input.nodes.map((n) =>
          `${n.nodeId}:${n.reportedState}/${n.goalState} health=${n.health} keeper=${n.lastReportMs === T0 ? 'alive' : 'silent'} ` +
          `postgresRunning=${n.postgresRunning} streaming=${n.upstreamStreaming} lsn=${n.reportedLsn} prio=${n.candidatePriority}`);
        this.examples.set(shape, `${v}\n    facts: ${nodes.join(' | ')}\n    assignments: ${assignments.map((a) => `${a.nodeId}->${a.goalState} (${a.rule})`).join(', ')}`);
      }
    }
  }

  get list(): string[] {
    return [...this.examples.values()];
  }
}

/** These tests run tens of thousands of decisions: room beyond vitest's 5 s default. */
const EXHAUSTIVE_TIMEOUT_MS = 30_000;

const LSN_HIGH = lsn(0x5000000n);
const LSN_LOW = lsn(0x5000000n - BigInt(S.catchupLagBytes) - 1n);

describe('exhaustive safety invariants', () => {
  /**
   * Every pair of `primarySide` × `standbySide` × conditions: the primary-side node first (both
   * LSN orders), then second (equal LSNs, so that node ids break ties).
   */
  function checkTwoNodes(findings: Findings, primarySide: readonly Pair[], standbySide: readonly Pair[]): void {
    for (const p of primarySide) {
      for (const s of standbySide) {
        for (const c1 of PRIMARY_CONDITIONS) {
          for (const c2 of STANDBY_CONDITIONS) {
            findings.check(facts([makeNode(1, p, c1, LSN_HIGH), makeNode(2, s, c2, LSN_HIGH)]));
            findings.check(facts([makeNode(1, p, c1, LSN_HIGH), makeNode(2, s, c2, LSN_LOW)]));
            findings.check(facts([makeNode(1, s, c2, LSN_HIGH), makeNode(2, p, c1, LSN_HIGH)]));
          }
        }
      }
    }
  }

  it('2-node groups: every pair combination × health × keeper × streaming × LSN order', () => {
    const findings = new Findings();
    checkTwoNodes(findings, PRIMARY_SIDE, STANDBY_SIDE);
    // Bootstrap: both nodes registered.
    for (const c1 of STANDBY_CONDITIONS) {
      for (const c2 of STANDBY_CONDITIONS) findings.check(facts([makeNode(1, ['init', 'init'], c1, LSN_HIGH), makeNode(2, ['init', 'init'], c2, LSN_HIGH)]));
    }
    expect(findings.checked).toBeGreaterThan(10_000);
    expect(findings.list).toEqual([]);
  }, EXHAUSTIVE_TIMEOUT_MS);

  it('1-node groups (the others dropped): every primary-side pair × conditions × candidate priority × number_sync_standbys; a reached primary or wait_primary ends single', () => {
    const findings = new Findings();
    const ends: string[] = [];
    for (const p of PRIMARY_SIDE) {
      for (const c of PRIMARY_CONDITIONS) {
        for (const candidatePriority of [0, 50]) {
          for (const numberSyncStandbys of [0, 1]) {
            const input = { ...facts([makeNode(1, p, c, LSN_HIGH, { candidatePriority })]), settings: { ...S, numberSyncStandbys } };
            findings.check(input);
            const goal = decideUntilStable(input).at(-1)?.goalState ?? p[1];
            if (p[0] === p[1] && (p[1] === 'primary' || p[1] === 'wait_primary') && goal !== 'single') ends.push(`${p.join('/')} ${JSON.stringify(c)} prio ${candidatePriority} nss ${numberSyncStandbys}: ${goal}`);
          }
        }
      }
    }
    expect(findings.checked).toBeGreaterThan(200);
    expect(findings.list).toEqual([]);
    expect(ends).toEqual([]);
  });

  it('2-node switchovers and maintenance: outgoing primary × incoming standby, primary × standby in maintenance', () => {
    const findings = new Findings();
    checkTwoNodes(findings, OUTGOING_SIDE, INCOMING_SIDE);
    checkTwoNodes(findings, MAINTAINING_PRIMARY_SIDE, MAINTENANCE_SIDE);
    expect(findings.checked).toBeGreaterThan(5_000);
    expect(findings.list).toEqual([]);
  }, EXHAUSTIVE_TIMEOUT_MS);

  it('3-node groups: a primary-side node and two standbys × conditions × LSN order × candidate priority', () => {
    const findings = new Findings();
    const node1Pairs: Pair[] = [
      ['primary', 'primary'], ['wait_primary', 'wait_primary'], ['primary', 'wait_primary'], ['wait_primary', 'primary'],
      ['join_primary', 'join_primary'], ['primary', 'join_primary'], ['join_primary', 'primary'], ['join_primary', 'wait_primary'],
      ['primary', 'demote_timeout'], ['demote_timeout', 'demoted'], ['primary', 'demoted'], ['demoted', 'demoted'],
    ];
    const node2Pairs: Pair[] = [
      ['secondary', 'secondary'], ['catchingup', 'catchingup'], ['catchingup', 'secondary'], ['secondary', 'catchingup'],
      ['secondary', 'prepare_promotion'], ['prepare_promotion', 'prepare_promotion'], ['prepare_promotion', 'stop_replication'],
      ['stop_replication', 'stop_replication'], ['wait_standby', 'catchingup'],
    ];
    const node3Pairs: Pair[] = [
      ['secondary', 'secondary'], ['catchingup', 'catchingup'], ['init', 'wait_standby'], ['secondary', 'catchingup'],
      ['prepare_promotion', 'prepare_promotion'],
    ];
    // (A keeper that says its Postgres is down is covered by the 2-node matrix.)
    const node1Conditions: Condition[] = [
      { health: 'good', keeper: 'alive', streaming: false },
      { health: 'good', keeper: 'silent', streaming: false },
      { health: 'bad', keeper: 'silent', streaming: false },
    ];
    const standbyConditions: Condition[] = [
      { health: 'good', keeper: 'alive', streaming: true },
      { health: 'good', keeper: 'alive', streaming: false },
      { health: 'good', keeper: 'silent', streaming: true },
    ];
    const LSN_MID = lsn(LSN_HIGH - 100n);
    // node 2 ahead of node 3; node 3 ahead of node 2; node 3 ahead but with candidate priority 0.
    const orders = [[LSN_HIGH, LSN_MID, 50], [LSN_MID, LSN_HIGH, 50], [LSN_MID, LSN_HIGH, 0]] as const;
    for (const p1 of node1Pairs) {
      for (const p2 of node2Pairs) {
        for (const p3 of node3Pairs) {
          for (const c1 of node1Conditions) {
            for (const c2 of standbyConditions) {
              for (const c3 of standbyConditions) {
                for (const [l2, l3, prio3] of orders) {
                  findings.check(facts([
                    makeNode(1, p1, c1, LSN_HIGH),
                    makeNode(2, p2, c2, l2),
                    makeNode(3, p3, c3, l3, { candidatePriority: prio3 }),
                  ]));
                }
              }
            }
          }
        }
      }
    }
    expect(findings.checked).toBeGreaterThan(10_000);
    expect(findings.list).toEqual([]);
  }, EXHAUSTIVE_TIMEOUT_MS);

  it('3-node failovers and switchovers: an outgoing primary, a candidate or voter, and another standby × conditions × LSN order × candidate priority, election timed out', () => {
    const findings = new Findings();
    const outgoing: Pair[] = [
      ['primary', 'demote_timeout'], ['demote_timeout', 'demote_timeout'], ['primary', 'draining'], ['draining', 'draining'],
      ['prepare_maintenance', 'prepare_maintenance'],
    ];
    const candidateSide: Pair[] = [
      ['secondary', 'report_lsn'], ['report_lsn', 'report_lsn'], ['report_lsn', 'prepare_promotion'], ['secondary', 'prepare_promotion'],
      ['prepare_promotion', 'prepare_promotion'], ['report_lsn', 'fast_forward'], ['fast_forward', 'fast_forward'],
      ['fast_forward', 'prepare_promotion'], ['prepare_promotion', 'stop_replication'], ['stop_replication', 'stop_replication'],
    ];
    const otherSide: Pair[] = [
      ['secondary', 'report_lsn'], ['report_lsn', 'report_lsn'], ['secondary', 'secondary'], ['catchingup', 'catchingup'],
      ['wait_maintenance', 'wait_maintenance'],
    ];
    const node1Conditions: Condition[] = [
      { health: 'good', keeper: 'alive', streaming: false },
      { health: 'bad', keeper: 'silent', streaming: false },
    ];
    // The old primary is gone or going: what matters is whether the keeper answers and Postgres runs.
    const standbyConditions: Condition[] = [
      { health: 'good', keeper: 'alive', streaming: false },
      { health: 'good', keeper: 'silent', streaming: false },
      { health: 'bad', keeper: 'alive', streaming: false },
    ];
    const LSN_MID = lsn(LSN_HIGH - 100n);
    // Node 2 behind node 3; node 3 ahead with candidate priority 0; node 3 behind with a higher
    // candidate priority (it must fast_forward first).
    const orders = [[LSN_MID, LSN_HIGH, 50], [LSN_MID, LSN_HIGH, 0], [LSN_HIGH, LSN_MID, 100]] as const;
    // Every goal was assigned longer than electionTimeoutMs ago: the election decides with whoever answered.
    const timedOut = { goalChangedMs: T0 - S.electionTimeoutMs - 1 };
    for (const p1 of outgoing) {
      for (const p2 of candidateSide) {
        for (const p3 of otherSide) {
          for (const c1 of node1Conditions) {
            for (const c2 of standbyConditions) {
              for (const c3 of standbyConditions) {
                for (const [l2, l3, prio3] of orders) {
                  findings.check(facts([
                    makeNode(1, p1, c1, LSN_HIGH, timedOut),
                    makeNode(2, p2, c2, l2, timedOut),
                    makeNode(3, p3, c3, l3, { candidatePriority: prio3, ...timedOut }),
                  ]));
                }
              }
            }
          }
        }
      }
    }
    expect(findings.checked).toBeGreaterThan(10_000);
    expect(findings.list).toEqual([]);
  }, EXHAUSTIVE_TIMEOUT_MS);
});
