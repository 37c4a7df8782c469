/**
 * The pgbouncer recipe of docs/hooks.md, for real: a two-node formation whose keepers run
 * `docs/recipes/pgbouncer-on-role-change.sh` as their role-change hook, and Debian's
 * /usr/sbin/pgbouncer (as the postgres OS user: it refuses root) on a free loopback port with
 * its own ini and auth files in the test directory. A client writes through pgbouncer; the
 * primary node dies (keeper and postmaster SIGKILLed); the standby's hook re-points pgbouncer,
 * and an insert through pgbouncer lands on the new primary within the bound. Prints the ms.
 */
import { chownSync, chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import getPort from 'get-port';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResultPromise } from 'execa';
import { postgresOsUser } from '@pgha/postgres';
import { Probe } from '../bench/lib/probe.js';
import { addNode, startMonitor, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { killNode, logOffset, logRecords, waitForLogMessage } from './helpers/crash.js';
import { queryNode, showState } from './helpers/formation.js';
import { endAllProcesses, startTracked } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

const RECIPE = fileURLToPath(new URL('../docs/recipes/pgbouncer-on-role-change.sh', import.meta.url));
/** From the SIGKILL of the primary to an insert through pgbouncer acknowledged by the new primary. */
const FAILOVER_THROUGH_PGBOUNCER_BOUND_MS = 30_000;
const CLIENT_PASSWORD = 'client-secret';
const ADMIN_PASSWORD = 'admin-secret';

let monitor: TestMonitor;
let nodes: TestNode[];
let bouncer: ResultPromise;
let bouncerPort: number;
let ini: string;

/** A session through pgbouncer's `appdb` entry, undefined when pgbouncer refuses it now. */
async function connectBouncer(): Promise<pg.Client | undefined> {
  const client = new pg.Client({ host: '127.0.0.1', port: bouncerPort, user: 'postgres', password: CLIENT_PASSWORD, database: 'appdb', connectionTimeoutMillis: 1000, query_timeout: 5000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch {
    await client.end().catch(() => undefined);
    return undefined;
  }
}

/** The benchmark's probe (an insert every 20 ms, reconnecting at once), writing through pgbouncer. */
class BouncerWriter extends Probe {
  constructor() {
    super([], 'through_bouncer', 1, 'postgres', 20);
  }
  protected override connect(): Promise<pg.Client | undefined> {
    return connectBouncer();
  }
}

/** Wall-clock time (ms) of the first line of pino log `file` after byte `from` whose msg matches `pattern`. */
const logTime = (file: string, from: number, pattern: RegExp): number | undefined => logRecords(file, from).find((r) => pattern.test(r.msg))?.time;

/** The [databases] entry of pgbouncer's ini, as the hook left it. */
function appdbEntry(): string {
  return readFileSync(ini, 'utf8').split('\n').find((l) => l.startsWith('appdb'))!;
}

beforeAll(async () => {
  monitor = await startMonitor();
  const dir = monitor.dir;
  bouncerPort = await getPort({ host: '127.0.0.1' });
  const pgUser = postgresOsUser()!;
  ini = join(dir, 'pgbouncer.ini');
  const userlist = join(dir, 'pgbouncer-users.txt');
  // pgbouncer (the postgres OS user) reads the ini; root's hook rewrites it, keeping owner and mode.
  writeFileSync(ini, [
    '[databases]',
    'appdb = host=127.0.0.1 port=1 dbname=postgres',
    '',
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${bouncerPort}`,
    'unix_socket_dir =',
    'auth_type = scram-sha-256',
    `auth_file = ${userlist}`,
    'admin_users = pgbadmin',
    'pool_mode = session',
    // After a failed server login pgbouncer waits this long before trying that database again
    // (15 s by default): the dead primary must not hold the new one back.
    'server_login_retry = 1',
    'server_connect_timeout = 2',
    'ignore_startup_parameters = extra_float_digits',
    '',
  ].join('\n'), { mode: 0o644 });
  writeFileSync(userlist, `"postgres" "${CLIENT_PASSWORD}"\n"pgbadmin" "${ADMIN_PASSWORD}"\n`, { mode: 0o600 });
  chownSync(userlist, pgUser.uid, pgUser.gid);
  // The hook runs as root (the keeper's user) and reads the admin password from this file.
  const adminPass = join(dir, 'bouncer-admin.pgpass');
  writeFileSync(adminPass, `127.0.0.1:${bouncerPort}:pgbouncer:pgbadmin:${ADMIN_PASSWORD}\n`, { mode: 0o600 });
  chmodSync(adminPass, 0o600);
  bouncer = startTracked('setpriv', ['--reuid', String(pgUser.uid), '--regid', String(pgUser.gid), '--init-groups', '/usr/sbin/pgbouncer', ini], { logFile: join(dir, 'pgbouncer.log') });
  await waitFor('pgbouncer to listen', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: bouncerPort, user: 'pgbadmin', password: ADMIN_PASSWORD, database: 'pgbouncer', connectionTimeoutMillis: 500 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      return true;
    } catch {
      if (bouncer.exitCode !== null) throw new Error(`pgbouncer exited: ${readFileSync(join(dir, 'pgbouncer.log'), 'utf8')}`);
      return false;
    } finally {
      await c.end().catch(() => undefined);
    }
  }, { timeoutMs: 30_000 });

  const hook = [
    `PGBOUNCER_INI=${ini}`,
    'PGBOUNCER_DATABASE=appdb',
    `PGBOUNCER_ADMIN='host=127.0.0.1 port=${bouncerPort} dbname=pgbouncer user=pgbadmin'`,
    `PGPASSFILE=${adminPass}`,
    `sh ${RECIPE}`,
  ].join(' ');
  const extraArgs = ['--on-role-change', hook, '--on-role-change-timeout-ms', '10000'];
  const node1 = await addNode(monitor, 'node1', { extraArgs });
  await waitFor('node1 single', async () => (await showState(monitor.url)).some((r) => r.name === 'node1' && r.reported_state === 'single'), { timeoutMs: 120_000, intervalMs: 250 });
  const node2 = await addNode(monitor, 'node2', { extraArgs });
  nodes = [node1, node2];
  await waitFor('node1 primary, node2 secondary', async () => {
    const rows = await showState(monitor.url);
    return rows.some((r) => r.name === 'node1' && r.reported_state === 'primary') && rows.some((r) => r.name === 'node2' && r.reported_state === 'secondary');
  }, { timeoutMs: 180_000, intervalMs: 250 });
}, 400_000);

afterAll(async () => {
  await endAllProcesses();
});

describe('the pgbouncer recipe as a role-change hook', () => {
  it("points pgbouncer at the first primary when its keeper announces the role, and a client's writes go there", async () => {
    const [node1] = nodes;
    await waitFor('the hook to point appdb at node1', () => appdbEntry() === `appdb = host=127.0.0.1 port=${node1!.port} dbname=postgres`, { timeoutMs: 30_000 });
    const log = join(monitor.dir, 'node1.keeper.log');
    await waitForLogMessage(log, /^role-change hook none → primary exited 0 after \d+ ms$/, 0, { timeoutMs: 30_000 });
    await queryNode(node1!.port, 'create table through_bouncer (id bigint primary key, at timestamptz default clock_timestamp())');
    const c = await waitFor('a session through pgbouncer', connectBouncer, { timeoutMs: 30_000 });
    const { rows } = await c.query<{ port: number }>('insert into through_bouncer(id) values (0) returning inet_server_port() as port');
    await c.end();
    expect(Number(rows[0]!.port)).toBe(node1!.port);
    // The standby's hook ran too, and left pgbouncer alone.
    await waitForLogMessage(join(monitor.dir, 'node2.keeper.log'), /^role-change hook none → replica exited 0/, 0, { timeoutMs: 30_000 });
  });

  it('after the primary node dies, an insert through pgbouncer succeeds on the new primary within the bound', async () => {
    const [node1, node2] = nodes;
    const writer = new BouncerWriter();
    writer.start();
    try {
      await waitFor('writes through pgbouncer on node1', () => writer.acks.filter((a) => a.port === node1!.port).length >= 20, { timeoutMs: 30_000 });
      const node2Log = join(monitor.dir, 'node2.keeper.log');
      const from = logOffset(node2Log);
      const killedAt = performance.now();
      const killedAtWallMs = Date.now();
      killNode(node1!);
      const first = await waitFor('an insert through pgbouncer acknowledged by node2', () => writer.acks.find((a) => a.port === node2!.port && a.atMs > killedAt), { timeoutMs: FAILOVER_THROUGH_PGBOUNCER_BOUND_MS + 30_000, intervalMs: 10 });
      const failoverMs = Math.round(first.atMs - killedAt);
      const hookLine = await waitForLogMessage(node2Log, /^role-change hook replica → primary exited 0 after \d+ ms$/, from, { timeoutMs: 30_000 });
      const promotedMs = (logTime(node2Log, from, /^Transition complete: current state is now "wait_primary"$/) ?? Number.NaN) - killedAtWallMs;
      const hookDoneMs = (logTime(node2Log, from, /^role-change hook replica → primary exited 0/) ?? Number.NaN) - killedAtWallMs;
      console.log(`pgbouncer failover: ${failoverMs} ms from SIGKILL of the primary node to the first insert through pgbouncer acknowledged by the new primary; node2 reached wait_primary at +${promotedMs} ms, its hook finished at +${hookDoneMs} ms (${hookLine})`);
      expect(failoverMs).toBeLessThan(FAILOVER_THROUGH_PGBOUNCER_BOUND_MS);
      expect(appdbEntry()).toBe(`appdb = host=127.0.0.1 port=${node2!.port} dbname=postgres`);
      const onNode2 = await queryNode<{ n: string }>(node2!.port, 'select count(*) as n from through_bouncer where id = $1', [first.id]);
      expect(Number(onNode2[0]!.n)).toBe(1);
    } finally {
      await writer.stop();
    }
  });
});
