/**
 * A short run of the failover benchmark (`npm run bench`: 1 run of each scenario), so that the
 * benchmark cannot rot: on pgha with one monitor every scenario it can run, and on pgha with
 * three monitors on etcd the node crash and the two scenarios that kill the leading monitor;
 * then one rolling restart (`pgha perform restart`) of two nodes.
 * It checks what the benchmark must never report: a lost acknowledged write, a failover where
 * none should happen, a run that could not finish. Timings are not asserted here; `npm run
 * bench` prints them.
 */
import { describe, expect, it } from 'vitest';
import { bench, type BenchReport } from '../bench/failover.js';
import { MONITOR_SCENARIOS, SCENARIOS, needsMonitorGroup } from '../bench/lib/scenarios.js';
import { rollingRestartBench } from '../bench/rolling-restart.js';

/** Every run finished, lost nothing and failed over only where it should. */
function expectClean(report: BenchReport): void {
  for (const r of report.results) {
    expect(r.error, `${r.scenario}: ${r.error}`).toBeUndefined();
    expect(r.lost, `${r.scenario} lost writes`).toBe(0);
    expect(r.unexpectedFailovers, r.scenario).toBe(0);
    expect(r.acks).toBeGreaterThan(100);
  }
}

describe('npm run bench, one run of each scenario', () => {
  it('on pgha: runs every scenario of one monitor, skips those that kill the leading monitor', async () => {
    const lines: string[] = [];
    const report = await bench({ runs: 1, systems: ['pgha'], scenarios: [...SCENARIOS], idleSeconds: 2, outDir: undefined, log: (l) => lines.push(l) });
    console.log(lines.join('\n'));
    expect(report.results.map((r) => r.scenario)).toEqual(SCENARIOS.filter((s) => !needsMonitorGroup(s)));
    expect(lines.filter((l) => l.includes('not run: one monitor'))).toHaveLength(MONITOR_SCENARIOS.length);
    expectClean(report);
    expect(report.footprints[0]!.keeperPeakRssMb).toBeGreaterThan(0);
  }, 600_000);

  it('on pgha-3-monitors: the node crash, and the leading monitor killed alone and with the primary', async () => {
    const lines: string[] = [];
    const scenarios = ['node-crash', ...MONITOR_SCENARIOS] as const;
    const report = await bench({ runs: 1, systems: ['pgha-3-monitors'], scenarios: [...scenarios], idleSeconds: 0, outDir: undefined, log: (l) => lines.push(l) });
    console.log(lines.join('\n'));
    expect(report.results.map((r) => r.scenario)).toEqual([...scenarios]);
    expectClean(report);
    for (const r of report.results.filter((x) => needsMonitorGroup(x.scenario))) expect(r.newLeaderMs, r.scenario).toBeGreaterThan(0);
    // The primary's node and its monitor killed together: the standby took the writes.
    expect(report.results.find((r) => r.scenario === 'monitor-and-node-crash')!.writesBackMs).toBeGreaterThan(0);
  }, 600_000);

  it('then the rolling restart (npm run bench:restart): one run on two nodes, nothing lost', async () => {
    const lines: string[] = [];
    const runs = await rollingRestartBench({ runs: 1, nodes: [2], outDir: undefined, log: (l) => lines.push(l) });
    console.log(lines.join('\n'));
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ nodes: 2, run: 1, lost: 0 });
    expect(runs[0]!.acked).toBeGreaterThan(50);
    expect(runs[0]!.maxWriteGapMs).toBeGreaterThan(0);
  }, 600_000);
});
