/**
 * One shard's share of a streamed aggregation — `sum|avg|count|min|max|group` over an instant
 * selector or over a range function of a range selector — computed into partial aggregates.
 * Runs in a worker thread (worker.ts) or, for small shards, in the caller; either way it is the
 * same function over the same shared code the interpreter uses (instantPoints, seriesWindows).
 */
import { seriesKey, type Labels } from '../../../core/model.js';
import { instantPoints } from '../shared/evaluator.js';
import { RANGE_FUNCTIONS, seriesWindows } from '../shared/range-functions.js';
import { groupLabels } from '../shared/aggregate.js';
import { dropName, labelsKey, type Grid } from '../shared/values.js';
import { GroupPartials, type PartialTransfer } from './partial.js';

export interface ShardTask {
  op: string;
  grouping: string[];
  without: boolean;
  grid: Grid;
  /** Series of the shard: labels, and samples `[offsets[i], offsets[i + 1])` of the flat arrays. */
  labels: Labels[];
  offsets: Int32Array;
  times: Float64Array;
  values: Float64Array;
  /** Instant selector: each step's reference time. Range function: each step's window end. */
  refs: Float64Array;
  lookbackMs: number;
  /** Absent for an instant selector. */
  func?: string;
  rangeMs: number;
  /** Constant scalar arguments of the function, in order. */
  scalars: number[];
}

export function runShardTask(task: ShardTask): PartialTransfer {
  const partials = new GroupPartials(task.grid.count, task.op === 'sum' || task.op === 'avg');
  const range = task.func === undefined ? undefined : RANGE_FUNCTIONS[task.func];
  if (task.func !== undefined && range === undefined) throw new Error(`${task.func} is not a range function`);
  const scalars = task.scalars.map((value) => new Float64Array(task.grid.count).fill(value));
  task.labels.forEach((labels, i) => {
    const times = task.times.subarray(task.offsets[i]!, task.offsets[i + 1]!);
    const values = task.values.subarray(task.offsets[i]!, task.offsets[i + 1]!);
    const output = range === undefined || range.keepName === true ? labels : dropName(labels);
    const g = partials.group(groupLabels(output, task.grouping, task.without));
    const key = seriesKey(labels);
    let points = 0;
    const add = (step: number, value: number): void => {
      points += 1;
      partials.add(g, step, value, key);
    };
    if (range === undefined) instantPoints(times, values, task.refs, task.lookbackMs, add);
    else seriesWindows(times, values, task.refs, task.rangeMs, task.grid, range.fn, scalars, add);
    if (points > 0) partials.outputKeys.push(labelsKey(output));
  });
  return partials.toTransfer();
}
