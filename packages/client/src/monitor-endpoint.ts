/**
 * One monitor, by URL: the transport under `MonitorClient` (which goes over a list of them),
 * on Node's own `node:http` with a keep-alive agent. (undici, which this used before, compiles
 * its WebAssembly HTTP parser at import: 20 MB of resident memory in every keeper, a quarter of
 * its idle footprint, for a few small requests a second.) Over `https:` it verifies the
 * monitor against the given CA. It turns answers and failures into errors
 * ({@link answerError}, {@link MonitorEndpoint.transportError}) but never retries: going to
 * another monitor is the list's job.
 */
import { Agent, request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { AuthError, ConflictError, MonitorUnavailableError, NotFoundError, PghaError, ValidationError, formatDurationMs } from '@pgha/shared/core';

/** How a client authenticates to the monitor and verifies it: the same for every monitor of a list. */
export interface MonitorCredentials {
  /** Bearer token: the operator token, or a keeper's node token. */
  token?: string | undefined;
  /**
   * CA certificate(s), PEM, that the monitor's HTTPS certificate must chain to (its
   * `tls/ca.crt` with `--ssl-self-signed`); the system's CAs when undefined.
   */
  ca?: string | undefined;
}

/** An answer: status and body text. */
export interface Answer {
  status: number;
  text: string;
  /** The formation's leader, when a monitor forwarded the request to it (`x-pgha-leader`). */
  leader?: string;
}

/** Body of an error answer from the monitor. */
interface ErrorBody {
  code?: string;
  message?: string;
  hint?: string;
  field?: string;
}

/** The body of an answer as JSON; undefined when it is empty or not JSON. */
export function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The error of an answer with an error status: the monitor's own, by status (400
 * `ValidationError`, 404 `NotFoundError`, 409 `ConflictError`, 401/403 `AuthError`), else
 * `MonitorUnavailableError` carrying the status.
 */
export function answerError(status: number, parsed: unknown): PghaError {
  const err = (parsed ?? {}) as ErrorBody;
  const message = err.message ?? `monitor answered HTTP ${status}`;
  const opts = err.hint ? { hint: err.hint } : {};
  if (status === 400) return new ValidationError(message, { ...opts, ...(err.field ? { field: err.field } : {}) });
  if (status === 404) return new NotFoundError(message, opts);
  if (status === 401) return new AuthError('PGHA_ERR_UNAUTHENTICATED', `the monitor refused the credentials: ${message}`, opts);
  if (status === 403) return new AuthError('PGHA_ERR_FORBIDDEN', `the monitor refused the request: ${message}`, opts);
  if (status === 409) return new ConflictError(message, opts);
  return new MonitorUnavailableError(message, { ...opts, status });
}

/** TLS failures of Node's client that mean "the monitor's certificate is not trusted". */
const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|altnames/i;

/** One monitor: its URL, its kept connections, its token and CA. */
export class MonitorEndpoint {
  /** e.g. `https://127.0.0.1:8432`, without a trailing slash. */
  readonly url: string;
  private readonly agent: Agent;
  private readonly token: string | undefined;

  /**
   * @param url - e.g. `https://127.0.0.1:8432`.
   * @param credentials - token and CA; without a token every request but `/health` gets 401.
   */
  constructor(url: string, credentials: MonitorCredentials = {}) {
    this.url = url.replace(/\/+$/, '');
    this.token = credentials.token;
    this.agent = this.url.startsWith('https:')
      ? (new HttpsAgent({ keepAlive: true, maxSockets: 4, rejectUnauthorized: true, ...(credentials.ca ? { ca: credentials.ca } : {}) }) as unknown as Agent)
      : new Agent({ keepAlive: true, maxSockets: 4 });
  }

  /** Closes the kept connections. */
  close(): void {
    this.agent.destroy();
  }

  /**
   * One HTTP request; the body is read whole.
   *
   * @param timeoutMs - the longest the whole request may take, connecting and reading the
   *   answer included (ms).
   * @param onHeaders - called with the status and headers as soon as they arrive, before the
   *   body (a held report's answer, `@pgha/shared`'s `report-hold.ts`).
   * @throws Error (a transport failure, see {@link transportError}) when the connection fails,
   *   no answer comes within `timeoutMs`, or `signal` aborts it.
   */
  send(method: string, path: string, options: { body?: string; timeoutMs: number; signal?: AbortSignal | undefined; onHeaders?: ((status: number, headers: IncomingHttpHeaders) => void) | undefined }): Promise<Answer> {
    const url = new URL(`${this.url}${path}`);
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = options.body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(options.body) };
      if (this.token) headers.authorization = `Bearer ${this.token}`;
      const req = (url.protocol === 'https:' ? httpsRequest : request)(url, { method, agent: this.agent, headers, ...(options.signal ? { signal: options.signal } : {}) }, (res) => {
        options.onHeaders?.(res.statusCode ?? 0, res.headers);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        const leader = res.headers['x-pgha-leader'];
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ...(typeof leader === 'string' ? { leader } : {}) }));
        res.on('error', reject);
      });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${formatDurationMs(options.timeoutMs)}`)), options.timeoutMs);
      req.on('close', () => clearTimeout(timer));
      req.on('error', reject);
      req.end(options.body);
    });
  }

  /**
   * Opens a server-sent event stream (`GET path`) and resolves with its body, as text, once
   * the monitor answers 2xx (see `MonitorClient.openStream`).
   *
   * @throws the monitor's error for an error status ({@link answerError}); a transport Error
   *   when it cannot be reached or stays silent for `idleTimeoutMs`.
   */
  openStream(path: string, options: { headers?: Record<string, string>; signal?: AbortSignal; idleTimeoutMs: number }): Promise<IncomingMessage> {
    const url = new URL(`${this.url}${path}`);
    const headers: Record<string, string> = { accept: 'text/event-stream', ...options.headers };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    return new Promise((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : request)(url, { method: 'GET', agent: this.agent, headers, timeout: options.idleTimeoutMs, ...(options.signal ? { signal: options.signal } : {}) }, (res) => {
        res.setEncoding('utf8');
        if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) {
          resolve(res);
          return;
        }
        let text = '';
        res.on('data', (c: string) => (text += c));
        res.on('end', () => reject(answerError(res.statusCode ?? 0, parseJson(text))));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no data within ${formatDurationMs(options.idleTimeoutMs)}`)));
      req.on('error', reject);
      req.end();
    });
  }

  /**
   * The error of a request to this monitor that got no answer: `PGHA_ERR_TLS` for a
   * certificate that is not trusted, else `MonitorUnavailableError` ("unreachable"). A
   * `PghaError` (an answer's) is returned as it is.
   */
  transportError(cause: unknown): PghaError {
    if (cause instanceof PghaError) return cause;
    const e = cause as NodeJS.ErrnoException;
    if (CERT_ERROR.test(`${e.code ?? ''} ${e.message}`)) {
      return new PghaError('PGHA_ERR_TLS', `the monitor at ${this.url} presented a certificate that is not trusted (${e.message})`, {
        hint: "pass the monitor's CA with --ssl-ca-file FILE or PGHA_SSL_CA_FILE (pgha monitor create wrote <pgdata>.pgha/tls/ca.crt)",
        cause,
      });
    }
    return new MonitorUnavailableError(`monitor at ${this.url} is unreachable (${e.message})`, {
      hint: 'check that `pgha monitor run` is running there, and the --monitor URL or PGHA_MONITOR',
      cause,
    });
  }
}
