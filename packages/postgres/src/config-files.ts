/**
 * The files pgha owns inside a data directory: `pgha.conf` and `pgha.parameters.conf`
 * (included from `postgresql.conf`, in that order), `pg_hba.conf` (rewritten whole) and `standby.signal`. Each writer
 * returns whether the file changed, so the caller knows when to reload.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';
import { readFileText } from './file-text.js';
import { postgresOsUser } from './os-user.js';

/** Settings that go into `pgha.conf`. */
export interface PghaConf {
  /** `listen_addresses`; empty string for Unix socket only. */
  listenAddresses: string;
  port: number;
  /** Directory of the Unix socket (the data directory itself: reachable by its owner and root only). */
  socketDir: string;
  synchronousStandbyNames: string;
  /**
   * Standby only: connection to the primary. Holds no password (the password is in the pgpass
   * file it names with `passfile=`): this file is inside the data directory, which
   * pg_basebackup and pg_rewind copy to other nodes.
   */
  primaryConninfo?: string;
  primarySlotName?: string;
  /** Monitor only: fewer replication settings. */
  role: 'node' | 'monitor';
  /**
   * TLS of the server: absolute paths of its certificate, key and CA (this node's own files,
   * outside the data directory); `ssl = on` with TLS 1.2 or later. Absent: `ssl` is left
   * alone (off unless postgresql.conf says otherwise).
   */
  ssl?: { certFile: string; keyFile: string; caFile: string };
}

const INCLUDE_LINE = "include_if_exists = 'pgha.conf'\t# added by pgha";
/** The name of the file of the formation's Postgres parameters (`pgha set postgresql`), in the data directory. */
export const PARAMETERS_FILE = 'pgha.parameters.conf';
const PARAMETERS_INCLUDE_LINE = `include_if_exists = '${PARAMETERS_FILE}'\t# added by pgha`;

function quote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** Renders `pgha.conf`. */
export function renderPghaConf(conf: PghaConf): string {
  const lines = [
    '# Managed by pgha: rewritten by the keeper on every change. Do not edit.',
    `listen_addresses = ${quote(conf.listenAddresses)}`,
    `port = ${conf.port}`,
    `unix_socket_directories = ${quote(conf.socketDir)}`,
    "password_encryption = 'scram-sha-256'",
  ];
  if (conf.ssl) {
    lines.push(
      'ssl = on',
      `ssl_cert_file = ${quote(conf.ssl.certFile)}`,
      `ssl_key_file = ${quote(conf.ssl.keyFile)}`,
      `ssl_ca_file = ${quote(conf.ssl.caFile)}`,
      "ssl_min_protocol_version = 'TLSv1.2'",
    );
  }
  if (conf.role === 'node') {
    lines.push(
      "wal_level = 'replica'",
      'max_wal_senders = 12',
      'max_replication_slots = 12',
      'wal_log_hints = on',
      "wal_keep_size = '256MB'",
      'hot_standby = on',
      'hot_standby_feedback = on',
      "wal_receiver_status_interval = '1s'",
      // A standby pings a silent primary after half of it and gives up after all of it: the
      // "no standby streams" witness of a failover (docs/timeouts.md).
      "wal_receiver_timeout = '2s'",
      "wal_sender_timeout = '10s'",
      "wal_retrieve_retry_interval = '500ms'",
      'synchronous_commit = on',
      `synchronous_standby_names = ${quote(conf.synchronousStandbyNames)}`,
      "recovery_target_timeline = 'latest'",
      `primary_conninfo = ${quote(conf.primaryConninfo ?? '')}`,
      `primary_slot_name = ${quote(conf.primarySlotName ?? '')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Writes `content` to `path` with {@link writeFileAtomic} (temporary file, fsync, rename, fsync
 * the directory), owned by the Postgres OS user, mode 0600, when it differs from what is there.
 *
 * @returns true when the file changed.
 */
export function writeOwnedFileIfChanged(path: string, content: string): boolean {
  if (readFileText(path) === content) return false;
  writeFileAtomic(path, content, { mode: 0o600, owner: postgresOsUser() });
  return true;
}

/** Makes sure `postgresql.conf` includes `pgha.conf`. */
export function ensureInclude(pgdata: string): boolean {
  const path = join(pgdata, 'postgresql.conf');
  const text = readFileText(path) ?? '';
  if (text.includes("include_if_exists = 'pgha.conf'")) return false;
  return writeOwnedFileIfChanged(path, `${text.replace(/\n*$/, '\n')}\n${INCLUDE_LINE}\n`);
}

/**
 * Makes sure `postgresql.conf` includes `pgha.parameters.conf`, after `pgha.conf` (a later
 * line wins: the formation's `max_wal_senders` over pgha's default) and after every line the
 * operator wrote before it.
 */
export function ensureParametersInclude(pgdata: string): boolean {
  const included = ensureInclude(pgdata);
  const path = join(pgdata, 'postgresql.conf');
  const text = readFileText(path) ?? '';
  if (text.includes(`include_if_exists = '${PARAMETERS_FILE}'`)) return included;
  return writeOwnedFileIfChanged(path, `${text.replace(/\n*$/, '\n')}${PARAMETERS_INCLUDE_LINE}\n`) || included;
}

/**
 * Renders `pgha.parameters.conf`: one `name = 'value'` line per parameter, each value quoted
 * (Postgres takes any value quoted, numbers with units and lists included).
 *
 * ### Examples
 * ```ts
 * renderParametersConf([{ name: 'work_mem', value: '8MB' }]) // "# Managed by pgha …\nwork_mem = '8MB'\n"
 * ```
 */
export function renderParametersConf(parameters: readonly { name: string; value: string }[]): string {
  const lines = ['# Managed by pgha: the formation\'s Postgres parameters (pgha set postgresql), rewritten by the keeper. Do not edit.'];
  for (const p of parameters) lines.push(`${p.name} = ${quote(p.value)}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Writes `pgha.parameters.conf` (and its include line), atomically, when it changed.
 *
 * @returns true when anything changed (a running Postgres must reload).
 */
export function writeParametersConf(pgdata: string, parameters: readonly { name: string; value: string }[]): boolean {
  const included = ensureParametersInclude(pgdata);
  return writeOwnedFileIfChanged(join(pgdata, PARAMETERS_FILE), renderParametersConf(parameters)) || included;
}

/** Writes `pgha.conf` (and the include line). @returns true when anything changed. */
export function writePghaConf(pgdata: string, conf: PghaConf): boolean {
  const included = ensureInclude(pgdata);
  return writeOwnedFileIfChanged(join(pgdata, 'pgha.conf'), renderPghaConf(conf)) || included;
}

/** One `pg_hba.conf` host entry. */
export interface HbaEntry {
  /** `hostssl` matches TLS connections only, `hostnossl` the others; `host` (the default) any TCP connection. */
  type?: 'host' | 'hostssl' | 'hostnossl';
  database: string;
  user: string;
  /** An address with its mask (`127.0.0.1/32`) or a keyword (`samehost`, `all`). */
  address: string;
  method: 'scram-sha-256' | 'trust' | 'md5' | 'reject';
  comment: string;
}

/** The CIDR that matches exactly `host` when it is an IP address; the name otherwise. */
export function hostToHbaAddress(host: string): string {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return `${host}/32`;
  if (host.includes(':')) return `${host}/128`;
  return host;
}

const HBA_BEGIN = '# BEGIN pgha: managed by the keeper from the formation\'s nodes; edits inside are overwritten';
const HBA_END = '# END pgha';

/**
 * Writes pgha's block at the top of `pg_hba.conf` (first match wins): local (Unix socket)
 * trust for the keeper, which reaches the socket only through a 0700 directory, then the given
 * host entries. Lines outside the block (an adopted cluster's own rules) are kept below it.
 * There is never a `trust` entry for all addresses.
 *
 * @returns true when the file changed.
 */
export function writeHba(pgdata: string, entries: readonly HbaEntry[]): boolean {
  const path = join(pgdata, 'pg_hba.conf');
  const existing = readFileText(path) ?? '';
  const begin = existing.indexOf(HBA_BEGIN);
  const end = existing.indexOf(HBA_END);
  const rest = begin >= 0 && end > begin ? existing.slice(0, begin) + existing.slice(end + HBA_END.length).replace(/^\n/, '') : existing;
  const lines = [
    HBA_BEGIN,
    '# TYPE    DATABASE     USER              ADDRESS              METHOD',
    'local     all          all                                    trust',
  ];
  const seen = new Set<string>();
  for (const e of entries) {
    const key = `${e.type ?? 'host'} ${e.database} ${e.user} ${e.address}`;
    if (seen.has(key)) continue;
    seen.add(key);
    lines.push(`${(e.type ?? 'host').padEnd(9)} ${e.database.padEnd(12)} ${e.user.padEnd(17)} ${e.address.padEnd(20)} ${e.method}   # ${e.comment}`);
  }
  lines.push(HBA_END);
  return writeOwnedFileIfChanged(path, `${lines.join('\n')}\n${rest}`);
}

/** Characters `\` and `:` escaped for a pgpass field. */
function pgpassField(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
}

/**
 * Writes a pgpass file (`*:*:*:user:password`, any host, port and database) owned by the
 * Postgres OS user, mode 0600 (libpq ignores a pgpass file that others can read).
 *
 * @returns true when the file changed.
 */
export function writePgpass(path: string, user: string, password: string): boolean {
  return writeOwnedFileIfChanged(path, `*:*:*:${pgpassField(user)}:${pgpassField(password)}\n`);
}

/** Creates or removes `standby.signal`. @returns true when it changed. */
export function setStandbySignal(pgdata: string, standby: boolean): boolean {
  const path = join(pgdata, 'standby.signal');
  if (standby === existsSync(path)) return false;
  if (standby) writeOwnedFileIfChanged(path, '');
  else rmSync(path, { force: true });
  return true;
}
