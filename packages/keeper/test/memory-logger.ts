/**
 * A pino logger for unit tests that keeps its lines in memory, parsed.
 */
import pino, { type Logger } from 'pino';

/** One line a {@link memoryLogger} kept: pino's fields and the message's own. */
export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/**
 * A pino logger at level `debug` that keeps its lines.
 *
 * ### Examples
 * ```ts
 * const { log, lines } = memoryLogger();
 * log.info('x'); // lines[0].msg === 'x'
 * ```
 */
export function memoryLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { log, lines };
}
