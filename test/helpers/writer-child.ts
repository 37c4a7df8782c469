/**
 * A writer in its own process, for a client on one side of a network cut: started by
 * {@link NamespacedWriter} (history.ts) as `ip netns exec NS node --import tsx writer-child.ts CONFIG`.
 * Runs a {@link HistoryProbe} and streams every record to stdout as one JSON line, its times
 * on the machine's monotonic clock (ms) so the parent can map them onto its own. Stops
 * cleanly on SIGTERM (the insert in flight finishes or fails first).
 *
 * CONFIG is JSON: `{ "name", "hosts": [{ "host", "port" }], "table", "firstId", "intervalMs"?, "queryTimeoutMs"? }`.
 */
import { HistoryProbe, toMonotonicMs, type WriteRecord } from './history-probe.js';

const config = JSON.parse(process.argv[2] ?? '{}') as {
  name: string;
  hosts: { host: string; port: number }[];
  table: string;
  firstId: number;
  intervalMs?: number;
  queryTimeoutMs?: number;
};

function emit(record: WriteRecord): void {
  const shifted =
    record.kind === 'ack'
      ? { ...record, sentAtMs: toMonotonicMs(record.sentAtMs), atMs: toMonotonicMs(record.atMs) }
      : { ...record, sentAtMs: toMonotonicMs(record.sentAtMs), failedAtMs: toMonotonicMs(record.failedAtMs) };
  process.stdout.write(`${JSON.stringify(shifted)}\n`);
}

const probe = new HistoryProbe(config.name, config.hosts, config.table, config.firstId, {
  ...(config.intervalMs !== undefined ? { intervalMs: config.intervalMs } : {}),
  ...(config.queryTimeoutMs !== undefined ? { queryTimeoutMs: config.queryTimeoutMs } : {}),
  onRecord: emit,
});
probe.start();
process.stdout.write(`${JSON.stringify({ kind: 'started' })}\n`);
process.once('SIGTERM', () => {
  void probe.stop().then(() => process.exit(0));
});
