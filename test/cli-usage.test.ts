/**
 * Usage errors of every `pgha` command: given a missing or unknown option, a bad value, a
 * missing or extra argument or an unknown subcommand, each prints one `pgha: error:` line
 * naming the problem, then the usage line of that very command, and exits 2 without acting.
 * The commands are walked from `buildProgram()`, so a new command is covered without editing
 * this file; the walk runs in-process (with every action replaced by one that fails the test),
 * and a few cases run the built `pgha` for real.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Argument, CommandUnknownOpts as Command, Option } from '@commander-js/extra-typings';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildProgram, run } from '../packages/cli/src/main.js';
import { expectUsageError } from './helpers/cli.js';
import { endAllProcesses, makeTestDir, runPgha } from './helpers/processes.js';

/** Every command below `cmd`, depth first, with its path (`keeper create`). */
function commandsOf(cmd: Command, path: string[] = []): { path: string[]; cmd: Command }[] {
  return cmd.commands.flatMap((c) => [{ path: [...path, c.name()], cmd: c }, ...commandsOf(c, [...path, c.name()])]);
}

const all = commandsOf(buildProgram());
const leaves = all.filter((c) => c.cmd.commands.length === 0);
const groups = [{ path: [] as string[], cmd: buildProgram() }, ...all.filter((c) => c.cmd.commands.length > 0)];

/** A value that `o` (an option or argument) accepts: its first choice, or the first candidate its parser takes. */
function validValue(o: Option | Argument): string {
  if (o.argChoices) return o.argChoices[0]!;
  return ['1', 'true', 'x', '1s', '10.0.0.0/8'].find((v) => {
    try {
      o.parseArg?.(v, undefined);
      return true;
    } catch {
      return false;
    }
  })!;
}

/** True when `o` refuses `value` (a parser that throws, or choices without it). */
function refuses(o: Option | Argument, value: string): boolean {
  if (o.argChoices) return !o.argChoices.includes(value);
  try {
    o.parseArg?.(value, undefined);
    return false;
  } catch {
    return true;
  }
}

const requiredOptions = (cmd: Command): string[] => cmd.options.filter((o) => o.mandatory).flatMap((o) => [o.long!, validValue(o)]);
const requiredArgs = (cmd: Command): string[] => cmd.registeredArguments.filter((a) => a.required).map(validValue);

/** A value that no parser and no list of choices of pgha accepts. */
const BAD = 'Nonsense!';

let stderr: string;
let stdout: string;
beforeEach(() => {
  stderr = '';
  stdout = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
});
afterEach(() => {
  vi.restoreAllMocks();
});
afterAll(async () => {
  await endAllProcesses();
});

/** Runs `pgha ARGS` in-process on a fresh program whose actions all fail the test if reached. */
async function runInProcess(args: string[]): Promise<{ exitCode: number; stderr: string }> {
  const program = buildProgram();
  for (const { path, cmd } of commandsOf(program)) {
    if (cmd.commands.length === 0) cmd.action(() => { throw new Error(`the action of pgha ${path.join(' ')} ran`); });
  }
  stderr = '';
  const exitCode = await run(['node', 'pgha', ...args], program);
  expect(stdout).toBe('');
  return { exitCode, stderr };
}

describe('every command answers a usage error with one line and its usage line', () => {
  it('walks a sensible program', () => {
    expect(leaves.map((l) => l.path.join(' '))).toEqual(expect.arrayContaining(['keeper create', 'keeper run', 'monitor run', 'drop formation', 'drop node', 'up']));
  });

  describe.each(leaves.map((l) => [l.path.join(' '), l] as const))('pgha %s', (name, { path, cmd }) => {
    it('refuses an unknown option', async () => {
      const r = await runInProcess([...path, ...requiredOptions(cmd), '--no-such-flag']);
      expectUsageError(r, name, /^pgha: error: unknown option '--no-such-flag'$/);
    });

    it('refuses a missing required option, naming it', async () => {
      const first = cmd.options.find((o) => o.mandatory);
      if (!first) return expect(requiredOptions(cmd)).toEqual([]);
      const r = await runInProcess([...path, ...requiredArgs(cmd)]);
      expectUsageError(r, name, new RegExp(`^pgha: error: required option '${first.flags}' not specified$`));
    });

    it('refuses a missing argument, naming it, and an extra one', async () => {
      const first = cmd.registeredArguments.find((a) => a.required);
      if (first) {
        const missing = await runInProcess([...path, ...requiredOptions(cmd)]);
        expectUsageError(missing, name, new RegExp(`^pgha: error: missing required argument '${first.name()}'$`));
      }
      const extra = await runInProcess([...path, ...requiredOptions(cmd), ...cmd.registeredArguments.map(validValue), 'extra-argument']);
      expectUsageError(extra, name, /^pgha: error: too many arguments for '[\w-]+'\. Expected \d+ arguments? but got \d+$/);
    });

    it('refuses a bad value of every option and argument that checks its value, naming it', async () => {
      for (const o of cmd.options.filter((opt) => opt.required && refuses(opt, BAD))) {
        const r = await runInProcess([...path, ...requiredOptions(cmd), o.long!, BAD]);
        expectUsageError(r, name, new RegExp(`^pgha: error: option '${o.flags}' argument '${BAD}' is invalid: `));
      }
      for (const a of cmd.registeredArguments.filter((arg) => refuses(arg, BAD))) {
        const args = cmd.registeredArguments.map((b) => (b === a ? BAD : validValue(b)));
        const r = await runInProcess([...path, ...requiredOptions(cmd), ...args]);
        expectUsageError(r, name, new RegExp(`^pgha: error: .*'${BAD}' is invalid for argument '${a.name()}': `));
      }
    });
  });

  it.each(groups.map((g) => [g.path.join(' ') || '(the program)', g] as const))('pgha %s refuses an unknown subcommand and lists its subcommands', async (_name, { path, cmd }) => {
    const r = await runInProcess([...path, 'no-such-command']);
    expectUsageError(r, path.join(' '), /^pgha: error: unknown command 'no-such-command'$/);
    expect(r.stderr).toContain(`<${cmd.commands.map((c) => c.name()).join('|')}>`);
  });
});

describe('the built pgha', () => {
  it('exits 2 with the error and the usage line, creating nothing', async () => {
    const pgdata = join(makeTestDir(), 'pgdata');
    expectUsageError(await runPgha(['keeper', 'create', 'postgres', '--pgdata', pgdata, '--name', 'n1']), 'keeper create',
      /^pgha: error: required option '--pg-port <port>' not specified$/);
    expectUsageError(await runPgha(['keeper', 'create', 'mysql', '--pgdata', pgdata, '--pg-port', '5432', '--name', 'n1']), 'keeper create',
      /^pgha: error: command-argument value 'mysql' is invalid for argument 'kind': Allowed choices are postgres$/);
    expect(existsSync(pgdata)).toBe(false);
    expect(existsSync(`${pgdata}.pgha`)).toBe(false);
  });

  it('folds a suggestion into the error line', async () => {
    expectUsageError(await runPgha(['keeper', 'crate']), 'keeper', /^pgha: error: unknown command 'crate' \(did you mean create\?\)$/);
    expectUsageError(await runPgha(['show', 'state', '--jsno']), 'show state', /^pgha: error: unknown option '--jsno' \(did you mean --json\?\)$/);
  });

  it('names a bad number and a bad choice', async () => {
    expectUsageError(await runPgha(['up', '--nodes', 'ten']), 'up', /^pgha: error: option '--nodes <n>' argument 'ten' is invalid: expected a whole number from 1 to 9$/);
    expectUsageError(await runPgha(['set', 'node', 'replication-quorum', 'maybe', '--name', 'n1']), 'set node replication-quorum', /'maybe' is invalid.*expected true or false/);
  });
});
