/**
 * What a reload of `keeper.json` (SIGHUP, `pgha keeper reload`) may change in a running keeper:
 * the role-change hook and its timeout, the monitors it talks to with their CA (moving a
 * formation to other monitors without restarting its keepers, and so its Postgres nodes), and
 * the node token (`pgha keeper rotate-token`). Every other field but the one the keeper records itself
 * ({@link KEEPER_RECORDED_FIELDS}) needs a restart of the keeper
 * (`pgha keeper stop`, then `keeper run`), and a reload that changes one keeps the running value
 * and says so. Pure. Source: Patroni's `reload` (SIGHUP re-reads the config; some parameters
 * need a restart) and pg_autoctl's `reload`.
 */
import type { KeeperConfig } from './keeper-config.js';

/** The fields of keeper.json a reload applies. */
export const RELOADABLE_KEEPER_FIELDS = ['onRoleChange', 'onRoleChangeTimeoutMs', 'monitorUrl', 'monitorUrls', 'monitorCaCertificate', 'nodeToken'] as const;

/**
 * The fields of keeper.json the keeper writes itself while it runs (the data directory's
 * database system identifier): a reload neither applies them nor asks for a restart over them.
 */
export const KEEPER_RECORDED_FIELDS = ['systemIdentifier'] as const;

/** Fields whose values a log line never shows (secrets). */
const SECRET_FIELDS: ReadonlySet<string> = new Set(['replicationPassword', 'monitorProbePassword', 'nodeToken', 'monitorCaCertificate']);

/** A reloadable field that changed. */
export interface ReloadedField {
  field: (typeof RELOADABLE_KEEPER_FIELDS)[number];
  /** The old and new values as shown in the log (`(none)` for an absent one). */
  from: string;
  to: string;
}

/** What a reload does. */
export interface KeeperReloadPlan {
  /** The configuration to run with: the running one with the reloadable fields of the file. */
  next: KeeperConfig;
  applied: ReloadedField[];
  /** Names of the fields that changed in the file but need a restart; kept as they run. */
  needRestart: string[];
}

const shown = (field: string, value: unknown): string => (value === undefined ? '(none)' : SECRET_FIELDS.has(field) ? '[redacted]' : typeof value === 'string' ? value : JSON.stringify(value));

/**
 * Compares the running configuration with the file's.
 *
 * ### Examples
 * ```ts
 * planKeeperReload(running, { ...running, onRoleChange: '/bin/true', pgPort: 6000 })
 * // { next: { ...running, onRoleChange: '/bin/true' }, applied: [{ field: 'onRoleChange', from: '(none)', to: '/bin/true' }], needRestart: ['pgPort'] }
 * ```
 */
export function planKeeperReload(running: KeeperConfig, file: KeeperConfig): KeeperReloadPlan {
  const next: KeeperConfig = { ...running };
  const applied: ReloadedField[] = [];
  for (const field of RELOADABLE_KEEPER_FIELDS) {
    if (JSON.stringify(running[field]) === JSON.stringify(file[field])) continue;
    applied.push({ field, from: shown(field, running[field]), to: shown(field, file[field]) });
    if (file[field] === undefined) delete next[field];
    else (next as Record<string, unknown>)[field] = file[field];
  }
  const noRestart: ReadonlySet<string> = new Set([...RELOADABLE_KEEPER_FIELDS, ...KEEPER_RECORDED_FIELDS]);
  const keys = new Set([...Object.keys(running), ...Object.keys(file)]);
  const needRestart = [...keys].filter((k) => !noRestart.has(k) && JSON.stringify((running as Record<string, unknown>)[k]) !== JSON.stringify((file as Record<string, unknown>)[k])).sort();
  return { next, applied, needRestart };
}
