/**
 * The backend examples in the core README are files of the repository: they are type-checked
 * (this package's tsconfig includes examples/backend), the Map backend runs through
 * `latchkey-conformance` (test/cli) and the distributed one through its own test, and this test
 * keeps what the README shows identical to the files.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/** The fenced ```ts blocks right after each `<!-- <kind>: <path> -->` in `markdown`. */
function markedBlocks(markdown: string, kind: 'include' | 'excerpt', path: string): string[] {
  const marker = `<!-- ${kind}: ${path} -->`;
  const blocks: string[] = [];
  for (let at = markdown.indexOf(marker); at >= 0; at = markdown.indexOf(marker, at + marker.length)) {
    const match = /^\s*```ts\n([\s\S]*?)\n```/.exec(markdown.slice(at + marker.length));
    if (match?.[1] !== undefined) blocks.push(match[1]);
  }
  return blocks;
}

const read = (path: string): string => readFileSync(join(root, path), 'utf8');

describe('the core README’s backend examples', () => {
  const readme = read('packages/core/README.md');

  it('shows examples/backend/map-backend.ts verbatim', () => {
    const blocks = markedBlocks(readme, 'include', 'examples/backend/map-backend.ts');
    expect(blocks, 'one ```ts block after <!-- include: examples/backend/map-backend.ts --> in packages/core/README.md').toHaveLength(1);
    expect(blocks[0]).toBe(read('examples/backend/map-backend.ts').trimEnd());
  });

  it('quotes examples/backend/distributed-locks.ts only in excerpts taken from it unchanged', () => {
    const file = read('examples/backend/distributed-locks.ts');
    const blocks = markedBlocks(readme, 'excerpt', 'examples/backend/distributed-locks.ts');
    expect(blocks.length).toBeGreaterThan(0);
    for (const block of blocks) expect(file.includes(block), `an excerpt that is not in the file:\n${block}`).toBe(true);
  });
});
