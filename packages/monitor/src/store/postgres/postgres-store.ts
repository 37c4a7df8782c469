/**
 * The Postgres adapter of the store port (`store-port.ts`): the monitor's own Postgres, schema
 * `pgha` (`migrations/`), through Kysely. A {@link PgSession} gives the repositories on a pool
 * handle (each call its own statement) or on a transaction ({@link PgTransaction}).
 *
 * Locks: a group's lock is a transaction-level advisory lock on (`hashtext('pgha:' ||
 * formation)`, group), a formation's the row `FOR NO KEY UPDATE`. Always the formation's
 * first, then groups in (formation, group) order, so that no two transactions deadlock.
 * Source: pg_auto_failover's `LockFormation` / `LockNodeGroup` (`pgautofailover` advisory locks).
 */
import { CompiledQuery, sql, type Kysely, type Transaction } from 'kysely';
import type { NodeReport } from '@pgha/shared';
import type { FormationRecord, GroupRead, NodeGroupRead, NodeRecord, ReportsRead, StoreSnapshot } from '../records.js';
import type { MonitorStore, StoreSession, StoreTransaction } from '../store-port.js';
import { migrateToLatest, openStore, storeNowMs, type Database, type Db, type StoreConnection } from './db.js';
import { PgCredentialRepository } from './credential-repository.js';
import { PgEventStream, PgEventWriter } from './event-repository.js';
import { noSuchFormation, noSuchNode } from '../not-found.js';
import { FORMATION_COLUMNS, PgFormationRepository } from './formation-repository.js';
import { PgGoalRepository } from './goal-repository.js';
import { LIST_GROUP_NODES, PgNodeRepository } from './node-repository.js';
import { PgProbeRepository } from './probe-repository.js';
import { QueryTemplate } from './query-template.js';
import { FORMATION_JSON, recordHeartbeats, recordReports } from './report-statement.js';
import { PgSettingsRepository } from './settings-repository.js';

/** Repositories on one handle: the pool (each call on its own) or a transaction. */
class PgSession implements StoreSession {
  readonly formations: PgFormationRepository;
  readonly nodes: PgNodeRepository;
  readonly events: PgEventWriter;
  readonly stream: PgEventStream;
  readonly probes: PgProbeRepository;
  readonly credentials: PgCredentialRepository;

  constructor(protected readonly db: Db) {
    this.formations = new PgFormationRepository(db);
    this.nodes = new PgNodeRepository(db);
    this.events = new PgEventWriter(db, () => this.durable());
    this.stream = new PgEventStream(db);
    this.probes = new PgProbeRepository(db);
    this.credentials = new PgCredentialRepository(db);
  }

  nowMs(): Promise<number> {
    return storeNowMs(this.db);
  }

  /** Outside a transaction every statement commits durably. */
  protected durable(): Promise<void> {
    return Promise.resolve();
  }
}

/** The formation and the store's clock in one round trip (a decision's read after the group's nodes). */
const GET_FORMATION_AND_NOW = new QueryTemplate<FormationRecord & { storeNowMs: number }>((db, p) =>
  db
    .selectFrom('formations')
    .select(FORMATION_COLUMNS)
    .select(sql<number>`(extract(epoch from clock_timestamp()) * 1000)::float8`.as('storeNowMs'))
    .where('formationId', '=', p('formationId')),
);

/** One transaction of the store. */
class PgTransaction extends PgSession implements StoreTransaction {
  readonly goals: PgGoalRepository;
  readonly settings: PgSettingsRepository;
  /** Whether `synchronous_commit` is off in this transaction ({@link recordReports} turned it off). */
  private asyncCommit = false;

  constructor(private readonly trx: Transaction<Database>) {
    super(trx);
    this.goals = new PgGoalRepository(trx, this.events, () => this.durable());
    this.settings = new PgSettingsRepository(trx);
  }

  async lockGroup(formationId: string, groupId: number): Promise<void> {
    await LOCK_GROUP.execute(this.trx, { key: `pgha:${formationId}`, groupId });
  }

  lockFormation(formationId: string): Promise<FormationRecord> {
    return this.formations.lock(formationId);
  }

  async readGroup(formationId: string, groupId: number): Promise<GroupRead & { nowMs: number }> {
    const nodes = await LIST_GROUP_NODES.execute(this.trx, { formationId, groupId });
    const row = await GET_FORMATION_AND_NOW.executeTakeFirst(this.trx, { formationId });
    if (!row) throw noSuchFormation(formationId);
    const { storeNowMs: nowMs, ...formation } = row;
    return { formationId, groupId, formation, nodes, nowMs: Number(nowMs) };
  }

  async recordReports(reports: readonly { nodeId: number; report: NodeReport }[]): Promise<ReportsRead> {
    const read = await recordReports(this.trx, reports);
    this.asyncCommit = true;
    return read;
  }

  /**
   * Makes the transaction commit durably (`synchronous_commit = on`, the store's default) after
   * {@link recordReports} turned it off: every goal and event is on disk before it is served.
   */
  protected override async durable(): Promise<void> {
    if (!this.asyncCommit) return;
    this.asyncCommit = false;
    await this.trx.executeQuery(SYNCHRONOUS_COMMIT_ON);
  }
}

const LOCK_GROUP = new QueryTemplate<unknown>((_db, p) => sql`select pg_advisory_xact_lock(hashtext(${p('key')}), ${p('groupId')})`);
const SYNCHRONOUS_COMMIT_ON = CompiledQuery.raw('set local synchronous_commit = on');

/**
 * A node and its group's nodes that are not dropped (the node itself even when dropped), each
 * with the formation (null when it is gone), by node id.
 */
type NodeGroupRow = NodeRecord & { formation: FormationRecord | null };
const READ_NODE_GROUP = new QueryTemplate<NodeGroupRow>(
  (_db, p) => sql<NodeGroupRow>`
    select n.*, ${sql.raw(FORMATION_JSON)} as formation
    from pgha.nodes t
    join pgha.nodes n on n.formation_id = t.formation_id and n.group_id = t.group_id and (n.goal_state <> 'dropped' or n.node_id = t.node_id)
    left join pgha.formations f on f.formation_id = t.formation_id
    where t.node_id = ${p('nodeId')}
    order by n.node_id`,
);

/** Every node that is not dropped, by formation, group and node id, each with the store's clock. */
const SNAPSHOT_NODES = new QueryTemplate<NodeRecord & { storeNowMs: number }>((db) =>
  db
    .selectFrom('nodes')
    .selectAll()
    .select(sql<number>`(extract(epoch from clock_timestamp()) * 1000)::float8`.as('storeNowMs'))
    .where('goalState', '!=', 'dropped')
    .orderBy('formationId')
    .orderBy('groupId')
    .orderBy('nodeId'),
);

/** Postgres connection failures and shutdown errors: the store is down. */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', '57P01', '57P02', '57P03', '08006', '08001', '08003']);

/** The store on the monitor's Postgres (see the module). */
export class PostgresStore extends PgSession implements MonitorStore {
  /** @param kysely - a handle from `openStore` (its plugins: schema `pgha`, `CamelCasePlugin`). */
  constructor(private readonly kysely: Kysely<Database>) {
    super(kysely);
  }

  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    return this.kysely.transaction().execute((trx) => work(new PgTransaction(trx)));
  }

  /** Two statements at once, the store's clock read with the nodes (the timer takes one twice a second). */
  async snapshot(only: (formationId: string) => boolean = () => true): Promise<StoreSnapshot> {
    const [formations, rows] = await Promise.all([this.formations.list(), SNAPSHOT_NODES.execute(this.kysely, {})]);
    const nowMs = rows.length > 0 ? rows.reduce((max, r) => Math.max(max, Number(r.storeNowMs)), 0) : await this.nowMs();
    const nodes = rows.filter((n) => only(n.formationId)).map(({ storeNowMs: _now, ...n }): NodeRecord => n);
    return { formations: formations.filter((f) => only(f.formationId)), nodes, nowMs };
  }

  /** One statement (a keeper's goal long-poll reads it twice a second: issue 17, idle cost). */
  async readNodeGroup(nodeId: number): Promise<NodeGroupRead> {
    const rows = await READ_NODE_GROUP.execute(this.kysely, { nodeId });
    const node = rows.find((r) => r.nodeId === nodeId);
    if (!node) throw noSuchNode(nodeId);
    if (!node.formation) throw noSuchFormation(node.formationId);
    const strip = ({ formation: _f, ...n }: NodeGroupRow): NodeRecord => n;
    return { node: strip(node), formation: node.formation, nodes: rows.filter((r) => r.goalState !== 'dropped').map(strip) };
  }

  recordHeartbeats(reports: readonly { nodeId: number; report: NodeReport }[]): Promise<ReportsRead> {
    return recordHeartbeats(this.kysely, reports);
  }

  isUnavailable(err: unknown): boolean {
    const code = (err as { code?: string }).code ?? '';
    return UNAVAILABLE_CODES.has(code) || /Connection terminated/.test(String((err as Error).message));
  }

  /** Applies every pending migration (see `migrateToLatest`); the names applied, in order. */
  migrate(): Promise<string[]> {
    return migrateToLatest(this.kysely);
  }

  async close(): Promise<void> {
    await this.kysely.destroy();
  }
}

/** Opens the Postgres store (a pool of `conn.max` connections, 10 by default). */
export function openPostgresStore(conn: StoreConnection): PostgresStore {
  return new PostgresStore(openStore(conn));
}
