/**
 * `npm run bench`: failover, switchover and crash scenarios on pgha and on pg_auto_failover
 * 2.0 (Debian packages, installed when missing), side by side in the same run, with the same
 * probe. Prints a table with the ratio pgha / pg_auto_failover per figure and writes
 * `bench/results/latest.md` and `.json`.
 *
 * Options: --runs N (5), --systems pgha,pg_auto_failover, --scenarios a,b, --idle-seconds S (60), --out DIR.
 */
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from '@commander-js/extra-typings';
import Table from 'cli-table3';
import { delay, processMemory } from '@pgha/postgres';
import { intArg } from './lib/args.js';
import { cpuMs, killAll, processTree, started } from './lib/proc.js';
import { runScenario, SCENARIOS, type RunResult, type Scenario } from './lib/scenarios.js';
import { PgafSystem, PghaSystem, removeDir, type HaSystem } from './lib/systems.js';

/** Idle footprint of a system's monitor and of a keeper. */
export interface Footprint {
  system: string;
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
  results: RunResult[];
  footprints: Footprint[];
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
export async function bench(options: { runs: number; systems: string[]; scenarios: Scenario[]; idleSeconds: number; outDir: string | undefined; log?: (line: string) => void }): Promise<BenchReport> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const results: RunResult[] = [];
  const footprints: Footprint[] = [];
  for (const name of options.systems) {
    const dir = mkdtempSync(join(tmpdir(), `bench-${name}-`));
    chmodSync(dir, 0o755); // the Postgres OS user must reach the data directories below it
    const sys: HaSystem = name === 'pgha' ? new PghaSystem(join(dir, 'f')) : new PgafSystem(join(dir, 'f'));
    try {
      log(`setting up ${name} in ${dir}`);
      await sys.setup();
      if (options.idleSeconds > 0) {
        const fp = await idleFootprint(sys, options.idleSeconds);
        footprints.push(fp);
        log(`${name} idle ${fp.seconds} s: monitor ${fp.monitorCpuPct.toFixed(2)}% CPU, ${fp.monitorPeakRssMb.toFixed(0)} MB peak RSS; keeper ${fp.keeperCpuPct.toFixed(2)}% CPU, ${fp.keeperPeakRssMb.toFixed(0)} MB peak RSS`);
      }
      for (const scenario of options.scenarios) {
        for (let run = 1; run <= options.runs; run++) results.push(await runScenario(sys, scenario, run, log));
      }
    } finally {
      await sys.teardown().catch(() => undefined);
      removeDir(dir);
    }
  }
  const report: BenchReport = { date: new Date().toISOString(), machine: `${process.platform} ${process.arch}, node ${process.version}`, runs: options.runs, results, footprints };
  if (options.outDir) {
    mkdirSync(options.outDir, { recursive: true });
    writeFileSync(join(options.outDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(options.outDir, 'latest.md'), renderMarkdown(report));
  }
  return report;
}

const FIGURES: { key: keyof RunResult; label: string; unit: 'ms' | 'count' }[] = [
  { key: 'writesBackMs', label: 'writes back after (ms)', unit: 'ms' },
  { key: 'writeGapMs', label: 'longest write gap (ms)', unit: 'ms' },
  { key: 'lost', label: 'lost acknowledged writes', unit: 'count' },
  { key: 'unexpectedFailovers', label: 'failovers that should not happen', unit: 'count' },
  { key: 'recoveryMs', label: 'back to primary + secondary (ms)', unit: 'ms' },
];

function cell(values: number[], unit: 'ms' | 'count'): string {
  if (values.length === 0) return '—';
  if (unit === 'count') return `${values.reduce((a, b) => a + b, 0)} (max ${Math.max(...values)})`;
  return `${median(values).toFixed(0)} [${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)}]`;
}

/** The table: per scenario and figure, median [min–max] per system, and the ratio of medians. */
export function renderRows(report: BenchReport): string[][] {
  const rows: string[][] = [];
  for (const scenario of SCENARIOS) {
    const of = (system: string) => report.results.filter((r) => r.scenario === scenario && r.system === system);
    if (of('pgha').length === 0 && of('pg_auto_failover').length === 0) continue;
    for (const f of FIGURES) {
      const a = of('pgha').map((r) => Number(r[f.key]));
      const b = of('pg_auto_failover').map((r) => Number(r[f.key]));
      const ratio = f.unit === 'ms' && a.length && b.length && median(b) > 0 ? (median(a) / median(b)).toFixed(3) : '—';
      rows.push([scenario, f.label, cell(a, f.unit), cell(b, f.unit), ratio]);
    }
  }
  return rows;
}

function renderMarkdown(report: BenchReport): string {
  const lines = [
    `# Failover benchmark — ${report.date}`,
    '',
    `${report.machine}; ${report.runs} runs per scenario; medians [min–max]; ratio = pgha / pg_auto_failover (medians). Command: \`npm run bench\`.`,
    '',
    '| scenario | figure | pgha | pg_auto_failover | ratio |',
    '|---|---|---|---|---|',
    ...renderRows(report).map((r) => `| ${r.join(' | ')} |`),
    '',
    '## Idle footprint',
    '',
    '| system | seconds | monitor CPU % | monitor peak RSS MB | keeper CPU % | keeper peak RSS MB |',
    '|---|---|---|---|---|---|',
    ...report.footprints.map((f) => `| ${f.system} | ${f.seconds} | ${f.monitorCpuPct.toFixed(2)} | ${f.monitorPeakRssMb.toFixed(0)} | ${f.keeperCpuPct.toFixed(2)} | ${f.keeperPeakRssMb.toFixed(0)} |`),
    '',
  ];
  const errors = report.results.filter((r) => r.error);
  if (errors.length) lines.push('## Errors', '', ...errors.map((e) => `- ${e.system} ${e.scenario} run ${e.run}: ${e.error}`), '');
  return `${lines.join('\n')}\n`;
}

function cleanupAndExit(code: number): never {
  for (const p of started) if (p.pid) killAll(processTree(p.pid));
  process.exit(code);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const o = new Command('npm run bench --')
    .description('failover benchmark: each scenario on each system, writes acknowledged and lost, time without writes')
    .option('--runs <n>', 'runs of each scenario', intArg(1), 5)
    .option('--systems <list>', 'comma-separated: pgha, pg_auto_failover', 'pgha,pg_auto_failover')
    .option('--scenarios <list>', `comma-separated, from: ${SCENARIOS.join(', ')}`, SCENARIOS.join(','))
    .option('--idle-seconds <s>', 'length of the idle footprint window', intArg(1), 60)
    .option('--out <dir>', 'where to write latest.json and latest.md', fileURLToPath(new URL('./results', import.meta.url)))
    .parse()
    .opts();
  process.on('SIGINT', () => cleanupAndExit(130));
  process.on('SIGTERM', () => cleanupAndExit(143));
  const scenarios = o.scenarios.split(',').filter(Boolean) as Scenario[];
  for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}; one of ${SCENARIOS.join(', ')}`);
  bench({ runs: o.runs, systems: o.systems.split(','), scenarios, idleSeconds: o.idleSeconds, outDir: o.out })
    .then((report) => {
      const table = new Table({ head: ['scenario', 'figure', 'pgha', 'pg_auto_failover', 'ratio'] });
      table.push(...renderRows(report));
      process.stdout.write(`${table.toString()}\n`);
      for (const f of report.footprints) process.stdout.write(`${f.system} idle: monitor ${f.monitorCpuPct.toFixed(2)}% CPU, ${f.monitorPeakRssMb.toFixed(0)} MB; keeper ${f.keeperCpuPct.toFixed(2)}% CPU, ${f.keeperPeakRssMb.toFixed(0)} MB\n`);
      cleanupAndExit(0);
    })
    .catch((err: Error) => {
      process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
      cleanupAndExit(1);
    });
}
