import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_CLIENT_NETWORKS, parseClientNetwork, parseClientNetworkList, parseClientNetworks, readPasswordFile } from '../src/index.js';

describe('client networks', () => {
  it('takes IPv4 and IPv6 networks with their prefix length, a bare address as that host alone', () => {
    expect(parseClientNetwork('10.20.0.0/16')).toBe('10.20.0.0/16');
    expect(parseClientNetwork(' 10.20.0.5 ')).toBe('10.20.0.5/32');
    expect(parseClientNetwork('0.0.0.0/0')).toBe('0.0.0.0/0');
    expect(parseClientNetwork('FD00:20::/64')).toBe('fd00:20::/64');
    expect(parseClientNetwork('::1')).toBe('::1/128');
  });

  it.each([
    ['10.20.0.0/33', /prefix length "33": an IPv4 prefix length is 0 to 32/],
    ['fd00::/129', /an IPv6 prefix length is 0 to 128/],
    ['10.20.0.0/', /prefix length ""/],
    ['10.20.0.0/8x', /prefix length "8x"/],
    ['10.20.0.256/24', /not an IPv4 or IPv6 address/],
    ['db.example.com', /not an IPv4 or IPv6 address/],
    ['samehost', /not an IPv4 or IPv6 address/],
    ['fe80::1%eth0/64', /not an IPv4 or IPv6 address/],
    ['', /not an IPv4 or IPv6 address/],
  ])('refuses %j, saying why and how to write one', (text, why) => {
    let error: { code?: string; message: string; hint?: string; field?: string } | undefined;
    try {
      parseClientNetwork(text, '--client-network');
    } catch (err) {
      error = err as typeof error;
    }
    expect(error?.code).toBe('PGHA_ERR_VALIDATION');
    expect(error?.message).toMatch(why);
    expect(error?.field).toBe('--client-network');
    expect(error?.hint).toMatch(/e\.g\. 10\.20\.0\.0\/16/);
  });

  it('keeps a list in order, each network once; a comma-separated list, or none', () => {
    expect(parseClientNetworks(['10.1.0.0/16', '10.2.0.5', '10.1.0.0/16'])).toEqual(['10.1.0.0/16', '10.2.0.5/32']);
    expect(parseClientNetworkList('10.1.0.0/16, fd00::/8,')).toEqual(['10.1.0.0/16', 'fd00::/8']);
    expect(parseClientNetworkList('none')).toEqual([]);
    expect(parseClientNetworkList('')).toEqual([]);
    expect(() => parseClientNetworkList('10.1.0.0/16,10.1.0.0/99')).toThrow(/10\.1\.0\.0\/99/);
    const many = Array.from({ length: MAX_CLIENT_NETWORKS + 1 }, (_, i) => `10.${i}.0.0/16`);
    expect(() => parseClientNetworks(many)).toThrow(/at most 64/);
  });
});

describe('password files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-unit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, content: string, mode = 0o600): string => {
    const path = join(dir, name);
    writeFileSync(path, content);
    chmodSync(path, mode);
    return path;
  };

  it('reads the password alone, or the password of a pgpass line for the role (escapes undone)', () => {
    expect(readPasswordFile(file('plain', 's3cret:with colon\n'), 'postgres password', 'postgres')).toBe('s3cret:with colon');
    expect(readPasswordFile(file('pgpass', '*:*:*:postgres:pa\\:ss\\\\word\n'), 'postgres password', 'postgres')).toBe('pa:ss\\word');
    // A pgpass line for another role is not read as one.
    expect(readPasswordFile(file('other', '*:*:*:app:x\n'), 'postgres password', 'postgres')).toBe('*:*:*:app:x');
  });

  it('refuses a file others can read, an empty one and one of several lines, naming the file and never its content', () => {
    expect(() => readPasswordFile(file('open', 'hunter2\n', 0o644), 'postgres password', 'postgres')).toThrow(/readable by others .*chmod|readable by others/);
    expect(() => readPasswordFile(file('empty', '\n'), 'postgres password', 'postgres')).toThrow(/is empty/);
    let message = '';
    try {
      readPasswordFile(file('two', 'hunter2\nhunter3\n'), 'postgres password', 'postgres');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/has more than one line/);
    expect(message).not.toMatch(/hunter/);
  });
});
