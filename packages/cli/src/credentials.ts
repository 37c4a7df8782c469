/**
 * The credentials a `pgha` command presents to the monitor, from its `--auth-token-file` and
 * `--ssl-ca-file` options or the environment (`PGHA_AUTH_TOKEN_FILE`, `PGHA_AUTH_TOKEN`,
 * `PGHA_SSL_CA_FILE`). Every command that takes `--monitor` gets both options
 * ({@link addCredentialOptions}), so they are declared and read in this one place.
 */
import { readFileSync } from 'node:fs';
import { Option, type CommandUnknownOpts } from '@commander-js/extra-typings';
import type { MonitorCredentials } from '@pgha/client';
import { readSecretFile } from '@pgha/postgres/secrets';
import { PghaError } from '@pgha/shared/core';

let given: { authTokenFile?: string; sslCaFile?: string } = {};

/**
 * The operator token a command presents to the monitor: from `--auth-token-file`, else
 * `$PGHA_AUTH_TOKEN_FILE`, else `$PGHA_AUTH_TOKEN`; undefined when none is given.
 *
 * @throws PghaError `PGHA_ERR_CONFIG` for an unreadable token file (see `readSecretFile`).
 */
export function operatorToken(file: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const path = file ?? env.PGHA_AUTH_TOKEN_FILE;
  if (path) return readSecretFile(path, 'auth token');
  return env.PGHA_AUTH_TOKEN?.trim() || undefined;
}

/** Adds `--auth-token-file` and `--ssl-ca-file` to every command of `program` that has `--monitor`, and reads them before its action. */
export function addCredentialOptions(program: CommandUnknownOpts): void {
  const walk = (cmd: CommandUnknownOpts): void => {
    if (cmd.options.some((o) => o.long === '--monitor')) {
      cmd.addOption(new Option('--auth-token-file <file>', "the monitor's operator token (default: $PGHA_AUTH_TOKEN_FILE, or $PGHA_AUTH_TOKEN)"));
      if (!cmd.options.some((o) => o.long === '--ssl-ca-file')) cmd.addOption(new Option('--ssl-ca-file <file>', "CA certificate that the monitor's HTTPS certificate chains to (default: $PGHA_SSL_CA_FILE)"));
    }
    cmd.commands.forEach(walk);
  };
  walk(program);
  program.hook('preAction', (_root, action) => {
    // Any command runs this hook: its options are not known here, only that these two are strings when given.
    const { authTokenFile, sslCaFile } = action.opts();
    given = { ...(typeof authTokenFile === 'string' && authTokenFile ? { authTokenFile } : {}), ...(typeof sslCaFile === 'string' && sslCaFile ? { sslCaFile } : {}) };
  });
}

/** The CA file given to this command (`--ssl-ca-file` or `$PGHA_SSL_CA_FILE`), if any. */
export function caFileGiven(): string | undefined {
  return given.sslCaFile ?? (process.env.PGHA_SSL_CA_FILE || undefined);
}

/**
 * Token and CA for this command's monitor client.
 *
 * @throws PghaError `PGHA_ERR_CONFIG` for an unreadable or world-readable token file,
 *   `PGHA_ERR_TLS` for an unreadable CA file.
 */
export function cliCredentials(): MonitorCredentials {
  const token = operatorToken(given.authTokenFile);
  const caFile = caFileGiven();
  return { token, ca: caFile ? readCaFile(caFile) : undefined };
}

/**
 * The PEM of a CA certificate file (`--ssl-ca-file`).
 *
 * @throws PghaError `PGHA_ERR_TLS` when it cannot be read or holds no PEM certificate.
 */
export function readCaFile(caFile: string): string {
  let pem: string;
  try {
    pem = readFileSync(caFile, 'utf8');
  } catch (cause) {
    throw new PghaError('PGHA_ERR_TLS', `CA file ${caFile} cannot be read (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, { hint: "pass the monitor's tls/ca.crt with --ssl-ca-file" });
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new PghaError('PGHA_ERR_TLS', `CA file ${caFile} holds no PEM certificate`, { hint: "pass the monitor's tls/ca.crt with --ssl-ca-file" });
  return pem;
}
