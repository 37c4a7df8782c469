/**
 * `npm run bench:haproxy`: how long writes through HAProxy stop when the primary's machine
 * dies. Brings up pgha (a monitor and two nodes), feeds `pgha show haproxy` to Debian's
 * HAProxy, writes through its write port (one insert every ~10 ms), SIGKILLs the primary's
 * keeper and postmaster, and measures the time until an insert through the same port is
 * acknowledged by the new primary; then restarts the dead node's keeper (it rejoins as
 * secondary) and runs again. Prints each run and the median.
 *
 * Options: --runs N (5).
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from '@commander-js/extra-typings';
import getPort from 'get-port';
import { postmasterPid } from '@pgha/postgres';
import { intArg } from './lib/args.js';
import { Probe } from './lib/probe.js';
import { HAPROXY_BIN, measureHaproxyFailover, waitForRoute } from './lib/haproxy.js';
import { killAll, killStarted, spawnLogged } from './lib/proc.js';
import { healthyPrimary } from './lib/scenarios.js';
import { PghaSystem, removeDir } from './lib/systems.js';

/** What the benchmark measured. */
export interface HaproxyBenchReport {
  runs: number;
  /** Kill → first insert acknowledged by the new primary through HAProxy's write port, per run, ms. */
  writesBackMs: number[];
  medianMs: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Runs the benchmark `runs` times on one formation. */
export async function haproxyBench(runs: number, log: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<HaproxyBenchReport> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-haproxy-'));
  chmodSync(dir, 0o755);
  const sys = new PghaSystem(join(dir, 'f'));
  const writesBackMs: number[] = [];
  try {
    log(`setting up pgha in ${dir}`);
    await sys.setup();
    await healthyPrimary(sys, 300_000);
    const writePort = await getPort({ host: '127.0.0.1' });
    const readPort = await getPort({ host: '127.0.0.1', exclude: [writePort] });
    const config = join(dir, 'haproxy.cfg');
    writeFileSync(config, `${await sys.pgha(['show', 'haproxy', '--bind', '127.0.0.1', '--write-port', String(writePort), '--read-port', String(readPort)])}\n`);
    spawnLogged(HAPROXY_BIN, ['-f', config, '-db'], join(dir, 'haproxy.log'));
    await Probe.createTable(sys.hosts, 'bench_haproxy');
    let nextId = 1;
    for (let run = 1; run <= runs; run++) {
      const primaryName = await healthyPrimary(sys, 300_000);
      const primary = sys.nodes.find((n) => n.name === primaryName)!;
      await waitForRoute(writePort, primary.port, false);
      const result = await measureHaproxyFailover({
        writePort,
        primaryPort: primary.port,
        table: 'bench_haproxy',
        firstId: nextId,
        kill: () => killAll([...sys.keeperPids(primary), postmasterPid(primary.pgdata) ?? 0].filter(Boolean)),
      });
      nextId = result.nextId;
      writesBackMs.push(result.writesBackMs);
      log(`run ${run}: writes back through HAProxy ${result.writesBackMs.toFixed(0)} ms after the primary node died (${result.acks} inserts acknowledged)`);
      sys.startKeeper(primary);
    }
  } finally {
    await sys.teardown().catch(() => undefined);
    killStarted();
    removeDir(dir);
  }
  const medianMs = median(writesBackMs);
  log(`HAProxy failover (primary node SIGKILLed → insert through the write port on the new primary): median ${medianMs.toFixed(0)} ms [${Math.min(...writesBackMs).toFixed(0)}–${Math.max(...writesBackMs).toFixed(0)}] over ${runs} runs`);
  return { runs, writesBackMs, medianMs };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const o = new Command('npm run bench:haproxy --').option('--runs <n>', 'failovers to measure', intArg(1), 5).parse().opts();
  const stop = (code: number): never => {
    killStarted();
    process.exit(code);
  };
  process.on('SIGINT', () => stop(130));
  process.on('SIGTERM', () => stop(143));
  haproxyBench(o.runs)
    .then(() => stop(0))
    .catch((err: Error) => {
      process.stderr.write(`bench:haproxy: ${err.stack ?? err.message}\n`);
      stop(1);
    });
}
