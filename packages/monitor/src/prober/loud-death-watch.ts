/**
 * A loud death: every process of a node killed while its host stays up (a SIGKILL of the
 * keeper and the postmaster, an OOM kill of both, a crash of the service manager's unit).
 * The kernel closes the dead processes' sockets at once, so the monitor learns of it within
 * a millisecond, where keeper silence takes `nodeUnhealthyTimeoutMs` (2 s). The rule and its
 * witnesses are in docs/timeouts.md, "A loud death"; in short:
 *
 * 1. the keeper's connections to this monitor were all closed by the keeper's side (a FIN or a
 *    reset received; a connection this monitor closes itself, at its own shutdown or a
 *    keep-alive timeout, does not count), with no request of the keeper since;
 * 2. then the node's keeper HTTP port (its registered `httpAddress`) and its Postgres port both
 *    refuse a TCP connection (ECONNREFUSED: the host answered, nothing listens), in two rounds
 *    {@link LOUD_DEATH_CONFIRM_MS} apart. A timeout or any other error proves nothing (a silent
 *    death keeps the usual path). The rounds go on every {@link LOUD_DEATH_CONFIRM_MS} until
 *    the keeper comes back or `nodeUnhealthyTimeoutMs` has passed since the close, so that the
 *    order in which the processes die does not matter.
 *
 * The node then counts as died loudly (`NodeFacts.diedLoudlyMs`, a fact in this monitor's
 * memory) until its keeper is heard again (any request of it) or a probe of its Postgres
 * succeeds; its group is evaluated at once, and the goal long-polls of the group's other
 * keepers are answered at once, so that their keepers report now (a standby's report says
 * whether its WAL receiver still streams: the third witness of a failover, `primaryHasFailed`).
 *
 * Only the formations this monitor decides for (`GroupDriver.decidesFor`) are watched: with
 * monitors on etcd, a keeper's connections to the formation's leader. A keeper that talks to
 * another monitor (its reports forwarded to the leader) gives the leader no connection to
 * watch, and its node's death is noticed the usual way.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { NotFoundError, formatDurationMs, formatHostPort, parseHostPort } from '@pgha/shared';
import { delay } from '@pgha/postgres';
import type { ReportNudges } from '../report-nudges.js';
import type { MonitorStore } from '../store/store-port.js';
import { formationSettings } from '../store/group-facts.js';
import { tcpConnect } from './health-prober.js';

/**
 * The time between two rounds of connection attempts to a node whose keeper's connections
 * closed, in ms. Two rounds in a row in which both ports refuse make a loud death: a keeper
 * restarted by its service manager, or a Postgres restarting in place, listens again within
 * this much less often than both are down for this long.
 */
export const LOUD_DEATH_CONFIRM_MS = 100;

/** What the watch needs to know of a node, read when its keeper's last connection closed. */
export interface LoudDeathTarget {
  nodeId: number;
  name: string;
  formationId: string;
  groupId: number;
  /** Where its Postgres listens. */
  host: string;
  port: number;
  /** `HOST:PORT` of its keeper's HTTP server; null for a node registered without one (not watched). */
  httpAddress: string | null;
  /** The other nodes of its group (their keepers are asked to report at once). */
  peerNodeIds: readonly number[];
  /** The formation's `nodeUnhealthyTimeoutMs` (how long the watch lasts) and `healthProbeTimeoutMs` (one attempt's limit), ms. */
  nodeUnhealthyTimeoutMs: number;
  healthProbeTimeoutMs: number;
}

/** What {@link LoudDeathWatch} is given. */
export interface LoudDeathWatchOptions {
  /** The node's target; undefined for a node that no longer exists. */
  target(nodeId: number): Promise<LoudDeathTarget | undefined>;
  /** Whether this monitor decides for the formation (`GroupDriver.decidesFor`). */
  decidesFor(formationId: string): boolean;
  /** Evaluates the node's group at once (`GroupDriver.evaluate`); its errors are logged. */
  evaluate(formationId: string, groupId: number): Promise<unknown>;
  log: Logger;
  /** Where the watch asks the other keepers of a dead node's group to report at once. */
  nudges: ReportNudges;
  /** Whether a port refuses connections (the default: {@link portRefuses}); tests give their own. */
  portRefuses?: (host: string, port: number, timeoutMs: number) => Promise<boolean>;
}

/**
 * Whether `host:port` refuses a TCP connection (ECONNREFUSED). False when it accepts, times out
 * after `timeoutMs`, or fails in any other way (unreachable, no route): none of those proves
 * that nothing listens.
 */
export async function portRefuses(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return tcpConnect(host, port, timeoutMs).then(
    () => false,
    (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED',
  );
}

/** Watches keepers' connections and holds the loud deaths seen (see the module). */
export class LoudDeathWatch {
  /** Each node's open keeper connections (those on which its keeper made a request). */
  private readonly sockets = new Map<number, Set<Socket>>();
  /** The node each watched socket belongs to. */
  private readonly owners = new WeakMap<Socket, number>();
  /** When each node's keeper last made a request (`performance.now()`, ms). */
  private readonly lastRequestMs = new Map<number, number>();
  /** Nodes being watched now. */
  private readonly watching = new Set<number>();
  /** Loud deaths: node id → when (`Date.now()`, ms). */
  private readonly deaths = new Map<number, number>();
  private stopped = false;
  private readonly refuses: (host: string, port: number, timeoutMs: number) => Promise<boolean>;

  constructor(private readonly options: LoudDeathWatchOptions) {
    this.refuses = options.portRefuses ?? portRefuses;
  }

  /**
   * A request of node `nodeId`'s keeper arrived on `socket` (its report or goal long-poll, not
   * a request another monitor forwarded): the keeper lives, so a loud death of its node no
   * longer counts, and the socket is watched.
   */
  keeperRequest(nodeId: number, socket: Socket): void {
    this.lastRequestMs.set(nodeId, performance.now());
    if (this.deaths.delete(nodeId)) this.options.log.info({ nodeId }, `node ${nodeId}'s keeper is heard again: its loud death no longer counts`);
    if (this.owners.has(socket) || socket.destroyed) return;
    this.owners.set(socket, nodeId);
    const open = this.sockets.get(nodeId) ?? new Set();
    open.add(socket);
    this.sockets.set(nodeId, open);
    // The keeper's side ended it: a FIN before this monitor ended its own side, or a reset.
    // Before the HTTP server's own listener, which ends this side in answer to the FIN.
    socket.prependOnceListener('end', () => {
      if (!socket.writableEnded) this.closedByKeeper(nodeId, socket);
    });
    socket.once('error', () => this.closedByKeeper(nodeId, socket));
    socket.once('close', () => this.forget(nodeId, socket));
  }

  /** When node `nodeId` died loudly (`Date.now()`, ms; `NodeFacts.diedLoudlyMs`); null when it did not, or its keeper was heard since. */
  diedLoudlyMs(nodeId: number): number | null {
    return this.deaths.get(nodeId) ?? null;
  }

  /** A probe of node `nodeId`'s Postgres that started at `startedAtMs` (`Date.now()`, ms) succeeded: its loud death, if older, no longer counts. */
  probeAnswered(nodeId: number, startedAtMs: number): void {
    const at = this.deaths.get(nodeId);
    if (at === undefined || at > startedAtMs) return;
    this.deaths.delete(nodeId);
    this.options.log.info({ nodeId }, `node ${nodeId}'s Postgres answers the probe again: its loud death no longer counts`);
  }

  /** Stops watching (the monitor stops: the connections it closes are not deaths). */
  stop(): void {
    this.stopped = true;
  }

  /** Forgets a socket that closed, whoever closed it. */
  private forget(nodeId: number, socket: Socket): void {
    const open = this.sockets.get(nodeId);
    if (!open?.delete(socket)) return;
    if (open.size === 0) this.sockets.delete(nodeId);
  }

  /** The keeper's side closed `socket`: when it was its last one, watch the node. */
  private closedByKeeper(nodeId: number, socket: Socket): void {
    const open = this.sockets.get(nodeId);
    if (!open?.has(socket)) return;
    this.forget(nodeId, socket);
    if (this.stopped || this.sockets.has(nodeId)) return;
    void this.watch(nodeId, performance.now()).catch((err: Error) => this.options.log.warn({ nodeId, err: err.message }, 'watching for a loud death failed'));
  }

  /** The keeper has come back since `sinceMs` (`performance.now()`): a request, or an open connection. */
  private keeperBack(nodeId: number, sinceMs: number): boolean {
    return this.sockets.has(nodeId) || (this.lastRequestMs.get(nodeId) ?? -Infinity) > sinceMs;
  }

  /** Connection attempts to both ports of the node until they make a loud death, the keeper comes back, or the watch's time is up. */
  private async watch(nodeId: number, closedAtMs: number): Promise<void> {
    if (this.watching.has(nodeId)) return;
    this.watching.add(nodeId);
    try {
      const target = await this.options.target(nodeId);
      if (!target || !this.options.decidesFor(target.formationId)) return;
      const keeper = target.httpAddress === null ? undefined : parseHostPort(target.httpAddress);
      if (!keeper) return;
      const notLoud = (why: string): void =>
        this.options.log.info({ nodeId }, `node ${nodeId} "${target.name}": its keeper's connections closed, not a loud death: ${why}`);
      let refusedRounds = 0;
      let last = '';
      while (refusedRounds < 2) {
        if (this.stopped) return;
        if (this.keeperBack(nodeId, closedAtMs)) return notLoud(`its keeper came back after ${formatDurationMs(Math.round(performance.now() - closedAtMs))}${last}`);
        const [postgres, keeperPort] = await Promise.all([
          this.refuses(target.host, target.port, target.healthProbeTimeoutMs),
          this.refuses(keeper.host, keeper.port, target.healthProbeTimeoutMs),
        ]);
        refusedRounds = postgres && keeperPort ? refusedRounds + 1 : 0;
        if (refusedRounds >= 2) break;
        last = `; its keeper's port ${keeperPort ? 'refused' : 'did not refuse'} and its Postgres's ${postgres ? 'refused' : 'did not refuse'} last`;
        if (performance.now() + LOUD_DEATH_CONFIRM_MS - closedAtMs > target.nodeUnhealthyTimeoutMs) return notLoud(`not both ports refusing twice within ${formatDurationMs(target.nodeUnhealthyTimeoutMs)}${last}`);
        await delay(LOUD_DEATH_CONFIRM_MS);
      }
      if (this.stopped) return;
      if (this.keeperBack(nodeId, closedAtMs)) return notLoud('its keeper came back');
      this.deaths.set(nodeId, Date.now());
      this.options.log.warn(
        { nodeId, formation: target.formationId, group: target.groupId },
        `node ${nodeId} "${target.name}" died loudly: its keeper's connections closed ${formatDurationMs(Math.round(performance.now() - closedAtMs))} ago, and its keeper (${target.httpAddress}) and its Postgres (${formatHostPort(target.host, target.port)}) refuse connections, twice ${formatDurationMs(LOUD_DEATH_CONFIRM_MS)} apart`,
      );
      // The other keepers report now: a standby says whether it still streams from the node.
      for (const peer of target.peerNodeIds) this.options.nudges.ask(peer);
      await this.options.evaluate(target.formationId, target.groupId);
    } finally {
      this.watching.delete(nodeId);
    }
  }
}

/**
 * What the loud-death watch needs of node `nodeId` (`LoudDeathTarget`), read from the store
 * when its keeper's last connection closed; undefined for a node that no longer exists.
 *
 * @throws the store's errors.
 */
export async function readLoudDeathTarget(store: MonitorStore, nodeId: number): Promise<LoudDeathTarget | undefined> {
  try {
    const node = await store.nodes.get(nodeId);
    const [formation, group] = await Promise.all([store.formations.get(node.formationId), store.nodes.list(node.formationId, { groupId: node.groupId })]);
    const settings = formationSettings(formation);
    return {
      nodeId,
      name: node.name,
      formationId: node.formationId,
      groupId: node.groupId,
      host: node.host,
      port: node.port,
      httpAddress: node.httpAddress,
      peerNodeIds: group.map((n) => n.nodeId).filter((id) => id !== nodeId),
      nodeUnhealthyTimeoutMs: settings.nodeUnhealthyTimeoutMs,
      healthProbeTimeoutMs: settings.healthProbeTimeoutMs,
    };
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}
