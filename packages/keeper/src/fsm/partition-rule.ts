/**
 * The keeper's network-partition rule, pure: given what the keeper last heard from the monitor
 * and from its standbys, should it do nothing, make its standbys answer, or fence itself?
 * "The monitor" is any monitor of the keeper's list (`--monitor URL,URL,URL`): the monitor
 * counts as lost only when none of them answers (an answer with a goal older than one applied
 * is no answer, see `goal-revision-rule.ts`); its sentences say "monitor" for all of them.
 * Source: DESIGN.md ("A primary keeper that can reach neither the monitor nor any standby for
 * `network_partition_timeout` demotes itself") and pg_auto_failover's
 * `keeper_is_in_network_partition`; the numbers and why they are safe are in
 * docs/timeouts.md ("Self-fencing") and `selfFencingMarginMs`.
 */
import { REPORT_SLACK_MS, WRITABLE_STATES, formatDurationMs, type KeeperSettings, type NodeState } from '@pgha/shared/base';

/** What the rule reads. Times are the keeper's clock, in ms (`Date.now()`); `null` means "never". */
export interface PartitionFacts {
  readonly nowMs: number;
  /** The state the keeper has reached (what it reports). */
  readonly currentState: NodeState;
  /** The monitor's last assigned goal, if the keeper has heard one since it started. */
  readonly goalState: NodeState | undefined;
  /** Is the postmaster running. */
  readonly postgresRunning: boolean;
  /** Other nodes of the group in the monitor's last answer; undefined before the first answer. */
  readonly otherNodes: number | undefined;
  /**
   * Send time of the last report that any monitor of the list answered with a current goal
   * (not its answer time: the monitor recorded that report at or after this moment, and
   * counts the keeper's silence from there).
   */
  readonly lastMonitorContactMs: number | null;
  /** Latest `reply_time` of a streaming walsender (a standby that heard this primary), if known. */
  readonly lastStandbyReplyMs: number | null;
  readonly settings: KeeperSettings;
}

/** What the watchdog does next. */
export type PartitionAction =
  /** Nothing: the node is not a writable primary, or the monitor answers. */
  | { readonly action: 'none'; readonly reason: string }
  /** The monitor is quiet: keep standby replies fresh (write a WAL record) and read them. */
  | { readonly action: 'watch-standbys'; readonly reason: string }
  /** Cut off from the monitor and every standby: stop Postgres at once. */
  | { readonly action: 'fence'; readonly reason: string };

/**
 * Decides the keeper's partition action. A node is fenceable when it has reached, or is
 * assigned, a writable state (`WRITABLE_STATES`: `single`, `wait_primary`, `primary`,
 * `join_primary`, `apply_settings`, `stop_replication`) and its Postgres runs.
 *
 * - Alone in its group (no other node in the monitor's last answer; before any answer, in
 *   `single`) → `none`: nothing can be promoted instead, so a fence would only turn a monitor
 *   outage into a write outage.
 * - Monitor heard within {@link watchStandbysAfterMs} (half of `networkPartitionTimeoutMs`,
 *   and a report's slack) → `none` (never fence while the monitor answers).
 * - Otherwise, while the monitor has been silent less than `networkPartitionTimeoutMs`, or a
 *   standby replied within `networkPartitionTimeoutMs / 2` → `watch-standbys`.
 * - Otherwise → `fence`.
 *
 * The standby bound is half the monitor's because the keeper makes reachable standbys answer
 * every `FENCE_CHECK_INTERVAL_MS` once the monitor is quiet (a tiny WAL record each time):
 * a reachable standby's reply is then a few hundred ms old at most, and a short bound keeps the
 * fence early when a standby was cut a moment after the monitor (`selfFencingMarginMs`).
 *
 * ### Examples
 * ```ts
 * partitionAction({ ...facts, nowMs: 10_000, lastMonitorContactMs: 8_900, lastStandbyReplyMs: 8_000 }).action // 'fence'
 * ```
 */
export function partitionAction(facts: PartitionFacts): PartitionAction {
  const npt = facts.settings.networkPartitionTimeoutMs;
  if (!fenceableState(facts.currentState, facts.goalState)) return { action: 'none', reason: `node is ${facts.currentState}, not a writable primary` };
  if (!facts.postgresRunning) return { action: 'none', reason: 'Postgres is not running' };
  if (facts.otherNodes === 0 || (facts.otherNodes === undefined && facts.currentState === 'single')) {
    return { action: 'none', reason: 'no other node in the group: nothing can be promoted instead' };
  }
  const monitorSilentMs = facts.lastMonitorContactMs === null ? Number.POSITIVE_INFINITY : facts.nowMs - facts.lastMonitorContactMs;
  if (monitorSilentMs < watchStandbysAfterMs(facts.settings)) return { action: 'none', reason: 'the monitor answers' };
  const standbySilentMs = facts.lastStandbyReplyMs === null ? Number.POSITIVE_INFINITY : facts.nowMs - facts.lastStandbyReplyMs;
  const heardMonitor = facts.lastMonitorContactMs === null ? 'never since the keeper started' : `${formatDurationMs(monitorSilentMs)} ago`;
  if (monitorSilentMs < npt) return { action: 'watch-standbys', reason: `monitor last answered ${heardMonitor}` };
  if (standbySilentMs < npt / 2) {
    return { action: 'watch-standbys', reason: `monitor last answered ${heardMonitor}, but a standby replied ${formatDurationMs(standbySilentMs)} ago` };
  }
  const heardStandby = facts.lastStandbyReplyMs === null ? 'no standby streams' : `the last standby reply was ${formatDurationMs(standbySilentMs)} ago`;
  return {
    action: 'fence',
    reason: `network partition: monitor last answered ${heardMonitor} (networkPartitionTimeoutMs ${formatDurationMs(npt)}) and ${heardStandby} (bound ${formatDurationMs(npt / 2)})`,
  };
}

/**
 * Whether a node in `currentState` with goal `goalState` (undefined before the first goal) may
 * be fenced by {@link partitionAction}: it has reached, or is assigned, a writable state
 * (`WRITABLE_STATES`). When it may not, the rule answers `none` whatever the time and the
 * silences, so the watchdog need not look until the state or the goal changes.
 *
 * ### Examples
 * ```ts
 * fenceableState('secondary', 'secondary')         // false
 * fenceableState('secondary', 'prepare_promotion') // false
 * fenceableState('stop_replication', 'wait_primary') // true
 * fenceableState('primary', 'draining')            // true (until it reaches draining)
 * ```
 */
export function fenceableState(currentState: NodeState, goalState: NodeState | undefined): boolean {
  return WRITABLE_STATES.has(currentState) || (goalState !== undefined && WRITABLE_STATES.has(goalState));
}

/**
 * How long the monitor may have been silent before the keeper starts pinging its standbys
 * (`watch-standbys`), in ms: half of `networkPartitionTimeoutMs`, plus the slack of a report's
 * round trip (`REPORT_SLACK_MS`, at most a quarter of the timeout).
 *
 * Why the slack: a keeper reports every `keeperReportIntervalMs` (500 ms by default, half the
 * default timeout), and counts the monitor from the send time of its last answered report; so
 * at every report, for the few ms its answer takes, the monitor has been "silent" a little over
 * half the timeout. Without the slack, an idle primary's watchdog pinged its standbys once per
 * report cycle, a query and a WAL record each time, for nothing (issue 17: idle cost). The
 * fence itself is untouched: it still needs the monitor silent for the whole timeout and the
 * standbys for half of it, and pings that start this much later still refresh a reachable
 * standby's reply well within that half (a quarter of the timeout at least is left for them).
 *
 * ### Examples
 * ```ts
 * watchStandbysAfterMs({ keeperReportIntervalMs: 500, networkPartitionTimeoutMs: 1000 }) // 600
 * watchStandbysAfterMs({ keeperReportIntervalMs: 100, networkPartitionTimeoutMs: 200 }) // 150
 * ```
 */
export function watchStandbysAfterMs(settings: KeeperSettings): number {
  const npt = settings.networkPartitionTimeoutMs;
  return npt / 2 + Math.min(REPORT_SLACK_MS, npt / 4);
}

/**
 * How long from `nowMs` {@link partitionAction} can only answer `none` because the monitor
 * answered recently: `lastMonitorContactMs + watchStandbysAfterMs - nowMs` (ms; 0 or less when
 * the rule must be evaluated now). The watchdog sleeps that long instead of waking every
 * `FENCE_CHECK_INTERVAL_MS`, which cost an idle keeper most of a percent of a core.
 */
export function monitorQuietForMs(lastMonitorContactMs: number | null, nowMs: number, settings: KeeperSettings): number {
  return lastMonitorContactMs === null ? 0 : lastMonitorContactMs + watchStandbysAfterMs(settings) - nowMs;
}
