/**
 * The virtual IP recipe of docs/hooks.md on a simulated network (netns.ts): every keeper runs
 * `docs/recipes/vip-on-role-change.sh` as its role-change hook, inside its node's namespace,
 * so the hook's `ip addr add|del` acts on that node's `eth0` on the shared bridge, and its
 * gratuitous ARP reaches every host of the network. Every node listens on the same Postgres
 * port, so a client reaches whichever node holds the VIP at `VIP:5432`. Used by
 * test/vip.test.ts and bench/client-paths.ts.
 */
import { fileURLToPath } from 'node:url';
import type { Host } from '../../bench/lib/probe.js';
import { startNetFormation, type NetFormation } from './net-formation.js';
import type { SimNetwork } from './netns.js';
import { Sampler } from './sampler.js';
import { waitFor } from './wait-for.js';

/** The recipe the docs show: the test runs this very file. */
export const VIP_RECIPE = fileURLToPath(new URL('../../docs/recipes/vip-on-role-change.sh', import.meta.url));

/** Postgres port of every node of a {@link VipFormation}. */
export const VIP_PG_PORT = 5432;

/** A formation whose primary holds a virtual IP. */
export interface VipFormation extends NetFormation {
  /** The virtual IP (an address of the network that no host has). */
  vip: string;
  /** Where a client of the VIP connects: the VIP and {@link VIP_PG_PORT}. */
  vipHost: Host;
}

/** The `--on-role-change` command of every keeper: the recipe with `VIP=vip/24` on `eth0`. */
export function vipHookCommand(vip: string): string {
  return `VIP=${vip}/24 VIP_DEV=eth0 sh ${VIP_RECIPE}`;
}

/** The nodes of `f` whose `eth0` holds the VIP now (by name). */
export async function vipHolders(f: VipFormation): Promise<string[]> {
  const held = await Promise.all(f.nodes.map(async (n) => ((await f.net.addressesOf(n.name)).includes(f.vip) ? n.name : undefined)));
  return held.filter((n): n is string => n !== undefined);
}

/**
 * {@link startNetFormation} with the recipe as every keeper's hook and one Postgres port for
 * all nodes; resolves once the primary (the first node) alone holds the VIP.
 *
 * @throws when the formation does not come up, or the VIP is not on the primary alone within 60 s.
 */
export async function startVipFormation(net: SimNetwork, nodeNames: readonly string[]): Promise<VipFormation> {
  const vip = net.spareAddress(0);
  const base = await startNetFormation(net, nodeNames, { pgPort: VIP_PG_PORT, keeperArgs: ['--on-role-change', vipHookCommand(vip)] });
  const f: VipFormation = { ...base, vip, vipHost: { host: vip, port: VIP_PG_PORT } };
  await waitFor(`the VIP ${vip} on ${nodeNames[0]} alone`, async () => (await vipHolders(f)).join() === nodeNames[0], { timeoutMs: 60_000, intervalMs: 100 });
  return f;
}

/** One sample of {@link VipWatcher}: when (`performance.now()`, ms), and which nodes held the VIP. */
export interface VipSample {
  atMs: number;
  holders: string[];
}

/** Samples {@link vipHolders} every `intervalMs` (default 50) until stopped. */
export class VipWatcher extends Sampler<VipSample> {
  constructor(private readonly f: VipFormation, intervalMs = 50) {
    super(intervalMs);
  }

  /** The time is taken before the holders are read: a sample at or after a moment saw the VIP after it. */
  protected async read(): Promise<VipSample> {
    const atMs = performance.now();
    return { atMs, holders: await vipHolders(this.f) };
  }

  /** Samples taken at or after `fromMs` in which `node` held the VIP. */
  heldBy(node: string, fromMs = 0): VipSample[] {
    return this.samples.filter((s) => s.atMs >= fromMs && s.holders.includes(node));
  }

  /** Samples in which more than one node held the VIP. */
  shared(): VipSample[] {
    return this.samples.filter((s) => s.holders.length > 1);
  }
}
