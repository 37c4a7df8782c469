/** The formation's connection URI as a client on this machine uses it. */
import { resolve } from 'node:path';

/**
 * Adds `sslrootcert=<caFile>` (an absolute path) to a URI that asks for `sslmode=verify-full`,
 * so that libpq verifies the nodes against the monitor's CA, which signs their certificates.
 * Without a CA file, or without `sslmode`, the URI is returned as it is.
 *
 * ### Examples
 * ```ts
 * withRootCert('postgres://a:5432/postgres?target_session_attrs=read-write&sslmode=verify-full', '/x/ca.crt')
 * // 'postgres://a:5432/postgres?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=%2Fx%2Fca.crt'
 * ```
 */
export function withRootCert(uri: string, caFile: string | undefined): string {
  if (!caFile || !/[?&]sslmode=verify-(full|ca)\b/.test(uri) || /[?&]sslrootcert=/.test(uri)) return uri;
  return `${uri}&sslrootcert=${encodeURIComponent(resolve(caFile))}`;
}
