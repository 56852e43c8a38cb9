/**
 * Versions of the installed packages, for the notes under a suite heading.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../harness/index.js';

/** `name@version` of an installed package (from the root `node_modules`), or `name@?`. */
export function packageVersion(name: string): string {
  try {
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string };
    return `${name}@${(manifest.version ?? '?').replace(/^v/, '')}`;
  } catch {
    return `${name}@?`;
  }
}

/** `a@1, b@2, …` for the notes. */
export function versions(...names: string[]): string {
  return names.map(packageVersion).join(', ');
}
