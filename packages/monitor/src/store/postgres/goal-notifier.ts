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

/** One LISTEN connection and the keepers and streams waiting on it. */
export class GoalNotifier implements StoreNotifier {
  private client: pg.Client | undefined;
  private readonly waiters = new Map<number, Set<() => void>>();
  private readonly eventWaiters = new Map<string, Set<() => void>>();
  private closed = false;

  constructor(private readonly conn: StoreConnection) {}

  /** Connects and LISTENs; reconnects by itself if the connection drops. */
  async start(): Promise<void> {
    const client = newPgClient(storeConnectionParams(this.conn, 'pgha_monitor_listen'));
    client.on('notification', (msg) => {
      if (msg.channel === 'pgha_event') {
        wake(this.eventWaiters, msg.payload ?? '');
        return;
      }
      for (const id of (msg.payload ?? '').split(',')) wake(this.waiters, Number(id));
    });
    client.on('error', () => this.reconnectLater());
    client.on('end', () => this.reconnectLater());
    await client.connect();
    await client.query('listen pgha_goal; listen pgha_event');
    this.client = client;
  }

  private reconnectLater(): void {
    if (this.closed) return;
    this.client = undefined;
    // Wake everyone: they re-read from the store.
    this.wakeAll();
    setTimeout(() => {
      if (!this.closed && !this.client) this.start().catch(() => this.reconnectLater());
    }, 500);
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
    this.wakeAll();
    await this.client?.end().catch(() => undefined);
  }
}
