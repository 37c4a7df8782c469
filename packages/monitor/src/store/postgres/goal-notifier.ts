/**
 * The Postgres adapter's {@link StoreNotifier}: wakes long-polling keepers when their goal
 * changes, and event streams when their formation has new events. Goal writes end with
 * `pg_notify('pgha_goal', '<node ids>')` in the same transaction (`goal-repository.ts`), and a
 * trigger on `pgha.events` sends `pg_notify('pgha_event', '<formation>')` (migration 0008), so
 * each notification is delivered on commit to every monitor LISTENing on the store: no
 * in-memory state that a second monitor would miss.
 */
import type pg from 'pg';
import { newPgClient } from '@pgha/postgres';
import type { StoreNotifier, Waiter } from '../store-port.js';
import { addWaiter, wake } from '../waiters.js';
import { storeConnectionParams, type StoreConnection } from './db.js';

/** Pause between two attempts to reconnect the LISTEN connection (ms). */
export const RECONNECT_PAUSE_MS = 500;

/** One LISTEN connection and the keepers and streams waiting on it. */
export class GoalNotifier implements StoreNotifier {
  /** The LISTEN connection once it listens; undefined between a loss and the next attempt's success. */
  private client: pg.Client | undefined;
  /** The planned reconnection, while one is planned. */
  private reconnecting: NodeJS.Timeout | undefined;
  private readonly waiters = new Map<number, Set<() => void>>();
  private readonly eventWaiters = new Map<string, Set<() => void>>();
  private closed = false;

  constructor(private readonly conn: StoreConnection) {}

  /**
   * Connects and LISTENs; reconnects by itself if the connection drops, one attempt at a time
   * every {@link RECONNECT_PAUSE_MS}.
   *
   * A failed attempt used to call for a reconnection up to three times (its `error` and `end`
   * events and its rejected connect), each of which started an attempt of its own: while the
   * monitor's Postgres restarted ("the database system is starting up") the attempts multiplied
   * every half second until Postgres refused every client ("too many clients already", the
   * monitor's own pool included) and its socket's backlog overflowed, and the monitor stopped
   * answering (a CI run of `test/faults-crash.test.ts`, fault 6c). Now only the current client's
   * events count once it listens, a failed client is ended, and a reconnection already planned
   * is not planned again.
   *
   * @throws what the first connect or LISTEN throws (the monitor's start fails).
   */
  async start(): Promise<void> {
    const client = newPgClient(storeConnectionParams(this.conn, 'pgha_monitor_listen'));
    client.on('notification', (msg) => {
      if (msg.channel === 'pgha_event') {
        wake(this.eventWaiters, msg.payload ?? '');
        return;
      }
      for (const id of (msg.payload ?? '').split(',')) wake(this.waiters, Number(id));
    });
    // A client lost once it was listening (it is then the notifier's client): reconnect. One
    // that fails before is its caller's to handle (the reconnection's retry, or the monitor's start).
    const lost = (): void => {
      if (this.client === client) this.reconnectLater();
    };
    client.on('error', lost);
    client.on('end', lost);
    try {
      await client.connect();
      await client.query('listen pgha_goal; listen pgha_event');
    } catch (err) {
      void client.end().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      void client.end().catch(() => undefined);
      return;
    }
    this.client = client;
  }

  private reconnectLater(): void {
    if (this.closed || this.reconnecting) return;
    const lostClient = this.client;
    this.client = undefined;
    void lostClient?.end().catch(() => undefined);
    // Wake everyone: they re-read from the store.
    this.wakeAll();
    this.reconnecting = setTimeout(() => {
      this.reconnecting = undefined;
      if (this.closed || this.client) return;
      this.start().catch(() => this.reconnectLater());
    }, RECONNECT_PAUSE_MS);
  }

  private wakeAll(): void {
    for (const id of [...this.waiters.keys()]) wake(this.waiters, id);
    for (const f of [...this.eventWaiters.keys()]) wake(this.eventWaiters, f);
  }

  /**
   * A promise that resolves when node `nodeId`'s goal changes or after `timeoutMs`.
   * Register before reading the goal, so that no change falls in between.
   */
  waiter(nodeId: number, timeoutMs: number): Waiter {
    return addWaiter(this.waiters, nodeId, timeoutMs);
  }

  /**
   * A promise that resolves when formation `formation` has new events (committed) or after
   * `timeoutMs`. Register before reading the events, so that none falls in between.
   */
  eventWaiter(formation: string, timeoutMs: number): Waiter {
    return addWaiter(this.eventWaiters, formation, timeoutMs);
  }

  /** Wakes every waiter and closes the connection. */
  async stop(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnecting);
    this.wakeAll();
    await this.client?.end().catch(() => undefined);
  }
}
