/**
 * Decision cost (`npm run bench:decide`): µs per `decideUntilStable` of one group, against
 * the reference of XState's own `transition(groupMachine, snapshot, event)` (a new inert actor
 * per call, what `decide` used before) on the same facts, in the same run. Prints the median
 * of 7 rounds per group shape and the ratio pgha / reference.
 */
import { transition } from 'xstate';
import { decideUntilStable, groupMachine, groupPhase, type GroupFacts } from '@pgha/shared';
import { groupFacts } from '../packages/shared/test/fact-builders.js';

const SHAPES: Record<string, GroupFacts> = {
  'primary + 2 secondaries (nothing to do)': groupFacts({ nowMs: 1_000_000 }).primary({}).standby({}).standby({}).build(),
  'primary + failed standby': groupFacts({ nowMs: 1_000_000 }).primary({}).standby({}).standby({ health: 'bad', pgIsRunning: false, keeperSilentMs: 10_000 }).build(),
  'primary failed (election)': groupFacts({ nowMs: 1_000_000 }).primary({ health: 'bad', keeperSilentMs: 10_000 }).standby({ streaming: false, notStreamingForMs: 5_000 }).standby({ streaming: false, notStreamingForMs: 5_000 }).build(),
};
const EVENT = { type: 'evaluate', cause: 'report' } as const;
const CALLS = 5_000;
const ROUNDS = 7;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** µs per call of `fn`, median over {@link ROUNDS} rounds of {@link CALLS} calls. */
function measure(fn: () => void): number {
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t = performance.now();
    for (let i = 0; i < CALLS; i++) fn();
    rounds.push(((performance.now() - t) * 1000) / CALLS);
  }
  return median(rounds);
}

console.log('| group | pgha decideUntilStable µs | reference: xstate transition() µs | ratio |');
console.log('|---|---|---|---|');
for (const [name, facts] of Object.entries(SHAPES)) {
  const snapshot = groupMachine.resolveState({ value: groupPhase(facts), context: { facts } });
  measure(() => decideUntilStable(facts, EVENT)); // warm-up
  const ours = measure(() => decideUntilStable(facts, EVENT));
  const reference = measure(() => transition(groupMachine, snapshot, EVENT));
  console.log(`| ${name} | ${ours.toFixed(1)} | ${reference.toFixed(1)} | ${(ours / reference).toFixed(2)} |`);
}
