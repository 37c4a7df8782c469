/**
 * Leadership of formations on a real etcd: one leader per formation among monitors, a new one
 * within the lease TTL when the leader dies, and a fenced commit of the old leader failing.
 */
import { Etcd3 } from 'etcd3';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormationLeadership, formationKey, leaderKey } from '../packages/monitor/src/ha/leadership.js';
import { endAllProcesses } from './helpers/processes.js';
import { startEtcd } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

const PREFIX = '/pgha-test';
let endpoint: string;
const clients: Etcd3[] = [];
const log = pino({ level: 'silent' });

beforeAll(async () => {
  // The tests' one etcd launcher (one member, plain), ended by endAllProcesses.
  endpoint = (await startEtcd()).members[0]!.clientUrl;
});

afterAll(async () => {
  await Promise.all(clients.map((c) => Promise.resolve(c.close())));
  await endAllProcesses();
});

function newClient(): Etcd3 {
  const c = new Etcd3({ hosts: endpoint });
  clients.push(c);
  return c;
}

function monitor(id: string, now?: () => number): { leadership: FormationLeadership; client: Etcd3; gained: string[]; lost: string[] } {
  const client = newClient();
  const leadership = new FormationLeadership({ client, prefix: PREFIX, monitorId: id, url: `https://${id}:8432`, ttlS: 2, log, ...(now ? { now } : {}) });
  const gained: string[] = [];
  const lost: string[] = [];
  leadership.on('gained', (f) => gained.push(f));
  leadership.on('lost', (f) => lost.push(f));
  return { leadership, client, gained, lost };
}

describe('formation leadership on etcd', () => {
  it('gives every formation exactly one leader among three monitors, and all see it', async () => {
    const admin = newClient();
    for (const f of ['f1', 'f2', 'f3', 'f4']) await admin.put(formationKey(PREFIX, f)).value('{}');
    const monitors = [monitor('m1'), monitor('m2'), monitor('m3')];
    await Promise.all(monitors.map((m) => m.leadership.start()));
    for (const f of ['f1', 'f2', 'f3', 'f4']) {
      await waitFor(`a leader of ${f} seen by all`, () => monitors.every((m) => m.leadership.leaderOf(f) !== undefined), { timeoutMs: 5000 });
      expect(monitors.filter((m) => m.leadership.isLeader(f)), f).toHaveLength(1);
      const seen = new Set(monitors.map((m) => m.leadership.leaderOf(f)!.monitorId));
      expect(seen.size, f).toBe(1);
    }
    // A new formation gets a leader too.
    await admin.put(formationKey(PREFIX, 'f5')).value('{}');
    await waitFor('a leader of f5', () => monitors.some((m) => m.leadership.isLeader('f5')), { timeoutMs: 5000 });
    await Promise.all(monitors.map((m) => m.leadership.stop()));
  });

  it('hands a dead leader\'s formation to another monitor within the TTL + 1 s, and fences the old leader\'s commits', async () => {
    const admin = newClient();
    await admin.put(formationKey(PREFIX, 'g1')).value('{}');
    const a = monitor('a');
    await a.leadership.start();
    await waitFor('a leads g1', () => a.leadership.isLeader('g1'), { timeoutMs: 5000 });
    const b = monitor('b');
    await b.leadership.start();
    await waitFor('b sees a lead', () => b.leadership.leaderOf('g1')?.monitorId === 'a', { timeoutMs: 5000 });
    expect(b.leadership.isLeader('g1')).toBe(false);
    expect(() => b.leadership.fence('g1')).toThrow(/does not lead formation "g1".*/);
    const staleFence = a.leadership.fence('g1');

    // a dies: no keepalive any more, the lease is not revoked.
    const diedAt = Date.now();
    a.leadership.abandonLease();
    await waitFor('b leads g1', () => b.leadership.isLeader('g1'), { timeoutMs: 2000 + 1000 + 500, intervalMs: 20 });
    const takeoverMs = Date.now() - diedAt;
    console.log(`[leadership] new leader of g1 ${takeoverMs} ms after the old one's client closed (TTL 2000 ms)`);
    expect(takeoverMs).toBeLessThanOrEqual(3000);
    expect(b.leadership.leaderOf('g1')!.term).not.toBe(staleFence.createRevision);

    // The old leader's fenced commit fails; the new leader's succeeds.
    const write = (fence: { key: string; createRevision: string }, value: string) =>
      admin.if(fence.key, 'Create', '==', fence.createRevision).then(admin.put(`${PREFIX}/v1/goal-of-g1`).value(value)).commit();
    expect((await write(staleFence, 'stale')).succeeded).toBe(false);
    expect((await write(b.leadership.fence('g1'), 'fresh')).succeeded).toBe(true);
    expect(await admin.get(`${PREFIX}/v1/goal-of-g1`).string()).toBe('fresh');
    expect(b.gained).toContain('g1');
    await b.leadership.stop();
    // A clean stop revokes the lease: the key is gone at once.
    expect(await admin.get(leaderKey(PREFIX, 'g1')).string()).toBeNull();
  });

  it('says which formations it still leads when its lease is valid again after a lapse (a keepalive answered late), and leads them again', async () => {
    const admin = newClient();
    await admin.put(formationKey(PREFIX, 'h1')).value('{}');
    // The monitor's clock jumps past its lease's validity, as when a keepalive is answered
    // only after etcd elected a new raft leader: the monitor cannot count on its lease meanwhile.
    let skewMs = 0;
    const m = monitor('r', () => Date.now() + skewMs);
    const resumed: { formations: string[]; lapsedMs: number }[] = [];
    m.leadership.on('resumed', (formations, lapsedMs) => resumed.push({ formations, lapsedMs }));
    await m.leadership.start();
    await waitFor('r leads h1', () => m.leadership.isLeader('h1'), { timeoutMs: 5000 });
    expect(resumed).toEqual([]);
    skewMs = 3000;
    expect(m.leadership.leaseValid()).toBe(false);
    expect(m.leadership.isLeader('h1')).toBe(false);
    // The next keepalive (every TTL / 3) is answered: valid again, h1 still led, never lost.
    await waitFor('the lease valid again', () => m.leadership.leaseValid(), { timeoutMs: 3000, intervalMs: 20 });
    expect(resumed).toHaveLength(1);
    // Every formation it leads (the earlier tests' formations are in the same store).
    expect(resumed[0]!.formations).toContain('h1');
    expect([...resumed[0]!.formations].sort()).toEqual(m.leadership.ledFormations().map((l) => l.formation));
    expect(resumed[0]!.lapsedMs).toBeGreaterThan(0);
    expect(m.leadership.isLeader('h1')).toBe(true);
    expect(m.lost).toEqual([]);
    await m.leadership.stop();
  });
});
