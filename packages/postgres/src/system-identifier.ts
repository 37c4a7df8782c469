/**
 * The zod schema of a database system identifier in pgha's files (`keeper.json`,
 * `monitor.json`). Apart from `pgha-files.ts` so that `@pgha/postgres/base` loads no zod (issue
 * 17 §4: a CLI command that reads a token file need not pay for it); `@pgha/postgres` exports it.
 */
import { z } from 'zod';

/** A database system identifier as pgha's files record it: the decimal `uint64` of `global/pg_control`. */
export const SystemIdentifierSchema = z.string().regex(/^[1-9][0-9]{0,19}$/, 'must be a database system identifier (decimal digits, as pg_controldata prints it)');
