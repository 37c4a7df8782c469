/**
 * Wakes long-polling keepers when their goal changes. Goal writes end with
 * `pg_notify('pgha_goal', '<node ids>')` in the same transaction, so the notification is
 * delivered on commit to every monitor LISTENing on the store: no in-memory state that a
 * second monitor would miss.
 */
import pg from 'pg';
import type { StoreConnection } from '../store/db.js';

/** One LISTEN connection and the keepers waiting on it. */
export class GoalNotifier {
  private client: pg.Client | undefined;
  private readonly waiters = new Map<number, Set<() => void>>();
  private closed = false;

  constructor(private readonly conn: StoreConnection) {}

  /** Connects and LISTENs; reconnects by itself if the connection drops. */
  async start(): Promise<void> {
    const client = new pg.Client({ host: this.conn.host, port: this.conn.port, user: this.conn.user ?? 'postgres', database: this.conn.database ?? 'postgres', application_name: 'pgha_monitor_listen' });
    client.on('notification', (msg) => {
      for (const id of (msg.payload ?? '').split(',')) this.wake(Number(id));
    });
    client.on('error', () => this.reconnectLater());
    client.on('end', () => this.reconnectLater());
    await client.connect();
    await client.query('listen pgha_goal');
    this.client = client;
  }

  private reconnectLater(): void {
    if (this.closed) return;
    this.client = undefined;
    // Wake everyone: they re-read their goal from the store.
    for (const id of [...this.waiters.keys()]) this.wake(id);
    setTimeout(() => {
      if (!this.closed && !this.client) this.start().catch(() => this.reconnectLater());
    }, 500);
  }

  private wake(nodeId: number): void {
    const set = this.waiters.get(nodeId);
    if (!set) return;
    this.waiters.delete(nodeId);
    for (const fn of set) fn();
  }

  /**
   * A promise that resolves when node `nodeId`'s goal changes or after `timeoutMs`.
   * Register before reading the goal, so that no change falls in between.
   */
  waiter(nodeId: number, timeoutMs: number): { promise: Promise<void>; cancel: () => void } {
    let done!: () => void;
    const promise = new Promise<void>((resolve) => {
      const timer = setTimeout(finish, timeoutMs);
      function finish(): void {
        clearTimeout(timer);
        resolve();
      }
      done = finish;
    });
    const set = this.waiters.get(nodeId) ?? new Set();
    set.add(done);
    this.waiters.set(nodeId, set);
    return {
      promise,
      cancel: () => {
        set.delete(done);
        done();
      },
    };
  }

  /** Wakes every waiter and closes the connection. */
  async stop(): Promise<void> {
    this.closed = true;
    for (const id of [...this.waiters.keys()]) this.wake(id);
    await this.client?.end().catch(() => undefined);
  }
}
