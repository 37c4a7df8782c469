/**
 * When a report may skip its group's decision (`driver/steady-group.ts`): only in a group where
 * every node is where its goal says, healthy by its own report, and heard from recently.
 */
import { describe, expect, it } from 'vitest';
import type { NodeRecord } from '../src/store/records.js';
import { isSteady, isSteadyGroup } from '../src/driver/steady-group.js';
import { nodeRecord } from './node-record.js';

const NOW = Date.UTC(2026, 11, 5, 11, 0, 0);
const SETTINGS = { nodeUnhealthyTimeoutMs: 2000, standbyStreamingTimeoutMs: 3000 };

function node(nodeId: number, over: Partial<NodeRecord> = {}): NodeRecord {
  return nodeRecord(nodeId, NOW, over);
}

describe('isSteady', () => {
  it('a running writable primary or single, a running streaming secondary', () => {
    expect(isSteady(node(1))).toBe(true);
    expect(isSteady(node(1, { reportedState: 'single', goalState: 'single' }))).toBe(true);
    expect(isSteady(node(2))).toBe(true);
  });

  it('not a node on its way to another goal, stopped, in the wrong recovery state, or a standby not streaming', () => {
    expect(isSteady(node(2, { goalState: 'prepare_promotion' }))).toBe(false);
    expect(isSteady(node(1, { postgresRunning: false }))).toBe(false);
    expect(isSteady(node(1, { isInRecovery: true }))).toBe(false);
    expect(isSteady(node(2, { upstreamStreaming: false }))).toBe(false);
    expect(isSteady(node(2, { reportedState: 'catchingup', goalState: 'catchingup' }))).toBe(false);
    expect(isSteady(node(1, { reportedState: 'wait_primary', goalState: 'wait_primary' }))).toBe(false);
  });
});

describe('isSteadyGroup', () => {
  it('a primary and two streaming secondaries, each heard within three quarters of nodeUnhealthyTimeoutMs', () => {
    expect(isSteadyGroup([node(1), node(2), node(3)], NOW, SETTINGS)).toBe(true);
  });

  it('not when one keeper was last heard more than three quarters of nodeUnhealthyTimeoutMs ago (a timeout may be near)', () => {
    expect(isSteadyGroup([node(1, { reportedAt: new Date(NOW - 1500) }), node(2), node(3)], NOW, SETTINGS)).toBe(true);
    expect(isSteadyGroup([node(1, { reportedAt: new Date(NOW - 1501) }), node(2), node(3)], NOW, SETTINGS)).toBe(false);
    expect(isSteadyGroup([node(1), node(2, { reportedAt: null })], NOW, SETTINGS)).toBe(false);
  });

  it('the shorter of nodeUnhealthyTimeoutMs and standbyStreamingTimeoutMs counts', () => {
    const group = [node(1, { reportedAt: new Date(NOW - 800) }), node(2), node(3)];
    expect(isSteadyGroup(group, NOW, { nodeUnhealthyTimeoutMs: 2000, standbyStreamingTimeoutMs: 1000 })).toBe(false);
    expect(isSteadyGroup(group, NOW, { nodeUnhealthyTimeoutMs: 2000, standbyStreamingTimeoutMs: 1100 })).toBe(true);
  });

  it('not when one node is not steady, nor for no node', () => {
    expect(isSteadyGroup([node(1), node(2, { upstreamStreaming: false }), node(3)], NOW, SETTINGS)).toBe(false);
    expect(isSteadyGroup([], NOW, SETTINGS)).toBe(false);
  });
});
