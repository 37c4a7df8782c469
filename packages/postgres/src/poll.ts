/**
 * Waiting, the one way: {@link delay} to let time pass, {@link pollUntil} and {@link waitFor} to
 * poll a condition with a deadline. Used by the CLI, the benchmark and the tests
 * (`test/helpers/wait-for.ts`). Here and not in `@pgha/shared`, whose code never touches timers.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { PghaError, formatDurationMs } from '@pgha/shared/core';

/**
 * Resolves after `ms`, or at once when `signal` aborts (it never rejects on abort: a caller
 * checks `signal.aborted` after it). Node's `timers/promises` `setTimeout`, without its
 * `AbortError`.
 *
 * ### Examples
 * ```ts
 * await delay(100);
 * await delay(intervalMs, quit.signal); if (quit.signal.aborted) break;
 * ```
 */
export async function delay(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal === undefined) return sleep(ms);
  await sleep(ms, undefined, { signal }).catch((err: unknown) => {
    if (!signal.aborted) throw err;
  });
}

/** How {@link pollUntil} and {@link waitFor} poll. */
export interface PollOptions {
  /** Give up after this long (ms), counted from the call. */
  timeoutMs: number;
  /** Time between the end of one try and the start of the next (ms); default 100. */
  intervalMs?: number;
  /** Stops polling early (as at the deadline) when it aborts. */
  signal?: AbortSignal;
}

/** What a polled function returns: a value once the condition holds, `undefined` or `false` until then. */
export type Poll<T> = () => Promise<T | undefined | false> | T | undefined | false;

/**
 * Calls `fn` until it returns something other than `undefined` or `false`, every `intervalMs`,
 * and returns that; returns undefined when `timeoutMs` runs out (or `signal` aborts) first.
 * `fn` is tried once more after the deadline has passed, so a slow try still counts. A `fn`
 * that throws counts as "not yet" (a server that is still starting refuses connections).
 *
 * @returns the value, or undefined at the deadline; for callers with a message of their own.
 *
 * ### Examples
 * ```ts
 * const stopped = await pollUntil(() => postmasterPid(pgdata) === undefined, { timeoutMs: 30_000, intervalMs: 10 });
 * ```
 */
export async function pollUntil<T>(fn: Poll<T>, options: PollOptions): Promise<T | undefined> {
  return (await poll(fn, options)).value;
}

/**
 * Like {@link pollUntil}, but throws at the deadline, naming `what` it waited for and the last
 * error `fn` threw, if any.
 *
 * @throws PghaError `PGHA_ERR_TIMEOUT`: `timed out after 60 s waiting for <what> (<last error>)`.
 *
 * ### Examples
 * ```ts
 * const url = await waitFor('the monitor to answer', async () => (await fetch(`${url}/health`)).ok && url, { timeoutMs: 60_000 });
 * ```
 */
export async function waitFor<T>(what: string, fn: Poll<T>, options: PollOptions): Promise<T> {
  const r = await poll(fn, options);
  if (r.done) return r.value as T;
  const last = r.lastError === undefined ? '' : ` (${r.lastError instanceof Error ? r.lastError.message : String(r.lastError)})`;
  throw new PghaError('PGHA_ERR_TIMEOUT', `timed out after ${formatDurationMs(options.timeoutMs)} waiting for ${what}${last}`);
}

async function poll<T>(fn: Poll<T>, options: PollOptions): Promise<{ done: boolean; value: T | undefined; lastError: unknown }> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return { done: true, value: v, lastError };
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline || options.signal?.aborted) return { done: false, value: undefined, lastError };
    await delay(options.intervalMs ?? 100, options.signal);
  }
}
