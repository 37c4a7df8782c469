/**
 * The keeper's and the CLI's HTTP client to the monitors: one monitor, or several that serve
 * the same formations (monitors on one etcd store, docs/monitor-ha.md), each reached through a
 * {@link MonitorEndpoint} with the same token and CA.
 *
 * A request goes first to the monitor that answered last (the first of the list until one
 * has). When that one cannot be reached, or answers 502, 503 or 504 (a monitor cut off from
 * its store, or a proxy without one behind it), the request goes to the next monitors of the
 * list in order, within the request's deadline: each monitor still to try gets an equal share
 * of what is left of it, so a silent monitor cannot spend the whole of it. When a round ends
 * without an answer but some monitor answered 502/503/504 (it lives but cannot serve now: a
 * leader change of monitors on etcd, an etcd election, each about the lease TTL), the list is
 * asked again after a short pause, while the deadline allows. Any other answer is
 * final, an error status included (a 4xx is the monitor's answer, not its absence): 400
 * `ValidationError`, 404 `NotFoundError`, 409 `ConflictError`, 401/403 `AuthError`, another
 * `MonitorUnavailableError`. When no monitor answers, the error names every monitor of the list
 * and why each failed, in one line; with one monitor it is that monitor's own error (an
 * untrusted certificate `PGHA_ERR_TLS`, else `MonitorUnavailableError`), as before lists existed.
 *
 * A request sent again to the next monitor may have reached the first one if that one went
 * silent after reading it: the monitor's writes are made for that (a report is idempotent, a
 * second switchover is refused while the first runs, a second registration of the same node
 * gives it a new token).
 *
 * Source: Patroni's and libpq's lists of hosts (`host=a,b,c`: the first that answers); etcd's
 * own client, which keeps to the endpoint that answered last.
 */
import type { IncomingMessage } from 'node:http';
import { GOAL_REVISION_HEADER, MonitorUnavailableError, PghaError, REPORT_HELD_HEADER, REPORT_HOLDS_HEADER, ValidationError, formatDurationMs } from '@pgha/shared/core';
import type {
  CreateFormationRequest,
  EventRow,
  FormationDropped,
  FormationSettingsChange,
  FormationSettingsUpdate,
  FormationView,
  MonitorRow,
  MonitorsView,
  NodeGoal,
  NodeSettingsChange,
  NodeSettingsRow,
  NodeSettingsUpdate,
  PostgresParametersChange,
  PostgresParametersUpdate,
  PostgresParametersView,
  SettingsView,
  StandbyNamesView,
  NodeReport,
  NodeStateRow,
  RegisterNodeRequest,
  RegisterNodeResponse,
  RotateNodeTokenRequest,
  RotateNodeTokenResponse,
} from '@pgha/shared/base';
import { MonitorEndpoint, answerError, parseJson, type Answer, type MonitorCredentials } from './monitor-endpoint.js';

export type { MonitorCredentials } from './monitor-endpoint.js';

/** Statuses that mean "this monitor cannot serve now": the request goes to the next one. */
const NOT_SERVING = new Set([502, 503, 504]);

/**
 * Pause before asking the monitors again when each either failed or answered 502/503/504 and at
 * least one answered (it lives but cannot serve now), times the round number, ms. A leader
 * change of monitors on etcd, or an etcd election, lasts about the lease TTL (2 s).
 */
const RETRY_PAUSE_MS = 100;

/** The least time worth a new round, ms. */
const MIN_ATTEMPT_MS = 50;

/** A monitor of the list that did not settle a request, and why. */
export interface MonitorFailure {
  url: string;
  /** Why, in a few words: `connect ECONNREFUSED 127.0.0.1:8432`, `HTTP 503: …`, `not tried: …`. */
  reason: string;
  error: PghaError;
}

/** The monitor that answers changed (or answered for the first time). */
export interface MonitorChange {
  /** The monitor that answered. */
  url: string;
  /** The one that answered before it; undefined at the first answer. */
  previous: string | undefined;
  /** The monitors tried before it in the request that it answered. */
  failures: readonly MonitorFailure[];
}

/** Options of {@link MonitorClient}. */
export interface MonitorClientOptions {
  /** Told when the monitor that answers changes (the keeper logs it). */
  onMonitorChange?: (change: MonitorChange) => void;
}

/** A node's goal and the monitor that answered it. */
export interface GoalAnswer {
  goal: NodeGoal;
  monitorUrl: string;
  /**
   * When the attempt that got this answer was sent to that monitor (`Date.now()`, ms): the
   * monitor heard the keeper no earlier. Later than the call's start when monitors before it
   * failed or answered 503 (the keeper's self-fence counts from this, not from the call).
   */
  sentAtMs: number;
}

/** A report's answer: the goal, and whether that monitor holds reports (`@pgha/shared`'s `report-hold.ts`). */
export interface ReportAnswer extends GoalAnswer {
  /** The answer carried `x-pgha-report-holds`: the monitor waits for a goal change in the report when asked. */
  holds: boolean;
}

/** What a monitor that took a held report said before the goal ({@link ReportHold.onRecorded}). */
export interface ReportRecorded {
  monitorUrl: string;
  /** When the attempt was sent (`Date.now()`, ms): the monitor heard the keeper no earlier. */
  sentAtMs: number;
  /** The revision of the goal the report left (`NodeGoal.goalRevision`), when the goal has one. */
  goalRevision?: string;
  /** How long the monitor held the answer before its status line (ms): 0 with `ack`. */
  heldMs: number;
}

/**
 * A report that also waits for a goal change, as {@link MonitorClient.waitGoal} (one request
 * per report cycle, `@pgha/shared`'s `report-hold.ts`).
 */
export interface ReportHold {
  /** The goal state the keeper knows: the monitor holds the goal while the node's is still this one. */
  known: string;
  /** The longest the monitor may hold it (ms); less for a monitor tried after another failed (see {@link MonitorClient.report}). */
  waitMs: number;
  /** Ends the wait (and the request) early. */
  signal?: AbortSignal;
  /** Ask for the status line as soon as the report is recorded, before the goal (`ack=1`): a keeper whose node may fence itself. */
  ack?: boolean;
  /** Called when a monitor's status line and headers say it recorded the report (2xx with `x-pgha-report-holds`): before the goal with `ack`, with it otherwise. */
  onRecorded?(recorded: ReportRecorded): void;
}

/** The answer of the monitor that settled a request, and when the attempt that got it was sent (`Date.now()`, ms). */
interface Answered {
  answer: Answer;
  monitorUrl: string;
  sentAtMs: number;
}

/** What one attempt at one monitor gets: its time limit (ms), what is left of the request's (ms), the caller's signal. */
interface Attempt {
  timeoutMs: number;
  remainingMs: number;
  signal: AbortSignal | undefined;
}

/** `/v1/formations/:formation`, the name escaped. */
function formationPath(formation: string): string {
  return `/v1/formations/${encodeURIComponent(formation)}`;
}

/** The few words of a failure: the transport's message, or the status and the monitor's message. */
function failureReason(error: PghaError): string {
  if (error instanceof MonitorUnavailableError && error.status !== undefined) return `HTTP ${error.status}: ${error.message}`;
  const cause = error.cause as Error | undefined;
  return cause?.message ?? error.message;
}

/** Client of a list of monitors (see the module comment). */
export class MonitorClient {
  /** The monitors, in the order given. */
  readonly urls: readonly string[];
  private readonly endpoints: readonly MonitorEndpoint[];
  /** Index of the monitor a request goes to first. */
  private first = 0;
  /** Index of the monitor that answered last; undefined before any answer. */
  private answering: number | undefined;
  private readonly onMonitorChange: ((change: MonitorChange) => void) | undefined;

  /**
   * @param monitors - one URL (`https://127.0.0.1:8432`) or several, tried in this order.
   * @param credentials - token and CA, the same for every monitor; without a token every
   *   request but `/health` gets 401.
   * @throws ValidationError for an empty list.
   */
  constructor(monitors: string | readonly string[], credentials: MonitorCredentials = {}, options: MonitorClientOptions = {}) {
    const list = typeof monitors === 'string' ? [monitors] : [...monitors];
    if (list.length === 0) throw new ValidationError('no monitor given', { hint: 'pass --monitor URL[,URL…] or set PGHA_MONITOR' });
    this.endpoints = list.map((url) => new MonitorEndpoint(url, credentials));
    this.urls = this.endpoints.map((e) => e.url);
    this.onMonitorChange = options.onMonitorChange;
  }

  /** The monitor a request goes to first: the one that answered last (the first of the list before any answer). */
  get monitorUrl(): string {
    return this.endpoints[this.first]!.url;
  }

  /**
   * The next request starts at the monitor after `url` when it would have started there: `url`
   * answered, but with something the caller cannot use (a goal older than one already applied).
   */
  passOver(url: string): void {
    if (this.endpoints.length > 1 && this.endpoints[this.first]!.url === url) this.first = (this.first + 1) % this.endpoints.length;
  }

  /**
   * The next request starts at `leaderUrl` when it is in the list: a monitor forwarded the last
   * one to it, the leader of the formation (monitors on etcd), and asking it directly saves a hop.
   */
  private preferLeader(leaderUrl: string): void {
    let origin: string;
    try {
      origin = new URL(leaderUrl).origin;
    } catch {
      return;
    }
    const j = this.endpoints.findIndex((e) => new URL(e.url).origin === origin);
    if (j >= 0) this.first = j;
  }

  /** Closes the kept connections. */
  async close(): Promise<void> {
    for (const e of this.endpoints) e.close();
  }

  /** Records that monitor `i` answered, and tells about a change. */
  private answered(i: number, failures: readonly MonitorFailure[]): void {
    this.first = i;
    if (this.answering === i) return;
    const previous = this.answering === undefined ? undefined : this.endpoints[this.answering]!.url;
    this.answering = i;
    this.onMonitorChange?.({ url: this.endpoints[i]!.url, previous, failures });
  }

  /** The error when no monitor settled a request: the one monitor's own, or one line naming each. */
  private noneAnswered(failures: readonly MonitorFailure[]): PghaError {
    if (failures.length === 1) return failures[0]!.error;
    const list = failures.map((f) => `${f.url} (${f.reason})`).join(', ');
    if (failures.every((f) => f.error.code === 'PGHA_ERR_TLS')) {
      return new PghaError('PGHA_ERR_TLS', `no monitor presented a trusted certificate: ${list}`, { hint: failures[0]!.error.hint ?? '' });
    }
    return new MonitorUnavailableError(`no monitor answered: ${list}`, {
      hint: 'check that `pgha monitor run` is running at one of them and reaches its store (503: it does not), and the --monitor list or PGHA_MONITOR',
    });
  }

  /**
   * Runs `attempt` at each monitor in turn, from {@link monitorUrl}, until one answers with a
   * status other than 502/503/504 (see the module comment).
   *
   * @param o.timeoutMs - the request's deadline, from now (ms).
   * @param o.share - give each monitor still to try an equal share of what is left (false: all
   *   of it, for a long-poll, whose monitor holds the request on purpose).
   * @throws the error of {@link noneAnswered}; the first monitor's error when `o.signal` aborts.
   */
  private async exchange(attempt: (endpoint: MonitorEndpoint, a: Attempt) => Promise<Answer>, o: { timeoutMs: number; signal?: AbortSignal | undefined; share: boolean }): Promise<Answered> {
    const deadline = performance.now() + o.timeoutMs;
    for (let round = 1; ; round++) {
      const { answered, failures } = await this.round(attempt, o, deadline);
      if (answered) return answered;
      // A monitor that answered 502/503/504 lives but cannot serve now (monitors on etcd: a
      // leader change, an etcd election); ask again while the request has time left.
      const pauseMs = Math.min(RETRY_PAUSE_MS * round, deadline - performance.now() - MIN_ATTEMPT_MS);
      if (!failures.some((f) => f.status !== undefined) || pauseMs <= 0 || o.signal?.aborted) throw this.noneAnswered(failures);
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  }

  /** One round of {@link exchange}: each monitor in turn, from {@link monitorUrl}. */
  private async round(
    attempt: (endpoint: MonitorEndpoint, a: Attempt) => Promise<Answer>,
    o: { timeoutMs: number; signal?: AbortSignal | undefined; share: boolean },
    deadline: number,
  ): Promise<{ answered?: Answered; failures: (MonitorFailure & { status?: number })[] }> {
    const n = this.endpoints.length;
    const failures: (MonitorFailure & { status?: number })[] = [];
    const start = this.first;
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      const endpoint = this.endpoints[i]!;
      const remainingMs = deadline - performance.now();
      if (remainingMs < 1) {
        const error = new MonitorUnavailableError(`monitor at ${endpoint.url} not tried: the request's ${formatDurationMs(o.timeoutMs)} ran out`);
        failures.push({ url: endpoint.url, reason: `not tried: the request's ${formatDurationMs(o.timeoutMs)} ran out`, error });
        continue;
      }
      let answer: Answer;
      const sentAtMs = Date.now();
      try {
        answer = await attempt(endpoint, { timeoutMs: Math.ceil(o.share ? remainingMs / (n - k) : remainingMs), remainingMs, signal: o.signal });
      } catch (err) {
        const error = endpoint.transportError(err);
        if (o.signal?.aborted) throw error;
        failures.push({ url: endpoint.url, reason: failureReason(error), error });
        continue;
      }
      if (NOT_SERVING.has(answer.status)) {
        const error = answerError(answer.status, parseJson(answer.text));
        failures.push({ url: endpoint.url, reason: failureReason(error), error, status: answer.status });
        continue;
      }
      this.answered(i, failures);
      if (answer.leader !== undefined) this.preferLeader(answer.leader);
      return { answered: { answer, monitorUrl: endpoint.url, sentAtMs }, failures };
    }
    return { failures };
  }

  /** {@link exchange}, then the answer's body: parsed when 2xx, else the monitor's error. */
  private async call<T>(attempt: (endpoint: MonitorEndpoint, a: Attempt) => Promise<Answer>, o: { timeoutMs: number; signal?: AbortSignal | undefined; share: boolean }): Promise<{ value: T; monitorUrl: string; sentAtMs: number }> {
    const { answer, monitorUrl, sentAtMs } = await this.exchange(attempt, o);
    const parsed = parseJson(answer.text);
    if (answer.status >= 200 && answer.status < 300) return { value: parsed as T, monitorUrl, sentAtMs };
    throw answerError(answer.status, parsed);
  }

  /** {@link request}, with the monitor that answered. */
  private send<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body: unknown, timeoutMs: number, signal?: AbortSignal): Promise<{ value: T; monitorUrl: string; sentAtMs: number }> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    return this.call<T>((e, a) => e.send(method, path, { ...(text === undefined ? {} : { body: text }), timeoutMs: a.timeoutMs, signal: a.signal }), { timeoutMs, signal, share: true });
  }

  /**
   * One request to the monitors' API, JSON in and out.
   *
   * @param path - e.g. `/v1/formations/default/state`.
   * @param timeoutMs - the request's deadline, over every monitor tried (ms).
   * @throws ValidationError (400), NotFoundError (404), ConflictError (409), AuthError
   *   (401/403) with the monitor's message and hint; MonitorUnavailableError when no monitor
   *   answers (or one answers another error status); PghaError `PGHA_ERR_TLS` when none is trusted.
   */
  async request<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown, timeoutMs = 10_000, signal?: AbortSignal): Promise<T> {
    return (await this.send<T>(method, path, body, timeoutMs, signal)).value;
  }

  /**
   * Opens a server-sent event stream (`GET path`, e.g. the formation's `/events/stream`) at
   * the first monitor that answers 2xx, as {@link request} goes over the list, and resolves
   * with its body, as text; the caller reads it (a readable stream that ends when the monitor
   * ends the stream, and fails when the connection does, or stays silent for `idleTimeoutMs`).
   * A stream that breaks makes the next one start at the next monitor.
   *
   * @param headers - e.g. `last-event-id` (event ids are the store's: the same on every monitor).
   * @throws as {@link request}.
   */
  async openStream(path: string, options: { headers?: Record<string, string>; signal?: AbortSignal; idleTimeoutMs?: number } = {}): Promise<IncomingMessage> {
    const n = this.endpoints.length;
    const failures: MonitorFailure[] = [];
    const start = this.first;
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      const endpoint = this.endpoints[i]!;
      let body: IncomingMessage;
      try {
        body = await endpoint.openStream(path, { ...options, idleTimeoutMs: options.idleTimeoutMs ?? 45_000 });
      } catch (err) {
        const error = endpoint.transportError(err);
        if (options.signal?.aborted) throw error;
        const answeredStatus = error instanceof MonitorUnavailableError ? error.status : undefined;
        if (err instanceof PghaError && (answeredStatus === undefined || !NOT_SERVING.has(answeredStatus))) {
          // The monitor's own answer (a 4xx): final.
          this.answered(i, failures);
          throw err;
        }
        failures.push({ url: endpoint.url, reason: failureReason(error), error });
        continue;
      }
      this.answered(i, failures);
      body.once('close', () => {
        if (!body.complete && !options.signal?.aborted) this.passOver(endpoint.url);
      });
      return body;
    }
    throw this.noneAnswered(failures);
  }

  /** Registers a node. @throws ConflictError when the name or host:port is taken. */
  registerNode(formation: string, req: RegisterNodeRequest): Promise<RegisterNodeResponse> {
    return this.request('POST', `${formationPath(formation)}/nodes`, req);
  }

  /** Which of the monitor's tokens the client holds (`GET /v1/session`). @throws AuthError (401) for neither. */
  session(): Promise<{ role: 'operator' | 'viewer' }> {
    return this.request('GET', '/v1/session');
  }

  /**
   * Gives the node a new token (`pgha keeper rotate-token`); the client must hold the node's
   * current one. The old token is refused from the monitor's commit on.
   *
   * @throws AuthError (401) when the current token is not the node's; as {@link request} otherwise.
   */
  rotateNodeToken(nodeId: number, req: RotateNodeTokenRequest): Promise<RotateNodeTokenResponse> {
    return this.request('POST', `/v1/nodes/${nodeId}/token`, req);
  }

  /**
   * Reports local facts; answers with the node's goal, the monitor that answered, and whether it
   * holds reports.
   *
   * @param timeoutMs - the whole request's limit over every monitor tried, connect included
   *   (the keeper passes two report intervals: a report hung on a silent network must not
   *   hold its loop), shared out among them; with `hold`, the first attempt has `hold.waitMs`
   *   more and asks its monitor to hold the goal; monitors tried after it failed answer at once.
   * @param hold - wait in the same request for the goal to differ from `hold.known`, as
   *   {@link waitGoal} does; a monitor that does not hold reports (no `x-pgha-report-holds`)
   *   answers at once.
   * @throws as {@link request}; an abort of `hold.signal` as a transport error.
   */
  async report(nodeId: number, report: NodeReport, timeoutMs = 10_000, hold?: ReportHold): Promise<ReportAnswer> {
    const text = JSON.stringify(report);
    const path = `/v1/nodes/${nodeId}/report`;
    let holds = false;
    let attempts = 0;
    const { value, monitorUrl, sentAtMs } = await this.call<NodeGoal>(
      (e, a) => {
        // Only the first attempt holds, with an equal share of the report's own time on top of
        // the wait; a monitor tried after it failed answers at once (the next report holds again).
        const held = hold !== undefined && attempts++ === 0 && hold.waitMs > 0;
        const attemptMs = held ? Math.min(a.remainingMs, Math.ceil(timeoutMs / this.endpoints.length) + hold.waitMs) : a.timeoutMs;
        const sent = Date.now();
        const onHeaders = (status: number, headers: Record<string, string | string[] | undefined>): void => {
          holds = headers[REPORT_HOLDS_HEADER] === '1';
          const goalRevision = headers[GOAL_REVISION_HEADER];
          const heldMs = Number(headers[REPORT_HELD_HEADER] ?? 0);
          if (holds && status >= 200 && status < 300) hold?.onRecorded?.({ monitorUrl: e.url, sentAtMs: sent, heldMs: Number.isFinite(heldMs) ? heldMs : 0, ...(typeof goalRevision === 'string' ? { goalRevision } : {}) });
        };
        const query = held ? `?known=${encodeURIComponent(hold.known)}&wait_ms=${hold.waitMs}${hold.ack ? '&ack=1' : ''}` : '';
        return e.send('POST', `${path}${query}`, { body: text, timeoutMs: attemptMs, signal: a.signal, onHeaders });
      },
      { timeoutMs: timeoutMs + (hold?.waitMs ?? 0), signal: hold?.signal, share: true },
    );
    return { goal: value, monitorUrl, sentAtMs, holds };
  }

  /**
   * Long-poll: answers as soon as the node's goal differs from `knownGoal`, or after
   * `waitMs` with the unchanged goal. A monitor that cannot be reached hands over to the next
   * one, which is asked to wait for what is left of `waitMs`.
   *
   * @param slackMs - how long past `waitMs` to wait for the answer before giving up (ms).
   */
  async waitGoal(nodeId: number, knownGoal: string, waitMs: number, signal?: AbortSignal, slackMs = 5_000): Promise<GoalAnswer> {
    const path = (w: number): string => `/v1/nodes/${nodeId}/goal?known=${encodeURIComponent(knownGoal)}&wait_ms=${w}`;
    const { value, monitorUrl, sentAtMs } = await this.call<NodeGoal>(
      (e, a) => e.send('GET', path(Math.max(0, Math.min(waitMs, Math.floor(a.remainingMs - slackMs)))), { timeoutMs: a.timeoutMs, signal: a.signal }),
      { timeoutMs: waitMs + slackMs, signal, share: false },
    );
    return { goal: value, monitorUrl, sentAtMs };
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

  /** `GET /v1/formations/:formation/postgresql`: the formation's Postgres parameters and each node's. */
  postgresParameters(formation: string): Promise<PostgresParametersView> {
    return this.request('GET', `${formationPath(formation)}/postgresql`);
  }

  /**
   * `PATCH /v1/formations/:formation/postgresql`.
   *
   * @throws ValidationError for a refused parameter (nothing stored); ConflictError when no primary can check it.
   */
  setPostgresParameters(formation: string, update: PostgresParametersUpdate): Promise<PostgresParametersChange> {
    return this.request('PATCH', `${formationPath(formation)}/postgresql`, update);
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
