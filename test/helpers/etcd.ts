/**
 * A real etcd for tests: one member, or three as a cluster, on free loopback ports in a test
 * directory, optionally with TLS (members' certificates signed by a test CA, client
 * certificates required or not). The product's `startLocalEtcd` (`pgha up --monitors`) starts
 * it; here every member is tracked by PID and ended by `endAllProcesses`, even when a test fails.
 */
import { createCertificateAuthority, type KeyAndCertificate } from '@pgha/monitor';
import { startLocalEtcd, type LocalEtcd } from '../../packages/cli/src/local-etcd.js';
import { makeTestDir, trackPid } from './processes.js';

/** A running test etcd, and its CA when it runs with TLS. */
export interface TestEtcd extends LocalEtcd {
  dir: string;
  ca?: KeyAndCertificate;
}

/**
 * Starts etcd for a test and waits until it is healthy.
 *
 * ### Examples
 * ```ts
 * const etcd = await startEtcd();                                  // 1 member, plain
 * const secure = await startEtcd({ members: 3, tls: true, clientCertAuth: true });
 * // pgha monitor create --store secure.storeUri('/t1') --store-ca-file secure.tls!.caFile …
 * ```
 */
export async function startEtcd(options: { members?: 1 | 3; tls?: boolean; clientCertAuth?: boolean; extraArgs?: string[]; host?: string; netns?: string } = {}): Promise<TestEtcd> {
  const dir = makeTestDir();
  const ca = options.tls ? createCertificateAuthority('pgha test etcd CA') : undefined;
  const etcd = await startLocalEtcd({
    dir,
    ...(options.members ? { members: options.members } : {}),
    ...(ca ? { tls: { ca, clientCertAuth: options.clientCertAuth ?? false } } : {}),
    ...(options.extraArgs ? { extraArgs: options.extraArgs } : {}),
    ...(options.host ? { host: options.host } : {}),
    ...(options.netns ? { netns: options.netns } : {}),
  });
  for (const m of etcd.members) trackPid(m.pid);
  return { ...etcd, dir, ...(ca ? { ca } : {}) };
}
