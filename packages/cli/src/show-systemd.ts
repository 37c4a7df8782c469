/**
 * `pgha show systemd --pgdata DIR`: a systemd unit for the keeper of that data directory, or
 * for the monitor when DIR is a monitor's (told apart by the file in `<DIR>.pgha/`:
 * `keeper.json` or `monitor.json`). Source: pg_autoctl's `show systemd`; Patroni's
 * `patroni.service` (KillMode=process, so that a crashed supervisor leaves Postgres running).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { PghaError } from '@pgha/shared/core';
import { serviceCommand } from './service-command.js';

/**
 * Longest a stop of Postgres by pgha takes, in s: `pg_ctl stop -m fast` for 10 s, then
 * `-m immediate` for at most 30 s (`pgCtlStop`).
 */
const POSTGRES_STOP_S = 40;
/** Slack on top of the computed stop time, in s. */
const STOP_MARGIN_S = 10;

/** Variables of the caller's environment that the unit carries over when set. */
const CARRIED_ENV = ['PGHA_PG_USER', 'PGHA_PG_BINDIR'];

/** A printed unit. */
export interface SystemdUnit {
  kind: 'keeper' | 'monitor';
  /** Suggested file name, e.g. `pgha-keeper-node1.service`. */
  unitName: string;
  text: string;
}

/** One word of a systemd command line or assignment: `%` and `$` doubled, quoted when needed. */
export function systemdWord(word: string): string {
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped) ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A unit-name-safe form of a node name. */
function unitNamePart(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_');
}

/** Name of the owner of `path` (the user pgha ran as when it wrote it). */
function ownerOf(path: string): string {
  const uid = statSync(path).uid;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.split(':')[2] === String(uid));
  return line?.split(':')[0] ?? String(uid);
}

function kill(): string {
  return existsSync('/bin/kill') ? '/bin/kill' : '/usr/bin/kill';
}

/**
 * The unit for the keeper or the monitor of `pgdata`.
 *
 * - `ExecStart`: this node binary and this installation's `pgha`, absolute paths.
 * - `KillMode=process`: SIGTERM goes to pgha alone, which stops Postgres itself (and the keeper
 *   runs its `stopped` hook); a pgha that crashes leaves Postgres running for the restarted one.
 * - `TimeoutStopSec`: the Postgres stop (40 s at most), plus for a keeper the hook's timeout and
 *   kill grace, plus 10 s.
 * - `ExecReload`: SIGHUP: a keeper re-reads keeper.json and the node's certificate; a monitor
 *   re-reads its operator and viewer token files (`pgha monitor rotate-token`; the rest of
 *   monitor.json only at start).
 *
 * @throws PghaError `PGHA_ERR_CONFIG` when `pgdata` is neither a keeper's nor a monitor's, or its file is damaged.
 */
export async function systemdUnit(pgdata: string, env: NodeJS.ProcessEnv = process.env): Promise<SystemdUnit> {
  const { DEFAULT_ROLE_CHANGE_TIMEOUT_MS, HOOK_KILL_GRACE_MS, keeperPaths, loadKeeperConfig } = await import('@pgha/keeper');
  const keeperFile = keeperPaths(pgdata).config;
  const { monitorPaths, loadMonitorConfig } = await import('@pgha/monitor');
  const monitorFile = monitorPaths(pgdata).config;
  const environment = [`PGHA_LOG_LEVEL=${env.PGHA_LOG_LEVEL ?? 'info'}`, ...CARRIED_ENV.filter((k) => env[k]).map((k) => `${k}=${env[k]}`)];
  let kind: SystemdUnit['kind'];
  let header: string[];
  let description: string;
  let unitName: string;
  let stopS: number;
  let user: string;
  let absPgdata: string;
  /** A monitor on etcd: no Postgres of its own. */
  let onEtcd = false;
  if (existsSync(monitorFile)) {
    const config = loadMonitorConfig(pgdata);
    kind = 'monitor';
    onEtcd = config.store !== undefined;
    absPgdata = config.pgdata;
    unitName = 'pgha-monitor.service';
    description = `pgha monitor (${config.listen})`;
    header = [`# The pgha monitor of ${config.pgdata}, serving ${config.listen}.`];
    stopS = POSTGRES_STOP_S + STOP_MARGIN_S;
    user = ownerOf(monitorFile);
  } else if (existsSync(keeperFile)) {
    const config = loadKeeperConfig(pgdata);
    kind = 'keeper';
    absPgdata = config.pgdata;
    unitName = `pgha-keeper-${unitNamePart(config.name)}.service`;
    description = `pgha keeper of node ${config.name} (formation ${config.formation})`;
    header = [`# The pgha keeper of node "${config.name}" (node ${config.nodeId}, formation "${config.formation}"), data directory ${config.pgdata}.`];
    const hookS = Math.ceil(((config.onRoleChangeTimeoutMs ?? DEFAULT_ROLE_CHANGE_TIMEOUT_MS) + HOOK_KILL_GRACE_MS) / 1000);
    stopS = POSTGRES_STOP_S + hookS + STOP_MARGIN_S;
    user = ownerOf(keeperFile);
  } else {
    throw new PghaError('PGHA_ERR_CONFIG', `${pgdata} is neither a keeper's nor a monitor's data directory (no keeper.json or monitor.json in ${keeperPaths(pgdata).dir})`, {
      hint: 'give the --pgdata of a node (pgha keeper create postgres) or of a monitor (pgha monitor create)',
    });
  }
  const execStart = serviceCommand(kind, absPgdata).map(systemdWord).join(' ');
  const lines = [
    ...header,
    `# Save as /etc/systemd/system/${unitName}, then: systemctl daemon-reload && systemctl enable --now ${unitName}`,
    '[Unit]',
    `Description=${description}`,
    'After=network-online.target',
    'Wants=network-online.target',
    '# Keep restarting, however often it fails.',
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=simple',
    `User=${user}`,
    ...environment.map((e) => `Environment=${systemdWord(e)}`),
    `ExecStart=${execStart}`,
    ...(kind === 'monitor' ? ['# Reload: SIGHUP, the monitor reads its token files again (the rest of monitor.json only when it starts: systemctl restart).'] : []),
    `ExecReload=${kill()} -HUP $MAINPID`,
    ...(onEtcd
      ? ['# SIGTERM: it gives up the formations it leads (another monitor takes over at once) and stops.']
      : [
          `# SIGTERM to pgha alone: it stops ${kind === 'keeper' ? 'Postgres, then runs the role-change hook for "stopped"' : 'its Postgres'}; if it`,
          '# crashes, Postgres keeps running and the restarted pgha takes it over.',
        ]),
    'KillMode=process',
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${stopS}`,
    'Restart=always',
    'RestartSec=1',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
  ];
  return { kind, unitName, text: `${lines.join('\n')}\n` };
}
