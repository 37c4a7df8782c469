/**
 * Loaded into a `pgha` process under test with `--import` (through NODE_OPTIONS), when
 * PGHA_TEST_MODULE_LIST names a file: registers a module hook that appends to that file the URL
 * of every module the process loads through `import` (each ES module, and the CommonJS entry of
 * each package an ES module imports), one a line. Plain JavaScript: the process is plain node.
 */
import { appendFileSync } from 'node:fs';
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

/** The file the hook appends to (set in the hooks' thread by `initialize`). */
let listFile;

/** Node's module hook: receives `register`'s data in the hooks' thread. */
export function initialize(data) {
  listFile = data.listFile;
}

/** Node's module hook: records each module as it loads. */
export async function load(url, context, nextLoad) {
  appendFileSync(listFile, `${url}\n`);
  return nextLoad(url, context);
}

if (isMainThread && process.env.PGHA_TEST_MODULE_LIST) register(import.meta.url, { data: { listFile: process.env.PGHA_TEST_MODULE_LIST } });
