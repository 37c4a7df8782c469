import { DEFAULT_FORMATION_SETTINGS, formatDurationMs, groupNote, parseLsn } from '@pgha/shared';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { groupFacts, T0 } from './fact-builders.js';
import { SimulatedGroup } from './simulate.js';

/** A number with a fractional part, as a sentence would print a raw clock difference. */
const FRACTION = /\d\.\d/;

describe('formatDurationMs', () => {
  it.each([
    [0, '0 ms'],
    [0.4, '0 ms'],
    [2384.531005859375, '2385 ms'],
    [1000, '1000 ms'],
    [9999.4, '9999 ms'],
    [9999.6, '10 s'],
    [12_400, '12 s'],
    [599_499, '599 s'],
    [599_500, '10 min 0 s'],
    [725_000, '12 min 5 s'],
    [3_599_400, '59 min 59 s'],
    [3_600_000, '1 h 0 min'],
    [11_220_000, '3 h 7 min'],
    [-250.7, '-251 ms'],
    [-12_000, '-12 s'],
    [Number.POSITIVE_INFINITY, 'an unknown time'],
    [Number.NaN, 'an unknown time'],
  ])('%s ms reads %s', (ms, text) => {
    expect(formatDurationMs(ms)).toBe(text);
  });

  it('prints whole units only, whatever the number', () => {
    fc.assert(
      fc.property(fc.double({ min: -1e12, max: 1e12, noNaN: true }), (ms) => {
        const text = formatDurationMs(ms);
        expect(text).toMatch(/^-?(\d+ ms|\d+ s|\d+ min \d+ s|\d+ h \d+ min)$/);
        expect(text).not.toMatch(FRACTION);
      }),
    );
  });
});

describe('durations in the monitor\'s reasons', () => {
  // The store's clock is a float8 of ms: "keeper silent for 2384.531005859375 ms" was printed.
  const fractions = fc.tuple(fc.double({ min: 0.001, max: 0.999, noNaN: true }), fc.double({ min: 0.001, max: 0.999, noNaN: true }));

  it('the failover of a silent primary says how long it was silent in whole ms, with fractional clocks', () => {
    fc.assert(
      fc.property(fractions, ([start, step]) => {
        const group = new SimulatedGroup(groupFacts({ nowMs: T0 + start }).primary({ lsn: parseLsn('0/5000000') }).standby().build());
        group.set(1, { health: 'bad' }).advance(200 + step).report(2, { upstreamStreaming: false });
        group.advance(DEFAULT_FORMATION_SETTINGS.nodeUnhealthyTimeoutMs + step).report(2).decide('timer');
        const start_ = group.history.find((a) => a.rule === 'failover-start' && a.nodeId === 1);
        expect(start_?.reason).toMatch(/keeper silent for \d+ ms/);
        for (const a of group.history) expect(a.reason).not.toMatch(FRACTION);
      }),
    );
  });

  it('every reason and note of an election decided without a silent voter has no fractional number, with fractional clocks', () => {
    const silent = DEFAULT_FORMATION_SETTINGS.nodeUnhealthyTimeoutMs + 1;
    fc.assert(
      fc.property(fractions, ([start, step]) => {
        const group = new SimulatedGroup(
          groupFacts({ nowMs: T0 + start, settings: { numberSyncStandbys: 2 } })
            .primary({ health: 'bad', keeperSilentMs: silent + step, lsn: '0/7000000' })
            .standby({ notStreamingForMs: silent, lsn: '0/6000000' })
            .standby({ notStreamingForMs: silent, lsn: '0/6400000' })
            .standby({ notStreamingForMs: silent, lsn: '0/5000000', keeperSilentMs: silent + step })
            .build(),
        );
        const sentences: string[] = [];
        // Every node but the dead primary and the silent voter (node 4) reaches its goal.
        const round = (ms: number) => {
          group.advance(ms);
          for (const n of group.facts.nodes) if (n.nodeId !== 1 && n.nodeId !== 4) group.reach(n.nodeId);
          group.decide('report');
          const n = groupNote(group.facts);
          if (n) sentences.push(n.message);
        };
        group.decide('timer');
        round(100 + step);
        round(DEFAULT_FORMATION_SETTINGS.electionTimeoutMs + step);
        for (let i = 0; i < 6; i++) round(100 + step);
        sentences.push(...group.history.map((a) => a.reason));
        expect(group.history.some((a) => a.rule === 'election')).toBe(true);
        expect(sentences.some((s) => /election waits for .* \(at most \d+ ms\)/.test(s))).toBe(true);
        for (const s of sentences) expect(s).not.toMatch(FRACTION);
      }),
      { numRuns: 50 },
    );
  });
});
