/**
 * `pgha watch`: a live view of the formation in the terminal, redrawn in place every
 * `--interval` ms from the monitor's API (the rows of `pgha show state` and the latest events):
 * each node's name, id, host:port, reported and goal state, health, TLI: LSN, lag behind the
 * primary in bytes, the progress of a long transition, and how long ago its keeper reported;
 * then the last events, as many as fit. It draws on the terminal's alternate screen with
 * absolute cursor moves (ansi-escapes), each line cut to the width (cli-truncate) and never
 * more lines than the height, so nothing scrolls; it redraws at once when the terminal is
 * resized and gives the terminal back as it was on `q`, Ctrl-C, SIGTERM or a crash. While the
 * monitor does not answer it says so on the second line, keeps showing its last answer and
 * keeps asking. On a stdout that is not a terminal it prints one frame and says so on stderr.
 * Source: pg_auto_failover's `pg_autoctl watch` (an ncurses view of nodes and events).
 */
import { writeSync } from 'node:fs';
import ansiEscapes from 'ansi-escapes';
import cliTruncate from 'cli-truncate';
import Table from 'cli-table3';
import pc from 'picocolors';
import { MonitorClient } from '@pgha/client';
import { delay } from '@pgha/postgres/base';
import { AuthError, NotFoundError, PghaError, ValidationError, WRITABLE_STATES, describeProgress, formatDurationMs, type EventRow, type NodeState, type NodeStateRow } from '@pgha/shared/base';
import { cliCredentials } from './credentials.js';
import { pendingRestartNotes, problemNotes, rowProgress } from './state-table.js';

/** Options of {@link watch}, as the CLI flags give them. */
export interface WatchOptions {
  /** The monitors, in the order tried (`--monitor URL[,URL…]`). */
  monitors: readonly string[];
  formation: string;
  /** Time between two polls of the monitor (ms). */
  intervalMs: number;
}

/** Everything one frame shows: the monitor's last answer and whether the last poll failed. */
export interface WatchView {
  formation: string;
  /** The monitor that answered last (the first of the list before any answer). */
  monitorUrl: string;
  intervalMs: number;
  /** The formation's rows from the last answer; undefined before the first. */
  rows: readonly NodeStateRow[] | undefined;
  /** The latest events from the last answer, oldest first. */
  events: readonly EventRow[];
  /** When the monitor last answered. */
  answeredAt: Date | undefined;
  /** Why the last poll failed (one line); undefined when it succeeded. */
  error: string | undefined;
  /** Since when the polls fail. */
  failingSince: Date | undefined;
}

/** A terminal's size in character cells. */
export interface ScreenSize {
  columns: number;
  rows: number;
}

/** How many events a frame shows when there is no terminal height to fill. */
const EVENTS_OFF_TERMINAL = 10;

const clock = (d: Date): string => d.toTimeString().slice(0, 8);
const clockMs = (d: Date): string => `${clock(d)}.${String(d.getMilliseconds()).padStart(3, '0')}`;

/**
 * The lines of one frame. With `size`, at most `size.rows` lines of at most `size.columns`
 * cells each (longer lines are cut with `…`), the last events filling what the nodes leave;
 * without, every line whole and the last {@link EVENTS_OFF_TERMINAL} events.
 *
 * ### Examples
 * ```ts
 * renderWatchFrame(view, { columns: 160, rows: 40 }, new Date(), false)[0] // 'pgha watch · formation default · …'
 * ```
 */
export function renderWatchFrame(view: WatchView, size: ScreenSize | undefined, now: Date, colour: boolean): string[] {
  const c = pc.createColors(colour);
  const lines: string[] = [];
  lines.push(c.bold(`pgha watch · formation ${view.formation} · ${view.monitorUrl} · ${clock(now)} · every ${formatDurationMs(view.intervalMs)} · q or Ctrl-C quits`));
  if (view.error !== undefined) {
    const since = view.failingSince ? ` since ${clock(view.failingSince)}` : '';
    const shown = view.answeredAt ? `, showing its last answer (${clock(view.answeredAt)})` : '';
    lines.push(c.red(`monitor unreachable${since}, retrying every ${formatDurationMs(view.intervalMs)}${shown}: ${view.error}`));
  } else {
    lines.push(c.green(`monitor answered at ${view.answeredAt ? clock(view.answeredAt) : '-'}: ${view.rows?.length ?? 0} node(s)`));
  }
  lines.push('');
  if (view.rows === undefined) lines.push("waiting for the monitor's first answer");
  else if (view.rows.length === 0) lines.push(`formation "${view.formation}" has no nodes yet`);
  else lines.push(...nodeTable(view.rows, c).split('\n'), ...problemNotes(view.rows).map((l) => c.yellow(l)), ...pendingRestartNotes(view.rows));
  const eventRoom = size ? size.rows - lines.length - 2 : EVENTS_OFF_TERMINAL;
  if (eventRoom > 0) {
    lines.push('', c.bold('Last events'));
    const shown = view.events.slice(-eventRoom);
    if (shown.length === 0) lines.push('(none yet)');
    for (const e of shown) {
      lines.push(`${clockMs(new Date(e.event_time))}  ${e.node_name.padEnd(10)} ${`${e.old_goal_state} → ${e.new_goal_state}`.padEnd(38)} ${c.dim(e.reason)}`);
    }
  }
  if (!size) return lines;
  return lines.slice(0, size.rows).map((l) => cliTruncate(l, size.columns));
}

function stateColour(state: string, c: ReturnType<typeof pc.createColors>): string {
  if (WRITABLE_STATES.has(state as NodeState)) return c.green(state);
  if (state === 'secondary') return c.cyan(state);
  return c.yellow(state);
}

function healthColour(health: string, c: ReturnType<typeof pc.createColors>): string {
  return health === 'good' ? c.green(health) : health === 'bad' ? c.red(health) : c.yellow(health);
}

/** The node table of a frame. */
function nodeTable(rows: readonly NodeStateRow[], c: ReturnType<typeof pc.createColors>): string {
  const table = new Table({
    head: ['Name', 'Node', 'Host:Port', 'Reported State', 'Goal State', 'Health', 'TLI: LSN', 'Lag Bytes', 'Last Report', 'Progress'],
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: ' ', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: ' │ ' },
  });
  for (const r of rows) {
    const progress = rowProgress(r);
    table.push([
      r.name,
      `${r.group_id}/${r.node_id}`,
      `${r.host}:${r.port}`,
      stateColour(r.reported_state, c),
      stateColour(r.goal_state, c),
      healthColour(r.health, c),
      `${r.timeline}: ${r.lsn}`,
      r.lag_bytes === null || r.lag_bytes === undefined ? '-' : String(r.lag_bytes),
      r.last_report_ago_ms === null ? '-' : `${formatDurationMs(r.last_report_ago_ms)} ago`,
      progress ? describeProgress(progress) : '',
    ]);
  }
  return table.toString();
}

/** Errors that retrying cannot fix: said once at start instead of drawn forever. */
function isFatal(err: unknown): boolean {
  return err instanceof AuthError || err instanceof NotFoundError || err instanceof ValidationError || (err instanceof PghaError && err.code === 'PGHA_ERR_TLS');
}

/**
 * Asks the monitor for the formation's rows and its last `eventCount` events and records the
 * answer, or the failure, in `view`.
 *
 * @throws what the monitor answered, when `rethrow(err)` says so.
 */
async function poll(client: MonitorClient, view: WatchView, eventCount: number, rethrow: (err: unknown) => boolean): Promise<void> {
  try {
    const [rows, events] = await Promise.all([client.formationState(view.formation), client.events(view.formation, eventCount)]);
    Object.assign(view, { rows, events, monitorUrl: client.monitorUrl, answeredAt: new Date(), error: undefined, failingSince: undefined });
  } catch (err) {
    if (rethrow(err)) throw err;
    view.error = err instanceof PghaError ? err.message : String(err);
    view.failingSince ??= new Date();
  }
}

/**
 * The terminal while the watch runs: alternate screen, hidden cursor, keys read raw. Every
 * frame is written in one write, line by line at absolute positions (nothing scrolls), and
 * {@link leave} (also run on process exit) gives the terminal back as it was.
 */
class WatchScreen {
  private entered = false;
  private readonly restoreOnExit = (): void => this.leave();

  constructor(private readonly input: typeof process.stdin, private readonly output: typeof process.stdout) {}

  get size(): ScreenSize {
    return { columns: this.output.columns || 80, rows: this.output.rows || 24 };
  }

  /** Enters the alternate screen; `onKey` receives every key typed. */
  enter(onKey: (key: string) => void): void {
    this.output.write(ansiEscapes.enterAlternativeScreen + ansiEscapes.cursorHide + ansiEscapes.clearViewport);
    this.entered = true;
    process.once('exit', this.restoreOnExit);
    if (this.input.isTTY) this.input.setRawMode(true);
    this.input.on('data', (b: Buffer) => onKey(b.toString('utf8')));
    this.input.resume();
  }

  /** Draws `lines` from the top left, clearing every other row. */
  draw(lines: readonly string[]): void {
    if (!this.entered) return;
    const { rows } = this.size;
    let out = ansiEscapes.beginSynchronizedOutput;
    for (let y = 0; y < rows; y++) out += ansiEscapes.cursorTo(0, y) + ansiEscapes.eraseLine + (lines[y] ?? '');
    out += ansiEscapes.endSynchronizedOutput;
    this.output.write(out);
  }

  /** Leaves the alternate screen, shows the cursor, restores the keyboard. Safe to call twice. */
  leave(): void {
    if (!this.entered) return;
    this.entered = false;
    process.removeListener('exit', this.restoreOnExit);
    if (this.input.isTTY) this.input.setRawMode(false);
    this.input.removeAllListeners('data');
    this.input.pause();
    // Synchronous, so that it happens even from an 'exit' handler.
    writeSync(this.output.fd, ansiEscapes.exitAlternativeScreen + ansiEscapes.cursorShow);
  }
}

/**
 * `pgha watch [--formation F] [--interval MS]`.
 *
 * @throws AuthError, NotFoundError (no such formation), PghaError `PGHA_ERR_TLS` on the first
 *   poll; off a terminal, MonitorUnavailableError too (on a terminal it is drawn and retried).
 */
export async function watch(o: WatchOptions): Promise<void> {
  const client = new MonitorClient(o.monitors, cliCredentials());
  const view: WatchView = { formation: o.formation, monitorUrl: client.monitorUrl, intervalMs: o.intervalMs, rows: undefined, events: [], answeredAt: undefined, error: undefined, failingSince: undefined };
  const onTerminal = process.stdout.isTTY === true;
  try {
    if (!onTerminal) {
      await poll(client, view, EVENTS_OFF_TERMINAL, () => true);
      process.stdout.write(`${renderWatchFrame(view, undefined, new Date(), false).join('\n')}\n`);
      process.stderr.write('pgha watch: stdout is not a terminal, so this is one frame; run it on a terminal to follow the formation live\n');
      return;
    }
    const screen = new WatchScreen(process.stdin, process.stdout);
    const eventCount = (): number => Math.min(1000, Math.max(10, screen.size.rows));
    await poll(client, view, eventCount(), isFatal);
    const quit = new AbortController();
    const quitted = new Promise<void>((resolve) => quit.signal.addEventListener('abort', () => resolve(), { once: true }));
    const stop = (): void => quit.abort();
    const redraw = (): void => screen.draw(renderWatchFrame(view, screen.size, new Date(), !process.env.NO_COLOR));
    screen.enter((key) => {
      // q, or Ctrl-C / Ctrl-D, which arrive as bytes in raw mode instead of as signals.
      if (/[qQ\u0003\u0004]/.test(key)) stop();
    });
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    process.on('SIGHUP', stop);
    process.stdout.on('resize', redraw);
    try {
      while (!quit.signal.aborted) {
        redraw();
        await delay(o.intervalMs, quit.signal);
        if (quit.signal.aborted) break;
        await Promise.race([poll(client, view, eventCount(), () => false), quitted]);
      }
    } finally {
      process.stdout.removeListener('resize', redraw);
      for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeListener(s, stop);
      screen.leave();
    }
  } finally {
    await client.close();
  }
}
