/**
 * The `pgha` command line. Every client command takes `--monitor URL[,URL…]` or reads
 * `PGHA_MONITOR` (one monitor, or several tried in order); every error is one line on stderr and a non-zero exit.
 */
import { Argument, Command, CommanderError, Option, type CommandUnknownOpts } from '@commander-js/extra-typings';
import type { EtcdStoreOption, KeyAndCertificate, MonitorSslOption } from '@pgha/monitor';
import { ROLE_CHANGE_TIMEOUT_MAX_MS, ROLE_CHANGE_TIMEOUT_MIN_MS, ValidationError } from '@pgha/shared/core';
import { addCredentialOptions, caFileGiven, cliCredentials } from './credentials.js';
import { CommandExit, USAGE_EXIT_CODE, configureUsageErrors, reportError } from './errors.js';
import { boolArg, clientNetworksArg, formationOption, intArg, monitorOption, monitorUrls, subcommand } from './options.js';
import { registerSettingsCommands } from './settings.js';
import { registerPostgresqlCommands } from './postgresql.js';
import { defaultUpDir } from './up-dir.js';
import { registerKeeperServiceCommands } from './keeper-commands.js';

/** The `code` of the CommanderError that `--version` ends parsing with; {@link run} prints the version. */
const VERSION_ASKED = 'commander.version';

/** An AbortSignal that fires on SIGINT or SIGTERM. */
function stopSignal(): AbortSignal {
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  // `on`, not `once`: execa's exit handler re-raises a signal that nobody else listens to.
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return ac.signal;
}

/**
 * Builds the program (exported for tests): every command's options, arguments and help. Only
 * what that takes is imported here (commander, the option parsers, `@pgha/shared/core`); each
 * action imports what it runs when it runs (the monitor's, the keeper's, the HTTP client's and
 * the tables' modules), so that `pgha --help` or `pgha show state` loads only what it uses
 * (issue 17 §4; `test/cli-start.test.ts` checks what they load).
 */
export function buildProgram(): CommandUnknownOpts {
  const program = new Command('pgha')
    .description('PostgreSQL high availability: a monitor, keepers, and automatic failover')
    .option('-V, --version', "print pgha's version and the commit it was built from")
    .exitOverride();
  // As commander's own .version(), but the commit is looked up only when asked for: parsing
  // stops here, and run() prints the version.
  program.on('option:version', () => {
    throw new CommanderError(0, VERSION_ASKED, 'version asked for');
  });
  program
    .command('version')
    .description("pgha's version and the commit it was built from")
    .option('--json', 'print JSON')
    .action(async (o) => {
      const { buildInfo, versionLine } = await import('./version.js');
      const info = buildInfo();
      process.stdout.write(o.json ? `${JSON.stringify(info, null, 2)}\n` : `${versionLine(info)}\n`);
    });

  const monitor = program.command('monitor').description('the monitor: decides what each node must be');
  monitor
    .command('create')
    .description("create a monitor: initdb its own Postgres, apply the migrations")
    .requiredOption('--pgdata <dir>', "data directory of the monitor's Postgres")
    .option('--pg-port <port>', "port of the monitor's Postgres", intArg(1, 65535), 5430)
    .option('--listen <host:port>', 'HTTP API address', '127.0.0.1:8432')
    .option('--ssl-self-signed', 'TLS with a CA of its own that also signs the nodes\' certificates (the default)')
    .option('--ssl-ca-file <file>', 'TLS with your CA: the CA certificate (with --server-cert and --server-key)')
    .option('--server-cert <file>', "the monitor's HTTPS certificate, issued by --ssl-ca-file")
    .option('--server-key <file>', "the monitor's HTTPS private key")
    .option('--ssl-ca-key-file <file>', "with --ssl-ca-file instead of --server-cert/--server-key: your CA's key, with which the monitor signs its own and the nodes' certificates")
    .option('--no-ssl', 'plain HTTP, for tests only: tokens and passwords cross the network in clear text')
    .option('--store <uri>', "an etcd store shared with other monitors instead of its own Postgres: etcd://HOST:PORT[,HOST:PORT…][/prefix]")
    .option('--store-ca-file <file>', "TLS to etcd: the CA of the etcd cluster")
    .option('--store-cert-file <file>', 'TLS to etcd: a client certificate, when etcd asks for one (with --store-key-file)')
    .option('--store-key-file <file>', "TLS to etcd: the client certificate's key")
    .option('--join', "join the store at --store's prefix (made by another monitor) rather than make one there")
    .option('--from-monitor <pgdata>', "make the new store a copy of the stopped monitor on its own Postgres at this data directory (its formations, nodes, tokens, CA and latest events)")
    .action(async (o) => {
      const [{ createMonitor, loadGivenCa }, { createLogger }] = await Promise.all([import('@pgha/monitor'), import('./logger.js')]);
      await createMonitor({ pgdata: o.pgdata, pgPort: o.pgPort, listen: o.listen, ssl: sslOption(o, loadGivenCa), ...storeOption(o) }, createLogger('monitor'));
    });
  monitor
    .command('run')
    .description('run the monitor: HTTP API, health probes, state machine')
    .requiredOption('--pgdata <dir>', "data directory of the monitor's Postgres")
    .action(async (o) => {
      const signal = stopSignal();
      const { createLogger } = await import('./logger.js');
      const log = createLogger('monitor');
      // SIGHUP (pgha monitor rotate-token): read the tokens again; one that comes while the
      // monitor starts is kept for when it runs (Node's default for SIGHUP would end it).
      let reloadTokens: (() => Promise<void>) | undefined;
      let hangupWhileStarting = false;
      const onHangup = (): void => {
        log.info('SIGHUP: reading the operator and viewer tokens again');
        if (reloadTokens) void reloadTokens();
        else hangupWhileStarting = true;
      };
      process.on('SIGHUP', onHangup);
      const { runMonitor } = await import('@pgha/monitor');
      const running = await runMonitor(o.pgdata, log);
      reloadTokens = () => running.reloadTokens();
      if (hangupWhileStarting) void reloadTokens();
      const failed = await Promise.race([
        new Promise<false>((r) => signal.addEventListener('abort', () => r(false), { once: true })),
        running.failure.then(() => true),
      ]);
      // Its data directory is no longer its own: the monitor has logged why and stopped.
      if (failed) throw new CommandExit(1);
      log.info('stopping the monitor');
      await running.stop();
    });

  const keeper = program.command('keeper').description('the keeper: drives one Postgres node');
  keeper
    .command('create')
    .description('register a node and initialise it')
    .addArgument(new Argument('<kind>', 'what to create').choices(['postgres']))
    .requiredOption('--pgdata <dir>', 'data directory of the node')
    .requiredOption('--pg-port <port>', 'port of the node', intArg(1, 65535))
    .requiredOption('--name <name>', 'node name, unique in the formation')
    .addOption(monitorOption())
    .option('--hostname <host>', 'address other nodes reach this one at (default: the local address that routes to the monitor)')
    .addOption(formationOption())
    .option('--candidate-priority <n>', 'priority in failover elections (0 = never promote)', intArg(0, 100), 50)
    .option('--replication-quorum <bool>', 'counts toward synchronous replication', boolArg, true)
    .addOption(new Option('--auth <method>', 'client authentication method in pg_hba.conf').choices(['scram-sha-256', 'trust', 'md5']).default('scram-sha-256'))
    .option('--server-cert <file>', "this node's Postgres certificate, issued by --ssl-ca-file (default: the monitor's CA signs one)")
    .option('--server-key <file>', "this node's Postgres private key")
    .addOption(new Option('--ssl-mode <mode>', 'how nodes verify each other\'s Postgres').choices(['verify-full', 'verify-ca', 'require']).default('verify-full'))
    .option('--no-ssl', 'Postgres without TLS, for tests only')
    .option('--on-role-change <command>', "command run (through /bin/sh -c) when the node's role changes (docs/hooks.md)")
    .option('--on-role-change-timeout-ms <ms>', 'limit of one run of that command', intArg(ROLE_CHANGE_TIMEOUT_MIN_MS, ROLE_CHANGE_TIMEOUT_MAX_MS))
    .option('--http-listen <host:port>', "the keeper's HTTP health routes and metrics (default: <hostname>:8008)")
    .option('--client-network <cidrs>', "networks clients may connect from, CIDR[,CIDR…] (TLS and SCRAM only), added to the formation's client networks so that every node admits them; repeatable", clientNetworksArg)
    .option('--skip-pg-hba', 'the operator manages pg_hba.conf: the keeper never writes it (docs/security.md says what it must admit)')
    .option('--postgres-password-file <file>', "a file (mode 0600) holding the postgres role's password, set on the first node (standbys replicate it)")
    .option('--json', 'print the node created as JSON')
    .action(async (_kind, o) => {
      if (o.onRoleChange !== undefined && (o.onRoleChange.trim() === '' || o.onRoleChange.includes('\0'))) throw new ValidationError('--on-role-change needs a command', { hint: 'e.g. --on-role-change /usr/local/bin/pgha-vip.sh (docs/hooks.md)', field: 'onRoleChange' });
      if (!o.serverCert !== !o.serverKey) throw new ValidationError('--server-cert and --server-key go together', { hint: 'give both, or neither to have the monitor\'s CA sign a certificate' });
      const caFile = caFileGiven();
      if (o.serverCert && !caFile) throw new ValidationError('--server-cert needs --ssl-ca-file, the CA that issued it', { field: 'sslCaFile' });
      const signal = stopSignal();
      const [{ createNode }, { createLogger }] = await Promise.all([import('@pgha/keeper'), import('./logger.js')]);
      const log = createLogger('keeper');
      if (!o.ssl) log.warn('TLS is OFF for Postgres (--no-ssl): replication and passwords cross the network in clear text; use this for tests only');
      if (o.auth === 'trust') log.warn('--auth trust: clients on the formation hosts connect over TCP without a password; use this for tests only');
      if (o.skipPgHba) log.info('--skip-pg-hba: the keeper never writes pg_hba.conf; it must admit replication and pg_rewind between the nodes and the monitor\'s health probe (docs/security.md)');
      const created = await createNode({
        monitorUrls: monitorUrls(o.monitor),
        pgdata: o.pgdata,
        pgPort: o.pgPort,
        name: o.name,
        ...(o.hostname ? { hostname: o.hostname } : {}),
        formation: o.formation,
        candidatePriority: o.candidatePriority,
        replicationQuorum: o.replicationQuorum,
        auth: o.auth,
        credentials: cliCredentials(),
        ssl: !o.ssl ? { mode: 'disable' } : { mode: o.sslMode, ...(caFile ? { caFile } : {}), ...(o.serverCert && o.serverKey ? { certFile: o.serverCert, keyFile: o.serverKey } : {}) },
        ...(o.onRoleChange !== undefined ? { onRoleChange: o.onRoleChange } : {}),
        ...(o.onRoleChangeTimeoutMs !== undefined ? { onRoleChangeTimeoutMs: o.onRoleChangeTimeoutMs } : {}),
        ...(o.httpListen !== undefined ? { httpListen: o.httpListen } : {}),
        ...(o.clientNetwork !== undefined ? { clientNetworks: o.clientNetwork } : {}),
        ...(o.skipPgHba ? { skipPgHba: true } : {}),
        ...(o.postgresPasswordFile !== undefined ? { postgresPasswordFile: o.postgresPasswordFile } : {}),
      }, log, signal);
      const summary = {
        node_id: created.config.nodeId,
        name: created.config.name,
        formation: created.config.formation,
        group_id: created.config.groupId,
        state: created.state,
        pgdata: created.config.pgdata,
        skip_pg_hba: created.config.skipPgHba ?? false,
        postgres_password_set: created.postgresPasswordSet,
      };
      process.stdout.write(o.json ? `${JSON.stringify(summary, null, 2)}\n` : `node ${summary.node_id} "${summary.name}" of formation "${summary.formation}" created: ${summary.state}; run it with: pgha keeper run --pgdata ${summary.pgdata}\n`);
    });
  keeper
    .command('run')
    .description("run a node's keeper until stopped (stopping it stops Postgres)")
    .requiredOption('--pgdata <dir>', 'data directory of the node')
    .action(async (o) => (await import('./keeper-service.js')).runKeeper(o.pgdata, stopSignal()));
  // stop|reload|status|set|rotate-token (packages/cli/src/keeper-commands.ts)
  registerKeeperServiceCommands(keeper);
  monitor
    .command('rotate-token')
    .description("replace the operator token (or, with --viewer, the viewer token): the old one is refused at once by every monitor; run on the monitor's host")
    .requiredOption('--pgdata <dir>', "data directory of the monitor (its files are in <dir>.pgha/)")
    .option('--viewer', 'the read-only viewer token rather than the operator token')
    .option('--json', 'print JSON')
    .action(async (o) => (await import('./rotate-token.js')).rotateMonitorTokenCommand(o.pgdata, o.viewer ? 'viewer' : 'operator', !!o.json));

  const show = program.command('show').description('show the formation as the monitor sees it');
  show
    .command('state')
    .description('one row per node: name, id, host:port, TLI: LSN, connection, reported and goal state, health')
    .addOption(monitorOption())
    .addOption(formationOption())
    .option('--json', 'print JSON')
    .action(async (o) => (await import('./show.js')).showState(monitorUrls(o.monitor), o.formation, !!o.json));
  show
    .command('monitors')
    .description('every monitor (reachable, the formations it leads and its term, lease left) and every etcd member of the store')
    .addOption(monitorOption())
    .option('--json', 'print JSON')
    .action(async (o) => (await import('./show-monitors.js')).showMonitors(monitorUrls(o.monitor), !!o.json));
  show
    .command('events')
    .description('the latest goal-state changes with their reasons')
    .addOption(monitorOption())
    .addOption(formationOption())
    .option('--count <n>', 'how many events', intArg(1, 1000), 20)
    .option('--follow', 'then print each new event as it happens, until Ctrl-C (one JSON object a line with --json)')
    .option('--json', 'print JSON')
    .action(async (o) =>
      o.follow
        ? (await import('./follow-events.js')).followEvents(monitorUrls(o.monitor), o.formation, o.count, !!o.json, stopSignal())
        : (await import('./show.js')).showEvents(monitorUrls(o.monitor), o.formation, o.count, !!o.json));
  show
    .command('uri')
    .description('the formation connection URI (multi-host, target_session_attrs=read-write)')
    .addOption(monitorOption())
    .addOption(formationOption())
    .option('--read-only', 'a URI for reads: target_session_attrs=prefer-standby')
    .option('--json', 'print JSON')
    .action(async (o) => (await import('./show.js')).showUri(monitorUrls(o.monitor), o.formation, !!o.json, !!o.readOnly));
  show
    .command('haproxy')
    .description('an HAProxy configuration: a write port to the primary, a read port to the standbys, checked on each keeper\'s HTTP server')
    .addOption(monitorOption())
    .addOption(formationOption())
    .option('--write-port <n>', 'port of the write frontend', intArg(1, 65535), 5000)
    .option('--read-port <n>', 'port of the read frontend', intArg(1, 65535), 5001)
    .option('--bind <address>', 'address HAProxy listens on', '*')
    .option('--max-lag-bytes <n>', 'a standby lagging more than this leaves the read backend', intArg(0, Number.MAX_SAFE_INTEGER))
    .action(async (o) => {
      const { showHaproxy } = await import('./show-haproxy.js');
      await showHaproxy(monitorUrls(o.monitor), { formation: o.formation, writePort: o.writePort, readPort: o.readPort, bind: o.bind, ...(o.maxLagBytes !== undefined ? { maxLagBytes: o.maxLagBytes } : {}) });
    });
  show
    .command('systemd')
    .description("a systemd unit for the keeper of a data directory, or for the monitor when it is the monitor's")
    .requiredOption('--pgdata <dir>', 'data directory of a node or of the monitor')
    .action(async (o) => {
      process.stdout.write((await (await import('./show-systemd.js')).systemdUnit(o.pgdata)).text);
    });

  program
    .command('watch')
    .description('a live view of the formation: nodes, states, LSNs, lag, progress and the last events, redrawn in place (q quits)')
    .addOption(monitorOption())
    .addOption(formationOption())
    .option('--interval <ms>', 'time between two polls of the monitor, in ms', intArg(100, 60_000), 1000)
    .action(async (o) => {
      const { watch } = await import('./watch.js');
      await watch({ monitors: monitorUrls(o.monitor), formation: o.formation, intervalMs: o.interval });
    });

  // Formations and replication settings: set|get node|formation, show settings|standby-names,
  // create|drop formation (packages/cli/src/settings.ts).
  registerSettingsCommands(program);
  subcommand(program, 'set', 'change a replication setting (the formation reacts at once)')
    .command('postgres-password')
    .description("set the postgres role's password on the primary's Postgres (its standbys replicate it), from a file: never on a command line")
    .requiredOption('--pgdata <dir>', "data directory of the primary's node (on this host)")
    .requiredOption('--password-file <file>', 'a file (mode 0600) holding the password alone, or a pgpass line for postgres (as pgha up writes)')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const r = await (await import('./postgres-password.js')).setPostgresPassword(o.pgdata, o.passwordFile);
      process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : `password of role postgres set on node ${r.node_id} "${r.name}" of formation "${r.formation}"; its standbys replicate it\n`);
    });
  // Postgres parameters of the formation: set|get|show postgresql (packages/cli/src/postgresql.ts).
  registerPostgresqlCommands(program);

  program
    .command('up')
    .description('run a local formation: a monitor (or three on etcd) and N nodes on free loopback ports, until Ctrl-C')
    .option('--nodes <n>', 'number of Postgres nodes', intArg(1, 9), 2)
    .addOption(new Option('--monitors <n>', 'one monitor on its own Postgres, or three on a local 3-member etcd cluster (TLS)').choices(['1', '3']).default('1'))
    .option('--dir <dir>', 'where to keep everything', defaultUpDir())
    .action(async (o) => {
      const [{ up }, { createLogger }] = await Promise.all([import('./up.js'), import('./logger.js')]);
      await up({ nodes: o.nodes, dir: o.dir, monitors: o.monitors === '3' ? 3 : 1 }, createLogger('up'), stopSignal());
    });

  // ---- Operator commands: perform, maintenance, drop node (issue 3) ----
  const waitOption = () => new Option('--wait <seconds>', 'how long to wait for the outcome').argParser(intArg(1, 3600)).default(60);
  const waitOpts = (o: { monitor?: string | undefined; formation: string; wait: number; json?: true | undefined }) => ({ monitors: monitorUrls(o.monitor), formation: o.formation, waitS: o.wait, json: !!o.json });
  const perform = program.command('perform').description('planned and forced changes of primary');
  for (const kind of ['switchover', 'failover'] as const) {
    perform
      .command(kind)
      .description(kind === 'switchover' ? 'planned: the primary stops, the best standby takes over; prints how long writes stopped' : 'like switchover, also when the primary is unhealthy')
      .addOption(monitorOption())
      .addOption(formationOption())
      .addOption(waitOption())
      .option('--json', 'print JSON')
      .action(async (o) => (await import('./perform.js')).performSwitchover(waitOpts(o), kind));
  }
  perform
    .command('promotion')
    .description('make the named node the primary')
    .requiredOption('--name <name>', 'node to promote')
    .addOption(monitorOption())
    .addOption(formationOption())
    .addOption(waitOption())
    .option('--json', 'print JSON')
    .action(async (o) => (await import('./perform.js')).performPromotion(waitOpts(o), o.name));
  perform
    .command('restart')
    .description('restart Postgres node by node: standbys one at a time, each streaming again before the next, the primary last by a switchover (or --in-place); refused unless the formation is healthy')
    .addOption(new Option('--name <name>', 'only this node').conflicts('pending'))
    .option('--pending', 'only the nodes with parameters pending a restart (pg_settings.pending_restart)')
    .option('--in-place', 'restart the primary in place instead of switching over (writes stop while it restarts)')
    .addOption(monitorOption())
    .addOption(formationOption())
    .addOption(new Option('--wait <seconds>', 'how long to wait for each node to be back').argParser(intArg(1, 3600)).default(60))
    .option('--json', 'print JSON')
    .action(async (o) => (await import('./rolling-restart.js')).performRestart({ ...waitOpts(o), name: o.name, pending: !!o.pending, inPlace: !!o.inPlace }));
  const maint = program.command('maintenance').description('take a node out of the formation for maintenance, and back');
  const maintenanceCommand = (action: 'enable' | 'disable') =>
    maint
      .command(action)
      .description(action === 'enable' ? 'a standby leaves synchronous replication and the candidate list; the primary needs --allow-failover' : 'the node catches up and becomes secondary again')
      .requiredOption('--name <name>', 'node name')
      .addOption(monitorOption())
      .addOption(formationOption())
      .addOption(waitOption())
      .option('--json', 'print JSON');
  maintenanceCommand('enable')
    .option('--allow-failover', 'on the primary: switch over first')
    .action(async (o) => (await import('./perform.js')).maintenance(waitOpts(o), o.name, true, !!o.allowFailover));
  maintenanceCommand('disable').action(async (o) => (await import('./perform.js')).maintenance(waitOpts(o), o.name, false, false));
  const drop = subcommand(program, 'drop', 'remove nodes and formations');
  drop
    .command('node')
    .description('remove a node from its formation (its keeper stops Postgres)')
    .requiredOption('--name <name>', 'node name')
    .option('--destroy', 'also remove the data directory (needs --yes, or the node name typed on a terminal)')
    .option('--yes', 'confirm a destructive command')
    .addOption(monitorOption())
    .addOption(formationOption())
    .addOption(waitOption())
    .option('--json', 'print JSON')
    .action(async (o) => {
      if (o.destroy) {
        const { confirmDestructive } = await import('./confirm.js');
        await confirmDestructive({ yes: o.yes, action: `dropping node "${o.name}" with --destroy`, consequence: 'removes its data directory', name: o.name, withYes: `pgha drop node --name ${o.name} --destroy --yes` });
      }
      await (await import('./perform.js')).dropNode(waitOpts(o), o.name, !!o.destroy);
    });
  // ---- end of operator commands ----

  addCredentialOptions(program);
  configureUsageErrors(program);
  return program;
}

/** The etcd store `pgha monitor create` was given, if any. @throws ValidationError for store options without --store. */
function storeOption(o: { store?: string; storeCaFile?: string; storeCertFile?: string; storeKeyFile?: string; join?: true; fromMonitor?: string }): { store?: EtcdStoreOption } {
  if (!o.store) {
    if (o.storeCaFile || o.storeCertFile || o.storeKeyFile || o.join || o.fromMonitor) throw new ValidationError('--store-ca-file, --store-cert-file, --store-key-file, --join and --from-monitor go with --store', { hint: 'add --store etcd://HOST:PORT[,HOST:PORT…][/prefix], or drop them' });
    return {};
  }
  return { store: { uri: o.store, caFile: o.storeCaFile, certFile: o.storeCertFile, keyFile: o.storeKeyFile, join: !!o.join, fromMonitor: o.fromMonitor } };
}

/** The TLS mode `pgha monitor create` was given. @throws ValidationError for a mix that does not fit. */
function sslOption(
  o: { sslSelfSigned?: boolean; sslCaFile?: string; serverCert?: string; serverKey?: string; sslCaKeyFile?: string; ssl: boolean },
  loadGivenCa: (caFile: string, caKeyFile: string) => KeyAndCertificate,
): MonitorSslOption {
  const files = [o.sslCaFile, o.serverCert, o.serverKey].filter(Boolean).length;
  if (!o.ssl) {
    if (files > 0 || o.sslSelfSigned || o.sslCaKeyFile) throw new ValidationError('--no-ssl does not go with other TLS options', { hint: 'choose one of --ssl-self-signed, --ssl-ca-file with --server-cert and --server-key, or --no-ssl' });
    return { mode: 'off' };
  }
  if (o.sslCaKeyFile) {
    if (!o.sslCaFile || o.serverCert || o.serverKey) throw new ValidationError('--ssl-ca-key-file goes with --ssl-ca-file alone (the monitor signs its own certificate with that CA)', { hint: 'give --ssl-ca-file and --ssl-ca-key-file, without --server-cert/--server-key' });
    return { mode: 'self-signed', ca: loadGivenCa(o.sslCaFile, o.sslCaKeyFile) };
  }
  if (files === 0) return { mode: 'self-signed' };
  if (o.sslSelfSigned || files !== 3) throw new ValidationError('--ssl-ca-file, --server-cert and --server-key go together, without --ssl-self-signed', { hint: 'give all three, or --ssl-self-signed alone' });
  return { mode: 'files', caFile: o.sslCaFile!, certFile: o.serverCert!, keyFile: o.serverKey! };
}

/**
 * Runs the CLI on `argv` (`process.argv`'s shape: node, script, arguments…) and returns its
 * exit code: 0, 1 for a failure, 2 for a usage error or other bad input. `program` defaults to
 * {@link buildProgram}'s (tests pass one whose actions are stubbed).
 */
export async function run(argv: string[], program: CommandUnknownOpts = buildProgram()): Promise<number> {
  try {
    try {
      await program.parseAsync(argv);
    } catch (err) {
      if (!(err instanceof CommanderError && err.code === VERSION_ASKED)) throw err;
      const { buildInfo, versionLine } = await import('./version.js');
      process.stdout.write(`${versionLine(buildInfo())}\n`);
    }
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : USAGE_EXIT_CODE;
    return reportError(err);
  }
}

/** Runs the CLI and exits with its status. */
export async function main(argv: string[]): Promise<void> {
  process.exit(await run(argv));
}
