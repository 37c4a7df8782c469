/**
 * `pgha show monitors [--json]`: every monitor of the store (reachable, the formations it leads
 * with its term, how long its lease may still live) and every etcd member (healthy, leader,
 * database size), as the monitor asked sees them.
 * Source: `patronictl list` (members, leader, lag) and `etcdctl endpoint status`.
 */
import Table from 'cli-table3';
import { MonitorClient } from '@pgha/client';
import { formatBytes, formatDurationMs, type MonitorsView } from '@pgha/shared/base';
import { cliCredentials } from './credentials.js';

const PLAIN = { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: ' | ' };

/** The view as two tables: monitors, then etcd members (none on a Postgres store). */
export function renderMonitors(view: MonitorsView): string {
  const monitors = new Table({ head: ['Monitor', 'URL', 'Reachable', 'Leads (term)', 'Lease left', 'Store'], style: { head: [], border: [] }, chars: PLAIN });
  for (const m of view.monitors) {
    monitors.push([
      m.monitor_id,
      m.url,
      m.reachable ? 'yes' : `no: ${m.error ?? 'no answer'}`,
      m.leads.length > 0 ? m.leads.map((l) => `${l.formation} (${l.term})`).join(', ') : '-',
      m.lease_left_ms === null ? '-' : formatDurationMs(m.lease_left_ms),
      m.store,
    ]);
  }
  const lines = [monitors.toString()];
  if (view.etcd.length > 0) {
    const members = new Table({ head: ['etcd member', 'ID', 'Client URLs', 'Healthy', 'Leader', 'DB size'], style: { head: [], border: [] }, chars: PLAIN });
    for (const e of view.etcd) {
      members.push([e.name, e.id, e.client_urls.join(','), e.healthy ? 'yes' : `no: ${e.error ?? 'no answer'}`, e.leader ? 'yes' : 'no', e.db_size_bytes === null ? '-' : formatBytes(e.db_size_bytes)]);
    }
    lines.push('', members.toString());
  }
  return lines.join('\n');
}

/** `pgha show monitors`. */
export async function showMonitors(monitors: readonly string[], json: boolean): Promise<void> {
  const client = new MonitorClient(monitors, cliCredentials());
  try {
    const view = await client.monitors();
    process.stdout.write(json ? `${JSON.stringify(view, null, 2)}\n` : `${renderMonitors(view)}\n`);
  } finally {
    await client.close();
  }
}
