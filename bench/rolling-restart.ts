/**
 * `npm run bench:restart`: the cost of a rolling restart (`pgha perform restart`) to writers.
 * For each formation size (`--nodes 2,3`), `pgha up --nodes N` under a temporary directory;
 * the benchmark's probe (bench/lib/probe.ts: one insert every ~10 ms, each its own transaction,
 * to whichever node takes writes) runs while `pgha perform restart` restarts every node (the
 * standbys one at a time, the primary last by switchover), `--runs` times (3). Figures per run:
 * the longest write gap (ms) from the command's start to its end, lost acknowledged writes
 * (acknowledged ids missing from the primary afterwards), and the command's own time (ms).
 * Writes `bench/results/rolling-restart.md` and `.json`.
 *
 * Options: --runs N (3), --nodes 2,3, --out DIR (default bench/results), --keep. `npm run bench`
 * runs it too after its failover scenarios (`--restart-runs N`, 3; 0: not).
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from '@commander-js/extra-typings';
import type { NodeStateRow, UpFile } from '@pgha/shared';
import { waitFor } from '@pgha/postgres';
import { intArg } from './lib/args.js';
import { idsOn, Probe, type Host } from './lib/probe.js';
import { killAll, killStarted, processTree, run, spawnLogged } from './lib/proc.js';
import { removeDir } from './lib/systems.js';

const PGHA_BIN = fileURLToPath(new URL('../packages/cli/bin/pgha.js', import.meta.url));

/** One rolling restart. */
export interface RestartRun {
  nodes: number;
  run: number;
  /** Longest time between two acknowledged writes during the command (ms). */
  maxWriteGapMs: number;
  /** Acknowledged writes missing from the primary afterwards. */
  lost: number;
  /** How long `pgha perform restart` took (ms). */
  commandMs: number;
  acked: number;
}

/** A `pgha up --nodes N` for the benchmark. */
class UpFormation {
  private proc: ReturnType<typeof spawnLogged> | undefined;
  up!: UpFile;
  env: Record<string, string> = {};

  constructor(private readonly dir: string, private readonly nodes: number) {}

  async start(): Promise<void> {
    this.proc = spawnLogged(process.execPath, [PGHA_BIN, 'up', '--nodes', String(this.nodes), '--dir', this.dir], join(this.dir, 'up.log'));
    const upFile = join(this.dir, 'up.json');
    const proc = this.proc;
    const up = await waitFor('pgha up to write up.json', () => {
      if (proc.exitCode !== null) return 'exited' as const;
      return existsSync(upFile) ? (JSON.parse(readFileSync(upFile, 'utf8')) as UpFile) : undefined;
    }, { timeoutMs: 240_000, intervalMs: 200 });
    if (up === 'exited') throw new Error(`pgha up exited early: ${readFileSync(join(this.dir, 'up.log'), 'utf8').trim().split('\n').at(-1)}`);
    this.up = up;
    this.env = { PGHA_MONITOR: this.up.monitor.url, PGHA_AUTH_TOKEN_FILE: this.up.auth_token_file!, ...(this.up.ca_file ? { PGHA_SSL_CA_FILE: this.up.ca_file } : {}) };
    // The probe connects as postgres with the password pgha up wrote to its pgpass file.
    process.env.PGPASSWORD = readFileSync(this.up.pgpass_file!, 'utf8').trim().split(':').slice(4).join(':');
    await this.settled();
  }

  get hosts(): Host[] {
    return this.up.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  }

  pgha(args: string[]): Promise<string> {
    return run(process.execPath, [PGHA_BIN, ...args], { env: this.env });
  }

  async state(): Promise<NodeStateRow[]> {
    return JSON.parse(await this.pgha(['show', 'state', '--json'])) as NodeStateRow[];
  }

  /** Waits until one node is primary and the others secondary, each at its goal. */
  async settled(): Promise<NodeStateRow[]> {
    return waitFor('primary + secondaries', async () => {
      const rows = await this.state().catch(() => []);
      const ok = rows.length === this.nodes && rows.every((r) => r.reported_state === r.goal_state && ['primary', 'secondary'].includes(r.goal_state)) && rows.filter((r) => r.goal_state === 'primary').length === 1;
      return ok ? rows : undefined;
    }, { timeoutMs: 180_000, intervalMs: 250 });
  }

  /** Stops `pgha up` (SIGTERM: it stops what it started), then whatever is left of its tree. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc?.pid) return;
    const tree = processTree(proc.pid);
    proc.kill('SIGTERM');
    await Promise.race([proc, new Promise((r) => setTimeout(r, 60_000))]);
    killAll(tree.filter((pid) => processTree(pid).length > 0));
  }
}

async function measure(f: UpFormation, nodes: number, runNo: number, firstId: number): Promise<{ run: RestartRun; nextId: number }> {
  await f.settled();
  const probe = new Probe(f.hosts, 'probe', firstId);
  probe.start();
  await waitFor('the probe to get acknowledgements', () => (probe.acks.length >= 20 ? true : undefined), { timeoutMs: 30_000, intervalMs: 50 });
  const startMs = performance.now();
  await f.pgha(['perform', 'restart', '--json', '--wait', '120']);
  const endMs = performance.now();
  await waitFor('writes after the restart', () => (probe.acks.some((a) => a.atMs > endMs + 500) ? true : undefined), { timeoutMs: 60_000, intervalMs: 50 });
  const nextId = await probe.stop();
  const rows = await f.settled();
  const primary = rows.find((r) => r.goal_state === 'primary')!;
  const present = await idsOn({ host: '127.0.0.1', port: primary.port }, 'probe');
  return {
    run: { nodes, run: runNo, maxWriteGapMs: Math.round(probe.maxGapMs(startMs, endMs)), lost: probe.lost(present).length, commandMs: Math.round(endMs - startMs), acked: probe.acks.length },
    nextId,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function report(runs: readonly RestartRun[], command: string): string {
  const sizes = [...new Set(runs.map((r) => r.nodes))];
  const cell = (xs: number[]) => `${median(xs)} [${Math.min(...xs)}–${Math.max(...xs)}]`;
  const lines = [
    '# Rolling restart (`pgha perform restart`)',
    '',
    `Command: \`${command}\` on ${new Date().toISOString().slice(0, 10)}. Medians [min–max] of ${Math.max(...sizes.map((n) => runs.filter((r) => r.nodes === n).length))} runs.`,
    'The machine is shared and noisy (2 cores, other engineers\' tests running): compare within this table only.',
    '',
    '| nodes | longest write gap (ms) | lost acknowledged writes | command time (ms) |',
    '|---|---|---|---|',
    ...sizes.map((n) => {
      const rs = runs.filter((r) => r.nodes === n);
      return `| ${n} | ${cell(rs.map((r) => r.maxWriteGapMs))} | ${rs.reduce((s, r) => s + r.lost, 0)} | ${cell(rs.map((r) => r.commandMs))} |`;
    }),
    '',
    'Per run:',
    '',
    '| nodes | run | longest write gap (ms) | lost | command time (ms) | acknowledged writes |',
    '|---|---|---|---|---|---|',
    ...runs.map((r) => `| ${r.nodes} | ${r.run} | ${r.maxWriteGapMs} | ${r.lost} | ${r.commandMs} | ${r.acked} |`),
    '',
  ];
  return lines.join('\n');
}

/** Options of {@link rollingRestartBench}. */
export interface RollingRestartOptions {
  /** Rolling restarts per formation size. */
  runs: number;
  /** Formation sizes (nodes). */
  nodes: readonly number[];
  /** Where to write `rolling-restart.md` and `.json`; undefined: nowhere. */
  outDir: string | undefined;
  /** Keep each formation's directory (its logs). */
  keep?: boolean;
  /** The command named in the results. */
  command?: string;
  /** Progress lines (default: stdout). */
  log?: (line: string) => void;
}

/**
 * Runs the rolling-restart measurement (see the module) and writes its results.
 *
 * @returns every run, by formation size then run.
 * @throws when a formation does not come up or a restart fails (every process it started is ended first).
 */
export async function rollingRestartBench(o: RollingRestartOptions): Promise<RestartRun[]> {
  const log = o.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const runs: RestartRun[] = [];
  for (const nodes of o.nodes) {
    const dir = mkdtempSync(join(tmpdir(), `pgha-bench-restart-${nodes}-`));
    // pgha up runs Postgres as its OS user, which must reach the directory.
    chmodSync(dir, 0o755);
    const f = new UpFormation(dir, nodes);
    try {
      await f.start();
      await Probe.createTable(f.hosts, 'probe');
      let nextId = 1;
      for (let i = 1; i <= o.runs; i++) {
        const m = await measure(f, nodes, i, nextId);
        nextId = m.nextId;
        runs.push(m.run);
        log(`rolling restart, ${nodes} nodes, run ${i}: longest write gap ${m.run.maxWriteGapMs} ms, lost ${m.run.lost}, command ${m.run.commandMs} ms`);
      }
    } finally {
      await f.stop();
      if (!o.keep) removeDir(dir);
      else log(`kept ${dir}`);
    }
  }
  const command = o.command ?? `npm run bench:restart -- --runs ${o.runs} --nodes ${o.nodes.join(',')}`;
  if (o.outDir) {
    mkdirSync(o.outDir, { recursive: true });
    writeFileSync(join(o.outDir, 'rolling-restart.md'), report(runs, command));
    writeFileSync(join(o.outDir, 'rolling-restart.json'), `${JSON.stringify({ date: new Date().toISOString(), command, runs }, null, 2)}\n`);
  }
  return runs;
}

/** Ends every process the benchmark started. */
function stopAll(): void {
  killStarted();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const o = new Command('npm run bench:restart --')
    .description('rolling restart benchmark: the longest write gap and the lost writes during pgha perform restart')
    .option('--runs <n>', 'rolling restarts per formation size', intArg(1, 100), 3)
    .option('--nodes <list>', 'formation sizes', '2,3')
    .option('--out <dir>', 'where to write the results', fileURLToPath(new URL('./results', import.meta.url)))
    .option('--keep', 'keep the formations\' directories and logs')
    .parse()
    .opts();
  process.once('SIGINT', () => {
    stopAll();
    process.exit(130);
  });
  const nodes = o.nodes.split(',').map((s) => intArg(1, 9)(s.trim()));
  const command = `npm run bench:restart -- --runs ${o.runs} --nodes ${nodes.join(',')}`;
  rollingRestartBench({ runs: o.runs, nodes, outDir: o.out, keep: !!o.keep, command })
    .then((runs) => process.stdout.write(`\n${report(runs, command)}`))
    .catch((err: Error) => {
      process.stderr.write(`bench:restart failed: ${err.message}\n`);
      stopAll();
      process.exit(1);
    });
}
