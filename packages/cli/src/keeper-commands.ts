/**
 * The definitions of `pgha keeper stop|reload|status|set|rotate-token`: their options and help,
 * loaded with every command; what they do is in `keeper-service.ts` and `rotate-token.ts`,
 * loaded when one of them runs (the keeper's modules are not needed to print help or to run a
 * client command).
 */
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import { ROLE_CHANGE_TIMEOUT_MAX_MS, ROLE_CHANGE_TIMEOUT_MIN_MS } from '@pgha/shared/core';
import { intArg } from './options.js';

/** The implementation, loaded on first use. */
const service = () => import('./keeper-service.js');

/** Registers `keeper stop|reload|status|set|rotate-token` under `keeper`. */
export function registerKeeperServiceCommands(keeper: CommandUnknownOpts): void {
  keeper
    .command('stop')
    .description('stop the keeper of a data directory (it stops Postgres first) and wait until both have exited')
    .requiredOption('--pgdata <dir>', 'data directory of the node')
    .option('--wait <seconds>', 'how long to wait (0: do not wait)', intArg(0, 3600), 60)
    .action(async (o) => (await service()).stopCommand(o.pgdata, o.wait));
  keeper
    .command('reload')
    .description("make the keeper re-read keeper.json (SIGHUP): the role-change hook and its timeout; and the node's certificate, which its HTTPS server and Postgres then serve")
    .requiredOption('--pgdata <dir>', 'data directory of the node')
    .action(async (o) => (await service()).reloadCommand(o.pgdata));
  keeper
    .command('status')
    .description('whether the keeper and its Postgres run, and the state the node reached (exit 0 running, 3 not running, 4 no keeper)')
    .requiredOption('--pgdata <dir>', 'data directory of the node')
    .option('--json', 'print JSON')
    .action(async (o) => (await service()).statusCommand(o.pgdata, !!o.json));

  const set = keeper.command('set').description("change a reloadable field of the keeper's configuration (keeper.json)");
  set
    .command('on-role-change')
    .description('the command run (through /bin/sh -c) when the node\'s role changes; "" removes it')
    .argument('<command>', 'shell command, or "" for none')
    .requiredOption('--pgdata <dir>', 'data directory of the node')
    .action(async (command, o) => (await service()).setOnRoleChange(o.pgdata, command));
  set
    .command('on-role-change-timeout-ms')
    .description('how long one run of the role-change hook may take before its process group is killed')
    .argument('<ms>', `milliseconds (${ROLE_CHANGE_TIMEOUT_MIN_MS} to ${ROLE_CHANGE_TIMEOUT_MAX_MS})`, intArg(ROLE_CHANGE_TIMEOUT_MIN_MS, ROLE_CHANGE_TIMEOUT_MAX_MS))
    .requiredOption('--pgdata <dir>', 'data directory of the node')
    .action(async (ms, o) => (await service()).setOnRoleChangeTimeout(o.pgdata, ms));
  set
    .command('monitor')
    .description('the monitors the keeper talks to (e.g. after moving to monitors on etcd); its Postgres keeps running')
    .argument('<urls>', 'URL[,URL…] of the monitors, tried in this order')
    .requiredOption('--pgdata <dir>', 'data directory of the node')
    .action(async (urls, o) => (await service()).setMonitors(o.pgdata, urls));

  keeper
    .command('rotate-token')
    .description("replace the node's token: the old one is refused at once, and the running keeper takes the new one without a restart")
    .requiredOption('--pgdata <dir>', 'data directory of the node')
    .option('--json', 'print JSON')
    .action(async (o) => (await import('./rotate-token.js')).rotateKeeperTokenCommand(o.pgdata, !!o.json));
}

