/**
 * Three nodes with candidate priorities 50/50/0 on real Postgres: when the primary dies, a
 * priority-50 standby is elected (report_lsn → prepare_promotion or fast_forward), never the
 * priority-0 one; synchronous replication waits for ANY 1 of the quorum standbys; nothing
 * acknowledged is lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addNode, startMonitor, uriOf, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { connectWritable, isPrimaryAndSecondaries, queryNode, showState, Writer } from './helpers/formation.js';
import { endAllProcesses, killPid, postmasterPid, runPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

let monitor: TestMonitor;
let nodes: TestNode[];

beforeAll(async () => {
  monitor = await startMonitor();
  nodes = [];
  nodes.push(await addNode(monitor, 'a', { candidatePriority: 50 }));
  nodes.push(await addNode(monitor, 'b', { candidatePriority: 50 }));
  nodes.push(await addNode(monitor, 'zero', { candidatePriority: 0 }));
  await waitFor('one primary and two secondaries', async () => isPrimaryAndSecondaries(await showState(monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });
}, 300_000);

afterAll(async () => {
  await endAllProcesses();
});

describe('a three-node formation with candidate priorities 50/50/0', () => {
  it('waits for any one of the two quorum standbys', async () => {
    const r = await runPgha(['show', 'state', '--json'], { PGHA_MONITOR: monitor.url });
    const rows = JSON.parse(r.stdout) as { name: string; node_id: number; goal_state: string }[];
    const primary = rows.find((x) => x.goal_state === 'primary')!;
    const standbyIds = rows.filter((x) => x.goal_state === 'secondary').map((x) => x.node_id).sort();
    const expected = `ANY 1 (${standbyIds.map((id) => `pgha_node_${id}`).join(', ')})`;
    // The last standby reports secondary a moment before the primary applies the names that
    // count it (its next report cycle): wait for them, as a user would see them settle.
    const read = async () => (await queryNode<{ s: string }>(nodes.find((n) => n.name === primary.name)!.port, "select current_setting('synchronous_standby_names') as s"))[0]!.s;
    const setting = await waitFor(`synchronous_standby_names = ${expected}`, async () => ((await read()) === expected ? expected : undefined), { timeoutMs: 10_000, intervalMs: 50 }).catch(read);
    expect(setting).toBe(expected);
  });

  it('promotes a priority-50 standby when the primary dies, never the priority-0 one, losing nothing', async () => {
    const client = await connectWritable(uriOf(nodes));
    await client!.query('create table probe (id bigint primary key)');
    await client!.end();
    const writer = new Writer(uriOf(nodes), 'probe');
    writer.start();
    await waitFor('writes', () => writer.acks.length >= 50);

    const rows = await showState(monitor.url);
    const primary = nodes.find((n) => n.name === rows.find((r) => r.goal_state === 'primary')!.name)!;
    expect(primary.name).not.toBe('zero');
    const killedAt = performance.now();
    killPid(primary.keeper.pid, 'SIGKILL');
    killPid(postmasterPid(primary.pgdata), 'SIGKILL');

    const survivor = nodes.find((n) => n.name !== primary.name && n.name !== 'zero')!;
    const first = await waitFor('a write on the other priority-50 node', () => writer.acks.find((a) => a.port === survivor.port && a.atMs > killedAt), { timeoutMs: 60_000 });
    await waitFor('more writes', () => writer.acks.filter((a) => a.port === survivor.port).length >= 20);
    await writer.stop();
    console.log(`[3 nodes] kill → first acknowledged write on the new primary: ${(first.atMs - killedAt).toFixed(0)} ms`);

    expect(writer.acks.some((a) => a.port === nodes.find((n) => n.name === 'zero')!.port)).toBe(false);
    const ids = new Set((await queryNode<{ id: string }>(survivor.port, 'select id from probe')).map((x) => Number(x.id)));
    expect(writer.acks.filter((a) => !ids.has(a.id))).toEqual([]);

    const after = await showState(monitor.url);
    expect(after.find((r) => r.name === survivor.name)!.connection).toBe('read-write');
    expect(after.find((r) => r.name === 'zero')!.goal_state).not.toMatch(/primary|promotion/);
    const events = JSON.parse((await runPgha(['show', 'events', '--json', '--count', '50'], { PGHA_MONITOR: monitor.url })).stdout) as { node_name: string; new_goal_state: string; reason: string }[];
    expect(events.some((e) => e.new_goal_state === 'report_lsn')).toBe(true);
    expect(events.some((e) => e.node_name === survivor.name && e.new_goal_state === 'prepare_promotion' && /wins the election \(candidate priority 50/.test(e.reason))).toBe(true);
    expect(events.some((e) => e.node_name === 'zero' && ['prepare_promotion', 'stop_replication', 'fast_forward'].includes(e.new_goal_state))).toBe(false);
    // The priority-0 node follows the new primary.
    await waitFor('zero to be secondary of the new primary', async () => (await showState(monitor.url)).find((r) => r.name === 'zero')?.goal_state === 'secondary', { timeoutMs: 60_000 });
  });
});
