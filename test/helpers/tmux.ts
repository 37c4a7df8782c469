/**
 * A detached tmux session on a private server (`tmux -L <socket>`, its own config), for tests
 * that drive a terminal program: type keys, read the screen, resize it. {@link endTmuxServers}
 * (called by the tests' `afterAll`) kills every server by `kill-server` and then by PID, so
 * none outlives a failed test.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { killPid, makeTestDir } from './processes.js';

const servers: { socket: string; pid: number | undefined }[] = [];

/** One tmux session with one pane running one command. */
export class TmuxSession {
  private constructor(readonly socket: string, private readonly config: string) {}

  /**
   * Starts `command` (argv, run with `exec`: the pane's PID is the program's) in a detached
   * session of `columns` × `rows` cells, with `env` added to its environment. The pane stays
   * after the program exits (`remain-on-exit`), so its exit status can be read; there is no
   * status line, so the pane is the whole window.
   */
  static async start(command: readonly string[], options: { columns: number; rows: number; env: Record<string, string> }): Promise<TmuxSession> {
    const socket = `pgha-test-${process.pid}-${servers.length}`;
    const config = join(makeTestDir(), 'tmux.conf');
    writeFileSync(config, 'set -g remain-on-exit on\nset -g status off\nset -g default-terminal "tmux-256color"\nset -g history-limit 0\n');
    const session = new TmuxSession(socket, config);
    const entry = { socket, pid: undefined as number | undefined };
    servers.push(entry);
    const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
    const envArgs = Object.entries(options.env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    await session.tmux(['new-session', '-d', '-s', 'test', '-x', String(options.columns), '-y', String(options.rows), ...envArgs, `exec ${command.map(quote).join(' ')}`]);
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

/** Kills every tmux server the tests started: `kill-server`, then SIGKILL to its PID. */
export async function endTmuxServers(): Promise<void> {
  for (const { socket, pid } of servers.splice(0)) {
    await execa('tmux', ['-L', socket, 'kill-server'], { reject: false, timeout: 10_000 });
    killPid(pid);
  }
}
