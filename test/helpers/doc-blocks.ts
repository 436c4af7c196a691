import assert from 'node:assert/strict';

/** A fenced block of a guide, with the `<!-- doc-check: KIND flags… -->` line above it that says how a test checks it. */
export interface DocBlock {
  line: number;
  kind: string;
  flags: string[];
  lang: string;
  text: string;
}

/**
 * Every fenced block of `markdown` (named `doc` in messages). A block without its
 * doc-check line fails the test, and so does a kind outside `kinds` when it is given: a
 * guide cannot gain a block nobody checks.
 */
export function docBlocks(markdown: string, doc: string, kinds?: readonly string[]): DocBlock[] {
  const lines = markdown.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!fence) continue;
    const marker = /^<!-- doc-check: ([a-z-]+)((?: [a-z-]+)*) -->$/.exec(lines[i - 1] ?? '');
    assert.ok(marker, `${doc}:${i + 1}: a block without a <!-- doc-check: … --> line above it; say how a test checks it`);
    if (kinds) assert.ok(kinds.includes(marker[1]!), `${doc}:${i}: unknown doc-check kind "${marker[1]}"`);
    const end = lines.findIndex((l, j) => j > i && l === '```');
    assert.ok(end > i, `${doc}:${i + 1}: the block is never closed`);
    blocks.push({ line: i + 1, kind: marker[1]!, flags: marker[2]!.trim().split(' ').filter(Boolean), lang: fence[1]!, text: lines.slice(i + 1, end).join('\n') });
    i = end;
  }
  return blocks;
}

/** A shell block's commands: `\` continuations joined, comments dropped, each line split at ` && `. */
export function shellCommands(block: DocBlock, doc: string): { line: number; words: string[] }[] {
  const out: { line: number; words: string[] }[] = [];
  const lines = block.text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let command = lines[i]!;
    while (command.endsWith('\\')) command = `${command.slice(0, -1)} ${lines[++i] ?? ''}`;
    if (command.trim() === '' || command.trim().startsWith('#')) continue;
    const parts = command.split(' && ');
    for (const part of parts) {
      assert.doesNotMatch(part, /[|;<>`$'"&]/, `${doc}:${block.line + 1 + start}: pipes, redirections, quotes, variables and background jobs are not checked here; keep commands plain`);
      out.push({ line: block.line + 1 + start, words: part.trim().split(/\s+/) });
    }
  }
  return out;
}

/** Every value the fragment sets is in the loaded config at the same place (which adds defaults around them). */
export function assertApplied(actual: unknown, expected: unknown, at: string, path = ''): void {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual) && actual.length === expected.length, `${at}: ${path} is not the fragment's (${JSON.stringify(actual)})`);
    expected.forEach((e, i) => assertApplied(actual[i], e, at, `${path}[${i}]`));
  } else if (expected !== null && typeof expected === 'object') {
    assert.ok(actual !== null && typeof actual === 'object', `${at}: ${path} is missing from the loaded config`);
    for (const [key, value] of Object.entries(expected)) assertApplied((actual as Record<string, unknown>)[key], value, at, path === '' ? key : `${path}.${key}`);
  } else {
    assert.equal(actual, expected, `${at}: ${path}`);
  }
}
