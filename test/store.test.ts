/**
 * The monitor's store on a real Postgres: migrations up from empty, down, up again; a node
 * registered through the driver gets its goal and an event row in the same transaction.
 */
import { join } from 'node:path';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Migrator, NO_MIGRATIONS, type Kysely } from 'kysely';
import { ensureOwnedDir, initdb, pgCtlStart, pgCtlStop, socketDirFor, writePghaConf } from '@pgha/keeper';
import { MIGRATIONS, migrationProvider } from '@pgha/migrations';
import { GroupDriver, createFormation, getNode, insertNode, listEvents, migrateToLatest, openStore, type Database } from '@pgha/monitor';
import { endAllProcesses, makeTestDir, trackPgdata } from './helpers/processes.js';

let pgdata: string;
let db: Kysely<Database>;

beforeAll(async () => {
  pgdata = join(makeTestDir(), 'store', 'pgdata');
  trackPgdata(pgdata);
  ensureOwnedDir(pgdata);
  await initdb(pgdata);
  const port = await getPort({ host: '127.0.0.1' });
  ensureOwnedDir(socketDirFor(pgdata));
  writePghaConf(pgdata, { role: 'monitor', listenAddresses: '', port, socketDir: socketDirFor(pgdata), synchronousStandbyNames: '' });
  const logDir = join(makeTestDir(), 'log');
  ensureOwnedDir(logDir);
  await pgCtlStart(pgdata, join(logDir, 'postgres.log'));
  db = openStore({ host: socketDirFor(pgdata), port });
}, 120_000);

afterAll(async () => {
  await db?.destroy();
  if (pgdata) await pgCtlStop(pgdata).catch(() => undefined);
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
    expect(await tables()).toEqual(['events', 'formations', 'nodes']);
  });

  it('writes each goal change with its event row, in the registering transaction', async () => {
    await createFormation(db, 'default');
    const driver = new GroupDriver(db, pino({ level: 'silent' }));
    const nodeId = await db.transaction().execute(async (trx) => {
      let id = 0;
      await driver.evaluateIn(trx, 'default', 0, 'register', async () => {
        id = (await insertNode(trx, 'default', { name: 'a', host: '127.0.0.1', port: 6001, candidatePriority: 50, replicationQuorum: true })).node.nodeId;
      });
      return id;
    });
    expect((await getNode(db, nodeId)).goalState).toBe('single');
    const events = await listEvents(db, 'default', 10);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ nodeId, oldGoalState: 'init', newGoalState: 'single', rule: 'first-node-single' });
    expect(events[0]!.reason).toMatch(/first node of the group/);
  });
});
