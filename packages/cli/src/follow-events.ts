/**
 * `pgha show events --follow`: the formation's last N events, then each new one as the monitor
 * writes it, one line each (time, node, reported → goal state, reason), until Ctrl-C. Reads the
 * monitor's event stream (`GET /v1/formations/:formation/events/stream`, server-sent events);
 * when the stream ends or the monitor cannot be reached (it restarted), it connects again every
 * second with `Last-Event-ID`, so no event is missed or printed twice.
 *
 * Source: `pg_autoctl show events --watch`, which takes over the terminal and redraws the last
 * events every 500 ms; this prints each event once and leaves the terminal as it is.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { MonitorClient } from '@pgha/client';
import { delay } from '@pgha/postgres/base';
import { MonitorUnavailableError, formatDurationMs, type EventRow } from '@pgha/shared/base';
import { cliCredentials } from './credentials.js';

/** How long to wait before connecting again after the stream ended or failed, in ms. */
const RECONNECT_MS = 1000;

/** One event as a line: time, group/node and name, reported → goal state, reason. */
export function eventLine(e: EventRow): string {
  return [e.event_time.padEnd(24), `${e.group_id}/${e.node_id} ${e.node_name}`.padEnd(16), `${e.reported_state} → ${e.new_goal_state}`.padEnd(34), e.reason].join('  ');
}

/**
 * Follows the events of `formation` until `signal` aborts (then resolves).
 *
 * @param json - print each event as one line of JSON (an `EventRow`).
 * @throws AuthError, NotFoundError, ValidationError as the monitor answers them (an unknown
 *   formation, a refused token): those do not get better by connecting again.
 */
export async function followEvents(monitors: readonly string[], formation: string, count: number, json: boolean, signal: AbortSignal): Promise<void> {
  const client = new MonitorClient(monitors, cliCredentials());
  let lastEventId: string | undefined;
  let outage = false;
  try {
    while (!signal.aborted) {
      try {
        const path = `/v1/formations/${encodeURIComponent(formation)}/events/stream${lastEventId === undefined ? `?count=${count}` : ''}`;
        const body = await client.openStream(path, { signal, ...(lastEventId === undefined ? {} : { headers: { 'last-event-id': lastEventId } }) });
        if (outage) process.stderr.write(`pgha: connected to the monitor again, following events after ${lastEventId ?? 'the start'}\n`);
        outage = false;
        const parser = createParser({
          onEvent(message: EventSourceMessage) {
            if (message.id !== undefined) lastEventId = message.id;
            const e = JSON.parse(message.data) as EventRow;
            process.stdout.write(`${json ? JSON.stringify(e) : eventLine(e)}\n`);
          },
        });
        for await (const chunk of body) parser.feed(chunk as string);
        if (signal.aborted) return;
        if (!outage) process.stderr.write('pgha: the monitor ended the event stream; connecting again\n');
      } catch (err) {
        if (signal.aborted) return;
        if (!(err instanceof MonitorUnavailableError) && !isConnectionError(err)) throw err;
        if (!outage) process.stderr.write(`pgha: ${(err as Error).message}; connecting again every ${formatDurationMs(RECONNECT_MS)}\n`);
      }
      outage = true;
      await delay(RECONNECT_MS, signal);
    }
  } finally {
    await client.close();
  }
}

/** A stream that broke while being read (reset, timed out): connect again. */
function isConnectionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  return ['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ERR_STREAM_PREMATURE_CLOSE'].includes(code) || /aborted|no data within|socket hang up/i.test((err as Error).message);
}
