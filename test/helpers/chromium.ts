/**
 * Debian's headless Chromium (`/usr/bin/chromium`) for tests, started as a tracked process (so
 * `endAllProcesses` ends it by PID even when a test fails) with a fresh profile, and driven by
 * playwright-core over the DevTools protocol on loopback. Never downloads a browser.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import AnsiToHtml from 'ansi-to-html';
import { chromium, type Browser } from 'playwright-core';
import { isProcessAlive } from '@pgha/postgres';
import { descendantPids, killPid, makeTestDir, startTracked } from './processes.js';
import { waitFor } from './wait-for.js';

/** The Chromium every browser test uses. */
export const CHROMIUM_BIN = '/usr/bin/chromium';

/** The flags of every test browser (headless, no network of its own). */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const;

/** A running test browser. */
export interface TestBrowser {
  browser: Browser;
  /** The browser process's PID. */
  pid: number;
  /** Disconnects, then ends the browser and every process it started, by PID. */
  end(): Promise<void>;
}

/**
 * Starts Chromium with {@link CHROMIUM_FLAGS}, `--user-data-dir=<dir>/chromium-profile` (a new
 * one) and `extraFlags`, and connects to it.
 *
 * @param dir - the test's temporary directory.
 */
export async function startChromium(dir: string, extraFlags: readonly string[] = []): Promise<TestBrowser> {
  const profile = join(dir, 'chromium-profile');
  const proc = startTracked(CHROMIUM_BIN, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', ...extraFlags, 'about:blank'], { logFile: join(dir, 'chromium.log') });
  const pid = proc.pid!;
  const end = async (browser?: Browser): Promise<void> => {
    await browser?.close().catch(() => undefined);
    const all = [pid, ...descendantPids(pid)];
    for (const p of all) killPid(p, 'SIGTERM');
    await waitFor('Chromium to exit', () => all.every((p) => !isProcessAlive(p)), { timeoutMs: 5000 }).catch(() => undefined);
    for (const p of all) killPid(p, 'SIGKILL');
  };
  try {
    // Chromium writes the port it chose into the profile.
    const portFile = join(profile, 'DevToolsActivePort');
    const port = await waitFor('Chromium\'s DevTools port', () => {
      if (proc.exitCode !== null) throw new Error(`Chromium exited (${proc.exitCode}); see ${join(dir, 'chromium.log')}`);
      return existsSync(portFile) && Number(readFileSync(portFile, 'utf8').split('\n')[0]);
    }, { timeoutMs: 30_000 });
    const browser = await chromium.connectOverCDP(`http://127.0.0.1:${port}`);
    return { browser, pid, end: () => end(browser) };
  } catch (err) {
    await end();
    throw err;
  }
}

/**
 * Renders terminal lines with their SGR colours (`tmux capture-pane -e`) as a PNG at `file`:
 * light text on a dark background, DejaVu Sans Mono, one cell per character.
 *
 * @returns the PNG's width and height in pixels.
 */
export async function terminalPng(lines: readonly string[], file: string, columns: number): Promise<{ width: number; height: number }> {
  const convert = new AnsiToHtml({ fg: '#d0d0d0', bg: '#1c1c1c', escapeXML: true });
  const html = `<!doctype html><meta charset="utf-8"><style>
    body { margin: 0; background: #1c1c1c; }
    pre { margin: 0; padding: 8px; display: inline-block; color: #d0d0d0; background: #1c1c1c;
          font: 13px/1.25 'DejaVu Sans Mono', monospace; width: ${columns}ch; white-space: pre; }
  </style><pre id="screen">${lines.map((l) => convert.toHtml(l)).join('\n')}</pre>`;
  const test = await startChromium(makeTestDir());
  try {
    const context = test.browser.contexts()[0] ?? (await test.browser.newContext());
    const page = await context.newPage();
    await page.setContent(html);
    const screen = page.locator('#screen');
    await screen.screenshot({ path: file });
    const box = (await screen.boundingBox())!;
    return { width: Math.round(box.width), height: Math.round(box.height) };
  } finally {
    await test.end();
  }
}
