/**
 * Queue messages. One message carries one batch in one of two forms, or a JSON array of
 * them (group commit joins encoded batches as `[b1,b2,…]` without decoding them):
 *
 *   samples  {"client","receivedAtMs","samples":[[labels,timestampMs,value],…],"types"?}
 *   seed     {"client","receivedAtMs","seed":<the request body, byte for byte>}
 *
 * The samples form is what every parser's output becomes. The seed form skips re-encoding
 * a seed-JSON body that ingestion has parsed with the exact JSON parser and validated: the
 * bytes it received go into the queue, and decoding converts them exactly as ingestion
 * validated them (same function, timestamps default to `receivedAtMs`). A batch is split
 * in halves until each part fits one NATS message; a request's batch may thus become
 * several messages, and it is answered 2xx only when all of them are acknowledged.
 */
import { isUtf8 } from 'node:buffer';
import { NATS_PAYLOAD_BYTES_MAX } from '../defaults.js';
import { decodeValue, encodeBatch, type IngestBatch } from '../model.js';
import { parseSeedBody, toBatch } from '../ingestion/seed-json.js';

const encoder = new TextEncoder();

export function encodeForQueue(batch: IngestBatch, bytesMax = NATS_PAYLOAD_BYTES_MAX, finite = false): Uint8Array[] {
  const bytes = encoder.encode(encodeBatch(batch, finite));
  if (bytes.length <= bytesMax || batch.samples.length <= 1) return [bytes];
  const middle = Math.ceil(batch.samples.length / 2);
  return [
    ...encodeForQueue({ ...batch, samples: batch.samples.slice(0, middle) }, bytesMax, finite),
    ...encodeForQueue({ ...batch, samples: batch.samples.slice(middle) }, bytesMax, finite),
  ];
}

/**
 * The seed form of a validated seed-JSON body, or `undefined` when the body cannot travel
 * as received: too large for one message, a byte-order mark (the text decoder drops it, a
 * JSON document may not start with it), or bytes that are not UTF-8 (decoding would have to
 * repair them the same way twice). The caller then encodes the samples form.
 */
export function encodeSeedForQueue(client: string, receivedAtMs: number, body: Uint8Array, bytesMax = NATS_PAYLOAD_BYTES_MAX): Uint8Array | undefined {
  if (body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) return undefined;
  const head = encoder.encode(`{"client":${JSON.stringify(client)},"receivedAtMs":${receivedAtMs},"seed":`);
  const size = head.length + body.length + 1;
  if (size > bytesMax || !isUtf8(body)) return undefined;
  // Its own buffer: a worker may transfer it.
  const out = new Uint8Array(size);
  out.set(head, 0);
  out.set(body, head.length);
  out[size - 1] = 0x7d; // }
  return out;
}

/** Nothing is refused when decoding: the body was validated under the limits when it was accepted. */
const DECODE_LIMITS = { batchMetricsMax: Number.POSITIVE_INFINITY, metricNameLengthMax: Number.POSITIVE_INFINITY };

type QueueItem = (IngestBatch & { seed?: undefined }) | { client: string; receivedAtMs: number; seed: unknown };

/** Decodes one queue message into its batches; throws on a message no ingestion path writes. */
export function decodeQueueMessage(text: string): IngestBatch[] {
  const value = JSON.parse(text) as QueueItem | QueueItem[];
  const items = Array.isArray(value) ? value : [value];
  const batches: IngestBatch[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    if (item.seed !== undefined) {
      const parsed = parseSeedBody(item.seed, DECODE_LIMITS, item.receivedAtMs);
      if (!parsed.ok) throw new TypeError(`seed batch does not validate: ${parsed.error}`);
      batches[i] = toBatch(item.client, item.receivedAtMs, parsed.samples, parsed.types);
      continue;
    }
    const batch = item as IngestBatch;
    for (const sample of batch.samples) {
      if (typeof sample[2] !== 'number') sample[2] = decodeValue(sample[2]);
    }
    batches[i] = batch;
  }
  return batches;
}
