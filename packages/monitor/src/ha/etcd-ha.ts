/**
 * A monitor among several on one etcd: what turns a monitor on the etcd store into one member
 * of a group of monitors, each formation decided by exactly one of them.
 *
 * - {@link FormationLeadership} campaigns for every formation; its fence goes into the store
 *   (every commit of a formation's writes compares the leader key's create revision), the
 *   group driver's timer and the health prober act only for the formations it leads.
 * - When it gains a formation, every node of that formation counts as heard from at that
 *   instant (the new leader never heard their reports, which the old one kept in memory): a
 *   keeper gets a whole `nodeUnhealthyTimeoutMs` to reach the new leader before its silence
 *   counts, as pg_auto_failover's `startup_grace_period` after a monitor restart; a node that is
 *   really dead counts as silent that long after the gain, not later. Nor does the time
 *   before the gain, when its keepers' reports went to the old leader, count as this monitor's
 *   own lag (`MonitorLag.decidesFromNow`).
 * - When its lease is valid again after a lapse (a keepalive answered late, as while etcd
 *   elects a new raft leader: 0.02–4 s on a loaded machine) and it kept its formations, the same
 *   grace starts again: meanwhile it answered every keeper 503, or held their reports while etcd
 *   did not answer, so what it missed is no silence of theirs. Without it a switchover asked for
 *   just after was refused, its primary taken for unhealthy (`keeperIsAlive`).
 * - `pgha show monitors` lists every monitor registered in the store (each asked for its own
 *   row) and every etcd member (status asked of each).
 *
 * Source: Patroni's HA loop, which runs only on the member holding `/leader`; pg_auto_failover's
 * `startup_grace_period`.
 */
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import { MonitorClient } from '@pgha/client';
import { formatDurationMs, type EtcdMemberRow, type MonitorRow, type MonitorsView } from '@pgha/shared';
import type { GroupDriver } from '../driver/group-driver.js';
import type { HealthProber } from '../prober/health-prober.js';
import { SELF_TIMEOUT_MS, type MonitorsProvider } from '../routes/monitors.js';
import { openEtcdClient, type EtcdConnection } from '../store/etcd/etcd-client.js';
import type { EtcdFence } from '../store/etcd/etcd-transaction.js';
import type { StoreKeys } from '../store/etcd/keys.js';
import { FormationLeadership } from './leadership.js';

/** What the leadership needs of the etcd store. */
export interface EtcdStoreHandle {
  readonly client: Etcd3;
  readonly keys: StoreKeys;
  setFence(fence: EtcdFence | undefined): void;
  /** Every node of `formationId` counts as heard from at `nowMs` (ms since the epoch) at the latest. */
  startGrace(formationId: string, nowMs: number): void;
}

/** Options of {@link startEtcdHa}. */
export interface EtcdHaOptions {
  store: EtcdStoreHandle;
  /** Where the store is (a status request goes to each etcd member with its TLS files). */
  connection: EtcdConnection;
  driver: GroupDriver;
  prober: HealthProber;
  /** This monitor's id (unique among the store's monitors) and API URL. */
  monitorId: string;
  url: string;
  /** The CA (PEM) of the monitors' HTTPS certificates; none over plain HTTP. */
  ca?: string;
  /** Lease TTL, seconds (default {@link DEFAULT_LEASE_TTL_S}). */
  ttlS?: number;
  log: Logger;
}

/** A monitor's part in the group: its leadership, what `pgha show monitors` reads, and stop. */
export interface EtcdHa {
  leadership: FormationLeadership;
  monitors: MonitorsProvider;
  /** Gives up every formation and revokes the lease (another monitor takes over at once). */
  stop(): Promise<void>;
}

/**
 * Starts campaigning and wires the leadership into the store's fence, the driver and the
 * prober (see the module).
 *
 * @throws the etcd client's error when etcd cannot be reached.
 */
export async function startEtcdHa(options: EtcdHaOptions): Promise<EtcdHa> {
  const { store, driver, prober, log } = options;
  const leadership = new FormationLeadership({
    client: store.client,
    prefix: store.keys.prefix,
    monitorId: options.monitorId,
    url: options.url,
    ...(options.ttlS !== undefined ? { ttlS: options.ttlS } : {}),
    log,
  });
  store.setFence((formation) => leadership.fence(formation));
  driver.decidesFor = (formation) => leadership.isLeader(formation);
  prober.probesFor = (formation) => leadership.isLeader(formation);
  leadership.on('gained', (formation) => {
    store.startGrace(formation, Date.now());
    driver.lag.decidesFromNow();
    log.info({ formation }, `counts every node of formation "${formation}" as heard from now (the grace of a new leader)`);
  });
  leadership.on('resumed', (formations, lapsedMs) => {
    const nowMs = Date.now();
    for (const formation of formations) store.startGrace(formation, nowMs);
    log.info({ formations }, `its etcd lease is valid again after ${formatDurationMs(lapsedMs)} without: counts every node of the ${formations.length} formation(s) it still leads as heard from now (it did not hear their keepers meanwhile)`);
  });
  await leadership.start();
  return {
    leadership,
    monitors: etcdMonitorsProvider({ client: store.client, keys: store.keys, connection: options.connection }, leadership, options.ca),
    async stop() {
      await leadership.stop();
      store.setFence(undefined);
    },
  };
}

/** This monitor's own row. */
function selfRow(leadership: FormationLeadership): MonitorRow {
  return {
    monitor_id: leadership.monitorId,
    url: leadership.url,
    reachable: true,
    error: null,
    leads: leadership.ledFormations().map((l) => ({ formation: l.formation, term: l.term })),
    lease_left_ms: leadership.leaseLeftMs(),
    store: 'etcd',
  };
}

/**
 * The monitors and etcd members of the store, for `GET /v1/monitors`: every monitor registered
 * under `<prefix>/v1/monitors/` (alive while its lease lives) asked for its own row with the
 * caller's token; every member of the etcd cluster asked for its status.
 */
export function etcdMonitorsProvider(store: Pick<EtcdStoreHandle, 'client' | 'keys'> & { connection: EtcdConnection }, leadership: FormationLeadership, ca?: string): MonitorsProvider {
  const self = async (): Promise<MonitorRow> => selfRow(leadership);
  const otherRow = async (monitorId: string, url: string, token: string | undefined): Promise<MonitorRow> => {
    const client = new MonitorClient(url, { token, ca });
    try {
      return await client.monitorSelf(SELF_TIMEOUT_MS);
    } catch (err) {
      return { monitor_id: monitorId, url, reachable: false, error: (err as Error).message, leads: [], lease_left_ms: null, store: 'etcd' };
    } finally {
      await client.close();
    }
  };
  return {
    self,
    async all(token?: string): Promise<MonitorsView> {
      const registered = await store.client.getAll().prefix(store.keys.monitors).exec();
      const monitors = await Promise.all(
        registered.kvs.map(async (kv) => {
          const monitorId = decodeURIComponent(kv.key.toString().slice(store.keys.monitors.length));
          if (monitorId === leadership.monitorId) return selfRow(leadership);
          const { url } = JSON.parse(kv.value.toString()) as { url: string };
          return otherRow(monitorId, url, token);
        }),
      );
      if (!monitors.some((m) => m.monitor_id === leadership.monitorId)) monitors.push(selfRow(leadership));
      monitors.sort((a, b) => (a.monitor_id < b.monitor_id ? -1 : a.monitor_id > b.monitor_id ? 1 : 0));
      return { monitors, etcd: await etcdMembers(store) };
    },
  };
}

/** Every member of the etcd cluster, with the status each gave (asked of each, at once). */
async function etcdMembers(store: Pick<EtcdStoreHandle, 'client'> & { connection: EtcdConnection }): Promise<EtcdMemberRow[]> {
  const list = await store.client.cluster.memberList({});
  return Promise.all(
    list.members.map(async (m): Promise<EtcdMemberRow> => {
      const id = BigInt(m.ID).toString(16);
      const clientUrls = m.clientURLs ?? [];
      const row: EtcdMemberRow = { name: m.name, id, client_urls: clientUrls, healthy: false, leader: false, db_size_bytes: null, error: null };
      if (clientUrls.length === 0) return { ...row, error: 'not started yet (no client URL)' };
      const memberClient = openEtcdClient({ ...store.connection, endpoints: clientUrls.map((u) => new URL(u).host) }, { callTimeoutMs: SELF_TIMEOUT_MS });
      try {
        const status = await memberClient.maintenance.status();
        return { ...row, healthy: true, leader: status.leader === m.ID, db_size_bytes: Number(status.dbSize) };
      } catch (err) {
        return { ...row, error: (err as Error).message.split('\n')[0]! };
      } finally {
        memberClient.close();
      }
    }),
  );
}
