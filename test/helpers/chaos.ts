/**
 * Repeated chaos (issue 5, fault 8): on a 3-node formation on a simulated network, N random
 * faults in a row, each healed and followed by the history checker before the next one.
 * Drawn from a seeded generator, so a failing run is replayed with its seed. Used by
 * test/faults-chaos.test.ts (a short run) and `npm run chaos -- --count N [--seed S]`
 * (scripts/chaos.ts).
 */
import { Probe } from '../../bench/lib/probe.js';
import { isPrimaryAndSecondaries, showState } from './formation.js';
import { FaultSession, isClean } from './fault-session.js';
import { instant, type HistoryReport } from './history.js';
import { killKeeper, killNode, killPostmaster, restartKeeper } from './crash.js';
import { startNetFormation, type NetFormation } from './net-formation.js';
import { createNetwork, type SimNetwork } from './netns.js';
import { endAllProcesses, killPid, postmasterPid } from './processes.js';
import { delay, waitFor } from './wait-for.js';
import { monitorFetch } from './monitor-access.js';

/** Faults that need no keeper self-fencing. */
export const BASIC_FAULTS = [
  'kill-primary-node',
  'kill-standby-node',
  'kill-keeper',
  'kill-postmaster',
  'isolate-monitor',
  'isolate-standby',
  'cut-primary-standby',
  'switchover',
] as const;
/** Faults whose safety rests on keeper self-fencing (issue 5 faults 1 and 5): only with `withFencing`. */
export const FENCING_FAULTS = ['isolate-primary', 'pause-primary'] as const;
/** A fault the chaos run can stage. */
export type ChaosFault = (typeof BASIC_FAULTS)[number] | (typeof FENCING_FAULTS)[number];

/** Options of {@link runChaos}. */
export interface ChaosOptions {
  /** How many faults in a row. */
  count: number;
  /** Seed of the generator (a 32-bit integer): the same seed draws the same faults, targets and holds. */
  seed: number;
  /** Include {@link FENCING_FAULTS} (default false). */
  withFencing?: boolean;
  /** Recovery bound of each fault, from its heal, in ms (default 90 000). */
  recoveryBoundMs?: number;
  /** Stop at the first fault whose history is not clean (default true). */
  stopOnFailure?: boolean;
  /** Progress lines (default console.log). */
  log?: (line: string) => void;
}

/** One row of the chaos table. */
export interface ChaosRow {
  index: number;
  fault: ChaosFault;
  /** Node (or link) the fault hit. */
  target: string;
  /** How long the fault was held before healing, ms. */
  holdMs: number;
  report: HistoryReport;
  clean: boolean;
}

/** A small seeded generator (mulberry32): floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random seed for a new run. */
export function newSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}

/** The faults table, one line per fault, as the run prints it at the end. */
export function chaosTable(rows: readonly ChaosRow[]): string {
  const head = ['#', 'fault', 'target', 'hold ms', 'recovery ms', 'acked', 'lost', 'dual-primary', 'max gap ms', 'goal changes', 'ok'];
  const body = rows.map((r) => [
    String(r.index),
    r.fault,
    r.target,
    String(r.holdMs),
    r.report.recoveryMs === undefined ? `> ${r.report.recoveryBoundMs}` : String(r.report.recoveryMs),
    String(r.report.acknowledged),
    String(r.report.lost.length),
    String(r.report.dualPrimaryWindows.length),
    r.report.maxWriteGapMs.toFixed(0),
    String(r.report.goalChanges.length),
    r.clean ? 'yes' : 'NO',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

/**
 * Stages one fault on `s`'s formation, heals it, and runs the history checker.
 *
 * @param pick - random source for the target and the hold.
 */
async function stageFault(s: FaultSession, net: SimNetwork, index: number, fault: ChaosFault, pick: () => number, recoveryBoundMs: number): Promise<ChaosRow> {
  const f = s.f;
  const { before, baseline, writer, watcher } = await s.prepare(100 + index);
  const choose = <T>(xs: readonly T[]): T => xs[Math.floor(pick() * xs.length)]!;
  const holdMs = 2_000 + Math.floor(pick() * 4_000);
  const primary = s.node(before.primary.name);
  const standby = s.node(choose(before.standbys).name);
  const anyNode = s.node(choose(before.rows).name);
  let target = '';
  const faultAt = instant();
  switch (fault) {
    case 'kill-primary-node': {
      target = primary.name;
      killNode(primary);
      // The failover: another node takes a writable goal; then the machine comes back.
      await waitFor('another node to take writes', () => watcher.firstTime((rows) => rows.some((r) => r.name !== primary.name && ['wait_primary', 'primary'].includes(r.reported_state)), faultAt.atMs), { timeoutMs: 60_000 }).catch(() => undefined);
      await restartKeeper(f, primary);
      break;
    }
    case 'kill-standby-node':
      target = standby.name;
      killNode(standby);
      await delay(holdMs);
      await restartKeeper(f, standby);
      break;
    case 'kill-keeper':
      target = anyNode.name;
      killKeeper(anyNode);
      await delay(holdMs);
      await restartKeeper(f, anyNode);
      break;
    case 'kill-postmaster':
      // The keeper restarts it: nothing to restart by hand.
      target = anyNode.name;
      killPostmaster(anyNode.pgdata);
      await delay(holdMs);
      break;
    case 'isolate-monitor':
      target = 'monitor';
      await net.isolate('monitor', { except: ['test'] });
      await delay(holdMs);
      break;
    case 'isolate-standby':
      target = standby.name;
      await net.isolate(standby.name);
      await delay(holdMs);
      break;
    case 'cut-primary-standby':
      target = `${primary.name}<->${standby.name}`;
      await net.cut(primary.name, standby.name);
      await delay(holdMs);
      break;
    case 'switchover': {
      target = primary.name;
      const res = await monitorFetch(`${f.monitor.url}/v1/formations/default/switchover`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      if (!res.ok) throw new Error(`switchover refused: ${res.status} ${await res.text()}`);
      break;
    }
    case 'isolate-primary':
      target = primary.name;
      await net.isolate(primary.name);
      await delay(holdMs + 5_000);
      break;
    case 'pause-primary': {
      target = primary.name;
      const pm = postmasterPid(primary.pgdata);
      killPid(pm, 'SIGSTOP');
      killPid(primary.keeper.pid, 'SIGSTOP');
      await delay(holdMs + 5_000);
      killPid(pm, 'SIGCONT');
      killPid(primary.keeper.pid, 'SIGCONT');
      break;
    }
  }
  const healedAt = instant();
  await net.heal();
  const report = await s.check(`chaos ${index}: ${fault} (${target})`, { writers: [writer], baseline, faultAt, healedAt, watcher, recoveryBoundMs });
  return { index, fault, target, holdMs: fault === 'kill-primary-node' || fault === 'switchover' ? Math.round(healedAt.atMs - faultAt.atMs) : holdMs, report, clean: isClean(report) };
}

/**
 * Runs a chaos session: builds a network (monitor, node1..3, client) and a 3-node formation,
 * stages `count` faults drawn from `seed`, and tears everything down (every process ended by
 * PID, every namespace removed) even when a fault fails.
 *
 * @returns the rows, one per fault staged (fewer than `count` when it stopped at a failure).
 * @throws when the formation cannot be built or a fault cannot be staged (the seed is in the log).
 */
export async function runChaos(o: ChaosOptions): Promise<ChaosRow[]> {
  const log = o.log ?? ((line: string) => console.log(line));
  const faults: readonly ChaosFault[] = o.withFencing ? [...BASIC_FAULTS, ...FENCING_FAULTS] : BASIC_FAULTS;
  const random = seededRandom(o.seed);
  const plan = Array.from({ length: o.count }, () => faults[Math.floor(random() * faults.length)]!);
  log(`[chaos] seed ${o.seed}: ${o.count} faults: ${plan.join(', ')} (replay with --seed ${o.seed})`);
  const rows: ChaosRow[] = [];
  let net: SimNetwork | undefined;
  try {
    net = await createNetwork(['monitor', 'node1', 'node2', 'node3', 'client']);
    const f: NetFormation = await startNetFormation(net, ['node1', 'node2', 'node3']);
    const s = new FaultSession(f, 'history');
    await Probe.createTable(f.hosts, 'history');
    for (const [i, fault] of plan.entries()) {
      // Every fault starts from one primary and the rest secondary.
      await waitFor('one primary and the rest secondary before the fault', async () => isPrimaryAndSecondaries(await showState(f.monitor.url)), { timeoutMs: 60_000, intervalMs: 250 });
      const row = await stageFault(s, net, i + 1, fault, random, o.recoveryBoundMs ?? 90_000);
      rows.push(row);
      log(`[chaos] ${row.index}/${o.count} ${row.fault} (${row.target}): ${row.clean ? 'clean' : 'NOT CLEAN'}, recovery ${row.report.recoveryMs ?? '-'} ms`);
      if (!row.clean && o.stopOnFailure !== false) break;
    }
  } finally {
    log(chaosTable(rows));
    log(`[chaos] seed ${o.seed}`);
    await endAllProcesses();
    await net?.destroy();
  }
  return rows;
}
