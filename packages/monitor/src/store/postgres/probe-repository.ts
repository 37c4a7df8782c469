/**
 * The Postgres adapter's {@link ProbeRepository}. The prober is the only writer of the health
 * columns of `pgha.nodes`, one write at a time.
 */
import { sql, type RawBuilder } from 'kysely';
import { mustWriteHealth, nextHealth, type ProbeState } from '../health-rule.js';
import type { HealthChange, MergedProbes, NodeRecord, ProbeTargetRecord } from '../records.js';
import type { ProbeRepository } from '../store-port.js';
import type { Db } from './db.js';
import { QueryTemplate } from './query-template.js';

/** How long ago (ms, the store's clock) the timestamp in `column` was; null when it is. */
function msAgo(column: string): RawBuilder<number | null> {
  return sql<number | null>`(extract(epoch from clock_timestamp() - ${sql.ref(column)}) * 1000)::float8`;
}

/** Every node not dropped, as the prober probes it: one read a round (twice a second by default). */
const TARGETS = new QueryTemplate<ProbeTargetRecord>((db) =>
  db
    .selectFrom('nodes')
    .innerJoin('formations', 'formations.formationId', 'nodes.formationId')
    .select(['nodes.nodeId', 'nodes.formationId', 'nodes.groupId', 'nodes.name', 'nodes.host', 'nodes.port', 'nodes.health', 'nodes.healthFailures', 'nodes.probeInRecovery', 'nodes.reportedState', 'nodes.postgresSsl', 'formations.monitorProbePassword', 'formations.settings'])
    .select(msAgo('nodes.reportedAt').as('sinceReportMs'))
    .select(msAgo('nodes.healthCheckedAt').as('checkedAgoMs'))
    .where('nodes.goalState', '!=', 'dropped'),
);

/** The probe state of nodes `nodeIds` (int4[]), read before results are applied to it. */
const PROBE_STATES = new QueryTemplate<Pick<NodeRecord, 'nodeId' | 'formationId' | 'groupId' | 'name' | 'health' | 'healthFailures' | 'probeInRecovery'> & { checkedAgoMs: number | null }>((db, p) =>
  db
    .selectFrom('nodes')
    .select(['nodeId', 'formationId', 'groupId', 'name', 'health', 'healthFailures', 'probeInRecovery'])
    .select(msAgo('healthCheckedAt').as('checkedAgoMs'))
    .where('nodeId', '=', sql<number>`any(${p('nodeIds')}::int4[])`),
);

/** See {@link ProbeRepository}. */
export class PgProbeRepository implements ProbeRepository {
  constructor(private readonly db: Db) {}

  async targets(only: (formationId: string) => boolean = () => true): Promise<ProbeTargetRecord[]> {
    const targets = await TARGETS.execute(this.db, {});
    return targets.filter((t) => only(t.formationId));
  }

  /**
   * Two statements: read the nodes' probe state (no lock, never waits), apply the health rule,
   * then write the nodes that must be, in one statement that skips rows locked by a transaction
   * in progress (a group decision) rather than wait for them, so it cannot deadlock with one,
   * and writes a row only if its probe state is still the one read (a compare-and-swap).
   * Rows not written that still exist come back in `skipped`.
   */
  async record(results: readonly MergedProbes[]): Promise<{ changed: HealthChange[]; skipped: number[] }> {
    if (results.length === 0) return { changed: [], skipped: [] };
    const current = await PROBE_STATES.execute(this.db, { nodeIds: results.map((r) => r.nodeId) });
    const byId = new Map(current.map((n) => [n.nodeId, n]));
    const writes: { node: (typeof current)[number]; next: ProbeState }[] = [];
    for (const r of results) {
      const node = byId.get(r.nodeId);
      if (!node) continue;
      const next = nextHealth(node, r);
      if (mustWriteHealth(node, next, node.checkedAgoMs)) writes.push({ node, next });
    }
    if (writes.length === 0) return { changed: [], skipped: [] };
    const column = <T>(f: (w: (typeof writes)[number]) => T): T[] => writes.map(f);
    const { rows } = await sql<{ nodeId: number }>`
      with input as (
        select * from unnest(${column((w) => w.node.nodeId)}::int4[], ${column((w) => w.next.health)}::text[], ${column((w) => w.next.healthFailures)}::int4[],
                             ${column((w) => w.next.probeInRecovery)}::bool[], ${column((w) => w.node.health)}::text[], ${column((w) => w.node.healthFailures)}::int4[],
                             ${column((w) => w.node.probeInRecovery)}::bool[])
          as t(node_id, health, failures, in_recovery, old_health, old_failures, old_in_recovery)
      ), locked as (
        select n.node_id from pgha.nodes n join input i on i.node_id = n.node_id
        order by n.node_id for update of n skip locked
      )
      update pgha.nodes n set health = i.health, health_failures = i.failures, probe_in_recovery = i.in_recovery, health_checked_at = clock_timestamp()
      from input i join locked l on l.node_id = i.node_id
      where n.node_id = i.node_id and n.health = i.old_health and n.health_failures = i.old_failures and n.probe_in_recovery is not distinct from i.old_in_recovery
      returning n.node_id`.execute(this.db);
    const written = new Set(rows.map((r) => r.nodeId));
    const changed: HealthChange[] = [];
    const notWritten: number[] = [];
    for (const { node, next } of writes) {
      if (!written.has(node.nodeId)) notWritten.push(node.nodeId);
      else if (next.health !== node.health) changed.push({ nodeId: node.nodeId, formationId: node.formationId, groupId: node.groupId, name: node.name, health: next.health });
    }
    let skipped: number[] = [];
    if (notWritten.length > 0) {
      // Locked by a transaction in progress, changed since the read, or deleted meanwhile.
      const existing = await this.db.selectFrom('nodes').select('nodeId').where('nodeId', '=', sql<number>`any(${notWritten}::int4[])`).execute();
      skipped = existing.map((r) => r.nodeId);
    }
    return { changed, skipped };
  }
}
