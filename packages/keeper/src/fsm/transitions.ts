/**
 * One function per verb of the keeper's transition table. Each does one local thing, checks
 * before it acts (so a keeper killed halfway converges when restarted), and throws a
 * `PghaError` when it cannot finish; the keeper loop logs it once and retries.
 * Source: pg_auto_failover's `fsm_transition.c`.
 */
import { PghaError, type GroupMember, type NodeGoal, type NodeState } from '@pgha/shared';
import type { NodeControl } from '../node-control.js';
import { postmasterPid } from '@pgha/postgres';
import { readLocalTimeline } from '../postgres/timeline-history.js';
import type { Divergence } from './divergence-rule.js';
import type { TransitionName } from './transition-table.js';

/** What a transition function receives. */
export interface TransitionContext {
  node: NodeControl;
  /** The monitor's latest answer: goal, primary, group members, sync names. */
  goal: NodeGoal;
  goalState: NodeState;
}

type TransitionFn = (ctx: TransitionContext) => Promise<void>;

/** The `synchronous_standby_names` a primary in `goalState` applies. */
async function syncNamesFor(ctx: TransitionContext): Promise<string> {
  switch (ctx.goalState) {
    case 'primary':
    case 'apply_settings':
      return ctx.goal.synchronousStandbyNames;
    case 'join_primary': {
      // Adding a standby changes nothing about synchronous replication: keep what runs.
      const facts = await ctx.node.readFacts();
      return facts?.synchronousStandbyNames ?? '';
    }
    default:
      return '';
  }
}

/**
 * `init → single`: initdb, or adopt an existing data directory (its data untouched: pgha adds
 * its config include, its pg_hba block and its roles, and restarts a running Postgres once so
 * that its port, socket and replication settings apply), start, create roles.
 */
export const initPrimary: TransitionFn = async (ctx) => {
  await ctx.node.initdbIfNeeded();
  ctx.node.writeConfig({ nodes: ctx.goal.nodes, synchronousStandbyNames: '' });
  await ctx.node.restartIfUnreachable();
  await configurePrimary(ctx);
  await ctx.node.createRoles();
};

/**
 * Writable goals: pg_hba for the group's nodes, a replication slot per standby, and
 * `synchronous_standby_names` for the goal, applied and visible before it returns (the
 * monitor treats a reported `primary` as "commits wait for a standby").
 */
export const configurePrimary: TransitionFn = async (ctx) => {
  const facts = await ctx.node.readFacts();
  if (facts?.isInRecovery) {
    throw new PghaError('PGHA_ERR_CONFIG', `Postgres runs as a standby, cannot become ${ctx.goalState} without promotion`);
  }
  if (!facts && ctx.node.hasStandbySignal()) {
    throw new PghaError('PGHA_ERR_CONFIG', `the data directory is set up as a standby (standby.signal), cannot start it as ${ctx.goalState}`);
  }
  const names = await syncNamesFor(ctx);
  const key = JSON.stringify([ctx.goalState, names, ctx.goal.nodes.map((n) => [n.nodeId, n.host, n.port]), postmasterPid(ctx.node.pgdata)]);
  if (facts && key === ctx.node.appliedPrimaryKey) return;
  ctx.node.appliedPrimaryKey = undefined;
  await ctx.node.applyConfig({ nodes: ctx.goal.nodes, synchronousStandbyNames: names });
  await ctx.node.ensureSlots(ctx.goal.nodes);
  await ctx.node.waitForSetting(names);
  ctx.node.appliedPrimaryKey = JSON.stringify([ctx.goalState, names, ctx.goal.nodes.map((n) => [n.nodeId, n.host, n.port]), postmasterPid(ctx.node.pgdata)]);
};

/** `init → wait_standby`: nothing to do until the primary accepts this node. */
export const waitForPrimary: TransitionFn = async () => undefined;

/** `wait_standby → catchingup`: base backup from the primary (unless data is there), then stream. */
export const initStandby: TransitionFn = async (ctx) => {
  if (!ctx.node.hasData()) {
    const primary = ctx.goal.primary;
    if (!primary) throw new PghaError('PGHA_ERR_CONFIG', 'no primary to clone from yet');
    await ctx.node.baseBackup(primary);
  }
  await ctx.node.followAsStandby(ctx.goal);
};

/**
 * Standby goals: run as a hot standby of the current primary; a standby whose WAL diverged
 * from the primary's timeline is rewound first (see {@link repairDivergence}).
 */
export const followPrimary: TransitionFn = async (ctx) => {
  if (!ctx.node.hasData()) return initStandby(ctx);
  const facts = await ctx.node.readFacts();
  if (facts && !facts.isInRecovery) {
    throw new PghaError('PGHA_ERR_CONFIG', 'Postgres runs as a primary; it must be rewound before it can follow another primary');
  }
  await repairDivergence(ctx);
  await ctx.node.followAsStandby(ctx.goal);
};

/**
 * Goals in which a diverged standby is rewound: it follows a settled primary. Not during an
 * election (`report_lsn`, `fast_forward`: the node's LSN is a vote) nor around maintenance.
 */
const REWIND_GOALS: ReadonlySet<NodeState> = new Set<NodeState>(['catchingup', 'secondary', 'join_secondary']);

/**
 * A standby that follows the monitor's primary and whose WAL receiver has stopped streaming:
 * compare timelines (`DivergenceWatch.check`, when one is due; it costs nothing while the
 * standby streams) and, on the next call, once a report has carried the problem, rewind a
 * standby found diverged ({@link rewindDivergedStandby}).
 */
async function repairDivergence(ctx: TransitionContext): Promise<void> {
  const primary = ctx.goal.primary;
  const upstream = ctx.node.currentUpstream(ctx.goal);
  if (!primary || primary.nodeId === ctx.node.config.nodeId || upstream?.nodeId !== primary.nodeId || !REWIND_GOALS.has(ctx.goalState)) return;
  const watch = ctx.node.divergence;
  const found = watch.takeDivergence(Date.now());
  if (found) return rewindDivergedStandby(ctx.node, primary, found);
  await watch.check(Date.now(), primary, {
    local: () => ctx.node.withSession(readLocalTimeline),
    upstream: () => ctx.node.readUpstreamTimeline(primary),
  });
}

/**
 * pg_rewind from `source`; when that fails, a fresh base backup (the old data directory is
 * replaced only once the backup is complete). Postgres must be stopped.
 *
 * @returns which of the two did it.
 * @throws PostgresCommandError when the base backup fails too.
 */
async function rewindOrClone(node: NodeControl, source: GroupMember): Promise<'pg_rewind' | 'a base backup'> {
  try {
    await node.rewind(source);
    return 'pg_rewind';
  } catch (err) {
    node.log.warn({ err: (err as Error).message }, 'pg_rewind failed, falling back to a fresh base backup');
    await node.baseBackup(source);
    return 'a base backup';
  }
}

/**
 * Rewinds a standby whose WAL diverged from the primary's timeline: stop Postgres (a fast
 * shutdown leaves a standby "shut down in recovery", which pg_rewind accepts), pg_rewind from
 * the primary, or a fresh base backup when that fails; the caller then follows the primary.
 *
 * Why no acknowledged write is lost. The node is a standby in the monitor's eyes (goal
 * `catchingup`, `secondary` or `join_secondary`) and `primary` is the node the monitor
 * promoted. The monitor promotes only a node at or past the last LSN synchronous replication
 * acknowledged (its election waits for enough synchronous standbys to report and picks, or
 * fast-forwards, the most advanced), and only when the old primary ran with synchronous
 * replication on (`primary`: failovers and switchovers alike; never from `wait_primary` or
 * `single`, whose commits need no standby). Every commit acknowledged on the old
 * timeline is therefore at or before the fork point, on `primary`: the WAL this node holds
 * past it (the divergence rule proves, from `primary`'s own timeline history, that it exists)
 * was written by the old primary but never acknowledged to a client — a commit waiting for a
 * synchronous standby that never confirmed it, or WAL streamed to this (asynchronous or silent)
 * standby ahead of the synchronous ones. Throwing it away loses nothing a client saw
 * committed, and keeping it would keep the node from ever following again. A standby that is
 * only behind, or whose primary does not answer, is never found diverged
 * (`timelineDivergence`, `DivergenceWatch.check`).
 *
 * Source: Patroni rewinds a replica whose timeline diverged from the leader's the same way
 * (`Rewind.rewind_or_reinitialize_needed_and_possible`); pg_auto_failover has no counterpart.
 */
async function rewindDivergedStandby(node: NodeControl, primary: GroupMember, divergence: Divergence): Promise<void> {
  // Never rewound nor replaced: a data directory that is not the node's.
  node.assertOwnData();
  node.log.warn(`rewinding the diverged standby from the primary's timeline ${divergence.upstreamTimeline}: stopping Postgres`);
  await node.stop();
  const how = await rewindOrClone(node, primary);
  node.log.info(`diverged standby repaired with ${how}: following the primary again`);
}

/** `secondary → prepare_promotion`: make sure Postgres runs so that its LSN is reported. */
export const prepareForPromotion: TransitionFn = async (ctx) => {
  await ctx.node.start();
};

/** `prepare_promotion → stop_replication` (and on to a writable goal): promote. */
export const promoteStandby: TransitionFn = async (ctx) => {
  ctx.node.writeConfig({ nodes: ctx.goal.nodes, synchronousStandbyNames: '', follow: null });
  await ctx.node.promote();
  if (ctx.goalState === 'stop_replication') {
    await ctx.node.reload();
    return;
  }
  // The control file shows the new timeline only after a checkpoint; pg_rewind on the old
  // primary reads it and would otherwise find "no rewind required".
  await ctx.node.checkpoint();
  await configurePrimary(ctx);
};

/** Fencing goals (`draining`, `demote_timeout`, `demoted`): stop Postgres. */
export const stopPostgres: TransitionFn = async (ctx) => {
  await ctx.node.stop();
};

/**
 * `demoted → catchingup`: pg_rewind from the new primary; when that fails, a fresh base
 * backup (the old data directory is replaced only once the backup is complete). A data
 * directory that is not the node's (another cluster's) is refused, never rewound or replaced.
 */
export const rewindOrBaseBackup: TransitionFn = async (ctx) => {
  const primary = ctx.goal.primary;
  if (!primary || primary.nodeId === ctx.node.config.nodeId) throw new PghaError('PGHA_ERR_CONFIG', 'no primary to rejoin yet');
  // Neither rewound nor replaced by a base backup: a data directory that is not the node's.
  if (ctx.node.hasData()) ctx.node.assertOwnData();
  await ctx.node.stop();
  const facts = ctx.node.hasData() && ctx.node.hasStandbySignal() ? 'standby' : 'primary';
  if (ctx.node.hasData() && facts === 'primary') {
    await rewindOrClone(ctx.node, primary);
  } else if (!ctx.node.hasData()) {
    await ctx.node.baseBackup(primary);
  }
  await ctx.node.followAsStandby(ctx.goal);
};

/** `maintenance`: the keeper leaves Postgres as it is, for the operator. */
export const leavePostgresAlone: TransitionFn = async () => undefined;

/** `dropped`: stop Postgres; with `--destroy`, remove the data directory too. */
export const dropNode: TransitionFn = async (ctx) => {
  await ctx.node.stop();
  if (ctx.goal.destroy) ctx.node.destroyData();
};

/** Every transition function by name, as the table refers to them. */
export const TRANSITION_FUNCTIONS: Record<TransitionName, TransitionFn> = {
  initPrimary,
  configurePrimary,
  waitForPrimary,
  initStandby,
  followPrimary,
  prepareForPromotion,
  promoteStandby,
  stopPostgres,
  rewindOrBaseBackup,
  leavePostgresAlone,
  dropNode,
};

/**
 * What keeps a node in the state it has reached (current == goal): a primary keeps running
 * with the right settings, a standby keeps following, a fenced node stays stopped.
 */
export async function ensureState(ctx: TransitionContext): Promise<void> {
  switch (ctx.goalState) {
    case 'single':
    case 'wait_primary':
    case 'primary':
    case 'join_primary':
    case 'apply_settings':
      return configurePrimary(ctx);
    case 'catchingup':
    case 'secondary':
    case 'report_lsn':
    case 'join_secondary':
    case 'fast_forward':
    case 'wait_maintenance':
      return followPrimary(ctx);
    case 'prepare_promotion':
      return prepareForPromotion(ctx);
    case 'stop_replication':
      return ctx.node.start();
    case 'draining':
    case 'demote_timeout':
    case 'demoted':
    case 'prepare_maintenance':
      return ctx.node.stop();
    default:
      return undefined;
  }
}
