/**
 * The floor under the monitor's report path (`npm run bench:http-floor`): what one HTTPS report
 * costs a Node.js server that does nothing with it, on this machine.
 *
 * A child process serves `POST /v1/nodes/:id/report` over TLS and answers a fixed goal of the
 * size a monitor answers, in two builds: `fastify` (the monitor's framework, with its JSON body
 * parser, no hooks, no validation, no store) and `node:https` (Node's own server, the body
 * parsed with `JSON.parse`). The load generator is the capacity benchmark's: an undici pool of
 * keep-alive connections, reports of the size a simulated keeper sends, spread evenly over each
 * second. For each rate (`--rates`, reports/s) it measures, over `--seconds`, the server's CPU
 * (utime+stime from /proc, % of one core) and CPU per report (µs), and the latency p50/p99.
 *
 * Why: `npm run bench:monitor -- --monitors 3` asks 3,000 reports/s of three monitors, three
 * etcd members and the load generator on one machine. Whatever the monitor's own work costs,
 * it cannot go below this floor; at 2 cores the floor times 3,000 says how much is left for
 * everything else.
 *
 * Options: `--rates 1000,3000` `--seconds 20` `--connections 100` `--no-write`. Results go to
 * `bench/results/http-floor.md`. The server is ended by PID, also on failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { cpus } from 'node:os';
import Fastify from 'fastify';
import getPort from 'get-port';
import Table from 'cli-table3';
import { Pool } from 'undici';
import { Command, Option } from '@commander-js/extra-typings';
import { intArg } from './lib/args.js';
import { clockTicksPerSecond, delay, processStat, waitFor } from '@pgha/postgres';
import { createCertificateAuthority, generateKeyPair, issueServerCertificate } from '../packages/monitor/src/tls/certificates.js';

const SELF = fileURLToPath(import.meta.url);
const RESULTS = join(fileURLToPath(new URL('.', import.meta.url)), 'results/http-floor.md');

/** A report as a simulated keeper of `npm run bench:monitor` sends it (a standby's). */
const REPORT = JSON.stringify({ reportedState: 'secondary', postgresRunning: true, isInRecovery: true, lsn: '0/3A2B1C80', timeline: 1, upstreamStreaming: true, synchronousStandbyNames: null });
/** A goal of the size the monitor answers a report with. */
const GOAL = JSON.stringify({
  nodeId: 1234,
  goalState: 'secondary',
  goalRevision: 123456,
  formation: 'bench_123',
  groupId: 0,
  synchronousStandbyNames: '',
  primary: { nodeId: 1233, name: 'node_1233', host: '127.0.0.1', port: 40123 },
  settings: { keeperReportIntervalMs: 500, networkPartitionTimeoutMs: 1500, nodeUnhealthyTimeoutMs: 2000 },
});

type Build = 'fastify' | 'node:https';
const BUILDS: Build[] = ['fastify', 'node:https'];

// ---------------------------------------------------------------- the server (child process)

async function serve(build: Build, port: number, key: string, cert: string): Promise<void> {
  if (build === 'fastify') {
    const app = Fastify({ https: { key, cert } });
    app.post<{ Params: { id: string } }>('/v1/nodes/:id/report', async (_req, reply) => reply.type('application/json').send(GOAL));
    await app.listen({ host: '127.0.0.1', port });
  } else {
    const server = createServer({ key, cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        JSON.parse(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(GOAL) });
        res.end(GOAL);
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  }
  process.stdout.write('listening\n');
}

// ---------------------------------------------------------------- the load (this process)

interface Row {
  build: Build;
  offered: number;
  got: number;
  cpuPercent: number;
  cpuUsPerReport: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Offers `rate` reports/s for `seconds` (after 3 s of warm-up at that rate) and measures the server `pid`. */
async function measure(pool: Pool, pid: number, rate: number, seconds: number): Promise<Omit<Row, 'build' | 'offered'>> {
  const latencies: number[] = [];
  let errors = 0;
  let recording = false;
  let stop = false;
  const send = async (): Promise<void> => {
    const t0 = performance.now();
    try {
      const res = await pool.request({ method: 'POST', path: '/v1/nodes/1234/report', headers: { authorization: 'Bearer x', 'content-type': 'application/json' }, body: REPORT });
      await res.body.text();
      if (res.statusCode !== 200) errors++;
      else if (recording) latencies.push(performance.now() - t0);
    } catch {
      if (recording) errors++;
    }
  };
  // Ticks of 10 ms, each sending its share of the rate (the capacity benchmark spreads keepers likewise).
  const perTick = rate / 100;
  let owed = 0;
  const started = performance.now();
  let ticks = 0;
  const loop = (async () => {
    while (!stop) {
      owed += perTick;
      for (; owed >= 1; owed--) void send();
      ticks++;
      const next = started + ticks * 10;
      await delay(Math.max(0, next - performance.now()));
    }
  })();
  await delay(3000);
  const cpu0 = processStat(pid)!.cpuTicks;
  const t0 = performance.now();
  recording = true;
  await delay(seconds * 1000);
  recording = false;
  const cpu1 = processStat(pid)!.cpuTicks;
  const elapsedS = (performance.now() - t0) / 1000;
  stop = true;
  await loop;
  const got = latencies.length / elapsedS;
  const cpuS = (cpu1 - cpu0) / clockTicksPerSecond;
  latencies.sort((a, b) => a - b);
  return { got: Math.round(got), cpuPercent: Math.round((100 * cpuS) / elapsedS), cpuUsPerReport: Math.round((cpuS * 1e6) / latencies.length), p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), errors };
}

async function startServer(build: Build, key: string, cert: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await getPort({ host: '127.0.0.1' });
  const child = spawn(process.execPath, ['--import', 'tsx', SELF, '--serve', build, '--port', String(port)], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HTTP_FLOOR_KEY: key, HTTP_FLOOR_CERT: cert },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  await waitFor(`the ${build} server to listen`, () => out.includes('listening') || child.exitCode !== null, { timeoutMs: 30_000, intervalMs: 50 });
  if (child.exitCode !== null) throw new Error(`the ${build} server exited (${child.exitCode}) before it listened`);
  return { child, port };
}

async function main(): Promise<void> {
  const program = new Command()
    .option('--rates <list>', 'reports per second to offer', (v) => v.split(',').map((x) => intArg(1)(x)))
    .option('--seconds <n>', 'seconds measured per rate', intArg(1), 20)
    .option('--connections <n>', 'keep-alive connections', intArg(1), 100)
    .option('--no-write', 'do not write bench/results')
    .addOption(new Option('--serve <build>').choices(BUILDS).hideHelp())
    .addOption(new Option('--port <n>').argParser(intArg(1, 65535)).hideHelp());
  const o = program.parse().opts();
  if (o.serve) {
    await serve(o.serve as Build, o.port!, process.env['HTTP_FLOOR_KEY']!, process.env['HTTP_FLOOR_CERT']!);
    return;
  }
  const rates = o.rates ?? [1000, 3000];
  const ca = createCertificateAuthority('pgha http-floor CA');
  const { publicKeyPem, privateKeyPem } = generateKeyPair();
  const cert = issueServerCertificate(ca, publicKeyPem, ['127.0.0.1']);
  const rows: Row[] = [];
  const children = new Set<ChildProcess>();
  const endAll = (): void => {
    for (const c of children) if (c.pid && c.exitCode === null) process.kill(c.pid, 'SIGKILL');
  };
  process.on('exit', endAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(1));
  try {
    for (const build of BUILDS) {
      const { child, port } = await startServer(build, privateKeyPem, cert);
      children.add(child);
      const pool = new Pool(`https://127.0.0.1:${port}`, { connect: { ca: ca.certificatePem }, connections: o.connections, pipelining: 1, keepAliveTimeout: 60_000 });
      for (const rate of rates) {
        const r = await measure(pool, child.pid!, rate, o.seconds);
        rows.push({ build, offered: rate, ...r });
        console.log(`${build} at ${rate}/s: got ${r.got}/s, server CPU ${r.cpuPercent}% (${r.cpuUsPerReport} µs per report), p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, errors ${r.errors}`);
      }
      await pool.close();
      child.kill('SIGKILL');
      children.delete(child);
    }
  } finally {
    endAll();
  }
  const table = new Table({ head: ['server', 'reports/s (got / offered)', 'server CPU % of a core', 'CPU µs per report', 'p50 ms', 'p99 ms', 'errors'] });
  for (const r of rows) table.push([r.build, `${r.got} / ${r.offered}`, r.cpuPercent, r.cpuUsPerReport, r.p50Ms.toFixed(1), r.p99Ms.toFixed(1), r.errors]);
  console.log(table.toString());
  if (o.write) {
    const md = [
      '# The floor under a report: an HTTPS server that does nothing with it',
      '',
      `Command: \`npm run bench:http-floor -- --rates ${rates.join(',')} --seconds ${o.seconds} --connections ${o.connections}\``,
      `Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}.`,
      '',
      '| server | reports/s (got / offered) | server CPU % of a core | CPU µs per report | p50 ms | p99 ms | errors |',
      '|---|---|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.build} | ${r.got} / ${r.offered} | ${r.cpuPercent} | ${r.cpuUsPerReport} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} | ${r.errors} |`),
      '',
    ].join('\n');
    writeFileSync(RESULTS, md);
    console.log(`written ${RESULTS}`);
  }
}

await main();
