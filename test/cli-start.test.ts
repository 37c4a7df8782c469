/**
 * The CLI loads what a command needs when it runs (issue 17 §4: the CLI answers like a C tool):
 * every command still prints its help; `pgha --help` loads neither the HTTP client nor any
 * server's modules; `pgha show state` against a running monitor prints its table, and its JSON,
 * without loading the monitor's or the keeper's modules, Postgres's driver, zod, pino, fastify or
 * XState. What a process loads is listed by a module hook (`helpers/module-list-hook.mjs`) in
 * the real `pgha` process; a chunk of the CLI's bundle (`scripts/bundle-cli.ts`) stands for the
 * modules esbuild put in it (its `meta.json`). Timings are not asserted here: `npm run
 * bench:cli` prints them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { buildProgram, run } from '../packages/cli/src/main.js';
import { startMonitor } from './helpers/cluster.js';
import { endAllProcesses, makeTestDir, runPgha } from './helpers/processes.js';

const HOOK = fileURLToPath(new URL('./helpers/module-list-hook.mjs', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUNDLE_META = join(ROOT, 'packages/cli/bundle/meta.json');

/**
 * The source modules behind each chunk of the CLI's bundle, by the chunk's file URL (esbuild's
 * metafile: `outputs[path].inputs`, paths relative to the repository).
 */
function bundleInputs(): Map<string, string[]> {
  const meta = JSON.parse(readFileSync(BUNDLE_META, 'utf8')) as { outputs: Record<string, { inputs: Record<string, unknown> }> };
  const url = (path: string) => pathToFileURL(join(ROOT, path)).href;
  return new Map(Object.entries(meta.outputs).map(([out, o]) => [url(out), Object.keys(o.inputs).map(url)]));
}

/** What no client command may load: the servers' packages and the libraries only they use. */
const SERVER_MODULES = ['/packages/monitor/', '/packages/keeper/', '/migrations/', ...['zod', 'pg', 'pino', 'fastify', 'xstate', 'kysely', 'etcd3', 'prom-client', 'execa', 'undici'].map((p) => `/node_modules/${p}/`)];

afterAll(async () => {
  await endAllProcesses();
});

/** Every command's path below `cmd` (`['keeper', 'create']`), depth first. */
function commandPaths(cmd: CommandUnknownOpts, path: string[] = []): string[][] {
  return cmd.commands.flatMap((c) => [[...path, c.name()], ...commandPaths(c, [...path, c.name()])]);
}

/**
 * Runs the built `pgha ARGS` with the module hook; returns its result, the files it loaded
 * (`files`: URLs, the bundle's chunks as such) and the modules they hold (`modules`: URLs, each
 * chunk replaced by its source modules).
 */
async function runListingModules(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string; files: string[]; modules: string[] }> {
  const listFile = join(makeTestDir(), 'modules.txt');
  const r = await runPgha(args, { NODE_OPTIONS: `--import=${HOOK}`, PGHA_TEST_MODULE_LIST: listFile });
  const chunks = bundleInputs();
  const files = readFileSync(listFile, 'utf8').trim().split('\n');
  return { ...r, files, modules: files.flatMap((url) => chunks.get(url) ?? [url]) };
}

/** The modules of `modules` whose URL contains one of `parts`. */
const loadedOf = (modules: readonly string[], parts: readonly string[]): string[] => modules.filter((m) => parts.some((p) => m.includes(p)));

describe('pgha loads what a command needs when it runs', () => {
  it('runs from the bundle that `npm run build` made', async () => {
    expect(existsSync(BUNDLE_META), 'packages/cli/bundle/meta.json: run `npm run build`').toBe(true);
    const r = await runListingModules(['--version']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^pgha \d/);
    expect(r.files.filter((f) => f.includes('/packages/cli/')).every((f) => f.includes('/packages/cli/bundle/') || f.endsWith('/packages/cli/bin/pgha.js'))).toBe(true);
    expect(r.modules.some((m) => m.endsWith('/packages/cli/dist/main.js'))).toBe(true);
  });

  it('every command prints its help', async () => {
    const paths = commandPaths(buildProgram());
    expect(paths.length).toBeGreaterThan(50);
    let stdout = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
    try {
      for (const path of [[], ...paths]) {
        stdout = '';
        const exitCode = await run(['node', 'pgha', ...path, '--help']);
        expect(exitCode, `pgha ${path.join(' ')} --help`).toBe(0);
        expect(stdout, `pgha ${path.join(' ')} --help`).toMatch(new RegExp(`^Usage: ${['pgha', ...path].join(' ')}( |$)`, 'm'));
      }
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('pgha --help loads no HTTP client and no server module', async () => {
    const r = await runListingModules(['--help']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: pgha /);
    expect(r.modules.some((m) => m.endsWith('/packages/cli/dist/main.js'))).toBe(true);
    expect(loadedOf(r.modules, [...SERVER_MODULES, '/packages/client/', '/node_modules/cli-table3/'])).toEqual([]);
  });

  it('pgha show state against a running monitor prints its table and JSON, loading no server module', async () => {
    const monitor = await startMonitor();
    const table = await runListingModules(['show', 'state', '--monitor', monitor.url]);
    expect(table.exitCode, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^ Name +\| +Node +\| +Host:Port +\| +TLI: LSN +\| +Connection +\| +Reported State +\| +Assigned State +\| +Health *$/m);
    // It did ask the monitor: the HTTP client is among what it loaded.
    expect(table.modules.some((m) => m.includes('/packages/client/'))).toBe(true);
    expect(loadedOf(table.modules, SERVER_MODULES)).toEqual([]);

    const json = await runListingModules(['show', 'state', '--json', '--monitor', monitor.url]);
    expect(json.exitCode, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([]);
    expect(loadedOf(json.modules, SERVER_MODULES)).toEqual([]);
  }, 120_000);
});
