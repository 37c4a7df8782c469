/**
 * Patroni 3.0 from Debian's `patroni` package (installed when missing), on a local one-member
 * etcd (plain HTTP on loopback, started by `pgha up`'s own `startLocalEtcd`) through Patroni's
 * `etcd3` DCS, with `synchronous_mode` on: two nodes, each one `patroni` process (run as the
 * Postgres OS user) that runs its Postgres, each with a YAML file written by the benchmark.
 * At Patroni's defaults (`patroni`), or at the smallest `ttl`/`loop_wait`/`retry_timeout` its
 * docs allow (`patroni-tuned`, {@link PATRONI_TUNED}).
 *
 * Patroni has no monitor: the etcd member stands in for one in the idle footprint (it is
 * what Patroni needs besides the nodes), and no monitor scenario applies to it.
 */
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResultPromise } from 'execa';
import pg from 'pg';
import { delay, isProcessAlive, postgresOsUser, postmasterPid } from '@pgha/postgres';
import type { Host } from './probe.js';
import { run, spawnLogged, startedPids } from './proc.js';
import { freePorts, type BenchNode, type HaSystem, type NodeStatus, type Setting } from './systems.js';
import { startLocalEtcd, type LocalEtcd } from '../../packages/cli/src/local-etcd.js';

const PATRONI = '/usr/bin/patroni';
const PATRONICTL = '/usr/bin/patronictl';
const PG_BIN = '/usr/lib/postgresql/15/bin';

/** Patroni's timeouts (seconds): the leader key's TTL, the HA loop's period, the DCS and Postgres retries. */
export interface PatroniTimeouts {
  ttl: number;
  loop_wait: number;
  retry_timeout: number;
}

/** Patroni's defaults (docs, "Dynamic Configuration Settings"; `Config.__DEFAULT_CONFIG` in patroni/config.py). */
export const PATRONI_DEFAULTS: PatroniTimeouts = { ttl: 30, loop_wait: 10, retry_timeout: 10 };

/**
 * The smallest values Patroni's docs allow ("Dynamic Configuration Settings"): `ttl` at least
 * 20, `loop_wait` at least 1, `retry_timeout` at least 3, and the rule `loop_wait + 2 *
 * retry_timeout <= ttl` (1 + 6 ≤ 20). Patroni 3.0.2's validator (patroni/validator.py) checks
 * only that they are integers; later releases enforce these minimums, so lower values would be
 * refused by any current Patroni.
 */
export const PATRONI_TUNED: PatroniTimeouts = { ttl: 20, loop_wait: 1, retry_timeout: 3 };

/** How long (s) {@link PatroniSystem.stuck} sees a `/sync` key that disagrees with the leader's Postgres before it says the cluster is stuck (three HA loops at least). */
export const STUCK_AFTER_S = 30;

/** A member of `GET /cluster` (Patroni's REST API). */
interface ClusterMember {
  name: string;
  role: string;
  state: string;
}

/** Patroni on etcd, at its defaults or tuned. */
export class PatroniSystem implements HaSystem {
  readonly name: 'patroni' | 'patroni-tuned';
  readonly nodes: BenchNode[] = [];
  hosts: Host[] = [];
  readonly settings: readonly Setting[];
  private readonly timeouts: PatroniTimeouts;
  private etcd: LocalEtcd | undefined;
  private readonly procs = new Map<string, ResultPromise>();
  /** Each node's postmaster last seen (see {@link trackPostmasters}). */
  private readonly postmasters = new Map<string, number | undefined>();
  /** Since when {@link stuck} has seen replication asynchronous under a `/sync` key that names a standby (ms, `performance.now()`). */
  private stuckSince: number | undefined;
  /** Each node's REST API (`http://127.0.0.1:PORT`) and configuration file. */
  private readonly api = new Map<string, { url: string; config: string }>();

  constructor(private readonly dir: string, tuned = false) {
    this.name = tuned ? 'patroni-tuned' : 'patroni';
    this.timeouts = tuned ? PATRONI_TUNED : PATRONI_DEFAULTS;
    const why = tuned
      ? 'the smallest the docs allow ("Dynamic Configuration Settings": ttl ≥ 20, loop_wait ≥ 1, retry_timeout ≥ 3, loop_wait + 2 × retry_timeout ≤ ttl)'
      : 'Patroni\'s default (docs, "Dynamic Configuration Settings")';
    this.settings = [
      { name: 'ttl', value: `${this.timeouts.ttl} s`, source: why },
      { name: 'loop_wait', value: `${this.timeouts.loop_wait} s`, source: why },
      { name: 'retry_timeout', value: `${this.timeouts.retry_timeout} s`, source: why },
      { name: 'synchronous_mode', value: 'true', source: 'issue 17: acknowledged writes are on the standby, as with pgha and pg_auto_failover (not strict: a primary whose standby is down goes on alone, as they do)' },
      { name: 'use_pg_rewind', value: 'true', source: 'a crashed primary comes back as a standby without a new base backup (Patroni sets wal_log_hints on)' },
      { name: 'DCS', value: 'etcd3, one local member', source: 'Patroni has no monitor: its leader key lives in etcd (plain HTTP on loopback)' },
    ];
  }

  async setup(): Promise<void> {
    if (!existsSync(PATRONI)) {
      // Debian 12's patroni 3.0.2 depends on python3-etcd (its first DCS alternative), which the etcd3 DCS imports.
      await run('bash', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patroni python3-etcd'], { timeoutMs: 900_000 });
    }
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    this.etcd = await startLocalEtcd({ dir: join(this.dir, 'etcd') });
    for (const m of this.etcd.members) startedPids.add(m.pid);
    const [p1, p2, r1, r2] = await freePorts(4);
    const user = postgresOsUser();
    for (const [i, port] of [p1!, p2!].entries()) {
      const name = `node${i + 1}`;
      const nodeDir = join(this.dir, name);
      mkdirSync(nodeDir, { recursive: true, mode: 0o700 });
      if (user) chownSync(nodeDir, user.uid, user.gid);
      const node = { name, port, pgdata: join(nodeDir, 'pgdata') };
      const restPort = [r1!, r2!][i]!;
      const config = join(nodeDir, 'patroni.yml');
      // YAML is a superset of JSON: the file is written as JSON.
      writeFileSync(config, `${JSON.stringify(this.config(node, nodeDir, restPort), null, 2)}\n`, { mode: 0o644 });
      this.api.set(name, { url: `http://127.0.0.1:${restPort}`, config });
      this.nodes.push(node);
      this.startKeeper(node);
      // The first node bootstraps the cluster; the second then clones it.
      if (i === 0) await this.waitForMember(name, (m) => m.role === 'leader' && m.state === 'running');
    }
    this.hosts = this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  }

  /** One node's Patroni configuration. */
  private config(node: BenchNode, nodeDir: string, restPort: number): Record<string, unknown> {
    const address = `127.0.0.1:${node.port}`;
    return {
      scope: 'bench',
      name: node.name,
      log: { level: 'INFO' },
      restapi: { listen: `127.0.0.1:${restPort}`, connect_address: `127.0.0.1:${restPort}` },
      etcd3: { hosts: this.etcd!.endpoints },
      bootstrap: {
        dcs: { ...this.timeouts, synchronous_mode: true, postgresql: { use_pg_rewind: true, use_slots: true } },
        initdb: [{ encoding: 'UTF8' }],
      },
      postgresql: {
        listen: address,
        connect_address: address,
        data_dir: node.pgdata,
        bin_dir: PG_BIN,
        pgpass: join(nodeDir, 'pgpass'),
        authentication: { superuser: { username: 'postgres' }, replication: { username: 'replicator' }, rewind: { username: 'postgres' } },
        parameters: { unix_socket_directories: nodeDir },
        // trust on loopback, as the other systems of the benchmark run (`--auth trust`).
        pg_hba: ['local all all trust', 'host all all 127.0.0.1/32 trust', 'host replication all 127.0.0.1/32 trust'],
      },
    };
  }

  /** `GET /cluster` from the first node whose REST API answers; undefined when none does. */
  private async cluster(): Promise<ClusterMember[] | undefined> {
    for (const { url } of this.api.values()) {
      try {
        const res = await fetch(`${url}/cluster`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) return ((await res.json()) as { members?: ClusterMember[] }).members ?? [];
      } catch {
        // next node
      }
    }
    return undefined;
  }

  private async waitForMember(name: string, ok: (m: ClusterMember) => boolean): Promise<void> {
    const deadline = Date.now() + 300_000;
    while (Date.now() < deadline) {
      const member = (await this.cluster())?.find((m) => m.name === name);
      if (member && ok(member)) return;
      await delay(200);
    }
    throw new Error(`${this.name}: ${name} did not come up in 300 s (see ${join(this.dir, `${name}.log`)})`);
  }

  /** Whether the node's own `patroni` answers on its REST API (`GET /patroni`): it has started, its Postgres configuration written. */
  private async apiAnswers(name: string): Promise<boolean> {
    try {
      const res = await fetch(`${this.api.get(name)!.url}/patroni`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      return res.status < 500;
    } catch {
      return false;
    }
  }

  /**
   * Every node's state from Patroni's REST API (`GET /cluster`, what `patronictl list` shows;
   * read over HTTP because the benchmark polls every 100 ms and each `patronictl` is a Python
   * start). A running leader is `primary`, a streaming synchronous standby `secondary` (goal
   * and reported alike); anything else (a replica not yet synchronous, a node missing from the
   * cluster, a leader still starting) has a reported state that differs from its goal.
   *
   * A member counts only once its own `patroni` answers on its REST API: `GET /cluster` (any
   * node answers it) shows a member's key from the DCS, which outlives a killed `patroni` by
   * up to `ttl`, and a `patroni` that starts on a running Postgres rewrites its
   * `postgresql.conf` and reloads it before its REST API starts. A standby counts as
   * synchronous only when the leader's Postgres says so, not the DCS's `/sync` key (see
   * {@link leaderSync}): Patroni 3.0.2 can leave the key naming a standby that replicates
   * asynchronously ({@link stuck}).
   */
  async status(): Promise<NodeStatus[]> {
    this.trackPostmasters();
    const members = (await this.cluster()) ?? [];
    const leader = members.find((m) => ['leader', 'master', 'primary'].includes(m.role));
    const leaderNode = this.nodes.find((n) => n.name === leader?.name);
    const sync = leaderNode ? await leaderSync(leaderNode.port) : { names: [], configured: '' };
    return Promise.all(this.nodes.map(async (n): Promise<NodeStatus> => {
      const m = members.find((x) => x.name === n.name);
      if (!m) return { name: n.name, reported: 'absent', goal: 'secondary' };
      const goal = m === leader ? 'primary' : 'secondary';
      if (!(await this.apiAnswers(n.name))) return { name: n.name, reported: `patroni not answering (${m.role} ${m.state} in the DCS)`, goal };
      if (m === leader) return { name: n.name, reported: m.state === 'running' ? 'primary' : `leader ${m.state}`, goal };
      const onLeader = sync.names.includes(n.name) && sync.configured !== '';
      const synced = m.role === 'sync_standby' && (m.state === 'streaming' || m.state === 'running') && onLeader;
      return { name: n.name, reported: synced ? 'secondary' : `${m.role} ${m.state}${onLeader ? '' : ', not synchronous on the leader'}`, goal };
    }));
  }

  /**
   * Why this cluster will not get back to primary + synchronous standby by itself, or
   * undefined. Patroni's rule (patroni/ha.py, `process_sync_replication`) is that a standby is
   * added to `synchronous_standby_names` before the DCS's `/sync` key names it, and removed
   * from the key first. Patroni 3.0.2 breaks it when its process is killed and started again on
   * a running primary: it writes `postgresql.conf` without `synchronous_standby_names` (its
   * cached value is unset on start: patroni/postgresql/config.py, `get_server_parameters`) and
   * reloads Postgres, and as the standby it would pick is the one `/sync` already names, its HA
   * loop never sets the parameter again. Replication is then asynchronous while `/sync` (and
   * `patronictl list`) names a synchronous standby. Fixed upstream in Patroni 3.1.2 (#2876: read
   * the running Postgres's settings when joining it; #2877: repair a `/sync` key that
   * disagrees with `synchronous_standby_names`); Debian 12 ships 3.0.2.
   *
   * Reported once the state has lasted {@link STUCK_AFTER_S} (and at least three HA loops):
   * nothing in Patroni 3.0.2's loop changes it while the standby stays connected.
   */
  async stuck(): Promise<string | undefined> {
    const members = (await this.cluster()) ?? [];
    const leader = members.find((m) => ['leader', 'master', 'primary'].includes(m.role) && m.state === 'running');
    const named = members.find((m) => m.role === 'sync_standby' && (m.state === 'streaming' || m.state === 'running'));
    const leaderNode = this.nodes.find((n) => n.name === leader?.name);
    const sync = leaderNode && named && (await this.apiAnswers(leaderNode.name)) ? await leaderSync(leaderNode.port) : undefined;
    const broken = sync !== undefined && sync.configured === '' && !sync.names.includes(named!.name);
    if (!broken) {
      this.stuckSince = undefined;
      return undefined;
    }
    this.stuckSince ??= performance.now();
    const seconds = Math.max(STUCK_AFTER_S, 3 * this.timeouts.loop_wait);
    if (performance.now() - this.stuckSince < seconds * 1000) return undefined;
    return `Patroni left replication asynchronous: ${leader!.name}'s synchronous_standby_names empty for ${seconds} s while the DCS names ${named!.name} its synchronous standby (Patroni 3.0.2 after its process restarts on a running primary; fixed in 3.1.2)`;
  }

  /**
   * Patroni detaches each postmaster from itself: the benchmark's exit on Ctrl-C (which ends
   * the process trees it started) would miss them, so each node's current postmaster is in
   * `startedPids` (the one it replaces taken out).
   */
  private trackPostmasters(): void {
    for (const n of this.nodes) {
      const pid = postmasterPid(n.pgdata);
      const before = this.postmasters.get(n.name);
      if (before === pid) continue;
      if (before) startedPids.delete(before);
      if (pid) startedPids.add(pid);
      this.postmasters.set(n.name, pid);
    }
  }

  /** The node's `patroni` process (its Postgres runs on when it dies). */
  keeperPids(node: BenchNode): number[] {
    const pid = this.procs.get(node.name)?.pid;
    return pid && isProcessAlive(pid) ? [pid] : [];
  }

  /** Runs `patroni CONFIG` for the node, as the Postgres OS user. */
  startKeeper(node: BenchNode): void {
    const config = this.api.get(node.name)!.config;
    this.procs.set(node.name, spawnLogged(PATRONI, [config], join(this.dir, `${node.name}.log`), { asPostgres: true, env: { PATH: `${PG_BIN}:/usr/bin:/bin`, HOME: this.dir } }));
  }

  /** `patronictl switchover --leader L --candidate C --force` (Patroni 3.0 asks for both without a terminal). */
  async switchover(): Promise<void> {
    const states = await this.status();
    const leader = states.find((s) => s.goal === 'primary')?.name;
    const candidate = states.find((s) => s.name !== leader)?.name;
    if (!leader || !candidate) throw new Error(`${this.name}: no leader and candidate to switch over (${JSON.stringify(states)})`);
    await run(PATRONICTL, ['-c', this.api.get(leader)!.config, 'switchover', '--leader', leader, '--candidate', candidate, '--force'], { asPostgres: true, env: { HOME: this.dir }, timeoutMs: 120_000 });
  }

  /** The etcd member: Patroni has no monitor; it is what Patroni needs besides the nodes. */
  monitorPids(): number[] {
    return (this.etcd?.members ?? []).map((m) => m.pid).filter((pid) => isProcessAlive(pid));
  }

  async teardown(): Promise<void> {
    const procs = [...this.procs.values()];
    // SIGTERM: each Patroni stops its Postgres (fast shutdown) and leaves.
    for (const p of procs) p.kill('SIGTERM');
    await Promise.race([Promise.allSettled(procs), delay(30_000)]);
    for (const p of procs) p.kill('SIGKILL');
    for (const n of this.nodes) {
      const pid = postmasterPid(n.pgdata);
      if (pid && isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
      const tracked = this.postmasters.get(n.name);
      if (tracked) startedPids.delete(tracked);
    }
    if (this.etcd) {
      await this.etcd.stop();
      for (const m of this.etcd.members) startedPids.delete(m.pid);
    }
  }
}

/**
 * What the leader's Postgres at 127.0.0.1:`port` says of synchronous replication: `names`, the
 * standbys (`application_name`, Patroni's member names) that `pg_stat_replication` shows as
 * `sync`; `configured`, the `synchronous_standby_names` its configuration files hold now
 * (`pg_file_settings`, read from the files: a rewrite not yet reloaded shows). Nothing when it
 * does not answer.
 */
async function leaderSync(port: number): Promise<{ names: string[]; configured: string }> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000, query_timeout: 1000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const sync = await client.query<{ application_name: string }>("select application_name from pg_stat_replication where sync_state = 'sync'");
    const files = await client.query<{ setting: string | null }>("select setting from pg_file_settings where name = 'synchronous_standby_names' and error is null order by seqno desc limit 1");
    return { names: sync.rows.map((r) => r.application_name), configured: files.rows[0]?.setting ?? '' };
  } catch {
    return { names: [], configured: '' };
  } finally {
    await client.end().catch(() => undefined);
  }
}
