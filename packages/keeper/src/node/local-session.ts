/**
 * The keeper's session to its own Postgres, kept open between ticks, and the facts it reads on
 * it. It owns the session, the callback for a lost session, and how long the reads of the
 * facts have failed while Postgres ran.
 */
import type pg from 'pg';
import { SHUTDOWN_CLUSTER_STATES, localConnection, newPgClient, postmasterPid, readClusterState, type LocalPg } from '@pgha/postgres';
import { readPostgresFacts, type PostgresFacts } from '../local-facts.js';

/**
 * How long a running Postgres may refuse the keeper's session before that is a problem, in ms:
 * long enough for the moments a keeper's own start, stop or promotion makes Postgres refuse
 * sessions ("the database system is starting up" / "shutting down"), short against the
 * minutes an operator would otherwise look at a node that reports nothing.
 */
export const FACTS_UNREADABLE_GRACE_MS = 3000;

/**
 * How long the keeper waits for its own Postgres to accept its session, and to answer the read
 * of its facts, in ms. Postgres answers both in a few ms; one that does not is stuck (stopped,
 * out of I/O), and the keeper must go on reporting rather than wait with it: a keeper silent
 * for `nodeUnhealthyTimeoutMs` counts as gone.
 */
export const LOCAL_QUERY_TIMEOUT_MS = 2000;

/** Told the outcome of every read of the facts (the divergence watch: `DivergenceWatch.observe`). */
export interface FactsObserver {
  /** `facts` is undefined when Postgres did not answer; `nowMs` is `Date.now()`. */
  observe(facts: PostgresFacts | undefined, nowMs: number): void;
}

/** See the module comment. One per node (`NodeControl.session`). */
export class LocalSession {
  /** Where the local Postgres listens (pgha's socket directory and port). */
  readonly local: LocalPg;
  private session: pg.Client | undefined;

  /** Called when the kept session drops (Postgres stopped or crashed): the keeper looks at once. */
  onSessionLost: (() => void) | undefined;

  /**
   * Why the last read of the facts failed while Postgres ran, and since when the reads fail
   * (`Date.now()`, ms); undefined after a read that worked, or when Postgres does not run.
   */
  private factsFailure: { message: string; sinceMs: number } | undefined;

  /**
   * @param pgdata - the node's data directory (its postmaster.pid says whether Postgres runs).
   * @param observer - told every read of the facts.
   */
  constructor(private readonly pgdata: string, local: LocalPg, private readonly observer: FactsObserver) {
    this.local = local;
  }

  /**
   * Runs `fn` on a session to the local Postgres kept open between ticks (a keeper reads its
   * facts every few hundred ms: reconnecting each time would be most of its CPU). A failed
   * session is dropped and the next call opens a new one.
   */
  async withSession<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    if (!this.session) {
      const client = newPgClient(localConnection(this.local, 'pgha_keeper', LOCAL_QUERY_TIMEOUT_MS));
      const lost = (): void => {
        if (this.session !== client) return;
        this.session = undefined;
        this.onSessionLost?.();
      };
      client.on('error', lost);
      client.on('end', lost);
      await client.connect();
      this.session = client;
    }
    const client = this.session;
    try {
      return await fn(client);
    } catch (err) {
      if (this.session === client) this.session = undefined;
      await client.end().catch(() => undefined);
      throw err;
    }
  }

  /** Closes the kept session. */
  async closeSession(): Promise<void> {
    const client = this.session;
    this.session = undefined; // an intended close: onSessionLost is not called
    await client?.end().catch(() => undefined);
  }

  /** Reads local facts; undefined when Postgres does not answer (see {@link factsProblem}). */
  async readFacts(): Promise<PostgresFacts | undefined> {
    let facts: PostgresFacts | undefined;
    // A postmaster whose shutdown has reached its checkpoint answers no session (a connection
    // may wait until it exits): nothing to read, as when it is not running.
    if (postmasterPid(this.pgdata) === undefined || SHUTDOWN_CLUSTER_STATES.has(readClusterState(this.pgdata) ?? 'in production')) {
      this.factsFailure = undefined;
      if (this.session) await this.closeSession();
    } else {
      try {
        facts = await this.withSession((c) => readPostgresFacts(c, LOCAL_QUERY_TIMEOUT_MS));
        this.factsFailure = undefined;
      } catch (err) {
        const message = (err as Error).message.split('\n')[0]!.trim() || (err as Error).name;
        this.factsFailure = { message, sinceMs: this.factsFailure?.sinceMs ?? Date.now() };
      }
    }
    this.observer.observe(facts, Date.now());
    return facts;
  }

  /**
   * The sentence for a Postgres that runs but has not answered the keeper's session for
   * {@link FACTS_UNREADABLE_GRACE_MS} or longer (without its facts the keeper reports no LSN or
   * timeline, and no transition can check what it did), e.g. `Postgres runs but the keeper
   * cannot read its facts: The server does not support SSL connections`; undefined otherwise.
   * Stable while the same error lasts, since every change of a node's problem is an event.
   *
   * @param nowMs - `Date.now()`.
   */
  factsProblem(nowMs: number): string | undefined {
    const failure = this.factsFailure;
    if (!failure || nowMs - failure.sinceMs < FACTS_UNREADABLE_GRACE_MS) return undefined;
    return `Postgres runs but the keeper cannot read its facts: ${failure.message}`;
  }
}
