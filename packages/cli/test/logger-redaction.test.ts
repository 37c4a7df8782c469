import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { REDACT_PATHS } from '../src/logger.js';

/** One log line written with the CLI's redaction, parsed back. */
function logged(obj: Record<string, unknown>): Record<string, unknown> {
  let line = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      line += chunk.toString();
      done();
    },
  });
  pino({ redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink).info(obj, 'message');
  return JSON.parse(line) as Record<string, unknown>;
}

describe('log redaction', () => {
  it('hides passwords, conninfo, tokens, private keys and Authorization headers, at the top and one level down', () => {
    const line = logged({
      password: 'p1',
      nodeToken: 't1',
      token: 't2',
      config: { replicationPassword: 'p2', monitorProbePassword: 'p3', nodeToken: 't3', authToken: 't4', primaryConninfo: "host=x password='p4'" },
      tls: { privateKeyPem: '-----BEGIN PRIVATE KEY-----' },
      req: { method: 'GET', headers: { authorization: 'Bearer t5', host: 'monitor' } },
      res: { req: { headers: { authorization: 'Bearer t6' } } },
      nodeId: 3,
    });
    const text = JSON.stringify(line);
    for (const secret of ['p1', 'p2', 'p3', 'p4', 't1', 't2', 't3', 't4', 't5', 't6', 'PRIVATE KEY']) expect(text).not.toContain(secret);
    expect(line).toMatchObject({ nodeId: 3, req: { method: 'GET', headers: { host: 'monitor', authorization: '[redacted]' } } });
  });
});
