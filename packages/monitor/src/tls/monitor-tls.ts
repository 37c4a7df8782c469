/**
 * The monitor's TLS files: made at `pgha monitor create` (`--ssl-self-signed`) or checked
 * there (`--ssl-ca-file --server-cert --server-key`), and loaded at `pgha monitor run`.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { PghaError } from '@pgha/shared';
import { readPem, readSecretFile, writeSecretFile } from '@pgha/postgres';
import type { MonitorTls } from '../monitor-config.js';
import { certificateProblem, createCertificateAuthority, generateKeyPair, issueServerCertificate, type KeyAndCertificate } from './certificates.js';

/** How `pgha monitor create` is told to set up TLS. */
export type MonitorSslOption =
  /** `ca`: sign with this CA (cert and key) instead of a new one (a CA shared by monitors on etcd, or the operator's). */
  | { mode: 'self-signed'; ca?: KeyAndCertificate }
  | { mode: 'files'; caFile: string; certFile: string; keyFile: string }
  | { mode: 'off' };

/** Host names and addresses the monitor answers at, for its certificate: the listen host, or every local address for a wildcard. */
export function monitorCertificateHosts(listenHost: string): string[] {
  if (listenHost !== '0.0.0.0' && listenHost !== '::') return [listenHost];
  const addresses = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && (listenHost === '::' || a.family === 'IPv4'))
    .map((a) => a!.address);
  return [...new Set(['127.0.0.1', ...addresses, 'localhost', hostname()])];
}

/**
 * Sets up the monitor's TLS at create time.
 *
 * - `self-signed`: a CA (`tls/ca.crt`, 0644; `tls/ca.key`, 0600: a new one, or a copy of the
 *   one given) and an HTTPS certificate it signs for `hosts` (`tls/server.crt`,
 *   `tls/server.key`, 0600).
 * - `files`: checks that the certificate was issued by the CA, names `hosts[0]`, and matches
 *   the key; the files stay where they are (the operator renews them there).
 *
 * @throws PghaError `PGHA_ERR_TLS` for files that do not fit together.
 */
export function setUpMonitorTls(option: MonitorSslOption, tlsDir: string, hosts: readonly string[]): MonitorTls {
  if (option.mode === 'off') return { mode: 'off' };
  if (option.mode === 'files') {
    const caFile = resolve(option.caFile);
    const certFile = resolve(option.certFile);
    const keyFile = resolve(option.keyFile);
    const cert = readPem(certFile, 'server certificate');
    const problem = certificateProblem(cert, readPem(caFile, 'CA file'), hosts[0]!);
    if (problem) throw new PghaError('PGHA_ERR_TLS', `server certificate ${certFile} ${problem}`, { hint: 'give a certificate issued by --ssl-ca-file for the --listen host' });
    let key;
    try {
      key = createPrivateKey(readPem(keyFile, 'server key'));
    } catch (cause) {
      throw new PghaError('PGHA_ERR_TLS', `server key ${keyFile} cannot be read: ${(cause as Error).message}`, { hint: 'give an unencrypted PEM private key' });
    }
    if (!new X509Certificate(cert).checkPrivateKey(key)) throw new PghaError('PGHA_ERR_TLS', `server key ${keyFile} does not match the certificate ${certFile}`);
    return { mode: 'files', caFile, certFile, keyFile };
  }
  mkdirSync(tlsDir, { recursive: true, mode: 0o711 });
  const ca = option.ca ?? createCertificateAuthority(`pgha monitor CA ${hostname()}`);
  const server = generateKeyPair();
  const files = { caFile: join(tlsDir, 'ca.crt'), caKeyFile: join(tlsDir, 'ca.key'), certFile: join(tlsDir, 'server.crt'), keyFile: join(tlsDir, 'server.key') };
  writeSecretFile(files.caKeyFile, ca.privateKeyPem);
  writeSecretFile(files.caFile, ca.certificatePem, 0o644);
  writeSecretFile(files.keyFile, server.privateKeyPem);
  writeSecretFile(files.certFile, issueServerCertificate(ca, server.publicKeyPem, hosts));
  return { mode: 'self-signed', ...files };
}

/** The monitor's HTTPS key and certificate (PEM); undefined when TLS is off. @throws PghaError `PGHA_ERR_TLS`/`PGHA_ERR_CONFIG`. */
export function loadHttpsOptions(tls: MonitorTls): { key: string; cert: string } | undefined {
  if (tls.mode === 'off') return undefined;
  return { key: readSecretFile(tls.keyFile, 'TLS server key'), cert: readPem(tls.certFile, 'server certificate') };
}

/** The CA that signs nodes' certificates (self-signed mode only). */
export function loadCertificateAuthority(tls: MonitorTls): KeyAndCertificate | undefined {
  if (tls.mode !== 'self-signed' || !existsSync(tls.caKeyFile)) return undefined;
  return { certificatePem: readPem(tls.caFile, 'CA certificate'), privateKeyPem: readSecretFile(tls.caKeyFile, 'CA key') };
}

/** The CA certificate (PEM) that nodes' Postgres certificates chain to, for the prober; undefined when TLS is off. */
export function loadCaCertificate(tls: MonitorTls): string | undefined {
  return tls.mode === 'off' ? undefined : readPem(tls.caFile, 'CA certificate');
}

/**
 * A CA given by its certificate and key files, for `self-signed` mode with the operator's CA
 * (`--ssl-ca-file` with `--ssl-ca-key-file`): the monitor signs its own and the nodes'
 * certificates with it.
 *
 * @throws PghaError `PGHA_ERR_TLS` when a file cannot be read, the certificate is not a CA's,
 *   or the key does not match it.
 */
export function loadGivenCa(caFile: string, caKeyFile: string): KeyAndCertificate {
  const certificatePem = readPem(resolve(caFile), 'CA file');
  const privateKeyPem = readPem(resolve(caKeyFile), 'CA key file');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certificatePem);
  } catch (cause) {
    throw new PghaError('PGHA_ERR_TLS', `CA file ${caFile} is not a PEM certificate: ${(cause as Error).message}`);
  }
  if (!cert.ca) throw new PghaError('PGHA_ERR_TLS', `${caFile} is not a CA certificate (basicConstraints CA:FALSE)`, { hint: 'give the certificate of a CA with --ssl-ca-file' });
  let key;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch (cause) {
    throw new PghaError('PGHA_ERR_TLS', `CA key ${caKeyFile} cannot be read: ${(cause as Error).message}`, { hint: 'give an unencrypted PEM private key' });
  }
  if (!cert.checkPrivateKey(key)) throw new PghaError('PGHA_ERR_TLS', `CA key ${caKeyFile} does not match the CA certificate ${caFile}`);
  return { certificatePem, privateKeyPem };
}
