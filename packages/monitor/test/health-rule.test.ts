import { describe, expect, it } from 'vitest';
import { HEALTH_CHECKED_REFRESH_S, mustWriteHealth, nextHealth } from '../src/store/health-rule.js';

const probes = (p: { reset?: boolean; failures?: number; inRecovery?: boolean | null; retries?: number }) => ({ nodeId: 1, reset: false, failures: 0, inRecovery: null, retries: 2, ...p });

describe('nextHealth: the health rule of every store adapter', () => {
  it('turns bad once the consecutive failures reach healthProbeRetries, counting them up to it', () => {
    const fresh = { health: 'unknown' as const, healthFailures: 0, probeInRecovery: null };
    const once = nextHealth(fresh, probes({ failures: 1 }));
    expect(once).toEqual({ health: 'unknown', healthFailures: 1, probeInRecovery: null });
    expect(nextHealth(once, probes({ failures: 1 }))).toEqual({ health: 'bad', healthFailures: 2, probeInRecovery: null });
    expect(nextHealth({ health: 'good', healthFailures: 0, probeInRecovery: false }, probes({ failures: 5 }))).toEqual({ health: 'bad', healthFailures: 2, probeInRecovery: false });
  });

  it('turns good at the first success, counting only the failures after it, with what the success saw', () => {
    const bad = { health: 'bad' as const, healthFailures: 2, probeInRecovery: false };
    expect(nextHealth(bad, probes({ reset: true, inRecovery: true }))).toEqual({ health: 'good', healthFailures: 0, probeInRecovery: true });
    expect(nextHealth(bad, probes({ reset: true, failures: 1, inRecovery: true }))).toEqual({ health: 'good', healthFailures: 1, probeInRecovery: true });
    expect(nextHealth(bad, probes({ reset: true, failures: 2, inRecovery: true }))).toEqual({ health: 'bad', healthFailures: 2, probeInRecovery: true });
  });

  it('is written when it changes, or when it was last written more than HEALTH_CHECKED_REFRESH_S ago', () => {
    const s = { health: 'good' as const, healthFailures: 0, probeInRecovery: false };
    expect(mustWriteHealth(s, s, 1000)).toBe(false);
    expect(mustWriteHealth(s, s, HEALTH_CHECKED_REFRESH_S * 1000 + 1)).toBe(true);
    expect(mustWriteHealth(s, s, null)).toBe(true);
    expect(mustWriteHealth(s, { ...s, probeInRecovery: true }, 0)).toBe(true);
    expect(mustWriteHealth(s, { ...s, healthFailures: 1 }, 0)).toBe(true);
  });
});
