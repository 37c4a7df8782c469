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
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { Logger } from 'pino';
import { ConflictError, PghaError, ValidationError, formatDurationMs, formatHostPort } from '@pgha/shared';
import type { KeeperView } from '../loop.js';
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
    } catch (err) {
      const error = err instanceof PghaError ? err : httpListenError(this.options.listen, err as NodeJS.ErrnoException);
      const sentence = `keeper HTTP server not listening: ${error.message}`;
      if (sentence !== this.lastProblem) this.options.log.error({ code: error.code }, `${sentence}; retrying every ${formatDurationMs(this.options.retryMs ?? 5000)} (${error.hint})`);
      this.lastProblem = sentence;
      this.retry = setTimeout(() => void this.start(), this.options.retryMs ?? 5000);
      this.retry.unref();
    }
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
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
      let cert: string;
      let key: string;
      try {
        cert = readFileSync(this.options.tls.certFile, 'utf8');
        key = readFileSync(this.options.tls.keyFile, 'utf8');
      } catch (cause) {
        throw new PghaError('PGHA_ERR_TLS', `the node's certificate or key cannot be read (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}): ${this.options.tls.certFile}, ${this.options.tls.keyFile}`, {
          hint: 'the keeper serves HTTPS with the node\'s Postgres certificate; restore the files, or create the node again',
        });
      }
      server = createHttpsServer({ cert, key, minVersion: 'TLSv1.2' }, handler);
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
