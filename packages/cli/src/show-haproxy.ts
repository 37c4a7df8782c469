/**
 * `pgha show haproxy`: an HAProxy configuration for a formation. A write port leads to the
 * node whose keeper answers `GET /primary` with 200 (the writable primary, one at most), a
 * read port to the nodes that answer `GET /replica` with 200 (streaming standbys). HAProxy
 * checks each keeper's HTTP server (HTTPS verified against the monitor's CA when the nodes
 * use TLS) and cuts the sessions of a node it marks down, so that clients reconnect to the
 * new primary after a failover.
 * Source: Patroni's `haproxy.cfg` example (`option httpchk OPTIONS /master`).
 */
import { resolve } from 'node:path';
import { MonitorClient } from '@pgha/client';
import { ValidationError, formatHostPort, type NodeStateRow } from '@pgha/shared/base';
import { caFileGiven, cliCredentials } from './credentials.js';

/** Options of {@link renderHaproxyConfig}. */
export interface HaproxyOptions {
  formation: string;
  /** Port of the write frontend (default 5000). */
  writePort: number;
  /** Port of the read frontend (default 5001). */
  readPort: number;
  /** Address HAProxy binds both frontends to (default `*`, every address). */
  bind: string;
  /** With it, a standby lagging more than this many bytes leaves the read backend (`/replica?max_lag_bytes=N`). */
  maxLagBytes?: number;
  /** CA that the keepers' HTTPS certificates chain to (absolute path); needed when they serve HTTPS. */
  caFile?: string;
}

/**
 * The check timing of every server: a check every second while up; once one fails, every
 * 250 ms until two have failed (`fall 2`: a crashed primary leaves the write backend within
 * about 1.5 s); every 250 ms while down, and back up at the first answer 200 (`rise 1`: the
 * promoted standby takes writes as soon as its keeper says so).
 */
const CHECK_TIMING = 'inter 1s fastinter 250ms downinter 250ms rise 1 fall 2';

/**
 * What a client's connection does to a server that refuses it: the server is marked down at
 * once (`observe layer4 error-limit 1 on-error mark-down`), and the connection is retried on
 * another server at once (`option redispatch 1` in `defaults`: HAProxy redispatches without its
 * one-second turn-around when the balancing is round robin and another server is up). A
 * primary that died loudly fails over in about 0.4 s (docs/timeouts.md, "A loud death"), well
 * before its checks fail twice: without these, the write backend held the dead primary and the
 * promoted standby together for up to a second, and a connection sent to the dead one waited
 * through two retries a second apart.
 */
const ON_CONNECTION_ERROR = 'observe layer4 error-limit 1 on-error mark-down';

/**
 * Renders the configuration: `global`, `defaults`, and per role a frontend and a backend with
 * one `server` line per node of the formation that is not being dropped.
 *
 * @throws ValidationError when the keepers serve HTTPS and no CA file is given, or when the
 *   formation has no node.
 */
export function renderHaproxyConfig(rows: readonly NodeStateRow[], o: HaproxyOptions): string {
  const nodes = rows.filter((r) => r.goal_state !== 'dropped');
  if (nodes.length === 0) throw new ValidationError(`formation "${o.formation}" has no nodes`, { hint: 'add nodes with pgha keeper create postgres first' });
  const https = nodes.some((n) => n.keeper_http_url.startsWith('https:'));
  if (https && !o.caFile) {
    throw new ValidationError("the keepers serve HTTPS: HAProxy needs the CA that signed their certificates", { hint: "pass --ssl-ca-file (the monitor's tls/ca.crt) or set PGHA_SSL_CA_FILE", field: 'sslCaFile' });
  }
  const server = (n: NodeStateRow): string => {
    const http = new URL(n.keeper_http_url);
    const check = [`check addr ${http.hostname.replace(/^\[|\]$/g, '')} port ${http.port || (http.protocol === 'https:' ? 443 : 80)}`];
    // The certificate names the node's host (it is the node's Postgres certificate).
    if (http.protocol === 'https:') check.push(`check-ssl verify required ca-file ${o.caFile} verifyhost ${n.host}`);
    return `    server ${n.name} ${formatHostPort(n.host, n.port)} ${check.join(' ')}`;
  };
  const section = (role: 'write' | 'read', port: number, path: string, extra: string[]): string[] => [
    `frontend pgha_${o.formation}_${role}`,
    `    bind ${o.bind}:${port}`,
    `    default_backend pgha_${o.formation}_${role === 'write' ? 'primary' : 'replicas'}`,
    '',
    `backend pgha_${o.formation}_${role === 'write' ? 'primary' : 'replicas'}`,
    ...extra,
    `    option httpchk GET ${path}`,
    '    http-check expect status 200',
    `    default-server ${CHECK_TIMING} ${ON_CONNECTION_ERROR} on-marked-down shutdown-sessions`,
    ...nodes.map(server),
    '',
  ];
  return [
    `# HAProxy configuration for pgha formation "${o.formation}", from pgha show haproxy.`,
    `# Port ${o.writePort}: the writable primary (its keeper answers GET /primary with 200).`,
    `# Port ${o.readPort}: the streaming standbys (GET /replica${o.maxLagBytes !== undefined ? `?max_lag_bytes=${o.maxLagBytes}` : ''}).`,
    '# Print it again after adding or dropping a node.',
    'global',
    '    maxconn 1000',
    '',
    'defaults',
    '    mode tcp',
    '    retries 2',
    '    option redispatch 1',
    '    timeout connect 4s',
    '    timeout client 30m',
    '    timeout server 30m',
    '    timeout check 2s',
    '',
    ...section('write', o.writePort, '/primary', []),
    ...section('read', o.readPort, o.maxLagBytes !== undefined ? `/replica?max_lag_bytes=${o.maxLagBytes}` : '/replica', ['    balance roundrobin']),
  ].join('\n');
}

/** `pgha show haproxy`. */
export async function showHaproxy(monitors: readonly string[], o: Omit<HaproxyOptions, 'caFile'>): Promise<void> {
  if (o.writePort === o.readPort) throw new ValidationError(`--write-port and --read-port are both ${o.writePort}`, { hint: 'give them different ports' });
  const client = new MonitorClient(monitors, cliCredentials());
  try {
    const rows = await client.formationState(o.formation);
    const caFile = caFileGiven();
    process.stdout.write(renderHaproxyConfig(rows, { ...o, ...(caFile ? { caFile: resolve(caFile) } : {}) }));
  } finally {
    await client.close();
  }
}
