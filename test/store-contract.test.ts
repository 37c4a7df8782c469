/**
 * The store port's contract (store-contract.ts) on the Postgres adapter: a real Postgres 15,
 * configured as the monitor's own, migrated to the latest schema.
 */
import { afterAll } from 'vitest';
import { GoalNotifier } from '@pgha/monitor';
import { describeStoreContract } from './store-contract.js';
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
});

afterAll(async () => {
  await endAllProcesses();
});
