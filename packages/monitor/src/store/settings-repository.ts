/**
 * Repository functions for formations and replication settings: create and drop a
 * formation, change a formation's `number_sync_standbys` and a node's candidate priority and
 * replication quorum. Each change is validated against the group's nodes, read under the
 * locks the caller holds, and written together with its event row, so that a refused change
 * leaves nothing behind.
 *
 * Locks, always in this order so that no two of these operations deadlock: the formation's
 * row (`FOR NO KEY UPDATE`, which lets a node registering into the formation check its
 * foreign key), then each group's advisory lock ({@link lockGroup}), then the rows.
 * Source: pg_auto_failover's `set_formation_number_sync_standbys`,
 * `set_node_candidate_priority`, `set_node_replication_quorum`, `create_formation`,
 * `drop_formation`.
 */
import { sql, type Transaction } from 'kysely';
import { ConflictError, NotFoundError, WRITABLE_STATES, type NodeState } from '@pgha/shared';
import type { Database } from './db.js';
import { generateSecret, getFormation, lockGroup, writeNodeEvent, type Db, type FormationRow, type NodeRow } from './monitor-store.js';

/** Rule id of the event row written for a settings change. */
export const SETTINGS_CHANGED_RULE = 'settings-changed';
/** Rule id of the event row written when a formation is created. */
export const FORMATION_CREATED_RULE = 'formation-created';
/** Rule id of the event row written when a formation is dropped. */
export const FORMATION_DROPPED_RULE = 'formation-dropped';
/** `node_id` and `node_name` of event rows about a whole formation rather than one node. */
export const FORMATION_EVENT_NODE = { nodeId: 0, nodeName: '(formation)' } as const;

/** A change of a node's replication settings; absent fields stay as they are. */
export interface NodeSettingsPatch {
  candidatePriority?: number | undefined;
  replicationQuorum?: boolean | undefined;
}

function describe(node: Pick<NodeRow, 'nodeId' | 'name'>): string {
  return `node ${node.nodeId} "${node.name}"`;
}

/**
 * A node by its name in a formation (dropped nodes are not found).
 *
 * @throws NotFoundError naming the node and the formation.
 */
export async function getNodeByName(db: Db, formationId: string, name: string): Promise<NodeRow> {
  const row = await db
    .selectFrom('nodes')
    .selectAll()
    .where('formationId', '=', formationId)
    .where('name', '=', name)
    .where('goalState', '!=', 'dropped')
    .executeTakeFirst();
  if (!row) {
    throw new NotFoundError(`node "${name}" does not exist in formation "${formationId}"`, {
      hint: `pgha show state --formation ${formationId} lists its nodes`,
    });
  }
  return row;
}

/**
 * Locks the formation's row until the transaction ends (`FOR NO KEY UPDATE`: settings
 * changes and drops of one formation serialise; nodes may still register meanwhile and are
 * then seen under the group lock).
 *
 * @throws NotFoundError when the formation does not exist.
 */
export async function lockFormation(trx: Transaction<Database>, formationId: string): Promise<FormationRow> {
  const row = await trx.selectFrom('formations').selectAll().where('formationId', '=', formationId).forNoKeyUpdate().executeTakeFirst();
  return row ?? getFormation(trx, formationId);
}

/** Group ids of a formation that have nodes that are not dropped, ascending. */
export async function formationGroupIds(db: Db, formationId: string): Promise<number[]> {
  const rows = await db
    .selectFrom('nodes')
    .select('groupId')
    .distinct()
    .where('formationId', '=', formationId)
    .where('goalState', '!=', 'dropped')
    .orderBy('groupId')
    .execute();
  return rows.map((r) => r.groupId);
}

/**
 * How many standbys of one group could acknowledge commits for `number_sync_standbys`: the
 * nodes other than the primary (the node holding the writable goal) with replication quorum.
 * While the group has no primary (bootstrap, failover), one of its quorum nodes will be it.
 *
 * @param nodes - the group's nodes, dropped ones left out.
 *
 * ### Examples
 * ```ts
 * quorumStandbyCount([primary, standby]) // 1
 * quorumStandbyCount([primary, { ...standby, replicationQuorum: false }]) // 0
 * ```
 */
export function quorumStandbyCount(nodes: readonly Pick<NodeRow, 'nodeId' | 'goalState' | 'replicationQuorum'>[]): number {
  const writable = nodes.filter((n) => WRITABLE_STATES.has(n.goalState as NodeState));
  const quorum = nodes.filter((n) => n.replicationQuorum);
  if (writable.length === 1) return quorum.filter((n) => n.nodeId !== writable[0]!.nodeId).length;
  return Math.max(0, quorum.length - 1);
}

async function groupNodes(db: Db, formationId: string, groupId: number): Promise<NodeRow[]> {
  return db
    .selectFrom('nodes')
    .selectAll()
    .where('formationId', '=', formationId)
    .where('groupId', '=', groupId)
    .where('goalState', '!=', 'dropped')
    .orderBy('nodeId')
    .execute();
}

/** Writes the event row of a settings change of one node: its goal does not change. */
async function writeNodeSettingsEvent(trx: Transaction<Database>, node: NodeRow, reason: string): Promise<void> {
  await writeNodeEvent(trx, node, SETTINGS_CHANGED_RULE, reason);
}

/** Writes an event row about a whole formation ({@link FORMATION_EVENT_NODE}, no states). */
async function writeFormationEvent(db: Db, formationId: string, rule: string, reason: string): Promise<void> {
  await db
    .insertInto('events')
    .values({
      formationId,
      groupId: 0,
      nodeId: FORMATION_EVENT_NODE.nodeId,
      nodeName: FORMATION_EVENT_NODE.nodeName,
      reportedState: '',
      oldGoalState: '',
      newGoalState: '',
      reportedLsn: '0/0',
      rule,
      reason,
    })
    .execute();
}

/** Wakes the keepers of the given nodes (their goal long-poll answers at once). */
export async function notifyNodes(trx: Transaction<Database>, nodeIds: readonly number[]): Promise<void> {
  if (nodeIds.length > 0) await sql`select pg_notify('pgha_goal', ${nodeIds.join(',')})`.execute(trx);
}

/**
 * Creates a formation with generated replication and probe secrets, and its event row.
 *
 * @param numberSyncStandbys - applies as standbys join; nothing can be checked yet.
 * @throws ConflictError when a formation of that name exists.
 */
export async function insertFormation(trx: Transaction<Database>, formationId: string, numberSyncStandbys: number): Promise<FormationRow> {
  const row = await trx
    .insertInto('formations')
    .values({ formationId, numberSyncStandbys, replicationPassword: generateSecret(), monitorProbePassword: generateSecret() })
    .onConflict((oc) => oc.column('formationId').doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!row) {
    throw new ConflictError(`formation "${formationId}" already exists`, {
      hint: `choose another name; pgha show settings --formation ${formationId} shows it`,
    });
  }
  await writeFormationEvent(trx, formationId, FORMATION_CREATED_RULE, `formation "${formationId}" created with number_sync_standbys ${numberSyncStandbys}`);
  return row;
}

/**
 * Drops a formation that has no node left (dropped nodes go with it), and writes its event row.
 * The `default` formation is no exception.
 *
 * @throws NotFoundError when it does not exist; ConflictError when it still has nodes.
 */
export async function deleteFormation(trx: Transaction<Database>, formationId: string): Promise<void> {
  await lockFormation(trx, formationId);
  const groups = await formationGroupIds(trx, formationId);
  for (const g of new Set([0, ...groups])) await lockGroup(trx, formationId, g);
  const nodes = await trx
    .selectFrom('nodes')
    .select(['nodeId', 'name'])
    .where('formationId', '=', formationId)
    .where('goalState', '!=', 'dropped')
    .orderBy('nodeId')
    .execute();
  if (nodes.length > 0) {
    throw new ConflictError(
      `formation "${formationId}" still has ${nodes.length} node${nodes.length === 1 ? '' : 's'} (${nodes.map(describe).join(', ')})`,
      { hint: 'drop its nodes first with pgha drop node, then drop the formation' },
    );
  }
  await trx.deleteFrom('formations').where('formationId', '=', formationId).execute();
  await writeFormationEvent(trx, formationId, FORMATION_DROPPED_RULE, `formation "${formationId}" dropped`);
}

/**
 * Changes a node's candidate priority and/or replication quorum, with one event row per
 * changed value. Run it under the node's group lock (inside `GroupDriver.evaluateIn`), so that
 * the node and its group are read as they are now.
 *
 * @returns one sentence per changed value (empty when nothing changed), and a warning when
 *   the change leaves no standby of the group that can be promoted.
 * @throws NotFoundError for an unknown node; ConflictError when turning replication quorum off
 *   would leave fewer quorum standbys than the formation's `number_sync_standbys`.
 */
export async function updateNodeSettings(
  trx: Transaction<Database>,
  formationId: string,
  name: string,
  patch: NodeSettingsPatch,
): Promise<{ changes: string[]; warnings: string[] }> {
  const formation = await getFormation(trx, formationId);
  const node = await getNodeByName(trx, formationId, name);
  const changes: string[] = [];
  const warnings: string[] = [];
  const priority = patch.candidatePriority ?? node.candidatePriority;
  const quorum = patch.replicationQuorum ?? node.replicationQuorum;
  const nodes = await groupNodes(trx, formationId, node.groupId);
  const after = nodes.map((n) => (n.nodeId === node.nodeId ? { ...n, candidatePriority: priority, replicationQuorum: quorum } : n));

  if (quorum !== node.replicationQuorum && !quorum) {
    const left = quorumStandbyCount(after);
    if (left < formation.numberSyncStandbys) {
      throw new ConflictError(
        `cannot set replication quorum of ${describe(node)} to false: formation "${formationId}" has number_sync_standbys ${formation.numberSyncStandbys}, and only ${left} standby${left === 1 ? '' : 's'} would be left in the replication quorum`,
        { hint: `lower it first with: pgha set formation number-sync-standbys ${left} --formation ${formationId}` },
      );
    }
  }
  if (priority === node.candidatePriority && quorum === node.replicationQuorum) return { changes, warnings };

  await trx.updateTable('nodes').set({ candidatePriority: priority, replicationQuorum: quorum }).where('nodeId', '=', node.nodeId).execute();
  if (priority !== node.candidatePriority) changes.push(`candidate priority of ${describe(node)} set from ${node.candidatePriority} to ${priority}`);
  if (quorum !== node.replicationQuorum) changes.push(`replication quorum of ${describe(node)} set from ${node.replicationQuorum} to ${quorum}`);
  for (const reason of changes) await writeNodeSettingsEvent(trx, node, reason);

  const writable = after.filter((n) => WRITABLE_STATES.has(n.goalState as NodeState));
  const candidates = after.filter((n) => !writable.includes(n) && n.candidatePriority > 0);
  if (priority !== node.candidatePriority && priority === 0 && after.length > 1 && candidates.length === 0) {
    warnings.push(`no standby of group ${node.groupId} in formation "${formationId}" can be promoted now (every candidate priority is 0)`);
  }
  await notifyNodes(trx, nodes.map((n) => n.nodeId));
  return { changes, warnings };
}

/**
 * Changes a formation's `number_sync_standbys`, with its event row. The caller holds the
 * formation's row lock ({@link lockFormation}); this takes every group's lock, then checks
 * that each group has at least that many standbys with replication quorum.
 *
 * @returns the sentence describing the change, or nothing when the value is unchanged.
 * @throws ConflictError naming the value asked for and the standbys available.
 */
export async function updateNumberSyncStandbys(trx: Transaction<Database>, formation: FormationRow, value: number): Promise<string[]> {
  const formationId = formation.formationId;
  const groups = await formationGroupIds(trx, formationId);
  for (const g of groups) await lockGroup(trx, formationId, g);
  const allNodes: NodeRow[] = [];
  for (const g of groups.length > 0 ? groups : [0]) {
    const nodes = await groupNodes(trx, formationId, g);
    allNodes.push(...nodes);
    const available = quorumStandbyCount(nodes);
    if (value > available) {
      throw new ConflictError(
        `number_sync_standbys ${value} cannot be met in formation "${formationId}": group ${g} has ${available} standby${available === 1 ? '' : 's'} with replication quorum`,
        { hint: available === 0 ? 'add a standby first (pgha keeper create postgres)' : `choose a value from 0 to ${available}, or add standbys first` },
      );
    }
  }
  if (value === formation.numberSyncStandbys) return [];
  await trx.updateTable('formations').set({ numberSyncStandbys: value }).where('formationId', '=', formationId).execute();
  const reason = `number_sync_standbys of formation "${formationId}" set from ${formation.numberSyncStandbys} to ${value}`;
  await writeFormationEvent(trx, formationId, SETTINGS_CHANGED_RULE, reason);
  await notifyNodes(trx, allNodes.map((n) => n.nodeId));
  return [reason];
}
