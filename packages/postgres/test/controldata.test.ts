import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PghaError, lsn } from '@pgha/shared';
import { assertOwnDataDirectory, inspectDataDirectory, parseClusterState, parseShutdownCheckpointLsn, parseSystemIdentifier, readClusterState, readShutdownCheckpointLsn } from '../src/controldata.js';

/** The first bytes of a control file: system identifier, then pg_control_version (1300: Postgres 15). */
function controlFile(id: bigint, version = 1300, littleEndian = true): Buffer {
  const buf = Buffer.alloc(8192);
  if (littleEndian) {
    buf.writeBigUInt64LE(id, 0);
    buf.writeUInt32LE(version, 8);
  } else {
    buf.writeBigUInt64BE(id, 0);
    buf.writeUInt32BE(version, 8);
  }
  return buf;
}

const dirs: string[] = [];
/** A directory shaped like a data directory (PG_VERSION, global/pg_control) holding `id`. */
function dataDir(id: bigint | undefined): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-controldata-'));
  dirs.push(dir);
  if (id === undefined) return dir;
  writeFileSync(join(dir, 'PG_VERSION'), '15\n');
  mkdirSync(join(dir, 'global'));
  writeFileSync(join(dir, 'global', 'pg_control'), controlFile(id));
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const OWNER = { who: 'this monitor', recordFile: '/srv/m/pgdata.pgha/monitor.json', hint: 'put it back' };

describe('parseSystemIdentifier', () => {
  it('reads the uint64 at the start of pg_control, beyond a number\'s exact range, in either byte order', () => {
    expect(parseSystemIdentifier(controlFile(7312345678901234567n), true)).toBe('7312345678901234567');
    expect(parseSystemIdentifier(controlFile(7312345678901234567n, 1300, false), false)).toBe('7312345678901234567');
    expect(parseSystemIdentifier(controlFile(18446744073709551615n), true)).toBe('18446744073709551615');
  });

  it('refuses bytes that cannot be a control file', () => {
    expect(() => parseSystemIdentifier(Buffer.alloc(10), true)).toThrow(/10 bytes, too short/);
    expect(() => parseSystemIdentifier(Buffer.alloc(8192), true)).toThrow(/pg_control_version 0/);
    expect(() => parseSystemIdentifier(controlFile(0n), true)).toThrow(/identifier is 0/);
    expect(() => parseSystemIdentifier(Buffer.from('PG_VERSION is 15 and this is text'), true)).toThrow(/pg_control_version/);
  });
});

describe('inspectDataDirectory', () => {
  it('tells a missing directory, one that is not a data directory, and a cluster apart', () => {
    expect(inspectDataDirectory('/nonexistent/pgha/pgdata')).toEqual({ kind: 'missing' });
    expect(inspectDataDirectory(dataDir(undefined))).toEqual({ kind: 'not-pgdata', reason: 'no PG_VERSION file' });
    const noControl = dataDir(undefined);
    writeFileSync(join(noControl, 'PG_VERSION'), '15\n');
    expect(inspectDataDirectory(noControl)).toMatchObject({ kind: 'not-pgdata', reason: expect.stringMatching(/^global\/pg_control cannot be read \(ENOENT\)/) });
    expect(inspectDataDirectory(dataDir(42n))).toEqual({ kind: 'cluster', systemIdentifier: '42' });
  });
});

describe('assertOwnDataDirectory', () => {
  const refusal = (pgdata: string, expected: string | undefined): PghaError => {
    try {
      assertOwnDataDirectory(pgdata, expected, OWNER);
    } catch (err) {
      return err as PghaError;
    }
    throw new Error('not refused');
  };

  it('passes the recorded cluster, and any cluster when none is recorded, returning its identifier', () => {
    const dir = dataDir(7312345678901234567n);
    expect(assertOwnDataDirectory(dir, '7312345678901234567', OWNER)).toBe('7312345678901234567');
    expect(assertOwnDataDirectory(dir, undefined, OWNER)).toBe('7312345678901234567');
  });

  it('refuses another cluster, saying what it found, what was expected and where that is recorded', () => {
    const dir = dataDir(7400000000000000001n);
    const err = refusal(dir, '7312345678901234567');
    expect(err).toBeInstanceOf(PghaError);
    expect(err.code).toBe('PGHA_ERR_PGDATA');
    expect(err.message).toBe(`refusing to start Postgres: ${dir} holds another cluster: its database system identifier is 7400000000000000001, not 7312345678901234567 (this monitor's, recorded in /srv/m/pgdata.pgha/monitor.json)`);
    expect(err.hint).toBe('put it back');
  });

  it('refuses a missing directory and one that is not a data directory, recorded identifier or not', () => {
    expect(refusal('/nonexistent/pgha/pgdata', '42').message).toBe("refusing to start Postgres: the data directory /nonexistent/pgha/pgdata is missing (this monitor's has database system identifier 42, recorded in /srv/m/pgdata.pgha/monitor.json)");
    expect(refusal('/nonexistent/pgha/pgdata', undefined).message).toBe('refusing to start Postgres: the data directory /nonexistent/pgha/pgdata is missing');
    const empty = dataDir(undefined);
    expect(refusal(empty, '42').message).toBe(`refusing to start Postgres: ${empty} is not a Postgres data directory: no PG_VERSION file (this monitor's has database system identifier 42, recorded in /srv/m/pgdata.pgha/monitor.json)`);
  });

  it('starts its message with what the supervisor refuses to do', () => {
    expect(() => assertOwnDataDirectory('/nonexistent/pgha/pgdata', '42', { ...OWNER, refusal: 'this monitor stops' })).toThrow(/^this monitor stops: the data directory/);
  });
});

describe('parseClusterState', () => {
  /** A control file whose `state` (the uint32 at byte 16) is `value`. */
  function withState(value: number, littleEndian = true): Buffer {
    const buf = controlFile(7312345678901234567n, 1300, littleEndian);
    if (littleEndian) buf.writeUInt32LE(value, 16);
    else buf.writeUInt32BE(value, 16);
    return buf;
  }

  it('names each DBState as pg_controldata prints it, in either byte order', () => {
    expect(parseClusterState(withState(6), true)).toBe('in production');
    expect(parseClusterState(withState(3, false), false)).toBe('shutting down');
    expect(parseClusterState(withState(1), true)).toBe('shut down');
    expect(parseClusterState(withState(5), true)).toBe('in archive recovery');
  });

  it('refuses bytes that cannot be a control file', () => {
    expect(() => parseClusterState(Buffer.alloc(12))).toThrow('12 bytes, too short for a control file');
    expect(() => parseClusterState(withState(42), true)).toThrow('cluster state 42 is not one of a Postgres control file');
  });

  it('reads a data directory\'s state, and nothing from one without a control file', () => {
    const dir = dataDir(7312345678901234567n);
    writeFileSync(join(dir, 'global', 'pg_control'), withState(3));
    expect(readClusterState(dir)).toBe('shutting down');
    expect(readClusterState(dataDir(undefined))).toBeUndefined();
  });
});

describe('parseShutdownCheckpointLsn and readShutdownCheckpointLsn', () => {
  /**
   * The first 292 bytes (up to and with its CRC) of the control file of a Postgres 15 stopped by
   * `pg_ctl stop -m fast`, little-endian; `pg_controldata` printed "Database cluster state: shut
   * down" and "Latest checkpoint location: 0/1500790".
   */
  const SHUT_DOWN = Buffer.from(
    'vsyjDFgcFWsUBQAAJXcNDAEAAAAAAAAAWRwVawAAAACQB1ABAAAAAJAHUAEAAAAAAQAAAAEAAAABAAAAAAAAANQCAAAAAAAABDUAAAEAAAAAAAAAzAIAAAEAAAABAAAAAQAAAAAAAABZHBVrAAAAAAAAAAAAAAAAAAAAAAAAAADoAwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEAAAAAAAAAZAAAAAgAAAAKAAAAAAAAAEAAAAAAAAAACAAAAAAAAACH1jJBACAAAAAAAgAAIAAAAAAAAUAAAAAgAAAAzAcAAAAIAAABAAAAAAAAAMgREN95eCtqeOTacRpwS7wsuZG9cjvRQ/UjpvN4A6BBRxZLZQ==',
    'base64',
  );
  /** {@link SHUT_DOWN} as its 8192-byte file, with `patch` applied. */
  function control(patch: (b: Buffer) => void = () => undefined): Buffer {
    const buf = Buffer.alloc(8192);
    SHUT_DOWN.copy(buf);
    patch(buf);
    return buf;
  }

  it("reads the checkpoint location (byte 32) of a control file that says shut down and matches its CRC-32C, as pg_controldata's", () => {
    expect(parseShutdownCheckpointLsn(control(), true)).toBe(lsn(0x1500790n));
  });

  it('reads nothing in another state, from bytes that do not match their CRC (a read while the file is rewritten), or from another layout', () => {
    expect(parseShutdownCheckpointLsn(control((b) => b.writeUInt32LE(6, 16)), true)).toBeUndefined(); // in production
    expect(parseShutdownCheckpointLsn(control((b) => b.writeUInt32LE(3, 16)), true)).toBeUndefined(); // shutting down
    expect(parseShutdownCheckpointLsn(control((b) => b.writeUInt32LE(2, 16)), true)).toBeUndefined(); // shut down in recovery
    expect(parseShutdownCheckpointLsn(control((b) => b.writeBigUInt64LE(0x1400028n, 32)), true)).toBeUndefined(); // an older checkPoint beside the new state
    expect(parseShutdownCheckpointLsn(control((b) => b.writeUInt32LE(1700, 8)), true)).toBeUndefined(); // pg_control_version of Postgres 17
  });

  it('refuses bytes that cannot be a control file', () => {
    expect(() => parseShutdownCheckpointLsn(SHUT_DOWN.subarray(0, 100), true)).toThrow('100 bytes, too short for a control file');
    expect(() => parseShutdownCheckpointLsn(control((b) => b.writeUInt32LE(42, 16)), true)).toThrow('cluster state 42 is not one of a Postgres control file');
  });

  it("reads a data directory's, and nothing from one without a control file or with a short one", () => {
    const dir = dataDir(7312345678901234567n);
    writeFileSync(join(dir, 'global', 'pg_control'), control());
    expect(readShutdownCheckpointLsn(dir)).toBe(lsn(0x1500790n));
    writeFileSync(join(dir, 'global', 'pg_control'), SHUT_DOWN.subarray(0, 100));
    expect(readShutdownCheckpointLsn(dir)).toBeUndefined();
    expect(readShutdownCheckpointLsn(dataDir(undefined))).toBeUndefined();
  });
});
