/**
 * A pgha formation on a simulated network (netns.ts): the monitor runs in the `monitor`
 * host's namespace and listens on its address; each node's keeper (and so its Postgres) runs
 * in the namespace of the host of the same name and registers with that host's address.
 * Every process is started through the tracked helpers of processes.ts and ended by PID.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Host } from '../../bench/lib/probe.js';
import { addNode, startMonitor, type TestMonitor, type TestNode } from './cluster.js';
import { isPrimaryAndSecondaries, queryNode, showState } from './formation.js';
import type { SimNetwork } from './netns.js';
import { killPid, postmasterPid } from './processes.js';
import { waitFor } from './wait-for.js';

/** The monitor's HTTP port (alone in its namespace, any port is free). */
export const MONITOR_HTTP_PORT = 8432;
/** Node i (from 1) listens on `NODE_BASE_PORT + i`: distinct ports keep servers apart in logs. */
export const NODE_BASE_PORT = 5430;

/** A formation on a {@link SimNetwork}. */
export interface NetFormation {
  net: SimNetwork;
  monitor: TestMonitor;
  /** In creation order: the first one started as primary. */
  nodes: TestNode[];
  /** Every node's address and port, for writers. */
  hosts: Host[];
}

/**
 * Lets clients anywhere on the simulated network (`cidr`) connect to `node` as any user with
 * `trust`, by a rule below pgha's managed block of `pg_hba.conf` (the keeper keeps such
 * lines), then reloads Postgres; waits until the test process can connect.
 * The keeper only admits the formation's own hosts, and the test process and the `client`
 * host are not among them.
 */
export async function allowNetworkClients(node: TestNode, cidr: string): Promise<void> {
  const line = `host    all          all               ${cidr.padEnd(20)} trust   # pgha fault tests: clients on the simulated network`;
  const path = join(node.pgdata, 'pg_hba.conf');
  await waitFor(`${node.name} to accept clients from ${cidr}`, async () => {
    if (!readFileSync(path, 'utf8').includes(line)) {
      appendFileSync(path, `${line}\n`);
      killPid(postmasterPid(node.pgdata), 'SIGHUP');
    }
    await queryNode(node, 'select 1');
    return true;
  }, { timeoutMs: 30_000, intervalMs: 250 });
}

/** Options of {@link startNetFormation}. */
export interface NetFormationOptions {
  /**
   * One Postgres port for every node (each is alone in its namespace), as a virtual IP needs:
   * clients reach whichever node holds it on the same port. Default: node i on
   * {@link NODE_BASE_PORT} + i.
   */
  pgPort?: number;
  /** More arguments of every `pgha keeper create` (e.g. `--on-role-change CMD`). */
  keeperArgs?: readonly string[];
}

/**
 * Starts the monitor on host `monitor` of `net`, then one node per name in `nodeNames` (each
 * a host of `net`), one after the other, and waits for one `primary` and the rest `secondary`.
 */
export async function startNetFormation(net: SimNetwork, nodeNames: readonly string[], options: NetFormationOptions = {}): Promise<NetFormation> {
  const monitor = await startMonitor({ host: net.host('monitor').addr, netns: net.netns('monitor'), httpPort: MONITOR_HTTP_PORT });
  const nodes: TestNode[] = [];
  for (const [i, name] of nodeNames.entries()) {
    const node = await addNode(monitor, name, {
      hostname: net.host(name).addr,
      netns: net.netns(name),
      port: options.pgPort ?? NODE_BASE_PORT + i + 1,
      ...(options.keeperArgs ? { extraArgs: options.keeperArgs } : {}),
    });
    await allowNetworkClients(node, net.cidr);
    nodes.push(node);
  }
  await waitFor('one primary and the rest secondary', async () => isPrimaryAndSecondaries(await showState(monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });
  return { net, monitor, nodes, hosts: nodes.map((n) => ({ host: n.host, port: n.port })) };
}
