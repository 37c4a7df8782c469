/**
 * The monitor's own lag (`driver/monitor-lag.ts`): a pause in all keepers' reports counts as
 * lag, except the time before the monitor decided for them (a formation gained on etcd).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MonitorLag } from '../src/driver/monitor-lag.js';

let nowMs = 1_000_000;

describe('MonitorLag', () => {
  afterEach(() => vi.restoreAllMocks());

  function clock(): void {
    nowMs = 1_000_000;
    vi.spyOn(performance, 'now').mockImplementation(() => nowMs);
  }

  it('a pause of every keeper longer than 1 s counts as lag for 10 s', () => {
    clock();
    const lag = new MonitorLag();
    lag.arrived()();
    nowMs += 12_000;
    lag.arrived()();
    expect(lag.lagMs()).toBe(12_000);
    // Keepers report every 500 ms again: the pause stops counting 10 s later.
    for (let i = 0; i < 21; i++) {
      nowMs += 500;
      lag.arrived()();
    }
    expect(lag.lagMs()).toBe(0);
  });

  it('the time before decidesFromNow (reports went to another monitor) is not lag', () => {
    clock();
    const lag = new MonitorLag();
    // A monitor that led no formation for 12 s gains one; its keepers' first report comes 300 ms later.
    nowMs += 12_000;
    lag.decidesFromNow();
    nowMs += 300;
    lag.arrived()();
    expect(lag.lagMs()).toBe(0);
    // A real pause after the gain still counts.
    nowMs += 1_500;
    expect(lag.lagMs()).toBe(1_500);
  });
});
