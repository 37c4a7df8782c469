import { mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readFileBytes, readFileText } from '../src/file-text.js';

describe('readFileText (a small file, read again only when its status changed)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const file = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'pgha-file-text-'));
    dirs.push(dir);
    return join(dir, 'postgresql.conf');
  };

  it('gives the current text after every kind of change, and undefined for no file', () => {
    const path = file();
    expect(readFileText(path)).toBeUndefined();
    writeFileSync(path, "port = 5432\n");
    expect(readFileText(path)).toBe("port = 5432\n");
    expect(readFileText(path)).toBe("port = 5432\n");
    // Edited in place, same size, modification time set back: the change time still moves.
    writeFileSync(path, "port = 5433\n");
    utimesSync(path, 0, 0);
    expect(readFileText(path)).toBe("port = 5433\n");
    // Replaced by a rename (what pgha's atomic writes do).
    writeFileSync(`${path}.new`, "port = 5434\n");
    renameSync(`${path}.new`, path);
    expect(readFileText(path)).toBe("port = 5434\n");
    rmSync(path);
    expect(readFileText(path)).toBeUndefined();
    writeFileSync(path, "port = 5435\n");
    expect(readFileText(path)).toBe("port = 5435\n");
  });

  it('gives a binary file\'s current bytes the same way', () => {
    const path = file();
    writeFileSync(path, Buffer.from([1, 2, 3]));
    expect([...readFileBytes(path)!]).toEqual([1, 2, 3]);
    writeFileSync(path, Buffer.from([4, 5, 6]));
    expect([...readFileBytes(path)!]).toEqual([4, 5, 6]);
    rmSync(path);
    expect(readFileBytes(path)).toBeUndefined();
  });
});
