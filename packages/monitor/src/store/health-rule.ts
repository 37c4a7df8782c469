/**
 * The health rule: how probe results change a node's health. One place for every store adapter
 * (see `ProbeRepository.record`). Pure.
 *
 * Source: pg_auto_failover's health check worker (`health_check_worker.c`), which marks a node
 * bad after `health_check_max_retries` failed checks and good at the first success.
 */
import type { NodeHealth } from '@pgha/shared';
import type { MergedProbes, NodeRecord } from './records.js';

/**
 * How often a node's `healthCheckedAt` is written when its probes change nothing (s): a
 * thousand nodes probed twice a second would otherwise be two thousand writes a second that
 * say only "checked again".
 */
export const HEALTH_CHECKED_REFRESH_S = 10;

/** A node's probe state as the rule reads and writes it. */
export type ProbeState = Pick<NodeRecord, 'health' | 'healthFailures' | 'probeInRecovery'>;

/**
 * A node's probe state after `probes`: health turns `bad` once `healthFailures` reaches
 * `retries` (counted up to `retries`), `good` at the first success (which also resets the count
 * to the failures after it); `probeInRecovery` is what the last success saw.
 *
 * ### Examples
 * ```ts
 * nextHealth({ health: 'good', healthFailures: 1, probeInRecovery: false }, { nodeId: 1, reset: false, failures: 1, inRecovery: null, retries: 2 })
 * // { health: 'bad', healthFailures: 2, probeInRecovery: false }
 * nextHealth({ health: 'bad', healthFailures: 2, probeInRecovery: false }, { nodeId: 1, reset: true, failures: 0, inRecovery: true, retries: 2 })
 * // { health: 'good', healthFailures: 0, probeInRecovery: true }
 * ```
 */
export function nextHealth(current: ProbeState, probes: MergedProbes): ProbeState {
  const failures = probes.reset ? probes.failures : current.healthFailures + probes.failures;
  const health: NodeHealth = failures >= probes.retries ? 'bad' : probes.reset ? 'good' : current.health;
  return { health, healthFailures: Math.min(failures, probes.retries), probeInRecovery: probes.reset ? probes.inRecovery : current.probeInRecovery };
}

/**
 * Whether a probe state must be written: it changed, or it was last written more than
 * {@link HEALTH_CHECKED_REFRESH_S} ago (or never).
 *
 * @param checkedAgoMs - since `healthCheckedAt` (ms); null: never written.
 */
export function mustWriteHealth(current: ProbeState, next: ProbeState, checkedAgoMs: number | null): boolean {
  return (
    next.health !== current.health ||
    next.healthFailures !== current.healthFailures ||
    next.probeInRecovery !== current.probeInRecovery ||
    checkedAgoMs === null ||
    checkedAgoMs > HEALTH_CHECKED_REFRESH_S * 1000
  );
}
