// node_echo.js: the reference server for bench_socket: a plain, hand-written Node.js NDJSON
// JSON-RPC 2.0 server on a unix socket, answering every request with an empty result.
// What a typical hand-written server does: split the stream on "\n", JSON.parse each line,
// JSON.stringify the response and write it at once (no corking or batching of writes).
//
// usage: node node_echo.js SOCKET_PATH
'use strict';
const fs = require('fs');
const net = require('net');

const path = process.argv[2];
if (!path) {
  process.stderr.write('usage: node node_echo.js SOCKET_PATH\n');
  process.exit(2);
}

function answer(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } });
  }
  if (req === null || typeof req !== 'object' || Array.isArray(req) || typeof req.method !== 'string') {
    return JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'invalid request' } });
  }
  if (req.id === undefined) return null; // a notification
  return JSON.stringify({ jsonrpc: '2.0', id: req.id, result: {} });
}

const server = net.createServer((sock) => {
  sock.setEncoding('utf8');
  let pending = '';
  sock.on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.trim() === '') continue;
      const out = answer(line);
      if (out !== null) sock.write(out + '\n');
    }
  });
  sock.on('error', () => sock.destroy());
});

try { fs.unlinkSync(path); } catch (e) { /* not there */ }
server.listen(path);
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
