import { describeAttempt, NOT_APPLICABLE } from './run-environment.js';
import type { CheckResult } from './runner.js';

function whereOf(module: string, name: string): string {
  return module === '' ? name : `${module} > ${name}`;
}

function indent(text: string, by = '    '): string {
  return `${by}${text.split('\n').join(`\n${by}`)}`;
}

/** `- not applicable: <module> > <check> — because <reason>`. */
export function notApplicableLine(result: CheckResult): string {
  const name =
    result.notApplicable === undefined
      ? result.name
      : result.name.slice(0, result.name.length - result.notApplicable.length - NOT_APPLICABLE.length);
  return `- not applicable: ${whereOf(result.module, name)} — because ${result.notApplicable ?? 'it was skipped'}`;
}

/** A check that failed, was re-run after event-loop lag from outside the backend, and passed: its line and each attempt's timings. */
export function flakyLines(result: CheckResult): string[] {
  const attempts = result.attempts ?? [];
  const lines = [
    `~ flaky: ${whereOf(result.module, result.name)} (passed on attempt ${attempts.length}, re-run after event-loop lag from outside the backend)`,
  ];
  attempts.forEach((timing, index) => {
    lines.push(indent(describeAttempt(timing, index)));
    if (timing.message !== undefined) lines.push(indent(timing.message, '        '));
  });
  return lines;
}

/** A failed check: its line and its messages (which end with its attempts' timings). */
export function failureLines(result: CheckResult): string[] {
  return [`✗ ${whereOf(result.module, result.name)}`, ...result.messages.map((message) => indent(message))];
}

/** What the command prints about the checks before its counts: not-applicable, flaky, then failed checks. */
export function reportLines(results: readonly CheckResult[]): string[] {
  return [
    ...results.filter((result) => result.state === 'skipped').map(notApplicableLine),
    ...results.filter((result) => result.flaky).flatMap(flakyLines),
    ...results.filter((result) => result.state === 'failed').flatMap(failureLines),
  ];
}
