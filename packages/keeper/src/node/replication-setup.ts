/**
 * How the node takes part in replication: pgha.conf and pg_hba.conf, its server TLS files,
 * the replication role's passfile and connections, the replication and probe roles, the
 * replication slots, the primary's settings, and following an upstream as a hot standby. It
 * owns what a primary's settings were last applied for and the upstream last followed.
 */
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  MONITOR_PROBE_ROLE,
  PghaError,
  REPLICATION_ROLE,
  nodeApplicationName,
  nodeIdOfSlotName,
  nodeSlotName,
  type GroupMember,
  type NodeGoal,
  type NodeState,
  type PostgresParameter,
  type ReportedParameters,
} from '@pgha/shared/base';
import { ensureOwnedDir, ensurePghaDir, hostToHbaAddress, ident, literal, pghaDirFor, pollUntil, postmasterPid, setStandbySignal, withLocalClient, renderParametersConf, writeHba, writeParametersConf, writePghaConf, writePgpass, type HbaEntry, type PghaConf } from '@pgha/postgres';
import { keeperMonitorUrls, postgresTlsDir, replicationPassfile, type KeeperConfig } from '../keeper-config.js';
import type { DataDirectoryIdentity } from './data-directory-identity.js';
import { readReportedParameters } from '../local-facts.js';
import type { LocalSession } from './local-session.js';
import type { PostgresLifecycle } from './postgres-lifecycle.js';

/**
 * How long a keeper reuses the parameters it last read from `pg_settings` (ms) when nothing it
 * knows of changed them: an operator's own `ALTER SYSTEM` and reload shows within this.
 */
export const PARAMETERS_MAX_AGE_MS = 10_000;
/** A `pg_settings` read this soon after a config write (ms) is not reused: the reload may not have reached the session yet. */
export const PARAMETERS_SETTLE_MS = 2_000;
/**
 * How often `waitForSetting` reads `synchronous_standby_names` after a reload (ms). The reload
 * reaches the keeper's session a few ms after `pg_reload_conf()` (the postmaster re-reads the
 * files, then signals its children), so the first read mostly sees the old value: at 50 ms, a
 * primary's `wait_primary → primary` (the last step of a standby's rejoin) waited about 50 ms
 * more than the reload took (issue 17 §5). One short query on the kept session per look.
 */
const SETTING_POLL_INTERVAL_MS = 5;

/**
 * A libpq keyword/value string, values quoted.
 *
 * ### Examples
 * ```ts
 * conninfo({ host: 'a', port: 5432 }) // "host='a' port='5432'"
 * ```
 */
export function conninfo(parts: Record<string, string | number>): string {
  return Object.entries(parts)
    .map(([k, v]) => `${k}='${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`)
    .join(' ');
}

/** What pgha.conf and pg_hba.conf are written for: the group's nodes, the formation's client networks, the primary's sync names, the upstream a standby follows. */
export interface NodeConfigOptions {
  nodes: readonly GroupMember[];
  /** The formation's client networks (`NodeGoal.clientNetworks`, `ADDRESS/PREFIX` each). */
  clientNetworks: readonly string[];
  synchronousStandbyNames: string;
  /** The upstream a standby streams from; absent or null on a primary. */
  follow?: GroupMember | null;
  /** Stream through this node's slot on `follow` (false when following a standby, which has none). */
  useSlot?: boolean;
}

/** See the module comment. One per node (`NodeControl.replication`). */
export class ReplicationSetup {
  /** Hosts of the monitors, from their URLs (each once): their probes come from there. */
  readonly monitorHosts: readonly string[];

  /**
   * What a primary's settings were last applied for (goal, names, nodes, postmaster): while it
   * is unchanged, keeping the state needs no work beyond reading the facts. Set only by
   * {@link applyPrimarySettings}.
   */
  private appliedPrimaryKey: string | undefined;

  /**
   * Whether slots of nodes no longer in the group may be left on this primary: set with each
   * apply of {@link applyPrimarySettings} (a new goal's nodes, a new postmaster), cleared once
   * {@link dropDepartedSlots} left none. Kept apart from {@link appliedPrimaryKey}, so that a
   * drop that failed, or waits for a walsender to stop, is tried again on the next tick while
   * the settings stay applied.
   */
  private departedSlotsLeft = true;

  /** The departed nodes' slots last logged as in use (see {@link dropDepartedSlots}): said once per change. */
  private departedSlotsInUse = '';

  /**
   * What a standby's settings were last applied for (upstream, slot, nodes, client networks,
   * postmaster): while it is unchanged, a standby keeping its state does no file work (issue 17:
   * idle cost; on every tick it rendered pgha.conf, pg_hba.conf and the pgpass file and compared
   * them with the files, set the socket directory's mode and checked the data directory's
   * identity, and the count of config writes that this bumped made each report read
   * `pg_settings` again). Set only by
   * {@link followAsStandby}; any config write clears both keys.
   */
  private appliedStandbyKey: string | undefined;

  /** The upstream last followed; set only by {@link currentUpstream}. */
  private upstream: GroupMember | null = null;

  /** With `--skip-pg-hba`: the client networks last logged as not written; set only by {@link writeConfig}. */
  private skippedClientNetworks: string | undefined;

  /**
   * The Postgres parameters of the monitor's last goal (`NodeGoal.postgresParameters`), written
   * into `pgha.parameters.conf` with every config write; undefined until a monitor gave them
   * (the file is left as it is). Set only by {@link applyParameters}.
   */
  private parameters: readonly PostgresParameter[] | undefined;

  /** Whether the probe role was granted `pg_read_all_settings` by this keeper process (see {@link readParameters}). */
  private probeRoleReadsSettings = false;

  /**
   * The last {@link readParameters} answer, reused while nothing that changes it happened: the
   * same role, postmaster and parameter names, no config written since (`configWrites`), and
   * younger than {@link PARAMETERS_MAX_AGE_MS}. Saves a `pg_settings` query on most reports
   * (issue 17: a keeper at rest does nothing it need not do).
   */
  private lastParameters: { key: string; atMs: number; value: ReportedParameters } | undefined;
  /** Config writes so far (pgha.conf, pg_hba.conf, pgha.parameters.conf): part of {@link lastParameters}' key. */
  private configWrites = 0;
  /** When the last config write was (ms, `performance.now()`): a read soon after may precede the reload's effect, and is not reused. */
  private lastConfigWriteMs = -Infinity;

  constructor(
    private readonly config: KeeperConfig,
    private readonly session: LocalSession,
    private readonly postgres: PostgresLifecycle,
    private readonly identity: DataDirectoryIdentity,
    private readonly log: Logger,
  ) {
    this.monitorHosts = [...new Set(keeperMonitorUrls(config).map((url) => new URL(url).hostname.replace(/^\[|\]$/g, '')))];
  }

  private get pgdata(): string {
    return this.config.pgdata;
  }

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
   * each client chooses its own `sslmode`). Last, for each of the formation's client networks,
   * pgha's roles refused (they connect only from the hosts above) and every other role admitted
   * with TLS and SCRAM-SHA-256 only (`hostssl`, whatever `--auth` says).
   */
  hbaEntries(nodes: readonly GroupMember[], clientNetworks: readonly string[] = []): HbaEntry[] {
    const hosts = [...new Set([this.config.hostname, ...nodes.map((n) => n.host)])];
    const type = this.tls ? 'hostssl' : 'host';
    const entries: HbaEntry[] = [];
    for (const host of hosts) {
      const address = hostToHbaAddress(host);
      entries.push({ type, database: 'replication', user: REPLICATION_ROLE, address, method: 'scram-sha-256', comment: 'streaming replication between formation nodes' });
      entries.push({ type, database: 'postgres', user: REPLICATION_ROLE, address, method: 'scram-sha-256', comment: 'pg_rewind between formation nodes' });
    }
    for (const host of this.monitorHosts) {
      entries.push({ type, database: 'postgres', user: MONITOR_PROBE_ROLE, address: hostToHbaAddress(host), method: 'scram-sha-256', comment: 'monitor health probe' });
    }
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
    for (const address of clientNetworks) {
      entries.push({ database: 'all', user: `${REPLICATION_ROLE},${MONITOR_PROBE_ROLE}`, address, method: 'reject', comment: "pgha's roles only from formation hosts" });
      entries.push({ type: 'hostssl', database: 'all', user: 'all', address, method: 'scram-sha-256', comment: 'client network (TLS and SCRAM only)' });
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
   * Writes pgha.conf and pg_hba.conf (not with `--skip-pg-hba`) for the given role, into the
   * node's own data directory only.
   *
   * @returns true when anything changed (a running Postgres must reload).
   * @throws PghaError `PGHA_ERR_PGDATA` when the data directory is not the node's (`DataDirectoryIdentity.assertOwn`).
   */
  writeConfig(options: NodeConfigOptions): boolean {
    this.identity.assertOwn();
    this.appliedPrimaryKey = undefined;
    this.appliedStandbyKey = undefined;
    // --skip-pg-hba: pg_hba.conf is the operator's; the client networks are said once per change.
    const hba = this.config.skipPgHba ? false : writeHba(this.pgdata, this.hbaEntries(options.nodes, options.clientNetworks));
    const networks = options.clientNetworks.join(',');
    if (this.config.skipPgHba && networks !== (this.skippedClientNetworks ?? '')) {
      this.log.info(`--skip-pg-hba: the formation's client networks (${networks || 'none'}) are not written into pg_hba.conf; admit them there yourself (hostssl, scram-sha-256)`);
    }
    if (this.config.skipPgHba) this.skippedClientNetworks = networks;
    const ssl = this.serverTls();
    // Every node keeps its pgpass file ready: a primary needs it when it rejoins as a standby.
    this.ensurePassfile();
    const conf = writePghaConf(this.pgdata, {
      role: 'node',
      listenAddresses: '*',
      port: this.config.pgPort,
      socketDir: this.postgres.socketDir(),
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
    const parameters = this.parameters === undefined ? false : this.writeParameters(this.parameters);
    const changed = hba || conf || parameters;
    if (changed) {
      // Only a write that changed a file can change what Postgres reports of its parameters.
      this.configWrites++;
      this.lastConfigWriteMs = performance.now();
    }
    return changed;
  }

  /**
   * Writes `parameters` into `pgha.parameters.conf`, unless they are the ones Postgres refused to
   * start with on this node (`PostgresLifecycle.refusedParameters`): those stay out until the
   * monitor's parameters change.
   *
   * @returns true when the file changed.
   */
  private writeParameters(parameters: readonly PostgresParameter[]): boolean {
    if (this.postgres.refusedParameters !== undefined) {
      if (renderParametersConf(parameters) === this.postgres.refusedParameters) return false;
      this.postgres.forgetRefusedParameters();
    }
    return writeParametersConf(this.pgdata, parameters);
  }

  /**
   * Writes the formation's Postgres parameters for this node into `pgha.parameters.conf`
   * (atomically, only when they changed) and reloads a running Postgres, which applies at once
   * those that need no restart; the others wait for its next start (`pending_restart`). Does
   * nothing without a data directory yet (before initdb or a base backup, which copies the
   * primary's file: the next call writes this node's own).
   *
   * @param parameters - `NodeGoal.postgresParameters`; undefined (an older monitor) leaves the file alone.
   * @returns true when the file changed.
   * @throws PghaError `PGHA_ERR_PGDATA` when the data directory is not the node's; the file
   *   system's or the reload's errors.
   */
  async applyParameters(parameters: readonly PostgresParameter[] | undefined): Promise<boolean> {
    if (parameters === undefined || !this.postgres.hasData()) return false;
    this.parameters = parameters;
    this.identity.assertOwn();
    const changed = this.writeParameters(parameters);
    if (changed) {
      this.configWrites++;
      this.lastConfigWriteMs = performance.now();
      this.log.info({ parameters: parameters.map((p) => `${p.name}=${p.value}`) }, `Postgres parameters written to pgha.parameters.conf (${parameters.length})${this.postgres.isRunning() ? ', reloading' : ''}`);
      if (this.postgres.isRunning()) await this.postgres.reload();
    }
    return changed;
  }

  /**
   * What to report of the node's parameters (`NodeReport.parameters`, see
   * `readReportedParameters`); undefined when Postgres does not answer. On a primary, first
   * grants the probe role `pg_read_all_settings` once per keeper process, so that the monitor
   * checks values against every row of `pg_settings` (without it a few are hidden, e.g.
   * `shared_preload_libraries`).
   */
  async readParameters(isPrimary: boolean): Promise<ReportedParameters | undefined> {
    const names = (this.parameters ?? []).map((p) => p.name);
    const key = `${isPrimary}|${postmasterPid(this.pgdata) ?? ''}|${this.configWrites}|${names.join(',')}`;
    const now = performance.now();
    const last = this.lastParameters;
    // A read within PARAMETERS_SETTLE_MS of a config write may predate the reload's effect (the postmaster signals the backends asynchronously): read again.
    if (last && last.key === key && now - last.atMs < PARAMETERS_MAX_AGE_MS && last.atMs - this.lastConfigWriteMs >= PARAMETERS_SETTLE_MS) return last.value;
    try {
      const value = await this.session.withSession(async (c) => {
        if (isPrimary && !this.probeRoleReadsSettings) {
          const role = await c.query('select 1 from pg_roles where rolname = $1', [MONITOR_PROBE_ROLE]);
          if (role.rowCount === 1) await c.query(`grant pg_read_all_settings to ${ident(MONITOR_PROBE_ROLE)}`);
          this.probeRoleReadsSettings = true;
        }
        return readReportedParameters(c, names, 2_000);
      });
      this.lastParameters = { key, atMs: now, value };
      return value;
    } catch {
      this.lastParameters = undefined;
      return undefined;
    }
  }

  /** Writes config, then starts or reloads as needed. */
  async applyConfig(options: NodeConfigOptions): Promise<void> {
    const changed = this.writeConfig(options);
    if (!this.postgres.isRunning()) await this.postgres.start();
    else if (changed) await this.postgres.reload();
  }

  /**
   * A writable goal's settings: pg_hba for the goal's nodes and client networks, a replication
   * slot per standby, and `synchronous_standby_names = names`, applied and visible to a new
   * session before it returns. Does nothing while they were last applied for the same goal,
   * names, nodes, client networks and postmaster, and Postgres answered the keeper (`answered`).
   * Then, until none is left, drops the slots of nodes no longer in the group
   * ({@link dropDepartedSlots}), which never fails the call.
   *
   * @throws PghaError `PGHA_ERR_TIMEOUT` when the setting is not visible within 5 s; whatever
   *   writing the config, starting Postgres or creating a slot throws.
   */
  async applyPrimarySettings(goalState: NodeState, goal: Pick<NodeGoal, 'nodes' | 'clientNetworks'>, names: string, answered: boolean): Promise<void> {
    const nodes = goal.nodes;
    const clientNetworks = goal.clientNetworks ?? [];
    const key = (): string => JSON.stringify([goalState, names, nodes.map((n) => [n.nodeId, n.host, n.port]), clientNetworks, postmasterPid(this.pgdata)]);
    if (!answered || key() !== this.appliedPrimaryKey) {
      this.appliedPrimaryKey = undefined;
      await this.applyConfig({ nodes, clientNetworks, synchronousStandbyNames: names });
      await this.ensureSlots(nodes);
      await this.waitForSetting(names);
      this.appliedPrimaryKey = key();
      this.departedSlotsLeft = true;
    }
    if (this.departedSlotsLeft) this.departedSlotsLeft = !(await this.dropDepartedSlots(nodes));
  }

  /**
   * Drops, on this primary, the physical replication slots named for nodes no longer in the
   * group: a name {@link nodeSlotName} makes ({@link nodeIdOfSlotName}) for none of `nodes`
   * (the goal's, which lists every node of the group not dropped), such as the slot of a
   * standby removed with `pgha drop node`. Nothing streams through it any more, and it would
   * hold the WAL from its `restart_lsn` for good (`wal_status` `reserved`;
   * `max_slot_wal_keep_size` is unlimited by default). Never a slot of another name (the
   * operator's), never one a walsender uses (a dropped node whose Postgres still streams: its
   * slot goes once it stops). Never throws: a failure is logged as a warning.
   *
   * @returns true when none is left (false: one is in use, or dropping failed; the caller tries
   *   again on its next call).
   */
  private async dropDepartedSlots(nodes: readonly GroupMember[]): Promise<boolean> {
    const members = new Set(nodes.map((n) => n.nodeId));
    const departed = (slot: string): boolean => {
      const nodeId = nodeIdOfSlotName(slot);
      return nodeId !== undefined && !members.has(nodeId);
    };
    try {
      const { dropped, inUse } = await this.dropInactiveSlots(departed);
      if (dropped.length > 0) this.log.info(`removed the replication slots of nodes no longer in the group (${dropped.join(', ')}): nothing streams through them, and they would hold WAL for good`);
      const inUseNow = inUse.join(', ');
      if (inUseNow !== '' && inUseNow !== this.departedSlotsInUse) {
        this.log.warn(`kept the replication slots of nodes no longer in the group that a walsender still uses (${inUseNow}): dropped once it stops`);
      }
      this.departedSlotsInUse = inUseNow;
      return inUse.length === 0;
    } catch (err) {
      this.log.warn(`could not drop the replication slots of nodes no longer in the group (${(err as Error).message.split('\n')[0]}): trying again on the next tick`);
      return false;
    }
  }

  /**
   * Drops, in one session, the physical replication slots `chosen` picks by name that no
   * walsender uses.
   *
   * @param chosen - whether a slot, by its name, is one to drop.
   * @returns the slots dropped, and those chosen but in use (left), by name.
   * @throws the session's errors: Postgres does not answer, or a slot became active meanwhile
   *   (`pg_drop_replication_slot` refuses it).
   */
  private async dropInactiveSlots(chosen: (slot: string) => boolean): Promise<{ dropped: string[]; inUse: string[] }> {
    return this.session.withSession(async (c) => {
      const { rows } = await c.query<{ slot_name: string; active: boolean }>("select slot_name, active from pg_replication_slots where slot_type = 'physical' order by slot_name");
      const picked = rows.filter((r) => chosen(r.slot_name));
      const dropped: string[] = [];
      for (const { slot_name: slot, active } of picked) {
        if (active) continue;
        await c.query('select pg_drop_replication_slot($1)', [slot]);
        dropped.push(slot);
      }
      return { dropped, inUse: picked.filter((r) => r.active).map((r) => r.slot_name) };
    });
  }

  /** Creates the replication and probe roles with the formation's passwords (idempotent). */
  async createRoles(): Promise<void> {
    await withLocalClient(this.session.local, async (c) => {
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
    await this.session.withSession(async (c) => {
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

  /**
   * Waits until the keeper's session sees `synchronous_standby_names = expected` (after a
   * reload), looking every {@link SETTING_POLL_INTERVAL_MS}.
   *
   * @throws PghaError `PGHA_ERR_TIMEOUT` naming the value still seen after `timeoutMs`.
   */
  async waitForSetting(expected: string, timeoutMs = 5000): Promise<void> {
    let value: string | undefined;
    const read = async (): Promise<boolean> => {
      value = await this.session.withSession(async (c) => (await c.query<{ v: string }>("select current_setting('synchronous_standby_names') as v")).rows[0]!.v);
      return value === expected;
    };
    if (await pollUntil(read, { timeoutMs, intervalMs: SETTING_POLL_INTERVAL_MS })) return;
    throw new PghaError('PGHA_ERR_TIMEOUT', `synchronous_standby_names is still ${value === undefined ? 'unread' : `'${value}'`}, expected '${expected}' after reload`);
  }

  /**
   * Starts (or re-points) Postgres as a hot standby of the goal's upstream ({@link currentUpstream}),
   * then drops the node slots it holds ({@link dropNodeSlots}). Does nothing while it was
   * last done for the same upstream, slot, nodes, client networks and postmaster, and
   * `standby.signal` is there (see {@link appliedStandbyKey}): slots come back only with a new
   * postmaster (from `pg_replslot/`), and a drop that failed is tried again on the next call.
   *
   * @throws PghaError `PGHA_ERR_CONFIG` when there is no upstream to follow yet;
   *   `PGHA_ERR_PGDATA` when the data directory is not the node's.
   */
  async followAsStandby(goal: NodeGoal): Promise<void> {
    const upstream = this.currentUpstream(goal);
    if (!upstream) throw new PghaError('PGHA_ERR_CONFIG', 'no primary to follow yet', { hint: 'the monitor has not assigned a primary; the keeper retries' });
    const useSlot = upstream.nodeId === goal.primary?.nodeId;
    const clientNetworks = goal.clientNetworks ?? [];
    const key = (): string => JSON.stringify([upstream.nodeId, upstream.host, upstream.port, useSlot, goal.nodes.map((n) => [n.nodeId, n.host, n.port]), clientNetworks, postmasterPid(this.pgdata)]);
    if (key() === this.appliedStandbyKey && this.postgres.hasStandbySignal()) return;
    this.identity.assertOwn();
    setStandbySignal(this.pgdata, true);
    await this.applyConfig({ nodes: goal.nodes, clientNetworks, synchronousStandbyNames: '', follow: upstream, useSlot });
    if (!(await this.dropNodeSlots())) return;
    this.appliedStandbyKey = key();
  }

  /**
   * Drops, on this running standby, the physical replication slots pgha names for nodes
   * (`nodeSlotName`, recognised by {@link nodeIdOfSlotName}, whichever node, in the group or
   * gone from it) that no walsender uses: those an old primary kept (a switchover's, which
   * pg_rewind finds needs no rewind and leaves as it is; a primary put in maintenance, or failed
   * over, that rejoins). An inactive slot on a standby holds the WAL from its `restart_lsn`
   * through every restartpoint (`max_slot_wal_keep_size` is unlimited by default), so `pg_wal`
   * would grow without end. Slots of other names (the operator's) are left alone. Should the
   * node become primary again, `ensureSlots` creates fresh ones. Never throws: when Postgres
   * does not answer, a warning is logged.
   *
   * @returns true when none of them is left inactive (false: Postgres did not answer).
   */
  private async dropNodeSlots(): Promise<boolean> {
    try {
      const { dropped } = await this.dropInactiveSlots((slot) => nodeIdOfSlotName(slot) !== undefined);
      if (dropped.length > 0) this.log.info(`removed the replication slots this node kept as a primary (${dropped.join(', ')}): a standby keeps none`);
      return true;
    } catch (err) {
      this.log.warn(`could not drop the group's replication slots on this standby (${(err as Error).message.split('\n')[0]}): trying again on the next tick`);
      return false;
    }
  }

  /**
   * The node this standby streams from: the monitor's `upstream` (the primary, or the most
   * advanced standby during `fast_forward`), which it remembers; the last one followed when the
   * monitor has none to offer (mid-failover).
   */
  currentUpstream(goal: NodeGoal): GroupMember | null {
    if (goal.upstream && goal.upstream.nodeId !== this.config.nodeId) this.upstream = goal.upstream;
    return this.upstream;
  }
}
