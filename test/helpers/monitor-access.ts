/**
 * How tests reach a monitor that requires a token and serves HTTPS: every monitor a helper
 * starts is registered here by URL, and `runPgha`/`startPgha` add its token and CA files to
 * the environment of a command that names it (`--monitor URL[,URL…]` or `PGHA_MONITOR`), unless the
 * test sets them itself (as the security tests do, to present none or a wrong one).
 */
import { readFileSync } from 'node:fs';
import { Agent, Headers, fetch as undiciFetch, type RequestInit, type Response } from 'undici';

/** A monitor's address and credentials files. */
export interface MonitorAccess {
  url: string;
  authTokenFile: string;
  /** The CA its HTTPS certificate chains to; undefined when it runs without TLS. */
  caFile?: string | undefined;
}

const byOrigin = new Map<string, MonitorAccess & { agent: Agent; token: string }>();

function origin(url: string): string {
  return new URL(url).origin;
}

/** Registers a monitor the test started. */
export function registerMonitor(access: MonitorAccess): void {
  const ca = access.caFile ? readFileSync(access.caFile, 'utf8') : undefined;
  byOrigin.set(origin(access.url), { ...access, agent: new Agent({ connect: ca ? { ca } : {} }), token: readFileSync(access.authTokenFile, 'utf8').trim() });
}

/** The registered monitor among `urls` (one URL, or several separated by commas), if any. */
function registeredAmong(urls: string): (MonitorAccess & { agent: Agent; token: string }) | undefined {
  for (const url of urls.split(',')) {
    try {
      const m = byOrigin.get(origin(url.trim()));
      if (m) return m;
    } catch {
      // Not a URL (a test of bad input): no credentials to add.
    }
  }
  return undefined;
}

/** The environment that gives a pgha command the credentials of the monitor it names (the first registered one of a list). */
export function withMonitorCredentials(args: readonly string[], env: Record<string, string>): Record<string, string> {
  const i = args.indexOf('--monitor');
  const url = i >= 0 ? args[i + 1] : (env.PGHA_MONITOR ?? process.env.PGHA_MONITOR);
  const m = url ? registeredAmong(url) : undefined;
  if (!m) return env;
  return {
    ...(m.caFile ? { PGHA_SSL_CA_FILE: m.caFile } : {}),
    PGHA_AUTH_TOKEN_FILE: m.authTokenFile,
    ...env,
  };
}

/**
 * `fetch` to a registered monitor with its operator token and CA; to any other URL, plain.
 *
 * @param init.token - a token to present instead (`''` for none).
 */
export async function monitorFetch(url: string, init: RequestInit & { token?: string } = {}): Promise<Response> {
  const m = byOrigin.get(origin(url));
  const { token, ...rest } = init;
  const headers = new Headers(rest.headers);
  const bearer = token ?? m?.token;
  if (bearer) headers.set('authorization', `Bearer ${bearer}`);
  return undiciFetch(url, { ...rest, headers, ...(m ? { dispatcher: m.agent } : {}) });
}
