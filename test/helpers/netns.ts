/**
 * A simulated network of hosts built with Linux network namespaces, for fault tests.
 *
 * Topology: one namespace per host (`pgha-PID-SEQ-NAME`), each with `lo` and an `eth0` that is
 * one end of a veth pair whose other end is a port of the Linux bridge `br0` in the bridge
 * namespace (`pgha-PID-SEQ-bridge`). Hosts get `10.213.X.(10+i)/24`. The test process itself
 * (host {@link TEST_HOST}) reaches the hosts through one more veth, `pghaPIDnSEQ`, from the root
 * namespace into the bridge, with address `10.213.X.254/24`: that address and its connected
 * route are the only change ever made to the root namespace. X is a /24 that no root-namespace
 * address uses.
 *
 * Faults are routes inside the host namespaces, never in the root namespace:
 * - `blackhole` mode (default): `ip route replace blackhole PEER/32`. New connections from the
 *   host to the peer fail at once (EINVAL); packets of established connections are dropped.
 * - `silent` mode: `ip route replace PEER/32 dev lo`. Every packet to the peer is dropped
 *   without an error: connects and established connections time out, as on a real partition.
 * In both modes every host namespace runs with strict reverse-path filtering
 * (`rp_filter = 1`), so a packet *from* a peer whose route is cut is dropped on arrival too:
 * one route on the host's side cuts both directions. That is how the test process is cut from
 * a host without touching the root namespace's routes.
 *
 * Names carry the creating process's PID, so parallel runs never collide and
 * {@link sweepLeftovers} can remove what a dead run left behind. {@link SimNetwork.destroy}
 * removes every namespace and link it created; process `exit`, SIGINT, SIGTERM and SIGHUP
 * handlers do it too when a run ends without calling it (a SIGKILLed run leaves its names to
 * the next run's sweep).
 */
import { execFileSync } from 'node:child_process';
import { execa } from 'execa';
import { isProcessAlive } from '@pgha/postgres';

/** Name of the host that stands for the test process (the root namespace). */
export const TEST_HOST = 'test';

/** How a cut drops packets; see the module comment. */
export type CutMode = 'blackhole' | 'silent';

/** A host of the simulated network. */
export interface SimHost {
  name: string;
  /** Its network namespace; undefined for {@link TEST_HOST}. */
  netns: string | undefined;
  /** Its IPv4 address on the simulated network. */
  addr: string;
}

const NS_PREFIX = 'pgha-';
const LINK_PREFIX = 'pgha';
const NS_PATTERN = /^pgha-(\d+)-\d+-/;
const LINK_PATTERN = /^pgha(\d+)n\d+$/;
let sequence = 0;
const live = new Set<SimNetwork>();

function ip(args: readonly string[]): Promise<void> {
  return execa('ip', args, { stdin: 'ignore' }).then(() => undefined);
}

function ipSync(args: readonly string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Whether this process can create network namespaces (root, `ip` present, namespaces
 * supported): creates and removes a probe namespace.
 *
 * @returns `{ ok: true }`, or `{ ok: false, reason }` with what failed.
 */
export function netnsAvailability(): { ok: true } | { ok: false; reason: string } {
  const name = `${NS_PREFIX}${process.pid}-0-probe`;
  try {
    ipSync(['netns', 'add', name]);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { ok: false, reason: `\`ip netns add\` failed: ${(e.stderr || e.message).trim()} (the fault tests need root and network namespaces)` };
  }
  try {
    ipSync(['netns', 'del', name]);
  } catch {
    // the sweep of a later run removes it
  }
  return { ok: true };
}

/**
 * Removes namespaces (`pgha-PID-…`) and root-namespace links (`pghaPIDn…`) whose creating
 * process is dead, after SIGKILLing, by PID, the processes still inside such a namespace
 * (Postgres and pgha processes a crashed run left behind).
 *
 * @returns the names removed.
 */
export function sweepLeftovers(): string[] {
  const removed: string[] = [];
  let namespaces: string[] = [];
  try {
    namespaces = ipSync(['netns', 'list']).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
  } catch {
    return removed;
  }
  for (const ns of namespaces) {
    const m = NS_PATTERN.exec(ns);
    if (!m || isProcessAlive(Number(m[1]))) continue;
    try {
      for (const pid of ipSync(['netns', 'pids', ns]).split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
      ipSync(['netns', 'del', ns]);
      removed.push(ns);
    } catch {
      // someone else removed it
    }
  }
  for (const line of ipSync(['-o', 'link', 'show']).split('\n')) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1];
    const m = name ? LINK_PATTERN.exec(name) : null;
    if (!m || isProcessAlive(Number(m[1]))) continue;
    try {
      ipSync(['link', 'del', name!]);
      removed.push(name!);
    } catch {
      // gone with its peer's namespace
    }
  }
  return removed;
}

/** A /24 `10.213.X` that no address of the root namespace is in. */
function freeSubnet(): string {
  const used = new Set<number>();
  for (const m of ipSync(['-4', '-o', 'addr', 'show']).matchAll(/inet 10\.213\.(\d+)\./g)) used.add(Number(m[1]));
  for (let i = 0; i < 240; i++) {
    const x = 10 + ((process.pid + i) % 240);
    if (!used.has(x)) return `10.213.${x}`;
  }
  throw new Error('no free 10.213.X.0/24 subnet in the root namespace');
}

/** A simulated network; create it with {@link createNetwork}. */
export class SimNetwork {
  /** Hosts by name, {@link TEST_HOST} included. */
  readonly hosts = new Map<string, SimHost>();
  /** Cut routes in place: `HOSTNAME>PEERADDR`. */
  private readonly cuts = new Set<string>();
  private readonly namespaces: string[] = [];
  private destroyed = false;

  private constructor(
    /** Prefix of every name this network created. */
    readonly id: string,
    /** The network's `A.B.C` (a /24). */
    readonly subnet: string,
    readonly bridgeNetns: string,
    readonly rootLink: string,
    readonly mode: CutMode,
  ) {}

  /** Builds the network; see {@link createNetwork}. */
  static async build(hostNames: readonly string[], mode: CutMode): Promise<SimNetwork> {
    const seq = ++sequence;
    const id = `${NS_PREFIX}${process.pid}-${seq}`;
    const net = new SimNetwork(id, freeSubnet(), `${id}-bridge`, `${LINK_PREFIX}${process.pid}n${seq}`, mode);
    live.add(net);
    try {
      await net.setUp(hostNames);
    } catch (err) {
      net.destroySync();
      throw err;
    }
    return net;
  }

  private async setUp(hostNames: readonly string[]): Promise<void> {
    const br = this.bridgeNetns;
    await ip(['netns', 'add', br]);
    this.namespaces.push(br);
    await ip(['-n', br, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', br, 'link', 'set', 'br0', 'up']);
    for (const [i, name] of hostNames.entries()) {
      if (name === TEST_HOST || !/^[a-z][a-z0-9]{0,11}$/.test(name) || this.hosts.has(name)) throw new Error(`invalid or duplicate host name "${name}"`);
      const ns = `${this.id}-${name}`;
      await ip(['netns', 'add', ns]);
      this.namespaces.push(ns);
      const port = `p${i}`;
      await ip(['-n', br, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await ip(['-n', br, 'link', 'set', port, 'master', 'br0', 'up']);
      const addr = `${this.subnet}.${10 + i}`;
      await ip(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      // Strict reverse-path filtering: a cut route also drops what arrives from the peer.
      await execa('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.conf.all.rp_filter=1', 'net.ipv4.conf.eth0.rp_filter=1']);
      this.hosts.set(name, { name, netns: ns, addr });
    }
    await ip(['link', 'add', this.rootLink, 'type', 'veth', 'peer', 'name', 'root', 'netns', br]);
    await ip(['-n', br, 'link', 'set', 'root', 'master', 'br0', 'up']);
    const testAddr = `${this.subnet}.254`;
    await ip(['addr', 'add', `${testAddr}/24`, 'dev', this.rootLink]);
    await ip(['link', 'set', this.rootLink, 'up']);
    this.hosts.set(TEST_HOST, { name: TEST_HOST, netns: undefined, addr: testAddr });
  }

  /** The host called `name`. @throws for an unknown name. */
  host(name: string): SimHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host "${name}" in ${this.id}`);
    return h;
  }

  /** The network namespace of host `name`. @throws for {@link TEST_HOST} or an unknown name. */
  netns(name: string): string {
    const ns = this.host(name).netns;
    if (!ns) throw new Error(`host "${name}" is the test process: it has no namespace of its own`);
    return ns;
  }

  /** The CIDR of the whole simulated network, e.g. `10.213.42.0/24`. */
  get cidr(): string {
    return `${this.subnet}.0/24`;
  }

  /**
   * An address of the network that no host has (`A.B.C.(200 + index)`, `index` 0–49): a
   * virtual IP that a role-change hook moves between hosts.
   *
   * @throws for an index outside 0–49.
   */
  spareAddress(index = 0): string {
    if (!Number.isInteger(index) || index < 0 || index > 49) throw new Error(`spare address index ${index} is outside 0–49`);
    return `${this.subnet}.${200 + index}`;
  }

  /**
   * Host `name`'s machine goes off the network: its `eth0` goes down, so it answers nothing,
   * ARP included (a dead machine's addresses die with it). Its processes are the caller's to
   * kill. Undone by {@link powerOn}.
   */
  async powerOff(name: string): Promise<void> {
    await ip(['-n', this.netns(name), 'link', 'set', 'eth0', 'down']);
  }

  /**
   * Host `name`'s machine is back as after a reboot: `eth0` holds only the host's own address
   * (one added at run time, such as a virtual IP, is gone) and is up. Cuts stay as they were.
   */
  async powerOn(name: string): Promise<void> {
    const ns = this.netns(name);
    await ip(['-n', ns, 'addr', 'flush', 'dev', 'eth0']);
    await ip(['-n', ns, 'addr', 'add', `${this.host(name).addr}/24`, 'dev', 'eth0']);
    await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
  }

  /**
   * The IPv4 addresses host `name` answers at on the network now, e.g.
   * `['10.213.42.10', '10.213.42.200']`: those of its `eth0`, none while it is down
   * ({@link powerOff}).
   */
  async addressesOf(name: string): Promise<string[]> {
    const r = await execa('ip', ['-n', this.netns(name), '-o', '-4', 'addr', 'show', 'dev', 'eth0', 'up'], { stdin: 'ignore' });
    return [...String(r.stdout).matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!);
  }

  /** Adds the cut route on `from`'s side towards `to` (nothing for the test process). */
  private async cutRoute(from: SimHost, to: SimHost): Promise<void> {
    if (!from.netns) return;
    const key = `${from.name}>${to.addr}`;
    if (this.cuts.has(key)) return;
    const route = this.mode === 'blackhole' ? ['blackhole', `${to.addr}/32`] : [`${to.addr}/32`, 'dev', 'lo'];
    await ip(['-n', from.netns, 'route', 'replace', ...route]);
    this.cuts.add(key);
  }

  /**
   * Cuts every packet between hosts `a` and `b`, both directions (either may be
   * {@link TEST_HOST}). Idempotent; returns once the routes are in place (a few ms).
   */
  async cut(a: string, b: string): Promise<void> {
    const ha = this.host(a);
    const hb = this.host(b);
    if (ha === hb) throw new Error(`cannot cut ${a} from itself`);
    await Promise.all([this.cutRoute(ha, hb), this.cutRoute(hb, ha)]);
  }

  /**
   * Cuts host `name` from every other host, the test process included unless listed in
   * `options.except` (e.g. to keep observing an isolated monitor). Idempotent.
   */
  async isolate(name: string, options: { except?: readonly string[] } = {}): Promise<void> {
    this.host(name);
    const keep = new Set([name, ...(options.except ?? [])]);
    await Promise.all([...this.hosts.keys()].filter((other) => !keep.has(other)).map((other) => this.cut(name, other)));
  }

  /** Removes every cut. Idempotent; returns once the routes are gone. */
  async heal(): Promise<void> {
    await Promise.all(
      [...this.cuts].map(async (key) => {
        const [from, addr] = key.split('>') as [string, string];
        await execa('ip', ['-n', this.netns(from), 'route', 'del', `${addr}/32`], { reject: false, stdin: 'ignore' });
        this.cuts.delete(key);
      }),
    );
  }

  /** The cuts in place, as `HOST>PEERADDR`. */
  get activeCuts(): string[] {
    return [...this.cuts];
  }

  /**
   * Removes every namespace and link this network created. Processes still running inside a
   * host namespace keep it alive (without its name) until they exit: end them first
   * ({@link endAllProcesses}). Idempotent.
   */
  async destroy(): Promise<void> {
    this.destroySync();
  }

  /** {@link destroy}, synchronously (for the process `exit` handler). */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    try {
      ipSync(['link', 'del', this.rootLink]);
    } catch {
      // not created, or gone with the bridge namespace
    }
    for (const ns of this.namespaces.splice(0).reverse()) {
      try {
        ipSync(['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
  }
}

function destroyAll(): void {
  for (const net of [...live]) net.destroySync();
}
process.on('exit', destroyAll);
// Killed by a signal (an interrupted test run), the process ends without 'exit': clean up
// first, then let the signal do what it would have done.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  const onSignal = () => {
    destroyAll();
    process.off(signal, onSignal);
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.on(signal, onSignal);
}

/**
 * Creates a simulated network with one namespace per host in `hostNames` (lowercase
 * letters and digits, at most 12 characters), plus {@link TEST_HOST} for this process. Sweeps
 * leftovers of dead runs first.
 *
 * @param options.mode - how cuts drop packets (default `blackhole`).
 * @throws when namespaces cannot be created; whatever was created is removed first.
 */
export async function createNetwork(hostNames: readonly string[], options: { mode?: CutMode } = {}): Promise<SimNetwork> {
  sweepLeftovers();
  return SimNetwork.build(hostNames, options.mode ?? 'blackhole');
}
