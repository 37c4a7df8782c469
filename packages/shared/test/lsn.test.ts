import { LsnText, ZERO_LSN, formatLsn, lsn, parseLsn } from '@pgha/shared';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

describe('LSN parsing and formatting', () => {
  it.each([
    ['0/0', 0n],
    ['0/3000060', 0x3000060n],
    ['16/B374D848', (0x16n << 32n) | 0xb374d848n],
    ['FFFFFFFF/FFFFFFFF', (1n << 64n) - 1n],
  ])('parses %s as Postgres prints it', (text, value) => {
    expect(parseLsn(text)).toBe(value);
    expect(formatLsn(parseLsn(text))).toBe(text);
  });

  it('matches the documented example', () => {
    expect(parseLsn('0/3000060')).toBe(50331744n);
    expect(formatLsn(lsn(50331744n))).toBe('0/3000060');
  });

  it('accepts lower-case hex and surrounding whitespace, and formats in upper case', () => {
    expect(formatLsn(parseLsn('  16/b374d848\n'))).toBe('16/B374D848');
    expect(LsnText.safeParse(' 0/3000060 ').success).toBe(true);
  });

  it('keeps precision past 2^53 bytes', () => {
    const big = parseLsn('FFFFFFFF/FFFFFFFE');
    expect(big + 1n).toBe(parseLsn('FFFFFFFF/FFFFFFFF'));
    expect(formatLsn(big)).toBe('FFFFFFFF/FFFFFFFE');
  });

  it('formats without leading zeros, as pg_lsn does', () => {
    expect(formatLsn(lsn(1n << 32n))).toBe('1/0');
    expect(formatLsn(ZERO_LSN)).toBe('0/0');
  });

  it('round-trips every 64-bit position', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (value) => {
        expect(parseLsn(formatLsn(lsn(value)))).toBe(value);
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it.each(['', '0', '/0', '0/', '0/0/0', '123456789/0', '0/123456789', 'G/0', '0x1/0', '-1/0', '1 / 0', '0/3000060 extra'])(
    'rejects %j with a RangeError that shows the expected form',
    (text) => {
      expect(() => parseLsn(text)).toThrow(RangeError);
      expect(() => parseLsn(text)).toThrow(/expected X\/Y in hexadecimal/);
      expect(LsnText.safeParse(text).success).toBe(false);
    },
  );
});
