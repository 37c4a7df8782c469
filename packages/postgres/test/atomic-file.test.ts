import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../src/atomic-file.js';
import { writeSecretFile } from '../src/secrets.js';
import { writeJsonAtomic } from '../src/pgha-files.js';

const dirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-atomic-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('replaces a file whole, with the mode asked whatever the umask and the old mode, and leaves no temporary file', () => {
    const dir = tempDir();
    const path = join(dir, 'auth-token');
    writeFileSync(path, 'an old, longer token\n', { mode: 0o644 });
    const umask = process.umask(0o077);
    try {
      writeFileAtomic(path, 'new\n', { mode: 0o640 });
    } finally {
      process.umask(umask);
    }
    expect(readFileSync(path, 'utf8')).toBe('new\n');
    expect(statSync(path).mode & 0o777).toBe(0o640);
    expect(readdirSync(dir)).toEqual(['auth-token']);
  });

  it('writes bytes and multi-byte text exactly', () => {
    const path = join(tempDir(), 'f');
    writeFileAtomic(path, 'één ≠ one\n', { mode: 0o600 });
    expect(readFileSync(path, 'utf8')).toBe('één ≠ one\n');
    writeFileAtomic(path, Buffer.from([0, 1, 2, 255]), { mode: 0o600 });
    expect([...readFileSync(path)]).toEqual([0, 1, 2, 255]);
  });

  it('sets the owner asked (here: our own uid and gid)', () => {
    const path = join(tempDir(), 'pgha.conf');
    writeFileAtomic(path, 'port = 5432\n', { mode: 0o600, owner: { uid: process.getuid!(), gid: process.getgid!() } });
    expect(statSync(path).uid).toBe(process.getuid!());
  });

  it('throws for a missing directory and leaves nothing behind', () => {
    const dir = join(tempDir(), 'missing');
    expect(() => writeFileAtomic(join(dir, 'f'), 'x', { mode: 0o600 })).toThrow(/ENOENT/);
    expect(existsSync(dir)).toBe(false);
  });
});

describe('the writers built on it', () => {
  it('writeSecretFile: 0600 by default, 0644 when asked', () => {
    const dir = tempDir();
    writeSecretFile(join(dir, 'key'), 'secret');
    writeSecretFile(join(dir, 'ca.crt'), 'public', 0o644);
    expect(statSync(join(dir, 'key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'ca.crt')).mode & 0o777).toBe(0o644);
  });

  it('writeJsonAtomic: indented JSON with a final newline, 0600, in a 0711 directory it creates', () => {
    const dir = join(tempDir(), 'node.pgha');
    writeJsonAtomic(join(dir, 'keeper.json'), { version: 1 });
    expect(readFileSync(join(dir, 'keeper.json'), 'utf8')).toBe('{\n  "version": 1\n}\n');
    expect(statSync(join(dir, 'keeper.json')).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o711);
  });
});
