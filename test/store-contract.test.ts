/**
 * The store port's contract (store-contract.ts) on both adapters: the Postgres adapter on a
 * real Postgres 15, configured as the monitor's own and migrated to the latest schema; the etcd
 * adapter on a real etcd (one member), in a store made by `initEtcdStore`, with its fence.
 */
import { afterAll } from 'vitest';
import { GoalNotifier, initEtcdStore, openEtcdStore, type EtcdConnection } from '@pgha/monitor';
import { describeStoreContract } from './store-contract.js';
import { startEtcd } from './helpers/etcd.js';
import { endAllProcesses } from './helpers/processes.js';
import { startStore } from './helpers/store.js';

describeStoreContract('Postgres', async () => {
  const running = await startStore();
  await running.store.migrate();
  const notifier = new GoalNotifier(running.conn);
  await notifier.start();
  return {
    store: running.store,
    notifier,
    async stop() {
      await notifier.stop();
      await running.stop();
    },
  };
}, { heartbeats: { whileLocked: 'wait' } });

describeStoreContract(
  'etcd',
  async () => {
    const etcd = await startEtcd();
    const conn: EtcdConnection = { endpoints: etcd.endpoints, prefix: '/contract' };
    const { meta } = await initEtcdStore(conn, { join: false, secrets: { operatorTokenSha256: '0'.repeat(64) } });
    const store = await openEtcdStore(conn, { expectedStoreId: meta.storeId });
    /** The fencing token of each formation this test leads. */
    const terms = new Map<string, string>();
    const takeLeaderKey = async (formationId: string): Promise<string> => {
      const res = await store.client.put(store.keys.leader(formationId)).value(JSON.stringify({ monitorId: 'contract', url: 'https://127.0.0.1:1', sinceMs: Date.now() }));
      return res.header.revision;
    };
    return {
      store,
      notifier: store,
      fencing: {
        async lead(formationId) {
          await store.client.delete().key(store.keys.leader(formationId));
          terms.set(formationId, await takeLeaderKey(formationId));
          store.setFence((f) => (terms.has(f) ? { key: store.keys.leader(f), createRevision: terms.get(f)! } : undefined));
        },
        async loseTo(formationId) {
          await store.client.delete().key(store.keys.leader(formationId));
          await takeLeaderKey(formationId);
        },
        clear() {
          terms.clear();
          store.setFence(undefined);
        },
      },
      async stop() {
        await store.close();
        await etcd.stop();
      },
    };
  },
  { fenced: true, heartbeats: { whileLocked: 'leave-out' } },
);

afterAll(async () => {
  await endAllProcesses();
});
