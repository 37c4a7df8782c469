/**
 * The command line of pgha's long-running processes, `pgha monitor run` and `pgha keeper run`:
 * the one `pgha up` starts, `pgha show systemd` writes into a unit's `ExecStart`, and the
 * benchmark measures.
 */
import { fileURLToPath } from 'node:url';

/** The `pgha` entry point of this installation (absolute). */
export const PGHA_BIN = fileURLToPath(new URL('../bin/pgha.js', import.meta.url));

/**
 * V8's young generation capped per process, in MiB of each semi-space (`--max-semi-space-size`;
 * Node 20's default cap is 16). V8 grows the young generation up to its cap while a process
 * allocates fast (a monitor while nodes register and catch up, a keeper during a base backup)
 * and gives the memory back only after a while of quiet: an idle monitor kept 32 MB of it for
 * a minute after its nodes settled (issue 17: idle cost, `npm run bench`'s peak RSS). A
 * smaller cap means more, shorter young collections: the keeper allocates little at any time.
 * The monitor keeps 8 MiB: three monitors on etcd answering 2,000 reports a second used 125 %
 * of a core together with 4 MiB, 103 % with 8 and 112 % with 16 (`npm run bench:monitor --
 * --monitors 3 --sizes 2000`, one run each on 2026-12-05). Nothing pgha does depends on it:
 * without these flags the processes only hold more memory.
 */
export const YOUNG_GENERATION_MIB = { monitor: 8, keeper: 1 } as const;

/**
 * `node` and its arguments to run `pgha KIND run --pgdata PGDATA` as a service.
 *
 * ### Examples
 * ```ts
 * serviceCommand('keeper', '/srv/node1') // ['/usr/bin/node', '--max-semi-space-size=1', '/opt/pgha/packages/cli/bin/pgha.js', 'keeper', 'run', '--pgdata', '/srv/node1']
 * ```
 */
export function serviceCommand(kind: 'monitor' | 'keeper', pgdata: string): [string, ...string[]] {
  return [process.execPath, `--max-semi-space-size=${YOUNG_GENERATION_MIB[kind]}`, PGHA_BIN, kind, 'run', '--pgdata', pgdata];
}
