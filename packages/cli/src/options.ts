/**
 * The option builders and argument parsers every `pgha` command shares, so that every command
 * reads the same. Options are declared with `@commander-js/extra-typings`: each action's
 * option object is typed from its declarations, never by hand.
 */
import { InvalidArgumentError, Option, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { DEFAULT_FORMATION, ValidationError, formatDurationMs } from '@pgha/shared/core';
import parseDuration, { type StringValue } from 'ms';
import { parseClientNetworkList } from '@pgha/postgres/client-networks';

/** A commander argument parser for a whole number from `min` to `max`; a usage error otherwise. */
export function intArg(min: number, max: number): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

/**
 * A commander argument parser for a duration with its unit (`2s`, `500ms`, `1.5s`, `1m`,
 * parsed by the `ms` package), in whole ms from `minMs` to `maxMs`; a usage error otherwise,
 * also for a bare number (`2`: seconds or milliseconds?).
 */
export function durationArg(minMs: number, maxMs: number): (value: string) => number {
  return (value: string): number => {
    const text = value.trim();
    if (/^[0-9.]+$/.test(text)) throw new InvalidArgumentError(`give a unit: ${text}s or ${text}ms`);
    const parsed = parseDuration(text as StringValue) as number | undefined;
    if (parsed === undefined || !Number.isFinite(parsed)) throw new InvalidArgumentError(`"${value}" is not a duration: give a number and a unit, e.g. 2s or 500ms`);
    const n = Math.round(parsed);
    if (n < minMs || n > maxMs) throw new InvalidArgumentError(`expected a duration from ${formatDurationMs(minMs)} to ${formatDurationMs(maxMs)}`);
    return n;
  };
}

/**
 * A commander argument parser for client networks: `CIDR[,CIDR…]` (`parseClientNetworkList`;
 * `none` for none), added to those of earlier uses of the same option (`previous`); a usage
 * error naming the bad one otherwise.
 */
export function clientNetworksArg(value: string, previous: string[] | undefined): string[] {
  try {
    return [...new Set([...(previous ?? []), ...parseClientNetworkList(value)])];
  } catch (err) {
    if (err instanceof ValidationError) throw new InvalidArgumentError(`${err.message}: ${err.hint}`);
    throw err;
  }
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

/** The subcommand `name` of `parent`, created when it does not exist yet (`drop` is shared with `drop node`). */
export function subcommand(parent: CommandUnknownOpts, name: string, description: string): CommandUnknownOpts {
  return parent.commands.find((c) => c.name() === name) ?? parent.command(name).description(description);
}
