/**
 * The etcd adapter's in-process locks: one async mutex (`async-mutex`) per group or formation,
 * so that this monitor's own transactions on a group run one at a time, as under the Postgres
 * adapter's advisory locks. Other monitors' transactions are not held here: they conflict at
 * commit (`etcd-transaction.ts`).
 */
import { Mutex, type MutexInterface } from 'async-mutex';

/** Mutexes by key, made on first use and dropped when no one holds or waits for them. */
export class KeyedLocks {
  private readonly locks = new Map<string, { mutex: Mutex; users: number }>();

  /** Waits for `key`'s mutex; resolves with the function that releases it. */
  async acquire(key: string): Promise<MutexInterface.Releaser> {
    let entry = this.locks.get(key);
    if (!entry) {
      entry = { mutex: new Mutex(), users: 0 };
      this.locks.set(key, entry);
    }
    entry.users++;
    const e = entry;
    const release = await e.mutex.acquire();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      if (--e.users === 0 && this.locks.get(key) === e) this.locks.delete(key);
    };
  }

  /** Whether a transaction holds `key`'s mutex or waits for it. */
  isLocked(key: string): boolean {
    return this.locks.has(key);
  }
}

/**
 * The locks one transaction holds: taking one it holds already is a no-op (a decision locks its
 * group, then evaluates it again under the same lock); all are released when it ends.
 */
export class HeldLocks {
  private readonly held = new Map<string, Promise<MutexInterface.Releaser>>();

  constructor(private readonly locks: KeyedLocks) {}

  async take(key: string): Promise<void> {
    let taking = this.held.get(key);
    if (!taking) {
      taking = this.locks.acquire(key);
      this.held.set(key, taking);
    }
    await taking;
  }

  /** Releases every lock, also those still being waited for (released once granted). */
  releaseAll(): void {
    for (const taking of this.held.values()) void taking.then((release) => release());
    this.held.clear();
  }
}

/** The lock key of a group. */
export function groupLockKey(formationId: string, groupId: number): string {
  return `group\u0000${formationId}\u0000${groupId}`;
}

/** The lock key of a formation. */
export function formationLockKey(formationId: string): string {
  return `formation\u0000${formationId}`;
}
