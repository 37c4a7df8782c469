/**
 * The option builders and argument parsers every `pgha` command shares, so that every command
 * reads the same. Options are declared with `@commander-js/extra-typings`: each action's
 * option object is typed from its declarations, never by hand.
 */
import { InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { DEFAULT_FORMATION, ValidationError } from '@pgha/shared';

/** A commander argument parser for a whole number from `min` to `max`; a usage error otherwise. */
export function intArg(min: number, max: number): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

/** A commander argument parser for `true` or `false`; a usage error otherwise. */
export function boolArg(value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new InvalidArgumentError('expected true or false');
}

/**
 * The monitor URL of a client command: `--monitor`, else `$PGHA_MONITOR`.
 *
 * @throws ValidationError when neither is given, or the URL does not parse.
 */
export function monitorUrl(opt: string | undefined): string {
  const url = opt ?? process.env.PGHA_MONITOR;
  if (!url) throw new ValidationError('no monitor given', { hint: 'pass --monitor URL or set PGHA_MONITOR (pgha up prints it)' });
  try {
    new URL(url);
  } catch {
    throw new ValidationError(`invalid monitor URL "${url}"`, { hint: 'expected e.g. http://127.0.0.1:8432' });
  }
  return url;
}

/** `--monitor <url>` (default: `$PGHA_MONITOR`, read by {@link monitorUrl}). */
export const monitorOption = () => new Option('--monitor <url>', 'monitor URL (default: $PGHA_MONITOR)');

/** `--formation <name>`, default `default`. */
export const formationOption = () => new Option('--formation <name>', 'formation').default(DEFAULT_FORMATION);
