/**
 * An operator's own CA, made with `openssl` as an operator would: the monitor serves its
 * certificate (`--ssl-ca-file --server-cert --server-key`), each node serves its own, and
 * replication verifies them (`verify-full`) against that CA. A certificate that does not fit
 * is refused at create time with a one-line error, and nothing is created.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addNode, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { expectOneLineError } from './helpers/cli.js';
import { isPrimaryAndSecondaries, queryNode, showState } from './helpers/formation.js';
import { monitorFetch, registerMonitor } from './helpers/monitor-access.js';
import { issueCertificate, openssl as runOpenssl } from './helpers/pki.js';
import { endAllProcesses, makeTestDir, runPgha, startPgha, trackPgdata } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

let dir: string;
let pki: string;
let monitor: TestMonitor;
let nodes: TestNode[];

function openssl(...args: string[]): void {
  runOpenssl(pki, ...args);
}

/** A key and a certificate for `ip`, signed by the operator's CA, as `<name>.key` and `<name>.crt`. */
function issue(name: string, ip: string): { cert: string; key: string } {
  return issueCertificate(pki, { cert: 'ca.crt', key: 'ca.key' }, name, ip);
}

beforeAll(async () => {
  dir = makeTestDir();
  pki = join(dir, 'pki');
  mkdirSync(pki);
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', '/CN=Operations CA');

  const pgdata = join(dir, 'monitor', 'pgdata');
  trackPgdata(pgdata);
  const pgPort = await getPort({ host: '127.0.0.1' });
  const httpPort = await getPort({ host: '127.0.0.1', exclude: [pgPort] });
  const own = issue('monitor', '127.0.0.1');
  const created = await runPgha(['monitor', 'create', '--pgdata', pgdata, '--pg-port', String(pgPort), '--listen', `127.0.0.1:${httpPort}`, '--ssl-ca-file', join(pki, 'ca.crt'), '--server-cert', own.cert, '--server-key', own.key]);
  expect(created.exitCode, created.stderr).toBe(0);
  const proc = startPgha(['monitor', 'run', '--pgdata', pgdata], { logFile: join(dir, 'monitor.log') });
  const url = `https://127.0.0.1:${httpPort}`;
  const authTokenFile = `${pgdata}.pgha/auth-token`;
  registerMonitor({ url, authTokenFile, caFile: join(pki, 'ca.crt') });
  await waitFor('the monitor', async () => (await monitorFetch(`${url}/health`)).ok, { timeoutMs: 60_000 });
  monitor = { url, dir, pgdata, proc, authTokenFile, caFile: join(pki, 'ca.crt') };
  nodes = [];
  for (const name of ['node1', 'node2']) {
    const c = issue(name, '127.0.0.1');
    nodes.push(await addNode(monitor, name, { extraArgs: ['--server-cert', c.cert, '--server-key', c.key] }));
  }
  await waitFor('one primary and one secondary', async () => isPrimaryAndSecondaries(await showState(monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });
}, 300_000);

afterAll(async () => {
  await endAllProcesses();
});

describe("an operator's own certificates", () => {
  it("the monitor made no CA of its own, and serves the operator's certificate", async () => {
    expect(existsSync(join(`${monitor.pgdata}.pgha`, 'tls', 'ca.key'))).toBe(false);
    const res = await monitorFetch(`${monitor.url}/v1/formations/default/state`);
    expect(res.status).toBe(200);
  });

  it("each node serves its own certificate, and the standby streams over TLS verified against the operator's CA", async () => {
    for (const [i, n] of nodes.entries()) {
      expect(readFileSync(`${n.pgdata}.pgha/postgres-tls/server.crt`, 'utf8')).toBe(readFileSync(join(pki, `node${i + 1}.crt`), 'utf8'));
      expect(readFileSync(`${n.pgdata}.pgha/postgres-tls/root.crt`, 'utf8')).toBe(readFileSync(join(pki, 'ca.crt'), 'utf8'));
    }
    const rows = await showState(monitor.url);
    const primary = nodes.find((n) => n.name === rows.find((r) => r.goal_state === 'primary')!.name)!;
    const standby = nodes.find((n) => n !== primary)!;
    const streams = await queryNode<{ ssl: boolean }>(primary.port, 'select s.ssl from pg_stat_replication r join pg_stat_ssl s using (pid)');
    expect(streams).toEqual([{ ssl: true }]);
    const [receiver] = await queryNode<{ conninfo: string }>(standby.port, 'select conninfo from pg_stat_wal_receiver');
    expect(receiver!.conninfo).toMatch(/sslmode=verify-full/);
  });

  it('refuses, at create time, a certificate of another CA or for another address, and creates nothing', async () => {
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.crt', '-days', '30', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1');
    const wrongHost = issue('wronghost', '10.9.9.9');
    const cases = [
      { cert: join(pki, 'other.crt'), key: join(pki, 'other.key'), says: /server certificate .*other\.crt not issued by the CA/ },
      { cert: wrongHost.cert, key: wrongHost.key, says: /server certificate .*wronghost\.crt does not name 127\.0\.0\.1/ },
    ];
    for (const c of cases) {
      const pgdata = join(dir, `refused-${cases.indexOf(c)}`, 'pgdata');
      const r = await runPgha(['monitor', 'create', '--pgdata', pgdata, '--pg-port', String(await getPort()), '--listen', `127.0.0.1:${await getPort()}`, '--ssl-ca-file', join(pki, 'ca.crt'), '--server-cert', c.cert, '--server-key', c.key]);
      expectOneLineError(r, c.says);
      expect(existsSync(join(pgdata, 'PG_VERSION'))).toBe(false);
      expect(existsSync(`${pgdata}.pgha/monitor.json`)).toBe(false);
    }
    // A node certificate that does not match its key.
    const n3 = issue('node3', '127.0.0.1');
    const mismatched = await runPgha(['keeper', 'create', 'postgres', '--monitor', monitor.url, '--pgdata', join(dir, 'node3', 'pgdata'), '--pg-port', String(await getPort()), '--name', 'node3', '--hostname', '127.0.0.1', '--server-cert', n3.cert, '--server-key', join(pki, 'node1.key')]);
    expectOneLineError(mismatched, /server key .*node1\.key does not match the certificate/);
    expect(existsSync(join(dir, 'node3', 'pgdata', 'PG_VERSION'))).toBe(false);
  });
});
