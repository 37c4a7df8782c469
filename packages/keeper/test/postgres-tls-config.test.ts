import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { GroupMember } from '@pgha/shared';
import type { KeeperConfig } from '@pgha/keeper';
import { NodeControl } from '../src/node-control.js';
import { renderPghaConf } from '@pgha/postgres';

const config = (mode: KeeperConfig['ssl']['mode']): KeeperConfig => ({
  version: 1,
  monitorUrl: 'https://10.0.0.9:8443',
  formation: 'default',
  name: 'a',
  nodeId: 1,
  groupId: 0,
  hostname: '10.0.0.1',
  pgPort: 5432,
  pgdata: '/srv/a/pgdata',
  candidatePriority: 50,
  replicationQuorum: true,
  auth: 'scram-sha-256',
  replicationPassword: 'secret-r',
  monitorProbePassword: 'secret-p',
  nodeToken: 'token',
  ssl: { mode },
});
const peers = [{ nodeId: 2, host: '10.0.0.2', port: 5432 }] as unknown as GroupMember[];
const log = pino({ level: 'silent' });

describe('Postgres TLS settings of a node', () => {
  it('turns TLS on in pgha.conf with the node’s own files, TLS 1.2 at least', () => {
    const conf = renderPghaConf({ role: 'node', listenAddresses: '*', port: 5432, socketDir: '/run', synchronousStandbyNames: '', ssl: { certFile: '/srv/a/pgdata.pgha/postgres-tls/server.crt', keyFile: '/srv/a/pgdata.pgha/postgres-tls/server.key', caFile: '/srv/a/pgdata.pgha/postgres-tls/root.crt' } });
    expect(conf).toContain('ssl = on\n');
    expect(conf).toContain("ssl_cert_file = '/srv/a/pgdata.pgha/postgres-tls/server.crt'\n");
    expect(conf).toContain("ssl_key_file = '/srv/a/pgdata.pgha/postgres-tls/server.key'\n");
    expect(conf).toContain("ssl_ca_file = '/srv/a/pgdata.pgha/postgres-tls/root.crt'\n");
    expect(conf).toContain("ssl_min_protocol_version = 'TLSv1.2'\n");
    expect(new NodeControl(config('verify-full'), log).replication.serverTls()?.keyFile).toBe('/srv/a/pgdata.pgha/postgres-tls/server.key');
    expect(new NodeControl(config('disable'), log).replication.serverTls()).toBeUndefined();
  });

  it('admits pgha’s roles only over TLS, before any entry that could admit them in clear text, and leaves clients to choose', () => {
    const entries = new NodeControl(config('verify-full'), log).replication.hbaEntries(peers);
    const roles = entries.filter((e) => e.user === 'pgha_replication' || e.user === 'pgha_monitor');
    expect(roles.filter((e) => e.method !== 'reject').every((e) => e.type === 'hostssl' && e.method === 'scram-sha-256')).toBe(true);
    expect(roles.filter((e) => e.method === 'reject').map((e) => [e.type, e.database, e.user, e.address])).toEqual([
      ['hostnossl', 'replication', 'pgha_replication', 'all'],
      ['hostnossl', 'all', 'pgha_replication', 'all'],
      ['hostnossl', 'all', 'pgha_monitor', 'all'],
    ]);
    const firstClient = entries.findIndex((e) => e.user === 'all');
    expect(entries.findLastIndex((e) => e.method === 'reject')).toBeLessThan(firstClient);
    expect(entries.filter((e) => e.user === 'all').every((e) => (e.type ?? 'host') === 'host' && e.method === 'scram-sha-256')).toBe(true);
  });

  it('admits client networks last, with TLS and SCRAM only whatever --auth says, and refuses pgha’s roles from them', () => {
    const trusting = { ...config('verify-full'), auth: 'trust' as const };
    const entries = new NodeControl(trusting, log).replication.hbaEntries(peers, ['10.20.0.0/16', 'fd00::/8']);
    const fromClients = entries.filter((e) => e.address === '10.20.0.0/16' || e.address === 'fd00::/8');
    expect(fromClients.map((e) => [e.type ?? 'host', e.database, e.user, e.address, e.method])).toEqual([
      ['host', 'all', 'pgha_replication,pgha_monitor', '10.20.0.0/16', 'reject'],
      ['hostssl', 'all', 'all', '10.20.0.0/16', 'scram-sha-256'],
      ['host', 'all', 'pgha_replication,pgha_monitor', 'fd00::/8', 'reject'],
      ['hostssl', 'all', 'all', 'fd00::/8', 'scram-sha-256'],
    ]);
    expect(entries.slice(-4)).toEqual(fromClients);
    // Nothing else changes: the same entries before them as without client networks.
    expect(entries.slice(0, -4)).toEqual(new NodeControl(trusting, log).replication.hbaEntries(peers));
  });

  it('with --no-ssl, writes host entries and no reject', () => {
    const entries = new NodeControl(config('disable'), log).replication.hbaEntries(peers);
    expect(entries.every((e) => (e.type ?? 'host') === 'host' && e.method !== 'reject')).toBe(true);
  });
});
