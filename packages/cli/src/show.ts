/**
 * `pgha show state|events|uri`: read the monitor and print a table or JSON. cli-table3 (the
 * events' table) is loaded only to print that table.
 */
import { caFileGiven, cliCredentials } from './credentials.js';
import { withRootCert } from './client-uri.js';
import { renderStateTable } from './state-table.js';
import { MonitorClient } from '@pgha/client';
import type { EventRow } from '@pgha/shared/base';

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
    const { default: Table } = await import('cli-table3');
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
