/**
 * Loading node-postgres through `loadPgDriver` does not load Node 20's fetch implementation
 * (node-postgres's Cloudflare Workers check would, by building a `Response`), and leaves the
 * process's globals as they were. Run in a fresh Node process on the compiled module (`npm
 * test` builds first): this test runner's own process has loaded both long before.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const COMPILED = fileURLToPath(new URL('../dist/pg-connection.js', import.meta.url));
const FETCH_MODULE = 'NativeModule internal/deps/undici/undici';

/** What a fresh process saw after `loadPgDriver()`, `before` run first (an ES module's code). */
function loadIn(before: string): { fetchLoaded: boolean; navigator: unknown; client: string } {
  const code = `${before}
const { loadPgDriver } = await import(${JSON.stringify(COMPILED)});
const pg = loadPgDriver();
console.log(JSON.stringify({ fetchLoaded: process.moduleLoadList.includes(${JSON.stringify(FETCH_MODULE)}), navigator: globalThis.navigator ?? null, client: typeof pg.Client }));`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, encoding: 'utf8', timeout: 30_000 });
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  return JSON.parse(child.stdout) as { fetchLoaded: boolean; navigator: unknown; client: string };
}

describe('loadPgDriver', () => {
  it("loads node-postgres without Node's fetch implementation, and takes back the navigator it lent", () => {
    expect(loadIn('')).toEqual({ fetchLoaded: false, navigator: null, client: 'function' });
  });

  it('leaves a navigator the process already had as it was', () => {
    expect(loadIn("globalThis.navigator = { userAgent: 'mine' };")).toEqual({ fetchLoaded: false, navigator: { userAgent: 'mine' }, client: 'function' });
  });

  it('is what keeps the fetch implementation out: a plain require of node-postgres loads it', () => {
    const child = spawnSync(process.execPath, ['-e', `require('pg'); console.log(process.moduleLoadList.includes(${JSON.stringify(FETCH_MODULE)}))`], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(child.stdout.trim()).toBe('true');
  });
});
