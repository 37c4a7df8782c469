import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Default directory of `pgha up`: under the OS temp dir, which the Postgres OS user can reach. */
export function defaultUpDir(): string {
  return join(tmpdir(), 'pgha');
}
