/**
 * Holds N idle keep-alive HTTP connections open against a server (one GET /health on each,
 * so each is a real HTTP connection the server tracks), for the 10,000-connection
 * benchmark. Prints `held <n>` once all are open; closes them on SIGTERM.
 */
import { connect, type Socket } from 'node:net';

const [host, portText, countText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const sockets: Socket[] = [];
const BATCH = 500;

function open(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: host!, port }, () => {
      socket.write(`GET /health HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`);
    });
    socket.setKeepAlive(true);
    let answered = false;
    socket.on('data', () => {
      if (!answered) {
        answered = true;
        resolve(true);
      }
    });
    socket.on('error', () => resolve(false));
    socket.on('close', () => {
      if (!answered) resolve(false);
    });
    sockets.push(socket);
  });
}

let held = 0;
for (let i = 0; i < count; i += BATCH) {
  const results = await Promise.all(Array.from({ length: Math.min(BATCH, count - i) }, open));
  held += results.filter(Boolean).length;
}
process.stdout.write(`held ${held}\n`);
process.on('SIGTERM', () => {
  for (const socket of sockets) socket.destroy();
  process.exit(0);
});
setInterval(() => undefined, 60_000);
