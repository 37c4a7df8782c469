/**
 * Where the WAL of a stopped cluster ends, read from its data directory without starting it:
 * its control file gives the last checkpoint (its REDO location and timeline), and `pg_waldump`
 * reads from that REDO location the records crash recovery would replay, up to the first one
 * that is not valid, with the same WAL reader as recovery, so the end it finds is the one
 * recovery finds.
 */
import { join } from 'node:path';
import { formatLsn, parseLsn, PostgresCommandError, type Lsn } from '@pgha/shared/base';
import { parseLastCheckpoint, parseSystemIdentifier, pgControlFile, type LastCheckpoint } from './controldata.js';
import { readFileBytes } from './file-text.js';
import { runPgProgram } from './pg-ctl.js';

/** The database system identifier and the last checkpoint of a stopped cluster, as {@link readControlData} reads them. */
export interface ControlData extends LastCheckpoint {
  /** Its database system identifier, decimal. */
  readonly systemIdentifier: string;
}

/**
 * The database system identifier and the last checkpoint in `pgdata`'s control file, read from
 * its bytes as every other read of that file is (`controldata.ts`: no `pg_controldata` process).
 *
 * @throws Error when the file cannot be read or is not a control file.
 */
export function readControlData(pgdata: string): ControlData {
  const control = readFileBytes(pgControlFile(pgdata));
  if (!control) throw new Error(`${pgControlFile(pgdata)} does not exist`);
  return { systemIdentifier: parseSystemIdentifier(control), ...parseLastCheckpoint(control) };
}

/** How `pg_waldump` stops where the valid WAL ends: the start of the last record it read, then why it stopped. */
const WAL_DUMP_STOP = /^pg_waldump: error: error in WAL record at ([0-9A-F]{1,8}\/[0-9A-F]{1,8}): (.+)$/m;

/** The last valid WAL record, as {@link readLastWalRecord} finds it. */
export interface LastWalRecord {
  /** Where it starts. */
  readonly lsn: Lsn;
  /** Why the record after it is not valid, in pg_waldump's words (e.g. `invalid record length at 0/3026DC8: wanted 24, got 0`). */
  readonly stop: string;
}

/**
 * Reads where `pg_waldump --quiet` stopped from what it printed: `error in WAL record at X/Y:
 * <why>`, X/Y being the start of the last record it read (`ReadRecPtr`: it names the last record
 * returned, not the one that failed). That line is how it always ends when no `--end` is given.
 *
 * @returns the record, or undefined when the output has no such line, or names 0/0 (no record
 *   was read at all: the first one already failed).
 *
 * ### Examples
 * ```ts
 * parseWalDumpStop('pg_waldump: error: error in WAL record at 0/3024778: invalid record length at 0/3024A00: wanted 24, got 0')
 * // { lsn: 0x3024778n, stop: 'invalid record length at 0/3024A00: wanted 24, got 0' }
 * ```
 */
export function parseWalDumpStop(output: string): LastWalRecord | undefined {
  const m = WAL_DUMP_STOP.exec(output);
  if (!m) return undefined;
  const lsn = parseLsn(m[1]!);
  return lsn === 0n ? undefined : { lsn, stop: m[2]!.trim() };
}

/**
 * The last valid WAL record of a stopped cluster on `timeline`, reading from `startLsn` (the last
 * checkpoint's REDO location, where crash recovery starts): `pg_waldump --quiet` over the WAL
 * segment files of that timeline in `pg_wal`, until the first record that is not valid.
 *
 * @returns the record; undefined when pg_waldump read none (e.g. no segment file of `timeline`
 *   holds `startLsn`) or stopped without saying where.
 */
export async function readLastWalRecord(pgdata: string, timeline: number, startLsn: Lsn): Promise<LastWalRecord | undefined> {
  try {
    await runPgProgram('pg_waldump', ['--path', join(pgdata, 'pg_wal'), '--timeline', String(timeline), '--start', formatLsn(startLsn), '--quiet'], { timeoutMs: 60_000 });
  } catch (err) {
    if (err instanceof PostgresCommandError && err.exitCode !== undefined) return parseWalDumpStop(err.stderrTail);
    throw err;
  }
  // It never ends well without --end: nothing says where it stopped.
  return undefined;
}
