/**
 * The state sets of `states.ts`: how they relate (as their TSDoc says), and that no other
 * source file keeps a list of states by hand, which is how two `FOLLOWING` sets came to differ.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CANDIDATE_STATES,
  DEMOTING_STATES,
  ELECTORATE_STATES,
  FAILOVER_PHASE_STATES,
  FENCED_STATES,
  FOLLOWING_STATES,
  MAINTENANCE_STATES,
  NODE_STATES,
  OUTGOING_PRIMARY_STATES,
  PRIMARY_STATES,
  PROMOTION_STATES,
  STANDBY_STATES,
  STREAMING_STATES,
  TRANSITION_IN_PROGRESS_STATES,
  WRITABLE_STATES,
  type NodeState,
} from '@pgha/shared';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

const sorted = (s: Iterable<NodeState>): NodeState[] => [...s].sort();
const union = (...sets: Iterable<NodeState>[]): NodeState[] => sorted(new Set(sets.flatMap((s) => [...s])));

/**
 * Files whose inline lists of states are not sets of their own: the two edge tables, the monitor's
 * and the keeper's (the lists are the edges themselves), the keeper's create (the states a new node may have reached) and
 * transitions (the goals a diverged standby is rewound in).
 */
const OWN_LISTS_ALLOWED = new Set([
  'packages/shared/src/states.ts',
  'packages/shared/src/group-fsm/edges.ts',
  'packages/keeper/src/fsm/transition-table.ts',
  'packages/keeper/src/fsm/transitions.ts',
  'packages/keeper/src/create-node.ts',
]);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('state sets', () => {
  it('are made of node states, and relate as their TSDoc says', () => {
    const sets = { CANDIDATE_STATES, DEMOTING_STATES, ELECTORATE_STATES, FAILOVER_PHASE_STATES, FENCED_STATES, FOLLOWING_STATES, MAINTENANCE_STATES, OUTGOING_PRIMARY_STATES, PRIMARY_STATES, PROMOTION_STATES, STANDBY_STATES, STREAMING_STATES, TRANSITION_IN_PROGRESS_STATES, WRITABLE_STATES };
    for (const [name, set] of Object.entries(sets)) {
      expect([...set].filter((s) => !NODE_STATES.includes(s)), name).toEqual([]);
      expect(set.size, name).toBeGreaterThan(0);
    }
    expect(sorted(WRITABLE_STATES)).toEqual(union(PRIMARY_STATES, ['stop_replication']));
    expect(sorted(FOLLOWING_STATES)).toEqual(sorted([...STANDBY_STATES].filter((s) => s !== 'prepare_promotion')));
    expect(sorted(STREAMING_STATES)).toEqual(union([...FOLLOWING_STATES].filter((s) => s !== 'report_lsn'), ['wait_maintenance']));
    expect(sorted(CANDIDATE_STATES)).toEqual(sorted([...PROMOTION_STATES].filter((s) => s !== 'report_lsn')));
    expect(sorted(FENCED_STATES)).toEqual(union(DEMOTING_STATES, ['prepare_maintenance']));
    expect(sorted(FENCED_STATES)).toEqual(union(OUTGOING_PRIMARY_STATES, ['demoted']));
    expect(sorted(FAILOVER_PHASE_STATES)).toEqual(union(PROMOTION_STATES, ['draining', 'prepare_maintenance']));
    expect(sorted(ELECTORATE_STATES)).toEqual(union(STANDBY_STATES, ['stop_replication', 'wait_maintenance']));
    expect(sorted(TRANSITION_IN_PROGRESS_STATES)).toEqual(union(OUTGOING_PRIMARY_STATES, PROMOTION_STATES, ['join_primary', 'wait_standby']));
    // A primary is never a standby, nor on its way out.
    expect([...PRIMARY_STATES].filter((s) => STANDBY_STATES.has(s) || OUTGOING_PRIMARY_STATES.has(s))).toEqual([]);
  });

  it('are kept in states.ts only: no other source file declares a set or list of states', () => {
    const names = NODE_STATES.join('|');
    const declaration = /new Set<NodeState>\(|NodeState\[\]\s*=\s*\[|ReadonlySet<NodeState>\s*=/;
    // An inline list of three or more state names, e.g. ['report_lsn', 'fast_forward', 'prepare_promotion'].includes(...).
    const inlineList = new RegExp(`\\[\\s*'(?:${names})'(?:\\s*,\\s*'(?:${names})'){2,}`);
    const offenders = sourceFiles(join(ROOT, 'packages'))
      .filter((f) => f.includes('/src/') && !f.includes('/node_modules/') && !f.includes('/dist/'))
      .map((f) => relative(ROOT, f))
      .filter((f) => !OWN_LISTS_ALLOWED.has(f))
      .filter((f) => {
        const text = readFileSync(join(ROOT, f), 'utf8');
        return declaration.test(text) || inlineList.test(text);
      });
    expect(offenders).toEqual([]);
  });
});
