/**
 * Certificates made with `openssl`, as an operator makes them: a key and a certificate for an
 * IP address signed by a CA (the operator's own, or the monitor's); and the certificate a server
 * presents to a new connection (HTTPS, or Postgres after its SSLRequest).
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/** Runs `openssl ARGS…` in `dir`. @throws when it fails (its stderr in the message). */
export function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/**
 * A new key and a certificate for `ip` (CN and subjectAltName), valid 30 days, signed by `ca`
 * (PEM files, paths absolute or relative to `dir`), written to `<dir>/<name>.key` and
 * `<dir>/<name>.crt`. The CA's serial file is kept in `dir` (`ca.srl`), never beside the CA.
 */
export function issueCertificate(dir: string, ca: { cert: string; key: string }, name: string, ip: string): { cert: string; key: string } {
  openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${ip}`);
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=IP:${ip}\n`);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAserial', 'ca.srl', '-CAcreateserial', '-out', `${name}.crt`, '-days', '30', '-extfile', `${name}.ext`);
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/** Postgres's SSLRequest: length 8, code 80877103 (its protocol docs, "SSL Session Encryption"). */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/**
 * The SHA-256 fingerprint (`AB:CD:…`, as `X509Certificate.fingerprint256`) of the certificate
 * that `host:port` presents to a new TLS connection, verified against `caFile` and `host`:
 * directly (HTTPS), or with `postgres` after Postgres's SSLRequest.
 *
 * @throws when the server does not do TLS, or its certificate does not verify.
 */
export async function servedFingerprint(host: string, port: number, caFile: string, options: { postgres?: boolean } = {}): Promise<string> {
  const raw = netConnect({ host, port });
  let socket: TLSSocket | undefined;
  try {
    await once(raw, 'connect');
    if (options.postgres) {
      raw.write(SSL_REQUEST);
      const [answer] = (await once(raw, 'data')) as [Buffer];
      if (answer.toString('latin1', 0, 1) !== 'S') throw new Error(`Postgres at ${host}:${port} refused TLS (answered ${JSON.stringify(answer.toString('latin1'))})`);
    }
    socket = tlsConnect({ socket: raw, host, ca: readFileSync(caFile, 'utf8') });
    await once(socket, 'secureConnect');
    return socket.getPeerCertificate().fingerprint256;
  } finally {
    socket?.destroy();
    raw.destroy();
  }
}
