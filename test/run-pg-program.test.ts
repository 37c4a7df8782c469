/**
 * `runPgProgram`, how pgha runs every Postgres program (initdb, pg_basebackup, pg_rewind,
 * pg_waldump, psql, pg_ctl) with execa: its stdout without the final newline,
 * its input on stdin, a failure with its exit code and the tail of its output, a timeout, and
 * no program left running when the process that started it exits. Real programs, as the
 * Postgres OS user: the Postgres ones, and `cat`, `sleep`, `env` and `id` under names of a test
 * directory given as `PGHA_PG_BINDIR`.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PostgresCommandError } from '@pgha/shared';
import { allProcesses, postgresOsUser, postgresSpawnOptions, processCommandLine, runPgProgram } from '@pgha/postgres';
import { endAllProcesses, makeTestDir } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A directory holding `pg_cat` (cat), `pg_sleep` (sleep), `pg_env` (env) and `pg_id` (id), readable by the Postgres OS user. */
function fakeBinDir(): string {
  const dir = makeTestDir();
  chmodSync(dir, 0o755);
  symlinkSync('/bin/cat', join(dir, 'pg_cat'));
  symlinkSync('/bin/sleep', join(dir, 'pg_sleep'));
  symlinkSync('/usr/bin/env', join(dir, 'pg_env'));
  symlinkSync('/usr/bin/id', join(dir, 'pg_id'));
  return dir;
}

/** The PIDs of the processes whose command line is `argv`. */
const pidsRunning = (argv: readonly string[]): number[] => allProcesses().filter((p) => processCommandLine(p.pid)?.join(' ') === argv.join(' ')).map((p) => p.pid);

const savedBinDir = process.env.PGHA_PG_BINDIR;
afterEach(() => {
  if (savedBinDir === undefined) delete process.env.PGHA_PG_BINDIR;
  else process.env.PGHA_PG_BINDIR = savedBinDir;
});
// The fake bin directories (makeTestDir) are removed there; they were left in the temp dir.
afterAll(() => endAllProcesses());

describe('runPgProgram', () => {
  it('returns stdout without its final newline, and fails with the exit code and the output', async () => {
    expect(await runPgProgram('pg_controldata', ['--version'])).toMatch(/^pg_controldata \(PostgreSQL\) 15\.\d+.*[^\n]$/);
    const failed = await runPgProgram('pg_controldata', ['/nonexistent/pgdata']).then(() => undefined, (err: unknown) => err);
    expect(failed).toBeInstanceOf(PostgresCommandError);
    expect((failed as PostgresCommandError).exitCode).toBe(1);
    expect((failed as PostgresCommandError).stderrTail).toMatch(/could not open file "\/nonexistent\/pgdata\/global\/pg_control"/);
  });

  it('gives the program its input on stdin', async () => {
    process.env.PGHA_PG_BINDIR = fakeBinDir();
    expect(await runPgProgram('pg_cat', [], { input: 'select 1;\n' })).toBe('select 1;');
    // Without input, stdin is /dev/null: cat ends at once.
    expect(await runPgProgram('pg_cat', [])).toBe('');
  });

  it('gives the program the environment of postgresSpawnOptions alone, as the Postgres OS user', async () => {
    process.env.PGHA_PG_BINDIR = fakeBinDir();
    process.env.PGHA_TEST_NOT_INHERITED = 'secret';
    try {
      const env = (await runPgProgram('pg_env', [])).split('\n').map((line) => line.split('=')[0]).sort();
      expect(env).toEqual(Object.keys(postgresSpawnOptions().env).sort());
    } finally {
      delete process.env.PGHA_TEST_NOT_INHERITED;
    }
    const user = postgresOsUser();
    if (user) expect(await runPgProgram('pg_id', ['-u'])).toBe(String(user.uid));
  });

  it('kills a program at its timeout', async () => {
    process.env.PGHA_PG_BINDIR = fakeBinDir();
    const startedAtMs = performance.now();
    const failed = await runPgProgram('pg_sleep', ['30'], { timeoutMs: 100 }).then(() => undefined, (err: unknown) => err);
    expect(failed).toBeInstanceOf(PostgresCommandError);
    expect((failed as Error).message).toMatch(/^pg_sleep failed \(exit signal\): .*timed out after 100 ms.*killed by SIGTERM/s);
    expect(performance.now() - startedAtMs).toBeLessThan(5000);
  });

  it('leaves no program running when the process that started it exits', async () => {
    const binDir = fakeBinDir();
    const argv = [join(binDir, 'pg_sleep'), '31.4159'];
    // The child says whether the program ran before it exits.
    const script = `import { allProcesses, postgresOsUser, postgresSpawnOptions, processCommandLine, runPgProgram } from '@pgha/postgres';
      runPgProgram('pg_sleep', ['31.4159']).catch(() => undefined);
      setTimeout(() => {
        const running = allProcesses().some((p) => processCommandLine(p.pid)?.join(' ') === ${JSON.stringify(argv.join(' '))});
        process.stdout.write(running ? 'running' : 'not running');
        process.exit(0);
      }, 300);`;
    try {
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, PGHA_PG_BINDIR: binDir }, timeout: 30_000, encoding: 'utf8' });
      expect(out).toBe('running');
      await waitFor('the program to be gone with the process that started it', () => pidsRunning(argv).length === 0, { timeoutMs: 5000, intervalMs: 20 });
    } finally {
      for (const pid of pidsRunning(argv)) process.kill(pid, 'SIGKILL');
    }
  });
});
