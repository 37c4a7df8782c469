import { describe, expect, it } from 'vitest';
import { Histogram, Registry } from 'prom-client';
import { HistogramTally } from '@pgha/shared/base';
import { REPORT_BUCKETS_SECONDS } from '../src/http/keeper-metrics.js';

/** `{le → count}`, `_sum` and `_count` of a histogram, as a scrape reads them. */
async function histogramValues(h: Histogram): Promise<{ buckets: Map<string, number>; sum: number; count: number }> {
  const { values } = await h.get();
  const buckets = new Map<string, number>();
  let sum = NaN;
  let count = NaN;
  for (const v of values) {
    if (v.metricName?.endsWith('_bucket')) buckets.set(String(v.labels.le), v.value);
    else if (v.metricName?.endsWith('_sum')) sum = v.value;
    else if (v.metricName?.endsWith('_count')) count = v.value;
  }
  return { buckets, sum, count };
}

function histogram(name: string): Histogram {
  return new Histogram({ name, help: name, buckets: [...REPORT_BUCKETS_SECONDS], registers: [new Registry()] });
}

describe('HistogramTally (report figures counted before prom-client is loaded)', () => {
  it('hands a histogram the same count, sum and bucket counts as observing it directly', async () => {
    const observed = [0.0011, 0.002, 0.0031, 0.0049, 0.1, 0.1, 0.1, 0.7, 2.5, 3, 40, 0.0001];
    const direct = histogram('direct');
    const replayed = histogram('replayed');
    const tally = new HistogramTally(REPORT_BUCKETS_SECONDS);
    for (const v of observed) {
      direct.observe(v);
      tally.observe(v);
    }
    expect(tally.count).toBe(observed.length);
    tally.replayInto(replayed);
    const a = await histogramValues(direct);
    const b = await histogramValues(replayed);
    expect(b.count).toBe(a.count);
    expect(b.sum).toBeCloseTo(a.sum, 9);
    expect([...b.buckets]).toEqual([...a.buckets]);
    // Handed over once: a second replay adds nothing.
    expect(tally.count).toBe(0);
    tally.replayInto(replayed);
    expect((await histogramValues(replayed)).count).toBe(observed.length);
  });

  it('keeps observations on a bucket bound in that bucket despite rounding of their sum', async () => {
    const tally = new HistogramTally([0.1, 1]);
    const h = new Histogram({ name: 'bound', help: 'bound', buckets: [0.1, 1], registers: [new Registry()] });
    for (let i = 0; i < 3; i++) tally.observe(0.1); // 0.1 + 0.1 + 0.1 = 0.30000000000000004
    tally.replayInto(h);
    const { buckets } = await histogramValues(h);
    expect(buckets.get('0.1')).toBe(3);
  });
});
