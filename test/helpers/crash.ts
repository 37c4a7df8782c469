/**
 * Crashes and restarts for the fault tests (issue 5, faults 6 and 8): SIGKILL a keeper, a
 * node (keeper + postmaster), the monitor or its Postgres, by PID; restart a keeper or the
 * monitor the way an operator or systemd would (`pgha keeper run`, `pgha monitor run`), in the
 * host's network namespace; and wait for a line in a process's JSON log (to strike in the
 * middle of a transition).
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { allProcesses, isProcessAlive, processCommandLine } from '@pgha/postgres';
import type { TestMonitor, TestNode } from './cluster.js';
import type { NetFormation } from './net-formation.js';
import { killPid, postmasterPid, startPgha } from './processes.js';
import { waitFor } from './wait-for.js';
import { monitorFetch } from './monitor-access.js';

/** Log file of a node's keeper (as {@link addNode} and {@link restartKeeper} write it). */
export function keeperLogOf(f: NetFormation, node: TestNode): string {
  return join(f.monitor.dir, `${node.name}.keeper.log`);
}

/** Log file of the monitor. */
export function monitorLogOf(monitor: TestMonitor): string {
  return join(monitor.dir, 'monitor.log');
}

/** Current size of `file` in bytes (0 when missing): an offset for {@link waitForLogMessage}. */
export function logOffset(file: string): number {
  return existsSync(file) ? statSync(file).size : 0;
}

/** One line of a pino JSON log: its message, its time (ms since the epoch; NaN when absent) and its other fields. */
export interface LogRecord {
  msg: string;
  time: number;
  [field: string]: unknown;
}

/** A pino JSON log line as a {@link LogRecord}; undefined when the line is not a JSON object (a partial line, other output). The one parser of pino lines in the tests. */
export function parseLogLine(line: string): LogRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const r = parsed as Record<string, unknown>;
  return { ...r, msg: String(r.msg ?? ''), time: typeof r.time === 'number' ? r.time : Number.NaN };
}

/** The lines of `file` from byte `fromOffset` (default 0); [] when it is missing. */
function linesOf(file: string, fromOffset = 0): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file).subarray(fromOffset).toString('utf8').split('\n').filter((l) => l.trim() !== '');
}

/** The records of pino log `file` from byte `fromOffset` (default 0), in order; lines that are not pino JSON are skipped; [] when it is missing. */
export function logRecords(file: string, fromOffset = 0): LogRecord[] {
  return linesOf(file, fromOffset).map(parseLogLine).filter((r): r is LogRecord => r !== undefined);
}

/** The messages of `file` (pino JSON lines) from byte `fromOffset` (default 0), in order (a line that is not pino JSON as it is); [] when it is missing. */
export function logMessages(file: string, fromOffset = 0): string[] {
  return linesOf(file, fromOffset).map((l) => parseLogLine(l)?.msg ?? l);
}

/**
 * Polls `file` (pino JSON lines) from byte `fromOffset` every `intervalMs` (default 10) until a
 * line's `msg` matches `pattern`.
 *
 * @returns the matching message.
 * @throws after `timeoutMs` (default 60 000) without a match.
 */
export async function waitForLogMessage(file: string, pattern: RegExp, fromOffset: number, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<string> {
  let offset = fromOffset;
  let rest = '';
  return waitFor(`"${pattern.source}" in ${file}`, () => {
    if (!existsSync(file)) return undefined;
    const size = statSync(file).size;
    if (size <= offset) return undefined;
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(size - offset);
      readSync(fd, buf, 0, buf.length, offset);
      offset = size;
      const lines = (rest + buf.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const msg = parseLogLine(line)?.msg ?? line;
        if (pattern.test(msg)) return msg;
      }
    } finally {
      closeSync(fd);
    }
    return undefined;
  }, { timeoutMs: options.timeoutMs ?? 60_000, intervalMs: options.intervalMs ?? 10 });
}

/** Regex for the keeper's fixed phrase at the start of a transition (see `reach-goal.ts`). */
export function transitionStart(from: string | RegExp, to: string): RegExp {
  const src = typeof from === 'string' ? from : from.source;
  return new RegExp(`^FSM transition from "${src}" to "${to}"`);
}

/** SIGKILLs a node's keeper (Postgres keeps running: it is detached from the keeper). */
export function killKeeper(node: TestNode): void {
  killPid(node.keeper.pid, 'SIGKILL');
}

/** SIGKILLs a node's postmaster (the keeper lives on). @returns the PID killed, if one ran. */
export function killPostmaster(pgdata: string): number | undefined {
  const pid = postmasterPid(pgdata);
  killPid(pid, 'SIGKILL');
  return pid;
}

/** SIGKILLs a node's keeper and postmaster: its machine died. */
export function killNode(node: TestNode): void {
  killKeeper(node);
  killPostmaster(node.pgdata);
}

/**
 * A node's machine dies on a simulated network: its keeper and postmaster are SIGKILLed and
 * its link goes down ({@link SimNetwork.powerOff}), so nothing answers at its addresses (a
 * virtual IP it held included).
 */
export async function powerOffNode(f: NetFormation, node: TestNode): Promise<void> {
  killNode(node);
  await f.net.powerOff(node.name);
}

/**
 * The machine of a node killed by {@link powerOffNode} boots again: its link is back with only
 * its own address ({@link SimNetwork.powerOn}), and its keeper restarts ({@link restartKeeper}).
 */
export async function powerOnNode(f: NetFormation, node: TestNode): Promise<void> {
  await f.net.powerOn(node.name);
  await restartKeeper(f, node);
}

/** Resolves once `pid` is gone (or a zombie), within `timeoutMs`. */
export async function waitGone(pid: number | undefined, timeoutMs = 10_000): Promise<void> {
  if (!pid) return;
  await waitFor(`process ${pid} to end`, () => !isProcessAlive(pid), { timeoutMs, intervalMs: 20 });
}

/**
 * Restarts a node's keeper as systemd would after a crash (`pgha keeper run --pgdata …`, in the
 * node's namespace, logging to the same file); `node.keeper` becomes the new process.
 */
export async function restartKeeper(f: NetFormation, node: TestNode): Promise<void> {
  await waitGone(node.keeper.pid);
  node.keeper = startPgha(['keeper', 'run', '--pgdata', node.pgdata], { logFile: keeperLogOf(f, node), netns: f.net.netns(node.name) });
}

/**
 * Restarts the monitor as systemd would (`pgha monitor run --pgdata …` in its namespace) and
 * waits for its HTTP API; `f.monitor.proc` becomes the new process.
 */
export async function restartMonitor(f: NetFormation): Promise<void> {
  await waitGone(f.monitor.proc.pid);
  f.monitor.proc = startPgha(['monitor', 'run', '--pgdata', f.monitor.pgdata], { logFile: monitorLogOf(f.monitor), netns: f.net.netns('monitor') });
  await waitFor('the restarted monitor', async () => (await monitorFetch(`${f.monitor.url}/health`, { signal: AbortSignal.timeout(1000) })).ok, { timeoutMs: 60_000, intervalMs: 100 });
}

/** PIDs of running processes whose command line contains every string in `parts`. */
export function pidsWithArgs(...parts: string[]): number[] {
  return allProcesses()
    .map((p) => p.pid)
    .filter((pid) => {
      const argv = processCommandLine(pid) ?? [];
      return parts.every((part) => argv.some((a) => a.includes(part)));
    });
}
