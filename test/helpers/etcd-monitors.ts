/**
 * Monitors on etcd for tests, built as an operator does: a real etcd cluster (TLS, client
 * certificates, every certificate signed by one CA), `pgha monitor create --store … ` for the
 * first monitor (its HTTPS with that same CA) and `--join` for the others, then `pgha monitor
 * run` for each. Every process is tracked and ended by `endAllProcesses`.
 */
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import getPort from 'get-port';
import type { MonitorsView } from '@pgha/shared';
import type { TestMonitor } from './cluster.js';
import { startEtcd, type TestEtcd } from './etcd.js';
import { makeTestDir, runPgha, startPgha } from './processes.js';
import { monitorFetch, registerMonitor } from './monitor-access.js';
import { waitFor } from './wait-for.js';

/** Monitors sharing one etcd. */
export interface EtcdMonitors {
  etcd: TestEtcd;
  monitors: TestMonitor[];
  /** Every monitor's URL, in order: the `--monitor` list of keepers and commands. */
  urls: string[];
  /** The `--store` options of `pgha monitor create`. */
  storeArgs: string[];
}

/**
 * Starts a 3-member etcd (unless given) and `count` monitors on it, and waits until each
 * answers `/health`.
 *
 * @param options.prefix - the store's key prefix (default `/pgha`).
 * @param options.fromMonitor - the data directory of a stopped monitor on its own Postgres: the
 *   first monitor copies its store (`--from-monitor`), and so its operator token and its CA
 *   (instead of the etcd CA).
 */
export async function startEtcdMonitors(options: { count?: number; etcd?: TestEtcd; prefix?: string; hosts?: readonly { addr: string; netns: string }[]; fromMonitor?: string } = {}): Promise<EtcdMonitors> {
  const etcd = options.etcd ?? (await startEtcd({ members: 3, tls: true, clientCertAuth: true }));
  const tls = etcd.tls!;
  const storeArgs = ['--store', etcd.storeUri(options.prefix ?? '/pgha'), '--store-ca-file', tls.caFile, '--store-cert-file', tls.clientCertFile, '--store-key-file', tls.clientKeyFile];
  const dir = makeTestDir();
  const caKeyFile = join(dir, 'ca.key');
  writeFileSync(caKeyFile, etcd.ca!.privateKeyPem, { mode: 0o600 });
  const monitors: TestMonitor[] = [];
  for (let i = 1; i <= (options.count ?? 3); i++) {
    const pgdata = join(dir, `monitor-${i}`, 'pgdata');
    const host = options.hosts?.[i - 1];
    const addr = host?.addr ?? '127.0.0.1';
    const netns = host ? { netns: host.netns } : {};
    const httpPort = host ? 8432 : await getPort({ host: '127.0.0.1' });
    const first = i > 1 ? ['--join'] : options.fromMonitor ? ['--from-monitor', options.fromMonitor] : ['--ssl-ca-file', tls.caFile, '--ssl-ca-key-file', caKeyFile];
    const created = await runPgha(['monitor', 'create', '--pgdata', pgdata, '--listen', `${addr}:${httpPort}`, ...storeArgs, ...first], {}, netns);
    if (created.exitCode !== 0) throw new Error(`monitor create ${i} failed: ${created.stderr}`);
    // Joined monitors have no token file: every monitor of the store takes the first one's token.
    const authTokenFile = join(`${monitors[0]?.pgdata ?? pgdata}.pgha`, 'auth-token');
    monitors.push(runEtcdMonitor(dir, pgdata, `monitor-${i}`, `https://${addr}:${httpPort}`, authTokenFile, host?.netns));
  }
  for (const m of monitors) await waitFor(`monitor ${m.url}`, async () => (await monitorFetch(`${m.url}/health`).catch(() => undefined))?.ok, { timeoutMs: 60_000 });
  return { etcd, monitors, urls: monitors.map((m) => m.url), storeArgs };
}

/**
 * Runs (again) a created monitor; its log is `<dir>/<name>.log` (appended).
 *
 * @param authTokenFile - the operator token of the store (the file of its first monitor).
 * @param netns - the network namespace to run it in.
 */
export function runEtcdMonitor(dir: string, pgdata: string, name: string, url: string, authTokenFile: string, netns?: string): TestMonitor {
  const pghaDir = `${pgdata}.pgha`;
  const access = { url, authTokenFile, caFile: join(pghaDir, 'tls', 'ca.crt') };
  registerMonitor(access);
  const proc = startPgha(['monitor', 'run', '--pgdata', pgdata], { logFile: join(dir, `${name}.log`), ...(netns ? { netns } : {}) });
  return { ...access, dir, pgdata, proc };
}

/** The log file of a monitor started by {@link startEtcdMonitors}. */
export function monitorLog(m: TestMonitor): string {
  return join(m.dir, `${m.pgdata.split('/').at(-2)}.log`);
}

/** `GET /v1/monitors` of the first monitor of `urls` that answers. */
export async function monitorsView(urls: readonly string[]): Promise<MonitorsView> {
  for (const url of urls) {
    const res = await monitorFetch(`${url}/v1/monitors`).catch(() => undefined);
    if (res?.ok) return (await res.json()) as MonitorsView;
  }
  throw new Error(`no monitor of ${urls.join(', ')} answered GET /v1/monitors`);
}

/** The URL of the monitor that leads `formation` now, as its own row says; undefined when none does. */
export async function leaderUrl(urls: readonly string[], formation = 'default'): Promise<string | undefined> {
  const view = await monitorsView(urls);
  return view.monitors.find((m) => m.reachable && m.leads.some((l) => l.formation === formation))?.url;
}

/** Waits until one monitor leads `formation` and returns its URL. */
export async function waitForLeader(urls: readonly string[], formation = 'default', timeoutMs = 30_000): Promise<string> {
  return waitFor(`a monitor to lead formation "${formation}"`, () => leaderUrl(urls, formation).catch(() => undefined), { timeoutMs, intervalMs: 50 });
}
