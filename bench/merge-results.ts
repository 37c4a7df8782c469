/**
 * `npm run bench:merge -- --out DIR --name NAME A.json B.json …`: one results file from several
 * `npm run bench` reports (their `latest.json`), for a benchmark run in parts so that no part
 * holds the machine for too long (e.g. one part per scenario). The systems, runs and idle
 * windows of the parts are put together and rendered as `npm run bench` renders one report;
 * the results file names every part's command. Writes `DIR/NAME.md` and `DIR/NAME.json`.
 *
 * Figures of different parts were measured at different times: compare them as such (the
 * systems of one part ran side by side).
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from '@commander-js/extra-typings';
import { renderMarkdown, type BenchReport } from './failover.js';
import { SYSTEMS, type SystemName } from './lib/systems.js';

/**
 * Puts several reports together: systems (the first report's entry for each name) and idle
 * windows in the table's order of systems, the results of all, the largest number of runs, the latest date, the parts' commands joined.
 *
 * @throws Error when `reports` is empty or two reports ran on different machines.
 */
export function mergeReports(reports: readonly BenchReport[], note?: string): BenchReport {
  const first = reports[0];
  if (!first) throw new Error('no report to merge');
  const machines = new Set(reports.map((r) => r.machine));
  if (machines.size > 1) throw new Error(`the reports ran on different machines: ${[...machines].join('; ')}`);
  const systems: BenchReport['systems'] = [];
  for (const s of reports.flatMap((r) => r.systems ?? [])) if (!systems.some((x) => x.name === s.name)) systems.push(s);
  // In the table's order of systems, as one run would list them.
  const order = (name: string) => SYSTEMS.indexOf(name as SystemName);
  systems.sort((a, b) => order(a.name) - order(b.name));
  return {
    date: reports.map((r) => r.date).sort().at(-1)!,
    machine: first.machine,
    runs: Math.max(...reports.map((r) => r.runs)),
    systems,
    results: reports.flatMap((r) => r.results),
    footprints: reports.flatMap((r) => r.footprints).sort((a, b) => order(a.system) - order(b.system)),
    command: reports.map((r) => r.command ?? 'npm run bench').join('`, then `'),
    ...(note ? { note } : {}),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const program = new Command('npm run bench:merge --')
    .description('one results file from several npm run bench reports (latest.json files)')
    .argument('<reports...>', 'the reports, in the order they were made')
    .requiredOption('--out <dir>', 'where to write NAME.md and NAME.json')
    .requiredOption('--name <name>', 'the results file\'s name, e.g. peers')
    .option('--note <text>', 'a note for the results file')
    .parse();
  const o = program.opts();
  try {
    const reports = program.args.map((file) => {
      try {
        return JSON.parse(readFileSync(file, 'utf8')) as BenchReport;
      } catch (err) {
        throw new Error(`cannot read the report ${file}: ${(err as Error).message}`);
      }
    });
    const report = mergeReports(reports, o.note);
    mkdirSync(o.out, { recursive: true });
    writeFileSync(join(o.out, `${o.name}.json`), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(o.out, `${o.name}.md`), renderMarkdown(report));
    process.stdout.write(`wrote ${join(o.out, `${o.name}.md`)} and .json from ${reports.length} reports\n`);
  } catch (err) {
    process.stderr.write(`bench:merge: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
