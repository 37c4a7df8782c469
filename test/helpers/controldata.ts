/**
 * The database system identifier of a data directory as `pg_controldata` prints it: the
 * independent reading that pgha's own (`global/pg_control`, see `postgres/controldata.ts`) is
 * checked against.
 */
import { runPgProgram } from '@pgha/postgres';

/** "Database system identifier" of `pgdata`, from `pg_controldata`. @throws when it prints none. */
export async function controldataIdentifier(pgdata: string): Promise<string> {
  const out = await runPgProgram('pg_controldata', ['--pgdata', pgdata]);
  const m = /^Database system identifier:\s+(\d+)$/m.exec(out);
  if (!m) throw new Error(`no identifier in pg_controldata's output: ${out}`);
  return m[1]!;
}
