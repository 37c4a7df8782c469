/**
 * Writes `docs/state-machine.md` from the code, as pg_auto_failover publishes its failover
 * state machine: the monitor's rules in priority order for each phase of the group machine
 * (`groupMachine` in packages/shared/src/group-fsm/machine.ts, each rule's id and reason from
 * the TSDoc of its plan), and the keeper's transition table (`KEEPER_TRANSITIONS`: current,
 * goal, function, reason), with a Mermaid diagram of the node states and the keeper's edges.
 *
 * Run: `npm run docs:state-machine`. A unit test (packages/keeper/test/state-machine-doc.test.ts)
 * fails when the committed file differs from what this writes.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { NODE_STATES, groupMachine, type NodeState } from '@pgha/shared';
import { KEEPER_TRANSITIONS, type KeeperTransition } from '@pgha/keeper';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The generated file, relative to the repository's root. */
export const STATE_MACHINE_DOC = 'docs/state-machine.md';

/** Where the monitor's rules and their TSDoc live. */
const GROUP_FSM_DIR = 'packages/shared/src/group-fsm';

/** The TSDoc summary of a declaration, on one line, `{@link X}` shown as `X`. */
function summaryOf(node: ts.Node): string | undefined {
  const docs = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc);
  const text = docs.map((d) => ts.getTextOfJSDocComment(d.comment) ?? '').join(' ').trim();
  if (!text) return undefined;
  return text.replace(/\{@link\s+([^}\s|]+)[^}]*\}/g, '`$1`').replace(/\s+/g, ' ');
}

/** A rule's documentation, as found in the sources of the group machine. */
interface RuleDoc {
  /** The rule id its TSDoc names ("Rule `first-node-single`: …"), if it names one. */
  id: string | undefined;
  /** The rest of the summary: why the rule assigns what it assigns. */
  reason: string;
}

function ruleDoc(summary: string): RuleDoc {
  const m = /^Rule `([^`]+)`:\s*/.exec(summary);
  const reason = m ? summary.slice(m[0].length) : summary;
  return { id: m?.[1], reason: reason.charAt(0).toUpperCase() + reason.slice(1) };
}

/**
 * The TSDoc of every exported declaration under {@link GROUP_FSM_DIR}, found by the names a
 * guard of the machine may have: the declaration's own name, the key of an object property
 * that refers to it (`PLANS = { firstNodeSingle, … }`), and the rule id its summary names.
 */
function readRuleDocs(): { docs: Map<string, RuleDoc>; machineSummary: string | undefined } {
  const byName = new Map<string, RuleDoc>();
  const byKey = new Map<string, string>();
  let machineSummary: string | undefined;
  const dir = join(ROOT, GROUP_FSM_DIR);
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts')).sort()) {
    const source = ts.createSourceFile(file, readFileSync(join(dir, file), 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if ((ts.isVariableDeclaration(node) || ts.isFunctionDeclaration(node)) && node.name && ts.isIdentifier(node.name)) {
        const summary = summaryOf(node);
        if (summary) byName.set(node.name.text, ruleDoc(summary));
        if (node.name.text === 'groupMachine') machineSummary = summary;
      }
      if (ts.isShorthandPropertyAssignment(node)) byKey.set(node.name.text, node.name.text);
      if (ts.isPropertyAssignment(node) && (ts.isIdentifier(node.name) || ts.isStringLiteral(node.name))) {
        if (ts.isIdentifier(node.initializer)) byKey.set(node.name.text, node.initializer.text);
        const summary = summaryOf(node);
        if (summary) byName.set(node.name.text, ruleDoc(summary));
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  const docs = new Map<string, RuleDoc>();
  for (const [name, doc] of byName) {
    docs.set(name, doc);
    if (doc.id && !docs.has(doc.id)) docs.set(doc.id, doc);
  }
  for (const [key, target] of byKey) {
    const doc = byName.get(target);
    if (doc && !docs.has(key)) docs.set(key, doc);
  }
  return { docs, machineSummary };
}

/** A guard as XState keeps it: its name, or `{ type }`. */
function guardName(guard: unknown): string | undefined {
  if (typeof guard === 'string') return guard;
  if (guard && typeof guard === 'object' && 'type' in guard && typeof guard.type === 'string') return guard.type;
  return undefined;
}

/** `|` and line breaks would break a Markdown table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

function monitorSection(): string[] {
  const { docs, machineSummary } = readRuleDocs();
  const out: string[] = ['## The monitor: rules in priority order', ''];
  out.push(
    'The group state machine (`groupMachine`, XState v5) has one phase per group. On every evaluation',
    '(a report, a health change, a timer), the first rule of the phase whose plan applies assigns goal',
    'states, each with its reason and the rule id, written to the events; the monitor evaluates again',
    'until no rule applies. A rule with a next phase also moves the group there.',
    '',
  );
  if (machineSummary) out.push(machineSummary, '');
  const initial = groupMachine.root.initial?.target[0]?.key;
  for (const [phase, stateNode] of Object.entries(groupMachine.states)) {
    out.push(`### Phase \`${phase}\`${phase === initial ? ' (initial)' : ''}`, '');
    out.push('| # | rule | next phase | reason |', '|---|---|---|---|');
    const rules = stateNode.transitions.get('evaluate') ?? [];
    rules.forEach((t, i) => {
      const name = guardName(t.guard);
      if (!name) throw new Error(`${GROUP_FSM_DIR}/machine.ts: rule ${i + 1} of phase ${phase} has no named guard`);
      const doc = docs.get(name);
      if (!doc) throw new Error(`${GROUP_FSM_DIR}: no TSDoc for the rule "${name}" of phase ${phase}; document its plan ("Rule \`id\`: reason")`);
      const id = doc.id ?? name;
      const label = id === name ? `\`${id}\`` : `\`${id}\` (guard \`${name}\`)`;
      const next = t.target?.map((s) => `\`${s.key}\``).join(', ') || '—';
      out.push(`| ${i + 1} | ${label} | ${next} | ${cell(doc.reason)} |`);
    });
    const commands = [...stateNode.transitions.entries()].filter(([event]) => event !== 'evaluate');
    const carried = commands.filter(([, defs]) => defs.some((t) => guardName(t.guard) !== undefined)).map(([e]) => `\`${e}\``);
    const refused = commands.filter(([, defs]) => defs.every((t) => guardName(t.guard) === undefined)).map(([e]) => `\`${e}\``);
    if (carried.length > 0) out.push('', `Operator commands carried out when possible (refused with the reason otherwise): ${carried.join(', ')}.`);
    if (refused.length > 0) out.push('', `Operator commands refused in this phase: ${refused.join(', ')}.`);
    out.push('');
  }
  return out;
}

const stateIndex = (s: NodeState): number => NODE_STATES.indexOf(s);

function byStates(a: KeeperTransition, b: KeeperTransition): number {
  return stateIndex(a.current) - stateIndex(b.current) || stateIndex(a.goal) - stateIndex(b.goal);
}

function keeperSection(): string[] {
  const moves = KEEPER_TRANSITIONS.filter((r) => r.current !== r.goal).sort(byStates);
  const keeps = KEEPER_TRANSITIONS.filter((r) => r.current === r.goal).sort(byStates);
  const out: string[] = ['## The keeper: transition table', ''];
  out.push(
    'The keeper reports its reached state, receives its goal, and runs the one function of its table',
    '(`KEEPER_TRANSITIONS` in `packages/keeper/src/fsm/transition-table.ts`) for the pair',
    '(current, goal). When the goal differs, the row takes the node there, logged as',
    '`FSM transition from "current" to "goal": reason`; when the node has reached its goal, the',
    'keep row runs on every tick. The monitor can assign only edges this table has (a unit test',
    'checks every edge the monitor can assign against it).',
    '',
    '### Diagram',
    '',
    'Node states and the keeper\'s transitions, labelled with the function that runs (keep rows',
    'are left out).',
    '',
    '```mermaid',
    'stateDiagram-v2',
    '  [*] --> init',
  );
  for (const r of moves) out.push(`  ${r.current} --> ${r.goal}: ${r.run}`);
  out.push('  dropped --> [*]', '```', '');
  out.push('### Keeping a reached state', '', '| state | function | reason |', '|---|---|---|');
  for (const r of keeps) out.push(`| \`${r.current}\` | \`${r.run}\` | ${cell(r.reason)} |`);
  out.push('', '### Transitions', '', '| current | goal | function | reason |', '|---|---|---|---|');
  for (const r of moves) out.push(`| \`${r.current}\` | \`${r.goal}\` | \`${r.run}\` | ${cell(r.reason)} |`);
  out.push('');
  return out;
}

/** The whole of `docs/state-machine.md`, as the code says it now. */
export function renderStateMachineDoc(): string {
  return [
    '# State machine',
    '',
    '<!-- Generated by scripts/state-machine-doc.ts: do not edit. Regenerate with `npm run docs:state-machine`. -->',
    '',
    'pgha decides in two halves, as pg_auto_failover does: the monitor assigns every node a goal',
    'state from the facts of its group, and each node\'s keeper drives its Postgres from the state',
    'it has reached to that goal. This page is generated from the code: the monitor\'s rules from',
    '`packages/shared/src/group-fsm/` (`machine.ts` and the TSDoc of each rule\'s plan), the',
    'keeper\'s transitions from `packages/keeper/src/fsm/transition-table.ts`.',
    '',
    ...monitorSection(),
    ...keeperSection(),
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const path = join(ROOT, STATE_MACHINE_DOC);
  writeFileSync(path, renderStateMachineDoc());
  console.log(`wrote ${relative(process.cwd(), path) || path}`);
}
