/**
 * The monitor's certificate authority for `--ssl-self-signed`: one CA per monitor, created at
 * `pgha monitor create`, that signs the monitor's own HTTPS certificate and, at registration,
 * each node's Postgres server certificate. Every peer then verifies every other one against
 * that CA (`sslmode=verify-full`), where pg_auto_failover's `--ssl-self-signed` gives each node
 * an unverifiable self-signed certificate (`sslmode=require`).
 *
 * Certificates are X.509 v3, RSA 2048 with SHA-256, built with node-forge; keys are generated
 * by Node's own crypto.
 */
import { X509Certificate, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { createRequire } from 'node:module';
import type * as Forge from 'node-forge';
import { ValidationError } from '@pgha/shared';

const require = createRequire(import.meta.url);
let forgeModule: typeof Forge | undefined;
/** node-forge, loaded when a certificate is first made or read: a running monitor seldom needs it (issue 17's idle memory). */
function forge(): typeof Forge {
  return (forgeModule ??= require('node-forge') as typeof Forge);
}

/** A certificate and its private key, both PEM. */
export interface KeyAndCertificate {
  certificatePem: string;
  privateKeyPem: string;
}

/** How long the CA is valid, in days. */
export const CA_VALIDITY_DAYS = 3650;
/** How long a server certificate is valid, in days. */
export const SERVER_CERT_VALIDITY_DAYS = 825;

/** A new RSA 2048 key pair, PEM (SPKI public, PKCS#8 private). */
export function generateKeyPair(): { publicKeyPem: string; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

function serial(): string {
  // Positive: the high bit of the first byte is clear.
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

function validity(cert: Forge.pki.Certificate, days: number): void {
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 5 * 60_000);
  cert.validity.notAfter = new Date(now + days * 86_400_000);
}

/** Creates a self-signed CA: `CN=<commonName>`, basicConstraints CA, keyCertSign. */
export function createCertificateAuthority(commonName: string): KeyAndCertificate {
  const keys = generateKeyPair();
  const cert = forge().pki.createCertificate();
  cert.publicKey = forge().pki.publicKeyFromPem(keys.publicKeyPem);
  cert.serialNumber = serial();
  validity(cert, CA_VALIDITY_DAYS);
  const name = [{ name: 'commonName', value: commonName }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge().pki.privateKeyFromPem(keys.privateKeyPem), forge().md.sha256.create());
  return { certificatePem: forge().pki.certificateToPem(cert), privateKeyPem: keys.privateKeyPem };
}

/**
 * Signs a server certificate for `publicKeyPem` (SPKI PEM) naming `hosts` (IP addresses and
 * DNS names, the first one also as CN), for TLS servers and clients.
 *
 * @throws ValidationError when the public key cannot be read or `hosts` is empty.
 */
export function issueServerCertificate(ca: KeyAndCertificate, publicKeyPem: string, hosts: readonly string[]): string {
  if (hosts.length === 0) throw new ValidationError('a server certificate needs at least one host name or address');
  let publicKey: Forge.pki.PublicKey;
  try {
    // Node reads any key type; forge only RSA: check with Node first for a clear message.
    if (createPublicKey(publicKeyPem).asymmetricKeyType !== 'rsa') throw new Error('not an RSA key');
    publicKey = forge().pki.publicKeyFromPem(publicKeyPem);
  } catch (cause) {
    throw new ValidationError(`the node's TLS public key cannot be used: ${(cause as Error).message}`, { hint: 'send an RSA public key in SPKI PEM form', field: 'tlsPublicKey' });
  }
  const caCert = forge().pki.certificateFromPem(ca.certificatePem);
  const cert = forge().pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serial();
  validity(cert, SERVER_CERT_VALIDITY_DAYS);
  cert.setSubject([{ name: 'commonName', value: hosts[0]! }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames: [...new Set(hosts)].map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h })) },
  ]);
  cert.sign(forge().pki.privateKeyFromPem(ca.privateKeyPem), forge().md.sha256.create());
  return forge().pki.certificateToPem(cert);
}

/**
 * Checks that `certificatePem` was issued by `caPem`, is valid now, and names `host`.
 *
 * @returns undefined when it does, else why not (one line).
 */
export function certificateProblem(certificatePem: string, caPem: string, host: string): string | undefined {
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    cert = new X509Certificate(certificatePem);
    ca = new X509Certificate(caPem);
  } catch (cause) {
    return `not a PEM certificate (${(cause as Error).message})`;
  }
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return `not issued by the CA "${ca.subject.replace(/\n/g, ', ')}"`;
  const now = Date.now();
  if (Date.parse(cert.validFrom) > now || Date.parse(cert.validTo) < now) return `not valid now (valid from ${cert.validFrom} to ${cert.validTo})`;
  const names = isIP(host) ? cert.checkIP(host) : cert.checkHost(host);
  if (!names) return `does not name ${host} (it names ${cert.subjectAltName ?? cert.subject})`;
  return undefined;
}
