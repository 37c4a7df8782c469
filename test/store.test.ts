/**
 * The monitor's store on a real Postgres: migrations up from empty, down, up again; a node
 * registered through the driver gets its goal and an event row in the same transaction; reports
 * arriving together share a transaction. (The port's guarantees: store-contract.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Migrator, NO_MIGRATIONS, type Kysely } from 'kysely';
import { MIGRATIONS, migrationProvider } from '@pgha/migrations';
import { GroupDriver, MonitorLag, ReportBatcher, migrateToLatest, registerNode, type Database, type PostgresStore } from '@pgha/monitor';
import type { NodeReport } from '@pgha/shared';
import { endAllProcesses } from './helpers/processes.js';
import { startStore, type TestStore } from './helpers/store.js';

let running: TestStore | undefined;
let db: Kysely<Database>;
let store: PostgresStore;

beforeAll(async () => {
  running = await startStore();
  db = running.db;
  store = running.store;
}, 120_000);

afterAll(async () => {
  await running?.stop();
  await endAllProcesses();
});

describe('the monitor store', () => {
  it('migrates up from empty, down to nothing, and up again', async () => {
    const all = Object.keys(MIGRATIONS);
    expect(await migrateToLatest(db)).toEqual(all);
    expect(await migrateToLatest(db)).toEqual([]);
    const migrator = new Migrator({ db: db.withoutPlugins() as unknown as Kysely<unknown>, provider: migrationProvider, migrationTableSchema: 'public' });
    const down = await migrator.migrateTo(NO_MIGRATIONS);
    expect(down.error).toBeUndefined();
    const tables = async () => (await db.withoutPlugins().introspection.getTables()).filter((t) => t.schema === 'pgha').map((t) => t.name).sort();
    expect(await tables()).toEqual([]);
    expect(await migrateToLatest(db)).toEqual(all);
    expect(await tables()).toEqual(['events', 'formations', 'node_credentials', 'nodes']);
  });

  it('writes each goal change with its event row, in the registering transaction', async () => {
    await store.formations.create('default');
    const driver = new GroupDriver(store, pino({ level: 'silent' }));
    const nodeId = await store.transaction(async (tx) => {
      let id = 0;
      await driver.evaluateIn(tx, 'default', 0, 'register', async () => {
        id = (await registerNode(tx, 'default', { name: 'a', host: '127.0.0.1', port: 6001, candidatePriority: 50, replicationQuorum: true })).node.nodeId;
      });
      return id;
    });
    expect((await store.nodes.get(nodeId)).goalState).toBe('single');
    const events = await store.stream.latest('default', 10);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ nodeId, oldGoalState: 'init', newGoalState: 'single', rule: 'first-node-single' });
    expect(events[0]!.reason).toMatch(/first node of the group/);
  });

  it('records reports that arrive together in one transaction: each answered, the last of a node kept, unknown ids refused', async () => {
    await store.formations.create('batch');
    const lag = new MonitorLag();
    const driver = new GroupDriver(store, pino({ level: 'silent' }), lag);
    const reports = new ReportBatcher(store, driver, lag);
    const register = (name: string, port: number) =>
      store.transaction(async (tx) => {
        let id = 0;
        await driver.evaluateIn(tx, 'batch', 0, 'register', async () => {
          id = (await registerNode(tx, 'batch', { name, host: '127.0.0.1', port, candidatePriority: 50, replicationQuorum: true })).node.nodeId;
        });
        return id;
      });
    const a = await register('a', 6101);
    const b = await register('b', 6102);
    const report = (state: NodeReport['reportedState'], lsn: string, names: string | null = null): NodeReport => ({
      reportedState: state, postgresRunning: true, isInRecovery: state !== 'single', lsn, timeline: 1, upstreamStreaming: false,
      transitionInProgress: null, synchronousStandbyNames: names,
    });
    // Quotes and backslashes travel inside the statement: they must come back as sent.
    const tricky = `ANY 1 ("it's", "a\\b", "\\'; drop table pgha.nodes; --")`;
    // Issued in one turn of the event loop: they share a transaction.
    const results = await Promise.allSettled([
      reports.report(a, report('single', '0/3000000', tricky)),
      reports.report(b, report('wait_standby', '0/1000000')),
      reports.report(b, report('wait_standby', '0/2000000')),
      reports.report(999_999, report('single', '0/1000000')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
    expect(String((results[3] as PromiseRejectedResult).reason.message)).toMatch(/node 999999 does not exist/);
    const outcomeOf = (i: number) => (results[i] as PromiseFulfilledResult<Awaited<ReturnType<ReportBatcher['report']>>>).value;
    expect(outcomeOf(0).group?.nodes.map((n) => n.nodeId)).toEqual([a, b]);
    expect(outcomeOf(1).group).toBe(outcomeOf(2).group);
    const rowA = await store.nodes.get(a);
    expect(rowA.reportedSyncStandbyNames).toBe(tricky);
    expect(rowA.reportedLsn).toBe('0/3000000');
    const rowB = await store.nodes.get(b);
    expect(rowB.reportedState).toBe('wait_standby');
    expect(rowB.reportedLsn).toBe('0/2000000');
  });
});
