/**
 * This monitor's copy of the store's formations and nodes (`<p>/v1/formations/`,
 * `<p>/v1/nodes/`), kept by the store's watch, so that a keeper's report, the timer's snapshot
 * and the prober read no etcd at all: at 3,000 nodes, reading a formation's nodes from etcd
 * for every batch of reports, and every node of the store twice a second for the timer and the
 * prober, cost the monitors and etcd more CPU than the machine had (bench/README.md).
 *
 * **What a read from the mirror is.** The mirror is loaded by one read of both prefixes at one
 * revision R, then fed by a watch from R + 1; it applies each watch answer whole, in revision
 * order, so after each answer it is exactly the store's content at its {@link StoreMirror.revision}
 * (the last revision it applied). A transaction that reads from it records what it read, as a
 * read from etcd: a key's mod revision (compared `==` at commit), a range's "nothing in it
 * changed after the mirror's revision" (compared `modRevision < revision + 1`). A commit made
 * on a mirror that lagged behind the store fails its compares and runs again, reading etcd
 * (`etcd-transaction.ts`): the mirror makes reads cheaper, never a commit less checked.
 *
 * **Its own commits.** A commit of this monitor is in the mirror once the watch brings it back
 * (milliseconds): a read of a formation this monitor wrote at revision C first waits until the
 * mirror reached C ({@link StoreMirror.caughtUp}), so that its next decision on the formation
 * sees its own last one (and its commit does not fail on it).
 *
 * Source: the "informer" of Kubernetes' client-go (list at a revision, then watch from it, read
 * from the local copy, write with optimistic concurrency).
 */
import type { Etcd3, IKeyValue, IWatchResponse } from 'etcd3';
import { kvOf, rangeAll, type AttemptMirror, type Kv } from './etcd-transaction.js';
import { prefixEnd, type StoreKeys } from './keys.js';

/** Longest wait (ms) for the mirror to reach this monitor's own last commit before a read goes to etcd instead. */
export const MIRROR_CATCH_UP_TIMEOUT_MS = 1000;

/** The directory of a key: everything up to and including its last `/`. */
function dirOf(key: string): string {
  return key.slice(0, key.lastIndexOf('/') + 1);
}

/** See the module. */
export class StoreMirror implements AttemptMirror {
  private readonly kvs = new Map<string, Kv>();
  /** Keys by directory (`<p>/v1/nodes/<f>/` → its node keys), for a formation's range without a scan. */
  private readonly dirs = new Map<string, Set<string>>();
  /** A directory's keys as {@link range} last returned them, until the directory changes. */
  private readonly sortedDirs = new Map<string, readonly Kv[]>();
  /** The store revision the mirror's content is at (0n: not loaded). */
  private rev = 0n;
  /** This monitor's last commit that wrote each formation (revision). */
  private readonly ownCommits = new Map<string, bigint>();
  /** This monitor's last commit. */
  private lastOwnCommit = 0n;
  private readonly waiters = new Set<{ revision: bigint; resolve: () => void }>();
  private loaded = false;

  constructor(private readonly keys: StoreKeys) {}

  /** Whether `key` (or every key under the prefix `key`) is in the mirror's part of the store. */
  covers(key: string): boolean {
    return this.loaded && (key.startsWith(this.keys.formations) || key.startsWith(this.keys.allNodes));
  }

  /** The store revision the mirror's content is at (decimal). */
  get revision(): string {
    return String(this.rev);
  }

  /**
   * Loads both prefixes at one revision and returns it: the store's watch must start at the
   * next one. Replaces whatever the mirror held (after a watch that etcd cancelled).
   */
  async load(client: Etcd3): Promise<string> {
    const formations = await rangeAll(client, this.keys.formations, prefixEnd(this.keys.formations));
    const nodes = await rangeAll(client, this.keys.allNodes, prefixEnd(this.keys.allNodes), formations.revision);
    this.kvs.clear();
    this.dirs.clear();
    this.sortedDirs.clear();
    for (const kv of [...formations.kvs, ...nodes.kvs]) this.set(kv);
    this.rev = BigInt(formations.revision);
    this.loaded = true;
    this.wakeWaiters();
    return formations.revision;
  }

  /** Stops serving reads (the watch ended): reads go to etcd until {@link load} runs again. */
  unload(): void {
    this.loaded = false;
  }

  /**
   * Applies one watch answer (its events, in order); the mirror is then at its last event's
   * revision. `each` sees every event first, with the key's value before it as the mirror held
   * it (undefined when absent or not mirrored).
   */
  apply(res: IWatchResponse, each: (kv: IKeyValue, deleted: boolean, previous: Kv | undefined) => void = () => undefined): void {
    let last = this.rev;
    for (const e of res.events) {
      const key = e.kv.key.toString();
      const rev = BigInt(e.kv.mod_revision);
      if (rev > last) last = rev;
      const deleted = e.type === 'Delete';
      const covered = this.covers(key);
      each(e.kv, deleted, covered ? this.kvs.get(key) : undefined);
      if (!covered) continue;
      if (deleted) this.remove(key);
      else this.set(kvOf(e.kv));
    }
    if (last > this.rev) {
      this.rev = last;
      this.wakeWaiters();
    }
  }

  private set(kv: Kv): void {
    this.kvs.set(kv.key, kv);
    const dir = dirOf(kv.key);
    let set = this.dirs.get(dir);
    if (!set) this.dirs.set(dir, (set = new Set()));
    set.add(kv.key);
    this.sortedDirs.delete(dir);
  }

  private remove(key: string): void {
    this.kvs.delete(key);
    const dir = dirOf(key);
    const set = this.dirs.get(dir);
    set?.delete(key);
    if (set?.size === 0) this.dirs.delete(dir);
    this.sortedDirs.delete(dir);
  }

  /** A key as the mirror holds it; undefined when absent. The same object until the key changes. */
  get(key: string): Kv | undefined {
    return this.kvs.get(key);
  }

  /**
   * Every key under `prefix`, by key. A directory that holds keys has no subdirectory in the
   * mirrored part of the layout (`keys.ts`: `formations/<f>`, `nodes/<f>/<id>`), so its keys are
   * the directory's own; any other prefix (`nodes/`) is a scan.
   */
  range(prefix: string): readonly Kv[] {
    const direct = this.dirs.get(prefix);
    if (!direct) return [...this.kvs.values()].filter((kv) => kv.key.startsWith(prefix)).sort(byKey);
    // A directory's keys, sorted once per change of the directory (every report reads its formation's).
    let sorted = this.sortedDirs.get(prefix);
    if (!sorted) this.sortedDirs.set(prefix, (sorted = Object.freeze([...direct].map((k) => this.kvs.get(k)!).sort(byKey))));
    return sorted;
  }

  /** This monitor committed a write of these formations at `revision`. */
  committed(formations: Iterable<string>, revision: string): void {
    const rev = BigInt(revision);
    if (rev > this.lastOwnCommit) this.lastOwnCommit = rev;
    for (const f of formations) if ((this.ownCommits.get(f) ?? 0n) < rev) this.ownCommits.set(f, rev);
    if (this.ownCommits.size > 100_000) this.ownCommits.clear();
  }

  /** Whether the mirror holds this monitor's own last commit of `formationId` now (see {@link caughtUp}). */
  caughtUpNow(formationId: string | undefined): boolean {
    return this.loaded && this.rev >= this.ownCommit(formationId);
  }

  private ownCommit(formationId: string | undefined): bigint {
    return formationId === undefined ? this.lastOwnCommit : (this.ownCommits.get(formationId) ?? 0n);
  }

  /**
   * Waits until the mirror holds this monitor's own last commit of `formationId` (see the
   * module), at most {@link MIRROR_CATCH_UP_TIMEOUT_MS}; undefined (a read across formations):
   * its last commit of any.
   *
   * @returns false when the mirror did not get there in time (or is not loaded): read etcd instead.
   */
  async caughtUp(formationId: string | undefined): Promise<boolean> {
    if (!this.loaded) return false;
    const need = this.ownCommit(formationId);
    if (this.rev >= need) return true;
    return new Promise<boolean>((resolve) => {
      const waiter = {
        revision: need,
        resolve: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(this.loaded && this.rev >= need);
        },
      };
      const timer = setTimeout(waiter.resolve, MIRROR_CATCH_UP_TIMEOUT_MS);
      timer.unref();
      this.waiters.add(waiter);
    });
  }

  private wakeWaiters(): void {
    for (const w of [...this.waiters]) if (this.rev >= w.revision) w.resolve();
  }

  /** Ends every wait (the store closes). */
  close(): void {
    this.loaded = false;
    for (const w of [...this.waiters]) w.resolve();
  }
}

function byKey(a: Kv, b: Kv): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}
