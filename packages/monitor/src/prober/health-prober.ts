/**
 * Probes every node's Postgres (`select pg_is_in_recovery()` as the probe role, on a session
 * kept open between probes) every `healthProbeIntervalMs`, records health, and re-evaluates a group whose health changed.
 * Source: pg_auto_failover's health check worker (`health_check_worker.c`), much faster.
 *
 * Results are written as they come in, but many at a time: while one write is under way the
 * results that arrive wait for the next one (one statement for all of them, see
 * `ProbeRepository.record`). With thousands of nodes that is a handful of statements per round instead
 * of two per node, and a result still reaches the store within one write of its probe.
 */
import { connect } from 'node:net';
import type pg from 'pg';
import type { Logger } from 'pino';
import { DEFAULT_FORMATION_SETTINGS, MONITOR_PROBE_ROLE, formatDurationMs } from '@pgha/shared';
import { delay, newPgClient, type PgConnectionParams } from '@pgha/postgres';
import type { GroupDriver } from '../driver/group-driver.js';
import { mustWriteHealth, nextHealth } from '../store/health-rule.js';
import { groupKey, type MergedProbes, type ProbeTargetRecord } from '../store/records.js';
import type { ProbeRepository } from '../store/store-port.js';

/** Result of one probe. */
export interface ProbeResult {
  ok: boolean;
  inRecovery: boolean | null;
  error?: string;
}

/** Where and as whom a node is probed. */
export interface ProbeTarget {
  host: string;
  port: number;
  password: string;
  /**
   * TLS of the probe session: `false` in clear text (a node created with `--no-ssl`);
   * otherwise TLS, verifying that the node's certificate chains to `ca` (PEM) and names `host`
   * (node-postgres checks the host name, or the IP address SAN for an address), or encrypted
   * without verification when `ca` is undefined (a monitor run with `--no-ssl` has no CA).
   */
  ssl: false | { ca: string | undefined };
}

/**
 * How a probe connects to a node: with TLS exactly when the node registered that its Postgres
 * accepts it (`RegisterNodeRequest.postgresSsl`, stored in `pgha.nodes.postgres_ssl`).
 * The monitor never tries TLS first and falls back to clear text when a server answers that
 * it does not support SSL: that answer comes before any authentication, so anyone on the path
 * could forge it and downgrade the probe of a TLS node.
 *
 * @param nodeSsl - the node's `postgres_ssl`.
 * @param probeCa - the CA (PEM) that nodes' certificates chain to; undefined when the monitor
 *   runs without TLS (then TLS nodes are probed encrypted, unverified).
 */
export function probeSsl(nodeSsl: boolean, probeCa: string | undefined): ProbeTarget['ssl'] {
  return nodeSsl ? { ca: probeCa } : false;
}

/** node-postgres's `ssl` option for a {@link ProbeTarget}. */
export function pgSslOption(ssl: ProbeTarget['ssl']): PgConnectionParams['ssl'] {
  if (!ssl) return false;
  return ssl.ca ? { ca: ssl.ca, rejectUnauthorized: true } : { rejectUnauthorized: false };
}

/**
 * One node's probe session, kept from round to round: `select pg_is_in_recovery()` on the
 * open session, and a new session (a SCRAM handshake) only when there is none. A handshake
 * costs the monitor about a millisecond of CPU, so with thousands of nodes probed twice a
 * second a new one per probe would need more than a core. A kept session detects failure as
 * fast: a Postgres that stops or crashes ends its sessions (the probe fails at once), and a
 * host or network that goes silent lets the query time out, as a connection attempt would.
 * After a failure the session is dropped and the next probe connects afresh.
 */
export class ProbeConnection {
  /** The open session; unset when it ends or fails. */
  private client: pg.Client | undefined;

  constructor(readonly target: ProbeTarget) {}

  /**
   * Asks whether Postgres is in recovery, on the kept session or a new one.
   *
   * @param timeoutMs - connection timeout, and query timeout (ms).
   */
  async probe(timeoutMs: number): Promise<ProbeResult> {
    try {
      let client = this.client;
      if (!client) {
        // A node that is down usually refuses or drops the connection: finding that out with
        // a bare TCP connection costs half the CPU of a failed Postgres client.
        const started = performance.now();
        await tcpConnect(this.target.host, this.target.port, timeoutMs);
        client = newPgClient({
          host: this.target.host,
          port: this.target.port,
          user: MONITOR_PROBE_ROLE,
          password: this.target.password,
          database: 'postgres',
          connectTimeoutMs: Math.max(1, Math.round(timeoutMs - (performance.now() - started))),
          applicationName: 'pgha_probe',
          ssl: pgSslOption(this.target.ssl),
        });
        const opened = client;
        const forget = () => {
          if (this.client === opened) this.client = undefined;
        };
        client.on('error', forget);
        client.on('end', forget);
        this.client = client;
        await client.connect();
      }
      const { rows } = await client.query<{ r: boolean }>({ text: 'select pg_is_in_recovery() as r', query_timeout: timeoutMs } as pg.QueryConfig);
      return { ok: true, inRecovery: rows[0]?.r ?? null };
    } catch (err) {
      this.close();
      return { ok: false, inRecovery: null, error: (err as Error).message };
    }
  }

  /** Ends the session, if any. */
  close(): void {
    const client = this.client;
    this.client = undefined;
    client?.end().catch(() => undefined);
  }
}

/**
 * Opens a TCP connection to host:port and closes it at once.
 *
 * @param timeoutMs - how long to wait for the connection (ms).
 * @throws Error saying why the connection failed (refused: `code` ECONNREFUSED, unreachable,
 *   timed out).
 */
export function tcpConnect(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(new Error(`connection to ${host}:${port} timed out after ${formatDurationMs(timeoutMs)}`));
    });
    socket.once('error', (err) => {
      socket.destroy();
      reject(err);
    });
  });
}

/**
 * A node whose health is `bad` while its keeper reports (within `nodeUnhealthyTimeoutMs`) the
 * same state for {@link SETTLED_MS} is probed every this many rounds (5 s at the default 500 ms
 * interval, pg_auto_failover's `health_check_period`) instead of every round.
 * Its health only counts in a decision when its keeper is silent or says Postgres is stopped
 * (`postgresIsDown`): once the keeper falls silent it is probed every round again, and its
 * health turns `good` at the first probe that succeeds. This spares the monitor a connection
 * attempt every interval to each node it cannot reach while their keepers say they are up.
 */
const BAD_NODE_PROBE_ROUNDS = 10;

/**
 * A node counts as settled for {@link BAD_NODE_PROBE_ROUNDS} once its keeper has reported the
 * same state for this long (ms): a node that is coming back (rejoining, catching up) is probed
 * every round, so that `show state` calls it reachable as soon as it is.
 */
const SETTLED_MS = 10_000;

/** How many probes a round starts at once (see {@link HealthProber.round}). */
const PROBES_PER_SLICE = 50;

/** A node's results before any probe: nothing to merge yet. */
function noProbes(nodeId: number, retries: number): MergedProbes & { error?: string } {
  return { nodeId, reset: false, failures: 0, inRecovery: null, retries };
}

/**
 * `p` with one more probe result merged in (and returned): a success starts the count again and
 * says what it saw of recovery, a failure adds one and keeps its error.
 */
function withResult(p: MergedProbes & { error?: string }, result: ProbeResult): MergedProbes & { error?: string } {
  if (result.ok) {
    p.reset = true;
    p.failures = 0;
    p.inRecovery = result.inRecovery;
    delete p.error;
  } else {
    p.failures++;
    p.error = result.error;
  }
  return p;
}

/** The probing loop. */
export class HealthProber {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Results not written yet, merged per node in the order they came. */
  private pending = new Map<number, MergedProbes & { error?: string }>();
  private writing: Promise<void> | undefined;
  /** When each node's last probe started (`performance.now()` ms). */
  private readonly lastProbeMs = new Map<number, number>();
  /** The time between two rounds (ms): the shortest `healthProbeIntervalMs` of the formations probed, at most the constructor's. */
  private roundIntervalMs: number;
  /** Each node's reported state as the rounds read it, and since when (`performance.now()` ms). */
  private readonly reportedStates = new Map<number, { state: string; sinceMs: number }>();
  /** Each probed node's kept session (see {@link ProbeConnection}). */
  private readonly connections = new Map<number, ProbeConnection>();

  constructor(
    private readonly probes: ProbeRepository,
    private readonly driver: GroupDriver,
    private readonly log: Logger,
    private readonly intervalMs = DEFAULT_FORMATION_SETTINGS.healthProbeIntervalMs,
    /** The CA (PEM) of nodes' Postgres certificates; undefined when the monitor runs without TLS (see {@link probeSsl}). */
    private readonly probeCa?: string,
    /** Called for each failed probe (the `pgha_health_probe_failures_total` counter). */
    private readonly onProbeFailure?: (node: { formationId: string; groupId: number; nodeId: number; name: string }) => void,
  ) {
    this.roundIntervalMs = intervalMs;
  }

  /**
   * Whether this monitor probes a formation's nodes: every formation with its own Postgres
   * store; the formations it leads when monitors share etcd (the leader judges health).
   */
  probesFor: (formationId: string) => boolean = () => true;

  /**
   * Told of each probe that succeeded, with when it started (`Date.now()`, ms): a node whose
   * Postgres answers has not died loudly (`LoudDeathWatch.probeAnswered`).
   */
  onProbeAnswered: ((nodeId: number, startedAtMs: number) => void) | undefined;

  /** Starts probing. */
  start(): void {
    const loop = async (): Promise<void> => {
      if (this.stopped) return;
      const started = Date.now();
      await this.round().catch((err: Error) => this.log.warn({ err: err.message }, 'health probe round failed'));
      if (!this.stopped) this.timer = setTimeout(() => void loop(), Math.max(0, this.roundIntervalMs - (Date.now() - started)));
    };
    void loop();
  }

  /** One round over every node; ends when its results are written. */
  async round(): Promise<void> {
    const nodes = await this.probes.targets(this.probesFor);
    const readAtMs = Date.now();
    // Each formation's nodes are probed every healthProbeIntervalMs of its own: rounds come as
    // often as the shortest asks, and a node is probed in a round once its interval is about over.
    this.roundIntervalMs = Math.min(this.intervalMs, ...nodes.map((n) => n.settings.healthProbeIntervalMs ?? this.intervalMs));
    const probes: Promise<void>[] = [];
    const probed = new Set<number>();
    const started = performance.now();
    for (const [i, n] of nodes.entries()) {
      if (i > 0 && i % PROBES_PER_SLICE === 0) {
        // Spread the round's probes over the first half of the interval, a slice at a time, so
        // that their connections and answers do not all land in one turn of the event loop.
        const at = started + (i / nodes.length) * (this.roundIntervalMs / 2);
        await delay(Math.max(0, at - performance.now()));
        if (this.stopped) break;
      }
      const settings = { ...DEFAULT_FORMATION_SETTINGS, ...n.settings };
      if (n.reportedState === 'init') continue;
      probed.add(n.nodeId);
      const keeperAlive = n.sinceReportMs !== null && n.sinceReportMs <= settings.nodeUnhealthyTimeoutMs;
      const seen = this.reportedStates.get(n.nodeId);
      if (seen?.state !== n.reportedState) this.reportedStates.set(n.nodeId, { state: n.reportedState, sinceMs: started });
      const settled = seen?.state === n.reportedState && started - seen.sinceMs > SETTLED_MS;
      // A `bad` node whose keeper reports, in the same state for a while: its probe decides
      // nothing until the keeper falls silent (see postgresIsDown), so it is probed every
      // BAD_NODE_PROBE_ROUNDS-th of its intervals only.
      const everyMs = settings.healthProbeIntervalMs * (n.health === 'bad' && keeperAlive && settled ? BAD_NODE_PROBE_ROUNDS : 1);
      const last = this.lastProbeMs.get(n.nodeId);
      if (last !== undefined && started - last < everyMs - this.roundIntervalMs / 2) continue;
      this.lastProbeMs.set(n.nodeId, started);
      const startedAtMs = Date.now();
      probes.push(this.connectionOf(n.nodeId, { host: n.host, port: n.port, password: n.monitorProbePassword, ssl: probeSsl(n.postgresSsl, this.probeCa) }).probe(settings.healthProbeTimeoutMs).then((result) => {
        if (!result.ok) this.onProbeFailure?.(n);
        else this.onProbeAnswered?.(n.nodeId, startedAtMs);
        if (this.changesNothing(n, result, settings.healthProbeRetries, readAtMs)) return;
        this.add(n.nodeId, result, settings.healthProbeRetries);
      }));
    }
    // Nodes dropped (or back in init) since the last round: end their sessions.
    for (const nodeId of this.reportedStates.keys()) if (!probed.has(nodeId)) this.reportedStates.delete(nodeId);
    for (const nodeId of this.lastProbeMs.keys()) if (!probed.has(nodeId)) this.lastProbeMs.delete(nodeId);
    for (const [nodeId, c] of this.connections) {
      if (probed.has(nodeId)) continue;
      c.close();
      this.connections.delete(nodeId);
    }
    await Promise.all(probes);
    await this.flush();
  }

  /** The node's kept session; a new one when the node's address, the probe password or its TLS changed. */
  private connectionOf(nodeId: number, target: ProbeTarget): ProbeConnection {
    let c = this.connections.get(nodeId);
    if (c && (c.target.host !== target.host || c.target.port !== target.port || c.target.password !== target.password || Boolean(c.target.ssl) !== Boolean(target.ssl))) {
      c.close();
      c = undefined;
    }
    if (!c) {
      c = new ProbeConnection(target);
      this.connections.set(nodeId, c);
    }
    return c;
  }

  /**
   * Whether a probe result would leave node `n`'s probe state as its target read says it is
   * (`nextHealth`), with no refresh of `healthCheckedAt` due (`mustWriteHealth`): then it is not
   * queued, and the store is not asked (at rest, a round of good nodes costs the store no
   * statement but its targets read). Never for a node with a result queued: that one is merged
   * with it. The targets read is current for the node: a round reads them once the previous
   * round's results are written, and the prober is the only writer of the probe state.
   *
   * @param readAtMs - when the round's targets read ended (`Date.now()`, ms): `checkedAgoMs` is as of about then.
   */
  private changesNothing(n: ProbeTargetRecord, result: ProbeResult, retries: number, readAtMs: number): boolean {
    if (this.pending.has(n.nodeId)) return false;
    const next = nextHealth(n, withResult(noProbes(n.nodeId, retries), result));
    return !mustWriteHealth(n, next, n.checkedAgoMs === null ? null : n.checkedAgoMs + (Date.now() - readAtMs));
  }

  /** Queues one probe result and starts a write if none is under way. */
  private add(nodeId: number, result: ProbeResult, retries: number): void {
    const p = withResult(this.pending.get(nodeId) ?? noProbes(nodeId, retries), result);
    p.retries = retries;
    this.pending.set(nodeId, p);
    if (!this.writing) void this.flush().catch((err: Error) => this.log.warn({ err: err.message }, 'recording health probes failed'));
  }

  /** Writes every pending result (several writes if results keep coming); resolves when none is left. */
  private async flush(): Promise<void> {
    while (this.writing) await this.writing.catch(() => undefined);
    if (this.pending.size === 0) return;
    this.writing = this.write().finally(() => {
      this.writing = undefined;
    });
    await this.writing;
    if (this.pending.size > 0 && !this.stopped) await this.flush();
  }

  /** One write of the pending results, then the evaluations of groups whose health changed. */
  private async write(): Promise<void> {
    // Let the probes that end in this same turn of the event loop join this write.
    await new Promise((r) => setImmediate(r));
    const batch = this.pending;
    this.pending = new Map();
    let outcome: Awaited<ReturnType<ProbeRepository['record']>>;
    try {
      outcome = await this.probes.record([...batch.values()].map(({ error: _error, ...p }) => p));
    } catch (err) {
      this.requeue(batch, [...batch.keys()]);
      throw err;
    }
    this.requeue(batch, outcome.skipped);
    const groups = new Map<string, { formationId: string; groupId: number }>();
    for (const c of outcome.changed) {
      const ok = c.health === 'good';
      this.log.info({ nodeId: c.nodeId, ok, error: ok ? undefined : batch.get(c.nodeId)?.error }, `health of node ${c.nodeId} "${c.name}" is now ${ok ? 'good' : 'bad'}`);
      groups.set(groupKey(c.formationId, c.groupId), { formationId: c.formationId, groupId: c.groupId });
    }
    for (const g of groups.values()) {
      await this.driver.evaluate(g.formationId, g.groupId, 'health').catch((err: Error) => this.log.warn({ err: err.message, formation: g.formationId, group: g.groupId }, 'evaluation after a health change failed'));
    }
  }

  /** Puts results that were not written back in front of any newer ones of the same nodes. */
  private requeue(batch: Map<number, MergedProbes & { error?: string }>, ids: readonly number[]): void {
    for (const id of ids) {
      const old = batch.get(id);
      if (!old) continue;
      const newer = this.pending.get(id);
      if (!newer) {
        this.pending.set(id, old);
      } else if (!newer.reset) {
        // Newer failures continue the older sequence.
        this.pending.set(id, { ...old, failures: old.failures + newer.failures, retries: newer.retries, ...(newer.error ? { error: newer.error } : {}) });
      }
      // A newer success supersedes the older results.
    }
  }

  /** Stops probing. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const c of this.connections.values()) c.close();
    this.connections.clear();
  }
}
