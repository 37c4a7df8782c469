/**
 * The monitor's store as a port: what the routes, the group driver, the prober, the
 * authentication and the metrics may ask of the monitor's state, in the domain's records
 * (`records.ts`), never in a database's types. An adapter implements it: Postgres today
 * (`postgres/postgres-store.ts`), etcd next. `test/store-contract.ts` states these guarantees
 * as tests, run against every adapter.
 *
 * The shape follows pg_auto_failover's monitor (`NodeActive`: lock the group, re-read, decide,
 * write the goals with their events, commit, notify) and what an etcd adapter can keep:
 *
 * - **Decisions under a per-group lock.** {@link StoreTransaction.lockGroup} serialises every
 *   transaction that takes it: a transaction reads the group after the lock, so it sees every
 *   decision committed before (Postgres: an advisory transaction lock; etcd: a lock key, or a
 *   compare of the revisions read at commit).
 * - **All or nothing.** What a transaction writes commits together or not at all: a goal and
 *   its event, a node and its credentials, a settings change and its event
 *   (etcd: one `Txn`).
 * - **One event writer.** Every event goes through {@link EventWriter.append}; goals through
 *   {@link GoalRepository.assign}, which appends their events with them.
 * - **A stream in a fixed order.** An event is readable once its transaction committed, and
 *   then at a fixed place: one readable later never comes before one already read, and a
 *   transaction's events are together, in the order written. Event ids resume the stream
 *   (`Last-Event-ID`).
 * - **Durable decisions.** A transaction that writes a goal or an event commits durably. One
 *   that only records keepers' reports may commit without waiting for the disk: a crash of
 *   the store may lose the last reports (keepers send them again), never a decision.
 *
 * Errors: `NotFoundError` and `ConflictError` (`@pgha/shared`) as each method says; anything
 * else is the store failing ({@link MonitorStore.isUnavailable} tells which of those mean it
 * is down).
 */
import type { Assignment, NodeReport, PostgresParameter } from '@pgha/shared';
import type {
  EventBatch,
  EventCursor,
  EventRecord,
  FormationRecord,
  GroupRead,
  HealthChange,
  MergedProbes,
  NewEvent,
  NewNode,
  NodeGroupRead,
  NodeRecord,
  OperationCounts,
  ProbeTargetRecord,
  ReportsRead,
  StoreSnapshot,
} from './records.js';

/** Formations. */
export interface FormationRepository {
  /** @throws NotFoundError when the formation does not exist. */
  get(formationId: string): Promise<FormationRecord>;
  /** Every formation, by name. */
  list(): Promise<FormationRecord[]>;
  /**
   * Creates a formation with new random replication and probe passwords.
   *
   * @returns the formation; undefined when one of that name exists (it is left as it is).
   */
  create(formationId: string, numberSyncStandbys?: number): Promise<FormationRecord | undefined>;
  /** Deletes a formation and its dropped nodes (the caller checks that no other node is left). */
  delete(formationId: string): Promise<void>;
}

/** Nodes: registration, reads, and the changes that are not goals. */
export interface NodeRepository {
  /** @throws NotFoundError when the node does not exist. */
  get(nodeId: number): Promise<NodeRecord>;
  /**
   * A node by its name in a formation; dropped nodes are not found.
   *
   * @throws NotFoundError naming the node and the formation.
   */
  getByName(formationId: string, name: string): Promise<NodeRecord>;
  /**
   * The nodes of a formation (of one group with `groupId`), by node id; without dropped ones
   * unless `includeDropped`.
   */
  list(formationId: string, options?: { groupId?: number; includeDropped?: boolean }): Promise<NodeRecord[]>;
  /** Every node of every formation, dropped ones included, by node id. */
  listAll(): Promise<NodeRecord[]>;
  /** The group ids of a formation that have nodes not dropped, ascending. */
  groupIds(formationId: string): Promise<number[]>;
  /** The node registered at host:port in any formation, if any. */
  findByAddress(host: string, port: number): Promise<NodeRecord | undefined>;
  /**
   * Adds a node to group 0 of a formation, in `init`.
   *
   * @throws ConflictError when its name is taken in the formation or its host:port by any node,
   *   also when another transaction registered it meanwhile.
   */
  insert(formationId: string, node: NewNode): Promise<NodeRecord>;
  /** Changes what a node registered with again (`keeper create` run again), `destroyRequested`, or its restart request (`pgha perform restart`). */
  update(nodeId: number, patch: Partial<Pick<NodeRecord, 'postgresSsl' | 'httpAddress' | 'destroyRequested' | 'restartRequest' | 'restartRequestedAt'>>): Promise<NodeRecord>;
  /** Deletes a node (its credentials go with it); its event is the caller's. */
  remove(nodeId: number): Promise<void>;
}

/**
 * Goal states, each written with its event and a revision.
 *
 * **Goal revisions.** Every write of a node's goal gives it a revision
 * (`NodeRecord.goalRevision`, decimal text of a non-negative 64-bit integer) larger than every
 * earlier revision of that node's goal, its registration's included, as read after commit by
 * any monitor: keepers never act on a goal of a lower revision than one they applied, so a
 * monitor that serves an old goal (it lags behind the store, or lost its leadership) cannot
 * drive a keeper backwards. Postgres: `pgha.goal_revision_seq`, taken under the group's lock.
 * etcd: the mod revision of the commit that wrote the node's key.
 */
export interface GoalRepository {
  /**
   * Writes each assignment's goal (a node assigned twice gets its last one) and, in the order
   * of the assignments, its event (node, reported state, old and new goal, LSN, rule, reason),
   * together; wakes the nodes' keepers when the transaction commits. Assignments of nodes not
   * in `nodes` are left out.
   *
   * @param nodes - the group's nodes as read under its lock.
   * @returns for each node whose goal was written, by node id, the revision the answers built
   *   from this transaction carry: the goal's revision when the adapter knows it before commit
   *   (Postgres), else one larger than every earlier revision of the node's goal and not larger
   *   than the one it gets at commit (etcd: the revision the transaction read at, plus one; its
   *   compares make sure nothing wrote the node's key since).
   */
  assign(group: { formationId: string; groupId: number }, nodes: readonly NodeRecord[], assignments: readonly Assignment[]): Promise<ReadonlyMap<number, string>>;
  /** Wakes the keepers of these nodes when the transaction commits (a settings change they apply). */
  notify(nodeIds: readonly number[]): Promise<void>;
}

/** Replication settings (`pgha set formation|node`); their events are the caller's. */
export interface SettingsRepository {
  setNumberSyncStandbys(formationId: string, value: number): Promise<void>;
  /**
   * Replaces the formation's own timing settings (`FormationRecord.settings`; the ones absent
   * take the defaults). Validated by the caller (`changeTimingSettings`).
   */
  setTimings(formationId: string, settings: FormationRecord['settings']): Promise<void>;
  /**
   * Replaces the formation's client networks (`FormationRecord.clientNetworks`). Validated by
   * the caller (`changeClientNetworks`).
   */
  setClientNetworks(formationId: string, networks: readonly string[]): Promise<void>;
  setNodeReplication(nodeId: number, settings: Pick<NodeRecord, 'candidatePriority' | 'replicationQuorum'>): Promise<void>;
  /**
   * Replaces the formation's Postgres parameters (`FormationRecord.postgresParameters`), by
   * name. Validated by the caller (`changePostgresParameters`).
   */
  setPostgresParameters(formationId: string, parameters: readonly PostgresParameter[]): Promise<void>;
  /** Replaces a node's own Postgres parameters (`NodeRecord.postgresParameters`), by name. */
  setNodePostgresParameters(nodeId: number, parameters: readonly PostgresParameter[]): Promise<void>;
}

/** The one writer of events. */
export interface EventWriter {
  /** Appends events, in this order, to the stream (each readable once its transaction commits). */
  append(events: readonly NewEvent[]): Promise<void>;
}

/** Reading events: the latest ones, and the stream (see the module's guarantees). */
export interface EventStream {
  /** The latest `count` events of a formation by id, oldest first (`pgha show events`). */
  latest(formationId: string, count: number): Promise<EventRecord[]>;
  /** The group's latest event of `rule` (e.g. the last `group-note`), if any. */
  lastOfRule(formationId: string, groupId: number, rule: string): Promise<EventRecord | undefined>;
  /** The formation's readable events after `after`, in stream order, at most `limit`. */
  readAfter(formationId: string, after: EventCursor, limit: number): Promise<EventBatch>;
  /**
   * The formation's last `count` readable events (0 for none), in stream order, and the cursor
   * after every readable event of the formation: where a stream that starts now continues.
   */
  readLast(formationId: string, count: number): Promise<EventBatch>;
  /**
   * The cursor just after event `eventId` (a stream's `Last-Event-ID`); after the nearest event
   * before it when that one is gone or never existed; {@link STREAM_START} when none is.
   */
  cursorAfterEvent(eventId: bigint): Promise<EventCursor>;
  /**
   * Failovers and switchovers among the readable events of every formation after `after`
   * (see `operationKindOf`), counted without reading the events one by one.
   */
  countOperationsAfter(after: EventCursor): Promise<OperationCounts>;
}

/** The health prober's reads and writes. */
export interface ProbeRepository {
  /**
   * Every node that is not dropped, with its formation's probe password and settings, its
   * probe state and how long ago that was written (the prober leaves out the results that
   * would change nothing).
   *
   * @param only - keep the nodes of these formations only (a monitor on etcd probes the
   *   formations it leads); default all.
   */
  targets(only?: (formationId: string) => boolean): Promise<ProbeTargetRecord[]>;
  /**
   * Applies probe results, each in order, by the health rule (`nextHealth`): a node's record
   * is written only when the rule says so. Never waits for a group decision in progress: a
   * node it would have to wait for is skipped, to be written again.
   *
   * @returns the nodes whose health changed, and the ids of the nodes skipped.
   */
  record(results: readonly MergedProbes[]): Promise<{ changed: HealthChange[]; skipped: number[] }>;
}

/** The SHA-256 digests of keepers' node tokens (never the tokens). */
export interface NodeCredentialRepository {
  /** The node whose token has this digest; undefined for none. */
  ownerOf(digest: string): Promise<number | undefined>;
  /** Gives a node a new token digest; the one before stops working at commit. */
  issue(nodeId: number, digest: string): Promise<void>;
  /** Every node's token digest, by node id (what `pgha monitor create --from-monitor` copies). */
  list(): Promise<{ nodeId: number; digest: string }[]>;
}

/** What can be read and written in a transaction or, one statement at a time, on the store. */
export interface StoreSession {
  readonly formations: FormationRepository;
  readonly nodes: NodeRepository;
  readonly events: EventWriter;
  readonly stream: EventStream;
  readonly probes: ProbeRepository;
  readonly credentials: NodeCredentialRepository;
  /** The store's clock, ms since the epoch: one clock for every monitor and every fact. */
  nowMs(): Promise<number>;
}

/** One transaction: everything it writes commits together, or nothing does. */
export interface StoreTransaction extends StoreSession {
  readonly goals: GoalRepository;
  readonly settings: SettingsRepository;
  /**
   * Takes the group's lock until the transaction ends: every other transaction that takes it
   * waits. Take several in (formation, group) order, after any formation lock.
   */
  lockGroup(formationId: string, groupId: number): Promise<void>;
  /**
   * Takes the formation's lock until the transaction ends (its settings changes and its drop
   * serialise; nodes may still register meanwhile, under the group lock). Take it first.
   *
   * @throws NotFoundError when the formation does not exist.
   */
  lockFormation(formationId: string): Promise<FormationRecord>;
  /**
   * The group as a decision reads it after taking its lock: the formation, the group's nodes
   * that are not dropped (by node id) and the store's clock.
   *
   * @throws NotFoundError when the formation does not exist.
   */
  readGroup(formationId: string, groupId: number): Promise<GroupRead & { nowMs: number }>;
  /**
   * Records keepers' reports of any nodes under their groups' locks (taken in (formation,
   * group) order) and reads those groups. The first thing of its transaction. A node whose
   * goal is `dropped` and whose keeper reports `dropped` is not recorded (its keeper has
   * stopped; the caller removes it); a node id that does not exist is missing from `inputs`.
   * At most one report per node (the last one its keeper sent).
   */
  recordReports(reports: readonly { nodeId: number; report: NodeReport }[]): Promise<ReportsRead>;
}

/** The monitor's store. */
export interface MonitorStore extends StoreSession {
  /**
   * Runs `work` in one transaction and commits what it wrote, or, when it throws, writes
   * nothing and throws that error.
   */
  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T>;
  /**
   * Every formation and every node that is not dropped, at once, unlocked (the timer's look at all groups).
   *
   * @param only - keep these formations and their nodes only (a monitor on etcd looks at the
   *   formations it leads); default all.
   */
  snapshot(only?: (formationId: string) => boolean): Promise<StoreSnapshot>;
  /**
   * A node, its formation and its group's nodes that are not dropped (by node id), read
   * together: what the node's goal is built from (`routes/views.ts`). Read from the store's
   * current state, as every read outside a transaction is, unless `mirrored`.
   *
   * @param options.mirrored - a monitor on etcd may answer from its copy of the store
   *   (`etcd/store-mirror.ts`) instead of reading etcd, when it leads the node's formation and
   *   the copy holds its last commit of it: then the copy holds every commit of the formation,
   *   since only its leader writes it. For a keeper's goal long-poll, which its leader answers
   *   twice a second per keeper (issue 17: idle cost). The Postgres store ignores it.
   * @throws NotFoundError when the node or its formation does not exist.
   */
  readNodeGroup(nodeId: number, options?: { mirrored?: boolean }): Promise<NodeGroupRead>;
  /**
   * Records keepers' **heartbeats**, reports that change no fact a decision reads but the time
   * and the LSN, on their own, outside any transaction of the caller, and reads their groups:
   * what an idle keeper's report costs. It never reads a group while a decision on it is under
   * way: Postgres takes the groups' locks (in a transaction of its own that commits, without
   * waiting for the disk, before it returns); etcd, whose liveness lives in the leader's memory,
   * records in that memory only and leaves out a report whose group a transaction of this
   * monitor holds, or that it cannot read current from its copy of the store
   * (`etcd/etcd-repositories.ts`, `recordHeartbeatsOn`). A report is recorded
   * only when it leaves every persisted fact of its node as it is (its reported state, Postgres
   * running, recovery, timeline, streaming, `synchronous_standby_names`, problem, parameters,
   * restart done), carries no self-fence and no transition, its node's goal is not `dropped`,
   * and its node reported before; the others, and node ids that do not exist, are missing from
   * `inputs`: record them with {@link StoreTransaction.recordReports}. Each recorded report's
   * `factsChanged` says whether its keeper's previous report was heard within `freshWithinMs`
   * (false) or not (true: its liveness changed). At most one report per node.
   *
   * Optional (a test double need not offer it). Postgres: one round trip instead of the report
   * transaction's two; etcd: no Txn, lock or round trip at all (issue 17, idle cost; issue 15,
   * 3,000 keepers).
   */
  recordHeartbeats?(reports: readonly { nodeId: number; report: NodeReport }[]): Promise<ReportsRead>;
  /** Whether `err` says the store is down or unreachable (the API answers 503). */
  isUnavailable(err: unknown): boolean;
  /** Closes the store's connections. */
  close(): Promise<void>;
}

/** Wakes waiting keepers and event streams when the store commits what they wait for. */
export interface StoreNotifier {
  /**
   * Resolves when node `nodeId`'s goal changes or after `timeoutMs`. Register before reading
   * the goal, so that no change falls in between.
   */
  waiter(nodeId: number, timeoutMs: number): Waiter;
  /**
   * Resolves when formation `formation` has new events (committed) or after `timeoutMs`.
   * Register before reading the events, so that none falls in between.
   */
  eventWaiter(formation: string, timeoutMs: number): Waiter;
}

/**
 * A wait for a notification: resolves on it (true; also when the notifier lost its store and
 * wakes every waiter to read again), or after its timeout or at `cancel` (false). False means
 * that nothing the waiter waits for was committed since it was registered.
 */
export interface Waiter {
  promise: Promise<boolean>;
  cancel: () => void;
}
