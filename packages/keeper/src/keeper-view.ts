/**
 * What the keeper knows of its node, from memory, for its HTTP routes and metrics
 * (`http/`): built by {@link keeperView} from the keeper's state as its loop last left it, so
 * that a health check never queries Postgres nor waits for the loop.
 */
import type { NodeGoal, NodeState } from '@pgha/shared/base';
import type { KeeperConfig } from './keeper-config.js';
import type { PostgresFacts } from './local-facts.js';

/**
 * What the keeper knows of its node, from memory: its Postgres facts as the last tick read
 * them, its reached and assigned states, the fence. The HTTP routes answer from it, so that a
 * health check never queries Postgres nor waits for the loop.
 */
export interface KeeperView {
  nodeId: number;
  name: string;
  formation: string;
  groupId: number;
  /** The state the keeper has reached (what it reports). */
  reportedState: NodeState;
  /** The monitor's last goal for the node; null before its first answer. */
  goalState: string | null;
  /** `current->goal` while a transition runs, or while the goal differs from the reached state; null otherwise. */
  pendingTransition: string | null;
  /** Postgres ran at the last read. */
  postgresRunning: boolean;
  /** The facts of the last read (undefined when Postgres did not answer). */
  facts: PostgresFacts | undefined;
  /** When the facts were read (`Date.now()`, ms); 0 before the first read. */
  factsAtMs: number;
  /** The node fenced itself (network partition) and the monitor has not answered since. */
  fenced: boolean;
  /** When the keeper last reached a new state (`Date.now()`, ms; from `state.json` at start). */
  lastTransitionAtMs: number;
  /** The keeper's report interval, ms (how often the facts are refreshed). */
  reportIntervalMs: number;
  /** Postgres runs but does not answer the keeper (see `LocalSession.factsProblem`); null otherwise. */
  factsProblem: string | null;
  /** What the last report told the monitor keeps the node from its goal; null when nothing. */
  problem: string | null;
}

/** What the last report read of the node (`Keeper.buildReport`). */
export interface NodeReading {
  /** The facts read (undefined when Postgres did not answer). */
  facts: PostgresFacts | undefined;
  /** When (`Date.now()`, ms); 0 before the first read. */
  atMs: number;
  /** Postgres answered, or its postmaster ran. */
  postgresRunning: boolean;
  /** `LocalSession.factsProblem` at that read. */
  factsProblem: string | undefined;
  /** The problem sentence the report carried; null when nothing. */
  problem: string | null;
}

/** The keeper's state a view is built from (the `Keeper` itself, read-only). */
export interface KeeperViewSource {
  readonly config: KeeperConfig;
  /** The reached state. */
  readonly currentState: NodeState;
  /** The monitor's last answer; undefined before its first. */
  readonly goal: NodeGoal | undefined;
  /** `current->goal` while a transition runs; null otherwise. */
  readonly transitionInProgress: string | null;
  readonly lastReading: NodeReading;
  /** When the node fenced itself, while the fence holds (`PostgresLifecycle.fencedSinceMs`). */
  readonly fencedSinceMs: number | undefined;
  /** When the keeper last reached a new state (`Date.now()`, ms). */
  readonly lastTransitionAtMs: number;
  readonly reportIntervalMs: number;
}

/**
 * The view of `keeper` now.
 *
 * ### Examples
 * ```ts
 * keeperView(keeper).pendingTransition // 'secondary->prepare_promotion' while that transition runs
 * ```
 */
export function keeperView(keeper: KeeperViewSource): KeeperView {
  const current = keeper.currentState;
  const goal = keeper.goal?.goalState ?? null;
  const reading = keeper.lastReading;
  return {
    nodeId: keeper.config.nodeId,
    name: keeper.config.name,
    formation: keeper.config.formation,
    groupId: keeper.config.groupId,
    reportedState: current,
    goalState: goal,
    pendingTransition: keeper.transitionInProgress ?? (goal !== null && goal !== current ? `${current}->${goal}` : null),
    postgresRunning: reading.postgresRunning,
    facts: reading.facts,
    factsAtMs: reading.atMs,
    fenced: keeper.fencedSinceMs !== undefined,
    lastTransitionAtMs: keeper.lastTransitionAtMs,
    reportIntervalMs: keeper.reportIntervalMs,
    factsProblem: reading.factsProblem ?? null,
    problem: reading.problem,
  };
}
