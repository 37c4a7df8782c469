/**
 * The report schema refuses what the monitor's store cannot hold (found by the API fuzzing in
 * test/api-fuzz.test.ts, where each of these was answered 500): text with a NUL or an unpaired
 * surrogate, and a timeline past the `integer` column.
 */
import { FreeText, NodeReport } from '@pgha/shared';
import { describe, expect, it } from 'vitest';

const report = { reportedState: 'single', pgIsRunning: true, isInRecovery: false, lsn: '0/3000060', timeline: 1, upstreamStreaming: false };

describe('NodeReport', () => {
  it.each([
    ['problem', 'disk\u0000full'],
    ['problem', 'half \ud83d of a pair'],
    ['transitionInProgress', '\udc00'],
    ['synchronousStandbyNames', 'ANY 1 ("a\ud800")'],
  ])('refuses %s %j', (field, value) => {
    const result = NodeReport.safeParse({ ...report, [field]: value });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toMatch(/NUL characters or unpaired UTF-16 surrogates/);
  });

  it('accepts paired surrogates, right-to-left text and other unicode', () => {
    expect(NodeReport.safeParse({ ...report, problem: '\ud83d\ude00 \u202e\u05e9\u05dc\u05d5\u05dd e\u0301' }).success).toBe(true);
  });

  it('accepts timelines up to 2^31 - 1, the store column, and refuses 2^31', () => {
    expect(NodeReport.safeParse({ ...report, timeline: 2 ** 31 - 1 }).success).toBe(true);
    expect(NodeReport.safeParse({ ...report, timeline: 2 ** 31 }).success).toBe(false);
  });
});

describe('FreeText', () => {
  it('counts its limit in characters', () => {
    expect(FreeText(3).safeParse('abc').success).toBe(true);
    expect(FreeText(3).safeParse('abcd').success).toBe(false);
  });
});
