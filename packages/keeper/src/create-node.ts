/**
 * `pgha keeper create postgres`: register the node with the monitor, write the keeper's
 * files, and run the keeper until the node is initialised (`single` for the first node,
 * `catchingup`/`secondary` after a base backup for the others).
 */
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { WRITABLE_STATES, ConflictError, DEFAULT_FORMATION, DEFAULT_KEEPER_HTTP_PORT, PghaError, RegisterNodeRequest, ValidationError, formatDurationMs, formatHostPort, parseHostPort, type NodeState } from '@pgha/shared/base';
import { assertHttpListenFree } from './http/keeper-http-server.js';
import { Keeper } from './loop.js';
import { readPasswordFile, setRolePassword, socketDirFor, ensurePghaDir, pghaDirFor, writeJsonAtomic, inspectPidFile, readPem, writeOwnedFileIfChanged, ensureOwnedDir, isEmptyOrMissing, isPgData, postmasterPid, postmasterPort, assertOwnDataDirectory, portInUse } from '@pgha/postgres';
import { keeperHttpAddress, keeperHttpListen, keeperPaths, loadKeeperConfig, loadKeeperState, monitorUrlFields, postgresTlsDir, saveKeeperState, type KeeperConfig } from './keeper-config.js';
import { MonitorClient, type MonitorCredentials } from '@pgha/client';

/** Options of {@link createNode}, as the CLI flags give them. */
export interface CreateNodeOptions {
  /** The monitors, in the order tried (`--monitor URL[,URL…]`); registration goes to the first that answers. */
  monitorUrls: readonly string[];
  pgdata: string;
  pgPort: number;
  name: string;
  /** Address other nodes and the monitors reach this node at; default: the local address that routes to the first monitor. */
  hostname?: string;
  formation?: string;
  candidatePriority?: number;
  replicationQuorum?: boolean;
  auth?: KeeperConfig['auth'];
  /** How long to wait for the node to be initialised, in ms (default 300 000). */
  timeoutMs?: number;
  /** The operator token (registration needs it) and the monitor's CA. */
  credentials?: MonitorCredentials;
  /**
   * TLS of the node's Postgres (default `verify-full`, certificate signed by the monitor's
   * CA). `caFile` is the CA of every node's certificate when the operator brings their own
   * (`certFile`, `keyFile`); `disable` is `--no-ssl`.
   */
  ssl?: { mode: 'verify-full' | 'verify-ca' | 'require'; caFile?: string; certFile?: string; keyFile?: string } | { mode: 'disable' };
  /** Role-change hook command (`--on-role-change`) and its limit in ms (`--on-role-change-timeout-ms`). */
  onRoleChange?: string;
  onRoleChangeTimeoutMs?: number;
  /**
   * `HOST:PORT` of the keeper's HTTP server (`--http-listen`); default `<hostname>:8008`, or
   * what the node's keeper.json already says.
   */
  httpListen?: string;
  /**
   * `--client-network`: networks (checked, `ADDRESS/PREFIX` each: `parseClientNetworks`) that
   * join the formation's client networks at registration, so that every node admits them.
   */
  clientNetworks?: readonly string[];
  /** `--skip-pg-hba`: the operator manages pg_hba.conf; the keeper never writes it. */
  skipPgHba?: boolean;
  /**
   * `--postgres-password-file`: a file (0600) holding the postgres role's password
   * (`readPasswordFile`), set once the node is the writable first node. A standby's role
   * replicates from the primary: the file is not applied there.
   */
  postgresPasswordFile?: string;
}

/** What {@link createNode} did. */
export interface CreatedNode {
  config: KeeperConfig;
  /** The state the node reached (`single`, `catchingup`, `secondary`, …). */
  state: NodeState;
  /** Whether the postgres role's password was set from `--postgres-password-file`; null without it. */
  postgresPasswordSet: boolean | null;
}

/** The node's Postgres key pair: a new one, or the operator's certificate and key (PEM). */
interface NodeTls {
  privateKeyPem: string;
  publicKeyPem?: string;
  certificatePem?: string;
  caPem?: string;
}

/** Reads the operator's TLS files or makes a key pair. @throws PghaError `PGHA_ERR_TLS` naming an unreadable file. */
function prepareNodeTls(ssl: NonNullable<CreateNodeOptions['ssl']>): NodeTls | undefined {
  if (ssl.mode === 'disable') return undefined;
  const caPem = ssl.caFile ? readPem(ssl.caFile, 'CA file') : undefined;
  if (ssl.certFile && ssl.keyFile) {
    const certificatePem = readPem(ssl.certFile, 'server certificate');
    const privateKeyPem = readPem(ssl.keyFile, 'server key');
    if (!new X509Certificate(certificatePem).checkPrivateKey(createPrivateKey(privateKeyPem))) {
      throw new PghaError('PGHA_ERR_TLS', `server key ${ssl.keyFile} does not match the certificate ${ssl.certFile}`);
    }
    return { privateKeyPem, certificatePem, ...(caPem ? { caPem } : {}) };
  }
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), ...(caPem ? { caPem } : {}) };
}

/** Writes the node's Postgres TLS files into {@link postgresTlsDir}, owned by the Postgres OS user. */
function writeNodeTls(pgdata: string, tls: { privateKeyPem: string; certificatePem: string; caPem: string }): void {
  const dir = postgresTlsDir(pgdata);
  ensurePghaDir(pghaDirFor(pgdata));
  ensureOwnedDir(dir);
  writeOwnedFileIfChanged(join(dir, 'server.key'), tls.privateKeyPem);
  writeOwnedFileIfChanged(join(dir, 'server.crt'), tls.certificatePem);
  writeOwnedFileIfChanged(join(dir, 'root.crt'), tls.caPem);
}

/** The local address the kernel would use to reach `host` (no packet is sent). */
export async function localAddressTowards(host: string): Promise<string> {
  const family = host.includes(':') ? 'udp6' : 'udp4';
  return new Promise((resolvePromise) => {
    const socket = createSocket(family);
    socket.on('error', () => {
      socket.close();
      resolvePromise(family === 'udp6' ? '::1' : '127.0.0.1');
    });
    socket.connect(9, host, () => {
      const address = socket.address().address;
      socket.close();
      resolvePromise(address);
    });
  });
}

const INITIALISED: ReadonlySet<NodeState> = new Set<NodeState>(['single', 'wait_primary', 'primary', 'catchingup', 'secondary']);

/**
 * Registers and initialises a node.
 *
 * @returns the written configuration, the state reached, and whether the postgres role's
 *   password was set.
 * @throws ValidationError for a non-empty --pgdata that is not a Postgres data directory;
 *   ConflictError for a port in use or a name taken; MonitorUnavailableError when the
 *   monitor cannot be reached (nothing is written then, so a retry starts clean); PghaError
 *   `PGHA_ERR_CONFIG` when the node's `keeper.json` or `state.json` is there but missing its
 *   partner, damaged, or for another node (nothing is done then).
 */
export async function createNode(options: CreateNodeOptions, log: Logger, signal: AbortSignal): Promise<CreatedNode> {
  const pgdata = resolve(options.pgdata);
  // Read before anything is created: a missing or world-readable file is refused with nothing done.
  const postgresPassword = options.postgresPasswordFile === undefined ? undefined : readPasswordFile(options.postgresPasswordFile, 'postgres password', 'postgres');
  const paths = keeperPaths(pgdata);
  const formation = options.formation ?? DEFAULT_FORMATION;
  // A node's files, once there, must be readable: a damaged one is refused here, before the monitor is asked anything.
  let config: KeeperConfig | undefined = existsSync(paths.config) || existsSync(paths.state) ? loadKeeperConfig(pgdata) : undefined;
  if (config) loadKeeperState(config);
  const runningKeeper = inspectPidFile(pgdata, 'keeper');
  if (runningKeeper.status === 'running') {
    throw new ConflictError(`a keeper runs for ${pgdata} (pid ${runningKeeper.pid})`, { hint: `stop it first with: pgha keeper stop --pgdata ${pgdata}` });
  }

  if (config && (config.name !== options.name || config.formation !== formation)) {
    throw new ConflictError(`${pgdata} already belongs to node "${config.name}" of formation "${config.formation}"`, {
      hint: `run it with: pgha keeper run --pgdata ${pgdata}`,
    });
  }
  const adopting = !config && isPgData(pgdata);
  if (!config) {
    if (adopting && existsSync(join(pgdata, 'standby.signal'))) {
      throw new ValidationError(`${pgdata} is a standby's data directory; only a primary (or standalone) Postgres can be adopted`, { field: 'pgdata' });
    }
    if (!adopting && !isEmptyOrMissing(pgdata)) {
      throw new ValidationError(`${pgdata} is not empty and is not a Postgres data directory`, {
        hint: 'point --pgdata at an empty or new directory',
        field: 'pgdata',
      });
    }
  }

  // A node created without TLS stays so when created again.
  const hookFields = {
    ...(options.onRoleChange !== undefined ? { onRoleChange: options.onRoleChange } : {}),
    ...(options.onRoleChangeTimeoutMs !== undefined ? { onRoleChangeTimeoutMs: options.onRoleChangeTimeoutMs } : {}),
    ...(options.skipPgHba ? { skipPgHba: true } : {}),
  };
  const ssl = config?.ssl.mode === 'disable' ? { mode: 'disable' as const } : (options.ssl ?? { mode: 'verify-full' as const });
  const nodeTls = prepareNodeTls(ssl);
  const client = new MonitorClient(options.monitorUrls, options.credentials ?? {});
  /** The adopted data directory's database system identifier: the node's from now on. */
  let adoptedSystemIdentifier: string | undefined;
  try {
    const hostname = options.hostname ?? (await localAddressTowards(new URL(options.monitorUrls[0]!).hostname));
    if (adopting) {
      // Only the first node of a group may bring its data: a standby is cloned from the primary.
      const existing = (await client.formationState(formation)).filter((r) => r.goal_state !== 'dropped');
      if (existing.length > 0) {
        throw new ConflictError(`formation "${formation}" already has nodes; only its first node can adopt an existing data directory (${pgdata})`, {
          hint: 'point --pgdata at an empty directory to add a standby',
        });
      }
      adoptedSystemIdentifier = assertOwnDataDirectory(pgdata, undefined, { who: 'the adopted cluster', recordFile: paths.config, refusal: 'refusing to adopt it', hint: 'point --pgdata at a Postgres data directory, or at an empty directory' });
      const runningPort = postmasterPid(pgdata) !== undefined ? postmasterPort(pgdata) : undefined;
      if (runningPort !== undefined && runningPort !== options.pgPort) {
        throw new ValidationError(`the Postgres running in ${pgdata} listens on port ${runningPort}, not ${options.pgPort}`, { hint: `pass --pg-port ${runningPort}`, field: 'pgPort' });
      }
    }
    if (options.httpListen !== undefined && !parseHostPort(options.httpListen)) {
      throw new ValidationError(`invalid --http-listen "${options.httpListen}": expected HOST:PORT, e.g. 127.0.0.1:8008`, { field: 'httpListen' });
    }
    const listenOf = (c: Pick<KeeperConfig, 'httpListen' | 'hostname'>): string => {
      const { host, port } = keeperHttpListen(c);
      return formatHostPort(host, port);
    };
    const stored = config ? listenOf(config) : undefined;
    const httpListen = options.httpListen !== undefined ? listenOf({ httpListen: options.httpListen, hostname }) : (stored ?? formatHostPort(hostname, DEFAULT_KEEPER_HTTP_PORT));
    // The node's own keeper may be running and hold its address: check a new one only.
    if (httpListen !== stored) await assertHttpListenFree(keeperHttpListen({ httpListen, hostname }));
    const adoptedRunning = adopting && postmasterPid(pgdata) !== undefined;
    if (!config && !adoptedRunning && (await portInUse(hostname === 'localhost' ? '127.0.0.1' : hostname, options.pgPort))) {
      throw new ConflictError(`port ${options.pgPort} is already in use on ${hostname}`, { hint: 'choose another with --pg-port' });
    }
    const request = RegisterNodeRequest.parse({
      name: options.name,
      host: hostname,
      port: options.pgPort,
      candidatePriority: options.candidatePriority ?? 50,
      replicationQuorum: options.replicationQuorum ?? true,
      postgresSsl: ssl.mode !== 'disable',
      ...(nodeTls?.publicKeyPem ? { tlsPublicKey: nodeTls.publicKeyPem } : {}),
      httpAddress: keeperHttpAddress({ httpListen, hostname: config?.hostname ?? hostname }),
      ...(options.clientNetworks?.length ? { clientNetworks: [...options.clientNetworks] } : {}),
    });
    const registered = await client.registerNode(formation, request);
    if (nodeTls) {
      const certificatePem = nodeTls.certificatePem ?? registered.tls?.certificate;
      const caPem = nodeTls.caPem ?? registered.tls?.caCertificate;
      if (!certificatePem || !caPem) {
        throw new PghaError('PGHA_ERR_TLS', 'the monitor signs no certificates (it runs with your own CA, or without TLS), and this node has none', {
          hint: 'pass --ssl-ca-file with --server-cert and --server-key, or --no-ssl for tests',
        });
      }
      writeNodeTls(pgdata, { privateKeyPem: nodeTls.privateKeyPem, certificatePem, caPem });
    }
    if (config) {
      // Registered again: the previous node token no longer works. The monitors given now are
      // the node's; the goal revision applied is forgotten, for the store that registered it
      // may number its goals afresh (another store).
      config = { ...config, ...monitorUrlFields(options.monitorUrls), nodeToken: registered.nodeToken, ...hookFields, httpListen };
      writeJsonAtomic(paths.config, config);
      const { version: _v, updatedAt: _u, goalRevision: _forgotten, ...state } = loadKeeperState(config);
      saveKeeperState(pgdata, state);
    } else {
      config = {
        version: 1,
        ...monitorUrlFields(options.monitorUrls),
        formation,
        name: options.name,
        nodeId: registered.nodeId,
        groupId: registered.groupId,
        hostname,
        pgPort: options.pgPort,
        pgdata,
        candidatePriority: request.candidatePriority ?? 50,
        replicationQuorum: request.replicationQuorum ?? true,
        auth: options.auth ?? 'scram-sha-256',
        replicationPassword: registered.replicationPassword,
        monitorProbePassword: registered.monitorProbePassword,
        nodeToken: registered.nodeToken,
        ...(options.credentials?.ca ? { monitorCaCertificate: options.credentials.ca } : {}),
        ssl: { mode: ssl.mode },
        ...hookFields,
        httpListen,
        // A new data directory's is recorded by the keeper after its initdb or base backup.
        ...(adoptedSystemIdentifier !== undefined ? { systemIdentifier: adoptedSystemIdentifier } : {}),
      };
      writeJsonAtomic(paths.config, config);
      saveKeeperState(pgdata, { nodeId: config.nodeId, currentState: 'init', assignedState: 'init' });
    }
    log.info({ nodeId: config.nodeId, formation }, `registered node "${config.name}" with the monitor`);
  } finally {
    await client.close();
  }

  // The hook runs from `keeper run` on: it announces the role it finds once the monitor confirms it.
  const keeper = new Keeper(config, log, { roleChangeHooks: false });
  const timeoutMs = options.timeoutMs ?? 300_000;
  const both = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
  try {
    await keeper.run(both, (k) => INITIALISED.has(k.currentState));
    // Tell the monitor the state reached before handing over to `pgha keeper run`.
    if (INITIALISED.has(keeper.currentState)) await keeper.report().catch(() => undefined);
  } finally {
    await keeper.shutdown(false);
  }
  if (!INITIALISED.has(keeper.currentState)) {
    const goal = keeper.goal?.goalState ?? 'unknown';
    throw new PghaError('PGHA_ERR_TIMEOUT', `node "${config.name}" is still ${keeper.currentState} (goal ${goal}) after ${formatDurationMs(timeoutMs)}`, {
      hint: goal === 'wait_standby' ? "the primary has not accepted this standby yet: is the primary's keeper running?" : `see the log, then resume with: pgha keeper run --pgdata ${pgdata}`,
    });
  }
  let postgresPasswordSet: boolean | null = null;
  if (postgresPassword !== undefined) {
    postgresPasswordSet = WRITABLE_STATES.has(keeper.currentState);
    if (postgresPasswordSet) {
      await setRolePassword({ socketDir: socketDirFor(pgdata), port: config.pgPort }, 'postgres', postgresPassword);
      log.info(`the postgres role's password is set from ${options.postgresPasswordFile}`);
    } else {
      log.warn(`node "${config.name}" is a standby: its postgres role replicates from the primary, so ${options.postgresPasswordFile} was not applied here; to change the password: pgha set postgres-password --pgdata <the primary's data directory> --password-file FILE`);
    }
  }
  return { config, state: keeper.currentState, postgresPasswordSet };
}
