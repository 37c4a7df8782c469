/**
 * What the monitor's routes need from the rest of the monitor (`buildApp(deps)` hands it to
 * each route plugin). A module of its own, so that the routes and `app.ts`, which registers
 * them, never import each other.
 */
import type { Logger } from 'pino';
import type { ApiAuth } from './auth.js';
import type { GroupDriver } from './driver/group-driver.js';
import type { ReportBatcher } from './driver/report-batcher.js';
import type { MonitorMetrics } from './metrics/monitor-metrics.js';
import type { LeadershipView } from './ha/forward-to-leader.js';
import type { MonitorsProvider } from './routes/monitors.js';
import type { MonitorStore, StoreNotifier } from './store/store-port.js';
import type { CatalogueReader } from './formation/postgres-parameters.js';
import type { KeyAndCertificate } from './tls/certificates.js';
import type { LoudDeathWatch } from './prober/loud-death-watch.js';
import type { ReportNudges } from './report-nudges.js';

/** What the routes need. */
export interface AppDeps {
  /** The monitor's store (the port, whichever adapter is behind it). */
  store: MonitorStore;
  driver: GroupDriver;
  /** Keepers' reports, batched into shared transactions. */
  reports: ReportBatcher;
  notifier: StoreNotifier;
  log: Logger;
  /** Credentials every request but `GET /health` must present (see `auth.ts`). */
  auth: ApiAuth;
  /**
   * With `--ssl-self-signed`: the monitor's CA, which signs a node's Postgres certificate at
   * registration (`RegisterNodeRequest.tlsPublicKey`). Undefined otherwise.
   */
  certificateAuthority?: KeyAndCertificate;
  /** What `GET /v1/monitors` lists (see `routes/monitors.ts`); the routes are absent when undefined. */
  monitors?: MonitorsProvider;
  /**
   * Monitors on etcd (`ha/`): writes for a formation this monitor does not lead go to its
   * leader, and every request is refused while the monitor's lease may have expired. Undefined
   * on a monitor with its own Postgres store, which decides for every formation.
   */
  ha?: {
    leadership: LeadershipView & { leaseValid(): boolean };
    /** The CA (PEM) of the other monitors' HTTPS certificates. */
    ca?: string;
  };
  /**
   * Reads `pg_settings` of a formation's primary, which `pgha set postgresql` checks values
   * against (`probeCatalogueReader`, as the probe role); when undefined, one without a CA
   * (TLS unverified).
   */
  postgresCatalogue?: CatalogueReader;
  /**
   * Watches keepers' connections for a loud death of their node (`prober/loud-death-watch.ts`):
   * told of each keeper's report and goal long-poll, and answers a long-poll at once when it
   * asks that keeper to report. Undefined: no watch (tests of the routes alone).
   */
  loudDeaths?: LoudDeathWatch;
  /**
   * Keepers asked to report at once (`report-nudges.ts`): a held report or goal long-poll of
   * theirs is answered at once. Undefined: none is ever asked (tests of the routes alone).
   */
  nudges?: ReportNudges;
  /** The metrics `GET /metrics` serves; a new set (without process metrics) when undefined. */
  metrics?: MonitorMetrics;
}
