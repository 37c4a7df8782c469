/** The Postgres adapter's {@link NodeCredentialRepository}: `pgha.node_credentials`. */
import type { NodeCredentialRepository } from '../store-port.js';
import type { Db } from './db.js';

/** See {@link NodeCredentialRepository}. */
export class PgCredentialRepository implements NodeCredentialRepository {
  constructor(private readonly db: Db) {}

  async ownerOf(digest: string): Promise<number | undefined> {
    const row = await this.db.selectFrom('nodeCredentials').select('nodeId').where('tokenSha256', '=', digest).executeTakeFirst();
    return row?.nodeId;
  }

  async issue(nodeId: number, digest: string): Promise<void> {
    await this.db
      .insertInto('nodeCredentials')
      .values({ nodeId, tokenSha256: digest })
      .onConflict((oc) => oc.column('nodeId').doUpdateSet({ tokenSha256: digest, issuedAt: new Date() }))
      .execute();
  }

  async list(): Promise<{ nodeId: number; digest: string }[]> {
    return this.db.selectFrom('nodeCredentials').select(['nodeId', 'tokenSha256 as digest']).orderBy('nodeId').execute();
  }
}
