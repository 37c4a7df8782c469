/**
 * Token rotation: `pgha monitor rotate-token [--viewer]` (the operator's or the viewer's token,
 * on the monitor's host) and `pgha keeper rotate-token` (a node's token, on the node's host).
 * Each command returns once every monitor that answers refuses the old token and takes the new
 * one; neither prints a token.
 *
 * Source: Patroni has no API token to rotate; Kubernetes' service-account key rotation and
 * Vault's token renewal are the models (new credential first, old one revoked, then checked).
 */
import { MonitorClient } from '@pgha/client';
import type { KeeperConfig } from '@pgha/keeper';
import { inspectPidFile, pollUntil } from '@pgha/postgres/base';
import { AuthError, MonitorUnavailableError, PghaError, type RotateNodeTokenResponse } from '@pgha/shared/base';

/** How long the monitors have to refuse the old token and take the new one, in ms. */
export const TOKEN_CHECK_TIMEOUT_MS = 10_000;

/** What one monitor said about the old and the new token after a rotation. */
export interface MonitorTokenCheck {
  url: string;
  /** Whether it answered at all (HTTPS, not 5xx). */
  reachable: boolean;
  /** Whether it refuses the old token (401); null when there was no old token to try (none on this host). */
  oldTokenRefused: boolean | null;
  newTokenAccepted: boolean;
  /** Why it did not answer, or what it answered; absent when it answered as it should. */
  detail?: string;
}

type Verdict = { kind: 'accepted' } | { kind: 'refused' } | { kind: 'unreachable' | 'other'; detail: string };

/** GET `path` at `url` with `token`: taken (2xx), refused (401), or why neither. */
async function tryToken(url: string, token: string, ca: string | undefined, path: string): Promise<Verdict> {
  const client = new MonitorClient([url], { token, ca });
  try {
    await client.request('GET', path, undefined, 3_000);
    return { kind: 'accepted' };
  } catch (err) {
    if (err instanceof AuthError && err.code === 'PGHA_ERR_UNAUTHENTICATED') return { kind: 'refused' };
    const unreachable = (err instanceof MonitorUnavailableError && (err.status === undefined || err.status >= 500)) || (err instanceof PghaError && err.code === 'PGHA_ERR_TLS');
    return { kind: unreachable ? 'unreachable' : 'other', detail: (err as Error).message };
  } finally {
    await client.close();
  }
}

/**
 * Polls each monitor until it refuses `oldToken` (when given) and takes `newToken` on `path`,
 * or {@link TOKEN_CHECK_TIMEOUT_MS} passes.
 */
async function checkMonitors(urls: readonly string[], ca: string | undefined, path: string, newToken: string, oldToken: string | undefined): Promise<MonitorTokenCheck[]> {
  return Promise.all(
    urls.map(async (url): Promise<MonitorTokenCheck> => {
      let last: MonitorTokenCheck = { url, reachable: false, oldTokenRefused: null, newTokenAccepted: false, detail: 'not asked yet' };
      await pollUntil(
        async () => {
          const [fresh, old] = await Promise.all([tryToken(url, newToken, ca, path), oldToken === undefined ? undefined : tryToken(url, oldToken, ca, path)]);
          const silent = [fresh, old].find((v) => v !== undefined && (v.kind === 'unreachable' || v.kind === 'other')) as { detail: string } | undefined;
          last = {
            url,
            reachable: fresh.kind !== 'unreachable' && old?.kind !== 'unreachable',
            oldTokenRefused: old === undefined ? null : old.kind === 'refused',
            newTokenAccepted: fresh.kind === 'accepted',
            ...(silent ? { detail: silent.detail } : {}),
          };
          return last.newTokenAccepted && last.oldTokenRefused !== false;
        },
        { timeoutMs: TOKEN_CHECK_TIMEOUT_MS, intervalMs: 50 },
      );
      return last;
    }),
  );
}

/** A check that did not come out as it should, in words. */
function checkProblem(c: MonitorTokenCheck): string | undefined {
  if (!c.reachable) return `${c.url} did not answer (${c.detail ?? 'no answer'})`;
  if (c.oldTokenRefused === false) return `${c.url} still accepts the old token`;
  if (!c.newTokenAccepted) return `${c.url} does not take the new token${c.detail ? ` (${c.detail})` : ''}`;
  return undefined;
}

/** What `pgha monitor rotate-token --json` prints. */
export interface MonitorRotationResult {
  role: 'operator' | 'viewer';
  tokenFile: string;
  store: 'postgres' | 'etcd';
  /** The monitors asked: each refuses the old token and takes the new one, or did not answer (etcd: it takes the store's when it does). */
  monitors: MonitorTokenCheck[];
  /** Own Postgres store: whether a monitor runs for the data directory (a stopped one takes the new file when it starts). */
  monitorRunning: boolean;
}

/**
 * `pgha monitor rotate-token`: see `rotateMonitorToken` for the files and the store. Then checks
 * every monitor: on its own Postgres, a monitor that does not take the new token in time gets
 * the old file back (nothing changed) and the command fails; on etcd, a monitor that answers
 * and still accepts the old token fails the command (the store holds the new one: restart it).
 *
 * @throws PghaError `PGHA_ERR_TIMEOUT` as said; the errors of `rotateMonitorToken`.
 */
export async function rotateMonitorTokenCommand(pgdata: string, role: 'operator' | 'viewer', json: boolean): Promise<void> {
  const { rotateMonitorToken } = await import('@pgha/monitor');
  const rotation = await rotateMonitorToken(pgdata, role);
  const monitors = await checkMonitors(rotation.monitorUrls, rotation.ca, '/v1/session', rotation.token, rotation.oldToken);
  const problems = monitors.map(checkProblem).filter((p): p is string => p !== undefined);
  if (rotation.store === 'postgres' && problems.length > 0) {
    rotation.undo();
    throw new PghaError('PGHA_ERR_TIMEOUT', `the monitor of ${pgdata} (pid ${rotation.signalledPid}) did not take the new ${role} token within ${TOKEN_CHECK_TIMEOUT_MS / 1000} s: ${problems.join('; ')}; the old token is back in ${rotation.tokenFile}, nothing changed`, {
      hint: "see the monitor's log (SIGHUP: reading the operator and viewer tokens again), then run the command again",
    });
  }
  const stale = monitors.filter((c) => c.reachable && checkProblem(c) !== undefined);
  if (stale.length > 0) {
    throw new PghaError('PGHA_ERR_TIMEOUT', `the store holds the new ${role} token (in ${rotation.tokenFile}), but after ${TOKEN_CHECK_TIMEOUT_MS / 1000} s ${stale.map(checkProblem).join('; ')}`, {
      hint: 'restart those monitors (pgha monitor run): they read the token from the store at start',
    });
  }
  const result: MonitorRotationResult = { role, tokenFile: rotation.tokenFile, store: rotation.store, monitors, monitorRunning: rotation.store === 'etcd' || rotation.signalledPid !== undefined };
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const lines = [`${role} token replaced: the new one is in ${rotation.tokenFile} (0600)`];
  const refusing = monitors.filter((c) => checkProblem(c) === undefined).map((c) => c.url);
  if (refusing.length > 0) lines.push(`${rotation.oldToken === undefined ? 'taken by' : 'the old token is refused by'} ${refusing.join(', ')}`);
  for (const c of monitors.filter((m) => !m.reachable)) lines.push(`not checked: ${checkProblem(c)}; it takes the store's token when it answers again`);
  if (!result.monitorRunning) lines.push(`no monitor runs for ${pgdata}: it takes the new token when it starts`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** What `pgha keeper rotate-token --json` prints. */
export interface KeeperRotationResult {
  nodeId: number;
  name: string;
  formation: string;
  rotatedAt: string;
  /** keeper.json, rewritten with the new token (0600). */
  configFile: string;
  /** The running keeper told to take it (SIGHUP); null when none runs (it takes it when it starts). */
  keeperPid: number | null;
  monitors: MonitorTokenCheck[];
}

/**
 * Whether the monitors took `token` for the node after a request whose answer was lost: true
 * (a request with it answers), false (refused with 401), undefined (no monitor answered).
 */
async function tokenTaken(config: KeeperConfig, token: string): Promise<boolean | undefined> {
  const { keeperMonitorUrls } = await import('@pgha/keeper');
  const client = new MonitorClient(keeperMonitorUrls(config), { token, ca: config.monitorCaCertificate });
  try {
    await client.request('GET', `/v1/nodes/${config.nodeId}/goal`);
    return true;
  } catch (err) {
    return err instanceof AuthError && err.code === 'PGHA_ERR_UNAUTHENTICATED' ? false : undefined;
  } finally {
    await client.close();
  }
}

/**
 * `pgha keeper rotate-token`: a new node token, made here and given to the monitors with the
 * current one (`POST /v1/nodes/:nodeId/token`); then keeper.json holds it (written atomically,
 * 0600) and the running keeper takes it on SIGHUP, without a restart (a report refused in
 * between makes the keeper read keeper.json at once: see `Keeper.report`). When the request's
 * answer is lost, the new token itself tells whether the monitors took it.
 *
 * @throws AuthError when the monitors refuse the current token (nothing changed);
 *   MonitorUnavailableError when none answers and whether they took the new token is unknown
 *   (keeper.json unchanged); PghaError `PGHA_ERR_TIMEOUT` when a monitor that answers still
 *   accepts the old token after {@link TOKEN_CHECK_TIMEOUT_MS}.
 */
export async function rotateKeeperTokenCommand(pgdata: string, json: boolean): Promise<void> {
  const [{ keeperMonitorUrls, keeperPaths, loadKeeperConfig }, { editKeeperConfig }] = await Promise.all([import('@pgha/keeper'), import('./keeper-service.js')]);
  const config = loadKeeperConfig(pgdata);
  const { generateSecret } = await import('@pgha/monitor');
  const token = generateSecret();
  const urls = keeperMonitorUrls(config);
  const client = new MonitorClient(urls, { token: config.nodeToken, ca: config.monitorCaCertificate });
  let answer: RotateNodeTokenResponse | undefined;
  try {
    answer = await client.rotateNodeToken(config.nodeId, { nodeToken: token });
  } catch (err) {
    if (err instanceof AuthError) {
      throw new AuthError(err.code as 'PGHA_ERR_UNAUTHENTICATED', `the monitors refused the node token of keeper.json: ${err.message}; nothing changed`, {
        hint: 'the node was registered again since, or its token rotated by another command: the keeper.json in use holds the valid one',
      });
    }
    const taken = err instanceof MonitorUnavailableError ? await tokenTaken(config, token) : false;
    if (taken === false) throw err;
    if (taken === undefined) {
      throw new MonitorUnavailableError(`no monitor answered, so whether they took the new node token is unknown: ${(err as Error).message}; keeper.json is unchanged`, {
        hint: 'run the command again once a monitor answers; if the keeper then reports 401 (pgha keeper status, its log), register the node again with pgha keeper create',
      });
    }
  }
  editKeeperConfig(pgdata, (c) => ({ ...c, nodeToken: token }));
  const seen = inspectPidFile(pgdata, 'keeper');
  const keeperPid = seen.status === 'running' ? seen.pid : null;
  if (keeperPid !== null) process.kill(keeperPid, 'SIGHUP');
  const monitors = await checkMonitors(urls, config.monitorCaCertificate, `/v1/nodes/${config.nodeId}/goal`, token, config.nodeToken);
  const stale = monitors.filter((c) => c.reachable && checkProblem(c) !== undefined);
  if (stale.length > 0) {
    throw new PghaError('PGHA_ERR_TIMEOUT', `keeper.json holds the new node token, but after ${TOKEN_CHECK_TIMEOUT_MS / 1000} s ${stale.map(checkProblem).join('; ')}`, {
      hint: 'restart those monitors (pgha monitor run): they read the node tokens from the store',
    });
  }
  const result: KeeperRotationResult = {
    nodeId: config.nodeId,
    name: answer?.name ?? config.name,
    formation: answer?.formation ?? config.formation,
    rotatedAt: answer?.rotatedAt ?? new Date().toISOString(),
    configFile: keeperPaths(pgdata).config,
    keeperPid,
    monitors,
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const refusing = monitors.filter((c) => checkProblem(c) === undefined).map((c) => c.url);
  const lines = [
    `node ${result.nodeId} "${result.name}": node token replaced; the new one is in ${result.configFile}`,
    ...(refusing.length > 0 ? [`the old token is refused by ${refusing.join(', ')}`] : []),
    ...monitors.filter((m) => !m.reachable).map((c) => `not checked: ${checkProblem(c)}`),
    keeperPid === null ? 'no keeper runs for this node: it takes the new token when it starts' : `the running keeper (pid ${keeperPid}) takes it without a restart (sent SIGHUP)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
