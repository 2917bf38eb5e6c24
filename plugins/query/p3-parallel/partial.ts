/**
 * Partial aggregates: what one shard of series contributes to `sum`, `avg`, `count`, `min`,
 * `max` or `group` per group and step. Partials merge in any order to the very result one pass
 * over all series gives: counts add, min/max take the extreme (NaN only when all are NaN), and
 * sums are exact expansions (core/storage/rollup.ts), which add exactly.
 *
 * The flat form (`PartialTransfer`) is what a worker thread sends back: typed arrays that move
 * without copying, group labels as keys.
 */
import type { Labels } from '../../../core/model.js';
import { addExact, addExactSum, exactValue, maxOf, minOf, type ExactSum } from '../../../core/storage/rollup.js';
import { labelsKey } from '../shared/values.js';

export const STREAMED_OPS = new Set(['sum', 'avg', 'count', 'min', 'max', 'group']);

export interface PartialTransfer {
  groups: Labels[];
  steps: number;
  count: Float64Array;
  min: Float64Array;
  max: Float64Array;
  special: Float64Array;
  /** Exact-sum parts of cell g·steps + s are `parts[partsOffsets[cell] … partsOffsets[cell + 1])`. */
  partsOffsets: Int32Array;
  parts: Float64Array;
  /** Output label keys of the series that gave a point (to find two series with one labelset). */
  outputKeys: string[];
  /** Per group: the first step it has a sample at, and the smallest series key among its samples there. */
  firstStep: Int32Array;
  firstKey: string[];
}

export class GroupPartials {
  private readonly index = new Map<string, number>();
  readonly groups: Labels[] = [];
  private count: number[][] = [];
  private min: number[][] = [];
  private max: number[][] = [];
  private sums: (ExactSum | undefined)[][] = [];
  readonly outputKeys: string[] = [];
  /**
   * Where each group first appears: phase 1 lists groups in the order it meets them, step by
   * step and series by series (series in key order), and that order shows in error messages and
   * in ties; emitting groups by (first step, first series key) gives the same order from shards.
   */
  private firstStep: number[] = [];
  private firstKey: string[] = [];

  constructor(readonly steps: number, private readonly summing: boolean) {}

  group(labels: Labels): number {
    const key = labelsKey(labels);
    let g = this.index.get(key);
    if (g === undefined) {
      g = this.groups.length;
      this.index.set(key, g);
      this.groups.push(labels);
      this.count.push(new Array<number>(this.steps).fill(0));
      this.min.push(new Array<number>(this.steps).fill(NaN));
      this.max.push(new Array<number>(this.steps).fill(NaN));
      this.sums.push(new Array<ExactSum | undefined>(this.steps));
      this.firstStep.push(Number.MAX_SAFE_INTEGER);
      this.firstKey.push('');
    }
    return g;
  }

  private noteFirst(g: number, step: number, key: string): void {
    if (step < this.firstStep[g]! || (step === this.firstStep[g] && key < this.firstKey[g]!)) {
      this.firstStep[g] = step;
      this.firstKey[g] = key;
    }
  }

  /** Adds a sample of the series with key `seriesKey` to group `g` at `step`. */
  add(g: number, step: number, value: number, seriesKey: string): void {
    this.noteFirst(g, step, seriesKey);
    const count = this.count[g]!;
    count[step]! += 1;
    this.min[g]![step] = count[step] === 1 ? value : minOf(this.min[g]![step]!, value);
    this.max[g]![step] = count[step] === 1 ? value : maxOf(this.max[g]![step]!, value);
    if (this.summing) addExact((this.sums[g]![step] ??= { parts: [], special: 0 }), value);
  }

  toTransfer(): PartialTransfer {
    const cells = this.groups.length * this.steps;
    const count = new Float64Array(cells);
    const min = new Float64Array(cells);
    const max = new Float64Array(cells);
    const special = new Float64Array(cells);
    const partsOffsets = new Int32Array(cells + 1);
    const parts: number[] = [];
    for (let g = 0; g < this.groups.length; g++) {
      for (let s = 0; s < this.steps; s++) {
        const cell = g * this.steps + s;
        count[cell] = this.count[g]![s]!;
        min[cell] = this.min[g]![s]!;
        max[cell] = this.max[g]![s]!;
        const sum = this.sums[g]![s];
        special[cell] = sum?.special ?? 0;
        if (sum !== undefined) for (const part of sum.parts) parts.push(part);
        partsOffsets[cell + 1] = parts.length;
      }
    }
    return { groups: this.groups, steps: this.steps, count, min, max, special, partsOffsets, parts: Float64Array.from(parts), outputKeys: this.outputKeys, firstStep: Int32Array.from(this.firstStep), firstKey: this.firstKey };
  }

  merge(other: PartialTransfer): void {
    other.groups.forEach((labels, og) => {
      const g = this.group(labels);
      this.noteFirst(g, other.firstStep[og]!, other.firstKey[og]!);
      for (let s = 0; s < this.steps; s++) {
        const cell = og * this.steps + s;
        const n = other.count[cell]!;
        if (n === 0) continue;
        const held = this.count[g]![s]!;
        this.count[g]![s] = held + n;
        this.min[g]![s] = held === 0 ? other.min[cell]! : minOf(this.min[g]![s]!, other.min[cell]!);
        this.max[g]![s] = held === 0 ? other.max[cell]! : maxOf(this.max[g]![s]!, other.max[cell]!);
        if (this.summing) {
          const sum = (this.sums[g]![s] ??= { parts: [], special: 0 });
          const from = other.partsOffsets[cell]!;
          const to = other.partsOffsets[cell + 1]!;
          addExactSum(sum, { parts: Array.from(other.parts.subarray(from, to)), special: other.special[cell]! });
        }
      }
    });
    for (const key of other.outputKeys) this.outputKeys.push(key);
  }

  /** The aggregate's value per group and step (no point where a group had no sample). */
  emit(op: string, into: (labels: Labels, step: number, value: number) => void): void {
    const order = this.groups.map((_, g) => g).sort((a, b) => this.firstStep[a]! - this.firstStep[b]! || (this.firstKey[a]! < this.firstKey[b]! ? -1 : this.firstKey[a]! > this.firstKey[b]! ? 1 : 0));
    for (const g of order) {
      const labels = this.groups[g]!;
      for (let s = 0; s < this.steps; s++) {
        const n = this.count[g]![s]!;
        if (n === 0) continue;
        const sum = this.sums[g]![s];
        const value = op === 'count' ? n : op === 'group' ? 1 : op === 'min' ? this.min[g]![s]! : op === 'max' ? this.max[g]![s]! : op === 'sum' ? exactValue(sum!) : exactValue(sum!) / n;
        into(labels, s, value);
      }
    }
  }
}
