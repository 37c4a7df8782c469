/**
 * One function per verb of the keeper's transition table. Each does one local thing, checks
 * before it acts (so a keeper killed halfway converges when restarted), and throws a
 * `PghaError` when it cannot finish; the keeper loop logs it once and retries.
 * Source: pg_auto_failover's `fsm_transition.c`.
 */
import { PLANNED_STOP_STATES, PghaError, type NodeGoal, type NodeState } from '@pgha/shared/base';
import type { NodeControl } from '../node-control.js';
import type { PostgresFacts } from '../local-facts.js';
import type { Rejoin } from '../node/rebuild.js';
import type { TransitionName } from './transition-table.js';

/** What a transition function receives. */
export interface TransitionContext {
  node: NodeControl;
  /** The monitor's latest answer: goal, primary, group members, sync names. */
  goal: NodeGoal;
  goalState: NodeState;
  /**
   * For a keep row only (the node has reached its goal, `ensureState`): the facts the tick's
   * report read of Postgres a few ms before (`value` undefined: Postgres did not answer).
   * Keeping a state reads them once per tick instead of twice (issue 17: idle cost); a
   * transition, which changes Postgres, always reads them afresh.
   */
  reportedFacts?: { value: PostgresFacts | undefined };
}

/** The facts of `ctx.reportedFacts` when given, else read now. */
function currentFacts(ctx: TransitionContext): Promise<PostgresFacts | undefined> {
  return ctx.reportedFacts ? Promise.resolve(ctx.reportedFacts.value) : ctx.node.session.readFacts();
}

/** A transition function: does one local thing, or throws. */
export type TransitionFn = (ctx: TransitionContext) => Promise<void>;

/** The `synchronous_standby_names` a primary in `goalState` applies. */
async function syncNamesFor(ctx: TransitionContext): Promise<string> {
  switch (ctx.goalState) {
    case 'primary':
    case 'apply_settings':
      return ctx.goal.synchronousStandbyNames;
    case 'join_primary': {
      // Adding a standby changes nothing about synchronous replication: keep what runs.
      const facts = await currentFacts(ctx);
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
  await ctx.node.postgres.initdbIfNeeded();
  ctx.node.replication.writeConfig({ nodes: ctx.goal.nodes, clientNetworks: ctx.goal.clientNetworks ?? [], synchronousStandbyNames: '' });
  await ctx.node.postgres.restartIfUnreachable();
  await configurePrimary(ctx);
  await ctx.node.replication.createRoles();
};

/**
 * Writable goals: pg_hba for the group's nodes, a replication slot per standby, and
 * `synchronous_standby_names` for the goal, applied and visible before it returns (the
 * monitor treats a reported `primary` as "commits wait for a standby").
 */
export const configurePrimary: TransitionFn = async (ctx) => {
  const facts = await currentFacts(ctx);
  if (facts?.isInRecovery) {
    throw new PghaError('PGHA_ERR_CONFIG', `Postgres runs as a standby, cannot become ${ctx.goalState} without promotion`);
  }
  if (!facts && ctx.node.postgres.hasStandbySignal()) {
    throw new PghaError('PGHA_ERR_CONFIG', `the data directory is set up as a standby (standby.signal), cannot start it as ${ctx.goalState}`);
  }
  const names = await syncNamesFor(ctx);
  await ctx.node.replication.applyPrimarySettings(ctx.goalState, ctx.goal, names, facts !== undefined);
};

/** `init → wait_standby`, and kept in `wait_standby`: nothing to do until the primary accepts this node. */
export const waitForPrimary: TransitionFn = async () => undefined;

/** `wait_standby → catchingup`: base backup from the primary (unless data is there), then stream. */
export const initStandby: TransitionFn = async (ctx) => {
  if (!ctx.node.postgres.hasData()) {
    const primary = ctx.goal.primary;
    if (!primary) throw new PghaError('PGHA_ERR_CONFIG', 'no primary to clone from yet');
    await ctx.node.rebuild.baseBackup(primary);
  }
  await ctx.node.replication.followAsStandby(ctx.goal);
};

/**
 * Standby goals: run as a hot standby of the current primary; a standby whose WAL diverged
 * from the primary's timeline is rewound first (see {@link repairDivergence}).
 */
export const followPrimary: TransitionFn = async (ctx) => {
  if (!ctx.node.postgres.hasData()) return initStandby(ctx);
  const facts = await currentFacts(ctx);
  if (facts && !facts.isInRecovery) {
    throw new PghaError('PGHA_ERR_CONFIG', 'Postgres runs as a primary; it must be rewound before it can follow another primary');
  }
  await repairDivergence(ctx);
  await ctx.node.replication.followAsStandby(ctx.goal);
};

/**
 * Goals in which a diverged standby is rewound: it follows a settled primary. Not during an
 * election (`report_lsn`, `fast_forward`: the node's LSN is a vote) nor around maintenance.
 */
const REWIND_GOALS: ReadonlySet<NodeState> = new Set<NodeState>(['catchingup', 'secondary', 'join_secondary']);

/**
 * A standby that follows the monitor's primary: compare timelines when the WAL receiver has
 * stopped streaming, and rewind a standby found diverged (`Rebuild.repairDivergence`). Only in
 * {@link REWIND_GOALS}, and only when the upstream is the primary itself.
 */
async function repairDivergence(ctx: TransitionContext): Promise<void> {
  const primary = ctx.goal.primary;
  const upstream = ctx.node.replication.currentUpstream(ctx.goal);
  if (!primary || primary.nodeId === ctx.node.config.nodeId || upstream?.nodeId !== primary.nodeId || !REWIND_GOALS.has(ctx.goalState)) return;
  await ctx.node.rebuild.repairDivergence(primary);
}

/** `secondary → prepare_promotion`: make sure Postgres runs so that its LSN is reported. */
export const prepareForPromotion: TransitionFn = async (ctx) => {
  await ctx.node.postgres.start();
};

/**
 * `prepare_promotion → stop_replication` (and on to a writable goal): promote, write the
 * primary's configuration (no `primary_conninfo`, no synchronous standby), reload. A running
 * standby is promoted first, since clients wait for it (the configuration files, written and
 * synced, took 10–25 ms of a switchover's write gap); a stopped one (a candidate that fenced
 * itself) gets the configuration first, so that it starts following no one. A standby runs
 * with `synchronous_standby_names` empty, so its first commits as a primary wait for no one,
 * before the reload as after.
 */
export const promoteStandby: TransitionFn = async (ctx) => {
  const writeConfig = (): boolean => ctx.node.replication.writeConfig({ nodes: ctx.goal.nodes, clientNetworks: ctx.goal.clientNetworks ?? [], synchronousStandbyNames: '', follow: null });
  const configFirst = !ctx.node.postgres.isRunning();
  if (configFirst) writeConfig();
  // A switchover's old primary reports drained once its shutdown checkpoint is written: its last WAL may still be on its way here.
  const draining = ctx.goal.nodes.filter((n) => n.nodeId !== ctx.node.config.nodeId && PLANNED_STOP_STATES.has(n.goalState as NodeState));
  await ctx.node.postgres.promote({ streamEndFrom: draining });
  if (!configFirst) writeConfig();
  if (ctx.goalState === 'stop_replication') {
    await ctx.node.postgres.reload();
    return;
  }
  // The control file shows the new timeline only after a checkpoint; pg_rewind on the old
  // primary reads it and would otherwise find "no rewind required".
  await ctx.node.postgres.checkpoint();
  await configurePrimary(ctx);
};

/** `stop_replication`, kept: the promoted Postgres keeps running. */
export const startPostgres: TransitionFn = async (ctx) => {
  await ctx.node.postgres.start();
};

/**
 * Fencing goals (`draining`, `demote_timeout`, `demoted`, `prepare_maintenance`): stop Postgres.
 * A planned stop (`draining`, `prepare_maintenance`) checkpoints while writes go on, and is
 * reached once Postgres takes no more writes and its shutdown checkpoint is written
 * (`PostgresLifecycle.stopWrites`), so that the report of it carries the checkpoint's location
 * (`NodeReport.shutdownCheckpointLsn`) and the standby's promotion starts while the old primary's
 * walsenders send the last WAL; the next goal (`demoted`, `catchingup`) waits for the
 * postmaster's exit.
 */
export const stopPostgres: TransitionFn = async (ctx) => {
  if (PLANNED_STOP_STATES.has(ctx.goalState)) {
    await ctx.node.postgres.checkpointBeforeStop();
    await ctx.node.postgres.stopWrites();
    return;
  }
  await ctx.node.postgres.stop();
};

/**
 * `demoted → catchingup`: pg_rewind from the new primary, unless the node crashed with its WAL
 * still on the new primary's timeline history (`Rebuild.rejoin`); when pg_rewind fails, a fresh
 * base backup (the old data directory is replaced only once the backup is complete). A data
 * directory that is not the node's (another cluster's) is refused, never rewound or replaced.
 */
export const rewindOrBaseBackup: TransitionFn = async (ctx) => {
  const primary = ctx.goal.primary;
  if (!primary || primary.nodeId === ctx.node.config.nodeId) throw new PghaError('PGHA_ERR_CONFIG', 'no primary to rejoin yet');
  // Neither rewound nor replaced by a base backup: a data directory that is not the node's.
  if (ctx.node.postgres.hasData()) ctx.node.identity.assertOwn();
  await ctx.node.postgres.stop();
  const facts = ctx.node.postgres.hasData() && ctx.node.postgres.hasStandbySignal() ? 'standby' : 'primary';
  let rejoined: Rejoin | undefined;
  if (ctx.node.postgres.hasData() && facts === 'primary') {
    rejoined = await ctx.node.rebuild.rejoin(primary);
  } else if (!ctx.node.postgres.hasData()) {
    await ctx.node.rebuild.baseBackup(primary);
  }
  await ctx.node.replication.followAsStandby(ctx.goal);
  if (rejoined?.how === 'no rewind') await ctx.node.rebuild.waitForStream(rejoined.upstreamTimeline);
};

/**
 * The keeper leaves Postgres as it is: for the operator in `maintenance`; and, kept, in `init`
 * (before the monitor's first goal) and `dropped`.
 */
export const leavePostgresAlone: TransitionFn = async () => undefined;

/** `dropped`: stop Postgres; with `--destroy`, remove the data directory too. */
export const dropNode: TransitionFn = async (ctx) => {
  await ctx.node.postgres.stop();
  if (ctx.goal.destroy) ctx.node.postgres.destroyData();
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
  startPostgres,
  stopPostgres,
  rewindOrBaseBackup,
  leavePostgresAlone,
  dropNode,
};
