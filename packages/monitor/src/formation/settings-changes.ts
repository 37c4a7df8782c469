/**
 * Formations and replication settings: create and drop a formation, change a formation's
 * `number_sync_standbys` and a node's candidate priority and replication quorum. Each change is
 * validated against the group's nodes, read under the locks it takes, and written together with
 * its event, in the caller's transaction, so that a refused change leaves nothing behind.
 *
 * Locks, always in this order so that no two of these operations deadlock: the formation's
 * (`StoreTransaction.lockFormation`), then each group's (`lockGroup`), then the records.
 * Source: pg_auto_failover's `set_formation_number_sync_standbys`,
 * `set_node_candidate_priority`, `set_node_replication_quorum`, `create_formation`,
 * `drop_formation`.
 */
import { ConflictError, TIMING_SETTINGS, ValidationError, formatTimingValue, timingProblems, timingSettingName, type TimingSettingKey, WRITABLE_STATES } from '@pgha/shared';
import { formationSettings } from '../store/group-facts.js';
import { FORMATION_CREATED_RULE, FORMATION_DROPPED_RULE, SETTINGS_CHANGED_RULE, formationEvent, nodeEvent } from '../store/event-records.js';
import type { FormationRecord, NodeRecord } from '../store/records.js';
import type { StoreTransaction } from '../store/store-port.js';

/** A change of a node's replication settings; absent fields stay as they are. */
export interface NodeSettingsPatch {
  candidatePriority?: number | undefined;
  replicationQuorum?: boolean | undefined;
}

function describe(node: Pick<NodeRecord, 'nodeId' | 'name'>): string {
  return `node ${node.nodeId} "${node.name}"`;
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
export function quorumStandbyCount(nodes: readonly Pick<NodeRecord, 'nodeId' | 'goalState' | 'replicationQuorum'>[]): number {
  const writable = nodes.filter((n) => WRITABLE_STATES.has(n.goalState));
  const quorum = nodes.filter((n) => n.replicationQuorum);
  if (writable.length === 1) return quorum.filter((n) => n.nodeId !== writable[0]!.nodeId).length;
  return Math.max(0, quorum.length - 1);
}

/**
 * Creates a formation with generated replication and probe secrets, and its event.
 *
 * @param numberSyncStandbys - applies as standbys join; nothing can be checked yet.
 * @throws ConflictError when a formation of that name exists.
 */
export async function createFormation(tx: StoreTransaction, formationId: string, numberSyncStandbys: number): Promise<FormationRecord> {
  const created = await tx.formations.create(formationId, numberSyncStandbys);
  if (!created) {
    throw new ConflictError(`formation "${formationId}" already exists`, {
      hint: `choose another name; pgha show settings --formation ${formationId} shows it`,
    });
  }
  await tx.events.append([formationEvent(formationId, FORMATION_CREATED_RULE, `formation "${formationId}" created with number_sync_standbys ${numberSyncStandbys}`)]);
  return created;
}

/**
 * Drops a formation that has no node left (dropped nodes go with it), with its event. The
 * `default` formation is no exception.
 *
 * @throws NotFoundError when it does not exist; ConflictError when it still has nodes.
 */
export async function dropFormation(tx: StoreTransaction, formationId: string): Promise<void> {
  await tx.lockFormation(formationId);
  const groups = await tx.nodes.groupIds(formationId);
  for (const g of new Set([0, ...groups])) await tx.lockGroup(formationId, g);
  const nodes = await tx.nodes.list(formationId);
  if (nodes.length > 0) {
    throw new ConflictError(
      `formation "${formationId}" still has ${nodes.length} node${nodes.length === 1 ? '' : 's'} (${nodes.map(describe).join(', ')})`,
      { hint: 'drop its nodes first with pgha drop node, then drop the formation' },
    );
  }
  await tx.formations.delete(formationId);
  await tx.events.append([formationEvent(formationId, FORMATION_DROPPED_RULE, `formation "${formationId}" dropped`)]);
}

/**
 * Changes a node's candidate priority and/or replication quorum, with one event per changed
 * value, and wakes the group's keepers. Run it under the node's group lock (inside
 * `GroupDriver.evaluateIn`), so that the node and its group are read as they are now.
 *
 * @returns one sentence per changed value (empty when nothing changed), and a warning when
 *   the change leaves no standby of the group that can be promoted.
 * @throws NotFoundError for an unknown node; ConflictError when turning replication quorum off
 *   would leave fewer quorum standbys than the formation's `number_sync_standbys`.
 */
export async function changeNodeSettings(tx: StoreTransaction, formationId: string, name: string, patch: NodeSettingsPatch): Promise<{ changes: string[]; warnings: string[] }> {
  const formation = await tx.formations.get(formationId);
  const node = await tx.nodes.getByName(formationId, name);
  const changes: string[] = [];
  const warnings: string[] = [];
  const priority = patch.candidatePriority ?? node.candidatePriority;
  const quorum = patch.replicationQuorum ?? node.replicationQuorum;
  const nodes = await tx.nodes.list(formationId, { groupId: node.groupId });
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

  await tx.settings.setNodeReplication(node.nodeId, { candidatePriority: priority, replicationQuorum: quorum });
  if (priority !== node.candidatePriority) changes.push(`candidate priority of ${describe(node)} set from ${node.candidatePriority} to ${priority}`);
  if (quorum !== node.replicationQuorum) changes.push(`replication quorum of ${describe(node)} set from ${node.replicationQuorum} to ${quorum}`);
  await tx.events.append(changes.map((reason) => nodeEvent(node, SETTINGS_CHANGED_RULE, reason)));

  const writable = after.filter((n) => WRITABLE_STATES.has(n.goalState));
  const candidates = after.filter((n) => !writable.includes(n) && n.candidatePriority > 0);
  if (priority !== node.candidatePriority && priority === 0 && after.length > 1 && candidates.length === 0) {
    warnings.push(`no standby of group ${node.groupId} in formation "${formationId}" can be promoted now (every candidate priority is 0)`);
  }
  await tx.goals.notify(nodes.map((n) => n.nodeId));
  return { changes, warnings };
}

/**
 * Changes a formation's `number_sync_standbys`, with its event. The caller holds the
 * formation's lock (`lockFormation`); this takes every group's lock, then checks that each
 * group has at least that many standbys with replication quorum.
 *
 * @returns the sentence describing the change, or nothing when the value is unchanged.
 * @throws ConflictError naming the value asked for and the standbys available.
 */
export async function changeNumberSyncStandbys(tx: StoreTransaction, formation: FormationRecord, value: number): Promise<string[]> {
  const formationId = formation.formationId;
  const groups = await tx.nodes.groupIds(formationId);
  for (const g of groups) await tx.lockGroup(formationId, g);
  const allNodes: NodeRecord[] = [];
  for (const g of groups.length > 0 ? groups : [0]) {
    const nodes = await tx.nodes.list(formationId, { groupId: g });
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
  await tx.settings.setNumberSyncStandbys(formationId, value);
  const reason = `number_sync_standbys of formation "${formationId}" set from ${formation.numberSyncStandbys} to ${value}`;
  await tx.events.append([formationEvent(formationId, SETTINGS_CHANGED_RULE, reason)]);
  await tx.goals.notify(allNodes.map((n) => n.nodeId));
  return [reason];
}

/**
 * Changes a formation's timing settings (`pgha set formation node-unhealthy-timeout 3s`, …),
 * with one event per changed value, and wakes every keeper of the formation so that it takes
 * the settings it acts on (`NodeGoal.settings`) at once. The monitor reads the formation's
 * settings at each decision and each probe round, so they apply there at once too. Run it
 * under the formation's lock.
 *
 * @param patch - new values by key, in ms (a count for `healthProbeRetries`), each within its
 *   `TIMING_SETTINGS` range (the request schema checked it); absent keys stay as they are.
 * @returns one sentence per changed value (empty when nothing changed).
 * @throws ValidationError, nothing written, when the settings after the change would not fit
 *   together (`timingProblems`: self-fencing margin, streaming timeout), with the numbers; also
 *   while keepers still run with their old report interval or partition timeout (they take the
 *   new ones at their next goal, the monitor its timeouts at once): lowering
 *   `nodeUnhealthyTimeoutMs` and the partition timeout in one change is refused when the old
 *   partition timeout would not fit the new unhealthy timeout.
 */
export async function changeTimingSettings(tx: StoreTransaction, formation: FormationRecord, patch: Partial<Record<TimingSettingKey, number>>): Promise<string[]> {
  if (Object.values(patch).every((v) => v === undefined)) return [];
  const formationId = formation.formationId;
  const before = formationSettings(formation);
  const own: FormationRecord['settings'] = { ...formation.settings };
  for (const [key, value] of Object.entries(patch) as [TimingSettingKey, number | undefined][]) if (value !== undefined) own[key] = value;
  const after = formationSettings({ ...formation, settings: own });
  // Keepers take their settings (report interval, partition timeout) at their next goal, the
  // monitor at once: until every keeper has, the larger of each old and new value is in force.
  const meanwhile = {
    ...after,
    keeperReportIntervalMs: Math.max(before.keeperReportIntervalMs, after.keeperReportIntervalMs),
    networkPartitionTimeoutMs: Math.max(before.networkPartitionTimeoutMs, after.networkPartitionTimeoutMs),
  };
  const afterProblems = timingProblems(after);
  const problems = afterProblems.length > 0 ? afterProblems : timingProblems(meanwhile).map((p) => `until every keeper has taken the new settings, ${p}; change one at a time`);
  if (problems.length > 0) {
    throw new ValidationError(`refused: in formation "${formationId}", ${problems.join('; and ')}`, {
      field: 'settings',
      hint: `nothing was changed; pgha show settings --formation ${formationId} shows the settings in effect`,
    });
  }
  const changes = Object.values(TIMING_SETTINGS)
    .filter((s) => after[s.key] !== before[s.key])
    .map((s) => `${timingSettingName(s.key)} of formation "${formationId}" set from ${formatTimingValue(s.key, before[s.key])} to ${formatTimingValue(s.key, after[s.key])}`);
  if (changes.length === 0) return [];
  await tx.settings.setTimings(formationId, own);
  await tx.events.append(changes.map((reason) => formationEvent(formationId, SETTINGS_CHANGED_RULE, reason)));
  await tx.goals.notify((await tx.nodes.list(formationId)).map((n) => n.nodeId));
  return changes;
}

/**
 * Changes a formation's client networks (`pgha set formation client-networks`, or the ones a
 * node brings at registration with `--client-network`), with its event, and wakes every keeper
 * of the formation: each writes them into its managed pg_hba.conf block (`hostssl`,
 * SCRAM-SHA-256) and reloads Postgres. Run it under the formation's lock.
 *
 * @param networks - already checked and written as pg_hba.conf takes them
 *   (`parseClientNetworks`); with `add`, they join the formation's (each once) instead of
 *   replacing them.
 * @returns the sentence describing the change (none when unchanged), and a warning when some
 *   node runs without TLS (`--no-ssl`): a `hostssl` line never admits a client there.
 */
export async function changeClientNetworks(tx: StoreTransaction, formation: FormationRecord, networks: readonly string[], options: { add?: boolean } = {}): Promise<{ changes: string[]; warnings: string[] }> {
  const formationId = formation.formationId;
  const before = formation.clientNetworks;
  const after = options.add ? [...new Set([...before, ...networks])] : [...networks];
  if (after.length === before.length && after.every((n, i) => n === before[i])) return { changes: [], warnings: [] };
  const list = (l: readonly string[]): string => (l.length === 0 ? 'none' : l.join(','));
  const reason = `client networks of formation "${formationId}" set from ${list(before)} to ${list(after)}`;
  await tx.settings.setClientNetworks(formationId, after);
  await tx.events.append([formationEvent(formationId, SETTINGS_CHANGED_RULE, reason)]);
  const nodes = await tx.nodes.list(formationId);
  await tx.goals.notify(nodes.map((n) => n.nodeId));
  const plain = nodes.filter((n) => !n.postgresSsl);
  const warnings = after.length > 0 && plain.length > 0
    ? [`${plain.map(describe).join(', ')} ${plain.length === 1 ? 'runs' : 'run'} without TLS (--no-ssl): client networks are admitted with TLS only, so no client from them can connect there`]
    : [];
  return { changes: [reason], warnings };
}
