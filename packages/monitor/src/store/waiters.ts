/**
 * Waiters of the store's notifiers (`StoreNotifier`), keyed by node id or formation: each
 * adapter's notifier registers them and wakes them when the store commits what they wait for.
 */
import type { Waiter } from './store-port.js';

/** Resolves (and forgets) every waiter registered under `key`. */
export function wake<K>(waiters: Map<K, Set<() => void>>, key: K): void {
  const set = waiters.get(key);
  if (!set) return;
  waiters.delete(key);
  for (const fn of set) fn();
}

/** Registers a {@link Waiter} under `key`: resolved by {@link wake} of that key, after `timeoutMs`, or by its `cancel`. */
export function addWaiter<K>(waiters: Map<K, Set<() => void>>, key: K, timeoutMs: number): Waiter {
  let done!: () => void;
  const promise = new Promise<void>((resolve) => {
    const timer = setTimeout(finish, timeoutMs);
    function finish(): void {
      clearTimeout(timer);
      resolve();
    }
    done = finish;
  });
  const set = waiters.get(key) ?? new Set();
  set.add(done);
  waiters.set(key, set);
  return {
    promise,
    cancel: () => {
      set.delete(done);
      if (set.size === 0 && waiters.get(key) === set) waiters.delete(key);
      done();
    },
  };
}
