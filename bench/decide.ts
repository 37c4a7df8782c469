/**
 * Decision cost (`npm run bench:decide`): µs per `decideUntilStable` of one group (one to three
 * transitions of the group machine, until no rule applies), and per single transition two ways:
 * pgha's `transitionGroup` (one shared, never-started actor) against XState's public pure
 * `transition(groupMachine, snapshot, event)` (a new inert actor per call), on the same facts in
 * the same run. Prints the median of 7 rounds of 5000 calls per group shape, and the ratio of
 * the two single transitions. The figures justify `transitionGroup` (see its TSDoc).
 */
import { transition } from 'xstate';
import { decideUntilStable, groupMachine, groupPhase, transitionGroup, type GroupFacts } from '@pgha/shared';
import { groupFacts } from '../packages/shared/test/fact-builders.js';

const SHAPES: Record<string, GroupFacts> = {
  'primary + 2 secondaries (nothing to do)': groupFacts({ nowMs: 1_000_000 }).primary({}).standby({}).standby({}).build(),
  'primary + failed standby': groupFacts({ nowMs: 1_000_000 }).primary({}).standby({}).standby({ health: 'bad', postgresRunning: false, keeperSilentMs: 10_000 }).build(),
  'primary failed (election)': groupFacts({ nowMs: 1_000_000 }).primary({ health: 'bad', keeperSilentMs: 10_000 }).standby({ streaming: false, notStreamingForMs: 5_000 }).standby({ streaming: false, notStreamingForMs: 5_000 }).build(),
};
const EVENT = { type: 'evaluate', cause: 'report' } as const;
const CALLS = 5_000;
const ROUNDS = 7;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** µs per call of `fn`, median over {@link ROUNDS} rounds of {@link CALLS} calls (after one warm-up round). */
function measure(fn: () => void): number {
  const rounds: number[] = [];
  for (let r = 0; r <= ROUNDS; r++) {
    const t = performance.now();
    for (let i = 0; i < CALLS; i++) fn();
    if (r > 0) rounds.push(((performance.now() - t) * 1000) / CALLS);
  }
  return median(rounds);
}

console.log('| group | decideUntilStable µs | one transition: transitionGroup µs | one transition: xstate transition() µs | ratio |');
console.log('|---|---|---|---|---|');
for (const [name, facts] of Object.entries(SHAPES)) {
  const snapshot = groupMachine.resolveState({ value: groupPhase(facts), context: { facts } });
  const decision = measure(() => decideUntilStable(facts, EVENT));
  const ours = measure(() => transitionGroup(snapshot, EVENT));
  const reference = measure(() => transition(groupMachine, snapshot, EVENT));
  console.log(`| ${name} | ${decision.toFixed(1)} | ${ours.toFixed(1)} | ${reference.toFixed(1)} | ${(ours / reference).toFixed(2)} |`);
}
