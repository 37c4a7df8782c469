/**
 * A reload of keeper.json in a running keeper (SIGHUP, `pgha keeper reload`): read the file,
 * plan what changes (`planKeeperReload`, pure) and log it. The keeper then runs with the plan's
 * configuration (`Keeper.reloadConfig`).
 */
import type { Logger } from 'pino';
import { PghaError } from '@pgha/shared/base';
import { planKeeperReload, type KeeperReloadPlan } from './config-reload.js';
import { loadKeeperConfig, type KeeperConfig } from './keeper-config.js';

/**
 * Re-reads keeper.json beside `running.pgdata` and plans the reload: the reloadable fields (the
 * role-change hook and its timeout) are applied, each change logged; a change to any other
 * field is logged and ignored until the keeper restarts. A file that cannot be read changes
 * nothing. Never throws.
 * Source: Patroni's `reload`; pg_autoctl's `reload`.
 *
 * @returns the plan to apply, or undefined when the file could not be read.
 */
export function reloadKeeperConfig(running: KeeperConfig, log: Logger): KeeperReloadPlan | undefined {
  let file: KeeperConfig;
  try {
    file = loadKeeperConfig(running.pgdata);
  } catch (err) {
    log.error(`reload: keeper.json not reloaded, the keeper goes on as it runs: ${err instanceof PghaError ? err.toUserLine() : (err as Error).message}`);
    return undefined;
  }
  const plan = planKeeperReload(running, file);
  for (const c of plan.applied) log.info({ field: c.field }, `reload: ${c.field} changed from ${c.from} to ${c.to}`);
  if (plan.needRestart.length > 0) {
    log.warn({ fields: plan.needRestart }, `reload: refused to apply ${plan.needRestart.join(', ')}: a change there needs a restart of the keeper (pgha keeper stop, then pgha keeper run); it runs with the old values until then`);
  }
  if (plan.applied.length === 0 && plan.needRestart.length === 0) log.info('reload: keeper.json unchanged');
  return plan;
}
