/**
 * Client networks: the address ranges from which a formation's nodes admit clients (TLS and
 * SCRAM only), as `pgha set formation client-networks` and `pgha keeper create postgres
 * --client-network` take them. Source: pg_auto_failover's `--pg-hba-lan`, Patroni's
 * `postgresql.pg_hba`. Also exported alone as `@pgha/postgres/client-networks`, for the CLI's
 * start (issue 17 §4).
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { ValidationError } from '@pgha/shared/core';

/** Most client networks a formation may have (each is one or two pg_hba.conf lines on every node). */
export const MAX_CLIENT_NETWORKS = 64;

/**
 * Checks one client network, `ADDRESS/PREFIX` (IPv4 or IPv6) or a bare address (that host
 * alone), with node's `net.BlockList`, and returns it as pg_hba.conf takes it: with its
 * prefix length, IPv6 in lower case. Bits of the address beyond the prefix are kept as written
 * (Postgres compares addresses under the mask).
 *
 * @param field - the field or flag named in the error (`clientNetworks`, `--client-network`).
 * @throws ValidationError naming the value and what is wrong (not an address, a prefix out of
 *   range), with an example.
 *
 * ### Examples
 * ```ts
 * parseClientNetwork('10.1.0.0/16') // '10.1.0.0/16'
 * parseClientNetwork('10.1.2.3') // '10.1.2.3/32'
 * parseClientNetwork('FD00::/8') // 'fd00::/8'
 * parseClientNetwork('10.1.0.0/33') // throws ValidationError
 * ```
 */
export function parseClientNetwork(text: string, field = 'clientNetworks'): string {
  const value = text.trim();
  const slash = value.indexOf('/');
  const address = (slash >= 0 ? value.slice(0, slash) : value).toLowerCase();
  // A zone (`fe80::1%eth0`) names an interface of one host: pg_hba.conf has none.
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) && !address.includes('%') ? 'ipv6' : undefined;
  const hint = 'give an address with its prefix length, e.g. 10.20.0.0/16 or fd00:20::/64 (a host alone: 10.20.0.5/32)';
  if (!family) throw new ValidationError(`client network "${text}" is not an IPv4 or IPv6 address${slash >= 0 ? ' with a prefix length' : ''}`, { field, hint });
  const maxPrefix = family === 'ipv4' ? 32 : 128;
  const prefixText = slash >= 0 ? value.slice(slash + 1) : String(maxPrefix);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= maxPrefix)) {
    throw new ValidationError(`client network "${text}" has prefix length "${prefixText}": an ${family === 'ipv4' ? 'IPv4' : 'IPv6'} prefix length is 0 to ${maxPrefix}`, { field, hint });
  }
  try {
    new BlockList().addSubnet(address, prefix, family);
  } catch (cause) {
    throw new ValidationError(`client network "${text}" is not a valid ${family} network (${(cause as Error).message})`, { field, hint, cause });
  }
  return `${address}/${prefix}`;
}

/**
 * Checks a list of client networks ({@link parseClientNetwork} each), in order, each once.
 *
 * @throws ValidationError for the first invalid one, or for more than {@link MAX_CLIENT_NETWORKS}.
 *
 * ### Examples
 * ```ts
 * parseClientNetworks(['10.1.0.0/16', '10.1.0.0/16', '10.2.0.5']) // ['10.1.0.0/16', '10.2.0.5/32']
 * ```
 */
export function parseClientNetworks(list: readonly string[], field = 'clientNetworks'): string[] {
  const networks = [...new Set(list.map((n) => parseClientNetwork(n, field)))];
  if (networks.length > MAX_CLIENT_NETWORKS) {
    throw new ValidationError(`${networks.length} client networks given; a formation has at most ${MAX_CLIENT_NETWORKS}`, { field, hint: 'use wider networks (a shorter prefix length)' });
  }
  return networks;
}

/**
 * A comma-separated list of client networks, as `pgha set formation client-networks` takes
 * it; `none` (or an empty list) for none.
 *
 * @throws ValidationError as {@link parseClientNetworks}.
 */
export function parseClientNetworkList(text: string, field = 'clientNetworks'): string[] {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed.toLowerCase() === 'none') return [];
  return parseClientNetworks(trimmed.split(',').filter((s) => s.trim() !== ''), field);
}

/**
 * Client networks as `pgha get formation client-networks` prints them, the inverse of
 * {@link parseClientNetworkList}: comma-separated, or `none` for none.
 *
 * ### Examples
 * ```ts
 * formatClientNetworkList(['10.1.0.0/16', '10.2.0.5/32']) // '10.1.0.0/16,10.2.0.5/32'
 * formatClientNetworkList([])                             // 'none'
 * ```
 */
export function formatClientNetworkList(networks: readonly string[]): string {
  return networks.length === 0 ? 'none' : networks.join(',');
}
