/**
 * Reads Stryker's JSON report and writes the small summary committed as
 * docs/mutation/summary.json: counts per file and status, the score, every mutant that was not
 * killed (file, line, mutator, replacement), every mutant a disable directive left out (with the
 * directive's reason), and — given the report of an earlier run with
 * `--before` — what became of each mutant that survived then (killed now, and by which check).
 *
 * `--measured run.json` copies how the run was made (commit, command, date, duration, load
 * average) into the summary as `measured`.
 *
 * Usage: node tools/mutation/summarize.mjs [--before earlier.json] [--measured run.json] [report] [out]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import process from 'node:process';

const root = resolve(import.meta.dirname, '../..');
const args = process.argv.slice(2);
const beforeAt = args.indexOf('--before');
const beforePath = beforeAt === -1 ? undefined : resolve(args.splice(beforeAt, 2)[1]);
// How the run was made (commit, command, date, duration, load average): Stryker's report does not say.
const measuredAt = args.indexOf('--measured');
const measuredPath = measuredAt === -1 ? undefined : resolve(args.splice(measuredAt, 2)[1]);
const reportPath = resolve(root, args[0] ?? 'reports/mutation/mutation.json');
const outPath = resolve(root, args[1] ?? 'docs/mutation/summary.json');

const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);

/** The mutants of a report, each with its file relative to the repository and the names of the tests that killed it. */
function readReport(path) {
  const report = JSON.parse(readFileSync(path, 'utf8'));
  const testNames = new Map();
  for (const { tests } of Object.values(report.testFiles ?? {})) for (const test of tests) testNames.set(test.id, test.name);
  const mutants = [];
  for (const [file, { mutants: fileMutants, source }] of Object.entries(report.files)) {
    const lines = source.split('\n');
    for (const mutant of fileMutants) {
      const line = mutant.location.start.line;
      mutants.push({
        id: mutant.id,
        file: relative(root, resolve(root, file)),
        line,
        column: mutant.location.start.column,
        mutator: mutant.mutatorName,
        replacement: mutant.replacement ?? null,
        status: mutant.status,
        code: (lines[line - 1] ?? '').trim(),
        killedBy: (mutant.killedBy ?? []).map((id) => testNames.get(id) ?? id),
        reason: mutant.statusReason ?? null,
      });
    }
  }
  return mutants;
}

/** Identity of a mutant across runs: where it is and what it changes (ids are not stable). */
const identity = (m) => `${m.file}\t${m.code}\t${m.mutator}\t${m.replacement}`;
const byPlace = (a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column;

function score(mutants) {
  const totals = {};
  const files = {};
  for (const m of mutants) {
    totals[m.status] = (totals[m.status] ?? 0) + 1;
    files[m.file] ??= {};
    files[m.file][m.status] = (files[m.file][m.status] ?? 0) + 1;
  }
  const detected = mutants.filter((m) => DETECTED.has(m.status)).length;
  const valid = mutants.filter((m) => DETECTED.has(m.status) || UNDETECTED.has(m.status)).length;
  return { totals, detected, valid, score: valid === 0 ? null : Math.round((detected / valid) * 10000) / 100, files };
}

/** One line to stdout. */
const print = (line) => process.stdout.write(`${line}\n`);

const after = readReport(reportPath);
const summary = {
  schema: 'latchkey-mutation-summary/1',
  ...score(after),
  notKilled: after
    .filter((m) => UNDETECTED.has(m.status))
    .sort(byPlace)
    .map(({ killedBy: _killedBy, reason: _reason, ...m }) => m),
  // Mutants a `// Stryker disable` directive excludes from the score, with the directive's reason.
  ignored: after
    .filter((m) => m.status === 'Ignored')
    .sort(byPlace)
    .map(({ killedBy: _killedBy, status: _status, ...m }) => m),
};
if (measuredPath !== undefined) summary.measured = JSON.parse(readFileSync(measuredPath, 'utf8'));
if (beforePath !== undefined) {
  const before = readReport(beforePath);
  const now = new Map();
  for (const m of after) {
    const list = now.get(identity(m)) ?? [];
    list.push(m);
    now.set(identity(m), list);
  }
  summary.before = { ...score(before), files: undefined };
  summary.formerSurvivors = before
    .filter((m) => UNDETECTED.has(m.status))
    .sort(byPlace)
    .map((m) => {
      const match = now.get(identity(m))?.shift();
      return {
        file: m.file,
        line: m.line,
        code: m.code,
        mutator: m.mutator,
        replacement: m.replacement,
        before: m.status,
        after: match?.status ?? 'gone (the code changed)',
        killedBy: match?.killedBy.slice(0, 1) ?? [],
      };
    });
}
writeFileSync(outPath, `${JSON.stringify(summary, null, 2)}\n`);
print(
  `score ${summary.score}% (${summary.detected} of ${summary.valid} detected); ${summary.notKilled.length} not killed, ${summary.ignored.length} ignored; wrote ${relative(root, outPath)}`,
);
if (summary.before) print(`before: ${summary.before.score}% (${summary.before.detected} of ${summary.before.valid})`);
for (const m of summary.notKilled)
  print(`${m.status}\t${m.file}:${m.line}:${m.column}\t${m.mutator}\t${JSON.stringify(m.replacement)?.slice(0, 80)}`);
