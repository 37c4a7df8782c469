/**
 * `pgha perform switchover|failover|promotion`, `pgha maintenance enable|disable` and
 * `pgha drop node`: send the command, then wait until the formation shows its outcome, printing
 * each step as it happens (see `steps.ts`), and say how long it took. A wait that runs out says what state the group is in.
 */
import { cliCredentials } from './credentials.js';
import { ConflictError, PRIMARY_STATES, PghaError, formatDurationMs, type CommandResponse, type NodeState, type NodeStateRow } from '@pgha/shared/base';
import { MonitorClient } from '@pgha/client';
import { pollUntil } from '@pgha/postgres/base';
import { renderStateTable } from './state-table.js';
import { StepTracker, formatStep, type Step } from './steps.js';

/** Sends an operator command to the monitor. @throws the monitor's refusal (409) as ConflictError. */
export async function sendCommand(monitors: readonly string[], method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<CommandResponse> {
  const client = new MonitorClient(monitors, cliCredentials());
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
  /** The monitors, in the order tried (`--monitor URL[,URL…]`). */
  monitors: readonly string[];
  formation: string;
  waitS: number;
  json: boolean;
}

/** The node is a primary (see `PRIMARY_STATES`) that has reached its goal: it takes writes. */
export function settledWritable(r: NodeStateRow): boolean {
  return PRIMARY_STATES.has(r.goal_state as NodeState) && r.reported_state === r.goal_state;
}

/** What a waiting command saw: the command's answer, the rows at the end, how long, every step. */
export interface Waited {
  result: CommandResponse;
  before: NodeStateRow[];
  rows: NodeStateRow[];
  elapsedMs: number;
  steps: Step[];
}

/**
 * Reads the formation, sends the command (`send`), then polls the formation and its events
 * until `done(rows, before, answer)` holds or `waitS` runs out, printing each step as it is seen
 * (unless `--json`, which lists them in `steps`), with the time since `startedMs`
 * (`performance.now()`; default: when the command is sent).
 *
 * @throws the command's refusal; PghaError `PGHA_ERR_TIMEOUT` whose message shows the group's states.
 */
export async function sendAndWait<R extends CommandResponse>(o: WaitOptions, send: () => Promise<R>, what: string, done: (rows: NodeStateRow[], before: NodeStateRow[], result: R) => boolean, startAtMs?: number): Promise<Waited & { result: R }> {
  const client = new MonitorClient(o.monitors, cliCredentials());
  try {
    const [before, events] = await Promise.all([client.formationState(o.formation), client.events(o.formation, 1)]);
    const startedMs = startAtMs ?? performance.now();
    const result = await send();
    const tracker = new StepTracker(before, events.at(-1)?.event_id ?? 0, startedMs);
    let rows: NodeStateRow[] | undefined;
    const waited = await pollUntil(async (): Promise<(Waited & { result: R }) | undefined> => {
      const [seen, recent] = await Promise.all([client.formationState(o.formation).catch(() => undefined), client.events(o.formation, STEP_EVENTS).catch(() => [])]);
      rows = seen;
      if (!seen) return undefined;
      for (const step of tracker.observe(seen, recent, performance.now())) if (!o.json) process.stdout.write(`${formatStep(step)}\n`);
      return done(seen, before, result) ? { result, before, rows: seen, elapsedMs: performance.now() - startedMs, steps: tracker.steps } : undefined;
    }, { timeoutMs: o.waitS * 1000, intervalMs: POLL_INTERVAL_MS });
    if (waited) return waited;
    const states = (rows ?? []).map((r) => `${r.name} is ${r.reported_state} (goal ${r.goal_state}, health ${r.health})`).join('; ');
    throw new PghaError('PGHA_ERR_TIMEOUT', `gave up waiting after ${formatDurationMs(o.waitS * 1000)} for ${what}: ${states || 'the monitor did not answer'}`, {
      hint: 'the formation keeps converging on its own; follow it with pgha show state and pgha show events',
    });
  } finally {
    await client.close();
  }
}

/** How often a waiting command polls the monitor (ms). */
const POLL_INTERVAL_MS = 100;
/** How many of the latest events each poll reads (more goal changes than this between two polls would show as one step). */
const STEP_EVENTS = 50;

function print(o: WaitOptions, w: Waited, line: string): void {
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ ...w.result, elapsed_ms: Math.round(w.elapsedMs), state: w.rows, steps: w.steps }, null, 2)}\n`);
  } else {
    process.stdout.write(`${line} in ${formatDurationMs(w.elapsedMs)}\n${renderStateTable(w.rows)}\n`);
  }
}

const formationPath = (o: WaitOptions, verb: string): string => `/v1/formations/${encodeURIComponent(o.formation)}/${verb}`;

/** The node other than the one writable `before` that is settled writable in `rows`. */
export function newPrimary(rows: readonly NodeStateRow[], before: readonly NodeStateRow[]): NodeStateRow | undefined {
  const old = before.find((r) => PRIMARY_STATES.has(r.goal_state as NodeState));
  return rows.find((r) => r.node_id !== old?.node_id && settledWritable(r));
}

/** `pgha perform switchover|failover`: a new primary, writable; prints each step and how long it took. */
export async function performSwitchover(o: WaitOptions, kind: 'switchover' | 'failover'): Promise<void> {
  const w = await sendAndWait(o, () => sendCommand(o.monitors, 'POST', formationPath(o, kind), {}), 'a new primary to take writes', (rows, before) => newPrimary(rows, before) !== undefined);
  const primary = newPrimary(w.rows, w.before)!;
  print(o, w, `${kind} done: ${primary.name} (node ${primary.node_id}) is the primary and takes writes`);
}

/**
 * Where a promotion of node `name` stands in `rows` (the formation's state now; `before`: when
 * the command was sent): `'done'` once it is the settled primary, the row of another node that
 * became the settled primary instead, or undefined while neither.
 */
export function promotionOutcome(rows: readonly NodeStateRow[], before: readonly NodeStateRow[], name: string): 'done' | NodeStateRow | undefined {
  if (rows.some((r) => r.name === name && settledWritable(r))) return 'done';
  const other = newPrimary(rows, before);
  return other && other.name !== name ? other : undefined;
}

/**
 * `pgha perform promotion --name N`: done when N is the primary; when the monitor promoted
 * another node instead (an election decided because N could not be shown to hold every
 * acknowledged commit, `switchover-election`), prints the state and fails with the reason.
 *
 * @throws PghaError `PGHA_ERR_CONFLICT` when another node became the primary.
 */
export async function performPromotion(o: WaitOptions, name: string): Promise<void> {
  const w = await sendAndWait(o, () => sendCommand(o.monitors, 'POST', formationPath(o, 'promotion'), { name }), `${name} to become the primary`, (rs, before) => promotionOutcome(rs, before, name) !== undefined);
  const other = promotionOutcome(w.rows, w.before, name);
  if (other !== undefined && other !== 'done') {
    print(o, w, `promotion not done: ${other.name} (node ${other.node_id}) is the primary`);
    throw new PghaError('PGHA_ERR_CONFLICT', `the monitor promoted ${other.name} instead of ${name}: ${name} could not be shown to hold every acknowledged commit, so an election decided`, {
      hint: 'see why with pgha show events; once the formation is settled, pgha perform promotion again',
    });
  }
  print(o, w, w.result.note ?? `promotion done: ${name} is the primary and takes writes`);
}

/** `pgha maintenance enable|disable --name N [--allow-failover]`. */
export async function maintenance(o: WaitOptions, name: string, enable: boolean, allowFailover: boolean): Promise<void> {
  const target = enable ? 'maintenance' : 'secondary';
  const w = await sendAndWait(o, () => sendCommand(o.monitors, 'POST', formationPath(o, 'maintenance'), { name, enable, allowFailover }), `${name} to reach ${target}`, (rs) => rs.some((r) => r.name === name && r.goal_state === target && r.reported_state === target));
  print(o, w, `${name} is in ${target}`);
}

/** `pgha drop node --name N [--destroy]`. */
export async function dropNode(o: WaitOptions, name: string, destroy: boolean): Promise<void> {
  const w = await sendAndWait(o, () => sendCommand(o.monitors, 'DELETE', `${formationPath(o, 'nodes')}/${encodeURIComponent(name)}?destroy=${destroy}`), `${name} to leave the formation`, (rs) => !rs.some((r) => r.name === name));
  print(o, w, `${name} is dropped${destroy ? ' and its data removed' : ''}`);
}
