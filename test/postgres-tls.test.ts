/**
 * Postgres TLS end to end on a two-node formation under a TLS monitor (the helpers' default):
 * the standby streams over TLS, the monitor probes over TLS, the replication role is refused
 * without TLS, no secret shows in `ps`, in a log or in a data directory, each node keeps its
 * own key, and a switchover (the old primary rejoining with pg_rewind) works over TLS. A node
 * created with `--no-ssl` in another formation of the same monitor is still probed healthy, and
 * a node whose TLS mode differs from its formation's is refused at create time.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStateRow } from '@pgha/shared';
import { addNode, startMonitor, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { expectOneLineError, runPghaOk } from './helpers/cli.js';
import { isPrimaryAndSecondaries, queryNode, showState } from './helpers/formation.js';
import getPort from 'get-port';
import { endAllProcesses, runPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

let monitor: TestMonitor;
let nodes: TestNode[];
let env: Record<string, string>;

interface KeeperJson {
  replicationPassword: string;
  monitorProbePassword: string;
  nodeToken: string;
}
const keeperJson = (node: TestNode): KeeperJson => JSON.parse(readFileSync(`${node.pgdata}.pgha/keeper.json`, 'utf8')) as KeeperJson;
const tlsDir = (node: TestNode): string => `${node.pgdata}.pgha/postgres-tls`;
const state = (formation = 'default'): Promise<NodeStateRow[]> => showState(monitor.url).then(async (rows) => (formation === 'default' ? rows : (JSON.parse(await runPghaOk(['show', 'state', '--formation', formation, '--json'], env)) as NodeStateRow[])));
const byName = (name: string): TestNode => nodes.find((n) => n.name === name)!;

async function roles(): Promise<{ primary: TestNode; standby: TestNode }> {
  const rows = await state();
  return { primary: byName(rows.find((r) => r.goal_state === 'primary')!.name), standby: byName(rows.find((r) => r.goal_state === 'secondary')!.name) };
}

/** The walsenders of `primary` with their TLS, once every standby streams. */
async function replicationTls(primary: TestNode): Promise<{ application_name: string; ssl: boolean; version: string | null }[]> {
  return waitFor('the standby streaming', async () => {
    const rows = await queryNode<{ application_name: string; ssl: boolean; version: string | null }>(primary.port, "select application_name, ssl, version from pg_stat_ssl join pg_stat_replication using (pid) where state = 'streaming'");
    return rows.length === 1 ? rows : undefined;
  }, { timeoutMs: 30_000, intervalMs: 200 });
}

/** Every file under `dir` whose name ends in `.log` (data directories are not entered). */
function logFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'pgdata') out.push(...logFiles(path));
    else if (entry.isFile() && entry.name.endsWith('.log')) out.push(path);
  }
  return out;
}

function postgresUid(): number {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'))!;
  return Number(line.split(':')[2]);
}

beforeAll(async () => {
  monitor = await startMonitor();
  env = { PGHA_MONITOR: monitor.url };
  nodes = [await addNode(monitor, 'tls-a'), await addNode(monitor, 'tls-b')];
  await waitFor('one primary and one secondary', async () => isPrimaryAndSecondaries(await state()), { timeoutMs: 90_000, intervalMs: 250 });
}, 300_000);

afterAll(async () => {
  await endAllProcesses();
});

describe('Postgres TLS in a formation', () => {
  it('streams replication over TLS, each node serving its own certificate', async () => {
    const { primary, standby } = await roles();
    const rows = await replicationTls(primary);
    expect(rows[0]).toMatchObject({ ssl: true, version: expect.stringMatching(/^TLSv1\.[23]$/) as unknown as string });
    const receiver = await queryNode<{ conninfo: string }>(standby.port, 'select conninfo from pg_stat_wal_receiver');
    expect(receiver[0]!.conninfo).toMatch(/sslmode=verify-full/);
    expect(receiver[0]!.conninfo).toContain(`passfile=${tlsDir(standby)}/pgpass`);
    for (const node of nodes) {
      const [settings] = await queryNode<{ ssl: string; cert: string; key: string; min: string }>(node.port, "select current_setting('ssl') as ssl, current_setting('ssl_cert_file') as cert, current_setting('ssl_key_file') as key, current_setting('ssl_min_protocol_version') as min");
      expect(settings).toEqual({ ssl: 'on', cert: `${tlsDir(node)}/server.crt`, key: `${tlsDir(node)}/server.key`, min: 'TLSv1.2' });
    }
    // The standby was cloned from the primary but has its own key pair.
    expect(readFileSync(`${tlsDir(standby)}/server.crt`, 'utf8')).not.toBe(readFileSync(`${tlsDir(primary)}/server.crt`, 'utf8'));
    expect(readFileSync(`${tlsDir(standby)}/server.key`, 'utf8')).not.toBe(readFileSync(`${tlsDir(primary)}/server.key`, 'utf8'));
  });

  it('is probed by the monitor over TLS', async () => {
    for (const node of nodes) {
      const sessions = await waitFor(`a probe session on ${node.name}`, async () => {
        const rows = await queryNode<{ ssl: boolean }>(node.port, "select s.ssl from pg_stat_activity a join pg_stat_ssl s using (pid) where a.usename = 'pgha_monitor'");
        return rows.length > 0 ? rows : undefined;
      });
      expect(sessions.every((s) => s.ssl)).toBe(true);
    }
    expect((await state()).map((r) => r.health)).toEqual(['good', 'good']);
  });

  it('refuses the replication and probe roles without TLS, even with the right password', async () => {
    const { primary } = await roles();
    const password = keeperJson(primary).replicationPassword;
    const attempt = async (ssl: pg.ClientConfig['ssl'], replication: boolean): Promise<void> => {
      const client = new pg.Client({ host: '127.0.0.1', port: primary.port, user: 'pgha_replication', password, database: replication ? 'replication' : 'postgres', ssl, connectionTimeoutMillis: 5000, ...(replication ? { replication: true } : {}) } as pg.ClientConfig);
      client.on('error', () => undefined);
      try {
        await client.connect();
      } finally {
        await client.end().catch(() => undefined);
      }
    };
    await expect(attempt(false, true)).rejects.toThrow(/pg_hba.conf rejects replication connection for host "127.0.0.1", user "pgha_replication", no encryption/);
    await expect(attempt(false, false)).rejects.toThrow(/pg_hba.conf rejects connection for host "127.0.0.1", user "pgha_replication", database "postgres", no encryption/);
    const probePassword = keeperJson(primary).monitorProbePassword;
    const probe = new pg.Client({ host: '127.0.0.1', port: primary.port, user: 'pgha_monitor', password: probePassword, database: 'postgres', ssl: false, connectionTimeoutMillis: 5000 });
    probe.on('error', () => undefined);
    await expect(probe.connect()).rejects.toThrow(/pg_hba.conf rejects connection for host "127.0.0.1", user "pgha_monitor", database "postgres", no encryption/);
    await probe.end().catch(() => undefined);
    // The same password over TLS is accepted: it is the encryption that was missing.
    await expect(attempt({ rejectUnauthorized: false }, false)).resolves.toBeUndefined();
  });

  it('shows no password or token in ps, in any log, or in a data directory', async () => {
    const secrets = new Map<string, string>();
    for (const node of nodes) {
      const k = keeperJson(node);
      secrets.set(`replication password`, k.replicationPassword);
      secrets.set(`probe password`, k.monitorProbePassword);
      secrets.set(`node token of ${node.name}`, k.nodeToken);
      // A line from the middle of the private key's base64.
      secrets.set(`TLS key of ${node.name}`, readFileSync(`${tlsDir(node)}/server.key`, 'utf8').split('\n')[5]!);
    }
    secrets.set('operator token', readFileSync(monitor.authTokenFile, 'utf8').trim());
    const found = (text: string): string[] => [...secrets].filter(([, value]) => text.includes(value)).map(([what]) => what);

    const ps = await execa('ps', ['-eo', 'args']);
    expect(found(ps.stdout)).toEqual([]);
    const logs = logFiles(monitor.dir);
    expect(logs.filter((f) => f.endsWith('postgres.log')).length).toBe(3); // the monitor's and each node's
    for (const file of logs) expect({ file, found: found(readFileSync(file, 'utf8')) }).toEqual({ file, found: [] });
    for (const node of nodes) {
      for (const name of ['pgha.conf', 'postgresql.auto.conf', 'postgresql.conf']) {
        const text = readFileSync(join(node.pgdata, name), 'utf8');
        expect({ file: name, found: found(text), password: /password\s*=/.test(text) }).toEqual({ file: name, found: [], password: false });
      }
    }
  });

  it('keeps the key, certificate and pgpass files 0600 and owned by postgres, in a 0700 directory', () => {
    const uid = postgresUid();
    for (const node of nodes) {
      const dir = statSync(tlsDir(node));
      expect({ mode: (dir.mode & 0o777).toString(8), uid: dir.uid }).toEqual({ mode: '700', uid });
      for (const file of ['server.key', 'server.crt', 'root.crt', 'pgpass']) {
        const st = statSync(join(tlsDir(node), file));
        expect({ file, mode: (st.mode & 0o777).toString(8), uid: st.uid }).toEqual({ file, mode: '600', uid });
      }
      expect(readFileSync(join(tlsDir(node), 'pgpass'), 'utf8')).toBe(`*:*:*:pgha_replication:${keeperJson(node).replicationPassword}\n`);
    }
  });

  it('switches over, the old primary rejoining with pg_rewind over TLS', async () => {
    const before = await roles();
    const startedAt = performance.now();
    const out = JSON.parse(await runPghaOk(['perform', 'switchover', '--json'], env)) as { elapsed_ms: number };
    await waitFor('roles swapped', async () => {
      const rows = await state();
      return isPrimaryAndSecondaries(rows) && rows.find((r) => r.goal_state === 'primary')!.name === before.standby.name;
    }, { timeoutMs: 90_000, intervalMs: 200 });
    console.log(`[tls switchover] command reported ${out.elapsed_ms} ms; roles swapped and settled after ${(performance.now() - startedAt).toFixed(0)} ms`);
    const keeperLog = readFileSync(join(monitor.dir, `${before.primary.name}.keeper.log`), 'utf8');
    expect(keeperLog).toContain('pg_rewind from the new primary');
    expect(keeperLog).not.toContain('pg_rewind failed');
    expect(keeperLog).not.toContain('pg_basebackup from the primary');
    const rows = await replicationTls(before.standby);
    expect(rows[0]!.ssl).toBe(true);
    // pg_rewind copied the new primary's pgha.conf; the old primary runs with its own files again.
    for (const node of nodes) {
      const [settings] = await queryNode<{ cert: string; key: string }>(node.port, "select current_setting('ssl_cert_file') as cert, current_setting('ssl_key_file') as key");
      expect(settings).toEqual({ cert: `${tlsDir(node)}/server.crt`, key: `${tlsDir(node)}/server.key` });
    }
  });

  it('probes a node created with --no-ssl in clear text, and finds it healthy', async () => {
    await runPghaOk(['create', 'formation', 'plain', '--number-sync-standbys', '0'], env);
    const plain = await addNode(monitor, 'plain-a', { formation: 'plain', extraArgs: ['--no-ssl'] });
    await waitFor('the --no-ssl node single and healthy', async () => {
      const rows = await state('plain');
      return rows.length === 1 && rows[0]!.reported_state === 'single' && rows[0]!.health === 'good';
    }, { timeoutMs: 60_000, intervalMs: 200 });
    const [settings] = await queryNode<{ ssl: string }>(plain.port, "select current_setting('ssl') as ssl");
    expect(settings!.ssl).toBe('off');
    const sessions = await queryNode<{ ssl: boolean }>(plain.port, "select s.ssl from pg_stat_activity a join pg_stat_ssl s using (pid) where a.usename = 'pgha_monitor'");
    expect(sessions.length).toBeGreaterThan(0);
    expect(sessions.every((s) => !s.ssl)).toBe(true);
  });

  it('refuses at create time a node whose TLS mode differs from its formation\'s, creating nothing', async () => {
    const cases = [
      { formation: 'default', args: ['--no-ssl'], says: /asks for Postgres without TLS \(--no-ssl\), but node \d+ "tls-[ab]" of formation "default" runs with TLS.*drop --no-ssl/ },
      { formation: 'plain', args: [], says: /asks for Postgres with TLS, but node \d+ "plain-a" of formation "plain" runs without TLS.*add --no-ssl/ },
    ];
    const before = { default: await state(), plain: await state('plain') };
    for (const [i, c] of cases.entries()) {
      const pgdata = join(monitor.dir, `mixed-${i}`, 'pgdata');
      const r = await runPgha(['keeper', 'create', 'postgres', '--monitor', monitor.url, '--formation', c.formation, '--pgdata', pgdata, '--pg-port', String(await getPort({ host: '127.0.0.1' })), '--name', `mixed-${i}`, '--hostname', '127.0.0.1', ...c.args], env);
      expectOneLineError(r, c.says);
      expect(existsSync(join(pgdata, 'PG_VERSION'))).toBe(false);
      expect(existsSync(`${pgdata}.pgha/keeper.json`)).toBe(false);
    }
    expect((await state()).map((r) => r.name)).toEqual(before.default.map((r) => r.name));
    expect((await state('plain')).map((r) => r.name)).toEqual(before.plain.map((r) => r.name));
  });
});
