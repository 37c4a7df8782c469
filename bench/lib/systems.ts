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
import { processTree, run, spawnLogged, started, startedPgdata, startedPids } from './proc.js';
import { createLogger } from '../../packages/cli/src/logger.js';
import { startEtcdMonitors } from '../../packages/cli/src/up.js';
import { serviceCommand } from '../../packages/cli/src/service-command.js';
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

/** The systems of the benchmark, in the order of its table's columns: pgha first, then the peers (each at its defaults, then tuned). */
export const SYSTEMS = ['pgha', 'pgha-3-monitors', 'pg_auto_failover', 'pg_auto_failover-tuned', 'patroni', 'patroni-tuned'] as const;
export type SystemName = (typeof SYSTEMS)[number];

/** The peers: the systems that are not pgha (the table gives the ratio pgha / each of them). */
export const PEERS: readonly SystemName[] = SYSTEMS.filter((s) => !s.startsWith('pgha'));

/** One setting a system runs with, for the results file: where it is set, its value, and why (with the source of the value). */
export interface Setting {
  /** The setting as the system names it, e.g. `pgautofailover.health_check_period` or `ttl`. */
  name: string;
  /** The value with its unit, e.g. `500 ms`, `20 s`. */
  value: string;
  /** Why this value, and where the rule or the default comes from. */
  source: string;
}

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
  /** What the system runs with (shown in the results file). */
  readonly settings: readonly Setting[];
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
  /**
   * Why the formation will not get back to primary + secondary by itself (a known fault of the
   * system, seen in its state for long enough to be sure), or undefined. Polled with
   * {@link status} while a scenario waits for the formation to be healthy again: a scenario
   * that sees a reason stops waiting, records it, and the system is built afresh before the
   * next run. Absent for a system with no such fault.
   */
  stuck?(): Promise<string | undefined>;
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

/** `n` free loopback ports, all different. */
export async function freePorts(n: number): Promise<number[]> {
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
  readonly settings: readonly Setting[] = [{ name: '(all)', value: 'defaults', source: 'what `pgha monitor create` and `pgha keeper create postgres` write; nothing is tuned for the benchmark' }];
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

  /** Runs `pgha monitor run` on a created monitor, as `pgha up` and the systemd units run it (V8 flags included). */
  private startMonitor(url: string, pgdata: string, logFile: string): void {
    if (!this.monitorUrls.includes(url)) this.monitorUrls.push(url);
    const [node, ...args] = serviceCommand('monitor', pgdata);
    this.monitorProcs.set(url, { proc: spawnLogged(node, args, logFile), pgdata, logFile });
    startedPgdata.add(pgdata);
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
      startedPgdata.add(node.pgdata);
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
    // As `pgha up` and the systemd units run it (V8 flags included).
    const [file, ...args] = serviceCommand('keeper', node.pgdata);
    this.keepers.set(node.name, spawnLogged(file, args, join(this.dir, `${node.name}.log`)));
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
 * The monitor's settings of `pg_auto_failover-tuned` (its Postgres, `ALTER SYSTEM` then a
 * reload). pg_auto_failover's docs (pg_autoctl(5), "Configuration") name these settings and
 * their defaults but give no lower bound; the extension accepts anything from 1 ms (1 retry)
 * up (`DefineCustomIntVariable` in src/monitor/pg_auto_failover.c). So the values are the
 * smallest that keep what its docs describe sound: a keeper reports to the monitor once a
 * second (`PG_AUTOCTL_KEEPER_SLEEP_TIME`, 1 s in 2.0), so a node is counted unhealthy after
 * two missed reports, not less; and the monitor still waits, before it promotes the standby,
 * longer than a primary cut off from the monitor and its standby takes to stop its Postgres
 * (`timeout.network_partition_timeout`, below): the docs' protection against two primaries.
 */
export const PGAF_TUNED_MONITOR: readonly Setting[] = [
  { name: 'pgautofailover.health_check_period', value: '500 ms', source: 'default 5 s (docs) / 1 s (2.0 source); the monitor\'s health check of every node twice per keeper report' },
  { name: 'pgautofailover.health_check_timeout', value: '500 ms', source: 'default 5 s; a connect on loopback answers or is refused at once' },
  { name: 'pgautofailover.health_check_max_retries', value: '1', source: 'default 2; the extension\'s minimum (1)' },
  { name: 'pgautofailover.health_check_retry_delay', value: '100 ms', source: 'default 2 s' },
  { name: 'pgautofailover.node_considered_unhealthy_timeout', value: '2000 ms', source: 'default 20 s; two keeper reports (a keeper reports every 1 s): less would count a healthy node unhealthy between two reports' },
  { name: 'pgautofailover.primary_demote_timeout', value: '3000 ms', source: 'default 30 s; with node_considered_unhealthy_timeout the standby is promoted ≥ 5 s after the primary\'s last report, longer than network_partition_timeout (2 s) + one keeper round (1 s), so a cut-off primary has stopped first' },
  { name: 'pgautofailover.startup_grace_period', value: '2000 ms', source: 'default 10 s; as node_considered_unhealthy_timeout (the monitor has heard every keeper once by then)' },
];

/**
 * The keepers' settings of `pg_auto_failover-tuned` (`pg_autoctl config set --pgdata NODE
 * section.option value`, before `pg_autoctl run`). The other `timeout.*` options only bound
 * waits that do not delay a healthy failover (`prepare_promotion_catchup` and
 * `prepare_promotion_walreceiver`: 2.0 only supports synchronous replication and does not wait
 * on them, as its source says; `postgresql_restart_failure_timeout` / `_max_retries`: how
 * long a keeper retries a Postgres that fails to start, which a crash that restarts fine never
 * reaches): they keep their defaults.
 */
export const PGAF_TUNED_KEEPER: readonly Setting[] = [
  { name: 'timeout.network_partition_timeout', value: '2 s', source: 'default 20 s; whole seconds; a primary that reaches neither the monitor nor its standby for this long stops its Postgres (docs: protection against split brain); kept below the monitor\'s wait before promotion (5 s)' },
];

/**
 * pg_auto_failover 2.0: `pg_autoctl create monitor|postgres`, one `pg_autoctl run` per node
 * (which supervises its Postgres), all as the Postgres OS user. At its defaults
 * (`pg_auto_failover`), or with the monitor's health checks and timeouts and the keepers'
 * network partition timeout lowered (`pg_auto_failover-tuned`: {@link PGAF_TUNED_MONITOR},
 * {@link PGAF_TUNED_KEEPER}).
 */
export class PgafSystem implements HaSystem {
  readonly name: 'pg_auto_failover' | 'pg_auto_failover-tuned';
  readonly nodes: BenchNode[] = [];
  hosts: Host[] = [];
  readonly settings: readonly Setting[];
  private monitorPgdata = '';
  private monitorUri = '';
  private readonly runs = new Map<string, ResultPromise>();

  constructor(private readonly dir: string, private readonly tuned = false) {
    this.name = tuned ? 'pg_auto_failover-tuned' : 'pg_auto_failover';
    this.settings = tuned
      ? [...PGAF_TUNED_MONITOR, ...PGAF_TUNED_KEEPER, { name: 'replication', value: 'synchronous', source: 'pg_auto_failover\'s default for a primary and one standby (number_sync_standbys 0, replication quorum true)' }]
      : [{ name: '(all)', value: 'defaults', source: 'what `pg_autoctl create monitor|postgres --auth trust --no-ssl` writes (pg_autoctl(5): health_check_period 5 s, node_considered_unhealthy_timeout 20 s, primary_demote_timeout 30 s, network_partition_timeout 20 s); synchronous replication' }];
  }

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
    if (this.tuned) await this.tuneMonitor(monitorPort!);
    for (const [i, port] of [p1!, p2!].entries()) {
      const node = { name: `node${i + 1}`, port, pgdata: join(this.dir, `node${i + 1}`) };
      await this.autoctl(['create', 'postgres', '--pgdata', node.pgdata, '--pgport', String(port), '--hostname', '127.0.0.1', '--name', node.name, '--monitor', this.monitorUri, '--auth', 'trust', '--no-ssl']);
      if (this.tuned) for (const s of PGAF_TUNED_KEEPER) await this.autoctl(['config', 'set', '--pgdata', node.pgdata, s.name, s.value.split(' ')[0]!]);
      this.nodes.push(node);
      this.startRun(node.name, node.pgdata);
      await waitFor(`${node.name} to start`, async () => (await this.status()).some((s) => s.name === node.name && s.reported === s.goal && s.goal !== 'init'), { timeoutMs: 300_000, intervalMs: 500 });
    }
    this.hosts = this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  }

  /** Sets {@link PGAF_TUNED_MONITOR} on the monitor's Postgres and reloads it; checks that each value took. */
  private async tuneMonitor(port: number): Promise<void> {
    const psql = (sql: string) => run('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'pg_auto_failover', '-c', sql], { asPostgres: true, env: this.env });
    for (const s of PGAF_TUNED_MONITOR) await psql(`alter system set ${s.name} = '${s.value.replace(' ', '')}'`);
    await psql('select pg_reload_conf()');
    await waitFor('the monitor to take the tuned settings', async () => {
      const rows = (await psql(`select name || '=' || setting from pg_settings where name like 'pgautofailover.%'`)).split('\n');
      return PGAF_TUNED_MONITOR.every((s) => rows.includes(`${s.name}=${s.value.split(' ')[0]}`)) || undefined;
    }, { timeoutMs: 10_000, intervalMs: 200 });
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
