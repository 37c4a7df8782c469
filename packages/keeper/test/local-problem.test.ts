import { describe, expect, it } from 'vitest';
import { DATA_DISK_FULL_BYTES, PROBLEM_MAX_CHARS, STUCK_GRACE_MS, StuckClock, diskProblem, failingStepProblem, lastServerFailure, notStreamingProblem, problemSentence, stableMessage } from '../src/local-problem.js';

describe('local problems a keeper reports', () => {
  it('a file system with less than one WAL segment free is full, and the sentence does not move with the free bytes', () => {
    expect(diskProblem('/d/pgdata', DATA_DISK_FULL_BYTES, 2 ** 30)).toBeUndefined();
    const a = diskProblem('/d/pgdata', 0, 128 * 2 ** 20);
    expect(a).toBe('no space left on device: the file system of /d/pgdata (128 MiB) has less than 16 MiB free');
    expect(diskProblem('/d/pgdata', DATA_DISK_FULL_BYTES - 1, 128 * 2 ** 20)).toBe(a);
  });

  it('the last PANIC or FATAL line of the server log, without its prefix and with numbers that change masked', () => {
    const log = [
      '2026-11-21 12:00:00.123 UTC [4242] LOG:  starting PostgreSQL 15',
      '2026-11-21 12:00:01.456 UTC [4243] FATAL:  the database system is starting up',
      '2026-11-21 12:00:02.789 UTC [4250] PANIC:  could not write to file "pg_wal/xlogtemp.4250": No space left on device',
      '2026-11-21 12:00:02.800 UTC [4242] LOG:  startup process (PID 4250) was terminated by signal 6: Aborted',
    ].join('\n');
    expect(lastServerFailure(log)).toBe('PANIC: could not write to file "pg_wal/xlogtemp.N": No space left on device');
    expect(lastServerFailure('LOG:  database system is ready to accept connections\n')).toBeUndefined();
  });

  it('joins problems into one sentence within the protocol limit, null when none', () => {
    expect(problemSentence([undefined, undefined])).toBeNull();
    expect(problemSentence(['a', undefined, 'b'])).toBe('a; b');
    expect(problemSentence(['x'.repeat(600)])!.length).toBe(PROBLEM_MAX_CHARS);
  });
});

describe('states that last: how long a condition has held, and the sentence reported after STUCK_GRACE_MS', () => {
  it('StuckClock keeps the first time of the same key, starts again on another, and ends on undefined', () => {
    const clock = new StuckClock();
    expect(clock.note('transition from demoted to catchingup', 1000)).toBe(0);
    expect(clock.note('transition from demoted to catchingup', 1000 + STUCK_GRACE_MS)).toBe(STUCK_GRACE_MS);
    expect(clock.heldForMs(1000 + STUCK_GRACE_MS + 1)).toBe(STUCK_GRACE_MS + 1);
    expect(clock.note('keeping catchingup', 9000)).toBe(0);
    expect(clock.key).toBe('keeping catchingup');
    expect(clock.note(undefined, 9500)).toBe(0);
    expect(clock.heldForMs(9600)).toBeUndefined();
    expect(clock.key).toBeUndefined();
  });

  it('a failing step gives one stable sentence however its error varies in numbers, on its first line only', () => {
    const a = failingStepProblem('transition from demoted to catchingup', 'pg_basebackup failed (exit 1): connection to server at "127.0.0.1", port 41234 failed: FATAL:  role "pgha_replication" is not permitted to log in\nmore detail');
    const b = failingStepProblem('transition from demoted to catchingup', 'pg_basebackup failed (exit 1): connection to server at "127.0.0.1", port 41234 failed: FATAL:  role "pgha_replication" is not permitted to log in\nother detail');
    expect(a).toBe(b);
    expect(a).toBe('transition from demoted to catchingup fails: pg_basebackup failed (exit 1): connection to server at "127.0.0.1", port N failed: FATAL:  role "pgha_replication" is not permitted to log in (the keeper retries)');
    expect(stableMessage('x'.repeat(400))).toHaveLength(300);
  });

  it('a standby that does not stream names its upstream and the WAL receiver\'s last error', () => {
    const upstream = { nodeId: 1, name: 'node1', host: '127.0.0.1', port: 5432 };
    expect(notStreamingProblem(upstream, 'FATAL: could not connect to the primary server: Connection refused')).toBe(
      'the WAL receiver does not stream from node 1 "node1" (127.0.0.1:5432): FATAL: could not connect to the primary server: Connection refused',
    );
    expect(notStreamingProblem(null, undefined)).toBe('the WAL receiver does not stream from its upstream (the monitor names none yet): no error in the server log');
  });
});
