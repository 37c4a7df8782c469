/**
 * pgha installed as a package, as on a host without a clone (docs/install.md): `npm run pack`
 * makes one artefact, `npm install -g --prefix P` (offline: it carries its dependencies) turns it
 * into `P/bin/pgha`, and that command alone runs a formation (`pgha up`), reports its version and
 * commit, and writes systemd units that point at the install. Then `npm uninstall -g` removes it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import type { NodeStateRow, UpFile } from '@pgha/shared';
import { endAllProcesses, makeTestDir, startTracked, trackPgdata } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';
import { isPrimaryAndSecondaries } from './helpers/formation.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

afterAll(async () => {
  await endAllProcesses();
});

/** Runs a program to completion with `env` on top of this process's, failing the test with its output when it fails. */
async function runOk(file: string, args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<string> {
  const r = await execa(file, args, { cwd, env, reject: false, stdin: 'ignore', timeout: 600_000 });
  expect(r.exitCode, `${file} ${args.join(' ')}:\n${String(r.stdout).slice(-1500)}\n${String(r.stderr).slice(-1500)}`).toBe(0);
  return String(r.stdout);
}

describe('pgha installed from its package', () => {
  const work = makeTestDir();
  const prefix = join(work, 'prefix');
  const pgha = join(prefix, 'bin', 'pgha');
  const installed = join(prefix, 'lib', 'node_modules', 'pgha');

  it('npm run pack makes one artefact; npm install -g --offline installs it with its dependencies; --version names the version and commit', async () => {
    const tarball = (await runOk('npm', ['run', '-s', 'pack', '--', '--out', join(work, 'dist')])).trim().split('\n').at(-1)!;
    expect(tarball).toMatch(/\/pgha-\d+\.\d+\.\d+\.tgz$/);
    // --offline: every dependency is in the artefact, none comes from a registry.
    await runOk('npm', ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', tarball], {}, work);
    expect(existsSync(pgha)).toBe(true);

    const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;
    const commit = (await runOk('git', ['-C', ROOT, 'describe', '--always', '--dirty', '--abbrev=12'])).trim();
    expect((await runOk(pgha, ['--version'])).trim()).toBe(`pgha ${version} (commit ${commit})`);
    expect(JSON.parse(await runOk(pgha, ['version', '--json']))).toEqual({ version, commit });
    // The installed command runs from the install, not from this checkout.
    expect(readFileSync(join(installed, 'build-info.json'), 'utf8')).toContain(version);
    // It runs the bundled CLI (bin/pgha.js picks bundle/ when no tsc build is newer): the
    // bundle is there, without the metafile the tests read.
    expect(existsSync(join(installed, 'bundle', 'main.js'))).toBe(true);
    expect(existsSync(join(installed, 'tsconfig.tsbuildinfo'))).toBe(false);
    expect(existsSync(join(installed, 'bundle', 'meta.json'))).toBe(false);
  }, 900_000);

  it('the installed pgha runs a formation (pgha up), shows it, and writes systemd units that point at the install', async () => {
    const dir = join(work, 'formation');
    const up = startTracked(pgha, ['up', '--nodes', '2', '--dir', dir], { logFile: join(work, 'up.log') });
    trackPgdata(join(dir, 'monitor', 'pgdata'));
    for (const n of [1, 2]) trackPgdata(join(dir, `node${n}`, 'pgdata'));
    const upFile = await waitFor('pgha up to write up.json', () => {
      if (up.exitCode !== null) throw new Error(`pgha up exited early; see ${join(work, 'up.log')}`);
      return existsSync(join(dir, 'up.json')) ? (JSON.parse(readFileSync(join(dir, 'up.json'), 'utf8')) as UpFile) : undefined;
    }, { timeoutMs: 180_000 });
    const env = { PGHA_MONITOR: upFile.monitor.url, PGHA_AUTH_TOKEN_FILE: upFile.auth_token_file!, ...(upFile.ca_file ? { PGHA_SSL_CA_FILE: upFile.ca_file } : {}) };
    const rows = await waitFor('one primary and one secondary', async () => {
      const r = JSON.parse(await runOk(pgha, ['show', 'state', '--json'], env)) as NodeStateRow[];
      return isPrimaryAndSecondaries(r) && r.length === 2 ? r : undefined;
    }, { timeoutMs: 120_000, intervalMs: 500 });
    expect(rows.map((r) => r.name).sort()).toEqual(['node1', 'node2']);

    for (const pgdata of [join(dir, 'node1', 'pgdata'), join(dir, 'monitor', 'pgdata')]) {
      const unit = await runOk(pgha, ['show', 'systemd', '--pgdata', pgdata]);
      const execStart = /^ExecStart=(.*)$/m.exec(unit)?.[1];
      expect(execStart, unit).toContain(join(installed, 'bin', 'pgha.js'));
      expect(execStart).not.toContain(ROOT);
    }

    up.kill('SIGINT');
    const ended = await up;
    expect(ended.exitCode, readFileSync(join(work, 'up.log'), 'utf8').slice(-2000)).toBe(0);
  }, 600_000);

  it('npm uninstall -g removes the command', async () => {
    await runOk('npm', ['uninstall', '-g', '--prefix', prefix, 'pgha'], {}, work);
    expect(existsSync(pgha)).toBe(false);
    expect(existsSync(installed)).toBe(false);
  }, 300_000);
});
