/**
 * Formations built node by node, as an operator does: `pgha monitor create` + `monitor run`,
 * then `pgha keeper create postgres` + `keeper run` per node, with any priorities.
 */
import { join } from 'node:path';
import getPort from 'get-port';
import type { ResultPromise } from 'execa';
import { isPrimaryAndSecondaries, showState } from './formation.js';
import { makeTestDir, runPgha, startPgha, trackPgdata } from './processes.js';
import { monitorFetch, registerMonitor } from './monitor-access.js';
import { waitFor } from './wait-for.js';

/** A running monitor. */
export interface TestMonitor {
  /** `https://HOST:PORT`; its token and CA are registered for runPgha and monitorFetch. */
  url: string;
  /** The operator token file (0600). */
  authTokenFile: string;
  /** The monitor's CA certificate. */
  caFile: string;
  dir: string;
  pgdata: string;
  proc: ResultPromise;
}

/**
 * Creates and runs a monitor in a fresh test directory, listening on `host` (default
 * 127.0.0.1), inside network namespace `netns` when given (then any port is free there).
 * `store`: `monitor create`'s store arguments (`--store etcd://… [--store-ca-file …] [--join]`),
 * for a monitor on etcd rather than its own Postgres.
 */
export async function startMonitor(options: { host?: string; netns?: string; httpPort?: number; store?: readonly string[] } = {}): Promise<TestMonitor> {
  const dir = makeTestDir();
  const pgdata = join(dir, 'monitor', 'pgdata');
  trackPgdata(pgdata);
  const host = options.host ?? '127.0.0.1';
  const pgPort = await getPort({ host: '127.0.0.1' });
  const httpPort = options.httpPort ?? (await getPort({ host: '127.0.0.1', exclude: [pgPort] }));
  const netns = options.netns ? { netns: options.netns } : {};
  const created = await runPgha(['monitor', 'create', '--pgdata', pgdata, '--pg-port', String(pgPort), '--listen', `${host}:${httpPort}`, ...(options.store ?? [])], {}, netns);
  if (created.exitCode !== 0) throw new Error(`monitor create failed: ${created.stderr}`);
  const proc = startPgha(['monitor', 'run', '--pgdata', pgdata], { logFile: join(dir, 'monitor.log'), ...netns });
  const url = `https://${host}:${httpPort}`;
  const pghaDir = `${pgdata}.pgha`;
  registerMonitor({ url, authTokenFile: join(pghaDir, 'auth-token'), caFile: join(pghaDir, 'tls', 'ca.crt') });
  await waitFor('the monitor', async () => (await monitorFetch(`${url}/health`)).ok, { timeoutMs: 60_000 });
  return { url, dir, pgdata, proc, authTokenFile: join(pghaDir, 'auth-token'), caFile: join(pghaDir, 'tls', 'ca.crt') };
}

/** A node created and kept running by its keeper. */
export interface TestNode {
  name: string;
  /** Address the node registered with (`--hostname`). */
  host: string;
  pgdata: string;
  port: number;
  /** The keeper's HTTP server, `https://127.0.0.1:PORT` (`http://` with `--no-ssl`); inside the node's namespace when it has one. */
  httpUrl: string;
  keeper: ResultPromise;
}

/**
 * `pgha keeper create postgres` then `pgha keeper run` for one node (the first node of a
 * formation before the others: a standby's base backup needs the primary's keeper running).
 * The node registers as `hostname` (default 127.0.0.1); both commands run inside network
 * namespace `netns` when given; `extraArgs` go to `keeper create` (e.g. `--no-ssl`). Its keeper's
 * HTTP server listens on a free port of `hostname` ({@link TestNode.httpUrl}). `monitors` is
 * the keeper's `--monitor` list (default: `monitor` alone), which names `monitor` among others.
 */
export async function addNode(monitor: TestMonitor, name: string, options: { formation?: string; candidatePriority?: number; pgdata?: string; port?: number; hostname?: string; netns?: string; extraArgs?: readonly string[]; monitors?: readonly string[] } = {}): Promise<TestNode> {
  const pgdata = options.pgdata ?? join(monitor.dir, name, 'pgdata');
  trackPgdata(pgdata);
  const host = options.hostname ?? '127.0.0.1';
  const port = options.port ?? (await getPort({ host: '127.0.0.1' }));
  const httpPort = await getPort({ host: '127.0.0.1', exclude: [port] });
  const args = ['keeper', 'create', 'postgres', '--monitor', (options.monitors ?? [monitor.url]).join(','), '--pgdata', pgdata, '--pg-port', String(port), '--name', name, '--hostname', host, '--auth', 'trust', '--http-listen', `${host}:${httpPort}`];
  if (options.formation) args.push('--formation', options.formation);
  if (options.candidatePriority !== undefined) args.push('--candidate-priority', String(options.candidatePriority));
  if (options.extraArgs) args.push(...options.extraArgs);
  const netns = options.netns ? { netns: options.netns } : {};
  const created = await runPgha(args, {}, netns);
  if (created.exitCode !== 0) throw new Error(`keeper create ${name} failed: ${created.stderr}`);
  const keeper = startPgha(['keeper', 'run', '--pgdata', pgdata], { logFile: join(monitor.dir, `${name}.keeper.log`), ...netns });
  const tls = !options.extraArgs?.includes('--no-ssl');
  return { name, host, pgdata, port, httpUrl: `${tls ? 'https' : 'http'}://${host}:${httpPort}`, keeper };
}

/** `node1` then `node2` on `monitor` ({@link addNode}), once `pgha show state` shows one primary and one secondary. */
export async function addPrimaryAndStandby(monitor: TestMonitor): Promise<[TestNode, TestNode]> {
  const node1 = await addNode(monitor, 'node1');
  const node2 = await addNode(monitor, 'node2');
  await waitFor('primary and secondary', async () => isPrimaryAndSecondaries(await showState(monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });
  return [node1, node2];
}

/** The formation's multi-host URI for the given nodes, as `pgha show uri` prints it (with the postgres user). */
export function uriOf(nodes: readonly TestNode[]): string {
  return `postgres://postgres@${nodes.map((n) => `${n.host}:${n.port}`).join(',')}/postgres?target_session_attrs=read-write`;
}
