/**
 * The monitor's connection to etcd: the store URI (`etcd://h1:2379,h2:2379[/prefix]`), an
 * `etcd3` client with every parameter explicit (endpoints, TLS files, a deadline on every call,
 * fault handling), a first call that tells a wrong address or a TLS mismatch in one line, and
 * which errors mean that etcd is unavailable (the API answers 503).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect as tlsConnect } from 'node:tls';
import type { Etcd3 } from 'etcd3';
import { PghaError, ValidationError, parseHostPort } from '@pgha/shared';
import { DEFAULT_STORE_PREFIX } from './keys.js';

/** Where the store is: etcd's client endpoints (`host:port`), the key prefix, and TLS files. */
export interface EtcdConnection {
  endpoints: string[];
  /** `/pgha` unless the URI gives another path. */
  prefix: string;
  /** With a CA file the endpoints are `https` (TLS); client certificate and key optional, together. */
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

const require = createRequire(import.meta.url);
/** The etcd3 library (with gRPC and protobuf under it), once loaded; see {@link etcd3}. */
let etcd3Module: typeof import('etcd3') | undefined;

/**
 * The etcd3 library, loaded on first use: a monitor on its own Postgres never opens an etcd
 * client, and so never loads it, nor gRPC (about 30 MB of memory; issue 17's idle cost). Both
 * are CommonJS, so `require` keeps {@link openEtcdClient} synchronous.
 */
function etcd3(): typeof import('etcd3') {
  return (etcd3Module ??= require('etcd3') as typeof import('etcd3'));
}

/** etcd's default client port. */
export const ETCD_DEFAULT_PORT = 2379;

/**
 * Deadline of every etcd call but watches (ms). A monitor cut off from etcd must answer 503
 * within the lease TTL (3 s): a call that hangs (a partition drops packets) fails after this,
 * retried once on another member.
 */
export const ETCD_CALL_TIMEOUT_MS = 1500;

/**
 * Parses a store URI: `etcd://HOST[:PORT][,HOST[:PORT]…][/prefix]` (port 2379 by default,
 * IPv6 in brackets; prefix `/pgha` by default, path segments of letters, digits, `.`, `_`, `-`).
 *
 * @throws ValidationError (field `store`) for anything else.
 *
 * ### Examples
 * ```ts
 * parseStoreUri('etcd://10.0.0.1:2379,10.0.0.2/prod') // { endpoints: ['10.0.0.1:2379', '10.0.0.2:2379'], prefix: '/prod' }
 * ```
 */
export function parseStoreUri(uri: string): { endpoints: string[]; prefix: string } {
  const hint = 'give --store etcd://HOST:PORT[,HOST:PORT…][/prefix], e.g. etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379/pgha';
  const m = /^etcd:\/\/([^/]+)(\/.*)?$/.exec(uri);
  if (!m) throw new ValidationError(`invalid store URI "${uri}": expected etcd://HOST:PORT[,HOST:PORT…][/prefix]`, { hint, field: 'store' });
  const endpoints = m[1]!.split(',').map((h) => {
    const hp = /:[0-9]+$/.test(h) ? parseHostPort(h) : parseHostPort(`${h}:${ETCD_DEFAULT_PORT}`);
    if (!hp || hp.host === '') throw new ValidationError(`invalid etcd endpoint "${h}" in store URI "${uri}"`, { hint, field: 'store' });
    return `${hp.host.includes(':') ? `[${hp.host}]` : hp.host}:${hp.port}`;
  });
  const path = (m[2] ?? '').replace(/\/+$/, '');
  if (path !== '' && !/^(\/[A-Za-z0-9._-]+)+$/.test(path)) {
    throw new ValidationError(`invalid key prefix "${m[2]}" in store URI "${uri}"`, { hint: 'a prefix is /name[/name…] of letters, digits, . _ -', field: 'store' });
  }
  return { endpoints, prefix: path === '' ? DEFAULT_STORE_PREFIX : path };
}

/** The store URI of a connection (what `pgha monitor create --store` was given). */
export function storeUriOf(conn: Pick<EtcdConnection, 'endpoints' | 'prefix'>): string {
  return `etcd://${conn.endpoints.join(',')}${conn.prefix}`;
}

function readTlsFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new PghaError('PGHA_ERR_TLS', `${what} ${path} cannot be read (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, {
      hint: 'give the files of the etcd cluster: --store-ca-file, and --store-cert-file with --store-key-file when etcd asks for client certificates',
    });
  }
}

/**
 * A client of the etcd at `conn`: TLS when it has a CA file; every call but watches with a
 * deadline of {@link ETCD_CALL_TIMEOUT_MS}, retried once (on another member when there are
 * several) when etcd's client deems the error transient; a member that failed three times in a
 * row is left alone for 1 s (etcd3's default is 5 s).
 *
 * @throws PghaError `PGHA_ERR_TLS` when a TLS file cannot be read, or a certificate comes
 *   without its key.
 */
export function openEtcdClient(conn: EtcdConnection, options: { callTimeoutMs?: number } = {}): Etcd3 {
  if (!conn.certFile !== !conn.keyFile) {
    throw new PghaError('PGHA_ERR_TLS', 'a client certificate for etcd needs its key, and a key its certificate', { hint: 'give --store-cert-file and --store-key-file together' });
  }
  if (conn.certFile && !conn.caFile) {
    throw new PghaError('PGHA_ERR_TLS', 'a client certificate for etcd needs the CA of the etcd cluster', { hint: 'add --store-ca-file' });
  }
  const scheme = conn.caFile ? 'https' : 'http';
  const timeoutMs = options.callTimeoutMs ?? ETCD_CALL_TIMEOUT_MS;
  const { Etcd3, isRecoverableError } = etcd3();
  const { ConsecutiveBreaker, circuitBreaker, handleWhen, retry } = require('cockatiel') as typeof import('cockatiel');
  return new Etcd3({
    hosts: conn.endpoints.map((e) => `${scheme}://${e}`),
    ...(conn.caFile
      ? {
          credentials: {
            rootCertificate: readTlsFile(conn.caFile, 'etcd CA file'),
            ...(conn.certFile ? { certChain: readTlsFile(conn.certFile, 'etcd client certificate'), privateKey: readTlsFile(conn.keyFile!, 'etcd client key') } : {}),
          },
        }
      : {}),
    dialTimeout: timeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeoutMs }),
    // Large ranges (a snapshot of every node) are paged, but leave room.
    grpcOptions: { 'grpc.max_receive_message_length': 64 * 1024 * 1024 },
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
      global: retry(handleWhen(isRecoverableError), { maxAttempts: 1 }),
    },
  });
}

/** Messages of etcd errors that mean it cannot serve now (no quorum, an election, overload). */
const UNAVAILABLE_MESSAGES = /etcdserver: (no leader|request timed out|leader changed|timed out waiting for read index|too many requests|server stopped)/;

/**
 * Whether `err` says that etcd is unreachable or cannot serve now: no connection, a deadline
 * exceeded, no leader (no quorum), a member shutting down, the client closed, or a member's
 * circuit breaker open after failures; also the adapter's own `PGHA_ERR_STORE_UNAVAILABLE`.
 */
export function isEtcdUnavailable(err: unknown): boolean {
  if (err instanceof PghaError) return err.code === 'PGHA_ERR_STORE_UNAVAILABLE';
  // Without the etcd3 library loaded, no error is one of its own.
  if (etcd3Module) {
    const { GRPCUnavailableError, GRPCDeadlineExceededError, GRPCCancelledError, ClientClosedError } = etcd3Module;
    if (err instanceof GRPCUnavailableError || err instanceof GRPCDeadlineExceededError || err instanceof GRPCCancelledError || err instanceof ClientClosedError) return true;
  }
  const e = err as { name?: string; message?: string } | null;
  return e?.name === 'BrokenCircuitError' || e?.name === 'TaskCancelledError' || UNAVAILABLE_MESSAGES.test(String(e?.message ?? ''));
}

/** Whether `host:port` answers a TLS handshake: `tls`, `plain` (it closed or answered otherwise), or `unreachable`. */
export function probeTls(endpoint: string, timeoutMs = 2000): Promise<'tls' | 'plain' | 'unreachable'> {
  const hp = parseHostPort(endpoint);
  return new Promise((resolve) => {
    if (!hp) return resolve('unreachable');
    let connected = false;
    const socket = tlsConnect({ host: hp.host, port: hp.port, rejectUnauthorized: false, ...(/^[0-9.:]+$/.test(hp.host) ? {} : { servername: hp.host }) });
    const done = (r: 'tls' | 'plain' | 'unreachable'): void => {
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(timeoutMs, () => done(connected ? 'plain' : 'unreachable'));
    socket.on('connect', () => (connected = true));
    socket.on('secureConnect', () => done('tls'));
    socket.on('error', (err: NodeJS.ErrnoException) => done(connected || /wrong version|packet length|EPROTO/i.test(`${err.code} ${err.message}`) ? 'plain' : 'unreachable'));
  });
}

/**
 * Makes a first call to etcd and, when it fails, says why in one line: no member answers at
 * these endpoints; TLS was asked (a CA file) and etcd speaks plain, or the reverse; etcd
 * refused the client certificate (or asked for one); etcd has no leader.
 *
 * @throws PghaError `PGHA_ERR_STORE_UNAVAILABLE` or `PGHA_ERR_TLS`, each with a hint.
 */
export async function checkEtcdReachable(client: Etcd3, conn: EtcdConnection): Promise<void> {
  try {
    await client.get(`${conn.prefix}/v1/meta`).exec();
  } catch (err) {
    const uri = storeUriOf(conn);
    const message = (err as Error).message ?? String(err);
    const probes = await Promise.all(conn.endpoints.map((e) => probeTls(e)));
    if (probes.every((p) => p === 'unreachable')) {
      throw new PghaError('PGHA_ERR_STORE_UNAVAILABLE', `no etcd answers at ${conn.endpoints.join(', ')} (store ${uri})`, { hint: 'check the --store URI (hosts and client ports, 2379 by default) and that etcd runs', cause: err });
    }
    if (conn.caFile && probes.every((p) => p !== 'tls')) {
      throw new PghaError('PGHA_ERR_TLS', `TLS was asked for etcd (--store-ca-file) but etcd at ${conn.endpoints.join(', ')} speaks plain gRPC without TLS`, { hint: 'drop --store-ca-file, or give the client URL of an etcd started with --cert-file/--key-file', cause: err });
    }
    if (!conn.caFile && probes.some((p) => p === 'tls')) {
      throw new PghaError('PGHA_ERR_TLS', `etcd at ${conn.endpoints.join(', ')} speaks TLS, but no CA file was given`, { hint: 'add --store-ca-file (the CA of the etcd cluster), and --store-cert-file/--store-key-file if it asks for client certificates', cause: err });
    }
    if (/certificate|handshake|SSL|alert/i.test(message)) {
      throw new PghaError('PGHA_ERR_TLS', `the TLS handshake with etcd failed (store ${uri}): ${message.split('\n')[0]}`, {
        hint: 'check --store-ca-file (the CA that signed the members\' certificates, which must name the hosts of the URI) and, when etcd runs with --client-cert-auth, --store-cert-file/--store-key-file',
        cause: err,
      });
    }
    throw new PghaError('PGHA_ERR_STORE_UNAVAILABLE', `etcd at ${conn.endpoints.join(', ')} does not serve (store ${uri}): ${message.split('\n')[0]}`, { hint: 'check that a quorum of its members runs (etcdctl endpoint health)', cause: err });
  }
}
