import { describe, expect, it } from 'vitest';
import { replicationLagBytes } from '../src/metrics/monitor-metrics.js';
import { primaryOf } from '../src/routes/views.js';

describe('replicationLagBytes: WAL bytes a standby is behind its primary, from reported LSNs', () => {
  it('is the difference of the two LSNs in bytes, across the 32-bit halves', () => {
    expect(replicationLagBytes('0/3000060', '0/3000000')).toBe(0x60);
    expect(replicationLagBytes('1/0', '0/FFFFFFFF')).toBe(1);
    expect(replicationLagBytes('2/10', '1/10')).toBe(2 ** 32);
  });

  it('is 0 for a standby at or past the primary (their reports are not taken at the same instant)', () => {
    expect(replicationLagBytes('0/3000000', '0/3000000')).toBe(0);
    expect(replicationLagBytes('0/3000000', '0/3000060')).toBe(0);
  });
});

describe('primaryOf: the node of a group that holds its one writable goal', () => {
  it('finds it among any rows with a goal state, and none with zero or two', () => {
    expect(primaryOf([{ goalState: 'secondary' }, { goalState: 'primary', id: 2 }])).toEqual({ goalState: 'primary', id: 2 });
    expect(primaryOf([{ goalState: 'secondary' }, { goalState: 'catchingup' }])).toBeUndefined();
    expect(primaryOf([{ goalState: 'wait_primary' }, { goalState: 'primary' }])).toBeUndefined();
  });
});
