/**
 * Which package may import which (docs/architecture.md), and no import cycles. Checked by
 * `packages/shared/test/package-dependencies.test.ts` in `npm test`.
 *
 *   shared  ←  postgres, client, migrations  ←  monitor, keeper  ←  cli
 *
 * - shared: the state machine, protocol, errors; pure (no @pgha package, no node:*).
 * - postgres: running and configuring a local Postgres, pgha's files beside a data directory.
 * - client: the monitor's HTTP API as a typed client.
 * - monitor: HTTP routes, store, driver, prober; supervises its own Postgres (postgres); asks
 *   the other monitors of an etcd store for their own rows (client).
 * - keeper: loop, transition table, node control; talks to the monitor (client).
 * - cli: every command; may use every package.
 * The monitor and the keeper never import each other.
 */
/** The packages each package may import, besides itself. */
const ALLOWED = {
  shared: [],
  postgres: ['shared'],
  client: ['shared'],
  migrations: [],
  monitor: ['shared', 'postgres', 'client', 'migrations'],
  keeper: ['shared', 'postgres', 'client'],
  cli: ['shared', 'postgres', 'client', 'monitor', 'keeper', 'migrations'],
};
const ALL = Object.keys(ALLOWED);

function sourceOf(pkg) {
  return pkg === 'migrations' ? '^migrations/' : `^packages/${pkg}/src/`;
}
function targetOf(pkg) {
  return pkg === 'migrations' ? '^migrations/' : `^packages/${pkg}/`;
}

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: some module imports (through others) the module that imports it.',
      from: {},
      to: { circular: true },
    },
    ...ALL.filter((pkg) => ALLOWED[pkg].length < ALL.length - 1).map((pkg) => ({
      name: `layers-${pkg}`,
      severity: 'error',
      comment: `@pgha/${pkg} may import only ${ALLOWED[pkg].length ? ALLOWED[pkg].map((p) => `@pgha/${p}`).join(', ') : 'no other pgha package'} (docs/architecture.md).`,
      from: { path: sourceOf(pkg) },
      to: { path: ALL.filter((p) => p !== pkg && !ALLOWED[pkg].includes(p)).map(targetOf) },
    })),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.depcruise.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js'] },
  },
};
