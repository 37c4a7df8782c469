/**
 * The keeper's and the CLI's HTTP client to the monitor, on undici. Transport failures and
 * error statuses become `MonitorUnavailableError`, or the error the monitor described
 * (400 `ValidationError`, 404 `NotFoundError`, 409 `ConflictError`).
 */
import { Agent, request } from 'undici';
import {
  ConflictError,
  MonitorUnavailableError,
  NotFoundError,
  ValidationError,
  type EventRow,
  type NodeGoal,
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

/** Client of one monitor. */
export class MonitorClient {
  readonly baseUrl: string;
  private readonly agent: Agent;

  /** @param baseUrl - e.g. `http://127.0.0.1:8432`. */
  constructor(baseUrl: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.agent = new Agent({ connectTimeout: 2_000, keepAliveTimeout: 10_000 });
  }

  /** Closes the connection pool. */
  async close(): Promise<void> {
    await this.agent.close();
  }

  /**
   * One request to the monitor's API, JSON in and out.
   *
   * @param path - e.g. `/v1/formations/default/state`.
   * @param timeoutMs - for the headers and for the body.
   * @throws ValidationError (400), NotFoundError (404), ConflictError (409) with the monitor's
   *   message and hint; MonitorUnavailableError when it cannot be reached or answers otherwise.
   */
  async request<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown, timeoutMs = 10_000, signal?: AbortSignal): Promise<T> {
    let res;
    try {
      res = await request(`${this.baseUrl}${path}`, {
        method,
        dispatcher: this.agent,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(signal ? { signal } : {}),
      });
    } catch (cause) {
      throw new MonitorUnavailableError(`monitor at ${this.baseUrl} is unreachable (${(cause as Error).message})`, {
        hint: 'check that `pgha monitor run` is running there, and the --monitor URL or PGHA_MONITOR',
        cause,
      });
    }
    const text = await res.body.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return parsed as T;
    const err = (parsed ?? {}) as ErrorBody;
    const message = err.message ?? `monitor answered HTTP ${res.statusCode}`;
    const opts = err.hint ? { hint: err.hint } : {};
    if (res.statusCode === 400) throw new ValidationError(message, { ...opts, ...(err.field ? { field: err.field } : {}) });
    if (res.statusCode === 404) throw new NotFoundError(message, opts);
    if (res.statusCode === 409) throw new ConflictError(message, opts);
    throw new MonitorUnavailableError(message, { ...opts, status: res.statusCode });
  }

  /** Registers a node. @throws ConflictError when the name or host:port is taken. */
  registerNode(formation: string, req: RegisterNodeRequest): Promise<RegisterNodeResponse> {
    return this.request('POST', `/v1/formations/${encodeURIComponent(formation)}/nodes`, req);
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
    return this.request('GET', `/v1/formations/${encodeURIComponent(formation)}/state`);
  }

  /** Latest events, oldest first. */
  events(formation: string, count: number): Promise<EventRow[]> {
    return this.request('GET', `/v1/formations/${encodeURIComponent(formation)}/events?count=${count}`);
  }

  /** The formation's multi-host connection URI. */
  formationUri(formation: string): Promise<{ uri: string }> {
    return this.request('GET', `/v1/formations/${encodeURIComponent(formation)}/uri`);
  }
}
