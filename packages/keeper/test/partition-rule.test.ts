/**
 * The keeper's partition rule (self-fencing), without Postgres: every node state, with and
 * without a writable goal, Postgres up or down, across the monitor's and the standbys'
 * silence, and the margin of the default settings.
 */
import { DEFAULT_FORMATION_SETTINGS, FENCE_CHECK_INTERVAL_MS, FENCE_QUERY_TIMEOUT_MS, NODE_STATES, REPORT_SLACK_MS, WRITABLE_STATES, keeperSettingsOf, selfFencingMarginMs, type NodeState } from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { monitorQuietForMs, partitionAction, watchStandbysAfterMs, type PartitionFacts } from '../src/fsm/partition-rule.js';
import { findTransition } from '../src/fsm/transition-table.js';

const settings = keeperSettingsOf(DEFAULT_FORMATION_SETTINGS);
const NPT = settings.networkPartitionTimeoutMs;
/** When the watchdog starts pinging the standbys: half the timeout and a report's slack (600 ms). */
const WATCH = NPT / 2 + Math.min(REPORT_SLACK_MS, NPT / 4);
const now = 1_000_000;

function facts(over: Partial<PartitionFacts> = {}): PartitionFacts {
  return { nowMs: now, currentState: 'primary', goalState: 'primary', postgresRunning: true, otherNodes: 1, lastMonitorContactMs: now, lastStandbyReplyMs: now, settings, ...over };
}

/** Silences (ms) around every boundary of the rule. */
const SILENCES: (number | null)[] = [0, 1, NPT / 2 - 1, NPT / 2, NPT / 2 + 1, WATCH - 1, WATCH, WATCH + 1, NPT - 1, NPT, NPT + 1, 10 * NPT, null];

/** The rule, restated as a truth table, for the exhaustive check. */
function expected(f: PartitionFacts): 'none' | 'watch-standbys' | 'fence' {
  const writable = WRITABLE_STATES.has(f.currentState) || (f.goalState !== undefined && WRITABLE_STATES.has(f.goalState));
  if (!writable || !f.postgresRunning) return 'none';
  if (f.otherNodes === 0 || (f.otherNodes === undefined && f.currentState === 'single')) return 'none';
  const monitor = f.lastMonitorContactMs === null ? Infinity : f.nowMs - f.lastMonitorContactMs;
  const standby = f.lastStandbyReplyMs === null ? Infinity : f.nowMs - f.lastStandbyReplyMs;
  if (monitor < WATCH) return 'none';
  if (monitor < NPT || standby < NPT / 2) return 'watch-standbys';
  return 'fence';
}

describe('partitionAction (self-fencing rule)', () => {
  it('matches the truth table for every state, goal, Postgres status and pair of silences', () => {
    let cases = 0;
    const mismatches: string[] = [];
    const goals: (NodeState | undefined)[] = [undefined, ...NODE_STATES];
    const combos = NODE_STATES.flatMap((currentState) =>
      goals.flatMap((goalState) => [true, false].flatMap((postgresRunning) => [undefined, 0, 1, 2].map((otherNodes) => ({ currentState, goalState, postgresRunning, otherNodes })))),
    );
    for (const combo of combos) {
      for (const m of SILENCES) {
        for (const r of SILENCES) {
          const f = facts({ ...combo, lastMonitorContactMs: m === null ? null : now - m, lastStandbyReplyMs: r === null ? null : now - r });
          const got = partitionAction(f);
          // One assertion at the end: an expect per case would cost seconds over ~370,000 cases.
          if (got.action !== expected(f) || !got.reason.trim()) mismatches.push(JSON.stringify({ ...combo, m, r, got }));
          cases++;
        }
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    expect(cases).toBe(NODE_STATES.length * (NODE_STATES.length + 1) * 2 * 4 * SILENCES.length ** 2);
  }, 30_000);

  it('never fences while the monitor answered within networkPartitionTimeoutMs, whatever the standbys do', () => {
    for (const m of [0, NPT / 2, NPT - 1]) {
      for (const r of SILENCES) {
        expect(partitionAction(facts({ lastMonitorContactMs: now - m, lastStandbyReplyMs: r === null ? null : now - r })).action).not.toBe('fence');
      }
    }
  });

  it('never fences a standby, a fenced or a stopped node', () => {
    for (const s of ['secondary', 'catchingup', 'report_lsn', 'prepare_promotion', 'demote_timeout', 'demoted', 'draining', 'maintenance'] as const) {
      expect(partitionAction(facts({ currentState: s, goalState: s, lastMonitorContactMs: null, lastStandbyReplyMs: null })).action).toBe('none');
    }
    expect(partitionAction(facts({ postgresRunning: false, lastMonitorContactMs: null, lastStandbyReplyMs: null })).action).toBe('none');
  });

  it('never fences a node alone in its group (nothing could be promoted instead), nor a single before the first answer', () => {
    const cutOff = { lastMonitorContactMs: now - 10 * NPT, lastStandbyReplyMs: null };
    expect(partitionAction(facts({ ...cutOff, currentState: 'single', goalState: 'single', otherNodes: 0 })).action).toBe('none');
    expect(partitionAction(facts({ ...cutOff, currentState: 'wait_primary', goalState: 'wait_primary', otherNodes: 0 })).action).toBe('none');
    expect(partitionAction(facts({ ...cutOff, currentState: 'single', goalState: undefined, otherNodes: undefined })).action).toBe('none');
    // A keeper restarted during a partition, in a group that had standbys.
    expect(partitionAction(facts({ ...cutOff, currentState: 'primary', goalState: undefined, otherNodes: undefined })).action).toBe('fence');
    expect(partitionAction(facts({ ...cutOff, currentState: 'single', goalState: 'wait_primary', otherNodes: 1 })).action).toBe('fence');
  });

  it('fences every writable state cut off from the monitor and the standbys, and a node on its way to one', () => {
    for (const s of WRITABLE_STATES) {
      const got = partitionAction(facts({ currentState: s, goalState: s, lastMonitorContactMs: now - NPT, lastStandbyReplyMs: null }));
      expect(got.action, s).toBe('fence');
      expect(got.reason).toContain('network partition');
    }
    // A secondary assigned stop_replication (promoting) is writable as soon as it has promoted.
    expect(partitionAction(facts({ currentState: 'prepare_promotion', goalState: 'stop_replication', lastMonitorContactMs: now - NPT, lastStandbyReplyMs: null })).action).toBe('fence');
  });

  it('a standby that replied within half the timeout holds the fence off, and it fences once that reply ages out', () => {
    expect(partitionAction(facts({ lastMonitorContactMs: now - 5 * NPT, lastStandbyReplyMs: now - (NPT / 2 - 1) })).action).toBe('watch-standbys');
    expect(partitionAction(facts({ lastMonitorContactMs: now - 5 * NPT, lastStandbyReplyMs: now - NPT / 2 })).action).toBe('fence');
  });

  it('says how long the monitor and the standbys were silent in whole milliseconds, whatever the clocks', () => {
    for (const nowMs of [now + 0.531005859375, now + 0.5]) {
      for (const [m, r] of [[NPT + 0.25, null], [NPT + 1384.75, NPT / 2 + 0.125], [NPT / 2 + 0.3, 1.7], [NPT + 2.2, 3.3]] as const) {
        const got = partitionAction(facts({ nowMs, settings: { ...settings, networkPartitionTimeoutMs: NPT + 1 }, lastMonitorContactMs: now - m, lastStandbyReplyMs: r === null ? null : now - r }));
        expect(got.reason, JSON.stringify({ nowMs, m, r })).not.toMatch(/\d\.\d/);
      }
    }
  });

  it('follows the formation setting', () => {
    const slow = { ...settings, networkPartitionTimeoutMs: 20_000 };
    expect(partitionAction(facts({ settings: slow, lastMonitorContactMs: now - 15_000, lastStandbyReplyMs: null })).action).toBe('watch-standbys');
    expect(partitionAction(facts({ settings: slow, lastMonitorContactMs: now - 20_000, lastStandbyReplyMs: null })).action).toBe('fence');
  });
});

describe('self-fencing margin (docs/timeouts.md)', () => {
  it('the defaults fence at least 600 ms before the monitor may count the keeper silent', () => {
    const d = DEFAULT_FORMATION_SETTINGS;
    const latestFence = Math.max(d.networkPartitionTimeoutMs, d.keeperReportIntervalMs + REPORT_SLACK_MS + d.networkPartitionTimeoutMs / 2) + FENCE_CHECK_INTERVAL_MS + FENCE_QUERY_TIMEOUT_MS;
    expect(selfFencingMarginMs(d)).toBe(d.nodeUnhealthyTimeoutMs - latestFence);
    expect(selfFencingMarginMs(d)).toBe(600);
    // DESIGN.md: self-fencing strictly shorter than the failover delay.
    expect(d.networkPartitionTimeoutMs).toBeLessThan(d.nodeUnhealthyTimeoutMs);
  });

  it('is negative (unsafe) when networkPartitionTimeoutMs reaches nodeUnhealthyTimeoutMs', () => {
    expect(selfFencingMarginMs({ ...DEFAULT_FORMATION_SETTINGS, networkPartitionTimeoutMs: DEFAULT_FORMATION_SETTINGS.nodeUnhealthyTimeoutMs })).toBeLessThan(0);
  });
});

describe('the keeper rows a self-fenced node needs', () => {
  it.each([
    ['demote_timeout', 'demoted', 'stopPostgres'],
    ['demote_timeout', 'catchingup', 'rewindOrBaseBackup'],
    ['demote_timeout', 'primary', 'configurePrimary'],
    ['demote_timeout', 'wait_primary', 'configurePrimary'],
    ['demote_timeout', 'single', 'configurePrimary'],
  ] as const)('%s -> %s runs %s', (current, goal, run) => {
    expect(findTransition(current, goal)?.run).toBe(run);
  });
});

describe('watchStandbysAfterMs (when the watchdog starts pinging the standbys)', () => {
  it('is half the timeout and a report\'s slack: an idle keeper\'s reports, every 500 ms, never reach it', () => {
    expect(watchStandbysAfterMs(settings)).toBe(600);
    // A report sent 510 ms after the last answered one and answered 20 ms later: no ping.
    expect(partitionAction(facts({ lastMonitorContactMs: now - 530, lastStandbyReplyMs: null })).action).toBe('none');
  });

  it('leaves at least a quarter of the timeout for a ping to refresh a reachable standby\'s reply before the fence', () => {
    for (const npt of [200, 400, 1000, 2000, 20_000]) {
      const s = { ...settings, networkPartitionTimeoutMs: npt };
      expect(watchStandbysAfterMs(s)).toBeLessThanOrEqual((3 * npt) / 4);
      // Pinged from then on every FENCE_CHECK_INTERVAL_MS, a standby that answers keeps the node up.
      const firstPing = watchStandbysAfterMs(s);
      const atTimeout = facts({ settings: s, lastMonitorContactMs: now - npt, lastStandbyReplyMs: now - (npt - firstPing) });
      expect(partitionAction(atTimeout).action).toBe('watch-standbys');
    }
  });
});

describe('monitorQuietForMs (the watchdog sleeps while it is positive)', () => {
  it('is positive only where the rule can only answer none, whatever the other facts', () => {
    for (const monitorAgo of [0, 1, NPT / 4, NPT / 2 - 1, NPT / 2, NPT / 2 + 1, WATCH - 1, WATCH, NPT, 5 * NPT]) {
      for (const replyAgo of [null, 0, NPT / 2, NPT]) {
        for (const combo of [{}, { postgresRunning: false }, { otherNodes: 0 }, { currentState: 'secondary' as const, goalState: 'secondary' as const }]) {
          const f = facts({ ...combo, lastMonitorContactMs: now - monitorAgo, lastStandbyReplyMs: replyAgo === null ? null : now - replyAgo });
          const quiet = monitorQuietForMs(f.lastMonitorContactMs, f.nowMs, f.settings);
          expect(quiet).toBe(WATCH - monitorAgo);
          if (quiet > 0) expect(partitionAction(f).action).toBe('none');
        }
      }
    }
    expect(monitorQuietForMs(null, now, facts().settings)).toBe(0);
  });
});
