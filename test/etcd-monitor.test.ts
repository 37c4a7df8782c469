/**
 * One monitor on etcd in the running product (issue 15, the etcd adapter end to end): a real
 * etcd with TLS and client certificates, `pgha monitor create --store` (no Postgres of the
 * monitor's own), `pgha monitor run`, two keepers: the formation comes up as primary and
 * secondary, switches over (the old primary's keeper reports where its shutdown checkpoint
 * starts, which etcd keeps while it is stopped), and `pgha show events` tells it, with event
 * ids in commit order; a
 * standby restarts on request (`pgha perform restart --name`), its restart kept done in etcd;
 * the goals are in etcd, and keepers' reports that change nothing are not etcd writes. A second
 * monitor joins the store (`--join`): same CA, same operator token, and it serves the formation.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import getPort from 'get-port';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventRow } from '@pgha/shared';
import { addNode, startMonitor, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { runPghaOk } from './helpers/cli.js';
import { startEtcd, type TestEtcd } from './helpers/etcd.js';
import { isPrimaryAndSecondaries, showState } from './helpers/formation.js';
import { delay, waitFor } from './helpers/wait-for.js';
import { endAllProcesses, killPid, postmasterPid, runPgha, startPgha } from './helpers/processes.js';
import { monitorFetch, registerMonitor } from './helpers/monitor-access.js';
import { logOffset, waitForLogMessage } from './helpers/crash.js';

let etcd: TestEtcd;
let monitor: TestMonitor;
let admin: Etcd3;
let node1: TestNode;
let node2: TestNode;

/** A node's keeper.json: its id and token. */
const keeperJson = (n: TestNode): { nodeId: number; nodeToken: string } => JSON.parse(readFileSync(`${n.pgdata}.pgha/keeper.json`, 'utf8')) as { nodeId: number; nodeToken: string };

beforeAll(async () => {
  etcd = await startEtcd({ tls: true, clientCertAuth: true });
  const tls = etcd.tls!;
  monitor = await startMonitor({ store: ['--store', etcd.storeUri('/e2e'), '--store-ca-file', tls.caFile, '--store-cert-file', tls.clientCertFile, '--store-key-file', tls.clientKeyFile] });
  admin = new Etcd3({
    hosts: etcd.members.map((m) => m.clientUrl),
    credentials: { rootCertificate: readFileSync(tls.caFile), certChain: readFileSync(tls.clientCertFile), privateKey: readFileSync(tls.clientKeyFile) },
  });
}, 120_000);

afterAll(async () => {
  admin?.close();
  await endAllProcesses();
});

/** The etcd store's current revision. */
async function revision(): Promise<bigint> {
  return BigInt((await admin.kv.range({ key: Buffer.from('/e2e/v1/meta') })).header.revision);
}

describe('a monitor on etcd', () => {
  it('runs a formation of two nodes on etcd alone, switches it over, and shows its events', async () => {
    // No Postgres of the monitor's own: its files only.
    expect(existsSync(monitor.pgdata)).toBe(false);
    expect(JSON.parse(readFileSync(`${monitor.pgdata}.pgha/monitor.json`, 'utf8'))).toMatchObject({ store: { kind: 'etcd', prefix: '/e2e', endpoints: etcd.endpoints } });

    node1 = await addNode(monitor, 'node1');
    node2 = await addNode(monitor, 'node2');
    await waitFor('primary and secondary', async () => isPrimaryAndSecondaries(await showState(monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });
    const stored = (await admin.getAll().prefix('/e2e/v1/nodes/default/').strings()) as Record<string, string>;
    expect(Object.values(stored).map((v) => (JSON.parse(v) as { name: string; goalState: string }).goalState).sort()).toEqual(['primary', 'secondary']);

    // Steady: keepers report twice a second each, but etcd sees (almost) no write.
    const before = await revision();
    await delay(3000);
    expect(Number((await revision()) - before)).toBeLessThan(4);

    // The old primary's shutdown checkpoint, as its keeper reports it once stopped and the monitor keeps it in etcd.
    const node1Log = join(monitor.dir, 'node1.keeper.log');
    const logFrom = logOffset(node1Log);
    const seenLsns = new Set<string>();
    let watching = true;
    const watchNode1 = (async () => {
      while (watching) {
        const values = Object.values((await admin.getAll().prefix('/e2e/v1/nodes/default/').strings()) as Record<string, string>);
        const stored = values.map((v) => JSON.parse(v) as { name: string; shutdownCheckpointLsn?: string | null }).find((n) => n.name === 'node1');
        if (stored?.shutdownCheckpointLsn) seenLsns.add(stored.shutdownCheckpointLsn);
        await delay(5);
      }
    })();
    try {
      const out = await runPghaOk(['perform', 'switchover', '--wait', '120'], { PGHA_MONITOR: monitor.url });
      expect(out).toMatch(/node2/);
      await waitFor('node1 back as a secondary', async () => {
        const rows = await showState(monitor.url);
        return isPrimaryAndSecondaries(rows) && rows.find((r) => r.name === 'node2')?.reported_state === 'primary';
      }, { timeoutMs: 120_000, intervalMs: 250 });
    } finally {
      watching = false;
      await watchNode1;
    }
    const logged = /shutdown checkpoint is at (\S+)$/.exec(await waitForLogMessage(node1Log, /^Postgres takes no more writes: its shutdown checkpoint is at /, logFrom, { timeoutMs: 1000 }))![1]!;
    expect([...seenLsns]).toEqual([logged]);

    const events = JSON.parse(await runPghaOk(['show', 'events', '--count', '100', '--json', '--monitor', monitor.url])) as EventRow[];
    const ids = events.map((e) => e.event_id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    expect(events.some((e) => e.rule === 'perform-switchover' && e.node_name === 'node1' && e.new_goal_state === 'draining')).toBe(true);
    expect(events.some((e) => e.node_name === 'node2' && e.new_goal_state === 'primary')).toBe(true);
    // An event's id is the revision of the etcd Txn that wrote it × 10,000 + its index there.
    expect(Math.floor(ids[ids.length - 1]! / 10_000)).toBeLessThanOrEqual(Number(await revision()));
    const table = await runPghaOk(['show', 'events', '--count', '5', '--monitor', monitor.url]);
    expect(table).toMatch(/node1/);
  });

  it('restarts a standby on request through the etcd store: the keeper restarts its Postgres once and the monitor keeps it done', async () => {
    const env = { PGHA_MONITOR: monitor.url };
    const standby = (await showState(monitor.url)).find((r) => r.goal_state === 'secondary')!;
    const { pgdata } = standby.name === 'node2' ? node2 : node1;
    const before = postmasterPid(pgdata);
    expect(before).toBeDefined();
    const out = JSON.parse(await runPghaOk(['perform', 'restart', '--name', standby.name, '--json'], env)) as { restarted: { name: string; method: string }[] };
    expect(out.restarted).toEqual([expect.objectContaining({ name: standby.name, method: 'in-place' })]);
    expect(postmasterPid(pgdata)).not.toBe(before);
    const row = (await showState(monitor.url)).find((r) => r.name === standby.name)!;
    expect(row.restart).toMatchObject({ requested: standby.restart.requested + 1, done: standby.restart.requested + 1 });
    // Kept in etcd, not only in this monitor's memory.
    const stored = Object.values((await admin.getAll().prefix('/e2e/v1/nodes/default/').strings()) as Record<string, string>).map((v) => JSON.parse(v) as { name: string; restartRequest: number; restartDone: number });
    expect(stored.find((n) => n.name === standby.name)).toMatchObject({ restartRequest: row.restart.requested, restartDone: row.restart.done });
    expect(isPrimaryAndSecondaries(await showState(monitor.url))).toBe(true);
  });

  it('lets a second monitor join the store: same CA and operator token, no token file of its own, it serves the formation, and refuses a node token replaced at the first monitor', async () => {
    const tls = etcd.tls!;
    const pgdata = join(monitor.dir, 'monitor2', 'pgdata');
    const listen = `127.0.0.1:${await getPort({ host: '127.0.0.1' })}`;
    const created = await runPgha(['monitor', 'create', '--pgdata', pgdata, '--listen', listen, '--store', etcd.storeUri('/e2e'), '--store-ca-file', tls.caFile, '--store-cert-file', tls.clientCertFile, '--store-key-file', tls.clientKeyFile, '--join']);
    expect(created.exitCode, created.stderr).toBe(0);
    const pghaDir = `${pgdata}.pgha`;
    expect(existsSync(join(pghaDir, 'auth-token'))).toBe(false);
    expect(readFileSync(join(pghaDir, 'tls', 'ca.crt'), 'utf8')).toBe(readFileSync(monitor.caFile, 'utf8'));
    const first = JSON.parse(readFileSync(`${monitor.pgdata}.pgha/monitor.json`, 'utf8')) as { store: { storeId: string } };
    expect(JSON.parse(readFileSync(join(pghaDir, 'monitor.json'), 'utf8'))).toMatchObject({ store: { storeId: first.store.storeId } });

    const proc = startPgha(['monitor', 'run', '--pgdata', pgdata], { logFile: join(monitor.dir, 'monitor2.log') });
    try {
      const url = `https://${listen}`;
      // The first monitor's token and CA open the second one.
      registerMonitor({ url, authTokenFile: monitor.authTokenFile, caFile: monitor.caFile });
      await waitFor('the second monitor', async () => (await monitorFetch(`${url}/health`).catch(() => undefined))?.ok, { timeoutMs: 60_000 });
      const rows = await showState(url);
      expect(rows.map((r) => r.name).sort()).toEqual(['node1', 'node2']);

      // A node registered again at one monitor: its old token is refused at the other too, at once.
      const { nodeId, nodeToken: old } = keeperJson(node2);
      expect((await monitorFetch(`${url}/v1/nodes/${nodeId}/goal`, { token: old })).status).toBe(200);
      const again = await monitorFetch(`${monitor.url}/v1/formations/default/nodes`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'node2', host: node2.host, port: node2.port }),
      });
      expect(again.status).toBe(200);
      const fresh = ((await again.json()) as { nodeToken: string }).nodeToken;
      await waitFor('the old token refused at the second monitor', async () => (await monitorFetch(`${url}/v1/nodes/${nodeId}/goal`, { token: old })).status === 401, { timeoutMs: 5000, intervalMs: 50 });
      expect((await monitorFetch(`${url}/v1/nodes/${nodeId}/goal`, { token: fresh })).status).toBe(200);
    } finally {
      killPid(proc.pid, 'SIGTERM');
    }
  });
});
