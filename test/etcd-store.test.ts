/**
 * What the etcd store does beyond the port's contract (store-contract.test.ts), on a real etcd:
 * its initialisation and the refusals that write nothing, reports that change no persisted
 * fact kept in memory (no etcd write), the grace period after a leadership gain, the bounded
 * event history, a second monitor's waiters woken by the first one's commits (watch), decisions
 * on each monitor's copy of the store that never overwrite what they did not read, and a
 * copy of another store into a new one (`monitor create --from-monitor`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeReport } from '@pgha/shared';
import { MAX_TXN_OPS, STORE_SCHEMA_VERSION, formationEvent, importStoreContents, initEtcdStore, openEtcdStore, readStoreContents, type EtcdConnection, type EtcdStore } from '@pgha/monitor';
import { startEtcd, type TestEtcd } from './helpers/etcd.js';
import { endAllProcesses } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

const SECRETS = { operatorTokenSha256: 'a'.repeat(64), ca: { certPem: 'CERT', keyPem: 'KEY' } };

let etcd: TestEtcd;
const opened: EtcdStore[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
}, 60_000);

afterAll(async () => {
  for (const s of opened) await s.close();
  await etcd?.stop();
  await endAllProcesses();
});

function conn(prefix: string): EtcdConnection {
  return { endpoints: etcd.endpoints, prefix };
}

/** The LSN write interval of the store under test (ms): shorter than the default, so that the test need not wait a minute. */
const LSN_INTERVAL_MS = 3_000;

async function open(prefix: string, options: Parameters<typeof openEtcdStore>[1] = {}): Promise<EtcdStore> {
  const store = await openEtcdStore(conn(prefix), options);
  opened.push(store);
  return store;
}

/** Every key under the prefix, with its mod revision: what a refusal must leave as it was. */
async function keysUnder(store: EtcdStore, prefix: string): Promise<Record<string, string>> {
  const res = await store.client.getAll().prefix(`${prefix}/`).exec();
  return Object.fromEntries(res.kvs.map((kv) => [kv.key.toString(), kv.mod_revision]));
}

function report(lsn: string, extra: Partial<NodeReport> = {}): NodeReport {
  return { reportedState: 'single', postgresRunning: true, isInRecovery: false, lsn, timeline: 1, upstreamStreaming: false, transitionInProgress: null, synchronousStandbyNames: null, ...extra };
}

describe('making, joining and opening a store', () => {
  it('makes a store once with its meta and secrets, joins it, and opens it only with its own id', async () => {
    const made = await initEtcdStore(conn('/init'), { join: false, secrets: SECRETS, createdBy: 'host-a' });
    expect(made.meta).toMatchObject({ schemaVersion: STORE_SCHEMA_VERSION, createdBy: 'host-a' });
    const joined = await initEtcdStore(conn('/init'), { join: true });
    expect(joined).toEqual(made);
    const store = await open('/init', { expectedStoreId: made.meta.storeId });
    expect(store.storeId).toBe(made.meta.storeId);
    const before = await keysUnder(store, '/init');
    expect(Object.keys(before).sort()).toEqual(['/init/v1/meta', '/init/v1/secrets']);

    await expect(initEtcdStore(conn('/init'), { join: false, secrets: SECRETS })).rejects.toMatchObject({
      code: 'PGHA_ERR_STORE_MISMATCH',
      message: expect.stringContaining(`holds a pgha store already (id ${made.meta.storeId}, made by host-a`),
    });
    await expect(openEtcdStore(conn('/init'), { expectedStoreId: 'another-store' })).rejects.toMatchObject({
      code: 'PGHA_ERR_STORE_MISMATCH',
      message: expect.stringContaining(`is another store (id ${made.meta.storeId}`),
    });
    expect(await keysUnder(store, '/init')).toEqual(before);
  });

  it('refuses to join an empty prefix, to use a prefix of another program, and a store of a newer pgha: nothing written', async () => {
    await expect(initEtcdStore(conn('/empty'), { join: true })).rejects.toMatchObject({ code: 'PGHA_ERR_STORE_MISMATCH', message: expect.stringContaining('no pgha store at') });
    await expect(openEtcdStore(conn('/empty'))).rejects.toMatchObject({ code: 'PGHA_ERR_STORE_MISMATCH' });

    const { meta } = await initEtcdStore(conn('/scratch'), { join: false, secrets: SECRETS });
    const store = await open('/scratch', { expectedStoreId: meta.storeId });
    expect(await keysUnder(store, '/empty')).toEqual({});

    await store.client.put('/foreign/registry/x').value('another program');
    const foreign = await keysUnder(store, '/foreign');
    for (const join of [false, true]) {
      await expect(initEtcdStore(conn('/foreign'), { join, secrets: SECRETS })).rejects.toMatchObject({ code: 'PGHA_ERR_STORE_MISMATCH', message: expect.stringContaining('holds keys, but no pgha store') });
    }
    expect(await keysUnder(store, '/foreign')).toEqual(foreign);

    await store.client.put('/newer/v1/meta').value(JSON.stringify({ schemaVersion: STORE_SCHEMA_VERSION + 1, storeId: 'x', createdAt: '2030-01-01T00:00:00Z', createdBy: 'future' }));
    const newer = await keysUnder(store, '/newer');
    await expect(openEtcdStore(conn('/newer'))).rejects.toMatchObject({ code: 'PGHA_ERR_STORE_MISMATCH', message: expect.stringContaining(`written by a newer pgha (schema version ${STORE_SCHEMA_VERSION + 1}`) });
    await expect(initEtcdStore(conn('/newer'), { join: true })).rejects.toMatchObject({ code: 'PGHA_ERR_STORE_MISMATCH' });
    expect(await keysUnder(store, '/newer')).toEqual(newer);
  });
});

describe('the etcd store at work', () => {
  let store: EtcdStore;
  let other: EtcdStore;

  beforeAll(async () => {
    const { meta } = await initEtcdStore(conn('/work'), { join: false, secrets: SECRETS });
    store = await open('/work', { expectedStoreId: meta.storeId, eventRetention: 5, lsnWriteIntervalMs: LSN_INTERVAL_MS });
    other = await open('/work', { expectedStoreId: meta.storeId });
  });

  it('writes a report to etcd only when a persisted fact changes; reads see every report', async () => {
    await store.formations.create('liveness');
    const a = await store.transaction((tx) => tx.nodes.insert('liveness', { name: 'a', host: '127.0.0.1', port: 31_001, candidatePriority: 50, replicationQuorum: true, postgresSsl: true, httpAddress: null }));
    const modRevision = async () => (await store.client.get(store.keys.node('liveness', a.nodeId)).exec()).kvs[0]!.mod_revision;
    await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: report('0/3000000') }]));
    const written = await modRevision();
    const first = await store.nodes.get(a.nodeId);
    // Same facts, a new LSN within lsnWriteIntervalMs: no write; the read has the new report.
    await waitFor('a later clock', () => Date.now() > first.reportedAt!.getTime() + 5, { intervalMs: 5 });
    await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: report('0/3000100') }]));
    expect(await modRevision()).toBe(written);
    const second = await store.nodes.get(a.nodeId);
    expect(second.reportedLsn).toBe('0/3000100');
    expect(second.reportedAt!.getTime()).toBeGreaterThan(first.reportedAt!.getTime());
    // Another monitor has no overlay: it reads the stored record.
    expect((await other.nodes.get(a.nodeId)).reportedLsn).toBe('0/3000000');
    // A persisted fact changes: written.
    await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: report('0/3000200', { problem: 'disk full' }) }]));
    expect(BigInt(await modRevision())).toBeGreaterThan(BigInt(written));
    expect(await other.nodes.get(a.nodeId)).toMatchObject({ reportedProblem: 'disk full', reportedLsn: '0/3000200' });

    // After a leadership gain every node of the formation counts as heard from then.
    const gainedAt = Date.now() + 60_000;
    other.startGrace('liveness', gainedAt);
    expect((await other.nodes.get(a.nodeId)).reportedAt!.getTime()).toBe(gainedAt);
    expect((await other.snapshot()).nodes.find((n) => n.nodeId === a.nodeId)!.reportedAt!.getTime()).toBe(gainedAt);
  });

  it('writes a moving LSN once it is due (lsnWriteIntervalMs), apart from the report, with the other due LSNs', async () => {
    await store.formations.create('lsn');
    const a = await store.transaction((tx) => tx.nodes.insert('lsn', { name: 'a', host: '127.0.0.1', port: 31_005, candidatePriority: 50, replicationQuorum: true, postgresSsl: true, httpAddress: null }));
    const modRevision = async () => (await store.client.get(store.keys.node('lsn', a.nodeId)).exec()).kvs[0]!.mod_revision;
    await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: report('0/3000000') }]));
    const firstAt = Date.now();
    const written = await modRevision();
    await waitFor('lsnWriteIntervalMs to pass', () => Date.now() > firstAt + LSN_INTERVAL_MS + 100, { timeoutMs: LSN_INTERVAL_MS + 5_000, intervalMs: 50 });
    await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: report('0/3000400') }]));
    // The report's own transaction wrote nothing; the LSN follows within about a second.
    expect(await modRevision()).toBe(written);
    await waitFor('the other monitor to read the new LSN', async () => (await other.nodes.get(a.nodeId)).reportedLsn === '0/3000400', { timeoutMs: 5_000, intervalMs: 50 });
  }, 30_000);

  it("decides on its copy of the store, and a commit made on a copy that lags behind another monitor's write runs again on top of it", async () => {
    await store.formations.create('copies');
    const a = await store.transaction((tx) => tx.nodes.insert('copies', { name: 'a', host: '127.0.0.1', port: 31_004, candidatePriority: 50, replicationQuorum: true, postgresSsl: true, httpAddress: null }));
    for (let i = 1; i <= 20; i++) {
      // The other monitor writes the node; this one, at once, writes it from what it reads.
      await other.transaction((tx) => tx.settings.setNodeReplication(a.nodeId, { candidatePriority: i, replicationQuorum: i % 2 === 0 }));
      await store.transaction(async (tx) => {
        const n = await tx.nodes.get(a.nodeId);
        await tx.settings.setNodeReplication(a.nodeId, { candidatePriority: n.candidatePriority + 10, replicationQuorum: n.replicationQuorum });
      });
      expect(await other.nodes.get(a.nodeId)).toMatchObject({ candidatePriority: i + 10, replicationQuorum: i % 2 === 0 });
    }
  });

  it('raises every goal revision to at least one a keeper applied from an earlier history of the store, and other monitors follow', async () => {
    await store.formations.create('restored');
    const a = await store.transaction((tx) => tx.nodes.insert('restored', { name: 'a', host: '127.0.0.1', port: 31_003, candidatePriority: 50, replicationQuorum: true, postgresSsl: true, httpAddress: null }));
    const before = BigInt((await store.nodes.get(a.nodeId)).goalRevision);
    // The keeper applied a revision far above the store's (a snapshot restored, or another store).
    const applied = before + 1_000_000n;
    const read = await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: report('0/3000000', { appliedGoalRevision: String(applied) }) }]));
    expect(BigInt(read.inputs.get(a.nodeId)!.node.goalRevision)).toBeGreaterThanOrEqual(applied);
    expect(BigInt((await store.nodes.get(a.nodeId)).goalRevision)).toBeGreaterThanOrEqual(applied);
    const meta = JSON.parse((await store.client.get(store.keys.meta).string())!) as { goalRevisionBase?: string };
    expect(BigInt(meta.goalRevisionBase!)).toBeGreaterThan(0n);
    await waitFor('the other monitor to take the new base', async () => BigInt((await other.nodes.get(a.nodeId)).goalRevision) >= applied, { timeoutMs: 10_000, intervalMs: 20 });
    // A keeper at or below the store's revisions changes nothing (equal: it takes the goal).
    const base = meta.goalRevisionBase;
    await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: report('0/3000000', { appliedGoalRevision: String(applied) }) }]));
    expect((JSON.parse((await store.client.get(store.keys.meta).string())!) as { goalRevisionBase?: string }).goalRevisionBase).toBe(base);
  });

  it('keeps the latest events of a formation (5 here), deleting older ones as it appends', async () => {
    await store.formations.create('history');
    for (const batch of [['e1', 'e2', 'e3'], ['e4', 'e5'], ['e6', 'e7', 'e8']]) {
      await store.transaction((tx) => tx.events.append(batch.map((r) => formationEvent('history', 'history-test', r))));
    }
    expect((await store.stream.latest('history', 100)).map((e) => e.reason)).toEqual(['e4', 'e5', 'e6', 'e7', 'e8']);
    const res = await store.client.getAll().prefix(store.keys.events('history')).keys();
    expect(res).toHaveLength(5);
  });

  it("wakes another monitor's goal long-polls and event streams when this one commits", async () => {
    await store.formations.create('watched');
    const a = await store.transaction((tx) => tx.nodes.insert('watched', { name: 'a', host: '127.0.0.1', port: 31_002, candidatePriority: 50, replicationQuorum: true, postgresSsl: true, httpAddress: null }));
    await waitFor('the other monitor to see the node', async () => (await other.nodes.get(a.nodeId).catch(() => undefined)) !== undefined);
    const goal = other.waiter(a.nodeId, 30_000);
    const events = other.eventWaiter('watched', 30_000);
    let woken = 0;
    void goal.promise.then(() => woken++);
    void events.promise.then(() => woken++);
    try {
      await store.transaction(async (tx) => {
        await tx.lockGroup('watched', 0);
        const { nodes } = await tx.readGroup('watched', 0);
        await tx.goals.assign({ formationId: 'watched', groupId: 0 }, nodes, [{ nodeId: a.nodeId, goalState: 'single', rule: 'watch-test', reason: 'to single' }]);
      });
      await waitFor('both waiters of the other monitor', () => woken === 2, { timeoutMs: 10_000, intervalMs: 20 });
      expect((await other.nodes.get(a.nodeId)).goalState).toBe('single');
    } finally {
      goal.cancel();
      events.cancel();
    }
  });
});

describe('a copy of another store (monitor create --from-monitor)', () => {
  it('makes a new store with the same formations, nodes, token digests and events (new ids, same order), in Txns within max-txn-ops; the next node id follows', async () => {
    const { meta } = await initEtcdStore(conn('/copy-src'), { join: false, secrets: SECRETS });
    const src = await open('/copy-src', { expectedStoreId: meta.storeId });
    await src.formations.create('f1', 1);
    await src.formations.create('f2');
    const node = (name: string, port: number) => ({ name, host: '127.0.0.1', port, candidatePriority: 50, replicationQuorum: true, postgresSsl: true, httpAddress: null });
    const a = await src.transaction((tx) => tx.nodes.insert('f1', node('a', 32_001)));
    const b = await src.transaction((tx) => tx.nodes.insert('f1', node('b', 32_002)));
    const c = await src.transaction((tx) => tx.nodes.insert('f2', node('c', 32_003)));
    await src.transaction(async (tx) => {
      await tx.credentials.issue(a.nodeId, '1'.repeat(64));
      await tx.credentials.issue(c.nodeId, '3'.repeat(64));
    });
    await src.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: report('0/3000000', { problem: 'disk full' }) }]));
    await src.transaction(async (tx) => tx.goals.assign({ formationId: 'f1', groupId: 0 }, (await tx.readGroup('f1', 0)).nodes, [{ nodeId: a.nodeId, goalState: 'single', rule: 'copy-test', reason: 'a to single' }]));
    // More events than one Txn holds.
    for (let i = 0; i < 3; i++) await src.transaction((tx) => tx.events.append(Array.from({ length: 100 }, (_, j) => formationEvent('f2', 'copy-test', `e${i * 100 + j}`))));
    await src.transaction((tx) => tx.nodes.remove(b.nodeId));
    const contents = await readStoreContents(src);

    const made = await initEtcdStore(conn('/copy-dst'), { join: false, secrets: SECRETS, fill: async (client, keys) => void (await importStoreContents(client, keys, contents, Date.now())) });
    const dst = await open('/copy-dst', { expectedStoreId: made.meta.storeId });
    expect(await dst.formations.list()).toEqual(contents.formations);
    // Reads merge this monitor's liveness (every node heard from when it opened the store): the
    // report time as stored is the copied one.
    const stored = (nodes: { goalRevision: string; reportedAt: Date | null }[]) => nodes.map(({ goalRevision: _r, reportedAt: _at, ...n }) => n);
    expect(stored(await dst.nodes.listAll())).toEqual(stored(contents.nodes));
    const raw = JSON.parse((await dst.client.get(dst.keys.node('f1', a.nodeId)).string())!) as { reportedAtMs: number };
    expect(raw.reportedAtMs).toBe(contents.nodes[0]!.reportedAt!.getTime());
    expect(contents.nodes.map((n) => n.name)).toEqual(['a', 'c']);
    expect((await dst.nodes.get(a.nodeId)).reportedProblem).toBe('disk full');
    expect(await dst.credentials.list()).toEqual(contents.credentials);
    expect(await dst.credentials.ownerOf('3'.repeat(64))).toBe(c.nodeId);
    for (const f of ['f1', 'f2']) {
      const ids = (await dst.stream.latest(f, 1000)).map((e) => BigInt(e.eventId));
      expect(ids).toEqual([...ids].sort((x, y) => (x < y ? -1 : 1)));
      const withoutId = (events: { eventId: string }[]) => events.map(({ eventId: _id, ...e }) => e);
      expect(withoutId(await dst.stream.latest(f, 1000))).toEqual(withoutId(contents.events.get(f)!));
    }
    // Written in Txns of at most MAX_TXN_OPS (an event id is its Txn's revision × 10,000 + index).
    const perTxn = new Map<bigint, number>();
    for (const e of await dst.stream.latest('f2', 1000)) perTxn.set(BigInt(e.eventId) / 10_000n, (perTxn.get(BigInt(e.eventId) / 10_000n) ?? 0) + 1);
    expect([...perTxn.values()].reduce((x, y) => x + y)).toBe(300);
    expect(Math.max(...perTxn.values())).toBeLessThanOrEqual(MAX_TXN_OPS);
    // Names and addresses stay unique; a new node gets the next id.
    await expect(dst.transaction((tx) => tx.nodes.insert('f1', node('a', 32_009)))).rejects.toMatchObject({ code: 'PGHA_ERR_CONFLICT' });
    await expect(dst.transaction((tx) => tx.nodes.insert('f1', node('z', 32_003)))).rejects.toMatchObject({ code: 'PGHA_ERR_CONFLICT' });
    expect((await dst.transaction((tx) => tx.nodes.insert('f1', node('d', 32_004)))).nodeId).toBe(c.nodeId + 1);
  });

  it('a copy that fails leaves nothing in the prefix, and the store is not made', async () => {
    const failure = new Error('the old store went away');
    await expect(
      initEtcdStore(conn('/copy-fail'), {
        join: false,
        secrets: SECRETS,
        fill: async (client, keys) => {
          await client.put(keys.formation('f')).value('{}');
          throw failure;
        },
      }),
    ).rejects.toBe(failure);
    const store = await open('/copy-src');
    expect(await keysUnder(store, '/copy-fail')).toEqual({});
  });
});
