/**
 * The one place where the CLI turns errors into lines on stderr and an exit code: pgha's own
 * errors ({@link reportError}) and commander's usage errors ({@link configureUsageErrors}).
 */
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import { PghaError } from '@pgha/shared/core';

/** Exit code of a usage error or of any other bad input (`PGHA_ERR_VALIDATION`). */
export const USAGE_EXIT_CODE = 2;

/**
 * Ends a command with `exitCode` and nothing more printed: what the command had to say is on
 * stdout/stderr already (e.g. `pgha keeper status` of a stopped keeper: 3, as `pg_ctl status`).
 */
export class CommandExit extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
    this.name = 'CommandExit';
  }
}

/** Prints `pgha: error: message; hint` and returns the exit code (1; 2 for bad input; a {@link CommandExit}'s own, silently). */
export function reportError(err: unknown): number {
  if (err instanceof CommandExit) return err.exitCode;
  if (err instanceof PghaError) {
    process.stderr.write(`pgha: error: ${err.toUserLine()}\n`);
    return err.code === 'PGHA_ERR_VALIDATION' ? USAGE_EXIT_CODE : 1;
  }
  const e = err as Error;
  process.stderr.write(`pgha: error: ${e?.message ?? String(err)}\n`);
  return 1;
}

/** `cmd`'s full name from the root, e.g. `pgha keeper create`. */
export function commandPath(cmd: CommandUnknownOpts): string {
  const names: string[] = [];
  for (let c: CommandUnknownOpts | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * `cmd`'s usage line: `usage: pgha keeper create <kind> --pgdata <dir> --pg-port <port> --name <name> [options]`
 * (positional arguments, then required options, then `[options]` when it has others); for a
 * command with subcommands, `usage: pgha keeper <create|run> ...`.
 *
 * ### Examples
 * ```ts
 * usageLine(program.commands.find((c) => c.name() === 'up')!) // 'usage: pgha up [options]'
 * ```
 */
export function usageLine(cmd: CommandUnknownOpts): string {
  const path = commandPath(cmd);
  if (cmd.commands.length > 0) return `usage: ${path} <${cmd.commands.map((c) => c.name()).join('|')}> ...`;
  const args = cmd.registeredArguments.map((a) => {
    const name = `${a.name()}${a.variadic ? '...' : ''}`;
    return a.required ? `<${name}>` : `[${name}]`;
  });
  const required = cmd.options.filter((o) => o.mandatory).map((o) => o.flags.replace(/^-\w,\s*/, ''));
  const others = cmd.options.length > required.length ? ['[options]'] : [];
  return ['usage:', path, ...args, ...required, ...others].join(' ');
}

/**
 * Commander's error text (`error: unknown option '--x'\n(Did you mean --y?)\n`) as the message
 * of one `pgha: error:` line: `unknown option '--x' (did you mean --y?)`; `… is invalid. expected …` as `… is invalid: expected …`.
 */
export function commanderMessage(text: string): string {
  return text
    .trim()
    .replace(/^error: /, '')
    .replace(/\n\(Did you mean/g, ' (did you mean')
    .replace(/ is invalid((?: for argument '[^']*')?)\. /, ' is invalid$1: ')
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\.$/, '');
}

/**
 * Makes every command of `program` report a usage error (missing or unknown option, bad
 * value, missing or extra argument, unknown subcommand) as two lines on stderr, `pgha: error:
 * <what was wrong>` then {@link usageLine} of the command that failed, instead of its whole
 * help. Call it once the program is complete; commander then throws a `CommanderError`
 * (`exitOverride`), which `main` turns into exit code {@link USAGE_EXIT_CODE}.
 */
export function configureUsageErrors(program: CommandUnknownOpts): void {
  const walk = (cmd: CommandUnknownOpts): void => {
    cmd.showHelpAfterError(false).configureOutput({
      outputError: (text, write) => write(`pgha: error: ${commanderMessage(text)}\n${usageLine(cmd)}\n`),
    });
    cmd.commands.forEach(walk);
  };
  walk(program);
}
