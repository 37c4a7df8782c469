/**
 * Replication slots across role changes, on real Postgres: a primary keeps a physical slot for
 * each other node of its group (`pgha_node_N`, `nodeSlotName`). A node that becomes a standby
 * keeps none of them (an inactive slot on a standby holds its WAL at its `restart_lsn` through
 * every restartpoint): a switchover's old primary, which pg_rewind finds needs no rewind and
 * leaves as it is, and a primary put in maintenance and brought back. A slot the operator made
 * stays. Switching back, the old primary, primary again, has a fresh slot for the other node,
 * which streams through it. A standby dropped from the formation (`pgha drop node`) leaves no
 * slot on the primary; the operator's slots there stay.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeSlotName, type NodeStateRow } from '@pgha/shared';
import { addPrimaryAndStandby, startMonitor, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { isPrimaryAndSecondaries, queryNode, showState } from './helpers/formation.js';
import { endAllProcesses, runPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

/** A slot the operator made on the first primary (not reserved: it holds no WAL). */
const OPERATOR_SLOT = 'operator_archive';
/** A slot the operator made on the primary before a standby is dropped (reserved, as a WAL archiver's is). */
const OPERATOR_RESERVED_SLOT = 'operator_reserved';

let monitor: TestMonitor;
let nodes: [TestNode, TestNode];

const rows = (): Promise<NodeStateRow[]> => showState(monitor.url);

interface SlotRow {
  slot_name: string;
  slot_type: string;
  active: boolean;
  restart_lsn: string | null;
  wal_status: string | null;
}

/** Every replication slot of `node`, by name. */
function slots(node: TestNode): Promise<SlotRow[]> {
  return queryNode<SlotRow>(node.port, 'select slot_name, slot_type, active, restart_lsn::text, wal_status from pg_replication_slots order by slot_name');
}

/** The slot name of `node` on the others (`nodeSlotName` of its node id). */
async function slotOf(node: TestNode): Promise<string> {
  return nodeSlotName((await rows()).find((r) => r.name === node.name)!.node_id);
}

/** The formation's primary and standby now. */
async function roles(): Promise<{ primary: TestNode; standby: TestNode }> {
  const primaryName = (await rows()).find((r) => r.goal_state === 'primary')!.name;
  const primary = nodes.find((n) => n.name === primaryName)!;
  return { primary, standby: nodes.find((n) => n !== primary)! };
}

/** `select id from t order by id` on `node`. */
async function ids(node: TestNode): Promise<number[]> {
  return (await queryNode<{ id: number }>(node.port, 'select id from t order by id')).map((r) => r.id);
}

/**
 * Once a role change settled (primary + secondary, the standby with every row): the standby
 * has no slot of the group (`pgha_…`); the primary has the standby's, active, and no other.
 */
async function expectSlotsSettled(primary: TestNode, standby: TestNode): Promise<void> {
  await waitFor(`${primary.name} primary, ${standby.name} secondary`, async () => {
    const now = await rows();
    return isPrimaryAndSecondaries(now) && now.find((r) => r.goal_state === 'primary')!.name === primary.name;
  }, { timeoutMs: 120_000, intervalMs: 250 });
  const expected = await ids(primary);
  await waitFor(`${standby.name} to have the primary's rows`, async () => JSON.stringify(await ids(standby)) === JSON.stringify(expected), { timeoutMs: 30_000 });
  const onStandby = await slots(standby);
  expect(onStandby.filter((s) => s.slot_name.startsWith('pgha_')), `${standby.name} (standby): ${JSON.stringify(onStandby)}`).toEqual([]);
  const standbySlot = await slotOf(standby);
  const active = await waitFor(`${standby.name} to stream through its slot on ${primary.name}`, async () => {
    const s = (await slots(primary)).filter((x) => x.slot_name.startsWith('pgha_'));
    return s.length === 1 && s[0]!.slot_name === standbySlot && s[0]!.active ? s[0] : undefined;
  }, { timeoutMs: 30_000 });
  expect(active).toMatchObject({ slot_type: 'physical', active: true });
  expect(active.restart_lsn).not.toBeNull();
}

/** `pgha perform switchover`, waiting for it. */
async function switchover(): Promise<void> {
  const r = await runPgha(['perform', 'switchover', '--monitor', monitor.url, '--wait', '120']);
  expect(r.exitCode, r.stderr).toBe(0);
}

beforeAll(async () => {
  monitor = await startMonitor();
  nodes = await addPrimaryAndStandby(monitor);
  const { primary, standby } = await roles();
  await queryNode(primary.port, 'create table t (id int primary key)');
  await queryNode(primary.port, 'insert into t select generate_series(1, 10)');
  await queryNode(primary.port, 'select pg_create_physical_replication_slot($1)', [OPERATOR_SLOT]);
  await expectSlotsSettled(primary, standby);
}, 300_000);

afterAll(async () => {
  await endAllProcesses();
});

describe('replication slots after role changes', () => {
  it('a switchover leaves the old primary, now a standby, with no slot of the group but the operator\'s, and the new primary with one for it', async () => {
    const { primary: old, standby } = await roles();
    await switchover();
    await expectSlotsSettled(standby, old);
    expect((await slots(old)).map((s) => s.slot_name)).toEqual([OPERATOR_SLOT]);
  });

  it('switching back, the other node keeps none as a standby, and the first, primary again, has a fresh slot for it (it had none left), which it streams through', async () => {
    const { primary, standby } = await roles();
    await queryNode(primary.port, 'insert into t select generate_series(11, 20)');
    await switchover();
    await expectSlotsSettled(standby, primary);
  });

  it('a primary put in maintenance (a switchover first) and brought back keeps no slot of the group as a standby', async () => {
    const { primary, standby } = await roles();
    const on = await runPgha(['maintenance', 'enable', '--name', primary.name, '--allow-failover', '--monitor', monitor.url]);
    expect(on.exitCode, on.stderr).toBe(0);
    await waitFor(`${primary.name} in maintenance`, async () => (await rows()).some((r) => r.name === primary.name && r.reported_state === 'maintenance'), { timeoutMs: 60_000, intervalMs: 250 });
    await queryNode(standby.port, 'insert into t select generate_series(21, 30)');
    const off = await runPgha(['maintenance', 'disable', '--name', primary.name, '--monitor', monitor.url]);
    expect(off.exitCode, off.stderr).toBe(0);
    await expectSlotsSettled(standby, primary);
  });

  it('dropping the standby (pgha drop node) leaves no slot for it on the primary, and the operator\'s slot there stays', async () => {
    const { primary, standby } = await roles();
    const standbySlot = await slotOf(standby);
    await queryNode(primary.port, 'select pg_create_physical_replication_slot($1, true)', [OPERATOR_RESERVED_SLOT]);
    expect((await slots(primary)).map((s) => s.slot_name)).toEqual([OPERATOR_RESERVED_SLOT, standbySlot]);
    const r = await runPgha(['drop', 'node', '--name', standby.name, '--monitor', monitor.url, '--wait', '60']);
    expect(r.exitCode, r.stderr).toBe(0);
    const left = await waitFor(`${primary.name} to drop ${standbySlot}`, async () => {
      const now = await slots(primary);
      return now.some((s) => s.slot_name === standbySlot) ? undefined : now;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    expect(left).toEqual([expect.objectContaining({ slot_name: OPERATOR_RESERVED_SLOT, slot_type: 'physical', active: false, wal_status: 'reserved' })]);
    await queryNode(primary.port, 'insert into t select generate_series(31, 40)');
    expect(await ids(primary)).toHaveLength(40);
  });
});
