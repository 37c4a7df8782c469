/**
 * Repository functions of the monitor's store. Every function takes the Kysely handle or the
 * transaction it must run in; every goal change goes through {@link writeAssignments}, which
 * writes the goal and its event row together.
 */
import { randomBytes } from 'node:crypto';
import { CompiledQuery, sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import pg from 'pg';
import {
  ConflictError,
  DEFAULT_FORMATION_SETTINGS,
  NotFoundError,
  formatLsn,
  parseLsn,
  selfFenceSentence,
  type Assignment,
  type FormationSettings,
  type GroupFacts,
  type NodeFacts,
  type NodeHealth,
  type NodeReport,
  type NodeState,
} from '@pgha/shared';
import type { Database, FormationsTable, NodesTable } from './db.js';
import { QueryTemplate } from './query-template.js';

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

const GET_FORMATION = new QueryTemplate<FormationRow>((db, p) => db.selectFrom('formations').selectAll().where('formationId', '=', p('formationId')));

function noSuchFormation(formationId: string): NotFoundError {
  return new NotFoundError(`formation "${formationId}" does not exist`, {
    hint: `create it first with: pgha create formation ${formationId} (or check --formation)`,
  });
}

/** @throws NotFoundError when the formation does not exist. */
export async function getFormation(db: Db, formationId: string): Promise<FormationRow> {
  const row = await GET_FORMATION.executeTakeFirst(db, { formationId });
  if (!row) throw noSuchFormation(formationId);
  return row;
}

/** The formation's settings: defaults overlaid with its stored values. */
export function formationSettings(f: FormationRow): FormationSettings {
  return { ...DEFAULT_FORMATION_SETTINGS, ...f.settings, numberSyncStandbys: f.numberSyncStandbys };
}

const GET_NODE = new QueryTemplate<NodeRow>((db, p) => db.selectFrom('nodes').selectAll().where('nodeId', '=', p('nodeId')));

/** The error of a node id that does not exist. */
export function noSuchNode(nodeId: number): NotFoundError {
  return new NotFoundError(`node ${nodeId} does not exist`, { hint: 'check the node id, or register the node with pgha keeper create' });
}

/** @throws NotFoundError when the node does not exist. */
export async function getNode(db: Db, nodeId: number): Promise<NodeRow> {
  const row = await GET_NODE.executeTakeFirst(db, { nodeId });
  if (!row) throw noSuchNode(nodeId);
  return row;
}

const LIST_FORMATION_NODES = new QueryTemplate<NodeRow>((db, p) =>
  db.selectFrom('nodes').selectAll().where('formationId', '=', p('formationId')).where('goalState', '!=', 'dropped').orderBy('nodeId'),
);
const LIST_GROUP_NODES = new QueryTemplate<NodeRow>((db, p) =>
  db.selectFrom('nodes').selectAll().where('formationId', '=', p('formationId')).where('goalState', '!=', 'dropped').where('groupId', '=', p('groupId')).orderBy('nodeId'),
);

/** Nodes of a formation (optionally one group), by node id, without dropped ones. */
export async function listNodes(db: Db, formationId: string, groupId?: number): Promise<NodeRow[]> {
  if (groupId === undefined) return LIST_FORMATION_NODES.execute(db, { formationId });
  return LIST_GROUP_NODES.execute(db, { formationId, groupId });
}

const LOCK_GROUP = new QueryTemplate<unknown>((_db, p) => sql`select pg_advisory_xact_lock(hashtext(${p('key')}), ${p('groupId')})`);

/** Takes the group's lock until the transaction ends (per-group serialisation of decisions). */
export async function lockGroup(trx: Transaction<Database>, formationId: string, groupId: number): Promise<void> {
  await LOCK_GROUP.execute(trx, { key: `pgha:${formationId}`, groupId });
}

/**
 * A formation and the store's clock, in one round trip (what a group decision reads after its
 * nodes).
 *
 * @throws NotFoundError when the formation does not exist.
 */
export async function getFormationAndNow(db: Db, formationId: string): Promise<{ formation: FormationRow; nowMs: number }> {
  const row = await GET_FORMATION_AND_NOW.executeTakeFirst(db, { formationId });
  if (!row) throw noSuchFormation(formationId);
  const { storeNowMs: nowMs, ...formation } = row;
  return { formation, nowMs: Number(nowMs) };
}

const GET_FORMATION_AND_NOW = new QueryTemplate<FormationRow & { storeNowMs: number }>((db, p) =>
  db
    .selectFrom('formations')
    .selectAll()
    .select(sql<number>`(extract(epoch from clock_timestamp()) * 1000)::float8`.as('storeNowMs'))
    .where('formationId', '=', p('formationId')),
);

/**
 * Every formation and every node that is not dropped, with the store's clock, read at once
 * without locks: the timer's look at all groups (see `GroupDriver.evaluateAll`).
 */
export async function snapshotAll(db: Db): Promise<{ formations: FormationRow[]; nodes: NodeRow[]; nowMs: number }> {
  const formations = await db.selectFrom('formations').selectAll().execute();
  const nodes = await db.selectFrom('nodes').selectAll().where('goalState', '!=', 'dropped').orderBy('formationId').orderBy('groupId').orderBy('nodeId').execute();
  return { formations, nodes, nowMs: await storeNowMs(db) };
}

/** The store's clock in ms since the epoch (one clock for every monitor and every fact). */
export async function storeNowMs(db: Db): Promise<number> {
  const { rows } = await sql<{ nowMs: number }>`select (extract(epoch from clock_timestamp()) * 1000)::float8 as now_ms`.execute(db);
  return Number(rows[0]!.nowMs);
}

/**
 * Inserts a node, or returns the existing one when the same name, host and port register
 * again (a `keeper create` retried after a failure), with its `postgresSsl` (default true)
 * and, when given, its keeper's `httpAddress` updated to what it says now.
 *
 * @throws ConflictError when the name is taken in the formation or host:port by another node,
 *   or when another node of the formation uses the other TLS mode (`postgresSsl`).
 */
export async function insertNode(
  trx: Transaction<Database>,
  formationId: string,
  req: { name: string; host: string; port: number; candidatePriority: number; replicationQuorum: boolean; postgresSsl?: boolean; httpAddress?: string },
): Promise<{ node: NodeRow; created: boolean }> {
  const postgresSsl = req.postgresSsl ?? true;
  // A formation's nodes all use TLS or none do: a TLS primary rejects a plain-text standby
  // (hostnossl … reject), and a plain-text primary cannot serve a TLS standby's verify-full.
  const otherMode = await trx
    .selectFrom('nodes')
    .select(['nodeId', 'name', 'postgresSsl'])
    .where('formationId', '=', formationId)
    .where('name', '!=', req.name)
    .where('goalState', '!=', 'dropped')
    .where('postgresSsl', '!=', postgresSsl)
    .orderBy('nodeId')
    .executeTakeFirst();
  if (otherMode) {
    throw new ConflictError(
      `node "${req.name}" asks for Postgres ${postgresSsl ? 'with TLS' : 'without TLS (--no-ssl)'}, but node ${otherMode.nodeId} "${otherMode.name}" of formation "${formationId}" runs ${otherMode.postgresSsl ? 'with TLS' : 'without TLS'}`,
      { hint: otherMode.postgresSsl ? 'drop --no-ssl: every node of a formation uses TLS, or none does' : 'add --no-ssl: every node of a formation uses TLS, or none does' },
    );
  }
  const sameName = await trx.selectFrom('nodes').selectAll().where('formationId', '=', formationId).where('name', '=', req.name).executeTakeFirst();
  if (sameName) {
    if (sameName.host === req.host && sameName.port === req.port && sameName.goalState !== 'dropped') {
      const httpAddress = req.httpAddress ?? sameName.httpAddress;
      if (sameName.postgresSsl === postgresSsl && sameName.httpAddress === httpAddress) return { node: sameName, created: false };
      const node = await trx.updateTable('nodes').set({ postgresSsl, httpAddress }).where('nodeId', '=', sameName.nodeId).returningAll().executeTakeFirstOrThrow();
      return { node, created: false };
    }
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
    .values({ formationId, groupId: 0, name: req.name, host: req.host, port: req.port, candidatePriority: req.candidatePriority, replicationQuorum: req.replicationQuorum, postgresSsl: req.postgresSsl ?? true, httpAddress: req.httpAddress ?? null })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { node, created: true };
}

/** Columns of `pgha.formations` that {@link lockRecordReportsAndReadGroups} adds to each node row. */
const FORMATION_COLUMNS = ['kind', 'dbname', 'number_sync_standbys', 'settings', 'replication_password', 'monitor_probe_password', 'created_at'] as const;

const camelCase = (column: string): string => column.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
/** Each formation column: its property in a formation row, and in a node row of the report's read. */
const FORMATION_FIELDS = FORMATION_COLUMNS.map((c) => ({ field: camelCase(c), alias: camelCase(`formation_${c}`) }));

/** A row of {@link lockRecordReportsAndReadGroups}: a node, its formation's columns, flags and the clock. */
type ReportReadRow = NodeRow & Record<string, unknown> & { recorded: boolean; isInput: boolean; storeNowMs: number };

/** A group as read with the reports of its nodes. */
export interface GroupRead {
  formationId: string;
  groupId: number;
  formation: FormationRow;
  /** The group's nodes that are not dropped, by node id, with the reports recorded. */
  nodes: NodeRow[];
}

/** What {@link lockRecordReportsAndReadGroups} read. */
export interface ReportsRead {
  /** Every reporting node that exists, by id, with its report recorded unless it was not (see the function). */
  inputs: Map<number, NodeRow>;
  /** The groups of the nodes whose reports were recorded (keyed by {@link groupKey}). */
  groups: Map<string, GroupRead>;
  /** The store's clock (ms since the epoch) when the groups were read. */
  nowMs: number;
}

/**
 * Records keepers' reports of any nodes and groups, under their groups' locks, and reads what
 * the groups' decisions need, in ONE round trip (with `begin`): a simple query of two
 * statements,
 *
 * 1. take the advisory lock ({@link lockGroup}) of each reporting node's group, in (formation,
 *    group) order, so that it cannot deadlock with another transaction that takes several
 *    groups' locks in that order;
 * 2. record each report, then read every node of the groups concerned, their formation and
 *    the store's clock.
 *
 * In a simple query each statement takes its own snapshot, so the second statement sees
 * everything committed before the locks were granted: the same as two round trips. The
 * values are written into the statement (a simple query has no parameters): node ids as
 * integers, the reports as one JSON literal escaped by `pg.escapeLiteral`.
 *
 * The transaction then commits without waiting for its WAL to reach the disk (reports only:
 * a monitor crash may lose the last few hundred ms of them, and keepers report again within
 * `keeperReportIntervalMs`), unless {@link requireDurableCommit} turns that back on, as the
 * driver does before it writes a goal or a decision's event. (The `keeper-problem` events this
 * statement writes share their report's fate: lost with it, written again by the next report.
 * A report carrying a self-fence is committed durably and answered after the commit, see the
 * driver: its keeper forgets the fence once answered.)
 *
 * A report's `selfFence` writes one `keeper-self-fenced` event when it is newer than the node's
 * `last_self_fence_at`, which it then becomes: a fence sent again writes nothing.
 *
 * A node whose goal is `dropped` and whose keeper reports `dropped` is not recorded (its
 * keeper has stopped; the caller removes it). A node id that does not exist is missing
 * from `inputs`. Give at most one report per node (the last one a keeper sent).
 */
export async function lockRecordReportsAndReadGroups(trx: Transaction<Database>, reports: readonly { nodeId: number; report: NodeReport }[]): Promise<ReportsRead> {
  const valid = reports.filter((r) => Number.isSafeInteger(r.nodeId));
  if (valid.length === 0) return { inputs: new Map(), groups: new Map(), nowMs: await storeNowMs(trx) };
  const ids = `array[${valid.map((r) => r.nodeId).join(', ')}]::int4[]`;
  const input = JSON.stringify(
    valid.map(({ nodeId, report }) => ({
      node_id: nodeId,
      reported_state: report.reportedState,
      pg_is_running: report.postgresRunning,
      is_in_recovery: report.isInRecovery,
      reported_lsn: formatLsn(parseLsn(report.lsn)),
      reported_timeline: report.timeline,
      upstream_streaming: report.upstreamStreaming,
      transition_in_progress: report.transitionInProgress ?? null,
      transition_progress: report.transitionProgress ?? null,
      reported_sync_standby_names: report.synchronousStandbyNames ?? null,
      reported_problem: report.problem ?? null,
      self_fence_at_ms: report.selfFence?.fencedAtMs ?? null,
      self_fence_sentence: report.selfFence ? selfFenceSentence(report.selfFence) : null,
    })),
  );
  const text = `
    set local synchronous_commit = off;
    select pg_advisory_xact_lock(hashtext('pgha:' || g.formation_id), g.group_id)
    from (select distinct formation_id, group_id from pgha.nodes where node_id = any(${ids}) order by 1, 2 offset 0) g;
    with input as (
      select * from json_to_recordset(${pg.escapeLiteral(input)}::json)
        as t(node_id int4, reported_state text, pg_is_running bool, is_in_recovery bool, reported_lsn text, reported_timeline int4,
             upstream_streaming bool, transition_in_progress text, reported_sync_standby_names text, reported_problem text,
             transition_progress jsonb, self_fence_at_ms int8, self_fence_sentence text)
    ), fence_events as (
      -- A self-fence the keeper reports: one event per fence, however often its keeper sends it
      -- (retried or racing reports are serialised by the group lock and see the column below).
      insert into pgha.events (formation_id, group_id, node_id, node_name, reported_state, old_goal_state, new_goal_state, reported_lsn, rule, reason)
      select n.formation_id, n.group_id, n.node_id, n.name, i.reported_state, n.goal_state, n.goal_state, i.reported_lsn::pg_lsn,
        'keeper-self-fenced', format('node %s "%s" %s', n.node_id, n.name, i.self_fence_sentence)
      from pgha.nodes n join input i on n.node_id = i.node_id
      where n.node_id = any(${ids}) and i.self_fence_at_ms is not null
        and (n.last_self_fence_at is null or n.last_self_fence_at < to_timestamp(i.self_fence_at_ms / 1000.0))
        and not (n.goal_state = 'dropped' and i.reported_state = 'dropped')
    ), problem_events as (
      -- A problem the keeper reports, or its end, is a note in the events (the goal stays).
      insert into pgha.events (formation_id, group_id, node_id, node_name, reported_state, old_goal_state, new_goal_state, reported_lsn, rule, reason)
      select n.formation_id, n.group_id, n.node_id, n.name, i.reported_state, n.goal_state, n.goal_state, i.reported_lsn::pg_lsn,
        case when i.reported_problem is null then 'keeper-problem-cleared' else 'keeper-problem' end,
        case when i.reported_problem is null
          then format('node %s "%s" reports no problem any more (it reported: %s)', n.node_id, n.name, n.reported_problem)
          else format('node %s "%s" reports a problem: %s', n.node_id, n.name, i.reported_problem) end
      from pgha.nodes n join input i on n.node_id = i.node_id
      where n.node_id = any(${ids}) and n.reported_problem is distinct from i.reported_problem and not (n.goal_state = 'dropped' and i.reported_state = 'dropped')
    ), updated as (
      update pgha.nodes n set
        reported_state = i.reported_state,
        reported_at = clock_timestamp(),
        pg_is_running = i.pg_is_running,
        is_in_recovery = i.is_in_recovery,
        reported_lsn = i.reported_lsn::pg_lsn,
        reported_timeline = i.reported_timeline,
        upstream_streaming = i.upstream_streaming,
        transition_in_progress = i.transition_in_progress,
        transition_progress = i.transition_progress,
        reported_sync_standby_names = i.reported_sync_standby_names,
        reported_problem = i.reported_problem,
        last_self_fence_at = greatest(n.last_self_fence_at, to_timestamp(i.self_fence_at_ms / 1000.0)),
        last_streaming_at = case when i.upstream_streaming then clock_timestamp() else n.last_streaming_at end
      from input i
      where n.node_id = any(${ids}) and n.node_id = i.node_id and not (n.goal_state = 'dropped' and i.reported_state = 'dropped')
      returning n.*
    ), groups as (
      select distinct formation_id, group_id from updated
    ), rows as (
      select u.*, true as recorded, true as is_input from updated u
      union all
      select n.*, false, false from pgha.nodes n join groups g on g.formation_id = n.formation_id and g.group_id = n.group_id
      where n.node_id <> all(${ids}) and n.goal_state <> 'dropped'
      union all
      select n.*, false, true from pgha.nodes n
      where n.node_id = any(${ids}) and n.node_id not in (select node_id from updated)
    )
    select r.*, ${FORMATION_COLUMNS.map((c) => `f.${c} as formation_${c}`).join(', ')},
      (extract(epoch from clock_timestamp()) * 1000)::float8 as store_now_ms
    from rows r join pgha.formations f on f.formation_id = r.formation_id
    order by r.formation_id, r.group_id, r.node_id`;
  const { rows } = await trx.executeQuery<ReportReadRow>(CompiledQuery.raw(text));
  const inputs = new Map<number, NodeRow>();
  const groups = new Map<string, GroupRead>();
  const recordedGroups = new Set(rows.filter((r) => r.recorded).map((r) => groupKey(r.formationId, r.groupId)));
  let nowMs = 0;
  for (const row of rows) {
    nowMs = Math.max(nowMs, Number(row.storeNowMs));
    const n: Record<string, unknown> = { ...row };
    for (const f of FORMATION_FIELDS) delete n[f.alias];
    delete n.storeNowMs;
    delete n.recorded;
    delete n.isInput;
    const node = n as NodeRow;
    if (row.isInput) inputs.set(node.nodeId, node);
    const key = groupKey(row.formationId, row.groupId);
    if (!recordedGroups.has(key)) continue;
    let g = groups.get(key);
    if (!g) {
      const formation: Record<string, unknown> = { formationId: row.formationId };
      for (const f of FORMATION_FIELDS) formation[f.field] = row[f.alias];
      g = { formationId: row.formationId, groupId: row.groupId, formation: formation as FormationRow, nodes: [] };
      groups.set(key, g);
    }
    if (node.goalState !== 'dropped') g.nodes.push(node);
  }
  return { inputs, groups, nowMs: nowMs || (await storeNowMs(trx)) };
}

/**
 * Makes `trx` commit durably (`synchronous_commit = on`, the store's default) after
 * {@link lockRecordReportsAndReadGroups} turned it off: every goal and event is on disk
 * before it is served.
 */
export async function requireDurableCommit(trx: Transaction<Database>): Promise<void> {
  await trx.executeQuery(CompiledQuery.raw('set local synchronous_commit = on'));
}

/** Key of a group in maps: formation and group id. */
export function groupKey(formationId: string, groupId: number): string {
  return `${formationId}\u0000${groupId}`;
}

/**
 * Probe results of one node since they were last written, merged in order: `reset` when one
 * succeeded (then `failures` counts the failures after the last success, and `inRecovery` is
 * what that success saw), otherwise `failures` failed probes in a row.
 */
export interface MergedProbes {
  nodeId: number;
  reset: boolean;
  failures: number;
  inRecovery: boolean | null;
  /** `healthProbeRetries` of the node's formation. */
  retries: number;
}

/** A node whose health changed when probe results were written. */
export interface HealthChange {
  nodeId: number;
  formationId: string;
  groupId: number;
  name: string;
  health: string;
}

/**
 * How often a node's `health_checked_at` is written when its probes change nothing (s): a
 * thousand nodes probed twice a second would otherwise be two thousand row updates a second
 * that say only "checked again".
 */
export const HEALTH_CHECKED_REFRESH_S = 10;

/**
 * Writes the probe results of many nodes in one statement, each result applied in order:
 * health turns `bad` after `retries` consecutive failures and `good` at the first success
 * (as pg_auto_failover's health check worker counts them). `health_failures` counts the
 * consecutive failures up to `retries`. A node's row is written only when its health, its
 * failure count or what the probe saw of recovery changes, or its `health_checked_at` is
 * older than {@link HEALTH_CHECKED_REFRESH_S}.
 *
 * Rows locked by a transaction in progress (a group decision) are skipped rather than waited
 * for, so this statement never waits on a group's lock holder and cannot deadlock with one;
 * their results come back in `skipped` to be written again. The prober is the only writer of
 * these columns, one statement at a time.
 *
 * @returns the nodes whose health changed, and the ids of the nodes skipped (existing but locked).
 */
export async function recordProbes(db: Kysely<Database>, results: readonly MergedProbes[]): Promise<{ changed: HealthChange[]; skipped: number[] }> {
  if (results.length === 0) return { changed: [], skipped: [] };
  const ids = results.map((r) => r.nodeId);
  const { rows } = await sql<{ nodeId: number; formationId: string | null; groupId: number | null; name: string | null; oldHealth: string | null; newHealth: string | null; written: boolean }>`
    with input as (
      select * from unnest(${ids}::int4[], ${results.map((r) => r.reset)}::bool[], ${results.map((r) => r.failures)}::int4[],
                           ${results.map((r) => r.inRecovery)}::bool[], ${results.map((r) => r.retries)}::int4[])
        as t(node_id, reset, failures, in_recovery, retries)
    ), next as (
      select n.node_id,
        least(case when i.reset then i.failures else n.health_failures + i.failures end, i.retries) as failures,
        case
          when (case when i.reset then i.failures else n.health_failures + i.failures end) >= i.retries then 'bad'
          when i.reset then 'good'
          else n.health end as health,
        case when i.reset then i.in_recovery else n.probe_in_recovery end as in_recovery,
        n.health_failures as old_failures, n.health as old_health, n.probe_in_recovery as old_in_recovery, n.health_checked_at
      from pgha.nodes n join input i on i.node_id = n.node_id
    ), to_write as (
      select node_id from next x
      where x.failures <> x.old_failures or x.health <> x.old_health or x.in_recovery is distinct from x.old_in_recovery
        or x.health_checked_at is null or x.health_checked_at < clock_timestamp() - make_interval(secs => ${HEALTH_CHECKED_REFRESH_S})
    ), locked as (
      select n.node_id, n.health as old_health from pgha.nodes n join to_write w on w.node_id = n.node_id
      order by n.node_id for update of n skip locked
    ), updated as (
      update pgha.nodes n set
        health_failures = least(case when i.reset then i.failures else n.health_failures + i.failures end, i.retries),
        health = case
          when (case when i.reset then i.failures else n.health_failures + i.failures end) >= i.retries then 'bad'
          when i.reset then 'good'
          else n.health end,
        health_checked_at = clock_timestamp(),
        probe_in_recovery = case when i.reset then i.in_recovery else n.probe_in_recovery end
      from input i, locked l
      where n.node_id = i.node_id and l.node_id = i.node_id
      returning n.node_id, n.formation_id, n.group_id, n.name, l.old_health, n.health as new_health
    )
    select u.*, true as written from updated u
    union all
    select x.node_id, null, null, null, null, null, false from next x where x.node_id not in (select node_id from to_write)`.execute(db);
  const answered = new Set(rows.map((r) => r.nodeId));
  const missing = ids.filter((id) => !answered.has(id));
  let skipped: number[] = [];
  if (missing.length > 0) {
    // Not written: locked by a transaction in progress, or deleted meanwhile.
    const existing = await db.selectFrom('nodes').select('nodeId').where('nodeId', 'in', missing).execute();
    skipped = existing.map((r) => r.nodeId);
  }
  const changed = rows
    .filter((r) => r.written && r.oldHealth !== r.newHealth)
    .map((r) => ({ nodeId: r.nodeId, formationId: r.formationId!, groupId: r.groupId!, name: r.name!, health: r.newHealth! }));
  return { changed, skipped };
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
    postgresRunning: n.pgIsRunning,
    reportedLsn: parseLsn(n.reportedLsn),
    reportedTimeline: n.reportedTimeline,
    upstreamStreaming: n.upstreamStreaming,
    lastStreamingMs: n.lastStreamingAt ? new Date(n.lastStreamingAt).getTime() : null,
    health: n.health as NodeHealth,
    goalChangedMs: new Date(n.goalChangedAt).getTime(),
    synchronousStandbyNames: n.reportedSyncStandbyNames,
  };
}

/**
 * Builds the group's facts from its rows; `nowMs` is the store's clock, `monitorLagMs` how far
 * behind the monitor has lately been in answering reports (see `GroupFacts.monitorLagMs`).
 */
export function groupFacts(formation: FormationRow, groupId: number, nodes: readonly NodeRow[], nowMs: number, monitorLagMs = 0): GroupFacts {
  return { formation: formation.formationId, groupId, nowMs, settings: formationSettings(formation), nodes: nodes.map(toFacts), ...(monitorLagMs > 0 ? { monitorLagMs } : {}) };
}

/**
 * Writes each assignment's goal state with its event row (time, node, reported state, old and
 * new goal, reason, rule) and notifies waiting keepers on commit, in one statement: the
 * events in the order of the assignments, each node's goal from its last assignment (a node
 * may be assigned more than once by `decideUntilStable`). Assignments of nodes not in `nodes`
 * are left out.
 */
export async function writeAssignments(trx: Transaction<Database>, formationId: string, groupId: number, nodes: readonly NodeRow[], assignments: readonly Assignment[]): Promise<void> {
  const goals = new Map(nodes.map((n) => [n.nodeId, n.goalState]));
  const rows: Record<string, unknown>[] = [];
  for (const a of assignments) {
    const node = nodes.find((n) => n.nodeId === a.nodeId);
    if (!node) continue;
    rows.push({
      ord: rows.length,
      node_id: a.nodeId,
      node_name: node.name,
      reported_state: node.reportedState,
      old_goal_state: goals.get(a.nodeId) ?? node.goalState,
      new_goal_state: a.goalState,
      reported_lsn: node.reportedLsn,
      rule: a.rule,
      reason: a.reason,
    });
    goals.set(a.nodeId, a.goalState);
  }
  if (rows.length === 0) return;
  await sql`
    with a as (
      select * from json_to_recordset(${JSON.stringify(rows)}::json)
        as t(ord int4, node_id int4, node_name text, reported_state text, old_goal_state text, new_goal_state text, reported_lsn text, rule text, reason text)
    ), last as (
      select distinct on (node_id) node_id, new_goal_state from a order by node_id, ord desc
    ), updated as (
      update pgha.nodes n set goal_state = l.new_goal_state, goal_changed_at = clock_timestamp()
      from last l where n.node_id = l.node_id
      returning n.node_id
    ), inserted as (
      insert into pgha.events (formation_id, group_id, node_id, node_name, reported_state, old_goal_state, new_goal_state, reported_lsn, rule, reason)
      select ${formationId}, ${groupId}, node_id, node_name, reported_state, old_goal_state, new_goal_state, reported_lsn::pg_lsn, rule, reason
      from a order by ord
      returning event_id
    )
    select pg_notify('pgha_goal', (select string_agg(node_id::text, ',') from updated)), (select count(*) from inserted) as events`.execute(trx);
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

/**
 * Writes an event about one node that keeps its goal (a settings change, a refused request):
 * the node's states as they are, `rule` and `reason`.
 */
export async function writeNodeEvent(db: Db, node: NodeRow, rule: string, reason: string): Promise<void> {
  await db
    .insertInto('events')
    .values({
      formationId: node.formationId,
      groupId: node.groupId,
      nodeId: node.nodeId,
      nodeName: node.name,
      reportedState: node.reportedState,
      oldGoalState: node.goalState,
      newGoalState: node.goalState,
      reportedLsn: node.reportedLsn,
      rule,
      reason,
    })
    .execute();
}
