/** `pgha show postgresql` as a table (cli-table3, loaded when the command prints one). */
import Table from 'cli-table3';
import type { PostgresParametersView } from '@pgha/shared/base';

/**
 * `pgha show postgresql` as a table: one row per parameter, the formation's value and, per
 * node, what it runs with (`(own)`: the node's own value; `(restart pending: X)`: Postgres runs
 * with another value until it restarts; `(held back: X)`: the order of a hot-standby parameter
 * holds X back), then the parameters waiting for a restart on each node.
 */
export function renderPostgresParameters(view: PostgresParametersView): string {
  const names = [...new Set([...view.parameters.map((p) => p.name), ...view.nodes.flatMap((n) => n.parameters.map((p) => p.name))])].sort();
  if (names.length === 0) return `formation "${view.formation}" has no Postgres parameters set by pgha (pgha set postgresql NAME VALUE)`;
  const table = new Table({
    head: ['Parameter', 'Formation', ...view.nodes.map((n) => n.name)],
    style: { head: [], border: [] },
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: ' | ' },
  });
  const formationValue = new Map(view.parameters.map((p) => [p.name, p.value]));
  for (const name of names) {
    const cells = view.nodes.map((n) => {
      const p = n.parameters.find((x) => x.name === name);
      if (!p) return '';
      const wanted = p.node_value ?? formationValue.get(name);
      const marks = [p.node_value !== null ? 'own' : '', wanted !== undefined && wanted !== p.value ? `held back: ${wanted}` : '', p.pending_restart ? `restart pending: ${p.value}` : ''].filter(Boolean);
      return `${p.running ?? '?'}${marks.length > 0 ? ` (${marks.join('; ')})` : ''}`;
    });
    table.push([name, formationValue.get(name) ?? '', ...cells]);
  }
  const pending = view.nodes.filter((n) => n.pending_restart.length > 0).map((n) => `${n.name} (${n.pending_restart.join(', ')})`);
  return `${table.toString()}${pending.length > 0 ? `\nRestart pending on: ${pending.join('; ')}` : ''}`;
}
