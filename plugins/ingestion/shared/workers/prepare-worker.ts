/**
 * The worker side of the threaded phases: runs `prepare()` (route, rate limit, parse,
 * validate, encode) off the main thread. Three ways to get work:
 *   once — one request in workerData, one answer, exit (phase 1–4: a thread per request);
 *   pool — requests as messages on the port (phase 5: bounded pool);
 *   ring — requests popped from a shared ring, answers pushed to another (phases 6–7).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { prepare, type Prepared, type PrepareDeps, type RawRequest } from '../../../../core/ingestion/protocol.js';
import { SharedRateLimiter } from '../shared-limiter.js';
import { unlimited } from '../../../../core/ingestion/rate-limit.js';
import { PARSERS, type ParserName } from './prepare-worker-parsers.js';
import { SharedRing } from '../ring.js';
import { decodeRequest, encodePrepared } from '../prepare-codec.js';

export type { ParserName } from './prepare-worker-parsers.js';

export interface WorkerSetup {
  mode: 'once' | 'pool' | 'ring';
  parser: ParserName;
  limits: PrepareDeps['limits'];
  limiterBuffer: SharedArrayBuffer | null;
  request?: RawRequest;
  nowMs?: number;
  requestRing?: SharedArrayBuffer;
  responseRing?: SharedArrayBuffer;
  /** Ring mode: Int32Array over this buffer; index 0 set to 1 asks the worker to stop. */
  stopFlag?: SharedArrayBuffer;
}

const transferables = (prepared: Prepared): ArrayBuffer[] => (prepared.kind === 'append' ? prepared.parts.map((p) => p.buffer as ArrayBuffer) : []);

const setup = workerData as WorkerSetup;
const deps = (nowMs: number): PrepareDeps => ({
  limits: setup.limits,
  limiter: setup.limiterBuffer === null ? unlimited : limiter,
  parseJson: PARSERS[setup.parser],
  nowMs,
});
const limiter = setup.limiterBuffer === null ? unlimited : new SharedRateLimiter(setup.limiterBuffer);

if (setup.mode === 'once') {
  const prepared = prepare(setup.request!, deps(setup.nowMs!));
  parentPort!.postMessage(prepared, transferables(prepared));
} else if (setup.mode === 'pool') {
  parentPort!.on('message', (task: { id: number; request: RawRequest; nowMs: number }) => {
    const prepared = prepare(task.request, deps(task.nowMs));
    parentPort!.postMessage({ id: task.id, prepared }, transferables(prepared));
  });
} else {
  const requests = new SharedRing(setup.requestRing!);
  const responses = new SharedRing(setup.responseRing!);
  const stop = new Int32Array(setup.stopFlag!);
  while (Atomics.load(stop, 0) === 0) {
    const seen = requests.signalValue();
    const bytes = requests.tryPop();
    if (bytes === undefined) {
      requests.waitForPush(seen, 100);
      continue;
    }
    const { id, request, nowMs } = decodeRequest(bytes);
    const answer = encodePrepared(id, prepare(request, deps(nowMs)));
    if (!responses.tryPush(answer)) {
      // Too large for a slot, or the answer ring is full: hand it over the port instead.
      parentPort!.postMessage({ id, overflow: answer }, [answer.buffer as ArrayBuffer]);
    }
  }
}
