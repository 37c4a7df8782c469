/**
 * The client over a list of monitors, against local HTTP servers on free loopback ports: one
 * down (nothing listens), one answering 503 (cut off from its store), one silent, one
 * answering. What a keeper or a `pgha` command sees: which monitor served, which were tried,
 * and the one-line error when none answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import getPort from 'get-port';
import { afterEach, describe, expect, it } from 'vitest';
import { MonitorUnavailableError, NotFoundError, PghaError } from '@pgha/shared';
import { MonitorClient, type MonitorChange } from '../src/monitor-client.js';

interface TestServer {
  url: string;
  /** Requests received: method and path. */
  hits: string[];
}

const servers: Server[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A server on a free loopback port whose every request `handle` answers (or not). */
async function serve(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    handle(req, res);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits };
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};

/** Answers every request with 200 and `{ served: name }`. */
const answering = (name: string) => serve((req, res) => json(res, 200, { served: name, path: req.url }));
/** Answers 503, as a monitor cut off from its store does. */
const unavailable = () => serve((_req, res) => json(res, 503, { code: 'PGHA_ERR_STORE_UNAVAILABLE', message: "the monitor's store cannot be reached" }));
/** Takes requests and never answers. */
const silent = () => serve(() => undefined);
/** A URL where nothing listens. */
const down = async () => `http://127.0.0.1:${await getPort({ host: '127.0.0.1' })}`;

describe('MonitorClient over a list of monitors', () => {
  it('skips a monitor that is down and one that answers 503, and keeps to the one that answered', async () => {
    const dead = await down();
    const cut = await unavailable();
    const good = await answering('good');
    const changes: MonitorChange[] = [];
    const client = new MonitorClient([dead, cut.url, good.url], {}, { onMonitorChange: (c) => changes.push(c) });
    try {
      expect(client.monitorUrl).toBe(dead);
      expect(await client.request('GET', '/v1/formations/default/state')).toMatchObject({ served: 'good' });
      expect(client.monitorUrl).toBe(good.url);
      expect(changes).toHaveLength(1);
      expect(changes[0]).toMatchObject({ url: good.url, previous: undefined });
      expect(changes[0]!.failures.map((f) => f.url)).toEqual([dead, cut.url]);
      expect(changes[0]!.failures[0]!.reason).toMatch(/ECONNREFUSED/);
      expect(changes[0]!.failures[1]!.reason).toBe("HTTP 503: the monitor's store cannot be reached");
      // Sticky: the next requests go to the monitor that answered, and no change is told.
      await client.request('GET', '/v1/formations/default/events?count=1');
      expect(cut.hits).toHaveLength(1);
      expect(good.hits).toHaveLength(2);
      expect(changes).toHaveLength(1);
    } finally {
      await client.close();
    }
  });

  it('sends the next requests to the leader a monitor forwarded to (x-pgha-leader), when it is in the list', async () => {
    const leader = await answering('leader');
    const follower = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-pgha-leader': `${leader.url}/` }).end(JSON.stringify({ served: 'forwarded' }));
    });
    const client = new MonitorClient([follower.url, leader.url]);
    try {
      expect(await client.request('POST', '/v1/nodes/1/report', {})).toMatchObject({ served: 'forwarded' });
      expect(client.monitorUrl).toBe(leader.url);
      expect(await client.request('POST', '/v1/nodes/1/report', {})).toMatchObject({ served: 'leader' });
      expect(follower.hits).toHaveLength(1);
      // A leader outside the list changes nothing.
      const other = new MonitorClient([follower.url]);
      await other.request('GET', '/v1/monitors');
      expect(other.monitorUrl).toBe(follower.url);
      await other.close();
    } finally {
      await client.close();
    }
  });

  it('asks the list again, within the deadline, while monitors answer 503 (a leader change), and gets the answer once one serves', async () => {
    let refusals = 3;
    const changing = await serve((req, res) => (refusals-- > 0 ? json(res, 503, { code: 'PGHA_ERR_NOT_LEADER', message: 'no monitor leads it right now' }) : json(res, 200, { served: 'leader' })));
    const dead = await down();
    const client = new MonitorClient([changing.url, dead]);
    try {
      expect(await client.request('POST', '/v1/formations/default/switchover', {}, 5000)).toMatchObject({ served: 'leader' });
      expect(changing.hits).toHaveLength(4);
    } finally {
      await client.close();
    }
    // Monitors that only refuse to connect are not asked again: the error comes at once.
    const t0 = performance.now();
    const gone = new MonitorClient([await down(), await down()]);
    await expect(gone.request('GET', '/v1/monitors', undefined, 5000)).rejects.toThrow(/no monitor answered/);
    expect(performance.now() - t0).toBeLessThan(2000);
    await gone.close();
  });

  it('takes a 4xx as the final answer: the next monitor is not asked', async () => {
    const refusing = await serve((_req, res) => json(res, 404, { code: 'PGHA_ERR_NOT_FOUND', message: 'formation "nosuch" does not exist', hint: 'pgha show formations' }));
    const good = await answering('good');
    const client = new MonitorClient([refusing.url, good.url]);
    try {
      const err = await client.request('GET', '/v1/formations/nosuch/state').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NotFoundError);
      expect((err as NotFoundError).message).toBe('formation "nosuch" does not exist');
      expect(good.hits).toEqual([]);
      expect(client.monitorUrl).toBe(refusing.url);
    } finally {
      await client.close();
    }
  });

  it('when none answers, says in one line every monitor tried and why, with a hint', async () => {
    const dead = await down();
    const cut = await unavailable();
    const mute = await silent();
    const client = new MonitorClient([dead, cut.url, mute.url]);
    try {
      const err = (await client.request('GET', '/v1/formations/default/state', undefined, 900).catch((e: unknown) => e)) as PghaError;
      expect(err).toBeInstanceOf(MonitorUnavailableError);
      const line = err.toUserLine();
      expect(line).not.toContain('\n');
      expect(line).toMatch(new RegExp(`^no monitor answered: ${dead} \\(connect ECONNREFUSED [^)]+\\), ${cut.url} \\(HTTP 503: the monitor's store cannot be reached\\), ${mute.url} \\(no answer within [^)]+\\); check that \`pgha monitor run\` is running at one of them`));
      expect(mute.hits).toHaveLength(1);
    } finally {
      await client.close();
    }
  });

  it("gives a silent monitor only its share of the request's deadline, so the next one still answers", async () => {
    const mute = await silent();
    const good = await answering('good');
    const client = new MonitorClient([mute.url, good.url]);
    try {
      const started = performance.now();
      expect(await client.request('GET', '/v1/formations/default/state', undefined, 2_000)).toMatchObject({ served: 'good' });
      const tookMs = performance.now() - started;
      expect(tookMs).toBeGreaterThanOrEqual(900);
      expect(tookMs).toBeLessThan(1_900);
      expect(mute.hits).toHaveLength(1);
    } finally {
      await client.close();
    }
  });

  it('with one monitor, fails with its own error as before lists existed', async () => {
    const dead = await down();
    const client = new MonitorClient(dead);
    try {
      const err = (await client.request('GET', '/health').catch((e: unknown) => e)) as PghaError;
      expect(err).toBeInstanceOf(MonitorUnavailableError);
      expect(err.message).toMatch(new RegExp(`^monitor at ${dead} is unreachable \\(connect ECONNREFUSED`));
    } finally {
      await client.close();
    }
  });

  it('moves on after an answer the caller cannot use (passOver), and tells the change', async () => {
    const a = await answering('a');
    const b = await answering('b');
    const changes: MonitorChange[] = [];
    const client = new MonitorClient([a.url, b.url], {}, { onMonitorChange: (c) => changes.push(c) });
    try {
      const first = await client.report(1, {} as never);
      expect(first.monitorUrl).toBe(a.url);
      client.passOver(a.url);
      expect(client.monitorUrl).toBe(b.url);
      const second = await client.report(1, {} as never);
      expect(second).toMatchObject({ monitorUrl: b.url, goal: { served: 'b' } });
      expect(changes.map((c) => [c.url, c.previous, c.failures.length])).toEqual([
        [a.url, undefined, 0],
        [b.url, a.url, 0],
      ]);
    } finally {
      await client.close();
    }
  });

  it("long-polls the goal at the next monitor, asking it to wait for what is left", async () => {
    const dead = await down();
    const good = await answering('good');
    const client = new MonitorClient([dead, good.url]);
    try {
      const answer = await client.waitGoal(4, 'single', 1_000, undefined, 500);
      expect(answer.monitorUrl).toBe(good.url);
      const [hit] = good.hits;
      const waitMs = Number(/wait_ms=(\d+)/.exec(hit!)![1]);
      expect(hit).toMatch(/^GET \/v1\/nodes\/4\/goal\?known=single&wait_ms=\d+$/);
      expect(waitMs).toBeGreaterThan(800);
      expect(waitMs).toBeLessThanOrEqual(1_000);
    } finally {
      await client.close();
    }
  });

  it('a held report with ack: told recorded at the status line, the goal when the monitor sends it', async () => {
    let finish: (() => void) | undefined;
    const holding = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-pgha-report-holds': '1', 'x-pgha-goal-revision': '7' });
      res.write(' ');
      finish = () => res.end(JSON.stringify({ goalState: 'primary' }));
    });
    const client = new MonitorClient([holding.url]);
    try {
      const recorded: unknown[] = [];
      const before = Date.now();
      const answer = client.report(4, { reportedState: 'primary' } as never, 1_000, { known: 'primary', waitMs: 500, ack: true, onRecorded: (r) => recorded.push(r) });
      await expect.poll(() => recorded.length, { timeout: 5_000 }).toBe(1);
      expect(recorded[0]).toMatchObject({ monitorUrl: holding.url, goalRevision: '7', heldMs: 0 });
      expect((recorded[0] as { sentAtMs: number }).sentAtMs).toBeGreaterThanOrEqual(before);
      expect(holding.hits).toEqual(['POST /v1/nodes/4/report?known=primary&wait_ms=500&ack=1']);
      finish!();
      expect(await answer).toMatchObject({ goal: { goalState: 'primary' }, monitorUrl: holding.url, holds: true });
    } finally {
      await client.close();
    }
  });

  it('a held report without ack: one answer, the goal, with how long the monitor held it', async () => {
    const holding = await serve((_req, res) => {
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json', 'x-pgha-report-holds': '1', 'x-pgha-report-held-ms': '120' }).end(JSON.stringify({ goalState: 'secondary' })), 120);
    });
    const client = new MonitorClient([holding.url]);
    try {
      const recorded: { heldMs: number }[] = [];
      const answer = await client.report(5, { reportedState: 'secondary' } as never, 1_000, { known: 'secondary', waitMs: 500, onRecorded: (r) => recorded.push(r) });
      expect(holding.hits).toEqual(['POST /v1/nodes/5/report?known=secondary&wait_ms=500']);
      expect(answer).toMatchObject({ goal: { goalState: 'secondary' }, holds: true });
      expect(recorded.map((r) => r.heldMs)).toEqual([120]);
    } finally {
      await client.close();
    }
  });

  it('a report to a monitor that does not hold reports (no x-pgha-report-holds): answered at once, never told recorded early', async () => {
    const older = await answering('older');
    const client = new MonitorClient([older.url]);
    try {
      const recorded: unknown[] = [];
      const answer = await client.report(4, { reportedState: 'primary' } as never, 1_000, { known: 'primary', waitMs: 500, onRecorded: (r) => recorded.push(r) });
      expect(answer).toMatchObject({ goal: { served: 'older' }, holds: false });
      expect(recorded).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('a held report that its first monitor cannot take goes to the next one unheld', async () => {
    const dead = await down();
    const good = await answering('good');
    const client = new MonitorClient([dead, good.url]);
    try {
      const answer = await client.report(4, { reportedState: 'primary' } as never, 1_000, { known: 'primary', waitMs: 500 });
      expect(answer.monitorUrl).toBe(good.url);
      expect(good.hits).toEqual(['POST /v1/nodes/4/report']);
    } finally {
      await client.close();
    }
  });

  it('opens the event stream at the first monitor that serves it, and the next one after it breaks', async () => {
    const cut = await unavailable();
    let streams = 0;
    const streaming = await serve((_req, res) => {
      streams++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('id: 1\ndata: {}\n\n');
      // The first stream breaks (the monitor dies mid-stream); the second stays open.
      if (streams === 1) setTimeout(() => res.socket?.destroy(), 20);
    });
    const other = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('id: 2\ndata: {}\n\n');
    });
    const client = new MonitorClient([cut.url, streaming.url, other.url]);
    const ac = new AbortController();
    try {
      const first = await client.openStream('/v1/formations/default/events/stream', { signal: ac.signal });
      expect(client.monitorUrl).toBe(streaming.url);
      const chunks: string[] = [];
      await expect((async () => {
        for await (const c of first) chunks.push(c as string);
      })()).rejects.toThrow();
      expect(chunks.join('')).toContain('id: 1');
      // The broken stream's monitor is passed over: the next stream starts at the one after it.
      expect(client.monitorUrl).toBe(other.url);
      const second = await client.openStream('/v1/formations/default/events/stream', { signal: ac.signal });
      const { value } = (await second[Symbol.asyncIterator]().next()) as { value: string };
      expect(value).toContain('id: 2');
      expect(cut.hits).toHaveLength(1);
      expect(streams).toBe(1);
    } finally {
      ac.abort();
      await client.close();
    }
  });
});
