#!/usr/bin/env node
/**
 * Writes the publishing metadata of every package in packages/ from one place: the repository
 * URL below. Run it after changing the URL or adding a package; CI runs it with `--check`.
 *
 *   node tools/release/package-metadata.mjs           # writes what is out of date
 *   node tools/release/package-metadata.mjs --check   # changes nothing; exits 1 when anything is out of date
 *
 * For each package that is not private it keeps:
 * - package.json: `repository` (with the package's `directory`), `homepage`, `bugs`, `license`,
 *   `@types/node` as an optional peer dependency (every package's declarations build on the
 *   core's, which use Node's globals: AbortSignal, AsyncDisposable, Symbol.asyncDispose), and the
 *   `attw` script that checks the packed types;
 * - LICENSE: a copy of the root LICENSE (npm packs it with every package);
 * - README.md: every relative link made absolute under the repository URL, because npm shows the
 *   README without the repository around it and a link like `../../docs/API.md` is dead there.
 *   Links under the previous repository URL (the one package.json had) move to the new one.
 */
import console from 'node:console';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

/** The project's public home. Change it here, then run this script. */
export const REPOSITORY_URL = 'https://github.com/latchkey-kvs/latchkey';
/** The branch that absolute README links point into. */
export const BRANCH = 'main';
/** The `@types/node` versions the declarations are checked against (the Node versions of `engines`). */
export const TYPES_NODE_RANGE = '>=20.19.0';
/** The license of every package. */
export const LICENSE = 'Apache-2.0';
/** What `npm run attw` runs in each package. */
export const ATTW_SCRIPT = 'attw --pack --profile esm-only';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The repository URL a `repository.url` field names (`git+https://…/x.git` → `https://…/x`). */
function repositoryBase(url) {
  return typeof url === 'string' ? url.replace(/^git\+/, '').replace(/\.git$/, '') : undefined;
}

/** `object` with `key` set to `value`, placed before `before` (the first of them present) when new. */
function withField(object, key, value, before) {
  if (key in object) return { ...object, [key]: value };
  const anchor = before.find((name) => name in object);
  const entries = Object.entries(object);
  const at = anchor === undefined ? entries.length : entries.findIndex(([name]) => name === anchor);
  entries.splice(at, 0, [key, value]);
  return Object.fromEntries(entries);
}

/** The package.json `manifest` of the package in `directory` (e.g. `packages/core`) with its metadata set. */
export function withMetadata(manifest, directory) {
  let next = manifest;
  next = withField(next, 'homepage', `${REPOSITORY_URL}/tree/${BRANCH}/${directory}#readme`, ['license', 'type']);
  next = withField(next, 'bugs', { url: `${REPOSITORY_URL}/issues` }, ['license', 'type']);
  next = withField(next, 'repository', { type: 'git', url: `git+${REPOSITORY_URL}.git`, directory }, ['license', 'type']);
  next = withField(next, 'license', LICENSE, ['type']);
  next = withField(next, 'scripts', { ...next.scripts, attw: ATTW_SCRIPT }, ['peerDependencies', 'dependencies']);
  const peers = { ...next.peerDependencies, '@types/node': TYPES_NODE_RANGE };
  next = withField(next, 'peerDependencies', sortedKeys(peers), ['peerDependenciesMeta', 'dependencies', 'devDependencies']);
  const meta = { ...next.peerDependenciesMeta, '@types/node': { optional: true } };
  next = withField(next, 'peerDependenciesMeta', sortedKeys(meta), ['dependencies', 'devDependencies']);
  return next;
}

function sortedKeys(object) {
  return Object.fromEntries(Object.entries(object).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The absolute form of the README link `target` of the package in `directory`, or `target`
 * itself when it is already absolute or an anchor. `image` links point at the raw file.
 * @throws {Error} when a relative link names a file that does not exist.
 */
export function absoluteLink(target, directory, previousBase, image = false) {
  if (previousBase !== undefined && previousBase !== REPOSITORY_URL && target.startsWith(previousBase)) {
    const rest = target.slice(previousBase.length);
    if (rest === '' || /^[/#?]/.test(rest)) return REPOSITORY_URL + rest;
  }
  if (/^([a-z][a-z0-9+.-]*:|#|\/\/)/i.test(target)) return target;
  const hashAt = target.indexOf('#');
  const path = hashAt < 0 ? target : target.slice(0, hashAt);
  const hash = hashAt < 0 ? '' : target.slice(hashAt);
  const inRepo = posix.normalize(posix.join(directory, decodeURI(path)));
  if (inRepo.startsWith('../')) throw new Error(`link ${target} leaves the repository`);
  const onDisk = join(root, inRepo);
  if (!existsSync(onDisk)) throw new Error(`link ${target} names ${inRepo}, which does not exist`);
  if (inRepo === 'README.md' && !image) return REPOSITORY_URL + (hash || '#readme');
  const kind = image ? 'raw' : statSync(onDisk).isDirectory() ? 'tree' : 'blob';
  return `${REPOSITORY_URL}/${kind}/${BRANCH}/${encodeURI(inRepo)}${hash}`;
}

/** `markdown` with every link outside code made absolute; `problems` collects links that cannot be. */
export function withAbsoluteLinks(markdown, directory, previousBase, problems) {
  const fix = (target, image) => {
    try {
      return absoluteLink(target, directory, previousBase, image);
    } catch (error) {
      problems.push(error.message);
      return target;
    }
  };
  let fence;
  return markdown
    .split('\n')
    .map((line) => {
      const opening = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
      if (fence !== undefined) {
        if (opening !== null && opening[1][0] === fence[0] && opening[1].length >= fence.length) fence = undefined;
        return line;
      }
      if (opening !== null) {
        fence = opening[1];
        return line;
      }
      const definition = /^(\s{0,3}\[[^\]]+\]:\s*)(\S+)(.*)$/.exec(line);
      if (definition !== null) return definition[1] + fix(definition[2], false) + definition[3];
      // A link that starts inside an inline code span is code, not a link (its text may hold code spans).
      const spans = [...line.matchAll(/(`+)[^`]+?\1/g)].map((span) => [span.index, span.index + span[0].length]);
      const inCode = (at) => spans.some(([start, end]) => at > start && at < end);
      return line.replace(/(!?)\[((?:[^\]\\]|\\.)*)\]\(([^)\s]+)((?:\s+"[^"]*")?)\)/g, (link, bang, text, target, title, at) =>
        inCode(at) ? link : `${bang}[${text}](${fix(target, bang === '!')}${title})`,
      );
    })
    .join('\n');
}

/** The packages' folders relative to the root, e.g. `packages/core`. */
function packageDirectories() {
  return readdirSync(join(root, 'packages'))
    .map((name) => `packages/${name}`)
    .filter((directory) => existsSync(join(root, directory, 'package.json')))
    .sort();
}

function main(argv) {
  const check = argv.includes('--check');
  const unknown = argv.filter((arg) => arg !== '--check');
  if (unknown.length > 0) {
    console.error(`package-metadata: unknown argument ${unknown.join(' ')}\nUsage: node tools/release/package-metadata.mjs [--check]`);
    return 2;
  }
  const license = readFileSync(join(root, 'LICENSE'), 'utf8');
  const stale = [];
  const problems = [];
  const update = (file, current, wanted) => {
    if (current === wanted) return;
    stale.push(relative(root, file));
    if (!check) writeFileSync(file, wanted);
  };
  for (const directory of packageDirectories()) {
    const manifestFile = join(root, directory, 'package.json');
    const text = readFileSync(manifestFile, 'utf8');
    const manifest = JSON.parse(text);
    if (manifest.private === true) continue;
    const previousBase = repositoryBase(manifest.repository?.url);
    update(manifestFile, text, `${JSON.stringify(withMetadata(manifest, directory), null, 2)}\n`);

    const licenseFile = join(root, directory, 'LICENSE');
    update(licenseFile, existsSync(licenseFile) ? readFileSync(licenseFile, 'utf8') : undefined, license);

    const readmeFile = join(root, directory, 'README.md');
    // A package still being written may have no README yet: nothing to link then.
    if (!existsSync(readmeFile)) continue;
    const readme = readFileSync(readmeFile, 'utf8');
    const readmeProblems = [];
    update(readmeFile, readme, withAbsoluteLinks(readme, directory, previousBase, readmeProblems));
    problems.push(...readmeProblems.map((problem) => `${directory}/README.md: ${problem}`));
  }
  for (const problem of problems) console.error(`package-metadata: ${problem}`);
  if (check && stale.length > 0) {
    console.error(
      `package-metadata: out of date: ${stale.join(', ')}\nRun \`node tools/release/package-metadata.mjs\` and commit what it changes.`,
    );
    return 1;
  }
  if (!check) console.log(stale.length > 0 ? `package-metadata: wrote ${stale.join(', ')}` : 'package-metadata: up to date');
  return problems.length > 0 ? 1 : 0;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
