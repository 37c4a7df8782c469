/**
 * Which cluster a data directory holds: the database system identifier in `global/pg_control`,
 * chosen at random by initdb and copied unchanged by pg_basebackup and pg_rewind, so that every
 * node of a group shares it and another initdb never has it. pgha records it when it creates
 * (or first starts) a data directory, and before it starts Postgres there it checks that the
 * directory still holds that cluster: a supervisor never starts, nor writes its settings into, a
 * Postgres it did not create.
 *
 * The identifier is read from the control file itself (its first 8 bytes, in the machine's byte
 * order) rather than from `pg_controldata`'s output: a synchronous read of one file, cheap enough
 * to make before every configuration write and every start, with no child process.
 * Source: Postgres's `ControlFileData.system_identifier` (`src/include/catalog/pg_control.h`);
 * Patroni compares it with the DCS's `/initialize` key before it starts a node.
 */
import { existsSync, statSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import CRC32C from 'crc-32/crc32c.js';
import { PghaError, lsn, type Lsn } from '@pgha/shared/core';
import { readFileBytes } from './file-text.js';

/** Path of the control file of `pgdata`. */
export function pgControlFile(pgdata: string): string {
  return join(pgdata, 'global', 'pg_control');
}

/**
 * The database system identifier in a control file's contents, as a decimal string (it is a
 * `uint64`, beyond a `number`'s exact range).
 *
 * @param control - the bytes of `global/pg_control` (8192 of them; the first 16 are read).
 * @param littleEndian - the byte order the file was written in: the machine's (default).
 * @returns the identifier, e.g. `'7312345678901234567'`.
 * @throws Error naming what is wrong when the bytes cannot be a control file (too short, a zero
 *   identifier, or a `pg_control_version` outside 900..9999).
 *
 * ### Examples
 * ```ts
 * parseSystemIdentifier(readFileSync(pgControlFile('/srv/pg/data'))) // '7312345678901234567'
 * ```
 */
export function parseSystemIdentifier(control: Buffer, littleEndian = endianness() === 'LE'): string {
  if (control.length < 16) throw new Error(`${control.length} bytes, too short for a control file`);
  const id = littleEndian ? control.readBigUInt64LE(0) : control.readBigUInt64BE(0);
  const version = littleEndian ? control.readUInt32LE(8) : control.readUInt32BE(8);
  if (version < 900 || version > 9999) throw new Error(`pg_control_version ${version} is not one of a Postgres control file`);
  if (id === 0n) throw new Error('its database system identifier is 0');
  return id.toString();
}

/**
 * The values of `ControlFileData.state` (`DBState` in `src/include/catalog/pg_control.h`), in
 * their order, named as `pg_controldata` prints them ("Database cluster state").
 */
export const CLUSTER_STATES = ['starting up', 'shut down', 'shut down in recovery', 'shutting down', 'in crash recovery', 'in archive recovery', 'in production'] as const;
/** One of {@link CLUSTER_STATES}. */
export type ClusterState = (typeof CLUSTER_STATES)[number];

/**
 * The cluster states of a postmaster whose shutdown has reached its checkpoint: every session
 * has ended and it accepts no new one (a connection may wait unanswered until it exits).
 */
export const SHUTDOWN_CLUSTER_STATES: ReadonlySet<ClusterState> = new Set<ClusterState>(['shutting down', 'shut down', 'shut down in recovery']);

/**
 * The cluster state in a control file's contents (`ControlFileData.state`, the `uint32` at byte
 * 16, after the identifier and the two version numbers). The checkpointer writes `shutting
 * down` when it begins a shutdown checkpoint and `shut down` when it has written it.
 *
 * @param control - the bytes of `global/pg_control` (the first 20 are read).
 * @param littleEndian - the byte order the file was written in: the machine's (default).
 * @throws Error when the bytes are too short or the value is not a `DBState`.
 *
 * ### Examples
 * ```ts
 * parseClusterState(readFileSync(pgControlFile('/srv/pg/data'))) // 'in production'
 * ```
 */
export function parseClusterState(control: Buffer, littleEndian = endianness() === 'LE'): ClusterState {
  if (control.length < 20) throw new Error(`${control.length} bytes, too short for a control file`);
  const value = littleEndian ? control.readUInt32LE(16) : control.readUInt32BE(16);
  const state = CLUSTER_STATES[value];
  if (state === undefined) throw new Error(`cluster state ${value} is not one of a Postgres control file`);
  return state;
}

/** The last checkpoint in a control file (`ControlFileData.checkPointCopy`), as {@link parseLastCheckpoint} reads it. */
export interface LastCheckpoint {
  /** Its REDO location (`redo`): where crash recovery starts reading WAL. */
  readonly redoLsn: Lsn;
  /** Its timeline (`ThisTimeLineID`). */
  readonly timeline: number;
}

/**
 * The last checkpoint in a control file's contents: the `XLogRecPtr` at byte 40 and the
 * `uint32` at byte 48 (the identifier, the two version numbers, the state, `time` at 24 and
 * `checkPoint` at 32 come before `checkPointCopy`). Source: `pg_controldata`'s "Latest
 * checkpoint's REDO location" and "Latest checkpoint's TimeLineID".
 *
 * @param control - the bytes of `global/pg_control` (the first 52 are read).
 * @param littleEndian - the byte order the file was written in: the machine's (default).
 * @throws Error when the bytes are too short or the timeline is 0.
 *
 * ### Examples
 * ```ts
 * parseLastCheckpoint(readFileSync(pgControlFile('/srv/pg/data'))) // { redoLsn: 0x2000028n, timeline: 1 }
 * ```
 */
export function parseLastCheckpoint(control: Buffer, littleEndian = endianness() === 'LE'): LastCheckpoint {
  if (control.length < 52) throw new Error(`${control.length} bytes, too short for a control file`);
  const redoLsn = lsn(littleEndian ? control.readBigUInt64LE(40) : control.readBigUInt64BE(40));
  const timeline = littleEndian ? control.readUInt32LE(48) : control.readUInt32BE(48);
  if (timeline === 0) throw new Error("its last checkpoint's timeline is 0");
  return { redoLsn, timeline };
}

/**
 * The cluster state of `pgdata` (see {@link parseClusterState}), read from its control file
 * without a child process (by `readFileBytes`, as {@link inspectDataDirectory}: read again
 * whenever the checkpointer rewrote it); undefined when the file cannot be read or parsed.
 * Source: `pg_controldata`'s "Database cluster state".
 */
export function readClusterState(pgdata: string): ClusterState | undefined {
  return readControlFile(pgdata, parseClusterState);
}

/** `parse` of the control file of `pgdata` (read by `readFileBytes`); undefined when the file cannot be read or `parse` throws. */
function readControlFile<T>(pgdata: string, parse: (control: Buffer) => T): T | undefined {
  try {
    const control = readFileBytes(pgControlFile(pgdata));
    return control ? parse(control) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where the CRC of `ControlFileData` lies, by `pg_control_version` (the `uint32` at byte 8): the
 * CRC-32C of every byte before it. PostgreSQL 13 to 16 write version 1300, whose `crc` follows
 * `mock_authentication_nonce` at byte 288 (checked against `pg_controldata` on PostgreSQL 15).
 */
const CONTROL_CRC_OFFSET: ReadonlyMap<number, number> = new Map([[1300, 288]]);

/** The CRC-32C of `bytes` (Castagnoli, as Postgres's `COMP_CRC32C`), unsigned: SheetJS's `crc-32`. */
function crc32c(bytes: Uint8Array): number {
  return CRC32C.buf(bytes) >>> 0;
}

/**
 * Where a cleanly stopped primary's shutdown checkpoint starts, from a control file's contents:
 * its `checkPoint` (the `XLogRecPtr` at byte 32, `pg_controldata`'s "Latest checkpoint
 * location") when its state is `shut down`, which the checkpointer writes in the same update
 * as the shutdown checkpoint's location, once that record is flushed. Nothing is written to
 * the WAL after it. Undefined in every other state (`shut down in recovery` is a standby's
 * restartpoint, not the end of a primary's WAL), and when the bytes do not match their CRC
 * (read while the checkpointer rewrote them, or a layout other than `pg_control_version` 1300's).
 *
 * @param control - the bytes of `global/pg_control` (the first 292 are read).
 * @param littleEndian - the byte order the file was written in: the machine's (default).
 * @throws Error when the bytes are too short or the state is not a `DBState` ({@link parseClusterState}).
 *
 * ### Examples
 * ```ts
 * parseShutdownCheckpointLsn(readFileSync(pgControlFile('/srv/pg/data'))) // 0x3000028n after `pg_ctl stop`, undefined while it runs
 * ```
 */
export function parseShutdownCheckpointLsn(control: Buffer, littleEndian = endianness() === 'LE'): Lsn | undefined {
  if (parseClusterState(control, littleEndian) !== 'shut down') return undefined;
  const version = littleEndian ? control.readUInt32LE(8) : control.readUInt32BE(8);
  const crcOffset = CONTROL_CRC_OFFSET.get(version);
  if (crcOffset === undefined) return undefined;
  if (control.length < crcOffset + 4) throw new Error(`${control.length} bytes, too short for a control file`);
  const crc = littleEndian ? control.readUInt32LE(crcOffset) : control.readUInt32BE(crcOffset);
  if (crc32c(control.subarray(0, crcOffset)) !== crc) return undefined;
  return lsn(littleEndian ? control.readBigUInt64LE(32) : control.readBigUInt64BE(32));
}

/**
 * Where the shutdown checkpoint of `pgdata` starts when Postgres was stopped cleanly as a
 * primary (see {@link parseShutdownCheckpointLsn}), read from its control file without a child
 * process and only when the file changed (`readFileBytes`); undefined while Postgres runs or
 * shuts down, after a crash, on a standby, and when the file cannot be read or parsed. The
 * postmaster may still run when it is defined: its walsenders send the WAL up to the
 * checkpoint before it exits. Source: `pg_controldata`'s "Latest checkpoint location" beside
 * "Database cluster state: shut down".
 *
 * ### Examples
 * ```ts
 * readShutdownCheckpointLsn('/srv/pg/data') // lsn(0x3000028n) once `pg_ctl stop` wrote the checkpoint
 * ```
 */
export function readShutdownCheckpointLsn(pgdata: string): Lsn | undefined {
  return readControlFile(pgdata, parseShutdownCheckpointLsn);
}

/** What a data directory holds, as {@link inspectDataDirectory} finds it. */
export type DataDirectoryIdentity =
  | { kind: 'missing' }
  | { kind: 'not-pgdata'; reason: string }
  | { kind: 'cluster'; systemIdentifier: string };

/**
 * Looks at `pgdata`: missing, not a data directory (no `PG_VERSION`, or no readable control
 * file), or a cluster with its database system identifier. Never throws.
 */
export function inspectDataDirectory(pgdata: string): DataDirectoryIdentity {
  try {
    const st = statSync(pgdata, { throwIfNoEntry: false });
    if (!st) return { kind: 'missing' };
    if (!st.isDirectory()) return { kind: 'not-pgdata', reason: 'not a directory' };
  } catch (err) {
    return { kind: 'not-pgdata', reason: `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
  }
  if (!existsSync(join(pgdata, 'PG_VERSION'))) return { kind: 'not-pgdata', reason: 'no PG_VERSION file' };
  let control: Buffer;
  try {
    // Read again only when it changed (a checkpoint): the keeper checks before every write, twice a second.
    const read = readFileBytes(pgControlFile(pgdata));
    if (!read) return { kind: 'not-pgdata', reason: 'global/pg_control cannot be read (ENOENT)' };
    control = read;
  } catch (err) {
    return { kind: 'not-pgdata', reason: `global/pg_control cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
  }
  try {
    return { kind: 'cluster', systemIdentifier: parseSystemIdentifier(control) };
  } catch (err) {
    return { kind: 'not-pgdata', reason: `global/pg_control is not a control file (${(err as Error).message})` };
  }
}

/** Who checks a data directory, for the words of {@link assertOwnDataDirectory}'s error. */
export interface DataDirectoryOwner {
  /** The supervisor, e.g. `this monitor`, `node 3 "node1"`. */
  who: string;
  /** The file that records the identifier, e.g. `/srv/pg/data.pgha/keeper.json`. */
  recordFile: string;
  /** What the operator should do; the hint of the error. */
  hint: string;
  /** What the supervisor does not do, the start of the message; default `refusing to start Postgres`. */
  refusal?: string;
}

/**
 * Checks, before Postgres is started or restarted in `pgdata` (or its settings written there),
 * that the directory holds the cluster its supervisor created: a data directory whose database
 * system identifier is `expected`. With no `expected` (a file written before pgha recorded it),
 * any data directory passes and the caller records the identifier returned.
 *
 * @returns the identifier found.
 * @throws PghaError `PGHA_ERR_PGDATA` when `pgdata` is missing, is not a data directory, or
 *   holds another cluster (another identifier); the message says what was found and what was
 *   expected, the hint what to do ({@link DataDirectoryOwner.hint}).
 *
 * ### Examples
 * ```ts
 * assertOwnDataDirectory('/srv/pg/data', '7312345678901234567', { who: 'this monitor', recordFile: '/srv/pg/data.pgha/monitor.json', hint: '…' })
 * // '7312345678901234567', or throws: "refusing to start Postgres in /srv/pg/data: it holds the cluster with database system identifier 7400…, not 7312… (this monitor's, recorded in …); …"
 * ```
 */
export function assertOwnDataDirectory(pgdata: string, expected: string | undefined, owner: DataDirectoryOwner): string {
  const found = inspectDataDirectory(pgdata);
  if (found.kind === 'cluster' && (expected === undefined || found.systemIdentifier === expected)) return found.systemIdentifier;
  const theirs = expected === undefined ? '' : ` (${owner.who}'s has database system identifier ${expected}, recorded in ${owner.recordFile})`;
  const what =
    found.kind === 'missing' ? `the data directory ${pgdata} is missing${theirs}`
    : found.kind === 'not-pgdata' ? `${pgdata} is not a Postgres data directory: ${found.reason}${theirs}`
    : `${pgdata} holds another cluster: its database system identifier is ${found.systemIdentifier}, not ${expected} (${owner.who}'s, recorded in ${owner.recordFile})`;
  throw new PghaError('PGHA_ERR_PGDATA', `${owner.refusal ?? 'refusing to start Postgres'}: ${what}`, { hint: owner.hint });
}
