/**
 * `npm run chaos -- --count 30 [--seed S] [--with-fencing]`: repeated chaos on a 3-node
 * formation on a simulated network (issue 5, fault 8); see test/helpers/chaos.ts. Prints the
 * seed first (replay a failure with `--seed`), a line per fault, and the table at the end.
 * Exits 1 when a fault's history is not clean. Needs root and `ip netns`.
 */
import { Command } from '@commander-js/extra-typings';
import { intArg } from '../bench/lib/args.js';
import { newSeed, runChaos } from '../test/helpers/chaos.js';

const program = new Command('chaos')
  .description('random faults in a row on a 3-node pgha formation, with the history checker after each')
  .option('--count <n>', 'how many faults', intArg(1, 1000), 30)
  .option('--seed <n>', 'seed of the fault generator (printed by every run)', intArg(0, 2 ** 31 - 1))
  .option('--with-fencing', 'also stage faults that rely on keeper self-fencing (isolate the primary, pause it)', false)
  .option('--recovery-bound <ms>', 'recovery bound of each fault after its heal, in ms', intArg(1000, 600_000), 90_000)
  .option('--keep-going', 'go on after a fault whose history is not clean', false);
const o = program.parse().opts();

const rows = await runChaos({ count: o.count, seed: o.seed ?? newSeed(), withFencing: o.withFencing, recoveryBoundMs: o.recoveryBound, stopOnFailure: !o.keepGoing });
const failed = rows.filter((r) => !r.clean).length;
if (failed > 0 || rows.length < o.count) {
  console.error(`[chaos] ${failed} of ${rows.length} faults not clean${rows.length < o.count ? ` (stopped after ${rows.length} of ${o.count})` : ''}`);
  process.exitCode = 1;
}
