/**
 * The loud-death watch's handling of connections, on real loopback TCP sockets: who closed a
 * keeper's connection, whether it was its last, whether the keeper came back. The connection
 * attempts to the node's ports are the test's (`portRefuses`), so that each case says what the
 * node's ports do; the whole path against real processes is in test/failover.test.ts.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { LOUD_DEATH_CONFIRM_MS, LoudDeathWatch, portRefuses, type LoudDeathTarget } from '../src/prober/loud-death-watch.js';
import { ReportNudges } from '../src/report-nudges.js';

const TARGET: LoudDeathTarget = {
  nodeId: 1,
  name: 'node1',
  formationId: 'default',
  groupId: 0,
  host: '127.0.0.1',
  port: 5001,
  httpAddress: '127.0.0.1:8001',
  peerNodeIds: [2],
  nodeUnhealthyTimeoutMs: 2000,
  healthProbeTimeoutMs: 1000,
};

const servers: Server[] = [];
const clients: Socket[] = [];

afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
  for (const s of servers.splice(0)) s.close();
});

/** A connected pair: the keeper's end and the monitor's end of one connection. */
async function connection(): Promise<{ keeper: Socket; monitor: Socket }> {
  const server = createServer();
  servers.push(server);
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const keeper = connect({ host: '127.0.0.1', port });
  clients.push(keeper);
  const monitor = await accepted;
  clients.push(monitor);
  monitor.on('error', () => undefined);
  keeper.on('error', () => undefined);
  return { keeper, monitor };
}

/** A watch whose ports refuse as `refuses` says, recording evaluations and connection attempts. */
function watchWith(refuses: (host: string, port: number) => boolean, options: { decides?: boolean } = {}) {
  const evaluated: string[] = [];
  const attempts: string[] = [];
  const nudges = new ReportNudges();
  const watch = new LoudDeathWatch({
    target: async (nodeId) => (nodeId === 1 ? TARGET : undefined),
    decidesFor: () => options.decides ?? true,
    evaluate: async (formationId, groupId) => {
      evaluated.push(`${formationId}/${groupId}`);
    },
    log: pino({ level: 'silent' }),
    nudges,
    portRefuses: async (host, port) => {
      attempts.push(`${host}:${port}`);
      return refuses(host, port);
    },
  });
  return { watch, evaluated, attempts, nudges };
}

/** Waits until `check` holds, or fails after `timeoutMs`. */
async function until(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Lets the watch run for `ms`. */
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('LoudDeathWatch', () => {
  it('the keeper closes its only connection and both ports refuse twice: the node died loudly, its group is evaluated and its peers are asked to report', async () => {
    const { keeper, monitor } = await connection();
    const { watch, evaluated, attempts, nudges } = watchWith(() => true);
    watch.keeperRequest(1, monitor);
    const peer = nudges.waiter(2, 10_000);
    let nudged = false;
    void peer.promise.then(() => (nudged = true));
    const closedAt = Date.now();
    keeper.destroy();
    await until(() => watch.diedLoudlyMs(1) !== null);
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(LOUD_DEATH_CONFIRM_MS - 5);
    expect(attempts.sort()).toEqual(['127.0.0.1:5001', '127.0.0.1:5001', '127.0.0.1:8001', '127.0.0.1:8001']);
    await until(() => evaluated.length === 1 && nudged);
    expect(evaluated).toEqual(['default/0']);
    // The keeper is heard again: the fact goes.
    const again = await connection();
    watch.keeperRequest(1, again.monitor);
    expect(watch.diedLoudlyMs(1)).toBeNull();
  });

  it.each([
    { what: 'a keeper that lives (its HTTP port accepts) whose Postgres refuses (Postgres restarting in place)', refusing: TARGET.port },
    { what: 'a dead keeper whose Postgres answers (the keeper crashed alone)', refusing: 8001 },
  ])('$what: no loud death, and the watch ends after nodeUnhealthyTimeoutMs', async ({ refusing }) => {
    const { keeper, monitor } = await connection();
    const { watch, attempts } = watchWith((_host, port) => port === refusing);
    watch.keeperRequest(1, monitor);
    keeper.destroy();
    await settle(TARGET.nodeUnhealthyTimeoutMs + 3 * LOUD_DEATH_CONFIRM_MS);
    const made = attempts.length;
    expect(made).toBeGreaterThanOrEqual(2 * Math.floor(TARGET.nodeUnhealthyTimeoutMs / LOUD_DEATH_CONFIRM_MS) - 4);
    await settle(3 * LOUD_DEATH_CONFIRM_MS);
    expect(attempts.length).toBe(made);
    expect(watch.diedLoudlyMs(1)).toBeNull();
  });

  it('the keeper comes back between the two rounds: no loud death', async () => {
    const { keeper, monitor } = await connection();
    const { watch, attempts } = watchWith(() => true);
    watch.keeperRequest(1, monitor);
    keeper.destroy();
    await until(() => attempts.length >= 2);
    const again = await connection();
    watch.keeperRequest(1, again.monitor);
    await settle(3 * LOUD_DEATH_CONFIRM_MS);
    expect(attempts.length).toBe(2);
    expect(watch.diedLoudlyMs(1)).toBeNull();
  });

  it('a connection closed while another of the keeper stays open is no death: nothing is tried', async () => {
    const first = await connection();
    const second = await connection();
    const { watch, attempts } = watchWith(() => true);
    watch.keeperRequest(1, first.monitor);
    watch.keeperRequest(1, second.monitor);
    first.keeper.destroy();
    await settle(3 * LOUD_DEATH_CONFIRM_MS);
    expect(attempts).toEqual([]);
  });

  it('a connection the monitor closes itself (a keep-alive timeout, its shutdown) is no death: nothing is tried', async () => {
    const ended = await connection();
    const destroyed = await connection();
    const { watch, attempts } = watchWith(() => true);
    watch.keeperRequest(1, ended.monitor);
    ended.monitor.end();
    await settle(2 * LOUD_DEATH_CONFIRM_MS);
    watch.keeperRequest(1, destroyed.monitor);
    destroyed.monitor.destroy();
    await settle(3 * LOUD_DEATH_CONFIRM_MS);
    expect(attempts).toEqual([]);
  });

  it('a stopped watch (the monitor stops) and a formation this monitor does not decide for watch nothing', async () => {
    const a = await connection();
    const stopped = watchWith(() => true);
    stopped.watch.keeperRequest(1, a.monitor);
    stopped.watch.stop();
    a.keeper.destroy();
    const b = await connection();
    const follower = watchWith(() => true, { decides: false });
    follower.watch.keeperRequest(1, b.monitor);
    b.keeper.destroy();
    await settle(3 * LOUD_DEATH_CONFIRM_MS);
    expect([stopped.attempts, follower.attempts]).toEqual([[], []]);
    expect(follower.watch.diedLoudlyMs(1)).toBeNull();
  });

  it('a successful probe started after the death clears it; one started before does not', async () => {
    const { keeper, monitor } = await connection();
    const { watch } = watchWith(() => true);
    watch.keeperRequest(1, monitor);
    keeper.destroy();
    await until(() => watch.diedLoudlyMs(1) !== null);
    const at = watch.diedLoudlyMs(1)!;
    watch.probeAnswered(1, at - 1);
    expect(watch.diedLoudlyMs(1)).toBe(at);
    watch.probeAnswered(1, at);
    expect(watch.diedLoudlyMs(1)).toBeNull();
  });

  it('portRefuses: true for a closed port, false for a listening one', async () => {
    const server = createServer((s) => s.destroy());
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    expect(await portRefuses('127.0.0.1', port, 1000)).toBe(false);
    server.close();
    await new Promise((r) => server.once('close', r));
    expect(await portRefuses('127.0.0.1', port, 1000)).toBe(true);
  });
});
