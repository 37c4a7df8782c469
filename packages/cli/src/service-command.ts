/**
 * The command line of pgha's long-running processes, `pgha monitor run` and `pgha keeper run`:
 * the one `pgha up` starts, `pgha show systemd` writes into a unit's `ExecStart`, and the
 * benchmark measures.
 */
import { fileURLToPath } from 'node:url';

/** The `pgha` entry point of this installation (absolute). */
export const PGHA_BIN = fileURLToPath(new URL('../bin/pgha.js', import.meta.url));

/**
 * The Node options of each long-running process, placed before `pgha.js`. Nothing pgha does
 * depends on them: without them the processes only hold more memory.
 *
 * - `--max-semi-space-size` caps V8's young generation, in MiB of each semi-space (Node 20's
 *   default cap is 16). V8 grows the young generation up to its cap while a process allocates
 *   fast (a monitor while nodes register and catch up, a keeper during a base backup) and gives
 *   the memory back only after a while of quiet: an idle monitor kept 32 MB of it for a minute
 *   after its nodes settled (issue 17: idle cost, `npm run bench`'s peak RSS). A smaller cap
 *   means more, shorter young collections: the keeper allocates little at any time. The monitor
 *   keeps 16 MiB: under load a report's objects that live past two young collections are
 *   copied into the old generation, so with a smaller young generation more of them are, and
 *   each collection stops the event loop for milliseconds. Three monitors on etcd answering
 *   3,000 reports a second (`npm run bench:monitor -- --monitors 3`, two runs each, alternated,
 *   2026-12-07): with 16 MiB each monitor spent 1.0–1.5 s of every 30 in young collections
 *   (150–215 of them) against 1.9–3.0 s (340–405) with 8, the three used 109–111 % of a core
 *   against 119–133 %, and report p99 was 60.6–64.0 ms against 59.7–216.9. At rest (`pgha up
 *   --nodes 2`, two runs each) the monitor's RSS was 91–92 MB against 86–92. With 32 MiB the
 *   collections were fewer again but each took twice as long (median 13–18 ms).
 * - `--no-opt` (the keeper's): no optimizing compiler; the interpreter and the baseline
 *   compiler, Sparkplug, still run. At rest a keeper does a few small things a second, and in a
 *   switchover or a rejoin its busy moments last a few hundred ms, too short for optimized code
 *   to pay for compiling it on the same two cores. Measured on `pgha up --nodes 2` at rest (60 s
 *   windows, VmRSS at the end, utime+stime) and with `npm run bench -- --systems pgha
 *   --scenarios switchover,node-crash --runs 4`, two pairs of runs in both orders (2026-12-07,
 *   `bench/results/idle.md`): each keeper 53–54 MB instead of 58–60, CPU the same within the
 *   noise, the switchover's longest write gap the same (349–352 ms against 332–400), the old
 *   primary back as a secondary after its keeper's restart in 968–976 ms against 1,037–1,105.
 *   The monitor keeps the optimizing compiler: under load it is what answers thousands of
 *   reports a second (issue 15). V8's lite mode saves 2 MB more but runs the keeper's polling in
 *   the interpreter alone, which lengthened the switchover's gap by ~70 ms.
 */
export const SERVICE_NODE_OPTIONS = {
  monitor: ['--max-semi-space-size=16'],
  keeper: ['--max-semi-space-size=1', '--no-opt'],
} as const;

/**
 * `node` and its arguments to run `pgha KIND run --pgdata PGDATA` as a service.
 *
 * ### Examples
 * ```ts
 * serviceCommand('keeper', '/srv/node1') // ['/usr/bin/node', '--max-semi-space-size=1', '--no-opt', '/opt/pgha/packages/cli/bin/pgha.js', 'keeper', 'run', '--pgdata', '/srv/node1']
 * ```
 */
export function serviceCommand(kind: 'monitor' | 'keeper', pgdata: string): [string, ...string[]] {
  return [process.execPath, ...SERVICE_NODE_OPTIONS[kind], PGHA_BIN, kind, 'run', '--pgdata', pgdata];
}
