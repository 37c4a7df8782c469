/**
 * Clients on other hosts (issue 16 §4), on real processes: the monitor, two nodes and an
 * application host `app`, each in its own network namespace (test/helpers/netns.ts). The
 * application host is refused until its network is one of the formation's client networks
 * (`pgha set formation client-networks`); then it writes over TLS with the postgres role's
 * password (set at `keeper create --postgres-password-file`), and goes on writing to the new
 * primary after a failover and with a password changed by `pgha set postgres-password`. An
 * invalid network is refused with nothing changed, and no password shows in a process's
 * arguments or in any log. Then, on loopback, a node created with `--skip-pg-hba` whose
 * pg_hba.conf the keeper never touches.
 *
 * The clients are psql, run in the `app` namespace with every connection parameter given
 * (`passfile=`, `sslrootcert=`) and no PG* variable.
 *
 * Needs root and `ip netns`; where network namespaces are impossible the suite fails, unless
 * PGHA_SKIP_NETNS=1, which skips it and says why.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgBinDir, processCommandLine, allProcesses } from '@pgha/postgres';
import type { FormationView, NodeStateRow } from '@pgha/shared';
import { addNode, startMonitor, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { killNode, restartKeeper } from './helpers/crash.js';
import { isPrimaryAndSecondaries, showState } from './helpers/formation.js';
import { monitorFetch } from './helpers/monitor-access.js';
import { MONITOR_HTTP_PORT, NODE_BASE_PORT, type NetFormation } from './helpers/net-formation.js';
import { createNetwork, netnsAvailability, type SimNetwork } from './helpers/netns.js';
import { endAllProcesses, makeTestDir, runPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

const availability = netnsAvailability();
const skip = !availability.ok && process.env.PGHA_SKIP_NETNS === '1';
const skipReason = availability.ok ? '' : availability.reason;
if (skip) console.warn(`[client-networks] SKIPPED because PGHA_SKIP_NETNS=1: ${skipReason}`);

/** A password file as `pgha up` writes one: a pgpass line for postgres, 0600. */
function writePasswordFile(path: string, password: string): string {
  writeFileSync(path, `*:*:*:postgres:${password}\n`, { mode: 0o600 });
  return path;
}

/** Every file under `dir` whose name ends in `.log`, recursively. */
function logFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return logFiles(path);
    return name.endsWith('.log') ? [path] : [];
  });
}

describe.skipIf(skip)(skip ? `client networks (skipped: ${skipReason})` : 'clients on another host (monitor, 2 nodes and an application host, each in its own network namespace)', () => {
  let net: SimNetwork | undefined;
  let f: NetFormation;
  let monitor: TestMonitor;
  let node1: TestNode;
  let node2: TestNode;
  const passwords = { first: randomBytes(18).toString('base64url'), second: randomBytes(18).toString('base64url') };
  let files: { first: string; second: string; wrong: string };

  /**
   * psql in the `app` namespace: `sql` on `nodes` (several: libpq's multi-host list with
   * `target_session_attrs=read-write` unless `targetSessionAttrs` says otherwise), as postgres with the password of `passfile`, with TLS
   * verified against the monitor's CA unless `sslmode` says otherwise.
   */
  async function appSql(nodes: readonly TestNode[], sql: string, options: { passfile?: string; sslmode?: string; targetSessionAttrs?: string } = {}): Promise<{ ok: boolean; stdout: string; stderr: string }> {
    const conninfo = [
      `host=${nodes.map((n) => n.host).join(',')}`,
      `port=${nodes.map((n) => n.port).join(',')}`,
      'user=postgres',
      'dbname=postgres',
      `sslmode=${options.sslmode ?? 'verify-full'}`,
      `sslrootcert=${monitor.caFile}`,
      `passfile=${options.passfile ?? files.first}`,
      `target_session_attrs=${options.targetSessionAttrs ?? 'read-write'}`,
      'connect_timeout=3',
    ].join(' ');
    const r = await execa('ip', ['netns', 'exec', net!.netns('app'), join(pgBinDir(), 'psql'), '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', conninfo, '-c', sql], {
      reject: false,
      stdin: 'ignore',
      extendEnv: false,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      timeout: 30_000,
    });
    return { ok: r.exitCode === 0, stdout: String(r.stdout).trim(), stderr: String(r.stderr) };
  }

  const roles = async (): Promise<NodeStateRow[]> => showState(monitor.url);

  beforeAll(async () => {
    if (!availability.ok) throw new Error(`${availability.reason}. Set PGHA_SKIP_NETNS=1 to skip this suite on such a machine.`);
    net = await createNetwork(['monitor', 'node1', 'node2', 'app']);
    monitor = await startMonitor({ host: net.host('monitor').addr, netns: net.netns('monitor'), httpPort: MONITOR_HTTP_PORT });
    files = {
      first: writePasswordFile(join(monitor.dir, 'postgres-password'), passwords.first),
      second: writePasswordFile(join(monitor.dir, 'postgres-password-2'), passwords.second),
      wrong: writePasswordFile(join(monitor.dir, 'wrong-password'), 'not-the-password'),
    };
    const nodeIn = (name: string, i: number) => ({ hostname: net!.host(name).addr, netns: net!.netns(name), port: NODE_BASE_PORT + i, extraArgs: ['--postgres-password-file', files.first] });
    node1 = await addNode(monitor, 'node1', nodeIn('node1', 1));
    node2 = await addNode(monitor, 'node2', nodeIn('node2', 2));
    f = { net, monitor, nodes: [node1, node2], hosts: [node1, node2].map((n) => ({ host: n.host, port: n.port })) };
    await waitFor('one primary and one secondary', async () => isPrimaryAndSecondaries(await roles()), { timeoutMs: 120_000, intervalMs: 250 });
  }, 300_000);

  afterAll(async () => {
    await endAllProcesses();
    await net?.destroy();
  });

  it('refuses the application host at first: pgha admits only the formation\'s own hosts', async () => {
    const r = await appSql([node1], 'select 1');
    expect(r.ok).toBe(false);
    expect(r.stderr).toContain(`no pg_hba.conf entry for host "${net!.host('app').addr}", user "postgres", database "postgres", SSL encryption`);
    expect(JSON.parse((await runPgha(['get', 'formation', 'client-networks', '--monitor', monitor.url, '--json'])).stdout)).toEqual({ formation: 'default', client_networks: [] });
  });

  it('refuses an invalid network, on the command line and in the API, and changes nothing', async () => {
    const cli = await runPgha(['set', 'formation', 'client-networks', `${net!.host('app').addr}/33`, '--monitor', monitor.url]);
    expect(cli.exitCode).toBe(2);
    expect(cli.stderr).toMatch(/^pgha: error: .*client network "10\.213\.\d+\.\d+\/33" has prefix length "33": an IPv4 prefix length is 0 to 32/);
    const eventsBefore = (await (await monitorFetch(`${monitor.url}/v1/formations/default/events?count=100`)).json()) as unknown[];
    const api = await monitorFetch(`${monitor.url}/v1/formations/default/settings`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clientNetworks: ['10.0.0.0/8', 'app.example.com'] }),
    });
    expect(api.status).toBe(400);
    const body = (await api.json()) as { code: string; message: string; field: string };
    expect(body).toMatchObject({ code: 'PGHA_ERR_VALIDATION', field: 'body.clientNetworks' });
    expect(body.message).toMatch(/client network "app\.example\.com" is not an IPv4 or IPv6 address/);
    const settings = (await (await monitorFetch(`${monitor.url}/v1/formations/default/settings`)).json()) as { formation: FormationView };
    expect(settings.formation.client_networks).toEqual([]);
    expect(((await (await monitorFetch(`${monitor.url}/v1/formations/default/events?count=100`)).json()) as unknown[]).length).toBe(eventsBefore.length);
    for (const n of [node1, node2]) expect(readFileSync(join(n.pgdata, 'pg_hba.conf'), 'utf8')).not.toContain('client network');
  });

  it('admits the application host once its network is a client network: TLS and the postgres password only', async () => {
    const cidr = `${net!.host('app').addr}/32`;
    const r = await runPgha(['set', 'formation', 'client-networks', cidr, '--monitor', monitor.url, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const change = JSON.parse(r.stdout) as { formation: FormationView; changes: string[]; warnings: string[] };
    expect(change.formation.client_networks).toEqual([cidr]);
    expect(change.changes).toEqual([`client networks of formation "default" set from none to ${cidr}`]);
    expect(change.warnings).toEqual([]);

    // Every keeper writes it into its managed block and reloads; the client then writes on the primary.
    await waitFor('the application host to write on the primary', async () => (await appSql([node1, node2], 'create table if not exists app_writes (id int primary key, at text)')).ok, { timeoutMs: 30_000, intervalMs: 250 });
    for (let id = 1; id <= 5; id++) expect((await appSql([node1, node2], `insert into app_writes values (${id}, 'before')`)).ok).toBe(true);
    await waitFor('both nodes to admit it', async () => [node1, node2].every((n) => readFileSync(join(n.pgdata, 'pg_hba.conf'), 'utf8').includes(`hostssl   all          all               ${cidr.padEnd(20)} scram-sha-256   # client network`)), { timeoutMs: 30_000 });

    // Not in clear text, not with another password, not as pgha's own roles.
    const plain = await appSql([node1], 'select 1', { sslmode: 'disable' });
    expect(plain.ok).toBe(false);
    expect(plain.stderr).toContain(`no pg_hba.conf entry for host "${net!.host('app').addr}", user "postgres", database "postgres", no encryption`);
    const wrong = await appSql([node1], 'select 1', { passfile: files.wrong });
    expect(wrong.ok).toBe(false);
    expect(wrong.stderr).toContain('password authentication failed for user "postgres"');
  });

  it('keeps writing to the new primary after a failover (the primary\'s keeper and Postgres killed), and the old primary keeps admitting it once rewound', async () => {
    killNode(node1);
    await waitFor('node2 to take writes', async () => (await roles()).some((r) => r.name === 'node2' && ['wait_primary', 'primary'].includes(r.reported_state)), { timeoutMs: 60_000, intervalMs: 200 });
    const written = await waitFor('the application host to write on the new primary', async () => {
      const r = await appSql([node1, node2], "insert into app_writes values (6, 'after') returning host(inet_server_addr())");
      return r.ok ? r.stdout : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    expect(written).toBe(node2.host);
    const rows = await appSql([node2], 'select count(*) from app_writes');
    expect(rows.stdout).toBe('6');

    // The old primary rejoins (pg_rewind or a base backup) with the client network in its block.
    await restartKeeper(f, node1);
    await waitFor('node1 to rejoin as secondary', async () => (await roles()).some((r) => r.name === 'node1' && r.reported_state === 'secondary'), { timeoutMs: 120_000, intervalMs: 250 });
    expect(readFileSync(join(node1.pgdata, 'pg_hba.conf'), 'utf8')).toContain(`${net!.host('app').addr}/32`);
    const read = await waitFor('the application host to read every write on the rejoined standby', async () => {
      const r = await appSql([node1], 'select count(*) from app_writes', { targetSessionAttrs: 'any' });
      return r.ok && r.stdout === '6' ? r : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    expect(read.stdout).toBe('6');
  });

  it('changes the postgres password from a file on the primary; a standby refuses, changing nothing', async () => {
    const onStandby = await runPgha(['set', 'postgres-password', '--pgdata', node1.pgdata, '--password-file', files.second]);
    expect(onStandby.exitCode).not.toBe(0);
    expect(onStandby.stderr).toMatch(/^pgha: error: node \d+ "node1" is a standby: its postgres role replicates from the primary/);
    expect((await appSql([node2], 'select 1')).ok).toBe(true);

    const r = await runPgha(['set', 'postgres-password', '--pgdata', node2.pgdata, '--password-file', files.second, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'node2', formation: 'default', role: 'postgres', set: true });
    const old = await appSql([node2], 'select 1');
    expect(old.ok).toBe(false);
    expect(old.stderr).toContain('password authentication failed for user "postgres"');
    expect((await appSql([node1, node2], "insert into app_writes values (7, 'new password')", { passfile: files.second })).ok).toBe(true);
  });

  it('shows no password in any process\'s arguments or in any log', async () => {
    const secrets = [passwords.first, passwords.second];
    for (const p of allProcesses()) {
      const argv = (processCommandLine(p.pid) ?? []).join(' ');
      for (const s of secrets) expect(argv.includes(s), `a password in the arguments of pid ${p.pid}`).toBe(false);
    }
    const logs = logFiles(monitor.dir).concat(logFiles(`${node1.pgdata}.pgha`), logFiles(`${node2.pgdata}.pgha`));
    expect(logs.some((l) => l.endsWith('postgres.log'))).toBe(true);
    for (const file of logs) {
      const text = readFileSync(file, 'utf8');
      for (const s of secrets) expect(text.includes(s), `a password in ${file}`).toBe(false);
    }
  });
});

describe('a node created with --skip-pg-hba', () => {
  afterAll(async () => {
    await endAllProcesses();
  });

  it('keeps the operator\'s pg_hba.conf as it is, client networks or not, and says so at start', async () => {
    const monitor = await startMonitor();
    const dir = makeTestDir();
    const passwordFile = writePasswordFile(join(dir, 'postgres-password'), randomBytes(12).toString('base64url'));
    const node = await addNode(monitor, 'solo', { extraArgs: ['--skip-pg-hba', '--postgres-password-file', passwordFile] });
    await waitFor('solo to be single', async () => (await showState(monitor.url)).some((r) => r.name === 'solo' && r.reported_state === 'single'), { timeoutMs: 60_000 });
    const hba = join(node.pgdata, 'pg_hba.conf');
    const before = readFileSync(hba, 'utf8');
    expect(before).not.toContain('BEGIN pgha');

    const set = await runPgha(['set', 'formation', 'client-networks', '10.99.0.0/16', '--monitor', monitor.url]);
    expect(set.exitCode, set.stderr).toBe(0);
    // The keeper is woken by the change, takes it, and says it leaves pg_hba.conf alone.
    const log = join(monitor.dir, 'solo.keeper.log');
    await waitFor('the keeper to take the client networks', () => readFileSync(log, 'utf8').includes("--skip-pg-hba: the formation's client networks (10.99.0.0/16) are not written into pg_hba.conf"), { timeoutMs: 30_000 });
    expect(readFileSync(hba, 'utf8')).toBe(before);
    expect(readFileSync(log, 'utf8')).toContain("pg_hba.conf is the operator's (--skip-pg-hba): the keeper never writes");
    const status = JSON.parse((await runPgha(['keeper', 'status', '--pgdata', node.pgdata, '--json'])).stdout) as { keeper: { running: boolean } };
    expect(status.keeper.running).toBe(true);
  }, 180_000);
});
