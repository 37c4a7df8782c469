/**
 * `pgha show state`'s table (cli-table3: a module of its own so that only the commands that
 * print it load the library), and the notes printed under it (a keeper's problem, a transition's
 * progress, a standby's lag, a restart under way or pending): also printed by `pgha perform`,
 * and the notes by `pgha watch`.
 */
import Table from 'cli-table3';
import { describeProgress, formatBytes, formatDurationMs } from '@pgha/shared/core';
import type { NodeStateRow, TransitionProgress } from '@pgha/shared/base';

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

/**
 * Prints node rows as `pgha show state` does: a borderless cli-table3 table (cells separated by
 * ` | `), then {@link stateNotes}. cli-table3 and its first layout cost `pgha show state` about
 * 20 ms (issue 17 §4); a table is a library's job here, not ours.
 */
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
