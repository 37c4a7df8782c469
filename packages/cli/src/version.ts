/**
 * Which pgha this is: the version of the `pgha` package and the commit it was built from, for
 * `pgha --version` and `pgha version`.
 *
 * An installed package (`npm run pack`, then `npm install -g pgha-VERSION.tgz`) carries
 * `build-info.json` beside `bin/` and `dist/`, written when it was packed. A source checkout has
 * none: the commit is asked of git there, when the version is asked for (never at start-up).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** The CLI package's directory (`bin/`, `dist/`, `package.json`, and `build-info.json` when packed). */
const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));

/** The file `npm run pack` writes into the packed CLI (`scripts/pack.ts`). */
export const BUILD_INFO_FILE = 'build-info.json';

/** What `pgha version --json` prints; also the content of {@link BUILD_INFO_FILE}. */
export const BuildInfo = z.object({
  /** The package's version (semver), e.g. `0.1.0`. */
  version: z.string(),
  /** `git describe --always --dirty --abbrev=12` of the tree it was built from, e.g. `58a705d12a3b` or `58a705d12a3b-dirty`; null when unknown. */
  commit: z.string().nullable(),
});
/** See {@link BuildInfo}. */
export type BuildInfo = z.infer<typeof BuildInfo>;

/**
 * This installation's version and commit: from `build-info.json` when the package was packed,
 * else the package's `package.json` and git (a source checkout; `commit` null when git is missing
 * or the directory is not a repository).
 */
export function buildInfo(): BuildInfo {
  try {
    return BuildInfo.parse(JSON.parse(readFileSync(`${PACKAGE_DIR}/${BUILD_INFO_FILE}`, 'utf8')));
  } catch {
    const { version } = z.object({ version: z.string() }).parse(JSON.parse(readFileSync(`${PACKAGE_DIR}/package.json`, 'utf8')));
    return { version, commit: sourceCommit(PACKAGE_DIR) };
  }
}

/**
 * The commit of the git work tree holding `dir`, as `git describe --always --dirty --abbrev=12`
 * prints it, or null when there is none (git missing, not a repository).
 */
export function sourceCommit(dir: string): string | null {
  const r = spawnSync('git', ['-C', dir, 'describe', '--always', '--dirty', '--abbrev=12'], {
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', GIT_CONFIG_NOSYSTEM: '1' },
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: 10_000,
  });
  const out = r.status === 0 ? r.stdout.trim() : '';
  return out === '' ? null : out;
}

/** One line: `pgha 0.1.0 (commit 58a705d12a3b)`, or `(commit unknown)`. */
export function versionLine(info: BuildInfo = buildInfo()): string {
  return `pgha ${info.version} (commit ${info.commit ?? 'unknown'})`;
}
