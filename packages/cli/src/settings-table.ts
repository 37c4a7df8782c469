/** `pgha show settings` as a table (cli-table3, loaded when the command prints one). */
import Table from 'cli-table3';
import { TIMING_SETTINGS, formatTimingValue } from '@pgha/shared/core';
import type { SettingsView } from '@pgha/shared/base';
import { formatClientNetworkList } from '@pgha/postgres/client-networks';

/** `pgha show settings` as a table: Context | Name | Setting | Value, as pg_autoctl prints it. */
export function renderSettingsTable(view: SettingsView): string {
  const table = new Table({
    head: ['Context', 'Name', 'Setting', 'Value'],
    style: { head: [], border: [] },
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: ' | ' },
  });
  table.push(['formation', view.formation.formation, 'number_sync_standbys', String(view.formation.number_sync_standbys)]);
  for (const [name, s] of Object.entries(TIMING_SETTINGS)) table.push(['formation', view.formation.formation, name, formatTimingValue(s.key, view.formation.timing[s.key])]);
  table.push(['formation', view.formation.formation, 'client-networks', formatClientNetworkList(view.formation.client_networks)]);
  for (const s of view.standby_names) {
    if (s.primary !== null) table.push(['primary', s.primary, 'synchronous_standby_names', `'${s.synchronous_standby_names}'`]);
  }
  for (const n of view.nodes) table.push(['node', n.name, 'candidate priority', String(n.candidate_priority)]);
  for (const n of view.nodes) table.push(['node', n.name, 'replication quorum', String(n.replication_quorum)]);
  return table.toString();
}
