/**
 * The HA systems the benchmark drives the same way: pgha with one monitor on its own Postgres,
 * pgha with three monitors on a local 3-member etcd (`pgha-3-monitors`, as `pgha up --monitors
 * 3` builds it), and pg_auto_failover 2.0 from the Debian packages (`pg_autoctl`). Each brings
 * up its monitor(s) and two nodes on free loopback ports under its own directory, reports its
 * nodes' states, and knows which processes are a node's keeper and which its postmaster.
 */
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import getPort from 'get-port';
import type { ResultPromise } from 'execa';
import { MonitorClient } from '@pgha/client';
import { delay, isProcessAlive, postgresOsUser, postmasterPid, processName, waitFor } from '@pgha/postgres';
import type { Host } from './probe.js';
import { processTree, run, spawnLogged, started, startedPids } from './proc.js';
import { createLogger } from '../../packages/cli/src/logger.js';
import { startEtcdMonitors } from '../../packages/cli/src/up.js';
import type { LocalEtcd } from '../../packages/cli/src/local-etcd.js';

const PGHA_BIN = fileURLToPath(new URL('../../packages/cli/bin/pgha.js', import.meta.url));

/** One node of a formation under test. */
export interface BenchNode {
  name: string;
  port: number;
  pgdata: string;
}

/** A node's state as its monitor reports it. */
export interface NodeStatus {
  name: string;
  reported: string;
  goal: string;
}

/** The systems of the benchmark, in the order of its table's columns. */
export const SYSTEMS = ['pgha', 'pgha-3-monitors', 'pg_auto_failover'] as const;
export type SystemName = (typeof SYSTEMS)[number];

/** Several monitors, one of which leads the formation (pgha on etcd). */
export interface MonitorGroup {
  /** The monitors' URLs. */
  readonly urls: readonly string[];
  /**
   * The URL of the monitor that leads formation `default` now, as `GET /v1/monitors` says (the
   * reachable monitor whose own row lists it); undefined when none does or none answers.
   */
  leader(): Promise<string | undefined>;
  /** The process of the monitor at `url` (empty when it is not running). */
  pids(url: string): number[];
  /**
   * Runs the monitor at `url` again, as systemd's `Restart=always` would (`pgha monitor run` on
   * its data directory), and resolves once it answers `/health`.
   */
  restart(url: string): Promise<void>;
}

/** What the benchmark needs from an HA system. */
export interface HaSystem {
  readonly name: SystemName;
  /** Present when the system runs several monitors (the scenarios that kill one need it). */
  readonly monitorGroup?: MonitorGroup;
  readonly nodes: BenchNode[];
  readonly hosts: Host[];
  setup(): Promise<void>;
  status(): Promise<NodeStatus[]>;
  /** Keeper processes of a node (not its Postgres). */
  keeperPids(node: BenchNode): number[];
  /** Restarts a node's keeper after a crash (it restarts Postgres as needed). */
  startKeeper(node: BenchNode): void;
  /** Runs the system's planned switchover command to its end. */
  switchover(): Promise<void>;
  /** Processes of the monitor itself (not its Postgres), for the idle footprint. */
  monitorPids(): number[];
  teardown(): Promise<void>;
}

/** True when one node is primary and the others secondary, each having reached its goal. */
export function isHealthy(states: readonly NodeStatus[]): boolean {
  const settled = states.filter((s) => s.reported === s.goal);
  return settled.length === states.length && settled.filter((s) => s.goal === 'primary').length === 1 && settled.filter((s) => s.goal === 'secondary').length === states.length - 1;
}

/** The node whose goal is a writable state. */
export function primaryOf(states: readonly NodeStatus[]): string | undefined {
  return states.find((s) => ['primary', 'wait_primary', 'single'].includes(s.goal))?.name;
}

async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < n) ports.push(await getPort({ host: '127.0.0.1', exclude: ports }));
  return ports;
}

/**
 * pgha: `pgha monitor create/run`, `pgha keeper create postgres/run`. With `monitors: 3`, a
 * local 3-member etcd (TLS, client certificates) and three monitors on it, made by `pgha up
 * --monitors 3`'s own code (the first monitor creates the store, the others `--join`); the
 * keepers and every command get the three URLs.
 */
export class PghaSystem implements HaSystem {
  readonly name: 'pgha' | 'pgha-3-monitors';
  readonly nodes: BenchNode[] = [];
  hosts: Host[] = [];
  readonly monitorGroup?: MonitorGroup;
  /** The monitors' URLs (one, or three on etcd). */
  private monitorUrls: string[] = [];
  /** Each monitor's process and data directory, by URL. */
  private readonly monitorProcs = new Map<string, { proc: ResultPromise; pgdata: string; logFile: string }>();
  private etcd: LocalEtcd | undefined;
  private readonly keepers = new Map<string, ResultPromise>();

  constructor(private readonly dir: string, private readonly monitors: 1 | 3 = 1) {
    this.name = monitors === 3 ? 'pgha-3-monitors' : 'pgha';
    if (monitors === 3) {
      this.monitorGroup = {
        urls: this.monitorUrls,
        leader: () => this.leaderUrl(),
        pids: (url) => {
          const pid = this.monitorProcs.get(url)?.proc.pid;
          return pid && isProcessAlive(pid) ? [pid] : [];
        },
        restart: (url) => this.restartMonitor(url),
      };
    }
  }

  /** The monitor's URL, operator token file and CA (pgha's defaults: HTTPS, tokens), for every pgha command. */
  private credentialsEnv: Record<string, string> = {};

  /** Runs `pgha ARGS…` with the monitor's credentials; its stdout. */
  pgha(args: string[]): Promise<string> {
    return run(process.execPath, [PGHA_BIN, ...args], { env: this.credentialsEnv });
  }

  /** One monitor on its own Postgres; its credentials. */
  private async setupSingleMonitor(): Promise<{ authTokenFile: string; caFile: string }> {
    const [pgPort, httpPort] = await freePorts(2);
    const pgdata = join(this.dir, 'monitor', 'pgdata');
    await this.pgha(['monitor', 'create', '--pgdata', pgdata, '--pg-port', String(pgPort), '--listen', `127.0.0.1:${httpPort}`]);
    const url = `https://127.0.0.1:${httpPort}`;
    this.startMonitor(url, pgdata, join(this.dir, 'monitor.log'));
    return { authTokenFile: `${pgdata}.pgha/auth-token`, caFile: `${pgdata}.pgha/tls/ca.crt` };
  }

  /**
   * A local 3-member etcd and three monitors on it, by `pgha up --monitors 3`'s code (which
   * starts each monitor's first run; the benchmark tracks those processes and runs them again
   * itself after a kill); their credentials.
   */
  private async setupEtcdMonitors(): Promise<{ authTokenFile: string; caFile: string }> {
    const added: ResultPromise[] = [];
    const { monitors, running, etcd } = await startEtcdMonitors(this.dir, createLogger('bench', 'warn'), (_name, proc) => {
      started.add(proc as unknown as ResultPromise);
      added.push(proc as unknown as ResultPromise);
    });
    this.etcd = etcd;
    for (const m of etcd.members) startedPids.add(m.pid);
    for (const [i, r] of running.entries()) {
      this.monitorUrls.push(r.url);
      this.monitorProcs.set(r.url, { proc: added[i]!, pgdata: r.pgdata, logFile: join(this.dir, `monitor-${i + 1}`, 'monitor.log') });
    }
    return { authTokenFile: monitors.authTokenFile, caFile: monitors.caFile! };
  }

  /** Runs `pgha monitor run` on a created monitor. */
  private startMonitor(url: string, pgdata: string, logFile: string): void {
    if (!this.monitorUrls.includes(url)) this.monitorUrls.push(url);
    this.monitorProcs.set(url, { proc: spawnLogged(process.execPath, [PGHA_BIN, 'monitor', 'run', '--pgdata', pgdata], logFile), pgdata, logFile });
  }

  private async restartMonitor(url: string): Promise<void> {
    const m = this.monitorProcs.get(url);
    if (!m) throw new Error(`no monitor at ${url}`);
    this.startMonitor(url, m.pgdata, m.logFile);
    const client = new MonitorClient(url, this.credentials());
    try {
      await waitFor(`the monitor at ${url} to answer again`, () => client.request('GET', '/health').then(() => true, () => undefined), { timeoutMs: 60_000, intervalMs: 100 });
    } finally {
      await client.close();
    }
  }

  private async leaderUrl(): Promise<string | undefined> {
    const client = this.client();
    try {
      const view = await client.monitors();
      return view.monitors.find((m) => m.reachable && m.leads.some((l) => l.formation === 'default'))?.url;
    } catch {
      return undefined;
    } finally {
      await client.close();
    }
  }

  async setup(): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    const [p1, p2, h1, h2] = await freePorts(4);
    const { authTokenFile, caFile } = this.monitors === 3 ? await this.setupEtcdMonitors() : await this.setupSingleMonitor();
    const monitorList = this.monitorUrls.join(',');
    this.credentialsEnv = { PGHA_MONITOR: monitorList, PGHA_AUTH_TOKEN_FILE: authTokenFile, PGHA_SSL_CA_FILE: caFile };
    await waitFor(`the pgha monitor${this.monitors > 1 ? 's' : ''}`, async () => (await this.client().formationState('default')) !== undefined, { timeoutMs: 60_000, intervalMs: 100 });
    for (const [i, port] of [p1!, p2!].entries()) {
      const node = { name: `node${i + 1}`, port, pgdata: join(this.dir, `node${i + 1}`, 'pgdata') };
      const keeperHttp = `127.0.0.1:${[h1!, h2!][i]}`;
      await this.pgha(['keeper', 'create', 'postgres', '--monitor', monitorList, '--pgdata', node.pgdata, '--pg-port', String(port), '--name', node.name, '--hostname', '127.0.0.1', '--auth', 'trust', '--http-listen', keeperHttp]);
      this.nodes.push(node);
      this.startKeeper(node);
    }
    this.hosts = this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  }

  private credentials(): { token: string; ca: string } {
    return { token: readFileSync(this.credentialsEnv.PGHA_AUTH_TOKEN_FILE!, 'utf8').trim(), ca: readFileSync(this.credentialsEnv.PGHA_SSL_CA_FILE!, 'utf8') };
  }

  private client(): MonitorClient {
    return new MonitorClient(this.monitorUrls, this.credentials());
  }

  async status(): Promise<NodeStatus[]> {
    const client = this.client();
    try {
      return (await client.formationState('default')).map((r) => ({ name: r.name, reported: r.reported_state, goal: r.goal_state }));
    } finally {
      await client.close();
    }
  }

  keeperPids(node: BenchNode): number[] {
    const pid = this.keepers.get(node.name)?.pid;
    return pid && isProcessAlive(pid) ? [pid] : [];
  }

  startKeeper(node: BenchNode): void {
    this.keepers.set(node.name, spawnLogged(process.execPath, [PGHA_BIN, 'keeper', 'run', '--pgdata', node.pgdata], join(this.dir, `${node.name}.log`)));
  }

  async switchover(): Promise<void> {
    await this.pgha(['perform', 'switchover', '--monitor', this.monitorUrls.join(',')]);
  }

  /** Every monitor's process (three on etcd: their sum is the footprint; etcd is not counted, as the single monitor's Postgres is not). */
  monitorPids(): number[] {
    return [...this.monitorProcs.values()].map((m) => m.proc.pid ?? 0).filter((pid) => pid && isProcessAlive(pid));
  }

  async teardown(): Promise<void> {
    const procs = [...[...this.monitorProcs.values()].map((m) => m.proc), ...this.keepers.values()];
    for (const p of procs) p.kill('SIGTERM');
    await Promise.race([Promise.allSettled(procs), delay(30_000)]);
    for (const p of procs) p.kill('SIGKILL');
    for (const pgdata of [...this.nodes.map((n) => n.pgdata), join(this.dir, 'monitor', 'pgdata')]) {
      const pid = postmasterPid(pgdata);
      if (pid) process.kill(pid, 'SIGKILL');
    }
    if (this.etcd) {
      await this.etcd.stop();
      for (const m of this.etcd.members) startedPids.delete(m.pid);
    }
  }
}

/**
 * pg_auto_failover 2.0 at its defaults: `pg_autoctl create monitor|postgres`, one
 * `pg_autoctl run` per node (which supervises its Postgres), all as the Postgres OS user.
 */
export class PgafSystem implements HaSystem {
  readonly name = 'pg_auto_failover' as const;
  readonly nodes: BenchNode[] = [];
  hosts: Host[] = [];
  private monitorPgdata = '';
  private monitorUri = '';
  private readonly runs = new Map<string, ResultPromise>();

  constructor(private readonly dir: string) {}

  private get env(): Record<string, string> {
    return {
      PATH: `/usr/lib/postgresql/15/bin:/usr/bin:/bin`,
      HOME: this.dir,
      XDG_CONFIG_HOME: join(this.dir, 'config'),
      XDG_DATA_HOME: join(this.dir, 'share'),
      XDG_RUNTIME_DIR: join(this.dir, 'run'),
      PG_AUTOCTL_DEBUG: '0',
    };
  }

  private autoctl(args: string[]): Promise<string> {
    return run('pg_autoctl', args, { asPostgres: true, env: this.env, timeoutMs: 600_000 });
  }

  private startRun(name: string, pgdata: string): void {
    this.runs.set(name, spawnLogged('pg_autoctl', ['run', '--pgdata', pgdata], join(this.dir, `${name}.log`), { asPostgres: true, env: this.env }));
  }

  async setup(): Promise<void> {
    if (!existsSync('/usr/bin/pg_autoctl')) {
      await run('bash', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15-auto-failover pg-auto-failover-cli'], { timeoutMs: 900_000 });
    }
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    const user = postgresOsUser();
    for (const d of ['', 'config', 'share', 'run']) {
      mkdirSync(join(this.dir, d), { recursive: true, mode: 0o700 });
      if (user) chownSync(join(this.dir, d), user.uid, user.gid);
    }
    const [monitorPort, p1, p2] = await freePorts(3);
    this.monitorPgdata = join(this.dir, 'monitor');
    await this.autoctl(['create', 'monitor', '--pgdata', this.monitorPgdata, '--pgport', String(monitorPort), '--hostname', '127.0.0.1', '--auth', 'trust', '--no-ssl']);
    this.startRun('monitor', this.monitorPgdata);
    this.monitorUri = `postgres://autoctl_node@127.0.0.1:${monitorPort}/pg_auto_failover?sslmode=disable`;
    await waitFor('the pg_auto_failover monitor', () => postmasterPid(this.monitorPgdata) !== undefined, { timeoutMs: 60_000, intervalMs: 200 });
    await waitFor('the pg_auto_failover monitor to answer', async () => (await this.autoctl(['show', 'state', '--monitor', this.monitorUri, '--json'])).length > 0, { timeoutMs: 60_000, intervalMs: 500 });
    for (const [i, port] of [p1!, p2!].entries()) {
      const node = { name: `node${i + 1}`, port, pgdata: join(this.dir, `node${i + 1}`) };
      await this.autoctl(['create', 'postgres', '--pgdata', node.pgdata, '--pgport', String(port), '--hostname', '127.0.0.1', '--name', node.name, '--monitor', this.monitorUri, '--auth', 'trust', '--no-ssl']);
      this.nodes.push(node);
      this.startRun(node.name, node.pgdata);
      await waitFor(`${node.name} to start`, async () => (await this.status()).some((s) => s.name === node.name && s.reported === s.goal && s.goal !== 'init'), { timeoutMs: 300_000, intervalMs: 500 });
    }
    this.hosts = this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  }

  async status(): Promise<NodeStatus[]> {
    const out = await this.autoctl(['show', 'state', '--monitor', this.monitorUri, '--json']);
    const rows = JSON.parse(out) as Record<string, unknown>[];
    return rows.map((r) => ({ name: String(r.node_name ?? r.nodename ?? r['Name']), reported: String(r.reported_state ?? r.current_group_state ?? r['Current State']), goal: String(r.assigned_state ?? r.assigned_group_state ?? r['Assigned State']) }));
  }

  keeperPids(node: BenchNode): number[] {
    const root = this.runs.get(node.name)?.pid;
    if (!root || !isProcessAlive(root)) return [];
    return processTree(root).filter((pid) => processName(pid).startsWith('pg_autoctl'));
  }

  startKeeper(node: BenchNode): void {
    this.startRun(node.name, node.pgdata);
  }

  async switchover(): Promise<void> {
    await this.autoctl(['perform', 'switchover', '--monitor', this.monitorUri, '--formation', 'default']);
  }

  monitorPids(): number[] {
    const root = this.runs.get('monitor')?.pid;
    return root ? processTree(root).filter((pid) => processName(pid).startsWith('pg_autoctl')) : [];
  }

  async teardown(): Promise<void> {
    const all = [...this.runs.values()];
    for (const p of all) if (p.pid) for (const pid of processTree(p.pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    await Promise.race([Promise.allSettled(all), delay(10_000)]);
    for (const pgdata of [...this.nodes.map((n) => n.pgdata), this.monitorPgdata]) {
      const pid = postmasterPid(pgdata);
      if (pid) process.kill(pid, 'SIGKILL');
    }
  }
}

/** Removes a benchmark directory. */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
