/** The Postgres adapter's {@link NodeRepository}: `pgha.nodes`. */
import { ConflictError } from '@pgha/shared';
import { noSuchNode, noSuchNodeName } from '../not-found.js';
import type { NewNode, NodeRecord } from '../records.js';
import type { NodeRepository } from '../store-port.js';
import type { Db } from './db.js';
import { QueryTemplate } from './query-template.js';

const GET_NODE = new QueryTemplate<NodeRecord>((db, p) => db.selectFrom('nodes').selectAll().where('nodeId', '=', p('nodeId')));
const LIST_FORMATION_NODES = new QueryTemplate<NodeRecord>((db, p) =>
  db.selectFrom('nodes').selectAll().where('formationId', '=', p('formationId')).where('goalState', '!=', 'dropped').orderBy('nodeId'),
);
/** Also the second step of a decision on a group (`GroupDriver`), hence a template. */
export const LIST_GROUP_NODES = new QueryTemplate<NodeRecord>((db, p) =>
  db.selectFrom('nodes').selectAll().where('formationId', '=', p('formationId')).where('goalState', '!=', 'dropped').where('groupId', '=', p('groupId')).orderBy('nodeId'),
);

/** Postgres's `unique_violation`. */
const UNIQUE_VIOLATION = '23505';

/** See {@link NodeRepository}. */
export class PgNodeRepository implements NodeRepository {
  constructor(private readonly db: Db) {}

  async get(nodeId: number): Promise<NodeRecord> {
    const row = await GET_NODE.executeTakeFirst(this.db, { nodeId });
    if (!row) throw noSuchNode(nodeId);
    return row;
  }

  async getByName(formationId: string, name: string): Promise<NodeRecord> {
    const row = await this.db.selectFrom('nodes').selectAll().where('formationId', '=', formationId).where('name', '=', name).where('goalState', '!=', 'dropped').executeTakeFirst();
    if (!row) throw noSuchNodeName(formationId, name);
    return row;
  }

  async list(formationId: string, options: { groupId?: number; includeDropped?: boolean } = {}): Promise<NodeRecord[]> {
    if (options.includeDropped) {
      let q = this.db.selectFrom('nodes').selectAll().where('formationId', '=', formationId);
      if (options.groupId !== undefined) q = q.where('groupId', '=', options.groupId);
      return q.orderBy('nodeId').execute();
    }
    if (options.groupId === undefined) return LIST_FORMATION_NODES.execute(this.db, { formationId });
    return LIST_GROUP_NODES.execute(this.db, { formationId, groupId: options.groupId });
  }

  async listAll(): Promise<NodeRecord[]> {
    return this.db.selectFrom('nodes').selectAll().orderBy('nodeId').execute();
  }

  async groupIds(formationId: string): Promise<number[]> {
    const rows = await this.db.selectFrom('nodes').select('groupId').distinct().where('formationId', '=', formationId).where('goalState', '!=', 'dropped').orderBy('groupId').execute();
    return rows.map((r) => r.groupId);
  }

  async findByAddress(host: string, port: number): Promise<NodeRecord | undefined> {
    return this.db.selectFrom('nodes').selectAll().where('host', '=', host).where('port', '=', port).executeTakeFirst();
  }

  /** The unique constraints `nodes_formation_name_key` and `nodes_host_port_key` settle races that the group lock does not (another formation). */
  async insert(formationId: string, node: NewNode): Promise<NodeRecord> {
    try {
      return await this.db.insertInto('nodes').values({ formationId, groupId: 0, ...node }).returningAll().executeTakeFirstOrThrow();
    } catch (err) {
      const { code, constraint } = err as { code?: string; constraint?: string };
      if (code !== UNIQUE_VIOLATION) throw err;
      if (constraint === 'nodes_formation_name_key') {
        throw new ConflictError(`node name "${node.name}" is already taken in formation "${formationId}"`, { hint: 'choose another --name', cause: err });
      }
      throw new ConflictError(`${node.host}:${node.port} is already registered`, { hint: 'choose another --pg-port or --hostname', cause: err });
    }
  }

  async update(nodeId: number, patch: Partial<Pick<NodeRecord, 'postgresSsl' | 'httpAddress' | 'destroyRequested' | 'restartRequest' | 'restartRequestedAt'>>): Promise<NodeRecord> {
    const row = await this.db.updateTable('nodes').set(patch).where('nodeId', '=', nodeId).returningAll().executeTakeFirst();
    if (!row) throw noSuchNode(nodeId);
    return row;
  }

  async remove(nodeId: number): Promise<void> {
    await this.db.deleteFrom('nodes').where('nodeId', '=', nodeId).execute();
  }
}
