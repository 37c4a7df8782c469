/**
 * Formations built node by node, as an operator does: `pgha monitor create` + `monitor run`,
 * then `pgha keeper create postgres` + `keeper run` per node, with any priorities.
 */
import { join } from 'node:path';
import getPort from 'get-port';
import type { ResultPromise } from 'execa';
import { makeTestDir, runPgha, startPgha, trackPgdata } from './processes.js';
import { waitFor } from './wait-for.js';

/** A running monitor. */
export interface TestMonitor {
  url: string;
  dir: string;
  pgdata: string;
  proc: ResultPromise;
}

/** Creates and runs a monitor in a fresh test directory. */
export async function startMonitor(): Promise<TestMonitor> {
  const dir = makeTestDir();
  const pgdata = join(dir, 'monitor', 'pgdata');
  trackPgdata(pgdata);
  const pgPort = await getPort({ host: '127.0.0.1' });
  const httpPort = await getPort({ host: '127.0.0.1', exclude: [pgPort] });
  const created = await runPgha(['monitor', 'create', '--pgdata', pgdata, '--pg-port', String(pgPort), '--listen', `127.0.0.1:${httpPort}`]);
  if (created.exitCode !== 0) throw new Error(`monitor create failed: ${created.stderr}`);
  const proc = startPgha(['monitor', 'run', '--pgdata', pgdata], { logFile: join(dir, 'monitor.log') });
  const url = `http://127.0.0.1:${httpPort}`;
  await waitFor('the monitor', async () => (await fetch(`${url}/health`)).ok, { timeoutMs: 60_000 });
  return { url, dir, pgdata, proc };
}

/** A node created and kept running by its keeper. */
export interface TestNode {
  name: string;
  pgdata: string;
  port: number;
  keeper: ResultPromise;
}

/**
 * `pgha keeper create postgres` then `pgha keeper run` for one node (the first node of a
 * formation before the others: a standby's base backup needs the primary's keeper running).
 */
export async function addNode(monitor: TestMonitor, name: string, options: { formation?: string; candidatePriority?: number; pgdata?: string; port?: number } = {}): Promise<TestNode> {
  const pgdata = options.pgdata ?? join(monitor.dir, name, 'pgdata');
  trackPgdata(pgdata);
  const port = options.port ?? (await getPort({ host: '127.0.0.1' }));
  const args = ['keeper', 'create', 'postgres', '--monitor', monitor.url, '--pgdata', pgdata, '--pg-port', String(port), '--name', name, '--hostname', '127.0.0.1', '--auth', 'trust'];
  if (options.formation) args.push('--formation', options.formation);
  if (options.candidatePriority !== undefined) args.push('--candidate-priority', String(options.candidatePriority));
  const created = await runPgha(args);
  if (created.exitCode !== 0) throw new Error(`keeper create ${name} failed: ${created.stderr}`);
  const keeper = startPgha(['keeper', 'run', '--pgdata', pgdata], { logFile: join(monitor.dir, `${name}.keeper.log`) });
  return { name, pgdata, port, keeper };
}

/** The formation's multi-host URI for the given nodes, as `pgha show uri` prints it (with the postgres user). */
export function uriOf(nodes: readonly TestNode[]): string {
  return `postgres://postgres@${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}/postgres?target_session_attrs=read-write`;
}
