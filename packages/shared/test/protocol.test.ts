/**
 * The report schema refuses what the monitor's store cannot hold (found by the API fuzzing in
 * test/api-fuzz.test.ts, where each of these was answered 500): text with a NUL or an unpaired
 * surrogate, and a timeline past the `integer` column; and the self-fence a report carries.
 * It also reads the former names of its fields, so that older keepers are understood, and the
 * shutdown checkpoint's LSN, which keepers older than it do not send.
 */
import { FreeText, NodeReport, selfFenceSentence } from '@pgha/shared';
import { describe, expect, it } from 'vitest';

const report = { reportedState: 'single', postgresRunning: true, isInRecovery: false, lsn: '0/3000060', timeline: 1, upstreamStreaming: false };

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

  it('reads pgIsRunning, the former name of postgresRunning, from an older keeper (a rolling upgrade)', () => {
    const { postgresRunning: _, ...rest } = report;
    for (const running of [true, false]) {
      const parsed = NodeReport.parse({ ...rest, pgIsRunning: running });
      expect(parsed.postgresRunning).toBe(running);
      expect(parsed).not.toHaveProperty('pgIsRunning');
    }
    expect(NodeReport.parse(report).postgresRunning).toBe(true);
    // Both names: the former is an unknown field. Neither: postgresRunning is missing.
    expect(NodeReport.safeParse({ ...report, pgIsRunning: true }).error?.issues[0]).toMatchObject({ code: 'unrecognized_keys', keys: ['pgIsRunning'] });
    expect(NodeReport.safeParse(rest).error?.issues[0]).toMatchObject({ path: ['postgresRunning'], received: 'undefined' });
    // Not an object: refused as before, not renamed.
    expect(NodeReport.safeParse([report]).success).toBe(false);
  });
});

describe('shutdownCheckpointLsn of a report', () => {
  it('is optional (a keeper older than it sends none) and nullable, null by default', () => {
    expect(NodeReport.parse(report).shutdownCheckpointLsn).toBeNull();
    expect(NodeReport.parse({ ...report, shutdownCheckpointLsn: null }).shutdownCheckpointLsn).toBeNull();
    expect(NodeReport.parse({ ...report, shutdownCheckpointLsn: '0/3000028' }).shutdownCheckpointLsn).toBe('0/3000028');
    expect(NodeReport.parse({ ...report, shutdownCheckpointLsn: '16/B374D848' }).shutdownCheckpointLsn).toBe('16/B374D848');
  });

  it.each([['3000028'], ['0/'], ['0/3000028x'], ['123456789/0'], [''], [42]])('refuses %j, naming the field and the form expected', (value) => {
    const issue = NodeReport.safeParse({ ...report, shutdownCheckpointLsn: value }).error?.issues[0];
    expect(issue?.path).toEqual(['shutdownCheckpointLsn']);
    if (typeof value === 'string') expect(issue?.message).toBe('must be an LSN such as 0/3000060');
  });
});

describe('FreeText', () => {
  it('counts its limit in characters', () => {
    expect(FreeText(3).safeParse('abc').success).toBe(true);
    expect(FreeText(3).safeParse('abcd').success).toBe(false);
  });

  /** Whether Postgres can store `s`, code unit by code unit: no NUL, and every surrogate in a high-then-low pair. */
  function storable(s: string): boolean {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 0 || (c >= 0xdc00 && c <= 0xdfff)) return false;
      if (c >= 0xd800 && c <= 0xdbff) {
        const next = s.charCodeAt(i + 1);
        if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
        i++;
      }
    }
    return true;
  }

  it('takes exactly the text Postgres can store: every string of up to 4 code units from NUL, surrogates and letters', () => {
    const units = ['a', '\u0000', '\ud800', '\udbff', '\udc00', '\udfff', '\ud83d', '\ude00'];
    const schema = FreeText(10);
    let strings = [''];
    const mismatches: string[] = [];
    for (let length = 0; length <= 4; length++) {
      for (const s of strings) if (schema.safeParse(s).success !== storable(s)) mismatches.push(JSON.stringify(s));
      strings = strings.flatMap((s) => units.map((u) => s + u));
    }
    expect(mismatches).toEqual([]);
  });

  it('checks a long text of pairs, and finds one unpaired surrogate at its end', () => {
    const pairs = '\ud83d\ude00'.repeat(2048);
    expect(FreeText(4096).safeParse(pairs).success).toBe(true);
    expect(FreeText(4096).safeParse(`${pairs.slice(0, -1)}a`).success).toBe(false);
  });
});

describe('selfFence of a report', () => {
  const fence = {
    fencedAtMs: Date.UTC(2025, 0, 1, 12, 0, 1, 234),
    reason: 'network partition: monitor last answered 1004 ms ago (networkPartitionTimeoutMs 1000 ms) and no standby streams (bound 500 ms)',
    fromState: 'primary' as const,
    monitorSilentMs: 1004,
    postgresStopped: true,
    unreachableMs: 5012,
  };

  it('is optional (a keeper older than it sends none) and may be null', () => {
    expect(NodeReport.safeParse(report).success).toBe(true);
    expect(NodeReport.safeParse({ ...report, selfFence: null }).success).toBe(true);
    expect(NodeReport.safeParse({ ...report, selfFence: fence }).success).toBe(true);
  });

  it.each([
    ['a fractional duration', { unreachableMs: 2384.531005859375 }],
    ['a negative duration', { monitorSilentMs: -1 }],
    ['a time the store cannot hold', { fencedAtMs: 253_402_300_800_000 }],
    ['a time before 2000', { fencedAtMs: 0 }],
    ['an unknown state', { fromState: 'leader' }],
    ['an unknown field', { extra: 1 }],
  ])('refuses %s', (_what, patch) => {
    expect(NodeReport.safeParse({ ...report, selfFence: { ...fence, ...patch } }).success).toBe(false);
  });

  it('reads as one sentence: when (UTC), why, the state before, Postgres, how long the monitor was unreachable', () => {
    expect(selfFenceSentence(fence)).toBe(
      'fenced itself at 2025-01-01 12:00:01.234 UTC (network partition: monitor last answered 1004 ms ago (networkPartitionTimeoutMs 1000 ms) and no standby streams (bound 500 ms)): ' +
        'it was primary and had not heard the monitor for 1004 ms; Postgres stopped; the monitor was unreachable for 5012 ms',
    );
    expect(selfFenceSentence({ ...fence, postgresStopped: false, unreachableMs: 125_000 })).toMatch(/; Postgres still ran when the keeper recorded the fence; the monitor was unreachable for 125 s$/);
  });
});

describe("the parameters of a report (the Postgres parameters its node runs with)", () => {
  const running = [{ name: 'Work_Mem', value: '8MB' }, { name: 'pg_stat_statements.max', value: '5000' }];

  it('are read with their names lower-cased, in their order, and their values as sent', () => {
    const parsed = NodeReport.parse({ ...report, parameters: { pendingRestart: ['Shared_Buffers'], running } });
    expect(parsed.parameters).toEqual({ pendingRestart: ['shared_buffers'], running: [{ name: 'work_mem', value: '8MB' }, { name: 'pg_stat_statements.max', value: '5000' }] });
  });

  it.each([
    ['a name twice (once lower-cased)', [...running, { name: 'WORK_MEM', value: '4MB' }], ['parameters', 'running'], 'names a parameter twice'],
    ['a value on two lines', [{ name: 'work_mem', value: '8MB\nport = 1' }], ['parameters', 'running', 0, 'value'], 'must be on one line (no line break, no NUL)'],
    ['a value with a NUL', [{ name: 'work_mem', value: '8MB\u0000' }], ['parameters', 'running', 0, 'value'], 'must be on one line (no line break, no NUL)'],
    ['a value too long', [{ name: 'work_mem', value: 'x'.repeat(1025) }], ['parameters', 'running', 0, 'value'], 'must be at most 1024 characters'],
    ['a name that is not one', [{ name: 'work_mem = 1; port', value: '8MB' }], ['parameters', 'running', 0, 'name'], /^must be a Postgres parameter name/],
    ['a name too long', [{ name: 'a'.repeat(64), value: '1' }], ['parameters', 'running', 0, 'name'], 'must be at most 63 characters'],
  ])('are refused with %s, naming the field and the rule', (_what, list, path, message) => {
    const issue = NodeReport.safeParse({ ...report, parameters: { pendingRestart: [], running: list } }).error?.issues[0];
    expect(issue?.path).toEqual(path);
    expect(issue?.message).toMatch(message);
  });
});

describe('the LSN of a report', () => {
  it('is taken with white space around it, as Postgres and parseLsn take it', () => {
    expect(NodeReport.safeParse({ ...report, lsn: ' 16/B374D848\n' }).success).toBe(true);
  });
});
