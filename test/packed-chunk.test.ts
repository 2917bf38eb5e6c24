/**
 * The packed chunk (plugins/storage/shared/packed-chunk.ts) and the compact chunk summaries of
 * phase 4: bit-exact round trips for every chunk packing accepts, packing refused (Gorilla
 * kept) for what it cannot hold exactly, never larger than the Gorilla bytes, readers of
 * either format agree, and a packed head resumes into the same Gorilla appender.
 */
import t from 'tap';
import fc from 'fast-check';
import { ChunkAppender, decodeChunk } from '../plugins/storage/shared/gorilla.js';
import { decimalOf, fromDecimal, isPackedChunk, packChunk } from '../plugins/storage/shared/packed-chunk.js';
import { closedChunkBytes, decodeRange, decodeStored, resumeHead } from '../plugins/storage/shared/chunk-series.js';
import { decodeSummary, encodeSummary, summarise } from '../plugins/storage/p4-time-index/summaries.js';

const bits = new DataView(new ArrayBuffer(8));
function sameFloat(a: number, b: number): boolean {
  bits.setFloat64(0, a);
  const high = bits.getUint32(0);
  const low = bits.getUint32(4);
  bits.setFloat64(0, b);
  return high === bits.getUint32(0) && low === bits.getUint32(4);
}

function gorilla(timestampsMs: number[], values: Float64Array): Uint8Array {
  const appender = new ChunkAppender();
  for (let i = 0; i < timestampsMs.length; i++) appender.append(timestampsMs[i]!, values[i]!);
  return appender.bytes();
}

/** Strictly ascending integer timestamps ≥ 0: a start plus positive steps (jittered intervals, gaps, huge jumps). */
const timestamps = (length: fc.Arbitrary<number>) =>
  fc.tuple(fc.integer({ min: 0, max: 2 ** 45 }), length).chain(([start, n]) =>
    fc.array(fc.oneof(fc.integer({ min: 14_990, max: 15_010 }), fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 2 ** 30 })), { minLength: n - 1, maxLength: n - 1 }).map((steps) => {
      const out = [start];
      for (const step of steps) out.push(out.at(-1)! + step);
      return out;
    }),
  );

/** Decimal-looking values (what packing is for) mixed with anything a float64 can be. */
const value = fc.oneof(
  fc.integer({ min: -1_000_000, max: 1_000_000 }).map((n) => n / 100),
  fc.integer({ min: -(2 ** 50), max: 2 ** 50 }),
  fc.integer({ min: 0, max: 10 }),
  fc.double(),
  fc.constantFrom(NaN, Infinity, -Infinity, -0, 0.1, 1e-15, 123456.789, 2 ** 50, 2 ** 51, 5e-324),
);

t.test('packed chunks decode bit for bit, and packing refuses what it cannot hold', async (t) => {
  fc.assert(
    fc.property(timestamps(fc.integer({ min: 1, max: 300 })), fc.array(value, { minLength: 300, maxLength: 300 }), fc.boolean(), (times, pool, decimalsOnly) => {
      const values = Float64Array.from(times.map((_, i) => (decimalsOnly ? Math.round(pool[i]! * 100) / 100 || 0 : pool[i]!)));
      const reference = gorilla(times, values);
      const packed = packChunk(times, values, times.length, reference.length);
      if (packed === undefined) {
        // Refused: some value is no short decimal, or packing would not be smaller.
        return;
      }
      if (!isPackedChunk(packed) || packed.length >= reference.length) return false;
      const decoded = decodeStored(packed);
      if (decoded.timestampsMs.length !== times.length) return false;
      for (let i = 0; i < times.length; i++) {
        if (decoded.timestampsMs[i] !== times[i] || !sameFloat(decoded.values[i]!, values[i]!)) return false;
      }
      // A range read keeps exactly the samples inside it.
      const lo = times[Math.floor(times.length / 3)]!;
      const hi = times[Math.floor((2 * times.length) / 3)]!;
      const range = decodeRange(packed, lo, hi, 1);
      return range.timestampsMs.length === times.filter((x) => x >= lo && x <= hi).length && range.timestampsMs.every((x) => x >= lo && x <= hi);
    }),
    { numRuns: 500 },
  );
});

t.test('values packing cannot keep exactly stay Gorilla', async (t) => {
  const times = [0, 15_000, 30_000, 45_000];
  for (const odd of [NaN, Infinity, -0, 0.1 + 0.2, Math.PI, 2 ** 52]) {
    const values = Float64Array.of(1, 2, odd, 3);
    t.equal(packChunk(times, values, 4), undefined, `${odd} is refused`);
    const stored = closedChunkBytes(gorilla(times, values), 'packed');
    t.notOk(isPackedChunk(stored), 'the closed chunk keeps its Gorilla bytes');
    t.ok(sameFloat(decodeStored(stored).values[2]!, odd), 'and reads back bit for bit');
  }
  const stale = new Float64Array(1);
  new DataView(stale.buffer).setBigUint64(0, 0x7ff0000000000002n, true);
  t.equal(packChunk([0], stale, 1), undefined, 'a staleness marker is refused');
});

t.test('a scrape-like chunk packs to a fraction of its Gorilla size', async (t) => {
  const times = Array.from({ length: 120 }, (_, i) => 1_767_225_600_000 + i * 15_000 + ((i * 7) % 9) - 4);
  const gauge = Float64Array.from(times, (_, i) => Math.round(5_000 + 40 * Math.sin(i / 7)) / 100);
  const counter = Float64Array.from(times, (_, i) => 1_000_000 + i * 37 + (i % 5));
  const constant = Float64Array.from(times, () => 1);
  for (const [name, values, bound] of [['gauge', gauge, 2.5], ['counter', counter, 2], ['constant', constant, 1]] as const) {
    const g = gorilla(times, values);
    const packed = packChunk(times, values, 120, g.length);
    t.ok(packed !== undefined, `${name} packs`);
    t.ok(packed!.length / 120 <= bound, `${name}: ${(packed!.length / 120).toFixed(2)} B/sample packed vs ${(g.length / 120).toFixed(2)} Gorilla`);
  }
});

t.test('a packed head resumes into the very appender that wrote it', async (t) => {
  const times = Array.from({ length: 50 }, (_, i) => i * 10_000 + (i % 3));
  const values = Float64Array.from(times, (_, i) => i * 1.5);
  const original = gorilla(times, values);
  const stored = closedChunkBytes(original, 'packed');
  t.ok(isPackedChunk(stored), 'packed');
  const resumed = resumeHead(stored);
  t.same(resumed.bytes(), original, 'same Gorilla bytes');
  resumed.append(600_000, 7);
  t.equal(decodeChunk(resumed.bytes()).timestampsMs.length, 51, 'and it keeps appending');
});

t.test('decimalOf and fromDecimal round-trip every float64', async (t) => {
  fc.assert(
    fc.property(fc.double(), (v) => {
      const decimal = decimalOf(v);
      return decimal === undefined || sameFloat(fromDecimal(decimal.exponent, decimal.n), v);
    }),
    { numRuns: 2_000 },
  );
  t.same(decimalOf(12.34), { exponent: 2, n: 1234 });
  t.equal(decimalOf(-0), undefined);
});

t.test('compact chunk summaries round-trip, including staleness at the chunk edges', async (t) => {
  const stale = new Float64Array(1);
  new DataView(stale.buffer).setBigUint64(0, 0x7ff0000000000002n, true);
  fc.assert(
    fc.property(timestamps(fc.integer({ min: 1, max: 150 })), fc.array(fc.oneof(value, fc.constant(stale[0]!)), { minLength: 150, maxLength: 150 }), (times, pool) => {
      const values = Float64Array.from(times, (_, i) => pool[i]!);
      if (pool[0] !== undefined && times.length > 1) values[0] = stale[0]!;
      const summary = summarise({ timestampsMs: Float64Array.from(times), values });
      if (summary === undefined) return true;
      const minTimeMs = times[0]!;
      const maxTimeMs = times.at(-1)!;
      const back = decodeSummary(encodeSummary(summary, minTimeMs, maxTimeMs), minTimeMs, maxTimeMs);
      if (summary.count === 0) return back.count === 0;
      const fields = ['count', 'min', 'max', 'first', 'firstMs', 'last', 'lastMs'] as const;
      return (
        fields.every((f) => sameFloat(back[f], summary[f])) &&
        sameFloat(back.exact.special, summary.exact.special) &&
        back.exact.parts.length === summary.exact.parts.length &&
        // A part is NaN only after an overflow; V8 may canonicalise the NaN's sign in an array.
        back.exact.parts.every((p, i) => sameFloat(p, summary.exact.parts[i]!) || (Number.isNaN(p) && Number.isNaN(summary.exact.parts[i]!)))
      );
    }),
    { numRuns: 500 },
  );
});
