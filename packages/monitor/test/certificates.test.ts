import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bearerToken, tokenSha256 } from '../src/auth.js';
import { certificateProblem, createCertificateAuthority, generateKeyPair, issueServerCertificate } from '../src/tls/certificates.js';
import { loadGivenCa, setUpMonitorTls } from '../src/tls/monitor-tls.js';

const ca = createCertificateAuthority('test CA');
const other = createCertificateAuthority('another CA');
const dir = mkdtempSync(join(tmpdir(), 'pgha-cert-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the certificate authority', () => {
  it('issues a server certificate for a public key that chains to the CA and names its hosts', () => {
    const keys = generateKeyPair();
    const pem = issueServerCertificate(ca, keys.publicKeyPem, ['10.1.2.3', 'db1.example']);
    const cert = new X509Certificate(pem);
    expect(cert.checkIssued(new X509Certificate(ca.certificatePem))).toBe(true);
    expect(cert.checkIP('10.1.2.3')).toBe('10.1.2.3');
    expect(cert.checkHost('db1.example')).toBe('db1.example');
    expect(cert.ca).toBe(false);
    expect(certificateProblem(pem, ca.certificatePem, '10.1.2.3')).toBeUndefined();
    expect(certificateProblem(pem, other.certificatePem, '10.1.2.3')).toMatch(/not issued by the CA/);
    expect(certificateProblem(pem, ca.certificatePem, '10.9.9.9')).toMatch(/does not name 10\.9\.9\.9/);
    expect(certificateProblem('garbage', ca.certificatePem, 'x')).toMatch(/not a PEM certificate/);
  });

  it('refuses a key that is not an RSA public key, with the field named', () => {
    expect(() => issueServerCertificate(ca, 'not a key', ['h'])).toThrow(/TLS public key cannot be used/);
    expect(() => issueServerCertificate(ca, generateKeyPair().publicKeyPem, [])).toThrow(/at least one host/);
  });

  it('self-signed mode writes the CA key and server key 0600 and the CA certificate 0644', () => {
    const tls = setUpMonitorTls({ mode: 'self-signed' }, join(dir, 'tls'), ['127.0.0.1']);
    if (tls.mode !== 'self-signed') throw new Error('expected self-signed');
    expect((statSync(tls.caKeyFile).mode & 0o777).toString(8)).toBe('600');
    expect((statSync(tls.keyFile).mode & 0o777).toString(8)).toBe('600');
    expect((statSync(tls.caFile).mode & 0o777).toString(8)).toBe('644');
  });

  it('files mode refuses a certificate of another CA, for another host, or with the wrong key', () => {
    const keys = generateKeyPair();
    const files = { ca: join(dir, 'ca.crt'), cert: join(dir, 's.crt'), key: join(dir, 's.key'), wrongKey: join(dir, 'w.key') };
    writeFileSync(files.ca, ca.certificatePem);
    writeFileSync(files.cert, issueServerCertificate(other, keys.publicKeyPem, ['127.0.0.1']));
    writeFileSync(files.key, keys.privateKeyPem);
    writeFileSync(files.wrongKey, generateKeyPair().privateKeyPem);
    const option = { mode: 'files' as const, caFile: files.ca, certFile: files.cert, keyFile: files.key };
    expect(() => setUpMonitorTls(option, dir, ['127.0.0.1'])).toThrow(/not issued by the CA/);
    writeFileSync(files.cert, issueServerCertificate(ca, keys.publicKeyPem, ['127.0.0.1']));
    expect(() => setUpMonitorTls(option, dir, ['10.0.0.1'])).toThrow(/does not name 10\.0\.0\.1/);
    expect(() => setUpMonitorTls({ ...option, keyFile: files.wrongKey }, dir, ['127.0.0.1'])).toThrow(/does not match the certificate/);
    expect(() => setUpMonitorTls({ ...option, keyFile: join(dir, 'nosuch') }, dir, ['127.0.0.1'])).toThrow(/server key .*nosuch cannot be used: ENOENT/);
    expect(setUpMonitorTls(option, dir, ['127.0.0.1'])).toMatchObject({ mode: 'files' });
  });
});

describe('self-signed mode with a given CA', () => {
  it('signs the server certificate with that CA, and refuses a key of another, or a certificate that is not a CA', () => {
    const ca = createCertificateAuthority('operator CA');
    const other = createCertificateAuthority('other CA');
    const server = generateKeyPair();
    const files = { ca: join(dir, 'given-ca.crt'), key: join(dir, 'given-ca.key'), otherKey: join(dir, 'other-ca.key'), leaf: join(dir, 'leaf.crt') };
    writeFileSync(files.ca, ca.certificatePem);
    writeFileSync(files.key, ca.privateKeyPem);
    writeFileSync(files.otherKey, other.privateKeyPem);
    writeFileSync(files.leaf, issueServerCertificate(ca, server.publicKeyPem, ['127.0.0.1']));
    const given = loadGivenCa(files.ca, files.key);
    const tls = setUpMonitorTls({ mode: 'self-signed', ca: given }, join(dir, 'tls-given'), ['127.0.0.1']);
    if (tls.mode !== 'self-signed') throw new Error('expected self-signed mode');
    expect(new X509Certificate(readFileSync(tls.caFile)).fingerprint256).toBe(new X509Certificate(ca.certificatePem).fingerprint256);
    expect(certificateProblem(readFileSync(tls.certFile, 'utf8'), ca.certificatePem, '127.0.0.1')).toBeUndefined();
    expect(() => loadGivenCa(files.ca, files.otherKey)).toThrow(/does not match the CA certificate/);
    expect(() => loadGivenCa(files.leaf, files.key)).toThrow(/is not a CA certificate/);
  });
});

describe('bearer tokens', () => {
  it('reads only well-formed Bearer headers', () => {
    expect(bearerToken('Bearer abcdefghijklmnopqrstuvwxyz_-0123')).toBe('abcdefghijklmnopqrstuvwxyz_-0123');
    for (const bad of [undefined, '', 'Bearer', 'Bearer short', 'Basic abcdefghijklmnopqrstuvwxyz', `Bearer ${'a'.repeat(600)}`, 'Bearer abc def ghi jkl mno pqr', 'bearer abcdefghijklmnopqrstuvwxyz']) {
      expect(bearerToken(bad)).toBeUndefined();
    }
  });

  it('hashes tokens with SHA-256', () => {
    expect(tokenSha256('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
