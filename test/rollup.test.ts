/**
 * Window summaries: the exact sum does not depend on the order of addition and equals the
 * plain sum where that is exact; partial sums merged give the same number as one pass;
 * windows follow their definition; reply parts merge back.
 */
import t from 'tap';
import fc from 'fast-check';
import { accumulateSamples, addExact, addExactSum, exactValue, finish, mergeLater, mergeRollupParts, rollupParts, rollupSamples, type ExactSum, type SeriesRollup } from '../core/storage/rollup.js';
import { STALE_NAN } from '../core/model.js';

const exactOf = (values: number[]): number => {
  const sum: ExactSum = { parts: [], special: 0 };
  for (const v of values) addExact(sum, v);
  return exactValue(sum);
};
const finite = fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e300, max: 1e300 });

t.test('property: the exact sum is order-independent and correct where a float sum is exact', async (t) => {
  fc.assert(
    fc.property(fc.array(finite, { maxLength: 40 }), fc.nat(), (values, seed) => {
      const shuffled = [...values].sort((a, b) => ((a * 7919 + seed) % 13) - ((b * 7919 + seed) % 13) || a - b);
      return Object.is(exactOf(values), exactOf(shuffled)) || (exactOf(values) === 0 && exactOf(shuffled) === 0);
    }),
  );
  fc.assert(fc.property(fc.array(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), { maxLength: 100 }), (ints) => exactOf(ints) === ints.reduce((a, b) => a + b, 0)));
  t.equal(exactOf([1e100, 1, -1e100]), 1, 'no cancellation error');
  t.equal(exactOf([0.1, 0.2, 0.3]), 0.6, 'correctly rounded (0.1 + 0.2 + 0.3 as a float sum is 0.6000000000000001)');
  t.ok(Number.isNaN(exactOf([1, NaN])));
  t.ok(Number.isNaN(exactOf([Infinity, -Infinity])));
  t.equal(exactOf([Infinity, 5]), Infinity);
});

t.test('property: splitting samples into pieces and merging the pieces gives the same windows', async (t) => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 500 }), { maxLength: 80 }), fc.array(finite, { minLength: 80, maxLength: 80 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 79 }), (times, values, step, cut) => {
      const ts = times.sort((a, b) => a - b);
      const vs = values.slice(0, ts.length);
      const whole = rollupSamples(ts, vs, 0, 500, step);
      const left = accumulateSamples(ts.slice(0, cut), vs.slice(0, cut), 0, 500, step);
      const right = accumulateSamples(ts.slice(cut), vs.slice(cut), 0, 500, step);
      for (const w of right) {
        const same = left.find((l) => l.startMs === w.startMs);
        if (same === undefined) left.push(w);
        else mergeLater(same, w);
      }
      return JSON.stringify(left.map(finish)) === JSON.stringify(whole);
    }),
  );
  const sum: ExactSum = { parts: [], special: 0 };
  addExactSum(sum, { parts: [1e16, 1], special: 0 });
  addExactSum(sum, { parts: [-1e16], special: 0 });
  t.equal(exactValue(sum), 1);
});

t.test('windows: aligned to the start, staleness markers left out, min/max ignore NaN unless all are', async (t) => {
  const windows = rollupSamples([0, 5, 10, 12, 19, 20], [1, NaN, 3, STALE_NAN, 5, NaN], 0, 25, 10);
  t.same(windows.map((w) => [w.startMs, w.count, w.min, w.max, w.first, w.last]), [
    [0, 2, 1, 1, 1, NaN],
    [10, 2, 3, 5, 3, 5],
    [20, 1, NaN, NaN, NaN, NaN],
  ]);
  t.ok(Number.isNaN(windows[0]!.sum), 'a NaN makes the sum NaN');
});

t.test('reply parts: split under the size limit, merged back to the same windows', async (t) => {
  const rollups: SeriesRollup[] = [0, 1, 2].map((i) => ({ labels: { __name__: 'm', i: String(i) }, windows: rollupSamples(Array.from({ length: 500 }, (_, k) => k * 10), Array.from({ length: 500 }, (_, k) => (k % 7 === 0 ? Infinity : k)), 0, 5_000, 10) }));
  const parts = rollupParts(rollups, 20_000);
  t.ok(parts.length > 3, `${parts.length} parts`);
  t.ok(parts.every((p) => JSON.stringify(p).length < 30_000), 'each part near the limit');
  t.same(mergeRollupParts(JSON.parse(JSON.stringify(parts)) as SeriesRollup[][]), rollups);
});
