/**
 * A copy of another store into a new etcd store (`pgha monitor create --from-monitor`): what
 * {@link readStoreContents} reads through the store port (from the Postgres adapter of a
 * stopped monitor) is written by {@link importStoreContents} under the etcd layout of `keys.ts`
 * and `codec.ts`, the same keys and values the etcd adapter writes itself:
 *
 * - formations, with their passwords and settings;
 * - nodes, every persisted field (goals included), with the keys that find them (name, address,
 *   formation: `nodeIndexEntries`) and `<p>/v1/node-id-seq`;
 * - node token digests (`<p>/v1/credentials/…` and `<p>/v1/node-credentials/…`): keepers keep
 *   their tokens;
 * - each formation's latest events, up to the etcd retention
 *   ({@link EVENT_RETENTION_PER_FORMATION}), oldest first. Their ids change: an event's id on
 *   etcd is the revision of the Txn that wrote it (`codec.ts`), so a `Last-Event-ID` from the old
 *   monitor does not resume on the new ones.
 *
 * Goal revisions are not copied: keepers report the revision they applied, and the etcd store
 * raises its revisions above it at their first report (`raiseRevisionsAboveApplied`).
 *
 * Writes go in Txns of at most {@link MAX_TXN_OPS} operations (etcd's default `--max-txn-ops`),
 * so the copy is not one transaction: `initEtcdStore` runs it before it writes the store's meta,
 * which makes the store exist, and deletes what it wrote when it fails.
 */
import { randomUUID } from 'node:crypto';
import type { Etcd3, IRequestOp } from 'etcd3';
import type { EventRecord, FormationRecord, NodeRecord } from '../records.js';
import type { StoreSession } from '../store-port.js';
import { encodeEvent, encodeFormation, encodeNode } from './codec.js';
import { EVENT_RETENTION_PER_FORMATION, nodeIndexEntries } from './etcd-repositories.js';
import type { StoreKeys } from './keys.js';

/** etcd's default `--max-txn-ops`: the most operations one Txn may hold. */
export const MAX_TXN_OPS = 128;

/** What a copy of a store carries (see the module). */
export interface StoreContents {
  formations: FormationRecord[];
  /** Every node, dropped ones included, by node id. */
  nodes: NodeRecord[];
  /** Every node's token digest. */
  credentials: { nodeId: number; digest: string }[];
  /** Each formation's latest events, oldest first. */
  events: Map<string, EventRecord[]>;
}

/**
 * Reads what a copy carries from a store, through the port.
 *
 * @param eventsPerFormation - the latest events kept of each formation; default the etcd retention.
 */
export async function readStoreContents(store: StoreSession, eventsPerFormation = EVENT_RETENTION_PER_FORMATION): Promise<StoreContents> {
  const formations = await store.formations.list();
  const nodes = await store.nodes.listAll();
  const credentials = await store.credentials.list();
  const events = new Map<string, EventRecord[]>();
  for (const f of formations) events.set(f.formationId, await store.stream.latest(f.formationId, eventsPerFormation));
  return { formations, nodes, credentials, events };
}

/** The last node id given, as far as the contents tell: the largest one of a node or an event. */
export function lastNodeId(contents: StoreContents): number {
  let last = 0;
  for (const n of contents.nodes) last = Math.max(last, n.nodeId);
  for (const list of contents.events.values()) for (const e of list) last = Math.max(last, e.nodeId);
  return last;
}

/** A put of a Txn. */
function put(key: string, value: string): IRequestOp {
  return { request_put: { key: Buffer.from(key), value: Buffer.from(value) } };
}

/** Writes `ops` in Txns of at most {@link MAX_TXN_OPS}, one after the other. */
async function writeInTxns(client: Etcd3, ops: readonly IRequestOp[]): Promise<number> {
  let txns = 0;
  for (let i = 0; i < ops.length; i += MAX_TXN_OPS) {
    await client.kv.txn({ compare: [], success: ops.slice(i, i + MAX_TXN_OPS), failure: [] });
    txns++;
  }
  return txns;
}

/**
 * Writes `contents` under `keys` (see the module), into a prefix that holds no store yet.
 *
 * @param nowMs - the formations' creation time on etcd (the port's records have none).
 * @returns how many keys of each kind, and the Txns written.
 * @throws etcd's errors: the caller deletes what was written.
 */
export async function importStoreContents(client: Etcd3, keys: StoreKeys, contents: StoreContents, nowMs: number): Promise<{ formations: number; nodes: number; credentials: number; events: number; txns: number }> {
  const ops: IRequestOp[] = [];
  for (const f of contents.formations) ops.push(put(keys.formation(f.formationId), encodeFormation(f, nowMs)));
  for (const n of contents.nodes) {
    ops.push(put(keys.node(n.formationId, n.nodeId), encodeNode(n)));
    for (const [key, value] of nodeIndexEntries(keys, n)) ops.push(put(key, value));
  }
  ops.push(put(keys.nodeIdSeq, String(lastNodeId(contents))));
  for (const c of contents.credentials) ops.push(put(keys.credential(c.digest), String(c.nodeId)), put(keys.nodeCredential(c.nodeId), c.digest));
  let txns = await writeInTxns(client, ops);
  let events = 0;
  // Each Txn of events is one "transaction" of the layout: its own uuid, indexes from 0, so that
  // ids (its revision × 10,000 + index) follow the old order.
  for (const [formationId, list] of contents.events) {
    for (let i = 0; i < list.length; i += MAX_TXN_OPS) {
      const txId = randomUUID();
      const chunk = list.slice(i, i + MAX_TXN_OPS).map(({ eventId: _id, eventTime, ...e }, index) => put(keys.event(formationId, txId, index), encodeEvent(e, eventTime.getTime())));
      txns += await writeInTxns(client, chunk);
      events += chunk.length;
    }
  }
  return { formations: contents.formations.length, nodes: contents.nodes.length, credentials: contents.credentials.length, events, txns };
}
