/**
 * `pgha up --nodes N [--monitors 3] --dir DIR`: a whole local formation for a first try and for
 * tests. It creates (or reuses) a monitor (or, with `--monitors 3`, a 3-member etcd cluster and
 * three monitors on it) and N nodes under DIR on free loopback ports, runs each monitor and
 * each keeper as separate child processes (so one can die alone), prints state changes as they
 * happen, and stops everything it started on SIGINT/SIGTERM.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import getPort from 'get-port';
import type { Logger } from 'pino';
import { MonitorClient } from '@pgha/client';
import { delay, pgCtlStop, postgresSpawnOptions, postmasterPid, readPasswordFile, readSecretFile, setRolePassword, socketDirFor, waitFor, writeJsonAtomic, writeSecretFile } from '@pgha/postgres';
import { keeperHttpListen, keeperPaths, loadKeeperConfig } from '@pgha/keeper';
import { DEFAULT_FORMATION, PghaError, ValidationError, formatDurationMs, formatHostPort, type NodeStateRow, type UpFile } from '@pgha/shared/base';
import { withRootCert } from './client-uri.js';
import { defaultUpDir } from './up-dir.js';
import { startLocalEtcd, type LocalEtcd } from './local-etcd.js';
import { PGHA_BIN, serviceCommand } from './service-command.js';

const BIN = PGHA_BIN;
const ENSURE_POSTGRES = fileURLToPath(new URL('../scripts/ensure-postgres.sh', import.meta.url));
const ENSURE_ETCD = fileURLToPath(new URL('../scripts/ensure-etcd.sh', import.meta.url));

/** Options of {@link up}. */
export interface UpOptions {
  nodes: number;
  dir?: string;
  /**
   * 1 (default): one monitor on its own Postgres. 3: a local 3-member etcd cluster (TLS with
   * the monitors' CA) and three monitors on it, any of which serves and one of which decides.
   */
  monitors?: 1 | 3;
}

/** What the nodes and the printer need of the monitors `up` started. */
interface UpMonitors {
  urls: string[];
  credentials: { token: string; ca: string | undefined };
  /** Credential options of `pgha keeper create`. */
  credentialArgs: string[];
  caFile: string | undefined;
  authTokenFile: string;
  /** The viewer token file (read-only access), when the monitor has one. */
  viewerTokenFile: string | undefined;
}

/**
 * Runs one of the project's install scripts (`scripts/ensure-*.sh`: installs what this machine
 * lacks, quiet when it is there), as `.ci/run` and `npm test` do.
 *
 * @throws PghaError `PGHA_ERR_CONFIG` with `hint` when it fails.
 */
async function ensureInstalled(script: string, what: string, hint: string): Promise<void> {
  const installed = await execa('bash', [script], { stdio: 'inherit', reject: false });
  if (installed.exitCode !== 0) throw new PghaError('PGHA_ERR_CONFIG', `${what} is not installed and could not be installed`, { hint });
}


/** How long after a service ended `pgha up` looks whether a Ctrl-C ended it (ms). */
const ENDED_BY_CTRL_C_MS = 200;

function spawnPgha(args: string[], logFile: string) {
  return spawnLogged([process.execPath, BIN, ...args], logFile);
}

/** `pgha monitor run` or `pgha keeper run`, as a service runs it (`service-command.ts`). */
function spawnService(kind: 'monitor' | 'keeper', pgdata: string, logFile: string) {
  return spawnLogged(serviceCommand(kind, pgdata), logFile);
}

function spawnLogged([file, ...args]: [string, ...string[]], logFile: string) {
  return execa(file, args, {
    stdin: 'ignore',
    stdout: { file: logFile, append: true },
    stderr: { file: logFile, append: true },
    reject: false,
  });
}

/** Checks that the Postgres OS user can reach (traverse) `dir`; the data directories below it are created for it. */
async function assertPostgresCanReach(dir: string): Promise<void> {
  const spawn = postgresSpawnOptions();
  if (spawn.uid === undefined) return;
  const probe = await execa('test', ['-x', dir], { ...spawn, extendEnv: false, reject: false });
  if (probe.exitCode !== 0) {
    throw new ValidationError(`the Postgres OS user cannot reach ${dir}`, { hint: `choose a --dir it can reach, e.g. ${defaultUpDir()}`, field: 'dir' });
  }
}

/**
 * Runs the local formation until `signal` aborts, then stops every process it started.
 *
 * @throws PghaError when setting up fails (everything started so far is stopped first).
 */
export async function up(options: UpOptions, log: Logger, signal: AbortSignal): Promise<void> {
  if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 9) {
    throw new ValidationError(`--nodes must be a whole number from 1 to 9, got ${options.nodes}`, { field: 'nodes' });
  }
  if (options.monitors !== undefined && options.monitors !== 1 && options.monitors !== 3) {
    throw new ValidationError(`--monitors must be 1 (one monitor on its own Postgres) or 3 (three monitors on a local etcd cluster), got ${String(options.monitors)}`, { field: 'monitors' });
  }
  await ensureInstalled(ENSURE_POSTGRES, 'PostgreSQL 15', 'apt-get install -y postgresql-15');
  if (options.monitors === 3) await ensureInstalled(ENSURE_ETCD, 'etcd', 'apt-get install -y etcd-server etcd-client');

  const dir = resolve(options.dir ?? defaultUpDir());
  const existed = existsSync(dir);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  // A directory we just made is ours to open for traversal (a umask may have narrowed it).
  if (!existed) chmodSync(dir, 0o755);
  await assertPostgresCanReach(dir);

  const children: { name: string; proc: ReturnType<typeof spawnPgha>; pgdata?: string }[] = [];
  const upFile: UpFile = { monitor: { url: '', pid: 0, pgdata: '' }, uri: '', nodes: [] };
  let etcd: LocalEtcd | undefined;
  let stopping = false;
  /**
   * Keeps a started service, to stop it at the end. One that ends before then (killed, crashed) is
   * said on the console, since `pgha up` does not start it again. Said a moment later, so that
   * services stopped by the same Ctrl-C as `pgha up` (one process group) are not reported.
   */
  const track = (child: (typeof children)[number]): void => {
    children.push(child);
    void child.proc.then((r) => {
      setTimeout(() => {
        if (stopping || signal.aborted) return;
        const how = r.signal ? `was stopped by ${r.signal}` : `exited with code ${String(r.exitCode)}`;
        process.stdout.write(`${new Date().toISOString().slice(11, 23)}  ${child.name.padEnd(8)} ${how}: pgha up does not start it again (logs in ${dir})\n`);
      }, ENDED_BY_CTRL_C_MS).unref();
    });
  };
  const stopAll = async (): Promise<void> => {
    stopping = true;
    // Monitors first, so that they take no decision while the nodes stop; etcd last.
    const isMonitor = (c: { name: string }): boolean => c.name.startsWith('monitor');
    const ordered = [...children.filter(isMonitor), ...children.filter((c) => !isMonitor(c)).reverse()];
    for (const c of ordered) {
      if (c.proc.exitCode === null && c.proc.pid) {
        c.proc.kill('SIGTERM');
        const killer = setTimeout(() => c.proc.kill('SIGKILL'), 20_000);
        await c.proc;
        clearTimeout(killer);
      }
    }
    for (const n of upFile.nodes) if (postmasterPid(n.pgdata) !== undefined) await pgCtlStop(n.pgdata).catch(() => undefined);
    if (upFile.monitor.pgdata && postmasterPid(upFile.monitor.pgdata) !== undefined) await pgCtlStop(upFile.monitor.pgdata).catch(() => undefined);
    await etcd?.stop();
  };

  try {
    let monitors: UpMonitors;
    if (options.monitors === 3) {
      const started = await startEtcdMonitors(dir, log, (name, proc) => track({ name, proc }));
      etcd = started.etcd;
      monitors = started.monitors;
      upFile.monitors = started.running;
      upFile.monitor = started.running[0]!;
      upFile.etcd = etcd.members.map((m) => ({ name: m.name, client_url: m.clientUrl, pid: m.pid, data_dir: m.dataDir }));
    } else {
      const started = await startSingleMonitor(dir, log, (name, proc) => track({ name, proc }));
      monitors = started.monitors;
      upFile.monitor = started.running;
    }
    const { credentials, credentialArgs, caFile } = monitors;
    const monitorList = monitors.urls.join(',');
    const client = new MonitorClient(monitors.urls, credentials);
    await waitFor('the monitors to answer', async () => {
      const exited = children.find((c) => c.name.startsWith('monitor') && c.proc.exitCode !== null);
      if (exited) throw new PghaError('PGHA_ERR_MONITOR_UNAVAILABLE', `${exited.name} exited; see its log in ${dir}`);
      return (await client.formationState(DEFAULT_FORMATION)) ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200 });
    log.info(`monitor${monitors.urls.length > 1 ? 's are' : ' is'} running at ${monitors.urls.join(', ')}`);

    const printer = watchStates(client, log, signal);

    // The postgres role's password, for clients over TCP (never trust on TCP).
    const pgpassFile = join(dir, 'pgpass');
    if (!existsSync(pgpassFile)) writeSecretFile(pgpassFile, `*:*:*:postgres:${randomBytes(18).toString('base64url')}\n`);
    // Nodes, one after the other: a standby's base backup needs the primary's keeper running.
    const usedPorts: number[] = [];
    for (let i = 1; i <= options.nodes; i++) {
      const name = `node${i}`;
      const nodeDir = join(dir, name);
      mkdirSync(nodeDir, { recursive: true, mode: 0o755 });
      const pgdata = join(nodeDir, 'pgdata');
      const logFile = join(nodeDir, 'keeper.log');
      let port: number;
      let http: { host: string; port: number };
      if (existsSync(keeperPaths(pgdata).config)) {
        const config = loadKeeperConfig(pgdata);
        port = config.pgPort;
        http = keeperHttpListen(config);
      } else {
        port = await getPort({ host: '127.0.0.1', exclude: usedPorts });
        http = { host: '127.0.0.1', port: await getPort({ host: '127.0.0.1', exclude: [...usedPorts, port] }) };
        log.info(`creating ${name} on port ${port} (keeper HTTP on port ${http.port})`);
        const created = await spawnPgha(['keeper', 'create', 'postgres', '--monitor', monitorList, '--pgdata', pgdata, '--pg-port', String(port), '--name', name, '--hostname', '127.0.0.1', '--http-listen', formatHostPort(http.host, http.port), ...credentialArgs], logFile);
        if (created.exitCode !== 0) throw new PghaError('PGHA_ERR_POSTGRES_COMMAND', `creating ${name} failed; see ${logFile}`);
        // The first node: give the postgres role the password of <dir>/pgpass (standbys copy it).
        if (i === 1) await setPostgresPassword(pgdata, port, pgpassFile);
      }
      usedPorts.push(port, http.port);
      if (signal.aborted) break;
      const keeper = spawnService('keeper', pgdata, logFile);
      track({ name, proc: keeper, pgdata });
      upFile.nodes.push({ name, pgdata, port, keeper_pid: keeper.pid ?? 0, http_url: `${caFile ? 'https' : 'http'}://${formatHostPort(http.host, http.port)}` });
    }
    // Clients authenticate with SCRAM (the password is in <dir>/pgpass, 0600) and verify the
    // nodes' certificates against the monitor's CA.
    upFile.uri = withRootCert((await client.formationUri(DEFAULT_FORMATION)).uri.replace('postgres://', 'postgres://postgres@'), caFile);
    upFile.pgpass_file = pgpassFile;
    upFile.auth_token_file = monitors.authTokenFile;
    if (monitors.viewerTokenFile) upFile.viewer_token_file = monitors.viewerTokenFile;
    if (caFile) upFile.ca_file = caFile;
    writeJsonAtomic(join(dir, 'up.json'), upFile, 0o644);
    const exports = [`export PGHA_MONITOR=${monitorList}`, `export PGHA_AUTH_TOKEN_FILE=${monitors.authTokenFile}`, ...(caFile ? [`export PGHA_SSL_CA_FILE=${caFile}`] : []), `export PGPASSFILE=${pgpassFile}`];
    const httpLines = upFile.nodes.map((n) => `  ${n.name}: ${n.http_url}`);
    const etcdLines = upFile.etcd ? `\nMonitors: ${monitors.urls.join(', ')}\netcd members (TLS, the monitors' CA): ${upFile.etcd.map((m) => m.client_url).join(', ')}\n` : '';
    process.stdout.write(`${etcdLines}\nFormation "${DEFAULT_FORMATION}" is up. Connect with:\n  PGPASSFILE=${pgpassFile} psql '${upFile.uri}'\n\nKeepers' HTTP servers (GET /primary, /replica, /health, /state, /metrics):\n${httpLines.join('\n')}\n\n${exports.join('\n')}\n\n(state in ${join(dir, 'up.json')}; Ctrl-C stops everything)\n`);
    await new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));
    await printer.catch(() => undefined);
    await client.close();
  } finally {
    log.info('stopping every process started by pgha up');
    await stopAll();
  }
}

/** Sets the postgres role's password to the one in `pgpassFile` (`*:*:*:postgres:PASSWORD`), over the node's Unix socket. */
async function setPostgresPassword(pgdata: string, port: number, pgpassFile: string): Promise<void> {
  await setRolePassword({ socketDir: socketDirFor(pgdata), port }, 'postgres', readPasswordFile(pgpassFile, 'pgpass', 'postgres'));
}

/** How often `pgha up`'s console asks for the formation's state while a node moves (ms). */
export const WATCH_MOVING_MS = 250;
/** How often it asks at rest (ms). */
export const WATCH_AT_REST_MS = 1000;
/** How long after the last change it still asks every {@link WATCH_MOVING_MS} (ms). */
export const WATCH_SETTLE_MS = 2000;

/**
 * The wait (ms) before `pgha up`'s console asks for the formation's state again: every
 * {@link WATCH_MOVING_MS} while a node is away from its goal or not `good`, while the monitor
 * did not answer (`rows` empty), and for {@link WATCH_SETTLE_MS} after a change; every
 * {@link WATCH_AT_REST_MS} at rest. Each ask costs the monitor an HTTPS request and three or four
 * statements to its store: every 250 ms, an idle formation under `pgha up` sent its monitor's
 * store more statements for the console than for the keepers (bench/results/idle.md). A change
 * that starts at rest shows up to a second late; the lines of the change after it come as fast
 * as before.
 *
 * @param lastChangeMs - when the console last printed a line (`Date.now()` ms).
 */
export function nextWatchMs(rows: readonly Pick<NodeStateRow, 'reported_state' | 'goal_state' | 'health'>[], lastChangeMs: number, nowMs: number): number {
  const atRest = rows.length > 0 && rows.every((r) => r.reported_state === r.goal_state && r.health === 'good') && nowMs - lastChangeMs >= WATCH_SETTLE_MS;
  return atRest ? WATCH_AT_REST_MS : WATCH_MOVING_MS;
}

/** Prints each node's (reported, goal) state whenever it changes, until `signal` aborts. */
async function watchStates(client: MonitorClient, log: Logger, signal: AbortSignal): Promise<void> {
  const seen = new Map<number, string>();
  let lastChangeMs = Date.now();
  while (!signal.aborted) {
    const rows: NodeStateRow[] = await client.formationState(DEFAULT_FORMATION).catch(() => []);
    for (const r of rows) {
      const key = `${r.reported_state}/${r.goal_state}/${r.health}`;
      if (seen.get(r.node_id) !== key) {
        seen.set(r.node_id, key);
        lastChangeMs = Date.now();
        process.stdout.write(`${new Date().toISOString().slice(11, 23)}  ${r.name.padEnd(8)} ${`${r.host}:${r.port}`.padEnd(16)} reported ${r.reported_state.padEnd(14)} goal ${r.goal_state.padEnd(14)} health ${r.health}\n`);
      }
    }
    await delay(nextWatchMs(rows, lastChangeMs, Date.now()), signal);
  }
  void log;
}

/** Records a monitor's child process (stopped first by `up`'s end). */
type AddChild = (name: string, proc: ReturnType<typeof spawnPgha>) => void;

/**
 * The single monitor on its own Postgres: created in `dir/monitor` unless it exists there, then
 * run as a child process.
 */
async function startSingleMonitor(dir: string, log: Logger, addChild: AddChild): Promise<{ monitors: UpMonitors; running: { url: string; pid: number; pgdata: string } }> {
  // Loaded here, not at start-up: `pgha keeper run` and client commands never need the monitor's code.
  const { createMonitor, loadMonitorConfig, monitorPaths, monitorUrlFor } = await import('@pgha/monitor');
  const monitorDir = join(dir, 'monitor');
  mkdirSync(monitorDir, { recursive: true, mode: 0o755 });
  const pgdata = join(monitorDir, 'pgdata');
  if (!existsSync(monitorPaths(pgdata).config)) {
    const pgPort = await getPort({ host: '127.0.0.1' });
    const httpPort = await getPort({ host: '127.0.0.1', exclude: [pgPort] });
    log.info(`creating the monitor in ${pgdata}`);
    await createMonitor({ pgdata, pgPort, listen: `127.0.0.1:${httpPort}` }, log);
  }
  const config = loadMonitorConfig(pgdata);
  const caFile = config.tls.mode === 'off' ? undefined : config.tls.caFile;
  const url = monitorUrlFor(config.listen, config.tls.mode !== 'off');
  const proc = spawnService('monitor', pgdata, join(monitorDir, 'monitor.log'));
  addChild('monitor', proc);
  return { monitors: monitorsOf([url], config.authTokenFile, caFile, config.viewerTokenFile), running: { url, pid: proc.pid ?? 0, pgdata } };
}

/** The credentials of the monitors' API: the operator token file and the CA. */
function monitorsOf(urls: string[], authTokenFile: string, caFile: string | undefined, viewerTokenFile: string | undefined): UpMonitors {
  return {
    urls,
    credentials: { token: readSecretFile(authTokenFile, 'auth token'), ca: caFile ? readFileSync(caFile, 'utf8') : undefined },
    credentialArgs: ['--auth-token-file', authTokenFile, ...(caFile ? ['--ssl-ca-file', caFile] : [])],
    caFile,
    authTokenFile,
    viewerTokenFile,
  };
}

/**
 * `--monitors 3`: the monitors' CA (`dir/ca/`, made once), a 3-member etcd cluster in `dir/etcd`
 * whose members' certificates it signs (TLS between members and to clients), and three
 * monitors `dir/monitor-N` on it: the first creates the store (with that CA), the others join
 * it; each runs as a child process. Everything already created is reused. Also the failover
 * benchmark's `pgha-3-monitors` system (bench/lib/systems.ts).
 */
export async function startEtcdMonitors(dir: string, log: Logger, addChild: AddChild): Promise<{ monitors: UpMonitors; running: { url: string; pid: number; pgdata: string }[]; etcd: LocalEtcd }> {
  const { createCertificateAuthority, loadMonitorConfig, monitorPaths, monitorUrlFor } = await import('@pgha/monitor');
  const caDir = join(dir, 'ca');
  const ca = { certFile: join(caDir, 'ca.crt'), keyFile: join(caDir, 'ca.key') };
  if (!existsSync(ca.keyFile)) {
    mkdirSync(caDir, { recursive: true, mode: 0o711 });
    const made = createCertificateAuthority('pgha up monitors CA');
    writeSecretFile(ca.keyFile, made.privateKeyPem);
    writeSecretFile(ca.certFile, made.certificatePem, 0o644);
  }
  const caPem = { certificatePem: readFileSync(ca.certFile, 'utf8'), privateKeyPem: readSecretFile(ca.keyFile, 'CA key') };
  const etcdDir = join(dir, 'etcd');
  mkdirSync(etcdDir, { recursive: true, mode: 0o700 });
  log.info(`starting a 3-member etcd cluster in ${etcdDir}`);
  const etcd = await startLocalEtcd({ dir: etcdDir, members: 3, tls: { ca: caPem, clientCertAuth: true }, reuse: true });
  try {
    const tls = etcd.tls!;
    const storeArgs = ['--store', etcd.storeUri('/pgha'), '--store-ca-file', tls.caFile, '--store-cert-file', tls.clientCertFile, '--store-key-file', tls.clientKeyFile];
    const running: { url: string; pid: number; pgdata: string }[] = [];
    const used: number[] = [];
    for (let i = 1; i <= 3; i++) {
      const monitorDir = join(dir, `monitor-${i}`);
      mkdirSync(monitorDir, { recursive: true, mode: 0o755 });
      const pgdata = join(monitorDir, 'pgdata');
      const logFile = join(monitorDir, 'monitor.log');
      if (!existsSync(monitorPaths(pgdata).config)) {
        const httpPort = await getPort({ host: '127.0.0.1', exclude: used });
        used.push(httpPort);
        log.info(`creating monitor ${i} in ${pgdata}${i === 1 ? ' (it creates the store)' : ' (it joins the store)'}`);
        const tlsArgs = i === 1 ? ['--ssl-ca-file', ca.certFile, '--ssl-ca-key-file', ca.keyFile, ...storeArgs] : [...storeArgs, '--join'];
        const created = await spawnPgha(['monitor', 'create', '--pgdata', pgdata, '--listen', `127.0.0.1:${httpPort}`, ...tlsArgs], logFile);
        if (created.exitCode !== 0) throw new PghaError('PGHA_ERR_CONFIG', `creating monitor ${i} failed; see ${logFile}`);
      }
      const config = loadMonitorConfig(pgdata);
      const url = monitorUrlFor(config.listen, config.tls.mode !== 'off');
      const proc = spawnService('monitor', pgdata, logFile);
      addChild(`monitor-${i}`, proc);
      running.push({ url, pid: proc.pid ?? 0, pgdata });
    }
    const first = loadMonitorConfig(running[0]!.pgdata);
    return { monitors: monitorsOf(running.map((r) => r.url), first.authTokenFile, first.tls.mode === 'off' ? undefined : first.tls.caFile, first.viewerTokenFile), running, etcd };
  } catch (err) {
    await etcd.stop();
    throw err;
  }
}
