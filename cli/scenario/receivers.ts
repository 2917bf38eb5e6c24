/**
 * Local notification receivers for scenarios: one HTTP server on a free loopback port that
 * stands in for each receiver's webhook, PagerDuty or Slack endpoint (`/r/<name>`), records
 * every notification it gets, and answers 2xx. The runner adds a receiver of that name to the
 * `alerting.channels` options pointing here, so a scenario can check every notification a
 * receiver got, in order.
 *
 * What a receiver records, per notification:
 *   webhook    `<kind> <status>`: kind from `Craft-Notification-Kind` (notify, escalate,
 *              acknowledge), status from the body (firing, resolved); retries of one
 *              notification (same `Idempotency-Key`) are recorded once
 *   pagerduty  the event action: trigger, acknowledge, resolve
 *   slack      the message title: `[FIRING:1] CpuHot`, …
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceiverSpec {
  name: string;
  channel: 'webhook' | 'pagerduty' | 'slack';
}

export interface Received {
  atMs: number;
  what: string;
  body: unknown;
}

/** Notifications one receiver takes at most (a scenario that loops notifications stops being recorded, not the process). */
const RECEIVED_MAX = 10_000;
const BODY_BYTES_MAX = 1024 * 1024;

export class LocalReceivers {
  private readonly received = new Map<string, Received[]>();
  private readonly seenIds = new Set<string>();

  private constructor(
    private readonly server: Server,
    readonly specs: ReceiverSpec[],
  ) {}

  static async start(specs: ReceiverSpec[]): Promise<LocalReceivers> {
    const server = createServer();
    const receivers = new LocalReceivers(server, specs);
    for (const spec of specs) receivers.received.set(spec.name, []);
    server.on('request', (request, response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      request.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= BODY_BYTES_MAX) chunks.push(chunk);
      });
      request.on('end', () => {
        const name = decodeURIComponent((request.url ?? '').replace(/^\/r\//, ''));
        const spec = specs.find((s) => s.name === name);
        const list = receivers.received.get(name);
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          response.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'body is not JSON' }));
          return;
        }
        if (spec === undefined || list === undefined) {
          response.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `no receiver ${name}` }));
          return;
        }
        const id = request.headers['idempotency-key'];
        const duplicate = typeof id === 'string' && receivers.seenIds.has(`${name}/${id}`);
        if (typeof id === 'string') receivers.seenIds.add(`${name}/${id}`);
        if (!duplicate && list.length < RECEIVED_MAX) list.push({ atMs: Date.now(), what: describe(spec, request.headers['craft-notification-kind'], body), body });
        response.writeHead(spec.channel === 'pagerduty' ? 202 : 200, { 'content-type': 'application/json' }).end(spec.channel === 'pagerduty' ? JSON.stringify({ status: 'success', message: 'Event processed' }) : '{}');
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return receivers;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** `alerting.channels` receivers pointing at these endpoints. */
  deliveryReceivers(): Record<string, unknown>[] {
    return this.specs.map((spec) => {
      const url = `${this.url}/r/${encodeURIComponent(spec.name)}`;
      if (spec.channel === 'pagerduty') return { name: spec.name, pagerduty: [{ routingKey: `scenario-${spec.name}`, url }] };
      if (spec.channel === 'slack') return { name: spec.name, slack: [{ url }] };
      return { name: spec.name, webhook: [{ url }] };
    });
  }

  /** What `name` received, in order (undefined: no such receiver). */
  of(name: string): Received[] | undefined {
    return this.received.get(name);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function describe(spec: ReceiverSpec, kindHeader: string | string[] | undefined, body: unknown): string {
  const b = (body ?? {}) as Record<string, unknown>;
  if (spec.channel === 'pagerduty') return String(b.event_action ?? '?');
  if (spec.channel === 'slack') return String(b.text ?? '?');
  return `${typeof kindHeader === 'string' ? kindHeader : 'notify'} ${String(b.status ?? '?')}`;
}
