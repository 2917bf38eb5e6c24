/**
 * The module boundaries docs/architecture.md draws, checked on the sources: every relative
 * import of every TypeScript file under core/, plugins/ and actors/ is resolved and must land
 * where its layer may look.
 *
 *   core/                         core/ only
 *   plugins/<craft>/<p>.plugin.ts core/, its own folder plugins/<craft>/<p>/, plugins/<craft>/shared/
 *   plugins/<craft>/<p>/…         the same
 *   plugins/<craft>/shared/…      core/ and plugins/<craft>/shared/
 *   actors/                       core/ and actors/ (never a plugin: actors reach plugins through the registry)
 *
 * Type-only imports count too: a learner reading a phase should find everything it needs in
 * core/, its own folder and its craft's shared folder.
 */
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) out.push(...sources(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Relative specifiers of `import … from`, `export … from`, `import(…)` and `new URL(…, import.meta.url)`. */
function relativeImports(text: string): string[] {
  const found: string[] = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|new URL\(\s*)['"](\.{1,2}\/[^'"]*)['"]/g;
  for (const match of text.matchAll(pattern)) found.push(match[1]!);
  return found;
}

const posix = (path: string): string => path.split(sep).join('/');

/** Paths that are not module dependencies: where the registry discovers plugins, and the CLI entry a child process runs. */
const EXCEPTIONS = new Set(['core/plugins/registry.ts → plugins/', 'core/supervision/process-child.ts → cli/main.ts']);

/** Where a file may import from: path prefixes relative to the project root. */
function allowed(file: string): string[] {
  const parts = posix(file).split('/');
  if (parts[0] === 'core') return ['core/'];
  if (parts[0] === 'actors') return ['core/', 'actors/'];
  const craft = parts[1]!;
  const shared = `plugins/${craft}/shared/`;
  if (parts[2] === 'shared') return ['core/', shared];
  const phase = parts[2]!.replace(/\.plugin\.ts$/, '');
  return ['core/', shared, `plugins/${craft}/${phase}/`, `plugins/${craft}/${phase}.plugin.ts`];
}

t.test('core, plugins and actors import only across the boundaries the architecture draws', async (t) => {
  const files = [...sources('core'), ...sources('plugins'), ...sources('actors')];
  t.ok(files.length > 100, `${files.length} source files read`);
  const violations: string[] = [];
  let imports = 0;
  for (const file of files) {
    const may = allowed(file);
    for (const specifier of relativeImports(readFileSync(join(ROOT, file), 'utf8'))) {
      imports += 1;
      const target = posix(normalize(join(dirname(file), specifier))).replace(/\.js$/, '.ts');
      const crossing = `${posix(file)} → ${target}`;
      if (!may.some((prefix) => target === prefix.replace(/\/$/, '') || target.startsWith(prefix)) && !EXCEPTIONS.has(crossing)) violations.push(crossing);
    }
  }
  t.ok(imports > 500, `${imports} relative imports checked`);
  t.same(violations, [], 'no import crosses a boundary');
});

t.test('the checker sees a crossing when there is one', async (t) => {
  t.same(relativeImports(`import { x } from '../p2-planner/plan.js';\nconst w = new URL('./workers/w.js', import.meta.url);\nexport * from './y.js';\nimport './z.js';`), ['../p2-planner/plan.js', './workers/w.js', './y.js', './z.js']);
  const may = allowed('plugins/query/p3-parallel.plugin.ts');
  t.ok(may.includes('plugins/query/p3-parallel/'));
  t.notOk(may.some((p) => 'plugins/query/p2-planner/plan.ts'.startsWith(p)), 'another phase’s folder is not allowed');
  t.notOk(allowed('core/x.ts').some((p) => 'plugins/query/shared/a.ts'.startsWith(p)), 'core may not import a plugin');
  t.equal(relative(ROOT, join(ROOT, 'core')), 'core');
});
