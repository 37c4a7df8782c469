/**
 * How fast the CLI answers (`npm run bench:cli`): the wall time of `pgha --help`, `pgha show
 * state` and `pgha show state --json` against a running formation, each run as a user runs it,
 * `node packages/cli/bin/pgha.js …`, from the spawn to the exit of the process.
 *
 * It starts a formation with `pgha up --nodes 2` in a temporary directory and waits until it
 * shows a primary and a secondary; then it runs `--rounds` rounds (after `--warmup` rounds not
 * counted), each running every command once, in turn, so that a drift of the machine's speed
 * falls on every command alike. Two floors run in the same rounds: `node` starting an empty
 * script, and `node` making the one HTTPS request `show state` makes (with the monitor's CA and
 * token, `node:https`, nothing else): what is left above the latter is pgha's own.
 *
 * When `NODE_EXTRA_CA_CERTS` is set, every command runs twice a round, with and without it:
 * Node parses that file at start (about 40 ms for a distribution's CA bundle).
 *
 * Options: `--rounds 20` `--warmup 3` `--no-write`; `--compare BIN` also times another build's
 * `packages/cli/bin/pgha.js` in the same rounds (e.g. a checkout of the commit before a change),
 * named `--compare-name` in the results. Results go to `bench/results/cli.md`. The
 * formation is stopped (SIGTERM to `pgha up`, then SIGKILL to what is left of its process tree)
 * and its directory removed, also on failure and on Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Command } from '@commander-js/extra-typings';
import { isProcessAlive, pollUntil, postmasterPid, waitFor } from '@pgha/postgres';
import type { NodeStateRow, UpFile } from '@pgha/shared';
import { intArg } from './lib/args.js';
import { killAll, processTree, spawnLogged } from './lib/proc.js';
import { median } from './lib/stats.js';

const PGHA_BIN = fileURLToPath(new URL('../packages/cli/bin/pgha.js', import.meta.url));
const RESULTS = fileURLToPath(new URL('./results/cli.md', import.meta.url));

/** The one HTTPS request of `pgha show state`, and nothing else: the floor under it. */
const HTTPS_FLOOR = `
const { request } = require('node:https');
const { readFileSync } = require('node:fs');
const ca = readFileSync(process.env.PGHA_SSL_CA_FILE, 'utf8');
const token = readFileSync(process.env.PGHA_AUTH_TOKEN_FILE, 'utf8').trim();
request(new URL('/v1/formations/default/state', process.env.PGHA_MONITOR), { ca, headers: { authorization: 'Bearer ' + token } }, (res) => {
  let body = '';
  res.setEncoding('utf8').on('data', (c) => (body += c)).on('end', () => process.stdout.write(JSON.stringify(JSON.parse(body), null, 2) + '\\n'));
}).end();`;

/** One command timed. */
interface Subject {
  label: string;
  args: string[];
}

/** The three commands, run with the `pgha.js` at `bin`, labelled with `suffix`. */
const pghaSubjects = (bin: string, suffix = ''): Subject[] => [
  { label: `pgha --help${suffix}`, args: [bin, '--help'] },
  { label: `pgha show state${suffix}`, args: [bin, 'show', 'state'] },
  { label: `pgha show state --json${suffix}`, args: [bin, 'show', 'state', '--json'] },
];

const FLOORS: Subject[] = [
  { label: 'floor: node, an empty script', args: ['-e', ''] },
  { label: 'floor: node, the HTTPS request alone', args: ['-e', HTTPS_FLOOR] },
];

/** Runs `node ARGS` to its exit; returns its wall time in ms. @throws when it exits non-zero. */
function timeRun(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.resume();
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - t0;
      if (code === 0) resolve(ms);
      else reject(new Error(`node ${args.slice(0, 3).join(' ')} exited ${code}: ${stderr.trim().slice(-500)}`));
    });
  });
}

/** The formation `pgha up` runs, and how to stop it. */
interface Formation {
  env: NodeJS.ProcessEnv;
  stop: () => Promise<void>;
}

/** `pgha up --nodes 2 --dir DIR`, once it shows a primary and a secondary. */
async function startFormation(dir: string): Promise<Formation> {
  const up = spawnLogged(process.execPath, [PGHA_BIN, 'up', '--nodes', '2', '--dir', dir], join(dir, 'up.log'));
  const upFile = join(dir, 'up.json');
  // SIGTERM: pgha up stops its monitor and keepers (they stop their Postgres); then SIGKILL to
  // whatever is left of its tree, and to the postmasters of its data directories.
  const stop = async (): Promise<void> => {
    const tree = up.pid ? processTree(up.pid) : [];
    if (up.pid && isProcessAlive(up.pid)) process.kill(up.pid, 'SIGTERM');
    await pollUntil(() => !up.pid || !isProcessAlive(up.pid), { timeoutMs: 30_000, intervalMs: 100 });
    killAll(tree.filter((pid) => isProcessAlive(pid)));
    if (isReadable(upFile)) {
      const u = JSON.parse(readFileSync(upFile, 'utf8')) as UpFile;
      killAll([u.monitor.pgdata, ...u.nodes.map((n) => n.pgdata)].map((d) => postmasterPid(d)).filter((pid): pid is number => pid !== undefined));
    }
  };
  try {
    await waitFor('pgha up to write up.json', () => up.exitCode !== null || isReadable(upFile), { timeoutMs: 180_000, intervalMs: 200 });
    if (up.exitCode !== null) throw new Error(`pgha up exited (${up.exitCode}): ${readFileSync(join(dir, 'up.log'), 'utf8').trim().split('\n').slice(-5).join('\n')}`);
    const u = JSON.parse(readFileSync(upFile, 'utf8')) as UpFile;
    const env: NodeJS.ProcessEnv = { ...process.env, PGHA_MONITOR: u.monitor.url, PGHA_AUTH_TOKEN_FILE: u.auth_token_file!, ...(u.ca_file ? { PGHA_SSL_CA_FILE: u.ca_file } : {}) };
    await waitFor(
      'a primary and a secondary',
      async () => {
        const rows = await stateRows(env).catch(() => []);
        return rows.some((r) => r.reported_state === 'primary') && rows.some((r) => r.reported_state === 'secondary');
      },
      { timeoutMs: 180_000, intervalMs: 500 },
    );
    return { env, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function isReadable(path: string): boolean {
  try {
    readFileSync(path);
    return true;
  } catch {
    return false;
  }
}

/** `pgha show state --json`'s rows. */
function stateRows(env: NodeJS.ProcessEnv): Promise<NodeStateRow[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PGHA_BIN, 'show', 'state', '--json'], { env, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as NodeStateRow[]) : reject(new Error(`show state exited ${code}`))));
  });
}

/** One row of the results: a command in one environment, its wall times in ms. */
interface Row {
  label: string;
  environment: string;
  ms: number[];
}

const fmt = (ms: number[]): string => `${median(ms).toFixed(0)} [${Math.min(...ms).toFixed(0)}–${Math.max(...ms).toFixed(0)}]`;

async function main(): Promise<void> {
  const o = new Command('npm run bench:cli --')
    .description("the CLI's wall time: --help, show state and show state --json against a running formation")
    .option('--rounds <n>', 'counted rounds (each runs every command once)', intArg(1, 1000), 20)
    .option('--warmup <n>', 'rounds run first and not counted', intArg(0, 100), 3)
    .option('--compare <pgha.js>', "also time another build's packages/cli/bin/pgha.js in the same rounds")
    .option('--compare-name <name>', 'what to call that build in the results (default: its path)')
    .option('--no-write', 'do not write bench/results/cli.md')
    .parse()
    .opts();
  const dir = mkdtempSync(join(tmpdir(), 'pgha-bench-cli-'));
  // The Postgres OS user reaches its data directories through it.
  chmodSync(dir, 0o755);
  let formation: Formation | undefined;
  const cleanUp = async (): Promise<void> => {
    await formation?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void cleanUp().finally(() => process.exit(130)));
  const rows: Row[] = [];
  try {
    console.log(`starting a formation (pgha up --nodes 2) in ${dir}`);
    formation = await startFormation(dir);
    const environments: { name: string; env: NodeJS.ProcessEnv }[] = [{ name: 'as given', env: formation.env }];
    if (process.env['NODE_EXTRA_CA_CERTS']) {
      const { NODE_EXTRA_CA_CERTS: _dropped, ...without } = formation.env;
      environments[0]!.name = `NODE_EXTRA_CA_CERTS=${process.env['NODE_EXTRA_CA_CERTS']}`;
      environments.push({ name: 'without NODE_EXTRA_CA_CERTS', env: without });
    }
    const subjects = [...pghaSubjects(PGHA_BIN), ...(o.compare ? pghaSubjects(o.compare, `, ${o.compareName ?? o.compare}`) : []), ...FLOORS];
    for (const e of environments) for (const s of subjects) rows.push({ label: s.label, environment: e.name, ms: [] });
    for (let round = 0; round < o.warmup + o.rounds; round++) {
      let i = 0;
      for (const e of environments) {
        for (const s of subjects) {
          const ms = await timeRun(s.args, e.env);
          if (round >= o.warmup) rows[i]!.ms.push(ms);
          i++;
        }
      }
    }
  } finally {
    await cleanUp();
  }
  const command = `npm run bench:cli -- --rounds ${o.rounds} --warmup ${o.warmup}${o.compare ? ` --compare ${o.compare}` : ''}${o.compareName ? ` --compare-name '${o.compareName}'` : ''}`;
  const lines = [
    '# How fast the CLI answers',
    '',
    `Command: \`${command}\` (bench/cli-start.ts)`,
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}.`,
    '',
    `Wall time of each process, spawn to exit, in ms: median [min–max] of ${o.rounds} runs, after ${o.warmup} not counted; a formation of two nodes (\`pgha up\`, its monitor on HTTPS) ran meanwhile.`,
    '',
    '| command | environment | wall ms |',
    '|---|---|---|',
    ...rows.map((r) => `| \`${r.label}\` | ${r.environment} | ${fmt(r.ms)} |`),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}`);
  if (o.write) {
    writeFileSync(RESULTS, lines.join('\n'));
    console.log(`written ${RESULTS}`);
  }
}

await main();
