/**
 * Formations and replication settings. Every change runs in one transaction: the locks, the
 * check against the group's nodes, the new value with its event, and the state machine's
 * reaction (`GroupDriver.evaluateIn` with cause `settings`); a refused change leaves nothing.
 *
 * - `POST /v1/formations` body `CreateFormationRequest` → 201 `FormationView`; 400, 409 exists.
 * - `DELETE /v1/formations/:formation` → 200 `FormationDropped`; 404, 409 nodes left.
 * - `GET /v1/formations/:formation/settings` → 200 `SettingsView`; 404.
 * - `PATCH /v1/formations/:formation/settings` body `FormationSettingsUpdate` (number_sync_standbys, timing settings and/or
 *   client networks) → 200 `FormationSettingsChange`; 400 (an invalid client network among them), 404, 409 value the groups cannot meet.
 * - `GET /v1/formations/:formation/nodes/:name/settings` → 200 `NodeSettingsRow`; 404.
 * - `PATCH /v1/formations/:formation/nodes/:name/settings` body `NodeSettingsUpdate` → 200
 *   `NodeSettingsChange`; 400, 404, 409 replication quorum needed for number_sync_standbys.
 * - `GET /v1/formations/:formation/standby-names?group=N` → 200 `StandbyNamesView`; 400, 404.
 * - `GET /v1/formations/:formation/postgresql` → 200 `PostgresParametersView`; 404.
 * - `PATCH /v1/formations/:formation/postgresql` body `PostgresParametersUpdate` → 200
 *   `PostgresParametersChange`; 400 a refused parameter (pgha's own, unknown, wrong type, unit
 *   or range: nothing stored), 404, 409 no primary to check against.
 *
 * Source: pg_auto_failover's `pg_autoctl set|get|show settings`, `show standby-names`,
 * `create|drop formation`; Patroni's `patronictl edit-config` for the Postgres parameters.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  CreateFormationRequest,
  FormationName,
  FormationSettingsUpdate,
  NodeName,
  NodeSettingsUpdate,
  PostgresParametersUpdate,
  TIMING_SETTINGS,
  synchronousStandbyNames,
  type FormationDropped,
  type FormationSettingsChange,
  type FormationView,
  type NodeSettingsChange,
  type NodeSettingsRow,
  type PostgresParametersChange,
  type PostgresParametersView,
  type SettingsView,
  type StandbyNamesView,
} from '@pgha/shared';
import type { AppDeps } from '../app-deps.js';
import { parseClientNetworks } from '@pgha/postgres';
import { changeClientNetworks, changeNodeSettings, changeNumberSyncStandbys, changeTimingSettings, createFormation, dropFormation } from '../formation/settings-changes.js';
import { changePostgresParameters, checkPostgresParameters, postgresParametersView, probeCatalogueReader } from '../formation/postgres-parameters.js';
import { formationSettings, groupFacts } from '../store/group-facts.js';
import type { FormationRecord, NodeRecord } from '../store/records.js';
import type { StoreSession } from '../store/store-port.js';
import { validate } from './validate.js';
import { primaryOf } from './views.js';

const FormationParams = z.object({ formation: FormationName });
const NodeParams = z.object({ formation: FormationName, name: NodeName });
const StandbyNamesQuery = z.object({ group: z.coerce.number().int().min(0).max(2 ** 31 - 1).default(0) }).strict();

/** A formation as the API shows it. */
export function formationView(f: FormationRecord): FormationView {
  const settings = formationSettings(f);
  const timing = Object.fromEntries(Object.values(TIMING_SETTINGS).map((s) => [s.key, settings[s.key]])) as FormationView['timing'];
  return { formation: f.formationId, kind: f.kind, dbname: f.dbname, number_sync_standbys: f.numberSyncStandbys, timing, client_networks: [...f.clientNetworks] };
}

/** A node's replication settings as the API shows them. */
export function nodeSettingsRow(n: NodeRecord): NodeSettingsRow {
  return {
    formation: n.formationId,
    group_id: n.groupId,
    node_id: n.nodeId,
    name: n.name,
    candidate_priority: n.candidatePriority,
    replication_quorum: n.replicationQuorum,
  };
}

/** The `synchronous_standby_names` the monitor computes for a group's primary (what its keeper applies in `primary`). */
export async function standbyNames(store: StoreSession, formationId: string, groupId: number): Promise<StandbyNamesView> {
  const formation = await store.formations.get(formationId);
  const nodes = await store.nodes.list(formationId, { groupId });
  const primary = primaryOf(nodes);
  const facts = groupFacts(formation, groupId, nodes, Date.now());
  return {
    formation: formationId,
    group_id: groupId,
    primary: primary?.name ?? null,
    primary_node_id: primary?.nodeId ?? null,
    synchronous_standby_names: primary ? synchronousStandbyNames(facts, primary.nodeId) : '',
  };
}

/** Registers the formation and settings routes. */
export async function settingsRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.post('/v1/formations', async (req, reply) => {
    const body = validate(CreateFormationRequest, req.body, 'body');
    const created = await deps.store.transaction((tx) => createFormation(tx, body.formation, body.numberSyncStandbys));
    req.log.info({ formation: body.formation }, `formation "${body.formation}" created with number_sync_standbys ${body.numberSyncStandbys}`);
    return reply.code(201).send(formationView(created));
  });

  app.delete('/v1/formations/:formation', async (req): Promise<FormationDropped> => {
    const { formation } = validate(FormationParams, req.params, 'params');
    await deps.store.transaction((tx) => dropFormation(tx, formation));
    req.log.info({ formation }, `formation "${formation}" dropped`);
    return { formation, dropped: true };
  });

  app.get('/v1/formations/:formation/settings', async (req): Promise<SettingsView> => {
    const { formation } = validate(FormationParams, req.params, 'params');
    const f = await deps.store.formations.get(formation);
    const nodes = await deps.store.nodes.list(formation);
    const groups = await deps.store.nodes.groupIds(formation);
    return {
      formation: formationView(f),
      standby_names: await Promise.all(groups.map((g) => standbyNames(deps.store, formation, g))),
      nodes: nodes.map(nodeSettingsRow),
    };
  });

  app.patch('/v1/formations/:formation/settings', async (req): Promise<FormationSettingsChange> => {
    const { formation } = validate(FormationParams, req.params, 'params');
    const body = validate(FormationSettingsUpdate, req.body, 'body');
    const { numberSyncStandbys, clientNetworks, ...timing } = body;
    const networks = clientNetworks === undefined ? undefined : parseClientNetworks(clientNetworks, 'body.clientNetworks');
    const result = await deps.store.transaction(async (tx) => {
      const f = await tx.lockFormation(formation);
      const changes = [...(numberSyncStandbys === undefined ? [] : await changeNumberSyncStandbys(tx, f, numberSyncStandbys)), ...(await changeTimingSettings(tx, await tx.formations.get(formation), timing))];
      const clients = networks === undefined ? { changes: [], warnings: [] } : await changeClientNetworks(tx, await tx.formations.get(formation), networks);
      for (const g of await tx.nodes.groupIds(formation)) await deps.driver.evaluateIn(tx, formation, g, 'settings');
      return { formation: formationView(await tx.formations.get(formation)), changes: [...changes, ...clients.changes], warnings: clients.warnings };
    });
    for (const c of result.changes) req.log.info({ formation }, c);
    return result;
  });

  app.get('/v1/formations/:formation/nodes/:name/settings', async (req): Promise<NodeSettingsRow> => {
    const { formation, name } = validate(NodeParams, req.params, 'params');
    await deps.store.formations.get(formation);
    return nodeSettingsRow(await deps.store.nodes.getByName(formation, name));
  });

  app.patch('/v1/formations/:formation/nodes/:name/settings', async (req): Promise<NodeSettingsChange> => {
    const { formation, name } = validate(NodeParams, req.params, 'params');
    const body = validate(NodeSettingsUpdate, req.body, 'body');
    const result = await deps.store.transaction(async (tx) => {
      await tx.formations.get(formation);
      const { groupId } = await tx.nodes.getByName(formation, name);
      let outcome!: { changes: string[]; warnings: string[] };
      // The change is written under the group's lock, then the state machine decides.
      await deps.driver.evaluateIn(tx, formation, groupId, 'settings', async () => {
        outcome = await changeNodeSettings(tx, formation, name, body);
      });
      return { node: nodeSettingsRow(await tx.nodes.getByName(formation, name)), ...outcome };
    });
    for (const c of result.changes) req.log.info({ formation, nodeId: result.node.node_id }, c);
    for (const w of result.warnings) req.log.warn({ formation, nodeId: result.node.node_id }, w);
    return result;
  });

  app.get('/v1/formations/:formation/postgresql', async (req): Promise<PostgresParametersView> => {
    const { formation } = validate(FormationParams, req.params, 'params');
    return postgresParametersView(await deps.store.formations.get(formation), await deps.store.nodes.list(formation));
  });

  const readCatalogue = deps.postgresCatalogue ?? probeCatalogueReader(undefined);
  app.patch('/v1/formations/:formation/postgresql', async (req): Promise<PostgresParametersChange> => {
    const { formation } = validate(FormationParams, req.params, 'params');
    const body = validate(PostgresParametersUpdate, req.body, 'body');
    await checkPostgresParameters(deps.store, formation, body, readCatalogue);
    const result = await deps.store.transaction(async (tx) => {
      const f = await tx.lockFormation(formation);
      const changes = await changePostgresParameters(tx, f, body);
      return { ...postgresParametersView(await tx.formations.get(formation), await tx.nodes.list(formation)), changes };
    });
    for (const c of result.changes) req.log.info({ formation }, c);
    return result;
  });

  app.get('/v1/formations/:formation/standby-names', async (req): Promise<StandbyNamesView> => {
    const { formation } = validate(FormationParams, req.params, 'params');
    const { group } = validate(StandbyNamesQuery, req.query, 'query');
    return standbyNames(deps.store, formation, group);
  });
}
