/**
 * `npm run bench:paths`: after the primary's machine dies, how long until a client writes
 * again, by the path it takes to the primary: straight to the nodes (the formation's
 * multi-host URI, read-write), through HAProxy (`pgha show haproxy`), or through the virtual
 * IP of docs/hooks.md's recipe (docs/recipes/vip-on-role-change.sh as both keepers'
 * role-change hook).
 *
 * One formation on a simulated network (test/helpers/netns.ts): the monitor, two nodes and a
 * client each in a network namespace on one bridge, every node on Postgres port 5432. HAProxy
 * runs in the client's namespace. Three writers in the client's namespace, one per path,
 * insert at once (one insert every ~20 ms each, 500 ms connect and 1 s query timeouts), so
 * each run measures the three paths on the same failover. A run: the primary's keeper and
 * postmaster are SIGKILLed and its link goes down (its machine died: nothing answers at its
 * addresses, the VIP included); per path, the time from then to the first insert acknowledged
 * on the new primary's timeline; then the machine boots again (link up without the VIP, keeper
 * restarted) and rejoins, and the next run starts from primary + secondary. At the end, the
 * acknowledged writes missing on the final primary, per path. Writes `client-paths.md` and
 * `.json` to --out.
 *
 * Options: --runs N (5), --out DIR (bench/results), --keep (keep the logs). Needs root,
 * `ip netns`, HAProxy and iputils' arping (scripts/ensure-test-tools.sh).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from '@commander-js/extra-typings';
import { intArg } from './lib/args.js';
import { HAPROXY_BIN } from './lib/haproxy.js';
import { idsOn, Probe, type Host } from './lib/probe.js';
import { median, medianRange } from './lib/stats.js';
import { keeperLogOf, logOffset, logRecords, powerOffNode, powerOnNode, waitForLogMessage } from '../test/helpers/crash.js';
import { isPrimaryAndSecondaries, showState } from '../test/helpers/formation.js';
import { NamespacedWriter } from '../test/helpers/history.js';
import { createNetwork, type SimNetwork } from '../test/helpers/netns.js';
import { endAllProcesses, runPgha, startTracked } from '../test/helpers/processes.js';
import { startVipFormation, vipHolders, type VipFormation } from '../test/helpers/vip.js';
import { waitFor } from '../test/helpers/wait-for.js';

/** The paths a client can take to the primary. */
export const PATHS = ['direct', 'haproxy', 'vip'] as const;
export type ClientPath = (typeof PATHS)[number];

const PATH_TITLES: Record<ClientPath, string> = {
  direct: 'straight to the nodes (multi-host URI, read-write)',
  haproxy: 'through HAProxy (`pgha show haproxy`)',
  vip: 'through the virtual IP (`docs/recipes/vip-on-role-change.sh`)',
};

/** One failover, measured. Times in ms from the kill. */
export interface PathsRun {
  run: number;
  killed: string;
  promoted: string;
  /** The new primary's keeper logged `wait_primary`. */
  promotedMs: number;
  /** The new primary's hook run: how long it took, and when it ended. */
  hookMs: number;
  hookDoneMs: number;
  /** First insert acknowledged on the new primary's timeline, per path. */
  writesBackMs: Record<ClientPath, number>;
}

/** What the benchmark measured. */
export interface PathsReport {
  date: string;
  commit: string;
  machine: string;
  runs: PathsRun[];
  /** Acknowledged writes missing on the final primary, per path (summed over the runs). */
  lost: Record<ClientPath, number>;
  acknowledged: Record<ClientPath, number>;
  /** The machine's 1-minute load average when the benchmark started and ended, and its cores: other work slows every path alike. */
  load: { start: number; end: number; cpus: number };
}

const TABLE = 'bench_paths';

/** The commit the benchmark ran at (`+` when the tree has changes), or `?`. */
function commitOf(): string {
  try {
    const hash = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
    return `${hash}${dirty ? '+' : ''}`;
  } catch {
    return '?';
  }
}

/** Starts HAProxy in the client's namespace, fed with `pgha show haproxy`; returns its write port there. */
async function startHaproxy(f: VipFormation): Promise<Host> {
  const writePort = 5000;
  const shown = await runPgha(['show', 'haproxy', '--bind', '127.0.0.1', '--write-port', String(writePort), '--read-port', String(writePort + 1)], { PGHA_MONITOR: f.monitor.url });
  if (shown.exitCode !== 0) throw new Error(`pgha show haproxy failed: ${shown.stderr}`);
  const config = join(f.monitor.dir, 'haproxy.cfg');
  writeFileSync(config, `${shown.stdout}\n`);
  startTracked(HAPROXY_BIN, ['-f', config, '-db'], { netns: f.net.netns('client'), logFile: join(f.monitor.dir, 'haproxy.log') });
  return { host: '127.0.0.1', port: writePort };
}

/** The highest timeline `w` has acknowledged a write on. */
const lastTimeline = (w: NamespacedWriter): number => Math.max(0, ...w.acks.map((a) => a.timeline));

/** Runs the benchmark: `runs` failovers of one formation. */
export async function pathsBench(runs: number, log: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<PathsReport> {
  let net: SimNetwork | undefined;
  const writers = new Map<ClientPath, NamespacedWriter>();
  const results: PathsRun[] = [];
  const loadAtStart = loadavg()[0]!;
  try {
    net = await createNetwork(['monitor', 'node1', 'node2', 'client']);
    log(`setting up pgha on ${net.cidr} (namespaces ${net.id}-*)`);
    const f = await startVipFormation(net, ['node1', 'node2']);
    await Probe.createTable(f.hosts, TABLE);
    const hosts: Record<ClientPath, readonly Host[]> = { direct: f.hosts, haproxy: [await startHaproxy(f)], vip: [f.vipHost] };
    for (const [i, path] of PATHS.entries()) {
      const w = new NamespacedWriter(path, net.netns('client'), { hosts: hosts[path], table: TABLE, firstId: (i + 1) * 100_000_000, intervalMs: 20, queryTimeoutMs: 1_000 }, join(f.monitor.dir, `writer-${path}.log`));
      writers.set(path, w);
      await w.start();
    }
    for (let run = 1; run <= runs; run++) {
      const rows = await waitFor('one primary and one secondary', async () => {
        const r = await showState(f.monitor.url);
        return isPrimaryAndSecondaries(r) ? r : undefined;
      }, { timeoutMs: 120_000, intervalMs: 250 });
      const primary = f.nodes.find((n) => n.name === rows.find((r) => r.goal_state === 'primary')!.name)!;
      const standby = f.nodes.find((n) => n !== primary)!;
      await waitFor(`the VIP on ${primary.name} alone`, async () => (await vipHolders(f)).join() === primary.name, { timeoutMs: 60_000, intervalMs: 100 });
      // Every path writes to the primary (HAProxy's checks and the VIP have followed the last failover).
      const timeline = Math.max(...[...writers.values()].map(lastTimeline));
      await waitFor('every path writing to the primary', () => [...writers.values()].every((w) => w.acks.filter((a) => a.timeline === timeline).length >= 20), { timeoutMs: 60_000, intervalMs: 50 });

      const standbyLog = keeperLogOf(f, standby);
      const from = logOffset(standbyLog);
      const killedAtMs = performance.now();
      const killedAtWallMs = Date.now();
      await powerOffNode(f, primary);
      const writesBackMs = {} as Record<ClientPath, number>;
      for (const [path, w] of writers) {
        const first = await waitFor(`a write ${path} on the new primary`, () => w.acks.find((a) => a.atMs > killedAtMs && a.timeline > timeline), { timeoutMs: 120_000, intervalMs: 10 });
        writesBackMs[path] = first.atMs - killedAtMs;
      }
      await waitForLogMessage(standbyLog, /^role-change hook replica → primary exited 0 after/, from, { timeoutMs: 30_000 });
      const records = logRecords(standbyLog, from);
      const promoted = records.find((r) => r.msg === 'Transition complete: current state is now "wait_primary"');
      const hook = records.find((r) => /^role-change hook replica → primary exited 0/.test(r.msg))!;
      const result: PathsRun = {
        run,
        killed: primary.name,
        promoted: standby.name,
        promotedMs: (promoted?.time ?? Number.NaN) - killedAtWallMs,
        hookMs: hook['durationMs'] as number,
        hookDoneMs: hook.time - killedAtWallMs,
        writesBackMs,
      };
      results.push(result);
      log(`run ${run}: ${primary.name} died; ${standby.name} in wait_primary at +${result.promotedMs} ms, its VIP hook took ${result.hookMs} ms; writes back: ${PATHS.map((p) => `${p} ${writesBackMs[p].toFixed(0)} ms`).join(', ')}`);
      await powerOnNode(f, primary);
    }
    await waitFor('one primary and one secondary at the end', async () => isPrimaryAndSecondaries(await showState(f.monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });
    await Promise.all([...writers.values()].map((w) => w.stop()));
    const final = (await showState(f.monitor.url)).find((r) => r.goal_state === 'primary')!;
    const present = await idsOn({ host: final.host, port: final.port }, TABLE);
    const lost = {} as Record<ClientPath, number>;
    const acknowledged = {} as Record<ClientPath, number>;
    for (const [path, w] of writers) {
      lost[path] = w.acks.filter((a) => !present.has(a.id)).length;
      acknowledged[path] = w.acks.length;
    }
    return { date: new Date().toISOString(), commit: commitOf(), machine: `${process.platform} ${process.arch}, node ${process.version}`, runs: results, lost, acknowledged, load: { start: loadAtStart, end: loadavg()[0]!, cpus: cpus().length } };
  } finally {
    await Promise.allSettled([...writers.values()].map((w) => w.stop()));
    await endAllProcesses();
    await net?.destroy();
  }
}

/** The report as the Markdown of `client-paths.md`. */
export function renderPathsMarkdown(r: PathsReport, command: string): string {
  const of = (pick: (x: PathsRun) => number) => medianRange(r.runs.map(pick));
  const ratio = (path: ClientPath) => (median(r.runs.map((x) => x.writesBackMs[path])) / median(r.runs.map((x) => x.writesBackMs.direct))).toFixed(2);
  return [
    '# Client paths after the primary node dies (issue 16 §7)',
    '',
    `Measured at ${r.commit}, ${r.machine}, ${r.date.slice(0, 10)}, with \`${command}\` (bench/client-paths.ts).`,
    '',
    "A monitor, two nodes and a client, each in a network namespace on one bridge; the primary's",
    'machine dies (keeper and postmaster SIGKILLed, its link down), and three writers in the',
    "client's namespace, one per path, write through the same failover. Times are from the kill",
    "to the first insert acknowledged on the new primary's timeline.",
    `Load average (1 min): ${r.load.start.toFixed(1)} at the start, ${r.load.end.toFixed(1)} at the end, on ${r.load.cpus} cores.`,
    '',
    '| path | writes back after (ms), median [min–max] | / direct | lost acknowledged writes | acknowledged |',
    '|---|---|---|---|---|',
    ...PATHS.map((p) => `| ${PATH_TITLES[p]} | ${of((x) => x.writesBackMs[p])} | ${ratio(p)} | ${r.lost[p]} | ${r.acknowledged[p]} |`),
    '',
    `The new primary reached \`wait_primary\` after ${of((x) => x.promotedMs)} ms; its VIP hook ran ${of((x) => x.hookMs)} ms`,
    `(about 1 s of it the two gratuitous ARPs, one second apart) and ended after ${of((x) => x.hookDoneMs)} ms.`,
    '',
    '| run | killed | wait_primary | VIP hook (ms) | direct | HAProxy | VIP |',
    '|---|---|---|---|---|---|---|',
    ...r.runs.map((x) => `| ${x.run} | ${x.killed} | +${x.promotedMs} | ${x.hookMs} (until +${x.hookDoneMs}) | ${x.writesBackMs.direct.toFixed(0)} | ${x.writesBackMs.haproxy.toFixed(0)} | ${x.writesBackMs.vip.toFixed(0)} |`),
    '',
  ].join('\n');
}

/** Writes `client-paths.json` and `client-paths.md` of `report` into `outDir`; returns the markdown. */
export function writePathsResults(report: PathsReport, outDir: string, command: string): string {
  mkdirSync(outDir, { recursive: true });
  const md = renderPathsMarkdown(report, command);
  writeFileSync(join(outDir, 'client-paths.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(outDir, 'client-paths.md'), md);
  return md;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const o = new Command('npm run bench:paths --')
    .description('failover seen by a client, straight to the nodes, through HAProxy and through the virtual IP recipe')
    .option('--runs <n>', 'failovers to measure', intArg(1, 100), 5)
    .option('--out <dir>', 'where to write client-paths.md and .json', fileURLToPath(new URL('./results', import.meta.url)))
    .option('--keep', 'keep the formation\'s directory (its logs) instead of removing it', false)
    .parse()
    .opts();
  if (o.keep) process.env.PGHA_KEEP_TEST_DIRS = '1';
  const stop = (code: number): void => {
    void endAllProcesses().finally(() => process.exit(code));
  };
  process.on('SIGINT', () => stop(130));
  process.on('SIGTERM', () => stop(143));
  pathsBench(o.runs)
    .then((report) => {
      process.stdout.write(writePathsResults(report, o.out, `npm run bench:paths -- --runs ${o.runs}`));
    })
    .catch((err: Error) => {
      process.stderr.write(`bench:paths: ${err.stack ?? err.message}\n`);
      process.exitCode = 1;
    });
}
