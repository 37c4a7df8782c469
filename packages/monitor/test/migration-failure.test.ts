import { describe, expect, it } from 'vitest';
import { migrationFailureMessage } from '../src/store/postgres/db.js';

const KNOWN = ['0001_create_monitor_schema', '0002_add_node_sync_names_and_destroy', '0003_add_node_group_index'];
const connect = new Error('connect ENOENT /srv/m/pgdata.pgha/run/.s.PGSQL.36235');

describe('migrationFailureMessage: every migration error names its migrations', () => {
  it('names the migration that failed', () => {
    const results = [
      { migrationName: KNOWN[0]!, direction: 'Up' as const, status: 'Success' as const },
      { migrationName: KNOWN[1]!, direction: 'Up' as const, status: 'Error' as const },
      { migrationName: KNOWN[2]!, direction: 'Up' as const, status: 'NotExecuted' as const },
    ];
    expect(migrationFailureMessage(results, KNOWN, new Error('column "x" already exists'))).toBe('migration 0002_add_node_sync_names_and_destroy failed: column "x" already exists');
  });

  it('names the migrations left unapplied when none failed itself', () => {
    const results = [
      { migrationName: KNOWN[1]!, direction: 'Up' as const, status: 'NotExecuted' as const },
      { migrationName: KNOWN[2]!, direction: 'Up' as const, status: 'NotExecuted' as const },
    ];
    expect(migrationFailureMessage(results, KNOWN, connect)).toBe(`migrations 0002_add_node_sync_names_and_destroy, 0003_add_node_group_index not applied: ${connect.message}`);
  });

  it('says that none ran, and which it had to apply, when the store could not be reached (never an empty name)', () => {
    const message = migrationFailureMessage(undefined, KNOWN, connect);
    expect(message).toBe(`no migration ran: could not reach the store, or read its migration table, to apply migrations 0001_create_monitor_schema to 0003_add_node_group_index: ${connect.message}`);
    expect(message).not.toMatch(/migration {2}/);
    expect(migrationFailureMessage([], KNOWN.slice(0, 1), 'timeout')).toBe('no migration ran: could not reach the store, or read its migration table, to apply migration 0001_create_monitor_schema: timeout');
  });
});
