/**
 * The failover scenarios, run the same way against either system, and what each run measures.
 */
import { Probe, idsOn } from './probe.js';
import { postmasterPid, waitFor } from '@pgha/postgres';
import { killAll } from './proc.js';
import { isHealthy, primaryOf, type BenchNode, type HaSystem } from './systems.js';

/** The scenarios of the benchmark. */
export const SCENARIOS = ['switchover', 'node-crash', 'postgres-crash', 'keeper-crash', 'standby-crash'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** What one run measured. Durations in ms. */
export interface RunResult {
  system: string;
  scenario: Scenario;
  run: number;
  /** Longest gap between consecutive acknowledged writes around the fault. */
  writeGapMs: number;
  /** From the fault (or the command) to the first acknowledged write on the node that serves writes afterwards, once writes had stopped; 0 when they never stopped. */
  writesBackMs: number;
  /** Acknowledged writes missing on the final primary. */
  lost: number;
  /** The primary changed where it should not have (keeper crash, standby crash). */
  unexpectedFailovers: number;
  /** From the fault to primary + secondary again (the crashed node restarted once writes were back). */
  recoveryMs: number;
  acks: number;
  error?: string;
}

const TABLE = 'bench_probe';
let nextId = 1;

/** Waits until `sys` is primary + secondary again; the primary's name. */
export async function healthyPrimary(sys: HaSystem, timeoutMs: number): Promise<string> {
  return waitFor(`${sys.name} to be primary + secondary`, async () => {
    const s = await sys.status();
    return isHealthy(s) ? primaryOf(s) : undefined;
  }, { timeoutMs, intervalMs: 100 });
}

/** Runs one scenario once. The formation must be healthy before; it is healthy again after. */
export async function runScenario(sys: HaSystem, scenario: Scenario, run: number, log: (line: string) => void): Promise<RunResult> {
  const primaryName = await healthyPrimary(sys, 300_000);
  const primary = sys.nodes.find((n) => n.name === primaryName)!;
  const standby = sys.nodes.find((n) => n.name !== primaryName)!;
  await Probe.createTable(sys.hosts, TABLE);
  const probe = new Probe(sys.hosts, TABLE, nextId);
  probe.start();
  await waitFor('the probe to write', () => probe.acks.length >= 100, { timeoutMs: 60_000, intervalMs: 50 });

  const restart: BenchNode[] = [];
  let command: Promise<void> = Promise.resolve();
  const t0 = performance.now();
  switch (scenario) {
    case 'switchover':
      command = sys.switchover();
      break;
    case 'node-crash':
      killAll([...sys.keeperPids(primary), postmasterPid(primary.pgdata) ?? 0].filter(Boolean));
      restart.push(primary);
      break;
    case 'postgres-crash':
      killAll([postmasterPid(primary.pgdata) ?? 0].filter(Boolean));
      break;
    case 'keeper-crash':
      killAll(sys.keeperPids(primary));
      restart.push(primary);
      break;
    case 'standby-crash':
      killAll([...sys.keeperPids(standby), postmasterPid(standby.pgdata) ?? 0].filter(Boolean));
      restart.push(standby);
      break;
  }
  let error: string | undefined;
  try {
    // Writes are back and steady: 100 acknowledgements after the fault, the first of them at least 50 ms after it.
    await waitFor('writes to go on after the fault', () => probe.acks.filter((a) => a.atMs > t0 + 50).length >= 100, { timeoutMs: 300_000, intervalMs: 50 });
    await command;
    for (const n of restart) sys.startKeeper(n);
    await healthyPrimary(sys, 300_000);
  } catch (err) {
    error = (err as Error).message;
  }
  const recoveryMs = performance.now() - t0;
  nextId = await probe.stop();
  const states = await sys.status();
  const after = primaryOf(states);
  const finalPrimary = sys.nodes.find((n) => n.name === after) ?? primary;
  const lost = probe.lost(await idsOn({ host: '127.0.0.1', port: finalPrimary.port }, TABLE)).length;

  const writeGapMs = probe.maxGapMs(t0 - 1000);
  // Writes back: in a change of primary, the first write the new primary acknowledged; otherwise
  // the end of the longest gap, when writes stopped at all.
  const onNew = probe.acks.find((a) => a.atMs > t0 && a.port !== primary.port);
  const gapEnd = probe.acks.find((a, i) => i > 0 && a.atMs > t0 && a.atMs - probe.acks[i - 1]!.atMs === writeGapMs);
  const writesBackMs = (scenario === 'switchover' || scenario === 'node-crash') && onNew
    ? onNew.atMs - t0
    : writeGapMs >= 100 && gapEnd ? gapEnd.atMs - t0 : 0;
  const unexpectedFailovers = (scenario === 'keeper-crash' || scenario === 'standby-crash') && after !== primaryName ? 1 : 0;
  const result: RunResult = { system: sys.name, scenario, run, writeGapMs, writesBackMs, lost, unexpectedFailovers, recoveryMs, acks: probe.acks.length, ...(error ? { error } : {}) };
  log(`${sys.name.padEnd(16)} ${scenario.padEnd(15)} run ${run}: gap ${writeGapMs.toFixed(0)} ms, writes back ${writesBackMs.toFixed(0)} ms, lost ${lost}, unexpected failovers ${unexpectedFailovers}, recovery ${(recoveryMs / 1000).toFixed(1)} s${error ? `, ERROR ${error}` : ''}`);
  return result;
}
