/**
 * The error catalog. Every error pgha shows a user carries one of these codes; `docs/errors.md`
 * lists them all, and a test fails when the two drift apart.
 */
export const ERROR_CODES = {
  PGHA_ERR_VALIDATION: 'A request or argument has the wrong shape or value.',
  PGHA_ERR_NOT_FOUND: 'The formation or node named does not exist.',
  PGHA_ERR_CONFLICT: 'The request conflicts with the current state (a name taken, a port in use).',
  PGHA_ERR_MONITOR_UNAVAILABLE: 'The monitor could not be reached or answered with an error.',
  PGHA_ERR_STORE_UNAVAILABLE: "The monitor's own Postgres could not be reached.",
  PGHA_ERR_STORE_MISMATCH: "The etcd prefix given does not hold this monitor's store: nothing, another program's keys, another store, or one written by a newer pgha.",
  PGHA_ERR_POSTGRES_COMMAND: 'A Postgres program (initdb, pg_ctl, pg_basebackup, pg_rewind) failed.',
  PGHA_ERR_PGDATA: 'The data directory is not usable as asked, or is not the one pgha created there (missing, or another cluster).',
  PGHA_ERR_CONFIG: 'A configuration or state file is missing or corrupt.',
  PGHA_ERR_TIMEOUT: 'A wait ran out before the formation reached the expected state.',
  PGHA_ERR_UNAUTHENTICATED: 'The monitor refused a request without valid credentials (HTTP 401).',
  PGHA_ERR_FORBIDDEN: 'The credentials presented do not open that request (HTTP 403): another node, or the wrong kind of token.',
  PGHA_ERR_TLS: 'A TLS certificate, key or CA file is missing, unreadable, or does not match.',
  PGHA_ERR_NOT_LEADER: 'This monitor does not lead the formation (monitors on etcd): its leader decides, and another monitor forwards to it (HTTP 503 while none leads).',
  PGHA_ERR_INTERNAL: 'An unexpected error; the message says where.',
} as const;

/** One of the codes in {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * Base of every error pgha raises on purpose: a code from the catalog, a message that says
 * what was wrong, and a hint that says how to fix it.
 */
export class PghaError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
  }

  /** The one line shown to a user: message, then the hint if there is one. */
  toUserLine(): string {
    return this.hint ? `${this.message}; ${this.hint}` : this.message;
  }
}

/** Wrong input (HTTP 400, CLI usage errors). */
export class ValidationError extends PghaError {
  /** Path of the offending field, e.g. `body.port`. */
  readonly field: string | undefined;
  constructor(message: string, options: { hint?: string; field?: string; cause?: unknown } = {}) {
    super('PGHA_ERR_VALIDATION', message, options);
    this.field = options.field;
  }
}

/** A named formation or node does not exist (HTTP 404). */
export class NotFoundError extends PghaError {
  constructor(message: string, options: { hint?: string } = {}) {
    super('PGHA_ERR_NOT_FOUND', message, options);
  }
}

/** The request conflicts with the current state (HTTP 409). */
export class ConflictError extends PghaError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('PGHA_ERR_CONFLICT', message, options);
  }
}

/** The monitor could not be reached or answered with an error status. */
export class MonitorUnavailableError extends PghaError {
  /** HTTP status when the monitor answered, undefined when it could not be reached. */
  readonly status: number | undefined;
  constructor(message: string, options: { hint?: string; status?: number; cause?: unknown } = {}) {
    super('PGHA_ERR_MONITOR_UNAVAILABLE', message, options);
    this.status = options.status;
  }
}

/** The monitor refused the credentials (HTTP 401 `PGHA_ERR_UNAUTHENTICATED`, 403 `PGHA_ERR_FORBIDDEN`). */
export class AuthError extends PghaError {
  constructor(code: 'PGHA_ERR_UNAUTHENTICATED' | 'PGHA_ERR_FORBIDDEN', message: string, options: { hint?: string } = {}) {
    super(code, message, options);
  }
}

/** A Postgres program exited non-zero; carries its argv, exit code and the tail of stderr. */
export class PostgresCommandError extends PghaError {
  readonly argv: readonly string[];
  readonly exitCode: number | undefined;
  readonly stderrTail: string;
  constructor(argv: readonly string[], exitCode: number | undefined, stderr: string, options: { hint?: string } = {}) {
    const tail = stderr.trim().split('\n').slice(-5).join('\n');
    super('PGHA_ERR_POSTGRES_COMMAND', `${argv[0] ?? 'command'} failed (exit ${exitCode ?? 'signal'}): ${tail || 'no output'}`, options);
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderrTail = tail;
  }
}
