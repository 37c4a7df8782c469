/**
 * Argument parsers for the command lines of the benchmarks and scripts (commander, with
 * `@commander-js/extra-typings` typing their options from the declarations).
 */
import { InvalidArgumentError } from '@commander-js/extra-typings';

/**
 * A commander argument parser for a whole number from `min` to `max`; a usage error otherwise.
 *
 * ### Examples
 * ```ts
 * new Command('bench').option('--runs <n>', 'runs', intArg(1, 1000), 5)
 * ```
 */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `expected a whole number from ${min}` : `expected a whole number from ${min} to ${max}`);
    return n;
  };
}
