/**
 * Messages between keepers, the CLI and the monitor. One zod schema per message both
 * validates the body at the monitor and types it on both sides.
 */
import { z } from 'zod';
import { formatDurationMs } from './duration.js';
import { LSN_TEXT } from './lsn.js';
import { NODE_STATES } from './states.js';
import { TIMING_SETTINGS, type KeeperSettings, type TimingSetting, type TimingSettingKey } from './settings.js';
import { FORMATION_NAME_PATTERN, FORMATION_NAME_RULE } from './names.js';
import { PostgresParameterList, PostgresParameterName, PostgresParameterValue, lowerCaseUniqueNames, parameterEntry, type PostgresParameter } from './postgres-parameters.js';

/** A formation name: what pg_auto_failover accepts, a short identifier. */
export const FormationName = z.string().regex(FORMATION_NAME_PATTERN, FORMATION_NAME_RULE);

/** A node name, unique in its formation. */
export const NodeName = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$/, 'must be 1-63 characters: letters, digits, _ . or -');

/** A host name or IP address at which the node's Postgres is reachable. */
export const HostName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'must be a host name or an IP address');

/**
 * Text without a NUL character or a UTF-16 surrogate out of its pair: each code unit is neither,
 * or a high surrogate with the low one after it. A positive pattern, for a string check (zod 3
 * runs one in a tenth of a refinement's time; a primary's report carries its
 * `synchronous_standby_names` every 500 ms).
 */
const STORABLE_TEXT = /^(?:[^\u0000\ud800-\udfff]|[\ud800-\udbff][\udc00-\udfff])*$/;

/**
 * Free text of at most `maxChars` characters that Postgres can store: no NUL character and no
 * unpaired surrogate. Postgres `text` holds neither (a NUL, or a lone `\ud800` in the JSON the
 * monitor writes reports with, fails the statement), so a keeper's report carrying one was
 * answered 500 instead of 400.
 */
export function FreeText(maxChars: number) {
  return z
    .string()
    .max(maxChars)
    .regex(STORABLE_TEXT, 'must not contain NUL characters or unpaired UTF-16 surrogates');
}

/** The text of a node id: plain decimal, no leading zero, at most 10 digits. */
const NODE_ID_TEXT = /^[1-9][0-9]{0,9}$/;
/** The largest node id (a Postgres `integer`). */
const NODE_ID_MAX = 2 ** 31 - 1;

/**
 * A node id as a URL path segment: plain decimal, 1 to 2^31 - 1 (`0x1`, `1e0`, ` 1` and `01`
 * are refused, so that the credentials check and the route read the same id).
 */
export const NodeIdText = z
  .string()
  .regex(NODE_ID_TEXT, 'must be a node id: a positive decimal integer')
  .transform(Number)
  .refine((n) => n <= NODE_ID_MAX, `must be at most ${NODE_ID_MAX}`);

/**
 * The node id of a path segment, as {@link NodeIdText} reads it; undefined when it is not one.
 * Without zod: the monitor reads it for every keeper request it authenticates.
 */
export function parseNodeIdText(text: unknown): number | undefined {
  if (typeof text !== 'string' || !NODE_ID_TEXT.test(text)) return undefined;
  const n = Number(text);
  return n <= NODE_ID_MAX ? n : undefined;
}

/** A TCP port. */
export const Port = z.number().int().min(1).max(65535);

/**
 * Splits `HOST:PORT` (an IPv6 host in brackets: `[::1]:8008`).
 *
 * @returns the host (without brackets) and port, or undefined when `text` is not of that shape
 *   or the port is not 1..65535.
 *
 * ### Examples
 * ```ts
 * parseHostPort('127.0.0.1:8008') // { host: '127.0.0.1', port: 8008 }
 * parseHostPort('[::1]:8008')     // { host: '::1', port: 8008 }
 * parseHostPort('8008')           // undefined
 * ```
 */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

/** `HOST:PORT` for {@link parseHostPort}'s parts (IPv6 hosts in brackets). */
export function formatHostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * The port of a keeper's HTTP server when `--http-listen` is not given: 8008, as Patroni's
 * REST API, so that HAProxy configurations written for Patroni keep their check port.
 */
export const DEFAULT_KEEPER_HTTP_PORT = 8008;

/**
 * Where a keeper's HTTP server is reached (`HOST:PORT`, IPv6 in brackets): what HAProxy's
 * health checks connect to (`pgha show haproxy`).
 */
export const HttpAddress = z
  .string()
  .max(260)
  .refine((s) => {
    const hp = parseHostPort(s);
    return hp !== undefined && HostName.safeParse(hp.host).success;
  }, 'must be HOST:PORT, e.g. 10.0.0.5:8008 or [fd00::5]:8008');

/** An LSN in Postgres's text form `X/Y`. */
export const LsnText = z.string().max(17).regex(LSN_TEXT, 'must be an LSN such as 0/3000060');

/** A node state name. */
export const NodeStateSchema = z.enum(NODE_STATES);

/**
 * Client networks as a request carries them: at most 64 strings, each an address with its
 * prefix length (`10.20.0.0/16`). That each is a valid network is checked by the monitor
 * (`parseClientNetworks` of `@pgha/postgres`, with node's `net.BlockList`), since this package
 * imports no `node:*`.
 */
export const ClientNetworksField = z.array(z.string().min(1).max(100)).max(64);

/** `POST /v1/formations/:formation/nodes`: a keeper registers its node. */
export const RegisterNodeRequest = z
  .object({
    name: NodeName,
    host: HostName,
    port: Port,
    candidatePriority: z.number().int().min(0).max(100).default(50),
    replicationQuorum: z.boolean().default(true),
    /**
     * The node's Postgres server public key (SPKI, PEM). When the monitor runs its own
     * certificate authority (`--ssl-self-signed`), it answers with a certificate for this key
     * naming `host`, so that peers verify the node with `sslmode=verify-full`.
     */
    /**
     * Whether the node's Postgres accepts TLS (default true; false for `--no-ssl`). The
     * monitor's health probe connects with TLS exactly when it does: it never falls back to
     * clear text on a server's word, which an attacker on the path could forge.
     */
    postgresSsl: z.boolean().default(true),
    tlsPublicKey: z.string().max(8192).regex(/^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n?$/, 'must be a PEM public key').optional(),
    /**
     * Where the node's keeper serves its HTTP health routes (`GET /primary`, `/replica`, …),
     * as others reach it; HTTPS exactly when `postgresSsl`. Absent from keepers older than
     * these routes, which the monitor then shows at `host:8008`, their default.
     */
    httpAddress: HttpAddress.optional(),
    /**
     * Client networks (`--client-network`) added to the formation's at registration, so that
     * every node of the formation admits them (`FormationView.client_networks`).
     */
    clientNetworks: ClientNetworksField.optional(),
  })
  .strict();
export type RegisterNodeRequest = z.input<typeof RegisterNodeRequest>;

/** Answer to a registration. Passwords are the formation's replication and probe secrets. */
export interface RegisterNodeResponse {
  nodeId: number;
  groupId: number;
  formation: string;
  goalState: string;
  replicationPassword: string;
  monitorProbePassword: string;
  /**
   * The node's own credential for its keeper's routes (report, goal), as
   * `Authorization: Bearer <nodeToken>`. A new one on every registration: the previous one
   * stops working. The monitor keeps only its SHA-256.
   */
  nodeToken: string;
  /**
   * With `tlsPublicKey` and a monitor that runs its own certificate authority: the CA
   * certificate (PEM) and a server certificate (PEM) for the node's key, naming its host.
   */
  tls?: { caCertificate: string; certificate: string };
}

/**
 * `POST /v1/nodes/:nodeId/token` (`pgha keeper rotate-token`): a keeper, authenticated with its
 * current node token, gives its node a new one. The keeper makes the new token (32 random bytes,
 * base64url: 43 characters or more), so that when the answer is lost it can still learn whether
 * the monitor took it (a request with the new token answers 200, 401 otherwise). The monitor
 * keeps only its SHA-256; the old token is refused from the commit on.
 */
export const RotateNodeTokenRequest = z
  .object({
    nodeToken: z.string().regex(/^[A-Za-z0-9_-]{43,512}$/, 'must be 43 to 512 base64url characters (32 random bytes or more)'),
  })
  .strict();
export type RotateNodeTokenRequest = z.input<typeof RotateNodeTokenRequest>;

/** Answer to {@link RotateNodeTokenRequest}. */
export interface RotateNodeTokenResponse {
  nodeId: number;
  name: string;
  formation: string;
  /** When the monitor replaced the token (ISO 8601, the store's clock). */
  rotatedAt: string;
}

/**
 * How far a long transition has come, e.g. a base backup: `doneBytes` of an estimated
 * `totalBytes` (pg_basebackup's `--progress` estimate; `doneBytes` may pass it, the percent
 * stops at 100). Source: pg_basebackup's progress report; pg_auto_failover has none.
 */
export const TransitionProgress = z
  .object({
    /** What is under way: `basebackup` (copying the primary's data directory). */
    phase: z.enum(['basebackup']),
    doneBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    /** null while the size is not known yet (pg_basebackup waits for the checkpoint). */
    totalBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable(),
  })
  .strict();
export type TransitionProgress = z.infer<typeof TransitionProgress>;

/** Bounds of a self-fence time (ms since the epoch): 2000-01-01 to 9999-12-31, what the store's `timestamptz` takes. */
const FENCE_TIME_MIN_MS = 946_684_800_000;
const FENCE_TIME_MAX_MS = 253_402_300_799_999;

/**
 * A keeper's self-fence (network partition, see the keeper's `fsm/partition-rule.ts`), as the
 * keeper keeps it in its `state.json` until the monitor has recorded it. Durations are whole ms.
 * Source: none in pg_auto_failover (its keeper logs the partition locally only).
 */
export const SelfFenceRecord = z
  .object({
    /** When the keeper signalled Postgres to stop (keeper's clock, ms since the epoch). */
    fencedAtMs: z.number().int().min(FENCE_TIME_MIN_MS).max(FENCE_TIME_MAX_MS),
    /** Why, as the partition rule said it (e.g. "network partition: monitor last answered 1004 ms ago …"). */
    reason: FreeText(500),
    /** The state the keeper had reached before the fence. */
    fromState: NodeStateSchema,
    /** How long the monitor had not answered a report at that moment (ms). */
    monitorSilentMs: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    /** Postgres had stopped when the keeper recorded the fence (false: it still ran, the keeper logged an error). */
    postgresStopped: z.boolean(),
  })
  .strict();
export type SelfFenceRecord = z.infer<typeof SelfFenceRecord>;

/**
 * A self-fence as a report carries it: the {@link SelfFenceRecord} and how long the keeper had
 * then been without an answer from the monitor, from its last answered report before the fence
 * to the sending of this report (ms).
 */
export const SelfFenceReport = SelfFenceRecord.extend({
  unreachableMs: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
}).strict();
export type SelfFenceReport = z.infer<typeof SelfFenceReport>;

/**
 * What the monitor's `keeper-self-fenced` event says after `node N "name" `: when and why the
 * node fenced itself, its state before, whether Postgres stopped, and how long the monitor was
 * unreachable. Pure (the time is printed in UTC).
 *
 * ### Examples
 * ```ts
 * selfFenceSentence({ fencedAtMs: Date.UTC(2025, 0, 1, 12, 0, 1, 234), reason: 'network partition: …', fromState: 'primary', monitorSilentMs: 1004, postgresStopped: true, unreachableMs: 5012 })
 * // 'fenced itself at 2025-01-01 12:00:01.234 UTC (network partition: …): it was primary and had not heard the monitor for 1004 ms; Postgres stopped; the monitor was unreachable for 5012 ms'
 * ```
 */
export function selfFenceSentence(fence: SelfFenceReport): string {
  const at = new Date(fence.fencedAtMs).toISOString().replace('T', ' ').replace('Z', ' UTC');
  const postgres = fence.postgresStopped ? 'Postgres stopped' : 'Postgres still ran when the keeper recorded the fence';
  return `fenced itself at ${at} (${fence.reason}): it was ${fence.fromState} and had not heard the monitor for ${formatDurationMs(fence.monitorSilentMs)}; ${postgres}; the monitor was unreachable for ${formatDurationMs(fence.unreachableMs)}`;
}

/**
 * A body schema that also takes fields under the names older senders used: each old name is
 * read as its new one, unless the body has the new name too (then the old one is an unknown
 * field, as before). So a monitor upgraded before its keepers (a rolling upgrade) understands
 * both. Type the sender's side with the inner schema, whose input type has only the new names.
 *
 * ### Examples
 * ```ts
 * withFormerNames(NodeReportFields, { pgIsRunning: 'postgresRunning' }).parse({ ..., pgIsRunning: true }).postgresRunning // true
 * ```
 */
function withFormerNames<T extends z.ZodTypeAny>(schema: T, formerNames: Readonly<Record<string, string>>) {
  return z.preprocess((body) => {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
    const renamed: Record<string, unknown> = { ...(body as Record<string, unknown>) };
    for (const [former, name] of Object.entries(formerNames)) {
      if (Object.hasOwn(renamed, former) && !Object.hasOwn(renamed, name)) {
        renamed[name] = renamed[former];
        delete renamed[former];
      }
    }
    return renamed;
  }, schema);
}

/** The fields of a {@link NodeReport}, under their current names. */
const NodeReportFields = z
  .object({
    reportedState: NodeStateSchema,
    /** The postmaster runs (keepers before issue 14 sent it as `pgIsRunning`, still accepted). */
    postgresRunning: z.boolean(),
    isInRecovery: z.boolean().nullable(),
    lsn: LsnText,
    /**
     * The timeline (TLI). At most 2^31 - 1: the store keeps it as an `integer`, and 2^31 made
     * the report's statement fail (answered 500 instead of 400).
     */
    timeline: z.number().int().min(0).max(2 ** 31 - 1),
    upstreamStreaming: z.boolean(),
    /** Name of the transition under way, if a long one (base backup) is running. */
    transitionInProgress: FreeText(100).nullable().default(null),
    /** How far that transition has come (absent or null: no measure of it). */
    transitionProgress: TransitionProgress.nullable().optional(),
    /**
     * On a primary: the `synchronous_standby_names` Postgres runs with; null on a standby and
     * while Postgres is down (the monitor then keeps what it last ran with).
     */
    synchronousStandbyNames: FreeText(4096).nullable().default(null),
    /**
     * Where the node's shutdown checkpoint starts, once its control file says `shut down`
     * (`pg_controldata`'s "Latest checkpoint location"): a primary stopped cleanly, whose WAL
     * ends there, also while its walsenders still send the last of it. Null or absent while
     * Postgres runs or shuts down, after a crash, on a standby, and from keepers older than it.
     */
    shutdownCheckpointLsn: LsnText.nullable().default(null),
    /**
     * What keeps the node from its goal, as the keeper sees it locally, in one sentence for the
     * operator (e.g. the data directory's file system is full); null when nothing is wrong.
     * Shown by `pgha show state`; each change is an event.
     */
    problem: FreeText(500).nullable().default(null),
    /**
     * The node's last self-fence, sent with every report until one is answered (the monitor
     * writes one `keeper-self-fenced` event per fence, however often it comes); absent or null
     * when none is pending, and from keepers older than it.
     */
    selfFence: SelfFenceReport.nullable().optional(),
    /**
     * The highest goal revision the keeper applied (`NodeGoal.goalRevision`, kept in its
     * state.json); absent before it applied one, and from keepers older than it. A monitor on
     * etcd whose revisions are below it (its store restored from a snapshot, or moved from a
     * monitor on Postgres) raises its revisions above it, so that keepers take its goals.
     */
    appliedGoalRevision: z.string().regex(/^[0-9]{1,19}$/).optional(),
    /**
     * The node's Postgres parameters as it runs now (absent or null: not read, Postgres down, or
     * a keeper older than it). See {@link ReportedParameters}.
     */
    parameters: z.lazy(() => ReportedParameters).nullable().optional(),
    /**
     * The highest restart request (`NodeGoal.restartRequest`) the keeper has carried out: it
     * restarted Postgres and its replication streams again (kept in its state.json). Absent
     * from keepers older than `pgha perform restart`.
     */
    restartDone: z.number().int().min(0).max(2 ** 31 - 1).optional(),
  })
  .strict();

/**
 * What a keeper reports of its Postgres's parameters: the names of those changed in its files
 * that wait for a restart (`pg_settings.pending_restart`), and the values it runs with
 * (`current_setting`) of the parameters the monitor gave it (`NodeGoal.postgresParameters`)
 * and of {@link HOT_STANDBY_PARAMETERS}.
 */
export const ReportedParameters = z
  .object({
    pendingRestart: z.array(PostgresParameterName).max(500),
    running: PostgresParameterList,
  })
  .strict();
export type ReportedParameters = z.infer<typeof ReportedParameters>;

/**
 * `POST /v1/nodes/:nodeId/report`: what a keeper sees locally. Also accepts `pgIsRunning`, the
 * former name of `postgresRunning`, from keepers older than the monitor.
 */
export const NodeReport = withFormerNames(NodeReportFields, { pgIsRunning: 'postgresRunning' });
/** A report as a keeper sends it (current field names). */
export type NodeReport = z.input<typeof NodeReportFields>;

/** One node of the group as the keeper needs to see it. */
export interface GroupMember {
  nodeId: number;
  name: string;
  host: string;
  port: number;
  goalState: string;
  reportedState: string;
}

/**
 * Answer to a report and to a goal long-poll: the node's goal and what the keeper needs to
 * reach it (the primary to follow, the other nodes for pg_hba and slots, and the
 * `synchronous_standby_names` to apply when the goal is `primary` or `apply_settings`).
 */
export interface NodeGoal {
  nodeId: number;
  name: string;
  formation: string;
  groupId: number;
  goalState: string;
  reportedState: string;
  primary: GroupMember | null;
  /**
   * The node to stream from: the primary, or during `fast_forward` the most advanced standby
   * (null when there is none to follow yet).
   */
  upstream: GroupMember | null;
  nodes: GroupMember[];
  synchronousStandbyNames: string;
  /** With goal `dropped`: the operator asked to remove the node's data too (`--destroy`). */
  destroy: boolean;
  /** The formation's settings the keeper acts on (report interval, self-fencing). */
  settings: KeeperSettings;
  /**
   * The formation's client networks (`ADDRESS/PREFIX` each), which the keeper admits in its
   * managed pg_hba.conf block with TLS and SCRAM only; absent from an older monitor (none).
   */
  clientNetworks?: string[];
  /**
   * On a standby: how many bytes of WAL its last reported LSN is behind the primary's last
   * reported LSN (what the monitor compares with `catchupLagBytes`); null without a primary,
   * on the primary itself, and from an older monitor.
   */
  lagBytes?: number | null;
  /**
   * The store revision at which this goal was written (decimal text of a non-negative 64-bit
   * integer): every goal write of a node gets a larger one than all its earlier ones (etcd:
   * the mod revision of the commit; the Postgres store: a sequence). A keeper never acts on a
   * goal of a lower revision than one it already applied. Absent from an older monitor.
   */
  goalRevision?: string;
  /**
   * The Postgres parameters the keeper writes into `pgha.parameters.conf` (the formation's, the
   * node's own over them, in the order {@link orderedValue} gives), by name. Absent from an older
   * monitor: the keeper leaves its file as it is.
   */
  postgresParameters?: PostgresParameter[];
  /**
   * How many restarts of its Postgres the operator has asked for the node
   * (`pgha perform restart`): the keeper restarts Postgres once for each new value above the
   * one it last carried out (`NodeReport.restartDone`). Absent from an older monitor.
   */
  restartRequest?: number;
}

/** One row of `pgha show state`. */
export interface NodeStateRow {
  name: string;
  node_id: number;
  group_id: number;
  host: string;
  port: number;
  timeline: number;
  lsn: string;
  connection: 'read-write' | 'read-only' | 'none';
  reported_state: string;
  goal_state: string;
  health: string;
  last_report_ago_ms: number | null;
  /** Why the group is held up, on the node concerned (no safe candidate, an election waiting). */
  note: string | null;
  /** What the node's keeper last reported as keeping it from its goal (see {@link NodeReport}); null when nothing. */
  problem: string | null;
  /**
   * The keeper's HTTP server (`https://HOST:PORT` when the node uses TLS, else `http://`), as
   * registered (`RegisterNodeRequest.httpAddress`); `HOST:8008`, the default, for a node
   * registered by a keeper older than it. Its routes: docs/api.md, "The keeper's HTTP routes".
   */
  keeper_http_url: string;
  /**
   * Bytes of WAL between the primary's last reported LSN and this node's (0 or more); null on
   * the primary, without one, or for a node that has not reported an LSN yet.
   */
  lag_bytes: number | null;
  /** The long transition under way and how far it has come (e.g. a base backup); null when none. */
  transition_progress: { phase: string; transition: string | null; done_bytes: number; total_bytes: number | null; percent: number | null } | null;
  /**
   * Parameters changed for the node that Postgres applies only at its next restart
   * (`pg_settings.pending_restart`, as its keeper last reported); empty when none, or not known.
   */
  pending_restart: string[];
  /**
   * Restarts of the node's Postgres asked for by the operator (`pgha perform restart`) and
   * carried out by its keeper: a restart is under way while `done < requested`;
   * `requested_ago_ms` is the time since the last request (null: never asked).
   */
  restart: { requested: number; done: number; requested_ago_ms: number | null };
}

/** One row of `pgha show events`. */
export interface EventRow {
  event_id: number;
  event_time: string;
  formation: string;
  group_id: number;
  node_id: number;
  node_name: string;
  reported_state: string;
  old_goal_state: string;
  new_goal_state: string;
  reason: string;
  rule: string;
}

/** Shape of `DIR/up.json`, written by `pgha up` for the operator and scripts: snake_case, as views (docs/api.md, "Casing"). */
export interface UpFile {
  monitor: { url: string; pid: number; pgdata: string };
  uri: string;
  /** `http_url`: the keeper's HTTP server (`GET /primary`, `/replica`, `/health`, `/state`, `/metrics`). */
  nodes: { name: string; pgdata: string; port: number; keeper_pid: number; http_url: string }[];
  /** pgpass file with the postgres role's password (0600). */
  pgpass_file?: string;
  /** The monitor's operator token file (0600). */
  auth_token_file?: string;
  /** The monitor's viewer token file (0600): reads everything, changes nothing (`/metrics` for Prometheus, the dashboard). */
  viewer_token_file?: string;
  /** The monitor's CA certificate: verifies the monitor and every node (absent without TLS). */
  ca_file?: string;
  /** `pgha up --monitors 3`: every monitor (`monitor` is the first of them). */
  monitors?: { url: string; pid: number; pgdata: string }[];
  /** `pgha up --monitors 3`: the members of the local etcd cluster the monitors share. */
  etcd?: { name: string; client_url: string; pid: number; data_dir: string }[];
}

/** Body of `POST /v1/formations/:formation/switchover` and `/failover`: nothing. */
export const EmptyBody = z.object({}).strict();

/** Body of `POST /v1/formations/:formation/promotion`. */
export const PromotionRequest = z.object({ name: NodeName }).strict();

/** Body of `POST /v1/formations/:formation/maintenance`. */
export const MaintenanceRequest = z
  .object({ name: NodeName, enable: z.boolean(), allowFailover: z.boolean().default(false) })
  .strict();

/**
 * Body of `POST /v1/formations/:formation/restart` (`pgha perform restart`): restart the
 * Postgres of node `name`. A standby restarts in place; the primary by a switchover to a
 * synchronous standby (its Postgres restarts as it rejoins as a standby), or in place with
 * `inPlace`.
 */
export const RestartRequest = z.object({ name: NodeName, inPlace: z.boolean().default(false) }).strict();
export type RestartRequest = z.input<typeof RestartRequest>;

/** Answer to {@link RestartRequest} (a view: snake_case). */
export interface RestartResponse extends CommandResponse {
  node_id: number;
  name: string;
  /** `in-place`: its keeper restarts Postgres; `switchover`: the primary hands over and rejoins as a standby. */
  method: 'in-place' | 'switchover';
  /** The node's restart request now (`NodeGoal.restartRequest`); its keeper reports it done as `restart.done` in `pgha show state`. */
  restart_request: number;
}

/** Answer to an operator command (a view: snake_case, see docs/api.md, "Casing"). */
export interface CommandResponse {
  formation: string;
  /** The goal assignments the command made (and those that followed at once), with the id of the rule of each. */
  assignments: { node_id: number; goal_state: string; reason: string; rule: string }[];
  /** Set when the command needed no change (e.g. promoting the primary). */
  note?: string;
}

/** Bounds of a formation's `number_sync_standbys` (the upper one is a sanity limit; the monitor also checks the standbys). */
export const NumberSyncStandbys = z.number().int().min(0).max(100);

/** A node's candidate priority: 0..100, 0 = never promote. */
export const CandidatePriority = z.number().int().min(0).max(100);

/** `POST /v1/formations`: create a formation (`pgha create formation`). */
export const CreateFormationRequest = z
  .object({
    formation: FormationName,
    numberSyncStandbys: NumberSyncStandbys.default(0),
  })
  .strict();
export type CreateFormationRequest = z.input<typeof CreateFormationRequest>;

/** One timing setting's value in a settings change: a whole number within its {@link TIMING_SETTINGS} range. */
function timingValue(name: string, s: TimingSetting) {
  const unit = s.unit === 'ms' ? ' ms' : '';
  return z
    .number()
    .int()
    .min(s.min, `${name} must be at least ${s.min}${unit}`)
    .max(s.max, `${name} must be at most ${s.max}${unit}`)
    .optional();
}

/**
 * `PATCH /v1/formations/:formation/settings` (`pgha set formation number-sync-standbys|<timing
 * setting>`): at least one field; timing values in ms (a count for `healthProbeRetries`),
 * within {@link TIMING_SETTINGS}' ranges. Whether they fit together is checked against the
 * formation's other settings (`timingProblems`).
 */
export const FormationSettingsUpdate = z
  .object({
    numberSyncStandbys: NumberSyncStandbys.optional(),
    /** The formation's client networks, replacing the ones it has (`[]`: none). */
    clientNetworks: ClientNetworksField.optional(),
    ...(Object.fromEntries(Object.entries(TIMING_SETTINGS).map(([name, s]) => [s.key, timingValue(name, s)])) as Record<TimingSettingKey, ReturnType<typeof timingValue>>),
  })
  .strict()
  .refine((u) => Object.values(u).some((v) => v !== undefined), 'give at least one setting');
export type FormationSettingsUpdate = z.input<typeof FormationSettingsUpdate>;

/**
 * `PATCH /v1/formations/:formation/nodes/:name/settings` (`pgha set node
 * candidate-priority|replication-quorum`): at least one field.
 */
export const NodeSettingsUpdate = z
  .object({
    candidatePriority: CandidatePriority.optional(),
    replicationQuorum: z.boolean().optional(),
  })
  .strict()
  .refine((u) => u.candidatePriority !== undefined || u.replicationQuorum !== undefined, 'give candidatePriority or replicationQuorum');
export type NodeSettingsUpdate = z.input<typeof NodeSettingsUpdate>;

/** A formation as `pgha create formation` and `pgha get formation …` print it. */
export interface FormationView {
  formation: string;
  kind: string;
  dbname: string;
  number_sync_standbys: number;
  /**
   * The formation's timing settings in effect (its own, else the defaults), by key, in ms (a
   * count for `healthProbeRetries`); see `TIMING_SETTINGS` for their command-line names.
   */
  timing: Record<TimingSettingKey, number>;
  /**
   * The networks clients may connect from to every node (`hostssl` + SCRAM-SHA-256 lines of
   * each node's managed pg_hba.conf block), `ADDRESS/PREFIX` each; empty: only the
   * formation's own hosts.
   */
  client_networks: string[];
}

/** A node's replication settings, as `pgha get node …` prints them. */
export interface NodeSettingsRow {
  formation: string;
  group_id: number;
  node_id: number;
  name: string;
  candidate_priority: number;
  replication_quorum: boolean;
}

/** The `synchronous_standby_names` the monitor computes for a group's primary (`pgha show standby-names`). */
export interface StandbyNamesView {
  formation: string;
  group_id: number;
  /** Name of the node holding the group's writable goal; null when there is none. */
  primary: string | null;
  primary_node_id: number | null;
  /** Empty when there is no primary or no standby with replication quorum in `secondary`. */
  synchronous_standby_names: string;
}

/** `pgha show settings`: the formation's and every node's replication settings. */
export interface SettingsView {
  formation: FormationView;
  /** One entry per group that has nodes. */
  standby_names: StandbyNamesView[];
  nodes: NodeSettingsRow[];
}

/**
 * Answer to a node settings change: the settings now, one sentence per value that changed
 * (none: nothing changed), and warnings about the result (e.g. no standby left to promote).
 */
export interface NodeSettingsChange {
  node: NodeSettingsRow;
  changes: string[];
  warnings: string[];
}

/** Answer to a formation settings change, as {@link NodeSettingsChange}. */
export interface FormationSettingsChange {
  formation: FormationView;
  changes: string[];
  /** What the change leaves to watch for (client networks that nodes without TLS cannot serve). */
  warnings: string[];
}

/**
 * `PATCH /v1/formations/:formation/postgresql` (`pgha set postgresql NAME VALUE [--name NODE]`):
 * parameters to set (a value) or reset (null: back to the formation's, or to Postgres's
 * default), for the whole formation, or with `name` for that node only. Checked against the
 * primary's `pg_settings` (`parameterProblem`) before anything is stored.
 */
export const PostgresParametersUpdate = z
  .object({
    name: NodeName.optional(),
    parameters: z
      .array(parameterEntry(PostgresParameterValue.nullable()))
      .min(1, 'give at least one parameter')
      .max(100)
      .transform(lowerCaseUniqueNames),
  })
  .strict();
export type PostgresParametersUpdate = z.input<typeof PostgresParametersUpdate>;

/** One parameter on one node in {@link PostgresParametersView}. */
export interface NodeParameterRow {
  name: string;
  /** What the keeper is given for it (the formation's or the node's own, held back by the order of {@link HOT_STANDBY_PARAMETERS}). */
  value: string;
  /** The node's own value (over the formation's); null when it has none. */
  node_value: string | null;
  /** What Postgres runs with, as the keeper last reported (`current_setting`); null when not known. */
  running: string | null;
  /** It waits for a restart of the node's Postgres. */
  pending_restart: boolean;
}

/** `pgha show postgresql`: every parameter pgha manages for the formation, and each node's view of it. */
export interface PostgresParametersView {
  formation: string;
  /** The formation's parameters, by name. */
  parameters: PostgresParameter[];
  nodes: {
    node_id: number;
    name: string;
    /** The node's own parameters, over the formation's, by name. */
    overrides: PostgresParameter[];
    parameters: NodeParameterRow[];
    /** Every parameter waiting for a restart of its Postgres (those pgha manages and any other); empty when none or not known. */
    pending_restart: string[];
  }[];
}

/** Answer to {@link PostgresParametersUpdate}: the parameters now and one sentence per change (none: nothing changed). */
export interface PostgresParametersChange extends PostgresParametersView {
  changes: string[];
}

/** Answer to `DELETE /v1/formations/:formation` (`pgha drop formation`). */
export interface FormationDropped {
  formation: string;
  dropped: true;
}

/** One monitor, as `pgha show monitors` prints it (`GET /v1/monitors`). */
export interface MonitorRow {
  /** The monitor's id (`<hostname>:<port>` of its API, or the id it registered with). */
  monitor_id: string;
  /** Its API URL. */
  url: string;
  /** It answered the monitor that made this list (`GET /v1/monitors/self`) just now. */
  reachable: boolean;
  /** Why it did not answer; null when it did. */
  error: string | null;
  /** The formations it leads, with its term (the leader key's create revision) for each. */
  leads: { formation: string; term: string }[];
  /** How long its lease may still live, by its own clock (ms); null without etcd or when unknown. */
  lease_left_ms: number | null;
  /** `postgres` (its own store) or `etcd`. */
  store: 'postgres' | 'etcd';
}

/** One member of the etcd cluster of the store. */
export interface EtcdMemberRow {
  name: string;
  /** The member id, hexadecimal. */
  id: string;
  client_urls: string[];
  /** It answered a status request just now. */
  healthy: boolean;
  /** It is the raft leader of the cluster. */
  leader: boolean;
  /** Size of its database, bytes; null when it did not answer. */
  db_size_bytes: number | null;
  /** Why it did not answer; null when it did. */
  error: string | null;
}

/** `GET /v1/monitors`: every monitor of the store and every etcd member (none on a Postgres store). */
export interface MonitorsView {
  monitors: MonitorRow[];
  etcd: EtcdMemberRow[];
}
