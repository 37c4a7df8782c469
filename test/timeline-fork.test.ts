/**
 * A standby past the new timeline's fork point, built on purpose on real Postgres, and the
 * keeper rewinding it (issue 13, "States that never end").
 *
 * The formation: `a` (first, primary), `b` (candidate priority 50, synchronous) and `c`
 * (asynchronous: replication quorum false, candidate priority 0), so the primary commits with
 * `ANY 1 (<the other one of a, b>)`. The case ({@link divergeAsyncStandby}): `c`'s keeper is
 * down; the primary's walsender for the synchronous standby is paused (SIGSTOP; it holds that
 * standby's slot, so the standby cannot reconnect either); an insert on the primary waits for
 * the synchronous standby while its WAL streams to `c`; then the primary's machine dies. The
 * monitor elects the synchronous standby (`c`'s keeper is silent, and `c` is no synchronous
 * standby), which promotes at an LSN below `c`'s: `c` holds WAL past the fork of the new
 * timeline, WAL that no client saw committed. When `c`'s keeper comes back and re-points it at
 * the new primary, its WAL receiver fails forever ("requested starting point … is not in this
 * server's history"): without the keeper's timeline check, `c` stays in `join_secondary` for
 * good. With it, the keeper proves the divergence from the new primary's timeline history,
 * reports it, rewinds `c` (or, when pg_rewind fails, takes a fresh base backup), and `c` ends
 * as a streaming `secondary` with the new primary's data.
 */
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStateRow } from '@pgha/shared';
import { addNode, startMonitor, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { killKeeper, killNode, logMessages, logOffset, waitForLogMessage, waitGone } from './helpers/crash.js';
import { isPrimaryAndSecondaries, queryNode, showState } from './helpers/formation.js';
import { showEvents } from './helpers/history.js';
import { endAllProcesses, killPid, postmasterPid, runPgha, startPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * From the restart of the diverged standby's keeper to `secondary` on the new timeline: the
 * WAL receiver failing for `DIVERGENCE_CHECK_AFTER_MS` (2 s), a report, pg_rewind (or a base
 * backup), a start and the monitor's catch-up rule take about 10 s here; the rest is room for
 * a busy 2-core machine.
 */
const REPAIR_BOUND_MS = 60_000;

let monitor: TestMonitor;
let a: TestNode;
let b: TestNode;
let c: TestNode;

const row = async (name: string): Promise<NodeStateRow> => (await showState(monitor.url)).find((r) => r.name === name)!;
const keeperLogFile = (node: TestNode): string => join(monitor.dir, `${node.name}.keeper.log`);
const settled = (): Promise<true> => waitFor('one primary and two secondaries', async () => isPrimaryAndSecondaries(await showState(monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });

/** The replay LSN of `node`, as text. */
async function replayLsn(node: TestNode): Promise<string> {
  return (await queryNode<{ lsn: string }>(node.port, 'select pg_last_wal_replay_lsn()::text as lsn'))[0]!.lsn;
}

/** `select id from fork order by id` on `node`. */
async function ids(node: TestNode): Promise<number[]> {
  return (await queryNode<{ id: number }>(node.port, 'select id from fork order by id')).map((r) => r.id);
}

/** The WAL receiver of `node`: status and timeline, or undefined when none runs. */
async function walReceiver(node: TestNode): Promise<{ status: string; received_tli: number } | undefined> {
  return (await queryNode<{ status: string; received_tli: number }>(node.port, 'select status, received_tli from pg_stat_wal_receiver'))[0];
}

/** The timeline a primary writes on. */
async function primaryTimeline(node: TestNode): Promise<number> {
  return (await queryNode<{ tli: number }>(node.port, "select ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int as tli"))[0]!.tli;
}

/**
 * Builds the case (see the file's comment) with primary `old`, synchronous standby `sync` and
 * asynchronous standby `c`, and waits until the monitor has promoted `sync`, onto `timeline`.
 * Row `id` is the commit no client saw acknowledged: on `c`, not on `sync`.
 */
async function divergeAsyncStandby(old: TestNode, sync: TestNode, id: number, timeline: number): Promise<void> {
  const syncId = (await row(sync.name)).node_id;
  const [ssn] = await queryNode<{ s: string }>(old.port, "select current_setting('synchronous_standby_names') as s");
  expect(ssn!.s).toBe(`ANY 1 (pgha_node_${syncId})`);

  // c's keeper goes down (its Postgres keeps streaming) until the monitor counts it silent.
  killKeeper(c);
  await waitFor("c's keeper silent for the monitor", async () => ((await row('c')).last_report_ago_ms ?? 0) > 3_000, { timeoutMs: 30_000, intervalMs: 250 });

  // The primary's walsender for `sync` stops sending; it keeps the slot, so `sync` cannot reconnect.
  const [sender] = await queryNode<{ pid: number }>(old.port, 'select pid from pg_stat_replication where application_name = $1', [`pgha_node_${syncId}`]);
  process.kill(sender!.pid, 'SIGSTOP');
  const writer = new pg.Client({ host: '127.0.0.1', port: old.port, user: 'postgres', database: 'postgres' });
  writer.on('error', () => undefined);
  await writer.connect();
  // Waits for `sync`, which never confirms: never acknowledged to this client.
  const outcome = writer.query("insert into fork values ($1, 'never acknowledged')", [id]).then(() => 'acknowledged', () => 'failed');
  await waitFor('the waiting commit replayed on c', async () => (await ids(c)).includes(id), { timeoutMs: 10_000, intervalMs: 50 });

  // The primary's machine dies: keeper, postmaster, and the paused walsender.
  killNode(old);
  killPid(sender!.pid, 'SIGKILL');
  expect(await outcome).toBe('failed');
  await writer.end().catch(() => undefined);
  // c now holds WAL that `sync` never received.
  expect(await ids(sync)).not.toContain(id);
  const [ahead] = await queryNode<{ ahead: boolean }>(c.port, 'select pg_last_wal_replay_lsn() > $1::pg_lsn as ahead', [await replayLsn(sync)]);
  expect(ahead!.ahead).toBe(true);

  await waitFor(`${sync.name} promoted`, async () => {
    const r = await row(sync.name);
    return ['wait_primary', 'primary'].includes(r.reported_state) && r.reported_state === r.goal_state;
  }, { timeoutMs: 90_000, intervalMs: 250 });
  expect(await primaryTimeline(sync)).toBe(timeline);
}

/**
 * With c diverged from `primary`'s `timeline` (it replays `oldTimeline`): writes rows
 * `firstId`..`firstId + 9` on `primary`, restarts c's keeper, and checks what a user sees.
 * Within {@link REPAIR_BOUND_MS}, c reports the divergence (a `keeper-problem` event) and then
 * is a `secondary` streaming on `timeline`, the problem cleared (`keeper-problem-cleared`),
 * with the primary's rows and none other (not the unacknowledged one), and a row written now;
 * its keeper logged the repair, done by `how`, in its fixed phrases and in order.
 */
async function expectRepaired(primary: TestNode, oldTimeline: number, timeline: number, firstId: number, how: 'pg_rewind' | 'a base backup'): Promise<void> {
  await queryNode(primary.port, "insert into fork select g, 'after the promotion' from generate_series($1::int, $1::int + 9) g", [firstId]);
  const expected = await ids(primary);

  await waitGone(c.keeper.pid);
  const logFrom = logOffset(keeperLogFile(c));
  const lastEvent = (await showEvents(monitor.url, 1)).at(-1)?.event_id ?? 0;
  const restartedAt = performance.now();
  c.keeper = startPgha(['keeper', 'run', '--pgdata', c.pgdata], { logFile: keeperLogFile(c) });
  // The problem as `pgha show events` has it (`pgha show state` shows it only while it lasts).
  const reported = await waitFor('c to report its divergence', async () => (await showEvents(monitor.url, 50)).find((e) => e.event_id > lastEvent && e.node_name === 'c' && e.rule === 'keeper-problem'), { timeoutMs: REPAIR_BOUND_MS, intervalMs: 200 });
  const problem = reported.reason.replace(/^node \d+ "c" reports a problem: /, '');
  expect(problem).toMatch(new RegExp(`^diverged from the primary's timeline ${timeline} at [0-9A-F]+/[0-9A-F]+: rewinding$`));

  await waitFor(`c secondary, streaming on timeline ${timeline}`, async () => {
    const r = await row('c');
    const receiver = await walReceiver(c).catch(() => undefined);
    return r.reported_state === 'secondary' && r.goal_state === 'secondary' && r.problem === null && receiver?.status === 'streaming' && receiver.received_tli === timeline;
  }, { timeoutMs: REPAIR_BOUND_MS - (performance.now() - restartedAt), intervalMs: 250 });
  console.log(`[timeline fork] keeper restart → c secondary on timeline ${timeline} (${how}): ${(performance.now() - restartedAt).toFixed(0)} ms; problem: "${problem}"`);
  const cleared = (await showEvents(monitor.url, 200)).find((e) => e.event_id > reported.event_id && e.node_name === 'c' && e.rule === 'keeper-problem-cleared');
  expect(cleared?.reason).toBe(`node ${reported.node_id} "c" reports no problem any more (it reported: ${problem})`);

  await waitFor("c to have the primary's rows", async () => JSON.stringify(await ids(c)) === JSON.stringify(expected), { timeoutMs: 30_000 });
  await queryNode(primary.port, "insert into fork values ($1, 'after the repair')", [firstId + 10]);
  await waitFor('a row written now on c', async () => (await ids(c)).includes(firstId + 10), { timeoutMs: 30_000 });

  const lsn = '[0-9A-F]+/[0-9A-F]+';
  const phrases = [
    new RegExp(`^timeline divergence: this node \\(timeline ${oldTimeline}, replay LSN ${lsn}\\) cannot follow the primary \\(node \\d+ "${primary.name}" .*: its timeline ${timeline} forked off timeline ${oldTimeline} at ${lsn}, before this node's replay LSN`),
    new RegExp(`^rewinding the diverged standby from the primary's timeline ${timeline}: stopping Postgres$`),
    /^pg_rewind from the new primary$/,
    ...(how === 'a base backup' ? [/^pg_rewind failed, falling back to a fresh base backup$/, /^pg_basebackup from the primary$/, /^base backup complete$/] : []),
    new RegExp(`^diverged standby repaired with ${how}: following the primary again$`),
    new RegExp(`^timeline divergence repaired: the WAL receiver streams on timeline ${timeline}$`),
  ];
  const messages = logMessages(keeperLogFile(c), logFrom);
  const at = phrases.map((p) => messages.findIndex((m) => p.test(m)));
  expect(at.every((i) => i >= 0), JSON.stringify(messages.filter((m) => /timeline|rewind|diverged|base backup/.test(m)), null, 1)).toBe(true);
  expect([...at].sort((x, y) => x - y)).toEqual(at);
  if (how === 'pg_rewind') expect(messages.filter((m) => /pg_rewind failed|pg_basebackup/.test(m))).toEqual([]);
}

beforeAll(async () => {
  monitor = await startMonitor();
  a = await addNode(monitor, 'a', { candidatePriority: 50 });
  b = await addNode(monitor, 'b', { candidatePriority: 50 });
  c = await addNode(monitor, 'c', { candidatePriority: 0, extraArgs: ['--replication-quorum', 'false'] });
  await settled();
}, 300_000);

afterAll(async () => {
  await endAllProcesses();
});

describe('a standby that received WAL past the fork point of the new timeline', () => {
  it("is rewound by its keeper and ends as a streaming secondary with the new primary's data", async () => {
    expect((await row('a')).goal_state).toBe('primary');
    await queryNode(a.port, 'create table fork (id int primary key, note text)');
    await queryNode(a.port, "insert into fork select g, 'before' from generate_series(1, 10) g");
    await waitFor('the first rows on b and c', async () => (await ids(b)).length === 10 && (await ids(c)).length === 10);

    await divergeAsyncStandby(a, b, 1000, 2);
    await expectRepaired(b, 1, 2, 11, 'pg_rewind');
    // b, whose WAL receiver lost a, was never found diverged.
    expect(logMessages(keeperLogFile(b)).filter((m) => /timeline divergence|rewinding the diverged/.test(m))).toEqual([]);
  });

  it('does not rewind a standby that stops streaming for a while, whether its primary answers or not', async () => {
    const pidBefore = postmasterPid(c.pgdata);
    const logFrom = logOffset(keeperLogFile(c));
    const bPostmaster = postmasterPid(b.pgdata)!;
    // c's WAL receiver points at a closed port (postgresql.auto.conf overrides pgha.conf), and
    // b's postmaster stops answering new connections (its running backends go on).
    await queryNode(c.port, "alter system set primary_conninfo = 'host=127.0.0.1 port=1 connect_timeout=1'");
    await queryNode(c.port, 'select pg_reload_conf()');
    process.kill(bPostmaster, 'SIGSTOP');
    try {
      await waitForLogMessage(keeperLogFile(c), /^timeline check: cannot read the timeline history of the primary \(node \d+ "b" .*\): .*; no decision, the keeper looks again in \d+ ms$/, logFrom, { timeoutMs: 30_000, intervalMs: 200 });
    } finally {
      process.kill(bPostmaster, 'SIGCONT');
    }
    // The next comparison reads b's history: c is on it, only behind.
    await waitForLogMessage(keeperLogFile(c), /^timeline check: the WAL receiver does not stream, but this node \(timeline 2, replay LSN [0-9A-F]+\/[0-9A-F]+\) is on the history of the primary \(node \d+ "b" .*, timeline 2: not diverged, no rewind$/, logFrom, { timeoutMs: 30_000, intervalMs: 200 });
    await queryNode(c.port, 'alter system reset primary_conninfo');
    await queryNode(c.port, 'select pg_reload_conf()');
    await waitFor('c streaming again', async () => (await walReceiver(c))?.status === 'streaming', { timeoutMs: 30_000, intervalMs: 200 });
    await queryNode(b.port, "insert into fork values (22, 'after the cut')");
    await waitFor('the new row on c', async () => (await ids(c)).includes(22), { timeoutMs: 30_000 });
    expect(postmasterPid(c.pgdata)).toBe(pidBefore);
    expect(logMessages(keeperLogFile(c), logFrom).filter((m) => /timeline divergence|rewinding|pg_rewind/.test(m))).toEqual([]);
    await waitFor('c secondary again', async () => {
      const r = await row('c');
      return r.reported_state === 'secondary' && r.goal_state === 'secondary' && r.problem === null;
    }, { timeoutMs: 60_000, intervalMs: 250 });
    const r = await runPgha(['show', 'state'], { PGHA_MONITOR: monitor.url });
    expect(r.stdout).not.toMatch(/Problem on c/);
  });

  it('takes a fresh base backup when pg_rewind fails', async () => {
    // a comes back (rewound as the old primary) and becomes b's synchronous standby.
    a.keeper = startPgha(['keeper', 'run', '--pgdata', a.pgdata], { logFile: keeperLogFile(a) });
    await settled();
    expect((await row('b')).goal_state).toBe('primary');

    await divergeAsyncStandby(b, a, 2000, 3);
    // pg_rewind reads the primary's files with pg_read_binary_file: without it, it fails.
    await queryNode(a.port, 'revoke execute on function pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) from pgha_replication');
    await expectRepaired(a, 2, 3, 31, 'a base backup');
  });
});
