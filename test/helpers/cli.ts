import { expect } from 'vitest';

/** A failed pgha command printed exactly one `pgha: error:` line matching `pattern`, and no stack trace. */
export function expectOneLineError(r: { exitCode: number; stderr: string }, pattern: RegExp): void {
  expect(r.exitCode).not.toBe(0);
  const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('pgha: error:'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}
