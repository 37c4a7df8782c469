/**
 * `docs/state-machine.md` is generated from the code (scripts/state-machine-doc.ts): the
 * monitor's rules per phase and the keeper's transition table. It must never go stale.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KEEPER_TRANSITIONS } from '@pgha/keeper';
import { groupMachine } from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { STATE_MACHINE_DOC, renderStateMachineDoc } from '../../../scripts/state-machine-doc.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

describe('docs/state-machine.md', () => {
  const generated = renderStateMachineDoc();

  it('is what scripts/state-machine-doc.ts generates from the code', () => {
    const committed = readFileSync(`${ROOT}${STATE_MACHINE_DOC}`, 'utf8');
    expect(committed, `${STATE_MACHINE_DOC} is stale: regenerate it with \`npm run docs:state-machine\` and commit it`).toBe(generated);
  });

  it('lists every rule of every phase, with a reason, in the machine\'s order', () => {
    for (const [phase, node] of Object.entries(groupMachine.states)) {
      const section = generated.split(`### Phase \`${phase}\``)[1]!.split('\n### ')[0]!;
      const rows = section.split('\n').filter((l) => /^\| \d+ \|/.test(l));
      expect(rows.map((l) => Number(l.split('|')[1]))).toEqual((node.transitions.get('evaluate') ?? []).map((_, i) => i + 1));
      for (const row of rows) expect(row.split('|')[4]!.trim().length, row).toBeGreaterThan(10);
    }
  });

  it('lists every row of the keeper\'s table, and draws every transition', () => {
    for (const r of KEEPER_TRANSITIONS) {
      if (r.current === r.goal) {
        expect(generated).toContain(`| \`${r.current}\` | \`${r.run}\` |`);
      } else {
        expect(generated).toContain(`| \`${r.current}\` | \`${r.goal}\` | \`${r.run}\` |`);
        expect(generated).toContain(`\n  ${r.current} --> ${r.goal}: ${r.run}\n`);
      }
    }
  });
});
