/**
 * The machine's ceiling for the ingestion benchmark: a bare node:http server that reads
 * each request body and answers 202 — no parsing, no queue. Prints its port, then serves
 * until SIGTERM.
 */
import { createServer } from 'node:http';

const server = createServer((request, response) => {
  request.resume();
  request.on('end', () => {
    response.writeHead(202, { 'Content-Type': 'application/json', 'Content-Length': 2 });
    response.end('{}');
  });
});
server.keepAliveTimeout = 30_000;
server.listen({ host: '127.0.0.1', port: 0, backlog: 4_096 }, () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address !== null ? address.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
