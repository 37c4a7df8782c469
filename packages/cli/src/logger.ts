/**
 * pino loggers for the CLI's long-running commands: JSON lines by default, pretty on a
 * terminal. Passwords and connection strings are redacted wherever they appear.
 */
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

/** Paths redacted from every log line. */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'replicationPassword',
  '*.replicationPassword',
  'monitorProbePassword',
  '*.monitorProbePassword',
  'primaryConninfo',
  '*.primaryConninfo',
  'conninfo',
  '*.conninfo',
];

/** A logger bound to `{component}`. */
export function createLogger(component: string, level = process.env.PGHA_LOG_LEVEL ?? 'info'): Logger {
  const options = { level, base: { component, pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  if (process.stdout.isTTY) return pino(options, pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  return pino(options);
}
