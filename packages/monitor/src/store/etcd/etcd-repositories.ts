/**
 * The etcd adapter's repositories (`store-port.ts`), each on one {@link TxnAttempt}: reads at
 * the attempt's revision (recorded for its commit's compares), writes buffered until its one
 * Txn. `etcd-store.ts` gives them a transaction's attempt, or, for a call on the store itself,
 * an attempt of their own that commits when the call returns.
 *
 * Node records: a node's key holds its persisted fields (`codec.ts`); reads merge it with this
 * monitor's in-memory liveness of the node (`report-overlay.ts`); its `goalRevision` is the
 * key's mod revision (the revision of the commit that last wrote it, see `GoalRepository`).
 * Every deletion of a node also rewrites its formation's key, which every read of a
 * formation's nodes reads too: a range compare cannot see a key deleted from its range, the
 * compare of the formation key does (`etcd-transaction.ts`).
 */
import { ConflictError, type Assignment, type NodeReport, type PostgresParameter } from '@pgha/shared';
import { generateSecret } from '../../secrets.js';
import { assignmentEvents, operationKindOf } from '../event-records.js';
import { mustWriteHealth, nextHealth } from '../health-rule.js';
import { noSuchFormation, noSuchNode, noSuchNodeName } from '../not-found.js';
import {
  STREAM_START,
  groupKey,
  isHeartbeatReport,
  type EventBatch,
  type EventCursor,
  type EventRecord,
  type FormationRecord,
  type GroupRead,
  type HealthChange,
  type MergedProbes,
  type NewEvent,
  type NewNode,
  type NodeRecord,
  type OperationCounts,
  type ProbeTargetRecord,
  type RecordedReport,
  type ReportsRead,
} from '../records.js';
import type {
  EventStream,
  EventWriter,
  FormationRepository,
  GoalRepository,
  NodeCredentialRepository,
  NodeRepository,
  ProbeRepository,
  SettingsRepository,
} from '../store-port.js';
import { EVENT_ID_FACTOR, decodeEvent, decodeFormation, decodeNode, encodeEvent, encodeFormation, encodeNode } from './codec.js';
import { rangeAll, type AttemptMirror, type Kv, type TxnAttempt } from './etcd-transaction.js';
import { groupLockKey, type KeyedLocks } from './keyed-locks.js';
import { prefixEnd, type StoreKeys } from './keys.js';
import type { NodeIdBlocks } from './node-ids.js';
import { LSN_WRITE_INTERVAL_MS, applyReport, type ReportOverlay } from './report-overlay.js';
import { formationSettings, freshWithinMs } from '../group-facts.js';

/**
 * Events kept per formation: appending beyond this deletes the formation's oldest events in the
 * same Txn (docs/monitor-ha.md, "Event history"). pg_auto_failover keeps every event; on etcd
 * the whole store lives in memory and under a size quota (2 GiB by default), so the history is
 * bounded: 10,000 events of about 400 bytes each are 4 MB per formation, weeks of a busy one.
 */
export const EVENT_RETENTION_PER_FORMATION = 10_000;

/** Appends by this monitor to a formation after which its event count is read from etcd again. */
export const EVENT_RECOUNT_EVERY = 1000;

/** What the repositories of one monitor's store share, beyond one attempt. */
export interface EtcdShared {
  readonly keys: StoreKeys;
  /** Keepers' liveness in this monitor's memory. */
  readonly overlay: ReportOverlay;
  /** This monitor's in-process group and formation locks. */
  readonly locks: KeyedLocks;
  /** The node ids this monitor gives to registrations (`node-ids.ts`). */
  readonly nodeIds: NodeIdBlocks;
  /** Where each node id lives (a node never moves to another formation; ids are never reused). */
  readonly nodeFormations: Map<number, string>;
  /** The group of each node id seen by a report (a node never changes group). */
  readonly nodeGroups: Map<number, number>;
  /** Events kept per formation ({@link EVENT_RETENTION_PER_FORMATION} unless a test says otherwise). */
  readonly eventRetention: number;
  /**
   * Each formation's event count as this monitor estimates it: read from etcd, then followed by
   * its own commits (`appendedSince` counts them since the read). Other monitors' appends are
   * not seen until the next read, so the retention may be passed by what they append meanwhile.
   */
  readonly eventCounts: Map<string, { count: number; appendedSince: number }>;
  /** How long a node's moving LSN goes unwritten (ms; `LSN_WRITE_INTERVAL_MS` unless a test says otherwise). */
  readonly lsnWriteIntervalMs: number;
  /** This monitor's clock (ms since the epoch): the store's clock on etcd. */
  now(): number;
  /**
   * Added to a node key's mod revision to make its goal revision (`<p>/v1/meta.goalRevisionBase`,
   * 0 unless raised; see {@link EtcdShared.raiseRevisionBase}).
   */
  readonly revisionBase: { value: bigint };
  /**
   * Raises the store's goal revision base to at least `target` (one Txn on `<p>/v1/meta`), so
   * that every node's goal revision is above what a keeper applied from an earlier history of the
   * store (restored from a snapshot) or from another store (moved from a monitor on Postgres).
   */
  raiseRevisionBase(target: bigint): Promise<void>;
  /**
   * A node's moving LSN is due to be written ({@link LSN_WRITE_INTERVAL_MS}) while nothing else
   * changed: the store writes it within about a second, with the others due, in one Txn of its
   * own (`EtcdStore`), so that the report's batch has nothing to commit.
   */
  lsnDue(nodeId: number): void;
  /** Wakes this monitor's goal waiters of these nodes (after a commit). */
  wakeGoals(nodeIds: readonly number[]): void;
  /** Wakes this monitor's event waiters of these formations (after a commit). */
  wakeEvents(formationIds: readonly string[]): void;
}

/** One attempt and what its repositories share. */
export interface EtcdContext {
  readonly attempt: TxnAttempt;
  readonly shared: EtcdShared;
}

/**
 * A node key's value as a record: its goal revision is the key's mod revision plus the store's
 * revision base (its own write: the value's).
 *
 * Decoded once per version of the key and shared by every read of that version, frozen: a
 * report reads its formation's nodes, and at thousands of reports a second a copy per read was
 * a tenth of the monitor's store work (docs/monitor-capacity.md). A caller that changes a node
 * builds a new record (`{ ...node, goalState }`), as every write does; an assignment to a
 * shared record throws a TypeError.
 */
export function nodeOf(kv: Kv & { own?: boolean }, revisionBase: bigint): NodeRecord {
  if (kv.own) return decodeNode(kv.value);
  let node = decoded.get(kv);
  if (!node || node.base !== revisionBase) {
    decoded.set(kv, (node = { record: Object.freeze({ ...decodeNode(kv.value), goalRevision: String(revisionBase + BigInt(kv.modRevision)) }), base: revisionBase }));
  }
  return node.record;
}

/**
 * A formation key's value as its record and creation time (decoded once per change of the key,
 * as {@link nodeOf}); the record is a copy.
 */
export function formationOfKv(kv: Kv): { record: FormationRecord; createdAtMs: number } {
  let f = decodedFormations.get(kv);
  if (!f) decodedFormations.set(kv, (f = { record: decodeFormation(kv.value), createdAtMs: (JSON.parse(kv.value) as { createdAtMs?: number }).createdAtMs ?? 0 }));
  return { record: { ...f.record }, createdAtMs: f.createdAtMs };
}

const decodedFormations = new WeakMap<Kv, { record: FormationRecord; createdAtMs: number }>();

/**
 * The formations read under `<p>/v1/formations/` that `only` keeps, decoded (see
 * {@link formationOfKv}), and the nodes of each read from its own prefix, by key.
 */
export async function formationsAndNodes(ctx: EtcdContext, only: (formationId: string) => boolean): Promise<{ formations: FormationRecord[]; nodes: Kv[] }> {
  const { attempt, shared } = ctx;
  const formations = (await attempt.range(shared.keys.formations, { record: false }))
    .filter((kv) => only(shared.keys.parseFormation(kv.key) ?? ''))
    .map((kv) => formationOfKv(kv).record);
  const nodes = (await Promise.all(formations.map((f) => attempt.range(shared.keys.nodes(f.formationId), { record: false })))).flat();
  return { formations, nodes };
}

/**
 * Node values decoded, by the read that holds them: the mirror (`store-mirror.ts`) keeps one
 * object per key until the key changes, so a node is decoded once per change, not once per read.
 * Each read gets a copy: the decoded record is never handed out.
 */
const decoded = new WeakMap<Kv, { record: NodeRecord; base: bigint }>();

/**
 * The formation a node id lives in (cached: it never changes), or undefined when the id was
 * never given. `outside`: read at the current revision, without pinning the attempt's (for a
 * lookup before its locks are taken). Inside an attempt its own write comes first: a
 * registration that gave an id from an older snapshot must see its own node, not the one
 * another registration committed with that id meanwhile (its commit then conflicts, and it
 * runs again with the next id).
 */
async function formationOfNode(ctx: EtcdContext, nodeId: number, outside = false): Promise<string | undefined> {
  const key = ctx.shared.keys.nodeFormation(nodeId);
  const own = outside ? undefined : ctx.attempt.ownWrite(key);
  if (own !== undefined) return own ?? undefined;
  const cached = ctx.shared.nodeFormations.get(nodeId);
  if (cached !== undefined) return cached;
  const value = outside ? (await ctx.attempt.client.kv.range({ key: Buffer.from(key) })).kvs[0]?.value.toString() : (await ctx.attempt.get(key, { record: false }))?.value;
  if (value === undefined) return undefined;
  ctx.shared.nodeFormations.set(nodeId, value);
  return value;
}

/**
 * Where a node is (formation and group), read at the current revision without pinning the
 * attempt's: what a transaction needs to know before it takes the node's group lock and reads.
 */
async function locateNode(ctx: EtcdContext, nodeId: number): Promise<{ formationId: string; groupId: number } | undefined> {
  if (!Number.isSafeInteger(nodeId) || nodeId <= 0) return undefined;
  const formationId = await formationOfNode(ctx, nodeId, true);
  if (formationId === undefined) return undefined;
  const cached = ctx.shared.nodeGroups.get(nodeId);
  if (cached !== undefined) return { formationId, groupId: cached };
  const kv = (await ctx.attempt.client.kv.range({ key: Buffer.from(ctx.shared.keys.node(formationId, nodeId)) })).kvs[0];
  if (!kv) return undefined;
  const { groupId } = decodeNode(kv.value.toString());
  ctx.shared.nodeGroups.set(nodeId, groupId);
  return { formationId, groupId };
}

/** A node as stored (not merged with the overlay), or undefined. */
export async function storedNode(ctx: EtcdContext, nodeId: number): Promise<NodeRecord | undefined> {
  if (!Number.isSafeInteger(nodeId) || nodeId <= 0) return undefined;
  const formationId = await formationOfNode(ctx, nodeId);
  if (formationId === undefined) return undefined;
  const kv = await ctx.attempt.get(ctx.shared.keys.node(formationId, nodeId));
  return kv ? nodeOf(kv, ctx.shared.revisionBase.value) : undefined;
}

/**
 * The nodes of a formation as stored, by node id (its formation key read too, see the module);
 * dropped ones included.
 */
export async function storedNodes(ctx: EtcdContext, formationId: string): Promise<NodeRecord[]> {
  const { keys } = ctx.shared;
  await ctx.attempt.get(keys.formation(formationId));
  return (await ctx.attempt.range(keys.nodes(formationId))).map((kv) => nodeOf(kv, ctx.shared.revisionBase.value));
}

/**
 * The keys that find a node, with their values: its name in its formation, its host:port in the
 * store, and its formation by node id (the one definition, for a registration and for a copy of
 * a store, `store-import.ts`).
 */
export function nodeIndexEntries(keys: StoreKeys, node: Pick<NodeRecord, 'nodeId' | 'formationId' | 'name' | 'host' | 'port'>): [key: string, value: string][] {
  return [
    [keys.nodeName(node.formationId, node.name), String(node.nodeId)],
    [keys.nodeAddress(node.host, node.port), String(node.nodeId)],
    [keys.nodeFormation(node.nodeId), node.formationId],
  ];
}

/**
 * Buffers a node's write; the record's `goalRevision` becomes the commit's revision once it
 * commits (on a copy when `record` is a shared one, see {@link nodeOf}).
 */
export function writeNode(ctx: EtcdContext, record: NodeRecord): NodeRecord {
  const node = Object.isFrozen(record) ? { ...record } : record;
  ctx.attempt.put(ctx.shared.keys.node(node.formationId, node.nodeId), encodeNode(node));
  ctx.attempt.onCommit((revision) => (node.goalRevision = String(ctx.shared.revisionBase.value + BigInt(revision))));
  return node;
}

/** A formation as read in the attempt, or undefined. */
async function readFormation(ctx: EtcdContext, formationId: string): Promise<{ record: FormationRecord; createdAtMs: number } | undefined> {
  const kv = await ctx.attempt.get(ctx.shared.keys.formation(formationId));
  if (!kv) return undefined;
  return formationOfKv(kv);
}

/** Rewrites a formation's key (its record, or a new one): see the module for why a node's deletion does. */
async function writeFormation(ctx: EtcdContext, formationId: string, change: (f: FormationRecord) => FormationRecord = (f) => f): Promise<void> {
  const read = await readFormation(ctx, formationId);
  if (!read) throw noSuchFormation(formationId);
  ctx.attempt.put(ctx.shared.keys.formation(formationId), encodeFormation(change(read.record), read.createdAtMs));
}

/** Buffers the deletion of a node and every key that points at it (names, address, credentials). */
async function deleteNode(ctx: EtcdContext, node: NodeRecord): Promise<void> {
  const { keys } = ctx.shared;
  const f = node.formationId;
  ctx.attempt.delete(keys.node(f, node.nodeId));
  ctx.attempt.delete(keys.nodeName(f, node.name), f);
  const address = await ctx.attempt.get(keys.nodeAddress(node.host, node.port));
  if (address?.value === String(node.nodeId)) ctx.attempt.delete(keys.nodeAddress(node.host, node.port), f);
  ctx.attempt.delete(keys.nodeFormation(node.nodeId), f);
  const digest = await ctx.attempt.get(keys.nodeCredential(node.nodeId));
  if (digest) ctx.attempt.delete(keys.credential(digest.value), f);
  ctx.attempt.delete(keys.nodeCredential(node.nodeId), f);
  ctx.attempt.onCommit(() => {
    ctx.shared.overlay.forget(node.nodeId);
    ctx.shared.nodeFormations.delete(node.nodeId);
    ctx.shared.nodeGroups.delete(node.nodeId);
  });
}

/** See {@link FormationRepository}. */
export class EtcdFormationRepository implements FormationRepository {
  constructor(private readonly ctx: EtcdContext) {}

  async get(formationId: string): Promise<FormationRecord> {
    const read = await readFormation(this.ctx, formationId);
    if (!read) throw noSuchFormation(formationId);
    return read.record;
  }

  async list(): Promise<FormationRecord[]> {
    return (await this.ctx.attempt.range(this.ctx.shared.keys.formations, { record: false })).map((kv) => formationOfKv(kv).record);
  }

  /** Written without the fence (`TxnAttempt.createsFormation`): a formation has no leader before it exists. */
  async create(formationId: string, numberSyncStandbys = 0): Promise<FormationRecord | undefined> {
    if (await readFormation(this.ctx, formationId)) return undefined;
    const record: FormationRecord = { formationId, kind: 'pgsql', dbname: 'postgres', numberSyncStandbys, settings: {}, clientNetworks: [], replicationPassword: generateSecret(), monitorProbePassword: generateSecret(), postgresParameters: [] };
    this.ctx.attempt.createsFormation(formationId);
    this.ctx.attempt.put(this.ctx.shared.keys.formation(formationId), encodeFormation(record, this.ctx.shared.now()));
    return record;
  }

  /** Deletes the formation's key and every node of it, with what points at them; its events stay (as on Postgres). */
  async delete(formationId: string): Promise<void> {
    for (const node of await storedNodes(this.ctx, formationId)) await deleteNode(this.ctx, node);
    this.ctx.attempt.delete(this.ctx.shared.keys.formation(formationId));
  }
}

/** See {@link NodeRepository}. Reads merge each stored node with this monitor's overlay. */
export class EtcdNodeRepository implements NodeRepository {
  constructor(private readonly ctx: EtcdContext) {}

  private merge(node: NodeRecord): NodeRecord {
    return this.ctx.shared.overlay.merge(node);
  }

  async get(nodeId: number): Promise<NodeRecord> {
    const node = await storedNode(this.ctx, nodeId);
    if (!node) throw noSuchNode(nodeId);
    return this.merge(node);
  }

  async getByName(formationId: string, name: string): Promise<NodeRecord> {
    const id = await this.ctx.attempt.get(this.ctx.shared.keys.nodeName(formationId, name));
    const node = id ? await storedNode(this.ctx, Number(id.value)) : undefined;
    if (!node || node.goalState === 'dropped') throw noSuchNodeName(formationId, name);
    return this.merge(node);
  }

  async list(formationId: string, options: { groupId?: number; includeDropped?: boolean } = {}): Promise<NodeRecord[]> {
    return (await storedNodes(this.ctx, formationId))
      .filter((n) => (options.includeDropped || n.goalState !== 'dropped') && (options.groupId === undefined || n.groupId === options.groupId))
      .map((n) => this.merge(n));
  }

  /** Not compared at commit: for views, never for a decision. */
  async listAll(): Promise<NodeRecord[]> {
    const nodes = (await this.ctx.attempt.range(this.ctx.shared.keys.allNodes, { record: false })).map((kv) => nodeOf(kv, this.ctx.shared.revisionBase.value));
    return nodes.sort((a, b) => a.nodeId - b.nodeId).map((n) => this.merge(n));
  }

  async groupIds(formationId: string): Promise<number[]> {
    const ids = new Set((await this.list(formationId)).map((n) => n.groupId));
    return [...ids].sort((a, b) => a - b);
  }

  async findByAddress(host: string, port: number): Promise<NodeRecord | undefined> {
    const id = await this.ctx.attempt.get(this.ctx.shared.keys.nodeAddress(host, port));
    const node = id ? await storedNode(this.ctx, Number(id.value)) : undefined;
    return node && this.merge(node);
  }

  /**
   * The node id from `<p>/v1/node-id-seq`; the name and host:port keys must be absent (their
   * compares make a registration that raced to them conflict at commit, and the next attempt
   * refuses it here).
   */
  async insert(formationId: string, node: NewNode): Promise<NodeRecord> {
    const { keys } = this.ctx.shared;
    if (await this.ctx.attempt.get(keys.nodeName(formationId, node.name))) {
      throw new ConflictError(`node name "${node.name}" is already taken in formation "${formationId}"`, { hint: 'choose another --name' });
    }
    if (await this.ctx.attempt.get(keys.nodeAddress(node.host, node.port))) {
      throw new ConflictError(`${node.host}:${node.port} is already registered`, { hint: 'choose another --pg-port or --hostname' });
    }
    if (!(await readFormation(this.ctx, formationId))) throw noSuchFormation(formationId);
    const nodeId = await this.ctx.shared.nodeIds.take();
    const now = new Date(this.ctx.shared.now());
    const record: NodeRecord = {
      nodeId,
      formationId,
      groupId: 0,
      ...node,
      reportedState: 'init',
      goalState: 'init',
      reportedAt: null,
      postgresRunning: false,
      isInRecovery: null,
      reportedLsn: '0/0',
      reportedTimeline: 0,
      upstreamStreaming: false,
      lastStreamingAt: null,
      transitionInProgress: null,
      transitionProgress: null,
      health: 'unknown',
      healthFailures: 0,
      healthCheckedAt: null,
      probeInRecovery: null,
      goalChangedAt: now,
      goalRevision: '0',
      createdAt: now,
      reportedSyncStandbyNames: null,
      shutdownCheckpointLsn: null,
      destroyRequested: false,
      reportedProblem: null,
      lastSelfFenceAt: null,
      postgresParameters: [],
      reportedParameters: null,
      restartRequest: 0,
      restartRequestedAt: null,
      restartDone: 0,
    };
    for (const [key, value] of nodeIndexEntries(keys, record)) this.ctx.attempt.put(key, value, formationId);
    this.ctx.attempt.onCommit(() => this.ctx.shared.nodeFormations.set(nodeId, formationId));
    return writeNode(this.ctx, record);
  }

  async update(nodeId: number, patch: Partial<Pick<NodeRecord, 'postgresSsl' | 'httpAddress' | 'destroyRequested' | 'restartRequest' | 'restartRequestedAt'>>): Promise<NodeRecord> {
    const node = await storedNode(this.ctx, nodeId);
    if (!node) throw noSuchNode(nodeId);
    return this.merge(writeNode(this.ctx, { ...node, ...patch }));
  }

  async remove(nodeId: number): Promise<void> {
    const node = await storedNode(this.ctx, nodeId);
    if (!node) return;
    await deleteNode(this.ctx, node);
    await writeFormation(this.ctx, node.formationId);
  }
}

/**
 * See {@link GoalRepository}. The revision answered is the attempt's read revision plus one:
 * larger than the node key's mod revision read (its goal's revision so far), and not larger
 * than the commit's, since the commit compares that nothing wrote the key since.
 */
export class EtcdGoalRepository implements GoalRepository {
  constructor(private readonly ctx: EtcdContext, private readonly events: EventWriter) {}

  async assign(_group: { formationId: string; groupId: number }, nodes: readonly NodeRecord[], assignments: readonly Assignment[]): Promise<ReadonlyMap<number, string>> {
    const events = assignmentEvents(nodes, assignments);
    if (events.length === 0) return new Map();
    const goals = new Map<number, NewEvent['newGoalState']>();
    for (const e of events) goals.set(e.nodeId, e.newGoalState);
    const revision = String(this.ctx.shared.revisionBase.value + BigInt(await this.ctx.attempt.revision()) + 1n);
    const now = new Date(this.ctx.shared.now());
    const answered = new Map<number, string>();
    for (const [nodeId, goalState] of goals) {
      // The stored record, not the merged one: liveness stays in memory, a grace period's
      // report time is never written.
      const stored = await storedNode(this.ctx, nodeId);
      if (!stored) continue;
      writeNode(this.ctx, { ...stored, goalState: goalState as NodeRecord['goalState'], goalChangedAt: now });
      answered.set(nodeId, revision);
    }
    await this.events.append(events);
    await this.notify([...answered.keys()]);
    return answered;
  }

  /** Wakes this monitor's waiters at commit; other monitors' wake from their watch of the node keys. */
  async notify(nodeIds: readonly number[]): Promise<void> {
    if (nodeIds.length > 0) this.ctx.attempt.onCommit(() => this.ctx.shared.wakeGoals(nodeIds));
  }
}

/** See {@link SettingsRepository}. */
export class EtcdSettingsRepository implements SettingsRepository {
  constructor(private readonly ctx: EtcdContext) {}

  async setNumberSyncStandbys(formationId: string, value: number): Promise<void> {
    await writeFormation(this.ctx, formationId, (f) => ({ ...f, numberSyncStandbys: value }));
  }

  async setTimings(formationId: string, settings: FormationRecord['settings']): Promise<void> {
    await writeFormation(this.ctx, formationId, (f) => ({ ...f, settings: { ...settings } }));
  }

  async setClientNetworks(formationId: string, networks: readonly string[]): Promise<void> {
    await writeFormation(this.ctx, formationId, (f) => ({ ...f, clientNetworks: [...networks] }));
  }

  async setNodeReplication(nodeId: number, settings: Pick<NodeRecord, 'candidatePriority' | 'replicationQuorum'>): Promise<void> {
    const node = await storedNode(this.ctx, nodeId);
    if (!node) throw noSuchNode(nodeId);
    writeNode(this.ctx, { ...node, candidatePriority: settings.candidatePriority, replicationQuorum: settings.replicationQuorum });
  }

  async setPostgresParameters(formationId: string, parameters: readonly PostgresParameter[]): Promise<void> {
    await writeFormation(this.ctx, formationId, (f) => ({ ...f, postgresParameters: parameters.map((p) => ({ ...p })) }));
  }

  async setNodePostgresParameters(nodeId: number, parameters: readonly PostgresParameter[]): Promise<void> {
    const node = await storedNode(this.ctx, nodeId);
    if (!node) throw noSuchNode(nodeId);
    writeNode(this.ctx, { ...node, postgresParameters: parameters.map((p) => ({ ...p })) });
  }
}

/**
 * See {@link EventWriter}. Each event is a key of its own, `<p>/v1/events/<f>/<attempt uuid>/<index>`,
 * put in the attempt's Txn: its id is that Txn's revision × 10,000 + its index, so ids follow
 * commit order across the store. Beyond {@link EtcdShared.eventRetention} events in a
 * formation, its oldest are deleted in the same Txn.
 */
export class EtcdEventWriter implements EventWriter {
  /** Events appended per formation in this attempt. */
  private readonly appended = new Map<string, number>();
  /** Events this attempt deletes per formation (beyond the retention). */
  private readonly dropped = new Map<string, number>();

  constructor(private readonly ctx: EtcdContext) {}

  async append(events: readonly NewEvent[]): Promise<void> {
    if (events.length === 0) return;
    const { attempt, shared } = this.ctx;
    if (attempt.eventCount + events.length >= Number(EVENT_ID_FACTOR)) {
      throw new Error(`a transaction of the etcd store writes at most ${Number(EVENT_ID_FACTOR) - 1} events`);
    }
    const now = shared.now();
    const formations = new Set<string>();
    for (const e of events) {
      attempt.put(shared.keys.event(e.formationId, attempt.id, attempt.eventCount++), encodeEvent(e, now));
      formations.add(e.formationId);
      if (!this.appended.has(e.formationId)) attempt.onCommit(() => this.counted(e.formationId));
      this.appended.set(e.formationId, (this.appended.get(e.formationId) ?? 0) + 1);
    }
    for (const f of formations) await this.dropOldest(f);
    attempt.onCommit(() => shared.wakeEvents([...formations]));
  }

  /** This attempt committed: the formation's estimated event count follows (see {@link EtcdShared.eventCounts}). */
  private counted(formationId: string): void {
    const estimate = this.ctx.shared.eventCounts.get(formationId);
    if (!estimate) return;
    const appended = this.appended.get(formationId) ?? 0;
    estimate.count += appended - (this.dropped.get(formationId) ?? 0);
    estimate.appendedSince += appended;
  }

  /**
   * Deletes the formation's oldest events beyond the retention, counting this attempt's. The
   * count is read from etcd (a range count, linear in the formation's events) only when this
   * monitor's estimate nears the retention, or every {@link EVENT_RECOUNT_EVERY} appends.
   */
  private async dropOldest(formationId: string): Promise<void> {
    const { attempt, shared } = this.ctx;
    const adding = this.appended.get(formationId) ?? 0;
    const estimate = shared.eventCounts.get(formationId);
    if (estimate && estimate.count + adding < shared.eventRetention && estimate.appendedSince + adding < EVENT_RECOUNT_EVERY) return;
    const prefix = shared.keys.events(formationId);
    const revision = await attempt.revision();
    const { count } = await attempt.client.kv.range({ key: Buffer.from(prefix), range_end: Buffer.from(prefixEnd(prefix)), count_only: true, revision });
    shared.eventCounts.set(formationId, { count: Number(count), appendedSince: 0 });
    const excess = Number(count) + adding - shared.eventRetention;
    if (excess <= 0) return;
    this.dropped.set(formationId, excess);
    const oldest = await attempt.client.kv.range({
      key: Buffer.from(prefix),
      range_end: Buffer.from(prefixEnd(prefix)),
      revision,
      keys_only: true,
      sort_target: 'Mod',
      sort_order: 'Ascend',
      limit: excess,
    });
    for (const kv of oldest.kvs) attempt.delete(kv.key.toString());
  }
}

/** An event cursor of this adapter: the last event id read (decimal), {@link STREAM_START} for none. */
function cursorId(cursor: EventCursor): bigint {
  if (cursor === STREAM_START) return 0n;
  if (!/^[0-9]+$/.test(cursor)) throw new Error(`not an event cursor of the etcd store: "${cursor}"`);
  return BigInt(cursor);
}

/** Events of `kvs` (event keys) as records, in stream order (id order). */
function eventsOf(keys: StoreKeys, kvs: readonly Kv[]): EventRecord[] {
  const events: EventRecord[] = [];
  for (const kv of kvs) {
    const parsed = keys.parseEvent(kv.key);
    if (parsed) events.push(decodeEvent(kv.value, kv.modRevision, parsed.index));
  }
  return events.sort((a, b) => (BigInt(a.eventId) < BigInt(b.eventId) ? -1 : 1));
}

/**
 * See {@link EventStream}. Committed Txns are visible whole and in revision order, so nothing is
 * ever held back: the stream is the formation's event keys in id order, read from a cursor's
 * revision on (`min_mod_revision`, which etcd applies before answering). A cursor is the id of
 * the last event read.
 */
export class EtcdEventStream implements EventStream {
  constructor(private readonly ctx: EtcdContext) {}

  /** The formation's events from revision `minModRevision` on (all: undefined), at the current revision, in id order. */
  private async read(prefix: string, minModRevision?: bigint): Promise<EventRecord[]> {
    const { client } = this.ctx.attempt;
    const { kvs } = await rangeAll(client, prefix, prefixEnd(prefix), undefined, minModRevision && minModRevision > 0n ? { minModRevision: String(minModRevision) } : {});
    return eventsOf(this.ctx.shared.keys, kvs);
  }

  async latest(formationId: string, count: number): Promise<EventRecord[]> {
    if (count <= 0) return [];
    const prefix = this.ctx.shared.keys.events(formationId);
    // The newest `count` keys by revision tell from which revision to read; that revision's
    // Txn may hold more of them, which the read sorts by index.
    const newest = await this.ctx.attempt.client.kv.range({ key: Buffer.from(prefix), range_end: Buffer.from(prefixEnd(prefix)), keys_only: true, sort_target: 'Mod', sort_order: 'Descend', limit: count });
    if (newest.kvs.length === 0) return [];
    const from = newest.kvs.reduce((min, kv) => (BigInt(kv.mod_revision) < min ? BigInt(kv.mod_revision) : min), BigInt(newest.kvs[0]!.mod_revision));
    return (await this.read(prefix, from)).slice(-count);
  }

  async lastOfRule(formationId: string, groupId: number, rule: string): Promise<EventRecord | undefined> {
    const events = await this.read(this.ctx.shared.keys.events(formationId));
    return events.filter((e) => e.groupId === groupId && e.rule === rule).pop();
  }

  async readAfter(formationId: string, after: EventCursor, limit: number): Promise<EventBatch> {
    const afterId = cursorId(after);
    const events = (await this.read(this.ctx.shared.keys.events(formationId), afterId / EVENT_ID_FACTOR)).filter((e) => BigInt(e.eventId) > afterId).slice(0, limit);
    const last = events[events.length - 1];
    return { events, cursor: last ? (last.eventId as EventCursor) : after, heldBack: false };
  }

  async readLast(formationId: string, count: number): Promise<EventBatch> {
    const events = await this.latest(formationId, Math.max(1, count));
    const last = events[events.length - 1];
    return { events: count > 0 ? events : [], cursor: last ? (last.eventId as EventCursor) : STREAM_START, heldBack: false };
  }

  /** The id itself: a cursor is a position, so after a gone id it is after the nearest event before it. */
  async cursorAfterEvent(eventId: bigint): Promise<EventCursor> {
    return eventId <= 0n ? STREAM_START : (String(eventId) as EventCursor);
  }

  async countOperationsAfter(after: EventCursor): Promise<OperationCounts> {
    const afterId = cursorId(after);
    const events = (await this.read(this.ctx.shared.keys.allEvents, afterId / EVENT_ID_FACTOR)).filter((e) => BigInt(e.eventId) > afterId);
    const counts = new Map<string, { formationId: string; kind: 'failover' | 'switchover'; n: number }>();
    for (const e of events) {
      const kind = operationKindOf(e);
      if (!kind) continue;
      const key = `${e.formationId}\u0000${kind}`;
      const c = counts.get(key) ?? { formationId: e.formationId, kind, n: 0 };
      c.n++;
      counts.set(key, c);
    }
    const last = events[events.length - 1];
    return { counts: [...counts.values()], cursor: last ? (last.eventId as EventCursor) : after };
  }
}

/**
 * See {@link ProbeRepository}. A node's key is written when the health rule changes its probe
 * state; a probe that changes nothing only refreshes `healthCheckedAt` in this monitor's
 * overlay (`mustWriteHealth`'s periodic refresh is not an etcd write). A node whose group this
 * monitor is deciding on (its lock held or waited for) is skipped, never waited for.
 */
export class EtcdProbeRepository implements ProbeRepository {
  constructor(private readonly ctx: EtcdContext) {}

  async targets(only: (formationId: string) => boolean = () => true): Promise<ProbeTargetRecord[]> {
    const { attempt, shared } = this.ctx;
    const read = await formationsAndNodes(this.ctx, only);
    const formations = new Map(read.formations.map((f) => [f.formationId, f]));
    const nodes = read.nodes.map((kv) => nodeOf(kv, shared.revisionBase.value));
    const now = shared.now();
    const targets: ProbeTargetRecord[] = [];
    for (const n of nodes) {
      const f = formations.get(n.formationId);
      if (!f || n.goalState === 'dropped') continue;
      // The overlay changes no field read here but the report and probe times (a merged copy per node per round was most of this read).
      const reportedAtMs = shared.overlay.reportedAtMs(n);
      const checkedAtMs = shared.overlay.checkedAtMs(n);
      targets.push({
        nodeId: n.nodeId,
        formationId: n.formationId,
        groupId: n.groupId,
        name: n.name,
        host: n.host,
        port: n.port,
        health: n.health,
        healthFailures: n.healthFailures,
        probeInRecovery: n.probeInRecovery,
        reportedState: n.reportedState,
        postgresSsl: n.postgresSsl,
        monitorProbePassword: f.monitorProbePassword,
        settings: f.settings,
        sinceReportMs: reportedAtMs === null ? null : now - reportedAtMs,
        checkedAgoMs: checkedAtMs === null ? null : now - checkedAtMs,
      });
    }
    return targets;
  }

  async record(results: readonly MergedProbes[]): Promise<{ changed: HealthChange[]; skipped: number[] }> {
    const { shared } = this.ctx;
    const changed: HealthChange[] = [];
    const skipped: number[] = [];
    const probed: number[] = [];
    const now = shared.now();
    for (const r of results) {
      const stored = await storedNode(this.ctx, r.nodeId);
      if (!stored) continue;
      if (shared.locks.isLocked(groupLockKey(stored.formationId, stored.groupId))) {
        skipped.push(r.nodeId);
        continue;
      }
      const node = shared.overlay.merge(stored);
      const next = nextHealth(node, r);
      const checkedAgoMs = node.healthCheckedAt ? now - node.healthCheckedAt.getTime() : null;
      if (!mustWriteHealth(node, next, checkedAgoMs)) continue;
      const same = next.health === node.health && next.healthFailures === node.healthFailures && next.probeInRecovery === node.probeInRecovery;
      if (same && node.healthCheckedAt !== null) {
        probed.push(r.nodeId);
        continue;
      }
      writeNode(this.ctx, { ...stored, ...next, healthCheckedAt: new Date(now) });
      if (next.health !== stored.health) changed.push({ nodeId: stored.nodeId, formationId: stored.formationId, groupId: stored.groupId, name: stored.name, health: next.health });
    }
    this.ctx.attempt.onCommit(() => {
      for (const id of probed) shared.overlay.probed(id, now);
    });
    return { changed, skipped };
  }
}

/** See {@link NodeCredentialRepository}: `<p>/v1/credentials/<digest>` → node id, and back. */
export class EtcdCredentialRepository implements NodeCredentialRepository {
  constructor(private readonly ctx: EtcdContext) {}

  async ownerOf(digest: string): Promise<number | undefined> {
    const kv = await this.ctx.attempt.get(this.ctx.shared.keys.credential(digest), { record: false });
    return kv ? Number(kv.value) : undefined;
  }

  /** Written under the node's formation, so fenced as its other writes. */
  async issue(nodeId: number, digest: string): Promise<void> {
    const { attempt, shared } = this.ctx;
    const formationId = await formationOfNode(this.ctx, nodeId);
    if (formationId === undefined) throw noSuchNode(nodeId);
    const old = await attempt.get(shared.keys.nodeCredential(nodeId));
    if (old && old.value !== digest) attempt.delete(shared.keys.credential(old.value), formationId);
    attempt.put(shared.keys.credential(digest), String(nodeId), formationId);
    attempt.put(shared.keys.nodeCredential(nodeId), digest, formationId);
  }

  /** Not compared at commit: read for a copy of the store, never for a decision. */
  async list(): Promise<{ nodeId: number; digest: string }[]> {
    const { attempt, shared } = this.ctx;
    const kvs = await attempt.range(shared.keys.nodeCredentials, { record: false });
    return kvs.map((kv) => ({ nodeId: Number(kv.key.slice(shared.keys.nodeCredentials.length)), digest: kv.value })).sort((a, b) => a.nodeId - b.nodeId);
  }
}

/**
 * `StoreTransaction.recordReports` (see the port): the reporting nodes' groups locked in
 * (formation, group) order (in this process; other monitors conflict at commit), read, each
 * report applied by `applyReport`: a node's key is written only when a persisted fact changed;
 * a moving LSN last written {@link LSN_WRITE_INTERVAL_MS} ago is handed to the store's own LSN
 * batch ({@link EtcdShared.lsnDue}); every report updates the overlay once the attempt commits.
 */
export async function recordReportsOn(ctx: EtcdContext, lockGroup: (formationId: string, groupId: number) => Promise<void>, reports: readonly { nodeId: number; report: NodeReport }[]): Promise<ReportsRead> {
  const { shared } = ctx;
  const now = shared.now();
  const byNode = new Map<number, { node: { formationId: string; groupId: number; nodeId: number }; report: NodeReport }>();
  // Every report's node at once: one round trip to etcd for the batch, not one per report.
  const located = await Promise.all(reports.map(({ nodeId }) => locateNode(ctx, nodeId)));
  for (const [i, { nodeId, report }] of reports.entries()) {
    const where = located[i];
    if (where) byNode.set(nodeId, { node: { formationId: where.formationId, groupId: where.groupId, nodeId }, report });
  }
  const groupOrder = [...new Map([...byNode.values()].map(({ node }) => [groupKey(node.formationId, node.groupId), node])).values()];
  groupOrder.sort((a, b) => (a.formationId < b.formationId ? -1 : a.formationId > b.formationId ? 1 : a.groupId - b.groupId));
  for (const g of groupOrder) await lockGroup(g.formationId, g.groupId);
  // Each formation's key and nodes at once, at the attempt's revision (the loop below then
  // reads them from the attempt's cache): one round trip for the batch, not two per report.
  // Read after the locks: the group's nodes and formation at the attempt's revision. Each node
  // is written at most once below (one report per node), after its own read, so the formation's
  // nodes as read here stay what each report needs.
  const read = new Map(
    await Promise.all([...new Set(groupOrder.map((g) => g.formationId))].map(async (f) => [f, await Promise.all([readFormation(ctx, f), storedNodes(ctx, f)])] as const)),
  );
  const inputs = new Map<number, RecordedReport>();
  const groups = new Map<string, GroupRead>();
  const groupNodes = new Map<string, Map<number, NodeRecord>>();
  for (const { node: before, report } of byNode.values()) {
    const [formation, nodes] = read.get(before.formationId)!;
    const stored = nodes.find((n) => n.nodeId === before.nodeId);
    if (!formation || !stored) continue;
    const prior = { reportedProblem: stored.reportedProblem, lastSelfFenceAt: stored.lastSelfFenceAt };
    if (stored.goalState === 'dropped' && report.reportedState === 'dropped') {
      inputs.set(stored.nodeId, { node: shared.overlay.merge(stored), recorded: false, before: prior });
      continue;
    }
    const freshMs = freshWithinMs(formationSettings(formation.record));
    const applied = applyReport(stored, shared.overlay.get(stored.nodeId), report, now, Math.random() * shared.lsnWriteIntervalMs, shared.overlay.graceFrom(stored.formationId), freshMs, shared.lsnWriteIntervalMs);
    if (applied.write && !applied.lsnOnly) writeNode(ctx, applied.node);
    ctx.attempt.onCommit(() => {
      shared.overlay.set(stored.nodeId, applied.live);
      if (applied.lsnOnly) shared.lsnDue(stored.nodeId);
    });
    inputs.set(stored.nodeId, { node: applied.node, recorded: true, before: prior, factsChanged: applied.factsChanged });
    const key = groupKey(stored.formationId, stored.groupId);
    let members = groupNodes.get(key);
    if (!members) {
      members = new Map(nodes.filter((n) => n.groupId === stored.groupId && n.goalState !== 'dropped').map((n) => [n.nodeId, shared.overlay.merge(n)]));
      groupNodes.set(key, members);
      groups.set(key, { formationId: stored.formationId, groupId: stored.groupId, formation: formation.record, nodes: [] });
    }
    members.set(stored.nodeId, applied.node);
  }
  for (const [key, g] of groups) g.nodes = [...groupNodes.get(key)!.values()].filter((n) => n.goalState !== 'dropped').sort((a, b) => a.nodeId - b.nodeId);
  await raiseRevisionsAboveApplied(ctx, byNode, inputs, groups);
  return { inputs, groups, nowMs: now };
}

/** What {@link recordHeartbeatsOn} reads: this monitor's copy of the store (`store-mirror.ts`). */
export type HeartbeatMirror = Pick<AttemptMirror, 'caughtUpNow' | 'get' | 'range'>;

/**
 * `MonitorStore.recordHeartbeats` on etcd: the reports that change nothing etcd holds, recorded
 * in this monitor's memory only (the overlay, and the store's LSN batch for a moving LSN that
 * is due), with their nodes and groups read from the mirror, at once and without a Txn: no
 * attempt, no lock, no round trip. Synchronous, so nothing runs between a read and the
 * overlay's change.
 *
 * A report is left out (to `recordReports`, in a transaction) unless every read it needs is
 * current here, as a transaction's first attempt would read it: this monitor may write the
 * node's formation (`mayWrite`: it leads it, so no other monitor writes it), the mirror holds its
 * own last commit of the formation, and no transaction of this monitor holds the node's group
 * (a decision on it, or another report of it, under way). It is also left out when it changes a
 * persisted fact (`applyReport`'s write, but for an LSN that is only due), carries a self-fence
 * or a transition, its node's goal is `dropped`, its node has not reported since it was stored,
 * or its keeper applied a goal revision above its node's (`raiseRevisionsAboveApplied`).
 *
 * @param mayWrite - whether this monitor may write a formation (the store's fence lets it).
 * @returns the recorded reports (`factsChanged` as `recordReports` gives it) and their groups.
 */
export function recordHeartbeatsOn(shared: EtcdShared, mirror: HeartbeatMirror, mayWrite: (formationId: string) => boolean, reports: readonly { nodeId: number; report: NodeReport }[]): ReportsRead {
  const { keys, overlay } = shared;
  const now = shared.now();
  const base = shared.revisionBase.value;
  const inputs = new Map<number, RecordedReport>();
  const groups = new Map<string, GroupRead>();
  for (const { nodeId, report } of reports) {
    if (!isHeartbeatReport(report)) continue;
    const formationId = shared.nodeFormations.get(nodeId);
    const groupId = shared.nodeGroups.get(nodeId);
    if (formationId === undefined || groupId === undefined || shared.locks.isLocked(groupLockKey(formationId, groupId))) continue;
    if (!mayWrite(formationId) || !mirror.caughtUpNow(formationId)) continue;
    const formationKv = mirror.get(keys.formation(formationId));
    const nodeKv = mirror.get(keys.node(formationId, nodeId));
    if (!formationKv || !nodeKv) continue;
    const stored = nodeOf(nodeKv, base);
    if (stored.goalState === 'dropped' || stored.groupId !== groupId) continue;
    if (report.appliedGoalRevision !== undefined && BigInt(report.appliedGoalRevision) > BigInt(stored.goalRevision)) continue;
    const formation = formationOfKv(formationKv).record;
    const freshMs = freshWithinMs(formationSettings(formation));
    const applied = applyReport(stored, overlay.get(nodeId), report, now, Math.random() * shared.lsnWriteIntervalMs, overlay.graceFrom(formationId), freshMs, shared.lsnWriteIntervalMs);
    if (applied.write && !applied.lsnOnly) continue;
    overlay.set(nodeId, applied.live);
    if (applied.lsnOnly) shared.lsnDue(nodeId);
    inputs.set(nodeId, { node: applied.node, recorded: true, before: { reportedProblem: stored.reportedProblem, lastSelfFenceAt: stored.lastSelfFenceAt }, factsChanged: applied.factsChanged });
    const key = groupKey(formationId, groupId);
    const members = groups.get(key)?.nodes ?? mirror.range(keys.nodes(formationId)).map((kv) => nodeOf(kv, base)).filter((n) => n.groupId === groupId && n.goalState !== 'dropped').map((n) => overlay.merge(n));
    groups.set(key, { formationId, groupId, formation, nodes: members.map((n) => (n.nodeId === nodeId ? applied.node : n)).sort((a, b) => a.nodeId - b.nodeId) });
  }
  return { inputs, groups, nowMs: now };
}

/**
 * A keeper that applied a goal revision above its node's (from an earlier history of the store,
 * restored from a snapshot, or from another store): raise the store's revision base so that
 * every goal's revision is above it, and the records read here with it, so that the answers
 * carry revisions the keepers take.
 */
async function raiseRevisionsAboveApplied(ctx: EtcdContext, byNode: ReadonlyMap<number, { report: NodeReport }>, inputs: Map<number, RecordedReport>, groups: Map<string, GroupRead>): Promise<void> {
  // How far the highest applied revision is above its node's; 0 or less: every keeper takes ours
  // (a keeper applies a goal of the revision it applied last, not one below it).
  let over = 0n;
  for (const [nodeId, { report }] of byNode) {
    const node = inputs.get(nodeId)?.node;
    if (report.appliedGoalRevision === undefined || !node) continue;
    const by = BigInt(report.appliedGoalRevision) - BigInt(node.goalRevision);
    if (by > over) over = by;
  }
  if (over <= 0n) return;
  const before = ctx.shared.revisionBase.value;
  await ctx.shared.raiseRevisionBase(before + over);
  const delta = ctx.shared.revisionBase.value - before;
  const shift = (n: NodeRecord): NodeRecord => ({ ...n, goalRevision: String(BigInt(n.goalRevision) + delta) });
  for (const [id, input] of inputs) inputs.set(id, { ...input, node: shift(input.node) });
  for (const g of groups.values()) g.nodes = g.nodes.map(shift);
}
