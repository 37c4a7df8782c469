/** The Postgres adapter's {@link SettingsRepository}. */
import type { PostgresParameter } from '@pgha/shared';
import type { FormationRecord, NodeRecord } from '../records.js';
import type { SettingsRepository } from '../store-port.js';
import type { Db } from './db.js';

/** See {@link SettingsRepository}. */
export class PgSettingsRepository implements SettingsRepository {
  constructor(private readonly db: Db) {}

  async setNumberSyncStandbys(formationId: string, value: number): Promise<void> {
    await this.db.updateTable('formations').set({ numberSyncStandbys: value }).where('formationId', '=', formationId).execute();
  }

  async setTimings(formationId: string, settings: FormationRecord['settings']): Promise<void> {
    await this.db.updateTable('formations').set({ settings }).where('formationId', '=', formationId).execute();
  }

  async setClientNetworks(formationId: string, networks: readonly string[]): Promise<void> {
    await this.db.updateTable('formations').set({ clientNetworks: [...networks] }).where('formationId', '=', formationId).execute();
  }

  async setPostgresParameters(formationId: string, parameters: readonly PostgresParameter[]): Promise<void> {
    await this.db.updateTable('formations').set({ postgresParameters: JSON.stringify(parameters) }).where('formationId', '=', formationId).execute();
  }

  async setNodePostgresParameters(nodeId: number, parameters: readonly PostgresParameter[]): Promise<void> {
    await this.db.updateTable('nodes').set({ postgresParameters: JSON.stringify(parameters) }).where('nodeId', '=', nodeId).execute();
  }

  async setNodeReplication(nodeId: number, settings: Pick<NodeRecord, 'candidatePriority' | 'replicationQuorum'>): Promise<void> {
    await this.db.updateTable('nodes').set({ candidatePriority: settings.candidatePriority, replicationQuorum: settings.replicationQuorum }).where('nodeId', '=', nodeId).execute();
  }
}
