#!/usr/bin/env node
// Entry point of the `pgha` command. It runs the compiled CLI from its bundle (../bundle, made
// by `npm run build` after `tsc -b`: scripts/bundle-cli.ts), which starts faster, and from
// ../dist when there is no bundle or when `tsc -b` ran after it (the checkout's
// tsconfig.tsbuildinfo is newer): the same code either way, never a stale copy.
import { statSync } from 'node:fs';

const mtime = (path) => statSync(new URL(path, import.meta.url), { throwIfNoEntry: false })?.mtimeMs;
const bundled = mtime('../bundle/main.js');
const built = mtime('../tsconfig.tsbuildinfo');
const { main } = await import(bundled !== undefined && (built === undefined || bundled >= built) ? '../bundle/main.js' : '../dist/main.js');

await main(process.argv);
