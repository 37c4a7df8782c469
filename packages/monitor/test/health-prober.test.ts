/**
 * The health prober's rounds (`prober/health-prober.ts`) against a store that records what it is
 * asked: a probe result that the health rule would not write is not handed to the store, so a
 * round of nodes whose health stays as it is costs the store its targets read alone. The nodes
 * are loopback ports nothing listens on: every probe is refused at once.
 */
import { createServer } from 'node:net';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { GroupDriver } from '../src/driver/group-driver.js';
import { HealthProber } from '../src/prober/health-prober.js';
import { HEALTH_CHECKED_REFRESH_S } from '../src/store/health-rule.js';
import type { MergedProbes, ProbeTargetRecord } from '../src/store/records.js';
import type { ProbeRepository } from '../src/store/store-port.js';

/** A loopback port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A target as a store lists it: node 1 of formation `f`, its keeper never heard and its
 * formation's probe interval 1 ms, so that it is probed in every round.
 */
function target(port: number, probeState: Pick<ProbeTargetRecord, 'health' | 'healthFailures' | 'probeInRecovery' | 'checkedAgoMs'>): ProbeTargetRecord {
  return { nodeId: 1, formationId: 'f', groupId: 0, name: 'a', host: '127.0.0.1', port, reportedState: 'secondary', postgresSsl: false, monitorProbePassword: 'x', settings: { healthProbeIntervalMs: 1 }, sinceReportMs: null, ...probeState };
}

/** A store holding one target, recording each `record` call. */
function fakeProbes(t: ProbeTargetRecord): ProbeRepository & { recorded: MergedProbes[][] } {
  const recorded: MergedProbes[][] = [];
  return {
    recorded,
    targets: async () => [t],
    record: async (results) => {
      recorded.push([...results]);
      return { changed: [], skipped: [] };
    },
  };
}

const driver = { evaluate: async () => [] } as unknown as GroupDriver;
const log = pino({ level: 'silent' });

/**
 * Runs rounds of a prober over the store until its node has been probed `probes` times (each
 * probe fails); what the store was asked to record.
 */
async function probedOver(store: ReturnType<typeof fakeProbes>, probes: number): Promise<MergedProbes[][]> {
  let failed = 0;
  const prober = new HealthProber(store, driver, log, 1, undefined, () => failed++);
  const deadline = performance.now() + 5_000;
  try {
    while (failed < probes) {
      if (performance.now() > deadline) throw new Error(`${failed} probes in 5 s, expected ${probes}`);
      await prober.round();
    }
  } finally {
    prober.stop();
  }
  return store.recorded;
}

describe('HealthProber: results that change nothing are not recorded', () => {
  it('a node already bad whose probes keep failing: the store is asked nothing while its last write is recent', async () => {
    const port = await closedPort();
    const recorded = await probedOver(fakeProbes(target(port, { health: 'bad', healthFailures: 2, probeInRecovery: null, checkedAgoMs: 1_000 })), 3);
    expect(recorded).toEqual([]);
  });

  it(`the same node once its last write is more than ${HEALTH_CHECKED_REFRESH_S} s old: recorded, so that the store refreshes it`, async () => {
    const port = await closedPort();
    const recorded = await probedOver(fakeProbes(target(port, { health: 'bad', healthFailures: 2, probeInRecovery: null, checkedAgoMs: HEALTH_CHECKED_REFRESH_S * 1000 + 1 })), 1);
    expect(recorded).toEqual([[{ nodeId: 1, reset: false, failures: 1, inRecovery: null, retries: 2 }]]);
  });

  it('a node whose probe state has never been written: recorded', async () => {
    const port = await closedPort();
    const recorded = await probedOver(fakeProbes(target(port, { health: 'bad', healthFailures: 2, probeInRecovery: null, checkedAgoMs: null })), 1);
    expect(recorded).toEqual([[{ nodeId: 1, reset: false, failures: 1, inRecovery: null, retries: 2 }]]);
  });

  it('a good node whose probe fails: recorded in each round (the failure count moves, then its health)', async () => {
    const port = await closedPort();
    const recorded = await probedOver(fakeProbes(target(port, { health: 'good', healthFailures: 0, probeInRecovery: false, checkedAgoMs: 1_000 })), 2);
    expect(recorded).toEqual([
      [{ nodeId: 1, reset: false, failures: 1, inRecovery: null, retries: 2 }],
      [{ nodeId: 1, reset: false, failures: 1, inRecovery: null, retries: 2 }],
    ]);
  });
});
