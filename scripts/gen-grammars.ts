/**
 * Regenerates the committed parsers from grammars/*.peggy with the pinned peggy (package.json):
 *
 *   npx tsx scripts/gen-grammars.ts
 *
 * Each parser is an ES module with its declarations beside it (`peggy --format es --dts`) under a
 * do-not-edit header. The parser is plain JavaScript inside the TypeScript tree; tsconfig's
 * `allowJs` (with `checkJs` off) copies it to dist/ on every `tsc -p .`, so `npm ci` and
 * `npm test` need no extra step. test/promql-parser.test.ts regenerates in memory and fails when
 * a grammar and its committed parser drift apart.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import peggy from 'peggy';

export interface GrammarSpec {
  /** The grammar, relative to the repository root. */
  grammar: string;
  /** The generated parser, relative to the repository root; its `.d.ts` sits beside it. */
  output: string;
  allowedStartRules: string[];
  /** TypeScript return type of `parse()` per start rule, written into the `.d.ts`. */
  returnTypes: Record<string, string>;
}

export const GRAMMARS: readonly GrammarSpec[] = [
  {
    grammar: 'grammars/promql.peggy',
    output: 'core/promql/generated/parser.js',
    allowedStartRules: ['Expression', 'DurationOnly'],
    returnTypes: { Expression: 'import("../ast.js").Expr', DurationOnly: 'number' },
  },
  {
    grammar: 'grammars/rules.peggy',
    output: 'core/rules/generated/dsl-parser.js',
    allowedStartRules: ['File'],
    returnTypes: { File: 'import("../dsl.js").DslItem[]' },
  },
];

export function generatedHeader(spec: GrammarSpec): string {
  return `// Generated from ${spec.grammar} by scripts/gen-grammars.ts: do not edit.\n`;
}

/** The repository root: the nearest ancestor of this file that holds grammars/ (from scripts/ or dist/scripts/). */
export function repositoryRoot(): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(directory, 'grammars'))) {
    const parent = dirname(directory);
    if (parent === directory) throw new Error('gen-grammars: no grammars/ directory above this script');
    directory = parent;
  }
  return directory;
}

/** The parser source as peggy's API generates it, with the header: what the committed `.js` must be. */
export function generateParserSource(spec: GrammarSpec, root = repositoryRoot()): string {
  const grammar = readFileSync(join(root, spec.grammar), 'utf8');
  const source = peggy.generate(grammar, {
    output: 'source',
    format: 'es',
    allowedStartRules: spec.allowedStartRules,
    grammarSource: spec.grammar,
  });
  return generatedHeader(spec) + source;
}

/** Runs the peggy CLI (`--format es --dts`) into a temporary directory; returns both files with the header. */
export function generateWithCli(spec: GrammarSpec, root = repositoryRoot()): { js: string; dts: string } {
  const cli = createRequire(import.meta.url).resolve('peggy/bin/peggy.js');
  const directory = mkdtempSync(join(tmpdir(), 'craft-peggy-'));
  try {
    const js = join(directory, 'parser.js');
    execFileSync(process.execPath, [
      cli, '--format', 'es', '--dts',
      '--allowed-start-rules', spec.allowedStartRules.join(','),
      '--return-types', JSON.stringify(spec.returnTypes),
      '-o', js, spec.grammar,
    ], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    return {
      js: generatedHeader(spec) + readFileSync(js, 'utf8'),
      dts: generatedHeader(spec) + readFileSync(join(directory, 'parser.d.ts'), 'utf8'),
    };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

function main(): void {
  const root = repositoryRoot();
  for (const spec of GRAMMARS) {
    const { js, dts } = generateWithCli(spec, root);
    writeFileSync(join(root, spec.output), js);
    writeFileSync(join(root, spec.output.replace(/\.js$/, '.d.ts')), dts);
    process.stdout.write(`gen-grammars: ${spec.grammar} → ${spec.output}\n`);
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main();
