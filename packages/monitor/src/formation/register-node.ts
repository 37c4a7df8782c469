/**
 * A node's registration (`pgha keeper create postgres`): the checks against the formation's
 * nodes and the new record. Run it under the lock of group 0 (inside `GroupDriver.evaluateIn`),
 * so that registrations into one formation see each other; the store refuses what a
 * registration into another formation took meanwhile (`NodeRepository.insert`).
 * Source: pg_auto_failover's `register_node`.
 */
import { ConflictError } from '@pgha/shared';
import type { NewNode, NodeRecord } from '../store/records.js';
import type { StoreTransaction } from '../store/store-port.js';

/** What a keeper registers with; `postgresSsl` defaults to true. */
export type RegisterNode = Omit<NewNode, 'postgresSsl' | 'httpAddress'> & { postgresSsl?: boolean | undefined; httpAddress?: string | undefined };

/**
 * Adds a node to the formation, or returns the existing one when the same name, host and port
 * register again (a `keeper create` retried after a failure), with its `postgresSsl` and, when
 * given, its keeper's `httpAddress` updated to what it says now.
 *
 * @throws ConflictError when the name is taken in the formation or host:port by another node,
 *   or when another node of the formation uses the other TLS mode (`postgresSsl`).
 */
export async function registerNode(tx: StoreTransaction, formationId: string, req: RegisterNode): Promise<{ node: NodeRecord; created: boolean }> {
  const postgresSsl = req.postgresSsl ?? true;
  const nodes = await tx.nodes.list(formationId, { includeDropped: true });
  // A formation's nodes all use TLS or none do: a TLS primary rejects a plain-text standby
  // (hostnossl … reject), and a plain-text primary cannot serve a TLS standby's verify-full.
  const otherMode = nodes.find((n) => n.name !== req.name && n.goalState !== 'dropped' && n.postgresSsl !== postgresSsl);
  if (otherMode) {
    throw new ConflictError(
      `node "${req.name}" asks for Postgres ${postgresSsl ? 'with TLS' : 'without TLS (--no-ssl)'}, but node ${otherMode.nodeId} "${otherMode.name}" of formation "${formationId}" runs ${otherMode.postgresSsl ? 'with TLS' : 'without TLS'}`,
      { hint: otherMode.postgresSsl ? 'drop --no-ssl: every node of a formation uses TLS, or none does' : 'add --no-ssl: every node of a formation uses TLS, or none does' },
    );
  }
  const sameName = nodes.find((n) => n.name === req.name);
  if (sameName) {
    if (sameName.host === req.host && sameName.port === req.port && sameName.goalState !== 'dropped') {
      const httpAddress = req.httpAddress ?? sameName.httpAddress;
      if (sameName.postgresSsl === postgresSsl && sameName.httpAddress === httpAddress) return { node: sameName, created: false };
      return { node: await tx.nodes.update(sameName.nodeId, { postgresSsl, httpAddress }), created: false };
    }
    throw new ConflictError(`node name "${req.name}" is already taken in formation "${formationId}" (node ${sameName.nodeId} at ${sameName.host}:${sameName.port})`, {
      hint: 'choose another --name',
    });
  }
  const samePort = await tx.nodes.findByAddress(req.host, req.port);
  if (samePort) {
    throw new ConflictError(`${req.host}:${req.port} is already registered as node ${samePort.nodeId} "${samePort.name}"`, { hint: 'choose another --pg-port or --hostname' });
  }
  const node = await tx.nodes.insert(formationId, {
    name: req.name,
    host: req.host,
    port: req.port,
    candidatePriority: req.candidatePriority,
    replicationQuorum: req.replicationQuorum,
    postgresSsl,
    httpAddress: req.httpAddress ?? null,
  });
  return { node, created: true };
}
