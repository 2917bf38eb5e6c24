/**
 * YAML files validated by a zod schema, with errors that name the file, the line and the
 * key: `scenarios/x.yaml:12: steps[2].swap.plugin: expected string`.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, type Document } from 'yaml';
import type { z } from 'zod';
import { CraftError, type ErrorCode } from '../errors.js';

export interface FileProblem {
  file: string;
  line: number;
  column: number;
  path: string;
  message: string;
}

export const formatProblem = (p: FileProblem): string => `${p.file}:${p.line}:${p.column}: ${p.path === '' ? '' : `${p.path}: `}${p.message}`;

/** Renders a zod path as `a.b[2].c`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, key) => (typeof key === 'number' ? `${text}[${key}]` : text === '' ? String(key) : `${text}.${String(key)}`), '');
}

/** The line and column of the deepest node along `path` that exists in the document. */
function locate(doc: Document, lineCounter: LineCounter, path: readonly PropertyKey[]): { line: number; column: number } {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth) as (string | number)[], true);
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    if (range !== undefined) {
      const { line, col } = lineCounter.linePos(range[0]);
      return { line, column: col };
    }
    // For a map key whose value is missing, point at the key.
    if (depth > 0) {
      const parent = depth === 1 ? doc.contents : doc.getIn(path.slice(0, depth - 1) as (string | number)[], true);
      if (isMap(parent)) {
        const pair = parent.items.find((item) => (item.key as { value?: unknown } | null)?.value === path[depth - 1]);
        const keyRange = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
        if (keyRange !== undefined) {
          const { line, col } = lineCounter.linePos(keyRange[0]);
          return { line, column: col };
        }
      }
    }
  }
  return { line: 1, column: 1 };
}

type Issue = z.core.$ZodIssue;

/**
 * A union (e.g. a scenario step: load | wait | swap …) reports "invalid input" at its root.
 * The useful message is inside the branch the input meant: the one whose issues reach
 * deepest into the input, ignoring branches that merely found an unexpected key at the top.
 */
function expandUnions(issue: Issue): Issue[] {
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [issue];
  const depth = (issues: Issue[]): number =>
    issues.some((i) => i.code === 'unrecognized_keys' && i.path.length === 0) ? -1 : Math.max(...issues.map((i) => i.path.length));
  const best = [...issue.errors].sort((a, b) => depth(b) - depth(a))[0]!;
  if (depth(best) < 0) return [issue];
  return best.flatMap((inner) => expandUnions({ ...inner, path: [...issue.path, ...inner.path] } as Issue));
}

/** Parses YAML text and validates it; throws a coded error listing every problem with its line. */
export function parseYaml<S extends z.ZodType>(text: string, file: string, schema: S, code: ErrorCode): z.output<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems: FileProblem[] = [];
  for (const error of doc.errors) {
    const position = lineCounter.linePos(error.pos[0]);
    problems.push({ file, line: position.line, column: position.col, path: '', message: error.message.split('\n')[0]! });
  }
  if (problems.length === 0) {
    const result = schema.safeParse(doc.toJS() ?? {});
    if (result.success) return result.data as z.output<S>;
    for (const issue of result.error.issues.flatMap(expandUnions)) {
      // An unknown key is reported at the key itself, not at the map that holds it.
      const path = issue.code === 'unrecognized_keys' && issue.keys.length > 0 ? [...issue.path, issue.keys[0]!] : issue.path;
      const { line, column } = locate(doc, lineCounter, path);
      problems.push({ file, line, column, path: formatPath(path), message: issue.message });
    }
  }
  throw new CraftError(code, problems.map(formatProblem).join('\n'), { details: { problems } });
}

export function loadYamlFile<S extends z.ZodType>(file: string, schema: S, code: ErrorCode): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CraftError(code, `${file}: cannot read: ${(error as Error).message}`, { cause: error });
  }
  return parseYaml(text, file, schema, code);
}
