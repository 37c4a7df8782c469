import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { addWaiter, wake } from '../src/store/waiters.js';

describe('addWaiter (what a goal long-poll waits on)', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('resolves true when woken: something was committed, the long-poll reads the goal again', async () => {
    const waiters = new Map<number, Set<() => void>>();
    const w = addWaiter(waiters, 7, 500);
    wake(waiters, 7);
    await expect(w.promise).resolves.toBe(true);
    expect(waiters.size).toBe(0);
  });

  it('resolves false after its timeout: nothing was committed, the goal read before the wait is current', async () => {
    const waiters = new Map<number, Set<() => void>>();
    const w = addWaiter(waiters, 7, 500);
    wake(waiters, 8);
    vi.advanceTimersByTime(499);
    let settled: boolean | undefined;
    void w.promise.then((v) => (settled = v));
    await Promise.resolve();
    expect(settled).toBeUndefined();
    vi.advanceTimersByTime(1);
    await expect(w.promise).resolves.toBe(false);
    // A wake after the timeout changes nothing.
    wake(waiters, 7);
    await expect(w.promise).resolves.toBe(false);
  });

  it('resolves false when cancelled, and forgets the waiter', async () => {
    const waiters = new Map<number, Set<() => void>>();
    const w = addWaiter(waiters, 7, 500);
    w.cancel();
    await expect(w.promise).resolves.toBe(false);
    expect(waiters.size).toBe(0);
  });
});
