/**
 * A detached tmux session on a private server (`tmux -L <socket>`, its own config), for tests
 * that drive a terminal program: type keys, read the screen, resize it. {@link endTmuxServers}
 * (called by the tests' `afterAll`) kills every server by `kill-server` and then by PID, so
 * none outlives a failed test.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { killPid, makeTestDir } from './processes.js';
import { waitFor } from './wait-for.js';

const servers: { socket: string; pid: number | undefined }[] = [];

/** One tmux session with one pane running one command. */
export class TmuxSession {
  private constructor(readonly socket: string, private readonly config: string, readonly statusFile: string) {}

  /**
   * Starts `command` (argv) in a detached session of `columns` × `rows` cells, with `env`
   * added to its environment, under a shell that writes its exit status to a file when it ends
   * (tmux 3.3 often fails to reap a pane's process, leaving `#{pane_dead_status}` empty). The
   * pane stays after the program exits (`remain-on-exit`); there is no status line, so the pane
   * is the whole window.
   */
  static async start(command: readonly string[], options: { columns: number; rows: number; env: Record<string, string> }): Promise<TmuxSession> {
    const socket = `pgha-test-${process.pid}-${servers.length}`;
    const dir = makeTestDir();
    const config = join(dir, 'tmux.conf');
    writeFileSync(config, 'set -g remain-on-exit on\nset -g status off\nset -g default-terminal "tmux-256color"\nset -g history-limit 0\n');
    const session = new TmuxSession(socket, config, join(dir, 'exit-status'));
    const entry = { socket, pid: undefined as number | undefined };
    servers.push(entry);
    const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
    const envArgs = Object.entries(options.env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    await session.tmux(['new-session', '-d', '-s', 'test', '-x', String(options.columns), '-y', String(options.rows), ...envArgs, `${command.map(quote).join(' ')}; echo $? > ${quote(session.statusFile)}`]);
    entry.pid = Number(await session.format('#{pid}'));
    return session;
  }

  /** Runs `tmux -L socket -f config ARGS` and returns its stdout. @throws when tmux fails. */
  async tmux(args: readonly string[]): Promise<string> {
    const r = await execa('tmux', ['-L', this.socket, '-f', this.config, ...args], { reject: false, timeout: 10_000 });
    if (r.exitCode !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  /** A tmux format (`#{pane_dead}`, `#{alternate_on}` …) of the pane. */
  async format(f: string): Promise<string> {
    return (await this.tmux(['display-message', '-p', '-t', 'test', f])).trim();
  }

  /** The visible screen, one string per row (every row, trailing spaces cut); with `escapes`, SGR colours kept. */
  async capture(options: { escapes?: boolean } = {}): Promise<string[]> {
    const out = await this.tmux(['capture-pane', '-p', '-t', 'test', ...(options.escapes ? ['-e'] : [])]);
    return out.split('\n');
  }

  /**
   * Waits until the program has exited.
   *
   * @returns its exit status (128 + N for a signal N, as the shell says it).
   * @throws when it has not exited within `timeoutMs`.
   */
  async exitStatus(timeoutMs = 10_000): Promise<number> {
    const text = await waitFor('the program in tmux to exit', () => {
      const t = existsSync(this.statusFile) ? readFileSync(this.statusFile, 'utf8') : '';
      return /^\d+\n$/.test(t) && t;
    }, { timeoutMs, intervalMs: 50 });
    return Number(text);
  }

  /** Types `keys` (tmux key names, e.g. `q`, `C-c`). */
  async sendKeys(...keys: string[]): Promise<void> {
    await this.tmux(['send-keys', '-t', 'test', ...keys]);
  }

  /** Appends everything the program writes to the terminal, escapes and all, to `file` (`pipe-pane`). */
  async pipeOutput(file: string): Promise<void> {
    await this.tmux(['pipe-pane', '-t', 'test', '-o', `cat >> '${file.replace(/'/g, `'\\''`)}'`]);
  }

  /** Resizes the window (and so the pane) to `columns` × `rows`. */
  async resize(columns: number, rows: number): Promise<void> {
    await this.tmux(['resize-window', '-t', 'test', '-x', String(columns), '-y', String(rows)]);
  }
}

/** Kills every tmux server the tests started: `kill-server`, then SIGKILL to its PID; removes its socket. */
export async function endTmuxServers(): Promise<void> {
  for (const { socket, pid } of servers.splice(0)) {
    await execa('tmux', ['-L', socket, 'kill-server'], { reject: false, timeout: 10_000 });
    killPid(pid);
    // tmux leaves the socket file of a killed server behind.
    rmSync(join(process.env.TMUX_TMPDIR ?? tmpdir(), `tmux-${process.getuid?.() ?? 0}`, socket), { force: true });
  }
}
