/**
 * Operator-facing read routes.
 *
 * - `GET /v1/formations/:formation/state` → 200 `NodeStateRow[]`; 404 unknown formation.
 * - `GET /v1/formations/:formation/events?count=N` (1..1000, default 20) → 200 `EventRow[]`, oldest first.
 * - `GET /v1/formations/:formation/uri?read_only=true|false` → 200 `{uri}`
 *   (`target_session_attrs=read-write`, or `prefer-standby` with `read_only=true`); 400, 404.
 * - `GET /health` → 200 `{status: "ok"}` (liveness, no store access).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { FormationName, type EventRow } from '@pgha/shared';
import type { AppDeps } from '../app-deps.js';
import { eventRow, currentFormationState, formationUri } from './views.js';
import { validate } from './validate.js';

const FormationParams = z.object({ formation: FormationName });
const EventsQuery = z.object({ count: z.coerce.number().int().min(1).max(1000).default(20) }).strict();
const UriQuery = z.object({ read_only: z.enum(['true', 'false']).default('false') }).strict();

/** Registers the operator-facing read routes. */
export async function formationRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get('/health', async () => ({ status: 'ok' }));

  app.get('/v1/formations/:formation/state', async (req) => {
    const { formation } = validate(FormationParams, req.params, 'params');
    return currentFormationState(deps.store, formation);
  });

  app.get('/v1/formations/:formation/events', async (req): Promise<EventRow[]> => {
    const { formation } = validate(FormationParams, req.params, 'params');
    const { count } = validate(EventsQuery, req.query, 'query');
    await deps.store.formations.get(formation);
    const rows = await deps.store.stream.latest(formation, count);
    return rows.map(eventRow);
  });

  app.get('/v1/formations/:formation/uri', async (req) => {
    const { formation } = validate(FormationParams, req.params, 'params');
    const { read_only } = validate(UriQuery, req.query, 'query');
    return { uri: await formationUri(deps.store, formation, read_only === 'true') };
  });
}
