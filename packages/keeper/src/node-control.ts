/**
 * Everything the keeper does to its own Postgres, in small idempotent steps that the
 * transition functions compose, split by concern, each part owning its state:
 * - {@link LocalSession} (`node/local-session.ts`): the kept session and the facts read on it;
 * - {@link DataDirectoryIdentity} (`node/data-directory-identity.ts`): whose data directory
 *   this is, checked before Postgres is started or configured there;
 * - {@link PostgresLifecycle} (`node/postgres-lifecycle.ts`): initdb, start, stop, fence,
 *   restart, reload, promote, the server log and start failures;
 * - {@link ReplicationSetup} (`node/replication-setup.ts`): config files, pg_hba, TLS files,
 *   passfile, roles, slots, the primary's settings, following an upstream;
 * - {@link Rebuild} (`node/rebuild.ts`): base backup, pg_rewind, the divergence watch and repair.
 */
import type { Logger } from 'pino';
import { socketDirFor } from '@pgha/postgres';
import { DivergenceWatch } from './divergence-watch.js';
import type { KeeperConfig } from './keeper-config.js';
import { problemSentence } from './local-problem.js';
import { DataDirectoryIdentity } from './node/data-directory-identity.js';
import { LocalSession } from './node/local-session.js';
import { PostgresLifecycle } from './node/postgres-lifecycle.js';
import { Rebuild } from './node/rebuild.js';
import { ReplicationSetup } from './node/replication-setup.js';

/** The local node: its config and the parts that act on its Postgres, wired together. */
export class NodeControl {
  readonly config: KeeperConfig;
  readonly log: Logger;
  readonly session: LocalSession;
  readonly identity: DataDirectoryIdentity;
  readonly postgres: PostgresLifecycle;
  readonly replication: ReplicationSetup;
  readonly rebuild: Rebuild;

  constructor(config: KeeperConfig, log: Logger) {
    this.config = config;
    this.log = log;
    // Every read of the facts feeds the divergence watch, which the rebuild acts on.
    const divergence = new DivergenceWatch(log);
    this.session = new LocalSession(config.pgdata, { socketDir: socketDirFor(config.pgdata), port: config.pgPort }, divergence);
    this.identity = new DataDirectoryIdentity(config, log);
    this.postgres = new PostgresLifecycle(config.pgdata, this.session, this.identity, log);
    this.replication = new ReplicationSetup(config, this.session, this.postgres, this.identity, log);
    this.rebuild = new Rebuild(config, this.session, this.postgres, this.identity, this.replication, divergence, log);
  }

  get pgdata(): string {
    return this.config.pgdata;
  }

  /**
   * What keeps this node from its goal, as seen locally, for the keeper's report: the data
   * directory's file system full, a data directory that is not the node's (the refusal of
   * `DataDirectoryIdentity.assertOwn`), Postgres not running after a failed start (with the
   * reason from its server log), or a standby diverged from its primary's timeline. Null when
   * nothing is wrong.
   * Source: none in pg_auto_failover (its keeper logs such errors locally only).
   */
  localProblem(): string | null {
    return problemSentence([this.postgres.diskProblem(), this.identity.refusal, this.postgres.startProblem(), this.postgres.parametersProblem(), this.rebuild.divergence.reportProblem()]);
  }
}
