/**
 * Monitor capacity benchmark (`npm run bench:monitor`).
 *
 * For each size N (default 100, 1000, 3000): a fresh monitor (`pgha monitor create` + `pgha
 * monitor run` as a child process, its own Postgres), formations `bench_1..bench_K` of 3
 * nodes each, and N simulated keepers (no Postgres behind them) that register and then POST a
 * report once per second through the real HTTP API, spread evenly over the second. Each
 * simulated keeper reports the goal state the monitor last gave it as its reported state, so
 * every group goes the way a real one does (single → wait_primary → primary, wait_standby →
 * catchingup → secondary), with a primary LSN that advances and standbys that stream a little
 * behind it. The nodes' host:port are 127.0.0.1 with ports nothing listens on, so the
 * monitor's health prober marks them unhealthy: that is part of the load. The keepers report
 * Postgres running and streaming, so no failover starts.
 *
 * After the groups settle (or a warm-up limit), a measurement window (`--seconds`, default
 * 30) records per-report latency (p50/p99/max), errors (non-2xx or transport), reports/s,
 * the monitor process's CPU (utime+stime from /proc, % of one core) and RSS (current, peak in
 * the window, VmHWM), and the CPU of the monitor's Postgres (postmaster and its children).
 *
 * Output: a table on stdout, `bench/results/monitor-capacity.md` and `.json`, and the target
 * line (1,000 nodes: p99 < 50 ms, 0 errors) with PASS/FAIL.
 *
 * Options: `--sizes 100,1000` `--seconds 30` `--warmup-max 90` `--connections N` `--keep`
 * (keep the temporary directories) `--no-write` (do not write bench/results) `--scrape-every S`
 * (also scrape `GET /metrics` every S seconds during the window, as Prometheus would, and report
 * the scrapes' duration and size).
 *
 * `BENCH_MONITOR_NODE_ARGS` passes Node options to the monitor process only (e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile it).
 *
 * Every process it starts is ended by PID (also on failure and on SIGINT/SIGTERM) and its
 * temporary directories are removed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import Table from 'cli-table3';
import getPort from 'get-port';
import { Pool } from 'undici';
import { Command } from '@commander-js/extra-typings';
import { intArg } from './lib/args.js';
import { allProcesses, clockTicksPerSecond, delay, isProcessAlive, pollUntil, postmasterPid, processMemory, processStat } from '@pgha/postgres';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PGHA_BIN = join(ROOT, 'packages/cli/bin/pgha.js');
const RESULTS_DIR = join(ROOT, 'bench/results');
const TARGET = { nodes: 1000, p99Ms: 50, errors: 0 };

// ---------------------------------------------------------------- options

interface Options {
  sizes: number[];
  seconds: number;
  warmupMaxS: number;
  connections: number | undefined;
  keep: boolean;
  write: boolean;
  /** Scrape `GET /metrics` every this many seconds during the window (0: never). */
  scrapeEveryS: number;
}

/** The options of `npm run bench:monitor -- …` (commander: `--help`, and a usage error for a bad one). */
function parseOptions(argv: readonly string[]): Options {
  const o = new Command('npm run bench:monitor --')
    .description('monitor capacity: N simulated keepers report once per second; latency, errors, CPU and memory of the monitor')
    .option('--sizes <n,n,...>', 'numbers of simulated nodes, one run each', (v) => v.split(',').map((s) => intArg(1)(s.trim())), [100, 1000, 3000])
    .option('--seconds <s>', 'measurement window', intArg(1), 30)
    .option('--warmup-max <s>', 'longest wait for the groups to settle before measuring', intArg(1), 90)
    .option('--connections <n>', 'HTTP connections to the monitor (default: nodes / 10, from 16 to 256)', intArg(1))
    .option('--keep', 'keep the temporary directories', false)
    .option('--no-write', 'do not write bench/results')
    .option('--scrape-every <s>', 'also scrape GET /metrics every S seconds during the window, as Prometheus would', intArg(1))
    .parse(argv, { from: 'user' })
    .opts();
  return { sizes: o.sizes, seconds: o.seconds, warmupMaxS: o.warmupMax, connections: o.connections, keep: o.keep, write: o.write, scrapeEveryS: o.scrapeEvery ?? 0 };
}

// ---------------------------------------------------------------- processes and cleanup

const children = new Set<ChildProcess>();
const postmasterDirs = new Set<string>();
const tempDirs = new Set<string>();
let keepDirs = false;


/** Waits until every PID `pids()` returns has ended, at most `ms`. */
async function waitGone(pids: () => (number | undefined)[], ms: number): Promise<void> {
  await pollUntil(() => !pids().some(isProcessAlive), { timeoutMs: ms, intervalMs: 100 });
}

/** Stops one child: SIGTERM (a monitor then stops its Postgres), SIGKILL after `graceMs`. */
async function stopChild(child: ChildProcess, graceMs = 20_000): Promise<void> {
  if (child.pid && child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    await waitGone(() => [child.exitCode === null && child.signalCode === null ? child.pid : undefined], graceMs);
    if (child.exitCode === null && child.signalCode === null && isProcessAlive(child.pid)) process.kill(child.pid!, 'SIGKILL');
  }
  children.delete(child);
}

/** Ends every process this benchmark started, then its postmasters, then removes its directories. */
async function cleanupAll(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
  for (const dir of postmasterDirs) {
    const pid = postmasterPid(dir);
    if (pid) process.kill(pid, 'SIGQUIT'); // immediate shutdown; its children follow
  }
  await waitGone(() => [...postmasterDirs].map(postmasterPid), 10_000);
  for (const dir of postmasterDirs) {
    const pid = postmasterPid(dir);
    if (pid) process.kill(pid, 'SIGKILL');
  }
  postmasterDirs.clear();
  for (const dir of tempDirs) {
    if (keepDirs) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
  tempDirs.clear();
}

let cleaningUp: Promise<void> | undefined;
function cleanupOnce(): Promise<void> {
  cleaningUp ??= cleanupAll();
  return cleaningUp;
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping every process started by the benchmark…`);
    void cleanupOnce().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

/** Runs `pgha ARGS…` to completion (tracked, so that a signal ends it too). */
function runPgha(args: string[], logFile: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const fd = openSync(logFile, 'a');
    const child = spawn(process.execPath, [PGHA_BIN, ...args], { stdio: ['ignore', fd, fd], env: { ...process.env, PGHA_LOG_LEVEL: 'info' } });
    closeSync(fd);
    children.add(child);
    child.on('error', reject);
    child.on('exit', (code) => {
      children.delete(child);
      resolve(code ?? -1);
    });
  });
}

// ---------------------------------------------------------------- /proc

/** CPU seconds of a process itself (utime + stime) and of its children that exited (cutime + cstime); undefined when it is gone. */
function cpuSeconds(pid: number): { cpuS: number; childCpuS: number } | undefined {
  const stat = processStat(pid);
  return stat && { cpuS: stat.cpuTicks / clockTicksPerSecond, childCpuS: stat.childCpuTicks / clockTicksPerSecond };
}

/** VmRSS and VmHWM of a process, in MiB. */
function procMemory(pid: number): { rssMiB: number; hwmMiB: number } | undefined {
  const m = processMemory(pid);
  return m && { rssMiB: m.rssBytes / 2 ** 20, hwmMiB: m.peakRssBytes / 2 ** 20 };
}

/**
 * CPU seconds used so far by a postmaster and all its children: the live ones' utime+stime,
 * plus the postmaster's cutime+cstime (children that already exited).
 */
function postgresCpuS(postmasterPid: number): number {
  const pm = cpuSeconds(postmasterPid);
  if (!pm) return NaN;
  let total = pm.cpuS + pm.childCpuS;
  for (const p of allProcesses()) if (p.ppid === postmasterPid) total += p.cpuTicks / clockTicksPerSecond;
  return total;
}

/** TCP ports something listens on (from /proc/net/tcp and tcp6). */
function listeningPorts(): Set<number> {
  const ports = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A') ports.add(parseInt(cols[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

// ---------------------------------------------------------------- the monitor

interface Monitor {
  /** `https://…`: the benchmark measures the monitor as it is created by default (TLS, tokens). */
  url: string;
  /** The operator token. */
  token: string;
  /** The monitor's CA certificate (PEM). */
  ca: string;
  dir: string;
  pgdata: string;
  child: ChildProcess;
  logFile: string;
}

async function startMonitor(): Promise<Monitor> {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-bench-monitor-'));
  chmodSync(dir, 0o755); // the postgres OS user must reach the data directory
  tempDirs.add(dir);
  const pgdata = join(dir, 'pgdata');
  postmasterDirs.add(pgdata);
  const logFile = join(dir, 'monitor.log');
  const pgPort = await getPort({ host: '127.0.0.1' });
  const httpPort = await getPort({ host: '127.0.0.1', exclude: [pgPort] });
  const code = await runPgha(['monitor', 'create', '--pgdata', pgdata, '--pg-port', String(pgPort), '--listen', `127.0.0.1:${httpPort}`], logFile);
  if (code !== 0) throw new Error(`pgha monitor create failed (exit ${code}); see ${logFile}:\n${tail(logFile)}`);
  const fd = openSync(logFile, 'a');
  // BENCH_MONITOR_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the monitor.
  const nodeArgs = (process.env.BENCH_MONITOR_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, PGHA_BIN, 'monitor', 'run', '--pgdata', pgdata], { stdio: ['ignore', fd, fd], env: { ...process.env, PGHA_LOG_LEVEL: 'info' } });
  closeSync(fd);
  children.add(child);
  const url = `https://127.0.0.1:${httpPort}`;
  const ca = readFileSync(`${pgdata}.pgha/tls/ca.crt`, 'utf8');
  const token = readFileSync(`${pgdata}.pgha/auth-token`, 'utf8').trim();
  const health = new Pool(url, { connect: { ca } });
  const answered = await pollUntil(async () => child.exitCode !== null || (await health.request({ method: 'GET', path: '/health' })).statusCode === 200, { timeoutMs: 60_000, intervalMs: 200 });
  if (child.exitCode !== null) throw new Error(`pgha monitor run exited (${child.exitCode}); see ${logFile}:\n${tail(logFile)}`);
  if (!answered) throw new Error(`the monitor did not answer at ${url} within 60 s; see ${logFile}`);
  await health.close();
  return { url, token, ca, dir, pgdata, child, logFile };
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------- simulated keepers

const WRITABLE = new Set(['single', 'wait_primary', 'primary', 'join_primary', 'apply_settings']);
const NO_POSTGRES_YET = new Set(['init', 'wait_standby', 'dropped']);

interface SimGroup {
  formation: string;
  /** The primary's WAL position: advances with every primary report. */
  wal: bigint;
  nodes: SimNode[];
}

interface SimNode {
  index: number;
  name: string;
  port: number;
  group: SimGroup;
  nodeId: number;
  /** The node token its registration returned. */
  token: string;
  /** The goal the monitor last answered; reported as the node's state at the next report. */
  goal: string;
  /** What the node reported last. */
  reported: string;
  syncNames: string;
  inFlight: boolean;
}

function formatLsn(v: bigint): string {
  return `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;
}

function buildReport(n: SimNode): Record<string, unknown> {
  const state = n.goal;
  if (NO_POSTGRES_YET.has(state)) {
    return { reportedState: state, postgresRunning: false, isInRecovery: null, lsn: '0/0', timeline: 0, upstreamStreaming: false };
  }
  if (WRITABLE.has(state)) {
    // A primary taking writes: 8..64 kB of WAL per second.
    n.group.wal += BigInt(8192 + Math.floor(Math.random() * 57344));
    return { reportedState: state, postgresRunning: true, isInRecovery: false, lsn: formatLsn(n.group.wal), timeline: 1, upstreamStreaming: false, synchronousStandbyNames: state === 'single' ? '' : n.syncNames };
  }
  // A standby streaming a little behind the primary.
  const lag = BigInt(Math.floor(Math.random() * 65536));
  const lsn = n.group.wal > lag ? n.group.wal - lag : n.group.wal;
  return { reportedState: state, postgresRunning: true, isInRecovery: true, lsn: formatLsn(lsn), timeline: 1, upstreamStreaming: true, synchronousStandbyNames: null };
}

/** Every keeper reached its goal: one primary and secondaries (a lone node: single). */
function groupSettled(g: SimGroup): boolean {
  const writable = g.nodes.length === 1 ? 'single' : 'primary';
  return g.nodes.every((n) => n.reported === n.goal && (n.goal === writable || n.goal === 'secondary')) && g.nodes.filter((n) => n.goal === writable).length === 1;
}

interface Recorder {
  recording: boolean;
  latenciesMs: number[];
  errors: Map<string, number>;
  completed: number;
  skipped: number;
  firstErrors: string[];
}

function newRecorder(): Recorder {
  return { recording: false, latenciesMs: [], errors: new Map(), completed: 0, skipped: 0, firstErrors: [] };
}

function countError(rec: Recorder, kind: string, detail: string): void {
  rec.errors.set(kind, (rec.errors.get(kind) ?? 0) + 1);
  if (rec.firstErrors.length < 5) rec.firstErrors.push(`${kind}: ${detail.slice(0, 200)}`);
}

async function sendReport(pool: Pool, n: SimNode, rec: Recorder): Promise<void> {
  const body = JSON.stringify(buildReport(n));
  const sentState = n.goal;
  const recording = rec.recording;
  const t0 = performance.now();
  n.inFlight = true;
  try {
    const res = await pool.request({ method: 'POST', path: `/v1/nodes/${n.nodeId}/report`, headers: { 'content-type': 'application/json', authorization: `Bearer ${n.token}` }, body, headersTimeout: 10_000, bodyTimeout: 10_000 });
    const text = await res.body.text();
    const ms = performance.now() - t0;
    if (res.statusCode >= 200 && res.statusCode < 300) {
      const goal = JSON.parse(text) as { goalState: string; synchronousStandbyNames: string };
      n.reported = sentState;
      n.goal = goal.goalState;
      n.syncNames = goal.synchronousStandbyNames;
      if (recording) {
        rec.latenciesMs.push(ms);
        rec.completed++;
      }
    } else if (recording) {
      rec.latenciesMs.push(ms);
      countError(rec, `HTTP ${res.statusCode}`, text);
    }
  } catch (err) {
    if (recording) countError(rec, (err as { code?: string }).code ?? 'transport', (err as Error).message);
  } finally {
    n.inFlight = false;
  }
}

/**
 * Sends every node's report once per second, spread evenly over the second: N slots, the
 * members of a formation a third of a second apart (keepers of one group do not report in
 * step). Open loop: a slot whose previous report is still in flight is skipped and counted.
 */
function startReporting(pool: Pool, nodes: SimNode[], rec: Recorder): () => void {
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();
  const t0 = performance.now() + 50;
  const formations = Math.ceil(nodes.length / 3);
  for (const n of nodes) {
    // Node j of formation f (index 3f + j) takes slot j·K + f of the second's N slots.
    const slot = (n.index % 3) * formations + Math.floor(n.index / 3);
    const offset = (slot / (3 * formations)) * 1000;
    let k = 0;
    const tick = (): void => {
      if (stopped) return;
      if (n.inFlight) {
        if (rec.recording) rec.skipped++;
      } else {
        void sendReport(pool, n, rec);
      }
      k++;
      const timer = setTimeout(tick, Math.max(0, t0 + offset + k * 1000 - performance.now()));
      timers.add(timer);
      timer.unref?.();
    };
    const first = setTimeout(tick, Math.max(0, t0 + offset - performance.now()));
    timers.add(first);
  }
  // Forget fired timers now and then so the set does not grow.
  const gc = setInterval(() => timers.clear(), 10_000);
  return () => {
    stopped = true;
    clearInterval(gc);
    for (const t of timers) clearTimeout(t);
  };
}

/** POST with JSON; throws on a non-2xx answer. */
async function postJson(pool: Pool, token: string, path: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await pool.request({ method: 'POST', path, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body), headersTimeout: 30_000, bodyTimeout: 30_000 });
  const text = await res.body.text();
  if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`POST ${path} answered ${res.statusCode}: ${text}`);
  return { status: res.statusCode, json: JSON.parse(text) };
}

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

// ---------------------------------------------------------------- one size

interface SizeResult {
  nodes: number;
  formations: number;
  windowS: number;
  registerS: number;
  warmupS: number;
  settledGroups: number;
  reportsPerS: number;
  expectedPerS: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  errorKinds: Record<string, number>;
  firstErrors: string[];
  skipped: number;
  monitorCpuPct: number;
  monitorRssMiB: number;
  monitorRssMaxMiB: number;
  monitorHwmMiB: number;
  postgresCpuPct: number;
  benchCpuPct: number;
  connections: number;
  /** With `--scrape-every`: the `GET /metrics` scrapes of the window. */
  scrapes?: { count: number; p50Ms: number; maxMs: number; bytes: number; samples: number; errors: number };
}

/**
 * Scrapes `GET /metrics` with the operator token every `everyS` seconds, as Prometheus would,
 * until `stop()`, which resolves with the scrapes' durations (ms), the last body's size and
 * sample count, and the failed scrapes.
 */
function startScraping(pool: Pool, token: string, everyS: number): { stop(): Promise<NonNullable<SizeResult['scrapes']>> } {
  const durations: number[] = [];
  let bytes = 0;
  let samples = 0;
  let errors = 0;
  let running: Promise<void> = Promise.resolve();
  const scrape = async (): Promise<void> => {
    const t = performance.now();
    try {
      const res = await pool.request({ method: 'GET', path: '/metrics', headers: { authorization: `Bearer ${token}` }, headersTimeout: 30_000, bodyTimeout: 30_000 });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
      durations.push(performance.now() - t);
      bytes = Buffer.byteLength(text);
      samples = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
    } catch {
      errors++;
    }
  };
  const timer = setInterval(() => {
    running = running.then(scrape);
  }, everyS * 1000);
  return {
    async stop() {
      clearInterval(timer);
      await running;
      const sorted = [...durations].sort((a, b) => a - b);
      return { count: sorted.length, p50Ms: percentile(sorted, 50), maxMs: sorted.at(-1) ?? NaN, bytes, samples, errors };
    },
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function runSize(size: number, opts: Options): Promise<SizeResult> {
  const formations = Math.ceil(size / 3);
  console.log(`\n== ${size} nodes in ${formations} formations of 3 ==`);
  const monitor = await startMonitor();
  const connections = opts.connections ?? Math.min(256, Math.max(16, Math.ceil(size / 10)));
  const pool = new Pool(monitor.url, { connect: { ca: monitor.ca }, connections, pipelining: 1, keepAliveTimeout: 60_000, connectTimeout: 10_000 });
  try {
    // Fake node ports: distinct, and nothing listens there.
    const taken = listeningPorts();
    const ports: number[] = [];
    for (let p = 10_000; ports.length < size; p++) if (!taken.has(p)) ports.push(p);

    const groups: SimGroup[] = [];
    const nodes: SimNode[] = [];
    for (let f = 0; f < formations; f++) {
      const group: SimGroup = { formation: `bench_${f + 1}`, wal: 0x3000060n, nodes: [] };
      for (let j = 0; j < 3 && nodes.length < size; j++) {
        const n: SimNode = { index: nodes.length, name: `node${j + 1}`, port: ports[nodes.length]!, group, nodeId: 0, token: '', goal: 'init', reported: 'init', syncNames: '', inFlight: false };
        group.nodes.push(n);
        nodes.push(n);
      }
      groups.push(group);
    }

    const t0 = performance.now();
    await mapLimit(groups, 16, async (g) => {
      await postJson(pool, monitor.token, '/v1/formations', { formation: g.formation });
      for (const n of g.nodes) {
        const { json } = await postJson(pool, monitor.token, `/v1/formations/${g.formation}/nodes`, { name: n.name, host: '127.0.0.1', port: n.port, candidatePriority: 50, replicationQuorum: true });
        n.nodeId = json.nodeId;
        n.token = json.nodeToken;
        n.goal = json.goalState;
      }
    });
    const registerS = (performance.now() - t0) / 1000;
    console.log(`registered ${nodes.length} nodes in ${registerS.toFixed(1)} s; warming up until every group is primary + 2 secondaries (at most ${opts.warmupMaxS} s)`);

    const rec = newRecorder();
    const stop = startReporting(pool, nodes, rec);
    try {
      const w0 = performance.now();
      let settled = 0;
      for (;;) {
        await delay(1000);
        if (monitor.child.exitCode !== null) throw new Error(`the monitor exited (${monitor.child.exitCode}); see ${monitor.logFile}:\n${tail(monitor.logFile)}`);
        settled = groups.filter(groupSettled).length;
        const elapsed = (performance.now() - w0) / 1000;
        if (settled === groups.length || elapsed >= opts.warmupMaxS) break;
      }
      // Two more seconds so that the last reports of the warm-up are not in the window.
      await delay(2000);
      const warmupS = (performance.now() - w0) / 1000;
      settled = groups.filter(groupSettled).length;
      console.log(`warm-up ${warmupS.toFixed(1)} s: ${settled}/${groups.length} groups settled; measuring for ${opts.seconds} s`);

      const monitorPid = monitor.child.pid!;
      const pmPid = postmasterPid(monitor.pgdata);
      const m0 = cpuSeconds(monitorPid);
      const pg0 = pmPid ? postgresCpuS(pmPid) : NaN;
      const b0 = process.cpuUsage();
      const s0 = performance.now();
      let rssMax = 0;
      rec.recording = true;
      const sampler = setInterval(() => {
        const mem = procMemory(monitorPid);
        if (mem) rssMax = Math.max(rssMax, mem.rssMiB);
      }, 1000);
      const scrapes = opts.scrapeEveryS > 0 ? startScraping(pool, monitor.token, opts.scrapeEveryS) : undefined;
      await delay(opts.seconds * 1000);
      rec.recording = false;
      clearInterval(sampler);
      const scraped = await scrapes?.stop();
      const windowS = (performance.now() - s0) / 1000;
      const m1 = cpuSeconds(monitorPid);
      const pg1 = pmPid ? postgresCpuS(pmPid) : NaN;
      const b1 = process.cpuUsage(b0);
      const mem = procMemory(monitorPid);
      rssMax = Math.max(rssMax, mem?.rssMiB ?? 0);
      // Let the reports still in flight finish before the monitor goes.
      await delay(1500);

      const sorted = [...rec.latenciesMs].sort((a, b) => a - b);
      const errors = [...rec.errors.values()].reduce((a, b) => a + b, 0);
      const result: SizeResult = {
        nodes: size,
        formations,
        windowS,
        registerS,
        warmupS,
        settledGroups: settled,
        reportsPerS: rec.completed / windowS,
        expectedPerS: size,
        p50Ms: percentile(sorted, 50),
        p90Ms: percentile(sorted, 90),
        p99Ms: percentile(sorted, 99),
        maxMs: sorted.at(-1) ?? NaN,
        errors,
        errorKinds: Object.fromEntries(rec.errors),
        firstErrors: rec.firstErrors,
        skipped: rec.skipped,
        monitorCpuPct: m0 && m1 ? ((m1.cpuS - m0.cpuS) / windowS) * 100 : NaN,
        monitorRssMiB: mem?.rssMiB ?? NaN,
        monitorRssMaxMiB: rssMax,
        monitorHwmMiB: mem?.hwmMiB ?? NaN,
        postgresCpuPct: ((pg1 - pg0) / windowS) * 100,
        benchCpuPct: ((b1.user + b1.system) / 1e6 / windowS) * 100,
        connections,
        ...(scraped ? { scrapes: scraped } : {}),
      };
      if (scraped) console.log(`GET /metrics every ${opts.scrapeEveryS} s: ${scraped.count} scrapes, p50 ${scraped.p50Ms.toFixed(1)} ms, max ${scraped.maxMs.toFixed(1)} ms, ${scraped.bytes} bytes, ${scraped.samples} samples, ${scraped.errors} errors`);
      console.log(
        `reports/s ${result.reportsPerS.toFixed(0)} (client CPU ${result.benchCpuPct.toFixed(0)}%), p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms, max ${result.maxMs.toFixed(0)} ms, ` +
          `errors ${errors}, skipped ${rec.skipped}, monitor CPU ${result.monitorCpuPct.toFixed(0)}%, RSS ${result.monitorRssMiB.toFixed(0)} MiB, Postgres CPU ${result.postgresCpuPct.toFixed(0)}%`,
      );
      for (const e of rec.firstErrors) console.log(`  error: ${e}`);
      return result;
    } finally {
      stop();
    }
  } finally {
    await pool.close().catch(() => undefined);
    await stopChild(monitor.child);
    const pm = postmasterPid(monitor.pgdata);
    if (pm) {
      process.kill(pm, 'SIGQUIT');
      await waitGone(() => [postmasterPid(monitor.pgdata)], 10_000);
    }
    postmasterDirs.delete(monitor.pgdata);
    if (!opts.keep) {
      rmSync(monitor.dir, { recursive: true, force: true });
      tempDirs.delete(monitor.dir);
    }
  }
}

// ---------------------------------------------------------------- output

function fmt(v: number, digits = 1): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '—';
}

function tableRows(results: SizeResult[]): string[][] {
  return results.map((r) => [
    String(r.nodes),
    `${fmt(r.reportsPerS, 0)} / ${r.expectedPerS}`,
    fmt(r.p50Ms),
    fmt(r.p99Ms),
    fmt(r.maxMs, 0),
    String(r.errors),
    String(r.skipped),
    fmt(r.monitorCpuPct, 0),
    `${fmt(r.monitorRssMiB, 0)} / ${fmt(r.monitorHwmMiB, 0)}`,
    fmt(r.postgresCpuPct, 0),
    `${r.settledGroups}/${r.formations}`,
  ]);
}

const HEADERS = ['nodes', 'reports/s (got / offered)', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'skipped', 'monitor CPU %', 'monitor RSS / peak MiB', 'monitor Postgres CPU %', 'groups settled'];

function targetLine(results: SizeResult[]): string {
  const r = results.find((x) => x.nodes === TARGET.nodes);
  if (!r) return `Target at 1,000 nodes (p99 < ${TARGET.p99Ms} ms, 0 errors): NOT MEASURED (run with --sizes including 1000)`;
  const pass = r.p99Ms < TARGET.p99Ms && r.errors === TARGET.errors && r.skipped === 0;
  return `Target at 1,000 nodes (p99 < ${TARGET.p99Ms} ms, 0 errors): ${pass ? 'PASS' : 'FAIL'} (p99 ${fmt(r.p99Ms)} ms, ${r.errors} errors${r.skipped ? `, ${r.skipped} reports skipped` : ''})`;
}

function machineInfo(): Record<string, string | number> {
  const pgVersion = spawnSync('/usr/lib/postgresql/15/bin/postgres', ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  return { cpu: cpus()[0]?.model ?? '?', cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, postgres: pgVersion };
}

function writeResults(results: SizeResult[], opts: Options, command: string): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const machine = machineInfo();
  const date = new Date().toISOString();
  writeFileSync(join(RESULTS_DIR, 'monitor-capacity.json'), `${JSON.stringify({ date, command, machine, seconds: opts.seconds, target: TARGET, results }, null, 2)}\n`);
  const md = [
    '# Monitor capacity',
    '',
    `\`${command}\` on ${date.slice(0, 10)}: ${machine.cores} × ${machine.cpu}, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.postgres}.`,
    '',
    `Simulated keepers (no Postgres behind them) register, then each POSTs a report once per second through the monitor's HTTP API, spread evenly over the second; formations of 3 nodes. ` +
      `Every node is at 127.0.0.1 on a port nothing listens on, so the monitor's health prober marks each one unhealthy (part of the load); the keepers report Postgres running and streaming, so the groups settle as primary + 2 secondaries and no failover starts. ` +
      `Measured over ${opts.seconds} s after the groups settle; the benchmark client runs on the same machine.`,
    '',
    `| ${HEADERS.join(' | ')} |`,
    `|${HEADERS.map(() => '---').join('|')}|`,
    ...tableRows(results).map((row) => `| ${row.join(' | ')} |`),
    '',
    `**${targetLine(results)}**`,
    '',
    'Columns: latency of one report (request sent to answer read); errors are non-2xx answers and transport failures; skipped are report slots not sent because that keeper\'s previous report had not been answered yet; ' +
      "monitor CPU is the `pgha monitor run` process's utime+stime over the window in % of one core; RSS is VmRSS at the end of the window and VmHWM (peak since start); " +
      "monitor Postgres CPU is the monitor's postmaster and all its backends. " +
      `Benchmark client CPU: ${results.map((r) => `${fmt(r.benchCpuPct, 0)}% at ${r.nodes}`).join(', ')}.`,
    '',
  ].join('\n');
  writeFileSync(join(RESULTS_DIR, 'monitor-capacity.md'), md);
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  keepDirs = opts.keep;
  const command = `npm run bench:monitor${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  // The monitor runs from the compiled packages: build them (incremental) and make sure
  // PostgreSQL 15 is installed, as `npm test` does.
  const build = spawnSync('npx', ['tsc', '-b'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npx tsc -b failed');
  const pg = spawnSync('bash', [join(ROOT, 'scripts/ensure-postgres.sh')], { stdio: 'inherit' });
  if (pg.status !== 0) throw new Error('scripts/ensure-postgres.sh failed');

  const results: SizeResult[] = [];
  for (const size of opts.sizes) results.push(await runSize(size, opts));

  const table = new Table({ head: HEADERS });
  for (const row of tableRows(results)) table.push(row);
  console.log(`\n${table.toString()}`);
  console.log(targetLine(results));
  if (opts.write) {
    writeResults(results, opts, command);
    console.log(`written: ${join('bench/results', 'monitor-capacity.md')} and .json`);
  }
}

main()
  .catch((err: Error) => {
    console.error(`bench:monitor failed: ${err.message}`);
    process.exitCode = 1;
  })
  .finally(() => cleanupOnce());
