/**
 * Where the WAL of a stopped cluster ends, read from its data directory with Postgres's own
 * programs and without starting it: `pg_controldata` gives the last checkpoint (its REDO
 * location and timeline) and the cluster state, and `pg_waldump` reads from that REDO location
 * the records crash recovery would replay, up to the first one that is not valid. Both read with
 * Postgres's own code (`pg_waldump` with the same WAL reader as recovery), so the end they find
 * is the one recovery finds.
 */
import { join } from 'node:path';
import { formatLsn, parseLsn, PostgresCommandError, type Lsn } from '@pgha/shared/base';
import { CLUSTER_STATES, type ClusterState } from './controldata.js';
import { runPgProgram } from './pg-ctl.js';

/** What {@link parseControlData} takes from `pg_controldata`'s output. */
export interface ControlData {
  /** "Database cluster state". */
  readonly state: ClusterState;
  /** "Database system identifier", decimal. */
  readonly systemIdentifier: string;
  /** "Latest checkpoint's REDO location": where crash recovery starts reading WAL. */
  readonly checkpointRedoLsn: Lsn;
  /** "Latest checkpoint's TimeLineID". */
  readonly checkpointTimeline: number;
}

/**
 * Parses the output of `pg_controldata` (its `Name: value` lines; the C locale's wording, which
 * {@link readControlData} runs it with).
 *
 * @throws Error naming the first field that is missing or malformed.
 *
 * ### Examples
 * ```ts
 * parseControlData('Database system identifier:           7312345678901234567\nDatabase cluster state:               in production\n' +
 *   "Latest checkpoint's TimeLineID:       2\nLatest checkpoint's REDO location:    0/3000028\n")
 * // { state: 'in production', systemIdentifier: '7312345678901234567', checkpointRedoLsn: 0x3000028n, checkpointTimeline: 2 }
 * ```
 */
export function parseControlData(text: string): ControlData {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const at = line.indexOf(':');
    if (at > 0) fields.set(line.slice(0, at).trim(), line.slice(at + 1).trim());
  }
  const field = (name: string, valid: (value: string) => boolean): string => {
    const value = fields.get(name);
    if (value === undefined || !valid(value)) throw new Error(`pg_controldata printed ${value === undefined ? `no "${name}"` : `"${name}: ${value}"`}`);
    return value;
  };
  const state = field('Database cluster state', (v) => (CLUSTER_STATES as readonly string[]).includes(v)) as ClusterState;
  const systemIdentifier = field('Database system identifier', (v) => /^[1-9][0-9]*$/.test(v));
  const checkpointRedoLsn = parseLsn(field("Latest checkpoint's REDO location", (v) => /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i.test(v)));
  const checkpointTimeline = Number(field("Latest checkpoint's TimeLineID", (v) => /^[1-9][0-9]*$/.test(v)));
  return { state, systemIdentifier, checkpointRedoLsn, checkpointTimeline };
}

/**
 * Runs `pg_controldata` on `pgdata` (as the Postgres OS user, in the C locale) and parses it.
 *
 * @throws PostgresCommandError when pg_controldata fails; Error when its output lacks a field.
 */
export async function readControlData(pgdata: string): Promise<ControlData> {
  return parseControlData(await runPgProgram('pg_controldata', ['--pgdata', pgdata], { timeoutMs: 10_000 }));
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
