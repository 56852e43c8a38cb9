// How the tool reads a README: which blocks it takes, what their markers make them, and what it
// finds wrong before any type-check.
import { describe, expect, it } from 'vitest';
import { fixedAddresses, parseBlocks } from './blocks.js';

const README = 'tools/docs/README.md';
const fence = (lang: string, code: string, indent = '') => `${indent}\`\`\`${lang}\n${code.replace(/^/gm, indent)}\n${indent}\`\`\``;

describe('parseBlocks', () => {
  it('takes ts and typescript blocks with their fence lines, and no other language', () => {
    const markdown = ['# T', '', fence('ts', 'const a = 1;'), '', fence('sh', 'npm test'), fence('typescript', 'const b = 2;')].join('\n');
    const blocks = parseBlocks(README, markdown);
    expect(blocks.map((block) => [block.line, block.code, block.kind])).toEqual([
      [3, 'const a = 1;', 'run'],
      [10, 'const b = 2;', 'run'],
    ]);
  });

  it('skips a ts fence shown inside a longer fence, and strips a list item’s indentation', () => {
    const markdown = ['````md', fence('ts', 'hidden()'), '````', '- item', '', fence('ts', 'const c = 3;\n  nested();', '  ')].join('\n');
    expect(parseBlocks(README, markdown).map((block) => block.code)).toEqual(['const c = 3;\n  nested();']);
  });

  it('reads the marker on the last non-blank line above the block', () => {
    const markdown = ['<!-- docs:typecheck-only: a type listing -->', '', fence('ts', 'type A = 1;')].join('\n');
    expect(parseBlocks(README, markdown)[0]).toMatchObject({ kind: 'typecheck-only', reason: 'a type listing', problems: [] });
  });

  it('refuses typecheck-only without a reason and an unknown docs marker', () => {
    const markdown = ['<!-- docs:typecheck-only -->', fence('ts', 'type A = 1;'), '<!-- docs:skip -->', fence('ts', 'x();')].join('\n');
    const [bare, unknown] = parseBlocks(README, markdown);
    expect(bare?.problems).toEqual(['<!-- docs:typecheck-only: <why> --> needs its reason']);
    expect(unknown?.problems[0]).toContain('unknown marker <!-- docs:skip -->');
  });

  it('compares an include with its file (relative to the README) and names the first differing line', () => {
    const file = "import { fixedAddresses, parseBlocks } from './blocks.js';";
    const same = parseBlocks(README, ['<!-- include: blocks.ts -->', fence('ts', 'nope')].join('\n'))[0];
    expect(same).toMatchObject({ kind: 'include', file: 'tools/docs/blocks.ts' });
    expect(same?.problems[0]).toMatch(
      /^the block is not tools\/docs\/blocks.ts verbatim:\n {2}block line 1: nope\n {2}file line 1: {2}\/\*\*/,
    );
    const missing = parseBlocks(README, ['<!-- include: no-such.ts -->', fence('ts', file)].join('\n'))[0];
    expect(missing?.problems[0]).toContain('no file tools/docs/no-such.ts');
  });

  it('accepts an excerpt of whole lines, less indented than in the file, and refuses changed lines', () => {
    const lines = '  const problems: string[] = [];';
    const good = parseBlocks(README, ['<!-- excerpt: blocks.ts -->', fence('ts', lines.trim())].join('\n'))[0];
    expect(good?.problems).toEqual([]);
    const bad = parseBlocks(README, ['<!-- excerpt: blocks.ts -->', fence('ts', 'const problems: number[] = [];')].join('\n'))[0];
    expect(bad?.problems).toEqual(['the block is not lines of tools/docs/blocks.ts unchanged (but for indentation)']);
  });
});

describe('fixedAddresses', () => {
  it('refuses server addresses that are not the default of a process.env read, and keys that look like host:port', () => {
    const code = [
      "new RedisBackend({ url: 'redis://127.0.0.1:6379' });",
      "const servers = '10.0.0.5:11211,10.0.0.6:11211';",
      "const nodes = process.env.REDIS_CLUSTER_NODES?.split(',') ?? ['10.0.0.1:7000', 'db.example.com:7001'];",
      "await store.get('user:42');",
    ].join('\n');
    expect(fixedAddresses(code)).toEqual([
      "line 1: 'redis://127.0.0.1:6379' is a fixed server address; read it from the tool's variable: process.env.<NAME> ?? 'redis://127.0.0.1:6379'",
      "line 2: '10.0.0.5:11211,10.0.0.6:11211' is a fixed server address; read it from the tool's variable: process.env.<NAME> ?? '10.0.0.5:11211,10.0.0.6:11211'",
    ]);
  });
});
