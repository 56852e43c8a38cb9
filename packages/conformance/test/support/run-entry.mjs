// Runs a test entry through the built runner (dist/internal/runner.js) in place of the suite's
// own, and prints the run's result and the lines the command would print about its checks, as
// JSON: `node run-entry.mjs <entry file>`.
import process from 'node:process';
import { reportLines } from '../../dist/internal/cli-output.js';
import { runConformance } from '../../dist/internal/runner.js';

const entry = process.argv[2];
if (entry === undefined) throw new Error('usage: node run-entry.mjs <entry file>');
const result = await runConformance({ modules: [], entry });
process.stdout.write(JSON.stringify({ result, lines: reportLines(result.results) }));
