/**
 * Whether a local address is free to listen on, for the ports pgha's own processes take (a
 * node's or the monitor's Postgres, the monitor's API, a keeper's HTTP server).
 */
import { createServer } from 'node:net';

/**
 * True when something listens on host:port (so Postgres could not).
 */
export async function portInUse(host: string, port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.once('error', () => resolvePromise(true));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolvePromise(false)));
  });
}
