/**
 * How often `pgha up`'s console asks the monitor for the formation's state (`nextWatchMs`): fast
 * while anything moves, once a second at rest.
 */
import { describe, expect, it } from 'vitest';
import { WATCH_AT_REST_MS, WATCH_MOVING_MS, WATCH_SETTLE_MS, nextWatchMs } from '../src/up.js';

const primary = { reported_state: 'primary', goal_state: 'primary', health: 'good' };
const secondary = { reported_state: 'secondary', goal_state: 'secondary', health: 'good' };
const NOW = 1_000_000;
const quietFor = (ms: number) => NOW - ms;

describe("pgha up's console", () => {
  it('asks once a second when every node is at its goal and healthy, and nothing changed for a while', () => {
    expect(nextWatchMs([primary, secondary], quietFor(WATCH_SETTLE_MS), NOW)).toBe(WATCH_AT_REST_MS);
    expect(WATCH_AT_REST_MS).toBe(1000);
  });

  it('asks every 250 ms while a node moves, is not healthy, or just changed, and while the monitor does not answer', () => {
    const long = quietFor(60_000);
    expect(nextWatchMs([{ ...primary, goal_state: 'draining' }, secondary], long, NOW)).toBe(WATCH_MOVING_MS);
    expect(nextWatchMs([primary, { ...secondary, reported_state: 'catchingup' }], long, NOW)).toBe(WATCH_MOVING_MS);
    expect(nextWatchMs([primary, { ...secondary, health: 'bad' }], long, NOW)).toBe(WATCH_MOVING_MS);
    expect(nextWatchMs([primary, { ...secondary, health: 'unknown' }], long, NOW)).toBe(WATCH_MOVING_MS);
    expect(nextWatchMs([primary, secondary], quietFor(WATCH_SETTLE_MS - 1), NOW)).toBe(WATCH_MOVING_MS);
    expect(nextWatchMs([], long, NOW)).toBe(WATCH_MOVING_MS);
    expect(WATCH_MOVING_MS).toBe(250);
  });
});
