/**
 * What the monitor's routes need from the rest of the monitor (`buildApp(deps)` hands it to
 * each route plugin). A module of its own, so that the routes and `app.ts`, which registers
 * them, never import each other.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { ApiAuth } from './auth.js';
import type { GroupDriver } from './driver/group-driver.js';
import type { GoalNotifier } from './driver/goal-notifier.js';
import type { MonitorMetrics } from './metrics/monitor-metrics.js';
import type { Database } from './store/db.js';
import type { KeyAndCertificate } from './tls/certificates.js';

/** What the routes need. */
export interface AppDeps {
  db: Kysely<Database>;
  driver: GroupDriver;
  notifier: GoalNotifier;
  log: Logger;
  /** Credentials every request but `GET /health` must present (see `auth.ts`). */
  auth: ApiAuth;
  /**
   * With `--ssl-self-signed`: the monitor's CA, which signs a node's Postgres certificate at
   * registration (`RegisterNodeRequest.tlsPublicKey`). Undefined otherwise.
   */
  certificateAuthority?: KeyAndCertificate;
  /** The metrics `GET /metrics` serves; a new set (without process metrics) when undefined. */
  metrics?: MonitorMetrics;
}
