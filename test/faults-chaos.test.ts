/**
 * Fault 8 of issue 5, short: a few random faults in a row on a 3-node formation (see
 * test/helpers/chaos.ts), each healed and checked by the history checker. The seed is printed;
 * PGHA_CHAOS_SEED replays a run and PGHA_CHAOS_COUNT changes its length (default 5). The long
 * run is `npm run chaos -- --count 30`.
 */
import { describe, expect, it } from 'vitest';
import { newSeed, runChaos } from './helpers/chaos.js';
import { netnsAvailability } from './helpers/netns.js';

const availability = netnsAvailability();
const skip = !availability.ok && process.env.PGHA_SKIP_NETNS === '1';
const skipReason = availability.ok ? '' : availability.reason;
const count = Number(process.env.PGHA_CHAOS_COUNT ?? 5);
const seed = process.env.PGHA_CHAOS_SEED ? Number(process.env.PGHA_CHAOS_SEED) : newSeed();

describe.skipIf(skip)(skip ? `chaos (skipped: ${skipReason})` : 'fault 8: repeated chaos on a 3-node formation', () => {
  it(`${count} random faults in a row (seed ${seed}): nothing lost, no dual primary, every goal change explained, recovery each time`, async () => {
    if (!availability.ok) throw new Error(`${availability.reason}. Set PGHA_SKIP_NETNS=1 to skip the fault tests on such a machine.`);
    const rows = await runChaos({ count, seed });
    expect(rows.map((r) => `${r.index} ${r.fault} (${r.target}): ${r.clean ? 'clean' : r.report.summary}`)).toEqual(rows.map((r) => `${r.index} ${r.fault} (${r.target}): clean`));
    expect(rows).toHaveLength(count);
  }, 600_000);
});
