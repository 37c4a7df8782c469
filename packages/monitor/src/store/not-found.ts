/** The `NotFoundError`s of the store port, one wording for every adapter and every caller. */
import { NotFoundError } from '@pgha/shared';

/** A formation that does not exist. */
export function noSuchFormation(formationId: string): NotFoundError {
  return new NotFoundError(`formation "${formationId}" does not exist`, {
    hint: `create it first with: pgha create formation ${formationId} (or check --formation)`,
  });
}

/** A node id that does not exist. */
export function noSuchNode(nodeId: number): NotFoundError {
  return new NotFoundError(`node ${nodeId} does not exist`, { hint: 'check the node id, or register the node with pgha keeper create' });
}

/** A node name that does not exist in a formation (or whose node is dropped). */
export function noSuchNodeName(formationId: string, name: string): NotFoundError {
  return new NotFoundError(`node "${name}" does not exist in formation "${formationId}"`, {
    hint: `pgha show state --formation ${formationId} lists its nodes`,
  });
}
