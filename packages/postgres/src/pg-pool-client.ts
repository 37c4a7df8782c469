/**
 * `@pgha/postgres/pg-pool-client`: the client class of a node-postgres pool that builds its
 * connections with nothing from the environment (see `pg-connection.ts`). Apart from
 * `@pgha/postgres`'s index because defining it loads node-postgres, which a keeper loads only
 * when it first connects.
 */
import type pg from 'pg';
import { hideLibpqEnvironment, loadPgDriver, restoreEnvironment } from './pg-connection.js';

/**
 * A `pg.Client` subclass whose instances are built with nothing from the environment: for a
 * `pg.Pool`'s `Client` option, since the pool constructs its clients itself (give the pool
 * `pgClientConfig`'s configuration).
 */
export class ExplicitPgClient extends loadPgDriver().Client {
  constructor(config?: string | pg.ClientConfig) {
    const saved = hideLibpqEnvironment();
    try {
      super(config);
    } finally {
      restoreEnvironment(saved);
    }
  }
}
