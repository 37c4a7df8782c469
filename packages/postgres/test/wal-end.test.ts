/**
 * Reading where a stopped cluster's WAL ends, without Postgres: the last checkpoint in its
 * control file, and the line `pg_waldump --quiet` ends with, as Postgres 15 prints it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lsn } from '@pgha/shared';
import { parseLastCheckpoint } from '../src/controldata.js';
import { parseWalDumpStop, readControlData } from '../src/wal-end.js';

/** A control file of a Postgres 15 primary SIGKILLed: its identifier, version, state and last checkpoint (REDO location, timeline). */
function controlFile(redoLsn: bigint, timeline: number): Buffer {
  const buf = Buffer.alloc(8192);
  buf.writeBigUInt64LE(7579536839146137875n, 0);
  buf.writeUInt32LE(1300, 8);
  buf.writeUInt32LE(6, 16);
  buf.writeBigUInt64LE(redoLsn, 40);
  buf.writeUInt32LE(timeline, 48);
  return buf;
}

describe('parseLastCheckpoint and readControlData', () => {
  it("read the last checkpoint's REDO location and timeline, and the identifier from a data directory's control file", () => {
    expect(parseLastCheckpoint(controlFile(0x2000028n, 1), true)).toEqual({ redoLsn: lsn(0x2000028n), timeline: 1 });
    expect(parseLastCheckpoint(controlFile(0x1ab374d848n, 12), true)).toEqual({ redoLsn: lsn(0x1ab374d848n), timeline: 12 });
    const dir = mkdtempSync(join(tmpdir(), 'pgha-wal-end-'));
    try {
      mkdirSync(join(dir, 'global'));
      writeFileSync(join(dir, 'global', 'pg_control'), controlFile(0x2000028n, 1));
      expect(readControlData(dir)).toEqual({ systemIdentifier: '7579536839146137875', redoLsn: lsn(0x2000028n), timeline: 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuse bytes that cannot be a control file', () => {
    expect(() => parseLastCheckpoint(Buffer.alloc(40))).toThrow('40 bytes, too short for a control file');
    expect(() => parseLastCheckpoint(controlFile(0x2000028n, 0), true)).toThrow("its last checkpoint's timeline is 0");
    expect(() => readControlData('/nonexistent/pgha/pgdata')).toThrow('/nonexistent/pgha/pgdata/global/pg_control does not exist');
  });
});

describe('parseWalDumpStop', () => {
  it('reads the start of the last valid record and why the next one is not', () => {
    expect(parseWalDumpStop('pg_waldump: error: error in WAL record at 0/3024778: invalid record length at 0/3024A00: wanted 24, got 0')).toEqual({
      lsn: lsn(0x3024778n),
      stop: 'invalid record length at 0/3024A00: wanted 24, got 0',
    });
  });

  it('finds the line among others (stdout, then stderr, as a failed command carries them)', () => {
    const out = '\npg_waldump: error: error in WAL record at 1/20: unexpected pageaddr 0/1000000 in log segment 000000010000000100000000, offset 0\n';
    expect(parseWalDumpStop(out)).toEqual({ lsn: lsn(0x100000020n), stop: 'unexpected pageaddr 0/1000000 in log segment 000000010000000100000000, offset 0' });
  });

  it('tells nothing when no record was read, or the output is something else', () => {
    expect(parseWalDumpStop('pg_waldump: error: error in WAL record at 0/0: invalid record length at 0/2000028: wanted 24, got 0')).toBeUndefined();
    expect(parseWalDumpStop('pg_waldump: error: could not find file "000000020000000000000002": No such file or directory')).toBeUndefined();
    expect(parseWalDumpStop('')).toBeUndefined();
  });
});
