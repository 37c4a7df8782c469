/**
 * Postgres parameters of a formation (`pgha set postgresql NAME VALUE`): the names pgha owns,
 * the check of a value against Postgres's own catalogue (`pg_settings` of the primary), and the
 * order in which the parameters that must not be lower on a standby reach the nodes. Pure.
 *
 * Source: Patroni's `postgresql.parameters` in its DCS config (`patronictl edit-config`) and
 * its `pending_restart`; CloudNativePG's `.spec.postgresql.parameters` and its list of fixed
 * parameters; Postgres's own parsing of values (`parse_int`, `parse_real`,
 * `convert_to_base_unit` in `src/backend/utils/misc/guc.c`).
 */
import { z } from 'zod';
import {
  POSTGRES_PARAMETER_NAME_MAX_LENGTH,
  POSTGRES_PARAMETER_NAME_PATTERN,
  POSTGRES_PARAMETER_NAME_RULE,
  POSTGRES_PARAMETER_VALUE_MAX_LENGTH,
  POSTGRES_PARAMETER_VALUE_ONE_LINE,
  POSTGRES_PARAMETER_VALUE_RULE,
  maxLengthRule,
} from './names.js';

/** One parameter and its value, as Postgres reads it from a configuration file. */
export interface PostgresParameter {
  /** Lower case (Postgres's parameter names are case-insensitive). */
  name: string;
  /** As the operator gave it (`8MB`, `on`, `'$user', public`), without the file's quotes. */
  value: string;
}

/**
 * A parameter name as {@link PostgresParameterName} checks it, not lower-cased: the lists'
 * entries ({@link parameterEntry}), whose names {@link lowerCaseUniqueNames} lower-cases in one
 * step for the whole list.
 *
 * Why: zod 3 runs a `.transform` or a `.refine` in 3–5 µs and a string check in about 0.3 µs
 * (measured on this project's machine). A keeper's report lists the parameters its Postgres runs
 * with every 500 ms: with a transform per name and a refinement per value, parsing a report of
 * eleven parameters took 91 µs and 52 KB of garbage, 11 µs and 7 KB without them (issue 17,
 * the monitor's idle cost; issue 15, its reports a second).
 */
const PostgresParameterNameText = z
  .string()
  .regex(POSTGRES_PARAMETER_NAME_PATTERN, POSTGRES_PARAMETER_NAME_RULE)
  .max(POSTGRES_PARAMETER_NAME_MAX_LENGTH, maxLengthRule(POSTGRES_PARAMETER_NAME_MAX_LENGTH));

/**
 * A parameter name: letters, digits, `_`, and `.` for an extension's (`pg_stat_statements.max`),
 * at most 63 characters (Postgres's `NAMEDATALEN - 1`). Lower-cased.
 */
export const PostgresParameterName = PostgresParameterNameText.transform((s) => s.toLowerCase());

/**
 * A value as text: at most 1024 characters, no line break and no NUL (it is written on one
 * line of a configuration file, quoted). String checks only (see {@link PostgresParameterNameText}).
 */
export const PostgresParameterValue = z
  .string()
  .max(POSTGRES_PARAMETER_VALUE_MAX_LENGTH, maxLengthRule(POSTGRES_PARAMETER_VALUE_MAX_LENGTH))
  .regex(POSTGRES_PARAMETER_VALUE_ONE_LINE, POSTGRES_PARAMETER_VALUE_RULE);

/**
 * One entry of a list of parameters, `{ name, value }` with `value` as `value` checks it; its
 * name is checked but not yet lower-cased (the list's {@link lowerCaseUniqueNames} does it).
 */
export function parameterEntry<V extends z.ZodTypeAny>(value: V) {
  return z.object({ name: PostgresParameterNameText, value }).strict();
}

/**
 * A list's entries with their names lower-cased, as {@link PostgresParameterName} gives a name;
 * an issue `names a parameter twice` (at the list) when two entries have the same name once
 * lower-cased. For a list's `.transform`: one for the whole list instead of one per name.
 */
export function lowerCaseUniqueNames<T extends { name: string }>(list: T[], ctx: z.RefinementCtx): T[] {
  const lowered = list.map((p) => ({ ...p, name: p.name.toLowerCase() }));
  if (new Set(lowered.map((p) => p.name)).size !== lowered.length) ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'names a parameter twice' });
  return lowered;
}

/** A list of parameters, by name (each once, lower-cased). */
export const PostgresParameterList = z.array(parameterEntry(PostgresParameterValue)).max(500).transform(lowerCaseUniqueNames);

/**
 * The parameters pgha sets itself (in `pgha.conf`, or for its own files), each with why: an
 * operator's value would break replication, failover, self-fencing, the monitor's probes or TLS.
 * Refused by `pgha set postgresql`. Every `ssl*` parameter is pgha's too ({@link ownedParameterReason}).
 * Source: what `renderPghaConf` (`@pgha/postgres`) writes; CloudNativePG's fixed parameters.
 */
export const PGHA_OWNED_PARAMETERS: Readonly<Record<string, string>> = Object.freeze({
  listen_addresses: 'pgha listens where the node registered (pgha keeper create --hostname)',
  port: 'the node registered its port with the monitor (pgha keeper create --pg-port)',
  unix_socket_directories: "the keeper reaches Postgres through the socket in the node's own directory",
  password_encryption: "pgha's roles authenticate with scram-sha-256",
  wal_log_hints: 'pg_rewind, which rejoins an old primary, needs it on',
  hot_standby: 'standbys must answer reads and the monitor probes them',
  wal_receiver_status_interval: 'standbys report their position every second for synchronous replication and lag',
  wal_receiver_timeout: 'it is one of the witnesses of a failed primary (docs/timeouts.md)',
  wal_sender_timeout: 'it bounds how long a primary waits for a silent standby (docs/timeouts.md)',
  wal_retrieve_retry_interval: 'standbys retry their upstream at the pace failover timing assumes',
  synchronous_commit: 'no acknowledged write is lost only while commits wait for the synchronous standbys',
  synchronous_standby_names: 'the monitor computes it (pgha set formation number-sync-standbys, pgha set node replication-quorum)',
  recovery_target_timeline: 'standbys follow the latest timeline after a failover',
  primary_conninfo: 'the keeper points each standby to its upstream',
  primary_slot_name: 'the keeper gives each standby its replication slot',
  data_directory: 'the keeper runs Postgres on the data directory it was created with',
  config_file: 'pgha includes its files from postgresql.conf',
  hba_file: 'the keeper writes pg_hba.conf for the formation',
  ident_file: 'the keeper writes pg_hba.conf for the formation',
  external_pid_file: 'the keeper tracks the postmaster by its own pid file',
});

/**
 * Why pgha owns parameter `name` (it refuses to set it), or undefined when it does not.
 *
 * ### Examples
 * ```ts
 * ownedParameterReason('port') // 'the node registered its port with the monitor (…)'
 * ownedParameterReason('ssl_ciphers') // "pgha configures TLS (…)"
 * ownedParameterReason('work_mem') // undefined
 * ```
 */
export function ownedParameterReason(name: string): string | undefined {
  if (name === 'ssl' || name.startsWith('ssl_')) return "pgha configures TLS (the node's certificate, key and CA; docs/security.md)";
  return PGHA_OWNED_PARAMETERS[name];
}

/**
 * Parameters a hot standby must run with a value at least its primary's (Postgres refuses to
 * start, or pauses replay, otherwise): raised on the standbys first, lowered on the primary
 * first ({@link orderedValue}). Source: PostgreSQL docs, "Hot Standby", Administrator's Overview.
 */
export const HOT_STANDBY_PARAMETERS: readonly string[] = Object.freeze([
  'max_connections',
  'max_prepared_transactions',
  'max_locks_per_transaction',
  'max_wal_senders',
  'max_worker_processes',
]);

/**
 * One row of Postgres's `pg_settings`, what checking a value needs (`select name, vartype,
 * unit, min_val, max_val, enumvals, context from pg_settings`).
 */
export interface ParameterDefinition {
  name: string;
  vartype: 'bool' | 'integer' | 'real' | 'string' | 'enum';
  /** The base unit of its numbers (`kB`, `8kB`, `ms`, `s`, `min`, `B`, `MB`, `16MB`); null: none. */
  unit: string | null;
  minVal: string | null;
  maxVal: string | null;
  enumvals: string[] | null;
  /** `internal` (fixed), `postmaster` (needs a restart), `sighup`, `superuser-backend`, `backend`, `superuser`, `user`. */
  context: string;
}

/** Bytes per memory unit Postgres takes (case-sensitive, as Postgres). */
const MEMORY_UNITS: Readonly<Record<string, number>> = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };
/** Microseconds per time unit Postgres takes. */
const TIME_UNITS: Readonly<Record<string, number>> = { us: 1, ms: 1000, s: 1_000_000, min: 60_000_000, h: 3_600_000_000, d: 86_400_000_000 };

/** The size of a base unit (`8kB` → 8192 bytes, `s` → 1e6 µs) and its kind; undefined for none or one unknown. */
function baseUnit(unit: string | null): { kind: 'memory' | 'time'; size: number } | undefined {
  if (!unit) return undefined;
  const m = /^(\d*)(.+)$/.exec(unit)!;
  const factor = m[1] ? Number(m[1]) : 1;
  if (MEMORY_UNITS[m[2]!] !== undefined) return { kind: 'memory', size: factor * MEMORY_UNITS[m[2]!]! };
  if (TIME_UNITS[m[2]!] !== undefined) return { kind: 'time', size: factor * TIME_UNITS[m[2]!]! };
  return undefined;
}

/**
 * A number with an optional unit in the parameter's base unit, or why it is not one.
 * Postgres accepts a fraction with a unit and rounds (`parse_int`, since Postgres 12).
 */
function parseNumber(def: ParameterDefinition, text: string): number | string {
  const m = /^\s*([+-]?(?:0x[0-9a-f]+|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?))\s*([A-Za-z]*)\s*$/i.exec(text);
  const base = baseUnit(def.unit);
  const units = base ? Object.keys(base.kind === 'memory' ? MEMORY_UNITS : TIME_UNITS).join(', ') : '';
  if (!m) return `"${text}" is not a ${def.vartype === 'integer' ? 'whole number' : 'number'}${base ? ` with an optional unit (${units})` : ''}`;
  let value = m[1]!.toLowerCase().startsWith('0x') || m[1]!.toLowerCase().startsWith('-0x') || m[1]!.toLowerCase().startsWith('+0x') ? parseInt(m[1]!, 16) : Number(m[1]);
  const unit = m[2]!;
  if (unit) {
    if (!base) return `"${text}" has a unit, but ${def.name} takes a plain number`;
    const table = base.kind === 'memory' ? MEMORY_UNITS : TIME_UNITS;
    const size = table[unit];
    if (size === undefined) return `"${unit}" is not a unit of ${def.name}: valid units are ${units}`;
    value = (value * size) / base.size;
  } else if (def.vartype === 'integer' && !Number.isInteger(value)) {
    return `"${text}" is not a whole number`;
  }
  return def.vartype === 'integer' ? Math.round(value) : value;
}

/**
 * Why `value` is not a valid value of the parameter `def` describes, one sentence with the
 * accepted values or range; undefined when Postgres would take it. Checks the type, the unit
 * and the range as Postgres's `parse_int`/`parse_real` would, in the parameter's base unit.
 *
 * ### Examples
 * ```ts
 * valueProblem(workMem, '8MB') // undefined
 * valueProblem(workMem, '8XB') // '"XB" is not a unit of work_mem: valid units are B, kB, MB, GB, TB'
 * valueProblem(workMem, '1kB') // '1kB is below the minimum of work_mem, 64kB'
 * ```
 */
export function valueProblem(def: ParameterDefinition, value: string): string | undefined {
  switch (def.vartype) {
    case 'bool': {
      const v = value.trim().toLowerCase();
      const ok = ['on', 'off', 'true', 'false', 'yes', 'no', '1', '0'].includes(v) || (v.length > 0 && ['true', 'false', 'yes', 'no'].some((w) => w.startsWith(v)));
      return ok ? undefined : `"${value}" is not a boolean: use on or off`;
    }
    case 'enum': {
      const options = def.enumvals ?? [];
      return options.some((o) => o.toLowerCase() === value.trim().toLowerCase()) ? undefined : `"${value}" is not a value of ${def.name}: use one of ${options.join(', ')}`;
    }
    case 'string':
      return undefined;
    case 'integer':
    case 'real': {
      const n = parseNumber(def, value);
      if (typeof n === 'string') return n;
      const min = def.minVal === null ? undefined : Number(def.minVal);
      const max = def.maxVal === null ? undefined : Number(def.maxVal);
      const shown = (x: number): string => `${x}${def.unit ? ` (in ${def.unit})` : ''}`;
      if (min !== undefined && n < min) return `${value} is below the minimum of ${def.name}, ${shown(min)}`;
      if (max !== undefined && n > max) return `${value} is above the maximum of ${def.name}, ${shown(max)}`;
      return undefined;
    }
  }
}

/**
 * Why `pgha set postgresql name value` is refused, one sentence with the reason; undefined when
 * the value may be stored. A name pgha owns, an unknown one (not in `catalogue`; a name with a
 * `.` is an extension's and is taken as it is, as Postgres does), one fixed at build or initdb
 * (`internal`), or a value the parameter does not take ({@link valueProblem}).
 *
 * @param catalogue - `pg_settings` of the primary, by name.
 */
export function parameterProblem(catalogue: ReadonlyMap<string, ParameterDefinition>, name: string, value: string): string | undefined {
  const owned = ownedParameterReason(name);
  if (owned) return `${name} is set by pgha: ${owned}`;
  const def = catalogue.get(name);
  if (!def) return name.includes('.') ? undefined : `${name} is not a Postgres parameter (not in pg_settings of the primary)`;
  if (def.context === 'internal') return `${name} cannot be changed: it is fixed when Postgres is built or the cluster is initialised`;
  if (name === 'wal_level' && value.trim().toLowerCase() === 'minimal') return 'wal_level minimal leaves nothing for standbys to replay: use replica or logical';
  return valueProblem(def, value);
}

/**
 * The parameters of a node: the formation's, with the node's own values over them, by name.
 *
 * ### Examples
 * ```ts
 * mergeParameters([{ name: 'work_mem', value: '8MB' }], [{ name: 'work_mem', value: '16MB' }]) // [{ name: 'work_mem', value: '16MB' }]
 * ```
 */
export function mergeParameters(formation: readonly PostgresParameter[], node: readonly PostgresParameter[]): PostgresParameter[] {
  const merged = new Map(formation.map((p) => [p.name, p.value]));
  for (const p of node) merged.set(p.name, p.value);
  return [...merged].map(([name, value]) => ({ name, value })).sort((a, b) => a.name.localeCompare(b.name));
}

/** What one node runs with, for {@link orderedValue}: its role and the value Postgres runs with now (`current_setting`). */
export interface RunningValue {
  primary: boolean;
  /** Null: not reported (an older keeper, or Postgres down). */
  value: string | null;
}

/**
 * The value of a {@link HOT_STANDBY_PARAMETERS} parameter to write for one node, given the
 * value wanted and what every node of the group runs with: a standby never gets less than its
 * primary runs with (so a lowering reaches the standbys once the primary runs with it), and a
 * primary never more than every standby runs with (so a raise reaches the primary once every
 * standby runs with it, after their restarts). The value wanted otherwise. Safety invariant:
 * after any sequence of restarts, no standby runs with less than its primary.
 *
 * @param wanted - the value the formation (or the node's own) asks for, a whole number as text.
 * @param self - this node.
 * @param others - the other nodes of its group.
 * @returns the value to write, as text.
 *
 * ### Examples
 * ```ts
 * orderedValue('200', { primary: true, value: '100' }, [{ primary: false, value: '100' }]) // '100' (raise on the standby first)
 * orderedValue('200', { primary: false, value: '100' }, [{ primary: true, value: '100' }]) // '200'
 * orderedValue('50', { primary: false, value: '100' }, [{ primary: true, value: '100' }]) // '100' (lower on the primary first)
 * ```
 */
export function orderedValue(wanted: string, self: RunningValue, others: readonly RunningValue[]): string {
  const want = Number(wanted);
  if (!Number.isFinite(want)) return wanted;
  const numbers = (nodes: readonly RunningValue[]): number[] => nodes.map((n) => Number(n.value)).filter((v, i) => nodes[i]!.value !== null && Number.isFinite(v));
  if (self.primary) {
    const standbys = numbers(others.filter((n) => !n.primary));
    const floor = standbys.length > 0 ? Math.min(...standbys) : Infinity;
    return want > floor ? String(floor) : wanted;
  }
  const primaries = numbers(others.filter((n) => n.primary));
  const ceiling = primaries.length > 0 ? Math.max(...primaries) : -Infinity;
  return want < ceiling ? String(ceiling) : wanted;
}
