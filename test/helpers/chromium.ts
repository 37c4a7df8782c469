/**
 * Headless Chromium from Debian (`/usr/bin/chromium`) through playwright-core, with the
 * project's agreed flags and a fresh profile; no browser is ever downloaded.
 */
import { chromium, type BrowserContext } from 'playwright-core';
import AnsiToHtml from 'ansi-to-html';
import { makeTestDir } from './processes.js';

/** Runs `fn` with a fresh Chromium browser context, closed (its processes ended) afterwards. */
export async function withChromium<T>(fn: (context: BrowserContext) => Promise<T>): Promise<T> {
  const context = await chromium.launchPersistentContext(makeTestDir(), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    return await fn(context);
  } finally {
    await context.close();
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
  return withChromium(async (context) => {
    const page = await context.newPage();
    await page.setContent(html);
    const screen = page.locator('#screen');
    await screen.screenshot({ path: file });
    const box = (await screen.boundingBox())!;
    return { width: Math.round(box.width), height: Math.round(box.height) };
  });
}
