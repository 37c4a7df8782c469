import { describe, expect, it } from 'vitest';
import { connectionOf } from '../src/routes/views.js';

const NOW = Date.parse('2026-12-02T12:00:00Z');
const TIMEOUT = 2000;
const ago = (ms: number): Date => new Date(NOW - ms);
type Row = Parameters<typeof connectionOf>[0];
const row = (r: Partial<Row>): Row => ({ health: 'good', probeInRecovery: false, postgresRunning: true, isInRecovery: false, reportedAt: ago(100), ...r });

describe("connectionOf: the Connection column of pgha show state", () => {
  it("follows a fresh keeper report over the probe's last seen recovery (just after a switchover)", () => {
    // The old primary: its keeper reports Postgres stopped, the probe last saw it writable.
    expect(connectionOf(row({ postgresRunning: false, isInRecovery: null, probeInRecovery: false }), NOW, TIMEOUT)).toBe('none');
    // The old primary back as a standby before the probe wrote its change.
    expect(connectionOf(row({ isInRecovery: true, probeInRecovery: false }), NOW, TIMEOUT)).toBe('read-only');
    // The new primary.
    expect(connectionOf(row({ isInRecovery: false, probeInRecovery: true }), NOW, TIMEOUT)).toBe('read-write');
  });

  it('follows the probe once the keeper has been silent longer than nodeUnhealthyTimeoutMs', () => {
    const silent = { reportedAt: ago(TIMEOUT + 1), postgresRunning: true, isInRecovery: false };
    expect(connectionOf(row({ ...silent, probeInRecovery: true }), NOW, TIMEOUT)).toBe('read-only');
    expect(connectionOf(row({ ...silent, probeInRecovery: false }), NOW, TIMEOUT)).toBe('read-write');
    expect(connectionOf(row({ ...silent, health: 'unknown' }), NOW, TIMEOUT)).toBe('none');
    expect(connectionOf(row({ reportedAt: null, probeInRecovery: true }), NOW, TIMEOUT)).toBe('read-only');
  });

  it('is none for a node the probe finds bad, whatever its keeper last said', () => {
    expect(connectionOf(row({ health: 'bad' }), NOW, TIMEOUT)).toBe('none');
  });
});
