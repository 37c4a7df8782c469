/**
 * What the timeline-divergence rule (`fsm/divergence-rule.ts`) reads from Postgres: the local
 * standby's timeline and replay LSN (SQL on its own session), and the timeline history of the
 * node it follows (replication commands over a replication connection, with psql).
 */
import type pg from 'pg';
import { PghaError, parseLsn } from '@pgha/shared/base';
import { parseTimelineHistory, walSegmentTimeline, type StandbyPosition, type UpstreamTimeline } from '../fsm/divergence-rule.js';
import { runPgProgram } from '@pgha/postgres';

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
 * Reads an upstream's current timeline (`IDENTIFY_SYSTEM`) and, past timeline 1, its history
 * (`TIMELINE_HISTORY`), with psql over a physical replication connection (`replication=true`
 * in `conninfo`): the same kind of connection the WAL receiver opens, so it needs no right the
 * replication role lacks.
 *
 * @param conninfo - libpq keyword/value string (host, port, user, passfile, TLS, timeouts):
 *   everything psql needs, since it runs in the clean environment of `runPgProgram`.
 * @throws PostgresCommandError when psql fails (the upstream does not answer, refuses the
 *   connection...); PghaError `PGHA_ERR_INTERNAL` when its answer has an unexpected shape.
 */
export async function readUpstreamTimeline(conninfo: string): Promise<RemoteTimeline> {
  const psql = (command: string): Promise<string> =>
    runPgProgram('psql', ['--no-psqlrc', '--no-align', '--tuples-only', '--field-separator-zero', '--record-separator-zero', '--dbname', conninfo, '--command', command], { timeoutMs: 10_000 });
  const [systemId, tli] = psqlRow(await psql('IDENTIFY_SYSTEM'));
  const timeline = Number(tli);
  if (!systemId || !Number.isInteger(timeline) || timeline < 1) {
    throw new PghaError('PGHA_ERR_INTERNAL', `unexpected answer to IDENTIFY_SYSTEM: ${JSON.stringify([systemId, tli])}`);
  }
  if (timeline === 1) return { systemId, timeline, history: [] };
  const [, content] = psqlRow(await psql(`TIMELINE_HISTORY ${timeline}`));
  try {
    return { systemId, timeline, history: parseTimelineHistory(content ?? '') };
  } catch (err) {
    throw new PghaError('PGHA_ERR_INTERNAL', `unexpected answer to TIMELINE_HISTORY ${timeline}: ${(err as Error).message}`);
  }
}
