/**
 * The Postgres adapter's event stream (`store/postgres/event-repository.ts`) on a real
 * Postgres, in its own terms: rows of concurrent transactions come out in an order where none
 * is passed over (an event id taken before another's but committed after it: held back until
 * then), a cursor resumes after an event id, a commit notifies `pgha_event`; and the monitor's
 * metrics count switchovers and failovers from the events, the same after a restart of the
 * monitor. (What every adapter's stream guarantees: store-contract.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { MonitorMetrics, STREAM_START, type Database, type EventStream, type PostgresStore } from '@pgha/monitor';
import { endAllProcesses } from './helpers/processes.js';
import { parseExposition, valueOf } from './helpers/prometheus.js';
import { startStore, type TestStore } from './helpers/store.js';
import { waitFor } from './helpers/wait-for.js';

let running: TestStore | undefined;
let db: Kysely<Database>;
let store: PostgresStore;
let stream: EventStream;
const clients: pg.Client[] = [];

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ host: running!.conn.host, port: running!.conn.port, user: 'postgres', database: 'postgres' });
  await c.connect();
  clients.push(c);
  return c;
}

/** Inserts one event row on `c` (in whatever transaction it has open) and returns its id. */
async function insertEvent(c: pg.Client, e: { formation?: string; nodeId?: number; name?: string; newGoal?: string; rule?: string; reason: string }): Promise<string> {
  const { rows } = await c.query<{ event_id: string }>(
    `insert into pgha.events (formation_id, group_id, node_id, node_name, reported_state, old_goal_state, new_goal_state, reported_lsn, rule, reason)
     values ($1, 0, $2, $3, 'primary', 'primary', $4, '0/0', $5, $6) returning event_id`,
    [e.formation ?? 'stream', e.nodeId ?? 1, e.name ?? 'a', e.newGoal ?? 'primary', e.rule ?? 'test', e.reason],
  );
  return rows[0]!.event_id;
}

beforeAll(async () => {
  running = await startStore();
  db = running.db;
  store = running.store;
  stream = store.stream;
  await store.migrate();
  await store.formations.create('stream');
  await store.formations.create('metrics');
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  await running?.stop();
  await endAllProcesses();
});

describe('the event stream order', () => {
  it('holds back a committed event while an older transaction with an earlier event id runs, then gives both in order', async () => {
    const [older, newer] = [await client(), await client()];
    await older.query('begin');
    const first = await insertEvent(older, { reason: 'first, committed last' });
    await newer.query('begin');
    const second = await insertEvent(newer, { reason: 'second, committed first' });
    await newer.query('commit');
    expect(BigInt(second)).toBeGreaterThan(BigInt(first));

    // A reader going by event id alone would see the second event now and move past the first.
    const byId = await db.selectFrom('events').select('eventId').where('formationId', '=', 'stream').execute();
    expect(byId.map((r) => r.eventId)).toEqual([second]);
    const held = await stream.readAfter('stream', STREAM_START, 100);
    expect(held.events).toEqual([]);
    expect(held.heldBack).toBe(true);
    expect(held.cursor).toEqual(STREAM_START);

    await older.query('commit');
    const both = await stream.readAfter('stream', held.cursor, 100);
    expect(both.events.map((e) => [e.eventId, e.reason])).toEqual([[first, 'first, committed last'], [second, 'second, committed first']]);
    expect(both.heldBack).toBe(false);
    const after = await stream.readAfter('stream', both.cursor, 100);
    expect(after.events).toEqual([]);

    // Resuming after an event id (Last-Event-ID) gives exactly what came after it.
    const resumed = await stream.readAfter('stream', await stream.cursorAfterEvent(BigInt(first)), 100);
    expect(resumed.events.map((e) => e.eventId)).toEqual([second]);
    const last = await stream.readLast('stream', 1);
    expect(last.events.map((e) => e.eventId)).toEqual([second]);
    expect(last.cursor).toEqual(both.cursor);
    expect((await stream.readLast('stream', 0)).events).toEqual([]);

    // Ids compared as numbers, not text (10 after 9), whatever their length.
    const more: string[] = [];
    for (let i = 0; i < 12; i++) more.push(await insertEvent(newer, { reason: `more ${i}` }));
    const from = more.find((id) => id.length > more[0]!.length) ?? more[10]!;
    const tail = await stream.readAfter('stream', await stream.cursorAfterEvent(BigInt(from)), 100);
    expect(tail.events.map((e) => e.eventId)).toEqual(more.slice(more.indexOf(from) + 1));
  });

  it('notifies pgha_event with the formation at commit, not before', async () => {
    const listener = await client();
    const payloads: string[] = [];
    listener.on('notification', (m) => payloads.push(`${m.channel}:${m.payload}`));
    await listener.query('listen pgha_event');
    const writer = await client();
    await writer.query('begin');
    await insertEvent(writer, { reason: 'notified' });
    await insertEvent(writer, { reason: 'notified too' });
    // Round trip on the listener's connection: a notification sent before commit would have come.
    await listener.query('select 1');
    expect(payloads).toEqual([]);
    await writer.query('commit');
    await waitFor('the notification', () => payloads.length > 0, { timeoutMs: 5000 });
    expect(payloads).toEqual(['pgha_event:stream']);
  });
});

describe('the monitor metrics', () => {
  it('count failovers and switchovers from the events, state gauges and lag from the nodes, again after a restart', async () => {
    const node = { host: '127.0.0.1', candidatePriority: 50, replicationQuorum: true, postgresSsl: true, httpAddress: null };
    const a = await store.nodes.insert('metrics', { ...node, name: 'm1', port: 1 });
    const b = await store.nodes.insert('metrics', { ...node, name: 'm2', port: 2 });
    await db.updateTable('nodes').set({ reportedState: 'primary', goalState: 'primary', reportedLsn: '0/3000060', goalChangedAt: new Date('2030-01-02T03:04:05Z') }).where('nodeId', '=', a.nodeId).execute();
    await db.updateTable('nodes').set({ reportedState: 'catchingup', goalState: 'secondary', reportedLsn: '0/3000000' }).where('nodeId', '=', b.nodeId).execute();
    const c = await client();
    // One switchover (two rows: the primary's and the candidate's) and one failover.
    await insertEvent(c, { formation: 'metrics', nodeId: a.nodeId, name: 'm1', newGoal: 'draining', rule: 'perform-switchover', reason: 'stops' });
    await insertEvent(c, { formation: 'metrics', nodeId: b.nodeId, name: 'm2', newGoal: 'prepare_promotion', rule: 'perform-switchover', reason: 'promotes' });
    await insertEvent(c, { formation: 'metrics', nodeId: b.nodeId, name: 'm2', newGoal: 'demote_timeout', rule: 'failover-start', reason: 'failed' });
    await insertEvent(c, { formation: 'metrics', nodeId: a.nodeId, name: 'm1', newGoal: 'prepare_promotion', rule: 'failover-start', reason: 'promotes' });
    // Maintenance of a standby is no switchover.
    await insertEvent(c, { formation: 'metrics', nodeId: b.nodeId, name: 'm2', newGoal: 'wait_maintenance', rule: 'enable-maintenance', reason: 'maintenance' });

    const metrics = new MonitorMetrics();
    metrics.probeFailed({ formationId: 'metrics', groupId: 0, nodeId: b.nodeId, name: 'm2' });
    metrics.probeFailed({ formationId: 'metrics', groupId: 0, nodeId: b.nodeId, name: 'm2' });
    const text = await metrics.scrape(store);
    const e = parseExposition(text);
    const m2 = { formation: 'metrics', group: '0', node: String(b.nodeId), name: 'm2' };
    const m1 = { formation: 'metrics', group: '0', node: String(a.nodeId), name: 'm1' };
    expect(valueOf(e, 'pgha_switchovers_total', { formation: 'metrics' })).toBe(1);
    expect(valueOf(e, 'pgha_failovers_total', { formation: 'metrics' })).toBe(1);
    expect(valueOf(e, 'pgha_switchovers_total', { formation: 'stream' })).toBe(0);
    expect(valueOf(e, 'pgha_node_goal_state', { ...m1, state: 'primary' })).toBe(1);
    expect(valueOf(e, 'pgha_node_reported_state', { ...m2, state: 'catchingup' })).toBe(1);
    expect(valueOf(e, 'pgha_node_goal_state', { ...m2, state: 'secondary' })).toBe(1);
    expect(valueOf(e, 'pgha_node_replication_lag_bytes', m2)).toBe(0x60);
    expect(valueOf(e, 'pgha_node_replication_lag_bytes', m1)).toBeUndefined();
    expect(valueOf(e, 'pgha_node_last_transition_timestamp_seconds', m1)).toBe(Date.parse('2030-01-02T03:04:05Z') / 1000);
    expect(valueOf(e, 'pgha_health_probe_failures_total', m2)).toBe(2);
    expect(e.types.get('pgha_report_duration_seconds')).toBe('histogram');

    // Nothing new: the counters stay.
    expect(valueOf(parseExposition(await metrics.scrape(store)), 'pgha_switchovers_total', { formation: 'metrics' })).toBe(1);
    await insertEvent(c, { formation: 'metrics', nodeId: b.nodeId, name: 'm2', newGoal: 'draining', rule: 'perform-promotion', reason: 'stops' });
    expect(valueOf(parseExposition(await metrics.scrape(store)), 'pgha_switchovers_total', { formation: 'metrics' })).toBe(2);

    // A restarted monitor counts the events again: the same totals; its own probe count starts at 0.
    const restarted = parseExposition(await new MonitorMetrics().scrape(store));
    expect(valueOf(restarted, 'pgha_switchovers_total', { formation: 'metrics' })).toBe(2);
    expect(valueOf(restarted, 'pgha_failovers_total', { formation: 'metrics' })).toBe(1);
    expect(valueOf(restarted, 'pgha_health_probe_failures_total', m2)).toBeUndefined();
  });
});
