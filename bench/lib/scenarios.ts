/**
 * The failover scenarios, run the same way against every system, and what each run measures.
 * `monitor-crash` and `monitor-and-node-crash` kill the monitor that leads the formation, so
 * they run only on a system with several monitors ({@link needsMonitorGroup}).
 */
import { Probe, idsOn } from './probe.js';
import { delay, postmasterPid, waitFor } from '@pgha/postgres';
import { killAll, processTree } from './proc.js';
import { isHealthy, primaryOf, type BenchNode, type HaSystem } from './systems.js';

/** The scenarios of the benchmark. */
export const SCENARIOS = ['switchover', 'node-crash', 'postgres-crash', 'keeper-crash', 'standby-crash', 'monitor-crash', 'monitor-and-node-crash'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** The scenarios that SIGKILL the leading monitor: only for a system with several monitors. */
export const MONITOR_SCENARIOS: readonly Scenario[] = ['monitor-crash', 'monitor-and-node-crash'];

/** Whether `scenario` runs only on a system with several monitors. */
export function needsMonitorGroup(scenario: Scenario): boolean {
  return MONITOR_SCENARIOS.includes(scenario);
}

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
  /** From the fault to primary + secondary again (the crashed node restarted once writes were back); absent when the system was {@link stuck}. */
  recoveryMs?: number;
  /**
   * Why the formation did not get back to primary + secondary by itself ({@link HaSystem.stuck}):
   * the run has no `recoveryMs`, and the benchmark builds the system afresh before its next run.
   */
  stuck?: string;
  /**
   * `node-crash` only: from the moment the crashed node's keeper is started again to primary +
   * secondary again (the same poll as `recoveryMs`): how long the old primary takes to rejoin
   * as a secondary (issue 17 §5).
   */
  rejoinMs?: number;
  /** Scenarios that kill the leading monitor: from the kill to another monitor leading the formation (`GET /v1/monitors`). */
  newLeaderMs?: number;
  acks: number;
  error?: string;
}

const TABLE = 'bench_probe';
/** How long after a monitor crash a failover that should not happen is watched for (ms). */
const OBSERVE_MS = 15_000;
let nextId = 1;

/** Waits until `sys` is primary + secondary again; the primary's name. */
export async function healthyPrimary(sys: HaSystem, timeoutMs: number): Promise<string> {
  const r = await healthyOrStuck(sys, timeoutMs);
  if ('stuck' in r) throw new Error(`${sys.name} will not be primary + secondary by itself: ${r.stuck}`);
  return r.primary;
}

/**
 * Waits until `sys` is primary + secondary again (the primary's name), or until the system
 * says it will not get there by itself ({@link HaSystem.stuck}: why).
 *
 * @throws Error after `timeoutMs` with neither.
 */
async function healthyOrStuck(sys: HaSystem, timeoutMs: number): Promise<{ primary: string } | { stuck: string }> {
  return waitFor(`${sys.name} to be primary + secondary`, async () => {
    const s = await sys.status();
    if (isHealthy(s)) return { primary: primaryOf(s)! };
    const why = await sys.stuck?.();
    return why === undefined ? undefined : { stuck: why };
  }, { timeoutMs, intervalMs: 100 });
}

/**
 * Runs one scenario once. The formation must be healthy before; it is healthy again after, and
 * whatever the scenario killed runs again (a keeper once writes are back; a monitor once
 * writes are back and another monitor leads, as systemd's `Restart=always` would).
 *
 * @throws Error for a monitor scenario on a system with one monitor.
 */
export async function runScenario(sys: HaSystem, scenario: Scenario, run: number, log: (line: string) => void): Promise<RunResult> {
  const group = sys.monitorGroup;
  if (needsMonitorGroup(scenario) && !group) throw new Error(`${scenario} needs several monitors; ${sys.name} has one`);
  const primaryName = await healthyPrimary(sys, 300_000);
  const killedMonitor = group && needsMonitorGroup(scenario) ? await waitFor('a monitor to lead the formation', () => group.leader(), { timeoutMs: 60_000, intervalMs: 100 }) : undefined;
  const primary = sys.nodes.find((n) => n.name === primaryName)!;
  const standby = sys.nodes.find((n) => n.name !== primaryName)!;
  await Probe.createTable(sys.hosts, TABLE);
  const probe = new Probe(sys.hosts, TABLE, nextId);
  probe.start();
  await waitFor('the probe to write', () => probe.acks.length >= 100, { timeoutMs: 60_000, intervalMs: 50 });

  const restart: BenchNode[] = [];
  let command: Promise<void> = Promise.resolve();
  let newLeader: Promise<number> | undefined;
  const t0 = performance.now();
  switch (scenario) {
    case 'switchover':
      command = sys.switchover();
      break;
    case 'node-crash':
      killAll(nodePids(sys, primary));
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
      killAll(nodePids(sys, standby));
      restart.push(standby);
      break;
    case 'monitor-crash':
    case 'monitor-and-node-crash':
      // At the same instant: the leading monitor, and for the second every process of the primary's node.
      killAll([...group!.pids(killedMonitor!), ...(scenario === 'monitor-and-node-crash' ? nodePids(sys, primary) : [])]);
      if (scenario === 'monitor-and-node-crash') restart.push(primary);
      newLeader = waitFor('another monitor to lead the formation', async () => {
        const url = await group!.leader();
        return url !== undefined && url !== killedMonitor ? performance.now() - t0 : undefined;
      }, { timeoutMs: 120_000, intervalMs: 50 });
      newLeader.catch(() => undefined);
      break;
  }
  let error: string | undefined;
  let newLeaderMs: number | undefined;
  let recoveryMs: number | undefined;
  let rejoinMs: number | undefined;
  let stuck: string | undefined;
  try {
    // Writes are back and steady: 100 acknowledgements after the fault, the first of them at least 50 ms after it.
    await waitFor('writes to go on after the fault', () => probe.acks.filter((a) => a.atMs > t0 + 50).length >= 100, { timeoutMs: 300_000, intervalMs: 50 });
    await command;
    if (newLeader) newLeaderMs = await newLeader;
    const restartedAt = performance.now();
    for (const n of restart) sys.startKeeper(n);
    if (killedMonitor) await group!.restart(killedMonitor);
    const back = await healthyOrStuck(sys, 300_000);
    if ('stuck' in back) stuck = back.stuck;
    else {
      recoveryMs = performance.now() - t0;
      if (scenario === 'node-crash') rejoinMs = performance.now() - restartedAt;
    }
    // The leader changed without a failover so far; one it would cause late (a keeper counted
    // silent by the new leader: nodeUnhealthyTimeoutMs after its gain) would show within
    // OBSERVE_MS of the kill, in the probe's acknowledgements or in the final state.
    if (scenario === 'monitor-crash') await delay(Math.max(0, t0 + OBSERVE_MS - performance.now()));
  } catch (err) {
    error = (err as Error).message;
  }
  if (stuck === undefined) recoveryMs ??= performance.now() - t0;
  nextId = await probe.stop();
  const states = await sys.status().catch(() => []);
  const after = primaryOf(states);
  const finalPrimary = sys.nodes.find((n) => n.name === after) ?? primary;
  // A run that went wrong may leave no Postgres to count on: say so, and count every write as lost.
  const present = await idsOn({ host: '127.0.0.1', port: finalPrimary.port }, TABLE).catch((err: Error) => {
    error ??= `reading the writes on ${finalPrimary.name}: ${err.message}`;
    return new Set<number>();
  });
  const lost = probe.lost(present).length;

  const writeGapMs = probe.maxGapMs(t0 - 1000);
  // Writes back: in a change of primary, the first write the new primary acknowledged; otherwise
  // the end of the longest gap, when writes stopped at all.
  const onNew = probe.acks.find((a) => a.atMs > t0 && a.port !== primary.port);
  const gapEnd = probe.acks.find((a, i) => i > 0 && a.atMs > t0 && a.atMs - probe.acks[i - 1]!.atMs === writeGapMs);
  const writesBackMs = (scenario === 'switchover' || scenario === 'node-crash' || scenario === 'monitor-and-node-crash') && onNew
    ? onNew.atMs - t0
    : writeGapMs >= 100 && gapEnd ? gapEnd.atMs - t0 : 0;
  // Any write acknowledged by another node than the primary, or another primary at the end.
  const movedAway = probe.acks.some((a) => a.atMs > t0 && a.port !== primary.port) || after !== primaryName;
  const unexpectedFailovers = (scenario === 'keeper-crash' || scenario === 'standby-crash' || scenario === 'monitor-crash') && movedAway ? 1 : 0;
  const result: RunResult = { system: sys.name, scenario, run, writeGapMs, writesBackMs, lost, unexpectedFailovers, ...(recoveryMs === undefined ? {} : { recoveryMs }), ...(stuck === undefined ? {} : { stuck }), ...(rejoinMs === undefined ? {} : { rejoinMs }), ...(newLeaderMs === undefined ? {} : { newLeaderMs }), acks: probe.acks.length, ...(error ? { error } : {}) };
  const leaderPart = newLeaderMs === undefined ? '' : `, another monitor leads after ${newLeaderMs.toFixed(0)} ms`;
  log(`${sys.name.padEnd(16)} ${scenario.padEnd(22)} run ${run}: gap ${writeGapMs.toFixed(0)} ms, writes back ${writesBackMs.toFixed(0)} ms, lost ${lost}, unexpected failovers ${unexpectedFailovers}${leaderPart}, ${recoveryMs === undefined ? `NOT BACK: ${stuck}` : `recovery ${(recoveryMs / 1000).toFixed(1)} s`}${rejoinMs === undefined ? '' : `, rejoined ${rejoinMs.toFixed(0)} ms after the keeper's restart`}${error ? `, ERROR ${error}` : ''}`);
  return result;
}

/**
 * Every process of `node`, as its machine's crash ends them: the postmaster and each of its
 * children (backends, walsenders, background workers), then the keeper's (pgha's keeper,
 * pg_autoctl, Patroni). Killing only the keeper and the postmaster left the backends running
 * for a moment: one serving the probe could still flush a commit record after the walsender
 * had gone, which a machine's death does not allow, and the old primary needed pg_rewind far
 * more often than after a real crash (issue 17 §1 and §5: "every process of the primary
 * SIGKILLed").
 */
export function nodePids(sys: HaSystem, node: BenchNode): number[] {
  const postmaster = postmasterPid(node.pgdata);
  return [...(postmaster ? processTree(postmaster) : []), ...sys.keeperPids(node)];
}
