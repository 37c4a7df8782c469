/**
 * One fault at a time on a {@link NetFormation}: the roles before it, a baseline of goals and
 * events, a writer in the test process and a {@link StateWatcher}; then the history checker
 * with its summary line. Shared by the crash, disk-full and chaos fault tests.
 */
import type { NodeStateRow } from '@pgha/shared';
import type { TestNode } from './cluster.js';
import { showState } from './formation.js';
import { checkHistory, HistoryProbe, StateWatcher, takeBaseline, type CheckOptions, type FaultBaseline, type HistoryReport } from './history.js';
import { startNetFormation, type NetFormation } from './net-formation.js';
import { createNetwork, type netnsAvailability, type SimNetwork } from './netns.js';
import { Probe } from '../../bench/lib/probe.js';
import { waitFor } from './wait-for.js';
import { expect } from 'vitest';

/** The formation's rows as the monitor shows them, with the nodes assigned `primary` and `secondary`. */
export interface Roles {
  rows: NodeStateRow[];
  primary: NodeStateRow;
  /** The first node assigned `secondary`. */
  standby: NodeStateRow;
  standbys: NodeStateRow[];
}

/** A fault under way: what {@link FaultSession.prepare} recorded. */
export interface PreparedFault {
  before: Roles;
  baseline: FaultBaseline;
  writer: HistoryProbe;
  watcher: StateWatcher;
}

/** Ids of fault `n`, writer `w`: far apart so that every write is told apart. */
export const firstId = (n: number, w: number): number => n * 10_000_000 + w * 1_000_000 + 1;

/** Faults staged one after the other on one formation. */
export class FaultSession {
  constructor(readonly f: NetFormation, readonly table: string) {}

  /** The rows, primary and standbys. @throws when there is no `primary` goal or no `secondary` goal. */
  async roles(): Promise<Roles> {
    const rows = await showState(this.f.monitor.url);
    const primary = rows.find((r) => r.goal_state === 'primary');
    const standbys = rows.filter((r) => r.goal_state === 'secondary');
    if (!primary || !standbys[0]) throw new Error(`no primary and secondary: ${rows.map((r) => `${r.name} ${r.reported_state}/${r.goal_state}`).join(', ')}`);
    return { rows, primary, standby: standbys[0], standbys };
  }

  /** The {@link TestNode} called `name`. @throws for an unknown name. */
  node(name: string): TestNode {
    const n = this.f.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node "${name}"`);
    return n;
  }

  /** Starts a writer through the bridge and waits for 20 acknowledgements. */
  async startWriter(name: string, id: number): Promise<HistoryProbe> {
    const w = new HistoryProbe(name, this.f.hosts, this.table, id);
    w.start();
    await waitFor(`writer ${name} to write`, () => w.acks.length >= 20, { timeoutMs: 30_000 });
    return w;
  }

  /** Before fault `n`: roles, baseline, a running writer and a state watcher. */
  async prepare(n: number): Promise<PreparedFault> {
    const before = await this.roles();
    const baseline = await takeBaseline(this.f.monitor.url);
    const writer = await this.startWriter(`f${n}`, firstId(n, 0));
    return { before, baseline, writer, watcher: new StateWatcher(this.f.monitor.url, 'default', 100).start() };
  }

  /** Runs the history checker for fault `label` and prints its summary line. */
  async check(label: string, o: Pick<CheckOptions, 'writers' | 'baseline' | 'faultAt' | 'healedAt' | 'watcher' | 'recoveryBoundMs'>): Promise<HistoryReport> {
    const report = await checkHistory({ fault: label, monitorUrl: this.f.monitor.url, table: this.table, ...o });
    console.log(report.summary);
    return report;
  }
}

/** True when the report is clean: nothing lost, no dual primary, every goal change explained, recovered in time. */
export function isClean(r: HistoryReport): boolean {
  return r.lost.length === 0 && r.dualPrimaryWindows.length === 0 && r.unexplained.length === 0 && r.recovered;
}

/**
 * The set-up of a faults suite: `hosts` as network namespaces, the monitor and `nodes` in them
 * (`startNetFormation`), a {@link FaultSession} on the table `history`, and that table.
 *
 * @throws Error saying how to skip when the machine cannot make network namespaces.
 */
export async function startFaultSuite(availability: ReturnType<typeof netnsAvailability>, hosts: readonly string[], nodes: readonly string[]): Promise<{ net: SimNetwork; f: NetFormation; s: FaultSession }> {
  if (!availability.ok) throw new Error(`${availability.reason}. Set PGHA_SKIP_NETNS=1 to skip the fault tests on such a machine.`);
  const net = await createNetwork(hosts);
  const f = await startNetFormation(net, nodes);
  const s = new FaultSession(f, 'history');
  await Probe.createTable(f.hosts, 'history');
  return { net, f, s };
}

/**
 * Asserts what every fault of the faults suites must leave: no acknowledged write lost, never
 * two servers acknowledging at once, every goal change explained, and the formation recovered
 * within the report's bound of `since` (what the fault's end was: the restart, the heal). Keeps
 * the report in `reports` for the suite's summary.
 */
export function expectClean(r: HistoryReport, reports: HistoryReport[], since: string): void {
  reports.push(r);
  expect(r.lost).toEqual([]);
  expect(r.dualPrimaryWindows).toEqual([]);
  expect(r.unexplained).toEqual([]);
  expect(r.recovered, `recovered within ${r.recoveryBoundMs} ms of ${since}`).toBe(true);
}
