/**
 * pino loggers for the CLI's long-running commands: JSON lines by default, pretty on a
 * terminal. Passwords and connection strings are redacted wherever they appear.
 */
import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';

const require = createRequire(import.meta.url);

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
  if (process.stdout.isTTY) {
    // Loaded only on a terminal: services logging JSON never pay for it.
    const pretty = require('pino-pretty') as typeof import('pino-pretty');
    return pino(options, pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  return pino(options);
}
