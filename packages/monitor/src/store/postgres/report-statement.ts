/**
 * The Postgres adapter's fast path: keepers' reports, recorded and read in ONE round trip.
 *
 * Why a fast path: a thousand keepers report every second, and each report must be recorded and
 * its group decided under the group's lock (DESIGN, safety rules). Done with ordinary
 * repository calls (begin, a lock, an update, two reads, commit: six round trips per report),
 * `npm run bench:monitor` answered 1,000 nodes with a p99 of 1.1 s; with this path, the report
 * batching of `ReportBatcher` and async commits of report-only transactions, 46 ms (p50 8 ms,
 * docs/monitor-capacity.md). Round trips, not decisions (about 5 µs each), were the cost. The
 * pieces, all in this adapter and nowhere above the port:
 *
 * - this statement: every report of a batch (about 5–10 per transaction at 1,000 reports/s)
 *   recorded under its group's lock and the groups read back, in one simple query;
 * - `StoreClient` (`db.ts`), which sends the transaction's held-back `begin` with it, so that the
 *   whole transaction up to its commit is this one round trip;
 * - `QueryTemplate` and prepared statements (`query-template.ts`) for the other hot reads;
 * - `synchronous_commit = off` until a goal or an event is written (`PgTransaction.durable`);
 * - an idle keeper's report (a heartbeat: nothing changed but the time and the LSN) recorded by
 *   the same statement without a transaction around it ({@link recordHeartbeats}): one round
 *   trip instead of two with the commit (issue 17, idle cost);
 * - `pgha.nodes` with fillfactor 70 and an index on (formation, group) (migration 0003), so that
 *   a report's update stays on its page: about 0.3 ms in Postgres instead of 2 ms.
 */
import { CompiledQuery, type Kysely, type Transaction } from 'kysely';
import { loadPgDriver } from '@pgha/postgres';
import { formatLsn, parseLsn, type NodeReport } from '@pgha/shared';
import { groupKey, isHeartbeatReport, reportedShutdownCheckpointLsn, type FormationRecord, type GroupRead, type NodeRecord, type RecordedReport, type ReportsRead } from '../records.js';
import { formationSettings, freshWithinMs } from '../group-facts.js';
import { storeNowMs, type Database, type Db } from './db.js';

/** A row of the statement: a node, and what the statement adds to it. */
type ReportRow = NodeRecord & {
  recorded: boolean;
  isInput: boolean;
  /** `pgha.formations` row as JSON (its keys camelCased by `CamelCasePlugin`, as every column's). */
  formation: FormationRecord;
  beforeReportedProblem: string | null;
  beforeLastSelfFenceAt: Date | null;
  beforeReportedAt: Date | null;
  storeNowMs: number;
};

/**
 * `StoreTransaction.recordReports` (see the port): a simple query of three statements, sent
 * with the transaction's `begin`:
 *
 * 1. `set local synchronous_commit = off`: the transaction commits without waiting for its WAL
 *    to reach the disk (reports only: a crash may lose the last few hundred ms of them, and
 *    keepers report again within `keeperReportIntervalMs`) until `PgTransaction.durable` turns
 *    it back on, before a goal or an event is written;
 * 2. take the advisory lock (`PgTransaction.lockGroup`) of each reporting node's group, in
 *    (formation, group) order, so that it cannot deadlock with another transaction that takes
 *    several groups' locks in that order;
 * 3. record each report, then read every node of the groups concerned, the reporting nodes'
 *    problem and self-fence before the report, their formations and the store's clock.
 *
 * In a simple query each statement takes its own snapshot, so the third sees everything
 * committed before the locks were granted: the same as separate round trips. The values are
 * written into the statement (a simple query has no parameters): node ids as integers, the
 * reports as one JSON string constant ({@link jsonConstant}).
 */
export function recordReports(trx: Transaction<Database>, reports: readonly { nodeId: number; report: NodeReport }[]): Promise<ReportsRead> {
  return runReportStatement(trx, reports, false);
}

/**
 * `MonitorStore.recordHeartbeats` (see the port): the same statement, sent on its own outside
 * any transaction, so that Postgres runs its statements as one implicit transaction that
 * commits when the last ends (`synchronous_commit` off: reports only): one round trip where
 * {@link recordReports} and its commit take two. Its update writes a report only when the
 * node's persisted facts already are the report's (`PERSISTED_REPORT_FACTS`), no
 * transition is under way, and its keeper reported before; a report that carries a self-fence
 * or a transition is not sent. The group locks are taken as in {@link recordReports} and held
 * until the implicit commit, so the groups are read as a decision would read them; a report
 * not written is left out of `inputs`.
 */
export function recordHeartbeats(db: Kysely<Database>, reports: readonly { nodeId: number; report: NodeReport }[]): Promise<ReportsRead> {
  return runReportStatement(db, reports.filter((r) => isHeartbeatReport(r.report)), true);
}

/**
 * The `synchronous_standby_names` a report leaves on node `n` (report `i`): the reported one
 * while Postgres runs, the one it last ran with while it is down (`NodeRecord.reportedSyncStandbyNames`).
 */
const SYNC_NAMES_KEPT = 'case when i.postgres_running then i.reported_sync_standby_names else n.reported_sync_standby_names end';

/**
 * The facts a heartbeat leaves as they are, compared in SQL: `n` the node, `i` the report
 * (see `PERSISTED_REPORT_FACTS`; the self-fence and the transition are checked apart).
 */
const SAME_PERSISTED_FACTS = `
  (n.reported_state, n.postgres_running, n.is_in_recovery, n.reported_timeline, n.upstream_streaming, n.reported_sync_standby_names, n.shutdown_checkpoint_lsn, n.reported_problem, n.reported_parameters)
    is not distinct from (i.reported_state, i.postgres_running, i.is_in_recovery, i.reported_timeline, i.upstream_streaming, ${SYNC_NAMES_KEPT}, i.shutdown_checkpoint_lsn::pg_lsn, i.reported_problem, i.reported_parameters)
  and n.transition_in_progress is null and n.transition_progress is null and coalesce(i.restart_done, 0) <= n.restart_done
  and n.reported_at is not null and n.goal_state <> 'dropped'`;

/** The tag of the dollar-quoted string constant that {@link jsonConstant} writes. */
const JSON_TAG = '$pgha_json$';

/**
 * A JSON array's text as a Postgres string constant: dollar-quoted (`$pgha_json$…$pgha_json$`),
 * which takes the text as it is, unless the text holds the tag (a report's free text would have
 * to), then as `pg.escapeLiteral` quotes it. Such a constant ends at the first tag in it, and
 * the text cannot end with the start of one either: a JSON array's text ends with `]`.
 * `escapeLiteral` copies its input a character at a time, the largest share of an idle
 * monitor's allocations (7 %, `bench/results/idle.md`).
 *
 * @param json - `JSON.stringify` of an array.
 */
function jsonConstant(json: string): string {
  return json.includes(JSON_TAG) ? loadPgDriver().escapeLiteral(json) : `${JSON_TAG}${json}${JSON_TAG}`;
}

/** The formation row `f` as a {@link FormationRecord} in JSON (its keys camelCased by `CamelCasePlugin`). */
export const FORMATION_JSON = `to_jsonb(f) - 'created_at'`;

async function runReportStatement(db: Db, reports: readonly { nodeId: number; report: NodeReport }[], heartbeat: boolean): Promise<ReportsRead> {
  const valid = reports.filter((r) => Number.isSafeInteger(r.nodeId));
  if (valid.length === 0) return { inputs: new Map(), groups: new Map(), nowMs: await storeNowMs(db) };
  const ids = `array[${valid.map((r) => r.nodeId).join(', ')}]::int4[]`;
  const input = JSON.stringify(
    valid.map(({ nodeId, report }) => ({
      node_id: nodeId,
      reported_state: report.reportedState,
      postgres_running: report.postgresRunning,
      is_in_recovery: report.isInRecovery,
      reported_lsn: formatLsn(parseLsn(report.lsn)),
      reported_timeline: report.timeline,
      upstream_streaming: report.upstreamStreaming,
      transition_in_progress: report.transitionInProgress ?? null,
      transition_progress: report.transitionProgress ?? null,
      reported_sync_standby_names: report.synchronousStandbyNames ?? null,
      shutdown_checkpoint_lsn: reportedShutdownCheckpointLsn(report),
      reported_problem: report.problem ?? null,
      self_fence_at_ms: report.selfFence?.fencedAtMs ?? null,
      reported_parameters: report.parameters ?? null,
      restart_done: report.restartDone ?? null,
    })),
  );
  const text = `
    set local synchronous_commit = off;
    select pg_advisory_xact_lock(hashtext('pgha:' || g.formation_id), g.group_id)
    from (select distinct formation_id, group_id from pgha.nodes where node_id = any(${ids}) order by 1, 2 offset 0) g;
    with input as (
      select * from json_to_recordset(${jsonConstant(input)}::json)
        as t(node_id int4, reported_state text, postgres_running bool, is_in_recovery bool, reported_lsn text, reported_timeline int4,
             upstream_streaming bool, transition_in_progress text, reported_sync_standby_names text, reported_problem text,
             transition_progress jsonb, self_fence_at_ms int8, reported_parameters jsonb, restart_done int4, shutdown_checkpoint_lsn text)
    ), before as (
      select node_id, reported_problem, last_self_fence_at, reported_at from pgha.nodes where node_id = any(${ids})
    ), updated as (
      update pgha.nodes n set
        reported_state = i.reported_state,
        reported_at = clock_timestamp(),
        postgres_running = i.postgres_running,
        is_in_recovery = i.is_in_recovery,
        reported_lsn = i.reported_lsn::pg_lsn,
        reported_timeline = i.reported_timeline,
        upstream_streaming = i.upstream_streaming,
        transition_in_progress = i.transition_in_progress,
        transition_progress = i.transition_progress,
        reported_sync_standby_names = ${SYNC_NAMES_KEPT},
        shutdown_checkpoint_lsn = i.shutdown_checkpoint_lsn::pg_lsn,
        reported_problem = i.reported_problem,
        reported_parameters = i.reported_parameters,
        restart_done = greatest(n.restart_done, coalesce(i.restart_done, 0)),
        last_self_fence_at = greatest(n.last_self_fence_at, timestamptz 'epoch' + i.self_fence_at_ms * interval '1 millisecond'),
        last_streaming_at = case when i.upstream_streaming then clock_timestamp() else n.last_streaming_at end
      from input i
      where n.node_id = any(${ids}) and n.node_id = i.node_id and not (n.goal_state = 'dropped' and i.reported_state = 'dropped')${heartbeat ? ` and ${SAME_PERSISTED_FACTS}` : ''}
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
    select r.*, b.reported_problem as before_reported_problem, b.last_self_fence_at as before_last_self_fence_at,
      b.reported_at as before_reported_at, ${FORMATION_JSON} as formation, (extract(epoch from clock_timestamp()) * 1000)::float8 as store_now_ms
    from rows r join pgha.formations f on f.formation_id = r.formation_id
      left join before b on r.is_input and b.node_id = r.node_id
    order by r.formation_id, r.group_id, r.node_id`;
  const { rows } = await db.executeQuery<ReportRow>(CompiledQuery.raw(text));
  const inputs = new Map<number, RecordedReport>();
  const groups = new Map<string, GroupRead>();
  const recordedGroups = new Set(rows.filter((r) => r.recorded).map((r) => groupKey(r.formationId, r.groupId)));
  let nowMs = 0;
  for (const row of rows) {
    const { recorded, isInput, formation, beforeReportedProblem, beforeLastSelfFenceAt, beforeReportedAt, storeNowMs: rowNowMs, ...node } = row;
    nowMs = Math.max(nowMs, Number(rowNowMs));
    if (isInput && heartbeat && recorded) {
      // Its persisted facts stayed; whether its keeper's liveness did is the time since its last report.
      const freshMs = freshWithinMs(formationSettings(formation));
      const factsChanged = beforeReportedAt === null || Number(rowNowMs) - new Date(beforeReportedAt).getTime() > freshMs;
      inputs.set(node.nodeId, { node, recorded, before: { reportedProblem: beforeReportedProblem, lastSelfFenceAt: beforeLastSelfFenceAt }, factsChanged });
    } else if (isInput && !heartbeat) {
      inputs.set(node.nodeId, { node, recorded, before: { reportedProblem: beforeReportedProblem, lastSelfFenceAt: beforeLastSelfFenceAt } });
    }
    const key = groupKey(node.formationId, node.groupId);
    if (!recordedGroups.has(key)) continue;
    let g = groups.get(key);
    if (!g) {
      g = { formationId: node.formationId, groupId: node.groupId, formation, nodes: [] };
      groups.set(key, g);
    }
    if (node.goalState !== 'dropped') g.nodes.push(node);
  }
  return { inputs, groups, nowMs: nowMs || (await storeNowMs(db)) };
}
