/**
 * The etcd adapter's values: the store's records as JSON, times as ms since the epoch (`…Ms`),
 * so that a value read back is the record written. Pure.
 */
import type { EventRecord, FormationRecord, NewEvent, NodeRecord } from '../records.js';

/** A node's value: its record with every `Date` as ms (null stays null). */
type NodeValue = Omit<NodeRecord, DateField> & { [K in DateField as `${K}Ms`]: NodeRecord[K] extends Date ? number : number | null };

/** The `Date` fields of a node record. */
type DateField = 'reportedAt' | 'lastStreamingAt' | 'healthCheckedAt' | 'goalChangedAt' | 'createdAt' | 'lastSelfFenceAt' | 'restartRequestedAt';

const NULLABLE_DATES = ['reportedAt', 'lastStreamingAt', 'healthCheckedAt', 'lastSelfFenceAt', 'restartRequestedAt'] as const;

function ms(d: Date | null): number | null {
  return d === null ? null : d.getTime();
}

function date(v: number | null | undefined): Date | null {
  return v === null || v === undefined ? null : new Date(v);
}

/** A node record as its key's value. */
export function encodeNode(n: NodeRecord): string {
  const { reportedAt, lastStreamingAt, healthCheckedAt, goalChangedAt, createdAt, lastSelfFenceAt, restartRequestedAt, ...rest } = n;
  const value: NodeValue = {
    ...rest,
    reportedAtMs: ms(reportedAt),
    lastStreamingAtMs: ms(lastStreamingAt),
    healthCheckedAtMs: ms(healthCheckedAt),
    goalChangedAtMs: goalChangedAt.getTime(),
    createdAtMs: createdAt.getTime(),
    lastSelfFenceAtMs: ms(lastSelfFenceAt),
    restartRequestedAtMs: ms(restartRequestedAt),
  };
  return JSON.stringify(value);
}

/** A node key's value as a record. @throws SyntaxError for a value that is not JSON. */
export function decodeNode(text: string): NodeRecord {
  const v = JSON.parse(text) as NodeValue;
  const { reportedAtMs, lastStreamingAtMs, healthCheckedAtMs, goalChangedAtMs, createdAtMs, lastSelfFenceAtMs, restartRequestedAtMs, ...rest } = v;
  const record: NodeRecord = {
    ...rest,
    reportedAt: date(reportedAtMs),
    lastStreamingAt: date(lastStreamingAtMs),
    healthCheckedAt: date(healthCheckedAtMs),
    goalChangedAt: new Date(goalChangedAtMs),
    createdAt: new Date(createdAtMs),
    lastSelfFenceAt: date(lastSelfFenceAtMs),
    restartRequestedAt: date(restartRequestedAtMs),
  };
  for (const f of NULLABLE_DATES) record[f] ??= null;
  // Written before the fields existed (an older monitor): none of its own, none reported.
  record.postgresParameters ??= [];
  record.reportedParameters ??= null;
  // Written before keepers reported the shutdown checkpoint: none reported.
  record.shutdownCheckpointLsn ??= null;
  // Written before `pgha perform restart`: no restart asked for.
  record.restartRequest ??= 0;
  record.restartDone ??= 0;
  return record;
}

/** A formation's value: its record and when it was created. */
export function encodeFormation(f: FormationRecord, createdAtMs: number): string {
  return JSON.stringify({ ...f, createdAtMs });
}

/** A formation key's value as a record (without its creation time). */
export function decodeFormation(text: string): FormationRecord {
  const { formationId, kind, dbname, numberSyncStandbys, settings, clientNetworks, replicationPassword, monitorProbePassword, postgresParameters } = JSON.parse(text) as Partial<FormationRecord>;
  // A formation written before client networks (or Postgres parameters) existed has none.
  return { formationId: formationId!, kind: kind!, dbname: dbname!, numberSyncStandbys: numberSyncStandbys!, settings: settings!, clientNetworks: clientNetworks ?? [], replicationPassword: replicationPassword!, monitorProbePassword: monitorProbePassword!, postgresParameters: postgresParameters ?? [] };
}

/** An event's value: the event and its time. */
export function encodeEvent(e: NewEvent, eventTimeMs: number): string {
  return JSON.stringify({ ...e, eventTimeMs });
}

/**
 * An event key's value as a record, with its id: the mod revision of the transaction that wrote
 * it × 10,000 + its index in that transaction (see `event-repository.ts`).
 */
export function decodeEvent(text: string, modRevision: string, index: number): EventRecord {
  const { eventTimeMs, ...e } = JSON.parse(text) as NewEvent & { eventTimeMs: number };
  return { eventId: String(BigInt(modRevision) * EVENT_ID_FACTOR + BigInt(index)), eventTime: new Date(eventTimeMs), ...e };
}

/** Events per transaction at most; an event id is `modRevision * EVENT_ID_FACTOR + index`. */
export const EVENT_ID_FACTOR = 10_000n;
