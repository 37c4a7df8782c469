import { describe, expect, it } from 'vitest';
import { renderMonitors } from '../src/show-monitors.js';

describe('pgha show monitors', () => {
  it('prints each monitor with what it leads and its lease, then each etcd member', () => {
    const text = renderMonitors({
      monitors: [
        { monitor_id: 'h1:8432', url: 'https://h1:8432', reachable: true, error: null, leads: [{ formation: 'default', term: '42' }, { formation: 'billing', term: '57' }], lease_left_ms: 1830, store: 'etcd' },
        { monitor_id: 'h2:8432', url: 'https://h2:8432', reachable: false, error: 'connect ECONNREFUSED', leads: [], lease_left_ms: null, store: 'etcd' },
      ],
      etcd: [
        { name: 'e1', id: '8e9e05c52164694d', client_urls: ['https://h1:2379'], healthy: true, leader: true, db_size_bytes: 20480, error: null },
        { name: 'e2', id: '91bc3c398fb3c146', client_urls: ['https://h2:2379'], healthy: false, leader: false, db_size_bytes: null, error: 'deadline exceeded' },
      ],
    });
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/Monitor\s+\|\s+URL\s+\|\s+Reachable\s+\|\s+Leads \(term\)\s+\|\s+Lease left\s+\|\s+Store/);
    expect(text).toMatch(/h1:8432\s+\|\s+https:\/\/h1:8432\s+\|\s+yes\s+\|\s+default \(42\), billing \(57\)\s+\|\s+1830 ms\s+\|\s+etcd/);
    expect(text).toMatch(/h2:8432 .*no: connect ECONNREFUSED\s+\|\s+-\s+\|\s+-/);
    expect(text).toMatch(/e1\s+\|\s+8e9e05c52164694d\s+\|\s+https:\/\/h1:2379\s+\|\s+yes\s+\|\s+yes\s+\|\s+20.*kB/);
    expect(text).toMatch(/e2 .*no: deadline exceeded\s+\|\s+no\s+\|\s+-/);
  });

  it('prints no member table on a Postgres store', () => {
    const text = renderMonitors({ monitors: [{ monitor_id: '127.0.0.1:8432', url: 'https://127.0.0.1:8432', reachable: true, error: null, leads: [{ formation: 'default', term: '1' }], lease_left_ms: null, store: 'postgres' }], etcd: [] });
    expect(text).not.toMatch(/etcd member/);
    expect(text).toMatch(/postgres/);
  });
});
