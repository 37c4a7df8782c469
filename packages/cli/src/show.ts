/** `pgha show state|events|uri`: read the monitor and print a table or JSON. */
import { caFileGiven, cliCredentials } from './credentials.js';
import { withRootCert } from './client-uri.js';
import Table from 'cli-table3';
import { MonitorClient } from '@pgha/client';
import { describeProgress, formatBytes, formatDurationMs, type EventRow, type NodeStateRow, type TransitionProgress } from '@pgha/shared/base';

/** A row's progress in the shape the shared helpers read; undefined when none. */
export function rowProgress(r: NodeStateRow): TransitionProgress | undefined {
  const p = r.transition_progress;
  return p ? { phase: p.phase as TransitionProgress['phase'], doneBytes: p.done_bytes, totalBytes: p.total_bytes } : undefined;
}

/** A group's note and a keeper's problem, one line each (`Note: …`, `Problem on NODE: …`). */
export function problemNotes(rows: readonly NodeStateRow[]): string[] {
  return [...rows.filter((r) => r.note).map((r) => `Note: ${r.note}`), ...rows.filter((r) => r.problem).map((r) => `Problem on ${r.name}: ${r.problem}`)];
}

/**
 * The nodes whose Postgres has parameters waiting for a restart: those whose row lists names in
 * `pending_restart` (filled by keepers that report pg_settings.pending_restart; a row without
 * the field has none).
 */
export function nodesPendingRestart(rows: readonly NodeStateRow[]): NodeStateRow[] {
  return rows.filter((r) => (r.pending_restart?.length ?? 0) > 0);
}

/** `Restart pending on node1: shared_buffers (pgha perform restart --pending)`, one line per node with Postgres parameters waiting for a restart. */
export function pendingRestartNotes(rows: readonly NodeStateRow[]): string[] {
  return nodesPendingRestart(rows).map((r) => `Restart pending on ${r.name}: ${r.pending_restart.join(', ')} (pgha perform restart --pending)`);
}

/**
 * The lines under the table: {@link problemNotes}, a long transition's progress
 * (`Progress on node2: base backup 42% (123.4 MB of 293.0 MB)`), and a catching-up standby's
 * lag (`Catching up: node2 is 40.0 MB (41943040 bytes) behind the primary`), a restart under
 * way (`Restarting: node2's Postgres (restart 1, asked for 1200 ms ago; …)`) and the Postgres
 * parameters that wait for a restart (`Restart pending on node1: shared_buffers`).
 */
export function stateNotes(rows: readonly NodeStateRow[]): string[] {
  const lines = problemNotes(rows);
  for (const r of rows) {
    const p = rowProgress(r);
    if (p) lines.push(`Progress on ${r.name}: ${describeProgress(p)}`);
  }
  for (const r of rows) {
    if (r.lag_bytes !== null && r.lag_bytes !== undefined && (r.reported_state === 'catchingup' || r.goal_state === 'catchingup')) {
      lines.push(`Catching up: ${r.name} is ${formatBytes(r.lag_bytes)} (${r.lag_bytes} bytes) behind the primary`);
    }
  }
  for (const r of rows) {
    const restart = r.restart;
    if (restart && restart.done < restart.requested) {
      const ago = restart.requested_ago_ms === null ? '' : ` ${formatDurationMs(restart.requested_ago_ms)} ago`;
      lines.push(`Restarting: ${r.name}'s Postgres (restart ${restart.requested}, asked for${ago}; its keeper reports it done once replication streams again)`);
    }
  }
  return [...lines, ...pendingRestartNotes(rows)];
}

/** Prints node rows as `pgha show state` does. */
export function renderStateTable(rows: readonly NodeStateRow[]): string {
  const table = new Table({
    head: ['Name', 'Node', 'Host:Port', 'TLI: LSN', 'Connection', 'Reported State', 'Assigned State', 'Health'],
    style: { head: [], border: [] },
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: ' | ' },
  });
  for (const r of rows) {
    table.push([r.name, `${r.group_id}/${r.node_id}`, `${r.host}:${r.port}`, `${r.timeline}: ${r.lsn}`, r.connection, r.reported_state, r.goal_state, r.health]);
  }
  return [table.toString(), ...stateNotes(rows)].join('\n');
}

/** `pgha show state`. */
export async function showState(monitors: readonly string[], formation: string, json: boolean): Promise<void> {
  const client = new MonitorClient(monitors, cliCredentials());
  try {
    const rows = await client.formationState(formation);
    process.stdout.write(json ? `${JSON.stringify(rows, null, 2)}\n` : `${renderStateTable(rows)}\n`);
  } finally {
    await client.close();
  }
}

/** `pgha show events`. */
export async function showEvents(monitors: readonly string[], formation: string, count: number, json: boolean): Promise<void> {
  const client = new MonitorClient(monitors, cliCredentials());
  try {
    const rows: EventRow[] = await client.events(formation, count);
    if (json) {
      process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return;
    }
    const table = new Table({ head: ['Event Time', 'Node', 'Current State', 'Assigned State', 'Comment'], style: { head: [], border: [] }, wordWrap: true, colWidths: [26, 14, 16, 18, 70] });
    for (const e of rows) table.push([e.event_time, `${e.group_id}/${e.node_id} ${e.node_name}`, e.reported_state, `${e.old_goal_state} → ${e.new_goal_state}`, e.reason]);
    process.stdout.write(`${table.toString()}\n`);
  } finally {
    await client.close();
  }
}

/**
 * `pgha show uri [--read-only]`: the formation's multi-host URI (`target_session_attrs=read-write`,
 * or `prefer-standby`), with `sslmode=verify-full` and this command's CA file as `sslrootcert`
 * when the nodes use TLS.
 */
export async function showUri(monitors: readonly string[], formation: string, json: boolean, readOnly = false): Promise<void> {
  const client = new MonitorClient(monitors, cliCredentials());
  try {
    const uri = withRootCert((await client.formationUri(formation, readOnly)).uri, caFileGiven());
    process.stdout.write(json ? `${JSON.stringify({ monitor: client.monitorUrl, formation, uri }, null, 2)}\n` : `${uri}\n`);
  } finally {
    await client.close();
  }
}
