/**
 * Tells the node's role-change hook (`role-change-hook.ts`) when the role of the keeper's
 * reached state changes (see `fsm/node-role.ts`). It owns the role last announced; the hook
 * runner it drives serialises and runs the operator's command.
 */
import type { Logger } from 'pino';
import type { NodeState } from '@pgha/shared/base';
import { roleOfState, type NodeRole } from './fsm/node-role.js';
import type { KeeperConfig } from './keeper-config.js';
import { DEFAULT_ROLE_CHANGE_TIMEOUT_MS, RoleChangeHookRunner, type RoleChangeHookConfig } from './role-change-hook.js';

/** The hook settings of a keeper.json. */
export function hookConfigOf(config: KeeperConfig): RoleChangeHookConfig {
  return { command: config.onRoleChange, timeoutMs: config.onRoleChangeTimeoutMs ?? DEFAULT_ROLE_CHANGE_TIMEOUT_MS };
}

/** See the module comment. One per keeper. */
export class RoleAnnouncer {
  /** The node's role-change hook; undefined when this keeper runs none (`keeper create`). */
  readonly hooks: RoleChangeHookRunner | undefined;
  /** The role last handed to {@link hooks}. */
  private role: NodeRole = 'none';

  /**
   * @param config - the node (name, id, formation, group, host, port) and its hook.
   * @param enabled - false for a keeper that runs no hook (`keeper create`).
   * @param readTimeline - the node's timeline, read afresh when Postgres answers (the last one
   *   read otherwise); called only when a role is announced.
   */
  constructor(
    private readonly config: KeeperConfig,
    log: Logger,
    enabled: boolean,
    private readonly readTimeline: () => Promise<number>,
  ) {
    this.hooks = enabled ? new RoleChangeHookRunner(hookConfigOf(config), log) : undefined;
  }

  /** Applies a reloaded keeper.json's hook settings (`onRoleChange`, `onRoleChangeTimeoutMs`). */
  configure(config: KeeperConfig): void {
    this.hooks?.configure(hookConfigOf(config));
  }

  /**
   * Hands a role change to the hook runner (which returns at once). `state` is the reached
   * state that made the role.
   */
  async announce(role: NodeRole, state: NodeState): Promise<void> {
    if (!this.hooks || role === this.role) return;
    this.role = role;
    const timeline = await this.readTimeline();
    this.hooks.roleChanged(role, {
      nodeName: this.config.name,
      nodeId: this.config.nodeId,
      formation: this.config.formation,
      groupId: this.config.groupId,
      host: this.config.hostname,
      port: this.config.pgPort,
      timeline,
      state,
    });
  }

  /**
   * After a tick: the role of the reached state, once the monitor's goal confirms it (the node
   * reached its goal). A keeper that starts announces the role it finds, so a hook lost to a
   * crash runs when the keeper is back; hooks must therefore be idempotent.
   *
   * The `demoted` role waits until Postgres has stopped (`postgresStopped`), as after a
   * self-fence: a switchover's old primary reaches `draining` once it takes no more writes,
   * while its postmaster still finishes the shutdown (`stopPostgres`), and a hook may count on
   * a stopped Postgres (docs/hooks.md); a later tick announces it.
   *
   * @param current - the reached state; `goal` - the monitor's last goal (undefined before its first answer).
   * @param postgresStopped - whether the node's postmaster is gone; asked only for `demoted`
   *   (it reads `postmaster.pid` and `/proc`, and this runs after every tick).
   */
  async noteReached(current: NodeState, goal: string | undefined, postgresStopped: () => boolean): Promise<void> {
    if (goal !== current) return;
    const role = roleOfState(current);
    if (role === 'demoted' && !postgresStopped()) return;
    if (role) await this.announce(role, current);
  }

  /** Waits until no hook runs (at most its timeout and the kill grace). */
  async idle(): Promise<void> {
    await this.hooks?.idle();
  }
}
