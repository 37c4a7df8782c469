/**
 * The keeper's goal-revision rule, pure: a keeper is never driven backwards. Every goal the
 * monitor assigns carries the store revision it was written at (`NodeGoal.goalRevision`: on
 * etcd the mod revision of the commit, on Postgres a sequence value), larger than that of every
 * earlier goal of the node. With several monitors a keeper may hear an old goal after a newer
 * one: from a monitor that lags behind the store, or one that lost its leadership and still
 * answers (a resumed SIGSTOPped process). The keeper keeps the highest revision it has applied
 * (`state.json`, `goalRevision`) and never acts on a lower one.
 *
 * Source: DESIGN.md ("Goals carry the revision they were decided at; a keeper never applies an
 * older one than it already applied"); Patroni compares the cluster's `/leader` key revision
 * before acting on it, and Kubernetes' `resourceVersion` plays the same part for its watchers.
 */

/** What the keeper does with an answered goal. */
export type GoalRevisionVerdict =
  /** Act on it; `appliedRevision` is the highest revision applied from now on (unchanged for a goal without one). */
  | { readonly action: 'apply'; readonly appliedRevision: string | undefined }
  /** Neither act on it nor count it as the monitor's contact; the sentence says why. */
  | { readonly action: 'ignore'; readonly reason: string };

/** A revision as the protocol spells it: the decimal text of a non-negative 64-bit integer. */
const REVISION = /^(0|[1-9][0-9]{0,18})$/;

/**
 * Decides whether the keeper acts on a goal of revision `goalRevision`, having applied
 * `appliedRevision` (both decimal text; undefined: none).
 *
 * - A goal without a revision (a monitor older than revisions) → `apply`, the applied
 *   revision unchanged: it is acted on as before revisions existed.
 * - A revision that is not a non-negative decimal integer → `ignore` (a monitor that sends
 *   one cannot be ordered against the others).
 * - A revision lower than the applied one → `ignore`.
 * - Otherwise → `apply`, and it becomes the applied revision (an equal one is the same goal,
 *   answered again).
 *
 * ### Examples
 * ```ts
 * goalRevisionVerdict('12', '9')  // { action: 'ignore', reason: 'a goal of revision 9 older than the applied 12' }
 * goalRevisionVerdict('12', '15') // { action: 'apply', appliedRevision: '15' }
 * goalRevisionVerdict('12', undefined) // { action: 'apply', appliedRevision: '12' }
 * ```
 */
export function goalRevisionVerdict(appliedRevision: string | undefined, goalRevision: string | undefined): GoalRevisionVerdict {
  if (goalRevision === undefined) return { action: 'apply', appliedRevision };
  if (!REVISION.test(goalRevision)) return { action: 'ignore', reason: `a goal of unreadable revision ${JSON.stringify(goalRevision).slice(0, 40)}` };
  if (appliedRevision !== undefined && REVISION.test(appliedRevision) && BigInt(goalRevision) < BigInt(appliedRevision)) {
    return { action: 'ignore', reason: `a goal of revision ${goalRevision} older than the applied ${appliedRevision}` };
  }
  return { action: 'apply', appliedRevision: goalRevision };
}
