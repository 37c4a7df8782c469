/**
 * The dashboard, `/ui`: one HTML page, one script and one style sheet, served as they are from
 * `packages/monitor/ui/` (no build step). The files carry no data, so they are served without
 * credentials ({@link UI_ROUTES}, see `auth.ts`); the page asks for the operator token and sends
 * it with every API call (`Authorization: Bearer`, from `fetch`), including the event stream.
 * No cookie is ever set, so there is nothing a cross-site request could ride on.
 *
 * Every file is sent with a strict Content-Security-Policy ({@link UI_CSP}): scripts, styles
 * and connections only from the monitor itself, no inline script or style, no frames, no
 * forms posting anywhere.
 *
 * - `GET /ui` → 200 `text/html`; `GET /ui/app.js` → 200 `text/javascript`; `GET /ui/app.css`
 *   → 200 `text/css`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';

/** The dashboard's routes, all `GET`, served without credentials. */
export const UI_ROUTES = ['/ui', '/ui/app.js', '/ui/app.css'] as const;

/** The Content-Security-Policy of every dashboard file. */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const FILES: Record<(typeof UI_ROUTES)[number], { file: string; type: string }> = {
  '/ui': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

/**
 * `packages/monitor/ui/`, found from the package's entry point (`dist/index.js`) rather than
 * from this module's URL: the CLI runs this code from its bundle (`scripts/bundle-cli.ts`),
 * another directory.
 */
function uiDir(): string {
  return join(dirname(createRequire(import.meta.url).resolve('@pgha/monitor')), '..', 'ui');
}

/** Registers the dashboard's routes (the files are read once, here). */
export async function uiRoutes(app: FastifyInstance): Promise<void> {
  const dir = uiDir();
  for (const route of UI_ROUTES) {
    const { file, type } = FILES[route];
    const body = readFileSync(join(dir, file));
    app.get(route, async (_req, reply) =>
      reply
        .header('content-type', type)
        .header('content-security-policy', UI_CSP)
        .header('x-content-type-options', 'nosniff')
        .header('x-frame-options', 'DENY')
        .header('referrer-policy', 'no-referrer')
        .header('cross-origin-opener-policy', 'same-origin')
        .header('cross-origin-resource-policy', 'same-origin')
        .header('cache-control', 'no-cache')
        .send(body),
    );
  }
}
