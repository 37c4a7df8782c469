/**
 * The etcd adapter's transactions: optimistic, as etcd's own STM (`concurrency.NewSTM`,
 * serializable snapshot) and Kubernetes' `GuaranteedUpdate`.
 *
 * One **attempt** ({@link TxnAttempt}) reads at one revision of the store (the first read's,
 * pinned for the others: a consistent snapshot), remembers what it read, and buffers its
 * writes (later reads see them). Its commit is ONE etcd Txn:
 *
 * ```
 * compare:  createRevision(<leader key of F>) == <fencing token>   for each formation F written
 *           modRevision(k) == <revision read>   (0: absent)          for each key k read
 *           modRevision([start, end)) < <read revision + 1>          for each range read
 * success:  put/delete every write (goals, their events, node facts… together)
 * failure:  range <leader key of F>                                 (was it the fence?)
 * ```
 *
 * A failed compare means someone wrote what the attempt read: `work` runs again from scratch
 * on a new snapshot ({@link runEtcdTransaction}, bounded), unless the fence failed: then the
 * monitor is not the formation's leader any more and nothing is written ({@link FencedError}).
 * A range compare catches keys written or created in the range after the read; a key deleted
 * from a range is caught because every deletion of a node also rewrites its formation's key,
 * which every read of a formation's nodes reads too (`node-repository.ts`).
 *
 * **Scope of the compares.** Reads are compared for the formations the commit writes and for
 * store-wide keys (node ids, addresses, credentials), not for formations it only read: a
 * monitor's transaction writes a formation from what it read of that formation and of the
 * store-wide keys only (a decision is per group; a batch of reports reads many formations and
 * writes few). This keeps a commit within etcd's `--max-txn-ops` (default 128) and keeps a
 * batch of reports from retrying for a formation it does not write. Event reads are never
 * compared: events are only appended.
 */
import { randomUUID } from 'node:crypto';
import type { Etcd3, ICompare, IKeyValue, IRequestOp } from 'etcd3';
import { PghaError } from '@pgha/shared';
import { delay } from '@pgha/postgres';
import { prefixEnd, type StoreKeys } from './keys.js';

/** A key and its value as read. */
export interface Kv {
  key: string;
  value: string;
  modRevision: string;
  createRevision: string;
}

/**
 * The fencing token of a formation's leader: the key whose create revision it is, and that
 * revision. See {@link EtcdFence}.
 */
export interface FenceToken {
  key: string;
  createRevision: string;
}

/**
 * The fence hook of the etcd store: for a formation, the leader key and create revision that
 * every commit writing that formation's keys must compare
 * (`createRevision(key) == createRevision`), so that a monitor that lost its lease (its leader
 * key gone, or another monitor's created since) can write nothing, whatever its clock says.
 * Return undefined to write the formation without a fence (a monitor without leadership, or a
 * formation being created, which has no leader yet); throw (e.g. {@link FencedError}) to
 * refuse the write. Called once per formation at each commit.
 */
export type EtcdFence = (formationId: string) => FenceToken | undefined;

/**
 * A commit refused by the store's fence: this monitor is not (or no longer) the leader of the
 * formation. Nothing was written.
 */
export class FencedError extends PghaError {
  constructor(readonly formationId: string) {
    super('PGHA_ERR_NOT_LEADER', `this monitor is not the leader of formation "${formationId}" any more: the store refused its write`, {
      hint: 'nothing was written; the formation\'s leader decides for it (pgha show monitors)',
    });
  }
}

/** How many times a transaction runs when its commits conflict. */
export const MAX_TRANSACTION_ATTEMPTS = 10;

/** Keys per page of a large range read. */
const RANGE_PAGE = 1000;

/** A key as etcd's client gives it, as a {@link Kv}. */
export function kvOf(kv: IKeyValue): Kv {
  return { key: kv.key.toString(), value: kv.value.toString(), modRevision: kv.mod_revision, createRevision: kv.create_revision };
}

/**
 * A local copy of part of the store that an attempt may read from instead of etcd: the monitor's
 * mirror (`store-mirror.ts`, which documents each member).
 */
export interface AttemptMirror {
  /** The store revision its content is at (decimal). */
  readonly revision: string;
  covers(key: string): boolean;
  caughtUp(formationId: string | undefined): Promise<boolean>;
  /** Whether it holds this monitor's last commit of the formation now (the wait of {@link caughtUp} not needed). */
  caughtUpNow(formationId: string | undefined): boolean;
  get(key: string): Kv | undefined;
  range(prefix: string): readonly Kv[];
}

/** A read's effect on the commit: compared when its formation is written (undefined: store-wide, always). */
interface ReadRecord {
  formation: string | undefined;
  modRevision: string;
}

/**
 * Every key in `[start, end)` at `revision` (current when undefined), by key, paged so that no
 * answer is too large; and the revision read at.
 */
export async function rangeAll(client: Etcd3, start: string, end: string, revision?: string, options: { minModRevision?: string } = {}): Promise<{ kvs: Kv[]; revision: string }> {
  const kvs: Kv[] = [];
  let from = start;
  let rev = revision;
  for (;;) {
    const res = await client.kv.range({
      key: Buffer.from(from),
      range_end: Buffer.from(end),
      limit: RANGE_PAGE,
      ...(rev ? { revision: rev } : {}),
      ...(options.minModRevision ? { min_mod_revision: options.minModRevision } : {}),
    });
    rev ??= res.header.revision;
    for (const kv of res.kvs) kvs.push(kvOf(kv));
    if (!res.more || res.kvs.length === 0) return { kvs, revision: rev };
    from = `${res.kvs[res.kvs.length - 1]!.key.toString()}\0`;
  }
}

/**
 * One attempt of a transaction: reads at one revision, buffered writes, commit (see the module).
 */
export class TxnAttempt {
  /** Unique per attempt: the events it writes are keyed with it. */
  readonly id = randomUUID();
  /** Events appended so far (their index in the transaction). */
  eventCount = 0;
  private pinned: Promise<string> | undefined;
  private readonly reads = new Map<string, ReadRecord>();
  /** Ranges read (by prefix), each with the revision its content was at plus one (compared `modRevision < below`). */
  private readonly ranges = new Map<string, { formation: string | undefined; below: string }>();
  /** The highest mirror revision a read of this attempt used (undefined: none read from the mirror). */
  private mirrorRevision: bigint | undefined;
  /** What was read, by key (null: absent); `viaRange` when a range read it (its compare covers it). */
  private readonly cache = new Map<string, { kv: Kv | null; viaRange: boolean }>();
  private readonly rangeCache = new Map<string, { kvs: readonly Kv[]; revision: string }>();
  private readonly writes = new Map<string, { value: string | null; formation: string | undefined }>();
  private readonly hooks: ((revision: string) => void)[] = [];
  /** Formations this attempt writes without their fence (see {@link createsFormation}). */
  private readonly unfenced = new Set<string>();

  /**
   * @param mirror - this monitor's copy of formations and nodes (`store-mirror.ts`): reads of
   *   its keys come from it. Undefined: every read goes to etcd (a transaction's later attempts,
   *   after a commit that failed on what the mirror had).
   */
  constructor(
    readonly client: Etcd3,
    readonly keys: StoreKeys,
    private readonly mirror?: AttemptMirror,
  ) {}

  /**
   * A revision at or after every read of this attempt and before its commit (decimal): the
   * pinned revision of its etcd reads, else the latest mirror revision it read at, else the
   * store's current one (pinned by this call).
   */
  async revision(): Promise<string> {
    if (!this.pinned && this.mirrorRevision !== undefined) return String(this.mirrorRevision);
    if (!this.pinned) await this.read((rev) => this.client.kv.range({ key: Buffer.from(this.keys.meta), count_only: true, ...(rev ? { revision: rev } : {}) }));
    const pinned = await this.pinned!;
    return this.mirrorRevision !== undefined && this.mirrorRevision > BigInt(pinned) ? String(this.mirrorRevision) : pinned;
  }

  /** Whether the read of `key` (a key or a prefix) may come from the mirror: it covers it, and holds this monitor's last commit of its formation. */
  private async mirrored(key: string): Promise<AttemptMirror | undefined> {
    const mirror = this.mirror;
    if (!mirror?.covers(key)) return undefined;
    const formation = this.keys.formationOf(key);
    return mirror.caughtUpNow(formation) || (await mirror.caughtUp(formation)) ? mirror : undefined;
  }

  private usedMirrorAt(revision: string): void {
    const rev = BigInt(revision);
    if (this.mirrorRevision === undefined || rev > this.mirrorRevision) this.mirrorRevision = rev;
  }

  /** Runs a read at the pinned revision; the first read pins its own. */
  private async read<T extends { header: { revision: string } }>(fn: (revision: string | undefined) => Promise<T>): Promise<T> {
    if (this.pinned) return fn(await this.pinned);
    let pin!: (rev: string) => void;
    let fail!: (err: unknown) => void;
    this.pinned = new Promise<string>((resolve, reject) => {
      pin = resolve;
      fail = reject;
    });
    this.pinned.catch(() => undefined);
    try {
      const res = await fn(undefined);
      pin(res.header.revision);
      return res;
    } catch (err) {
      this.pinned = undefined;
      fail(err);
      throw err;
    }
  }

  /**
   * A key's value as this transaction sees it (its own write, if any), or undefined.
   *
   * @param options.record - false: not compared at commit (immutable or append-only keys).
   * @param options.formation - the formation the read counts for, when the key's path has none.
   * @returns with `own` true when it is this transaction's own write.
   */
  async get(key: string, options: { record?: boolean; formation?: string } = {}): Promise<(Kv & { own?: boolean }) | undefined> {
    const w = this.writes.get(key);
    if (w) return w.value === null ? undefined : { key, value: w.value, modRevision: '0', createRevision: '0', own: true };
    let cached = this.cache.get(key);
    if (!cached) {
      const mirror = await this.mirrored(key);
      if (mirror) {
        this.usedMirrorAt(mirror.revision);
        cached = { kv: mirror.get(key) ?? null, viaRange: false };
      } else {
        const res = await this.read((rev) => this.client.kv.range({ key: Buffer.from(key), ...(rev ? { revision: rev } : {}) }));
        cached = { kv: res.kvs[0] ? kvOf(res.kvs[0]) : null, viaRange: false };
      }
      this.cache.set(key, cached);
    }
    if (options.record !== false && !cached.viaRange && !this.reads.has(key)) {
      this.reads.set(key, { formation: options.formation ?? this.keys.formationOf(key), modRevision: cached.kv?.modRevision ?? '0' });
    }
    return cached.kv ?? undefined;
  }

  /**
   * Every key starting with `prefix` as this transaction sees it (its own writes merged), by key.
   *
   * @param options.record - false: not compared at commit.
   * @param options.formation - the formation the read counts for; default the prefix's (store-wide when none).
   */
  async range(prefix: string, options: { record?: boolean; formation?: string } = {}): Promise<Kv[]> {
    let read = this.rangeCache.get(prefix);
    if (!read) {
      const mirror = await this.mirrored(prefix);
      if (mirror) {
        this.usedMirrorAt(mirror.revision);
        read = { kvs: mirror.range(prefix), revision: mirror.revision };
      } else {
        read = await this.read(async (rev) => {
          const r = await rangeAll(this.client, prefix, prefixEnd(prefix), rev);
          return { ...r, header: { revision: r.revision } };
        });
      }
      this.rangeCache.set(prefix, read);
    }
    const { kvs } = read;
    if (options.record !== false) {
      this.ranges.set(prefix, { formation: options.formation ?? this.keys.formationOf(prefix), below: String(BigInt(read.revision) + 1n) });
      for (const kv of kvs) if (!this.cache.has(kv.key)) this.cache.set(kv.key, { kv, viaRange: true });
    }
    const byKey = new Map(kvs.map((kv) => [kv.key, kv as Kv]));
    for (const [key, w] of this.writes) {
      if (!key.startsWith(prefix)) continue;
      if (w.value === null) byKey.delete(key);
      else byKey.set(key, { key, value: w.value, modRevision: '0', createRevision: '0' });
    }
    return [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** The value this attempt wrote to `key` (null: deleted), or undefined when it wrote nothing there. */
  ownWrite(key: string): string | null | undefined {
    return this.writes.get(key)?.value;
  }

  /** Buffers a put. @param formation - the formation it writes, when the key's path has none (for the fence). */
  put(key: string, value: string, formation?: string): void {
    this.writes.set(key, { value, formation: formation ?? this.keys.formationOf(key) });
  }

  /** Buffers a delete. @param formation - as for {@link put}. */
  delete(key: string, formation?: string): void {
    this.writes.set(key, { value: null, formation: formation ?? this.keys.formationOf(key) });
  }

  /**
   * This attempt creates `formationId` (its key absent when read, and compared): its writes of
   * that formation commit without the fence, since a formation has no leader before it exists.
   */
  createsFormation(formationId: string): void {
    this.unfenced.add(formationId);
  }

  /** Runs `fn` with the commit's revision once the attempt committed (not at all otherwise). */
  onCommit(fn: (revision: string) => void): void {
    this.hooks.push(fn);
  }

  /** Whether the attempt has anything to write. */
  get writing(): boolean {
    return this.writes.size > 0;
  }

  /** The formations this attempt writes keys of. */
  writtenFormations(): Set<string> {
    return new Set([...this.writes.values()].map((w) => w.formation).filter((f): f is string => f !== undefined));
  }

  /**
   * Commits the attempt (see the module): with no write, only runs its hooks.
   *
   * @returns whether it committed; false when a compare of what it read failed.
   * @throws FencedError when a fence compare failed (or the fence hook threw it).
   */
  async commit(fence: EtcdFence | undefined): Promise<boolean> {
    if (this.writes.size === 0) {
      this.runHooks(this.pinned ? await this.pinned : this.mirrorRevision !== undefined ? String(this.mirrorRevision) : '0');
      return true;
    }
    const written = this.writtenFormations();
    const compare: ICompare[] = [];
    const fences: { formationId: string; token: FenceToken }[] = [];
    for (const formationId of [...written].sort()) {
      const token = this.unfenced.has(formationId) ? undefined : fence?.(formationId);
      if (!token) continue;
      fences.push({ formationId, token });
      compare.push({ key: Buffer.from(token.key), target: 'Create', result: 'Equal', create_revision: token.createRevision });
    }
    const inScope = (f: string | undefined): boolean => f === undefined || written.has(f);
    for (const [key, r] of this.reads) if (inScope(r.formation)) compare.push({ key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: r.modRevision });
    for (const [start, r] of this.ranges) {
      if (inScope(r.formation)) compare.push({ key: Buffer.from(start), range_end: Buffer.from(prefixEnd(start)), target: 'Mod', result: 'Less', mod_revision: r.below });
    }
    const success: IRequestOp[] = [...this.writes].map(([key, w]) =>
      w.value === null ? { request_delete_range: { key: Buffer.from(key) } } : { request_put: { key: Buffer.from(key), value: Buffer.from(w.value) } },
    );
    const failure: IRequestOp[] = fences.map((f) => ({ request_range: { key: Buffer.from(f.token.key) } }));
    const res = await this.client.kv.txn({ compare, success, failure });
    if (res.succeeded) {
      this.runHooks(res.header.revision);
      return true;
    }
    for (const [i, f] of fences.entries()) {
      const kv = res.responses[i]?.response_range?.kvs[0];
      if (kv?.create_revision !== f.token.createRevision) throw new FencedError(f.formationId);
    }
    return false;
  }

  private runHooks(revision: string): void {
    for (const hook of this.hooks) hook(revision);
  }
}

/** etcd compacted the revision an attempt read at (it ran for long): run it again. */
function isCompacted(err: unknown): boolean {
  return /required revision has been compacted/.test(String((err as Error)?.message));
}

/**
 * Runs `work` on attempts until one commits (see the module): a conflict runs it again from
 * scratch on a new snapshot after a short random pause, at most {@link MAX_TRANSACTION_ATTEMPTS}
 * times. `newAttempt` gets the attempt's number (1 for the first): the store gives only the
 * first a mirror to read from, so that a commit that failed on a lagging mirror reads etcd next. An error thrown by `work` ends it at once, with nothing written.
 *
 * @throws PghaError `PGHA_ERR_STORE_UNAVAILABLE` after that many conflicts in a row;
 *   FencedError when the fence refused the commit.
 */
export async function runEtcdTransaction<T>(newAttempt: (n: number) => TxnAttempt, work: (attempt: TxnAttempt) => Promise<T>, fence: EtcdFence | undefined): Promise<T> {
  for (let n = 1; ; n++) {
    const attempt = newAttempt(n);
    let result: T;
    try {
      result = await work(attempt);
      if (await attempt.commit(fence)) return result;
    } catch (err) {
      if (!isCompacted(err)) throw err;
    }
    if (n >= MAX_TRANSACTION_ATTEMPTS) {
      throw new PghaError('PGHA_ERR_STORE_UNAVAILABLE', `the etcd store changed under this transaction ${n} times in a row (other writers on the same keys); nothing was written`, {
        hint: 'retry; if it lasts, check that only one monitor decides for each formation',
      });
    }
    await delay(Math.floor(Math.random() * 10 * n));
  }
}
