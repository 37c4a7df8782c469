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
 * as before, resolved from the bundle's directory. node-postgres is also left out where it is
 * imported (the monitor's store), so that the process has one copy of it.
 *
 * It also writes `bundle/meta.json`, esbuild's metafile: which source modules each chunk holds
 * (`outputs[chunk].inputs`, paths relative to the repository), so that a test can still say
 * which of pgha's modules a command loaded (test/cli-start.test.ts).
 *
 * Usage: `tsx scripts/bundle-cli.ts` (no arguments). Prints nothing when it succeeds.
 *
 * @throws (exits 1) when esbuild reports an error: an import it cannot resolve, say.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = `${ROOT}packages/cli/`;
/** Where `bin/pgha.js` looks for it; one directory below the CLI package, as `dist/` is. */
export const BUNDLE_DIR = `${CLI}bundle`;

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
  // node-postgres stays one module instance for the whole process: `@pgha/postgres` loads it
  // on first use with `createRequire` (pg-connection.ts), which a bundled copy beside it would
  // duplicate (twice the code in memory, two separate sets of its defaults).
  external: ['pg'],
  // Third-party CommonJS inside an ES module bundle still calls require() for Node's built-ins.
  banner: { js: "import { createRequire as __pghaCreateRequire } from 'node:module'; const require = __pghaCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
writeFileSync(`${BUNDLE_DIR}/meta.json`, JSON.stringify(result.metafile));
