/**
 * Everything the keeper does to its own Postgres, in small idempotent steps that the
 * transition functions compose: write pgha's config files, start, stop, reload, promote,
 * create roles and slots, base backup and rewind.
 */
import { closeSync, existsSync, openSync, readSync, renameSync, rmSync, statfsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import {
  MONITOR_PROBE_ROLE,
  PghaError,
  REPLICATION_ROLE,
  nodeApplicationName,
  nodeSlotName,
  progressAmount,
  type GroupMember,
  type NodeGoal,
  type TransitionProgress,
} from '@pgha/shared';
import { ProgressLogThrottle, parseBasebackupProgress } from './postgres/basebackup-progress.js';
import type { KeeperConfig } from './keeper-config.js';
import { diskProblem, lastServerFailure, problemSentence } from './local-problem.js';
import { ensurePghaDir, pghaDirFor, socketDirFor, writeJsonAtomic, assertOwnDataDirectory, inspectDataDirectory, hostToHbaAddress, setStandbySignal, writeHba, writePghaConf, writePgpass, type HbaEntry, type PghaConf, ensureOwnedDir, isEmptyOrMissing, isPgData, pgCtlPromote, pgCtlRestart, pgCtlStart, pgCtlStop, postmasterPid, runPgProgram, initdb, newPgClient, ident, literal, localConnection, withLocalClient, type LocalPg } from '@pgha/postgres';
import { keeperPaths, loadKeeperConfig, postgresTlsDir, replicationPassfile } from './keeper-config.js';
import type pg from 'pg';
import { readPostgresFacts, type PostgresFacts } from './local-facts.js';
import { readUpstreamTimeline, type RemoteTimeline } from './postgres/timeline-history.js';
import { DivergenceWatch } from './divergence-watch.js';

/**
 * `PGHA_TEST_BASEBACKUP_MAX_RATE`: pg_basebackup's `--max-rate` (32k..1024M, `k` or `M`
 * suffix), set by tests only to make a base backup last long enough to watch its progress.
 *
 * @throws PghaError `PGHA_ERR_CONFIG` when it is set to something else.
 */
function testBasebackupMaxRate(): string | undefined {
  const value = process.env.PGHA_TEST_BASEBACKUP_MAX_RATE;
  if (!value) return undefined;
  if (!/^[1-9][0-9]*[kM]?$/.test(value)) {
    throw new PghaError('PGHA_ERR_CONFIG', `PGHA_TEST_BASEBACKUP_MAX_RATE="${value}" is not a rate for pg_basebackup --max-rate`, { hint: 'unset it (it is for tests only), or give e.g. 20M' });
  }
  return value;
}

/**
 * How long a running Postgres may refuse the keeper's session before that is a problem, in ms:
 * long enough for the moments a keeper's own start, stop or promotion makes Postgres refuse
 * sessions ("the database system is starting up" / "shutting down"), short against the
 * minutes an operator would otherwise look at a node that reports nothing.
 */
export const FACTS_UNREADABLE_GRACE_MS = 3000;

/**
 * How long the keeper waits for its own Postgres to accept its session, and to answer the read
 * of its facts, in ms. Postgres answers both in a few ms; one that does not is stuck (stopped,
 * out of I/O), and the keeper must go on reporting rather than wait with it: a keeper silent
 * for `nodeUnhealthyTimeoutMs` counts as gone.
 */
export const LOCAL_QUERY_TIMEOUT_MS = 2000;

/** libpq keyword/value string, values quoted. */
function conninfo(parts: Record<string, string | number>): string {
  return Object.entries(parts)
    .map(([k, v]) => `${k}='${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`)
    .join(' ');
}

/** The local node: its config, and what the monitor last said about its group. */
export class NodeControl {
  readonly config: KeeperConfig;
  readonly log: Logger;
  readonly local: LocalPg;
  /** Host of the monitor, from its URL: its probes come from there. */
  readonly monitorHost: string;
  /** Whether this standby's WAL diverged from the primary's timeline (see `divergence-watch.ts`). */
  readonly divergence: DivergenceWatch;

  constructor(config: KeeperConfig, log: Logger) {
    this.config = config;
    this.log = log;
    this.divergence = new DivergenceWatch(log);
    this.local = { socketDir: socketDirFor(config.pgdata), port: config.pgPort };
    this.monitorHost = new URL(config.monitorUrl).hostname.replace(/^\[|\]$/g, '');
    this.systemIdentifier = config.systemIdentifier;
  }

  /**
   * The data directory's database system identifier as keeper.json records it
   * (`KeeperConfig.systemIdentifier`); undefined until the keeper has a data directory of its
   * own, or in a file written before pgha recorded it.
   */
  private systemIdentifier: string | undefined;

  /** The last refusal of the data directory ({@link assertOwnData}), one line; cleared by a check that passes. */
  private dataRefusal: string | undefined;

  /**
   * Checks that the data directory is this node's before Postgres is started or restarted
   * there, or anything is written into it (pgha.conf, pg_hba.conf, standby.signal, a rewind):
   * a data directory whose database system identifier is the one keeper.json records. With
   * none recorded (a file from before pgha recorded it), records the identifier found and logs
   * that. A refusal is logged once (until it changes) and is the node's reported problem
   * ({@link localProblem}) until a check passes.
   * Source: Patroni compares the data directory's system identifier with the DCS's before it
   * starts Postgres; pg_auto_failover's keeper checks it against the monitor's at `pg_autoctl run`.
   *
   * @throws PghaError `PGHA_ERR_PGDATA` when the data directory is missing, is not a data
   *   directory, or holds another cluster.
   */
  assertOwnData(): void {
    let found: string;
    try {
      found = assertOwnDataDirectory(this.pgdata, this.systemIdentifier, {
        who: `node ${this.config.nodeId} "${this.config.name}"`,
        recordFile: keeperPaths(this.pgdata).config,
        hint: `put the node's own data directory back at ${this.pgdata}; the keeper starts and configures no other (a standby whose directory is moved away clones its primary again)`,
      });
    } catch (err) {
      const line = err instanceof PghaError ? err.toUserLine() : (err as Error).message;
      if (line !== this.dataRefusal) this.log.error(line);
      this.dataRefusal = line;
      throw err;
    }
    if (this.dataRefusal !== undefined) this.log.info(`the data directory ${this.pgdata} is the node's again (database system identifier ${found})`);
    this.dataRefusal = undefined;
    if (this.systemIdentifier === undefined) this.recordSystemIdentifier(found, 'at the first start on this data directory (the file is from before pgha recorded it)');
  }

  /**
   * Records the identifier of the data directory the keeper has just made its own (after
   * initdb or a base backup) in keeper.json.
   *
   * @throws PghaError `PGHA_ERR_PGDATA` when the directory holds no cluster after all.
   */
  private recordOwnData(after: string): void {
    const found = inspectDataDirectory(this.pgdata);
    if (found.kind !== 'cluster') {
      throw new PghaError('PGHA_ERR_PGDATA', `${this.pgdata} holds no Postgres cluster after ${after} (${found.kind === 'missing' ? 'missing' : found.reason})`, { hint: 'the keeper retries; see the log of the step before' });
    }
    this.recordSystemIdentifier(found.systemIdentifier, `after ${after}`);
  }

  /**
   * Writes `systemIdentifier` into keeper.json (re-read, so that fields edited meanwhile stay
   * as they are) and keeps it for the checks of {@link assertOwnData}.
   */
  private recordSystemIdentifier(id: string, why: string): void {
    if (id === this.systemIdentifier) return;
    const path = keeperPaths(this.pgdata).config;
    writeJsonAtomic(path, { ...loadKeeperConfig(this.pgdata), systemIdentifier: id });
    const previous = this.systemIdentifier;
    this.systemIdentifier = id;
    const msg = `recorded the data directory's database system identifier ${id} in ${path} ${why}`;
    if (previous === undefined) this.log.info({ systemIdentifier: id }, msg);
    else this.log.warn({ systemIdentifier: id, previous }, `${msg}, replacing ${previous}`);
  }

  get pgdata(): string {
    return this.config.pgdata;
  }

  /** Directory of the Postgres server log, owned by the Postgres OS user. */
  get pgLogFile(): string {
    const dir = join(ensurePghaDir(keeperPaths(this.pgdata).dir), 'log');
    ensureOwnedDir(dir);
    return join(dir, 'postgres.log');
  }

  /** The socket directory, created for the Postgres OS user when missing. */
  socketDir(): string {
    ensurePghaDir(keeperPaths(this.pgdata).dir);
    ensureOwnedDir(this.local.socketDir);
    return this.local.socketDir;
  }

  /** Is the postmaster running. */
  isRunning(): boolean {
    return postmasterPid(this.pgdata) !== undefined;
  }

  private session: pg.Client | undefined;

  /** Called when the kept session drops (Postgres stopped or crashed): the keeper looks at once. */
  onSessionLost: (() => void) | undefined;

  /**
   * Runs `fn` on a session to the local Postgres kept open between ticks (a keeper reads its
   * facts every few hundred ms: reconnecting each time would be most of its CPU). A failed
   * session is dropped and the next call opens a new one.
   */
  async withSession<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    if (!this.session) {
      const client = newPgClient(localConnection(this.local, 'pgha_keeper', LOCAL_QUERY_TIMEOUT_MS));
      const lost = (): void => {
        if (this.session !== client) return;
        this.session = undefined;
        this.onSessionLost?.();
      };
      client.on('error', lost);
      client.on('end', lost);
      await client.connect();
      this.session = client;
    }
    const client = this.session;
    try {
      return await fn(client);
    } catch (err) {
      if (this.session === client) this.session = undefined;
      await client.end().catch(() => undefined);
      throw err;
    }
  }

  /** Closes the kept session. */
  async closeSession(): Promise<void> {
    const client = this.session;
    this.session = undefined; // an intended close: onSessionLost is not called
    await client?.end().catch(() => undefined);
  }

  /**
   * Why the last read of the facts failed while Postgres ran, and since when the reads fail
   * (`Date.now()`, ms); undefined after a read that worked, or when Postgres does not run.
   */
  private factsFailure: { message: string; sinceMs: number } | undefined;

  /** Reads local facts; undefined when Postgres does not answer (see {@link factsProblem}). */
  async readFacts(): Promise<PostgresFacts | undefined> {
    let facts: PostgresFacts | undefined;
    if (!this.isRunning()) {
      this.factsFailure = undefined;
      if (this.session) await this.closeSession();
    } else {
      try {
        facts = await this.withSession((c) => readPostgresFacts(c, LOCAL_QUERY_TIMEOUT_MS));
        this.factsFailure = undefined;
      } catch (err) {
        const message = (err as Error).message.split('\n')[0]!.trim() || (err as Error).name;
        this.factsFailure = { message, sinceMs: this.factsFailure?.sinceMs ?? Date.now() };
      }
    }
    this.divergence.observe(facts, Date.now());
    return facts;
  }

  /**
   * The sentence for a Postgres that runs but has not answered the keeper's session for
   * {@link FACTS_UNREADABLE_GRACE_MS} or longer (without its facts the keeper reports no LSN or
   * timeline, and no transition can check what it did), e.g. `Postgres runs but the keeper
   * cannot read its facts: The server does not support SSL connections`; undefined otherwise.
   * Stable while the same error lasts, since every change of a node's problem is an event.
   *
   * @param nowMs - `Date.now()`.
   */
  factsProblem(nowMs: number): string | undefined {
    const failure = this.factsFailure;
    if (!failure || nowMs - failure.sinceMs < FACTS_UNREADABLE_GRACE_MS) return undefined;
    return `Postgres runs but the keeper cannot read its facts: ${failure.message}`;
  }

  /**
   * What a primary's settings were last applied for (goal, names, nodes, postmaster): while it
   * is unchanged, keeping the state needs no work beyond reading the facts.
   */
  appliedPrimaryKey: string | undefined;

  /** True unless the node was created with `--no-ssl`. */
  get tls(): boolean {
    return this.config.ssl.mode !== 'disable';
  }

  /**
   * The pg_hba entries of the formation: replication, rewind and probe roles from node hosts
   * (`hostssl` unless the node runs without TLS), then, with TLS, a `hostnossl … reject` for
   * those roles from anywhere: their connections are never in clear text, even when a later
   * line (initdb's `host replication all 127.0.0.1/32`, an adopted cluster's rules, the client
   * entries) would match them. Then clients from this host and the formation's hosts (`host`:
   * each client chooses its own `sslmode`).
   */
  hbaEntries(nodes: readonly GroupMember[]): HbaEntry[] {
    const hosts = [...new Set([this.config.hostname, ...nodes.map((n) => n.host)])];
    const type = this.tls ? 'hostssl' : 'host';
    const entries: HbaEntry[] = [];
    for (const host of hosts) {
      const address = hostToHbaAddress(host);
      entries.push({ type, database: 'replication', user: REPLICATION_ROLE, address, method: 'scram-sha-256', comment: 'streaming replication between formation nodes' });
      entries.push({ type, database: 'postgres', user: REPLICATION_ROLE, address, method: 'scram-sha-256', comment: 'pg_rewind between formation nodes' });
    }
    entries.push({ type, database: 'postgres', user: MONITOR_PROBE_ROLE, address: hostToHbaAddress(this.monitorHost), method: 'scram-sha-256', comment: 'monitor health probe' });
    if (this.tls) {
      const never = { type: 'hostnossl', address: 'all', method: 'reject', comment: 'never without TLS' } as const;
      entries.push({ ...never, database: 'replication', user: REPLICATION_ROLE });
      entries.push({ ...never, database: 'all', user: REPLICATION_ROLE });
      entries.push({ ...never, database: 'all', user: MONITOR_PROBE_ROLE });
    }
    entries.push({ database: 'all', user: 'all', address: 'samehost', method: this.config.auth, comment: 'clients on this host' });
    for (const host of hosts) {
      entries.push({ database: 'all', user: 'all', address: hostToHbaAddress(host), method: this.config.auth, comment: 'clients on formation hosts' });
    }
    return entries;
  }

  /**
   * This node's server TLS files for `pgha.conf` (absolute paths into its own
   * {@link postgresTlsDir}, which pg_basebackup and pg_rewind do not copy: a data directory
   * cloned from another node gets this node's paths when its config is written, before
   * Postgres starts); undefined with `--no-ssl`.
   */
  serverTls(): PghaConf['ssl'] {
    if (!this.tls) return undefined;
    const dir = postgresTlsDir(this.pgdata);
    return { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), caFile: join(dir, 'root.crt') };
  }

  /**
   * Writes the replication role's pgpass file ({@link replicationPassfile}), 0600, owned by
   * the Postgres OS user, in a 0700 directory of that user.
   *
   * @returns its path.
   */
  ensurePassfile(): string {
    const path = replicationPassfile(this.pgdata);
    if (!existsSync(path)) {
      ensurePghaDir(pghaDirFor(this.pgdata));
      ensureOwnedDir(postgresTlsDir(this.pgdata));
    }
    writePgpass(path, REPLICATION_ROLE, this.config.replicationPassword);
    return path;
  }

  /**
   * The libpq keywords of a connection as the replication role to `peer` (`primary_conninfo`,
   * pg_basebackup's `--dbname`, pg_rewind's `--source-server`): its address; the pgpass file,
   * never the password itself, since conninfo strings end up in pgha.conf, on command lines and
   * in error messages (callers write the file with {@link ensurePassfile}); and TLS: `sslmode`
   * as configured, with `sslrootcert` (the formation's CA) for `verify-ca`/`verify-full`.
   * (`require` gets no `sslrootcert`: libpq would then verify the chain, which is `verify-ca`.)
   * With `--no-ssl`, `sslmode=disable`.
   *
   * @param extra - more keywords (`application_name`, timeouts, `dbname`).
   * @returns keyword → value, for {@link conninfo}.
   */
  replicationConnection(peer: { host: string; port: number }, extra: Record<string, string | number> = {}): Record<string, string | number> {
    const mode = this.config.ssl.mode;
    return {
      host: peer.host,
      port: peer.port,
      user: REPLICATION_ROLE,
      passfile: replicationPassfile(this.pgdata),
      sslmode: mode,
      ...(mode === 'verify-full' || mode === 'verify-ca' ? { sslrootcert: join(postgresTlsDir(this.pgdata), 'root.crt') } : {}),
      ...extra,
    };
  }

  /**
   * Writes pgha.conf and pg_hba.conf for the given role, into the node's own data directory only.
   *
   * @returns true when anything changed (a running Postgres must reload).
   * @throws PghaError `PGHA_ERR_PGDATA` when the data directory is not the node's ({@link assertOwnData}).
   */
  writeConfig(options: { nodes: readonly GroupMember[]; synchronousStandbyNames: string; follow?: GroupMember | null; useSlot?: boolean }): boolean {
    this.assertOwnData();
    const hba = writeHba(this.pgdata, this.hbaEntries(options.nodes));
    const ssl = this.serverTls();
    // Every node keeps its pgpass file ready: a primary needs it when it rejoins as a standby.
    this.ensurePassfile();
    const conf = writePghaConf(this.pgdata, {
      role: 'node',
      listenAddresses: '*',
      port: this.config.pgPort,
      socketDir: this.socketDir(),
      synchronousStandbyNames: options.synchronousStandbyNames,
      ...(ssl ? { ssl } : {}),
      ...(options.follow
        ? {
            primaryConninfo: conninfo(this.replicationConnection(options.follow, {
              application_name: nodeApplicationName(this.config.nodeId),
              connect_timeout: 2,
              keepalives: 1,
              keepalives_idle: 2,
              keepalives_interval: 1,
              keepalives_count: 3,
            })),
            // A standby streaming from another standby (fast_forward) has no slot there.
            primarySlotName: options.useSlot === false ? '' : nodeSlotName(this.config.nodeId),
          }
        : {}),
    });
    return hba || conf;
  }

  /**
   * Set when the keeper fenced itself (network partition): Postgres stays stopped, whatever
   * the loop was doing, until a report reaches the monitor again ({@link clearFence}).
   */
  fencedSinceMs: number | undefined;

  /** Why the last start of Postgres failed (its server log's last PANIC/FATAL); cleared by a start that works. */
  private lastStartFailure: string | undefined;

  /**
   * Starts Postgres if it is not running, in the node's own data directory only.
   *
   * @throws PghaError `PGHA_ERR_CONFLICT` while fenced; `PGHA_ERR_PGDATA` when the data
   *   directory is not the node's ({@link assertOwnData}); PostgresCommandError when pg_ctl fails.
   */
  async start(): Promise<void> {
    if (this.isRunning()) return;
    if (this.fencedSinceMs !== undefined) {
      throw new PghaError('PGHA_ERR_CONFLICT', 'the node fenced itself (network partition): Postgres stays stopped until the monitor answers');
    }
    this.assertOwnData();
    this.log.info('starting Postgres');
    this.socketDir();
    // A postmaster killed a moment ago may linger as a zombie until it is reaped, and Postgres
    // then refuses its lock file: the process is dead, so the file is stale.
    rmSync(join(this.pgdata, 'postmaster.pid'), { force: true });
    rmSync(join(this.local.socketDir, `.s.PGSQL.${this.local.port}.lock`), { force: true });
    try {
      await pgCtlStart(this.pgdata, this.pgLogFile);
      this.lastStartFailure = undefined;
    } catch (err) {
      this.lastStartFailure = lastServerFailure(this.serverLogTail()) ?? (err as Error).message.split('\n')[0];
      throw err;
    }
  }

  /** The last PANIC or FATAL line of the server log's last 8 kB (see `lastServerFailure`), if any. */
  lastServerLogFailure(): string | undefined {
    return lastServerFailure(this.serverLogTail());
  }

  /** The last `bytes` of the Postgres server log ('' when it cannot be read). */
  private serverLogTail(bytes = 8192): string {
    try {
      const file = this.pgLogFile;
      const size = statSync(file).size;
      const fd = openSync(file, 'r');
      try {
        const buf = Buffer.alloc(Math.min(bytes, size));
        readSync(fd, buf, 0, buf.length, size - buf.length);
        return buf.toString('utf8');
      } finally {
        closeSync(fd);
      }
    } catch {
      return '';
    }
  }

  /**
   * What keeps this node from its goal, as seen locally, for the keeper's report: the data
   * directory's file system full, a data directory that is not the node's (the refusal of
   * {@link assertOwnData}), or Postgres not running after a failed start (with the reason from
   * its server log). Null when nothing is wrong.
   * Source: none in pg_auto_failover (its keeper logs such errors locally only).
   */
  localProblem(): string | null {
    let disk: string | undefined;
    try {
      const st = statfsSync(existsSync(this.pgdata) ? this.pgdata : dirname(this.pgdata));
      disk = diskProblem(this.pgdata, st.bavail * st.bsize, st.blocks * st.bsize);
    } catch {
      // no file system to look at: nothing to say about it
    }
    const start = this.lastStartFailure && !this.isRunning() ? `Postgres does not start: ${this.lastStartFailure}` : undefined;
    return problemSentence([disk, this.dataRefusal, start, this.divergence.problem]);
  }

  /**
   * Restarts Postgres when it runs but does not answer on pgha's socket: an adopted cluster
   * started with its own port, socket directory and settings.
   *
   * @throws PghaError `PGHA_ERR_PGDATA` when the data directory is not the node's ({@link assertOwnData}).
   */
  async restartIfUnreachable(): Promise<void> {
    if (!this.isRunning() || (await this.readFacts())) return;
    this.assertOwnData();
    this.log.info('restarting Postgres to apply the settings pgha manages (socket, port, replication)');
    this.socketDir();
    await pgCtlRestart(this.pgdata, this.pgLogFile);
  }

  /** Stops Postgres (fast, then immediate) if it runs. */
  async stop(): Promise<void> {
    await this.closeSession();
    if (!this.isRunning()) return;
    this.log.info('stopping Postgres');
    await pgCtlStop(this.pgdata);
  }

  /**
   * Self-fencing: immediate shutdown of Postgres (SIGQUIT to the postmaster, as `pg_ctl stop
   * -m immediate` sends), then waits until the postmaster has exited. Every backend gets
   * SIGQUIT and exits without answering, so no commit is acknowledged after the signal; no
   * shutdown checkpoint and no wait for walsenders to drain to unreachable standbys (what makes
   * a fast shutdown hang on a cut network). The data directory needs crash recovery, which
   * pg_rewind runs itself when the node rejoins. Marks the node fenced first, so that nothing
   * starts Postgres again until {@link clearFence}.
   *
   * @returns the time the signal was sent (`Date.now()`, ms), or undefined when Postgres was not running.
   * @throws PostgresCommandError when the postmaster cannot be signalled and `pg_ctl stop -m immediate` fails.
   */
  async fence(): Promise<number | undefined> {
    this.fencedSinceMs ??= Date.now();
    const pid = postmasterPid(this.pgdata);
    if (pid === undefined) return undefined;
    const signalledAtMs = Date.now();
    try {
      process.kill(pid, 'SIGQUIT');
    } catch {
      await runPgProgram('pg_ctl', ['stop', '--pgdata', this.pgdata, '--mode', 'immediate', '--wait', '--timeout', '30', '--silent']);
    }
    const deadline = Date.now() + 30_000;
    while (postmasterPid(this.pgdata) !== undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await this.closeSession();
    return signalledAtMs;
  }

  /** Ends the fence: the monitor answered, its goal decides from now on. */
  clearFence(): void {
    this.fencedSinceMs = undefined;
  }

  /** Reloads the configuration of a running Postgres. */
  async reload(): Promise<void> {
    await this.withSession((c) => c.query('select pg_reload_conf()'));
  }

  /** Writes config, then starts or reloads as needed. */
  async applyConfig(options: Parameters<NodeControl['writeConfig']>[0]): Promise<void> {
    const changed = this.writeConfig(options);
    if (!this.isRunning()) await this.start();
    else if (changed) await this.reload();
  }

  /** Runs initdb when the data directory is empty or missing, and records its identifier in keeper.json. */
  async initdbIfNeeded(): Promise<void> {
    if (isPgData(this.pgdata)) return;
    if (!isEmptyOrMissing(this.pgdata)) {
      throw new PghaError('PGHA_ERR_PGDATA', `${this.pgdata} is not empty and is not a Postgres data directory`, {
        hint: 'point --pgdata at an empty or new directory',
      });
    }
    ensureOwnedDir(this.pgdata);
    this.log.info({ pgdata: this.pgdata }, 'initdb');
    await initdb(this.pgdata);
    this.recordOwnData('initdb');
  }

  /** Creates the replication and probe roles with the formation's passwords (idempotent). */
  async createRoles(): Promise<void> {
    await withLocalClient(this.local, async (c) => {
      for (const [role, extra] of [[REPLICATION_ROLE, 'replication'], [MONITOR_PROBE_ROLE, '']] as const) {
        const exists = await c.query('select 1 from pg_roles where rolname = $1', [role]);
        if (exists.rowCount === 0) await c.query(`create role ${ident(role)} with login ${extra}`);
      }
      await c.query(`alter role ${ident(REPLICATION_ROLE)} with password ${literal(this.config.replicationPassword)}`);
      await c.query(`alter role ${ident(MONITOR_PROBE_ROLE)} with password ${literal(this.config.monitorProbePassword)}`);
      // What pg_rewind needs from a non-superuser (PostgreSQL docs, pg_rewind).
      for (const fn of [
        'pg_catalog.pg_ls_dir(text, boolean, boolean)',
        'pg_catalog.pg_stat_file(text, boolean)',
        'pg_catalog.pg_read_binary_file(text)',
        'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)',
      ]) {
        await c.query(`grant execute on function ${fn} to ${ident(REPLICATION_ROLE)}`);
      }
    });
  }

  /** Creates a physical replication slot for every other node of the group that lacks one. */
  async ensureSlots(nodes: readonly GroupMember[]): Promise<void> {
    const wanted = nodes.filter((n) => n.nodeId !== this.config.nodeId).map((n) => nodeSlotName(n.nodeId));
    if (wanted.length === 0) return;
    await this.withSession(async (c) => {
      const { rows } = await c.query<{ slot_name: string }>("select slot_name from pg_replication_slots where slot_type = 'physical'");
      const have = new Set(rows.map((r) => r.slot_name));
      for (const slot of wanted) {
        if (!have.has(slot)) {
          this.log.info({ slot }, 'creating replication slot');
          await c.query('select pg_create_physical_replication_slot($1, true)', [slot]);
        }
      }
    });
  }

  /** Waits until a new session sees `synchronous_standby_names = expected` (after a reload). */
  async waitForSetting(expected: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await this.withSession(async (c) => (await c.query<{ v: string }>("select current_setting('synchronous_standby_names') as v")).rows[0]!.v);
      if (value === expected) return;
      if (Date.now() > deadline) throw new PghaError('PGHA_ERR_TIMEOUT', `synchronous_standby_names is still '${value}', expected '${expected}' after reload`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Runs CHECKPOINT (after promotion, so that pg_control shows the new timeline). */
  async checkpoint(): Promise<void> {
    await this.withSession((c) => c.query('checkpoint'));
  }

  /** Promotes a standby (no-op when already a primary). */
  async promote(): Promise<void> {
    await this.start();
    const facts = await this.readFacts();
    if (facts && !facts.isInRecovery) return;
    this.log.info('promoting Postgres');
    await pgCtlPromote(this.pgdata);
  }

  /**
   * How far the base backup under way has come (null when none runs): the keeper's reports
   * carry it to the monitor (`transitionProgress`).
   */
  transitionProgress: TransitionProgress | null = null;

  /**
   * Clones the primary with pg_basebackup into `<pgdata>.basebackup`, then swaps it in and
   * records its database system identifier (the group's) in keeper.json. A
   * keeper killed halfway leaves the old data directory untouched and retries from scratch.
   * Its progress (`--progress`) is kept in {@link transitionProgress} and logged at info
   * every 10 % ("base backup: 42% (123.4 MB of 293.0 MB)"). For tests only,
   * `PGHA_TEST_BASEBACKUP_MAX_RATE` (pg_basebackup's `--max-rate`, e.g. `20M`) slows it down.
   *
   * @throws PostgresCommandError when pg_basebackup fails; PghaError `PGHA_ERR_CONFIG` for a
   *   malformed `PGHA_TEST_BASEBACKUP_MAX_RATE`.
   */
  async baseBackup(primary: GroupMember): Promise<void> {
    const maxRate = testBasebackupMaxRate();
    const tmp = `${this.pgdata}.basebackup`;
    rmSync(tmp, { recursive: true, force: true });
    ensureOwnedDir(tmp);
    this.log.info({ primary: `${primary.host}:${primary.port}` }, 'pg_basebackup from the primary');
    const throttle = new ProgressLogThrottle();
    this.transitionProgress = { phase: 'basebackup', doneBytes: 0, totalBytes: null };
    const onStderrLine = (line: string): void => {
      const progress = parseBasebackupProgress(line);
      if (!progress) {
        this.log.debug({ line }, 'pg_basebackup');
        return;
      }
      this.transitionProgress = progress;
      if (throttle.shouldLog(progress, Date.now())) this.log.info({ doneBytes: progress.doneBytes, totalBytes: progress.totalBytes }, `base backup: ${progressAmount(progress)}`);
    };
    this.ensurePassfile();
    try {
      await runPgProgram('pg_basebackup', [
        '--pgdata', tmp,
        '--dbname', conninfo(this.replicationConnection(primary, { connect_timeout: 5 })),
        '--no-password',
        '--wal-method', 'stream',
        '--checkpoint', 'fast',
        '--slot', nodeSlotName(this.config.nodeId),
        '--progress',
        ...(maxRate ? ['--max-rate', maxRate] : []),
      ], { timeoutMs: 3_600_000, onStderrLine });
    } finally {
      this.transitionProgress = null;
    }
    this.log.info('base backup complete');
    await this.stop();
    rmSync(this.pgdata, { recursive: true, force: true });
    renameSync(tmp, this.pgdata);
    this.recordOwnData('a base backup');
  }

  /** Runs pg_rewind against `primary`. @throws PostgresCommandError when it fails. */
  async rewind(primary: GroupMember): Promise<void> {
    this.log.info({ primary: `${primary.host}:${primary.port}` }, 'pg_rewind from the new primary');
    // A standby.signal left over would make the single-user crash recovery that pg_rewind
    // runs first wait for WAL; pg_rewind needs a target that was a primary or shut down cleanly.
    setStandbySignal(this.pgdata, false);
    this.ensurePassfile();
    await runPgProgram('pg_rewind', [
      '--target-pgdata', this.pgdata,
      '--source-server', conninfo(this.replicationConnection(primary, { dbname: 'postgres', connect_timeout: 5 })),
      '--no-sync',
    ], { timeoutMs: 600_000 });
  }

  /**
   * The current timeline of `peer` and its history, read with psql over a replication
   * connection as the replication role, with the parameters pg_rewind uses
   * ({@link replicationConnection}: passfile, TLS) and a 2 s connect timeout.
   *
   * @throws PostgresCommandError when `peer` does not answer or refuses the connection.
   */
  async readUpstreamTimeline(peer: GroupMember): Promise<RemoteTimeline> {
    this.ensurePassfile();
    return readUpstreamTimeline(conninfo(this.replicationConnection(peer, { replication: 'true', connect_timeout: 2, application_name: 'pgha_timeline_check' })));
  }

  /** Starts (or re-points) Postgres as a hot standby of `primary`. */
  async followAsStandby(goal: NodeGoal): Promise<void> {
    const upstream = this.currentUpstream(goal);
    if (!upstream) throw new PghaError('PGHA_ERR_CONFIG', 'no primary to follow yet', { hint: 'the monitor has not assigned a primary; the keeper retries' });
    this.assertOwnData();
    setStandbySignal(this.pgdata, true);
    const changed = this.writeConfig({ nodes: goal.nodes, synchronousStandbyNames: '', follow: upstream, useSlot: upstream.nodeId === goal.primary?.nodeId });
    if (!this.isRunning()) await this.start();
    else if (changed) await this.reload();
  }

  private upstream: GroupMember | null = null;

  /**
   * The node this standby streams from: the monitor's `upstream` (the primary, or the most
   * advanced standby during `fast_forward`); the last one followed when the monitor has none to
   * offer (mid-failover).
   */
  currentUpstream(goal: NodeGoal): GroupMember | null {
    if (goal.upstream && goal.upstream.nodeId !== this.config.nodeId) this.upstream = goal.upstream;
    return this.upstream;
  }

  /** True when the data directory holds Postgres data. */
  hasData(): boolean {
    return isPgData(this.pgdata);
  }

  /** Removes the data directory and pgha's files for it (`pgha drop node --destroy`). */
  destroyData(): void {
    this.log.warn({ pgdata: this.pgdata }, 'removing the data directory: the node was dropped with --destroy');
    rmSync(this.pgdata, { recursive: true, force: true });
    rmSync(keeperPaths(this.pgdata).dir, { recursive: true, force: true });
  }

  /** True when `standby.signal` exists. */
  hasStandbySignal(): boolean {
    return existsSync(join(this.pgdata, 'standby.signal'));
  }
}
