/**
 * The dashboard (`/ui`) in Debian's headless Chromium on a real two-node formation, as an
 * operator uses it: load the page, be refused with a wrong token, enter the operator token,
 * see both nodes with their roles, click Switchover, see the roles swap and the timeline gain
 * the switchover's events (live, from the event stream), then put the standby in maintenance
 * and back with its button. Takes a screenshot (copied to `docs/screenshots/dashboard.png`
 * with `PGHA_UPDATE_SCREENSHOTS=1`).
 */
import { createHash, X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { UI_CSP } from '@pgha/monitor';
import { addNode, startMonitor, type TestMonitor } from './helpers/cluster.js';
import { startChromium, type TestBrowser } from './helpers/chromium.js';
import { isPrimaryAndSecondaries, showState } from './helpers/formation.js';
import { monitorFetch } from './helpers/monitor-access.js';
import { endAllProcesses } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

const SCREENSHOT = fileURLToPath(new URL('../docs/screenshots/dashboard.png', import.meta.url));

let monitor: TestMonitor;
let chromium: TestBrowser | undefined;
let page: Page;
const consoleErrors: string[] = [];

const settled = async () => waitFor('one primary and one secondary', async () => isPrimaryAndSecondaries(await showState(monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });

/** Base64 SHA-256 of the monitor's HTTPS key, so that Chromium trusts that one certificate only. */
function monitorSpki(): string {
  const cert = new X509Certificate(readFileSync(join(`${monitor.pgdata}.pgha`, 'tls', 'server.crt')));
  return createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
}

const cell = (name: string, column: string) => page.locator(`#nodes tr[data-node="${name}"] td.${column}`);
const text = async (name: string, column: string) => (await cell(name, column).textContent({ timeout: 1000 }).catch(() => null))?.trim();
const roles = async () => `${await text('node1', 'role')}/${await text('node2', 'role')}`;

beforeAll(async () => {
  monitor = await startMonitor();
  await addNode(monitor, 'node1');
  await addNode(monitor, 'node2');
  await settled();
  chromium = await startChromium(monitor.dir, [`--ignore-certificate-errors-spki-list=${monitorSpki()}`]);
  const context = chromium.browser.contexts()[0] ?? (await chromium.browser.newContext());
  page = await context.newPage();
  await page.setViewportSize({ width: 1100, height: 560 });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
}, 300_000);

afterAll(async () => {
  await chromium?.end();
  await endAllProcesses();
});

describe('the dashboard', () => {
  it('is served without a token, with a strict Content-Security-Policy, and carries no data', async () => {
    for (const path of ['/ui', '/ui/app.js', '/ui/app.css']) {
      const res = await monitorFetch(`${monitor.url}${path}`, { token: '' });
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-security-policy')).toBe(UI_CSP);
      expect(res.headers.get('set-cookie')).toBeNull();
      const body = await res.text();
      expect(body).not.toMatch(/node1|node2|127\.0\.0\.1/);
    }
    expect(UI_CSP).toMatch(/script-src 'self'/);
    expect(UI_CSP).not.toMatch(/unsafe-inline|unsafe-eval/);
  });

  it('asks for the token, refuses a wrong one, then shows both nodes with their roles', async () => {
    const res = await page.goto(`${monitor.url}/ui`);
    expect(res?.status()).toBe(200);
    await page.locator('#token').fill('x'.repeat(43));
    await page.locator('#login-form button[type=submit]').click();
    await waitFor('the refusal', async () => /invalid credentials/.test((await page.locator('#login-error').textContent()) ?? ''), { timeoutMs: 10_000 });
    expect(await page.locator('#dashboard').isHidden()).toBe(true);

    await page.locator('#token').fill(readFileSync(monitor.authTokenFile, 'utf8').trim());
    await page.locator('#login-form button[type=submit]').click();
    await waitFor('both nodes with their roles', async () => (await roles()) === 'primary/standby', { timeoutMs: 20_000, intervalMs: 200 });
    expect(await text('node1', 'goal')).toBe('primary');
    expect(await text('node2', 'goal')).toBe('secondary');
    expect(await text('node1', 'lsn')).toMatch(/^\d+: [0-9A-F]+\/[0-9A-F]+$/);
    expect(await text('node2', 'lag')).toMatch(/^\d+(\.\d)? (B|KiB|MiB)$/);
    await waitFor('the timeline', async () => (await page.locator('#timeline li').count()) > 0, { timeoutMs: 10_000 });
    expect(await page.locator('#stream-status').textContent()).toBe('live');
    // The token lives in this tab's sessionStorage only: no cookie.
    expect(await page.context().cookies()).toEqual([]);
  });

  it('switches over on a click: the roles swap and the timeline gains the switchover\'s events', async () => {
    const before = await page.locator('#timeline li').count();
    await page.locator('#switchover').click();
    await waitFor('the switchover\'s events in the timeline', async () => (await page.locator('#timeline li[data-rule="perform-switchover"]').count()) === 2, { timeoutMs: 20_000, intervalMs: 200 });
    await waitFor('the roles swapped', async () => (await roles()) === 'standby/primary', { timeoutMs: 90_000, intervalMs: 250 });
    await settled();
    await waitFor('the settled goals on the page', async () => (await text('node2', 'goal')) === 'primary' && (await text('node1', 'goal')) === 'secondary' && (await text('node1', 'reported')) === 'secondary', { timeoutMs: 20_000, intervalMs: 200 });
    const timeline = await page.locator('#timeline li').allTextContents();
    expect(timeline.length).toBeGreaterThan(before + 2);
    expect(timeline.some((t) => /node1.*→ draining.*switchover/.test(t))).toBe(true);
    expect(timeline.some((t) => /node2.*→ prepare_promotion/.test(t))).toBe(true);
    expect(await page.locator('#command-status').textContent()).toMatch(/^switchover: /);

    const shot = join(monitor.dir, 'dashboard.png');
    await page.screenshot({ path: shot });
    const png = readFileSync(shot);
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect(png.length).toBeGreaterThan(10_000);
    // The committed screenshot is refreshed only on request, so a test run leaves the tree clean.
    const saved = process.env.PGHA_UPDATE_SCREENSHOTS === '1' ? SCREENSHOT : shot;
    if (saved === SCREENSHOT) {
      mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
      copyFileSync(shot, SCREENSHOT);
    }
    console.log(`dashboard screenshot: ${saved} (${statSync(saved).size} bytes); timeline: ${timeline.length} events`);
  });

  it('puts the standby in maintenance and back with its button', async () => {
    await page.locator('#nodes tr[data-node="node1"] button.maintenance').click();
    await waitFor('node1 in maintenance', async () => (await text('node1', 'goal')) === 'maintenance' && (await text('node1', 'reported')) === 'maintenance', { timeoutMs: 60_000, intervalMs: 250 });
    expect(await page.locator('#nodes tr[data-node="node1"] button.maintenance').textContent()).toBe('Disable');
    await page.locator('#nodes tr[data-node="node1"] button.maintenance').click();
    await waitFor('node1 secondary again', async () => (await text('node1', 'goal')) === 'secondary' && (await text('node1', 'reported')) === 'secondary', { timeoutMs: 90_000, intervalMs: 250 });
    const rules = await page.locator('#timeline li').evaluateAll((items) => items.map((i) => (i as HTMLElement).dataset.rule));
    expect(rules).toContain('enable-maintenance');
    expect(rules).toContain('disable-maintenance');
    expect(consoleErrors.filter((e) => /Content Security Policy|Refused/.test(e))).toEqual([]);
  });

  it('with the viewer token, shows the nodes and events but no button that changes anything', async () => {
    await page.locator('#forget').click();
    await page.locator('#token').fill(readFileSync(join(`${monitor.pgdata}.pgha`, 'viewer-token'), 'utf8').trim());
    await page.locator('#login-form button[type=submit]').click();
    await page.locator('#read-only').waitFor({ state: 'visible', timeout: 30_000 });
    await waitFor('both nodes shown', async () => (await page.locator('#nodes tbody tr').count()) === 2, { timeoutMs: 30_000, intervalMs: 100 });
    expect(await page.locator('#switchover').isVisible()).toBe(false);
    expect(await page.locator('#nodes button').count()).toBe(0);
    await waitFor('the timeline', async () => (await page.locator('#timeline li').count()) > 0, { timeoutMs: 30_000, intervalMs: 100 });
  });

  it('says which nodes wait for a restart for a Postgres parameter, as pgha show state does (to a viewer too)', async () => {
    const set = await monitorFetch(`${monitor.url}/v1/formations/default/postgresql`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ parameters: [{ name: 'shared_buffers', value: '256MB' }] }) });
    expect(set.status, await set.clone().text()).toBe(200);
    await waitFor('both nodes noted as waiting for a restart', async () => {
      const notes = await page.locator('#notes li.pending-restart').allTextContents();
      return notes.length === 2 && notes.every((n) => /^Restart pending on node\d: shared_buffers \(pgha perform restart --pending\)$/.test(n));
    }, { timeoutMs: 30_000, intervalMs: 250 });
  });
});

