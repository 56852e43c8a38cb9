// Sums the vitest JSON reports in a folder into the one line CI reads: `N passed, N failed`.
// Usage: node tools/ci/count-results.mjs <report-dir> [extra-failures]
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir = '.test-reports', extra = '0'] = process.argv.slice(2);
let passed = 0;
let failed = Number(extra) || 0;
let skipped = 0;
let files = [];
try {
  files = readdirSync(dir).filter((name) => name.endsWith('.json'));
} catch {
  // No report folder: nothing ran.
}
for (const name of files) {
  try {
    const report = JSON.parse(readFileSync(join(dir, name), 'utf8'));
    passed += report.numPassedTests ?? 0;
    failed += (report.numFailedTests ?? 0) + (report.numRuntimeErrorTestSuites ?? 0);
    skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
    // A suite file that failed to load has no tests but must still count as a failure.
    for (const suite of report.testResults ?? []) {
      if (suite.status === 'failed' && (suite.assertionResults ?? []).length === 0) failed += 1;
    }
  } catch (error) {
    console.error(`count-results: unreadable report ${name}: ${error.message}`);
    failed += 1;
  }
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
