/**
 * `pgha perform restart` end to end on a real three-node formation (`pgha up --nodes 3`): a
 * rolling restart of every node with a writer running (each postmaster restarted, one node
 * down at a time, the primary last by switchover, no acknowledged write lost); one standby by
 * `--name`; the primary in place with `--in-place`; a restart that fails (Postgres cannot
 * start); refusals (a node in maintenance, bad input) that change nothing.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStateRow } from '@pgha/shared';
import { expectOneLineError, expectUsageError, runPghaOk } from './helpers/cli.js';
import { connectWritable, isPrimaryAndSecondaries, queryNode, showState, startLocalFormation, Writer, type LocalFormation } from './helpers/formation.js';
import { endAllProcesses, runPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

let formation: LocalFormation;
let env: Record<string, string>;

beforeAll(async () => {
  formation = await startLocalFormation(3);
  env = { PGHA_MONITOR: formation.up.monitor.url };
  const client = await connectWritable(formation.up.uri);
  await client!.query('create table probe (id bigint primary key, at timestamptz default clock_timestamp())');
  await client!.end();
}, 300_000);

afterAll(async () => {
  await endAllProcesses();
});

const state = () => showState(formation.up.monitor.url);
const settled = () => waitFor('one primary and two secondaries', async () => isPrimaryAndSecondaries(await state()), { timeoutMs: 90_000, intervalMs: 200 });
const primaryOf = (rows: readonly NodeStateRow[]) => rows.find((r) => r.goal_state === 'primary')!;

/** Each node's `pg_postmaster_start_time()`, by name. */
async function postmasterStarts(): Promise<Map<string, string>> {
  const starts = new Map<string, string>();
  for (const n of formation.up.nodes) starts.set(n.name, (await queryNode<{ t: string }>(n.port, 'select pg_postmaster_start_time()::text as t'))[0]!.t);
  return starts;
}

/** Whether the node's Postgres answers a query within 1 s. */
async function answers(port: number): Promise<boolean> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000, query_timeout: 1000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Samples every node's Postgres until stopped: the most nodes seen not answering at once. */
function sampleDownNodes(): { stop: () => Promise<{ mostDown: number; samples: number }> } {
  let stopped = false;
  let mostDown = 0;
  let samples = 0;
  const loop = (async () => {
    while (!stopped) {
      const up = await Promise.all(formation.up.nodes.map((n) => answers(n.port)));
      mostDown = Math.max(mostDown, up.filter((u) => !u).length);
      samples++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return { stop: async () => { stopped = true; await loop; return { mostDown, samples }; } };
}

let nextId = 1;

describe('pgha perform restart', () => {
  it('restarts every node one at a time, standbys first and the primary last by switchover, losing no acknowledged write', async () => {
    await settled();
    const before = await state();
    const oldPrimary = primaryOf(before);
    const startsBefore = await postmasterStarts();
    const writer = new Writer(formation.up.uri, 'probe', nextId);
    writer.start();
    await waitFor('the writer to get acknowledgements', () => writer.acks.length >= 20);
    const sampler = sampleDownNodes();

    const out = JSON.parse(await runPghaOk(['perform', 'restart', '--json'], env)) as {
      restarted: { name: string; method: string }[];
      steps: { name: string; kind: string; to: string }[];
      state: NodeStateRow[];
    };
    const { mostDown, samples } = await sampler.stop();
    await waitFor('writes after the restart', () => writer.acks.length >= 40);
    nextId = await writer.stop();

    // Standbys by node id, then the primary by switchover.
    const standbys = before.filter((r) => r.name !== oldPrimary.name).map((r) => r.name);
    expect(out.restarted.map((r) => r.name)).toEqual([...standbys, oldPrimary.name]);
    expect(out.restarted.map((r) => r.method)).toEqual(['in-place', 'in-place', 'switchover']);
    expect(out.steps.filter((s) => s.kind === 'restart').map((s) => `${s.name} ${s.to}`)).toEqual(standbys.flatMap((n) => [`${n} requested`, `${n} done`]));
    // Every postmaster was restarted; never two nodes down at once.
    const startsAfter = await postmasterStarts();
    for (const n of formation.up.nodes) expect(startsAfter.get(n.name), n.name).not.toBe(startsBefore.get(n.name));
    expect(samples).toBeGreaterThan(10);
    expect(mostDown).toBe(1);
    // The old primary is a secondary now; the formation is healthy.
    const after = await state();
    expect(isPrimaryAndSecondaries(after)).toBe(true);
    expect(primaryOf(after).name).not.toBe(oldPrimary.name);
    // Nothing acknowledged is lost.
    const ids = new Set((await queryNode<{ id: string }>(primaryOf(after).port, 'select id from probe')).map((r) => Number(r.id)));
    expect(writer.acks.filter((a) => !ids.has(a.id))).toEqual([]);
  });

  it('--name restarts one standby only, and prints each step and the total', async () => {
    await settled();
    const rows = await state();
    const standby = rows.find((r) => r.goal_state === 'secondary')!;
    const startsBefore = await postmasterStarts();
    const printed = await runPghaOk(['perform', 'restart', '--name', standby.name], env);
    expect(printed).toMatch(new RegExp(`${standby.name} \\(node ${standby.node_id}\\)\\s+restart \\d+ of Postgres requested`));
    expect(printed).toMatch(/restart \d+ done: Postgres restarted, replication streams again/);
    expect(printed).toMatch(new RegExp(`restart done: ${standby.name} restarted one at a time in `));
    const startsAfter = await postmasterStarts();
    for (const n of formation.up.nodes) {
      if (n.name === standby.name) expect(startsAfter.get(n.name)).not.toBe(startsBefore.get(n.name));
      else expect(startsAfter.get(n.name), n.name).toBe(startsBefore.get(n.name));
    }
    const row = (await state()).find((r) => r.name === standby.name)!;
    expect(row.restart.done).toBe(row.restart.requested);
  });

  it('--in-place restarts the primary where it is: it stays the primary, no goal changes', async () => {
    await settled();
    const before = await state();
    const primary = primaryOf(before);
    const startsBefore = await postmasterStarts();
    const out = JSON.parse(await runPghaOk(['perform', 'restart', '--name', primary.name, '--in-place', '--json'], env)) as { restarted: { method: string }[]; steps: { kind: string }[] };
    expect(out.restarted.map((r) => r.method)).toEqual(['in-place']);
    expect(out.steps.filter((s) => s.kind === 'goal')).toEqual([]);
    const startsAfter = await postmasterStarts();
    expect(startsAfter.get(primary.name)).not.toBe(startsBefore.get(primary.name));
    await settled();
    expect(primaryOf(await state()).name).toBe(primary.name);
  });

  it('is refused, with the reason and nothing changed, while a node is in maintenance', async () => {
    await settled();
    const standby = (await state()).find((r) => r.goal_state === 'secondary')!;
    await runPghaOk(['maintenance', 'enable', '--name', standby.name], env);
    const before = await state();
    const startsBefore = await postmasterStarts().catch(() => undefined);
    const r = await runPgha(['perform', 'restart'], env);
    expectOneLineError(r, new RegExp(`refused: node ${standby.node_id} "${standby.name}" is maintenance \\(goal maintenance\\).*pgha maintenance disable --name ${standby.name}`));
    const after = await state();
    expect(after.map((x) => [x.name, x.goal_state, x.restart.requested])).toEqual(before.map((x) => [x.name, x.goal_state, x.restart.requested]));
    if (startsBefore) expect(await postmasterStarts()).toEqual(startsBefore);
    await runPghaOk(['maintenance', 'disable', '--name', standby.name], env);
  });

  it('a restart that fails is done all the same: not tried again, the standby no longer excused, and back once Postgres can start', async () => {
    await settled();
    const standby = (await state()).filter((r) => r.goal_state === 'secondary').at(-1)!;
    const autoConf = join(formation.up.nodes.find((n) => n.name === standby.name)!.pgdata, 'postgresql.auto.conf');
    const conf = readFileSync(autoConf, 'utf8');
    writeFileSync(autoConf, `${conf}this is not a setting\n`);
    try {
      const r = await runPgha(['perform', 'restart', '--name', standby.name, '--wait', '10'], env);
      expectOneLineError(r, new RegExp(`gave up waiting after 10 s for ${standby.name} to be back from its restart`));
      const row = (await state()).find((x) => x.name === standby.name)!;
      expect(row.restart.done).toBe(row.restart.requested);
      // Not excused for the whole grace: the usual rule took it out of synchronous replication.
      expect(row.goal_state).toBe('catchingup');
      expect(row.problem).toMatch(/Postgres does not start/);
    } finally {
      writeFileSync(autoConf, conf);
    }
    await settled();
  });

  it('says clearly what is wrong with bad input', async () => {
    expectOneLineError(await runPgha(['perform', 'restart', '--name', 'nosuch'], env), /no node named "nosuch" in formation "default"/);
    expectUsageError(await runPgha(['perform', 'restart', '--name', 'node1', '--pending'], env), 'perform restart', /--name.*cannot be used with.*--pending/);
    // No keeper reports pending parameters here: nothing to restart, nothing changed.
    expect(await runPghaOk(['perform', 'restart', '--pending'], env)).toMatch(/nothing to restart: no node has parameters pending a restart/);
  });
});
