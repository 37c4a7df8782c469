/**
 * What the timeline-divergence and rejoin rules (`fsm/divergence-rule.ts`) read from Postgres:
 * the local standby's timeline and replay LSN (SQL on its own session), where a stopped old
 * primary's WAL ends (its control file, `pg_waldump`), and the timeline history of the node it
 * follows (replication commands over a replication connection, with psql).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { PghaError, formatLsn, parseLsn, type Lsn } from '@pgha/shared/base';
import { parseTimelineHistory, walSegmentTimeline, type StandbyPosition, type UpstreamTimeline, type WalEnd } from '../fsm/divergence-rule.js';
import { readControlData, readLastWalRecord, runPgProgram } from '@pgha/postgres';

/** A standby's position, with the system identifier of its data directory. */
export interface LocalTimeline extends StandbyPosition {
  /** `pg_control_system().system_identifier`, as text. */
  readonly systemId: string;
}

/** An upstream's timeline, with the system identifier of its data directory. */
export interface RemoteTimeline extends UpstreamTimeline {
  /** `IDENTIFY_SYSTEM`'s `systemid`. */
  readonly systemId: string;
}

/**
 * Reads the local standby's timeline and replay LSN in one query: the timeline is the highest
 * of {@link walSegmentTimeline} (the WAL segment files holding the replay LSN) and the two the
 * control file records (the last restartpoint's and the minimum recovery point's), which can
 * only be older.
 *
 * @returns undefined when Postgres is not in recovery or has replayed nothing yet.
 * @throws the driver's error when the query fails.
 */
export async function readLocalTimeline(client: pg.Client): Promise<LocalTimeline | undefined> {
  const { rows } = await client.query<{ replay_lsn: string | null; segment_bytes: string; checkpoint_tli: number; min_recovery_tli: number; system_id: string; wal_files: string[] }>(`
    select pg_last_wal_replay_lsn()::text as replay_lsn,
           (select setting from pg_settings where name = 'wal_segment_size') as segment_bytes,
           (select timeline_id from pg_control_checkpoint()) as checkpoint_tli,
           (select min_recovery_end_timeline from pg_control_recovery()) as min_recovery_tli,
           (select system_identifier::text from pg_control_system()) as system_id,
           array(select name from pg_ls_waldir() where name ~ '^[0-9A-F]{24}$') as wal_files`);
  const r = rows[0];
  if (!r?.replay_lsn) return undefined;
  const replayLsn = parseLsn(r.replay_lsn);
  const fromFiles = walSegmentTimeline(r.wal_files, replayLsn, Number(r.segment_bytes)) ?? 0;
  return { systemId: r.system_id, replayLsn, timeline: Math.max(fromFiles, Number(r.checkpoint_tli), Number(r.min_recovery_tli)) };
}

/**
 * The fields of the one row psql printed with `--no-align --tuples-only --field-separator-zero
 * --record-separator-zero` (NUL between fields and after the row).
 *
 * ### Examples
 * ```ts
 * psqlRow('7715617485808609605\u00002\u00000/4000278\u0000\u0000') // ['7715617485808609605', '2', '0/4000278', '']
 * ```
 */
export function psqlRow(stdout: string): string[] {
  const fields = stdout.split('\0');
  if (fields.at(-1) === '') fields.pop();
  return fields;
}

/**
 * The psql script of {@link readUpstreamTimeline}: `IDENTIFY_SYSTEM`'s row printed, then the
 * same command again with its fields kept in psql variables (`\gset`), then the history of the
 * timeline it named. On timeline 1, which has no history file, the last command fails (psql
 * says so on stderr and goes on): the output then holds the first row alone.
 */
const UPSTREAM_TIMELINE_SCRIPT = 'IDENTIFY_SYSTEM \\g\nIDENTIFY_SYSTEM \\gset\nTIMELINE_HISTORY :timeline\n';

/**
 * Reads an upstream's current timeline (`IDENTIFY_SYSTEM`) and, past timeline 1, its history
 * (`TIMELINE_HISTORY`), with one psql session over a physical replication connection
 * (`replication=true` in `conninfo`): the same kind of connection the WAL receiver opens, so it
 * needs no right the replication role lacks. One session, not one per command: each psql
 * start, TLS handshake and SCRAM exchange cost 60–80 ms on a loaded 2-core machine (an old
 * primary's rejoin waits for this read; issue 17 §5).
 *
 * @param conninfo - libpq keyword/value string (host, port, user, passfile, TLS, timeouts):
 *   everything psql needs, since it runs in the clean environment of `runPgProgram`.
 * @throws PostgresCommandError when psql fails (the upstream does not answer, refuses the
 *   connection...); PghaError `PGHA_ERR_INTERNAL` when its answer has an unexpected shape.
 */
export async function readUpstreamTimeline(conninfo: string): Promise<RemoteTimeline> {
  const out = await runPgProgram('psql', ['--no-psqlrc', '--no-align', '--tuples-only', '--field-separator-zero', '--record-separator-zero', '--dbname', conninfo, '--file', '-'], { timeoutMs: 10_000, input: UPSTREAM_TIMELINE_SCRIPT });
  return parseUpstreamTimeline(psqlRow(out));
}

/**
 * What {@link readUpstreamTimeline}'s psql printed, split by {@link psqlRow}: `IDENTIFY_SYSTEM`'s
 * four fields (`systemid`, `timeline`, `xlogpos`, `dbname`), then, past timeline 1,
 * `TIMELINE_HISTORY`'s two (`filename`, `content`).
 *
 * @throws PghaError `PGHA_ERR_INTERNAL` when the fields are not of that shape.
 *
 * ### Examples
 * ```ts
 * parseUpstreamTimeline(['7715617485808609605', '2', '0/4000278', '', '00000002.history', '1\t0/4000000\tno recovery target specified\n'])
 * // { systemId: '7715617485808609605', timeline: 2, history: [{ timeline: 1, switchLsn: 0x4000000n }] }
 * ```
 */
export function parseUpstreamTimeline(fields: readonly string[]): RemoteTimeline {
  const [systemId, tli] = fields;
  const timeline = Number(tli);
  if (!systemId || !/^[1-9][0-9]*$/.test(systemId) || !Number.isInteger(timeline) || timeline < 1) {
    throw new PghaError('PGHA_ERR_INTERNAL', `unexpected answer to IDENTIFY_SYSTEM: ${JSON.stringify(fields.slice(0, 4))}`);
  }
  if (timeline === 1) return { systemId, timeline, history: [] };
  if (fields.length !== 6) throw new PghaError('PGHA_ERR_INTERNAL', `no answer to TIMELINE_HISTORY ${timeline}: ${JSON.stringify(fields.slice(4))}`);
  try {
    return { systemId, timeline, history: parseTimelineHistory(fields[5]!) };
  } catch (err) {
    throw new PghaError('PGHA_ERR_INTERNAL', `unexpected answer to TIMELINE_HISTORY ${timeline}: ${(err as Error).message}`);
  }
}

/** A stopped cluster's end of WAL ({@link WalEnd}), with where crash recovery starts and why the WAL ends there. */
export interface LocalWalEnd extends WalEnd {
  /** Its database system identifier (its control file). */
  readonly systemId: string;
  /** Its last checkpoint's REDO location, where crash recovery starts and pg_waldump started. */
  readonly redoLsn: Lsn;
  /** Why the record after the last one is not valid, in pg_waldump's words. */
  readonly stop: string;
}

/** A history file's name in `pg_wal` (`0000000N.history`). */
const HISTORY_FILE = /^([0-9A-F]{8})\.history$/;

/**
 * Reads where the WAL of the stopped cluster in `pgdata` ends: its last checkpoint from its
 * control file (REDO location, timeline), then `pg_waldump` from that REDO location over
 * that timeline's segment files, to the first record that is not valid: the WAL crash recovery
 * would replay. Its timeline is the last checkpoint's, and only when no history file in `pg_wal`
 * names a later one (a node promoted and crashed before its first checkpoint writes on a
 * timeline its control file does not show yet: that end is not told).
 *
 * @returns the end, or `{unknown}` with a phrase saying why it cannot be told.
 * @throws Error when the control file cannot be read or is not one; PostgresCommandError when
 *   pg_waldump cannot run.
 */
export async function readWalEnd(pgdata: string): Promise<LocalWalEnd | { unknown: string }> {
  const control = readControlData(pgdata);
  const timeline = control.timeline;
  const newest = Math.max(0, ...readdirSync(join(pgdata, 'pg_wal')).map((name) => HISTORY_FILE.exec(name)).map((m) => (m ? parseInt(m[1]!, 16) : 0)));
  if (newest > timeline) return { unknown: `its last checkpoint is on timeline ${timeline}, but pg_wal has the history of timeline ${newest}` };
  const last = await readLastWalRecord(pgdata, timeline, control.redoLsn);
  if (!last || last.lsn < control.redoLsn) return { unknown: `pg_waldump found no valid WAL record on timeline ${timeline} from the last checkpoint's REDO location ${formatLsn(control.redoLsn)}` };
  return { systemId: control.systemIdentifier, timeline, redoLsn: control.redoLsn, lastRecordLsn: last.lsn, stop: last.stop };
}
