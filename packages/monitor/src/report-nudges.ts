/**
 * Keepers the monitor wants to hear from now rather than at the end of their report interval:
 * their held report (`report-hold.ts`) or goal long-poll is answered at once, with the goal
 * they know, and the keeper reports again at once. Asked by the loud-death watch (a dead node's
 * peers say whether they still stream from it, `prober/loud-death-watch.ts`) and by the group
 * driver (`reportsWanted` of `@pgha/shared`: a switchover's candidate whose LSN is all the
 * promotion waits for).
 */
import type { Waiter } from './store/store-port.js';
import { addWaiter, wake } from './store/waiters.js';

/** Waits of keepers' requests that the monitor may end early, by node id. */
export class ReportNudges {
  private readonly waiters = new Map<number, Set<() => void>>();

  /** Resolved (true) when node `nodeId`'s keeper is asked to report ({@link ask}), else (false) after `timeoutMs` or its `cancel`. */
  waiter(nodeId: number, timeoutMs: number): Waiter {
    return addWaiter(this.waiters, nodeId, timeoutMs);
  }

  /** Asks node `nodeId`'s keeper to report now: ends the waits registered for it; none: nothing happens. */
  ask(nodeId: number): void {
    wake(this.waiters, nodeId);
  }
}
