/**
 * `npm run build`'s second step (after `tsc -b`): the CLI's compiled modules
 * (`packages/cli/dist/main.js` and everything it imports, the other workspaces and their
 * third-party packages included) bundled by esbuild into `packages/cli/bundle/`, which
 * `bin/pgha.js` runs. Every `await import()` of the sources stays a separate chunk, loaded
 * when a command needs it, as in `dist/`.
 *
 * Why: Node 20 loads an ES module graph file by file (resolve, stat, read, compile), and a
 * keeper's start-up went through about 150 of them. Bundled, a restarted keeper reaches its
 * first state ≈ 240 ms sooner (620 → 380 ms on this project's 2-core machine), which is most of
 * what issue 17 §5's rejoin spends before pg_rewind's check; see docs/timeouts.md.
 *
 * Packages that pgha loads on first use through `createRequire` (node-postgres, etcd3 with
 * gRPC, cockatiel, node-forge, pino-pretty) are not in the bundle: they load from `node_modules`
 * as before, resolved from the bundle's directory. node-postgres is also marked external, so
 * that a static import of it, should one appear, still gives the process one copy of it.
 *
 * A CommonJS package reached by `await import()` becomes a chunk whose only export is
 * `default` (its `module.exports`), where Node's own loader would also give named exports. So
 * the sources take such a package's exports from `.default` (`(await import('prom-client')).default`,
 * `{ default: Table }`), which works both ways; the build fails on any other use of such a chunk
 * ({@link assertDefaultOnlyUse}).
 *
 * It also writes `bundle/meta.json`, esbuild's metafile: which source modules each chunk holds
 * (`outputs[chunk].inputs`, paths relative to the repository), so that a test can still say
 * which of pgha's modules a command loaded (test/cli-start.test.ts).
 *
 * Usage: `tsx scripts/bundle-cli.ts` (no arguments). Prints nothing when it succeeds.
 *
 * @throws (exits 1) when esbuild reports an error: an import it cannot resolve, say.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = `${ROOT}packages/cli/`;
/** Where `bin/pgha.js` looks for it; one directory below the CLI package, as `dist/` is. */
const BUNDLE_DIR = `${CLI}bundle`;

rmSync(BUNDLE_DIR, { recursive: true, force: true });
const result = await build({
  absWorkingDir: ROOT,
  metafile: true,
  entryPoints: { main: `${CLI}dist/main.js` },
  outdir: BUNDLE_DIR,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Without comments and indentation, and ASCII only (esbuild escapes any other character in
  // strings): V8 keeps every loaded chunk's source in the heap for as long as the process runs,
  // one byte per character when it is all Latin-1 and two otherwise (the monitor's main chunk
  // was 2.3 MB of text, 4.4 MB of heap, for an arrow in a comment). Identifiers keep their
  // names, so stack traces and CPU profiles still say which function ran.
  minifyWhitespace: true,
  charset: 'ascii',
  // node-postgres stays one module instance for the whole process: every module takes it from
  // `loadPgDriver` (pg-connection.ts, `createRequire` on first use), which a bundled copy from a
  // static import would duplicate (twice the code in memory, two separate sets of its defaults).
  external: ['pg'],
  // Third-party CommonJS inside an ES module bundle still calls require() for Node's built-ins.
  banner: { js: "import { createRequire as __pghaCreateRequire } from 'node:module'; const require = __pghaCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
try {
  assertDefaultOnlyUse(result.metafile);
} catch (err) {
  // No bundle rather than a wrong one: bin/pgha.js then runs dist/.
  rmSync(BUNDLE_DIR, { recursive: true, force: true });
  throw err;
}
writeFileSync(`${BUNDLE_DIR}/meta.json`, JSON.stringify(result.metafile));

/**
 * Fails when a chunk that wraps a CommonJS package (its only export `default`) is imported
 * other than for that default: `(await import("./chunk.js")).default` or `{ default: X } =
 * await import("./chunk.js")`.
 *
 * @throws Error naming the chunk, the package and the importing chunk.
 */
function assertDefaultOnlyUse(meta: Metafile): void {
  const wrappers = Object.entries(meta.outputs).filter(([, o]) => o.entryPoint?.includes('node_modules/') && o.exports.length === 1 && o.exports[0] === 'default');
  if (wrappers.length === 0) return;
  const chunks = Object.keys(meta.outputs).filter((f) => f.endsWith('.js')).map((f) => ({ importer: f, code: readFileSync(join(ROOT, f), 'utf8') }));
  for (const [out, o] of wrappers) {
    const name = basename(out);
    for (const { importer, code } of chunks) {
      const needle = `import("./${name}")`;
      for (let at = code.indexOf(needle); at >= 0; at = code.indexOf(needle, at + 1)) {
        const after = code.slice(at + needle.length, at + needle.length + 12);
        const before = code.slice(Math.max(0, at - 60), at);
        if (after.startsWith(').default') || /\{\s*default:\s*[\w$]+\s*\}\s*=\s*await\s*$/.test(before)) continue;
        throw new Error(`${importer} imports ${name} (the CommonJS package ${o.entryPoint}) for more than its default export; in a bundle only \`default\` (its module.exports) is there: take the exports from \`(await import('…')).default\``);
      }
    }
  }
}
