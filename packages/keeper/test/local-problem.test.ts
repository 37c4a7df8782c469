import { describe, expect, it } from 'vitest';
import { DATA_DISK_FULL_BYTES, PROBLEM_MAX_CHARS, diskProblem, lastServerFailure, problemSentence } from '../src/local-problem.js';

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
