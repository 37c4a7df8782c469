/**
 * The role-change hook runner, with real `/bin/sh` child processes: the environment a hook
 * sees, the timeout that kills its whole process group (SIGTERM, then SIGKILL), one run at a
 * time with the latest role winning, output tails in the log, and failures that never reach
 * the caller. Also the pure parts around it: the role of each state, the reload plan, the pid
 * file's command-line check.
 */
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NODE_STATES } from '@pgha/shared';
import { NODE_ROLES, roleOfState } from '../src/fsm/node-role.js';
import { HOOK_OUTPUT_TAIL_BYTES, RoleChangeHookRunner, type HookRunResult, type RoleChangeFacts } from '../src/role-change-hook.js';
import { planKeeperReload } from '../src/config-reload.js';
import { isProcessAlive, isServiceCommandLine, waitFor } from '@pgha/postgres';
import type { KeeperConfig } from '@pgha/keeper';
import { memoryLogger } from './memory-logger.js';


const facts = (state = 'wait_primary'): RoleChangeFacts => ({ nodeName: 'node1', nodeId: 7, formation: 'default', groupId: 0, host: '127.0.0.1', port: 5433, timeline: 3, state });

/** Polls `fn` every 10 ms for at most `ms`. */
async function until(what: string, fn: () => boolean, ms = 10_000): Promise<void> {
  await waitFor(what, fn, { timeoutMs: ms, intervalMs: 10 });
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pgha-hook-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('RoleChangeHookRunner', () => {
  it('runs the command through /bin/sh with the node, the roles, the state, the timeline and the address, without pgha secrets, and logs its output tail', async () => {
    const { log, lines } = memoryLogger();
    const results: HookRunResult[] = [];
    process.env.PGHA_AUTH_TOKEN = 'operator-secret';
    try {
      const hooks = new RoleChangeHookRunner({ command: `env | grep -E '^(PGHA_|PATH=)' | sort > ${dir}/env; echo to-stdout; echo to-stderr >&2`, timeoutMs: 10_000 }, log, { onResult: (r) => results.push(r) });
      hooks.roleChanged('primary', facts());
      await hooks.idle();
    } finally {
      delete process.env.PGHA_AUTH_TOKEN;
    }
    const env = Object.fromEntries(readFileSync(join(dir, 'env'), 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(env).toMatchObject({
      PGHA_NODE_NAME: 'node1',
      PGHA_NODE_ID: '7',
      PGHA_FORMATION: 'default',
      PGHA_GROUP_ID: '0',
      PGHA_OLD_ROLE: 'none',
      PGHA_NEW_ROLE: 'primary',
      PGHA_STATE: 'wait_primary',
      PGHA_TIMELINE: '3',
      PGHA_HOST: '127.0.0.1',
      PGHA_PORT: '5433',
    });
    expect(env.PATH).toBeTruthy();
    expect(env).not.toHaveProperty('PGHA_AUTH_TOKEN');
    expect(results).toEqual([expect.objectContaining({ outcome: 'exited', exitCode: 0, oldRole: 'none', newRole: 'primary' })]);
    const done = lines.find((l) => /^role-change hook none → primary exited 0 after \d+ ms$/.test(l.msg));
    expect(done?.level).toBe(30);
    expect(done?.outputTail).toContain('to-stdout');
    expect(done?.outputTail).toContain('to-stderr');
  });

  it('kills the whole process group at the timeout, and escalates to SIGKILL for a hook that ignores SIGTERM', async () => {
    const { log, lines } = memoryLogger();
    const results: HookRunResult[] = [];
    const hooks = new RoleChangeHookRunner({ command: `sleep 60 & echo $! > ${dir}/child; echo started; wait`, timeoutMs: 300 }, log, { killGraceMs: 5_000, onResult: (r) => results.push(r) });
    const t0 = Date.now();
    hooks.roleChanged('primary', facts());
    await hooks.idle();
    expect(Date.now() - t0).toBeLessThan(5_000);
    const child = Number(readFileSync(join(dir, 'child'), 'utf8'));
    expect(results[0]).toMatchObject({ outcome: 'timed-out', exitCode: null, signal: 'SIGTERM' });
    expect(isProcessAlive(results[0]!.pid!)).toBe(false);
    await until('the background child to be gone', () => !isProcessAlive(child));
    const line = lines.find((l) => l.msg.startsWith('role-change hook none → primary timed out after 300 ms'));
    expect(line?.level).toBe(50);
    expect(line?.outputTail).toBe('started');

    // SIGTERM ignored (inherited by the sleep too): SIGKILL after the grace.
    results.length = 0;
    const stubborn = new RoleChangeHookRunner({ command: `trap '' TERM; sleep 60 & echo $! > ${dir}/child2; wait; wait`, timeoutMs: 200 }, log, { killGraceMs: 300, onResult: (r) => results.push(r) });
    stubborn.roleChanged('demoted', facts('demote_timeout'));
    await stubborn.idle();
    expect(results[0]).toMatchObject({ outcome: 'timed-out', signal: 'SIGKILL' });
    expect(results[0]!.durationMs).toBeGreaterThanOrEqual(500);
    await until('the stubborn child to be gone', () => !isProcessAlive(Number(readFileSync(join(dir, 'child2'), 'utf8'))));
  });

  it('runs one hook at a time: a change while a run goes on kills it, changes queued meanwhile collapse, and the latest role wins', async () => {
    const { log, lines } = memoryLogger();
    const trace = join(dir, 'trace');
    const results: HookRunResult[] = [];
    // Each run writes its start; the runner's result callback writes each end: the trace shows
    // whether two runs ever overlapped.
    const hooks = new RoleChangeHookRunner({ command: `echo "start $PGHA_OLD_ROLE>$PGHA_NEW_ROLE" >> ${trace}; sleep 0.4; echo "body-done $PGHA_NEW_ROLE" >> ${trace}`, timeoutMs: 10_000 }, log, {
      killGraceMs: 2_000,
      onResult: (r) => {
        results.push(r);
        appendFileSync(trace, `end ${r.newRole} ${r.outcome}\n`);
      },
    });
    hooks.roleChanged('primary', facts());
    await until('the first run to start', () => existsSync(trace));
    hooks.roleChanged('demoted', facts('draining'));
    hooks.roleChanged('replica', facts('catchingup'));
    expect(hooks.announcedRole).toBe('primary');
    await hooks.idle();
    expect(readFileSync(trace, 'utf8').trim().split('\n')).toEqual([
      'start none>primary',
      'end primary superseded',
      'start primary>replica',
      'body-done replica',
      'end replica exited',
    ]);
    expect(hooks.announcedRole).toBe('replica');
    expect(results.map((r) => r.newRole)).toEqual(['primary', 'replica']);
    expect(lines.some((l) => l.level === 40 && /^role-change hook none → primary killed after \d+ ms: the role changed again/.test(l.msg))).toBe(true);
    expect(lines.some((l) => /→ demoted/.test(l.msg))).toBe(false);

    // Changes in one tick, before anything started: only the last runs.
    rmSync(trace);
    results.length = 0;
    hooks.roleChanged('primary', facts());
    hooks.roleChanged('demoted', facts('demoted'));
    await hooks.idle();
    expect(results.map((r) => `${r.oldRole}>${r.newRole}`)).toEqual(['replica>demoted']);
  });

  it('logs a failing or missing command and goes on; roleChanged never throws', async () => {
    const { log, lines } = memoryLogger();
    const results: HookRunResult[] = [];
    const hooks = new RoleChangeHookRunner({ command: 'echo about to fail; exit 7', timeoutMs: 5_000 }, log, { onResult: (r) => results.push(r) });
    expect(() => hooks.roleChanged('primary', facts())).not.toThrow();
    await hooks.idle();
    hooks.configure({ command: '/nonexistent/hook.sh', timeoutMs: 5_000 });
    expect(() => hooks.roleChanged('demoted', facts('demoted'))).not.toThrow();
    await hooks.idle();
    hooks.configure({ command: 'true', timeoutMs: 5_000 });
    hooks.roleChanged('replica', facts('catchingup'));
    await hooks.idle();
    expect(results.map((r) => [r.newRole, r.exitCode])).toEqual([['primary', 7], ['demoted', 127], ['replica', 0]]);
    const failed = lines.filter((l) => l.level === 40);
    expect(failed.map((l) => l.msg.replace(/\d+ ms/, 'N ms'))).toEqual([
      'role-change hook none → primary failed: exit code 7 after N ms',
      'role-change hook primary → demoted failed: exit code 127 after N ms',
    ]);
    expect(failed[0]!.outputTail).toBe('about to fail');
    expect(failed[1]!.outputTail).toMatch(/nonexistent\/hook\.sh.*not found/);
  });

  it('keeps only the tail of a long output', async () => {
    const { log } = memoryLogger();
    const results: HookRunResult[] = [];
    const hooks = new RoleChangeHookRunner({ command: 'seq 1 50000; echo last-line', timeoutMs: 10_000 }, log, { onResult: (r) => results.push(r) });
    hooks.roleChanged('primary', facts());
    await hooks.idle();
    expect(results[0]!.outputTail.length).toBeLessThanOrEqual(HOOK_OUTPUT_TAIL_BYTES);
    expect(results[0]!.outputTail.endsWith('50000\nlast-line')).toBe(true);
  });

  it('without a command records the role, so that a command configured later sees it as the old role', async () => {
    const { log } = memoryLogger();
    const results: HookRunResult[] = [];
    const hooks = new RoleChangeHookRunner({ command: undefined, timeoutMs: 5_000 }, log, { onResult: (r) => results.push(r) });
    hooks.roleChanged('replica', facts('secondary'));
    await hooks.idle();
    expect(results).toEqual([]);
    expect(hooks.announcedRole).toBe('replica');
    hooks.configure({ command: 'true', timeoutMs: 5_000 });
    hooks.roleChanged('primary', facts());
    await hooks.idle();
    expect(results.map((r) => `${r.oldRole}>${r.newRole}`)).toEqual(['replica>primary']);
  });
});

describe('roleOfState', () => {
  it('gives every state a role or keeps the previous one, and calls primary only the states the monitor confirmed writable', () => {
    const byRole = (role: string) => NODE_STATES.filter((s) => roleOfState(s) === role);
    expect(byRole('primary')).toEqual(['single', 'wait_primary', 'primary', 'join_primary', 'apply_settings']);
    expect(byRole('demoted')).toEqual(['draining', 'demote_timeout', 'demoted', 'prepare_maintenance']);
    expect(byRole('replica')).toEqual(expect.arrayContaining(['catchingup', 'secondary', 'prepare_promotion', 'report_lsn', 'fast_forward', 'join_secondary', 'wait_maintenance']));
    expect(NODE_STATES.filter((s) => roleOfState(s) === undefined)).toEqual(['init', 'stop_replication', 'wait_standby']);
    expect(roleOfState('dropped')).toBe('stopped');
    for (const s of NODE_STATES) expect([undefined, ...NODE_ROLES]).toContain(roleOfState(s));
  });
});

describe('planKeeperReload', () => {
  const running = { version: 1, name: 'node1', pgPort: 5433, nodeToken: 'old-token', onRoleChange: '/bin/a' } as unknown as KeeperConfig;

  it('applies the hook, its timeout and the node token, names the other changed fields, and shows no secret value', () => {
    const plan = planKeeperReload(running, { ...running, onRoleChange: '/bin/b', onRoleChangeTimeoutMs: 500, pgPort: 6000, nodeToken: 'new-token', replicationPassword: 'new-password' });
    expect(plan.next).toEqual({ ...running, onRoleChange: '/bin/b', onRoleChangeTimeoutMs: 500, nodeToken: 'new-token' });
    expect(plan.applied).toEqual([
      { field: 'onRoleChange', from: '/bin/a', to: '/bin/b' },
      { field: 'onRoleChangeTimeoutMs', from: '(none)', to: '500' },
      { field: 'nodeToken', from: '[redacted]', to: '[redacted]' },
    ]);
    expect(plan.needRestart).toEqual(['pgPort', 'replicationPassword']);
    expect(JSON.stringify(plan)).not.toContain('new-password');
    expect(JSON.stringify(plan.applied)).not.toContain('-token');
  });

  it('removes a hook taken out of the file, and finds nothing to do in the same file', () => {
    const { onRoleChange: _, ...without } = running;
    const plan = planKeeperReload(running, without as KeeperConfig);
    expect(plan.next).not.toHaveProperty('onRoleChange');
    expect(plan.applied).toEqual([{ field: 'onRoleChange', from: '/bin/a', to: '(none)' }]);
    expect(planKeeperReload(running, { ...running })).toEqual({ next: running, applied: [], needRestart: [] });
  });

  it('applies new monitors and their CA, showing the URLs but not the certificate, and compares lists by value', () => {
    const withMonitors = { ...running, monitorUrl: 'https://127.0.0.1:8432', monitorUrls: ['https://127.0.0.1:8432'], monitorCaCertificate: 'OLD PEM' } as KeeperConfig;
    const urls = ['https://127.0.0.1:9001', 'https://127.0.0.1:9002'];
    const plan = planKeeperReload(withMonitors, { ...withMonitors, monitorUrl: urls[0]!, monitorUrls: urls, monitorCaCertificate: 'NEW PEM' });
    expect(plan.next).toMatchObject({ monitorUrl: urls[0], monitorUrls: urls, monitorCaCertificate: 'NEW PEM' });
    expect(plan.applied).toEqual([
      { field: 'monitorUrl', from: 'https://127.0.0.1:8432', to: 'https://127.0.0.1:9001' },
      { field: 'monitorUrls', from: '["https://127.0.0.1:8432"]', to: JSON.stringify(urls) },
      { field: 'monitorCaCertificate', from: '[redacted]', to: '[redacted]' },
    ]);
    expect(plan.needRestart).toEqual([]);
    expect(planKeeperReload(withMonitors, { ...withMonitors, monitorUrls: ['https://127.0.0.1:8432'] }).applied).toEqual([]);
  });

  it('leaves alone the identifier the keeper records itself in the file while it runs', () => {
    expect(planKeeperReload(running, { ...running, systemIdentifier: '7312345678901234567' })).toEqual({ next: running, applied: [], needRestart: [] });
  });
});

describe('isServiceCommandLine', () => {
  it('recognises pgha keeper run for this data directory, relative to the process working directory', () => {
    expect(isServiceCommandLine(['/usr/bin/node', '/opt/pgha/bin/pgha.js', 'keeper', 'run', '--pgdata', 'data'], 'keeper', '/srv/pg/data', '/srv/pg')).toBe(true);
    expect(isServiceCommandLine(['node', 'pgha', 'keeper', 'run', '--pgdata=/srv/pg/data/'], 'keeper', '/srv/pg/data', '/')).toBe(true);
    expect(isServiceCommandLine(['node', 'pgha', 'keeper', 'run', '--pgdata', '/srv/other'], 'keeper', '/srv/pg/data', '/')).toBe(false);
    expect(isServiceCommandLine(['node', 'pgha', 'monitor', 'run', '--pgdata', '/srv/pg/data'], 'keeper', '/srv/pg/data', '/')).toBe(false);
    expect(isServiceCommandLine(['sleep', '100'], 'keeper', '/srv/pg/data', '/')).toBe(false);
    // Another user's process, whose working directory cannot be read: a relative path counts.
    expect(isServiceCommandLine(['node', 'pgha', 'keeper', 'run', '--pgdata', 'data'], 'keeper', '/srv/pg/data', undefined)).toBe(true);
    expect(isServiceCommandLine(['node', 'pgha', 'keeper', 'run', '--pgdata', '/srv/other'], 'keeper', '/srv/pg/data', undefined)).toBe(false);
  });

  it('recognises pgha monitor run for the monitor, and no keeper as one', () => {
    expect(isServiceCommandLine(['node', 'pgha', 'monitor', 'run', '--pgdata', '/srv/m/pgdata'], 'monitor', '/srv/m/pgdata', '/')).toBe(true);
    expect(isServiceCommandLine(['node', 'pgha', 'monitor', 'run', '--pgdata', 'pgdata'], 'monitor', '/srv/m/pgdata', '/srv/m')).toBe(true);
    expect(isServiceCommandLine(['node', 'pgha', 'keeper', 'run', '--pgdata', '/srv/m/pgdata'], 'monitor', '/srv/m/pgdata', '/')).toBe(false);
    expect(isServiceCommandLine(['node', 'pgha', 'monitor', 'create', '--pgdata', '/srv/m/pgdata'], 'monitor', '/srv/m/pgdata', '/')).toBe(false);
  });
});
