/**
 * The Postgres store's LISTEN connection (`store/postgres/goal-notifier.ts`) while the monitor's
 * Postgres restarts: one reconnection attempt at a time, never a storm of them. A loopback
 * server speaks as much of the Postgres protocol as the notifier needs (trust authentication,
 * `LISTEN`), or refuses every session as a Postgres that is starting up does.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { GoalNotifier, RECONNECT_PAUSE_MS } from '../src/store/postgres/goal-notifier.js';

/** A Postgres backend message: its type byte, its length, its body. */
function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const AUTH_OK = message('R', Buffer.from([0, 0, 0, 0]));
const READY = message('Z', Buffer.from('I'));
const LISTEN_DONE = message('C', Buffer.from('LISTEN\0'));
const STARTING_UP = message('E', Buffer.from('SFATAL\0C57P03\0Mthe database system is starting up\0\0'));

/** The fake server: `up` answers sessions, otherwise it refuses them; counts the sessions opened. */
function fakePostgres(): { server: Server; port: () => number; sessions: Socket[]; state: { up: boolean; opened: number } } {
  const state = { up: true, opened: 0 };
  const sessions: Socket[] = [];
  const server = createServer((socket) => {
    state.opened++;
    sessions.push(socket);
    socket.on('error', () => undefined);
    let startup = true;
    socket.on('data', (data) => {
      if (startup) {
        startup = false;
        if (!state.up) {
          socket.end(STARTING_UP);
          return;
        }
        socket.write(Buffer.concat([AUTH_OK, READY]));
        return;
      }
      // A simple query (the LISTEN): one command complete per statement, then ready.
      if (data[0] === 'Q'.charCodeAt(0)) socket.write(Buffer.concat([LISTEN_DONE, LISTEN_DONE, READY]));
    });
  });
  return { server, port: () => (server.address() as { port: number }).port, sessions, state };
}

let stopAll: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stopAll?.();
  stopAll = undefined;
});

describe('GoalNotifier: the LISTEN connection while the store restarts', () => {
  it('tries again once per pause while Postgres is starting up, then listens on one connection', async () => {
    const pg = fakePostgres();
    await new Promise<void>((resolve) => pg.server.listen(0, '127.0.0.1', resolve));
    const notifier = new GoalNotifier({ host: '127.0.0.1', port: pg.port() });
    stopAll = async () => {
      await notifier.stop();
      for (const s of pg.sessions) s.destroy();
      await new Promise<void>((resolve) => pg.server.close(() => resolve()));
    };
    await notifier.start();
    expect(pg.state.opened).toBe(1);

    // Postgres restarts: the session drops, and for a while every new one is refused.
    pg.state.up = false;
    const before = pg.state.opened;
    pg.sessions[0]!.destroy();
    const windowMs = 6 * RECONNECT_PAUSE_MS;
    await new Promise((r) => setTimeout(r, windowMs));
    const attempts = pg.state.opened - before;
    // One attempt per pause at most (6 here); a storm multiplied them every pause.
    expect(attempts).toBeGreaterThanOrEqual(3);
    expect(attempts).toBeLessThanOrEqual(windowMs / RECONNECT_PAUSE_MS);

    // Back up: one new session listens, and no other attempt follows.
    pg.state.up = true;
    const deadline = Date.now() + 5_000;
    while (pg.sessions.filter((s) => !s.destroyed && !s.readableEnded).length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 3 * RECONNECT_PAUSE_MS));
    expect(pg.sessions.filter((s) => !s.destroyed && !s.readableEnded)).toHaveLength(1);
  });
});
