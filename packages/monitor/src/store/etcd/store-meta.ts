/**
 * What identifies an etcd store of pgha, under its prefix: `<p>/v1/meta` (schema version, store
 * id, when and by which host it was made) and `<p>/v1/secrets` (the operator token's digest and
 * the monitors' CA, read by `pgha monitor create --join`; TLS to etcd is their trust anchor).
 * {@link initEtcdStore} writes both in one Txn, only if absent; {@link readStoreMeta} refuses a
 * prefix that does not hold this monitor's store; {@link replaceStoreTokenDigest} rotates a
 * token. A refusal writes nothing.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Etcd3 } from 'etcd3';
import { PghaError } from '@pgha/shared';
import { checkEtcdReachable, isEtcdUnavailable, openEtcdClient, storeUriOf, type EtcdConnection } from './etcd-client.js';
import { STORE_SCHEMA_VERSION, StoreKeys, prefixEnd } from './keys.js';

/** `<p>/v1/meta`. */
export interface StoreMeta {
  schemaVersion: number;
  /** A UUID made when the store was made; `monitor.json` records it (`storeId`). */
  storeId: string;
  /** ISO 8601. */
  createdAt: string;
  /** Host name of the monitor that made it. */
  createdBy: string;
  /**
   * Added to a node key's mod revision to make its goal revision (decimal; absent: 0). Raised
   * when a keeper reports having applied a higher revision (`NodeReport.appliedGoalRevision`):
   * a store restored from a snapshot, or moved from a monitor on Postgres, whose revisions would
   * otherwise be lower than the keepers' and never taken.
   */
  goalRevisionBase?: string;
}

/** `<p>/v1/secrets`: what every monitor of the store shares. */
export interface StoreSecrets {
  /** SHA-256 (hex) of the operator token: every monitor accepts the same token. */
  operatorTokenSha256: string;
  /** SHA-256 (hex) of the viewer token (read-only access); absent in a store made before it. */
  viewerTokenSha256?: string | undefined;
  /** The monitors' CA (PEM; it signs their HTTPS certificates and nodes' Postgres certificates); absent with TLS off. */
  ca?: { certPem: string; keyPem: string } | undefined;
}

function mismatch(message: string, hint: string): PghaError {
  return new PghaError('PGHA_ERR_STORE_MISMATCH', message, { hint });
}

/** Whether any key starts with `<prefix>/`. */
async function prefixHoldsKeys(client: Etcd3, prefix: string): Promise<boolean> {
  const start = `${prefix}/`;
  const res = await client.kv.range({ key: Buffer.from(start), range_end: Buffer.from(prefixEnd(start)), count_only: true });
  return Number(res.count) > 0;
}

/** The meta value, checked: this pgha's schema version or an older one. */
function parseMeta(text: string, uri: string): StoreMeta {
  let meta: Partial<StoreMeta>;
  try {
    meta = JSON.parse(text) as Partial<StoreMeta>;
  } catch {
    meta = {};
  }
  if (typeof meta.schemaVersion !== 'number' || typeof meta.storeId !== 'string') {
    throw mismatch(`the etcd store ${uri} has a damaged or foreign meta key (no schemaVersion and storeId)`, 'give the prefix of a pgha store (the path of the --store URI), or an empty one for a new store');
  }
  if (meta.schemaVersion > STORE_SCHEMA_VERSION) {
    throw mismatch(
      `the etcd store ${uri} was written by a newer pgha (schema version ${meta.schemaVersion}; this pgha reads version ${STORE_SCHEMA_VERSION} and older)`,
      'upgrade pgha on this host to the version of the other monitors; nothing was written',
    );
  }
  return meta as StoreMeta;
}

/**
 * Reads and checks the store's meta: the prefix must hold a pgha store, of this schema version
 * or an older one, and, when `expectedStoreId` is given (from `monitor.json`), that one.
 *
 * @throws PghaError `PGHA_ERR_STORE_MISMATCH`, with a hint, when the prefix holds no pgha store
 *   (nothing, or another program's keys), a store written by a newer pgha, or another store.
 */
export async function readStoreMeta(client: Etcd3, conn: Pick<EtcdConnection, 'endpoints' | 'prefix'>, expectedStoreId?: string): Promise<StoreMeta> {
  const keys = new StoreKeys(conn.prefix);
  const uri = storeUriOf(conn);
  const text = await client.get(keys.meta).string();
  if (text === null) {
    if (await prefixHoldsKeys(client, conn.prefix)) {
      throw mismatch(`the etcd prefix ${conn.prefix} of ${uri} holds keys, but no pgha store (no ${keys.meta}): it belongs to another program`, 'give pgha a prefix of its own in the --store URI (etcd://HOSTS/prefix)');
    }
    throw mismatch(`there is no pgha store at ${uri} (the prefix is empty)`, `make it with: pgha monitor create --store ${uri} (without --join) on the first monitor`);
  }
  const meta = parseMeta(text, uri);
  if (expectedStoreId !== undefined && meta.storeId !== expectedStoreId) {
    throw mismatch(
      `the etcd store at ${uri} is another store (id ${meta.storeId}, made by ${meta.createdBy} at ${meta.createdAt}) than this monitor's (id ${expectedStoreId})`,
      "check the --store URI and its prefix in monitor.json; a store restored from a snapshot keeps its id, a new one has a new id (make the monitor again with pgha monitor create --join)",
    );
  }
  return meta;
}

/**
 * The store's secrets (`<p>/v1/secrets`).
 *
 * @throws PghaError `PGHA_ERR_STORE_MISMATCH` when the key is missing.
 */
export async function readStoreSecrets(client: Etcd3, conn: Pick<EtcdConnection, 'endpoints' | 'prefix'>): Promise<StoreSecrets> {
  const keys = new StoreKeys(conn.prefix);
  const text = await client.get(keys.secrets).string();
  if (text === null) throw mismatch(`the etcd store at ${storeUriOf(conn)} has no ${keys.secrets} key`, 'the store is damaged: restore it from a snapshot (etcdctl snapshot restore)');
  return JSON.parse(text) as StoreSecrets;
}

/** Options of {@link initEtcdStore}. */
export interface InitEtcdStoreOptions {
  /** Join the store at the prefix (it must exist) rather than make one (the prefix must be empty). */
  join: boolean;
  /** The secrets of a new store (required without `join`). */
  secrets?: StoreSecrets;
  /** Host name recorded as `createdBy`; default this host's. */
  createdBy?: string;
  /**
   * Writes a new store's contents (a copy from another monitor, `store-import.ts`) once the
   * prefix is known to be empty, before the meta that makes the store exist. When it throws,
   * every key it wrote under `<p>/v1/` is deleted.
   */
  fill?: (client: Etcd3, keys: StoreKeys) => Promise<void>;
}

/**
 * Makes the store at `conn` (`<p>/v1/meta` and `<p>/v1/secrets`, one Txn, only if both are
 * absent), or, with `join`, checks the one there and reads its secrets.
 *
 * @returns the store's meta and secrets.
 * @throws PghaError `PGHA_ERR_STORE_MISMATCH` when the prefix holds a store already (without
 *   `join`), holds none (with `join`), holds another program's keys, or a newer store;
 *   `PGHA_ERR_STORE_UNAVAILABLE` / `PGHA_ERR_TLS` when etcd cannot be reached (see
 *   `checkEtcdReachable`), or when `fill` fails on an unavailable etcd (what it wrote deleted,
 *   or the hint says how). Nothing is written on any refusal.
 */
export async function initEtcdStore(conn: EtcdConnection, options: InitEtcdStoreOptions): Promise<{ meta: StoreMeta; secrets: StoreSecrets }> {
  const client = openEtcdClient(conn);
  const keys = new StoreKeys(conn.prefix);
  const uri = storeUriOf(conn);
  try {
    await checkEtcdReachable(client, conn);
    const existing = await client.get(keys.meta).string();
    if (options.join) {
      const meta = await readStoreMeta(client, conn);
      return { meta, secrets: await readStoreSecrets(client, conn) };
    }
    if (existing !== null) {
      const meta = parseMeta(existing, uri);
      throw mismatch(`the etcd prefix ${conn.prefix} of ${uri} holds a pgha store already (id ${meta.storeId}, made by ${meta.createdBy} at ${meta.createdAt})`, `add this monitor to it with --join, or give another prefix (etcd://HOSTS/other-prefix)`);
    }
    if (await prefixHoldsKeys(client, conn.prefix)) await readStoreMeta(client, conn);
    if (!options.secrets) throw new Error('initEtcdStore: a new store needs its secrets');
    if (options.fill) await fillOrClean(client, keys, uri, options.fill);
    const meta: StoreMeta = { schemaVersion: STORE_SCHEMA_VERSION, storeId: randomUUID(), createdAt: new Date().toISOString(), createdBy: options.createdBy ?? hostname() };
    const res = await client
      .if(keys.meta, 'Create', '==', 0)
      .and(keys.secrets, 'Create', '==', 0)
      .then(client.put(keys.meta).value(JSON.stringify(meta)), client.put(keys.secrets).value(JSON.stringify(options.secrets)))
      .commit();
    if (!res.succeeded) throw mismatch(`another monitor made a pgha store at ${uri} at the same moment`, 'add this monitor to it with --join');
    return { meta, secrets: options.secrets };
  } finally {
    client.close();
  }
}

/** Runs `fill`; when it throws, deletes every key under `<p>/v1/` (the prefix was empty) and says so. */
async function fillOrClean(client: Etcd3, keys: StoreKeys, uri: string, fill: (client: Etcd3, keys: StoreKeys) => Promise<void>): Promise<void> {
  try {
    await fill(client, keys);
  } catch (err) {
    const cleaned = await client.kv.deleteRange({ key: Buffer.from(keys.root), range_end: Buffer.from(prefixEnd(keys.root)) }).then(
      () => true,
      () => false,
    );
    if (!isEtcdUnavailable(err) && cleaned) throw err;
    const message = (err as Error).message?.split('\n')[0] ?? String(err);
    throw new PghaError('PGHA_ERR_STORE_UNAVAILABLE', `writing the copy into the etcd store at ${uri} failed: ${message}; ${cleaned ? 'what was written is deleted' : `the keys written under ${keys.root} are left`}`, {
      hint: cleaned ? 'check that a quorum of the etcd members runs (etcdctl endpoint health), then run the same command again' : `delete them (etcdctl del --prefix ${keys.root}) once etcd serves, then run the same command again`,
      cause: err,
    });
  }
}

/**
 * Replaces the operator or viewer token's digest in the store's secrets (`pgha monitor
 * rotate-token`): one Txn that compares the secrets' mod revision, run again when another writer
 * changed them meanwhile. Every monitor of the store watches the key (`EtcdStore.secretsChanged`)
 * and refuses the old token from then on.
 *
 * @param digest - SHA-256 (hex) of the new token.
 * @throws PghaError `PGHA_ERR_STORE_MISMATCH` when the secrets key is missing;
 *   `PGHA_ERR_STORE_UNAVAILABLE` when it changed under every attempt; etcd's errors when it
 *   cannot be reached (nothing written).
 */
export async function replaceStoreTokenDigest(client: Etcd3, conn: Pick<EtcdConnection, 'endpoints' | 'prefix'>, role: 'operator' | 'viewer', digest: string): Promise<void> {
  const keys = new StoreKeys(conn.prefix);
  for (let attempt = 0; attempt < 5; attempt++) {
    const kv = (await client.kv.range({ key: Buffer.from(keys.secrets) })).kvs[0];
    if (!kv) throw mismatch(`the etcd store at ${storeUriOf(conn)} has no ${keys.secrets} key`, 'the store is damaged: restore it from a snapshot (etcdctl snapshot restore)');
    const secrets = JSON.parse(kv.value.toString()) as StoreSecrets;
    const next: StoreSecrets = role === 'operator' ? { ...secrets, operatorTokenSha256: digest } : { ...secrets, viewerTokenSha256: digest };
    const res = await client.kv.txn({
      compare: [{ key: Buffer.from(keys.secrets), target: 'Mod', result: 'Equal', mod_revision: kv.mod_revision }],
      success: [{ request_put: { key: Buffer.from(keys.secrets), value: Buffer.from(JSON.stringify(next)) } }],
    });
    if (res.succeeded) return;
  }
  throw new PghaError('PGHA_ERR_STORE_UNAVAILABLE', `the secrets of the etcd store at ${storeUriOf(conn)} changed under every attempt to replace the ${role} token`, { hint: 'another rotation runs at the same moment: wait for it, then retry' });
}
