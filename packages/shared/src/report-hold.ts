/**
 * One request per report cycle (issue 17 §3): a keeper's report that also waits for a goal
 * change, as the goal long-poll does.
 *
 * `POST /v1/nodes/:nodeId/report?known=STATE&wait_ms=N[&ack=1]` records the report at once, as
 * any report, and then, when the node's goal is still `known`, holds the answer until the goal
 * changes, the loud-death watch wants a report at once, or `wait_ms` has passed. Every report
 * answer carries {@link REPORT_HOLDS_HEADER} and, when the goal has a revision,
 * {@link GOAL_REVISION_HEADER}.
 *
 * With `ack=1` the status line and headers go out as soon as the report is recorded, with a
 * first body byte (a space, which JSON ignores, so that they pass through a forwarding monitor
 * too), and the goal follows. A keeper whose node may have to fence itself (a writable state)
 * asks for it: it counts its contact with the monitor (its self-fence clock, `docs/timeouts.md`,
 * "Self-fencing") from those headers, so a held answer never makes the monitor look silent. A
 * standby's keeper does not, and its answer is one message: the goal, with
 * {@link REPORT_HELD_HEADER}.
 */

/**
 * Header of every report answer of a monitor that holds reports when asked (`1`): a keeper
 * whose monitor does not send it (an older one, or a report another monitor answered
 * unrecorded) waits for goal changes with a separate long-poll, as before.
 */
export const REPORT_HOLDS_HEADER = 'x-pgha-report-holds';

/**
 * Header of a report answer: the `goalRevision` of the goal the report's decision left, sent
 * before a held body, so that the keeper can tell a stale answer (`fsm/goal-revision-rule.ts`)
 * before it counts it as contact.
 */
export const GOAL_REVISION_HEADER = 'x-pgha-goal-revision';

/** Header of a report answer held without `ack=1`: how long the monitor held it (ms), which the keeper's report time leaves out. */
export const REPORT_HELD_HEADER = 'x-pgha-report-held-ms';
