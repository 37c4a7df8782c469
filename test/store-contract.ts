/**
 * The store port's contract (`packages/monitor/src/store/store-port.ts`), written once and run
 * against every adapter: `describeStoreContract('Postgres', …)` in store-contract.test.ts, and
 * the etcd adapter's next. Each guarantee is checked the way the monitor relies on it:
 *
 * - decisions under the group lock: concurrent decisions on one group run one at a time, and
 *   each reads what the one before committed; another group's decision is not held up;
 * - goals and their events written together: a decision that fails writes neither;
 * - the event stream: an event is readable only once committed, at a fixed place (none read
 *   twice, none passed over, a transaction's events together and in order) however concurrent
 *   transactions commit; event ids resume it;
 * - settings, formations, nodes, credentials, probes, reports: what is written is read back;
 * - registration races: two nodes registering at once with the same name or host:port, one
 *   wins and the other gets a conflict;
 * - the leader's fence, on a store that has one (etcd): a commit with a stale fencing token
 *   writes nothing and throws `PGHA_ERR_NOT_LEADER`.
 *
 * Every test works in formations of its own, so that they share one store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lsn, type Assignment, type NodeReport, type NodeState } from '@pgha/shared';
import {
  STREAM_START,
  changeNumberSyncStandbys,
  changeClientNetworks,
  changePostgresParameters,
  changeTimingSettings,
  formationEvent,
  groupFacts,
  nodeEvent,
  registerNode,
  type EventRecord,
  type MonitorStore,
  type NewEvent,
  type NewNode,
  type NodeRecord,
  type StoreNotifier,
  type StoreTransaction,
} from '@pgha/monitor';
import { waitFor } from './helpers/wait-for.js';

/** A store under test: the port, its notifier, and how to end both. */
export interface ContractStore {
  store: MonitorStore;
  notifier: StoreNotifier;
  stop(): Promise<void>;
  /** A store with a leader's fence (etcd): how a test leads a formation, loses it, and ends the fence. */
  fencing?: {
    /** This store's commits of `formationId` compare a leader key it now holds (a new term). */
    lead(formationId: string): Promise<void>;
    /** Another monitor's term begins for `formationId`: the fencing token held is stale. */
    loseTo(formationId: string): Promise<void>;
    /** No fence any more. */
    clear(): void;
  };
}

/** A promise to wait on, and the function that opens it. */
function latch(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** Settles the promise's outcome as data, so that a test can look at a refusal. */
async function outcome<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: Error & { code?: string } }> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error: error as Error & { code?: string } };
  }
}

const NODE: Omit<NewNode, 'name' | 'port'> = { host: '127.0.0.1', candidatePriority: 50, replicationQuorum: true, postgresSsl: true, httpAddress: null };

function assignment(nodeId: number, goalState: NodeState, rule = 'contract-test'): Assignment {
  return { nodeId, goalState, rule, reason: `node ${nodeId} to ${goalState} (${rule})` };
}

function report(state: NodeState, lsn: string, extra: Partial<NodeReport> = {}): NodeReport {
  return { reportedState: state, postgresRunning: true, isInRecovery: state !== 'single', lsn, timeline: 1, upstreamStreaming: false, transitionInProgress: null, synchronousStandbyNames: null, ...extra };
}

/**
 * Registers the contract's tests for the store `makeStore` opens (once, before them; stopped
 * after them). `fenced`: the store has a leader's fence (`ContractStore.fencing`), checked too.
 * `heartbeats`: the store offers `MonitorStore.recordHeartbeats`, checked too; `whileLocked` is
 * what it does with a report whose group a decision holds: `wait` for it (Postgres), or
 * `leave-out` (etcd: to the report transaction, which waits).
 */
export function describeStoreContract(name: string, makeStore: () => Promise<ContractStore>, options: { fenced?: boolean; heartbeats?: { whileLocked: 'wait' | 'leave-out' } } = {}): void {
  describe(`the store port's contract: ${name}`, () => {
    let opened: ContractStore | undefined;
    let store: MonitorStore;
    let notifier: StoreNotifier;
    /** Ports of new nodes, unique in the whole store. */
    let nextPort = 20_000;

    beforeAll(async () => {
      opened = await makeStore();
      store = opened.store;
      notifier = opened.notifier;
    }, 120_000);

    afterAll(async () => {
      await opened?.stop();
    });

    async function formation(id: string, numberSyncStandbys = 0): Promise<string> {
      expect(await store.formations.create(id, numberSyncStandbys)).toBeDefined();
      return id;
    }

    async function addNode(formationId: string, nodeName: string): Promise<NodeRecord> {
      return store.transaction((tx) => tx.nodes.insert(formationId, { ...NODE, name: nodeName, port: nextPort++ }));
    }

    /** The formation's events after `after`, read until none is held back. */
    async function readAll(formationId: string, after = STREAM_START): Promise<EventRecord[]> {
      const all: EventRecord[] = [];
      let cursor = after;
      for (;;) {
        const batch = await store.stream.readAfter(formationId, cursor, 100);
        all.push(...batch.events);
        cursor = batch.cursor;
        if (batch.events.length === 0 && !batch.heldBack) return all;
      }
    }

    describe('formations', () => {
      it('creates a formation with its own secrets once, reads and lists it, and drops it', async () => {
        const created = (await store.formations.create('c-formation', 1))!;
        expect(created).toMatchObject({ formationId: 'c-formation', kind: 'pgsql', dbname: 'postgres', numberSyncStandbys: 1, settings: {} });
        expect(created.replicationPassword.length).toBeGreaterThanOrEqual(32);
        expect(created.monitorProbePassword.length).toBeGreaterThanOrEqual(32);
        expect(created.replicationPassword).not.toBe(created.monitorProbePassword);
        expect(await store.formations.create('c-formation', 0)).toBeUndefined();
        expect(await store.formations.get('c-formation')).toEqual(created);
        expect((await store.formations.list()).map((f) => f.formationId)).toContain('c-formation');
        const names = (await store.formations.list()).map((f) => f.formationId);
        expect(names).toEqual([...names].sort());
        await store.transaction((tx) => tx.formations.delete('c-formation'));
        await expect(store.formations.get('c-formation')).rejects.toMatchObject({ code: 'PGHA_ERR_NOT_FOUND', message: 'formation "c-formation" does not exist' });
        await expect(store.transaction((tx) => tx.lockFormation('c-formation'))).rejects.toMatchObject({ code: 'PGHA_ERR_NOT_FOUND' });
        expect(store.isUnavailable(new Error('formation "x" does not exist'))).toBe(false);
      });

      it("deleting a formation deletes its nodes", async () => {
        const f = await formation('c-formation-nodes');
        const node = await addNode(f, 'a');
        await store.transaction((tx) => tx.formations.delete(f));
        await expect(store.nodes.get(node.nodeId)).rejects.toMatchObject({ code: 'PGHA_ERR_NOT_FOUND' });
      });
    });

    describe('nodes', () => {
      it('registers a node in init in group 0, and reads it by id, name, group and address', async () => {
        const f = await formation('c-nodes');
        const port = nextPort++;
        const a = await store.transaction((tx) => tx.nodes.insert(f, { ...NODE, name: 'a', port, httpAddress: '127.0.0.1:8101' }));
        expect(a).toMatchObject({ formationId: f, groupId: 0, name: 'a', host: '127.0.0.1', port, reportedState: 'init', goalState: 'init', health: 'unknown', healthFailures: 0, reportedLsn: '0/0', reportedAt: null, postgresSsl: true, httpAddress: '127.0.0.1:8101', destroyRequested: false, reportedProblem: null });
        expect(a.goalChangedAt).toBeInstanceOf(Date);
        const b = await addNode(f, 'b');
        expect(b.nodeId).toBeGreaterThan(a.nodeId);
        expect(await store.nodes.get(a.nodeId)).toEqual(a);
        expect(await store.nodes.getByName(f, 'b')).toEqual(b);
        expect((await store.nodes.list(f)).map((n) => n.name)).toEqual(['a', 'b']);
        expect((await store.nodes.list(f, { groupId: 0 })).map((n) => n.name)).toEqual(['a', 'b']);
        expect(await store.nodes.list(f, { groupId: 1 })).toEqual([]);
        expect(await store.nodes.groupIds(f)).toEqual([0]);
        expect(await store.nodes.findByAddress('127.0.0.1', port)).toEqual(a);
        expect(await store.nodes.findByAddress('127.0.0.1', 1)).toBeUndefined();
        expect((await store.nodes.listAll()).filter((n) => n.formationId === f)).toEqual([a, b]);
        await expect(store.nodes.get(2 ** 31 - 1)).rejects.toMatchObject({ code: 'PGHA_ERR_NOT_FOUND', message: `node ${2 ** 31 - 1} does not exist` });
        await expect(store.nodes.getByName(f, 'nosuch')).rejects.toMatchObject({ code: 'PGHA_ERR_NOT_FOUND', message: `node "nosuch" does not exist in formation "${f}"` });

        const updated = await store.transaction((tx) => tx.nodes.update(b.nodeId, { postgresSsl: false, httpAddress: '127.0.0.1:8102', destroyRequested: true }));
        expect(updated).toMatchObject({ nodeId: b.nodeId, postgresSsl: false, httpAddress: '127.0.0.1:8102', destroyRequested: true });
        await store.transaction((tx) => tx.nodes.remove(b.nodeId));
        await expect(store.nodes.get(b.nodeId)).rejects.toMatchObject({ code: 'PGHA_ERR_NOT_FOUND' });
      });

      it('leaves dropped nodes out of the lists, the groups and the snapshot, but not out of listAll or includeDropped', async () => {
        const f = await formation('c-dropped');
        const a = await addNode(f, 'a');
        const b = await addNode(f, 'b');
        await store.transaction(async (tx) => {
          await tx.lockGroup(f, 0);
          await tx.goals.assign({ formationId: f, groupId: 0 }, [a, b], [assignment(b.nodeId, 'dropped')]);
        });
        expect((await store.nodes.list(f)).map((n) => n.name)).toEqual(['a']);
        expect((await store.nodes.list(f, { includeDropped: true })).map((n) => n.name)).toEqual(['a', 'b']);
        await expect(store.nodes.getByName(f, 'b')).rejects.toMatchObject({ code: 'PGHA_ERR_NOT_FOUND' });
        expect((await store.nodes.listAll()).some((n) => n.nodeId === b.nodeId)).toBe(true);
        const snapshot = await store.snapshot();
        expect(snapshot.nodes.filter((n) => n.formationId === f).map((n) => n.name)).toEqual(['a']);
        expect(snapshot.formations.some((x) => x.formationId === f)).toBe(true);
        expect(Math.abs(snapshot.nowMs - Date.now())).toBeLessThan(60_000);
        const read = await store.transaction(async (tx) => {
          await tx.lockGroup(f, 0);
          return tx.readGroup(f, 0);
        });
        expect(read).toMatchObject({ formationId: f, groupId: 0, formation: { formationId: f } });
        expect(read.nodes.map((n) => n.name)).toEqual(['a']);
        expect(Math.abs(read.nowMs - Date.now())).toBeLessThan(60_000);
        await expect(store.transaction((tx) => tx.readGroup('c-no-such-formation', 0))).rejects.toMatchObject({ code: 'PGHA_ERR_NOT_FOUND' });
      });
    });

    describe('registration races', () => {
      /** Runs `work` in two transactions that both start before either writes. */
      async function together<T>(work: (tx: StoreTransaction, i: number) => Promise<T>) {
        let started = 0;
        const both = latch();
        return Promise.all(
          [0, 1].map((i) =>
            outcome(
              store.transaction(async (tx) => {
                await tx.nowMs();
                if (++started === 2) both.open();
                await both.wait;
                return work(tx, i);
              }),
            ),
          ),
        );
      }

      function oneWins<T>(results: Awaited<ReturnType<typeof outcome<T>>>[]): Error & { code?: string } {
        expect(results.filter((r) => r.ok)).toHaveLength(1);
        const lost = results.find((r) => !r.ok) as { ok: false; error: Error & { code?: string } };
        expect(lost.error.code).toBe('PGHA_ERR_CONFLICT');
        return lost.error;
      }

      it('two nodes inserted at once with the same name in one formation: one wins, the other gets a conflict', async () => {
        const f = await formation('c-race-name');
        const results = await together((tx) => tx.nodes.insert(f, { ...NODE, name: 'twin', port: nextPort++ }));
        expect(oneWins(results).message).toMatch(/node name "twin" is already taken in formation "c-race-name"/);
        expect((await store.nodes.list(f)).map((n) => n.name)).toEqual(['twin']);
      });

      it('two nodes inserted at once with the same host:port in two formations: one wins, the other gets a conflict', async () => {
        const f1 = await formation('c-race-port-1');
        const f2 = await formation('c-race-port-2');
        const port = nextPort++;
        const results = await together((tx, i) => tx.nodes.insert(i === 0 ? f1 : f2, { ...NODE, name: `n${i}`, port }));
        expect(oneWins(results).message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port} is already registered`));
        expect([...(await store.nodes.list(f1)), ...(await store.nodes.list(f2))]).toHaveLength(1);
      });

      it('two keepers registering at once under the group lock, same name or same host:port: one registered, one refused', async () => {
        const f = await formation('c-race-register');
        const register = (tx: StoreTransaction, req: { name: string; port: number }) =>
          tx.lockGroup(f, 0).then(() => registerNode(tx, f, { ...req, host: '127.0.0.1', candidatePriority: 50, replicationQuorum: true }));
        const port = nextPort++;
        const sameName = await together((tx, i) => register(tx, { name: 'same-name', port: port + 1000 * (i + 1) }));
        expect(oneWins(sameName).message).toMatch(/node name "same-name" is already taken/);
        const samePort = await together((tx, i) => register(tx, { name: `port-${i}`, port }));
        expect(oneWins(samePort).message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port} is already registered as node`));
        expect((await store.nodes.list(f)).length).toBe(2);
        // The same node registering again (a retried keeper create) is no conflict.
        const again = await store.transaction((tx) => register(tx, { name: 'same-name', port: (sameName.find((r) => r.ok) as { value: { node: NodeRecord } }).value.node.port }));
        expect(again.created).toBe(false);
      });
    });

    describe('decisions under the group lock', () => {
      it('run one at a time on one group, each reading what the one before committed', async () => {
        const f = await formation('c-lock');
        const node = await addNode(f, 'a');
        const decisions = 8;
        let inside = 0;
        let mostInside = 0;
        await Promise.all(
          Array.from({ length: decisions }, () =>
            store.transaction(async (tx) => {
              await tx.lockGroup(f, 0);
              inside++;
              mostInside = Math.max(mostInside, inside);
              const { nodes } = await tx.readGroup(f, 0);
              const priority = nodes[0]!.candidatePriority;
              // A few more round trips while holding the lock: others must wait.
              await tx.nowMs();
              await tx.nowMs();
              await tx.settings.setNodeReplication(node.nodeId, { candidatePriority: priority + 1, replicationQuorum: true });
              inside--;
            }),
          ),
        );
        expect(mostInside).toBe(1);
        expect((await store.nodes.get(node.nodeId)).candidatePriority).toBe(node.candidatePriority + decisions);
      });

      it("do not hold up another group's or another formation's decision", async () => {
        const f = await formation('c-lock-others');
        const g = await formation('c-lock-others-2');
        await store.transaction(async (tx) => {
          await tx.lockGroup(f, 0);
          // Would never finish if these waited for the lock held here.
          await store.transaction((other) => other.lockGroup(f, 1));
          await store.transaction((other) => other.lockGroup(g, 0));
          await store.transaction((other) => other.lockFormation(f));
        });
        // And a lock ends with its transaction, also a failed one.
        await outcome(store.transaction(async (tx) => {
          await tx.lockGroup(f, 0);
          throw new Error('decision failed');
        }));
        await store.transaction((tx) => tx.lockGroup(f, 0));
      });
    });

    describe('goals and their events', () => {
      it('are written together: each goal with its event, a node assigned twice gets its last goal and both events in order', async () => {
        const f = await formation('c-goals');
        const a = await addNode(f, 'a');
        const b = await addNode(f, 'b');
        const before = await store.nowMs();
        await store.transaction(async (tx) => {
          await tx.lockGroup(f, 0);
          const { nodes } = await tx.readGroup(f, 0);
          await tx.goals.assign({ formationId: f, groupId: 0 }, nodes, [assignment(a.nodeId, 'single'), assignment(b.nodeId, 'wait_standby'), assignment(a.nodeId, 'wait_primary'), assignment(999_999, 'primary')]);
        });
        const [na, nb] = [await store.nodes.get(a.nodeId), await store.nodes.get(b.nodeId)];
        expect(na.goalState).toBe('wait_primary');
        expect(nb.goalState).toBe('wait_standby');
        expect(na.goalChangedAt.getTime()).toBeGreaterThanOrEqual(Math.floor(before) - 1000);
        const events = await store.stream.latest(f, 10);
        expect(events.map((e) => [e.nodeId, e.nodeName, e.oldGoalState, e.newGoalState, e.reportedState, e.reportedLsn, e.rule])).toEqual([
          [a.nodeId, 'a', 'init', 'single', 'init', '0/0', 'contract-test'],
          [b.nodeId, 'b', 'init', 'wait_standby', 'init', '0/0', 'contract-test'],
          [a.nodeId, 'a', 'single', 'wait_primary', 'init', '0/0', 'contract-test'],
        ]);
        expect(events[0]!.reason).toBe(`node ${a.nodeId} to single (contract-test)`);
        expect(events.every((e) => e.formationId === f && e.groupId === 0 && e.eventTime instanceof Date)).toBe(true);
      });

      it('give every goal write of a node a larger revision than all its earlier ones, and answer one above the last and not above the one read after commit', async () => {
        const f = await formation('c-goal-revisions');
        const a = await addNode(f, 'a');
        const b = await addNode(f, 'b');
        expect(a.goalRevision).toMatch(/^\d+$/);
        const revisionOf = async (nodeId: number): Promise<bigint> => BigInt((await store.nodes.get(nodeId)).goalRevision);
        const bBefore = await revisionOf(b.nodeId);
        let last = await revisionOf(a.nodeId);
        for (const goal of ['single', 'wait_primary', 'primary'] as const) {
          const answered = await store.transaction(async (tx) => {
            await tx.lockGroup(f, 0);
            const { nodes } = await tx.readGroup(f, 0);
            return tx.goals.assign({ formationId: f, groupId: 0 }, nodes, [assignment(a.nodeId, goal)]);
          });
          const now = await revisionOf(a.nodeId);
          expect(now).toBeGreaterThan(last);
          expect([...answered.keys()]).toEqual([a.nodeId]);
          expect(BigInt(answered.get(a.nodeId)!)).toBeGreaterThan(last);
          expect(BigInt(answered.get(a.nodeId)!)).toBeLessThanOrEqual(now);
          last = now;
        }
        expect(await revisionOf(b.nodeId)).toBe(bBefore);
      });

      it('a decision that fails writes neither goals nor events', async () => {
        const f = await formation('c-goals-fail');
        const a = await addNode(f, 'a');
        await expect(
          store.transaction(async (tx) => {
            await tx.lockGroup(f, 0);
            const { nodes } = await tx.readGroup(f, 0);
            await tx.goals.assign({ formationId: f, groupId: 0 }, nodes, [assignment(a.nodeId, 'single')]);
            await tx.events.append([nodeEvent(a, 'contract-note', 'a note in the failed decision')]);
            throw new Error('decision failed after writing');
          }),
        ).rejects.toThrow('decision failed after writing');
        expect((await store.nodes.get(a.nodeId)).goalState).toBe('init');
        expect(await store.stream.latest(f, 10)).toEqual([]);
        expect(await readAll(f)).toEqual([]);
      });

      it("are read with the node's formation and group: a keeper woken by a goal's commit reads that goal, from the store or a leading monitor's copy of it", async () => {
        const f = await formation('c-goals-read');
        const a = await addNode(f, 'a');
        const b = await addNode(f, 'b');
        for (const options of [{}, { mirrored: true }]) {
          const read = await store.readNodeGroup(a.nodeId, options);
          expect([read.node.nodeId, read.node.goalState, read.formation.formationId, read.nodes.map((n) => n.nodeId)]).toEqual([a.nodeId, 'init', f, [a.nodeId, b.nodeId]]);
        }
        const waiter = notifier.waiter(a.nodeId, 60_000);
        try {
          await store.transaction(async (tx) => {
            await tx.lockGroup(f, 0);
            await tx.goals.assign({ formationId: f, groupId: 0 }, [a, b], [assignment(a.nodeId, 'single')]);
          });
          expect(await waiter.promise).toBe(true);
        } finally {
          waiter.cancel();
        }
        expect((await store.readNodeGroup(a.nodeId, { mirrored: true })).node.goalState).toBe('single');
        expect((await store.readNodeGroup(a.nodeId)).node.goalState).toBe('single');
        await expect(store.readNodeGroup(999_999, { mirrored: true })).rejects.toMatchObject({ code: 'PGHA_ERR_NOT_FOUND', message: 'node 999999 does not exist' });
      });

      it("wake the node's keeper when they commit, not before", async () => {
        const f = await formation('c-goals-notify');
        const a = await addNode(f, 'a');
        const waiter = notifier.waiter(a.nodeId, 60_000);
        const events = notifier.eventWaiter(f, 60_000);
        let woken = false;
        let eventsWoken = false;
        void waiter.promise.then(() => (woken = true));
        void events.promise.then(() => (eventsWoken = true));
        try {
          await store.transaction(async (tx) => {
            await tx.lockGroup(f, 0);
            await tx.goals.assign({ formationId: f, groupId: 0 }, [a], [assignment(a.nodeId, 'single')]);
            // A round trip of the store on another connection, then a turn of the event loop.
            await store.nowMs();
            await new Promise((r) => setImmediate(r));
            expect(woken).toBe(false);
            expect(eventsWoken).toBe(false);
          });
          await waitFor('the goal notification', () => woken && eventsWoken, { timeoutMs: 10_000, intervalMs: 20 });
        } finally {
          waiter.cancel();
          events.cancel();
        }
      });
    });

    describe('the event stream', () => {
      const event = (f: string, reason: string): NewEvent => formationEvent(f, 'contract-test', reason);

      it("gives one transaction's events together, in the order written, only once it commits", async () => {
        const f = await formation('c-stream');
        const other = await formation('c-stream-other');
        const start = await store.stream.readLast(f, 0);
        expect(start.events).toEqual([]);
        const written = latch();
        const commit = latch();
        const tx = store.transaction(async (t) => {
          await t.events.append([event(f, 'one'), event(other, 'elsewhere'), event(f, 'two')]);
          await t.events.append([event(f, 'three')]);
          written.open();
          await commit.wait;
        });
        await written.wait;
        expect((await store.stream.readAfter(f, start.cursor, 100)).events).toEqual([]);
        expect(await store.stream.latest(f, 10)).toEqual([]);
        commit.open();
        await tx;
        const events = await readAll(f, start.cursor);
        expect(events.map((e) => e.reason)).toEqual(['one', 'two', 'three']);
        expect(events.map((e) => BigInt(e.eventId))).toEqual(events.map((e) => BigInt(e.eventId)).sort((x, y) => (x < y ? -1 : 1)));
        expect(events[0]).toMatchObject({ formationId: f, groupId: 0, nodeId: 0, nodeName: '(formation)', rule: 'contract-test' });
        expect((await readAll(other)).map((e) => e.reason)).toEqual(['elsewhere']);
        expect((await store.stream.latest(f, 2)).map((e) => e.reason)).toEqual(['two', 'three']);
        const last = await store.stream.readLast(f, 2);
        expect(last.events.map((e) => e.reason)).toEqual(['two', 'three']);
        expect((await store.stream.readAfter(f, last.cursor, 100)).events).toEqual([]);
        expect((await store.stream.readLast(f, 0)).cursor).toEqual(last.cursor);
      });

      it('passes over no event of a transaction that commits after a later one, and reads none twice', async () => {
        const f = await formation('c-stream-order');
        const olderWrote = latch();
        const olderCommit = latch();
        const older = store.transaction(async (tx) => {
          await tx.events.append([event(f, 'older, committed last')]);
          olderWrote.open();
          await olderCommit.wait;
        });
        await olderWrote.wait;
        await store.transaction((tx) => tx.events.append([event(f, 'newer, committed first')]));
        const first = await store.stream.readAfter(f, STREAM_START, 100);
        olderCommit.open();
        await older;
        const rest = await readAll(f, first.cursor);
        const seen = [...first.events, ...rest].map((e) => e.reason);
        expect([...seen].sort()).toEqual(['newer, committed first', 'older, committed last']);
        // Resuming after each event id gives exactly what the stream gave after it.
        const all = await readAll(f);
        expect(all.map((e) => e.reason)).toEqual(seen);
        for (const [i, e] of all.entries()) {
          expect((await readAll(f, await store.stream.cursorAfterEvent(BigInt(e.eventId)))).map((x) => x.reason)).toEqual(seen.slice(i + 1));
        }
      });

      it('gives every event of many concurrent transactions exactly once to a reader following it, each transaction together and in order', async () => {
        const f = await formation('c-stream-concurrent');
        const writers = 6;
        const perWriter = 3;
        let done = false;
        const followed: EventRecord[] = [];
        const reader = (async () => {
          let cursor = STREAM_START;
          for (;;) {
            const finished = done;
            const batch = await store.stream.readAfter(f, cursor, 7);
            followed.push(...batch.events);
            cursor = batch.cursor;
            if (finished && batch.events.length === 0 && !batch.heldBack) return;
          }
        })();
        await Promise.all(
          Array.from({ length: writers }, (_, w) =>
            store.transaction(async (tx) => {
              for (let i = 0; i < perWriter; i++) {
                await tx.events.append([event(f, `w${w}-${i}`)]);
                // Interleave the writers' statements.
                for (let k = 0; k < (w + i) % 3; k++) await tx.nowMs();
              }
            }),
          ),
        );
        done = true;
        await reader;
        const reasons = followed.map((e) => e.reason);
        expect(reasons).toHaveLength(writers * perWriter);
        expect(new Set(reasons).size).toBe(writers * perWriter);
        for (let w = 0; w < writers; w++) {
          const at = reasons.indexOf(`w${w}-0`);
          expect(reasons.slice(at, at + perWriter)).toEqual(Array.from({ length: perWriter }, (_, i) => `w${w}-${i}`));
        }
        expect((await readAll(f)).map((e) => e.reason)).toEqual(reasons);
      });

      it('resumes after an event id that is gone with the next event, and from the start before every event', async () => {
        const f = await formation('c-stream-resume');
        await store.transaction((tx) => tx.events.append([event(f, 'a'), event(f, 'b')]));
        const [a, b] = await readAll(f);
        expect((await readAll(f, await store.stream.cursorAfterEvent(0n))).map((e) => e.reason)).toEqual(['a', 'b']);
        expect((await readAll(f, await store.stream.cursorAfterEvent(BigInt(a!.eventId)))).map((e) => e.reason)).toEqual(['b']);
        expect((await readAll(f, await store.stream.cursorAfterEvent(BigInt(b!.eventId) + 1000n))).map((e) => e.reason)).toEqual([]);
      });

      it('finds the last event of a rule in a group', async () => {
        const f = await formation('c-stream-rule');
        const a = await addNode(f, 'a');
        await store.transaction((tx) => tx.events.append([nodeEvent(a, 'group-note', 'first note'), nodeEvent(a, 'other', 'x'), nodeEvent(a, 'group-note', 'second note')]));
        expect((await store.stream.lastOfRule(f, 0, 'group-note'))?.reason).toBe('second note');
        expect(await store.stream.lastOfRule(f, 1, 'group-note')).toBeUndefined();
        expect(await store.stream.lastOfRule(f, 0, 'no-such-rule')).toBeUndefined();
      });

      it('counts failovers and switchovers after a cursor, per formation, one per operation', async () => {
        const f = await formation('c-operations');
        const a = await addNode(f, 'a');
        const b = await addNode(f, 'b');
        const start = await store.stream.countOperationsAfter(STREAM_START);
        const base = (kind: string) => start.counts.filter((c) => c.formationId === f && c.kind === kind).reduce((n, c) => n + c.n, 0);
        expect(base('failover') + base('switchover')).toBe(0);
        await store.transaction((tx) =>
          tx.events.append([
            nodeEvent(a, 'perform-switchover', 'stops', 'draining'),
            nodeEvent(b, 'perform-switchover', 'promotes', 'prepare_promotion'),
            nodeEvent(b, 'failover-start', 'failed', 'demote_timeout'),
            nodeEvent(a, 'failover-start', 'promotes', 'prepare_promotion'),
            nodeEvent(b, 'enable-maintenance', 'standby maintenance', 'wait_maintenance'),
          ]),
        );
        const counted = await store.stream.countOperationsAfter(start.cursor);
        expect(counted.counts.filter((c) => c.formationId === f).sort((x, y) => x.kind.localeCompare(y.kind))).toEqual([
          { formationId: f, kind: 'failover', n: 1 },
          { formationId: f, kind: 'switchover', n: 1 },
        ]);
        expect((await store.stream.countOperationsAfter(counted.cursor)).counts.filter((c) => c.formationId === f)).toEqual([]);
      });
    });

    describe('settings', () => {
      it("changes a formation's number_sync_standbys and a node's replication settings, and a refused change writes nothing", async () => {
        const f = await formation('c-settings');
        const a = await addNode(f, 'a');
        await store.transaction(async (tx) => {
          await tx.lockFormation(f);
          await tx.lockGroup(f, 0);
          await tx.settings.setNumberSyncStandbys(f, 2);
          await tx.settings.setNodeReplication(a.nodeId, { candidatePriority: 0, replicationQuorum: false });
        });
        expect((await store.formations.get(f)).numberSyncStandbys).toBe(2);
        expect(await store.nodes.get(a.nodeId)).toMatchObject({ candidatePriority: 0, replicationQuorum: false });
        await store.transaction((tx) => tx.settings.setNumberSyncStandbys(f, 0));

        // number_sync_standbys 1 with a single node: refused (ConflictError), nothing written.
        const refused = await outcome(store.transaction(async (tx) => changeNumberSyncStandbys(tx, await tx.lockFormation(f), 1)));
        expect(refused.ok).toBe(false);
        expect((refused as { error: { code?: string } }).error.code).toBe('PGHA_ERR_CONFLICT');
        expect((await store.formations.get(f)).numberSyncStandbys).toBe(0);
        expect(await store.stream.latest(f, 10)).toEqual([]);
      });

      it("changes a formation's timing settings with their events, and a combination that does not fit writes nothing", async () => {
        const f = await formation('c-timing');
        await addNode(f, 'a');
        const changes = await store.transaction(async (tx) => changeTimingSettings(tx, await tx.lockFormation(f), { nodeUnhealthyTimeoutMs: 2500, healthProbeRetries: 3 }));
        expect(changes).toEqual([`node-unhealthy-timeout of formation "${f}" set from 2000 ms to 2500 ms`, `health-probe-retries of formation "${f}" set from 2 to 3`]);
        expect((await store.formations.get(f)).settings).toEqual({ nodeUnhealthyTimeoutMs: 2500, healthProbeRetries: 3 });
        expect((await store.stream.latest(f, 10)).map((e) => e.reason)).toEqual(changes);

        const refused = await outcome(store.transaction(async (tx) => changeTimingSettings(tx, await tx.lockFormation(f), { nodeUnhealthyTimeoutMs: 1000 })));
        expect(refused.ok).toBe(false);
        expect((refused as { error: { code?: string } }).error.code).toBe('PGHA_ERR_VALIDATION');
        expect((await store.formations.get(f)).settings).toEqual({ nodeUnhealthyTimeoutMs: 2500, healthProbeRetries: 3 });
        expect(await store.stream.latest(f, 10)).toHaveLength(2);

        // Both lowered at once: keepers would still fence after 2000 ms while the monitor counts them silent after 2000 ms.
        const wide = { nodeUnhealthyTimeoutMs: 3000, networkPartitionTimeoutMs: 2000, standbyStreamingTimeoutMs: 4000 };
        await store.transaction(async (tx) => changeTimingSettings(tx, await tx.lockFormation(f), wide));
        const both = await outcome(store.transaction(async (tx) => changeTimingSettings(tx, await tx.lockFormation(f), { nodeUnhealthyTimeoutMs: 2000, networkPartitionTimeoutMs: 1000 })));
        expect(both.ok).toBe(false);
        expect((both as { error: Error }).error.message).toMatch(/until every keeper has taken the new settings, a primary cut off .* as late as 2300 ms/);
        expect((await store.formations.get(f)).settings).toMatchObject(wide);
        await store.transaction(async (tx) => changeTimingSettings(tx, await tx.lockFormation(f), { networkPartitionTimeoutMs: 1000 }));
        await store.transaction(async (tx) => changeTimingSettings(tx, await tx.lockFormation(f), { nodeUnhealthyTimeoutMs: 2000 }));
        expect((await store.formations.get(f)).settings).toMatchObject({ nodeUnhealthyTimeoutMs: 2000, networkPartitionTimeoutMs: 1000 });
      });

      it("changes a formation's client networks with their event, adds a node's to them, and keeps them across reads", async () => {
        const f = await formation('c-clients');
        expect((await store.formations.get(f)).clientNetworks).toEqual([]);
        await addNode(f, 'a');
        const set = await store.transaction(async (tx) => changeClientNetworks(tx, await tx.lockFormation(f), ['10.20.0.0/16', 'fd00::/8']));
        expect(set).toEqual({ changes: [`client networks of formation "${f}" set from none to 10.20.0.0/16,fd00::/8`], warnings: [] });
        expect((await store.formations.get(f)).clientNetworks).toEqual(['10.20.0.0/16', 'fd00::/8']);
        expect((await store.formations.list()).find((x) => x.formationId === f)?.clientNetworks).toEqual(['10.20.0.0/16', 'fd00::/8']);
        // The same list again: nothing written.
        expect(await store.transaction(async (tx) => changeClientNetworks(tx, await tx.lockFormation(f), ['10.20.0.0/16', 'fd00::/8']))).toEqual({ changes: [], warnings: [] });
        // A node's networks join the formation's, each once.
        await store.transaction(async (tx) => changeClientNetworks(tx, await tx.lockFormation(f), ['fd00::/8', '10.30.0.5/32'], { add: true }));
        expect((await store.formations.get(f)).clientNetworks).toEqual(['10.20.0.0/16', 'fd00::/8', '10.30.0.5/32']);
        await store.transaction(async (tx) => changeClientNetworks(tx, await tx.lockFormation(f), []));
        expect((await store.formations.get(f)).clientNetworks).toEqual([]);
        expect((await store.stream.latest(f, 10)).map((e) => e.reason)).toEqual([
          set.changes[0],
          `client networks of formation "${f}" set from 10.20.0.0/16,fd00::/8 to 10.20.0.0/16,fd00::/8,10.30.0.5/32`,
          `client networks of formation "${f}" set from 10.20.0.0/16,fd00::/8,10.30.0.5/32 to none`,
        ]);
      });

      it('a transaction that fails after changing client networks writes neither them nor their event', async () => {
        const f = await formation('c-clients-rollback');
        const failed = await outcome(store.transaction(async (tx) => {
          await changeClientNetworks(tx, await tx.lockFormation(f), ['10.20.0.0/16']);
          throw new Error('refused later in the same change');
        }));
        expect(failed.ok).toBe(false);
        expect((await store.formations.get(f)).clientNetworks).toEqual([]);
        expect(await store.stream.latest(f, 10)).toEqual([]);
      });

      it("sets and resets a formation's Postgres parameters and a node's own, with their events, and a failed change writes nothing", async () => {
        const f = await formation('c-parameters');
        const a = await addNode(f, 'a');
        expect((await store.formations.get(f)).postgresParameters).toEqual([]);
        expect(await store.nodes.get(a.nodeId)).toMatchObject({ postgresParameters: [], reportedParameters: null });

        const set = (update: { name?: string; parameters: { name: string; value: string | null }[] }) => store.transaction(async (tx) => changePostgresParameters(tx, await tx.lockFormation(f), update));
        const searchPath = `"$user", public, 'it''s'`;
        expect(await set({ parameters: [{ name: 'work_mem', value: '8MB' }, { name: 'search_path', value: searchPath }] })).toEqual([
          `Postgres parameter work_mem of formation "${f}" set to 8MB`,
          `Postgres parameter search_path of formation "${f}" set to ${searchPath}`,
        ]);
        // By name; the names keep their underscores (no key is re-cased).
        expect((await store.formations.get(f)).postgresParameters).toEqual([{ name: 'search_path', value: searchPath }, { name: 'work_mem', value: '8MB' }]);
        expect(await set({ name: 'a', parameters: [{ name: 'work_mem', value: '16MB' }] })).toEqual([`Postgres parameter work_mem of node ${a.nodeId} "a" set to 16MB`]);
        expect((await store.nodes.get(a.nodeId)).postgresParameters).toEqual([{ name: 'work_mem', value: '16MB' }]);
        expect((await store.nodes.getByName(f, 'a')).postgresParameters).toEqual([{ name: 'work_mem', value: '16MB' }]);
        expect(await set({ parameters: [{ name: 'work_mem', value: '8MB' }] })).toEqual([]);
        expect(await set({ parameters: [{ name: 'work_mem', value: '4MB' }, { name: 'search_path', value: null }] })).toEqual([
          `Postgres parameter work_mem of formation "${f}" set from 8MB to 4MB`,
          `Postgres parameter search_path of formation "${f}" reset (was ${searchPath})`,
        ]);
        expect((await store.formations.get(f)).postgresParameters).toEqual([{ name: 'work_mem', value: '4MB' }]);
        const events = (await store.stream.latest(f, 10)).map((e) => [e.nodeId, e.rule, e.reason]);
        expect(events).toHaveLength(5);
        expect(events[2]).toEqual([a.nodeId, 'settings-changed', `Postgres parameter work_mem of node ${a.nodeId} "a" set to 16MB`]);

        // A transaction that fails after the change writes neither the parameters nor their events.
        const failed = await outcome(store.transaction(async (tx) => {
          await changePostgresParameters(tx, await tx.lockFormation(f), { parameters: [{ name: 'work_mem', value: '1GB' }] });
          await changePostgresParameters(tx, await tx.lockFormation(f), { name: 'a', parameters: [{ name: 'work_mem', value: null }] });
          throw new Error('refused later');
        }));
        expect(failed.ok).toBe(false);
        expect((await store.formations.get(f)).postgresParameters).toEqual([{ name: 'work_mem', value: '4MB' }]);
        expect((await store.nodes.get(a.nodeId)).postgresParameters).toEqual([{ name: 'work_mem', value: '16MB' }]);
        expect(await store.stream.latest(f, 10)).toHaveLength(5);

        // A keeper's report of its parameters is recorded as it came, and a report without them clears it.
        const reported = { pendingRestart: ['shared_buffers'], running: [{ name: 'max_connections', value: '100' }, { name: 'work_mem', value: '16MB' }] };
        await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: report('single', '0/3000060', { parameters: reported }) }]));
        expect((await store.nodes.get(a.nodeId)).reportedParameters).toEqual(reported);
        expect((await store.snapshot()).nodes.find((n) => n.nodeId === a.nodeId)!.reportedParameters).toEqual(reported);
        await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: report('single', '0/3000060') }]));
        expect((await store.nodes.get(a.nodeId)).reportedParameters).toBeNull();
      });

      it("wakes the keepers of a settings change's nodes at commit", async () => {
        const f = await formation('c-settings-notify');
        const a = await addNode(f, 'a');
        const waiter = notifier.waiter(a.nodeId, 60_000);
        let woken = false;
        void waiter.promise.then(() => (woken = true));
        try {
          await store.transaction((tx) => tx.goals.notify([a.nodeId]));
          await waitFor('the notification', () => woken, { timeoutMs: 10_000, intervalMs: 20 });
        } finally {
          waiter.cancel();
        }
      });
    });

    // Registered only for a store with a fence (etcd); the Postgres store serves one monitor.
    if (options.fenced) describe("the leader's fence", () => {
      it('a commit of a formation with a stale fencing token writes nothing and throws PGHA_ERR_NOT_LEADER; with the current one it commits', async () => {
        const fencing = opened!.fencing!;
        const f = await formation('c-fence');
        const a = await addNode(f, 'a');
        const decide = (goal: NodeState) =>
          store.transaction(async (tx) => {
            await tx.lockGroup(f, 0);
            const { nodes } = await tx.readGroup(f, 0);
            await tx.goals.assign({ formationId: f, groupId: 0 }, nodes, [assignment(a.nodeId, goal)]);
          });
        await fencing.lead(f);
        try {
          await decide('single');
          expect((await store.nodes.get(a.nodeId)).goalState).toBe('single');
          await fencing.loseTo(f);
          const refused = await outcome(decide('wait_primary'));
          expect(refused.ok).toBe(false);
          expect((refused as { error: { code?: string } }).error.code).toBe('PGHA_ERR_NOT_LEADER');
          expect((await store.nodes.get(a.nodeId)).goalState).toBe('single');
          expect((await store.stream.latest(f, 10)).map((e) => e.newGoalState)).toEqual(['single']);
          // Another formation, not fenced, still commits.
          const g = await formation('c-fence-other');
          await addNode(g, 'b');
        } finally {
          fencing.clear();
        }
      });
    });

    describe('credentials', () => {
      it('finds a node by its token digest; a new digest replaces the old; the node takes its credentials with it', async () => {
        const f = await formation('c-credentials');
        const a = await addNode(f, 'a');
        const [d1, d2] = ['1'.repeat(64), '2'.repeat(64)];
        await store.transaction((tx) => tx.credentials.issue(a.nodeId, d1));
        expect(await store.credentials.ownerOf(d1)).toBe(a.nodeId);
        await store.transaction((tx) => tx.credentials.issue(a.nodeId, d2));
        expect(await store.credentials.ownerOf(d1)).toBeUndefined();
        expect(await store.credentials.ownerOf(d2)).toBe(a.nodeId);
        await store.transaction((tx) => tx.nodes.remove(a.nodeId));
        expect(await store.credentials.ownerOf(d2)).toBeUndefined();
      });

      it("lists every node's current digest by node id, and none of a removed node", async () => {
        const f = await formation('c-credentials-list');
        const [a, b, c] = [await addNode(f, 'a'), await addNode(f, 'b'), await addNode(f, 'c')];
        const [da, db1, db2, dc] = ['a'.repeat(64), 'b'.repeat(64), 'd'.repeat(64), 'c'.repeat(64)];
        await store.transaction(async (tx) => {
          await tx.credentials.issue(b.nodeId, db1);
          await tx.credentials.issue(a.nodeId, da);
          await tx.credentials.issue(c.nodeId, dc);
        });
        await store.transaction((tx) => tx.credentials.issue(b.nodeId, db2));
        await store.transaction((tx) => tx.nodes.remove(c.nodeId));
        const mine = (await store.credentials.list()).filter((x) => [a.nodeId, b.nodeId, c.nodeId].includes(x.nodeId));
        expect(mine).toEqual([
          { nodeId: a.nodeId, digest: da },
          { nodeId: b.nodeId, digest: db2 },
        ]);
      });
    });

    describe('reports', () => {
      it("records keepers' reports under their groups' locks and reads those groups, with what each report replaced", async () => {
        const f = await formation('c-reports');
        const a = await addNode(f, 'a');
        const b = await addNode(f, 'b');
        const fence = { fencedAtMs: Date.UTC(2030, 0, 1, 0, 0, 0, 123), reason: 'network partition', fromState: 'primary' as const, monitorSilentMs: 1000, postgresStopped: true, unreachableMs: 2000 };
        const read = await store.transaction((tx) =>
          tx.recordReports([
            { nodeId: a.nodeId, report: report('single', '0/3000060', { problem: 'disk full', selfFence: fence, synchronousStandbyNames: `ANY 1 ("it's")` }) },
            { nodeId: 999_999, report: report('single', '0/1') },
          ]),
        );
        expect(read.inputs.has(999_999)).toBe(false);
        const ra = read.inputs.get(a.nodeId)!;
        expect(ra.recorded).toBe(true);
        expect(ra.before).toEqual({ reportedProblem: null, lastSelfFenceAt: null });
        expect(ra.node).toMatchObject({ reportedState: 'single', reportedLsn: '0/3000060', postgresRunning: true, reportedProblem: 'disk full', reportedSyncStandbyNames: `ANY 1 ("it's")`, goalState: 'init' });
        expect(ra.node.reportedAt).toBeInstanceOf(Date);
        expect(ra.node.lastSelfFenceAt?.getTime()).toBe(fence.fencedAtMs);
        const group = [...read.groups.values()];
        expect(group).toHaveLength(1);
        expect(group[0]).toMatchObject({ formationId: f, groupId: 0, formation: await store.formations.get(f) });
        expect(group[0]!.nodes.map((n) => [n.name, n.reportedState])).toEqual([['a', 'single'], ['b', 'init']]);
        expect(Math.abs(read.nowMs - Date.now())).toBeLessThan(60_000);
        expect(await store.nodes.get(a.nodeId)).toEqual(ra.node);

        const again = await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: report('single', '0/3000070', { selfFence: fence }) }]));
        expect(again.inputs.get(a.nodeId)!.before).toEqual({ reportedProblem: 'disk full', lastSelfFenceAt: new Date(fence.fencedAtMs) });
        expect(again.inputs.get(a.nodeId)!.node.reportedProblem).toBeNull();

        // A dropped node whose keeper reports dropped is not recorded; its group is not read.
        await store.transaction((tx) => tx.goals.assign({ formationId: f, groupId: 0 }, [a, b], [assignment(b.nodeId, 'dropped')]));
        const dropped = await store.transaction((tx) => tx.recordReports([{ nodeId: b.nodeId, report: report('dropped', '0/0') }]));
        expect(dropped.inputs.get(b.nodeId)).toMatchObject({ recorded: false, node: { nodeId: b.nodeId, reportedState: 'init', goalState: 'dropped' } });
        expect(dropped.groups.size).toBe(0);
      });

      it('records free texts as sent, whatever quotes, backslashes and dollar signs they hold', async () => {
        const f = await formation('c-report-texts');
        const a = await addNode(f, 'a');
        // The Postgres store writes the reports into its statement as one string constant
        // (report-statement.ts, jsonConstant): dollar-quoted, or escaped when a text holds the tag.
        const texts = [
          `it's \\ a 'quote' $$ and $1 $pgha_json ends`,
          `$pgha_json$'); delete from pgha.nodes; --`,
          `\\'$pgha_json$$pgha_json$\\`,
        ];
        for (const [i, problem] of texts.entries()) {
          const sent = report('single', `0/30000${60 + i}`, { problem, synchronousStandbyNames: problem, parameters: { pendingRestart: [], running: [{ name: 'dynamic_library_path', value: `$libdir:${problem}` }] } });
          const read = await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: sent }]));
          expect(read.inputs.get(a.nodeId)!.node).toMatchObject({ reportedProblem: problem, reportedSyncStandbyNames: problem });
          expect(await store.nodes.get(a.nodeId)).toMatchObject({ reportedProblem: problem, reportedSyncStandbyNames: problem, reportedParameters: sent.parameters });
        }
        expect((await store.nodes.list(f)).map((n) => n.name)).toEqual(['a']);
      });
    });

    describe("the shutdown checkpoint's LSN", () => {
      it('keeps the LSN a report carries (as X/Y), in the node record and the group facts, and clears it with a report of null or without it', async () => {
        const f = await formation('c-shutdown-lsn');
        const a = await addNode(f, 'a');
        const stopped = (extra: Partial<NodeReport>): NodeReport => report('primary', '0/3000060', { postgresRunning: false, isInRecovery: null, ...extra });
        const facts = async () => groupFacts(await store.formations.get(f), 0, [await store.nodes.get(a.nodeId)], await store.nowMs()).nodes[0]!.shutdownCheckpointLsn;
        await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: stopped({}) }]));
        expect((await store.nodes.get(a.nodeId)).shutdownCheckpointLsn).toBeNull();
        expect(await facts()).toBeNull();

        // The same facts but the LSN: a change, written (etcd writes only what changed a persisted fact).
        const read = await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: stopped({ shutdownCheckpointLsn: ' 16/b374d848 ' }) }]));
        expect(read.inputs.get(a.nodeId)!.node.shutdownCheckpointLsn).toBe('16/B374D848');
        expect([...read.groups.values()][0]!.nodes.find((n) => n.nodeId === a.nodeId)?.shutdownCheckpointLsn).toBe('16/B374D848');
        expect((await store.nodes.get(a.nodeId)).shutdownCheckpointLsn).toBe('16/B374D848');
        expect(await facts()).toBe(lsn(0x16b374d848n));
        await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: stopped({ shutdownCheckpointLsn: '0/3000028' }) }]));
        expect((await store.nodes.get(a.nodeId)).shutdownCheckpointLsn).toBe('0/3000028');

        await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: stopped({ shutdownCheckpointLsn: null }) }]));
        expect((await store.nodes.get(a.nodeId)).shutdownCheckpointLsn).toBeNull();
        expect(await facts()).toBeNull();
        await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: stopped({ shutdownCheckpointLsn: '0/3000028' }) }]));
        await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: stopped({}) }]));
        expect((await store.nodes.get(a.nodeId)).shutdownCheckpointLsn).toBeNull();
      });
    });

    describe('synchronous_standby_names of a primary whose Postgres is down', () => {
      it('keeps what it last ran with while its keeper reports Postgres down, and takes the report again once it runs', async () => {
        const f = await formation('c-sync-names-kept');
        const a = await addNode(f, 'a');
        const names = async () => groupFacts(await store.formations.get(f), 0, [await store.nodes.get(a.nodeId)], await store.nowMs()).nodes[0]!.synchronousStandbyNames;
        const running = report('primary', '0/3000060', { synchronousStandbyNames: 'ANY 1 (pgha_node_2, pgha_node_3)' });
        await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: running }]));
        expect(await names()).toBe('ANY 1 (pgha_node_2, pgha_node_3)');
        const down = report('primary', '0/3000060', { postgresRunning: false, isInRecovery: null, synchronousStandbyNames: null });
        const read = await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: down }]));
        expect(read.inputs.get(a.nodeId)!.node.reportedSyncStandbyNames).toBe('ANY 1 (pgha_node_2, pgha_node_3)');
        expect(await names()).toBe('ANY 1 (pgha_node_2, pgha_node_3)');
        // Running again, as a standby: the report's null.
        await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: report('catchingup', '0/3000060', { isInRecovery: true, synchronousStandbyNames: null }) }]));
        expect(await names()).toBeNull();
      });
    });

    if (options.heartbeats) describe('heartbeats', () => {
      it(`records a report that changes nothing but the time and the LSN on its own, and reads its group, never while a decision holds it (${options.heartbeats?.whileLocked === 'wait' ? 'it waits' : 'it leaves the report out'}); leaves every other report out`, async () => {
        const f = await formation('c-heartbeats');
        const a = await addNode(f, 'a');
        const b = await addNode(f, 'b');
        const beat = (nodeId: number, r: NodeReport) => store.recordHeartbeats!([{ nodeId, report: r }]);
        // A heartbeat that must be recorded: on etcd, once the store's copy holds the last commit
        // (the watch brings it back within milliseconds); on Postgres, the first time.
        const recordedBeat = async (nodeId: number, r: NodeReport) => {
          let read: Awaited<ReturnType<typeof beat>> | undefined;
          await waitFor('the heartbeat recorded', async () => (read = await beat(nodeId, r)).inputs.has(nodeId), { intervalMs: 5 });
          return read!;
        };
        // A node that never reported: its first report goes to a transaction.
        expect((await beat(a.nodeId, report('single', '0/3000060'))).inputs.size).toBe(0);
        expect((await store.nodes.get(a.nodeId)).reportedAt).toBeNull();
        await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: report('single', '0/3000060') }]));
        const first = await store.nodes.get(a.nodeId);

        const read = await recordedBeat(a.nodeId, report('single', '0/3000070'));
        const ra = read.inputs.get(a.nodeId)!;
        expect(ra).toMatchObject({ recorded: true, factsChanged: false, before: { reportedProblem: null, lastSelfFenceAt: null } });
        expect(ra.node).toMatchObject({ reportedState: 'single', reportedLsn: '0/3000070', goalState: 'init' });
        expect(ra.node.reportedAt!.getTime()).toBeGreaterThanOrEqual(first.reportedAt!.getTime());
        expect([...read.groups.values()].map((g) => [g.formation, g.nodes.map((n) => n.nodeId)])).toEqual([[await store.formations.get(f), [a.nodeId, b.nodeId]]]);
        expect(await store.nodes.get(a.nodeId)).toEqual(ra.node);

        // A changed fact, a self-fence, a transition, a node that does not exist: not recorded.
        const fence = { fencedAtMs: Date.now(), reason: 'network partition', fromState: 'single' as const, monitorSilentMs: 1000, postgresStopped: true, unreachableMs: 2000 };
        for (const r of [report('single', '0/3000080', { problem: 'disk full' }), report('single', '0/3000080', { shutdownCheckpointLsn: '0/3000028' }), report('primary', '0/3000080'), report('single', '0/3000080', { selfFence: fence }), report('single', '0/3000080', { transitionInProgress: 'single' })]) {
          expect((await beat(a.nodeId, r)).inputs.size).toBe(0);
        }
        expect((await beat(999_999, report('single', '0/1'))).inputs.size).toBe(0);
        expect(await store.nodes.get(a.nodeId)).toEqual(ra.node);

        // A decision holding the group's lock holds a heartbeat up, which then reads what it
        // committed; or the heartbeat is left out at once, for the report transaction.
        const held = latch();
        const locked = latch();
        const decision = store.transaction(async (tx) => {
          await tx.lockGroup(f, 0);
          await tx.goals.assign({ formationId: f, groupId: 0 }, [ra.node, b], [assignment(a.nodeId, 'single')]);
          locked.open();
          await held.wait;
        });
        await locked.wait;
        let done = false;
        const during = beat(a.nodeId, report('single', '0/3000090')).finally(() => (done = true));
        await store.nowMs();
        await store.nowMs();
        if (options.heartbeats?.whileLocked === 'wait') {
          expect(done).toBe(false);
          held.open();
          await decision;
          expect((await during).inputs.get(a.nodeId)!.node).toMatchObject({ goalState: 'single', reportedLsn: '0/3000090' });
        } else {
          expect(done).toBe(true);
          expect((await during).inputs.size).toBe(0);
          held.open();
          await decision;
          expect((await recordedBeat(a.nodeId, report('single', '0/3000090'))).inputs.get(a.nodeId)!.node).toMatchObject({ goalState: 'single', reportedLsn: '0/3000090' });
        }

        // A keeper not heard within freshWithinMs: its liveness changed.
        await store.transaction((tx) => tx.settings.setTimings(f, { nodeUnhealthyTimeoutMs: 40, standbyStreamingTimeoutMs: 40 }));
        const last = (await store.nodes.get(a.nodeId)).reportedAt!.getTime();
        await waitFor('the keeper not heard for 30 ms', async () => (await store.nowMs()) > last + 31, { intervalMs: 5 });
        expect((await recordedBeat(a.nodeId, report('single', '0/30000A0'))).inputs.get(a.nodeId)).toMatchObject({ recorded: true, factsChanged: true });
      });
    });

    describe('restart requests', () => {
      it("keeps a node's restart request and when it was made, and the last one its keeper reports done (never going back)", async () => {
        const f = await formation('c-restart');
        const a = await addNode(f, 'a');
        expect(a).toMatchObject({ restartRequest: 0, restartRequestedAt: null, restartDone: 0 });
        const at = new Date(Date.UTC(2030, 0, 1, 0, 0, 0, 456));
        const asked = await store.transaction((tx) => tx.nodes.update(a.nodeId, { restartRequest: 1, restartRequestedAt: at }));
        expect(asked).toMatchObject({ restartRequest: 1, restartRequestedAt: at, restartDone: 0 });
        expect(await store.nodes.get(a.nodeId)).toMatchObject({ restartRequest: 1, restartRequestedAt: at, restartDone: 0 });

        const done = await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: report('single', '0/3000060', { restartDone: 1 }) }]));
        expect(done.inputs.get(a.nodeId)!.node).toMatchObject({ restartRequest: 1, restartDone: 1 });
        expect(await store.nodes.get(a.nodeId)).toMatchObject({ restartRequest: 1, restartRequestedAt: at, restartDone: 1 });
        // A report without it (an older keeper) or with a lower one leaves it as it is.
        await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: report('single', '0/3000070') }]));
        await store.transaction((tx) => tx.recordReports([{ nodeId: a.nodeId, report: report('single', '0/3000080', { restartDone: 0 }) }]));
        expect(await store.nodes.get(a.nodeId)).toMatchObject({ restartDone: 1 });
      });
    });

    describe('probes', () => {
      it('lists every node not dropped with its formation\'s probe password, and applies probe results by the health rule', async () => {
        const f = await formation('c-probes');
        const a = await addNode(f, 'a');
        const target = (await store.probes.targets()).find((t) => t.nodeId === a.nodeId);
        expect(target).toMatchObject({ formationId: f, groupId: 0, name: 'a', host: '127.0.0.1', port: a.port, health: 'unknown', healthFailures: 0, probeInRecovery: null, reportedState: 'init', postgresSsl: true, monitorProbePassword: (await store.formations.get(f)).monitorProbePassword, settings: {}, sinceReportMs: null, checkedAgoMs: null });

        const fail = { nodeId: a.nodeId, reset: false, failures: 1, inRecovery: null, retries: 2 };
        expect(await store.probes.record([fail])).toEqual({ changed: [], skipped: [] });
        expect(await store.nodes.get(a.nodeId)).toMatchObject({ health: 'unknown', healthFailures: 1 });
        expect(await store.probes.record([fail])).toEqual({ changed: [{ nodeId: a.nodeId, formationId: f, groupId: 0, name: 'a', health: 'bad' }], skipped: [] });
        expect(await store.nodes.get(a.nodeId)).toMatchObject({ health: 'bad', healthFailures: 2 });
        expect(await store.probes.record([{ nodeId: a.nodeId, reset: true, failures: 0, inRecovery: true, retries: 2 }, { nodeId: 999_999, reset: true, failures: 0, inRecovery: true, retries: 2 }])).toEqual({
          changed: [{ nodeId: a.nodeId, formationId: f, groupId: 0, name: 'a', health: 'good' }],
          skipped: [],
        });
        const good = await store.nodes.get(a.nodeId);
        expect(good).toMatchObject({ health: 'good', healthFailures: 0, probeInRecovery: true });
        expect(good.healthCheckedAt).toBeInstanceOf(Date);
        // The targets carry the probe state as written, and how long ago it was (the prober
        // leaves out the results that would change nothing).
        const checked = (await store.probes.targets()).find((t) => t.nodeId === a.nodeId)!;
        expect(checked).toMatchObject({ health: 'good', healthFailures: 0, probeInRecovery: true });
        expect(checked.checkedAgoMs).toBeGreaterThanOrEqual(0);
        expect(checked.checkedAgoMs).toBeLessThan(10_000);
      });

      it('never waits for a decision in progress: its nodes are written or skipped, to be written again', async () => {
        const f = await formation('c-probes-lock');
        const a = await addNode(f, 'a');
        const wrote = latch();
        const commit = latch();
        const decision = store.transaction(async (tx) => {
          await tx.lockGroup(f, 0);
          await tx.goals.assign({ formationId: f, groupId: 0 }, [a], [assignment(a.nodeId, 'single')]);
          wrote.open();
          await commit.wait;
        });
        await wrote.wait;
        try {
          const result = await store.probes.record([{ nodeId: a.nodeId, reset: false, failures: 2, inRecovery: null, retries: 2 }]);
          expect(result.skipped.length + result.changed.length).toBe(1);
        } finally {
          commit.open();
          await decision;
        }
        const result = await store.probes.record([{ nodeId: a.nodeId, reset: false, failures: 2, inRecovery: null, retries: 2 }]);
        expect((await store.nodes.get(a.nodeId)).health).toBe('bad');
        expect(result.skipped).toEqual([]);
      });
    });
  });
}
