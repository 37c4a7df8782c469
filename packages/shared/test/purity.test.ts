import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : f.endsWith('.ts') ? [join(dir, f)] : []));
}

describe('packages/shared stays pure', () => {
  it('imports no node:*, pg, kysely, undici or pino, and never reads the clock', () => {
    for (const file of files(SRC)) {
      const text = readFileSync(file, 'utf8');
      const imports = [...text.matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
      const impure = imports.filter((i) => /^(node:|pg$|kysely|undici|pino|fs$|child_process)/.test(i));
      expect(impure, file).toEqual([]);
      expect(text, file).not.toMatch(/Date\.now\(\)|new Date\(\)|performance\.now\(\)/);
    }
  });
});
