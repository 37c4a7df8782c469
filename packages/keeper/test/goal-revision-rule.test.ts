/**
 * The keeper's goal-revision rule: a keeper is never driven backwards. Replays sequences of
 * answers from several monitors, some lagging, and checks the invariant on every prefix.
 */
import { describe, expect, it } from 'vitest';
import { goalRevisionVerdict } from '../src/fsm/goal-revision-rule.js';

describe('goalRevisionVerdict', () => {
  it('applies a goal of the applied revision or a higher one, and keeps the higher', () => {
    expect(goalRevisionVerdict(undefined, '7')).toEqual({ action: 'apply', appliedRevision: '7' });
    expect(goalRevisionVerdict('7', '7')).toEqual({ action: 'apply', appliedRevision: '7' });
    expect(goalRevisionVerdict('7', '8')).toEqual({ action: 'apply', appliedRevision: '8' });
  });

  it('ignores a goal older than the applied one, saying both revisions', () => {
    expect(goalRevisionVerdict('12', '9')).toEqual({ action: 'ignore', reason: 'a goal of revision 9 older than the applied 12' });
    expect(goalRevisionVerdict('12', '0')).toMatchObject({ action: 'ignore' });
  });

  it('compares revisions as 64-bit integers, not as text or as doubles', () => {
    // As text "10" < "9"; as doubles both of these are 9007199254740992.
    expect(goalRevisionVerdict('9', '10')).toEqual({ action: 'apply', appliedRevision: '10' });
    expect(goalRevisionVerdict('9007199254740993', '9007199254740992')).toMatchObject({ action: 'ignore' });
    expect(goalRevisionVerdict('9223372036854775806', '9223372036854775807')).toEqual({ action: 'apply', appliedRevision: '9223372036854775807' });
  });

  it('applies a goal without a revision (an older monitor) as before, keeping the applied revision', () => {
    expect(goalRevisionVerdict('12', undefined)).toEqual({ action: 'apply', appliedRevision: '12' });
    expect(goalRevisionVerdict(undefined, undefined)).toEqual({ action: 'apply', appliedRevision: undefined });
  });

  it('ignores a revision that is not a non-negative decimal integer', () => {
    for (const bad of ['', '-1', '1.5', '0x10', ' 3', '012', '1e3', '123456789012345678901']) {
      expect(goalRevisionVerdict('1', bad), bad).toMatchObject({ action: 'ignore', reason: expect.stringContaining('unreadable revision') });
    }
  });

  it('never applies a goal older than one applied before, whatever the order in which monitors answer', () => {
    // Three monitors: one current, one a write behind, one stuck at the start; each answer is
    // (revision, goal). Every interleaving of their answers is replayed.
    const current: [string, string][] = [['3', 'single'], ['5', 'wait_primary'], ['8', 'primary']];
    const behind: [string, string][] = [['3', 'single'], ['3', 'single'], ['5', 'wait_primary']];
    const stuck: [string, string][] = [['3', 'single'], ['3', 'single'], ['3', 'single']];
    const sources = [current, behind, stuck];
    const orders: number[][] = [];
    const walk = (prefix: number[], left: number[]): void => {
      if (left.every((n) => n === 0)) orders.push(prefix);
      left.forEach((n, i) => n > 0 && walk([...prefix, i], left.map((m, j) => (j === i ? m - 1 : m))));
    };
    walk([], [3, 3, 3]);
    expect(orders.length).toBe(1680);
    for (const order of orders) {
      let applied: string | undefined;
      const taken = [0, 0, 0];
      const appliedGoals: string[] = [];
      for (const s of order) {
        const [revision, goal] = sources[s]![taken[s]!++]!;
        const verdict = goalRevisionVerdict(applied, revision);
        if (verdict.action === 'ignore') continue;
        expect(BigInt(revision)).toBeGreaterThanOrEqual(BigInt(applied ?? '0'));
        applied = verdict.appliedRevision;
        appliedGoals.push(goal);
      }
      // The goals acted on follow the store's order: once primary, never back.
      const firstPrimary = appliedGoals.indexOf('primary');
      if (firstPrimary >= 0) expect(appliedGoals.slice(firstPrimary).every((g) => g === 'primary')).toBe(true);
      expect(applied).toBe('8');
    }
  });
});
