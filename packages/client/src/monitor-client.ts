/**
 * The keeper's and the CLI's HTTP client to the monitor, on Node's own `node:http` with a
 * keep-alive agent. (undici, which this used before, compiles its WebAssembly HTTP parser at
 * import: 20 MB of resident memory in every keeper, a quarter of its idle footprint, for a
 * few small requests a second.) Transport failures and error statuses become
 * `MonitorUnavailableError`, or the error the monitor described (400 `ValidationError`, 404
 * `NotFoundError`, 409 `ConflictError`, 401/403 `AuthError`, an untrusted certificate
 * `PGHA_ERR_TLS`). Over `https:` it verifies the monitor against the given CA.
 */
import { Agent, request, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import {
  AuthError,
  ConflictError,
  PghaError,
  MonitorUnavailableError,
  NotFoundError,
  ValidationError,
  formatDurationMs,
  type CreateFormationRequest,
  type EventRow,
  type FormationDropped,
  type FormationSettingsChange,
  type FormationSettingsUpdate,
  type FormationView,
  type MonitorRow,
  type MonitorsView,
  type NodeGoal,
  type NodeSettingsChange,
  type NodeSettingsRow,
  type NodeSettingsUpdate,
  type SettingsView,
  type StandbyNamesView,
  type NodeReport,
  type NodeStateRow,
  type RegisterNodeRequest,
  type RegisterNodeResponse,
} from '@pgha/shared';

/** Body of an error answer from the monitor. */
interface ErrorBody {
  code?: string;
  message?: string;
  hint?: string;
  field?: string;
}

/** An answer: status and body text. */
interface Answer {
  status: number;
  text: string;
}

/**
 * One HTTP request; the body is read whole.
 *
 * @param timeoutMs - the longest the socket may stay silent (connecting, waiting for the
 *   answer, reading it), as undici's `headersTimeout`/`bodyTimeout`.
 * @throws Error when the connection fails, times out, or `signal` aborts it.
 */
function send(url: URL, options: { method: string; agent: Agent; body?: string; timeoutMs: number; signal?: AbortSignal; token?: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = options.body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(options.body) };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    const req = (url.protocol === 'https:' ? httpsRequest : request)(
      url,
      {
        method: options.method,
        agent: options.agent,
        headers,
        timeout: options.timeoutMs,
        ...(options.signal ? { signal: options.signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${formatDurationMs(options.timeoutMs)}`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** How a client authenticates to the monitor and verifies it. */
export interface MonitorCredentials {
  /** Bearer token: the operator token, or a keeper's node token. */
  token?: string | undefined;
  /**
   * CA certificate(s), PEM, that the monitor's HTTPS certificate must chain to (its
   * `tls/ca.crt` with `--ssl-self-signed`); the system's CAs when undefined.
   */
  ca?: string | undefined;
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

/** The error of an answer with an error status: the monitor's own, by status. */
function answerError(status: number, parsed: unknown): PghaError {
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

/** `/v1/formations/:formation`, the name escaped. */
function formationPath(formation: string): string {
  return `/v1/formations/${encodeURIComponent(formation)}`;
}

/** TLS failures of Node's client that mean "the monitor's certificate is not trusted". */
const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|altnames/i;

/** Client of one monitor. */
export class MonitorClient {
  readonly baseUrl: string;
  private readonly agent: Agent;
  private readonly token: string | undefined;

  /**
   * @param baseUrl - e.g. `https://127.0.0.1:8432`.
   * @param credentials - token and CA; without a token every request but `/health` gets 401.
   */
  constructor(baseUrl: string, credentials: MonitorCredentials = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.token = credentials.token;
    this.agent = this.baseUrl.startsWith('https:')
      ? (new HttpsAgent({ keepAlive: true, maxSockets: 4, rejectUnauthorized: true, ...(credentials.ca ? { ca: credentials.ca } : {}) }) as unknown as Agent)
      : new Agent({ keepAlive: true, maxSockets: 4 });
  }

  /** Closes the kept connections. */
  async close(): Promise<void> {
    this.agent.destroy();
  }

  /**
   * One request to the monitor's API, JSON in and out.
   *
   * @param path - e.g. `/v1/formations/default/state`.
   * @param timeoutMs - how long the connection may stay silent (connecting, waiting for the
   *   answer, reading it).
   * @throws ValidationError (400), NotFoundError (404), ConflictError (409) with the monitor's
   *   message and hint; MonitorUnavailableError when it cannot be reached or answers otherwise.
   */
  async request<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown, timeoutMs = 10_000, signal?: AbortSignal): Promise<T> {
    let res: Answer;
    try {
      res = await send(new URL(`${this.baseUrl}${path}`), {
        method,
        agent: this.agent,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        timeoutMs,
        ...(signal ? { signal } : {}),
        ...(this.token ? { token: this.token } : {}),
      });
    } catch (cause) {
      throw this.transportError(cause);
    }
    const parsed = parseJson(res.text);
    if (res.status >= 200 && res.status < 300) return parsed as T;
    throw answerError(res.status, parsed);
  }

  /** The error of a request that got no answer: an untrusted certificate, or the monitor unreachable. */
  private transportError(cause: unknown): PghaError {
    const e = cause as NodeJS.ErrnoException;
    if (CERT_ERROR.test(`${e.code ?? ''} ${e.message}`)) {
      return new PghaError('PGHA_ERR_TLS', `the monitor at ${this.baseUrl} presented a certificate that is not trusted (${e.message})`, {
        hint: "pass the monitor's CA with --ssl-ca-file FILE or PGHA_SSL_CA_FILE (pgha monitor create wrote <pgdata>.pgha/tls/ca.crt)",
        cause,
      });
    }
    return new MonitorUnavailableError(`monitor at ${this.baseUrl} is unreachable (${(cause as Error).message})`, {
      hint: 'check that `pgha monitor run` is running there, and the --monitor URL or PGHA_MONITOR',
      cause,
    });
  }

  /**
   * Opens a server-sent event stream (`GET path`, e.g. the formation's
   * `/events/stream`) and resolves with its body, as text, once the monitor answers 2xx; the
   * caller reads it (a readable stream that ends when the monitor ends the stream, and fails
   * when the connection does, or stays silent for `idleTimeoutMs`).
   *
   * @param headers - e.g. `last-event-id`.
   * @throws as {@link request} for an error status or no answer.
   */
  openStream(path: string, options: { headers?: Record<string, string>; signal?: AbortSignal; idleTimeoutMs?: number } = {}): Promise<IncomingMessage> {
    const url = new URL(`${this.baseUrl}${path}`);
    const timeoutMs = options.idleTimeoutMs ?? 45_000;
    const headers: Record<string, string> = { accept: 'text/event-stream', ...options.headers };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    return new Promise((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : request)(url, { method: 'GET', agent: this.agent, headers, timeout: timeoutMs, ...(options.signal ? { signal: options.signal } : {}) }, (res) => {
        res.setEncoding('utf8');
        if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) {
          resolve(res);
          return;
        }
        let text = '';
        res.on('data', (c: string) => (text += c));
        res.on('end', () => reject(answerError(res.statusCode ?? 0, parseJson(text))));
        res.on('error', (err) => reject(this.transportError(err)));
      });
      req.on('timeout', () => req.destroy(new Error(`no data within ${formatDurationMs(timeoutMs)}`)));
      req.on('error', (err) => reject(this.transportError(err)));
      req.end();
    });
  }

  /** Registers a node. @throws ConflictError when the name or host:port is taken. */
  registerNode(formation: string, req: RegisterNodeRequest): Promise<RegisterNodeResponse> {
    return this.request('POST', `${formationPath(formation)}/nodes`, req);
  }

  /**
   * Reports local facts; answers with the node's goal.
   *
   * @param timeoutMs - the whole request's limit, connect included (the keeper passes two
   *   report intervals: a report hung on a silent network must not hold its loop).
   */
  report(nodeId: number, report: NodeReport, timeoutMs = 10_000): Promise<NodeGoal> {
    return this.request('POST', `/v1/nodes/${nodeId}/report`, report, timeoutMs, AbortSignal.timeout(timeoutMs));
  }

  /**
   * Long-poll: answers as soon as the node's goal differs from `knownGoal`, or after
   * `waitMs` with the unchanged goal.
   *
   * @param slackMs - how long past `waitMs` to wait for the answer before giving up (ms).
   */
  waitGoal(nodeId: number, knownGoal: string, waitMs: number, signal?: AbortSignal, slackMs = 5_000): Promise<NodeGoal> {
    const limit = AbortSignal.timeout(waitMs + slackMs);
    return this.request('GET', `/v1/nodes/${nodeId}/goal?known=${encodeURIComponent(knownGoal)}&wait_ms=${waitMs}`, undefined, waitMs + slackMs, signal ? AbortSignal.any([signal, limit]) : limit);
  }

  /** Rows of `pgha show state`. */
  formationState(formation: string): Promise<NodeStateRow[]> {
    return this.request('GET', `${formationPath(formation)}/state`);
  }

  /** Latest events, oldest first. */
  events(formation: string, count: number): Promise<EventRow[]> {
    return this.request('GET', `${formationPath(formation)}/events?count=${count}`);
  }

  /** The formation's multi-host connection URI (`prefer-standby` with `readOnly`). */
  formationUri(formation: string, readOnly = false): Promise<{ uri: string }> {
    return this.request('GET', `${formationPath(formation)}/uri${readOnly ? '?read_only=true' : ''}`);
  }

  /** `POST /v1/formations`. @throws ConflictError when it exists. */
  createFormation(req: CreateFormationRequest): Promise<FormationView> {
    return this.request('POST', '/v1/formations', req);
  }

  /** `DELETE /v1/formations/:formation`. @throws NotFoundError; ConflictError while it has nodes. */
  dropFormation(formation: string): Promise<FormationDropped> {
    return this.request('DELETE', formationPath(formation));
  }

  /** `GET /v1/formations/:formation/settings`. */
  settings(formation: string): Promise<SettingsView> {
    return this.request('GET', `${formationPath(formation)}/settings`);
  }

  /** `PATCH /v1/formations/:formation/settings`. @throws ConflictError for a value the formation cannot meet. */
  setFormationSettings(formation: string, update: FormationSettingsUpdate): Promise<FormationSettingsChange> {
    return this.request('PATCH', `${formationPath(formation)}/settings`, update);
  }

  /** `GET /v1/formations/:formation/nodes/:name/settings`. @throws NotFoundError for an unknown node. */
  nodeSettings(formation: string, name: string): Promise<NodeSettingsRow> {
    return this.request('GET', `${formationPath(formation)}/nodes/${encodeURIComponent(name)}/settings`);
  }

  /** `PATCH /v1/formations/:formation/nodes/:name/settings`. */
  setNodeSettings(formation: string, name: string, update: NodeSettingsUpdate): Promise<NodeSettingsChange> {
    return this.request('PATCH', `${formationPath(formation)}/nodes/${encodeURIComponent(name)}/settings`, update);
  }

  /** `GET /v1/formations/:formation/standby-names?group=N`. */
  standbyNames(formation: string, group: number): Promise<StandbyNamesView> {
    return this.request('GET', `${formationPath(formation)}/standby-names?group=${group}`);
  }

  /** `GET /v1/monitors`: every monitor of the store (reachable or not) and every etcd member. */
  monitors(): Promise<MonitorsView> {
    return this.request('GET', '/v1/monitors');
  }

  /** `GET /v1/monitors/self`: the monitor answering, as it sees itself. */
  monitorSelf(timeoutMs?: number): Promise<MonitorRow> {
    return this.request('GET', '/v1/monitors/self', undefined, timeoutMs);
  }
}
