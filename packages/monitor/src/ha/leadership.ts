/**
 * Leadership of formations among monitors sharing one etcd: each formation has one leader, the
 * only monitor that decides for it (its group state machine, its prober, its timer). Every
 * monitor campaigns for every formation of the store; the leader holds the formation's leader
 * key (`<prefix>/v1/leaders/<formation>`) under the monitor's lease, and loses it when the lease
 * expires (a monitor killed, paused, or cut off from etcd stops renewing it).
 *
 * The leader key's create revision is the leader's **fencing token** (and its term): the store
 * adds `createRevision(leaderKey) == token` to every commit of the formation's writes
 * ({@link FormationLeadership.fence}), so a monitor that lost the key can write nothing,
 * whatever its clock says. Its clock only decides when it stops *trying*: it counts itself
 * leader until the lease could have expired (the last keepalive sent before an answer, plus the
 * TTL, minus {@link LEASE_SAFETY_MARGIN_MS}), and answers 503 from then on.
 *
 * Source: etcd's `concurrency.Election` (campaign by creating a key with a lease; the key's
 * create revision orders candidates) and Patroni's leader key (`/leader` with a TTL), with one
 * key per formation so that several monitors share the work of many formations.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3, Lease, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { PghaError, formatDurationMs } from '@pgha/shared';
import { StoreKeys } from '../store/etcd/keys.js';

/** Default TTL of a monitor's lease, in seconds: how long a dead leader keeps its formations. */
export const DEFAULT_LEASE_TTL_S = 2;

/**
 * How much earlier than the lease's possible expiry a monitor stops counting itself leader, in
 * ms: the time a keepalive may take to reach etcd. The store's fence, not this margin, is what
 * makes a stale leader's writes fail.
 */
export const LEASE_SAFETY_MARGIN_MS = 250;

/** What the leader key holds. */
export interface LeaderValue {
  monitorId: string;
  /** The monitor's API URL (`https://HOST:PORT`): where other monitors forward to. */
  url: string;
  /** When it became leader (its clock, ms since the epoch). */
  sinceMs: number;
}

/** Who leads a formation, as this monitor last saw it. */
export interface FormationLeader extends LeaderValue {
  /** The leader key's create revision: the fencing token and term. */
  term: string;
}

/** Options of {@link FormationLeadership}. */
export interface LeadershipOptions {
  client: Etcd3;
  /** Key prefix of the store, e.g. `/pgha`. */
  prefix: string;
  monitorId: string;
  url: string;
  /** Lease TTL, seconds (default {@link DEFAULT_LEASE_TTL_S}). */
  ttlS?: number;
  log: Logger;
  /** The clock, ms since the epoch (tests). */
  now?: () => number;
}

/** Events of {@link FormationLeadership}. */
export interface LeadershipEvents {
  /** This monitor became the leader of `formation` (term: its fencing token). */
  gained: [formation: string, term: string];
  /** This monitor is no longer the leader of `formation`. */
  lost: [formation: string, reason: string];
  /**
   * This monitor's lease is valid again after it could not count on it for `lapsedMs` (a
   * keepalive answered late: etcd electing a new raft leader, a slow network), and it still
   * leads `formations`: its leader keys never went, but it answered 503 to every request
   * meanwhile (`refuseWithoutLease`), so it heard no keeper of them.
   */
  resumed: [formations: string[], lapsedMs: number];
}

/** The leader key of a formation (`StoreKeys.leader`: the one definition of the key layout). */
export function leaderKey(prefix: string, formation: string): string {
  return new StoreKeys(prefix).leader(formation);
}

/** The key of a formation's record (`StoreKeys.formation`). */
export function formationKey(prefix: string, formation: string): string {
  return new StoreKeys(prefix).formation(formation);
}

/** The key of a running monitor's registration, under its lease (`StoreKeys.monitor`). */
export function monitorKey(prefix: string, monitorId: string): string {
  return new StoreKeys(prefix).monitor(monitorId);
}

/**
 * Campaigns for every formation of the store and keeps the leadership of those it wins while
 * its lease lives. Emits `gained`, `lost` and `resumed`.
 */
export class FormationLeadership extends EventEmitter<LeadershipEvents> {
  private readonly client: Etcd3;
  private readonly keys: StoreKeys;
  readonly monitorId: string;
  readonly url: string;
  readonly ttlS: number;
  private readonly log: Logger;
  private readonly now: () => number;
  private lease: Lease | undefined;
  private leaseId: string | undefined;
  /** Until when this monitor may count on its lease (ms): last keepalive sent before an answer + TTL − margin. */
  private validUntilMs = 0;
  private lastKeepaliveFiredMs = 0;
  /** Formations this monitor leads, with their fencing token. */
  private readonly led = new Map<string, FormationLeader>();
  /** Every formation's leader as last seen. */
  private readonly leaders = new Map<string, FormationLeader>();
  private readonly formations = new Set<string>();
  private watchers: Watcher[] = [];
  private stopped = false;
  private restarting: Promise<void> | undefined;

  constructor(options: LeadershipOptions) {
    super();
    this.client = options.client;
    this.keys = new StoreKeys(options.prefix);
    this.monitorId = options.monitorId;
    this.url = options.url;
    this.ttlS = options.ttlS ?? DEFAULT_LEASE_TTL_S;
    this.log = options.log;
    this.now = options.now ?? Date.now;
  }

  /**
   * Grants the lease, registers this monitor, watches formations and leader keys, and
   * campaigns for every formation.
   *
   * @throws the etcd client's error when etcd cannot be reached.
   */
  async start(): Promise<void> {
    await this.grantLease();
    const keys = this.keys;
    this.watchers.push(await this.client.watch().prefix(keys.leaders).create(), await this.client.watch().prefix(keys.formations).create());
    const [leadersWatch, formationsWatch] = this.watchers as [Watcher, Watcher];
    const onLeader = (key: string, f: (formation: string) => void): void => {
      const formation = keys.parseLeader(key);
      if (formation !== undefined) f(formation);
    };
    const onFormation = (key: string, f: (formation: string) => void): void => {
      const formation = keys.parseFormation(key);
      if (formation !== undefined) f(formation);
    };
    leadersWatch.on('put', (kv) => onLeader(kv.key.toString(), (f) => this.sawLeader(f, kv.value.toString(), kv.create_revision)));
    leadersWatch.on('delete', (kv) => onLeader(kv.key.toString(), (f) => void this.leaderGone(f)));
    formationsWatch.on('put', (kv) => onFormation(kv.key.toString(), (f) => void this.sawFormation(f)));
    formationsWatch.on('delete', (kv) => onFormation(kv.key.toString(), (f) => this.formationGone(f)));
    const existing = await this.client.getAll().prefix(keys.leaders).exec();
    for (const kv of existing.kvs) onLeader(kv.key.toString(), (f) => this.sawLeader(f, kv.value.toString(), kv.create_revision));
    const names = await this.client.getAll().prefix(keys.formations).keys();
    for (const key of names) {
      const formation = keys.parseFormation(key);
      if (formation !== undefined) await this.sawFormation(formation);
    }
  }

  private async grantLease(): Promise<void> {
    const lease = this.client.lease(this.ttlS, { autoKeepAlive: true });
    this.lease = lease;
    lease.on('keepaliveFired', () => {
      this.lastKeepaliveFiredMs = this.now();
    });
    lease.on('keepaliveSucceeded', () => {
      const lapsedMs = this.now() - this.validUntilMs;
      this.validUntilMs = this.lastKeepaliveFiredMs + this.ttlS * 1000 - LEASE_SAFETY_MARGIN_MS;
      if (lapsedMs > 0 && this.leaseValid() && this.led.size > 0 && this.lease === lease && !this.stopped) {
        this.emit('resumed', [...this.led.keys()], lapsedMs);
      }
    });
    lease.on('lost', (err) => {
      if (this.lease !== lease || this.stopped) return;
      this.log.warn(`lost the monitor's etcd lease (${err.message}): every formation it led is given up`);
      this.giveUpAll('its etcd lease was lost');
      void this.restart();
    });
    const grantedAt = this.now();
    this.leaseId = await lease.grant();
    this.validUntilMs = grantedAt + this.ttlS * 1000 - LEASE_SAFETY_MARGIN_MS;
    await lease.put(this.keys.monitor(this.monitorId)).value(JSON.stringify({ url: this.url, startedAtMs: this.now(), leaseTtlS: this.ttlS }));
  }

  /** A new lease after the last one was lost, and a new campaign for every formation. */
  private restart(): Promise<void> {
    this.restarting ??= (async () => {
      for (let attempt = 0; !this.stopped; attempt++) {
        try {
          await this.grantLease();
          for (const f of this.formations) await this.campaign(f);
          this.log.info('has a new etcd lease: campaigning for every formation again');
          return;
        } catch (err) {
          if (attempt === 0) this.log.warn(`cannot get a new etcd lease yet (${(err as Error).message}): retrying`);
          await new Promise((r) => setTimeout(r, Math.min(1000, 100 * (attempt + 1))));
        }
      }
    })().finally(() => {
      this.restarting = undefined;
    });
    return this.restarting;
  }

  /** True while this monitor may count on its lease (it answers 503 otherwise). */
  leaseValid(): boolean {
    return this.now() < this.validUntilMs;
  }

  /** How long, in ms, this monitor may still count on its lease (0 when it may not). */
  leaseLeftMs(): number {
    return Math.max(0, this.validUntilMs - this.now());
  }

  /** True when this monitor leads `formation` now (holds its key, and its lease may be alive). */
  isLeader(formation: string): boolean {
    return this.led.has(formation) && this.leaseValid();
  }

  /** The formations this monitor leads, with their terms, by name. */
  ledFormations(): (FormationLeader & { formation: string })[] {
    if (!this.leaseValid()) return [];
    return [...this.led.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([formation, l]) => ({ ...l, formation }));
  }

  /** Who leads `formation`, as last seen (this monitor, another, or nobody yet). */
  leaderOf(formation: string): FormationLeader | undefined {
    return this.leaders.get(formation);
  }

  /**
   * The store's fence for a commit of `formation`'s writes: its leader key must still have the
   * create revision this monitor's term started with.
   *
   * @throws PghaError `PGHA_ERR_NOT_LEADER` when this monitor does not lead it (the API answers
   *   503 and names the leader).
   */
  fence(formation: string): { key: string; createRevision: string } {
    const led = this.led.get(formation);
    if (!led || !this.leaseValid()) {
      const leader = this.leaders.get(formation);
      throw new PghaError('PGHA_ERR_NOT_LEADER', `this monitor (${this.monitorId}) does not lead formation "${formation}"`, {
        hint: leader && leader.monitorId !== this.monitorId ? `its leader is ${leader.monitorId} at ${leader.url}` : 'no monitor leads it yet; retry in a moment',
      });
    }
    return { key: this.keys.leader(formation), createRevision: led.term };
  }

  private sawLeader(formation: string, value: string, createRevision: string): void {
    let parsed: LeaderValue;
    try {
      parsed = JSON.parse(value) as LeaderValue;
    } catch {
      return;
    }
    const leader: FormationLeader = { ...parsed, term: createRevision };
    this.leaders.set(formation, leader);
    const mine = this.led.get(formation);
    if (mine && mine.term !== createRevision) this.giveUp(formation, `monitor ${leader.monitorId} leads it (term ${createRevision})`);
  }

  private async leaderGone(formation: string): Promise<void> {
    this.leaders.delete(formation);
    if (this.led.has(formation)) this.giveUp(formation, 'its leader key is gone (the lease expired)');
    if (this.formations.has(formation)) await this.campaign(formation);
  }

  private async sawFormation(formation: string): Promise<void> {
    if (this.formations.has(formation)) return;
    this.formations.add(formation);
    await this.campaign(formation);
  }

  private formationGone(formation: string): void {
    this.formations.delete(formation);
    if (this.led.has(formation)) {
      this.giveUp(formation, 'the formation was dropped');
      void this.client.delete().key(this.keys.leader(formation)).catch(() => undefined);
    }
  }

  /**
   * Creates the formation's leader key under this monitor's lease unless it exists (one Txn:
   * `createRevision(key) == 0` → put); the winner's term is the key's create revision, the Txn's
   * revision. Never throws: a failed campaign waits for the next change of the key.
   */
  private async campaign(formation: string): Promise<void> {
    if (this.stopped || !this.leaseId || this.led.has(formation)) return;
    const key = this.keys.leader(formation);
    const value: LeaderValue = { monitorId: this.monitorId, url: this.url, sinceMs: this.now() };
    try {
      const res = await this.client
        .if(key, 'Create', '==', 0)
        .then(this.client.put(key).value(JSON.stringify(value)).lease(this.leaseId))
        .commit();
      if (!res.succeeded) return;
      const term = res.header.revision;
      const leader: FormationLeader = { ...value, term };
      this.leaders.set(formation, leader);
      this.led.set(formation, leader);
      this.log.info({ formation, term }, `leads formation "${formation}" (term ${term})`);
      this.emit('gained', formation, term);
    } catch (err) {
      this.log.warn({ formation }, `campaign for formation "${formation}" failed: ${(err as Error).message}`);
    }
  }

  private giveUp(formation: string, reason: string): void {
    const led = this.led.get(formation);
    if (!led) return;
    this.led.delete(formation);
    this.log.warn({ formation, term: led.term }, `lost the leadership of formation "${formation}" (term ${led.term}): ${reason}; it decides nothing for it from now on`);
    this.emit('lost', formation, reason);
  }

  private giveUpAll(reason: string): void {
    for (const f of [...this.led.keys()]) this.giveUp(f, reason);
  }

  /**
   * Gives up every formation and revokes the lease (the leader keys go at once, so that
   * another monitor takes over without waiting for the TTL), then stops watching.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.giveUpAll('the monitor stops');
    await Promise.all(this.watchers.map((w) => w.cancel().catch(() => undefined)));
    this.watchers = [];
    await this.lease?.revoke().catch(() => undefined);
  }

  /**
   * Stops renewing the lease without revoking it, as a monitor that died would: its leader keys
   * stay until the TTL runs out. For a monitor that must stop at once on a fatal error, and for
   * tests of a leader's death.
   */
  abandonLease(): void {
    this.stopped = true;
    this.giveUpAll('the monitor abandoned its lease');
    this.lease?.release();
  }

  /** For logs and `pgha show monitors`: the lease's state. */
  describeLease(): string {
    return this.leaseValid() ? `lease ${this.leaseId} valid for ${formatDurationMs(this.leaseLeftMs())}` : 'no valid lease';
  }
}
