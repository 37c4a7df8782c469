import { waitFor as poll } from '../../bench/lib/proc.js';

/**
 * Polls `fn` until it returns a value other than undefined/false, or throws after `timeoutMs`
 * (default 60 s), every `intervalMs` (default 100 ms): the benchmark's `waitFor` with the
 * tests' defaults.
 */
export function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<T> {
  return poll(what, fn, options.timeoutMs ?? 60_000, options.intervalMs ?? 100);
}
