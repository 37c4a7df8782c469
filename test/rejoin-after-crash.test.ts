/**
 * An old primary whose machine died rejoins as a standby when its keeper runs again (issue 17
 * §5), on real Postgres: without pg_rewind when its WAL ends before the point where the new
 * primary's timeline forked off (nothing on it to undo), and with pg_rewind when it holds WAL
 * past that point (a commit flushed on it that its synchronous standby never received, so no
 * client saw it acknowledged). Either way it ends as a `secondary` streaming on the new
 * timeline, with the new primary's rows and none other.
 */
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStateRow } from '@pgha/shared';
import { addPrimaryAndStandby, startMonitor, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { killNode, logMessages, logOffset, waitGone } from './helpers/crash.js';
import { isPrimaryAndSecondaries, queryNode, showState } from './helpers/formation.js';
import { endAllProcesses, killPid, startPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

let monitor: TestMonitor;
let nodes: [TestNode, TestNode];

const keeperLogFile = (node: TestNode): string => join(monitor.dir, `${node.name}.keeper.log`);
const rows = (): Promise<NodeStateRow[]> => showState(monitor.url);

/** `select id from rejoin order by id` on `node`. */
async function ids(node: TestNode): Promise<number[]> {
  return (await queryNode<{ id: number }>(node.port, 'select id from rejoin order by id')).map((r) => r.id);
}

/** The formation's primary and standby now. */
async function roles(): Promise<{ primary: TestNode; standby: TestNode }> {
  const primaryName = (await rows()).find((r) => r.goal_state === 'primary')!.name;
  const primary = nodes.find((n) => n.name === primaryName)!;
  return { primary, standby: nodes.find((n) => n !== primary)! };
}

/** The timeline a primary writes on. */
async function primaryTimeline(node: TestNode): Promise<number> {
  return (await queryNode<{ tli: number }>(node.port, "select ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int as tli"))[0]!.tli;
}

/**
 * The primary's machine dies (keeper and postmaster SIGKILLed), the standby is promoted and
 * takes rows `firstId`..`firstId + 9`; then the old primary's keeper runs again, and the
 * formation is primary + secondary again. With `unacknowledged`, the old primary dies holding
 * WAL its standby never received: its walsender to the standby is paused (SIGSTOP) and a commit
 * of row `unacknowledged` waits for the standby, flushed on the old primary only. Without, it
 * dies once the standby has replayed all of its WAL.
 *
 * @returns the keeper's log messages from its restart on, and the timelines before and after.
 */
async function crashAndRejoin(firstId: number, unacknowledged?: number): Promise<{ messages: string[]; oldPrimary: TestNode; newPrimary: TestNode; timeline: number }> {
  const { primary, standby } = await roles();
  const timelineBefore = await primaryTimeline(primary);
  let sender: number | undefined;
  let outcome: Promise<string> | undefined;
  let writer: pg.Client | undefined;
  if (unacknowledged !== undefined) {
    [{ pid: sender }] = (await queryNode<{ pid: number }>(primary.port, "select pid from pg_stat_replication where state = 'streaming'")) as [{ pid: number }];
    process.kill(sender, 'SIGSTOP');
    writer = new pg.Client({ host: '127.0.0.1', port: primary.port, user: 'postgres', database: 'postgres' });
    writer.on('error', () => undefined);
    await writer.connect();
    outcome = writer.query("insert into rejoin values ($1, 'never acknowledged')", [unacknowledged]).then(() => 'acknowledged', () => 'failed');
    // Waiting for the synchronous standby: the commit record is flushed on the primary.
    await waitFor('the commit to wait for the standby', async () => (await queryNode(primary.port, "select 1 from pg_stat_activity where wait_event = 'SyncRep'")).length === 1, { timeoutMs: 10_000, intervalMs: 20 });
  } else {
    await waitFor('the standby to have replayed all of the primary\'s WAL', async () => {
      const [p] = await queryNode<{ lsn: string }>(primary.port, 'select pg_current_wal_insert_lsn()::text as lsn');
      const [s] = await queryNode<{ same: boolean }>(standby.port, 'select pg_last_wal_replay_lsn() = $1::pg_lsn as same', [p!.lsn]);
      return s!.same;
    }, { timeoutMs: 30_000, intervalMs: 50 });
  }
  killNode(primary);
  killPid(sender, 'SIGKILL');
  if (outcome) expect(await outcome).toBe('failed');
  await writer?.end().catch(() => undefined);

  await waitFor(`${standby.name} promoted`, async () => {
    const r = (await rows()).find((x) => x.name === standby.name)!;
    return ['wait_primary', 'primary'].includes(r.reported_state) && r.reported_state === r.goal_state;
  }, { timeoutMs: 90_000, intervalMs: 250 });
  const timeline = await primaryTimeline(standby);
  expect(timeline).toBe(timelineBefore + 1);
  await queryNode(standby.port, "insert into rejoin select g, 'after the failover' from generate_series($1::int, $1::int + 9) g", [firstId]);

  await waitGone(primary.keeper.pid);
  const logFrom = logOffset(keeperLogFile(primary));
  primary.keeper = startPgha(['keeper', 'run', '--pgdata', primary.pgdata], { logFile: keeperLogFile(primary) });
  await waitFor('primary + secondary again', async () => isPrimaryAndSecondaries(await rows()), { timeoutMs: 120_000, intervalMs: 250 });
  const expected = await ids(standby);
  await waitFor(`${primary.name} to have the new primary's rows`, async () => JSON.stringify(await ids(primary)) === JSON.stringify(expected), { timeoutMs: 30_000 });
  if (unacknowledged !== undefined) expect(expected).not.toContain(unacknowledged);
  const [receiver] = await queryNode<{ status: string; received_tli: number }>(primary.port, 'select status, received_tli from pg_stat_wal_receiver');
  expect(receiver).toEqual({ status: 'streaming', received_tli: timeline });
  return { messages: logMessages(keeperLogFile(primary), logFrom), oldPrimary: primary, newPrimary: standby, timeline };
}

beforeAll(async () => {
  monitor = await startMonitor();
  nodes = await addPrimaryAndStandby(monitor);
  const { primary } = await roles();
  await queryNode(primary.port, 'create table rejoin (id int primary key, note text)');
  await queryNode(primary.port, "insert into rejoin select g, 'before' from generate_series(1, 10) g");
}, 300_000);

afterAll(async () => {
  await endAllProcesses();
});

describe('an old primary rejoining after its machine died', () => {
  it('starts as a standby without pg_rewind when its WAL ends before the new timeline forked off', async () => {
    const { messages, oldPrimary, timeline } = await crashAndRejoin(100);
    const lsn = '[0-9A-F]+/[0-9A-F]+';
    const checked = messages.find((m) => m.startsWith('no rewind needed: '));
    expect(checked, JSON.stringify(messages.filter((m) => /rewind/.test(m)))).toMatch(
      new RegExp(`^no rewind needed: this node's WAL on timeline ${timeline - 1} ends with a record at ${lsn} \\(then: .+\\), before ${lsn}, where the primary's timeline ${timeline} forked off it \\(checked in \\d+ ms\\)$`),
    );
    expect(messages.filter((m) => /^pg_rewind/.test(m))).toEqual([]);
    // The slot it kept as a primary for the other node went once it ran as a standby (a rewind would have removed it too).
    expect(messages).toContain(`removed the replication slots this node kept as a primary (pgha_node_${(await rows()).find((r) => r.name !== oldPrimary.name)!.node_id}): a standby keeps none`);
    expect(await queryNode(oldPrimary.port, 'select slot_name from pg_replication_slots')).toEqual([]);
  });

  it('rewinds it when it holds WAL past that point, a commit no client saw acknowledged', async () => {
    const { messages, timeline } = await crashAndRejoin(200, 1000);
    const lsn = '[0-9A-F]+/[0-9A-F]+';
    const at = [
      new RegExp(`^pg_rewind needed: its last WAL record starts at ${lsn}, at or past ${lsn}, where the primary's timeline ${timeline} forked off timeline ${timeline - 1}$`),
      /^pg_rewind from the new primary$/,
      /^pg_rewind done in /,
    ].map((p) => messages.findIndex((m) => p.test(m)));
    expect(at.every((i) => i >= 0), JSON.stringify(messages.filter((m) => /rewind/.test(m)))).toBe(true);
    expect([...at].sort((x, y) => x - y)).toEqual(at);
    expect(messages.filter((m) => /no rewind needed|pg_rewind failed|pg_basebackup/.test(m))).toEqual([]);
  });
});
