import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { descendantPids, isProcessAlive, processCommandLine, processCwd, processMemory, processName, processStat } from '../src/proc.js';
import { postmasterPid } from '../src/pg-ctl.js';
import { waitFor } from '../src/poll.js';

const children: number[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const pid of children.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** `sh -c script`, tracked and killed after the test. */
function sh(script: string): number {
  const child = spawn('/bin/sh', ['-c', script], { stdio: 'ignore' });
  children.push(child.pid!);
  return child.pid!;
}

describe('the /proc reader', () => {
  it('reads a process: alive, its command line, name, working directory, parent, start time and memory', async () => {
    const child = spawn('sleep', ['29', '1'], { stdio: 'ignore', cwd: '/tmp' });
    children.push(child.pid!);
    const pid = child.pid!;
    await waitFor('sleep to exec', () => processName(pid) === 'sleep', { timeoutMs: 5000, intervalMs: 5 });
    expect(isProcessAlive(pid)).toBe(true);
    expect(processCommandLine(pid)).toEqual(['sleep', '29', '1']);
    expect(processCwd(pid)).toBe('/tmp');
    const stat = processStat(pid)!;
    expect(stat.ppid).toBe(process.pid);
    expect(stat.startTicks).toBeGreaterThanOrEqual(processStat(process.pid)!.startTicks);
    expect(processMemory(process.pid)!.rssBytes).toBeGreaterThan(1024 * 1024);
  });

  it('answers for a process that is gone, and for no pid, without throwing', () => {
    const gone = 2 ** 22 + 1; // above pid_max's default, never a live process
    expect(isProcessAlive(gone)).toBe(false);
    expect(isProcessAlive(undefined)).toBe(false);
    expect(isProcessAlive(0)).toBe(false);
    expect(processStat(gone)).toBeUndefined();
    expect(processCommandLine(gone)).toBeUndefined();
    expect(processCwd(gone)).toBeUndefined();
    expect(processName(gone)).toBe('');
    expect(processMemory(gone)).toBeUndefined();
  });

  it('a zombie is not alive, though kill(0) still answers for it', async () => {
    // `sleep 0` exits; its parent, now `sleep 30` by exec, never reaps it.
    const parent = sh('sleep 0 & exec sleep 30');
    const zombie = await waitFor('the zombie', () => descendantPids(parent).find((p) => processStat(p)?.state === 'Z'), { timeoutMs: 5000, intervalMs: 10 });
    expect(() => process.kill(zombie, 0)).not.toThrow();
    expect(isProcessAlive(zombie)).toBe(false);
    expect(isProcessAlive(parent)).toBe(true);
    expect(processName(parent)).toBe('sleep');
  });

  it('finds descendants: children and their children', async () => {
    const root = sh('sh -c "sleep 30" & sleep 30');
    const tree = await waitFor('two levels of children', () => {
      const pids = descendantPids(root);
      return pids.filter((p) => processName(p) === 'sleep').length === 2 && pids;
    }, { timeoutMs: 5000, intervalMs: 10 });
    expect(tree.map((p) => processStat(p)!.ppid)).toContain(root);
    expect(tree.length).toBe(3);
  });

  it('postmasterPid: the pid of postmaster.pid when it lives, else undefined', () => {
    const pgdata = mkdtempSync(join(tmpdir(), 'pgha-proc-'));
    dirs.push(pgdata);
    expect(postmasterPid(pgdata)).toBeUndefined();
    writeFileSync(join(pgdata, 'postmaster.pid'), `${process.pid}\n${pgdata}\n1700000000\n5432\n`);
    expect(postmasterPid(pgdata)).toBe(process.pid);
    writeFileSync(join(pgdata, 'postmaster.pid'), `${2 ** 22 + 1}\n`);
    expect(postmasterPid(pgdata)).toBeUndefined();
    writeFileSync(join(pgdata, 'postmaster.pid'), 'garbage\n');
    expect(postmasterPid(pgdata)).toBeUndefined();
  });
});
