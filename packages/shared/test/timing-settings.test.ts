/**
 * Timing settings an operator may change (`TIMING_SETTINGS`, `timingProblems`): the defaults
 * fit together; a combination that lets the monitor promote before a cut-off primary has
 * fenced itself, or blames a standby before its dead primary, is refused with the numbers.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_FORMATION_SETTINGS, FormationSettingsUpdate, TIMING_SETTINGS, selfFencingMarginMs, timingProblems, timingSettingName } from '../src/index.js';

describe('timingProblems', () => {
  it('none for the defaults (margin 600 ms)', () => {
    expect(selfFencingMarginMs(DEFAULT_FORMATION_SETTINGS)).toBe(600);
    expect(timingProblems(DEFAULT_FORMATION_SETTINGS)).toEqual([]);
  });

  it('a partition timeout that lets the old primary fence after the monitor may promote: the latest fence, the timeout, the overlap', () => {
    const [problem, ...rest] = timingProblems({ ...DEFAULT_FORMATION_SETTINGS, networkPartitionTimeoutMs: 2000 });
    expect(rest).toEqual([]);
    expect(problem).toMatch(/fences itself as late as 2300 ms after its last answered report \(network-partition-timeout 2000 ms, keeper-report-interval 500 ms, and 400 ms/);
    expect(problem).toMatch(/after node-unhealthy-timeout 2000 ms: two primaries could take writes for up to 300 ms\. Raise node-unhealthy-timeout above 2300 ms/);
  });

  it('a slow report interval counts too (the keeper fences from its last answered report)', () => {
    // max(1000, 1500 + 100 + 500) + 300 = 2400 > 2000.
    expect(timingProblems({ ...DEFAULT_FORMATION_SETTINGS, keeperReportIntervalMs: 1500 })[0]).toMatch(/as late as 2400 ms/);
  });

  it('a margin of exactly 0 is refused; 1 ms is enough', () => {
    expect(timingProblems({ ...DEFAULT_FORMATION_SETTINGS, nodeUnhealthyTimeoutMs: 1400 })).toHaveLength(1);
    expect(timingProblems({ ...DEFAULT_FORMATION_SETTINGS, nodeUnhealthyTimeoutMs: 1401 })).toEqual([]);
  });

  it('a streaming timeout not above the unhealthy timeout', () => {
    expect(timingProblems({ ...DEFAULT_FORMATION_SETTINGS, standbyStreamingTimeoutMs: 2000 })).toEqual([expect.stringMatching(/standby-streaming-timeout 2000 ms is not above node-unhealthy-timeout 2000 ms/)]);
  });
});

describe('TIMING_SETTINGS and the settings change', () => {
  it('names every timing setting once, and back', () => {
    for (const [name, s] of Object.entries(TIMING_SETTINGS)) expect(timingSettingName(s.key)).toBe(name);
    expect(new Set(Object.values(TIMING_SETTINGS).map((s) => s.key)).size).toBe(Object.keys(TIMING_SETTINGS).length);
  });

  it('takes values within the ranges, refuses others naming the bound, and an empty change', () => {
    expect(FormationSettingsUpdate.safeParse({ nodeUnhealthyTimeoutMs: 3000 }).success).toBe(true);
    const low = FormationSettingsUpdate.safeParse({ healthProbeIntervalMs: 50 });
    expect(low.success).toBe(false);
    expect(low.error?.issues[0]).toMatchObject({ path: ['healthProbeIntervalMs'], message: 'health-probe-interval must be at least 100 ms' });
    expect(FormationSettingsUpdate.safeParse({ healthProbeRetries: 1.5 }).success).toBe(false);
    expect(FormationSettingsUpdate.safeParse({}).success).toBe(false);
    expect(FormationSettingsUpdate.safeParse({ catchupLagBytes: 1 }).success).toBe(false);
  });
});
