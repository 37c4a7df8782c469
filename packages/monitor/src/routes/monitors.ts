/**
 * The monitors of the store, for `pgha show monitors`.
 *
 * - `GET /v1/monitors` → 200 `MonitorsView`: every monitor registered in the store (each asked
 *   for its own row, at most {@link SELF_TIMEOUT_MS}; one that does not answer is listed
 *   unreachable with the reason) and every etcd member (healthy, leader, db size); on a
 *   monitor with its own Postgres store, itself alone and no member.
 * - `GET /v1/monitors/self` → 200 `MonitorRow`: this monitor (the formations it leads, its
 *   terms, how long its lease may still live).
 *
 * Both take the operator token (401 without).
 */
import type { FastifyInstance } from 'fastify';
import type { MonitorRow, MonitorsView } from '@pgha/shared';

/** How long `GET /v1/monitors` waits for each other monitor's own row, ms. */
export const SELF_TIMEOUT_MS = 1000;

/** What the routes read: this monitor's row, and the whole view. */
export interface MonitorsProvider {
  self(): Promise<MonitorRow>;
  /** @param token - the caller's bearer token, to ask the other monitors with. */
  all(token?: string): Promise<MonitorsView>;
}

/** Registers `GET /v1/monitors` and `GET /v1/monitors/self`. */
export async function monitorRoutes(app: FastifyInstance, provider: MonitorsProvider): Promise<void> {
  app.get('/v1/monitors/self', async (): Promise<MonitorRow> => provider.self());
  app.get('/v1/monitors', async (req): Promise<MonitorsView> => provider.all(/^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1]));
}

/**
 * The provider of a monitor on its own Postgres store: itself, leading every formation, no
 * lease and no etcd member.
 *
 * @param formations - the store's formations, by name.
 */
export function singleMonitorProvider(url: string, formations: () => Promise<string[]>): MonitorsProvider {
  const self = async (): Promise<MonitorRow> => ({
    monitor_id: new URL(url).host,
    url,
    reachable: true,
    error: null,
    leads: (await formations()).map((formation) => ({ formation, term: '1' })),
    lease_left_ms: null,
    store: 'postgres',
  });
  return { self, all: async () => ({ monitors: [await self()], etcd: [] }) };
}
