/**
 * A keeper newer than its monitor leaves out of its reports the field the monitor refused as
 * unknown, and only that one (`newer-report-fields.ts`, used by `Keeper.sendReport`).
 */
import { describe, expect, it } from 'vitest';
import { AuthError, ValidationError, type NodeReport } from '@pgha/shared';
import { NEWER_REPORT_FIELDS, refusedNewerField } from '../src/newer-report-fields.js';

/** A report carrying every field some monitors do not know. */
const REPORT = {
  reportedState: 'primary',
  postgresRunning: true,
  isInRecovery: false,
  lsn: '0/3000060',
  timeline: 1,
  upstreamStreaming: false,
  transitionInProgress: false,
  synchronousStandbyNames: '',
  problem: null,
  selfFence: { fencedAtMs: 1, reason: 'no monitor answered' },
  appliedGoalRevision: 7,
  shutdownCheckpointLsn: '0/3000028',
  parameters: { max_connections: '100' },
} as unknown as NodeReport;

/** The monitor's answer to a report with fields it does not know (routes/validate.ts). */
const unknown = (...fields: string[]) => new ValidationError(`body has unknown field(s): ${fields.join(', ')}`, { field: 'body', hint: 'see docs/api.md for the expected shape' });

describe('a report field an older monitor refuses', () => {
  it.each(Object.keys(NEWER_REPORT_FIELDS))('names %s when the monitor refuses it, and logs what the keeper does about it', (field) => {
    expect(refusedNewerField(REPORT, unknown(field))).toBe(field);
    expect(NEWER_REPORT_FIELDS[field as keyof typeof NEWER_REPORT_FIELDS]).toMatch(/older than this keeper/);
  });

  it('names the first of several refused at once; the next report, without it, gets the next one refused', () => {
    expect(refusedNewerField(REPORT, unknown('parameters', 'selfFence'))).toBe('selfFence');
    const { selfFence: _dropped, ...without } = REPORT as unknown as Record<string, unknown>;
    expect(refusedNewerField(without as unknown as NodeReport, unknown('parameters'))).toBe('parameters');
  });

  it('names nothing for a field the report does not carry, another unknown field, another error, or a field whose name only contains one', () => {
    const { parameters: _p, ...without } = REPORT as unknown as Record<string, unknown>;
    expect(refusedNewerField(without as unknown as NodeReport, unknown('parameters'))).toBeUndefined();
    expect(refusedNewerField(REPORT, unknown('pgIsRunning'))).toBeUndefined();
    expect(refusedNewerField(REPORT, unknown('parametersV2'))).toBeUndefined();
    expect(refusedNewerField(REPORT, new ValidationError('body.lsn: Invalid', { field: 'body.lsn', hint: '' }))).toBeUndefined();
    expect(refusedNewerField(REPORT, new AuthError('PGHA_ERR_UNAUTHENTICATED', 'unknown field(s): parameters'))).toBeUndefined();
  });
});
