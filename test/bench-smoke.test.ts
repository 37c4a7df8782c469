/**
 * A short run of the failover benchmark (`npm run bench`: 1 run of each scenario, pgha only),
 * so that the benchmark cannot rot. It checks what the benchmark must never report: a lost
 * acknowledged write, a failover where none should happen, a run that could not finish.
 * Timings are not asserted here; `npm run bench` prints them.
 */
import { describe, expect, it } from 'vitest';
import { bench } from '../bench/failover.js';
import { SCENARIOS } from '../bench/lib/scenarios.js';

describe('npm run bench, one run of each scenario on pgha', () => {
  it('runs every scenario, loses nothing, and fails over only where it should', async () => {
    const lines: string[] = [];
    const report = await bench({ runs: 1, systems: ['pgha'], scenarios: [...SCENARIOS], idleSeconds: 2, outDir: undefined, log: (l) => lines.push(l) });
    console.log(lines.join('\n'));
    expect(report.results.map((r) => r.scenario)).toEqual([...SCENARIOS]);
    for (const r of report.results) {
      expect(r.error, `${r.scenario}: ${r.error}`).toBeUndefined();
      expect(r.lost, `${r.scenario} lost writes`).toBe(0);
      expect(r.unexpectedFailovers, r.scenario).toBe(0);
      expect(r.acks).toBeGreaterThan(100);
    }
    expect(report.footprints[0]!.keeperPeakRssMb).toBeGreaterThan(0);
  }, 600_000);
});
