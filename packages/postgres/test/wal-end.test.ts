/**
 * Reading where a stopped cluster's WAL ends, without Postgres: `pg_controldata`'s output and
 * the line `pg_waldump --quiet` ends with, as Postgres 15 prints them.
 */
import { describe, expect, it } from 'vitest';
import { lsn } from '@pgha/shared';
import { parseControlData, parseWalDumpStop } from '../src/wal-end.js';

/** The lines of `pg_controldata` that matter here, from a Postgres 15 primary SIGKILLed (others elided). */
const CRASHED = `pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7579536839146137875
Database cluster state:               in production
pg_control last modified:             Sat 05 Dec 2026 11:46:00 PM UTC
Latest checkpoint location:           0/2000060
Latest checkpoint's REDO location:    0/2000028
Latest checkpoint's REDO WAL file:    000000010000000000000002
Latest checkpoint's TimeLineID:       1
Latest checkpoint's PrevTimeLineID:   1
Minimum recovery ending location:     0/0
Min recovery ending loc's timeline:   0
`;

describe('parseControlData', () => {
  it('reads the state, the identifier, and the last checkpoint\'s REDO location and timeline', () => {
    expect(parseControlData(CRASHED)).toEqual({ state: 'in production', systemIdentifier: '7579536839146137875', checkpointRedoLsn: lsn(0x2000028n), checkpointTimeline: 1 });
  });

  it('reads a later timeline and a high REDO location', () => {
    const text = CRASHED.replace("TimeLineID:       1", 'TimeLineID:       12').replace('0/2000028', '1A/B374D848').replace('in production', 'shut down');
    expect(parseControlData(text)).toMatchObject({ state: 'shut down', checkpointRedoLsn: lsn(0x1ab374d848n), checkpointTimeline: 12 });
  });

  it('names the field that is missing or malformed', () => {
    expect(() => parseControlData(CRASHED.replace(/^Latest checkpoint's REDO location:.*$/m, ''))).toThrow(`pg_controldata printed no "Latest checkpoint's REDO location"`);
    expect(() => parseControlData(CRASHED.replace('in production', 'in a bad mood'))).toThrow('pg_controldata printed "Database cluster state: in a bad mood"');
    expect(() => parseControlData(CRASHED.replace("TimeLineID:       1", 'TimeLineID:       0'))).toThrow(`"Latest checkpoint's TimeLineID: 0"`);
    expect(() => parseControlData('')).toThrow('no "Database cluster state"');
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
