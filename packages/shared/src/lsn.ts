/**
 * A PostgreSQL write-ahead-log position (`pg_lsn`), kept as a branded `bigint` so that it is
 * never confused with a plain number and never loses precision past 2^53 bytes.
 */
export type Lsn = bigint & { readonly __brand: 'Lsn' };

/**
 * The text form of an LSN, `X/Y` in hexadecimal, with any white space around it (`\s` is the
 * set that `String.prototype.trim` removes), as {@link parseLsn} takes it. Also the `LsnText`
 * schema's string check, which zod 3 runs in a tenth of a refinement's time (a keeper's report
 * carries an LSN every 500 ms).
 */
export const LSN_TEXT = /^\s*([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})\s*$/;

/**
 * Parses the text form Postgres prints (`'16/B374D848'`).
 *
 * @param text - `X/Y`, two hexadecimal numbers of at most 8 digits each.
 * @returns the LSN as a byte position.
 * @throws RangeError when `text` is not of that form.
 *
 * ### Examples
 * ```ts
 * parseLsn('0/3000060') // 50331744n
 * ```
 */
export function parseLsn(text: string): Lsn {
  const match = LSN_TEXT.exec(text);
  if (!match) throw new RangeError(`invalid LSN "${text}": expected X/Y in hexadecimal, e.g. 0/3000060`);
  return ((BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`)) as Lsn;
}

/**
 * Formats an LSN the way Postgres prints it (upper-case hexadecimal, `X/Y`).
 *
 * ### Examples
 * ```ts
 * formatLsn(50331744n as Lsn) // '0/3000060'
 * ```
 */
export function formatLsn(lsn: Lsn | bigint): string {
  const hi = (lsn >> 32n).toString(16).toUpperCase();
  const lo = (lsn & 0xffffffffn).toString(16).toUpperCase();
  return `${hi}/${lo}`;
}

/** Brands a `bigint` byte position as an {@link Lsn}. */
export function lsn(value: bigint | number): Lsn {
  return BigInt(value) as Lsn;
}

/** The zero LSN (`0/0`), reported by a node that has no WAL position yet. */
export const ZERO_LSN = lsn(0n);
