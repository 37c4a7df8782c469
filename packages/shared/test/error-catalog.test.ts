import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '@pgha/shared';

const doc = readFileSync(fileURLToPath(new URL('../../../docs/errors.md', import.meta.url)), 'utf8');

describe('the error catalog', () => {
  it('documents every code in docs/errors.md, and documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/^\| `(PGHA_ERR_[A-Z_]+)`/gm)].map((m) => m[1]);
    expect(new Set(documented)).toEqual(new Set(Object.keys(ERROR_CODES)));
  });
});
