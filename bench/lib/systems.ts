/**
 * The two HA systems the benchmark drives the same way: pgha, and pg_auto_failover 2.0 from
 * the Debian packages (`pg_autoctl`). Each brings up a monitor and two nodes on free loopback
 * ports under its own directory, reports its nodes' states, and knows which processes are a
 * node's keeper and which its postmaster.
 */
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import getPort from 'get-port';
import type { ResultPromise } from 'execa';
import { MonitorClient } from '@pgha/client';
import { delay, isProcessAlive, postgresOsUser, postmasterPid, processName, waitFor } from '@pgha/postgres';
import type { Host } from './probe.js';
import { processTree, run, spawnLogged } from './proc.js';

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

/** What the benchmark needs from an HA system. */
export interface HaSystem {
  readonly name: 'pgha' | 'pg_auto_failover';
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

/** pgha: `pgha monitor create/run`, `pgha keeper create postgres/run`. */
export class PghaSystem implements HaSystem {
  readonly name = 'pgha' as const;
  readonly nodes: BenchNode[] = [];
  hosts: Host[] = [];
  private monitorUrl = '';
  private monitorProc: ResultPromise | undefined;
  private readonly keepers = new Map<string, ResultPromise>();

  constructor(private readonly dir: string) {}

  /** The monitor's URL, operator token file and CA (pgha's defaults: HTTPS, tokens), for every pgha command. */
  private credentialsEnv: Record<string, string> = {};

  /** Runs `pgha ARGS…` with the monitor's credentials; its stdout. */
  pgha(args: string[]): Promise<string> {
    return run(process.execPath, [PGHA_BIN, ...args], { env: this.credentialsEnv });
  }

  async setup(): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    const [pgPort, httpPort, p1, p2, h1, h2] = await freePorts(6);
    const monitorPgdata = join(this.dir, 'monitor', 'pgdata');
    await this.pgha(['monitor', 'create', '--pgdata', monitorPgdata, '--pg-port', String(pgPort), '--listen', `127.0.0.1:${httpPort}`]);
    this.monitorProc = spawnLogged(process.execPath, [PGHA_BIN, 'monitor', 'run', '--pgdata', monitorPgdata], join(this.dir, 'monitor.log'));
    this.monitorUrl = `https://127.0.0.1:${httpPort}`;
    this.credentialsEnv = { PGHA_MONITOR: this.monitorUrl, PGHA_AUTH_TOKEN_FILE: `${monitorPgdata}.pgha/auth-token`, PGHA_SSL_CA_FILE: `${monitorPgdata}.pgha/tls/ca.crt` };
    await waitFor('the pgha monitor', async () => (await this.client().formationState('default')) !== undefined, { timeoutMs: 60_000, intervalMs: 100 });
    for (const [i, port] of [p1!, p2!].entries()) {
      const node = { name: `node${i + 1}`, port, pgdata: join(this.dir, `node${i + 1}`, 'pgdata') };
      const keeperHttp = `127.0.0.1:${[h1!, h2!][i]}`;
      await this.pgha(['keeper', 'create', 'postgres', '--monitor', this.monitorUrl, '--pgdata', node.pgdata, '--pg-port', String(port), '--name', node.name, '--hostname', '127.0.0.1', '--auth', 'trust', '--http-listen', keeperHttp]);
      this.nodes.push(node);
      this.startKeeper(node);
    }
    this.hosts = this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  }

  private client(): MonitorClient {
    return new MonitorClient(this.monitorUrl, { token: readFileSync(this.credentialsEnv.PGHA_AUTH_TOKEN_FILE!, 'utf8').trim(), ca: readFileSync(this.credentialsEnv.PGHA_SSL_CA_FILE!, 'utf8') });
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
    await this.pgha(['perform', 'switchover', '--monitor', this.monitorUrl]);
  }

  monitorPids(): number[] {
    return this.monitorProc?.pid ? [this.monitorProc.pid] : [];
  }

  async teardown(): Promise<void> {
    const procs = [this.monitorProc, ...this.keepers.values()].filter((p): p is ResultPromise => !!p);
    for (const p of procs) p.kill('SIGTERM');
    await Promise.race([Promise.allSettled(procs), delay(30_000)]);
    for (const p of procs) p.kill('SIGKILL');
    for (const pgdata of [...this.nodes.map((n) => n.pgdata), join(this.dir, 'monitor', 'pgdata')]) {
      const pid = postmasterPid(pgdata);
      if (pid) process.kill(pid, 'SIGKILL');
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
