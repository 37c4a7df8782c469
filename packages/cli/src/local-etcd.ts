/**
 * A local etcd: one member, or three as a cluster, on free loopback ports, each with its data
 * directory and log under one directory; optionally with TLS (every member's certificate
 * signed by a given CA, client certificates required or not). For `pgha up --monitors 3` and
 * the tests (`test/helpers/etcd.ts`), never for production: members run on one machine.
 *
 * Every member runs with `--auto-compaction-mode=revision --auto-compaction-retention=1000`
 * (etcd keeps the last 1,000 revisions of history, docs/monitor-ha.md) and
 * `--max-txn-ops=1024` (see `ETCD_MAX_TXN_OPS`), and with a clean environment: etcd reads
 * `ETCD_*` variables as flags, and pgha's behaviour never depends on the environment.
 *
 * Source: etcd's own `Procfile` (three local members on 2379/22379/32379, peers on
 * 2380/22380/32380), with free ports instead.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import getPort from 'get-port';
import { generateKeyPair, issueServerCertificate, type KeyAndCertificate } from '@pgha/monitor';
import { isProcessAlive, pollUntil, waitFor, writeSecretFile } from '@pgha/postgres/base';
import { PghaError } from '@pgha/shared/base';

/** Debian 12's etcd (package etcd-server). */
export const ETCD_BINARY = '/usr/bin/etcd';

/**
 * `--max-txn-ops` of local members: a monitor's transaction compares the revisions of what it
 * read and writes in one Txn (`store/etcd/etcd-transaction.ts`); etcd's default of 128
 * operations is tight for a batch of reports across many formations.
 */
export const ETCD_MAX_TXN_OPS = 1024;

/** Revisions of history a member keeps (`--auto-compaction-retention` in revision mode). */
export const ETCD_COMPACTION_RETENTION_REVISIONS = 1000;

/** One running member. */
export interface LocalEtcdMember {
  name: string;
  /** `http(s)://127.0.0.1:PORT`. */
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  logFile: string;
  pid: number;
}

/** The TLS files of a local etcd with TLS. */
export interface LocalEtcdTls {
  /** The CA every member's certificate chains to. */
  caFile: string;
  /** Whether members require a client certificate issued by the CA. */
  clientCertAuth: boolean;
  /** A client certificate and key issued by the CA, for monitors and etcdctl. */
  clientCertFile: string;
  clientKeyFile: string;
}

/** A running local etcd. */
export interface LocalEtcd {
  members: LocalEtcdMember[];
  /** Every member's `127.0.0.1:PORT`. */
  endpoints: string[];
  tls?: LocalEtcdTls;
  /** The store URI of `pgha monitor create --store`: `etcd://h:p,h:p[/prefix]`. */
  storeUri(prefix?: string): string;
  /** Stops every member (SIGTERM, then SIGKILL after 10 s). */
  stop(): Promise<void>;
  /**
   * Starts a member that stopped (or was killed) again, with its flags and data: `member.pid`
   * becomes the new process's. Resolves once it runs (not once the cluster is healthy).
   *
   * @throws PghaError `PGHA_ERR_CONFIG` when it cannot be started.
   */
  restartMember(name: string): LocalEtcdMember;
}

/** Options of {@link startLocalEtcd}. */
export interface StartLocalEtcdOptions {
  /** Members' directories are made under it: `etcd-<n>/{data,member.log,tls/}`. */
  dir: string;
  /** Default 1. */
  members?: 1 | 3;
  /** TLS on client and peer URLs, every certificate signed by `ca`. */
  tls?: { ca: KeyAndCertificate; clientCertAuth?: boolean };
  /** How long to wait for every member to be healthy (ms); default 30 s. */
  readyTimeoutMs?: number;
  /** Extra members' flags (tests: `--election-timeout`…). */
  extraArgs?: readonly string[];
  /** The etcd program; default {@link ETCD_BINARY}. */
  binary?: string;
  /** The address members listen on and advertise; default 127.0.0.1. */
  host?: string;
  /** A network namespace to run the members in (`ip netns exec`; tests of partitions). */
  netns?: string;
  /**
   * Start again the members of an earlier start in `dir` (same names, ports and data
   * directories, recorded in `dir/etcd-cluster.json`) when there was one: `pgha up` run again
   * on its directory. etcd ignores its `--initial-cluster*` flags for a member that has data.
   */
  reuse?: boolean;
}

/** What {@link startLocalEtcd} records in `dir/etcd-cluster.json` to start the same members again. */
interface RecordedCluster {
  token: string;
  members: Omit<LocalEtcdMember, 'pid'>[];
}

/** One member's flags (no environment is read: every flag is given). */
export function etcdMemberArgs(m: { name: string; dataDir: string; clientUrl: string; peerUrl: string }, cluster: string, token: string, tls?: { caFile: string; certFile: string; keyFile: string; clientCertAuth: boolean }): string[] {
  return [
    `--name=${m.name}`,
    `--data-dir=${m.dataDir}`,
    `--listen-client-urls=${m.clientUrl}`,
    `--advertise-client-urls=${m.clientUrl}`,
    `--listen-peer-urls=${m.peerUrl}`,
    `--initial-advertise-peer-urls=${m.peerUrl}`,
    `--initial-cluster=${cluster}`,
    '--initial-cluster-state=new',
    `--initial-cluster-token=${token}`,
    '--auto-compaction-mode=revision',
    `--auto-compaction-retention=${ETCD_COMPACTION_RETENTION_REVISIONS}`,
    `--max-txn-ops=${ETCD_MAX_TXN_OPS}`,
    '--logger=zap',
    '--log-outputs=stderr',
    ...(tls
      ? [
          `--cert-file=${tls.certFile}`,
          `--key-file=${tls.keyFile}`,
          // etcd requires client certificates as soon as it has a trusted CA file.
          ...(tls.clientCertAuth ? [`--trusted-ca-file=${tls.caFile}`, '--client-cert-auth'] : []),
          `--peer-cert-file=${tls.certFile}`,
          `--peer-key-file=${tls.keyFile}`,
          `--peer-trusted-ca-file=${tls.caFile}`,
          '--peer-client-cert-auth',
        ]
      : []),
  ];
}

/** Writes a key and a certificate signed by `ca` for `hosts`; returns their paths. */
function issueFiles(ca: KeyAndCertificate, dir: string, name: string, hosts: readonly string[]): { certFile: string; keyFile: string } {
  const keys = generateKeyPair();
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  writeSecretFile(keyFile, keys.privateKeyPem);
  writeSecretFile(certFile, issueServerCertificate(ca, keys.publicKeyPem, hosts), 0o644);
  return { certFile, keyFile };
}

/** GET /health of a member: whether it answers `{"health":"true"}` (it has a leader). */
function memberHealthy(clientUrl: string, tls: LocalEtcdTls | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const url = new URL('/health', clientUrl);
    const options = {
      timeout: 2000,
      ...(tls ? { ca: readFileSync(tls.caFile), cert: readFileSync(tls.clientCertFile), key: readFileSync(tls.clientKeyFile) } : {}),
    };
    const req = (tls ? request : httpRequest)(url, options, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && /"health":\s*"true"/.test(body)));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** The last lines of a member's log, for an error message. */
function logTail(logFile: string): string {
  try {
    return readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return '(no log)';
  }
}

/**
 * Starts a local etcd and waits until every member is healthy.
 *
 * @throws PghaError `PGHA_ERR_CONFIG` when etcd is not installed; `PGHA_ERR_TIMEOUT` when a
 *   member exits or is not healthy in time (its log's last lines in the message). Members
 *   started before the failure are stopped.
 *
 * ### Examples
 * ```ts
 * const etcd = await startLocalEtcd({ dir, members: 3, tls: { ca } });
 * // pgha monitor create --store etcd.storeUri() --store-ca-file etcd.tls.caFile …
 * await etcd.stop();
 * ```
 */
export async function startLocalEtcd(options: StartLocalEtcdOptions): Promise<LocalEtcd> {
  const binary = options.binary ?? ETCD_BINARY;
  if (!existsSync(binary)) {
    throw new PghaError('PGHA_ERR_CONFIG', `etcd is not installed (${binary} is missing)`, { hint: 'install it as root: apt-get install -y etcd-server etcd-client (pgha up does it when run as root)' });
  }
  const count = options.members ?? 1;
  const scheme = options.tls ? 'https' : 'http';
  const used: number[] = [];
  const port = async (): Promise<number> => {
    const p = await getPort({ host: '127.0.0.1', exclude: used });
    used.push(p);
    return p;
  };
  const recordFile = join(options.dir, 'etcd-cluster.json');
  const recorded = options.reuse && existsSync(recordFile) ? (JSON.parse(readFileSync(recordFile, 'utf8')) as RecordedCluster) : undefined;
  const specs: Omit<LocalEtcdMember, 'pid'>[] = recorded?.members ?? [];
  const host = options.host ?? '127.0.0.1';
  for (let i = specs.length + 1; i <= count; i++) {
    const memberDir = join(options.dir, `etcd-${i}`);
    mkdirSync(memberDir, { recursive: true, mode: 0o700 });
    specs.push({
      name: `etcd-${i}`,
      clientUrl: `${scheme}://${host}:${await port()}`,
      peerUrl: `${scheme}://${host}:${await port()}`,
      dataDir: join(memberDir, 'data'),
      logFile: join(memberDir, 'member.log'),
    });
  }
  let tls: LocalEtcdTls | undefined;
  if (options.tls) {
    const tlsDir = join(options.dir, 'etcd-tls');
    mkdirSync(tlsDir, { recursive: true, mode: 0o711 });
    const caFile = join(tlsDir, 'ca.crt');
    writeFileSync(caFile, options.tls.ca.certificatePem, { mode: 0o644 });
    const client = issueFiles(options.tls.ca, tlsDir, 'client', ['pgha-monitor']);
    tls = { caFile, clientCertAuth: options.tls.clientCertAuth ?? false, clientCertFile: client.certFile, clientKeyFile: client.keyFile };
  }
  const cluster = specs.map((s) => `${s.name}=${s.peerUrl}`).join(',');
  const token = recorded?.token ?? `pgha-${randomBytes(6).toString('hex')}`;
  writeFileSync(recordFile, `${JSON.stringify({ token, members: specs } satisfies RecordedCluster, null, 2)}\n`, { mode: 0o644 });
  const members: LocalEtcdMember[] = [];
  const stop = async (): Promise<void> => {
    for (const m of members) if (isProcessAlive(m.pid)) process.kill(m.pid, 'SIGTERM');
    await pollUntil(() => members.every((m) => !isProcessAlive(m.pid)), { timeoutMs: 10_000, intervalMs: 50 });
    for (const m of members) if (isProcessAlive(m.pid)) process.kill(m.pid, 'SIGKILL');
  };
  const argsOf = new Map<string, string[]>();
  /** Starts one member's process; its pid. */
  const spawnMember = (spec: Omit<LocalEtcdMember, 'pid'>): number => {
    const log = openSync(spec.logFile, 'a', 0o600);
    const args = argsOf.get(spec.name)!;
    // `ip netns exec` execs etcd itself: the pid is the member's.
    const [file, argv] = options.netns ? ['ip', ['netns', 'exec', options.netns, binary, ...args]] : [binary, args];
    const child = spawn(file, argv, { stdio: ['ignore', log, log], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    closeSync(log);
    child.on('error', () => undefined);
    if (child.pid === undefined) throw new PghaError('PGHA_ERR_CONFIG', `etcd could not be started (${binary})`, { hint: 'check that it is executable' });
    child.unref();
    return child.pid;
  };
  try {
    for (const spec of specs) {
      const memberTls = tls && options.tls ? { caFile: tls.caFile, clientCertAuth: tls.clientCertAuth, ...issueFiles(options.tls.ca, join(options.dir, spec.name), 'server', [...new Set([host, '127.0.0.1', 'localhost'])]) } : undefined;
      argsOf.set(spec.name, [...etcdMemberArgs(spec, cluster, token, memberTls), ...(options.extraArgs ?? [])]);
      members.push({ ...spec, pid: spawnMember(spec) });
    }
    await waitFor(
      `etcd member${count > 1 ? 's' : ''} ${members.map((m) => m.clientUrl).join(', ')} to be healthy`,
      async () => {
        const dead = members.find((m) => !isProcessAlive(m.pid));
        if (dead) throw new PghaError('PGHA_ERR_TIMEOUT', `etcd member ${dead.name} exited: ${logTail(dead.logFile)}`);
        return (await Promise.all(members.map((m) => memberHealthy(m.clientUrl, tls)))).every(Boolean) || undefined;
      },
      { timeoutMs: options.readyTimeoutMs ?? 30_000, intervalMs: 100 },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const endpoints = members.map((m) => new URL(m.clientUrl).host);
  return {
    members,
    endpoints,
    ...(tls ? { tls } : {}),
    storeUri: (prefix?: string) => `etcd://${endpoints.join(',')}${prefix ?? ''}`,
    stop,
    restartMember(name) {
      const member = members.find((m) => m.name === name);
      if (!member) throw new PghaError('PGHA_ERR_CONFIG', `no etcd member ${name} (members: ${members.map((m) => m.name).join(', ')})`);
      if (isProcessAlive(member.pid)) return member;
      member.pid = spawnMember(member);
      return member;
    },
  };
}
