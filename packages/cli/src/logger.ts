/**
 * pino loggers for the CLI's long-running commands: JSON lines by default, pretty on a
 * terminal. Passwords and connection strings are redacted wherever they appear.
 */
import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';

const require = createRequire(import.meta.url);

/** Keys whose values are secrets wherever they appear (at the top of a log line or one level down). */
const SECRET_KEYS = [
  'password',
  'replicationPassword',
  'monitorProbePassword',
  'primaryConninfo',
  'conninfo',
  // keeper tokens, the operator token, and TLS private keys (node, monitor, CA)
  'nodeToken',
  'token',
  'authToken',
  'privateKeyPem',
  'authorization',
];

/**
 * Paths redacted from every log line: each of the secret keys at the top level and one level
 * down (`{config: {nodeToken}}`), and the `Authorization` header of a request however it is
 * nested (`req.headers.authorization`).
 */
export const REDACT_PATHS = [
  ...SECRET_KEYS.flatMap((key) => [key, `*.${key}`]),
  'headers.authorization',
  '*.headers.authorization',
  '*.*.headers.authorization',
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
