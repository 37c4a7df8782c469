/**
 * `GET /v1/formations/:formation/events/stream`: the formation's events as server-sent events,
 * each as soon as it is committed, read from the store's event stream (`EventStream`) so
 * that a client that reconnects with `Last-Event-ID` misses none and gets none twice.
 *
 * - Query `count` (0..1000, default 0): start with the formation's last `count` events, then
 *   the new ones. Ignored with `Last-Event-ID`.
 * - Header `Last-Event-ID: N` (an `id` this stream sent): continue after event N.
 * - 200 `text/event-stream`: one message per event, `id: <event_id>` and `data: <EventRow JSON>`
 *   (the shape of `GET /v1/formations/:formation/events`); a `: keep-alive` comment every
 *   {@link STREAM_KEEPALIVE_MS} while nothing happens; `retry: 1000` at the start. The stream
 *   ends when the monitor stops (or its store fails): reconnect with `Last-Event-ID`.
 * - 400 a bad `count` or `Last-Event-ID`; 404 unknown formation; 401/403 as every route.
 *
 * A stream wakes when its formation's new events are committed (`StoreNotifier.eventWaiter`;
 * the `pgha_event` notification on Postgres), and reads only then, or every
 * {@link STREAM_KEEPALIVE_MS}: an idle stream costs one read per keep-alive.
 *
 * Source: `pg_autoctl show events --watch`, which re-reads the last events every 500 ms instead;
 * Patroni keeps no event history.
 */
import { once } from 'node:events';
import { delay } from '@pgha/postgres';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { FormationName, ValidationError } from '@pgha/shared';
import type { AppDeps } from '../app-deps.js';
import type { EventBatch, EventRecord } from '../store/records.js';
import type { Waiter } from '../store/store-port.js';
import { eventRow } from './views.js';
import { validate } from './validate.js';

/** How often an idle stream sends a comment (and reads the table once), in ms. */
export const STREAM_KEEPALIVE_MS = 15_000;
/** How soon a stream reads again when a row waits on an older transaction, in ms. */
const HELD_BACK_RETRY_MS = 50;
/** Events read and sent at once. */
const STREAM_BATCH = 500;

const FormationParams = z.object({ formation: FormationName });
const StreamQuery = z.object({ count: z.coerce.number().int().min(0).max(1000).default(0) }).strict();

/** The `Last-Event-ID` header as an event id; undefined without one. @throws ValidationError. */
function lastEventId(header: string | string[] | undefined): bigint | undefined {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header[header.length - 1]! : header;
  if (!/^[0-9]{1,18}$/.test(value.trim())) {
    throw new ValidationError(`Last-Event-ID "${value.slice(0, 40)}" is not an event id`, { field: 'Last-Event-ID', hint: 'send back the id of the last event this stream sent, or no Last-Event-ID' });
  }
  return BigInt(value.trim());
}

/** One SSE message per event. */
function messages(events: readonly EventRecord[]): string {
  return events.map((e) => `id: ${e.eventId}\ndata: ${JSON.stringify(eventRow(e))}\n\n`).join('');
}

/** Writes `text`, waiting while the client's buffer is full; false once the client is gone. */
async function send(res: ServerResponse, text: string, closed: () => boolean): Promise<boolean> {
  if (closed()) return false;
  if (!res.write(text)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
  return !closed();
}

/** Registers the event stream route. */
export async function eventStreamRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  // Streams never end by themselves: end them when the monitor stops, so it can close.
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of open) end();
  });

  app.get('/v1/formations/:formation/events/stream', async (req, reply) => {
    const { formation } = validate(FormationParams, req.params, 'params');
    const { count } = validate(StreamQuery, req.query, 'query');
    const after = lastEventId(req.headers['last-event-id']);
    await deps.store.formations.get(formation);
    const first: EventBatch = after === undefined ? await deps.store.stream.readLast(formation, count) : { events: [], cursor: await deps.store.stream.cursorAfterEvent(after), heldBack: false };

    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', 'x-content-type-options': 'nosniff' });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    let closed = false;
    let waiting: Waiter | undefined;
    const end = (): void => {
      closed = true;
      waiting?.cancel();
    };
    const isClosed = (): boolean => closed;
    open.add(end);
    res.on('close', end);
    res.on('error', end);
    const log = req.log.child({ component: 'events-stream', formation });
    try {
      if (!(await send(res, `retry: 1000\n\n${messages(first.events)}`, isClosed))) return;
      let cursor = first.cursor;
      let lastWriteMs = Date.now();
      while (!closed) {
        // Registered before the read: a commit between the two still wakes the wait.
        const waiter = deps.notifier.eventWaiter(formation, STREAM_KEEPALIVE_MS);
        waiting = waiter;
        const batch = await deps.store.stream.readAfter(formation, cursor, STREAM_BATCH);
        cursor = batch.cursor;
        if (batch.events.length > 0) {
          if (!(await send(res, messages(batch.events), isClosed))) break;
          lastWriteMs = Date.now();
        }
        if (batch.events.length < STREAM_BATCH) {
          await (batch.heldBack ? Promise.race([waiter.promise, delay(HELD_BACK_RETRY_MS)]) : waiter.promise);
        }
        waiter.cancel();
        if (!closed && Date.now() - lastWriteMs >= STREAM_KEEPALIVE_MS) {
          if (!(await send(res, ': keep-alive\n\n', isClosed))) break;
          lastWriteMs = Date.now();
        }
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'event stream ended by an error: the client reconnects with Last-Event-ID');
    } finally {
      open.delete(end);
      res.end();
    }
  });
}
