/**
 * States that cannot progress say why, on real processes: a standby whose WAL receiver is
 * refused by the primary, and an old primary whose rejoin (pg_rewind, then a base backup) is
 * refused by the new one. Each shows as the node's problem in `pgha show state` and in the
 * events within seconds, the keeper keeps retrying, and the problem clears once the cause is
 * gone and the node reaches its goal.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStateRow } from '@pgha/shared';
import { isPrimaryAndSecondaries, queryNode, showState, startLocalFormation, type LocalFormation } from './helpers/formation.js';
import { showEvents } from './helpers/history.js';
import { endAllProcesses, killPid, postmasterPid, startPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

let formation: LocalFormation;

beforeAll(async () => {
  formation = await startLocalFormation(2);
}, 300_000);

afterAll(async () => {
  await endAllProcesses();
});

function nodeOf(name: string) {
  return formation.up.nodes.find((n) => n.name === name)!;
}

async function roles(): Promise<{ primary: NodeStateRow; standby: NodeStateRow }> {
  const rows = await showState(formation.up.monitor.url);
  return { primary: rows.find((r) => r.goal_state === 'primary' || r.goal_state === 'wait_primary')!, standby: rows.find((r) => r.goal_state !== 'primary' && r.goal_state !== 'wait_primary')! };
}

/** The node's problem as `pgha show state` shows it, once it matches `pattern`. */
async function problemOf(name: string, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  return waitFor(`the problem of ${name} to match ${pattern}`, async () => {
    const row = (await showState(formation.up.monitor.url)).find((r) => r.name === name)!;
    return row.problem && pattern.test(row.problem) ? row.problem : undefined;
  }, { timeoutMs, intervalMs: 250 });
}

/** Refuses (or allows again) the replication role's logins on `port`, and ends its sessions there. */
async function replicationLogin(port: number, allowed: boolean): Promise<void> {
  await queryNode(port, `alter role pgha_replication ${allowed ? 'login' : 'nologin'}`);
  if (!allowed) await queryNode(port, "select pg_terminate_backend(pid) from pg_stat_activity where usename = 'pgha_replication'");
}

describe('a state that cannot progress says why', () => {
  it('a standby whose WAL receiver is refused: its problem names the upstream and the refusal, then clears', async () => {
    const { primary, standby } = await roles();
    await replicationLogin(primary.port, false);
    try {
      const problem = await problemOf(standby.name, /WAL receiver does not stream/);
      expect(problem).toBe(`the WAL receiver does not stream from node ${primary.node_id} "${primary.name}" (${primary.host}:${primary.port}): ${problem.split(`(${primary.host}:${primary.port}): `)[1]}`);
      expect(problem).toMatch(/FATAL: .*not permitted to log in/);
    } finally {
      await replicationLogin(primary.port, true);
    }
    await waitFor('secondary again, without a problem', async () => {
      const rows = await showState(formation.up.monitor.url);
      return isPrimaryAndSecondaries(rows) && rows.every((r) => !r.problem);
    }, { timeoutMs: 60_000, intervalMs: 250 });
    const events = await showEvents(formation.up.monitor.url);
    expect(events.some((e) => e.node_name === standby.name && /reports a problem: the WAL receiver does not stream/.test(e.reason))).toBe(true);
    expect(events.some((e) => e.node_name === standby.name && /reports no problem any more/.test(e.reason))).toBe(true);
    const log = readFileSync(join(formation.dir, standby.name, 'keeper.log'), 'utf8');
    expect(log.match(/"problem: the WAL receiver does not stream/g)?.length).toBe(1);
  });

  it('an old primary whose rejoin is refused: the failing transition is its problem, retried until it works', async () => {
    const { primary, standby } = await roles();
    const dead = nodeOf(primary.name);
    killPid(dead.keeper_pid, 'SIGKILL');
    killPid(postmasterPid(dead.pgdata), 'SIGKILL');
    await waitFor('the standby promoted', async () => (await roles()).primary.name === standby.name ? true : undefined, { timeoutMs: 60_000, intervalMs: 250 });
    // pgha up's console says that the keeper is gone, and that it will not start it again.
    expect(readFileSync(join(formation.dir, 'up.log'), 'utf8')).toMatch(new RegExp(`  ${dead.name}\\s+was stopped by SIGKILL: pgha up does not start it again \\(logs in ${formation.dir}\\)`));
    await replicationLogin(standby.port, false);
    const log = join(formation.dir, dead.name, 'keeper-restarted.log');
    try {
      startPgha(['keeper', 'run', '--pgdata', dead.pgdata], { logFile: log });
      const problem = await problemOf(dead.name, /^transition from \w+ to catchingup fails: /, 60_000);
      expect(problem).toMatch(/pg_basebackup failed \(exit 1\): .*not permitted to log in.* \(the keeper retries\)$/);
      // The data directory is untouched while the base backup fails.
      expect(readFileSync(join(dead.pgdata, 'PG_VERSION'), 'utf8').trim()).toBe('15');
    } finally {
      await replicationLogin(standby.port, true);
    }
    await waitFor('primary + secondary again, without a problem', async () => {
      const rows = await showState(formation.up.monitor.url);
      return isPrimaryAndSecondaries(rows) && rows.every((r) => !r.problem);
    }, { timeoutMs: 120_000, intervalMs: 250 });
    const events = await showEvents(formation.up.monitor.url);
    expect(events.some((e) => e.node_name === dead.name && /reports a problem: transition from \w+ to catchingup fails: /.test(e.reason))).toBe(true);
    expect(readFileSync(log, 'utf8')).toMatch(/pg_rewind failed, falling back to a fresh base backup/);
  });
});
