import { expect } from 'vitest';
import { runPgha } from './processes.js';

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
