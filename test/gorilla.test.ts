/**
 * The Gorilla chunk codec: bit-exact round trips for every float64 bit pattern and every
 * non-decreasing timestamp sequence; the bytes equal those of a reference encoder written
 * straight from the layout in gorilla.ts (BigInt and bit strings, slow and obvious); resume
 * continues a chunk byte for byte; range decoding and the iterator agree with full decoding;
 * and compression on the realistic scrape dataset of scripts/bench-gorilla.ts is in its band.
 *
 * Values are carried as their 64 bits (bigint) and turned into a number only at the call to
 * append: V8 sets the quiet bit of a signalling NaN (such as Prometheus's staleness marker
 * 0x7ff0000000000002) that is stored in a plain Array, so an Array of numbers would hide a
 * codec that loses payloads. Typed arrays, DataView, object fields and arguments keep them.
 */
import t from 'tap';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  CHUNK_SAMPLES_MAX,
  CHUNK_TIMESTAMP_MS_MAX,
  ChunkAppender,
  ChunkCorruptError,
  ChunkFullError,
  ChunkOrderError,
  ChunkTimestampError,
  chunkIterator,
  chunkSampleCount,
  decodeChunk,
  decodeChunkInto,
  decodeChunkRange,
} from '../plugins/storage/shared/gorilla.js';
import { CHUNK_SAMPLES, datasetSeries, encodeSeries, scrapeSeries, sizeReport, type SeriesKind } from '../scripts/bench-gorilla.js';

/** A sample with its value as the 64 bits of the float64. */
interface Sample {
  timestampMs: number;
  bits: bigint;
}
function sample(timestampMs: number, value: number): Sample {
  return { timestampMs, bits: bitsOf(value) };
}

// ---------------------------------------------------------------------------------------------
// Bits of a float64 through DataView, which is how the tests compare values: `===` would call
// NaN unequal to itself and −0 equal to 0.

const view = new DataView(new ArrayBuffer(8));
function bitsOf(value: number): bigint {
  view.setFloat64(0, value);
  return view.getBigUint64(0);
}
function floatOf(bits: bigint): number {
  view.setBigUint64(0, BigInt.asUintN(64, bits));
  return view.getFloat64(0);
}
const hex = (bits: bigint): string => `0x${bits.toString(16).padStart(16, '0')}`;

/** Index of the first difference between samples and decoded arrays (bit-exact), or -1. */
function firstDifference(samples: readonly Sample[], timestampsMs: Float64Array, values: Float64Array): number {
  if (timestampsMs.length !== samples.length || values.length !== samples.length) return Math.min(samples.length, timestampsMs.length, values.length);
  return samples.findIndex((expected, index) => timestampsMs[index] !== expected.timestampMs || bitsOf(values[index]!) !== expected.bits);
}

/** Throws (so fast-check shrinks) unless `bytes` decodes to exactly `samples`. */
function assertDecodesTo(bytes: Uint8Array, samples: readonly Sample[]): void {
  const { timestampsMs, values } = decodeChunk(bytes);
  const at = firstDifference(samples, timestampsMs, values);
  if (at >= 0) {
    const wrote = samples[at];
    throw new Error(`sample ${at} of ${samples.length}: wrote ${wrote?.timestampMs} ${wrote === undefined ? '-' : hex(wrote.bits)}, read ${timestampsMs[at]} ${at < values.length ? hex(bitsOf(values[at]!)) : '-'}`);
  }
}

function encode(samples: readonly Sample[]): ChunkAppender {
  const appender = new ChunkAppender();
  for (const { timestampMs, bits } of samples) appender.append(timestampMs, floatOf(bits));
  return appender;
}

// ---------------------------------------------------------------------------------------------
// The reference encoder: the layout of gorilla.ts's header comment, as bit strings.

function referenceEncode(samples: readonly Sample[]): Uint8Array {
  let out = '';
  const put = (value: bigint, bitCount: number): void => {
    out += BigInt.asUintN(bitCount, value).toString(2).padStart(bitCount, '0');
  };
  const putUvarint = (value: bigint): void => {
    let rest = value;
    while (rest >= 0x80n) {
      put((rest & 0x7fn) | 0x80n, 8);
      rest >>= 7n;
    }
    put(rest, 8);
  };
  put(BigInt(samples.length), 16);
  let previousT = 0n;
  let previousDelta = 0n;
  let previousBits = 0n;
  let window: { leading: number; trailing: number } | undefined;
  samples.forEach(({ timestampMs, bits }, index) => {
    const time = BigInt(timestampMs);
    if (index === 0) {
      putUvarint(time * 2n); // zig-zag of a non-negative number
      put(bits, 64);
    } else {
      const delta = time - previousT;
      if (index === 1) {
        putUvarint(delta);
      } else {
        const dod = delta - previousDelta;
        const fits = (bitCount: number): boolean => dod >= -(2n ** BigInt(bitCount - 1) - 1n) && dod <= 2n ** BigInt(bitCount - 1);
        if (dod === 0n) out += '0';
        else if (fits(14)) (out += '10'), put(dod, 14);
        else if (fits(17)) (out += '110'), put(dod, 17);
        else if (fits(20)) (out += '1110'), put(dod, 20);
        else (out += '1111'), put(dod, 64);
      }
      previousDelta = delta;
      const xor = bits ^ previousBits;
      if (xor === 0n) {
        out += '0';
      } else {
        const binary = xor.toString(2).padStart(64, '0');
        const leading = binary.indexOf('1');
        const trailing = 63 - binary.lastIndexOf('1');
        if (window !== undefined && leading >= window.leading && trailing >= window.trailing) {
          out += '10' + binary.slice(window.leading, 64 - window.trailing);
        } else {
          window = { leading: Math.min(leading, 31), trailing };
          const significant = 64 - window.leading - window.trailing;
          out += '11';
          put(BigInt(window.leading), 5);
          put(BigInt(significant % 64), 6);
          out += binary.slice(window.leading, 64 - window.trailing);
        }
      }
    }
    previousT = time;
    previousBits = bits;
  });
  out = out.padEnd(Math.ceil(out.length / 8) * 8, '0');
  return Uint8Array.from({ length: out.length / 8 }, (_, index) => parseInt(out.slice(index * 8, index * 8 + 8), 2));
}

/** A chunk as a string of '0' and '1', for reading fields in example tests. */
const bitString = (bytes: Uint8Array): string => [...bytes].map((byte) => byte.toString(2).padStart(8, '0')).join('');

// ---------------------------------------------------------------------------------------------
// Arbitraries.

const STALENESS_MARKER = 0x7ff0000000000002n;
const SPECIAL_BITS = [
  0x7ff8000000000000n, // the NaN arithmetic makes
  STALENESS_MARKER, // a signalling NaN
  0xfff8000000000001n, // negative quiet NaN with a payload
  0x7fffffffffffffffn, // all-ones NaN
  0x8000000000000000n, // −0
  0x0000000000000000n, // +0
  0x7ff0000000000000n, // +∞
  0xfff0000000000000n, // −∞
  0x0000000000000001n, // smallest subnormal
  0x8000000000000001n, // its negative
  0x000fffffffffffffn, // largest subnormal
  0x7fefffffffffffffn, // largest finite
  0x3ff0000000000000n, // 1
];
const uint32 = fc.integer({ min: 0, max: 0xffffffff });
const anyBits = fc.oneof(
  fc.double().map(bitsOf),
  fc.tuple(uint32, uint32).map(([high, low]) => (BigInt(high) << 32n) | BigInt(low)),
  fc.constantFrom(...SPECIAL_BITS),
);

/**
 * A value sequence whose neighbours are often related, as in real series, so that every value
 * case is hit: '0' (same), '10' (fits the window: a few bits flipped inside it) and '11'.
 */
type ValueStep = { kind: 'any'; bits: bigint } | { kind: 'same' } | { kind: 'flip'; shift: number; mask: number };
const valueStep: fc.Arbitrary<ValueStep> = fc.oneof(
  { arbitrary: anyBits.map((bits) => ({ kind: 'any' as const, bits })), weight: 3 },
  { arbitrary: fc.constant({ kind: 'same' as const }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('flip' as const), shift: fc.integer({ min: 0, max: 63 }), mask: fc.integer({ min: 1, max: 0xffff }) }), weight: 3 },
);

/** Delta-of-delta values at and around every bucket boundary (see the layout). */
const BOUNDARY_DODS = [1, -1, 8_192, 8_193, -8_191, -8_192, 65_536, 65_537, -65_535, -65_536, 524_288, 524_289, -524_287, -524_288, 2 ** 32, -(2 ** 32), 2 ** 40 + 3];

type TimeStep = { kind: 'delta'; deltaMs: number } | { kind: 'dod'; dodMs: number };
const timeStep: fc.Arbitrary<TimeStep> = fc.oneof(
  fc.record({ kind: fc.constant('delta' as const), deltaMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 14_990, max: 15_010 }), fc.maxSafeNat()) }),
  fc.record({ kind: fc.constant('dod' as const), dodMs: fc.oneof(fc.constant(0), fc.constantFrom(...BOUNDARY_DODS), fc.integer({ min: -600_000, max: 600_000 })) }),
);

/** Non-decreasing integer timestamps in 0 … 2⁵³ − 1: deltas and deltas of deltas, clamped. */
function timestamps(first: number, steps: readonly TimeStep[]): number[] {
  const out = [first];
  let deltaMs = 0;
  for (const step of steps) {
    const last = out[out.length - 1]!;
    const wanted = step.kind === 'delta' ? step.deltaMs : Math.max(0, deltaMs + step.dodMs);
    deltaMs = Math.min(wanted, CHUNK_TIMESTAMP_MS_MAX - last);
    out.push(last + deltaMs);
  }
  return out;
}

function valueBits(steps: readonly ValueStep[]): bigint[] {
  const out: bigint[] = [];
  let bits = 0n;
  for (const step of steps) {
    if (step.kind === 'any') bits = step.bits;
    else if (step.kind === 'flip') bits = BigInt.asUintN(64, bits ^ (BigInt(step.mask) << BigInt(step.shift)));
    out.push(bits);
  }
  return out;
}

const firstTimestamp = fc.oneof(fc.maxSafeNat(), fc.constantFrom(0, CHUNK_TIMESTAMP_MS_MAX, 1_700_000_000_000));
const sampleSequence: fc.Arbitrary<Sample[]> = fc
  .tuple(firstTimestamp, valueStep, fc.array(fc.tuple(timeStep, valueStep), { maxLength: 150 }))
  .map(([first, firstValue, steps]) => {
    const times = timestamps(first, steps.map(([time]) => time));
    const bits = valueBits([firstValue, ...steps.map(([, value]) => value)]);
    return times.map((timestampMs, index): Sample => ({ timestampMs, bits: bits[index]! }));
  });

// ---------------------------------------------------------------------------------------------
// Properties.

t.test('property: encode → decode is bit-exact for any float64 bits and any non-decreasing timestamps', async (t) => {
  fc.assert(
    fc.property(sampleSequence, (samples) => assertDecodesTo(encode(samples).bytes(), samples)),
    { numRuns: 1_000 },
  );
  t.pass();
});

t.test('property: the bytes are those of the reference encoder of the documented layout', async (t) => {
  fc.assert(
    fc.property(sampleSequence, (samples) => {
      assert.equal(Buffer.from(encode(samples).bytes()).toString('hex'), Buffer.from(referenceEncode(samples)).toString('hex'));
    }),
    { numRuns: 500 },
  );
  t.pass();
});

t.test('property: resume(bytes of a prefix) then the rest gives the bytes of appending everything at once', async (t) => {
  fc.assert(
    fc.property(sampleSequence, fc.nat(), fc.nat(), (samples, cutA, cutB) => {
      const whole = encode(samples);
      const [first, second] = [cutA % (samples.length + 1), cutB % (samples.length + 1)].sort((a, b) => a - b) as [number, number];
      // Two checkpoints: resume, append, checkpoint again, resume again, append the rest.
      let appender = ChunkAppender.resume(encode(samples.slice(0, first)).bytes());
      for (const { timestampMs, bits } of samples.slice(first, second)) appender.append(timestampMs, floatOf(bits));
      appender = ChunkAppender.resume(appender.bytes());
      assert.equal(appender.count, second);
      for (const { timestampMs, bits } of samples.slice(second)) appender.append(timestampMs, floatOf(bits));
      assert.equal(Buffer.from(appender.bytes()).toString('hex'), Buffer.from(whole.bytes()).toString('hex'));
      assert.equal(appender.byteLength, whole.byteLength);
      assert.equal(appender.count, whole.count);
      assert.equal(appender.firstTimestampMs, whole.firstTimestampMs);
      assert.equal(appender.lastTimestampMs, whole.lastTimestampMs);
      assert.equal(appender.lastValue === undefined ? undefined : bitsOf(appender.lastValue), whole.lastValue === undefined ? undefined : bitsOf(whole.lastValue));
    }),
    { numRuns: 300 },
  );
  t.pass();
});

t.test('property: range decode equals filtering the full decode; the iterator and seek agree with it', async (t) => {
  const iterator = chunkIterator(new ChunkAppender().bytes());
  fc.assert(
    fc.property(sampleSequence, fc.maxSafeNat(), fc.maxSafeNat(), fc.nat({ max: 5 }), (samples, boundA, boundB, offset) => {
      const bytes = encode(samples).bytes();
      // Bounds drawn from the samples' own timestamps half of the time, so ranges cut the chunk.
      const pick = (bound: number): number => (bound % 2 === 0 ? samples[bound % samples.length]!.timestampMs : bound);
      const [minMs, maxMs] = [pick(boundA), pick(boundB)].sort((a, b) => a - b) as [number, number];
      const expected = samples.filter(({ timestampMs }) => timestampMs >= minMs && timestampMs <= maxMs);
      const timestampsMs = new Float64Array(offset + chunkSampleCount(bytes));
      const values = new Float64Array(offset + chunkSampleCount(bytes));
      const written = decodeChunkRange(bytes, minMs, maxMs, timestampsMs, values, offset);
      assert.equal(written, expected.length);
      assert.equal(firstDifference(expected, timestampsMs.subarray(offset, offset + written), values.subarray(offset, offset + written)), -1);

      iterator.reset(bytes);
      assert.equal(iterator.count, samples.length);
      const iterated: Sample[] = [];
      while (iterator.next()) iterated.push({ timestampMs: iterator.timestampMs, bits: bitsOf(iterator.value) });
      assert.equal(iterator.next(), false);
      assert.deepEqual(iterated, samples);

      iterator.reset(bytes);
      const firstAtOrAfter = samples.findIndex(({ timestampMs }) => timestampMs >= minMs);
      assert.equal(iterator.seek(minMs), firstAtOrAfter >= 0);
      if (firstAtOrAfter >= 0) {
        assert.equal(iterator.timestampMs, samples[firstAtOrAfter]!.timestampMs);
        assert.equal(iterator.seek(minMs), true, 'seek stays on a sample already at or after the bound');
        assert.equal(iterator.timestampMs, samples[firstAtOrAfter]!.timestampMs);
        if (iterator.next()) assert.equal(iterator.timestampMs, samples[firstAtOrAfter + 1]!.timestampMs);
      }
    }),
    { numRuns: 300 },
  );
  t.pass();
});

// ---------------------------------------------------------------------------------------------
// Examples.

t.test('a known chunk has exactly the bytes the layout gives', async (t) => {
  const appender = encode([sample(1_000, 0), sample(1_015, 42), sample(1_030, 40)]);
  // 00 03                    count 3
  // d0 0f                    t₀ = 1000 → zig-zag 2000 = 0b0001111_1010000 → 0x50|0x80, 0x0f
  // 00 00 00 00 00 00 00 00  v₀ = 0.0
  // 0f                       Δ₁ = 15
  // then bits: v₁ = 42 = 0x4045000000000000; its XOR with 0 has 1 leading and 48 trailing
  //   zeros, so a new window: '11' · 00001 · 001111 (15 significant bits) · 100000001000101
  // t₂: Δ₂ = 15 = Δ₁, D = 0 → '0'
  // v₂ = 40 = 0x4044000000000000, XOR 0x0001000000000000 (15 leading, 48 trailing zeros) fits
  //   the window (1, 48) → '10' · 000000000000001
  // 1100001001111100000001000101 · 0 · 10000000000000001 · 2 zero bits of padding
  // = 11000010 01111100 00000100 01010100 00000000 00000100 = c2 7c 04 54 00 04
  t.equal(Buffer.from(appender.bytes()).toString('hex'), '0003d00f00000000000000000fc27c04540004');
  t.equal(appender.byteLength, 19);
  t.equal(appender.count, 3);
  t.equal(appender.firstTimestampMs, 1_000);
  t.equal(appender.lastTimestampMs, 1_030);
  t.equal(appender.lastValue, 40);
});

t.test('docs/storage/chunks.md shows the bytes the encoder writes for its worked example', async (t) => {
  const doc = readFileSync(fileURLToPath(new URL('../../docs/storage/chunks.md', import.meta.url)), 'utf8');
  const example = encode([sample(1_000, 0), sample(1_015, 42), sample(1_030, 40), sample(1_046, 42)]).bytes();
  t.equal(example.length, 23);
  t.ok(doc.includes(`\n${Buffer.from(example).toString('hex')}\n`), 'the example chunk, in hex, on a line of its own');
  t.ok(doc.includes(`\`${Buffer.from(example.subarray(13)).toString('hex').replace(/(..)(?!$)/g, '$1 ')}\``), 'its bits after Δ₁, byte by byte');
});

t.test('each delta of delta lands in the bucket the layout gives for it', async (t) => {
  // t₀ = 0 (varint 00), v = 0 throughout, Δ₁ = 1 000 000 (a uvarint of 3 bytes, and room for
  // negative D): sample 2's time field starts at bit 16 + 8 + 64 + 24 + 1 ('0' for v₁) = 113.
  const cases: [dod: number, prefix: string, fieldBits: number][] = [
    [0, '0', 0],
    [1, '10', 14],
    [8_192, '10', 14],
    [-8_191, '10', 14],
    [8_193, '110', 17],
    [-8_192, '110', 17],
    [65_536, '110', 17],
    [-65_535, '110', 17],
    [65_537, '1110', 20],
    [-65_536, '1110', 20],
    [524_288, '1110', 20],
    [-524_287, '1110', 20],
    [524_289, '1111', 64],
    [-524_288, '1111', 64],
    [-1_000_000, '1111', 64],
    [CHUNK_TIMESTAMP_MS_MAX - 2_000_000, '1111', 64],
  ];
  for (const [dod, prefix, fieldBits] of cases) {
    const samples = [sample(0, 0), sample(1_000_000, 0), sample(2_000_000 + dod, 0)];
    const bytes = encode(samples).bytes();
    const bits = bitString(bytes);
    t.equal(bits.slice(113, 113 + prefix.length), prefix, `D = ${dod} takes the '${prefix}' bucket`);
    if (fieldBits > 0) {
      // The reader's rule: an n-bit field above 2ⁿ⁻¹ is negative.
      const field = BigInt(`0b${bits.slice(113 + prefix.length, 113 + prefix.length + fieldBits)}`);
      const half = 2n ** BigInt(fieldBits - 1);
      t.equal(field > half ? field - 2n * half : field, BigInt(dod), `D = ${dod} in ${fieldBits} bits`);
    }
    assertDecodesTo(bytes, samples);
  }
});

t.test('special values survive bit for bit, in every position of a chunk', async (t) => {
  const samples = [...SPECIAL_BITS, ...[...SPECIAL_BITS].reverse()].map((bits, index): Sample => ({ timestampMs: index * 15_000, bits }));
  assertDecodesTo(encode(samples).bytes(), samples);
  const { values } = decodeChunk(encode(samples).bytes());
  t.equal(hex(bitsOf(values[1]!)), hex(STALENESS_MARKER), 'the staleness marker keeps its signalling bit');
  t.equal(hex(bitsOf(encode([{ timestampMs: 0, bits: STALENESS_MARKER }]).lastValue!)), hex(STALENESS_MARKER), 'lastValue keeps it too');
});

t.test('append rejects what a chunk cannot hold and leaves the chunk unchanged', async (t) => {
  const appender = encode([sample(10_000, 1), sample(10_000, 2)]);
  const before = appender.bytes();
  t.throws(() => appender.append(9_999, 3), ChunkOrderError);
  t.throws(() => appender.append(9_999, 3), /9999 ms is before the chunk's last timestamp 10000 ms/);
  for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, CHUNK_TIMESTAMP_MS_MAX + 1]) t.throws(() => appender.append(bad, 3), ChunkTimestampError, `timestamp ${bad}`);
  t.same([...appender.bytes()], [...before]);
  t.equal(appender.count, 2);
  appender.append(10_000, 3); // equal timestamps are allowed
  t.equal(appender.count, 3);

  const full = new ChunkAppender();
  for (let index = 0; index < CHUNK_SAMPLES_MAX; index++) full.append(index, index % 7);
  const fullBytes = full.bytes();
  t.throws(() => full.append(CHUNK_SAMPLES_MAX, 0), ChunkFullError);
  t.equal(Buffer.compare(full.bytes(), fullBytes), 0);
  t.equal(chunkSampleCount(fullBytes), CHUNK_SAMPLES_MAX);
  t.equal(decodeChunk(fullBytes).values[CHUNK_SAMPLES_MAX - 1], (CHUNK_SAMPLES_MAX - 1) % 7);
  t.throws(() => ChunkAppender.resume(fullBytes).append(CHUNK_SAMPLES_MAX, 0), ChunkFullError);
});

t.test('an empty chunk: two zero bytes, decodes to nothing, resumes', async (t) => {
  const empty = new ChunkAppender();
  t.same([...empty.bytes()], [0, 0]);
  t.equal(empty.count, 0);
  t.equal(empty.byteLength, 2);
  t.equal(empty.firstTimestampMs, undefined);
  t.equal(empty.lastTimestampMs, undefined);
  t.equal(empty.lastValue, undefined);
  t.equal(decodeChunk(empty.bytes()).timestampsMs.length, 0);
  t.equal(chunkIterator(empty.bytes()).next(), false);
  const resumed = ChunkAppender.resume(empty.bytes());
  t.equal(resumed.count, 0);
  resumed.append(5, 5);
  t.same([...resumed.bytes()], [...encode([sample(5, 5)]).bytes()]);
});

t.test('bytes() is a copy: changing it or appending later does not change the other', async (t) => {
  const appender = encode([sample(1, 1)]);
  const first = appender.bytes();
  const kept = [...first];
  first.fill(0xff);
  appender.append(2, 2);
  t.same([...decodeChunk(appender.bytes()).timestampsMs], [1, 2]);
  t.same([...decodeChunk(Uint8Array.from(kept)).timestampsMs], [1], 'the copy taken earlier still holds one sample');
});

t.test('resume restores count, first and last timestamp and last value', async (t) => {
  const resumed = ChunkAppender.resume(encode([sample(100, 1.5), sample(200, -0), { timestampMs: 300, bits: STALENESS_MARKER }]).bytes());
  t.equal(resumed.count, 3);
  t.equal(resumed.firstTimestampMs, 100);
  t.equal(resumed.lastTimestampMs, 300);
  t.equal(hex(bitsOf(resumed.lastValue!)), hex(STALENESS_MARKER));
  t.throws(() => resumed.append(299, 0), ChunkOrderError);
});

t.test('decodeChunkInto writes at the offset and refuses arrays that are too short', async (t) => {
  const bytes = encode([sample(1, 10), sample(2, 20), sample(3, 30)]).bytes();
  const timestampsMs = new Float64Array(5).fill(-1);
  const values = new Float64Array(5).fill(-1);
  t.equal(decodeChunkInto(bytes, timestampsMs, values, 2), 3);
  t.same([...timestampsMs], [-1, -1, 1, 2, 3]);
  t.same([...values], [-1, -1, 10, 20, 30]);
  t.throws(() => decodeChunkInto(bytes, new Float64Array(2), new Float64Array(2)), RangeError);
  t.throws(() => decodeChunkInto(bytes, new Float64Array(3), new Float64Array(2)), RangeError);
  t.equal(decodeChunkRange(bytes, 2, 2, new Float64Array(1), new Float64Array(1)), 1, 'room for the samples in range is enough');
  t.equal(decodeChunkRange(bytes, 4, 9, new Float64Array(0), new Float64Array(0)), 0);
  t.throws(() => decodeChunkInto(bytes, timestampsMs, values, -1), RangeError, 'a negative offset would lose samples silently');
});

t.test('corrupt chunks are refused with ChunkCorruptError, not decoded into garbage', async (t) => {
  const samples = [sample(1_700_000_000_000, 0.1), sample(1_700_000_015_001, 0.2), sample(1_700_000_030_000, 0.2), sample(1_700_000_045_000, 7)];
  const bytes = encode(samples).bytes();
  for (let length = 0; length < bytes.length; length++) {
    t.throws(() => decodeChunk(bytes.subarray(0, length)), ChunkCorruptError, `cut to ${length} bytes`);
    t.throws(() => ChunkAppender.resume(bytes.subarray(0, length)), ChunkCorruptError, `resume cut to ${length} bytes`);
  }
  // The last bit of this chunk is padding: flipping it changes no sample, but resume refuses it.
  const flipped = Uint8Array.from(bytes);
  flipped[flipped.length - 1] = flipped[flipped.length - 1]! | 1;
  assertDecodesTo(flipped, samples);
  t.throws(() => ChunkAppender.resume(flipped), ChunkCorruptError);
  t.throws(() => ChunkAppender.resume(Uint8Array.from([...bytes, 1])), ChunkCorruptError);
  t.throws(() => decodeChunk(Uint8Array.of(0x00, 0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 0)), /first timestamp \(zig-zag 1\) is outside/, 'negative first timestamp');
  t.throws(() => decodeChunk(Uint8Array.of(0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 0, 0, 0, 0, 0)), /varint longer than 8 bytes/);
  t.throws(() => decodeChunk(Uint8Array.of(0x00, 0x02, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0)), /delta .* is outside/, 'a delta past 2⁵³ − 1');
  t.throws(() => decodeChunk(Uint8Array.of(0x00, 0x02, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0b11_11111_1, 0b11111_000, 0)), /exceeds 64 bits/, "'11', 31 leading zeros and 63 bits");
  // count 3, t₀ = 0, v₀ = 0, Δ₁ = 0, v₁ '0', then '10' (reuse a window) before any '11'.
  t.throws(() => decodeChunk(Uint8Array.of(0x00, 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0b0_0_10_0000, 0, 0)), /reuses a window before any was set/);
});

t.test('resume accepts one trailing zero byte (as Prometheus before 3.0 wrote) and drops it', async (t) => {
  const samples = [sample(0, 1), sample(15_000, 2), sample(30_000, 3)];
  const bytes = encode(samples).bytes();
  const padded = Uint8Array.from([...bytes, 0]);
  assertDecodesTo(padded, samples);
  t.same([...ChunkAppender.resume(padded).bytes()], [...bytes]);
});

// ---------------------------------------------------------------------------------------------
// Compression on the realistic scrape dataset (scripts/bench-gorilla.ts): a day of 15 s scrapes
// per series in chunks of 120 samples. The bands follow from the layout: timestamps with ±3 ms
// jitter cost '10' + 14 bits = 2 bytes a sample, aligned ones 1 bit; an unchanged value 1 bit;
// and each chunk spends ~18 bytes on its header and first two samples (0.15 bytes a sample).

t.test('compression of realistic scrape series is in its band, and docs/storage/chunks.md quotes it', async (t) => {
  const bands: Record<SeriesKind | 'all', [low: number, high: number]> = {
    constant: [0.25, 0.45], // 2 bits a sample + the chunk overhead
    'constant-jittered': [2.0, 2.3], // the jittered timestamps alone
    counter: [2.5, 3.6], // 2 bytes of timestamp + ~11 bits for an increment of a counter near 1e6
    gauge: [5.0, 8.5], // two decimals are not exact in binary: most mantissa bits change
    all: [2.5, 4.0],
  };
  const report = sizeReport((index) => {
    const series = datasetSeries(index);
    const chunks = encodeSeries(series.timestampsMs, series.values);
    if (index % 50 === 0) {
      // Round trip, bit for bit, for a sample of the series of every kind.
      t.equal(chunks.length, Math.ceil(series.timestampsMs.length / CHUNK_SAMPLES));
      const timestampsMs = new Float64Array(series.timestampsMs.length);
      const values = new Float64Array(series.values.length);
      let at = 0;
      for (const chunk of chunks) at += decodeChunkInto(chunk, timestampsMs, values, at);
      t.equal(Buffer.compare(Buffer.from(timestampsMs.buffer), Buffer.from(series.timestampsMs.buffer)), 0, `series ${index} (${series.kind}): timestamps`);
      t.equal(Buffer.compare(Buffer.from(values.buffer), Buffer.from(series.values.buffer)), 0, `series ${index} (${series.kind}): values, bit for bit`);
    }
    return chunks;
  });
  for (const [kind, [low, high]] of Object.entries(bands) as [SeriesKind | 'all', [number, number]][]) {
    const perSample = report.bytesPerSample[kind];
    t.ok(perSample >= low && perSample <= high, `${kind}: ${perSample.toFixed(3)} bytes/sample in [${low}, ${high}]`);
  }
  const doc = readFileSync(fileURLToPath(new URL('../../docs/storage/chunks.md', import.meta.url)), 'utf8');
  t.ok(doc.includes(report.lines.join('\n')), `the page shows what node dist/scripts/bench-gorilla.js prints:\n${report.lines.join('\n')}`);

  // Without the per-chunk overhead (one chunk for the whole day) a constant costs 2 bits a sample.
  const day = scrapeSeries('constant', 1);
  const oneChunk = new ChunkAppender();
  day.timestampsMs.forEach((timestampMs, index) => oneChunk.append(timestampMs, day.values[index]!));
  const perSample = oneChunk.byteLength / day.timestampsMs.length;
  t.ok(perSample < 0.26, `constant in one chunk: ${perSample.toFixed(3)} bytes/sample < 0.26`);
});
