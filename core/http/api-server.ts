/**
 * The JSON API servers the actors run (query on 9090, alerting on 9093): a node:http server
 * whose every request gets one answer from `handle` (a failure of `handle` becomes `onError`'s
 * answer), with bounded header and request times, listening on a given address — a port in
 * use is a clear CRAFT_CONFIG_INVALID — and closed with its connections.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { CraftError } from '../errors.js';

/** Longest a client may take to send a whole request, and its headers, ms. */
export const HTTP_REQUEST_TIMEOUT_MS = 30_000;
export const HTTP_HEADERS_TIMEOUT_MS = 10_000;

export interface ApiAnswer {
  status: number;
  body: string;
  headers?: Record<string, string> | undefined;
}

export async function listenApi(what: string, host: string, port: number, handle: (request: IncomingMessage) => Promise<ApiAnswer>, onError: (error: Error) => ApiAnswer): Promise<Server> {
  const http = createServer((request, response) => {
    void handle(request)
      .catch((error: Error) => onError(error))
      .then(({ status, body, headers }) => {
        // Answered before its body was read (refused by auth, say): discard the body and close, so no client reuses a connection with a body still in it.
        const unread = !request.complete;
        if (unread) request.resume();
        response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers, ...(unread ? { Connection: 'close' } : {}) });
        response.end(body);
      });
  });
  http.requestTimeout = HTTP_REQUEST_TIMEOUT_MS;
  http.headersTimeout = HTTP_HEADERS_TIMEOUT_MS;
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen({ host, port }, () => {
      http.off('error', reject);
      resolve();
    });
  }).catch((error: NodeJS.ErrnoException) => {
    throw new CraftError('CRAFT_CONFIG_INVALID', `${what} cannot listen on ${host}:${port}: ${error.code ?? error.message}`, { cause: error });
  });
  return http;
}

/** The port a listening server got (0 when it is not listening). */
export function portOf(http: Server | undefined): number {
  const address = http?.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

/** Closes the server and every connection it holds. */
export async function closeApi(http: Server | undefined): Promise<void> {
  if (http === undefined) return;
  http.closeAllConnections();
  await new Promise<void>((resolve) => http.close(() => resolve()));
}
