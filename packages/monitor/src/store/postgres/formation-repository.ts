/** The Postgres adapter's {@link FormationRepository}: `pgha.formations`. */
import { generateSecret } from '../../secrets.js';
import { noSuchFormation } from '../not-found.js';
import type { FormationRecord } from '../records.js';
import type { FormationRepository } from '../store-port.js';
import type { Database } from './db.js';
import { QueryTemplate } from './query-template.js';
import type { Db } from './db.js';

/** The columns of a {@link FormationRecord}. */
export const FORMATION_COLUMNS = ['formationId', 'kind', 'dbname', 'numberSyncStandbys', 'settings', 'clientNetworks', 'replicationPassword', 'monitorProbePassword', 'postgresParameters'] as const satisfies readonly (keyof Database['formations'])[];

const GET_FORMATION = new QueryTemplate<FormationRecord>((db, p) => db.selectFrom('formations').select(FORMATION_COLUMNS).where('formationId', '=', p('formationId')));
/** Every formation: the timer's snapshot reads them twice a second. */
const LIST_FORMATIONS = new QueryTemplate<FormationRecord>((db) => db.selectFrom('formations').select(FORMATION_COLUMNS).orderBy('formationId'));

/** See {@link FormationRepository}. */
export class PgFormationRepository implements FormationRepository {
  constructor(private readonly db: Db) {}

  async get(formationId: string): Promise<FormationRecord> {
    const row = await GET_FORMATION.executeTakeFirst(this.db, { formationId });
    if (!row) throw noSuchFormation(formationId);
    return row;
  }

  async list(): Promise<FormationRecord[]> {
    return LIST_FORMATIONS.execute(this.db, {});
  }

  async create(formationId: string, numberSyncStandbys = 0): Promise<FormationRecord | undefined> {
    return this.db
      .insertInto('formations')
      .values({ formationId, numberSyncStandbys, replicationPassword: generateSecret(), monitorProbePassword: generateSecret() })
      .onConflict((oc) => oc.column('formationId').doNothing())
      .returning(FORMATION_COLUMNS)
      .executeTakeFirst();
  }

  async delete(formationId: string): Promise<void> {
    await this.db.deleteFrom('formations').where('formationId', '=', formationId).execute();
  }

  /** `StoreTransaction.lockFormation`: the row `FOR NO KEY UPDATE`, which lets a node registering into the formation check its foreign key. */
  async lock(formationId: string): Promise<FormationRecord> {
    const row = await this.db.selectFrom('formations').select(FORMATION_COLUMNS).where('formationId', '=', formationId).forNoKeyUpdate().executeTakeFirst();
    if (!row) throw noSuchFormation(formationId);
    return row;
  }
}
