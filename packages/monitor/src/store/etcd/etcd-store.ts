/**
 * The etcd adapter of the store port (`store-port.ts`): the monitors' shared store on an etcd v3
 * cluster, with the key layout of `keys.ts`. docs/monitor-ha.md describes it for operators.
 *
 * - **Transactions** are optimistic (`etcd-transaction.ts`): reads at one revision, one Txn at
 *   commit comparing what was read and, for every formation written, the leader's fencing token
 *   ({@link EtcdStore.setFence}); a conflict runs the work again. This monitor's own decisions on
 *   a group also run one at a time under an in-process lock (`keyed-locks.ts`), as under the
 *   Postgres adapter's advisory locks.
 * - **Reports that change no persisted fact are not etcd writes**: keepers' liveness stays in
 *   this monitor's memory (`report-overlay.ts`) and reads merge it in; after a leadership gain
 *   {@link EtcdStore.startGrace} counts every node of the formation as just heard from.
 * - **Events**: one key each, id = the Txn's revision × 10,000 + its index (commit order across
 *   the store); the latest {@link EVENT_RETENTION_PER_FORMATION} per formation are kept.
 * - **Goal revisions**: a node's `goalRevision` is its key's mod revision.
 * - **Notifications** come from an etcd watch of the whole prefix, so that a monitor that does
 *   not lead a formation still wakes its goal long-polls and event streams when the leader
 *   commits; this monitor's own commits wake its waiters at once.
 * - **The clock** is this monitor's (`Date.now()`): etcd has none; monitors run NTP.
 *
 * Source: Kubernetes' etcd3 storage (`GuaranteedUpdate`: optimistic Txn on mod revisions),
 * Patroni's etcd3 DCS (leader key under a lease, watched by every member).
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { PghaError, type NodeReport } from '@pgha/shared';
import type { FormationRecord, GroupRead, NodeGroupRead, ReportsRead, StoreSnapshot } from '../records.js';
import type {
  EventStream,
  EventWriter,
  FormationRepository,
  MonitorStore,
  NodeCredentialRepository,
  NodeRepository,
  ProbeRepository,
  StoreNotifier,
  StoreTransaction,
  Waiter,
} from '../store-port.js';
import { addWaiter, wake } from '../waiters.js';
import { isEtcdUnavailable, openEtcdClient, checkEtcdReachable, type EtcdConnection } from './etcd-client.js';
import {
  EVENT_RETENTION_PER_FORMATION,
  EtcdCredentialRepository,
  EtcdEventStream,
  EtcdEventWriter,
  EtcdFormationRepository,
  EtcdGoalRepository,
  EtcdNodeRepository,
  EtcdProbeRepository,
  EtcdSettingsRepository,
  formationsAndNodes,
  nodeOf,
  storedNode,
  writeNode,
  recordHeartbeatsOn,
  recordReportsOn,
  type EtcdContext,
  type EtcdShared,
} from './etcd-repositories.js';
import { MAX_TRANSACTION_ATTEMPTS, TxnAttempt, kvOf, runEtcdTransaction, type EtcdFence, type Kv } from './etcd-transaction.js';
import { HeldLocks, KeyedLocks, formationLockKey, groupLockKey } from './keyed-locks.js';
import { StoreKeys } from './keys.js';
import { NodeIdBlocks } from './node-ids.js';
import { LSN_WRITE_INTERVAL_MS, ReportOverlay, mergeLiveness } from './report-overlay.js';
import { StoreMirror } from './store-mirror.js';
import { readStoreMeta, type StoreMeta, type StoreSecrets } from './store-meta.js';

/** How long (ms) a due LSN waits for others to be written with it (see `EtcdShared.lsnDue`). */
const LSN_BATCH_DELAY_MS = 1000;
/** Nodes per Txn of due LSNs: their compares and the formations' fences stay within etcd's `--max-txn-ops` (128). */
const LSN_BATCH_NODES = 40;

/** Pause (ms) before the store's watch starts again after it broke. */
const REWATCH_PAUSE_MS = 500;

/** Options of {@link openEtcdStore}. */
export interface EtcdStoreOptions {
  /** The store id `monitor.json` recorded: a store with another is refused. */
  expectedStoreId?: string | undefined;
  /** Events kept per formation; default {@link EVENT_RETENTION_PER_FORMATION}. */
  eventRetention?: number;
  /** How long a node's moving LSN goes unwritten (ms); default `LSN_WRITE_INTERVAL_MS`. */
  lsnWriteIntervalMs?: number;
  /** Deadline of each etcd call (ms); default `ETCD_CALL_TIMEOUT_MS`. */
  callTimeoutMs?: number;
}

/** One transaction: the repositories on one attempt, and the locks the transaction holds across attempts. */
class EtcdTransaction implements StoreTransaction {
  readonly formations: EtcdFormationRepository;
  readonly nodes: EtcdNodeRepository;
  readonly events: EtcdEventWriter;
  readonly stream: EtcdEventStream;
  readonly probes: EtcdProbeRepository;
  readonly credentials: EtcdCredentialRepository;
  readonly goals: EtcdGoalRepository;
  readonly settings: EtcdSettingsRepository;

  constructor(private readonly ctx: EtcdContext, private readonly held: HeldLocks) {
    this.formations = new EtcdFormationRepository(ctx);
    this.nodes = new EtcdNodeRepository(ctx);
    this.events = new EtcdEventWriter(ctx);
    this.stream = new EtcdEventStream(ctx);
    this.probes = new EtcdProbeRepository(ctx);
    this.credentials = new EtcdCredentialRepository(ctx);
    this.goals = new EtcdGoalRepository(ctx, this.events);
    this.settings = new EtcdSettingsRepository(ctx);
  }

  async nowMs(): Promise<number> {
    return this.ctx.shared.now();
  }

  async lockGroup(formationId: string, groupId: number): Promise<void> {
    await this.held.take(groupLockKey(formationId, groupId));
  }

  async lockFormation(formationId: string): Promise<FormationRecord> {
    await this.held.take(formationLockKey(formationId));
    return this.formations.get(formationId);
  }

  async readGroup(formationId: string, groupId: number): Promise<GroupRead & { nowMs: number }> {
    const formation = await this.formations.get(formationId);
    const nodes = await this.nodes.list(formationId, { groupId });
    return { formationId, groupId, formation, nodes, nowMs: this.ctx.shared.now() };
  }

  recordReports(reports: readonly { nodeId: number; report: NodeReport }[]): Promise<ReportsRead> {
    return recordReportsOn(this.ctx, (f, g) => this.lockGroup(f, g), reports);
  }
}

/** The monitor's store on etcd (see the module). Open it with {@link openEtcdStore}. */
export class EtcdStore implements MonitorStore, StoreNotifier {
  readonly formations: FormationRepository;
  readonly nodes: NodeRepository;
  readonly events: EventWriter;
  readonly stream: EventStream;
  readonly probes: ProbeRepository;
  readonly credentials: NodeCredentialRepository;
  private fence: EtcdFence | undefined;
  private readonly shared: EtcdShared;
  private readonly locks = new KeyedLocks();
  private readonly overlay: ReportOverlay;
  private readonly mirror: StoreMirror;
  private readonly goalWaiters = new Map<number, Set<() => void>>();
  private readonly eventWaiters = new Map<string, Set<() => void>>();
  private watcher: Watcher | undefined;
  private closed = false;
  /**
   * Revisions of this monitor's own commits whose watch events have not come yet: it woke its
   * waiters at commit already, so their late watch events must not wake a waiter registered
   * since (it waits for the next change).
   */
  private readonly ownRevisions = new Set<string>();

  /**
   * @param client - an `etcd3` client of the store's cluster (`openEtcdClient`); closed by {@link close}.
   * @param meta - the store's meta, as checked (`readStoreMeta`).
   */
  constructor(
    readonly client: Etcd3,
    readonly keys: StoreKeys,
    readonly meta: StoreMeta,
    options: Pick<EtcdStoreOptions, 'eventRetention' | 'lsnWriteIntervalMs'> = {},
  ) {
    this.overlay = new ReportOverlay(Date.now());
    this.mirror = new StoreMirror(keys);
    this.shared = {
      keys,
      overlay: this.overlay,
      locks: this.locks,
      nodeFormations: new Map(),
      nodeGroups: new Map(),
      eventRetention: options.eventRetention ?? EVENT_RETENTION_PER_FORMATION,
      lsnWriteIntervalMs: options.lsnWriteIntervalMs ?? LSN_WRITE_INTERVAL_MS,
      eventCounts: new Map(),
      nodeIds: new NodeIdBlocks(client, keys.nodeIdSeq),
      now: () => Date.now(),
      revisionBase: { value: BigInt(meta.goalRevisionBase ?? '0') },
      raiseRevisionBase: (target) => this.raiseRevisionBase(target),
      lsnDue: (id) => this.lsnDue(id),
      wakeGoals: (ids) => ids.forEach((id) => wake(this.goalWaiters, id)),
      wakeEvents: (fs) => fs.forEach((f) => wake(this.eventWaiters, f)),
    };
    this.formations = this.autoCommit((ctx) => new EtcdFormationRepository(ctx));
    this.nodes = this.autoCommit((ctx) => new EtcdNodeRepository(ctx));
    this.events = this.autoCommit((ctx) => new EtcdEventWriter(ctx));
    this.stream = this.autoCommit((ctx) => new EtcdEventStream(ctx));
    this.probes = this.autoCommit((ctx) => new EtcdProbeRepository(ctx), true);
    this.credentials = this.autoCommit((ctx) => new EtcdCredentialRepository(ctx));
  }

  /** The store's id (`<p>/v1/meta.storeId`), recorded in `monitor.json`. */
  get storeId(): string {
    return this.meta.storeId;
  }

  /**
   * Sets the fence every commit of a formation's writes compares (`FormationLeadership.fence`,
   * which throws PghaError `PGHA_ERR_NOT_LEADER` when this monitor does not lead the formation:
   * the commit then writes nothing). Undefined: no fence (a single monitor; tests). A
   * formation's creation (`formations.create`) commits without it.
   */
  setFence(fence: EtcdFence | undefined): void {
    this.fence = fence;
  }

  /**
   * Starts a grace period for a formation after this monitor became its leader: every node of
   * it counts as heard from at `nowMs` (ms since the epoch) until its keeper reports here.
   * Source: pg_auto_failover's `startup_grace_period`.
   */
  startGrace(formationId: string, nowMs: number): void {
    this.overlay.startGrace(formationId, nowMs);
  }

  /** See {@link EtcdShared.raiseRevisionBase}: a Txn on the meta key, run again when another monitor wrote it meanwhile. */
  private async raiseRevisionBase(target: bigint): Promise<void> {
    for (let attempt = 0; attempt < MAX_TRANSACTION_ATTEMPTS; attempt++) {
      const kv = (await this.client.kv.range({ key: Buffer.from(this.keys.meta) })).kvs[0];
      if (!kv) throw new PghaError('PGHA_ERR_STORE_MISMATCH', `the etcd store's meta key ${this.keys.meta} is gone`, { hint: 'the store was deleted under the monitor: restore it (docs/monitor-ha.md)' });
      const meta = JSON.parse(kv.value.toString()) as StoreMeta;
      const current = BigInt(meta.goalRevisionBase ?? '0');
      if (current >= target) {
        if (current > this.shared.revisionBase.value) this.shared.revisionBase.value = current;
        return;
      }
      const res = await this.client.kv.txn({
        compare: [{ key: Buffer.from(this.keys.meta), target: 'Mod', result: 'Equal', mod_revision: kv.mod_revision }],
        success: [{ request_put: { key: Buffer.from(this.keys.meta), value: Buffer.from(JSON.stringify({ ...meta, goalRevisionBase: String(target) })) } }],
      });
      if (res.succeeded) {
        this.shared.revisionBase.value = target;
        this.revisionBaseRaised?.(current, target);
        return;
      }
    }
    throw new PghaError('PGHA_ERR_STORE_UNAVAILABLE', 'the etcd store\'s meta key changed under this monitor too often to raise its goal revisions', { hint: 'retry' });
  }

  /** Nodes whose moving LSN is due to be written (see {@link EtcdShared.lsnDue}). */
  private readonly dueLsns = new Set<number>();
  private lsnTimer: NodeJS.Timeout | undefined;

  private lsnDue(nodeId: number): void {
    this.dueLsns.add(nodeId);
    this.scheduleLsnBatch();
  }

  /** Writes the due LSNs in {@link LSN_BATCH_DELAY_MS}, unless that is scheduled already; again while some stay due. */
  private scheduleLsnBatch(): void {
    if (this.lsnTimer || this.closed || this.dueLsns.size === 0) return;
    this.lsnTimer = setTimeout(() => {
      void this.writeDueLsns().finally(() => {
        this.lsnTimer = undefined;
        this.scheduleLsnBatch();
      });
    }, LSN_BATCH_DELAY_MS);
    this.lsnTimer.unref();
  }

  /**
   * Writes every due LSN (see {@link EtcdShared.lsnDue}), {@link LSN_BATCH_NODES} nodes per Txn:
   * each node's stored record with the liveness this monitor holds for it, compared and fenced
   * as any write. A node whose group a decision holds, or whose formation this monitor no longer
   * leads, waits for the next batch or is dropped; a Txn that fails leaves its nodes due. Never throws.
   */
  private async writeDueLsns(): Promise<void> {
    const due = [...this.dueLsns];
    for (let i = 0; i < due.length && !this.closed; i += LSN_BATCH_NODES) await this.writeLsns(due.slice(i, i + LSN_BATCH_NODES)).catch(() => undefined);
  }

  /** One Txn of {@link writeDueLsns}. */
  private async writeLsns(ids: readonly number[]): Promise<void> {
    await this.run(async (ctx) => {
      for (const id of ids) {
        const stored = await storedNode(ctx, id);
        const live = this.overlay.get(id);
        if (stored && live && this.locks.isLocked(groupLockKey(stored.formationId, stored.groupId))) continue;
        if (!stored || !live || live.reportedLsn === stored.reportedLsn || !this.mayWrite(stored.formationId)) {
          this.dueLsns.delete(id);
          continue;
        }
        writeNode(ctx, mergeLiveness(stored, live));
        const at = this.shared.now();
        ctx.attempt.onCommit(() => {
          this.dueLsns.delete(id);
          this.overlay.written(id, at);
        });
      }
    }, true);
  }

  /** Whether the fence lets this monitor write `formationId` (it leads it, or there is no fence). */
  private mayWrite(formationId: string): boolean {
    try {
      this.fence?.(formationId);
      return true;
    } catch {
      return false;
    }
  }

  /** Told when this monitor raised the store's goal revision base (the monitor logs it). */
  revisionBaseRaised: ((from: bigint, to: bigint) => void) | undefined;

  /**
   * Told when another monitor deleted a node token's credential (the node registered again
   * there, or its token rotated): the token digest; undefined when the watch broke and any
   * credential may have changed unseen. The API's cache of node tokens (`NodeCredentials`)
   * forgets it, so the old token is refused here too, not only at the monitor that replaced it.
   */
  credentialRevoked: ((digest: string | undefined) => void) | undefined;

  /**
   * Told when the store's secrets changed (`pgha monitor rotate-token` wrote a new operator or
   * viewer token digest): the new secrets; undefined when the watch started again after a break,
   * during which they may have changed unseen (read them again). The API's authentication takes
   * the new digests, so that the old token is refused by every monitor of the store.
   */
  secretsChanged: ((secrets: StoreSecrets | undefined) => void) | undefined;

  /**
   * Attempt `n` of a transaction; `mirrored`: its first attempt reads formations and nodes from
   * the mirror (see `store-mirror.ts`).
   */
  private newAttempt(n: number, mirrored: boolean): TxnAttempt {
    const attempt = new TxnAttempt(this.client, this.keys, mirrored && n === 1 ? this.mirror : undefined);
    attempt.onCommit((revision) => {
      if (!attempt.writing) return;
      if (this.ownRevisions.size >= 10_000) this.ownRevisions.clear();
      this.ownRevisions.add(revision);
      this.mirror.committed(attempt.writtenFormations(), revision);
    });
    return attempt;
  }

  /**
   * Runs `work` in a transaction of its own (commits when it returns).
   *
   * @param mirrored - read formations and nodes from the mirror (the timer, the prober);
   *   false: from etcd, linearizable (what the API answers, which another monitor may just have
   *   written).
   */
  private run<T>(work: (ctx: EtcdContext) => Promise<T>, mirrored = false): Promise<T> {
    return runEtcdTransaction((n) => this.newAttempt(n, mirrored), (attempt) => work({ attempt, shared: this.shared }), this.fence);
  }

  /**
   * A repository whose every call on the store (outside a transaction) runs in a transaction of
   * its own, as each statement on the Postgres store's pool does.
   */
  private autoCommit<R extends object>(make: (ctx: EtcdContext) => R, mirrored = false): R {
    return new Proxy({} as R, {
      get: (_target, method) => {
        if (method === 'then') return undefined;
        return (...args: unknown[]) => this.run((ctx) => (make(ctx) as Record<string | symbol, (...a: unknown[]) => Promise<unknown>>)[method]!(...args), mirrored);
      },
    });
  }

  async nowMs(): Promise<number> {
    return this.shared.now();
  }

  async transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    const held = new HeldLocks(this.locks);
    try {
      return await runEtcdTransaction((n) => this.newAttempt(n, true), (attempt) => work(new EtcdTransaction({ attempt, shared: this.shared }, held)), this.fence);
    } finally {
      held.releaseAll();
    }
  }

  /** Formations and nodes at one revision, merged with the overlay. */
  async snapshot(only: (formationId: string) => boolean = () => true): Promise<StoreSnapshot> {
    return this.run(async ({ attempt }) => {
      const read = await formationsAndNodes({ attempt, shared: this.shared }, only);
      const formations = read.formations;
      const nodes = read.nodes
        .map((kv) => nodeOf(kv, this.shared.revisionBase.value))
        .filter((n) => n.goalState !== 'dropped')
        .map((n) => this.overlay.merge(n))
        .sort((a, b) => (a.formationId < b.formationId ? -1 : a.formationId > b.formationId ? 1 : a.groupId - b.groupId || a.nodeId - b.nodeId));
      return { formations: formations.sort((a, b) => (a.formationId < b.formationId ? -1 : 1)), nodes, nowMs: this.shared.now() };
    }, true);
  }

  /**
   * See `MonitorStore.recordHeartbeats`: in this monitor's memory, read from the mirror, no Txn
   * (`recordHeartbeatsOn`); a report it cannot take so goes to the report transaction.
   */
  async recordHeartbeats(reports: readonly { nodeId: number; report: NodeReport }[]): Promise<ReportsRead> {
    return recordHeartbeatsOn(this.shared, this.mirror, (f) => this.mayWrite(f), reports);
  }

  /** See `MonitorStore.readNodeGroup`: one attempt, from the mirror when `mirrored` and this monitor leads the node's formation. */
  async readNodeGroup(nodeId: number, options: { mirrored?: boolean } = {}): Promise<NodeGroupRead> {
    const formationId = this.shared.nodeFormations.get(nodeId);
    const mirrored = options.mirrored === true && formationId !== undefined && this.mayWrite(formationId);
    return this.run(async (ctx) => {
      const nodes = new EtcdNodeRepository(ctx);
      const node = await nodes.get(nodeId);
      const formation = await new EtcdFormationRepository(ctx).get(node.formationId);
      return { node, formation, nodes: await nodes.list(node.formationId, { groupId: node.groupId }) };
    }, mirrored);
  }

  isUnavailable(err: unknown): boolean {
    return isEtcdUnavailable(err);
  }

  waiter(nodeId: number, timeoutMs: number): Waiter {
    return addWaiter(this.goalWaiters, nodeId, timeoutMs);
  }

  eventWaiter(formation: string, timeoutMs: number): Waiter {
    return addWaiter(this.eventWaiters, formation, timeoutMs);
  }

  private wakeAll(): void {
    for (const id of [...this.goalWaiters.keys()]) wake(this.goalWaiters, id);
    for (const f of [...this.eventWaiters.keys()]) wake(this.eventWaiters, f);
  }

  /**
   * Watches the store's prefix: a node's goal or replication settings changed, a formation
   * changed, an event appended, by any monitor: wake who waits for it; and keeps the mirror
   * (`store-mirror.ts`): loaded at a revision, the watch starts at the next one. When the watch
   * breaks (etcd unreachable, its revision compacted) the mirror stops serving reads, and the
   * watch starts again, mirror loaded anew, with every waiter woken to read again.
   *
   * @throws what the first load throws (etcd unreachable): later breaks retry by themselves.
   */
  async watch(): Promise<void> {
    const from = await this.mirror.load(this.client);
    // Without previous values: the mirror holds them (a node's previous record tells which waiters to wake).
    const watcher = this.client.watch().prefix(this.keys.root).startRevision(String(BigInt(from) + 1n)).watcher();
    this.watcher = watcher;
    // Before the library's own listener: the waiters woken run after the mirror has the change.
    watcher.prependListener('data', (res) => {
      this.mirror.apply(res, (kv, deleted, previous) => {
        if (!this.ownRevisions.has(kv.mod_revision)) this.changed(kv, deleted, previous);
      });
      for (const e of res.events) this.ownRevisions.delete(e.kv.mod_revision);
    });
    const drop = (): void => {
      if (this.watcher === watcher) this.watcher = undefined;
      this.mirror.unload();
      void watcher.cancel().catch(() => undefined);
    };
    const broken = (): void => {
      if (this.watcher !== watcher) return;
      drop();
      this.credentialRevoked?.(undefined);
      this.wakeAll();
      this.rewatch();
    };
    await new Promise<void>((resolve, reject) => {
      const failed = (err: Error): void => {
        drop();
        reject(err);
      };
      watcher.once('error', failed);
      watcher.once('connected', () => {
        // From now on an error is a break to recover from, not a failed start.
        watcher.off('error', failed);
        watcher.on('disconnected', broken);
        watcher.on('error', broken);
        resolve();
      });
    });
  }

  /** Starts the watch again after it broke (see {@link watch}), every {@link REWATCH_PAUSE_MS} until it works or the store closes. */
  private rewatch(): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      if (this.closed) return;
      this.watch().then(
        () => {
          this.wakeAll();
          this.secretsChanged?.(undefined);
        },
        () => this.rewatch(),
      );
    }, REWATCH_PAUSE_MS);
    timer.unref();
  }

  /**
   * A change seen by the watch, made by another monitor (this monitor's own commits woke their
   * waiters at commit): wake the waiters it concerns.
   *
   * @param previous - the key's value before, as the mirror held it (undefined: absent, or a key the mirror does not hold).
   */
  private changed(kv: IKeyValue, deleted: boolean, previous: Kv | undefined): void {
    const key = kv.key.toString();
    const event = this.keys.parseEvent(key);
    if (event) return wake(this.eventWaiters, event.formationId);
    const node = this.keys.parseNode(key);
    if (node) {
      // Nobody waits for a goal here (a monitor that leads none of this node's keepers): nothing to decode.
      if (this.goalWaiters.size === 0) return;
      if (deleted || !previous) return wake(this.goalWaiters, node.nodeId);
      const base = this.shared.revisionBase.value;
      const [now, before] = [nodeOf(kvOf(kv), base), nodeOf(previous, base)];
      if (now.candidatePriority !== before.candidatePriority || now.replicationQuorum !== before.replicationQuorum) return this.wakeAllGoals();
      if (now.goalState !== before.goalState || now.goalChangedAt.getTime() !== before.goalChangedAt.getTime()) wake(this.goalWaiters, node.nodeId);
      return;
    }
    if (key === this.keys.secrets) {
      if (!deleted) this.secretsChanged?.(JSON.parse(kv.value.toString()) as StoreSecrets);
      return;
    }
    if (deleted) {
      const digest = this.keys.parseCredential(key);
      if (digest !== undefined) this.credentialRevoked?.(digest);
      return;
    }
    if (this.keys.parseFormation(key) !== undefined) return this.wakeAllGoals();
    if (key === this.keys.meta) {
      // Another monitor raised the goal revision base: every goal's revision rose with it.
      const base = BigInt((JSON.parse(kv.value.toString()) as StoreMeta).goalRevisionBase ?? '0');
      if (base > this.shared.revisionBase.value) this.shared.revisionBase.value = base;
    }
  }

  private wakeAllGoals(): void {
    for (const id of [...this.goalWaiters.keys()]) wake(this.goalWaiters, id);
  }

  /** Stops the watch, wakes every waiter, and closes the client. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.lsnTimer);
    const watcher = this.watcher;
    this.watcher = undefined;
    this.mirror.close();
    await watcher?.cancel().catch(() => undefined);
    this.wakeAll();
    this.client.close();
  }
}

/**
 * Opens the store at `conn`: connects (one line saying why when etcd cannot be reached, or TLS
 * does not match), checks its meta (`readStoreMeta`: a pgha store, not newer than this pgha,
 * the one `monitor.json` recorded), and starts watching it. Writes nothing.
 *
 * @throws PghaError `PGHA_ERR_STORE_UNAVAILABLE` or `PGHA_ERR_TLS` (`checkEtcdReachable`);
 *   `PGHA_ERR_STORE_MISMATCH` (`readStoreMeta`).
 *
 * ### Examples
 * ```ts
 * const store = await openEtcdStore({ endpoints: ['10.0.0.1:2379'], prefix: '/pgha', caFile }, { expectedStoreId: config.store.storeId });
 * store.setFence((f) => leadership.fence(f));
 * leadership.on('gained', (f) => store.startGrace(f, Date.now()));
 * ```
 */
export async function openEtcdStore(conn: EtcdConnection, options: EtcdStoreOptions = {}): Promise<EtcdStore> {
  const client = openEtcdClient(conn, options.callTimeoutMs !== undefined ? { callTimeoutMs: options.callTimeoutMs } : {});
  try {
    await checkEtcdReachable(client, conn);
    const meta = await readStoreMeta(client, conn, options.expectedStoreId);
    const store = new EtcdStore(client, new StoreKeys(conn.prefix), meta, options);
    await store.watch();
    return store;
  } catch (err) {
    client.close();
    throw err;
  }
}
