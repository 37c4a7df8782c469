/**
 * Part of the Postgres adapter's fast path (see `report-statement.ts`). Queries on the hot
 * paths (a keeper's report, the timer, the prober) run thousands of times a second with a
 * thousand nodes. Building and compiling a Kysely query costs more than Postgres takes to run
 * these ones, so a {@link QueryTemplate} builds its query once, keeps the SQL text and where
 * each parameter goes, and then only binds new values; Postgres runs it as a named prepared
 * statement (see `prepareStatement`), planned once per connection. The query is still written
 * with Kysely and runs through the same plugins (schema `pgha`, camelCase rows); every handle
 * of the monitor comes from `openStore`, so one SQL text serves them all.
 */
import { CompiledQuery, type Compilable, type RawBuilder } from 'kysely';
import { prepareStatement, type Db } from './db.js';

/** Stands for the named argument in a query being built; the value is only a marker. */
export type Param = (name: string) => any;

const MARK = '\u0000pgha-param:';

type Slot = { name: string } | { value: unknown };

/** A query built once and run many times with named arguments. */
export class QueryTemplate<Row> {
  private compiled: { sql: string; slots: Slot[] } | undefined;

  /**
   * @param build - builds the query; every value that varies comes from `p('name')`, and
   *   constants may be written as they are.
   */
  constructor(private readonly build: (db: Db, p: Param) => Compilable<Row> | RawBuilder<Row>) {}

  /** Runs the query in `db` (a handle or a transaction) with `args` bound by name. */
  async execute(db: Db, args: Record<string, unknown>): Promise<Row[]> {
    this.compiled ??= this.compile(db);
    const parameters = this.compiled.slots.map((s) => {
      if ('value' in s) return s.value;
      if (!(s.name in args)) throw new Error(`query parameter "${s.name}" is missing`);
      return args[s.name];
    });
    const result = await db.executeQuery<Row>(CompiledQuery.raw(this.compiled.sql, parameters));
    return result.rows;
  }

  /** The first row, or undefined. */
  async executeTakeFirst(db: Db, args: Record<string, unknown>): Promise<Row | undefined> {
    return (await this.execute(db, args))[0];
  }

  private compile(db: Db): { sql: string; slots: Slot[] } {
    // A query builder compiles by itself; a raw `sql` query compiles against the handle.
    const q = (this.build(db, (name) => `${MARK}${name}`) as { compile(executorProvider?: Db): CompiledQuery<Row> }).compile(db);
    prepareStatement(q.sql);
    return {
      sql: q.sql,
      slots: q.parameters.map((v) => (typeof v === 'string' && v.startsWith(MARK) ? { name: v.slice(MARK.length) } : { value: v })),
    };
  }
}
