/**
 * The keeper's HTTP server: read-only, unauthenticated health routes for load balancers
 * (HAProxy's `option httpchk`), the node's state as JSON, and Prometheus metrics. Every answer
 * comes from the keeper's memory ({@link KeeperView}, refreshed each tick): a request never
 * queries Postgres and never waits for the keeper loop, and the loop never waits for a request.
 *
 * Built on `node:http`/`node:https`, not a framework: five GET routes need no router, and the
 * keeper's memory is what a framework would cost (see `monitor-client.ts` on undici).
 *
 * Routes (GET, HEAD or OPTIONS; Patroni's spellings are aliases so that its HAProxy
 * configurations carry over): `/primary` (`/leader`, `/master`, `/read-write`), `/replica`,
 * `/read-only`, `/health`, `/state`, `/metrics`; docs/api.md lists them with their statuses.
 * Source: Patroni's REST API (`patroni/api.py`, `RestApiHandler`).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { Logger } from 'pino';
import { ConflictError, PghaError, ValidationError, formatDurationMs, formatHostPort } from '@pgha/shared/base';
import type { KeeperView } from '../keeper-view.js';
import { healthCheck, parseLagBound, primaryCheck, readOnlyCheck, replicaCheck, stateBody, type CheckResult } from './health-checks.js';
import type { KeeperMetrics } from './keeper-metrics.js';

/** A `HOST:PORT` to listen on. */
export interface HttpListen {
  host: string;
  port: number;
}

/** Options of {@link KeeperHttpServer}. */
export interface KeeperHttpServerOptions {
  listen: HttpListen;
  /** The node's Postgres certificate and key (PEM files): HTTPS. Plain HTTP when absent (`--no-ssl`). */
  tls?: { certFile: string; keyFile: string };
  view: () => KeeperView;
  metrics: KeeperMetrics;
  log: Logger;
  /** How long to wait before trying to listen again after a failure, ms (default 5 000). */
  retryMs?: number;
  /** Called once the server serves a new certificate (e.g. to have Postgres load it too). */
  onCertificateChange?: (certificate: CertificateInfo) => void;
}

/** How often the keeper looks at its certificate files for a change, in ms (`fs.watchFile` polls their status). */
export const CERTIFICATE_WATCH_INTERVAL_MS = 2_000;
/**
 * How long the certificate files must stay unchanged before a change is loaded, in ms: a renewal
 * writes the key and the certificate one after the other, and the pair in between does not match.
 */
export const CERTIFICATE_SETTLE_MS = 500;

/** What identifies a server certificate in the log: serial, SHA-256 fingerprint, end of validity. */
export interface CertificateInfo {
  serialNumber: string;
  fingerprint256: string;
  validTo: string;
}

/** What {@link KeeperHttpServer.reloadCertificate} did. */
export type CertificateReload =
  /** New connections get the new certificate. */
  | { outcome: 'replaced'; certificate: CertificateInfo }
  /** The files hold the certificate already served. */
  | { outcome: 'unchanged'; certificate: CertificateInfo }
  /** The files were not usable (logged): the server goes on with its certificate. */
  | { outcome: 'refused'; reason: string }
  /** Plain HTTP (`--no-ssl`), or not listening (its next attempt reads the files anyway). */
  | { outcome: 'not-serving' };

/**
 * Reads and checks a server certificate and its key (PEM files): both readable, the certificate
 * parses, the key is its private key, and it is valid at `nowMs`.
 *
 * @throws PghaError `PGHA_ERR_TLS` saying which of these fails.
 */
export function loadServerCertificate(certFile: string, keyFile: string, nowMs: number): { cert: string; key: string; info: CertificateInfo } {
  const fail = (problem: string, cause?: unknown): never => {
    throw new PghaError('PGHA_ERR_TLS', `${problem} (${certFile}, ${keyFile})`, {
      hint: 'the keeper serves HTTPS with the node\'s Postgres certificate: put one issued by the formation\'s CA for the node\'s host, and its key, in those files, or create the node again (docs/security.md, "Renewing a node\'s certificate")',
      cause,
    });
  };
  let cert = '';
  let key = '';
  try {
    cert = readFileSync(certFile, 'utf8');
    key = readFileSync(keyFile, 'utf8');
  } catch (cause) {
    fail(`the node's certificate or key cannot be read (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, cause);
  }
  let x509: X509Certificate | undefined;
  try {
    x509 = new X509Certificate(cert);
  } catch (cause) {
    fail(`the node's certificate is not a PEM certificate (${(cause as Error).message})`, cause);
  }
  let matches = false;
  try {
    matches = x509!.checkPrivateKey(createPrivateKey(key));
  } catch (cause) {
    fail(`the node's key is not a PEM private key (${(cause as Error).message})`, cause);
  }
  if (!matches) fail("the node's key is not the key of its certificate");
  const info: CertificateInfo = { serialNumber: x509!.serialNumber, fingerprint256: x509!.fingerprint256, validTo: new Date(x509!.validTo).toISOString() };
  if (Date.parse(x509!.validFrom) > nowMs) fail(`the node's certificate (serial ${info.serialNumber}) is not valid before ${new Date(x509!.validFrom).toISOString()}`);
  if (Date.parse(x509!.validTo) < nowMs) fail(`the node's certificate (serial ${info.serialNumber}) expired at ${info.validTo}`);
  return { cert, key, info };
}

/** The health routes: path → the check it answers with. */
const CHECKS: Record<string, (view: KeeperView, nowMs: number, maxLagBytes?: number) => CheckResult> = {
  '/primary': primaryCheck,
  '/leader': primaryCheck,
  '/master': primaryCheck,
  '/read-write': primaryCheck,
  '/replica': replicaCheck,
  '/read-only': readOnlyCheck,
  '/health': healthCheck,
};

/** Routes whose answer depends on a lag bound (`max_lag_bytes`, `lag`). */
const LAG_ROUTES = new Set(['/replica', '/read-only']);

/**
 * The error of listening on `listen`, as one sentence with a hint: a port in use is a
 * ConflictError, an address that is not this machine's a ValidationError.
 */
export function httpListenError(listen: HttpListen, err: NodeJS.ErrnoException): PghaError {
  const where = formatHostPort(listen.host, listen.port);
  const hint = 'choose another with --http-listen HOST:PORT at keeper create, or "httpListen" in keeper.json (each keeper on a machine needs its own port)';
  if (err.code === 'EADDRINUSE') return new ConflictError(`the keeper's HTTP address ${where} is already in use`, { hint });
  if (err.code === 'EADDRNOTAVAIL') return new ValidationError(`the keeper cannot listen on ${where}: ${listen.host} is not an address of this machine`, { hint, field: 'httpListen' });
  return new PghaError('PGHA_ERR_CONFIG', `the keeper cannot listen on ${where}: ${err.code ?? err.message}`, { hint, cause: err });
}

/**
 * Checks that the keeper could listen on `listen` now (binds and closes at once).
 *
 * @throws the error of {@link httpListenError}.
 */
export async function assertHttpListenFree(listen: HttpListen): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', (err: NodeJS.ErrnoException) => reject(httpListenError(listen, err)));
    probe.listen({ host: listen.host, port: listen.port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** The keeper's HTTP server. */
export class KeeperHttpServer {
  private server: Server | undefined;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  private lastProblem: string | undefined;
  /** The certificate the HTTPS server serves (undefined before it listens, and over plain HTTP). */
  private certificate: CertificateInfo | undefined;
  /** Pending load of changed certificate files (see {@link CERTIFICATE_SETTLE_MS}). */
  private settle: NodeJS.Timeout | undefined;
  private readonly onFileChange = (curr: Stats, prev: Stats): void => {
    if (curr.mtimeMs === prev.mtimeMs && curr.ino === prev.ino && curr.size === prev.size) return;
    clearTimeout(this.settle);
    this.settle = setTimeout(() => this.reloadCertificate('its files changed', { quietIfUnchanged: true }), CERTIFICATE_SETTLE_MS);
    this.settle.unref();
  };

  constructor(private readonly options: KeeperHttpServerOptions) {}

  /** `https://HOST:PORT` or `http://HOST:PORT` of the listen address. */
  get url(): string {
    return `${this.options.tls ? 'https' : 'http'}://${formatHostPort(this.options.listen.host, this.options.listen.port)}`;
  }

  /** Why the server does not listen (for the keeper's report, `pgha show state`); undefined while it does. */
  problem(): string | undefined {
    return this.lastProblem;
  }

  /**
   * Listens. A failure (port in use, certificate unreadable) is logged once per distinct
   * cause and retried every `retryMs`: the keeper goes on without its HTTP server meanwhile,
   * since the node's high availability does not depend on it.
   *
   * @returns once the first attempt has succeeded or failed.
   */
  async start(): Promise<void> {
    if (this.closed) return;
    try {
      const server = this.create();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: this.options.listen.host, port: this.options.listen.port, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      server.on('error', (err) => this.options.log.error(`keeper HTTP server: ${err.message}`));
      if (this.closed) {
        server.close();
        return;
      }
      this.server = server;
      this.lastProblem = undefined;
      this.options.log.info(`keeper HTTP server listening on ${this.url}`);
      this.watchCertificate();
    } catch (err) {
      const error = err instanceof PghaError ? err : httpListenError(this.options.listen, err as NodeJS.ErrnoException);
      const sentence = `keeper HTTP server not listening: ${error.message}`;
      if (sentence !== this.lastProblem) this.options.log.error({ code: error.code }, `${sentence}; retrying every ${formatDurationMs(this.options.retryMs ?? 5000)} (${error.hint})`);
      this.lastProblem = sentence;
      this.retry = setTimeout(() => void this.start(), this.options.retryMs ?? 5000);
      this.retry.unref();
    }
  }

  /** The certificate served over HTTPS; undefined over plain HTTP or before the server listens. */
  get servedCertificate(): CertificateInfo | undefined {
    return this.certificate;
  }

  /**
   * Loads the certificate files again (SIGHUP, or when they change): a valid new pair
   * ({@link loadServerCertificate}) is served to new connections from now on, without a restart
   * (connections already open keep theirs); an unusable one is logged with its reason and the
   * server goes on with the certificate it has. Never throws.
   * Source: Patroni reloads its REST API certificate on SIGHUP (`RestApiServer.reload_config`).
   *
   * @param trigger - why, for the log (`SIGHUP`, `its files changed`).
   * @param options.quietIfUnchanged - log an unchanged certificate at debug (a file touched) instead of info.
   */
  reloadCertificate(trigger: string, options: { quietIfUnchanged?: boolean } = {}): CertificateReload {
    const server = this.server;
    if (!this.options.tls || !server) return { outcome: 'not-serving' };
    const log = this.options.log;
    let loaded: ReturnType<typeof loadServerCertificate>;
    try {
      loaded = loadServerCertificate(this.options.tls.certFile, this.options.tls.keyFile, Date.now());
      if (loaded.info.fingerprint256 === this.certificate?.fingerprint256) {
        log[options.quietIfUnchanged ? 'debug' : 'info'](`keeper HTTP server: certificate unchanged (serial ${loaded.info.serialNumber}, ${trigger})`);
        return { outcome: 'unchanged', certificate: loaded.info };
      }
      (server as HttpsServer).setSecureContext({ cert: loaded.cert, key: loaded.key, minVersion: 'TLSv1.2' });
    } catch (err) {
      const reason = err instanceof PghaError ? err.message : `the new certificate cannot be used: ${(err as Error).message}`;
      const kept = this.certificate ? `the certificate it serves (serial ${this.certificate.serialNumber}, valid until ${this.certificate.validTo})` : 'the certificate it serves';
      log.error({ code: 'PGHA_ERR_TLS' }, `keeper HTTP server: new certificate not used (${trigger}): ${reason}; it goes on with ${kept}`);
      return { outcome: 'refused', reason };
    }
    this.certificate = loaded.info;
    log.info({ ...loaded.info }, `keeper HTTP server: serving the new certificate (serial ${loaded.info.serialNumber}, valid until ${loaded.info.validTo}) to new connections (${trigger})`);
    this.options.onCertificateChange?.(loaded.info);
    return { outcome: 'replaced', certificate: loaded.info };
  }

  /** Polls the certificate files' status (`fs.watchFile`, not keeping the process alive). */
  private watchCertificate(): void {
    if (!this.options.tls) return;
    for (const file of [this.options.tls.certFile, this.options.tls.keyFile]) watchFile(file, { persistent: false, interval: CERTIFICATE_WATCH_INTERVAL_MS }, this.onFileChange);
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    clearTimeout(this.settle);
    if (this.options.tls) for (const file of [this.options.tls.certFile, this.options.tls.keyFile]) unwatchFile(file, this.onFileChange);
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private create(): Server {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.handle(req, res).catch((err: Error) => {
        this.options.log.error(`keeper HTTP server: ${req.method} ${req.url}: ${err.message}`);
        if (!res.headersSent) send(res, req.method === 'HEAD', 500, { error: 'internal error' });
      });
    };
    let server: Server;
    if (this.options.tls) {
      const { cert, key, info } = loadServerCertificate(this.options.tls.certFile, this.options.tls.keyFile, Date.now());
      server = createHttpsServer({ cert, key, minVersion: 'TLSv1.2' }, handler);
      this.certificate = info;
    } else {
      server = createHttpServer(handler);
    }
    // Health checks are tiny: bound what a slow or hostile client can hold.
    server.requestTimeout = 5000;
    server.headersTimeout = 5000;
    server.keepAliveTimeout = 5000;
    server.maxHeadersCount = 64;
    server.maxConnections = 128;
    return server;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.resume(); // a body, if any, is not read
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'OPTIONS') {
      res.setHeader('Allow', 'GET, HEAD, OPTIONS');
      send(res, false, 405, { error: `method ${req.method} not allowed: the keeper's routes are read-only` });
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://keeper');
    } catch {
      send(res, head, 400, { error: 'malformed URL' });
      return;
    }
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
    const nowMs = Date.now();
    if (path === '/metrics') {
      const text = await this.options.metrics.metrics();
      res.writeHead(200, { 'Content-Type': this.options.metrics.contentType, 'Cache-Control': 'no-store' });
      res.end(head ? undefined : text);
      return;
    }
    if (path === '/state') {
      send(res, head, 200, stateBody(this.options.view(), nowMs));
      return;
    }
    const check = CHECKS[path];
    if (!check) {
      send(res, head, 404, { error: `no route ${path}: the keeper serves /primary, /replica, /read-only, /health, /state and /metrics` });
      return;
    }
    const bound = LAG_ROUTES.has(path) ? parseLagBound(url.searchParams) : undefined;
    if (typeof bound === 'object') {
      send(res, head, 400, { error: bound.error });
      return;
    }
    const view = this.options.view();
    const result = check(view, nowMs, bound);
    send(res, head, result.ok ? 200 : 503, { ...stateBody(view, nowMs), check: path.slice(1), ok: result.ok, reason: result.reason });
  }
}

function send(res: ServerResponse, head: boolean, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(head ? undefined : text);
}
