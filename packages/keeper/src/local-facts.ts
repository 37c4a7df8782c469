/**
 * What the keeper reads from its own Postgres every tick, in one query on its kept session.
 */
import type pg from 'pg';
import { HOT_STANDBY_PARAMETERS, parseLsn, type Lsn, type ReportedParameters } from '@pgha/shared/base';

/** What the keeper reads from its Postgres each tick. */
export interface PostgresFacts {
  isInRecovery: boolean;
  /** Flush LSN on a primary; the greater of received and replayed LSN on a standby. */
  lsn: Lsn;
  timeline: number;
  /** Standby: the WAL receiver is streaming. */
  upstreamStreaming: boolean;
  synchronousStandbyNames: string;
  /** Standby: the last WAL location replayed (`pg_last_wal_replay_lsn()`); null on a primary. */
  replayLsn: Lsn | null;
  /**
   * Standby whose WAL receiver streams: the end of WAL its upstream last reported in the
   * stream (`pg_stat_wal_receiver.latest_end_lsn`, the sender's flush position, updated with
   * every message and keepalive); null otherwise. Replay lag is this minus {@link replayLsn}.
   */
  upstreamEndLsn: Lsn | null;
}

/**
 * Reads {@link PostgresFacts} in one query.
 *
 * @param queryTimeoutMs - client-side limit (ms): a Postgres that accepted the session but does
 *   not answer (stopped, stuck on I/O) fails the read instead of holding the keeper's tick.
 * @throws the driver's error (connection lost, query timed out).
 */
export async function readPostgresFacts(client: pg.Client, queryTimeoutMs: number): Promise<PostgresFacts> {
  const { rows } = await client.query<{
    in_recovery: boolean;
    lsn: string;
    timeline: number;
    streaming: boolean;
    ssn: string;
    replay_lsn: string | null;
    upstream_end_lsn: string | null;
  }>({
    text: `
    select pg_is_in_recovery() as in_recovery,
           case when pg_is_in_recovery()
                then greatest(coalesce(pg_last_wal_receive_lsn(), '0/0'), coalesce(pg_last_wal_replay_lsn(), '0/0'))
                else pg_current_wal_flush_lsn() end::text as lsn,
           case when pg_is_in_recovery()
                then coalesce((select received_tli from pg_stat_wal_receiver where status = 'streaming'),
                              (select timeline_id from pg_control_checkpoint()))
                else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int end as timeline,
           coalesce((select status = 'streaming' from pg_stat_wal_receiver), false) as streaming,
           current_setting('synchronous_standby_names') as ssn,
           pg_last_wal_replay_lsn()::text as replay_lsn,
           (select latest_end_lsn::text from pg_stat_wal_receiver where status = 'streaming') as upstream_end_lsn`,
    query_timeout: queryTimeoutMs,
  } as pg.QueryConfig);
  const r = rows[0]!;
  return {
    isInRecovery: r.in_recovery,
    lsn: parseLsn(r.lsn),
    timeline: Number(r.timeline),
    upstreamStreaming: r.streaming,
    synchronousStandbyNames: r.ssn,
    replayLsn: r.replay_lsn === null ? null : parseLsn(r.replay_lsn),
    upstreamEndLsn: r.upstream_end_lsn === null ? null : parseLsn(r.upstream_end_lsn),
  };
}

/**
 * Reads what the keeper reports of its Postgres's parameters (`NodeReport.parameters`): the
 * names waiting for a restart (`pg_settings.pending_restart`: changed in a file, applied only
 * when Postgres starts again) and the values it runs with of `names` and of
 * `HOT_STANDBY_PARAMETERS` (`current_setting(name, true)`; an unknown name, e.g. an extension's
 * not loaded, is left out).
 *
 * @param names - the parameters the monitor gave the node (`NodeGoal.postgresParameters`).
 * @param queryTimeoutMs - client-side limit (ms).
 * @throws the driver's error.
 */
export async function readReportedParameters(client: pg.Client, names: readonly string[], queryTimeoutMs: number): Promise<ReportedParameters> {
  const wanted = [...new Set([...names, ...HOT_STANDBY_PARAMETERS])].sort();
  const { rows } = await client.query<{ pending: string[]; running: { name: string; value: string | null }[] }>({
    text: `select array(select name from pg_settings where pending_restart order by name) as pending,
             (select coalesce(json_agg(json_build_object('name', n, 'value', current_setting(n, true)) order by n), '[]') from unnest($1::text[]) n) as running`,
    values: [wanted],
    query_timeout: queryTimeoutMs,
  } as pg.QueryConfig);
  const r = rows[0]!;
  return { pendingRestart: r.pending, running: r.running.filter((p): p is { name: string; value: string } => p.value !== null) };
}
