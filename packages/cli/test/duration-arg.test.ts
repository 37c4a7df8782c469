/** `durationArg`: the durations `pgha set formation` takes (`2s`, `500ms`), and what it refuses. */
import { describe, expect, it } from 'vitest';
import { durationArg } from '../src/options.js';

describe('durationArg', () => {
  const parse = durationArg(100, 60_000);

  it('reads a number with its unit as whole ms', () => {
    expect(parse('2s')).toBe(2000);
    expect(parse('500ms')).toBe(500);
    expect(parse('1.5s')).toBe(1500);
    expect(parse('1m')).toBe(60_000);
    expect(parse(' 300ms ')).toBe(300);
  });

  it('refuses a bare number, a wrong unit, and a value out of range, saying what to give', () => {
    expect(() => parse('2')).toThrow(/give a unit: 2s or 2ms/);
    expect(() => parse('2 parsecs')).toThrow(/"2 parsecs" is not a duration: give a number and a unit, e.g. 2s or 500ms/);
    expect(() => parse('50ms')).toThrow(/expected a duration from 100 ms to 60 s/);
    expect(() => parse('2h')).toThrow(/expected a duration from 100 ms to 60 s/);
  });
});
