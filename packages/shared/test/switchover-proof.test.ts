/**
 * A switchover's candidate is promoted only once it is known to hold the old primary's last
 * WAL (`switchoverProof`, rules `promote-candidate` and `switchover-election`): the standbys'
 * LSNs the monitor holds were reported before the old primary stopped.
 */
import { DEFAULT_FORMATION_SETTINGS, decideUntilStable, reportsWanted, switchoverProof, type GroupFacts } from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { groupFacts, type NodeSpec } from './fact-builders.js';

const { nodeUnhealthyTimeoutMs } = DEFAULT_FORMATION_SETTINGS;
/** The old primary once its planned stop is reported: Postgres down, shutdown checkpoint at 0/6000000. */
const stopped: NodeSpec = { state: 'draining', postgresRunning: false, lsn: '0/6000000', shutdownCheckpointLsn: '0/6000000' };

function facts(old: NodeSpec, candidate: NodeSpec, other: NodeSpec | null = { state: 'secondary', lsn: '0/5000000' }): GroupFacts {
  const b = groupFacts().primary(old).standby({ state: 'prepare_promotion', lsn: '0/5000000', ...candidate });
  return (other ? b.standby(other) : b).build();
}

function proof(f: GroupFacts): string {
  return switchoverProof(f, f.nodes[0], f.nodes[1]!).verdict;
}

function rules(f: GroupFacts): string[] {
  return decideUntilStable(f).map((a) => `${a.nodeId}:${a.goalState}:${a.rule}`);
}

describe('switchover proof', () => {
  it('proven: the candidate reports WAL at or past the shutdown checkpoint, and is promoted', () => {
    const f = facts(stopped, { lsn: '0/6000000' });
    expect(proof(f)).toBe('proven');
    expect(rules(f)).toContain('2:stop_replication:promote-candidate');
  });

  it('waiting: the candidate still streams short of the checkpoint; its keeper is asked to report at once, once', () => {
    const f = facts(stopped, { streaming: true });
    expect(proof(f)).toBe('waiting');
    expect(rules(f)).toEqual([]);
    expect(reportsWanted(f)).toEqual([2]);
    // It reported after the old primary's last report: not asked again.
    const after = facts({ ...stopped, keeperSilentMs: 100 }, { streaming: true });
    expect(reportsWanted(after)).toEqual([]);
  });

  it('waiting: the old primary reached its stop but still shuts down (no checkpoint reported yet)', () => {
    const f = facts({ state: 'draining', postgresRunning: true }, { lsn: '0/6000000' });
    expect(proof(f)).toBe('waiting');
    expect(rules(f)).toEqual([]);
    expect(reportsWanted(f)).toEqual([]);
  });

  it('unprovable: the candidate no longer streams and lacks WAL before the checkpoint: the election decides', () => {
    const f = facts(stopped, { streaming: false });
    expect(proof(f)).toBe('unprovable');
    expect(rules(f)).toEqual(['2:report_lsn:switchover-election', '3:report_lsn:switchover-election']);
    expect(decideUntilStable(f)[0]!.reason).toBe('node 2 "node2" reports its LSN for an election: node 2 "node2" has WAL up to 0/5000000 and no longer streams, short of the shutdown checkpoint of node 1 "node1" at 0/6000000');
  });

  it('unprovable: the old primary stopped without a shutdown checkpoint (a crash), or went silent with its Postgres down', () => {
    const crashed = facts({ state: 'draining', postgresRunning: false }, { lsn: '0/6000000' });
    expect(proof(crashed)).toBe('unprovable');
    expect(rules(crashed)).toContain('2:report_lsn:switchover-election');
    const silent = facts({ reportedState: 'primary', goalState: 'draining', postgresRunning: false, health: 'bad', keeperSilentMs: nodeUnhealthyTimeoutMs + 1 }, { lsn: '0/6000000' });
    expect(proof(silent)).toBe('unprovable');
  });

  it('unprovable: electionTimeoutMs after the switchover began, the candidate has not reported the checkpoint (a WAL receiver that hangs while it says it streams)', () => {
    const { electionTimeoutMs } = DEFAULT_FORMATION_SETTINGS;
    expect(proof(facts({ ...stopped, goalChangedAgoMs: electionTimeoutMs - 1 }, { streaming: true }))).toBe('waiting');
    const late = facts({ ...stopped, goalChangedAgoMs: electionTimeoutMs }, { streaming: true });
    expect(proof(late)).toBe('unprovable');
    expect(rules(late)).toEqual(['2:report_lsn:switchover-election', '3:report_lsn:switchover-election']);
    // Proven all the same when the candidate has it.
    expect(proof(facts({ ...stopped, goalChangedAgoMs: electionTimeoutMs }, { lsn: '0/6000000' }))).toBe('proven');
  });

  it('unneeded: two nodes (the synchronous standby is the candidate), a failover, or an election already under way', () => {
    expect(proof(facts(stopped, { streaming: false }, null))).toBe('unneeded');
    expect(rules(facts(stopped, { streaming: false }, null))).toContain('2:stop_replication:promote-candidate');
    expect(proof(facts({ ...stopped, state: 'demote_timeout' }, {}))).toBe('unneeded');
    expect(proof(facts(stopped, {}, { state: 'report_lsn', lsn: '0/5000000' }))).toBe('unneeded');
  });

  it('maintenance: a primary stopping for its maintenance (prepare_maintenance) needs the same proof', () => {
    expect(proof(facts({ ...stopped, state: 'prepare_maintenance' }, { streaming: false }))).toBe('unprovable');
    expect(proof(facts({ ...stopped, state: 'prepare_maintenance' }, { lsn: '0/6000000' }))).toBe('proven');
  });
});
