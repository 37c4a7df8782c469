/**
 * `npm run pack [-- --out DIR]`: one artefact, `pgha-VERSION.tgz`, that `npm install -g` turns
 * into a `pgha` command on a host without a clone of this repository (docs/install.md).
 *
 * What is in it: the CLI package (`packages/cli`: `bin/pgha.js`, `dist/`, `scripts/` with the
 * installers `pgha up` runs) at the top, named `pgha`, with everything it runs on bundled inside
 * it (`bundleDependencies`): the other workspace packages (`@pgha/shared`, `postgres`, `client`,
 * `migrations`, `monitor`, `keeper`), each as `npm pack` of that workspace gives it (its
 * `files`), and every third-party package they use in production, copied from this checkout's
 * `node_modules` (`npm ls --omit=dev --all`): the versions `npm test` ran against, and an install
 * that needs no registry. `build-info.json` records the version and the commit it was packed
 * from (`pgha --version`).
 *
 * It builds first (`npm run build`: `tsc -b`, then the CLI's bundle). Prints the artefact's absolute path on stdout, alone on its line.
 *
 * @throws when the build fails, or two workspaces ask for different ranges of one package.
 */
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from '@commander-js/extra-typings';
import { execa } from 'execa';
import { BUILD_INFO_FILE, sourceCommit, type BuildInfo } from '../packages/cli/src/version.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The workspaces bundled inside the CLI, by directory. */
const BUNDLED = ['packages/shared', 'packages/postgres', 'packages/client', 'migrations', 'packages/monitor', 'packages/keeper'];
const CLI = 'packages/cli';

interface PackageJson {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  [key: string]: unknown;
}

function readPackage(dir: string): PackageJson {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/** `npm pack` of the workspace at `dir` (its `files`), unpacked into `into`. */
async function packWorkspace(dir: string, into: string, scratch: string): Promise<void> {
  const out = await execa('npm', ['pack', '--json', '--pack-destination', scratch], { cwd: join(ROOT, dir) });
  const [{ filename }] = JSON.parse(out.stdout) as [{ filename: string }];
  mkdirSync(into, { recursive: true });
  await execa('tar', ['-xzf', join(scratch, filename), '-C', into, '--strip-components=1']);
}

/**
 * Copies every third-party package the workspaces need in production from this checkout's
 * `node_modules` into `into` (same relative paths, so nested versions stay nested). The
 * workspaces' own links are left out (they are packed with `npm pack`).
 */
async function copyProductionModules(into: string): Promise<void> {
  const listed = await execa('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, reject: false });
  const top = join(ROOT, 'node_modules') + sep;
  const paths = listed.stdout.split('\n').filter((p) => p.startsWith(top) && !lstatSync(p).isSymbolicLink()).sort();
  // A package's directory holds its nested node_modules: copy the outermost ones only.
  const outermost = paths.filter((p, i) => !paths.slice(0, i).some((q) => p.startsWith(q + sep)));
  for (const p of outermost) cpSync(p, join(into, relative(top, p)), { recursive: true });
}

async function main(): Promise<void> {
  const o = new Command('pack')
    .description('build pgha-VERSION.tgz, installable with npm install -g')
    .option('--out <dir>', 'where to write the artefact', join(ROOT, 'build'))
    .parse()
    .opts();
  const out = resolve(o.out);
  await execa('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });

  const scratch = mkdtempSync(join(tmpdir(), 'pgha-pack-'));
  try {
    const stage = join(scratch, 'package');
    await packWorkspace(CLI, stage, scratch);
    const workspaceNames = new Set([CLI, ...BUNDLED].map((d) => readPackage(join(ROOT, d)).name));
    // Every third-party package any workspace uses, once, at the top.
    const dependencies: Record<string, string> = {};
    for (const dir of [CLI, ...BUNDLED]) {
      const pkg = readPackage(join(ROOT, dir));
      if (dir !== CLI) await packWorkspace(dir, join(stage, 'node_modules', pkg.name), scratch);
      for (const [name, range] of Object.entries(pkg.dependencies ?? {})) {
        if (workspaceNames.has(name)) continue;
        if (dependencies[name] !== undefined && dependencies[name] !== range) {
          throw new Error(`${dir} asks for ${name}@${range}, another workspace for ${name}@${dependencies[name]}: make them agree before packing`);
        }
        dependencies[name] = range;
      }
    }
    await copyProductionModules(join(stage, 'node_modules'));
    const root = readPackage(ROOT);
    const cli = readPackage(join(ROOT, CLI));
    const bundled = BUNDLED.map((d) => readPackage(join(ROOT, d)));
    const manifest = {
      name: root.name,
      version: root.version,
      description: root['description'],
      license: root['license'],
      type: 'module',
      engines: root['engines'],
      bin: cli['bin'],
      files: [...(cli['files'] as string[]), BUILD_INFO_FILE],
      dependencies: { ...Object.fromEntries(Object.entries(dependencies).sort(([a], [b]) => a.localeCompare(b))), ...Object.fromEntries(bundled.map((p) => [p.name, p.version])) },
      bundleDependencies: true,
    };
    const info: BuildInfo = { version: root.version, commit: sourceCommit(ROOT) };
    writeFileSync(join(stage, BUILD_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);
    writeFileSync(join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    for (const doc of ['README.md', 'LICENSE']) if (existsSync(join(ROOT, doc))) cpSync(join(ROOT, doc), join(stage, doc));

    mkdirSync(out, { recursive: true });
    const packed = await execa('npm', ['pack', '--json', '--pack-destination', out], { cwd: stage });
    const [{ filename, size, entryCount }] = JSON.parse(packed.stdout) as [{ filename: string; size: number; entryCount: number }];
    process.stderr.write(`packed pgha ${info.version} (commit ${info.commit ?? 'unknown'}): ${entryCount} files, ${(size / 1024).toFixed(0)} kB\n`);
    process.stdout.write(`${join(out, filename)}\n`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
