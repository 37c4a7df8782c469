import { describe, expect, it } from 'vitest';
import { PghaError } from '@pgha/shared';
import { delay, pollUntil, waitFor } from '../src/poll.js';

describe('waitFor and pollUntil', () => {
  it('return the first value that is neither undefined nor false, after retrying through errors', async () => {
    let calls = 0;
    const v = await waitFor('the third call', () => {
      calls++;
      if (calls === 1) throw new Error('not up yet');
      return calls === 3 ? 'ready' : undefined;
    }, { timeoutMs: 5000, intervalMs: 1 });
    expect(v).toBe('ready');
    expect(calls).toBe(3);
    expect(await pollUntil(async () => 0, { timeoutMs: 0 })).toBe(0);
  });

  it('at the deadline: pollUntil returns undefined, waitFor throws PGHA_ERR_TIMEOUT naming what and the last error', async () => {
    expect(await pollUntil(() => false, { timeoutMs: 5, intervalMs: 1 })).toBeUndefined();
    const err = await waitFor('the monitor to answer', () => {
      throw new Error('ECONNREFUSED');
    }, { timeoutMs: 5, intervalMs: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PghaError);
    expect((err as PghaError).code).toBe('PGHA_ERR_TIMEOUT');
    expect((err as PghaError).message).toBe('timed out after 5 ms waiting for the monitor to answer (ECONNREFUSED)');
  });

  it('stop early when the signal aborts', async () => {
    const ac = new AbortController();
    let calls = 0;
    const r = pollUntil(() => {
      if (++calls === 2) ac.abort();
      return false;
    }, { timeoutMs: 60_000, intervalMs: 1, signal: ac.signal });
    expect(await r).toBeUndefined();
    expect(calls).toBe(2);
  });
});

describe('delay', () => {
  it('resolves at once, without throwing, when its signal aborts', async () => {
    const ac = new AbortController();
    const started = performance.now();
    const d = delay(60_000, ac.signal);
    ac.abort();
    await expect(d).resolves.toBeUndefined();
    expect(performance.now() - started).toBeLessThan(1000);
    await expect(delay(1, AbortSignal.abort())).resolves.toBeUndefined();
  });
});
