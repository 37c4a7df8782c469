/**
 * `GET /v1/formations` → 200 `FormationView[]` (`{formation, kind, dbname,
 * number_sync_standbys}`), by name: every formation the monitor serves (the dashboard's
 * formation list); 400 with a query string.
 *
 * Source: pg_auto_failover's `pgautofailover.formation` table, which `pg_autoctl show state
 * --all` reads.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { FormationView } from '@pgha/shared';
import type { AppDeps } from '../app-deps.js';
import { formationView } from './settings.js';
import { validate } from './validate.js';

const NoQuery = z.object({}).strict();

/** Registers the formation list route. */
export async function formationListRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get('/v1/formations', async (req): Promise<FormationView[]> => {
    validate(NoQuery, req.query, 'query');
    return (await deps.store.formations.list()).map(formationView);
  });
}
