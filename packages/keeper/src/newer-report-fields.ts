/**
 * Report fields that some monitors do not know yet: a keeper newer than its monitor leaves one out
 * of its reports once the monitor refuses it as unknown (the monitor's 400, `body has unknown
 * field(s): …`), rather than fail every report and never get a goal. Upgrading the monitor
 * before its keepers avoids it (docs/install.md, "Upgrade").
 */
import { ValidationError, type NodeReport } from '@pgha/shared';

/**
 * Report fields newer than some monitors, with what the keeper logs when a monitor refuses one as
 * unknown (400 `unknown field(s): …`): it then reports without that field (see `sendReport`).
 */
export const NEWER_REPORT_FIELDS = {
  selfFence: 'the monitor does not know self-fence reports (it is older than this keeper): the self-fence is not in its events; upgrade the monitor before its keepers',
  appliedGoalRevision: 'the monitor does not take the applied goal revision in reports (it is older than this keeper): reporting without it',
  shutdownCheckpointLsn: "the monitor does not take the shutdown checkpoint's location in reports (it is older than this keeper): reporting without it",
  parameters: "the monitor does not take the node's Postgres parameters in reports (it is older than this keeper): reporting without them",
} as const satisfies Partial<Record<keyof NodeReport, string>>;

/** A field of {@link NEWER_REPORT_FIELDS}. */
export type NewerReportField = keyof typeof NEWER_REPORT_FIELDS;

/**
 * The field of {@link NEWER_REPORT_FIELDS} that `report` carries and `err` refuses as unknown
 * (the monitor's `ValidationError`: `body has unknown field(s): a, b`), if any.
 */
export function refusedNewerField(report: NodeReport, err: unknown): NewerReportField | undefined {
  if (!(err instanceof ValidationError)) return undefined;
  return (Object.keys(NEWER_REPORT_FIELDS) as NewerReportField[]).find((f) => report[f] !== undefined && new RegExp(`unknown field\\(s\\):.*\\b${f}\\b`).test(err.message));
}
