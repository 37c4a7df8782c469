/**
 * `npm run bench`: failover, switchover and crash scenarios on pgha with one monitor, on pgha
 * with three monitors on a local 3-member etcd (`pgha-3-monitors`), and on its peers, each at
 * its defaults and tuned: pg_auto_failover 2.0 (`pg_auto_failover`, `pg_auto_failover-tuned`)
 * and Patroni 3.0 on a local etcd (`patroni`, `patroni-tuned`), all from Debian packages
 * (installed when missing), side by side in the same run, with the same
 * probe (one insert every ~10 ms, bench/lib/probe.ts). Prints a table (medians [min–max] per
 * system, ratios of medians) and writes `bench/results/latest.md` and `.json`.
 *
 * Scenarios (bench/lib/scenarios.ts): `switchover`; `node-crash` (SIGKILL the primary's keeper
 * and postmaster); `postgres-crash`; `keeper-crash`; `standby-crash`; and, only on a system
 * with several monitors, `monitor-crash` (SIGKILL the monitor that leads the formation, as
 * `GET /v1/monitors` says) and `monitor-and-node-crash` (that monitor and the primary's node at
 * the same instant). A system with one monitor has no figure for those two: neither pgha nor
 * pg_auto_failover fails over while its only monitor is down, until a person acts; Patroni
 * has no monitor at all.
 *
 * Figures per run: writes back after (ms, from the fault to the first write acknowledged by the
 * node that serves writes afterwards), the longest write gap (ms), lost acknowledged writes,
 * failovers that should not happen (keeper, standby and monitor crashes: a write acknowledged
 * by another node, or another primary at the end, within 15 s of a monitor crash), time back to
 * primary + secondary (ms, the killed processes restarted once writes are back), for
 * `node-crash` the time from the keeper's restart to primary + secondary again, and for the
 * monitor scenarios the time until another monitor leads (ms, `GET /v1/monitors` polled every
 * 50 ms). Ratios: pgha / each peer, and pgha-3-monitors / pgha (targets of issue 15:
 * another monitor leads < 3 s; writes back < 6 s after the leading monitor and the primary's
 * node crash together; node crash with three monitors within 10 % of one monitor's time).
 *
 * Then, with `--restart-runs N` (3; 0: not), the rolling restart of bench/rolling-restart.ts
 * (`pgha perform restart` on 2 and 3 nodes: longest write gap, lost writes), written to
 * `bench/results/rolling-restart.md` and `.json`. Then, with `--paths-runs N` (3; 0: not), the
 * node crash as clients see it straight to the nodes, through HAProxy and through the virtual IP
 * of docs/recipes/vip-on-role-change.sh (bench/client-paths.ts), written to
 * `bench/results/client-paths.md` and `.json`.
 *
 * Each system's settings (what it runs with, why, and the source) go into the results file.
 *
 * Options: --runs N (5), --systems (all of SYSTEMS by default), --scenarios a,b,
 * --idle-seconds S (60), --idle-runs N (3: idle windows one after the other, reported as median [min–max]),
 * --out DIR (default bench/results), --keep (keep the systems' directories and logs),
 * --restart-runs N (3), --paths-runs N (3).
 */
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from '@commander-js/extra-typings';
import Table from 'cli-table3';
import { delay, processMemory } from '@pgha/postgres';
import { intArg } from './lib/args.js';
import { cpuMs, killStarted } from './lib/proc.js';
import { rollingRestartBench } from './rolling-restart.js';
import { pathsBench, writePathsResults } from './client-paths.js';
import { needsMonitorGroup, runScenario, SCENARIOS, type RunResult, type Scenario } from './lib/scenarios.js';
import { PEERS, PgafSystem, PghaSystem, removeDir, SYSTEMS, type HaSystem, type Setting, type SystemName } from './lib/systems.js';
import { PatroniSystem } from './lib/patroni.js';

/** Idle footprint of a system's monitor and of a keeper, over one idle window. */
export interface Footprint {
  system: string;
  /** Which of the system's idle windows (1, 2, …; absent in reports made before there were several). */
  window?: number;
  seconds: number;
  monitorCpuPct: number;
  monitorPeakRssMb: number;
  keeperCpuPct: number;
  keeperPeakRssMb: number;
}

/** What `npm run bench` produces. */
export interface BenchReport {
  date: string;
  machine: string;
  runs: number;
  /** The systems run, with their number of monitors (Patroni: 0, it has none) and what each runs with. */
  systems: { name: SystemName; monitors: number; settings?: readonly Setting[] }[];
  results: RunResult[];
  footprints: Footprint[];
  /** The command that made the report (shown in the results file). */
  command?: string;
  /** A note for the results file (e.g. that the machine was shared). */
  note?: string;
}

/** A system of the benchmark by name, under `dir`. */
function makeSystem(name: SystemName, dir: string): HaSystem {
  switch (name) {
    case 'pg_auto_failover':
    case 'pg_auto_failover-tuned':
      return new PgafSystem(dir, name === 'pg_auto_failover-tuned');
    case 'patroni':
    case 'patroni-tuned':
      return new PatroniSystem(dir, name === 'patroni-tuned');
    default:
      return new PghaSystem(dir, name === 'pgha-3-monitors' ? 3 : 1);
  }
}

/** Whether a system has a monitor at all (Patroni has none: its nodes elect a leader through etcd). */
function hasMonitor(name: SystemName): boolean {
  return !name.startsWith('patroni');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * CPU time and resident memory of the monitor and of the primary's keeper over an idle window:
 * CPU as % of one core, RSS as the highest VmRSS sampled each second during the window
 * (start-up peaks before the window do not count).
 */
async function idleFootprint(sys: HaSystem, seconds: number): Promise<Footprint> {
  const keeperPids = () => sys.keeperPids(sys.nodes[0]!);
  const sum = (pids: number[], f: (pid: number) => number) => pids.reduce((acc, p) => acc + f(p), 0);
  const m0 = sum(sys.monitorPids(), cpuMs);
  const k0 = sum(keeperPids(), cpuMs);
  let monitorRss = 0;
  let keeperRss = 0;
  for (let i = 0; i < seconds; i++) {
    await delay(1000);
    monitorRss = Math.max(monitorRss, sum(sys.monitorPids(), (p) => processMemory(p)?.rssBytes ?? 0));
    keeperRss = Math.max(keeperRss, sum(keeperPids(), (p) => processMemory(p)?.rssBytes ?? 0));
  }
  const m1 = sum(sys.monitorPids(), cpuMs);
  const k1 = sum(keeperPids(), cpuMs);
  return {
    system: sys.name,
    seconds,
    monitorCpuPct: ((m1 - m0) / (seconds * 1000)) * 100,
    monitorPeakRssMb: monitorRss / 2 ** 20,
    keeperCpuPct: ((k1 - k0) / (seconds * 1000)) * 100,
    keeperPeakRssMb: keeperRss / 2 ** 20,
  };
}

/** Runs the benchmark. */
export async function bench(options: { runs: number; systems: SystemName[]; scenarios: Scenario[]; idleSeconds: number; idleRuns?: number; outDir: string | undefined; keep?: boolean; command?: string; note?: string; log?: (line: string) => void }): Promise<BenchReport> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const results: RunResult[] = [];
  const footprints: Footprint[] = [];
  const systems: BenchReport['systems'] = [];
  for (const name of options.systems) {
    const dir = mkdtempSync(join(tmpdir(), `bench-${name}-`));
    chmodSync(dir, 0o755); // the Postgres OS user must reach the data directories below it
    let sys = makeSystem(name, join(dir, 'f'));
    let builds = 1;
    try {
      log(`setting up ${name} in ${dir}`);
      await sys.setup();
      systems.push({ name, monitors: hasMonitor(name) ? (sys.monitorGroup?.urls.length ?? 1) : 0, settings: sys.settings });
      for (let window = 1; options.idleSeconds > 0 && window <= (options.idleRuns ?? 1); window++) {
        const fp = { ...(await idleFootprint(sys, options.idleSeconds)), window };
        footprints.push(fp);
        log(`${name} idle ${fp.seconds} s (window ${window}): monitor ${fp.monitorCpuPct.toFixed(2)}% CPU, ${fp.monitorPeakRssMb.toFixed(0)} MB peak RSS; keeper ${fp.keeperCpuPct.toFixed(2)}% CPU, ${fp.keeperPeakRssMb.toFixed(0)} MB peak RSS`);
      }
      for (const scenario of options.scenarios) {
        if (needsMonitorGroup(scenario) && !sys.monitorGroup) {
          log(`${name.padEnd(16)} ${scenario.padEnd(22)} not run: ${hasMonitor(name) ? ONE_MONITOR : NO_MONITOR}`);
          continue;
        }
        for (let run = 1; run <= options.runs; run++) {
          const result = await runScenario(sys, scenario, run, log);
          results.push(result);
          if (result.stuck === undefined) continue;
          // Every run starts from a sound primary + secondary: a system that will not get back
          // there by itself is built afresh (a new directory, as at the start).
          await sys.teardown();
          sys = makeSystem(name, join(dir, `f${++builds}`));
          log(`rebuilding ${name} after ${scenario} run ${run} (it would not get back to primary + secondary by itself)`);
          await sys.setup();
        }
      }
    } finally {
      await sys.teardown().catch(() => undefined);
      if (options.keep) log(`kept ${dir} (logs: monitor*.log, monitor-*/monitor.log, node*.log)`);
      else removeDir(dir);
    }
  }
  const report: BenchReport = { date: new Date().toISOString(), machine: `${process.platform} ${process.arch}, node ${process.version}`, runs: options.runs, systems, results, footprints, ...(options.command ? { command: options.command } : {}), ...(options.note ? { note: options.note } : {}) };
  if (options.outDir) {
    mkdirSync(options.outDir, { recursive: true });
    writeFileSync(join(options.outDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(options.outDir, 'latest.md'), renderMarkdown(report));
  }
  return report;
}

/** Why a system with one monitor has no figure for a scenario that kills the leading monitor. */
const ONE_MONITOR = 'one monitor: nothing fails over while it is down, until a person acts';

/** Why Patroni has no figure for the monitor scenarios. */
const NO_MONITOR = 'no monitor: Patroni\'s nodes elect their leader through etcd';

const FIGURES: { key: keyof RunResult; label: string; unit: 'ms' | 'count'; only?: Scenario[]; except?: Scenario[] }[] = [
  { key: 'newLeaderMs', label: 'another monitor leads after (ms)', unit: 'ms', only: ['monitor-crash', 'monitor-and-node-crash'] },
  // A monitor crash alone must not stop writes: its longest gap is the figure (a short gap late in the run is no "writes back").
  { key: 'writesBackMs', label: 'writes back after (ms)', unit: 'ms', except: ['monitor-crash'] },
  { key: 'writeGapMs', label: 'longest write gap (ms)', unit: 'ms' },
  { key: 'lost', label: 'lost acknowledged writes', unit: 'count' },
  { key: 'unexpectedFailovers', label: 'failovers that should not happen', unit: 'count' },
  { key: 'recoveryMs', label: 'back to primary + secondary (ms)', unit: 'ms' },
  { key: 'rejoinMs', label: 'rejoined after keeper restart (ms)', unit: 'ms', only: ['node-crash'] },
];

/**
 * One cell: median [min–max] of `values` (ms), or the sum and largest (counts); with `never`
 * runs that did not get the figure because the system did not get back to primary + secondary
 * by itself ({@link RunResult.stuck}), how many of how many.
 */
function cell(values: number[], unit: 'ms' | 'count', never = 0): string {
  if (never > 0) return `never by itself (${never} of ${values.length + never} runs)${values.length ? `; others ${cell(values, unit)}` : ''}`;
  if (values.length === 0) return '—';
  if (unit === 'count') return `${values.reduce((a, b) => a + b, 0)} (max ${Math.max(...values)})`;
  return `${median(values).toFixed(0)} [${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)}]`;
}

/** The ratio of the medians of `a` and `b` (ms figures), or '—'. */
function ratio(a: number[], b: number[], unit: 'ms' | 'count'): string {
  return unit === 'ms' && a.length && b.length && median(b) > 0 ? (median(a) / median(b)).toFixed(3) : '—';
}

/** The table's header: scenario, figure, one column per system run, then the ratios. */
export function renderHead(report: BenchReport): string[] {
  return ['scenario', 'figure', ...systemsOf(report), ...peersOf(report).map((p) => `pgha / ${p}`), 'pgha-3-monitors / pgha'];
}

/** The peers among a report's systems, in the table's order. */
function peersOf(report: BenchReport): SystemName[] {
  return systemsOf(report).filter((s) => PEERS.includes(s));
}

/** The systems of a report in the table's order (a report without `systems`: those with results). */
function systemsOf(report: BenchReport): SystemName[] {
  const names = new Set<string>([...(report.systems ?? []).map((s) => s.name), ...report.results.map((r) => r.system)]);
  return SYSTEMS.filter((s) => names.has(s));
}

/**
 * The table: per scenario and figure, median [min–max] per system (for a scenario a system
 * cannot run, why), and the ratios of medians pgha / each peer and pgha-3-monitors / pgha.
 */
export function renderRows(report: BenchReport): string[][] {
  const rows: string[][] = [];
  const systems = systemsOf(report);
  const single = new Set((report.systems ?? []).filter((s) => s.monitors === 1).map((s) => s.name));
  const none = new Set((report.systems ?? []).filter((s) => s.monitors === 0).map((s) => s.name));
  const peers = peersOf(report);
  for (const scenario of SCENARIOS) {
    const of = (system: string) => report.results.filter((r) => r.scenario === scenario && r.system === system);
    if (systems.every((s) => of(s).length === 0)) continue;
    for (const [i, f] of FIGURES.filter((f) => (!f.only || f.only.includes(scenario)) && !f.except?.includes(scenario)).entries()) {
      const values = (system: string) => of(system).flatMap((r) => (r[f.key] === undefined ? [] : [Number(r[f.key])]));
      // A system with one monitor: the reason on the scenario's first row, short on the others.
      const noFigure = (s: SystemName): string | undefined => {
        if (!needsMonitorGroup(scenario)) return undefined;
        if (single.has(s)) return i === 0 ? `no figure: ${ONE_MONITOR}` : 'no figure (one monitor)';
        if (none.has(s)) return i === 0 ? `no figure: ${NO_MONITOR}` : 'no figure (no monitor)';
        return undefined;
      };
      const never = (system: string) => (f.key === 'recoveryMs' || f.key === 'rejoinMs' ? of(system).filter((r) => r.stuck !== undefined).length : 0);
      const cells = systems.map((s) => noFigure(s) ?? cell(values(s), f.unit, never(s)));
      rows.push([scenario, f.label, ...cells, ...peers.map((p) => ratio(values('pgha'), values(p), f.unit)), ratio(values('pgha-3-monitors'), values('pgha'), f.unit)]);
    }
  }
  return rows;
}

/**
 * The results file's "Where pgha is not ahead" section: every scenario and time figure
 * (writes back, longest gap, back to primary + secondary) where pgha's median is above a
 * peer's (issue 17: pgha must be ahead of every peer at its best, or the results say where not).
 */
function renderBehind(report: BenchReport): string[] {
  const peers = peersOf(report);
  if (peers.length === 0 || !report.results.some((r) => r.system === 'pgha')) return [];
  const behind: string[] = [];
  for (const scenario of SCENARIOS) {
    for (const f of FIGURES.filter((f) => f.unit === 'ms' && f.key !== 'newLeaderMs' && !f.except?.includes(scenario))) {
      const values = (system: string) => report.results.filter((r) => r.scenario === scenario && r.system === system && r[f.key] !== undefined).map((r) => Number(r[f.key]));
      const ours = values('pgha');
      for (const p of peers) {
        const theirs = values(p);
        // A peer that did not get back by itself in some run is not ahead on that figure.
        const theirNever = report.results.some((r) => r.scenario === scenario && r.system === p && r.stuck !== undefined && (f.key === 'recoveryMs' || f.key === 'rejoinMs'));
        if (ours.length && theirs.length && !theirNever && median(ours) > median(theirs)) behind.push(`- ${scenario}, ${f.label}: pgha ${median(ours).toFixed(0)} vs ${p} ${median(theirs).toFixed(0)} (ratio ${ratio(ours, theirs, 'ms')})`);
      }
    }
  }
  return ['## Where pgha is not ahead', '', ...(behind.length ? behind : ['Nowhere: pgha\'s median is at or below every peer\'s on every time figure.']), ''];
}

/** The results file's "Settings" section: per system, what it ran with and why. */
function renderSettings(report: BenchReport): string[] {
  const withSettings = (report.systems ?? []).filter((s) => s.settings?.length);
  if (withSettings.length === 0) return [];
  return [
    '## Settings',
    '',
    ...withSettings.flatMap((s) => [`### ${s.name}`, '', '| setting | value | why, and the source |', '|---|---|---|', ...s.settings!.map((x) => `| \`${x.name}\` | ${x.value} | ${x.source} |`), '']),
  ];
}

/** The figures of {@link Footprint}, with how each is printed. */
const FOOTPRINT_FIGURES = [
  { key: 'monitorCpuPct', label: 'monitor CPU %', digits: 2 },
  { key: 'monitorPeakRssMb', label: 'monitor peak RSS MB', digits: 0 },
  { key: 'keeperCpuPct', label: 'keeper CPU %', digits: 2 },
  { key: 'keeperPeakRssMb', label: 'keeper peak RSS MB', digits: 0 },
] as const;

/**
 * The idle footprint table: per system, each figure's median [min–max] over its idle windows
 * (the value alone for one window), then pgha / each peer, ratios of medians.
 */
export function renderFootprints(report: BenchReport): string[] {
  const systems = [...new Set(report.footprints.map((f) => f.system))];
  const values = (system: string, key: (typeof FOOTPRINT_FIGURES)[number]['key']) => report.footprints.filter((f) => f.system === system).map((f) => f[key]);
  const cell = (xs: number[], digits: number) => (xs.length > 1 ? `${median(xs).toFixed(digits)} [${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}]` : xs.length ? xs[0]!.toFixed(digits) : '—');
  const lines = [
    `| system | windows × seconds | ${FOOTPRINT_FIGURES.map((f) => f.label).join(' | ')} |`,
    `|---|---|${FOOTPRINT_FIGURES.map(() => '---').join('|')}|`,
    ...systems.map((s) => {
      const windows = report.footprints.filter((f) => f.system === s);
      return `| ${s} | ${windows.length} × ${windows[0]!.seconds} | ${FOOTPRINT_FIGURES.map((f) => cell(values(s, f.key), f.digits)).join(' | ')} |`;
    }),
    '',
  ];
  const peers = systems.filter((s) => PEERS.includes(s as SystemName));
  if (!systems.includes('pgha') || peers.length === 0) return lines;
  return [
    ...lines,
    `| ratio of medians | ${FOOTPRINT_FIGURES.map((f) => f.label).join(' | ')} |`,
    `|---|${FOOTPRINT_FIGURES.map(() => '---').join('|')}|`,
    ...peers.map((p) => `| pgha / ${p} | ${FOOTPRINT_FIGURES.map((f) => (median(values(p, f.key)) > 0 ? (median(values('pgha', f.key)) / median(values(p, f.key))).toFixed(2) : '—')).join(' | ')} |`),
    '',
  ];
}

/** The results file (Markdown) of a report. */
export function renderMarkdown(report: BenchReport): string {
  const lines = [
    `# Failover benchmark — ${report.date}`,
    '',
    `${report.machine}; ${report.runs} runs per scenario; medians [min–max]; ratios of medians. pgha: one monitor on its own Postgres; pgha-3-monitors: three monitors on a local 3-member etcd (TLS), keepers given the three; pg_auto_failover and Patroni (on a local one-member etcd, no monitor) at their defaults and tuned, see "Settings". Command: \`${report.command ?? 'npm run bench'}\`.`,
    '',
    ...(report.note ? [report.note, ''] : []),
    `| ${renderHead(report).join(' | ')} |`,
    `|${renderHead(report).map(() => '---').join('|')}|`,
    ...renderRows(report).map((r) => `| ${r.join(' | ')} |`),
    '',
    '## Idle footprint',
    '',
    'pgha-3-monitors: the three monitors\' CPU and RSS summed; etcd is not counted, as the single monitor\'s Postgres is not. Patroni has no monitor: its "monitor" columns are its etcd member\'s, and its "keeper" is the primary\'s `patroni` process.',
    '',
    ...renderFootprints(report),
  ];
  lines.push(...renderBehind(report), ...renderSettings(report));
  const stuck = report.results.filter((r) => r.stuck);
  if (stuck.length) lines.push('## Not back to primary + secondary by itself', '', 'Each such run was followed by a fresh build of the system (a new cluster), so that the next run started from a sound primary + secondary.', '', ...stuck.map((r) => `- ${r.system} ${r.scenario} run ${r.run}: ${r.stuck}`), '');
  const errors = report.results.filter((r) => r.error);
  if (errors.length) lines.push('## Errors', '', ...errors.map((e) => `- ${e.system} ${e.scenario} run ${e.run}: ${e.error}`), '');
  return `${lines.join('\n')}\n`;
}

function cleanupAndExit(code: number): never {
  killStarted();
  process.exit(code);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const o = new Command('npm run bench --')
    .description('failover benchmark: each scenario on each system, writes acknowledged and lost, time without writes')
    .option('--runs <n>', 'runs of each scenario', intArg(1), 5)
    .option('--systems <list>', `comma-separated, from: ${SYSTEMS.join(', ')}`, SYSTEMS.join(','))
    .option('--scenarios <list>', `comma-separated, from: ${SCENARIOS.join(', ')}`, SCENARIOS.join(','))
    .option('--idle-seconds <s>', 'length of the idle footprint window (0: none)', intArg(0), 60)
    .option('--idle-runs <n>', 'idle windows per system, one after the other (median [min–max] in the results)', intArg(1, 100), 3)
    .option('--keep', 'keep each system\'s directory (its logs) instead of removing it', false)
    .option('--note <text>', 'a note for the results file (e.g. that the machine was shared)')
    .option('--out <dir>', 'where to write latest.json and latest.md', fileURLToPath(new URL('./results', import.meta.url)))
    .option('--restart-runs <n>', 'then rolling restarts (pgha perform restart) of 2 and 3 nodes, this many each (0: none); results in rolling-restart.md', intArg(0, 100), 3)
    .option('--paths-runs <n>', 'then node crashes seen by clients straight to the nodes, through HAProxy and through the virtual IP, this many (0: none); results in client-paths.md', intArg(0, 100), 3)
    .parse()
    .opts();
  process.on('SIGINT', () => cleanupAndExit(130));
  process.on('SIGTERM', () => cleanupAndExit(143));
  const scenarios = o.scenarios.split(',').filter(Boolean) as Scenario[];
  for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}; one of ${SCENARIOS.join(', ')}`);
  const systems = o.systems.split(',').filter(Boolean) as SystemName[];
  for (const s of systems) if (!SYSTEMS.includes(s)) throw new Error(`unknown system ${s}; one of ${SYSTEMS.join(', ')}`);
  const command = ['npm run bench --', ...process.argv.slice(2).map((a) => (/^[\w,./=:-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))].join(' ');
  bench({ runs: o.runs, systems, scenarios, idleSeconds: o.idleSeconds, idleRuns: o.idleRuns, outDir: o.out, keep: o.keep, command, ...(o.note ? { note: o.note } : {}) })
    .then(async (report) => {
      const table = new Table({ head: renderHead(report) });
      table.push(...renderRows(report));
      process.stdout.write(`${table.toString()}\n`);
      for (const f of report.footprints) process.stdout.write(`${f.system} idle (window ${f.window ?? 1}): monitor ${f.monitorCpuPct.toFixed(2)}% CPU, ${f.monitorPeakRssMb.toFixed(0)} MB; keeper ${f.keeperCpuPct.toFixed(2)}% CPU, ${f.keeperPeakRssMb.toFixed(0)} MB\n`);
      if (o.restartRuns > 0) await rollingRestartBench({ runs: o.restartRuns, nodes: [2, 3], outDir: o.out, keep: o.keep, command: `npm run bench -- --restart-runs ${o.restartRuns}` });
      if (o.pathsRuns > 0) process.stdout.write(writePathsResults(await pathsBench(o.pathsRuns), o.out, `npm run bench -- --paths-runs ${o.pathsRuns}`));
      cleanupAndExit(0);
    })
    .catch((err: Error) => {
      process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
      cleanupAndExit(1);
    });
}
