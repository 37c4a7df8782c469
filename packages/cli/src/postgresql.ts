/**
 * `pgha set postgresql NAME VALUE|--reset [--name NODE]`, `pgha get postgresql NAME [--name NODE]`,
 * `pgha show postgresql`: the formation's Postgres parameters (`GET|PATCH
 * /v1/formations/:formation/postgresql`), printed as text or `--json`. docs/postgresql-parameters.md.
 * Source: Patroni's `patronictl edit-config` / `show-config`, and its `pending_restart`.
 */
import { InvalidArgumentError, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { ValidationError, postgresParameterNameProblem, postgresParameterValueProblem } from '@pgha/shared/core';
import { print, printChange, printJson, withClient } from './client-command.js';
import { formationOption, monitorOption, monitorUrls, subcommand } from './options.js';

/** A Postgres parameter name, lower-cased as the monitor keeps it (`PostgresParameterName`); a usage error otherwise. */
function parameterNameArg(value: string): string {
  const problem = postgresParameterNameProblem(value);
  if (problem !== undefined) throw new InvalidArgumentError(`parameter name ${problem}`);
  return value.toLowerCase();
}

/** A Postgres parameter value (`PostgresParameterValue`); a usage error otherwise. */
function parameterValueArg(value: string): string {
  const problem = postgresParameterValueProblem(value);
  if (problem !== undefined) throw new InvalidArgumentError(`value ${problem}`);
  return value;
}

/** Adds `set|get|show postgresql` to `program`'s `set`, `get` and `show` commands. */
export function registerPostgresqlCommands(program: CommandUnknownOpts): void {
  const set = subcommand(program, 'set', 'change a replication setting (the formation reacts at once)');
  set
    .command('postgresql')
    .description("set (or with --reset remove) a Postgres parameter of the formation, or of one node with --name; checked against the primary's pg_settings first (docs/postgresql-parameters.md)")
    .argument('<parameter>', 'a Postgres parameter name, e.g. work_mem', parameterNameArg)
    .argument('[value]', 'its value as in postgresql.conf, e.g. 8MB', parameterValueArg)
    .option('--reset', "remove it: back to the formation's value (with --name) or to Postgres's default")
    .option('--name <name>', "this node's own value, over the formation's")
    .addOption(monitorOption())
    .addOption(formationOption())
    .option('--json', 'print JSON')
    .action(async (parameter, value, o) => {
      if ((value === undefined) === (o.reset === undefined)) {
        throw new ValidationError(value === undefined ? `no value given for ${parameter}` : `--reset takes no value (got ${value})`, { hint: `pgha set postgresql ${parameter} VALUE, or pgha set postgresql ${parameter} --reset` });
      }
      await withClient(monitorUrls(o.monitor), async (c) => {
        const r = await c.setPostgresParameters(o.formation, { ...(o.name !== undefined ? { name: o.name } : {}), parameters: [{ name: parameter, value: value ?? null }] });
        if (o.json) return printJson(r);
        const where = o.name !== undefined ? `node "${o.name}"` : `formation "${r.formation}"`;
        printChange(r.changes, value === undefined ? `${parameter} is not set for ${where}` : `${parameter} of ${where} is already ${value}`);
      });
    });

  const get = subcommand(program, 'get', 'print a replication setting');
  get
    .command('postgresql')
    .description("a Postgres parameter's value pgha gives the formation (or, with --name, that node), empty when pgha does not set it")
    .argument('<parameter>', 'a Postgres parameter name', parameterNameArg)
    .option('--name <name>', "the node's value (its own, else the formation's)")
    .addOption(monitorOption())
    .addOption(formationOption())
    .option('--json', 'print JSON')
    .action(async (parameter, o) =>
      withClient(monitorUrls(o.monitor), async (c) => {
        const r = await c.postgresParameters(o.formation);
        const node = o.name === undefined ? undefined : r.nodes.find((n) => n.name === o.name);
        if (o.name !== undefined && !node) throw new ValidationError(`no node "${o.name}" in formation "${r.formation}"`, { hint: `pgha show state --formation ${r.formation} lists its nodes` });
        const row = node?.parameters.find((p) => p.name === parameter);
        const value = node ? (row?.value ?? null) : (r.parameters.find((p) => p.name === parameter)?.value ?? null);
        if (o.json) return printJson({ formation: r.formation, ...(node ? { name: node.name, running: row?.running ?? null, pending_restart: row?.pending_restart ?? false } : {}), parameter, value });
        print(value ?? '');
      }),
    );

  const show = subcommand(program, 'show', 'show the formation as the monitor sees it');
  show
    .command('postgresql')
    .description('each Postgres parameter pgha sets for the formation, the value each node runs with, and what waits for a restart')
    .addOption(monitorOption())
    .addOption(formationOption())
    .option('--json', 'print JSON')
    .action(async (o) =>
      withClient(monitorUrls(o.monitor), async (c) => {
        const r = await c.postgresParameters(o.formation);
        return o.json ? printJson(r) : print((await import('./postgresql-table.js')).renderPostgresParameters(r));
      }),
    );
}
