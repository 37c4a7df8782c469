/**
 * The rules of the names and values an operator types: formation names, Postgres parameter
 * names and values. Plain patterns and checks, without zod, so that the CLI can check an
 * argument while it parses the command line without loading zod (issue 17 §4: zod is about
 * 20 ms of a command's start); the protocol's zod schemas (`FormationName`,
 * `PostgresParameterName`, `PostgresParameterValue`) are built from the same rules and messages.
 */

/** A formation name: what pg_auto_failover accepts, a short identifier. */
export const FORMATION_NAME_PATTERN = /^[a-z_][a-z0-9_-]{0,62}$/;
/** What {@link FORMATION_NAME_PATTERN} asks, as the end of an error message. */
export const FORMATION_NAME_RULE = 'must be 1-63 characters: lower-case letters, digits, _ or -, not starting with a digit';

/** A Postgres parameter name: letters, digits, `_`, and one `.` for an extension's (`pg_stat_statements.max`). */
export const POSTGRES_PARAMETER_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;
/** What {@link POSTGRES_PARAMETER_NAME_PATTERN} asks, as the end of an error message. */
export const POSTGRES_PARAMETER_NAME_RULE = "must be a Postgres parameter name (letters, digits, _, and one . for an extension's), e.g. work_mem";
/** Longest Postgres parameter name, in characters: Postgres's `NAMEDATALEN - 1`. */
export const POSTGRES_PARAMETER_NAME_MAX_LENGTH = 63;
/** Longest Postgres parameter value pgha writes, in characters. */
export const POSTGRES_PARAMETER_VALUE_MAX_LENGTH = 1024;
/** A value on one line, as it is written in a configuration file: no line break, no NUL. */
export const POSTGRES_PARAMETER_VALUE_ONE_LINE = /^[^\r\n\0]*$/;
/** What {@link POSTGRES_PARAMETER_VALUE_ONE_LINE} asks, as the end of an error message. */
export const POSTGRES_PARAMETER_VALUE_RULE = 'must be on one line (no line break, no NUL)';

/** `must be at most N characters`, the message of a length rule. */
export function maxLengthRule(max: number): string {
  return `must be at most ${max} characters`;
}

/**
 * What is wrong with a formation name, as the end of a sentence; undefined when it is valid.
 *
 * ### Examples
 * ```ts
 * formationNameProblem('default') // undefined
 * formationNameProblem('Bad!')    // 'must be 1-63 characters: lower-case letters, …'
 * ```
 */
export function formationNameProblem(name: string): string | undefined {
  return FORMATION_NAME_PATTERN.test(name) ? undefined : FORMATION_NAME_RULE;
}

/**
 * What is wrong with a Postgres parameter name (the first rule it breaks, in the order the zod
 * schema checks them); undefined when it is valid.
 *
 * ### Examples
 * ```ts
 * postgresParameterNameProblem('work_mem')  // undefined
 * postgresParameterNameProblem('work-mem')  // "must be a Postgres parameter name (…), e.g. work_mem"
 * ```
 */
export function postgresParameterNameProblem(name: string): string | undefined {
  if (!POSTGRES_PARAMETER_NAME_PATTERN.test(name)) return POSTGRES_PARAMETER_NAME_RULE;
  if (name.length > POSTGRES_PARAMETER_NAME_MAX_LENGTH) return maxLengthRule(POSTGRES_PARAMETER_NAME_MAX_LENGTH);
  return undefined;
}

/**
 * What is wrong with a Postgres parameter value (the first rule it breaks, in the order the zod
 * schema checks them); undefined when it is valid.
 *
 * ### Examples
 * ```ts
 * postgresParameterValueProblem('8MB')    // undefined
 * postgresParameterValueProblem('a\nb')   // 'must be on one line (no line break, no NUL)'
 * ```
 */
export function postgresParameterValueProblem(value: string): string | undefined {
  if (value.length > POSTGRES_PARAMETER_VALUE_MAX_LENGTH) return maxLengthRule(POSTGRES_PARAMETER_VALUE_MAX_LENGTH);
  if (!POSTGRES_PARAMETER_VALUE_ONE_LINE.test(value)) return POSTGRES_PARAMETER_VALUE_RULE;
  return undefined;
}
