import { expect } from 'vitest';
import { execa } from 'execa';
import { withMonitorCredentials } from './monitor-access.js';
import { PGHA_BIN, runPgha } from './processes.js';

/** A failed pgha command printed exactly one `pgha: error:` line matching `pattern`, and no stack trace. */
export function expectOneLineError(r: { exitCode: number; stderr: string }, pattern: RegExp): void {
  expect(r.exitCode).not.toBe(0);
  const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('pgha: error:'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

/** Runs `pgha ARGS` with `env` and expects exit 0 (the failure shows the command and its stderr); returns stdout. */
export async function runPghaOk(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await runPgha(args, env);
  expect(r.exitCode, `pgha ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/**
 * A usage error of `pgha <path>`: exit code 2, exactly one `pgha: error:` line matching
 * `pattern`, right after it the usage line of that command (`usage: pgha <path> …`), and no
 * stack trace.
 */
export function expectUsageError(r: { exitCode: number; stderr: string }, path: string, pattern: RegExp): void {
  expectOneLineError(r, pattern);
  expect(r.exitCode, r.stderr).toBe(2);
  const lines = r.stderr.trim().split('\n');
  const at = lines.findIndex((l) => l.startsWith('pgha: error:'));
  const usage = `usage: ${['pgha', path].filter(Boolean).join(' ')}`;
  expect(lines[at + 1] === usage || lines[at + 1]?.startsWith(`${usage} `), r.stderr).toBe(true);
  expect(lines, r.stderr).toHaveLength(at + 2);
}

/**
 * Runs `pgha ARGS` on a terminal (a pseudo-terminal from util-linux `script`), typing `input`
 * into it; returns the exit code and everything the terminal showed (stdout and stderr both).
 */
export async function runPghaOnTerminal(args: string[], input: string, env: Record<string, string> = {}): Promise<{ exitCode: number; output: string }> {
  const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, PGHA_BIN, ...args].map(quote).join(' ');
  const r = await execa('script', ['-qec', command, '/dev/null'], { input, env: withMonitorCredentials(args, env), reject: false, timeout: 60_000 });
  return { exitCode: r.exitCode ?? -1, output: String(r.stdout) };
}
