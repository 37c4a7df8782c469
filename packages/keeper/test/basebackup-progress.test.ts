import { describe, expect, it } from 'vitest';
import { describeProgress, formatBytes } from '@pgha/shared';
import { ProgressLogThrottle, parseBasebackupProgress } from '../src/postgres/basebackup-progress.js';

describe("pg_basebackup's progress", () => {
  it('reads the lines pg_basebackup --progress writes, and nothing else', () => {
    expect(parseBasebackupProgress('     0/22945 kB (0%), 0/1 tablespace')).toEqual({ phase: 'basebackup', doneBytes: 0, totalBytes: 22945 * 1024 });
    expect(parseBasebackupProgress('22953/22953 kB (100%), 1/1 tablespace')).toEqual({ phase: 'basebackup', doneBytes: 22953 * 1024, totalBytes: 22953 * 1024 });
    expect(parseBasebackupProgress('12345 kB (0%), 0/1 tablespace')).toEqual({ phase: 'basebackup', doneBytes: 12345 * 1024, totalBytes: null });
    expect(parseBasebackupProgress('pg_basebackup: initiating base backup, waiting for checkpoint to complete')).toBeUndefined();
    expect(parseBasebackupProgress('WARNING:  skipping special file "./x"')).toBeUndefined();
  });

  it('says it for people', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(16 * 1024 * 1024)).toBe('16.0 MB');
    expect(describeProgress({ phase: 'basebackup', doneBytes: 105 * 1024 * 1024, totalBytes: 100 * 1024 * 1024 })).toBe('base backup 100% (105.0 MB of 100.0 MB)');
    expect(describeProgress({ phase: 'basebackup', doneBytes: 3 * 1024, totalBytes: null })).toBe('base backup 3.0 kB');
  });

  it('logs the first value, every 10 %, 100 %, and after 30 s of silence only what moved', () => {
    const t = new ProgressLogThrottle();
    const p = (done: number, total: number | null = 1000) => ({ phase: 'basebackup' as const, doneBytes: done, totalBytes: total });
    const logged = [p(0), p(50), p(99), p(100), p(150), p(290), p(310), p(310), p(995), p(1000), p(1001)].filter((v, i) => t.shouldLog(v, i * 1000)).map((v) => v.doneBytes);
    expect(logged).toEqual([0, 100, 290, 310, 995, 1000]);
    const slow = new ProgressLogThrottle();
    expect([0, 10_000, 31_000, 40_000, 70_000, 80_000].map((ms, i) => slow.shouldLog(p(i === 4 ? 3 : i > 1 ? 2 : i, null), ms))).toEqual([true, false, true, false, true, false]);
  });
});
