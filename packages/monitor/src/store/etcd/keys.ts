/**
 * The etcd adapter's key layout (docs/monitor-ha.md, "Key layout"), under a prefix (default
 * `/pgha`, from the store URI's path):
 *
 * ```
 * <p>/v1/meta                               {schemaVersion, storeId, createdAt, createdBy}
 * <p>/v1/secrets                            {operatorTokenSha256, operatorToken, ca}
 * <p>/v1/formations/<f>                     FormationRecord
 * <p>/v1/nodes/<f>/<nodeId, 10 digits>      NodeRecord's persisted fields
 * <p>/v1/node-names/<f>/<name>              nodeId (a name is unique in a formation)
 * <p>/v1/node-addresses/<host>:<port>       nodeId (host:port is unique in the store)
 * <p>/v1/node-formations/<nodeId>           {formationId, groupId} (where a node id lives)
 * <p>/v1/node-id-seq                        the last node id given
 * <p>/v1/credentials/<sha256 hex>           nodeId;  <p>/v1/node-credentials/<nodeId> → digest
 * <p>/v1/events/<f>/<uuid>/<index, 4 digits> EventRecord (uuid: the writing transaction)
 * <p>/v1/leaders/<f>, <p>/v1/monitors/<id>  leadership (leases), see the leadership module
 * ```
 *
 * Components are URI-encoded (formation and node names cannot hold `/` anyway). Node ids are
 * zero-padded so that key order is id order within a formation.
 */

/** Schema version this pgha writes and reads (`<p>/v1/meta.schemaVersion`). */
export const STORE_SCHEMA_VERSION = 1;

/** Default key prefix of a store URI without a path. */
export const DEFAULT_STORE_PREFIX = '/pgha';

const enc = encodeURIComponent;

/** The end of the key range of every key that starts with `prefix` (etcd's `range_end`). */
export function prefixEnd(prefix: string): string {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      const end = Buffer.from(b.subarray(0, i + 1));
      end[i] = b[i]! + 1;
      return end.toString('latin1');
    }
  }
  return '\0';
}

/** A node id as it appears in keys: 10 digits. */
export function paddedNodeId(nodeId: number): string {
  return String(nodeId).padStart(10, '0');
}

/** Every key of one store, from its prefix. */
export class StoreKeys {
  /** `<prefix>/v1/`. */
  readonly root: string;

  constructor(readonly prefix: string) {
    this.root = `${prefix.replace(/\/+$/, '')}/v1/`;
  }

  get meta(): string {
    return `${this.root}meta`;
  }

  get secrets(): string {
    return `${this.root}secrets`;
  }

  get nodeIdSeq(): string {
    return `${this.root}node-id-seq`;
  }

  /** Every formation's key starts with this. */
  get formations(): string {
    return `${this.root}formations/`;
  }

  formation(formationId: string): string {
    return `${this.formations}${enc(formationId)}`;
  }

  /** Every node's key starts with this. */
  get allNodes(): string {
    return `${this.root}nodes/`;
  }

  /** The nodes of a formation start with this. */
  nodes(formationId: string): string {
    return `${this.allNodes}${enc(formationId)}/`;
  }

  node(formationId: string, nodeId: number): string {
    return `${this.nodes(formationId)}${paddedNodeId(nodeId)}`;
  }

  nodeName(formationId: string, name: string): string {
    return `${this.root}node-names/${enc(formationId)}/${enc(name)}`;
  }

  nodeAddress(host: string, port: number): string {
    return `${this.root}node-addresses/${enc(host)}:${port}`;
  }

  nodeFormation(nodeId: number): string {
    return `${this.root}node-formations/${paddedNodeId(nodeId)}`;
  }

  /** Every token's credential key (`credential`) starts with this. */
  get credentials(): string {
    return `${this.root}credentials/`;
  }

  credential(digest: string): string {
    return `${this.credentials}${enc(digest)}`;
  }

  /** Every node's credential key (`nodeCredential`) starts with this. */
  get nodeCredentials(): string {
    return `${this.root}node-credentials/`;
  }

  nodeCredential(nodeId: number): string {
    return `${this.nodeCredentials}${paddedNodeId(nodeId)}`;
  }

  /** Every event's key starts with this. */
  get allEvents(): string {
    return `${this.root}events/`;
  }

  /** The events of a formation start with this. */
  events(formationId: string): string {
    return `${this.allEvents}${enc(formationId)}/`;
  }

  /** An event's key: its formation, its transaction's uuid and its index in that transaction. */
  event(formationId: string, txId: string, index: number): string {
    return `${this.events(formationId)}${txId}/${String(index).padStart(4, '0')}`;
  }

  /** Every formation's leader key starts with this. */
  get leaders(): string {
    return `${this.root}leaders/`;
  }

  /** The key of the leader of a formation (written by the leadership module, under its lease). */
  leader(formationId: string): string {
    return `${this.leaders}${enc(formationId)}`;
  }

  /** Every running monitor's key starts with this. */
  get monitors(): string {
    return `${this.root}monitors/`;
  }

  /** The key of a running monitor's registration (under its lease). */
  monitor(monitorId: string): string {
    return `${this.monitors}${enc(monitorId)}`;
  }

  /** The formation of a leader key; undefined for any other key. */
  parseLeader(key: string): string | undefined {
    return lastComponent(key, this.leaders);
  }

  /**
   * The formation a key belongs to (a formation's own key, its nodes, node names and events),
   * or undefined for a store-wide key (meta, node ids, addresses, credentials).
   */
  formationOf(key: string): string | undefined {
    if (!key.startsWith(this.root)) return undefined;
    const m = /^(formations|nodes|node-names|events)\/([^/]+)/.exec(key.slice(this.root.length));
    return m ? decodeURIComponent(m[2]!) : undefined;
  }

  /** The formation and node id of a node key; undefined for any other key. */
  parseNode(key: string): { formationId: string; nodeId: number } | undefined {
    if (!key.startsWith(this.allNodes)) return undefined;
    const m = /^([^/]+)\/([0-9]{10})$/.exec(key.slice(this.allNodes.length));
    return m ? { formationId: decodeURIComponent(m[1]!), nodeId: Number(m[2]) } : undefined;
  }

  /** The token digest of a credential key; undefined for any other key. */
  parseCredential(key: string): string | undefined {
    return lastComponent(key, this.credentials);
  }

  /** The formation of a formation key; undefined for any other key. */
  parseFormation(key: string): string | undefined {
    return lastComponent(key, this.formations);
  }

  /** The formation and index of an event key; undefined for any other key. */
  parseEvent(key: string): { formationId: string; index: number } | undefined {
    if (!key.startsWith(this.allEvents)) return undefined;
    const m = /^([^/]+)\/[^/]+\/([0-9]{4})$/.exec(key.slice(this.allEvents.length));
    return m ? { formationId: decodeURIComponent(m[1]!), index: Number(m[2]) } : undefined;
  }
}

/** The decoded component of `key` after `prefix` when it is the last one; undefined otherwise. */
function lastComponent(key: string, prefix: string): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length);
  return rest === '' || rest.includes('/') ? undefined : decodeURIComponent(rest);
}
