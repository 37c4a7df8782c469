/**
 * An overloaded monitor must not take its own backlog for dead keepers: keeper silence and
 * streaming age are judged with `monitorLagMs` more time (the time the monitor has lately
 * taken to answer reports), and exactly that much.
 */
import { DEFAULT_FORMATION_SETTINGS, decide, keeperIsAlive, streamedRecently, type GroupFacts } from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { groupFacts, nodeOf, T0 } from './fact-builders.js';

const { nodeUnhealthyTimeoutMs, standbyStreamingTimeoutMs } = DEFAULT_FORMATION_SETTINGS;
const LAG = 4_000;

/** Primary healthy; its standby's keeper last reported (streaming) `silentMs` ago and the probe of it fails. */
function standbySilentFor(silentMs: number, monitorLagMs?: number): GroupFacts {
  const facts = groupFacts({ nowMs: T0 }).primary().standby({ health: 'bad', keeperSilentMs: silentMs }).build();
  return monitorLagMs === undefined ? facts : { ...facts, monitorLagMs };
}

describe('monitor lag', () => {
  it('a keeper silent longer than nodeUnhealthyTimeoutMs but within it plus the lag is alive', () => {
    const silent = nodeUnhealthyTimeoutMs + LAG;
    expect(keeperIsAlive(standbySilentFor(silent), nodeOf(standbySilentFor(silent), 2))).toBe(false);
    const lagged = standbySilentFor(silent, LAG);
    expect(keeperIsAlive(lagged, nodeOf(lagged, 2))).toBe(true);
    const beyond = standbySilentFor(silent + 1, LAG);
    expect(keeperIsAlive(beyond, nodeOf(beyond, 2))).toBe(false);
  });

  it('streaming age gets the same allowance', () => {
    const age = standbyStreamingTimeoutMs + LAG;
    const plain = standbySilentFor(age);
    const lagged = standbySilentFor(age, LAG);
    expect(streamedRecently(plain, nodeOf(plain, 2))).toBe(false);
    expect(streamedRecently(lagged, nodeOf(lagged, 2))).toBe(true);
  });

  it('the standby is not failed while the silence is within the lag, and is failed beyond it', () => {
    // Silent (and not streaming) for nodeUnhealthyTimeoutMs + LAG: alive only thanks to the lag.
    const silent = nodeUnhealthyTimeoutMs + LAG;
    expect(decide(standbySilentFor(silent)).rule).toBe('standby-failed');
    expect(decide(standbySilentFor(silent, LAG)).assignments).toEqual([]);
    expect(decide(standbySilentFor(silent + 1, LAG)).rule).toBe('standby-failed');
  });
});
