/**
 * Waiting in tests: the product's `waitFor` and `delay` (`@pgha/postgres`'s `poll.ts`), with the
 * tests' defaults. A test polls a condition with a deadline; `delay` is only for a window in
 * which something must NOT happen (there is no condition to poll).
 */
import { waitFor as productWaitFor, type Poll, type PollOptions } from '@pgha/postgres';

export { delay, pollUntil } from '@pgha/postgres';

/**
 * Polls `fn` until it returns a value other than undefined/false, every `intervalMs` (default
 * 100 ms), or throws after `timeoutMs` (default 60 s) naming `what` and `fn`'s last error.
 */
export function waitFor<T>(what: string, fn: Poll<T>, options: Partial<PollOptions> = {}): Promise<T> {
  return productWaitFor(what, fn, { ...options, timeoutMs: options.timeoutMs ?? 60_000, intervalMs: options.intervalMs ?? 100 });
}
