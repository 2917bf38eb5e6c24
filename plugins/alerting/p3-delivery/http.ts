/**
 * One HTTP POST of a JSON body to a channel, and what its answer means for delivery: 2xx sent;
 * 429 and 5xx, timeouts and network errors worth another try (a `Retry-After` is kept); any
 * other answer (400, 401, 404…) a permanent failure — retrying a refused payload sends it again
 * to be refused again (PagerDuty's 400 for a bad routing key, Slack's 404 for a revoked hook).
 */
import type { DeliveryOutcome } from '../../../core/slots/alerting.js';

/** `Retry-After` in seconds or as an HTTP date, ms from now; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1_000);
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : undefined;
}

export async function postJson(url: string, body: unknown, timeoutMs: number, headers: Record<string, string> = {}): Promise<DeliveryOutcome> {
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const cause = (error as Error & { cause?: { code?: string } }).cause?.code;
    return { ok: false, retryable: true, error: `${url}: ${(error as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (cause ?? (error as Error).message)}` };
  }
  const text = await response.text().catch(() => '');
  if (response.ok) return { ok: true };
  const retryable = response.status === 429 || response.status >= 500;
  const after = retryAfterMs(response.headers.get('retry-after'), Date.now());
  return { ok: false, retryable, ...(after === undefined ? {} : { retryAfterMs: after }), error: `${url} answered ${response.status}${text === '' ? '' : `: ${text.slice(0, 200)}`}` };
}
