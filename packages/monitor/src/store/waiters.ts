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

/**
 * Registers a {@link Waiter} under `key`: resolved by {@link wake} of that key (with true), after
 * `timeoutMs` or by its `cancel` (with false).
 */
export function addWaiter<K>(waiters: Map<K, Set<() => void>>, key: K, timeoutMs: number): Waiter {
  let finish!: (woken: boolean) => void;
  const promise = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => finish(false), timeoutMs);
    finish = (woken) => {
      clearTimeout(timer);
      resolve(woken);
    };
  });
  const woken = (): void => finish(true);
  const set = waiters.get(key) ?? new Set();
  set.add(woken);
  waiters.set(key, set);
  return {
    promise,
    cancel: () => {
      set.delete(woken);
      if (set.size === 0 && waiters.get(key) === set) waiters.delete(key);
      finish(false);
    },
  };
}
