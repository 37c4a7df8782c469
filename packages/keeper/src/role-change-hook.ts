/**
 * Role-change hooks: the operator's command (`keeper.json` `onRoleChange`), run through
 * `/bin/sh -c` when the node's role changes (see `fsm/node-role.ts`), to move a VIP or re-point
 * a pooler. A hook never blocks the keeper: {@link RoleChangeHookRunner.roleChanged} returns at
 * once, and the run is logged when it ends. Runs of one node are serialised, and the latest
 * role wins: a run still going when the next change comes is killed (as Patroni's
 * `CallbackExecutor` kills the previous callback), changes that queued meanwhile collapse into
 * the latest one, and `PGHA_OLD_ROLE` is always the role of the previous run started, so a
 * hook sees an unbroken chain of roles.
 * Source: Patroni's `on_role_change` callback; pgpool-II's `failover_command`/`if_up_cmd`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { formatDurationMs } from '@pgha/shared/base';
import type { NodeRole } from './fsm/node-role.js';

export { DEFAULT_ROLE_CHANGE_TIMEOUT_MS } from '@pgha/shared/base';
/** Between SIGTERM and SIGKILL to a hook's process group, in ms. */
export const HOOK_KILL_GRACE_MS = 1_000;
/** How much of a hook's output (stdout and stderr together) is kept for the log, in bytes. */
export const HOOK_OUTPUT_TAIL_BYTES = 2_048;

/** Environment variables of the keeper that a hook never inherits (pgha's secrets). */
const WITHHELD_ENV = ['PGHA_AUTH_TOKEN', 'PGHA_AUTH_TOKEN_FILE', 'PGPASSWORD'];

/** The hook as configured: no command means no hook. */
export interface RoleChangeHookConfig {
  command: string | undefined;
  /** Limit of one run, in ms. */
  timeoutMs: number;
}

/** What a hook is told about the node, besides the roles. */
export interface RoleChangeFacts {
  nodeName: string;
  nodeId: number;
  formation: string;
  groupId: number;
  /** Address and port clients reach this node's Postgres at (keeper.json `hostname`, `pgPort`). */
  host: string;
  port: number;
  /** The node's timeline as last read (0 before the keeper has read one). */
  timeline: number;
  /** The reached state that made the role (`wait_primary`, `demote_timeout`, …). */
  state: string;
}

/** How a run ended. */
export type HookOutcome = 'exited' | 'timed-out' | 'superseded' | 'spawn-failed';

/** One finished run. */
export interface HookRunResult {
  oldRole: NodeRole;
  newRole: NodeRole;
  outcome: HookOutcome;
  /** Exit code of `/bin/sh`; null when it was killed by a signal or never started. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** PID of `/bin/sh`, leader of the run's process group. */
  pid: number | undefined;
  durationMs: number;
  /** The last {@link HOOK_OUTPUT_TAIL_BYTES} of its output. */
  outputTail: string;
}

/**
 * The variables a hook runs with: `PGHA_NODE_NAME`, `PGHA_NODE_ID`, `PGHA_FORMATION`,
 * `PGHA_GROUP_ID`, `PGHA_OLD_ROLE`, `PGHA_NEW_ROLE`, `PGHA_STATE`, `PGHA_TIMELINE`,
 * `PGHA_HOST`, `PGHA_PORT`, on top of the keeper's environment without pgha's secrets.
 */
export function hookEnvironment(oldRole: NodeRole, newRole: NodeRole, facts: RoleChangeFacts, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const key of WITHHELD_ENV) delete env[key];
  return {
    ...env,
    PGHA_NODE_NAME: facts.nodeName,
    PGHA_NODE_ID: String(facts.nodeId),
    PGHA_FORMATION: facts.formation,
    PGHA_GROUP_ID: String(facts.groupId),
    PGHA_OLD_ROLE: oldRole,
    PGHA_NEW_ROLE: newRole,
    PGHA_STATE: facts.state,
    PGHA_TIMELINE: String(facts.timeline),
    PGHA_HOST: facts.host,
    PGHA_PORT: String(facts.port),
  };
}

/** Keeps the last `limit` bytes written to it. */
class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.chunks.length > 1 && this.size - this.chunks[0]!.length >= this.limit) this.size -= this.chunks.shift()!.length;
  }
  toString(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8').trimEnd();
  }
}

/** Sends `signal` to the process group led by `pid`; false when the group is gone. */
function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

interface Change {
  role: NodeRole;
  facts: RoleChangeFacts;
}

interface Run {
  /** Kills the run (SIGTERM to its group, SIGKILL after the grace) and records why. */
  kill(outcome: 'timed-out' | 'superseded'): void;
  readonly done: Promise<HookRunResult>;
}

/** Options of {@link RoleChangeHookRunner}. */
export interface RoleChangeHookRunnerOptions {
  /** Between SIGTERM and SIGKILL, in ms (default {@link HOOK_KILL_GRACE_MS}). */
  killGraceMs?: number;
  /** Called with every finished run (tests, metrics). */
  onResult?: (result: HookRunResult) => void;
}

/**
 * Runs one node's role-change hook, one run at a time.
 *
 * ### Examples
 * ```ts
 * const hooks = new RoleChangeHookRunner({ command: '/usr/local/bin/vip.sh', timeoutMs: 10_000 }, log);
 * hooks.roleChanged('primary', facts); // returns at once; the run is logged when it ends
 * await hooks.idle();
 * ```
 */
export class RoleChangeHookRunner {
  private config: RoleChangeHookConfig;
  private readonly killGraceMs: number;
  private readonly onResult: ((result: HookRunResult) => void) | undefined;
  private announced: NodeRole = 'none';
  /** Role of the last run that exited 0 (a change back to it after a killed run runs again). */
  private lastSucceeded: NodeRole | undefined;
  private pending: Change | undefined;
  private current: Run | undefined;
  private pumping: Promise<void> | undefined;

  constructor(config: RoleChangeHookConfig, private readonly log: Logger, options: RoleChangeHookRunnerOptions = {}) {
    this.config = { ...config };
    this.killGraceMs = options.killGraceMs ?? HOOK_KILL_GRACE_MS;
    this.onResult = options.onResult;
  }

  /** The hook's command and timeout now; a new command applies from the next run on. */
  get configuration(): RoleChangeHookConfig {
    return { ...this.config };
  }

  /** Replaces the command and timeout (a reload of keeper.json); a run under way goes on as it started. */
  configure(config: RoleChangeHookConfig): void {
    this.config = { ...config };
  }

  /** The role of the last run started (or announced without a command); `none` at first. */
  get announcedRole(): NodeRole {
    return this.announced;
  }

  /**
   * The node's role is now `role`: kills a run still going (its role is stale) and runs the
   * hook for `role` once nothing runs. Changes that arrive meanwhile replace this one. Returns
   * at once and never throws; without a command it only records the role.
   */
  roleChanged(role: NodeRole, facts: RoleChangeFacts): void {
    this.pending = { role, facts };
    this.current?.kill('superseded');
    this.pumping ??= this.pump().finally(() => {
      this.pumping = undefined;
    });
  }

  /** Resolves once no run is going and none is pending (each run lasts at most its timeout plus the kill grace). */
  async idle(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  private async pump(): Promise<void> {
    // Yield first, so that changes made in the same tick collapse into the latest.
    await Promise.resolve();
    while (this.pending) {
      const change = this.pending;
      this.pending = undefined;
      const oldRole = this.announced;
      const command = this.config.command;
      if (!command || (change.role === oldRole && this.lastSucceeded === oldRole)) {
        this.announced = change.role;
        continue;
      }
      this.announced = change.role;
      this.lastSucceeded = undefined;
      try {
        const run = this.start(command, this.config.timeoutMs, oldRole, change);
        this.current = run;
        const result = await run.done;
        if (result.outcome === 'exited' && result.exitCode === 0) this.lastSucceeded = change.role;
        this.report(result, change, this.config.timeoutMs);
      } catch (err) {
        this.log.error(`role-change hook ${oldRole} → ${change.role}: ${(err as Error).message}`);
      } finally {
        this.current = undefined;
      }
    }
  }

  private start(command: string, timeoutMs: number, oldRole: NodeRole, change: Change): Run {
    const startedAtMs = Date.now();
    const tail = new OutputTail(HOOK_OUTPUT_TAIL_BYTES);
    let killedFor: 'timed-out' | 'superseded' | undefined;
    let child: ChildProcess;
    let graceTimer: NodeJS.Timeout | undefined;
    this.log.info({ oldRole, newRole: change.role, state: change.facts.state, timeoutMs }, `running role-change hook ${oldRole} → ${change.role} (state ${change.facts.state})`);
    const done = new Promise<HookRunResult>((resolve) => {
      const finish = (outcome: HookOutcome, exitCode: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void => {
        clearTimeout(timer);
        clearTimeout(graceTimer);
        if (spawnError) tail.push(Buffer.from(spawnError.message));
        resolve({ oldRole, newRole: change.role, outcome, exitCode, signal, pid: child.pid, durationMs: Date.now() - startedAtMs, outputTail: tail.toString() });
      };
      let settled = false;
      const once = (f: () => void): void => {
        if (settled) return;
        settled = true;
        f();
      };
      // detached: the shell leads a process group of its own, so a kill reaches what it started.
      child = spawn('/bin/sh', ['-c', command], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], cwd: '/', env: hookEnvironment(oldRole, change.role, change.facts) });
      child.stdout?.on('data', (c: Buffer) => tail.push(c));
      child.stderr?.on('data', (c: Buffer) => tail.push(c));
      child.on('error', (err) => once(() => finish('spawn-failed', null, null, err)));
      // 'close': the shell has exited and nothing it started still holds its output.
      child.on('close', (code, signal) => once(() => finish(killedFor ?? 'exited', code, signal)));
    });
    const kill = (outcome: 'timed-out' | 'superseded'): void => {
      if (killedFor || child.pid === undefined) return;
      killedFor = outcome;
      const pid = child.pid;
      signalGroup(pid, 'SIGTERM');
      graceTimer = setTimeout(() => {
        signalGroup(pid, 'SIGKILL');
        // Whatever escaped the group but holds the pipes must not hold the runner.
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, this.killGraceMs);
    };
    const timer = setTimeout(() => kill('timed-out'), timeoutMs);
    return { kill, done };
  }

  /** Logs a finished run once: info on exit 0, warn on another exit or when superseded, error on a timeout or a failed start. */
  private report(result: HookRunResult, change: Change, timeoutMs: number): void {
    this.onResult?.(result);
    const what = `role-change hook ${result.oldRole} → ${result.newRole}`;
    const fields = { oldRole: result.oldRole, newRole: result.newRole, state: change.facts.state, hookPid: result.pid, exitCode: result.exitCode, signal: result.signal, durationMs: result.durationMs, outputTail: result.outputTail };
    switch (result.outcome) {
      case 'exited':
        if (result.exitCode === 0) this.log.info(fields, `${what} exited 0 after ${formatDurationMs(result.durationMs)}`);
        else this.log.warn(fields, `${what} failed: exit code ${result.exitCode ?? `signal ${result.signal}`} after ${formatDurationMs(result.durationMs)}`);
        return;
      case 'timed-out':
        this.log.error(fields, `${what} timed out after ${formatDurationMs(timeoutMs)} (onRoleChangeTimeoutMs): its process group was killed`);
        return;
      case 'superseded':
        this.log.warn(fields, `${what} killed after ${formatDurationMs(result.durationMs)}: the role changed again before it finished`);
        return;
      case 'spawn-failed':
        this.log.error(fields, `${what} could not start: ${result.outputTail}`);
    }
  }
}
