/**
 * `pgha perform restart [--name NODE | --pending] [--in-place]`: restarts the Postgres of the
 * formation's nodes one at a time, standbys first, each back to streaming before the next, the
 * primary last by a switchover to a synchronous standby (or in place with `--in-place`). The
 * monitor accepts each restart only while the whole group is healthy (`restartRefusal`), so
 * that two nodes are never down at once; each step is printed as it happens.
 * Source: Patroni's `patronictl restart [--pending]`; CloudNativePG's rolling update (replicas
 * first, the primary last by switchover).
 */
import { MonitorClient } from '@pgha/client';
import { ConflictError, NotFoundError, PRIMARY_STATES, formatDurationMs, type NodeState, type NodeStateRow, type RestartRequest, type RestartResponse } from '@pgha/shared/base';
import { cliCredentials } from './credentials.js';
import { newPrimary, sendAndWait, sendCommand, type WaitOptions } from './perform.js';
import { nodesPendingRestart, renderStateTable } from './state-table.js';
import type { Step } from './steps.js';

/** What `pgha perform restart` restarts. */
export interface RestartOptions extends WaitOptions {
  /** Only this node (`--name`). */
  name?: string | undefined;
  /** Only the nodes with parameters pending a restart (`--pending`). */
  pending: boolean;
  /** Restart the primary in place instead of by a switchover (`--in-place`). */
  inPlace: boolean;
}

/** The node that holds a primary goal (`PRIMARY_STATES`), if any. */
function primaryRow(rows: readonly NodeStateRow[]): NodeStateRow | undefined {
  return rows.find((r) => PRIMARY_STATES.has(r.goal_state as NodeState));
}

/**
 * The order of a rolling restart of `selected` (rows of the formation): the standbys by node
 * id, then the primary. Pure.
 *
 * ### Examples
 * ```ts
 * restartOrder(rows).map((r) => r.name) // ['node2', 'node3', 'node1'] with node1 the primary
 * ```
 */
export function restartOrder(selected: readonly NodeStateRow[]): NodeStateRow[] {
  const primary = primaryRow(selected);
  const standbys = selected.filter((r) => r !== primary).sort((a, b) => a.node_id - b.node_id);
  return primary ? [...standbys, primary] : standbys;
}

/** The nodes a restart command selects, in restart order. @throws NotFoundError for an unknown `--name`. */
export function selectForRestart(rows: readonly NodeStateRow[], o: Pick<RestartOptions, 'name' | 'pending' | 'formation'>): NodeStateRow[] {
  const live = rows.filter((r) => r.goal_state !== 'dropped');
  if (o.name !== undefined) {
    const row = live.find((r) => r.name === o.name);
    if (!row) {
      throw new NotFoundError(`no node named "${o.name}" in formation "${o.formation}"`, { hint: `its nodes: ${live.map((r) => r.name).join(', ') || 'none'} (pgha show state)` });
    }
    return [row];
  }
  return restartOrder(o.pending ? nodesPendingRestart(live) : live);
}

/** One node restarted, as `--json` lists it. */
interface Restarted {
  name: string;
  node_id: number;
  method: RestartResponse['method'];
  /** Time from sending its restart to its being back (ms). */
  elapsed_ms: number;
}

/** The node is back from the restart `answer` asked for: Postgres restarted, at its goal, streaming if a standby. */
function backFromRestart(rows: readonly NodeStateRow[], before: readonly NodeStateRow[], answer: RestartResponse): boolean {
  const row = rows.find((r) => r.node_id === answer.node_id);
  if (!row || row.reported_state !== row.goal_state) return false;
  if (answer.method === 'switchover') {
    // The old primary rejoined as a standby: its Postgres was stopped and started again.
    return newPrimary(rows, before) !== undefined && row.goal_state === 'secondary' && row.connection === 'read-only';
  }
  const restarted = (row.restart?.done ?? 0) >= answer.restart_request;
  return restarted && (row.goal_state !== 'secondary' || row.connection === 'read-only');
}

/**
 * `pgha perform restart`: restarts the selected nodes one at a time (see the module), printing
 * each step and the total, or with `--json` the nodes restarted, every step and the state.
 *
 * @throws NotFoundError for an unknown `--name`; ConflictError when the monitor refuses a
 *   restart (the formation is not healthy: nothing is changed by that refusal; nodes restarted
 *   before it stay restarted); PghaError `PGHA_ERR_TIMEOUT` when a node is not back within `--wait`.
 */
export async function performRestart(o: RestartOptions): Promise<void> {
  const client = new MonitorClient(o.monitors, cliCredentials());
  let rows: NodeStateRow[];
  try {
    rows = await client.formationState(o.formation);
  } finally {
    await client.close();
  }
  const selected = selectForRestart(rows, o);
  const startedMs = performance.now();
  const restarted: Restarted[] = [];
  const steps: Step[] = [];
  let last = rows;
  if (selected.length === 0) {
    const why = o.pending ? 'no node has parameters pending a restart' : 'the formation has no node';
    if (o.json) process.stdout.write(`${JSON.stringify({ formation: o.formation, restarted, note: why, elapsed_ms: 0, steps, state: rows }, null, 2)}\n`);
    else process.stdout.write(`nothing to restart: ${why}\n`);
    return;
  }
  for (const node of selected) {
    const nodeStartMs = performance.now();
    const body: RestartRequest = { name: node.name, inPlace: o.inPlace };
    const w = await sendAndWait(o, () => sendCommand(o.monitors, 'POST', `/v1/formations/${encodeURIComponent(o.formation)}/restart`, body) as Promise<RestartResponse>, `${node.name} to be back from its restart`, backFromRestart, startedMs);
    restarted.push({ name: node.name, node_id: node.node_id, method: w.result.method, elapsed_ms: Math.round(performance.now() - nodeStartMs) });
    steps.push(...w.steps);
    last = w.rows;
    // Back, but with a problem (e.g. Postgres refused a new parameter at its start and its keeper
    // put back the ones it last started with): restart no other node with the same change.
    const problem = w.rows.find((r) => r.node_id === node.node_id)?.problem;
    if (problem) {
      throw new ConflictError(`stopped after restarting ${node.name}: ${problem}`, {
        hint: `the nodes after it were not restarted (${selected.slice(selected.indexOf(node) + 1).map((n) => n.name).join(', ') || 'none'}); fix what it says, then run pgha perform restart again`,
      });
    }
    if (!o.json) {
      const how = w.result.method === 'switchover' ? `by a switchover (${newPrimary(w.rows, w.before)?.name ?? 'another node'} is the primary now)` : 'in place';
      process.stdout.write(`${formatDurationMs(performance.now() - startedMs).padStart(10)}  ${node.name} restarted ${how}\n`);
    }
  }
  const elapsedMs = performance.now() - startedMs;
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ formation: o.formation, restarted, elapsed_ms: Math.round(elapsedMs), steps, state: last }, null, 2)}\n`);
  } else {
    process.stdout.write(`restart done: ${restarted.map((r) => r.name).join(', ')} restarted one at a time in ${formatDurationMs(elapsedMs)}\n${renderStateTable(last)}\n`);
  }
}
