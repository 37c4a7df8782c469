/**
 * `pgha perform switchover|failover|promotion`, `pgha maintenance enable|disable` and
 * `pgha drop node`: send the command, then wait until the formation shows its outcome and say
 * how long it took. A wait that runs out says what state the group is in.
 */
import { cliCredentials } from './credentials.js';
import { ConflictError, PghaError, type CommandResponse, type NodeStateRow } from '@pgha/shared';
import { MonitorClient } from '@pgha/keeper';
import { renderStateTable } from './show.js';

/** Sends an operator command to the monitor. @throws the monitor's refusal (409) as ConflictError. */
export async function sendCommand(monitorUrl: string, method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<CommandResponse> {
  const client = new MonitorClient(monitorUrl, cliCredentials());
  try {
    return await client.request<CommandResponse>(method, path, body, 30_000);
  } catch (err) {
    if (err instanceof ConflictError) throw new ConflictError(`refused: ${err.message}`, err.hint ? { hint: err.hint } : {});
    throw err;
  } finally {
    await client.close();
  }
}

/** Options shared by the waiting commands. */
export interface WaitOptions {
  monitorUrl: string;
  formation: string;
  waitS: number;
  json: boolean;
}

function settledWritable(r: NodeStateRow): boolean {
  return (r.goal_state === 'primary' || r.goal_state === 'wait_primary') && r.reported_state === r.goal_state;
}

/**
 * Polls the formation until `done(rows)` holds or `waitS` runs out.
 *
 * @throws PghaError `PGHA_ERR_TIMEOUT` whose message shows the group's states.
 */
async function waitUntil(o: WaitOptions, what: string, done: (rows: NodeStateRow[]) => boolean): Promise<NodeStateRow[]> {
  const client = new MonitorClient(o.monitorUrl, cliCredentials());
  const deadline = Date.now() + o.waitS * 1000;
  try {
    for (;;) {
      const rows = await client.formationState(o.formation).catch(() => undefined);
      if (rows && done(rows)) return rows;
      if (Date.now() > deadline) {
        const states = (rows ?? []).map((r) => `${r.name} is ${r.reported_state} (goal ${r.goal_state}, health ${r.health})`).join('; ');
        throw new PghaError('PGHA_ERR_TIMEOUT', `gave up waiting after ${o.waitS} s for ${what}: ${states || 'the monitor did not answer'}`, {
          hint: 'the formation keeps converging on its own; follow it with pgha show state and pgha show events',
        });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await client.close();
  }
}

function print(o: WaitOptions, result: CommandResponse, elapsedMs: number, line: string, rows: NodeStateRow[]): void {
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ ...result, elapsed_ms: Math.round(elapsedMs), state: rows }, null, 2)}\n`);
  } else {
    process.stdout.write(`${line} in ${(elapsedMs / 1000).toFixed(2)} s\n${renderStateTable(rows)}\n`);
  }
}

/** `pgha perform switchover|failover`: a new primary, writable; prints how long it took. */
export async function performSwitchover(o: WaitOptions, kind: 'switchover' | 'failover'): Promise<void> {
  const client = new MonitorClient(o.monitorUrl, cliCredentials());
  const before = await client.formationState(o.formation).finally(() => client.close());
  const oldPrimary = before.find((r) => r.goal_state === 'primary' || r.goal_state === 'wait_primary');
  const started = performance.now();
  const result = await sendCommand(o.monitorUrl, 'POST', `/v1/formations/${encodeURIComponent(o.formation)}/${kind}`, {});
  const rows = await waitUntil(o, 'a new primary to take writes', (rs) => rs.some((r) => r.node_id !== oldPrimary?.node_id && settledWritable(r)));
  const primary = rows.find((r) => r.node_id !== oldPrimary?.node_id && settledWritable(r))!;
  print(o, result, performance.now() - started, `${kind} done: ${primary.name} (node ${primary.node_id}) is the primary and takes writes`, rows);
}

/** `pgha perform promotion --name N`. */
export async function performPromotion(o: WaitOptions, name: string): Promise<void> {
  const started = performance.now();
  const result = await sendCommand(o.monitorUrl, 'POST', `/v1/formations/${encodeURIComponent(o.formation)}/promotion`, { name });
  const rows = await waitUntil(o, `${name} to become the primary`, (rs) => rs.some((r) => r.name === name && settledWritable(r)));
  print(o, result, performance.now() - started, result.note ?? `promotion done: ${name} is the primary and takes writes`, rows);
}

/** `pgha maintenance enable|disable --name N [--allow-failover]`. */
export async function maintenance(o: WaitOptions, name: string, enable: boolean, allowFailover: boolean): Promise<void> {
  const started = performance.now();
  const result = await sendCommand(o.monitorUrl, 'POST', `/v1/formations/${encodeURIComponent(o.formation)}/maintenance`, { name, enable, allowFailover });
  const target = enable ? 'maintenance' : 'secondary';
  const rows = await waitUntil(o, `${name} to reach ${target}`, (rs) => rs.some((r) => r.name === name && r.goal_state === target && r.reported_state === target));
  print(o, result, performance.now() - started, `${name} is in ${target}`, rows);
}

/** `pgha drop node --name N [--destroy]`. */
export async function dropNode(o: WaitOptions, name: string, destroy: boolean): Promise<void> {
  const started = performance.now();
  const result = await sendCommand(o.monitorUrl, 'DELETE', `/v1/formations/${encodeURIComponent(o.formation)}/nodes/${encodeURIComponent(name)}?destroy=${destroy}`);
  const rows = await waitUntil(o, `${name} to leave the formation`, (rs) => !rs.some((r) => r.name === name));
  print(o, result, performance.now() - started, `${name} is dropped${destroy ? ' and its data removed' : ''}`, rows);
}
