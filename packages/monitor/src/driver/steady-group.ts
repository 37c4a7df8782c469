/**
 * When a keeper's report may skip its group's decision. A report that changed no fact a
 * decision reads but the time and the LSN (`RecordedReport.factsChanged` false), in a group
 * where every node is where its goal says, healthy by its own report, and heard from within
 * `freshWithinMs` (`store/group-facts.ts`), cannot make a decision differ from the one taken
 * on the previous report: no node changed state, and no timeout is near. The rules that such
 * a group may still meet (a timeout that comes due) are the timer's
 * (`GroupDriver.evaluateAll`, every `keeperReportIntervalMs`), which decides every group that
 * is not steady at its tick, and every group every `STEADY_SWEEP_EVERY_TICKS`-th tick; a report that finds a node of its group silent for longer, or in a transition,
 * decides at once as before. At thousands of keepers, most reports are such heartbeats, and
 * the decision is what each of them would cost beyond its record (docs/monitor-capacity.md).
 *
 * Pure.
 */
import type { FormationSettings } from '@pgha/shared';
import type { NodeRecord } from '../store/records.js';
import { freshWithinMs } from '../store/group-facts.js';

/**
 * Whether a node is where its goal says and healthy by its own report: a primary (or single)
 * running and writable, a secondary running in recovery and streaming.
 */
export function isSteady(n: Pick<NodeRecord, 'reportedState' | 'goalState' | 'postgresRunning' | 'isInRecovery' | 'upstreamStreaming'>): boolean {
  if (n.reportedState !== n.goalState || !n.postgresRunning) return false;
  if (n.goalState === 'primary' || n.goalState === 'single') return n.isInRecovery === false;
  if (n.goalState === 'secondary') return n.isInRecovery === true && n.upstreamStreaming;
  return false;
}

/**
 * Whether a group's decision may be skipped for reports that changed nothing but the time and
 * the LSN (see the module).
 *
 * @param nodes - the group's nodes as read with the reports applied (merged with the monitor's
 *   overlay: `reportedAt` is each keeper's last report).
 * @param nowMs - the clock of the read (ms since the epoch).
 * @param settings - the formation's settings (`nodeUnhealthyTimeoutMs`, `standbyStreamingTimeoutMs`, ms).
 */
export function isSteadyGroup(nodes: readonly NodeRecord[], nowMs: number, settings: Pick<FormationSettings, 'nodeUnhealthyTimeoutMs' | 'standbyStreamingTimeoutMs'>): boolean {
  const freshMs = freshWithinMs(settings);
  return nodes.length > 0 && nodes.every((n) => isSteady(n) && n.reportedAt !== null && nowMs - n.reportedAt.getTime() <= freshMs);
}
