/**
 * Whose data directory this is: the database system identifier keeper.json records, checked
 * before Postgres is started there or anything is written into it, and recorded when the
 * keeper makes a data directory its own (initdb, a base backup). It owns the recorded
 * identifier and the last refusal, which is the node's reported problem until a check passes.
 */
import type { Logger } from 'pino';
import { PghaError } from '@pgha/shared/base';
import { assertOwnDataDirectory, inspectDataDirectory, writeJsonAtomic } from '@pgha/postgres';
import { keeperPaths, loadKeeperConfig, type KeeperConfig } from '../keeper-config.js';

/** See the module comment. One per node (`NodeControl.identity`). */
export class DataDirectoryIdentity {
  /**
   * The data directory's database system identifier as keeper.json records it
   * (`KeeperConfig.systemIdentifier`); undefined until the keeper has a data directory of its
   * own, or in a file written before pgha recorded it.
   */
  private systemIdentifier: string | undefined;

  /** The last refusal of the data directory ({@link assertOwn}), one line; cleared by a check that passes. */
  private lastRefusal: string | undefined;

  constructor(private readonly config: KeeperConfig, private readonly log: Logger) {
    this.systemIdentifier = config.systemIdentifier;
  }

  private get pgdata(): string {
    return this.config.pgdata;
  }

  /** The refusal of the last check, while no check has passed since: the node's problem. */
  get refusal(): string | undefined {
    return this.lastRefusal;
  }

  /**
   * Checks that the data directory is this node's before Postgres is started or restarted
   * there, or anything is written into it (pgha.conf, pg_hba.conf, standby.signal, a rewind):
   * a data directory whose database system identifier is the one keeper.json records. With
   * none recorded (a file from before pgha recorded it), records the identifier found and logs
   * that. A refusal is logged once (until it changes) and is the node's reported problem
   * ({@link refusal}) until a check passes.
   * Source: Patroni compares the data directory's system identifier with the DCS's before it
   * starts Postgres; pg_auto_failover's keeper checks it against the monitor's at `pg_autoctl run`.
   *
   * @throws PghaError `PGHA_ERR_PGDATA` when the data directory is missing, is not a data
   *   directory, or holds another cluster.
   */
  assertOwn(): void {
    let found: string;
    try {
      found = assertOwnDataDirectory(this.pgdata, this.systemIdentifier, {
        who: `node ${this.config.nodeId} "${this.config.name}"`,
        recordFile: keeperPaths(this.pgdata).config,
        hint: `put the node's own data directory back at ${this.pgdata}; the keeper starts and configures no other (a standby whose directory is moved away clones its primary again)`,
      });
    } catch (err) {
      const line = err instanceof PghaError ? err.toUserLine() : (err as Error).message;
      if (line !== this.lastRefusal) this.log.error(line);
      this.lastRefusal = line;
      throw err;
    }
    if (this.lastRefusal !== undefined) this.log.info(`the data directory ${this.pgdata} is the node's again (database system identifier ${found})`);
    this.lastRefusal = undefined;
    if (this.systemIdentifier === undefined) this.record(found, 'at the first start on this data directory (the file is from before pgha recorded it)');
  }

  /**
   * Records the identifier of the data directory the keeper has just made its own (after
   * initdb or a base backup) in keeper.json.
   *
   * @param after - what made it, for the log (`initdb`, `a base backup`).
   * @throws PghaError `PGHA_ERR_PGDATA` when the directory holds no cluster after all.
   */
  recordOwn(after: string): void {
    const found = inspectDataDirectory(this.pgdata);
    if (found.kind !== 'cluster') {
      throw new PghaError('PGHA_ERR_PGDATA', `${this.pgdata} holds no Postgres cluster after ${after} (${found.kind === 'missing' ? 'missing' : found.reason})`, { hint: 'the keeper retries; see the log of the step before' });
    }
    this.record(found.systemIdentifier, `after ${after}`);
  }

  /**
   * Writes `systemIdentifier` into keeper.json (re-read, so that fields edited meanwhile stay
   * as they are) and keeps it for the checks of {@link assertOwn}.
   */
  private record(id: string, why: string): void {
    if (id === this.systemIdentifier) return;
    const path = keeperPaths(this.pgdata).config;
    writeJsonAtomic(path, { ...loadKeeperConfig(this.pgdata), systemIdentifier: id });
    const previous = this.systemIdentifier;
    this.systemIdentifier = id;
    const msg = `recorded the data directory's database system identifier ${id} in ${path} ${why}`;
    if (previous === undefined) this.log.info({ systemIdentifier: id }, msg);
    else this.log.warn({ systemIdentifier: id, previous }, `${msg}, replacing ${previous}`);
  }
}
