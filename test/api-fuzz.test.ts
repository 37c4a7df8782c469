/**
 * The monitor's HTTP API under fuzzing (issue 6), through `app.inject()` on a real store: a
 * formation with two registered nodes that have reported, then more than ten thousand
 * generated requests — wrong types, missing and extra fields, huge and strange strings (NUL,
 * lone surrogates, RTL marks), extreme numbers, invalid LSNs, unknown and out-of-range ids,
 * malformed JSON, wrong content types, stale, impossible and misdirected reports, random paths,
 * methods and query strings, bodies over the limit. Every answer must hold:
 *
 * - never a 5xx (the store is up);
 * - every 4xx body is JSON with a catalogued `code` and a `message`;
 * - a body over `BODY_LIMIT_BYTES` gets 413;
 * - a refused request (4xx) changes nothing: the formations, the nodes (goal and reported
 *   states, LSNs, every column) and the events are the same before and after it.
 *
 * The app is built as `runMonitor` builds it but without the monitor's timer and prober, so
 * that only requests change the store. Among the generated requests, the fixture's keepers
 * also report as if they had reached their goals, so that the formation moves through real
 * sequences (primary and secondary, switchovers, maintenance) while the rest is thrown at it.
 */
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BODY_LIMIT_BYTES, UI_ROUTES, GoalNotifier, GroupDriver, MonitorLag, NodeCredentials, ReportBatcher, buildApp, generateSecret, tokenSha256 } from '@pgha/monitor';
import { DEFAULT_FORMATION, ERROR_CODES, NODE_STATES, WRITABLE_STATES, type NodeState } from '@pgha/shared';
import { endAllProcesses } from './helpers/processes.js';
import { startStore, type TestStore } from './helpers/store.js';

/** One generated request, as sent. */
interface FuzzRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';
  /** Path and query string, already percent-encoded (or deliberately not). */
  url: string;
  /** The body's text as sent; undefined: no body. */
  payload?: string;
  /** The content-type header; undefined: none. */
  contentType?: string;
  /**
   * The keeper the request comes from, for the keeper routes (a report sent to another node's
   * id has a different `asNode`); undefined for operator requests.
   */
  asNode?: number;
  /**
   * Credentials to present instead of the sender's own: `none`, a `garbage` token, the token
   * of `node:<id>`, or the `operator` token (on a keeper route). Such requests must be refused
   * with 401 or 403 whatever else they carry.
   */
  credentials?: 'none' | 'garbage' | 'operator' | `node:${number}`;
  /** What the generator meant to exercise, for failure messages. */
  kind: string;
}

/** What {@link send} answers. */
interface FuzzAnswer {
  status: number;
  body: string;
  contentType: string;
}

let store: TestStore | undefined;
let notifier: GoalNotifier | undefined;
let app: FastifyInstance | undefined;
/** The operator token of the app under test. */
const OPERATOR_TOKEN = generateSecret();
/** Each registered node's current token (a registration of the same node replaces it). */
const nodeTokens = new Map<number, string>();
/** Node ids of the fixture's nodes `a` (first, `single`) and `b` (standby). */
const fixture = { a: 0, b: 0 };
/** Requests sent so far (shrinking included). */
let sent = 0;
/** Answers by request kind and status class (`report 2xx`, `report 4xx`…), for the summary. */
const answered = new Map<string, number>();

/**
 * Sends `req` to the app. Every request of this file goes through here: it is the one place
 * where credentials are added once the API requires them (an operator token, or the token of
 * `req.asNode` on the keeper routes).
 */
async function send(req: FuzzRequest): Promise<FuzzAnswer> {
  sent++;
  const headers: Record<string, string> = {};
  if (req.contentType !== undefined) headers['content-type'] = req.contentType;
  const who = req.credentials ?? (req.asNode !== undefined ? `node:${req.asNode}` : 'operator');
  const token = who === 'none' ? undefined : who === 'garbage' ? 'g'.repeat(43) : who === 'operator' ? OPERATOR_TOKEN : nodeTokens.get(Number(who.slice(5)));
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await app!.inject({ method: req.method, url: req.url, headers, ...(req.payload !== undefined ? { payload: req.payload } : {}) });
  const key = `${req.kind.split(':')[0]!} ${String(res.statusCode).slice(0, 1)}xx`;
  answered.set(key, (answered.get(key) ?? 0) + 1);
  return { status: res.statusCode, body: res.body, contentType: String(res.headers['content-type'] ?? '') };
}

/**
 * The rows that define the formations, as one JSON text: every formation and node column,
 * and the events' count and last id (but the `security` events, which record refusals: a
 * refused request with wrong credentials adds one, and that is all it may change). Read under every group's advisory lock, so that a report
 * answered before its transaction committed (see `ReportBatcher.report`) is in it.
 */
async function snapshot(): Promise<string> {
  return store!.db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext('pgha:' || g.formation_id), g.group_id)
      from (select distinct formation_id, group_id from pgha.nodes order by 1, 2 offset 0) g`.execute(trx);
    const { rows } = await sql<{ state: string }>`select json_build_object(
        'formations', (select coalesce(json_agg(f order by f.formation_id), '[]') from pgha.formations f),
        'nodes', (select coalesce(json_agg(n order by n.node_id), '[]') from pgha.nodes n),
        'events', (select json_build_object('count', count(*), 'last', max(event_id)) from pgha.events where rule <> 'security')
      )::text as state`.execute(trx);
    return rows[0]!.state;
  });
}

/** The state after the last request (the baseline of the next refused one). */
let baseline = '';

function describeRequest(req: FuzzRequest): string {
  const body = req.payload === undefined ? '' : ` body(${req.payload.length} chars) ${JSON.stringify(req.payload.slice(0, 300))}`;
  return `[${req.kind}] ${req.method} ${req.url.slice(0, 300)} content-type=${req.contentType ?? '(none)'}${body}`;
}

/** Whether `req` goes to a route served without credentials: `/health`, and the dashboard's files (`GET /ui…`). */
function isPublic(req: FuzzRequest): boolean {
  // As written, and as routed (`/../health` is `/health`).
  const path = pathOf(req.url);
  return [req.url, path].some((p) => p.startsWith('/health')) || (['GET', 'HEAD'].includes(req.method) && (UI_ROUTES as readonly string[]).includes(path));
}

/** The path a URL is routed by: without query and fragment, dot segments resolved (as the injector does). */
function pathOf(url: string): string {
  try {
    return new URL(url, 'http://monitor').pathname;
  } catch {
    return url;
  }
}

/** The routes whose 200 answer is not JSON, and their content type. */
const TEXT_ROUTES = new Map<string, RegExp>([
  ['/ui', /^text\/html/],
  ['/ui/app.js', /^text\/javascript/],
  ['/ui/app.css', /^text\/css/],
  ['/metrics', /^text\/plain; version=0\.0\.4/],
]);

/**
 * Sends `req` and checks the properties every answer must have (no 5xx; a 4xx is a JSON
 * error; a body over the limit gets 413; a refusal changes nothing).
 */
async function sendChecked(generated: FuzzRequest): Promise<FuzzAnswer> {
  const req = converging(generated);
  const res = await send(req);
  const what = `${describeRequest(req)} → ${res.status} ${res.body.slice(0, 500)}`;
  expect(res.status, what).toBeLessThan(500);
  if (req.kind.startsWith('oversize')) expect(res.status, what).toBe(413);
  if (req.credentials !== undefined && !isPublic(req)) expect([401, 403], what).toContain(res.status);
  const textType = res.status === 200 ? TEXT_ROUTES.get(pathOf(req.url)) : undefined;
  if (req.method !== 'HEAD') expect(res.contentType, what).toMatch(textType ?? /^application\/json/);
  if (res.status >= 400 && req.method !== 'HEAD') {
    const error = JSON.parse(res.body) as { code?: unknown; message?: unknown };
    expect(Object.keys(ERROR_CODES), what).toContain(error.code);
    expect(typeof error.message === 'string' && error.message.length > 0, what).toBe(true);
  }
  if (res.status < 300 && req.method !== 'HEAD' && !textType) rememberGoal(res.body);
  const before = baseline;
  baseline = await snapshot();
  if (res.status >= 400 && baseline !== before) {
    expect(JSON.parse(baseline), `refused, yet the formation changed: ${what}`).toEqual(JSON.parse(before));
  }
  return res;
}

/** The goal the monitor last answered for each node (from reports, goal polls, registrations). */
const lastGoal = new Map<number, NodeState>();

function rememberGoal(body: string): void {
  const answer = JSON.parse(body) as { nodeId?: unknown; goalState?: unknown; nodeToken?: unknown };
  if (typeof answer.nodeId === 'number' && typeof answer.nodeToken === 'string') nodeTokens.set(answer.nodeId, answer.nodeToken);
  if (typeof answer.nodeId === 'number' && typeof answer.goalState === 'string') lastGoal.set(answer.nodeId, answer.goalState as NodeState);
}

/**
 * A `report:converge` request with the report its keeper would send had it reached the goal
 * the monitor last gave it (so that the fuzzing walks the formation through real sequences,
 * where switchover, failover and maintenance mean something); any other request as it is.
 */
function converging(req: FuzzRequest): FuzzRequest {
  if (req.kind !== 'report:converge' || req.payload === undefined || req.asNode === undefined) return req;
  const goal = lastGoal.get(req.asNode) ?? 'init';
  const writable = WRITABLE_STATES.has(goal);
  const report = { ...(JSON.parse(req.payload) as Record<string, unknown>), reportedState: goal, isInRecovery: !writable, upstreamStreaming: !writable };
  return { ...req, payload: JSON.stringify(report) };
}

// ---------------------------------------------------------------------------------------------
// Values

/** Percent-encodes every byte of `s`'s UTF-8 except unreserved characters (lone surrogates become U+FFFD). */
function pct(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /^[A-Za-z0-9_.~-]$/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const WEIRD_NUMBERS: unknown[] = [-1, 0, -0, 0.5, 1.5, 101, 65_536, 2 ** 31 - 1, 2 ** 31, 2 ** 32, -(2 ** 31) - 1, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e308, -1e308, Number.MIN_VALUE];
const NUMBER_STRINGS = ['NaN', 'Infinity', '-Infinity', '1e308', '-0', '0x10', '1', '', ' ', '1_000', '\u0663', '2147483648'];
const WEIRD_STRINGS = [
  '',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff',
  'x\udc00y',
  '\ud83d',
  '\u202eevil\u202c',
  '\u200f\u05e9\u05dc\u05d5\u05dd',
  '\ufeff',
  '\ud83d\ude00',
  'e\u0301',
  "'; drop table pgha.nodes; --",
  '"); select pg_sleep(10); --',
  '../../etc/passwd',
  '%00',
  '\\',
  '\\u0000',
  '"',
  '\n\r\t',
  'null',
  '{}',
  'default',
  'a'.repeat(64),
  'x'.repeat(10_000),
  '\u00e4'.repeat(20_000),
];
const BAD_LSNS = ['0/', 'G/1', 'FFFFFFFFF/0', '0/FFFFFFFFF', '/0', '0//0', '0/0/0', '-1/0', '+1/0', '0x1/0', '\uff11/0', '0/1\u0000', '1', '', ' ', '0/ 1', '0 /1', '0/1/'];
const GOOD_LSNS = ['0/0', '0/1', '0/3000060', '0/5000000', '16/B374D848', 'ffffffff/ffffffff', ' 0/2 '];

const weirdScalar: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.constantFrom<unknown>(...WEIRD_NUMBERS, ...NUMBER_STRINGS, ...WEIRD_STRINGS, ...BAD_LSNS, ...NODE_STATES, true, false, null), weight: 6 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 30 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }), weight: 1 },
  { arbitrary: fc.integer(), weight: 1 },
  { arbitrary: fc.double(), weight: 1 },
  { arbitrary: fc.tuple(fc.constantFrom('x', '\u0000', '\ud800', '\u202e', '\u00e4', '"'), fc.integer({ min: 100, max: 20_000 })).map(([c, n]) => c.repeat(n)), weight: 1 },
);
const weirdValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: weirdScalar, weight: 8 },
  { arbitrary: fc.array(weirdScalar, { maxLength: 4 }), weight: 1 },
  { arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), weirdScalar, { maxKeys: 3 }), weight: 1 },
);

/** Raw JSON tokens that `JSON.stringify` cannot produce. */
const RAW_NUMBER_TOKENS = ['-0', '1e400', '-1e400', '1E2', '123456789012345678901234567890', '1.0', '0.0000001', '9007199254740993', '-2147483649'];
const RAW_BAD_TOKENS = ['NaN', 'Infinity', '0x10', '.5', '01', '+1', "'x'", 'undefined', '"\\ud800"', '"\\u0000"', '"a\\qb"'];
const MARK = '\u0001RAW\u0001';

/** A change to an otherwise valid JSON object body. */
type Mutation =
  | { op: 'drop'; pick: number }
  | { op: 'set'; pick: number; value: unknown }
  | { op: 'extra'; key: string; value: unknown }
  | { op: 'raw'; pick: number; token: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('drop' as const), pick: fc.nat() }),
  { arbitrary: fc.record({ op: fc.constant('set' as const), pick: fc.nat(), value: weirdValue }), weight: 4 },
  fc.record({
    op: fc.constant('extra' as const),
    key: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'nodeId', 'goalState', 'formation', 'reportedstate', ''), fc.string({ maxLength: 10 })),
    value: weirdValue,
  }),
  fc.record({ op: fc.constant('raw' as const), pick: fc.nat(), token: fc.constantFrom(...RAW_NUMBER_TOKENS, ...RAW_BAD_TOKENS) }),
);

/** `base` with `mutations` applied, as JSON text (raw tokens written in place of their key's value). */
function mutate(base: Record<string, unknown>, mutations: readonly Mutation[]): { text: string; tag: string } {
  const body: Record<string, unknown> = { ...base };
  const raw: string[] = [];
  const tags: string[] = [];
  const keyOf = (pick: number): string => {
    const keys = Object.keys(body);
    return keys.length === 0 ? 'x' : keys[pick % keys.length]!;
  };
  for (const m of mutations) {
    if (m.op === 'drop') {
      const key = keyOf(m.pick);
      delete body[key];
      tags.push(`-${key}`);
    } else if (m.op === 'set') {
      const key = keyOf(m.pick);
      body[key] = m.value;
      tags.push(`~${key}`);
    } else if (m.op === 'extra') {
      // defineProperty: `__proto__` becomes an own key that JSON.stringify writes.
      Object.defineProperty(body, m.key, { value: m.value, enumerable: true, configurable: true, writable: true });
      tags.push(`+${m.key}`);
    } else {
      const key = keyOf(m.pick);
      body[key] = `${MARK}${raw.length}`;
      raw.push(m.token);
      tags.push(`=${key}`);
    }
  }
  let text = JSON.stringify(body);
  raw.forEach((token, i) => {
    text = text.replace(JSON.stringify(`${MARK}${i}`), token);
  });
  return { text, tag: tags.join(',') || 'valid' };
}

/** A body from a valid base: as it is, mutated, or not an object at all. */
function bodyFrom(base: fc.Arbitrary<Record<string, unknown>>, maxMutations = 3): fc.Arbitrary<{ text: string; tag: string }> {
  return fc.oneof(
    { arbitrary: base.map((b) => ({ text: JSON.stringify(b), tag: 'valid' })), weight: 3 },
    { arbitrary: fc.tuple(base, fc.array(mutation, { minLength: 1, maxLength: maxMutations })).map(([b, ms]) => mutate(b, ms)), weight: 8 },
    { arbitrary: weirdValue.map((v) => ({ text: JSON.stringify(v) ?? 'null', tag: 'not-object' })), weight: 1 },
    { arbitrary: fc.constantFrom('null', '[]', '0', '"x"', 'true', '{}').map((text) => ({ text, tag: 'not-object' })), weight: 1 },
  );
}

const JSON_TYPE = 'application/json';
const contentType: fc.Arbitrary<string | undefined> = fc.oneof(
  { arbitrary: fc.constant(JSON_TYPE), weight: 30 },
  fc.constantFrom(
    'application/json; charset=utf-8',
    'application/json; charset=latin1',
    'APPLICATION/JSON',
    'application/jsonp',
    'application/merge-patch+json',
    'text/plain',
    'text/plain; charset=utf-16',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/octet-stream',
    '*/*',
    '',
    undefined,
  ),
);

const formationSegment: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.constant(DEFAULT_FORMATION), weight: 6 },
  fc.constantFrom('nosuch', 'DEFAULT', 'fz_1', '..', '%2F', '%00', '%E0%A4%A', '%', '%ZZ', '%C0%AF', 'a'.repeat(63), 'a'.repeat(64), 'a'.repeat(200), '%20default'),
  weirdScalar.map((v) => pct(String(v))),
);

/** A node id path segment: the fixture's ids most of the time, else unknown or malformed ones. */
function nodeIdSegment(): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(fixture.a, fixture.b).map(String), weight: 6 },
    fc.constantFrom('0', '-1', '999999', '2147483647', '2147483648', '-2147483649', '9007199254740992', '1e308', '1e3', '1.5', '1.0', 'NaN', 'Infinity', '0x1', '%201', '1%20', '%31', '%00', '', 'abc', '%EF%BC%91', '1'.repeat(120)),
    fc.integer().map(String),
    weirdScalar.map((v) => pct(String(v))),
  );
}

const nodeNameSegment: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('a', 'b', 'nosuch', 'fz1', 'A', '.', '..', '-x', 'a'.repeat(63), 'a'.repeat(64)),
  weirdScalar.map((v) => pct(String(v))),
);

/** A query string from key/value pairs (`undefined` value: the key alone). */
function query(pairs: fc.Arbitrary<[string, string | undefined]>): fc.Arbitrary<string> {
  return fc.array(pairs, { maxLength: 3 }).map((ps) => (ps.length === 0 ? '' : `?${ps.map(([k, v]) => (v === undefined ? pct(k) : `${pct(k)}=${pct(v)}`)).join('&')}`));
}
const anyQueryValue = fc.oneof(fc.constantFrom('', '-1', '0', '1', '1001', 'abc', '1e3', '1.5', 'NaN', '2147483648', 'true', 'nosuch'), weirdScalar.map(String));
const extraQueryPair = fc.tuple(fc.oneof(fc.constantFrom('x', '', '__proto__', 'wait_ms[]'), fc.string({ maxLength: 6 })), fc.option(anyQueryValue, { nil: undefined }));

// ---------------------------------------------------------------------------------------------
// Requests

/**
 * A valid report, possibly stale, out of order or for a state the node cannot be in; now and
 * then from a keeper that still spells `postgresRunning` `pgIsRunning`, its former name.
 */
const validReport: fc.Arbitrary<Record<string, unknown>> = fc.tuple(fc.record(
  {
    reportedState: fc.constantFrom(...NODE_STATES),
    postgresRunning: fc.boolean(),
    isInRecovery: fc.option(fc.boolean(), { nil: null }),
    lsn: fc.constantFrom(...GOOD_LSNS),
    timeline: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(2 ** 31 - 1)),
    upstreamStreaming: fc.boolean(),
    transitionInProgress: fc.option(fc.string({ maxLength: 100 }), { nil: null }),
    transitionProgress: fc.option(fc.record({ phase: fc.constant('basebackup'), doneBytes: fc.nat(), totalBytes: fc.option(fc.nat(), { nil: null }) }), { nil: null }),
    synchronousStandbyNames: fc.option(fc.constantFrom('', 'ANY 1 (pgha_node_2)', `FIRST 1 ("it's")`), { nil: null }),
    shutdownCheckpointLsn: fc.option(fc.constantFrom(...GOOD_LSNS), { nil: null }),
    problem: fc.option(fc.constantFrom('disk full', 'pg_basebackup failed'), { nil: null }),
    selfFence: fc.option(
      fc.record({
        fencedAtMs: fc.oneof(fc.constantFrom(946_684_800_000, 253_402_300_799_999), fc.integer({ min: 946_684_800_000, max: 253_402_300_799_999 })),
        reason: fc.constantFrom('network partition: monitor last answered 1004 ms ago', '', `it's "quoted" %s`),
        fromState: fc.constantFrom(...NODE_STATES),
        monitorSilentMs: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
        postgresStopped: fc.boolean(),
        unreachableMs: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
      }),
      { nil: null },
    ),
  },
  { requiredKeys: ['reportedState', 'postgresRunning', 'isInRecovery', 'lsn', 'timeline', 'upstreamStreaming'] },
), fc.boolean()).map(([report, formerName]) => {
  if (!formerName) return report;
  const { postgresRunning, ...rest } = report;
  return { ...rest, pgIsRunning: postgresRunning };
});

/** Reports: to the fixture's nodes (from themselves or from the other one) and to bad ids. */
function reportRequest(): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({ id: nodeIdSegment(), from: fc.constantFrom(fixture.a, fixture.b), body: bodyFrom(validReport), type: contentType })
    .map(({ id, from, body, type }) => ({
      method: 'POST' as const,
      url: `/v1/nodes/${id}/report`,
      payload: body.text,
      contentType: type,
      asNode: from,
      kind: `report:${String(from) === id ? '' : 'other-id,'}${body.tag}`,
    }));
}

/** Reports of the fixture's nodes as their keepers would send them on reaching their goals (see {@link converging}). */
function convergingReport(): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({ node: fc.constantFrom(fixture.a, fixture.b), lsn: fc.constantFrom('0/5000000', '0/5000060', '0/5001000'), problem: fc.option(fc.constant('disk full'), { nil: null, freq: 10 }) })
    .map(({ node, lsn, problem }) => ({
      method: 'POST' as const,
      url: `/v1/nodes/${node}/report`,
      payload: JSON.stringify({ reportedState: 'init', postgresRunning: true, isInRecovery: null, lsn, timeline: 1, upstreamStreaming: false, problem }),
      contentType: JSON_TYPE,
      asNode: node,
      kind: 'report:converge',
    }));
}

const registerBase: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    name: fc.constantFrom('a', 'b', 'fz1', 'fz2'),
    host: fc.constantFrom('127.0.0.1', '::1', 'localhost'),
    port: fc.constantFrom(6001, 6002, 6003),
    candidatePriority: fc.constantFrom(0, 50, 100),
    replicationQuorum: fc.boolean(),
  },
  { requiredKeys: ['name', 'host', 'port'] },
);

function registerRequest(): fc.Arbitrary<FuzzRequest> {
  return fc.record({ formation: formationSegment, body: bodyFrom(registerBase), type: contentType }).map(({ formation, body, type }) => ({
    method: 'POST' as const,
    url: `/v1/formations/${formation}/nodes`,
    payload: body.text,
    contentType: type,
    kind: `register:${body.tag}`,
  }));
}

function goalRequest(): fc.Arbitrary<FuzzRequest> {
  // wait_ms stays small when valid: a long poll on the current goal would wait it out.
  const pair = fc.oneof(
    fc.tuple(fc.constant('known'), fc.oneof(fc.constantFrom<string | undefined>(...NODE_STATES, 'nosuch', 'SINGLE', '', undefined), weirdScalar.map(String))),
    fc.tuple(fc.constant('wait_ms'), fc.constantFrom<string | undefined>('-1', '0', '5', '2e1', '0x10', '-0', '30001', '1e308', 'NaN', 'Infinity', '', 'abc', '1.5', '9007199254740992', ' 1', undefined)),
    extraQueryPair,
  );
  return fc.record({ id: nodeIdSegment(), from: fc.constantFrom(fixture.a, fixture.b), q: query(pair), method: fc.constantFrom('GET' as const, 'HEAD' as const) }).map(({ id, from, q, method }) => ({
    method,
    url: `/v1/nodes/${id}/goal${q}`,
    asNode: from,
    kind: 'goal',
  }));
}

function readRequest(): fc.Arbitrary<FuzzRequest> {
  const pair = fc.oneof(fc.tuple(fc.constantFrom('count', 'group'), fc.option(anyQueryValue, { nil: undefined })), extraQueryPair);
  const path = fc.oneof(
    fc.tuple(formationSegment, fc.constantFrom('state', 'events', 'uri', 'settings', 'standby-names')).map(([f, what]) => `/v1/formations/${f}/${what}`),
    fc.tuple(formationSegment, nodeNameSegment).map(([f, n]) => `/v1/formations/${f}/nodes/${n}/settings`),
    fc.constant('/health'),
    fc.constantFrom('/metrics', '/v1/formations', ...UI_ROUTES),
  );
  return fc.record({ path, q: query(pair) }).map(({ path: p, q }) => ({ method: 'GET' as const, url: `${p}${q}`, kind: 'read' }));
}

/** Operator commands and settings; node names `a` and `b` are never dropped (the fixture stays). */
function operatorRequest(): fc.Arbitrary<FuzzRequest> {
  const name = fc.constantFrom('a', 'b', 'nosuch', 'fz1');
  const command: fc.Arbitrary<{ verb: string; body: { text: string; tag: string } }> = fc.oneof(
    fc.record({ verb: fc.constantFrom('switchover', 'failover'), body: bodyFrom(fc.constant({}), 2) }),
    fc.record({ verb: fc.constant('promotion'), body: bodyFrom(fc.record({ name })) }),
    fc.record({ verb: fc.constant('maintenance'), body: bodyFrom(fc.record({ name, enable: fc.boolean(), allowFailover: fc.boolean() }, { requiredKeys: ['name', 'enable'] })) }),
    fc.record({ verb: fc.constant('restart'), body: bodyFrom(fc.record({ name, inPlace: fc.boolean() }, { requiredKeys: ['name'] })) }),
  );
  return fc.oneof(
    fc.record({ f: formationSegment, c: command, type: contentType }).map(({ f, c: { verb, body }, type }) => ({
      method: 'POST' as const,
      url: `/v1/formations/${f}/${verb}`,
      payload: body.text,
      contentType: type,
      kind: `${verb}:${body.tag}`,
    })),
    fc.record({ f: formationSegment, body: bodyFrom(fc.record({ numberSyncStandbys: fc.integer({ min: 0, max: 3 }) })), type: contentType }).map(({ f, body, type }) => ({
      method: 'PATCH' as const,
      url: `/v1/formations/${f}/settings`,
      payload: body.text,
      contentType: type,
      kind: `formation-settings:${body.tag}`,
    })),
    fc
      .record({
        f: formationSegment,
        n: nodeNameSegment,
        body: bodyFrom(fc.record({ candidatePriority: fc.integer({ min: 0, max: 100 }), replicationQuorum: fc.boolean() }, { requiredKeys: [] })),
        type: contentType,
      })
      .map(({ f, n, body, type }) => ({ method: 'PATCH' as const, url: `/v1/formations/${f}/nodes/${n}/settings`, payload: body.text, contentType: type, kind: `node-settings:${body.tag}` })),
    fc.record({ body: bodyFrom(fc.record({ formation: fc.constantFrom('default', 'fz_1', 'fz_2', 'Bad', '1x'), numberSyncStandbys: fc.integer({ min: 0, max: 2 }) }, { requiredKeys: ['formation'] })), type: contentType }).map(({ body, type }) => ({
      method: 'POST' as const,
      url: '/v1/formations',
      payload: body.text,
      contentType: type,
      kind: `create-formation:${body.tag}`,
    })),
    formationSegment.map((f) => ({ method: 'DELETE' as const, url: `/v1/formations/${f}`, kind: 'drop-formation' })),
    fc
      .record({
        f: formationSegment,
        n: fc.oneof(fc.constantFrom('nosuch', 'fz1', 'fz2'), nodeNameSegment.filter((n) => n !== 'a' && n !== 'b')),
        q: query(fc.oneof(fc.tuple(fc.constant('destroy'), fc.option(fc.constantFrom('true', 'false', 'yes', '1', '', 'TRUE'), { nil: undefined })), extraQueryPair)),
      })
      .map(({ f, n, q }) => ({ method: 'DELETE' as const, url: `/v1/formations/${f}/nodes/${n}${q}`, kind: 'drop-node' })),
    // The fixture's nodes with a bad query: refused before anything is dropped.
    fc.record({ n: fc.constantFrom('a', 'b'), q: fc.constantFrom('?destroy=yes', '?destroy=', '?destroy=true&x=1', '?x', '?destroy=true&destroy=false') }).map(({ n, q }) => ({
      method: 'DELETE' as const,
      url: `/v1/formations/${DEFAULT_FORMATION}/nodes/${n}${q}`,
      kind: 'drop-node:bad-query',
    })),
  );
}

const MALFORMED_JSON = ['{', '{"a":', '{"a":1,}', '{a:1}', "{'a':1}", '[1,', '\u0000', '\ufeff{}', '{"a":1}{"b":2}', '{"a":"\\x"}', '{"a":"\ud800"}', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', ' ', 'nul', '{"a":1e999999}', '"\\uDEAD"', '{"a":"b"\u0000}'];

/** Random methods, paths and bodies: known routes with the wrong method, unknown routes, raw bodies. */
function randomRequest(): fc.Arbitrary<FuzzRequest> {
  const segment = fc.oneof(
    fc.constantFrom('v1', 'formations', 'nodes', 'default', 'report', 'goal', 'state', 'health', '..', '.', '', '%', '%2e%2e', '%00', '%FF', '%E0%A4%A', String(fixture.a)),
    weirdScalar.map((v) => pct(String(v))),
  );
  const path = fc.oneof(
    fc.array(segment, { minLength: 1, maxLength: 6 }).map((s) => `/${s.join('/')}`),
    fc.constantFrom(
      `/v1/nodes/${fixture.a}/report`,
      `/v1/nodes/${fixture.b}/goal`,
      `/v1/formations/${DEFAULT_FORMATION}/nodes`,
      `/v1/formations/${DEFAULT_FORMATION}/switchover`,
      `/v1/formations/${DEFAULT_FORMATION}/settings`,
      '/v1/formations',
      '/health',
      '//health',
      '/health/',
      '/metrics',
      '/metrics/',
      '/ui',
      '/ui/',
      '/UI',
      '/ui/app.js',
      '/ui/../metrics',
      '/ui/app.css',
      '/HEALTH',
      '/v1/nodes//report',
      '/v1/nodes/1/report/',
      '/v1/nodes/1/report?',
      '/v1/nodes/1/report#x',
      '/%2Fv1/nodes',
      '*',
    ),
  );
  const body = fc.option(fc.oneof(fc.constantFrom(...MALFORMED_JSON), weirdValue.map((v) => JSON.stringify(v) ?? 'null'), fc.string({ unit: 'binary', maxLength: 200 })), { nil: undefined });
  return fc
    .record({ method: fc.constantFrom('GET' as const, 'HEAD' as const, 'POST' as const, 'PUT' as const, 'PATCH' as const, 'DELETE' as const, 'OPTIONS' as const), path, body, type: contentType })
    .map(({ method, path: p, body: b, type }) => ({ method, url: p, ...(b !== undefined ? { payload: b } : {}), contentType: type, kind: 'random' }));
}

/** Malformed JSON with a JSON content type, to every route that takes a body. */
function malformedRequest(): fc.Arbitrary<FuzzRequest> {
  const target = fc.constantFrom<[FuzzRequest['method'], string]>(
    ['POST', `/v1/nodes/${fixture.a}/report`],
    ['POST', `/v1/nodes/${fixture.b}/report`],
    ['POST', `/v1/formations/${DEFAULT_FORMATION}/nodes`],
    ['POST', `/v1/formations/${DEFAULT_FORMATION}/switchover`],
    ['POST', `/v1/formations/${DEFAULT_FORMATION}/failover`],
    ['POST', `/v1/formations/${DEFAULT_FORMATION}/promotion`],
    ['POST', `/v1/formations/${DEFAULT_FORMATION}/maintenance`],
    ['POST', '/v1/formations'],
    ['PATCH', `/v1/formations/${DEFAULT_FORMATION}/settings`],
    ['PATCH', `/v1/formations/${DEFAULT_FORMATION}/nodes/a/settings`],
  );
  const text = fc.oneof(fc.constantFrom(...MALFORMED_JSON), fc.string({ unit: 'binary', maxLength: 100 }).filter((s) => !isJson(s)));
  return fc.record({ t: target, text, type: fc.constantFrom(JSON_TYPE, 'application/json; charset=utf-8') }).map(({ t: [method, url], text: payload, type }) => ({ method, url, payload, contentType: type, kind: 'malformed-json' }));
}

function isJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

/** Bodies over the limit, to routes that read a body, as JSON or text. */
function oversizeRequest(): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({
      // Credentials that open the route: without them, the request is refused (401/403) before its body is read.
      url: fc.constantFrom(`/v1/nodes/${fixture.a}/report`, `/v1/nodes/${fixture.b}/report`, `/v1/formations/${DEFAULT_FORMATION}/nodes`, `/v1/formations/${DEFAULT_FORMATION}/switchover`, '/v1/formations'),
      extraBytes: fc.integer({ min: 1, max: 2 * BODY_LIMIT_BYTES }),
      type: fc.constantFrom(JSON_TYPE, 'text/plain'),
    })
    .map(({ url, extraBytes, type }) => {
      const head = '{"problem":"';
      const payload = `${head}${'x'.repeat(BODY_LIMIT_BYTES + extraBytes - head.length - 2)}"}`;
      const node = /^\/v1\/nodes\/(\d+)\//.exec(url);
      return { method: 'POST' as const, url, payload, contentType: type, kind: 'oversize', ...(node ? { asNode: Number(node[1]) } : {}) };
    });
}

// ---------------------------------------------------------------------------------------------

const FUZZ_SEED = process.env.PGHA_FUZZ_SEED ? Number(process.env.PGHA_FUZZ_SEED) : undefined;

/** Requests in each generated sequence. */
const REQUESTS_PER_RUN = 8;

/** Runs `numRuns` sequences of {@link REQUESTS_PER_RUN} requests from `arb` through {@link sendChecked}. */
async function fuzz(arb: fc.Arbitrary<FuzzRequest>, numRuns: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.array(arb, { minLength: REQUESTS_PER_RUN, maxLength: REQUESTS_PER_RUN }), async (requests) => {
      for (const req of requests) await sendChecked(req);
    }),
    { numRuns, ...(FUZZ_SEED !== undefined ? { seed: FUZZ_SEED } : {}) },
  );
}

beforeAll(async () => {
  store = await startStore();
  const pgStore = store.store;
  await pgStore.migrate();
  await pgStore.formations.create(DEFAULT_FORMATION);
  const log = pino({ level: 'silent' });
  notifier = new GoalNotifier(store.conn);
  await notifier.start();
  const lag = new MonitorLag();
  const driver = new GroupDriver(pgStore, log, lag);
  const auth = { operatorTokenSha256: tokenSha256(OPERATOR_TOKEN), nodeCredentials: new NodeCredentials(pgStore.credentials) };
  app = buildApp({ store: pgStore, driver, reports: new ReportBatcher(pgStore, driver, lag), notifier, log, auth });
  await app.ready();

  const register = async (name: string, port: number): Promise<number> => {
    const res = await send({ method: 'POST', url: `/v1/formations/${DEFAULT_FORMATION}/nodes`, payload: JSON.stringify({ name, host: '127.0.0.1', port }), contentType: JSON_TYPE, kind: 'setup' });
    expect(res.status, res.body).toBe(201);
    rememberGoal(res.body);
    return (JSON.parse(res.body) as { nodeId: number }).nodeId;
  };
  fixture.a = await register('a', 6001);
  fixture.b = await register('b', 6002);
  const report = async (nodeId: number, body: Record<string, unknown>): Promise<void> => {
    const res = await send({ method: 'POST', url: `/v1/nodes/${nodeId}/report`, payload: JSON.stringify(body), contentType: JSON_TYPE, asNode: nodeId, kind: 'setup' });
    expect(res.status, res.body).toBe(200);
    rememberGoal(res.body);
  };
  await report(fixture.a, { reportedState: 'single', postgresRunning: true, isInRecovery: false, lsn: '0/3000060', timeline: 1, upstreamStreaming: false });
  await report(fixture.b, { reportedState: 'wait_standby', postgresRunning: false, isInRecovery: null, lsn: '0/0', timeline: 0, upstreamStreaming: false });
  baseline = await snapshot();
}, 120_000);

afterAll(async () => {
  await app?.close();
  await notifier?.stop();
  await store?.stop();
  await endAllProcesses();
});

describe('the monitor API under fuzzing', () => {
  it('answers a body of 65 KiB to the report route with 413 naming the limit', async () => {
    const payload = JSON.stringify({ problem: 'x'.repeat(65 * 1024) });
    const res = await sendChecked({ method: 'POST', url: `/v1/nodes/${fixture.a}/report`, payload, contentType: JSON_TYPE, asNode: fixture.a, kind: 'oversize' });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'PGHA_ERR_VALIDATION', message: expect.stringMatching(/65536 bytes \(64 KiB\)/) });
  });

  it('writes one keeper-self-fenced event per self-fence, however often its report is sent, at once or again', async () => {
    const fenceEvents = async () =>
      (await sql<{ reason: string }>`select reason from pgha.events where node_id = ${fixture.a} and rule = 'keeper-self-fenced' order by event_id`.execute(store!.db)).rows.map((r) => r.reason);
    const fencedAtMs = Date.UTC(2030, 0, 1, 12, 0, 1, 234);
    const withFence = (at: number, unreachableMs: number): FuzzRequest => ({
      method: 'POST',
      url: `/v1/nodes/${fixture.a}/report`,
      payload: JSON.stringify({
        reportedState: 'single', postgresRunning: true, isInRecovery: false, lsn: '0/3000060', timeline: 1, upstreamStreaming: false,
        selfFence: { fencedAtMs: at, reason: 'network partition: monitor last answered 1004 ms ago', fromState: 'primary', monitorSilentMs: 1004, postgresStopped: true, unreachableMs },
      }),
      contentType: JSON_TYPE,
      asNode: fixture.a,
      kind: 'report:self-fence',
    });
    const before = (await fenceEvents()).length;
    // Two reports at once (a heartbeat beside a tick), then the same fence again (a retry whose answer was lost).
    const racing = await Promise.all([send(withFence(fencedAtMs, 5012)), send(withFence(fencedAtMs, 5013)), send(withFence(fencedAtMs, 5014))]);
    expect(racing.map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await sendChecked(withFence(fencedAtMs, 6000))).status).toBe(200);
    const events = (await fenceEvents()).slice(before);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatch(
      new RegExp(`^node ${fixture.a} "a" fenced itself at 2030-01-01 12:00:01\\.234 UTC \\(network partition: monitor last answered 1004 ms ago\\): it was primary and had not heard the monitor for 1004 ms; Postgres stopped; the monitor was unreachable for 501[234] ms$`),
    );
    // An older fence (a keeper's file restored from a backup) writes nothing; a newer one writes its own.
    expect((await sendChecked(withFence(fencedAtMs - 60_000, 100))).status).toBe(200);
    expect((await fenceEvents()).slice(before)).toHaveLength(1);
    expect((await sendChecked(withFence(fencedAtMs + 60_000, 100))).status).toBe(200);
    expect((await fenceEvents()).slice(before)).toHaveLength(2);
  });

  it('understands a report from a keeper older than the monitor: pgIsRunning is the former name of postgresRunning', async () => {
    const running = async () => (await sql<{ running: boolean }>`select postgres_running as running from pgha.nodes where node_id = ${fixture.b}`.execute(store!.db)).rows[0]?.running;
    const reportOf = (body: Record<string, unknown>): FuzzRequest => ({
      method: 'POST', url: `/v1/nodes/${fixture.b}/report`, contentType: JSON_TYPE, asNode: fixture.b, kind: 'report:former-name',
      payload: JSON.stringify({ reportedState: 'wait_standby', isInRecovery: null, lsn: '0/0', timeline: 0, upstreamStreaming: false, ...body }),
    });
    expect((await sendChecked(reportOf({ pgIsRunning: true }))).status).toBe(200);
    expect(await running()).toBe(true);
    expect((await sendChecked(reportOf({ pgIsRunning: false }))).status).toBe(200);
    expect(await running()).toBe(false);
    expect((await sendChecked(reportOf({ postgresRunning: true }))).status).toBe(200);
    expect(await running()).toBe(true);
    // Both names at once: the former one is an unknown field, as any other.
    const both = await sendChecked(reportOf({ postgresRunning: false, pgIsRunning: false }));
    expect(both.status).toBe(400);
    expect(JSON.parse(both.body)).toMatchObject({ code: 'PGHA_ERR_VALIDATION', message: 'body has unknown field(s): pgIsRunning' });
    expect(await running()).toBe(true);
    // Neither: the current name is the one required.
    expect(JSON.parse((await sendChecked(reportOf({}))).body)).toMatchObject({ message: 'body.postgresRunning is required' });
    expect((await sendChecked(reportOf({ postgresRunning: false }))).status).toBe(200);
  });

  it('keeper routes: reports (stale, impossible, misdirected, malformed), registrations and goal polls', async () => {
    await fuzz(fc.oneof({ arbitrary: reportRequest(), weight: 3 }, { arbitrary: convergingReport(), weight: 2 }, registerRequest(), goalRequest()), 600);
  });

  it('operator routes: reads, commands, settings, formations and drops', async () => {
    // Keepers keep converging meanwhile, so that commands find the states they need.
    await fuzz(fc.oneof(readRequest(), { arbitrary: operatorRequest(), weight: 2 }, convergingReport()), 375);
  });

  it('random paths and methods, malformed JSON, wrong content types', async () => {
    await fuzz(fc.oneof(randomRequest(), malformedRequest()), 325);
  });

  it('wrong credentials on any request: none, garbage, another node\'s token, the operator token on a keeper route (401/403, nothing changes)', async () => {
    const credentials = fc.constantFrom<NonNullable<FuzzRequest['credentials']>>('none', 'garbage', `node:${fixture.a}`, `node:${fixture.b}`, 'operator');
    const anyRequest = fc.oneof(reportRequest(), goalRequest(), registerRequest(), readRequest(), operatorRequest(), randomRequest());
    const refused = fc.tuple(anyRequest, credentials).filter(([req, c]) => {
      // Keep only combinations that must be refused: a node's token on its own node's route is fine.
      // (A `#fragment` is not part of the path: `/v1/nodes/1/report#x` is node 1's report route.)
      const keeperRoute = req.method === 'POST' ? /^\/v1\/nodes\/([^/?#]+)\/report([?#]|$)/.exec(req.url) : ['GET', 'HEAD'].includes(req.method) ? /^\/v1\/nodes\/([^/?#]+)\/goal([?#]|$)/.exec(req.url) : null;
      if (isPublic(req)) return false;
      // The router refuses a path that does not decode, or a segment over 100 characters, before any hook (400/414).
      try {
        if (req.url.split('?')[0]!.split('/').some((seg) => decodeURIComponent(seg).length > 100)) return false;
      } catch {
        return false;
      }
      if (c === 'none' || c === 'garbage') return true;
      if (c === 'operator') return keeperRoute !== null;
      return keeperRoute === null || decodeURIComponent(keeperRoute[1]!) !== c.slice(5);
    }).map(([req, c]) => ({ ...req, credentials: c, kind: `auth:${c.split(':')[0]},${req.kind}` }));
    await fuzz(refused, 100);
  });

  it('bodies over the limit get 413', async () => {
    await fuzz(oversizeRequest(), 25);
  });

  it('sent at least 10,000 generated requests', () => {
    console.log(`api-fuzz: ${sent} requests sent (${[...answered].sort().map(([k, n]) => `${k}: ${n}`).join(', ')})`);
    expect(sent).toBeGreaterThanOrEqual(10_000);
  });
});
