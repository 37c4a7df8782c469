/** The one place where the CLI turns errors into a line on stderr and an exit code. */
import { PghaError } from '@pgha/shared';

/** Prints `pgha: error: message; hint` and returns the exit code (1; 2 for bad input). */
export function reportError(err: unknown): number {
  if (err instanceof PghaError) {
    process.stderr.write(`pgha: error: ${err.toUserLine()}\n`);
    return err.code === 'PGHA_ERR_VALIDATION' ? 2 : 1;
  }
  const e = err as Error;
  process.stderr.write(`pgha: error: ${e?.message ?? String(err)}\n`);
  return 1;
}
