/**
 * The one place that chooses the monitor's store from its configuration (`monitor.json`): its
 * own Postgres (the default, supervised by `monitor-service.ts`) or an etcd store shared with
 * other monitors (`store` in the configuration).
 */
import { socketDirFor } from '@pgha/postgres';
import type { MonitorConfig, MonitorStoreConfig } from '../monitor-config.js';
import type { EtcdConnection } from './etcd/etcd-client.js';
import { openEtcdStore, type EtcdStore } from './etcd/etcd-store.js';
import { readStoreSecrets } from './etcd/store-meta.js';
import type { StoreConnection } from './postgres/db.js';
import { GoalNotifier } from './postgres/goal-notifier.js';
import { openPostgresStore } from './postgres/postgres-store.js';
import type { MonitorStore, StoreNotifier } from './store-port.js';

/**
 * Connections of the running monitor to its own Postgres store. A report holds one for its
 * whole transaction, including the turns of the event loop between its statements and any wait
 * for its group's lock, so with a thousand keepers reporting each second ten are too few:
 * requests queue for a connection while Postgres idles. The monitor's Postgres is its own
 * (max_connections 100).
 */
export const STORE_POOL_SIZE = 32;

/** The connection to the monitor's own Postgres (its Unix socket). */
export function storeConnection(config: Pick<MonitorConfig, 'pgdata' | 'pgPort'>): StoreConnection {
  return { host: socketDirFor(config.pgdata), port: config.pgPort };
}

/** The etcd connection of a configured etcd store. */
export function etcdConnectionOf(store: MonitorStoreConfig): EtcdConnection {
  return { endpoints: store.endpoints, prefix: store.prefix, caFile: store.caFile, certFile: store.certFile, keyFile: store.keyFile };
}

/** The monitor's store, opened. */
export interface OpenedStore {
  store: MonitorStore;
  notifier: StoreNotifier;
  /** The etcd store, when the configuration has one (for leadership: its fence, grace, client and keys). */
  etcd: EtcdStore | undefined;
  /**
   * SHA-256 of the operator token every monitor of the store accepts (etcd: the store's
   * secrets); undefined: the monitor's own `auth-token` file's.
   */
  operatorTokenSha256: string | undefined;
  /** On etcd: the viewer token's digest from the store's secrets (absent in a store made before it); on Postgres: undefined (its file). */
  viewerTokenSha256?: string | undefined;
  /** Stops the notifier and closes the store. */
  close(): Promise<void>;
}

/**
 * Opens the configured store: the monitor's own Postgres (already started), migrated, with its
 * LISTEN notifier; or the etcd store, checked to be the one `monitor.json` recorded.
 *
 * @throws PghaError `PGHA_ERR_STORE_UNAVAILABLE`, `PGHA_ERR_TLS` or `PGHA_ERR_STORE_MISMATCH`
 *   (etcd: see `openEtcdStore`); the Postgres store's errors (a migration that fails).
 */
export async function openConfiguredStore(config: MonitorConfig): Promise<OpenedStore> {
  if (config.store) {
    const conn = etcdConnectionOf(config.store);
    const etcd = await openEtcdStore(conn, { expectedStoreId: config.store.storeId });
    try {
      const secrets = await readStoreSecrets(etcd.client, conn);
      return { store: etcd, notifier: etcd, etcd, operatorTokenSha256: secrets.operatorTokenSha256, viewerTokenSha256: secrets.viewerTokenSha256, close: () => etcd.close() };
    } catch (err) {
      await etcd.close();
      throw err;
    }
  }
  const conn = storeConnection(config);
  const store = openPostgresStore({ ...conn, max: STORE_POOL_SIZE });
  try {
    await store.migrate();
    const notifier = new GoalNotifier(conn);
    await notifier.start();
    return {
      store,
      notifier,
      etcd: undefined,
      operatorTokenSha256: undefined,
      async close() {
        await notifier.stop();
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
