/**
 * `pgha watch` on a real two-node formation, in a detached tmux session of fixed size: it draws
 * both nodes with their states, redraws in place (the header stays on the first row, each node
 * on its row) as a switchover swaps the roles, fits a resized terminal, says when the monitor is
 * gone and comes back to it, and on `q` (or Ctrl-C) leaves the alternate screen and exits 0. The final
 * screen is saved as text and as a PNG (tmux's colours rendered by headless Chromium); with
 * `PGHA_UPDATE_SCREENSHOTS=1` both are copied to `docs/screenshots/watch.{txt,png}`.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addNode, startMonitor, type TestMonitor } from './helpers/cluster.js';
import { terminalPng } from './helpers/chromium.js';
import { runPghaOk } from './helpers/cli.js';
import { waitGone } from './helpers/crash.js';
import { isPrimaryAndSecondaries, showState } from './helpers/formation.js';
import { monitorFetch, withMonitorCredentials } from './helpers/monitor-access.js';
import { PGHA_BIN, endAllProcesses, runPgha, startPgha } from './helpers/processes.js';
import { TmuxSession, endTmuxServers } from './helpers/tmux.js';
import { waitFor } from './helpers/wait-for.js';

const COLUMNS = 160;
const ROWS = 40;
const SCREENSHOTS = fileURLToPath(new URL('../docs/screenshots/', import.meta.url));

let monitor: TestMonitor;

beforeAll(async () => {
  monitor = await startMonitor();
  await addNode(monitor, 'node1');
  await addNode(monitor, 'node2');
  await settled();
}, 240_000);

afterAll(async () => {
  await endTmuxServers();
  await endAllProcesses();
});

const settled = () => waitFor('one primary and one secondary', async () => isPrimaryAndSecondaries(await showState(monitor.url)), { timeoutMs: 90_000, intervalMs: 200 });

/** A node's row on the screen: its cells (name, node, host:port, reported, goal, health, TLI: LSN, lag, last report, progress) and its row number. */
function nodeRow(screen: readonly string[], name: string): { y: number; cells: string[] } | undefined {
  const y = screen.findIndex((l) => l.startsWith(` ${name} `) && l.includes('│'));
  return y < 0 ? undefined : { y, cells: screen[y]!.split('│').map((c) => c.trim()) };
}

/** `[reported, goal]` of each named node on the screen. */
function statesOn(screen: readonly string[], names: readonly string[]): Record<string, [string, string] | undefined> {
  return Object.fromEntries(names.map((n) => {
    const r = nodeRow(screen, n);
    return [n, r ? [r.cells[3]!, r.cells[4]!] as [string, string] : undefined];
  }));
}

describe('pgha watch', () => {
  it('redraws the formation in place through a resize, a lost monitor and a switchover, and quits on q', async () => {
    const tmux = await TmuxSession.start([process.execPath, PGHA_BIN, 'watch', '--interval', '300'], {
      columns: COLUMNS,
      rows: ROWS,
      env: { PGHA_MONITOR: monitor.url, ...withMonitorCredentials(['--monitor', monitor.url], {}) },
    });
    const rawOutput = join(monitor.dir, 'watch-output.raw');
    await tmux.pipeOutput(rawOutput);
    const captures: string[][] = [];
    const screenWhere = (what: string, ok: (screen: string[]) => boolean, timeoutMs = 30_000): Promise<string[]> =>
      waitFor(what, async () => {
        const screen = await tmux.capture();
        captures.push(screen);
        return ok(screen) ? screen : undefined;
      }, { timeoutMs, intervalMs: 150 });
    const names = ['node1', 'node2'];

    // Both nodes appear with their states.
    const first = await screenWhere('both nodes on the screen', (s) => {
      const st = statesOn(s, names);
      return st.node1?.join() === 'primary,primary' && st.node2?.join() === 'secondary,secondary';
    });
    expect(first).toHaveLength(ROWS);
    expect(first[0]).toMatch(/^pgha watch · formation default · https:\/\/127\.0\.0\.1:\d+ · \d\d:\d\d:\d\d · every 300 ms/);
    expect(first[1]).toMatch(/^monitor answered at \d\d:\d\d:\d\d: 2 node\(s\)/);
    expect(nodeRow(first, 'node1')!.cells.slice(6, 8)).toEqual([expect.stringMatching(/^1: [0-9A-F]+\/[0-9A-F]+$/), '-']);
    expect(nodeRow(first, 'node2')!.cells[7]).toMatch(/^\d+$/);
    expect(first.some((l) => /init → single/.test(l))).toBe(true);
    expect(await tmux.format('#{alternate_on}')).toBe('1');
    const rowsOf = (s: string[]) => names.map((n) => nodeRow(s, n)?.y);
    const nodeRows = rowsOf(first);

    // A smaller terminal: the frame shrinks to it, long lines cut.
    await tmux.resize(100, 24);
    const small = await screenWhere('the frame redrawn for 100×24', (s) => s.length === 24 && s.every((l) => l.length <= 100) && s.some((l) => l.endsWith('…')) && s[0]!.startsWith('pgha watch'));
    expect(statesOn(small, names).node1).toEqual(['primary', 'primary']);
    await tmux.resize(COLUMNS, ROWS);
    await screenWhere('the frame back at 160×40', (s) => s.length === ROWS && s.some((l) => l.includes('Last Report')));

    // The monitor goes away: the watch says so, keeps its last answer on screen, and keeps asking.
    monitor.proc.kill('SIGTERM');
    await waitGone(monitor.proc.pid, 30_000);
    const lost = await screenWhere('the monitor shown unreachable', (s) => /^monitor unreachable since \d\d:\d\d:\d\d, retrying every 300 ms, showing its last answer \(\d\d:\d\d:\d\d\): monitor at .* is unreachable/.test(s[1] ?? ''));
    expect(lost[0]).toMatch(/^pgha watch/);
    expect(statesOn(lost, names).node1).toEqual(['primary', 'primary']);
    expect(existsSync(tmux.statusFile)).toBe(false);
    monitor.proc = startPgha(['monitor', 'run', '--pgdata', monitor.pgdata], { logFile: join(monitor.dir, 'monitor.log') });
    await waitFor('the restarted monitor', async () => (await monitorFetch(`${monitor.url}/health`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined))?.ok, { timeoutMs: 60_000 });
    await screenWhere('the monitor answering again', (s) => /^monitor answered at/.test(s[1] ?? ''));
    await settled();

    // A switchover: the roles swap in place.
    captures.length = 0;
    // Screens are read all along, from just before the command until the roles have swapped.
    let switching = true;
    const during = (async () => {
      while (switching) captures.push(await tmux.capture());
    })();
    let out: string;
    let swapped: string[];
    try {
      out = await runPghaOk(['perform', 'switchover', '--monitor', monitor.url]);
      swapped = await screenWhere('the roles swapped on the screen', (s) => {
        const st = statesOn(s, names);
        return st.node1?.join() === 'secondary,secondary' && st.node2?.join() === 'primary,primary' && s.some((l) => l.includes('catchingup → secondary') && l.includes('node1'));
      });
    } finally {
      switching = false;
      await during;
    }
    // In place: every screen since the switchover began has the header on its first row and each node on its row.
    for (const s of captures) {
      expect(s).toHaveLength(ROWS);
      expect(s[0]).toMatch(/^pgha watch · formation default/);
      expect(rowsOf(s)).toEqual(nodeRows);
    }
    expect(swapped.some((l) => /node1\s+primary → draining/.test(l))).toBe(true);
    console.log(`[watch] ${captures.length} screens during the switchover, all in place; perform switchover printed:\n${out}`);

    // The final screen, as text and as a PNG.
    const dir = join(monitor.dir, 'screenshots');
    mkdirSync(dir, { recursive: true });
    const text = `${swapped.join('\n').trimEnd()}\n`;
    writeFileSync(join(dir, 'watch.txt'), text);
    const coloured = await tmux.capture({ escapes: true });
    const png = await terminalPng(coloured.slice(0, text.split('\n').length - 1), join(dir, 'watch.png'), COLUMNS);
    expect(readFileSync(join(dir, 'watch.png')).subarray(1, 4).toString()).toBe('PNG');
    expect(png.width).toBeGreaterThan(800);
    console.log(`[watch] final screen: ${join(dir, 'watch.txt')}, ${join(dir, 'watch.png')} (${png.width}×${png.height} px)\n${text}`);
    if (process.env.PGHA_UPDATE_SCREENSHOTS) {
      mkdirSync(SCREENSHOTS, { recursive: true });
      for (const f of ['watch.txt', 'watch.png']) copyFileSync(join(dir, f), join(SCREENSHOTS, f));
    }

    // q quits: the process ends with status 0 and the terminal is back on its normal screen.
    await tmux.sendKeys('q');
    const status = await tmux.exitStatus();
    const after = (await tmux.capture()).join('\n');
    expect(status, after).toBe(0);
    expect(await tmux.format('#{alternate_on}'), after).toBe('0');
    // The last thing it wrote: back to the normal screen, cursor shown (tmux hides the cursor of a dead pane itself).
    await waitFor('the terminal restored', () => readFileSync(rawOutput, 'latin1').endsWith('\u001b[?1049l\u001b[?25h'), { timeoutMs: 5_000 });
    expect(after).not.toContain('Last events');
  });

  it('quits on Ctrl-C too, giving the terminal back', async () => {
    const tmux = await TmuxSession.start([process.execPath, PGHA_BIN, 'watch'], { columns: 80, rows: 24, env: { PGHA_MONITOR: monitor.url, ...withMonitorCredentials(['--monitor', monitor.url], {}) } });
    await waitFor('the first frame', async () => ((await tmux.capture())[0] ?? '').startsWith('pgha watch') || undefined, { timeoutMs: 30_000 });
    expect(await tmux.format('#{alternate_on}')).toBe('1');
    await tmux.sendKeys('C-c');
    expect(await tmux.exitStatus()).toBe(0);
    expect(await tmux.format('#{alternate_on}')).toBe('0');
  });

  it('prints one frame and says so when stdout is not a terminal', async () => {
    await settled();
    const r = await runPgha(['watch', '--monitor', monitor.url]);
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^pgha watch · formation default/);
    expect(statesOn(lines, ['node1', 'node2'])).toEqual({ node1: ['secondary', 'secondary'], node2: ['primary', 'primary'] });
    expect(r.stdout).not.toMatch(/\u001b\[/);
    expect(r.stderr).toMatch(/stdout is not a terminal, so this is one frame/);
  });
});
