import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

const file = (path: string) => fileURLToPath(new URL(`./packages/${path}`, import.meta.url));

// The subpaths first: an alias also matches an import that starts with its key and a '/'.
const alias = {
  '@pgha/shared/base': file('shared/src/base.ts'),
  '@pgha/shared/core': file('shared/src/core.ts'),
  '@pgha/postgres/base': file('postgres/src/base.ts'),
  '@pgha/postgres/secrets': file('postgres/src/secrets.ts'),
  '@pgha/postgres/client-networks': file('postgres/src/client-networks.ts'),
  '@pgha/postgres/pg-pool-client': file('postgres/src/pg-pool-client.ts'),
  '@pgha/shared': src('shared'),
  '@pgha/postgres': src('postgres'),
  '@pgha/client': src('client'),
  '@pgha/keeper': src('keeper'),
  '@pgha/monitor': src('monitor'),
  '@pgha/migrations': fileURLToPath(new URL('./migrations/index.ts', import.meta.url)),
};

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          environment: 'node',
          testTimeout: 240_000,
          hookTimeout: 120_000,
          // Real Postgres processes on 2 cores: one file at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
