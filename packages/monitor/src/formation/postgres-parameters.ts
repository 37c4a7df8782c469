/**
 * A formation's Postgres parameters (`pgha set|get|show postgresql`): the change, checked
 * against the primary's `pg_settings` before anything is stored and written with its events;
 * what each node's keeper is given (`NodeGoal.postgresParameters`); and the view.
 *
 * **Where the check's catalogue comes from.** The monitor asks the group's primary itself:
 * one session as the probe role (`pgha_monitor`, the credentials, address and TLS of its health
 * probe), `select … from pg_settings`, closed at once. A change is refused when no primary
 * answers: nothing is stored that Postgres was not asked about. The keeper grants the probe role
 * `pg_read_all_settings` (else `pg_settings` hides a few parameters, e.g.
 * `shared_preload_libraries`, from it).
 *
 * Source: Patroni's `patronictl edit-config` (`postgresql.parameters`), CloudNativePG's
 * `.spec.postgresql.parameters`.
 */
import type pg from 'pg';
import {
  ConflictError,
  HOT_STANDBY_PARAMETERS,
  MONITOR_PROBE_ROLE,
  ValidationError,
  WRITABLE_STATES,
  mergeParameters,
  orderedValue,
  parameterProblem,
  type ParameterDefinition,
  type PostgresParameter,
  type PostgresParametersUpdate,
  type PostgresParametersView,
} from '@pgha/shared';
import { newPgClient } from '@pgha/postgres';
import { nodeEvent, formationEvent, SETTINGS_CHANGED_RULE } from '../store/event-records.js';
import type { FormationRecord, NodeRecord } from '../store/records.js';
import type { StoreSession, StoreTransaction } from '../store/store-port.js';
import { pgSslOption, probeSsl } from '../prober/health-prober.js';

/** The catalogue of a node's Postgres by parameter name (`pg_settings`). */
export type ParameterCatalogue = ReadonlyMap<string, ParameterDefinition>;

/** Reads the catalogue that a change is checked against (see the module); the route's dependency. */
export type CatalogueReader = (formation: FormationRecord, primary: NodeRecord) => Promise<ParameterCatalogue>;

/** How long reading a primary's catalogue may take, connection included (ms). */
const CATALOGUE_TIMEOUT_MS = 5_000;

/**
 * A {@link CatalogueReader} that connects to the primary as the probe role.
 *
 * @param probeCa - the CA of nodes' Postgres certificates (the health prober's); undefined without TLS.
 * @throws ConflictError naming the primary when it does not answer.
 */
export function probeCatalogueReader(probeCa: string | undefined): CatalogueReader {
  return async (formation, primary) => {
    const client = newPgClient({
      host: primary.host,
      port: primary.port,
      user: MONITOR_PROBE_ROLE,
      password: formation.monitorProbePassword,
      database: 'postgres',
      connectTimeoutMs: CATALOGUE_TIMEOUT_MS,
      applicationName: 'pgha_parameters',
      ssl: pgSslOption(probeSsl(primary.postgresSsl, probeCa)),
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const { rows } = await client.query<{ name: string; vartype: ParameterDefinition['vartype']; unit: string | null; min_val: string | null; max_val: string | null; enumvals: string[] | null; context: string }>({
        text: 'select name, vartype, unit, min_val, max_val, enumvals, context from pg_settings',
        query_timeout: CATALOGUE_TIMEOUT_MS,
      } as pg.QueryConfig);
      return new Map(rows.map((r) => [r.name, { name: r.name, vartype: r.vartype, unit: r.unit, minVal: r.min_val, maxVal: r.max_val, enumvals: r.enumvals, context: r.context }]));
    } catch (err) {
      throw new ConflictError(`cannot check the parameters against the primary, node ${primary.nodeId} "${primary.name}" (${primary.host}:${primary.port}): ${(err as Error).message}`, {
        hint: 'nothing was changed; try again once the primary answers (pgha show state)',
      });
    } finally {
      await client.end().catch(() => undefined);
    }
  };
}

/** The node of `nodes` whose goal is writable, else undefined. */
function writableNode(nodes: readonly NodeRecord[]): NodeRecord | undefined {
  const writable = nodes.filter((n) => WRITABLE_STATES.has(n.goalState));
  return writable.length === 1 ? writable[0] : undefined;
}

/** What Postgres runs with for `name` on `node`, as its keeper last reported; null when not known. */
function runningValue(node: NodeRecord, name: string): string | null {
  return node.reportedParameters?.running.find((p) => p.name === name)?.value ?? null;
}

/**
 * The parameters `node`'s keeper writes: its formation's with its own over them, each of
 * {@link HOT_STANDBY_PARAMETERS} held back by `orderedValue` (raised on standbys first, lowered on
 * the primary first) from what its group's nodes run with.
 *
 * @param group - the node's group (dropped nodes left out), the node included.
 */
export function nodeParameters(node: NodeRecord, formation: FormationRecord, group: readonly NodeRecord[]): PostgresParameter[] {
  const primary = writableNode(group);
  const others = group.filter((n) => n.nodeId !== node.nodeId);
  return mergeParameters(formation.postgresParameters ?? [], node.postgresParameters ?? []).map((p) => {
    if (!HOT_STANDBY_PARAMETERS.includes(p.name)) return p;
    const self = { primary: primary?.nodeId === node.nodeId, value: runningValue(node, p.name) };
    return { name: p.name, value: orderedValue(p.value, self, others.map((n) => ({ primary: primary?.nodeId === n.nodeId, value: runningValue(n, p.name) }))) };
  });
}

/**
 * `pgha show postgresql`: the formation's parameters and, for each node, what it is given, its
 * own values, what it runs with and what waits for a restart.
 *
 * @param nodes - the formation's nodes that are not dropped.
 */
export function postgresParametersView(formation: FormationRecord, nodes: readonly NodeRecord[]): PostgresParametersView {
  return {
    formation: formation.formationId,
    parameters: formation.postgresParameters ?? [],
    nodes: nodes.map((n) => {
      const pending = n.reportedParameters?.pendingRestart ?? [];
      const own = new Map((n.postgresParameters ?? []).map((p) => [p.name, p.value]));
      return {
        node_id: n.nodeId,
        name: n.name,
        overrides: n.postgresParameters ?? [],
        parameters: nodeParameters(n, formation, nodes.filter((m) => m.groupId === n.groupId)).map((p) => ({
          name: p.name,
          value: p.value,
          node_value: own.get(p.name) ?? null,
          running: runningValue(n, p.name),
          pending_restart: pending.includes(p.name),
        })),
        pending_restart: pending,
      };
    }),
  };
}

/** `list` with `changes` applied (a null value removes the name), by name. */
function applyChanges(list: readonly PostgresParameter[], changes: readonly { name: string; value: string | null }[]): PostgresParameter[] {
  const map = new Map(list.map((p) => [p.name, p.value]));
  for (const c of changes) {
    if (c.value === null) map.delete(c.name);
    else map.set(c.name, c.value);
  }
  return [...map].map(([name, value]) => ({ name, value })).sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Checks the values of a change against `pg_settings` of the group's primary, before any
 * transaction (reading the catalogue takes a round trip to the primary, which must not hold
 * the group's lock, and so a failover, back).
 *
 * @param readCatalogue - reads the primary's catalogue (see the module); not called when every
 *   change is a reset.
 * @throws ValidationError naming every refused parameter and why (`parameterProblem`: pgha's
 *   own, unknown, fixed, wrong type, unit or range); NotFoundError for an unknown formation or
 *   node; ConflictError when no primary can be asked.
 */
export async function checkPostgresParameters(store: StoreSession, formationId: string, update: PostgresParametersUpdate, readCatalogue: CatalogueReader): Promise<void> {
  const formation = await store.formations.get(formationId);
  const node = update.name === undefined ? undefined : await store.nodes.getByName(formationId, update.name);
  const sets = update.parameters.filter((p): p is PostgresParameter => p.value !== null);
  if (sets.length === 0) return;
  const primary = writableNode(await store.nodes.list(formationId, { groupId: node?.groupId ?? 0 }));
  if (!primary) {
    throw new ConflictError(`cannot check the parameters: formation "${formationId}" has no primary now`, { hint: 'nothing was changed; try again once a node is primary (pgha show state)' });
  }
  const catalogue = await readCatalogue(formation, primary);
  const problems = sets.map((p) => parameterProblem(catalogue, p.name, p.value)).filter((problem) => problem !== undefined);
  if (problems.length > 0) {
    throw new ValidationError(`refused: ${problems.join('; ')}`, {
      field: 'body.parameters',
      hint: `nothing was changed; pgha show postgresql --formation ${formationId} shows the parameters in effect`,
    });
  }
}

/**
 * Sets or resets Postgres parameters of a formation (or, with `update.name`, of one node), with
 * one event per changed value, and wakes the formation's keepers, which write them into their
 * `pgha.parameters.conf` and reload. Checked first by {@link checkPostgresParameters}. Run it
 * under the formation's lock.
 *
 * @returns one sentence per changed value (empty when nothing changed).
 * @throws NotFoundError for an unknown node.
 */
export async function changePostgresParameters(tx: StoreTransaction, formation: FormationRecord, update: PostgresParametersUpdate): Promise<string[]> {
  const formationId = formation.formationId;
  const nodes = await tx.nodes.list(formationId);
  const node = update.name === undefined ? undefined : await tx.nodes.getByName(formationId, update.name);
  const before = node ? node.postgresParameters : formation.postgresParameters;
  const after = applyChanges(before, update.parameters);
  const old = new Map(before.map((p) => [p.name, p.value]));
  const changes: string[] = [];
  const where = node ? `node ${node.nodeId} "${node.name}"` : `formation "${formationId}"`;
  for (const c of update.parameters) {
    const was = old.get(c.name);
    if (c.value === was || (c.value === null && was === undefined)) continue;
    if (c.value === null) changes.push(`Postgres parameter ${c.name} of ${where} reset (was ${was})`);
    else changes.push(`Postgres parameter ${c.name} of ${where} set ${was === undefined ? '' : `from ${was} `}to ${c.value}`);
  }
  if (changes.length === 0) return [];
  if (node) {
    await tx.settings.setNodePostgresParameters(node.nodeId, after);
    await tx.events.append(changes.map((reason) => nodeEvent(node, SETTINGS_CHANGED_RULE, reason)));
  } else {
    await tx.settings.setPostgresParameters(formationId, after);
    await tx.events.append(changes.map((reason) => formationEvent(formationId, SETTINGS_CHANGED_RULE, reason)));
  }
  await tx.goals.notify(nodes.map((n) => n.nodeId));
  return changes;
}
