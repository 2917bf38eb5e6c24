/**
 * An inverted index: for every label pair (name, value), the sorted list of the ids of the
 * series that have it — a postings list. A query's matchers become lists to intersect and
 * lists to subtract:
 *
 *   name="v"     intersect P(name, v)                 name=""    subtract ∪ P(name, *)
 *   name!="v"    subtract  P(name, v)                 name!=""   intersect ∪ P(name, *)
 *   name=~"re"   intersect ∪ P(name, w) for w ~ re    (when re also matches "": subtract ∪ P(name, w) for w !~ re)
 *   name!~"re"   subtract  ∪ P(name, w) for w ~ re    (when re also matches "": intersect ∪ P(name, w) for w !~ re)
 *
 * because a missing label has the value "" (Prometheus semantics). Regex matchers scan the
 * label's values, not the series. Lists are intersected smallest first, so the cost follows
 * the rarest matcher, not the size of the store. With no list to intersect the start is
 * every series.
 */
import type { LabelMatcher } from '../../../core/model.js';
import { compileRegex } from '../../../core/promql/regex.js';


export class Postings {
  private readonly lists = new Map<string, Map<string, number[]>>();
  /** Every id, ascending. */
  private all: number[] = [];

  /** Adds a series; ids must be added in ascending order (they are assigned so). */
  add(id: number, labels: Record<string, string>): void {
    if (this.all.length > 0 && id <= this.all.at(-1)!) {
      this.all = insertSorted(this.all, id);
      for (const [name, value] of Object.entries(labels)) if (value !== '') this.list(name, value, (list) => insertSorted(list, id));
      return;
    }
    this.all.push(id);
    for (const [name, value] of Object.entries(labels)) {
      if (value === '') continue;
      this.list(name, value, (list) => (list.push(id), list));
    }
  }

  remove(id: number, labels: Record<string, string>): void {
    this.all = without(this.all, id);
    for (const [name, value] of Object.entries(labels)) {
      const values = this.lists.get(name);
      const list = values?.get(value);
      if (values === undefined || list === undefined) continue;
      const rest = without(list, id);
      if (rest.length === 0) values.delete(value);
      else values.set(value, rest);
      if (values.size === 0) this.lists.delete(name);
    }
  }

  private list(name: string, value: string, update: (list: number[]) => number[]): void {
    let values = this.lists.get(name);
    if (values === undefined) this.lists.set(name, (values = new Map()));
    values.set(value, update(values.get(value) ?? []));
  }

  /** Values of a label with their postings (for cardinality statistics). */
  valuesOf(name: string): ReadonlyMap<string, number[]> {
    return this.lists.get(name) ?? new Map();
  }

  names(): IterableIterator<string> {
    return this.lists.keys();
  }

  get size(): number {
    return this.all.length;
  }

  private regex(pattern: string): RegExp {
    return compileRegex(pattern);
  }

  /** Union of the postings of the values of `name` that `accept` keeps. */
  private union(name: string, accept: (value: string) => boolean): number[] {
    const lists: number[][] = [];
    for (const [value, list] of this.lists.get(name) ?? []) if (accept(value)) lists.push(list);
    return unionAll(lists);
  }

  /** Ids of the series matching every matcher, ascending. */
  match(matchers: LabelMatcher[]): number[] {
    const intersect: number[][] = [];
    const subtract: number[][] = [];
    for (const m of matchers) {
      switch (m.op) {
        case '=':
          if (m.value === '') subtract.push(this.union(m.name, () => true));
          else intersect.push(this.lists.get(m.name)?.get(m.value) ?? []);
          break;
        case '!=':
          if (m.value === '') intersect.push(this.union(m.name, () => true));
          else subtract.push(this.lists.get(m.name)?.get(m.value) ?? []);
          break;
        case '=~': {
          const re = this.regex(m.value);
          if (re.test('')) subtract.push(this.union(m.name, (v) => !re.test(v)));
          else intersect.push(this.union(m.name, (v) => re.test(v)));
          break;
        }
        case '!~': {
          const re = this.regex(m.value);
          if (re.test('')) intersect.push(this.union(m.name, (v) => !re.test(v)));
          else subtract.push(this.union(m.name, (v) => re.test(v)));
          break;
        }
      }
    }
    let result: number[];
    if (intersect.length === 0) result = this.all;
    else {
      intersect.sort((a, b) => a.length - b.length);
      result = intersect[0]!;
      for (let i = 1; i < intersect.length && result.length > 0; i++) result = intersectSorted(result, intersect[i]!);
    }
    for (const list of subtract) {
      if (result.length === 0) break;
      if (list.length > 0) result = differenceSorted(result, list);
    }
    return result;
  }
}

export function intersectSorted(a: number[], b: number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    if (x === y) {
      out.push(x);
      i++;
      j++;
    } else if (x < y) i++;
    else j++;
  }
  return out;
}

export function differenceSorted(a: number[], b: number[]): number[] {
  const out: number[] = [];
  let j = 0;
  for (const x of a) {
    while (j < b.length && b[j]! < x) j++;
    if (j >= b.length || b[j] !== x) out.push(x);
  }
  return out;
}

/** Union of sorted lists, sorted and without repeats. */
export function unionAll(lists: number[][]): number[] {
  if (lists.length === 0) return [];
  if (lists.length === 1) return lists[0]!;
  const merged = ([] as number[]).concat(...lists).sort((a, b) => a - b);
  const out: number[] = [];
  for (const x of merged) if (out.length === 0 || out.at(-1) !== x) out.push(x);
  return out;
}

function insertSorted(list: number[], id: number): number[] {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (list[middle]! < id) low = middle + 1;
    else high = middle;
  }
  if (list[low] === id) return list;
  list.splice(low, 0, id);
  return list;
}

function without(list: number[], id: number): number[] {
  const at = list.indexOf(id);
  if (at < 0) return list;
  return [...list.slice(0, at), ...list.slice(at + 1)];
}
