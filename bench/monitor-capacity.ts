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
 * After the groups settle (or a warm-up limit) and, with monitors on etcd, the store's writes
 * are down to what steady reporting asks (the health prober's first verdicts on the new nodes
 * come as a wave of writes), a measurement window (`--seconds`, default 30) records
 * per-report latency (p50/p99/max), errors (non-2xx or transport), reports/s, the monitor
 * process's CPU (utime+stime from /proc, % of one core) and RSS (current, peak in the window,
 * VmHWM), and the CPU of the monitor's Postgres (postmaster and its children).
 *
 * Output: a table on stdout, `bench/results/monitor-capacity.md` and `.json`, and the target
 * line (1,000 nodes: p99 < 50 ms, 0 errors) with PASS/FAIL. On stdout also, second by second:
 * the reports slower than 50 ms, the CPU of the monitors, etcd and the client, and the
 * machine's idle time, to tell a tail from an overloaded machine.
 *
 * `--monitors 3`: the same simulated keepers against three monitors on a local 3-member etcd
 * (TLS, client certificates), built by `pgha up --monitors 3`'s own code (one creates the store,
 * the others `--join`). Each simulated keeper is given the three URLs and follows the rule of
 * `@pgha/client`'s MonitorClient: it asks first the monitor that answered it last (the first of
 * the list at the start), goes to the next one on a transport error or a 502/503/504, and
 * after an answer forwarded by another monitor sends its next reports to the leader that the
 * `x-pgha-leader` header names; so in steady state each report reaches its formation's leader
 * directly. Reported besides: each monitor's CPU and RSS, etcd's CPU (every member), how the
 * formations' leadership is spread over the monitors (`GET /v1/monitors`), and the reports that
 * went to more than one monitor (`retried`). The target then is 3,000 nodes in 1,000
 * formations: p99 < 50 ms, 0 errors; results go to `bench/results/monitor-capacity-etcd.md`/`.json`.
 *
 * Options: `--sizes 100,1000` `--seconds 30` `--warmup-max 90` `--connections N` (per monitor)
 * `--monitors 1|3` `--keep` (keep the temporary directories) `--no-write` (do not write
 * bench/results) `--scrape-every S` (also scrape `GET /metrics` every S seconds during the
 * window, as Prometheus would, and report the scrapes' duration and size).
 *
 * `BENCH_MONITOR_NODE_ARGS` passes Node options to the monitor processes only (e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile them; with `--monitors 3` the monitors are
 * started once by `pgha up`'s code, then stopped and run again with these options).
 *
 * Every process it starts is ended by PID (also on failure and on SIGINT/SIGTERM) and its
 * temporary directories are removed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import Table from 'cli-table3';
import getPort from 'get-port';
import { Pool, type Dispatcher } from 'undici';
import { Command, Option } from '@commander-js/extra-typings';
import { intArg } from './lib/args.js';
import { createLogger } from '../packages/cli/src/logger.js';
import { startEtcdMonitors } from '../packages/cli/src/up.js';
import { PGHA_BIN, serviceCommand } from '../packages/cli/src/service-command.js';
import type { LocalEtcd } from '../packages/cli/src/local-etcd.js';
import { DEFAULT_STORE_PREFIX, StoreKeys, prefixEnd } from '@pgha/monitor';
import { HOT_STANDBY_PARAMETERS } from '@pgha/shared';
import { allProcesses, clockTicksPerSecond, delay, isProcessAlive, pollUntil, postmasterPid, processMemory, processStat } from '@pgha/postgres';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS_DIR = join(ROOT, 'bench/results');
/** The target per number of monitors: at `nodes` simulated nodes, p99 report latency < `p99Ms`, `errors` errors. */
const TARGETS: Record<1 | 3, { nodes: number; p99Ms: number; errors: number }> = {
  1: { nodes: 1000, p99Ms: 50, errors: 0 },
  3: { nodes: 3000, p99Ms: 50, errors: 0 },
};

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
  /** 1: one monitor on its own Postgres; 3: three monitors on a local 3-member etcd. */
  monitors: 1 | 3;
}

/** The options of `npm run bench:monitor -- …` (commander: `--help`, and a usage error for a bad one). */
function parseOptions(argv: readonly string[]): Options {
  const o = new Command('npm run bench:monitor --')
    .description('monitor capacity: N simulated keepers report once per second; latency, errors, CPU and memory of the monitor')
    .option('--sizes <n,n,...>', 'numbers of simulated nodes, one run each (default 100,1000,3000; with --monitors 3: 3000)', (v) => v.split(',').map((s) => intArg(1)(s.trim())))
    .option('--seconds <s>', 'measurement window', intArg(1), 30)
    .option('--warmup-max <s>', 'longest wait for the groups to settle before measuring', intArg(1), 90)
    .option('--connections <n>', 'HTTP connections to each monitor (default: nodes / monitors / 10, from 16 to 256)', intArg(1))
    .addOption(new Option('--monitors <n>', '1: one monitor on its own Postgres; 3: three monitors on a local 3-member etcd').choices(['1', '3'] as const).default('1' as const))
    .option('--keep', 'keep the temporary directories', false)
    .option('--no-write', 'do not write bench/results')
    .option('--scrape-every <s>', 'also scrape GET /metrics every S seconds during the window, as Prometheus would', intArg(1))
    .parse(argv, { from: 'user' })
    .opts();
  const monitors = o.monitors === '3' ? 3 : 1;
  return { sizes: o.sizes ?? (monitors === 3 ? [3000] : [100, 1000, 3000]), seconds: o.seconds, warmupMaxS: o.warmupMax, connections: o.connections, keep: o.keep, write: o.write, scrapeEveryS: o.scrapeEvery ?? 0, monitors };
}

// ---------------------------------------------------------------- processes and cleanup

const children = new Set<ChildProcess>();
const postmasterDirs = new Set<string>();
const tempDirs = new Set<string>();
/** etcd members started for `--monitors 3` (not children of this process: ended by PID). */
const etcdPids = new Set<number>();
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
  for (const pid of etcdPids) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
  etcdPids.clear();
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

/** One monitor process. */
interface MonitorProcess {
  /** `https://…`: the benchmark measures monitors as they are created by default (TLS, tokens). */
  url: string;
  pgdata: string;
  child: ChildProcess;
  logFile: string;
}

/** The monitor(s) under test. */
interface Monitors {
  list: MonitorProcess[];
  /** The operator token. */
  token: string;
  /** The monitors' CA certificate (PEM). */
  ca: string;
  dir: string;
  /** With `--monitors 3`: the local etcd they share. */
  etcd?: LocalEtcd;
}

/**
 * `pgha monitor run --pgdata PGDATA` as a service runs it (`serviceCommand`: its Node flags
 * included), with BENCH_MONITOR_NODE_ARGS before the script; output appended to `logFile`.
 */
function runMonitor(pgdata: string, logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  // BENCH_MONITOR_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the monitor.
  const nodeArgs = (process.env.BENCH_MONITOR_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const [node, ...args] = serviceCommand('monitor', pgdata);
  const script = args.indexOf(PGHA_BIN);
  const child = spawn(node, [...args.slice(0, script), ...nodeArgs, ...args.slice(script)], { stdio: ['ignore', fd, fd], env: { ...process.env, PGHA_LOG_LEVEL: 'info' } });
  closeSync(fd);
  children.add(child);
  return child;
}

/** One monitor on its own Postgres: `pgha monitor create` and `pgha monitor run`. */
async function startSingleMonitor(dir: string): Promise<Monitors> {
  const pgdata = join(dir, 'pgdata');
  postmasterDirs.add(pgdata);
  const logFile = join(dir, 'monitor.log');
  const pgPort = await getPort({ host: '127.0.0.1' });
  const httpPort = await getPort({ host: '127.0.0.1', exclude: [pgPort] });
  const code = await runPgha(['monitor', 'create', '--pgdata', pgdata, '--pg-port', String(pgPort), '--listen', `127.0.0.1:${httpPort}`], logFile);
  if (code !== 0) throw new Error(`pgha monitor create failed (exit ${code}); see ${logFile}:\n${tail(logFile)}`);
  const child = runMonitor(pgdata, logFile);
  return { list: [{ url: `https://127.0.0.1:${httpPort}`, pgdata, child, logFile }], token: readFileSync(`${pgdata}.pgha/auth-token`, 'utf8').trim(), ca: readFileSync(`${pgdata}.pgha/tls/ca.crt`, 'utf8'), dir };
}

/**
 * Three monitors on a local 3-member etcd, by `pgha up --monitors 3`'s code; with
 * `BENCH_MONITOR_NODE_ARGS`, each is stopped and run again with those Node options.
 */
async function startEtcdMonitorGroup(dir: string): Promise<Monitors> {
  const started: ChildProcess[] = [];
  const { monitors, running, etcd } = await startEtcdMonitors(dir, createLogger('bench', 'warn'), (_name, proc) => {
    children.add(proc);
    started.push(proc);
  });
  for (const m of etcd.members) etcdPids.add(m.pid);
  const list = running.map((r, i) => ({ url: r.url, pgdata: r.pgdata, child: started[i]!, logFile: join(dir, `monitor-${i + 1}`, 'monitor.log') }));
  if (process.env.BENCH_MONITOR_NODE_ARGS) {
    for (const m of list) {
      await stopChild(m.child);
      m.child = runMonitor(m.pgdata, m.logFile);
    }
  }
  return { list, token: monitors.credentials.token, ca: monitors.credentials.ca!, dir, etcd };
}

/** Starts the monitor(s) of `--monitors` and waits until each answers `/health`. */
async function startMonitors(count: 1 | 3): Promise<Monitors> {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-bench-monitor-'));
  chmodSync(dir, 0o755); // the postgres OS user must reach the data directory
  tempDirs.add(dir);
  const monitors = count === 3 ? await startEtcdMonitorGroup(dir) : await startSingleMonitor(dir);
  for (const m of monitors.list) {
    const health = new Pool(m.url, { connect: { ca: monitors.ca } });
    const answered = await pollUntil(async () => m.child.exitCode !== null || (await health.request({ method: 'GET', path: '/health' }).catch(() => undefined))?.statusCode === 200, { timeoutMs: 60_000, intervalMs: 200 });
    await health.close();
    if (m.child.exitCode !== null) throw new Error(`pgha monitor run exited (${m.child.exitCode}); see ${m.logFile}:\n${tail(m.logFile)}`);
    if (!answered) throw new Error(`the monitor did not answer at ${m.url} within 60 s; see ${m.logFile}`);
  }
  return monitors;
}

/** Stops the monitors, their Postgres or their etcd, and removes their directory unless kept. */
async function stopMonitors(monitors: Monitors, keep: boolean): Promise<void> {
  await Promise.all(monitors.list.map((m) => stopChild(m.child)));
  for (const m of monitors.list) {
    const pm = postmasterPid(m.pgdata);
    if (pm) {
      process.kill(pm, 'SIGQUIT');
      await waitGone(() => [postmasterPid(m.pgdata)], 10_000);
    }
    postmasterDirs.delete(m.pgdata);
  }
  if (monitors.etcd) {
    await monitors.etcd.stop();
    for (const m of monitors.etcd.members) etcdPids.delete(m.pid);
  }
  if (!keep) {
    rmSync(monitors.dir, { recursive: true, force: true });
    tempDirs.delete(monitors.dir);
  }
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
/**
 * The Postgres parameters a keeper reports with each report while its Postgres runs, as one at
 * the defaults does (no parameter set by the operator): the values of `HOT_STANDBY_PARAMETERS`,
 * here Postgres 15's defaults, and none pending a restart (`NodeReport.parameters`).
 */
const RUNNING_PARAMETERS = Object.freeze({
  pendingRestart: [],
  running: HOT_STANDBY_PARAMETERS.map((name) => ({ name, value: ({ max_connections: '100', max_prepared_transactions: '0', max_locks_per_transaction: '64', max_wal_senders: '10', max_worker_processes: '8' } as Record<string, string>)[name] ?? '0' })),
});

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
  /** `synchronous_standby_names` of the goal the monitor last answered; reported by a primary at its next report. */
  syncNames: string;
  /** `synchronous_standby_names` the node reported last (null: a standby's, or none yet). */
  reportedSyncNames: string | null;
  inFlight: boolean;
  /** Index of the monitor this keeper asks first (see {@link MonitorRoutes}). */
  monitor: number;
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
    return { reportedState: state, postgresRunning: true, isInRecovery: false, lsn: formatLsn(n.group.wal), timeline: 1, upstreamStreaming: false, synchronousStandbyNames: state === 'single' ? '' : n.syncNames, parameters: RUNNING_PARAMETERS };
  }
  // A standby streaming a little behind the primary.
  const lag = BigInt(Math.floor(Math.random() * 65536));
  const lsn = n.group.wal > lag ? n.group.wal - lag : n.group.wal;
  return { reportedState: state, postgresRunning: true, isInRecovery: true, lsn: formatLsn(lsn), timeline: 1, upstreamStreaming: true, synchronousStandbyNames: null, parameters: RUNNING_PARAMETERS };
}

/**
 * Every keeper reached its goal: one primary and secondaries (a lone node: single), the primary
 * running with the `synchronous_standby_names` its goal asks for (the monitor turns synchronous
 * replication on once the standbys caught up, `enable-sync`: until the primary reports it, the
 * group still changes).
 */
function groupSettled(g: SimGroup): boolean {
  const writable = g.nodes.length === 1 ? 'single' : 'primary';
  const primaries = g.nodes.filter((n) => n.goal === writable);
  return (
    g.nodes.every((n) => n.reported === n.goal && (n.goal === writable || n.goal === 'secondary')) &&
    primaries.length === 1 &&
    (writable === 'single' || primaries[0]!.reportedSyncNames === primaries[0]!.syncNames)
  );
}

interface Recorder {
  recording: boolean;
  latenciesMs: number[];
  errors: Map<string, number>;
  completed: number;
  skipped: number;
  /** Reports answered after going to more than one monitor (a transport error or 502/503/504 first). */
  retried: number;
  firstErrors: string[];
  /** Reports slower than {@link SLOW_MS}: when they were sent (ms since the window began) and the monitor that answered. */
  slow: { atMs: number; ms: number; monitor: number }[];
  /** When the window began (`performance.now()`). */
  startMs: number;
}

/** A report slower than this goes to {@link Recorder.slow}, to say when and where the tail came from. */
const SLOW_MS = 50;

function newRecorder(): Recorder {
  return { recording: false, latenciesMs: [], errors: new Map(), completed: 0, skipped: 0, retried: 0, firstErrors: [], slow: [], startMs: 0 };
}

/**
 * Registrations in flight at once (a formation and its 3 nodes each). On etcd node ids come
 * from blocks each monitor reserves (`node-ids.ts`), so registrations share no key.
 */
const REGISTER_CONCURRENCY = 16;

/** Statuses after which a keeper asks its next monitor, as `@pgha/client`'s MonitorClient does. */
const NOT_SERVING = new Set([502, 503, 504]);

/** One request of a simulated keeper or of the set-up. */
interface SimRequest {
  method: 'GET' | 'POST';
  path: string;
  token: string;
  body?: string;
  timeoutMs: number;
}

/** An answer, the monitor to ask first next time, and how many monitors this request went to. */
interface SimAnswer {
  statusCode: number;
  text: string;
  next: number;
  tries: number;
}

/**
 * The simulated keepers' way to the monitors: a connection pool per monitor, and the rule of
 * `@pgha/client`'s MonitorClient (packages/client/src/monitor-client.ts) without its per-client
 * connections: a request goes first to the monitor the keeper asks first, then to the next ones
 * in order on a transport error or a 502/503/504; after an answer, the keeper asks first the
 * monitor that answered, or the leader that a forwarded answer names (`x-pgha-leader`).
 */
class MonitorRoutes {
  readonly pools: Pool[];
  private readonly origins: string[];

  constructor(readonly urls: readonly string[], ca: string, connectionsPerMonitor: number) {
    this.pools = urls.map((url) => new Pool(url, { connect: { ca }, connections: connectionsPerMonitor, pipelining: 1, keepAliveTimeout: 60_000, connectTimeout: 10_000 }));
    this.origins = urls.map((url) => new URL(url).origin);
  }

  /**
   * Sends `req`, from monitor `first` on.
   *
   * @throws the last transport error when no monitor answered at all.
   */
  async send(first: number, req: SimRequest): Promise<SimAnswer> {
    const n = this.pools.length;
    let lastError: unknown;
    let notServing: { statusCode: number; text: string } | undefined;
    const headers = req.body === undefined ? ['authorization', `Bearer ${req.token}`] : ['authorization', `Bearer ${req.token}`, 'content-type', 'application/json'];
    for (let k = 0; k < n; k++) {
      const i = (first + k) % n;
      try {
        const res = await dispatchText(this.pools[i]!, {
          method: req.method,
          path: req.path,
          headers,
          ...(req.body === undefined ? {} : { body: req.body }),
          headersTimeout: req.timeoutMs,
          bodyTimeout: req.timeoutMs,
        });
        if (NOT_SERVING.has(res.statusCode)) {
          notServing = { statusCode: res.statusCode, text: res.text };
          continue;
        }
        const j = res.leader === undefined ? -1 : this.origins.indexOf(new URL(res.leader).origin);
        return { statusCode: res.statusCode, text: res.text, next: j >= 0 ? j : i, tries: k + 1 };
      } catch (err) {
        lastError = err;
      }
    }
    if (notServing) return { ...notServing, next: first, tries: n };
    throw lastError;
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.close().catch(() => undefined)));
  }
}

/** The header of a forwarded answer naming the formation's leader (`x-pgha-leader`), as bytes of a raw header name. */
const LEADER_HEADER = Buffer.from('x-pgha-leader');

/**
 * One request through undici's dispatch API (its handler interface), answered with the status,
 * the body as text and the `x-pgha-leader` header: the same HTTPS request as `pool.request()`
 * sends, without the body stream and the header object that `request()` builds for each answer
 * (the load generator's own CPU is not the monitor's: at 3,000 reports a second they were a
 * sizeable part of the client's).
 *
 * @throws the transport error (connection refused or reset, a timeout).
 */
function dispatchText(pool: Pool, opts: Dispatcher.DispatchOptions): Promise<{ statusCode: number; text: string; leader: string | undefined }> {
  return new Promise((resolve, reject) => {
    let statusCode = 0;
    let leader: string | undefined;
    const chunks: Buffer[] = [];
    pool.dispatch(opts, {
      onConnect() {},
      onHeaders(status, rawHeaders) {
        statusCode = status;
        for (let k = 0; k + 1 < rawHeaders.length; k += 2) {
          const name = rawHeaders[k]!;
          if (name.length === LEADER_HEADER.length && name.toString('latin1').toLowerCase() === 'x-pgha-leader') leader = rawHeaders[k + 1]!.toString('latin1');
        }
        return true;
      },
      onData(chunk) {
        chunks.push(chunk);
        return true;
      },
      onComplete() {
        resolve({ statusCode, text: chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'), leader });
      },
      onError: reject,
    });
  });
}

function countError(rec: Recorder, kind: string, detail: string): void {
  rec.errors.set(kind, (rec.errors.get(kind) ?? 0) + 1);
  if (rec.firstErrors.length < 5) rec.firstErrors.push(`${kind}: ${detail.slice(0, 200)}`);
}

async function sendReport(routes: MonitorRoutes, n: SimNode, rec: Recorder): Promise<void> {
  const report = buildReport(n);
  const body = JSON.stringify(report);
  const sentState = n.goal;
  const recording = rec.recording;
  const t0 = performance.now();
  n.inFlight = true;
  try {
    const res = await routes.send(n.monitor, { method: 'POST', path: `/v1/nodes/${n.nodeId}/report`, token: n.token, body, timeoutMs: 10_000 });
    n.monitor = res.next;
    const text = res.text;
    const ms = performance.now() - t0;
    if (recording && res.tries > 1) rec.retried++;
    if (res.statusCode >= 200 && res.statusCode < 300) {
      const goal = JSON.parse(text) as { goalState: string; synchronousStandbyNames: string };
      n.reported = sentState;
      n.reportedSyncNames = (report.synchronousStandbyNames as string | null | undefined) ?? null;
      n.goal = goal.goalState;
      n.syncNames = goal.synchronousStandbyNames;
      if (recording) {
        rec.latenciesMs.push(ms);
        rec.completed++;
        if (ms > SLOW_MS) rec.slow.push({ atMs: t0 - rec.startMs, ms, monitor: res.next });
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
 * One timer walks the slots in time order and sends every slot that is due when it wakes (at
 * most a millisecond late), instead of a timer per node: the client's CPU is not the monitor's.
 */
function startReporting(routes: MonitorRoutes, nodes: SimNode[], rec: Recorder): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const t0 = performance.now() + 50;
  const formations = Math.ceil(nodes.length / 3);
  // Node j of formation f (index 3f + j) takes slot j·K + f of the second's N slots.
  const bySlot = [...nodes].sort((x, y) => slotOf(x, formations) - slotOf(y, formations));
  const offsets = bySlot.map((n) => (slotOf(n, formations) / (3 * formations)) * 1000);
  let next = 0;
  let second = 0;
  const wake = (): void => {
    if (stopped) return;
    const now = performance.now();
    while (t0 + second * 1000 + offsets[next]! <= now) {
      const n = bySlot[next]!;
      if (n.inFlight) {
        if (rec.recording) rec.skipped++;
      } else {
        void sendReport(routes, n, rec);
      }
      if (++next === bySlot.length) {
        next = 0;
        second++;
      }
    }
    timer = setTimeout(wake, Math.max(0, t0 + second * 1000 + offsets[next]! - performance.now()));
  };
  timer = setTimeout(wake, Math.max(0, t0 - performance.now()));
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** A node's slot among the second's N (see {@link startReporting}). */
function slotOf(n: SimNode, formations: number): number {
  return (n.index % 3) * formations + Math.floor(n.index / 3);
}

/**
 * POST with JSON, from the first monitor; while no monitor serves it (502/503/504 from every
 * one: a new formation has no leader yet), again every 100 ms for up to 30 s. Throws on a
 * non-2xx answer.
 */
async function postJson(routes: MonitorRoutes, token: string, path: string, body: unknown): Promise<{ status: number; json: any }> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    const res = await routes.send(0, { method: 'POST', path, token, body: JSON.stringify(body), timeoutMs: 30_000 });
    if (NOT_SERVING.has(res.statusCode) && performance.now() < deadline) {
      await delay(100);
      continue;
    }
    if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`POST ${path} answered ${res.statusCode}: ${res.text}`);
    return { status: res.statusCode, json: JSON.parse(res.text) };
  }
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
  /** Every monitor's CPU summed (% of one core); RSS figures: the largest monitor's. */
  monitorCpuPct: number;
  monitorRssMiB: number;
  monitorRssMaxMiB: number;
  monitorHwmMiB: number;
  /** The monitor's own Postgres (one monitor); NaN with monitors on etcd. */
  postgresCpuPct: number;
  benchCpuPct: number;
  /** The benchmark client's event-loop delay over the window, p99 (ms): how late it could be to send or to read an answer. */
  clientDelayP99Ms: number;
  /** HTTP connections to each monitor. */
  connections: number;
  /** Number of monitors. */
  monitors: number;
  /** Reports answered after going to more than one monitor. */
  retried: number;
  /** Each monitor: URL, CPU % (of one core), RSS at the end and peak in the window (MiB), formations it leads at the end. */
  perMonitor: { url: string; cpuPct: number; rssMiB: number; rssMaxMiB: number; leads: number }[];
  /** With monitors on etcd: every member's CPU summed (% of one core) and each member's. */
  etcdCpuPct?: number;
  etcdMembersCpuPct?: number[];
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

/** How many formations each monitor leads, by URL, as `GET /v1/monitors` says (monitors on etcd only). */
async function leadsPerMonitor(routes: MonitorRoutes, token: string): Promise<Map<string, number>> {
  const res = await routes.send(0, { method: 'GET', path: '/v1/monitors', token, timeoutMs: 30_000 });
  if (res.statusCode !== 200) throw new Error(`GET /v1/monitors answered ${res.statusCode}: ${res.text}`);
  const view = JSON.parse(res.text) as { monitors: { url: string; leads: unknown[] }[] };
  return new Map(view.monitors.map((m) => [m.url, m.leads.length]));
}

async function runSize(size: number, opts: Options): Promise<SizeResult> {
  const formations = Math.ceil(size / 3);
  console.log(`\n== ${size} nodes in ${formations} formations of 3, ${opts.monitors === 3 ? 'three monitors on a local 3-member etcd' : 'one monitor on its own Postgres'} ==`);
  const monitors = await startMonitors(opts.monitors);
  const connections = opts.connections ?? Math.min(256, Math.max(16, Math.ceil(size / opts.monitors / 10)));
  const routes = new MonitorRoutes(monitors.list.map((m) => m.url), monitors.ca, connections);
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
        // Every keeper is given the monitors in the same order and asks the first one first, as real keepers do.
        const n: SimNode = { index: nodes.length, name: `node${j + 1}`, port: ports[nodes.length]!, group, nodeId: 0, token: '', goal: 'init', reported: 'init', syncNames: '', reportedSyncNames: null, inFlight: false, monitor: 0 };
        group.nodes.push(n);
        nodes.push(n);
      }
      groups.push(group);
    }

    const t0 = performance.now();
    await mapLimit(groups, REGISTER_CONCURRENCY, async (g) => {
      await postJson(routes, monitors.token, '/v1/formations', { formation: g.formation });
      for (const n of g.nodes) {
        const { json } = await postJson(routes, monitors.token, `/v1/formations/${g.formation}/nodes`, { name: n.name, host: '127.0.0.1', port: n.port, candidatePriority: 50, replicationQuorum: true });
        n.nodeId = json.nodeId;
        n.token = json.nodeToken;
        n.goal = json.goalState;
      }
    });
    const registerS = (performance.now() - t0) / 1000;
    console.log(`registered ${nodes.length} nodes in ${registerS.toFixed(1)} s; warming up until every group is primary + 2 secondaries, the primary on its synchronous_standby_names (at most ${opts.warmupMaxS} s)`);

    const rec = newRecorder();
    const stop = startReporting(routes, nodes, rec);
    try {
      const w0 = performance.now();
      let settled = 0;
      for (;;) {
        await delay(1000);
        const exited = monitors.list.find((m) => m.child.exitCode !== null);
        if (exited) throw new Error(`the monitor at ${exited.url} exited (${exited.child.exitCode}); see ${exited.logFile}:\n${tail(exited.logFile)}`);
        settled = groups.filter(groupSettled).length;
        const elapsed = (performance.now() - w0) / 1000;
        if (settled === groups.length || elapsed >= opts.warmupMaxS) break;
      }
      // With monitors on etcd: until the store's writes are down to what steady reporting asks
      // (the health prober's first verdicts on thousands of nodes come as a wave of writes
      // after they register, which is not what the window measures).
      if (monitors.etcd && settled === groups.length) {
        const quiet = await storeQuiet(monitors.etcd, size, w0 + opts.warmupMaxS * 1000);
        const perS = `keys written each second: ${quiet.keysPerSecond.join(', ')}`;
        console.log(quiet.quiet ? `store quiet after ${quiet.waitedS.toFixed(0)} s more (${perS})` : `store not quiet at the warm-up limit (${perS}): measuring anyway`);
      }
      // Two more seconds so that the last reports of the warm-up are not in the window.
      await delay(2000);
      const warmupS = (performance.now() - w0) / 1000;
      settled = groups.filter(groupSettled).length;
      console.log(`warm-up ${warmupS.toFixed(1)} s: ${settled}/${groups.length} groups settled; measuring for ${opts.seconds} s`);

      const monitorPids = monitors.list.map((m) => m.child.pid!);
      const pmPid = opts.monitors === 1 ? postmasterPid(monitors.list[0]!.pgdata) : undefined;
      const etcdMemberPids = monitors.etcd?.members.map((m) => m.pid) ?? [];
      const m0 = monitorPids.map(cpuSeconds);
      const e0 = etcdMemberPids.map(cpuSeconds);
      const pg0 = pmPid ? postgresCpuS(pmPid) : NaN;
      const b0 = process.cpuUsage();
      // The client's own event-loop delay: a late client inflates every latency it measures.
      const clientDelay = monitorEventLoopDelay({ resolution: 5 });
      clientDelay.enable();
      const s0 = performance.now();
      const rssMax = monitorPids.map(() => 0);
      rec.startMs = s0;
      rec.recording = true;
      // Each second's CPU use, to set beside the seconds the slow reports came from.
      const perSecond: SecondCpu[] = [];
      let prevCpu = cpuNow(monitorPids, etcdMemberPids);
      const sampler = setInterval(() => {
        for (const [i, pid] of monitorPids.entries()) rssMax[i] = Math.max(rssMax[i]!, procMemory(pid)?.rssMiB ?? 0);
        const now = cpuNow(monitorPids, etcdMemberPids);
        perSecond.push(cpuBetween(prevCpu, now));
        prevCpu = now;
      }, 1000);
      const scrapes = opts.scrapeEveryS > 0 ? startScraping(routes.pools[0]!, monitors.token, opts.scrapeEveryS) : undefined;
      await delay(opts.seconds * 1000);
      rec.recording = false;
      clearInterval(sampler);
      const scraped = await scrapes?.stop();
      const windowS = (performance.now() - s0) / 1000;
      const m1 = monitorPids.map(cpuSeconds);
      const e1 = etcdMemberPids.map(cpuSeconds);
      const pg1 = pmPid ? postgresCpuS(pmPid) : NaN;
      const b1 = process.cpuUsage(b0);
      clientDelay.disable();
      const mem = monitorPids.map(procMemory);
      for (const [i, m] of mem.entries()) rssMax[i] = Math.max(rssMax[i]!, m?.rssMiB ?? 0);
      const leads = opts.monitors > 1 ? await leadsPerMonitor(routes, monitors.token) : new Map([[monitors.list[0]!.url, formations]]);
      // Let the reports still in flight finish before the monitor goes.
      await delay(1500);

      const pct = (a: { cpuS: number } | undefined, b: { cpuS: number } | undefined): number => (a && b ? ((b.cpuS - a.cpuS) / windowS) * 100 : NaN);
      const perMonitor = monitors.list.map((m, i) => ({ url: m.url, cpuPct: pct(m0[i], m1[i]), rssMiB: mem[i]?.rssMiB ?? NaN, rssMaxMiB: rssMax[i]!, leads: leads.get(m.url) ?? 0 }));
      const etcdMembersCpuPct = etcdMemberPids.map((_, i) => pct(e0[i], e1[i]));
      const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
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
        monitorCpuPct: sum(perMonitor.map((m) => m.cpuPct)),
        monitorRssMiB: Math.max(...perMonitor.map((m) => m.rssMiB)),
        monitorRssMaxMiB: Math.max(...rssMax),
        monitorHwmMiB: Math.max(...mem.map((m) => m?.hwmMiB ?? NaN)),
        postgresCpuPct: ((pg1 - pg0) / windowS) * 100,
        benchCpuPct: ((b1.user + b1.system) / 1e6 / windowS) * 100,
        clientDelayP99Ms: clientDelay.percentile(99) / 1e6,
        connections,
        monitors: opts.monitors,
        retried: rec.retried,
        perMonitor,
        ...(monitors.etcd ? { etcdCpuPct: sum(etcdMembersCpuPct), etcdMembersCpuPct } : {}),
        ...(scraped ? { scrapes: scraped } : {}),
      };
      if (scraped) console.log(`GET /metrics every ${opts.scrapeEveryS} s: ${scraped.count} scrapes, p50 ${scraped.p50Ms.toFixed(1)} ms, max ${scraped.maxMs.toFixed(1)} ms, ${scraped.bytes} bytes, ${scraped.samples} samples, ${scraped.errors} errors`);
      console.log(
        `reports/s ${result.reportsPerS.toFixed(0)} (client CPU ${result.benchCpuPct.toFixed(0)}%, event-loop delay p99 ${result.clientDelayP99Ms.toFixed(1)} ms), p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms, max ${result.maxMs.toFixed(0)} ms, ` +
          `errors ${errors}, skipped ${rec.skipped}, retried ${rec.retried}, monitor CPU ${result.monitorCpuPct.toFixed(0)}%, RSS ${result.monitorRssMiB.toFixed(0)} MiB, ` +
          (monitors.etcd ? `etcd CPU ${fmt(result.etcdCpuPct!, 0)}% (${etcdMembersCpuPct.map((c) => fmt(c, 0)).join(' + ')})` : `Postgres CPU ${result.postgresCpuPct.toFixed(0)}%`),
      );
      if (perMonitor.length > 1) for (const m of perMonitor) console.log(`  ${m.url}: CPU ${fmt(m.cpuPct, 0)}%, RSS ${fmt(m.rssMiB, 0)} MiB (peak ${fmt(m.rssMaxMiB, 0)}), leads ${m.leads} formations`);
      for (const e of rec.firstErrors) console.log(`  error: ${e}`);
      printSlowSeconds(rec, perSecond, monitors.list.length);
      return result;
    } finally {
      stop();
    }
  } finally {
    await routes.close();
    await stopMonitors(monitors, opts.keep);
  }
}

/**
 * Waits until the etcd store is quiet: for {@link QUIET_SECONDS} seconds in a row fewer keys
 * were written than one a second per {@link QUIET_NODES_PER_WRITE} nodes (at 3,000 nodes 150 a
 * second: steady reporting writes a node's moving LSN once a minute, 50 a second), or until
 * `deadlineMs` (`performance.now()`). Counts keys, not revisions: a monitor writes many nodes in
 * one transaction (the health prober's verdicts, the due LSNs), one revision for hundreds of
 * keys. Each second it asks etcd, through its JSON gateway (`POST /v3/kv/range`, with the local
 * etcd's client certificate), for the keys of the store (`pgha up`'s prefix, the default) modified
 * since the revision of the last ask (`keys_only`, `min_mod_revision`).
 *
 * @returns whether it got quiet, how long it waited (s) and the keys written in each second of
 *   the wait.
 */
async function storeQuiet(etcd: LocalEtcd, nodes: number, deadlineMs: number): Promise<{ quiet: boolean; waitedS: number; keysPerSecond: number[] }> {
  const tls = etcd.tls;
  const pool = new Pool(etcd.members[0]!.clientUrl, { connect: tls ? { ca: readFileSync(tls.caFile), cert: readFileSync(tls.clientCertFile), key: readFileSync(tls.clientKeyFile) } : {} });
  const root = new StoreKeys(DEFAULT_STORE_PREFIX).root;
  const b64 = (key: string): string => Buffer.from(key, 'latin1').toString('base64');
  /** The store's revision now, and how many of its keys were written after `since`. */
  const writtenSince = async (since: number): Promise<{ revision: number; keys: number }> => {
    const body = JSON.stringify({ key: b64(root), range_end: b64(prefixEnd(root)), keys_only: true, min_mod_revision: String(since + 1) });
    const res = await pool.request({ method: 'POST', path: '/v3/kv/range', body, headersTimeout: 5000, bodyTimeout: 5000 });
    const answer = (await res.body.json()) as { header: { revision: string }; kvs?: unknown[] };
    return { revision: Number(answer.header.revision), keys: answer.kvs?.length ?? 0 };
  };
  const t0 = performance.now();
  try {
    let last = (await writtenSince(0)).revision;
    let quietFor = 0;
    const keysPerSecond: number[] = [];
    while (performance.now() < deadlineMs) {
      await delay(1000);
      const now = await writtenSince(last);
      keysPerSecond.push(now.keys);
      last = now.revision;
      quietFor = now.keys < nodes / QUIET_NODES_PER_WRITE ? quietFor + 1 : 0;
      if (quietFor >= QUIET_SECONDS) return { quiet: true, waitedS: (performance.now() - t0) / 1000, keysPerSecond };
    }
    return { quiet: false, waitedS: (performance.now() - t0) / 1000, keysPerSecond };
  } finally {
    await pool.close();
  }
}

/** See {@link storeQuiet}. */
const QUIET_NODES_PER_WRITE = 20;
const QUIET_SECONDS = 3;

// ---------------------------------------------------------------- output

/** CPU counters at one instant: seconds of CPU of each monitor, of etcd's members (summed) and of this process; the machine's idle and total time (s, all cores, `/proc/stat`). */
interface CpuCounters {
  monitorsS: number[];
  etcdS: number;
  clientS: number;
  machineIdleS: number;
  machineTotalS: number;
}

/** One second of the window: CPU used in it, in % of one core; the machine's idle time in % of all its cores. */
interface SecondCpu {
  monitorsPct: number;
  etcdPct: number;
  clientPct: number;
  machineIdlePct: number;
}

function cpuNow(monitorPids: readonly number[], etcdPids: readonly number[]): CpuCounters {
  // /proc/stat's first line: cpu user nice system idle iowait irq softirq steal …, in clock ticks.
  const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const usage = process.cpuUsage();
  return {
    monitorsS: monitorPids.map((pid) => cpuSeconds(pid)?.cpuS ?? NaN),
    etcdS: etcdPids.reduce((a, pid) => a + (cpuSeconds(pid)?.cpuS ?? NaN), 0),
    clientS: (usage.user + usage.system) / 1e6,
    machineIdleS: (ticks[3]! + ticks[4]!) / clockTicksPerSecond,
    machineTotalS: ticks.reduce((a, b) => a + b, 0) / clockTicksPerSecond,
  };
}

function cpuBetween(a: CpuCounters, b: CpuCounters): SecondCpu {
  const wallS = (b.machineTotalS - a.machineTotalS) / cpus().length;
  const pct = (s: number): number => (s / wallS) * 100;
  return {
    monitorsPct: pct(b.monitorsS.reduce((x, y) => x + y, 0) - a.monitorsS.reduce((x, y) => x + y, 0)),
    etcdPct: pct(b.etcdS - a.etcdS),
    clientPct: pct(b.clientS - a.clientS),
    machineIdlePct: ((b.machineIdleS - a.machineIdleS) / (b.machineTotalS - a.machineTotalS)) * 100,
  };
}

/**
 * Where the tail came from: for each second of the window, the reports slower than
 * {@link SLOW_MS} sent in it, the CPU the monitors, etcd and this client used in it, and the
 * machine's idle time; then the worst seconds, with the monitor that answered their slow
 * reports. A second with no idle CPU and slow reports from every monitor is an overloaded
 * machine; slow reports from one monitor with CPU to spare are that monitor's own wait.
 */
function printSlowSeconds(rec: Recorder, perSecond: readonly SecondCpu[], monitorCount: number): void {
  if (rec.slow.length === 0) return;
  const bySecond = new Map<number, { atMs: number; ms: number; monitor: number }[]>();
  for (const s of rec.slow) {
    const k = Math.floor(s.atMs / 1000);
    const list = bySecond.get(k);
    if (list) list.push(s);
    else bySecond.set(k, [s]);
  }
  console.log(`reports over ${SLOW_MS} ms: ${rec.slow.length}, in ${bySecond.size} of the window's seconds`);
  console.log('  each second: slow reports, CPU % of the monitors (summed) / etcd / this client, the machine idle %:');
  console.log(`  ${perSecond.map((c, k) => `${bySecond.get(k)?.length ?? 0} ${fmt(c.monitorsPct, 0)}/${fmt(c.etcdPct, 0)}/${fmt(c.clientPct, 0)} ${fmt(c.machineIdlePct, 0)}`).join(' | ')}`);
  for (const [k, slow] of [...bySecond].sort((a, b) => b[1].length - a[1].length).slice(0, 3).sort((a, b) => a[0] - b[0])) {
    const perMonitor = Array.from({ length: monitorCount }, (_, i) => slow.filter((s) => s.monitor === i).length);
    console.log(`  second ${k}: ${slow.length} slow (answered by monitor ${perMonitor.map((n, i) => `${i + 1}: ${n}`).join(', ')}), the slowest ${fmt(Math.max(...slow.map((s) => s.ms)), 0)} ms`);
  }
}

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
    ...(r.monitors > 1 ? [String(r.retried)] : []),
    fmt(r.monitorCpuPct, 0),
    `${fmt(r.monitorRssMiB, 0)} / ${fmt(r.monitorHwmMiB, 0)}`,
    r.monitors > 1 ? fmt(r.etcdCpuPct ?? NaN, 0) : fmt(r.postgresCpuPct, 0),
    `${r.settledGroups}/${r.formations}`,
  ]);
}

function headers(monitors: 1 | 3): string[] {
  return monitors === 3
    ? ['nodes', 'reports/s (got / offered)', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'skipped', 'retried', 'monitors CPU % (3, summed)', 'largest monitor RSS / peak MiB', 'etcd CPU % (3 members, summed)', 'groups settled']
    : ['nodes', 'reports/s (got / offered)', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'skipped', 'monitor CPU %', 'monitor RSS / peak MiB', 'monitor Postgres CPU %', 'groups settled'];
}

/** Each monitor's CPU, RSS and formations led (monitors on etcd), one row per monitor and size. */
function perMonitorRows(results: SizeResult[]): string[][] {
  return results.flatMap((r) => r.perMonitor.map((m, i) => [String(r.nodes), `${i + 1} (${m.url})`, fmt(m.cpuPct, 0), `${fmt(m.rssMiB, 0)} / ${fmt(m.rssMaxMiB, 0)}`, `${m.leads} / ${r.formations}`]));
}

const PER_MONITOR_HEADERS = ['nodes', 'monitor', 'CPU %', 'RSS end / peak in window MiB', 'formations led'];

function targetLine(results: SizeResult[], monitors: 1 | 3): string {
  const target = TARGETS[monitors];
  const what = `Target at ${target.nodes.toLocaleString('en-US')} nodes${monitors === 3 ? ', three monitors on etcd' : ''} (p99 < ${target.p99Ms} ms, 0 errors)`;
  const r = results.find((x) => x.nodes === target.nodes);
  if (!r) return `${what}: NOT MEASURED (run with --sizes including ${target.nodes})`;
  const pass = r.p99Ms < target.p99Ms && r.errors === target.errors && r.skipped === 0;
  return `${what}: ${pass ? 'PASS' : 'FAIL'} (p99 ${fmt(r.p99Ms)} ms, ${r.errors} errors${r.skipped ? `, ${r.skipped} reports skipped` : ''})`;
}

function machineInfo(): Record<string, string | number> {
  const pgVersion = spawnSync('/usr/lib/postgresql/15/bin/postgres', ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  const etcdVersion = spawnSync('/usr/bin/etcd', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0]?.trim() ?? '';
  return { cpu: cpus()[0]?.model ?? '?', cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, postgres: pgVersion, etcd: etcdVersion };
}

function markdownTable(head: string[], rows: string[][]): string[] {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)];
}

/** Writes `bench/results/monitor-capacity.md`/`.json` (one monitor) or `monitor-capacity-etcd.md`/`.json` (three). */
function writeResults(results: SizeResult[], opts: Options, command: string): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const machine = machineInfo();
  const date = new Date().toISOString();
  const base = opts.monitors === 3 ? 'monitor-capacity-etcd' : 'monitor-capacity';
  writeFileSync(join(RESULTS_DIR, `${base}.json`), `${JSON.stringify({ date, command, machine, seconds: opts.seconds, monitors: opts.monitors, target: TARGETS[opts.monitors], results }, null, 2)}\n`);
  const etcd = opts.monitors === 3;
  const md = [
    etcd ? '# Monitor capacity: three monitors on etcd' : '# Monitor capacity',
    '',
    `\`${command}\` on ${date.slice(0, 10)}: ${machine.cores} × ${machine.cpu}, ${machine.memoryGiB} GiB, Node ${machine.node}, ${etcd ? machine.etcd : machine.postgres}.`,
    '',
    `Simulated keepers (no Postgres behind them) register, then each POSTs a report once per second through the monitor's HTTP API, spread evenly over the second; formations of 3 nodes. ` +
      `Every node is at 127.0.0.1 on a port nothing listens on, so the monitor's health prober marks each one unhealthy (part of the load); the keepers report Postgres running and streaming, so the groups settle as primary + 2 secondaries and no failover starts. ` +
      (etcd
        ? 'Three monitors run on a local 3-member etcd (TLS, client certificates), as `pgha up --monitors 3` builds them; each simulated keeper is given the three URLs and follows `@pgha/client`\'s rule: it asks first the monitor that answered it last, moves to the next on a transport error or 502/503/504, and sends its next reports to the leader named by a forwarded answer\'s `x-pgha-leader`, so in steady state reports reach their formation\'s leader directly. '
        : '') +
      `Measured over ${opts.seconds} s after the groups settle; the benchmark client${etcd ? ', the three monitors and the three etcd members all run' : ' runs'} on the same machine.`,
    '',
    ...markdownTable(headers(opts.monitors), tableRows(results)),
    '',
    `**${targetLine(results, opts.monitors)}**`,
    '',
    ...(etcd ? ['Per monitor (CPU over the window, % of one core; formations led at the end of the window, from `GET /v1/monitors`):', '', ...markdownTable(PER_MONITOR_HEADERS, perMonitorRows(results)), ''] : []),
    'Columns: latency of one report (request sent to answer read, every monitor it went to included); errors are non-2xx answers and transport failures; skipped are report slots not sent because that keeper\'s previous report had not been answered yet; ' +
      (etcd ? 'retried are reports answered after going to more than one monitor; ' : '') +
      `monitor CPU is the \`pgha monitor run\` process${etcd ? 'es\' (summed)' : '\'s'} utime+stime over the window in % of one core; RSS is VmRSS at the end of the window and VmHWM (peak since start)${etcd ? ', of the largest monitor' : ''}; ` +
      (etcd ? 'etcd CPU is the three members\' utime+stime, summed. ' : "monitor Postgres CPU is the monitor's postmaster and all its backends. ") +
      `Benchmark client CPU: ${results.map((r) => `${fmt(r.benchCpuPct, 0)}% at ${r.nodes}`).join(', ')}.`,
    '',
  ].join('\n');
  writeFileSync(join(RESULTS_DIR, `${base}.md`), md);
  return base;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  keepDirs = opts.keep;
  const command = `npm run bench:monitor${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  // The monitor runs from the compiled packages: build them (incremental) and make sure
  // PostgreSQL 15 (and etcd, for --monitors 3) is installed, as `npm test` does.
  const build = spawnSync('npx', ['tsc', '-b'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npx tsc -b failed');
  for (const script of ['ensure-postgres.sh', ...(opts.monitors === 3 ? ['ensure-etcd.sh'] : [])]) {
    const installed = spawnSync('bash', [join(ROOT, 'packages/cli/scripts', script)], { stdio: 'inherit' });
    if (installed.status !== 0) throw new Error(`packages/cli/scripts/${script} failed`);
  }

  const results: SizeResult[] = [];
  for (const size of opts.sizes) results.push(await runSize(size, opts));

  const table = new Table({ head: headers(opts.monitors) });
  for (const row of tableRows(results)) table.push(row);
  console.log(`\n${table.toString()}`);
  console.log(targetLine(results, opts.monitors));
  if (opts.write) {
    const base = writeResults(results, opts, command);
    console.log(`written: ${join('bench/results', `${base}.md`)} and .json`);
  }
}

main()
  .catch((err: Error) => {
    console.error(`bench:monitor failed: ${err.message}`);
    process.exitCode = 1;
  })
  .finally(() => cleanupOnce());
