/**
 * Crashes and restarts for the fault tests (issue 5, faults 6 and 8): SIGKILL a keeper, a
 * node (keeper + postmaster), the monitor or its Postgres, by PID; restart a keeper or the
 * monitor the way an operator or systemd would (`pgha keeper run`, `pgha monitor run`), in the
 * host's network namespace; and wait for a line in a process's JSON log (to strike in the
 * middle of a transition).
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { TestMonitor, TestNode } from './cluster.js';
import type { NetFormation } from './net-formation.js';
import { killPid, postmasterPidOf, startPgha } from './processes.js';
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

/** The `msg` of a pino JSON line; the line itself when it is not one. */
function messageOf(line: string): string {
  try {
    return String((JSON.parse(line) as { msg?: unknown }).msg ?? '');
  } catch {
    return line;
  }
}

/** The messages of `file` (pino JSON lines) from byte `fromOffset` (default 0), in order; [] when it is missing. */
export function logMessages(file: string, fromOffset = 0): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file).subarray(fromOffset).toString('utf8').split('\n').filter((l) => l.trim() !== '').map(messageOf);
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
        const msg = messageOf(line);
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
  const pid = postmasterPidOf(pgdata);
  killPid(pid, 'SIGKILL');
  return pid;
}

/** SIGKILLs a node's keeper and postmaster: its machine died. */
export function killNode(node: TestNode): void {
  killKeeper(node);
  killPostmaster(node.pgdata);
}

/** Resolves once `pid` is gone (or a zombie), within `timeoutMs`. */
export async function waitGone(pid: number | undefined, timeoutMs = 10_000): Promise<void> {
  if (!pid) return;
  await waitFor(`process ${pid} to end`, () => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
    } catch {
      return true;
    }
  }, { timeoutMs, intervalMs: 20 });
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
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (parts.every((p) => argv.some((a) => a.includes(p)))) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}
