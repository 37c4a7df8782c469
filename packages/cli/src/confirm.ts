/**
 * Confirmation of commands that cannot be undone (`pgha drop formation`, `pgha drop node
 * --destroy`): `--yes`, or on a terminal the name of what goes typed back.
 * Source: pg_autoctl's `drop node --destroy`; the typed name as GitHub's repository deletion asks.
 */
import { createInterface } from 'node:readline/promises';
import { ValidationError } from '@pgha/shared/base';

/** What {@link confirmDestructive} asks about. */
export interface Confirmation {
  /** `--yes` was given. */
  yes: boolean | undefined;
  /** What happens, as the start of a sentence: `dropping formation "other"`. */
  action: string;
  /** Why it cannot be undone, completing `action`: `cannot be undone`, `removes its data directory`. */
  consequence: string;
  /** The name to type back on a terminal. */
  name: string;
  /** The same command with `--yes`, shown in the hint. */
  withYes: string;
}

/**
 * Passes with `--yes`. Without it, on a terminal (stdin a TTY), asks on stderr for `name` to be
 * typed back and passes when it is; otherwise refuses, so that a script without `--yes` never
 * drops anything.
 *
 * @throws ValidationError (`PGHA_ERR_VALIDATION`, exit 2) without `--yes` and without a
 *   terminal, or when the answer is not `name` (also on Ctrl-C or end of input).
 */
export async function confirmDestructive(c: Confirmation): Promise<void> {
  if (c.yes) return;
  const hint = `add --yes to confirm: ${c.withYes}`;
  if (!process.stdin.isTTY) throw new ValidationError(`${c.action} ${c.consequence}`, { hint });
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const asking = new AbortController();
  rl.on('SIGINT', () => asking.abort());
  rl.on('close', () => asking.abort());
  let answer: string | undefined;
  try {
    answer = (await rl.question(`${c.action} ${c.consequence}. Type "${c.name}" to go on: `, { signal: asking.signal })).trim();
  } catch {
    answer = undefined;
  } finally {
    rl.close();
  }
  if (answer !== c.name) {
    throw new ValidationError(`${c.action}: not confirmed (${answer === undefined ? 'no answer' : `"${answer}" is not "${c.name}"`}); nothing was changed`, { hint });
  }
}
