/**
 * The partition watchdog's schedule, without Postgres: a node that may not be fenced (a standby
 * at rest) is not looked at until its state or goal changes, and one that becomes fenceable is
 * looked at, and fenced, at once when the monitor has been silent too long. The standbys' reply
 * age is read from a socket directory where no Postgres listens: the read fails, as it does
 * when the local Postgres does not answer, and the last known reply (none) counts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_FORMATION_SETTINGS, keeperSettingsOf, type NodeState } from '@pgha/shared';
import { waitFor } from '@pgha/postgres';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { fenceableState, monitorQuietForMs, type PartitionFacts } from '../src/fsm/partition-rule.js';
import type { NodeControl } from '../src/node-control.js';
import { PartitionWatchdog, type WatchdogHost } from '../src/partition-watchdog.js';

const settings = keeperSettingsOf(DEFAULT_FORMATION_SETTINGS);

/** A keeper as the watchdog sees it: its states, the monitor's last answer, and what the watchdog asked of it. */
class FakeKeeper implements WatchdogHost {
  currentState: NodeState = 'secondary';
  goalState: NodeState = 'secondary';
  lastMonitorContactMs: number = Date.now();
  /** Calls of the rule's inputs: each is the watchdog looking. */
  looks = 0;
  /** Times the watchdog woke (each wake asks first whether the node may be fenced). */
  wakes = 0;
  fences: string[] = [];
  watchdog: PartitionWatchdog | undefined;

  /** Changes the node's states as the keeper's loop does, which pokes the watchdog. */
  reach(currentState: NodeState, goalState: NodeState): void {
    this.currentState = currentState;
    this.goalState = goalState;
    this.watchdog?.poke();
  }

  monitorQuietForMs(): number {
    return monitorQuietForMs(this.lastMonitorContactMs, Date.now(), settings);
  }

  mayFence(): boolean {
    this.wakes++;
    return fenceableState(this.currentState, this.goalState);
  }

  partitionFacts(lastStandbyReplyMs: number | null): PartitionFacts {
    this.looks++;
    return { nowMs: Date.now(), currentState: this.currentState, goalState: this.goalState, postgresRunning: true, otherNodes: 1, lastMonitorContactMs: this.lastMonitorContactMs, lastStandbyReplyMs, settings };
  }

  async fence(reason: string): Promise<void> {
    this.fences.push(reason);
  }
}

let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
});

function start(keeper: FakeKeeper): PartitionWatchdog {
  const socketDir = mkdtempSync(join(tmpdir(), 'pgha-watchdog-'));
  const node = { session: { local: { socketDir, port: 1 } } } as unknown as NodeControl;
  const watchdog = new PartitionWatchdog(keeper, node, pino({ level: 'silent' }));
  keeper.watchdog = watchdog;
  watchdog.start();
  stop = async () => {
    await watchdog.stop();
    rmSync(socketDir, { recursive: true, force: true });
  };
  return watchdog;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the partition watchdog', () => {
  it('does not look at a standby whose monitor is silent, until its goal makes it fenceable; then fences it at once', async () => {
    const keeper = new FakeKeeper();
    // Silent for longer than networkPartitionTimeoutMs: a fenceable node would be fenced.
    keeper.lastMonitorContactMs = Date.now() - 10 * settings.networkPartitionTimeoutMs;
    start(keeper);
    await sleep(500);
    expect(keeper.wakes, 'once, at the start').toBe(1);
    expect(keeper.looks).toBe(0);
    expect(keeper.fences).toEqual([]);

    keeper.reach('secondary', 'prepare_promotion');
    await sleep(200);
    expect(keeper.looks, 'prepare_promotion is not a writable goal').toBe(0);

    keeper.reach('prepare_promotion', 'wait_primary');
    await waitFor('the watchdog to fence the node', () => keeper.fences.length > 0, { timeoutMs: 2_000, intervalMs: 10 });
    expect(keeper.fences[0]).toMatch(/^network partition: monitor last answered/);
  });

  it('looks at a primary once the monitor has been quiet for watchStandbysAfterMs, and stops when the node is a standby again', async () => {
    const keeper = new FakeKeeper();
    keeper.currentState = 'primary';
    keeper.goalState = 'primary';
    start(keeper);
    // The monitor answered at the start: the watchdog looks from watchStandbysAfterMs (600 ms) on.
    await waitFor('the watchdog to look at a primary', () => keeper.looks > 0, { timeoutMs: 2_000, intervalMs: 10 });

    keeper.reach('demoted', 'catchingup');
    // A look under way when the node stopped being fenceable ends; no other starts.
    await sleep(300);
    const wakes = keeper.wakes;
    const looks = keeper.looks;
    await sleep(500);
    expect(keeper.wakes).toBe(wakes);
    expect(keeper.looks).toBe(looks);
    expect(keeper.fences).toEqual([]);
  });
});
