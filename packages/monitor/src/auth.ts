/**
 * Who may call the monitor's API. Every request but `GET /health` and the dashboard's files
 * (`GET /ui`, `/ui/app.js`, `/ui/app.css`) carries `Authorization: Bearer <token>`:
 *
 * - the **operator token** (`<pgdata>.pgha/auth-token`, made by `pgha monitor create`) for
 *   every route except a keeper's own two: registering nodes, `show`, `perform`, settings…;
 * - a **node token** (issued at registration, see `RegisterNodeResponse.nodeToken`, and
 *   replaced by `POST /v1/nodes/:nodeId/token`) for `POST /v1/nodes/:nodeId/report`,
 *   `GET /v1/nodes/:nodeId/goal` and `POST /v1/nodes/:nodeId/token` of that node only;
 * - the **viewer token** (`<pgdata>.pgha/viewer-token`, made by `pgha monitor create`) for GET
 *   on every operator route: it reads everything an operator reads and changes nothing (403),
 *   so Prometheus and a dashboard viewer need not hold the power to switch over.
 *   `GET /v1/session` says which of the operator and viewer tokens a caller holds.
 *
 * A request without valid credentials gets 401; valid credentials on a route they do not
 * open (another node's id, the operator token on a keeper route, a node token on an operator
 * route) get 403. Each refusal is logged as a security event (`security: true`), and a refusal
 * that names a known node is also written to the formation's events (at most once per node
 * and kind every {@link SECURITY_EVENT_INTERVAL_MS}). Tokens are compared by their SHA-256 in
 * constant time; the monitor keeps no node token, only its hash.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { parseNodeIdText } from '@pgha/shared';
import { nodeEvent } from './store/event-records.js';
import type { NodeCredentialRepository, StoreSession } from './store/store-port.js';
import { UI_ROUTES } from './routes/ui.js';

/** The event rule of a refused request. */
export const SECURITY_EVENT_RULE = 'security';
/** The least time between two security events of one node and kind, in ms. */
export const SECURITY_EVENT_INTERVAL_MS = 10_000;

/** SHA-256 of a token, hex. */
export function tokenSha256(token: string): string {
  return hash('sha256', token, 'hex');
}

/** Constant-time equality of two SHA-256 hex digests. */
function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** The token of an `Authorization: Bearer <token>` header; undefined when absent or malformed. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/.exec(header ?? '');
  return m?.[1];
}

/**
 * Node tokens by digest, as a cache over the store's credentials: what this monitor writes it
 * caches; what another monitor sharing the store deletes, it forgets ({@link forget}).
 */
export class NodeCredentials {
  private readonly ownerByDigest = new Map<string, number>();
  private readonly digestByNode = new Map<number, string>();

  constructor(private readonly credentials: NodeCredentialRepository) {}

  /** The node whose token has this digest; undefined for none. */
  async ownerOf(digest: string): Promise<number | undefined> {
    const cached = this.ownerByDigest.get(digest);
    if (cached !== undefined) return cached;
    const nodeId = await this.credentials.ownerOf(digest);
    if (nodeId !== undefined) this.remember(nodeId, digest);
    return nodeId;
  }

  /**
   * Forgets a token digest whose credential another monitor deleted (etcd's watch,
   * `EtcdStore.credentialRevoked`); undefined forgets every digest (the watch broke).
   */
  forget(digest: string | undefined): void {
    if (digest === undefined) {
      this.ownerByDigest.clear();
      this.digestByNode.clear();
      return;
    }
    const nodeId = this.ownerByDigest.get(digest);
    this.ownerByDigest.delete(digest);
    if (nodeId !== undefined && this.digestByNode.get(nodeId) === digest) this.digestByNode.delete(nodeId);
  }

  /** The node whose token has this digest when this monitor has seen it; undefined otherwise (ask {@link ownerOf}). */
  cachedOwnerOf(digest: string): number | undefined {
    return this.ownerByDigest.get(digest);
  }

  /** Records a node's new token digest (the caller issues it in its transaction, `NodeCredentialRepository.issue`). */
  remember(nodeId: number, digest: string): void {
    const old = this.digestByNode.get(nodeId);
    if (old !== undefined) this.ownerByDigest.delete(old);
    this.digestByNode.set(nodeId, digest);
    this.ownerByDigest.set(digest, nodeId);
  }
}

/**
 * What the API's authentication needs. Read at each request: a token rotation
 * (`pgha monitor rotate-token`) replaces a digest in place, and the old token is refused from
 * the next request on.
 */
export interface ApiAuth {
  /** SHA-256 (hex) of the operator token. */
  operatorTokenSha256: string;
  /**
   * SHA-256 (hex) of the viewer token, which reads and changes nothing: GET (and HEAD) on
   * every operator route (`show *`, `watch`, `/metrics`, the event stream, the dashboard's
   * views); any other method answers 403. Absent: no viewer token (a monitor created before it).
   */
  viewerTokenSha256?: string;
  nodeCredentials: NodeCredentials;
}

/**
 * Routes that need no credentials: a liveness check, and the dashboard's static files (no
 * data: the page asks for the operator token and sends it with each API call). Neither
 * reveals anything about the formations.
 */
const PUBLIC_ROUTES = new Set(['GET /health', ...UI_ROUTES.map((r) => `GET ${r}`)]);
/** Routes a node's keeper calls with its node token, for its own `:nodeId` (`/token`: `pgha keeper rotate-token`). */
const NODE_ROUTES = new Set(['POST /v1/nodes/:nodeId/report', 'GET /v1/nodes/:nodeId/goal', 'POST /v1/nodes/:nodeId/token']);

/** A request's bearer token as {@link installAuth} judged it, with what it was judged against. */
interface PresentedToken {
  /** The `Authorization` header it came in. */
  header: string;
  /** SHA-256 (hex) of the token. */
  digest: string;
  /** The operator and viewer digests it was compared with (a rotation changes them). */
  operatorSha256: string;
  viewerSha256: string | undefined;
  isOperator: boolean;
  isViewer: boolean;
}

type Refusal = { status: 401 | 403; message: string; hint: string; nodeId?: number; kind: string };

/**
 * Installs the `onRequest` hook that enforces the rules above.
 *
 * @param log - where refusals are logged (`security: true`, never the token).
 */
export function installAuth(app: FastifyInstance, auth: ApiAuth, store: StoreSession, log: Logger): void {
  const lastEvent = new Map<string, number>();

  const writeSecurityEvent = async (nodeId: number, kind: string, reason: string): Promise<void> => {
    const key = `${nodeId}:${kind}`;
    const now = Date.now();
    if ((lastEvent.get(key) ?? -Infinity) > now - SECURITY_EVENT_INTERVAL_MS) return;
    lastEvent.set(key, now);
    if (lastEvent.size > 10_000) lastEvent.clear();
    const node = await store.nodes.get(nodeId).catch(() => undefined);
    if (!node) return;
    await store.events.append([nodeEvent(node, SECURITY_EVENT_RULE, reason)]);
  };

  /** The verdict on a token's owner (undefined: no node's token), as {@link judge} gives it. */
  const verdict = (route: string, owner: number | undefined, isOperator: boolean, req: FastifyRequest): Refusal | undefined => {
    if (!NODE_ROUTES.has(route)) {
      if (isOperator) return undefined;
      if (owner !== undefined) return { status: 403, kind: 'node-token-on-operator-route', message: `node ${owner}'s token does not open ${route}`, hint: 'use the operator token (the monitor\'s auth-token file)' };
      return { status: 401, kind: 'invalid', message: 'invalid credentials', hint: "use the monitor's current auth-token file" };
    }
    const target = parseNodeIdText((req.params as { nodeId?: string }).nodeId);
    if (owner !== undefined && owner === target) return undefined;
    if (owner !== undefined) {
      return { status: 403, kind: 'other-node', ...(target ? { nodeId: target } : {}), message: `refused: node ${owner}'s keeper presented its credentials for node ${target ?? '?'}`, hint: 'a keeper reports only for the node it registered' };
    }
    if (isOperator) return { status: 403, kind: 'operator-on-node-route', message: 'the operator token does not report for a node', hint: "a node's keeper uses the token its registration returned" };
    return { status: 401, kind: 'invalid', ...(target ? { nodeId: target } : {}), message: `invalid credentials for node ${target ?? '?'}: a wrong or replaced token`, hint: "the node's token was replaced since (pgha keeper create, or pgha keeper rotate-token): its keeper takes the new one from keeper.json (pgha keeper reload)" };
  };

  /** The last credentials judged on each connection: a keeper sends the same header with every request. */
  const lastOnSocket = new WeakMap<object, PresentedToken>();

  /**
   * The digest of the request's bearer token and whether it is the operator's or the viewer's
   * token; undefined without a well-formed bearer token. Computed once per connection while
   * the header and the configured digests stay the same.
   */
  const digestOn = (req: FastifyRequest): PresentedToken | undefined => {
    const header = req.headers.authorization;
    const last = lastOnSocket.get(req.raw.socket);
    if (last && last.header === header && last.operatorSha256 === auth.operatorTokenSha256 && last.viewerSha256 === auth.viewerTokenSha256) return last;
    const token = bearerToken(header);
    if (token === undefined) return undefined;
    const digest = tokenSha256(token);
    const presented: PresentedToken = {
      header: header!,
      digest,
      operatorSha256: auth.operatorTokenSha256,
      viewerSha256: auth.viewerTokenSha256,
      isOperator: sameDigest(digest, auth.operatorTokenSha256),
      isViewer: auth.viewerTokenSha256 !== undefined && sameDigest(digest, auth.viewerTokenSha256),
    };
    lastOnSocket.set(req.raw.socket, presented);
    return presented;
  };

  /**
   * Undefined when the request may go on, else why not; a promise only when the token's owner
   * must be read from the store (a node token this monitor has not seen yet): a keeper's report
   * is judged without a turn of the event loop.
   */
  const judge = (req: FastifyRequest): Refusal | undefined | Promise<Refusal | undefined> => {
    // HEAD is answered by the GET route of the same path.
    const route = `${req.method === 'HEAD' ? 'GET' : req.method} ${req.routeOptions.url ?? ''}`;
    if (PUBLIC_ROUTES.has(route)) return undefined;
    const presented = digestOn(req);
    if (presented === undefined) {
      return { status: 401, kind: 'missing', message: 'authentication required: no bearer token', hint: 'pass --auth-token-file FILE or set PGHA_AUTH_TOKEN_FILE (pgha monitor create wrote it)' };
    }
    const { digest, isOperator, isViewer } = presented;
    // The operator on an operator route: no owner to look up.
    if (isOperator && !NODE_ROUTES.has(route)) return undefined;
    if (isViewer) {
      if (NODE_ROUTES.has(route)) return { status: 403, kind: 'viewer-on-node-route', message: 'the viewer token does not report for a node', hint: "a node's keeper uses the token its registration returned" };
      if (route.startsWith('GET ')) return undefined;
      return { status: 403, kind: 'viewer-change', message: `the viewer token only reads: ${route} changes the formation`, hint: "use the operator token (the monitor's auth-token file) to change anything" };
    }
    const cached = auth.nodeCredentials.cachedOwnerOf(digest);
    if (cached !== undefined) return verdict(route, cached, isOperator, req);
    return auth.nodeCredentials.ownerOf(digest).then((owner) => verdict(route, owner, isOperator, req));
  };

  const refuse = async (req: FastifyRequest, reply: FastifyReply, refusal: Refusal): Promise<void> => {
    log.warn({ security: true, kind: refusal.kind, status: refusal.status, method: req.method, url: req.url.split('?')[0], ip: req.ip, ...(refusal.nodeId ? { nodeId: refusal.nodeId } : {}) }, `security: ${refusal.message}`);
    if (refusal.nodeId !== undefined) {
      await writeSecurityEvent(refusal.nodeId, refusal.kind, `security: ${refusal.message} (from ${req.ip})`).catch((err: Error) => log.warn({ err: err.message }, 'could not write a security event'));
    }
    if (refusal.status === 401) void reply.header('www-authenticate', 'Bearer realm="pgha"');
    await reply.code(refusal.status).send({ code: refusal.status === 401 ? 'PGHA_ERR_UNAUTHENTICATED' : 'PGHA_ERR_FORBIDDEN', message: refusal.message, hint: refusal.hint });
  };

  // A callback hook, not an async one: a request judged at once goes on in the same turn.
  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    const judged = judge(req);
    const settle = (refusal: Refusal | undefined): void => {
      // A refused request is answered here, and not passed on (fastify: no done() after a reply).
      if (refusal) refuse(req, reply, refusal).catch(done);
      else done();
    };
    if (judged instanceof Promise) judged.then(settle, done);
    else settle(judged);
  });

  // Who the caller is, for the dashboard (a viewer sees no command buttons): the hook above let
  // only the operator and viewer tokens through.
  app.get('/v1/session', async (req): Promise<{ role: 'operator' | 'viewer' }> => {
    const token = bearerToken(req.headers.authorization);
    const viewer = token !== undefined && auth.viewerTokenSha256 !== undefined && sameDigest(tokenSha256(token), auth.viewerTokenSha256);
    return { role: viewer ? 'viewer' : 'operator' };
  });
}
