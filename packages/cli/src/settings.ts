/**
 * `pgha set|get node candidate-priority|replication-quorum`, `pgha set|get formation
 * number-sync-standbys|<timing setting>|client-networks`, `pgha show settings|standby-names`, `pgha create|drop formation`:
 * the monitor's formation and settings routes, printed as text or `--json`.
 * Source: pg_auto_failover's `pg_autoctl set|get|show settings`, `create|drop formation`.
 */
import { InvalidArgumentError, type CommandUnknownOpts, type Command, type OptionValues } from '@commander-js/extra-typings';
import { TIMING_SETTINGS, formationNameProblem, formatDurationMs, formatTimingValue, type TimingSettingKey } from '@pgha/shared/core';
import { formatClientNetworkList } from '@pgha/postgres/client-networks';
import { print, printChange, printJson, withClient } from './client-command.js';
import { boolArg, clientNetworksArg, durationArg, formationOption, intArg, monitorOption, monitorUrls, subcommand } from './options.js';

/** What each timing setting does, as `pgha set formation --help` says it (docs/timeouts.md has the reasons). */
const TIMING_DESCRIPTIONS: Readonly<Record<TimingSettingKey, string>> = {
  keeperReportIntervalMs: 'how often each keeper reports when nothing changes',
  nodeUnhealthyTimeoutMs: 'how long a silent keeper takes to count as one witness of failure',
  standbyStreamingTimeoutMs: 'how long a standby may not stream before it no longer holds writes',
  electionTimeoutMs: 'how long an election waits for every standby to report its LSN',
  healthProbeIntervalMs: "how often the monitor probes each node's Postgres",
  healthProbeTimeoutMs: "one probe's limit (connect and query)",
  healthProbeRetries: 'consecutive failed probes before a node is unhealthy',
  networkPartitionTimeoutMs: 'how long a primary cut off from the monitor and its standbys waits before it fences itself',
};

function formationNameArg(value: string): string {
  const problem = formationNameProblem(value);
  if (problem !== undefined) throw new InvalidArgumentError(`formation name ${problem}`);
  return value;
}

/**
 * Adds the settings and formation commands to `program` (and `show settings|standby-names`
 * to its `show` command).
 */
export function registerSettingsCommands(program: CommandUnknownOpts): void {
  const withCommon = <A extends unknown[], O extends OptionValues, G extends OptionValues>(cmd: Command<A, O, G>) => cmd.addOption(monitorOption()).addOption(formationOption()).option('--json', 'print JSON');
  const nameOption = <A extends unknown[], O extends OptionValues, G extends OptionValues>(cmd: Command<A, O, G>) => cmd.requiredOption('--name <name>', 'node name');

  // pgha set node|formation …
  const set = subcommand(program, 'set', 'change a replication setting (the formation reacts at once)');
  const setNode = subcommand(set, 'node', "change a node's replication setting");
  withCommon(nameOption(setNode.command('candidate-priority').description('priority in failover elections (0 = never promote)')))
    .argument('<priority>', 'from 0 to 100', intArg(0, 100))
    .action(async (priority, o) =>
      withClient(monitorUrls(o.monitor), async (c) => {
        const r = await c.setNodeSettings(o.formation, o.name, { candidatePriority: priority });
        if (o.json) return printJson(r);
        printChange(r.changes, `candidate priority of node ${r.node.node_id} "${r.node.name}" is already ${r.node.candidate_priority}`, r.warnings);
      }),
    );
  withCommon(nameOption(setNode.command('replication-quorum').description('whether the node counts toward synchronous replication')))
    .argument('<quorum>', 'true or false', boolArg)
    .action(async (quorum, o) =>
      withClient(monitorUrls(o.monitor), async (c) => {
        const r = await c.setNodeSettings(o.formation, o.name, { replicationQuorum: quorum });
        if (o.json) return printJson(r);
        printChange(r.changes, `replication quorum of node ${r.node.node_id} "${r.node.name}" is already ${r.node.replication_quorum}`, r.warnings);
      }),
    );
  const setFormation = subcommand(set, 'formation', "change a formation's replication or timing setting");
  withCommon(setFormation.command('number-sync-standbys').description('how many standbys must acknowledge each commit (0 = writes go on without any)'))
    .argument('<n>', 'from 0 to the number of standbys with replication quorum', intArg(0, 100))
    .action(async (n, o) =>
      withClient(monitorUrls(o.monitor), async (c) => {
        const r = await c.setFormationSettings(o.formation, { numberSyncStandbys: n });
        if (o.json) return printJson(r);
        printChange(r.changes, `number_sync_standbys of formation "${r.formation.formation}" is already ${r.formation.number_sync_standbys}`);
      }),
    );
  for (const [name, s] of Object.entries(TIMING_SETTINGS)) {
    withCommon(setFormation.command(name).description(`${TIMING_DESCRIPTIONS[s.key]} (docs/timeouts.md)`))
      .argument('<value>', s.unit === 'ms' ? `a duration with its unit, e.g. 2s or 500ms (${formatDurationMs(s.min)} to ${formatDurationMs(s.max)})` : `from ${s.min} to ${s.max}`, s.unit === 'ms' ? durationArg(s.min, s.max) : intArg(s.min, s.max))
      .action(async (value, o) =>
        withClient(monitorUrls(o.monitor), async (c) => {
          const r = await c.setFormationSettings(o.formation, { [s.key]: value });
          if (o.json) return printJson(r);
          printChange(r.changes, `${name} of formation "${r.formation.formation}" is already ${formatTimingValue(s.key, r.formation.timing[s.key])}`);
        }),
      );
  }
  withCommon(setFormation.command('client-networks').description("the networks clients may connect from to every node, with TLS and SCRAM only (replaces the formation's list; docs/security.md)"))
    .argument('<cidrs>', 'CIDR[,CIDR…], e.g. 10.20.0.0/16,fd00:20::/64; none for none', clientNetworksArg)
    .action(async (networks, o) =>
      withClient(monitorUrls(o.monitor), async (c) => {
        const r = await c.setFormationSettings(o.formation, { clientNetworks: networks });
        if (o.json) return printJson(r);
        printChange(r.changes, `client-networks of formation "${r.formation.formation}" are already ${formatClientNetworkList(r.formation.client_networks)}`, r.warnings);
      }),
    );

  // pgha get node|formation …
  const get = subcommand(program, 'get', 'print a replication setting');
  const getNode = subcommand(get, 'node', "print a node's replication setting");
  withCommon(nameOption(getNode.command('candidate-priority').description("the node's candidate priority")))
    .action(async (o) =>
      withClient(monitorUrls(o.monitor), async (c) => {
        const r = await c.nodeSettings(o.formation, o.name);
        return o.json ? printJson(r) : print(String(r.candidate_priority));
      }),
    );
  withCommon(nameOption(getNode.command('replication-quorum').description("the node's replication quorum")))
    .action(async (o) =>
      withClient(monitorUrls(o.monitor), async (c) => {
        const r = await c.nodeSettings(o.formation, o.name);
        return o.json ? printJson(r) : print(String(r.replication_quorum));
      }),
    );
  const getFormation = subcommand(get, 'formation', "print a formation's replication or timing setting");
  withCommon(getFormation.command('number-sync-standbys').description("the formation's number_sync_standbys"))
    .action(async (o) =>
      withClient(monitorUrls(o.monitor), async (c) => {
        const r = await c.settings(o.formation);
        return o.json ? printJson(r.formation) : print(String(r.formation.number_sync_standbys));
      }),
    );
  for (const [name, s] of Object.entries(TIMING_SETTINGS)) {
    withCommon(getFormation.command(name).description(`the formation's ${name}${s.unit === 'ms' ? ' (--json: in ms)' : ''}`))
      .action(async (o) =>
        withClient(monitorUrls(o.monitor), async (c) => {
          const r = await c.settings(o.formation);
          return o.json ? printJson({ formation: r.formation.formation, [name]: r.formation.timing[s.key] }) : print(formatTimingValue(s.key, r.formation.timing[s.key]));
        }),
      );
  }
  withCommon(getFormation.command('client-networks').description('the networks clients may connect from to every node'))
    .action(async (o) =>
      withClient(monitorUrls(o.monitor), async (c) => {
        const r = await c.settings(o.formation);
        return o.json ? printJson({ formation: r.formation.formation, client_networks: r.formation.client_networks }) : print(formatClientNetworkList(r.formation.client_networks));
      }),
    );

  // pgha show settings|standby-names
  const show = subcommand(program, 'show', 'show the formation as the monitor sees it');
  withCommon(show.command('settings').description("number_sync_standbys and the timing settings, the primary's synchronous_standby_names, each node's candidate priority and replication quorum"))
    .action(async (o) =>
      withClient(monitorUrls(o.monitor), async (c) => {
        const r = await c.settings(o.formation);
        return o.json ? printJson(r) : print((await import('./settings-table.js')).renderSettingsTable(r));
      }),
    );
  withCommon(show.command('standby-names').description("the synchronous_standby_names the monitor computes for the group's primary"))
    .option('--group <n>', 'group', intArg(0, 2 ** 31 - 1), 0)
    .action(async (o) =>
      withClient(monitorUrls(o.monitor), async (c) => {
        const r = await c.standbyNames(o.formation, o.group);
        return o.json ? printJson(r) : print(r.synchronous_standby_names);
      }),
    );

  // pgha create|drop formation
  const create = subcommand(program, 'create', 'create a formation');
  create
    .command('formation')
    .description('create a formation on the monitor; nodes join it with pgha keeper create postgres --formation NAME')
    .argument('<name>', 'formation name', formationNameArg)
    .addOption(monitorOption())
    .option('--number-sync-standbys <n>', 'how many standbys must acknowledge each commit', intArg(0, 100), 0)
    .option('--json', 'print JSON')
    .action(async (name, o) =>
      withClient(monitorUrls(o.monitor), async (c) => {
        const r = await c.createFormation({ formation: name, numberSyncStandbys: o.numberSyncStandbys });
        return o.json ? printJson(r) : print(`formation "${r.formation}" created (kind ${r.kind}, dbname ${r.dbname}, number_sync_standbys ${r.number_sync_standbys})`);
      }),
    );
  const drop = subcommand(program, 'drop', 'remove a node or a formation');
  drop
    .command('formation')
    .description('drop a formation that has no nodes left (cannot be undone: needs --yes, or its name typed on a terminal)')
    .argument('<name>', 'formation name', formationNameArg)
    .addOption(monitorOption())
    .option('--yes', 'confirm')
    .option('--json', 'print JSON')
    .action(async (name, o) => {
      const { confirmDestructive } = await import('./confirm.js');
      await confirmDestructive({ yes: o.yes, action: `dropping formation "${name}"`, consequence: 'cannot be undone', name, withYes: `pgha drop formation ${name} --yes` });
      await withClient(monitorUrls(o.monitor), async (c) => {
        const r = await c.dropFormation(name);
        return o.json ? printJson(r) : print(`formation "${r.formation}" dropped`);
      });
    });
}
