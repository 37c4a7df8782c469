/**
 * `pgha show haproxy`'s configuration for a formation's rows: one server per node that is not
 * dropped, checked on its keeper's HTTP address (HTTPS verified against the CA, the node's host
 * as the certificate's name), and a refusal when HTTPS has no CA to verify with.
 */
import { describe, expect, it } from 'vitest';
import type { NodeStateRow } from '@pgha/shared';
import { parseHostPort } from '@pgha/shared';
import { renderHaproxyConfig } from '../src/show-haproxy.js';

function row(name: string, o: Partial<NodeStateRow>): NodeStateRow {
  return {
    name, node_id: 1, group_id: 0, host: '10.0.0.1', port: 5432, timeline: 1, lsn: '0/1', connection: 'read-write',
    reported_state: 'primary', goal_state: 'primary', health: 'good', last_report_ago_ms: 10, note: null, problem: null,
    keeper_http_url: 'https://10.0.0.1:8008', ...o,
  };
}

const options = { formation: 'default', writePort: 5000, readPort: 5001, bind: '*' };

describe('pgha show haproxy', () => {
  it('checks every node on its keeper: /primary behind the write port, /replica behind the read port', () => {
    const rows = [row('a', {}), row('b', { host: 'db2.example', keeper_http_url: 'https://10.0.0.9:9000' }), row('gone', { goal_state: 'dropped' })];
    const config = renderHaproxyConfig(rows, { ...options, caFile: '/etc/pgha/ca.crt' });
    expect(config).toContain('frontend pgha_default_write\n    bind *:5000\n    default_backend pgha_default_primary');
    expect(config).toContain('frontend pgha_default_read\n    bind *:5001\n    default_backend pgha_default_replicas');
    expect(config).toContain('    server a 10.0.0.1:5432 check addr 10.0.0.1 port 8008 check-ssl verify required ca-file /etc/pgha/ca.crt verifyhost 10.0.0.1');
    expect(config).toContain('    server b db2.example:5432 check addr 10.0.0.9 port 9000 check-ssl verify required ca-file /etc/pgha/ca.crt verifyhost db2.example');
    expect(config).not.toContain('gone');
    // A server that refuses a connection is marked down at once, and the connection goes to another.
    expect(config).toContain('observe layer4 error-limit 1 on-error mark-down on-marked-down shutdown-sessions');
    expect(config).toContain('    option redispatch 1\n');
    expect(config.match(/option httpchk GET \/primary/g)).toHaveLength(1);
    expect(config.match(/option httpchk GET \/replica/g)).toHaveLength(1);
    expect(config.match(/on-marked-down shutdown-sessions/g)).toHaveLength(2);
    expect(config.endsWith('\n')).toBe(true);
  });

  it('checks plain HTTP keepers without TLS, IPv6 hosts in brackets, and a lag bound on the read side', () => {
    const config = renderHaproxyConfig([row('a', { host: 'fd00::1', keeper_http_url: 'http://[fd00::1]:8008' })], { ...options, bind: '127.0.0.1', maxLagBytes: 1048576 });
    expect(config).toContain('    server a [fd00::1]:5432 check addr fd00::1 port 8008\n');
    expect(config).toContain('option httpchk GET /replica?max_lag_bytes=1048576');
    expect(config).not.toContain('check-ssl');
  });

  it('refuses HTTPS keepers without a CA, and a formation without nodes', () => {
    expect(() => renderHaproxyConfig([row('a', {})], options)).toThrow(/HAProxy needs the CA/);
    expect(() => renderHaproxyConfig([], options)).toThrow(/has no nodes/);
  });
});

describe('HOST:PORT', () => {
  it.each([
    ['127.0.0.1:8008', { host: '127.0.0.1', port: 8008 }],
    ['[::1]:8008', { host: '::1', port: 8008 }],
    ['db1.example:1', { host: 'db1.example', port: 1 }],
    ['8008', undefined],
    ['::1:8008', undefined],
    ['host:0', undefined],
    ['host:65536', undefined],
  ])('%s', (text, parsed) => {
    expect(parseHostPort(text)).toEqual(parsed);
  });
});
