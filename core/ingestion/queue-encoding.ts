/**
 * Turns a batch into queue messages: JSON, split in halves until each part fits one NATS
 * message. A request's batch may thus become several messages; the request is answered 2xx
 * only when all of them are acknowledged.
 */
import { NATS_PAYLOAD_BYTES_MAX } from '../defaults.js';
import { encodeBatch, type IngestBatch } from '../model.js';

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
