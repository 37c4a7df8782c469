/**
 * What the actions of the client commands (`set`, `get`, `show settings|postgresql`, `create|drop
 * formation`) share: a client of the monitors with the CLI's credentials, and printing. The
 * client's modules are loaded when an action runs, not when the commands are defined (issue 17
 * §4: `pgha --help` loads no HTTP client).
 */
import type { MonitorClient } from '@pgha/client';
import { cliCredentials } from './credentials.js';

/** Runs `fn` with a client of `monitors` (the CLI's credentials), closed after. */
export async function withClient<T>(monitors: readonly string[], fn: (c: MonitorClient) => Promise<T>): Promise<T> {
  const { MonitorClient } = await import('@pgha/client');
  const client = new MonitorClient(monitors, cliCredentials());
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** Prints a line to stdout. */
export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Prints `value` as indented JSON (`--json`). */
export function printJson(value: unknown): void {
  print(JSON.stringify(value, null, 2));
}

/** Prints what a change did: its sentences, or that nothing changed; warnings go to stderr. */
export function printChange(changes: readonly string[], unchanged: string, warnings: readonly string[] = []): void {
  print(changes.length > 0 ? changes.join('\n') : unchanged);
  for (const w of warnings) process.stderr.write(`pgha: warning: ${w}\n`);
}
