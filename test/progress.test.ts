/**
 * Progress of long operations on a real two-node formation:
 * - a standby created over ~200 MB of data (pg_basebackup slowed to 32 MB/s with the test-only
 *   `PGHA_TEST_BASEBACKUP_MAX_RATE`): `pgha keeper create` prints several increasing
 *   percentages, and the monitor (`pgha show state`) shows the backup's progress while it runs;
 * - a standby that comes back ~200 MB of WAL behind: while it is `catchingup` the monitor shows
 *   its lag in bytes, shrinking, and its keeper logs it;
 * - `pgha perform switchover` prints each step as it happens, in order, and `--json` lists them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_FORMATION_SETTINGS, DEFAULT_KEEPER_HTTP_PORT, type NodeStateRow } from '@pgha/shared';
import { addNode, startMonitor, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { runPghaOk } from './helpers/cli.js';
import { logOffset, logRecords, waitGone } from './helpers/crash.js';
import { isPrimaryAndSecondaries, queryNode } from './helpers/formation.js';
import { monitorFetch } from './helpers/monitor-access.js';
import { endAllProcesses, startPgha, trackPgdata } from './helpers/processes.js';
import { delay, waitFor } from './helpers/wait-for.js';

let monitor: TestMonitor;
let node1: TestNode;
let node2: TestNode;

/** The formation's rows, straight from the API (cheap enough to poll every 100 ms). */
async function rows(): Promise<NodeStateRow[]> {
  const res = await monitorFetch(`${monitor.url}/v1/formations/default/state`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`state: HTTP ${res.status}`);
  return (await res.json()) as NodeStateRow[];
}
const settled = () => waitFor('one primary and one secondary', async () => isPrimaryAndSecondaries(await rows()), { timeoutMs: 120_000, intervalMs: 200 });

/** Adds ~`mb` MB of rows to table `big` on the primary. */
async function addData(mb: number): Promise<void> {
  // ~530 bytes a row on disk: 2,000 rows a MB.
  await queryNode(node1, `insert into big select g, repeat(md5(g::text), 16) from generate_series(1, ${mb * 2000}) g`);
}

beforeAll(async () => {
  monitor = await startMonitor();
  node1 = await addNode(monitor, 'node1');
  await queryNode(node1, 'create table big (id bigint, pad text)');
  const t = performance.now();
  await addData(200);
  await queryNode(node1, 'checkpoint');
  const [row] = await queryNode<{ size: string }>(node1, "select pg_size_pretty(pg_database_size('postgres')) as size");
  console.log(`[progress] database of ${row?.size} made in ${((performance.now() - t) / 1000).toFixed(1)} s`);
}, 240_000);

afterAll(async () => {
  await endAllProcesses();
});

describe('progress of long operations', () => {
  it('base backup: keeper create prints increasing percentages, and the monitor shows the progress while it runs', async () => {
    const pgdata = join(monitor.dir, 'node2', 'pgdata');
    trackPgdata(pgdata);
    const port = await getPort({ host: '127.0.0.1' });
    const createLog = join(monitor.dir, 'node2.create.log');
    const startedAt = performance.now();
    const create = startPgha(['keeper', 'create', 'postgres', '--monitor', monitor.url, '--pgdata', pgdata, '--pg-port', String(port), '--name', 'node2', '--hostname', '127.0.0.1', '--auth', 'trust'], {
      logFile: createLog,
      env: { PGHA_TEST_BASEBACKUP_MAX_RATE: '32M' },
    });
    // What the monitor shows while the backup runs.
    const seen: { atMs: number; percent: number | null; doneBytes: number; transition: string | null }[] = [];
    let table = '';
    let done = false;
    const exited = create.then((r) => {
      done = true;
      return r;
    });
    while (!done) {
      const p = (await rows().catch(() => [])).find((r) => r.name === 'node2')?.transition_progress;
      if (p) {
        seen.push({ atMs: performance.now() - startedAt, percent: p.percent, doneBytes: p.done_bytes, transition: p.transition });
        if (!table && p.percent !== null && p.percent > 0 && p.percent < 90) table = await runPghaOk(['show', 'state', '--monitor', monitor.url]);
      }
      await Promise.race([exited, delay(100)]);
    }
    const r = await exited;
    expect(r.exitCode, readFileSync(createLog, 'utf8').slice(-2000)).toBe(0);
    const backupMs = performance.now() - startedAt;

    const printed = logRecords(createLog).map((l) => /^base backup: (\d+)% \(([\d.]+ [kMG]?B) of ([\d.]+ [kMG]?B)\)$/.exec(l.msg)).filter((m) => m !== null);
    const percents = printed.map((m) => Number(m[1]));
    console.log(`[progress] keeper create took ${(backupMs / 1000).toFixed(1)} s and printed:\n${printed.map((m) => `  base backup: ${m[1]}% (${m[2]} of ${m[3]})`).join('\n')}`);
    expect(percents.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < percents.length; i++) expect(percents[i]).toBeGreaterThan(percents[i - 1]!);
    expect(percents.at(-1)).toBeGreaterThanOrEqual(90);
    expect(logRecords(createLog).some((l) => l.msg === 'base backup complete')).toBe(true);

    const running = seen.filter((s) => s.percent !== null && s.percent > 0 && s.percent < 100);
    const distinct = [...new Set(running.map((s) => s.percent))];
    console.log(`[progress] the monitor showed the backup at ${distinct.map((p) => `${p}%`).join(', ')} (${seen.length} polls with progress); pgha show state printed:\n${table}`);
    expect(distinct.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < running.length; i++) expect(running[i]!.doneBytes).toBeGreaterThanOrEqual(running[i - 1]!.doneBytes);
    // The backup runs with goal catchingup; the keeper reports wait_standby first, unless the
    // primary reached wait_primary before that report (rule standby-start-catchingup needs only the primary).
    expect(running[0]!.transition).toMatch(/^(wait_standby|init)->catchingup$/);
    expect(table).toMatch(/^Progress on node2: base backup \d+% \([\d.]+ MB of [\d.]+ MB\)$/m);
    // Once the backup is over, no progress is left on the monitor.
    expect((await rows()).find((x) => x.name === 'node2')!.transition_progress).toBeNull();

    // Its keeper's HTTP server is at the default port (keeper create without --http-listen).
    node2 = { name: 'node2', host: '127.0.0.1', pgdata, port, httpUrl: `https://127.0.0.1:${DEFAULT_KEEPER_HTTP_PORT}`, keeper: startPgha(['keeper', 'run', '--pgdata', pgdata], { logFile: join(monitor.dir, 'node2.keeper.log') }) };
    await settled();
  });

  it('catch-up: a standby ~200 MB behind shows its lag shrinking while catchingup, and its keeper logs it', async () => {
    node2.keeper.kill('SIGTERM');
    await waitGone(node2.keeper.pid, 30_000);
    await waitFor('the primary to stop waiting for the stopped standby', async () => (await rows()).find((r) => r.name === 'node1')?.goal_state === 'wait_primary' ? true : undefined, { timeoutMs: 60_000 });
    await addData(200);
    const keeperLog = join(monitor.dir, 'node2.keeper.log');
    const from = logOffset(keeperLog);
    const startedAt = performance.now();
    node2.keeper = startPgha(['keeper', 'run', '--pgdata', node2.pgdata], { logFile: keeperLog });
    const lags: { atMs: number; lagBytes: number }[] = [];
    await waitFor('node2 back in secondary', async () => {
      const n2 = (await rows()).find((r) => r.name === 'node2')!;
      if (n2.goal_state === 'catchingup' && n2.lag_bytes !== null && lags.at(-1)?.lagBytes !== n2.lag_bytes) lags.push({ atMs: Math.round(performance.now() - startedAt), lagBytes: n2.lag_bytes });
      return n2.reported_state === 'secondary' && n2.goal_state === 'secondary';
    }, { timeoutMs: 120_000, intervalMs: 100 });
    const logged = logRecords(keeperLog, from).filter((l) => /^catching up: [\d.]+ [kMG]?B \(\d+ bytes\) behind the primary$/.test(l.msg));
    console.log(`[progress] while catchingup the monitor showed node2's lag (ms since its keeper started: bytes): ${lags.map((l) => `${l.atMs}: ${l.lagBytes}`).join(', ')}; its keeper logged:\n${logged.map((l) => `  ${l.msg}`).join('\n')}`);
    // The first sample may still use the primary's LSN from before its last report: the peak, then down.
    const peak = Math.max(...lags.map((l) => l.lagBytes));
    expect(lags.length).toBeGreaterThanOrEqual(3);
    expect(peak).toBeGreaterThan(DEFAULT_FORMATION_SETTINGS.catchupLagBytes);
    // After the peak the monitor shows the standby part of the way: the lag well below the peak (the primary's own
    // WAL, a few bytes, can still raise it between two samples). How far below depends on how fast the standby
    // replays between two reports, so the bound is loose.
    const afterPeak = lags.slice(lags.findIndex((l) => l.lagBytes === peak) + 1).map((l) => l.lagBytes);
    expect(Math.min(...afterPeak)).toBeLessThan(peak * 0.9);
    expect(logged.length).toBeGreaterThanOrEqual(1);
    expect(logged[0]!.lagBytes).toBeGreaterThan(0);
  });

  it('switchover: perform switchover prints each step in order, then the total; --json adds the steps', async () => {
    await settled();
    const out = await runPghaOk(['perform', 'switchover', '--monitor', monitor.url]);
    console.log(`[progress] pgha perform switchover printed:\n${out}`);
    const lines = out.split('\n');
    const stepRe = /^\s*(\d+) ms  (node\d) \(node \d+\)\s+(goal|reported): (\w+) → (\w+)$/;
    const steps = lines.map((l) => stepRe.exec(l)).filter((m) => m !== null).map((m) => ({ ms: Number(m[1]), node: m[2], what: `${m[2]} ${m[3]} ${m[4]}→${m[5]}` }));
    const doneAt = lines.findIndex((l) => /^switchover done: node2 \(node \d+\) is the primary and takes writes in \d+ (ms|s)$/.test(l));
    expect(doneAt, out).toBeGreaterThan(0);
    expect(lines.slice(0, doneAt).every((l) => stepRe.test(l)), out).toBe(true);
    for (let i = 1; i < steps.length; i++) expect(steps[i]!.ms).toBeGreaterThanOrEqual(steps[i - 1]!.ms);
    const order = (...whats: string[]) => whats.map((w) => steps.findIndex((s) => s.what === w));
    const goals = order('node1 goal primary→draining', 'node2 goal secondary→prepare_promotion', 'node2 goal prepare_promotion→stop_replication', 'node2 goal stop_replication→wait_primary');
    expect(goals.every((i) => i >= 0), out).toBe(true);
    const [draining, preparing, stopping, writable] = goals as [number, number, number, number];
    expect(Math.max(draining, preparing) < stopping && stopping < writable, out).toBe(true);
    const reported = order('node1 reported primary→draining', 'node2 reported secondary→prepare_promotion');
    expect(reported.every((i) => i > goals[0]!), out).toBe(true);
    expect(steps.some((s) => s.what === 'node2 reported stop_replication→wait_primary' || s.what === 'node2 reported prepare_promotion→wait_primary'), out).toBe(true);

    await settled();
    const json = JSON.parse(await runPghaOk(['perform', 'switchover', '--json', '--monitor', monitor.url])) as { formation: string; assignments: unknown[]; elapsed_ms: number; state: NodeStateRow[]; steps: { elapsed_ms: number; name: string; kind: string; from: string; to: string; reason?: string }[] };
    expect(Object.keys(json)).toEqual(expect.arrayContaining(['formation', 'assignments', 'elapsed_ms', 'state', 'steps']));
    expect(json.steps.find((s) => s.kind === 'goal' && s.name === 'node2' && s.to === 'draining')?.reason).toMatch(/switchover/);
    expect(json.steps.some((s) => s.kind === 'goal' && s.name === 'node1' && s.to === 'prepare_promotion')).toBe(true);
    await settled();
  });
});
