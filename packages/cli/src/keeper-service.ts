/**
 * The keeper as a service: `pgha keeper run` (with its pid file and SIGHUP reload),
 * `pgha keeper stop|reload|status`, and `pgha keeper set on-role-change|on-role-change-timeout-ms|monitor`.
 * Source: `pg_ctl stop|reload|status` (exit codes), pg_autoctl's `stop|reload|status`, Patroni's
 * SIGHUP reload.
 */
import { Keeper, KeeperConfigSchema, monitorUrlFields, DEFAULT_ROLE_CHANGE_TIMEOUT_MS, keeperPaths, loadKeeperConfig, loadKeeperState, postgresTlsDir, startKeeperHttp, type KeeperConfig, type KeeperHttpServer } from '@pgha/keeper';
import { acquirePidFile, inspectPidFile, isProcessAlive, pidFilePath, pollUntil, postmasterPid, postmasterPort, releasePidFile, writeJsonAtomic } from '@pgha/postgres';
import { PghaError, ValidationError, formatDurationMs } from '@pgha/shared/base';
import { CommandExit, reportError } from './errors.js';
import { createLogger } from './logger.js';
import { monitorUrls } from './options.js';
import { caFileGiven, readCaFile } from './credentials.js';

/** Exit codes of `pgha keeper status` (and of stop/reload with no keeper running), as `pg_ctl status`'s. */
export const KEEPER_STATUS_EXIT = { running: 0, notRunning: 3, noKeeper: 4 } as const;

/**
 * `pgha keeper run`: takes the pid file (refusing a second keeper of the same data directory),
 * runs the keeper until `stop` aborts, then stops Postgres; SIGHUP re-reads keeper.json.
 *
 * @throws ConflictError when a keeper already runs for `pgdata`; PghaError `PGHA_ERR_CONFIG`
 *   for a missing or damaged keeper.json or state.json.
 */
export async function runKeeper(pgdata: string, stop: AbortSignal): Promise<void> {
  const config = loadKeeperConfig(pgdata);
  const log = createLogger('keeper').child({ formation: config.formation, nodeId: config.nodeId, name: config.name });
  const replaced = acquirePidFile(pgdata, 'keeper');
  const onHangup = (): void => {
    log.info('SIGHUP: re-reading keeper.json and the node\'s certificate');
    keeper?.reloadConfig();
    http?.reloadCertificate('SIGHUP');
  };
  let keeper: Keeper | undefined;
  let http: KeeperHttpServer | undefined;
  process.on('SIGHUP', onHangup);
  try {
    if (replaced) log.warn(`replaced the stale pid file ${pidFilePath(pgdata, 'keeper')}: ${replaced}`);
    keeper = new Keeper(config, log);
    log.info(`keeper of node ${config.nodeId} "${config.name}" starting in state ${keeper.currentState} (pid ${process.pid})`);
    if (config.skipPgHba) log.info(`pg_hba.conf is the operator's (--skip-pg-hba): the keeper never writes ${config.pgdata}/pg_hba.conf, nor the formation's client networks into it`);
    http = startKeeperHttp(keeper, log.child({ component: 'http' }));
    try {
      await keeper.run(stop);
    } finally {
      await http.close();
    }
    log.info('keeper stopping: stopping Postgres');
    await keeper.shutdown(true);
  } finally {
    process.off('SIGHUP', onHangup);
    releasePidFile(pgdata, 'keeper');
  }
}

/** What `pgha keeper status --json` prints. */
export interface KeeperStatus {
  pgdata: string;
  keeper: { running: boolean; pid: number | null; stalePidFile: string | null };
  postgres: { running: boolean; pid: number | null; port: number | null };
  node: { name: string; nodeId: number; formation: string; reachedState: string | null; assignedState: string | null; stateUpdatedAt: string | null; stateError: string | null };
  onRoleChange: { command: string | null; timeoutMs: number };
}

/** Reads the keeper's, Postgres's and the node's state. @throws PghaError `PGHA_ERR_CONFIG` when `pgdata` has no readable keeper.json. */
export function keeperStatus(pgdata: string): KeeperStatus {
  const config = loadKeeperConfig(pgdata);
  const pidFile = inspectPidFile(pgdata, 'keeper');
  const pgPid = postmasterPid(config.pgdata);
  let state: ReturnType<typeof loadKeeperState> | undefined;
  let stateError: string | null = null;
  try {
    state = loadKeeperState(config);
  } catch (err) {
    stateError = (err as Error).message;
  }
  return {
    pgdata: config.pgdata,
    keeper: { running: pidFile.status === 'running', pid: pidFile.status === 'absent' ? null : (pidFile.pid ?? null), stalePidFile: pidFile.status === 'stale' ? pidFile.reason : null },
    postgres: { running: pgPid !== undefined, pid: pgPid ?? null, port: pgPid !== undefined ? (postmasterPort(config.pgdata) ?? null) : null },
    node: { name: config.name, nodeId: config.nodeId, formation: config.formation, reachedState: state?.currentState ?? null, assignedState: state?.assignedState ?? null, stateUpdatedAt: state?.updatedAt ?? null, stateError },
    onRoleChange: { command: config.onRoleChange ?? null, timeoutMs: config.onRoleChangeTimeoutMs ?? DEFAULT_ROLE_CHANGE_TIMEOUT_MS },
  };
}

/** {@link keeperStatus} as `pgha keeper status` prints it. */
export function renderKeeperStatus(s: KeeperStatus): string {
  const keeper = s.keeper.running ? `running (pid ${s.keeper.pid})` : s.keeper.stalePidFile ? `not running (stale pid file: ${s.keeper.stalePidFile})` : 'not running';
  const postgres = s.postgres.running ? `running (pid ${s.postgres.pid}${s.postgres.port ? `, port ${s.postgres.port}` : ''})` : 'not running';
  const state = s.node.stateError ? `unreadable: ${s.node.stateError}` : `reached ${s.node.reachedState}, assigned ${s.node.assignedState} (state.json of ${s.node.stateUpdatedAt})`;
  const hook = s.onRoleChange.command ? `${s.onRoleChange.command} (timeout ${formatDurationMs(s.onRoleChange.timeoutMs)})` : 'none';
  return [
    `keeper:         ${keeper}`,
    `postgres:       ${postgres}`,
    `node:           ${s.node.name} (node ${s.node.nodeId}, formation ${s.node.formation}), ${s.pgdata}`,
    `state:          ${state}`,
    `on-role-change: ${hook}`,
  ].join('\n');
}

/** `pgha keeper status`: exits 0 when the keeper runs, 3 when it does not, 4 when `pgdata` is not a keeper's. */
export async function statusCommand(pgdata: string, json: boolean): Promise<void> {
  let s: KeeperStatus;
  try {
    s = keeperStatus(pgdata);
  } catch (err) {
    if (err instanceof PghaError && err.code === 'PGHA_ERR_CONFIG') {
      reportError(err);
      throw new CommandExit(KEEPER_STATUS_EXIT.noKeeper);
    }
    throw err;
  }
  process.stdout.write(json ? `${JSON.stringify(s, null, 2)}\n` : `${renderKeeperStatus(s)}\n`);
  if (!s.keeper.running) throw new CommandExit(KEEPER_STATUS_EXIT.notRunning);
}

/** The pid of the keeper of `pgdata`, or a "not running" line on stderr and exit 3. */
function runningKeeperPid(pgdata: string): number {
  loadKeeperConfig(pgdata);
  const seen = inspectPidFile(pgdata, 'keeper');
  if (seen.status === 'running') return seen.pid;
  process.stderr.write(`pgha: no keeper runs for ${pgdata}${seen.status === 'stale' ? ` (stale pid file: ${seen.reason})` : ''}\n`);
  throw new CommandExit(KEEPER_STATUS_EXIT.notRunning);
}

/**
 * `pgha keeper stop`: SIGTERM to the keeper, which stops Postgres and exits; waits up to
 * `waitS` seconds (0: does not wait) until both have.
 *
 * @throws PghaError `PGHA_ERR_TIMEOUT` when either still runs after `waitS`.
 */
export async function stopCommand(pgdata: string, waitS: number): Promise<void> {
  const pid = runningKeeperPid(pgdata);
  const config = loadKeeperConfig(pgdata);
  const startedAtMs = Date.now();
  process.kill(pid, 'SIGTERM');
  if (waitS === 0) {
    process.stdout.write(`sent SIGTERM to the keeper (pid ${pid}): it stops Postgres, then exits\n`);
    return;
  }
  const running = (): string | undefined => (isProcessAlive(pid) ? `the keeper (pid ${pid})` : postmasterPid(config.pgdata) !== undefined ? `Postgres (pid ${postmasterPid(config.pgdata)})` : undefined);
  await pollUntil(() => running() === undefined, { timeoutMs: startedAtMs + waitS * 1000 - Date.now(), intervalMs: 100 });
  const still = running();
  if (still) {
    throw new PghaError('PGHA_ERR_TIMEOUT', `${still} still runs ${formatDurationMs(waitS * 1000)} after SIGTERM`, { hint: `wait longer with --wait, and see the keeper's log; pgha keeper status --pgdata ${pgdata}` });
  }
  process.stdout.write(`keeper stopped (pid ${pid}) and Postgres stopped, in ${formatDurationMs(Date.now() - startedAtMs)}\n`);
}

/** `pgha keeper reload`: SIGHUP to the keeper, which re-reads keeper.json and the node's certificate, and logs what changed. */
export async function reloadCommand(pgdata: string): Promise<void> {
  const pid = runningKeeperPid(pgdata);
  process.kill(pid, 'SIGHUP');
  process.stdout.write(`sent SIGHUP to the keeper (pid ${pid}): it re-reads ${keeperPaths(pgdata).config} and the node's certificate (${postgresTlsDir(pgdata)}/server.crt, server.key), and logs what changed\n`);
}

/**
 * Edits keeper.json atomically (`writeJsonAtomic`, 0600: it holds the node's secrets), validated against its schema.
 * @returns the new configuration.
 */
export function editKeeperConfig(pgdata: string, edit: (c: KeeperConfig) => KeeperConfig): KeeperConfig {
  const next = KeeperConfigSchema.parse(edit(loadKeeperConfig(pgdata)));
  writeJsonAtomic(keeperPaths(pgdata).config, next);
  return next;
}

/** The line `pgha keeper set` prints after an edit. */
function appliedLine(pgdata: string, what: string): string {
  const seen = inspectPidFile(pgdata, 'keeper');
  const how = seen.status === 'running' ? `the running keeper (pid ${seen.pid}) applies it on: pgha keeper reload --pgdata ${pgdata}` : 'the keeper applies it when it starts';
  return `${what} in ${keeperPaths(pgdata).config}; ${how}\n`;
}

/** `pgha keeper set on-role-change CMD`: the hook in keeper.json ("" removes it). @throws ValidationError for a command with NUL. */
export function setOnRoleChange(pgdata: string, command: string): void {
  if (command.includes('\0')) throw new ValidationError('the command must not contain NUL characters', { field: 'command' });
  editKeeperConfig(pgdata, (c) => {
    const { onRoleChange: _old, ...rest } = c;
    return command.trim() === '' ? rest : { ...rest, onRoleChange: command };
  });
  process.stdout.write(appliedLine(pgdata, command.trim() === '' ? 'on-role-change removed' : 'on-role-change set'));
}

/** `pgha keeper set on-role-change-timeout-ms MS`. */
export function setOnRoleChangeTimeout(pgdata: string, ms: number): void {
  editKeeperConfig(pgdata, (c) => ({ ...c, onRoleChangeTimeoutMs: ms }));
  process.stdout.write(appliedLine(pgdata, `on-role-change-timeout-ms set to ${ms}`));
}

/** `pgha keeper set monitor URL[,URL…]`, with the monitors' CA from `--ssl-ca-file` (or `PGHA_SSL_CA_FILE`) when given. */
export function setMonitors(pgdata: string, urls: string): void {
  const list = monitorUrls(urls);
  const caFile = caFileGiven();
  const ca = caFile === undefined ? undefined : readCaFile(caFile);
  editKeeperConfig(pgdata, (c) => ({ ...c, ...monitorUrlFields(list), ...(ca === undefined ? {} : { monitorCaCertificate: ca }) }));
  process.stdout.write(appliedLine(pgdata, `monitors set to ${list.join(', ')}${caFile === undefined ? '' : ` (CA from ${caFile})`}`));
}
