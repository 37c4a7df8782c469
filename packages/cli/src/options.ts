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
 * The monitors of a client command: `--monitor`, else `$PGHA_MONITOR`; one URL or several
 * separated by commas (`https://h1:8432,https://h2:8432`), in the order to try them, each once.
 *
 * @throws ValidationError when neither is given, or a URL does not parse as `http(s)://…`.
 */
export function monitorUrls(opt: string | undefined): string[] {
  const given = opt ?? process.env.PGHA_MONITOR;
  if (!given) throw new ValidationError('no monitor given', { hint: 'pass --monitor URL[,URL…] or set PGHA_MONITOR (pgha up prints it)' });
  const urls = given.split(',').map((u) => u.trim());
  for (const url of urls) {
    let protocol: string | undefined;
    try {
      protocol = new URL(url).protocol;
    } catch {
      protocol = undefined;
    }
    if (protocol !== 'https:' && protocol !== 'http:') {
      throw new ValidationError(`invalid monitor URL "${url}"${urls.length > 1 ? ` in "${given}"` : ''}`, { hint: 'expected e.g. https://127.0.0.1:8432, or several separated by commas' });
    }
  }
  return [...new Set(urls)];
}

/** `--monitor <url[,url…]>` (default: `$PGHA_MONITOR`, read by {@link monitorUrls}). */
export const monitorOption = () => new Option('--monitor <url[,url...]>', 'monitor URL, or several separated by commas, tried in order (default: $PGHA_MONITOR)');

/** `--formation <name>`, default `default`. */
export const formationOption = () => new Option('--formation <name>', 'formation').default(DEFAULT_FORMATION);
