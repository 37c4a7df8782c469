/**
 * The role a node plays for its clients, derived from the state its keeper has reached: what a
 * role-change hook is told (`PGHA_OLD_ROLE`, `PGHA_NEW_ROLE`). Pure. Source: Patroni's roles of
 * `on_role_change` (`primary`/`master`, `replica`, `demoted`); pg_auto_failover has no hooks.
 */
import type { NodeState } from '@pgha/shared/base';

/** The roles a hook is told about. `none`: the keeper has announced no role yet (it just started). */
export const NODE_ROLES = ['none', 'primary', 'replica', 'demoted', 'maintenance', 'stopped'] as const;

/** One of {@link NODE_ROLES}. */
export type NodeRole = (typeof NODE_ROLES)[number];

/**
 * The role of each reached state; `undefined` keeps the role the node had before:
 * - `primary`: Postgres takes writes and the monitor has confirmed this node as the primary
 *   (`single`, `wait_primary`, `primary`, `join_primary`, `apply_settings`).
 * - `replica`: Postgres runs as a hot standby (`catchingup`, `secondary`, `prepare_promotion`,
 *   `report_lsn`, `fast_forward`, `join_secondary`, `wait_maintenance`).
 * - `demoted`: the old primary, Postgres stopped (`draining`, `demote_timeout` — the self-fence —,
 *   `demoted`, `prepare_maintenance`).
 * - `maintenance`: the keeper leaves Postgres to the operator (`maintenance`).
 * - `stopped`: the node left the formation (`dropped`), or its keeper stopped it (see the keeper).
 * - keep the previous role: `init`, `wait_standby` (not set up yet) and `stop_replication`
 *   (promotion under way: the node becomes `primary` when it reaches `wait_primary`, once the
 *   monitor knows the old primary is fenced, so a VIP never moves to a node the monitor may
 *   still call off).
 */
const ROLE_OF_STATE: Record<NodeState, Exclude<NodeRole, 'none'> | undefined> = {
  init: undefined,
  wait_standby: undefined,
  stop_replication: undefined,
  single: 'primary',
  wait_primary: 'primary',
  primary: 'primary',
  join_primary: 'primary',
  apply_settings: 'primary',
  catchingup: 'replica',
  secondary: 'replica',
  prepare_promotion: 'replica',
  report_lsn: 'replica',
  fast_forward: 'replica',
  join_secondary: 'replica',
  wait_maintenance: 'replica',
  draining: 'demoted',
  demote_timeout: 'demoted',
  demoted: 'demoted',
  prepare_maintenance: 'demoted',
  maintenance: 'maintenance',
  dropped: 'stopped',
};

/**
 * The role of a node that has reached `state`, or undefined when the state keeps the previous role.
 *
 * ### Examples
 * ```ts
 * roleOfState('wait_primary') // 'primary'
 * roleOfState('demote_timeout') // 'demoted'
 * roleOfState('stop_replication') // undefined
 * ```
 */
export function roleOfState(state: NodeState): Exclude<NodeRole, 'none'> | undefined {
  return ROLE_OF_STATE[state];
}
