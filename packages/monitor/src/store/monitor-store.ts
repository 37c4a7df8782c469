/**
 * Repository functions of the monitor's store. Every function takes the Kysely handle or the
 * transaction it must run in; every goal change goes through {@link writeAssignments}, which
 * writes the goal and its event row together.
 */
import { randomBytes } from 'node:crypto';
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import {
  ConflictError,
  DEFAULT_FORMATION_SETTINGS,
  NotFoundError,
  formatLsn,
  parseLsn,
  type Assignment,
  type FormationSettings,
  type GroupFacts,
  type NodeFacts,
  type NodeHealth,
  type NodeReport,
  type NodeState,
} from '@pgha/shared';
import type { Database, FormationsTable, NodesTable } from './db.js';

/** A Kysely handle or a transaction. */
export type Db = Kysely<Database> | Transaction<Database>;
/** A node row. */
export type NodeRow = Selectable<NodesTable>;
/** A formation row. */
export type FormationRow = Selectable<FormationsTable>;

/** A fresh random secret (base64url, 32 bytes of entropy). */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Creates a formation with generated replication and probe passwords (idempotent). */
export async function createFormation(db: Db, formationId: string, numberSyncStandbys = 0): Promise<void> {
  await db
    .insertInto('formations')
    .values({ formationId, numberSyncStandbys, replicationPassword: generateSecret(), monitorProbePassword: generateSecret() })
    .onConflict((oc) => oc.column('formationId').doNothing())
    .execute();
}

/** @throws NotFoundError when the formation does not exist. */
export async function getFormation(db: Db, formationId: string): Promise<FormationRow> {
  const row = await db.selectFrom('formations').selectAll().where('formationId', '=', formationId).executeTakeFirst();
  if (!row) {
    throw new NotFoundError(`formation "${formationId}" does not exist`, {
      hint: `create it first with: pgha create formation ${formationId} (or check --formation)`,
    });
  }
  return row;
}

/** The formation's settings: defaults overlaid with its stored values. */
export function formationSettings(f: FormationRow): FormationSettings {
  return { ...DEFAULT_FORMATION_SETTINGS, ...f.settings, numberSyncStandbys: f.numberSyncStandbys };
}

/** @throws NotFoundError when the node does not exist. */
export async function getNode(db: Db, nodeId: number): Promise<NodeRow> {
  const row = await db.selectFrom('nodes').selectAll().where('nodeId', '=', nodeId).executeTakeFirst();
  if (!row) throw new NotFoundError(`node ${nodeId} does not exist`, { hint: 'check the node id, or register the node with pgha keeper create' });
  return row;
}

/** Nodes of a formation (optionally one group), by node id, without dropped ones. */
export async function listNodes(db: Db, formationId: string, groupId?: number): Promise<NodeRow[]> {
  let q = db.selectFrom('nodes').selectAll().where('formationId', '=', formationId).where('goalState', '!=', 'dropped');
  if (groupId !== undefined) q = q.where('groupId', '=', groupId);
  return q.orderBy('nodeId').execute();
}

/** Every (formation, group) pair that has nodes. */
export async function listGroups(db: Db): Promise<{ formationId: string; groupId: number }[]> {
  return db.selectFrom('nodes').select(['formationId', 'groupId']).distinct().where('goalState', '!=', 'dropped').execute();
}

/** Takes the group's lock until the transaction ends (per-group serialisation of decisions). */
export async function lockGroup(trx: Transaction<Database>, formationId: string, groupId: number): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext(${`pgha:${formationId}`}), ${groupId})`.execute(trx);
}

/** The store's clock in ms since the epoch (one clock for every monitor and every fact). */
export async function storeNowMs(db: Db): Promise<number> {
  const { rows } = await sql<{ nowMs: number }>`select (extract(epoch from clock_timestamp()) * 1000)::float8 as now_ms`.execute(db);
  return Number(rows[0]!.nowMs);
}

/**
 * Inserts a node, or returns the existing one when the same name, host and port register
 * again (a `keeper create` retried after a failure).
 *
 * @throws ConflictError when the name is taken in the formation or host:port by another node.
 */
export async function insertNode(
  trx: Transaction<Database>,
  formationId: string,
  req: { name: string; host: string; port: number; candidatePriority: number; replicationQuorum: boolean },
): Promise<{ node: NodeRow; created: boolean }> {
  const sameName = await trx.selectFrom('nodes').selectAll().where('formationId', '=', formationId).where('name', '=', req.name).executeTakeFirst();
  if (sameName) {
    if (sameName.host === req.host && sameName.port === req.port && sameName.goalState !== 'dropped') return { node: sameName, created: false };
    throw new ConflictError(`node name "${req.name}" is already taken in formation "${formationId}" (node ${sameName.nodeId} at ${sameName.host}:${sameName.port})`, {
      hint: 'choose another --name',
    });
  }
  const samePort = await trx.selectFrom('nodes').select(['nodeId', 'name']).where('host', '=', req.host).where('port', '=', req.port).executeTakeFirst();
  if (samePort) {
    throw new ConflictError(`${req.host}:${req.port} is already registered as node ${samePort.nodeId} "${samePort.name}"`, { hint: 'choose another --pg-port or --hostname' });
  }
  const node = await trx
    .insertInto('nodes')
    .values({ formationId, groupId: 0, name: req.name, host: req.host, port: req.port, candidatePriority: req.candidatePriority, replicationQuorum: req.replicationQuorum })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { node, created: true };
}

/** Records a keeper's report (the keeper's heartbeat). */
export async function recordReport(trx: Transaction<Database>, nodeId: number, report: NodeReport): Promise<void> {
  await trx
    .updateTable('nodes')
    .set({
      reportedState: report.reportedState,
      reportedAt: sql`clock_timestamp()`,
      pgIsRunning: report.pgIsRunning,
      isInRecovery: report.isInRecovery,
      reportedLsn: formatLsn(parseLsn(report.lsn)),
      reportedTimeline: report.timeline,
      upstreamStreaming: report.upstreamStreaming,
      transitionInProgress: report.transitionInProgress ?? null,
      reportedSyncStandbyNames: report.synchronousStandbyNames ?? null,
      ...(report.upstreamStreaming ? { lastStreamingAt: sql`clock_timestamp()` } : {}),
    })
    .where('nodeId', '=', nodeId)
    .execute();
}

/**
 * Records one health probe result. Health turns `bad` after `retries` consecutive failures
 * and `good` at the first success.
 *
 * @returns true when the node's health changed.
 */
export async function recordProbe(db: Db, nodeId: number, ok: boolean, inRecovery: boolean | null, retries: number): Promise<boolean> {
  const before = await db.selectFrom('nodes').select(['health', 'healthFailures']).where('nodeId', '=', nodeId).executeTakeFirst();
  if (!before) return false;
  const failures = ok ? 0 : before.healthFailures + 1;
  const health = ok ? 'good' : failures >= retries ? 'bad' : before.health;
  await db
    .updateTable('nodes')
    .set({ healthFailures: failures, health, healthCheckedAt: sql`clock_timestamp()`, ...(ok ? { probeInRecovery: inRecovery } : {}) })
    .where('nodeId', '=', nodeId)
    .execute();
  return health !== before.health;
}

function toFacts(n: NodeRow): NodeFacts {
  return {
    nodeId: n.nodeId,
    name: n.name,
    candidatePriority: n.candidatePriority,
    replicationQuorum: n.replicationQuorum,
    reportedState: n.reportedState as NodeState,
    goalState: n.goalState as NodeState,
    lastReportMs: n.reportedAt ? new Date(n.reportedAt).getTime() : null,
    pgIsRunning: n.pgIsRunning,
    reportedLsn: parseLsn(n.reportedLsn),
    reportedTimeline: n.reportedTimeline,
    upstreamStreaming: n.upstreamStreaming,
    lastStreamingMs: n.lastStreamingAt ? new Date(n.lastStreamingAt).getTime() : null,
    health: n.health as NodeHealth,
    goalChangedMs: new Date(n.goalChangedAt).getTime(),
    synchronousStandbyNames: n.reportedSyncStandbyNames,
  };
}

/** Builds the group's facts from its rows; `nowMs` is the store's clock. */
export function groupFacts(formation: FormationRow, groupId: number, nodes: readonly NodeRow[], nowMs: number): GroupFacts {
  return { formation: formation.formationId, groupId, nowMs, settings: formationSettings(formation), nodes: nodes.map(toFacts) };
}

/**
 * Writes each assignment's goal state with its event row (time, node, reported state, old and
 * new goal, reason, rule) and notifies waiting keepers on commit.
 */
export async function writeAssignments(trx: Transaction<Database>, formationId: string, groupId: number, nodes: readonly NodeRow[], assignments: readonly Assignment[]): Promise<void> {
  const goals = new Map(nodes.map((n) => [n.nodeId, n.goalState]));
  for (const a of assignments) {
    const node = nodes.find((n) => n.nodeId === a.nodeId);
    if (!node) continue;
    const oldGoal = goals.get(a.nodeId) ?? node.goalState;
    await trx.updateTable('nodes').set({ goalState: a.goalState, goalChangedAt: sql`clock_timestamp()` }).where('nodeId', '=', a.nodeId).execute();
    await trx
      .insertInto('events')
      .values({
        formationId,
        groupId,
        nodeId: a.nodeId,
        nodeName: node.name,
        reportedState: node.reportedState,
        oldGoalState: oldGoal,
        newGoalState: a.goalState,
        reportedLsn: node.reportedLsn,
        rule: a.rule,
        reason: a.reason,
      })
      .execute();
    goals.set(a.nodeId, a.goalState);
  }
  if (assignments.length > 0) {
    await sql`select pg_notify('pgha_goal', ${[...new Set(assignments.map((a) => a.nodeId))].join(',')})`.execute(trx);
  }
}

/** Marks a dropped node for data removal by its keeper (`pgha drop node --destroy`). */
export async function requestDestroy(trx: Transaction<Database>, nodeId: number): Promise<void> {
  await trx.updateTable('nodes').set({ destroyRequested: true }).where('nodeId', '=', nodeId).execute();
}

/** Deletes a dropped node's row, with an event saying so. */
export async function removeNode(trx: Transaction<Database>, node: NodeRow, reason: string): Promise<void> {
  await trx.insertInto('events').values({
    formationId: node.formationId, groupId: node.groupId, nodeId: node.nodeId, nodeName: node.name,
    reportedState: node.reportedState, oldGoalState: node.goalState, newGoalState: 'dropped', reportedLsn: node.reportedLsn,
    rule: 'node-removed', reason,
  }).execute();
  await trx.deleteFrom('nodes').where('nodeId', '=', node.nodeId).execute();
}

/** The latest `count` events of a formation, oldest first. */
export async function listEvents(db: Db, formationId: string, count: number) {
  const rows = await db.selectFrom('events').selectAll().where('formationId', '=', formationId).orderBy('eventId', 'desc').limit(count).execute();
  return rows.reverse();
}
