/**
 * The packages' layers and the absence of import cycles (docs/architecture.md), checked with
 * dependency-cruiser and the rules of `.dependency-cruiser.cjs`:
 * shared ← postgres, client, migrations ← monitor, keeper ← cli.
 */
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult, type IConfiguration } from 'dependency-cruiser';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

describe('package dependencies', () => {
  it('point one way and never in a circle', async () => {
    const cwd = process.cwd();
    process.chdir(ROOT);
    try {
      const config = createRequire(import.meta.url)(`${ROOT}.dependency-cruiser.cjs`) as IConfiguration;
      const packages = readdirSync(`${ROOT}packages`).map((p) => `packages/${p}/src`);
      const { output } = await cruise([...packages, 'migrations'], { ruleSet: config, validate: true, ...config.options });
      const result = output as ICruiseResult;
      const violations = result.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}${v.cycle ? ` (cycle: ${v.cycle.map((c) => c.name).join(' → ')})` : ''}`);
      expect(violations).toEqual([]);
      // The check saw every package's sources and resolved @pgha/* to them.
      const modules = result.modules.map((m) => m.source);
      for (const pkg of ['shared', 'postgres', 'client', 'monitor', 'keeper', 'cli']) expect(modules.some((m) => m.startsWith(`packages/${pkg}/src/`)), pkg).toBe(true);
      expect(result.modules.find((m) => m.source === 'packages/keeper/src/loop.ts')?.dependencies.map((d) => d.resolved)).toContain('packages/client/src/index.ts');
    } finally {
      process.chdir(cwd);
    }
  }, 60_000);
});
