// node_fs.js: the reference server for the fs.read benchmark (bench/run.sh section 7): a plain,
// hand-written Node.js NDJSON JSON-RPC 2.0 server on a unix socket that serves `fs.read` {path,
// offset?, length?} beneath ONE root directory, the way typical hand-written hosts guard paths:
//
//   const real = fs.realpathSync(path.join(root, guestPath));
//   if (real !== root && !real.startsWith(root + path.sep)) -> refused (-32001 EPERM)
//
// then read the file and answer in hostcall's shape:
//   {"jsonrpc":"2.0","id":..,"result":{"data":<base64>,"bytes_read":n,"eof":true|false}}
// Errors: -32001 (errno EPERM) for an escape, -32000 (errno: the OS's code) otherwise.
//
// Synchronous fs calls by default (fs.realpathSync + fs.readFileSync): on one pipelined
// connection they are the faster of the two typical styles, because the async ones
// (fs.promises.realpath + fs.promises.readFile) hop through libuv's thread pool for every
// lstat/open/fstat/read/close. `--async` selects the fs.promises style, to compare
// (see bench/README.md). The stream is split on "\n", each line JSON.parse'd, and each response
// JSON.stringify'd and written at once, like node_echo.js.
//
// usage: node node_fs.js SOCKET_PATH ROOT_DIR [--async]
'use strict';
const fs = require('fs');
const net = require('net');
const path = require('path');

const sockPath = process.argv[2];
const rootArg = process.argv[3];
const useAsync = process.argv[4] === '--async';
if (!sockPath || !rootArg || (process.argv[4] !== undefined && !useAsync)) {
  process.stderr.write('usage: node node_fs.js SOCKET_PATH ROOT_DIR [--async]\n');
  process.exit(2);
}
const root = fs.realpathSync(rootArg); // canonical, so the prefix check compares like with like

const DEFAULT_LENGTH = 65536;

function reply(id, result) {
  return JSON.stringify({ jsonrpc: '2.0', id, result });
}
function fail(id, code, message, errno) {
  const error = { code, message };
  if (errno) error.data = { errno };
  return JSON.stringify({ jsonrpc: '2.0', id, error });
}

// Checks shared by both styles; answers an error string, or null when the call may go on.
function check(req) {
  if (req === null || typeof req !== 'object' || Array.isArray(req) || typeof req.method !== 'string') {
    return fail(null, -32600, 'invalid request');
  }
  if (req.method !== 'fs.read') return fail(req.id, -32601, 'method not found');
  const p = req.params;
  if (p === null || typeof p !== 'object' || typeof p.path !== 'string' ||
      (p.offset !== undefined && !(Number.isInteger(p.offset) && p.offset >= 0)) ||
      (p.length !== undefined && !(Number.isInteger(p.length) && p.length >= 0))) {
    return fail(req.id, -32602, 'invalid params');
  }
  return null;
}

function inside(real) {
  return real === root || real.startsWith(root + path.sep);
}

function result(p, buf) {
  const offset = p.offset || 0;
  const length = p.length === undefined ? DEFAULT_LENGTH : p.length;
  const bytes = buf.subarray(offset, offset + length);
  return { data: bytes.toString('base64'), bytes_read: bytes.length, eof: offset + bytes.length >= buf.length };
}

function osError(id, guestPath, e) {
  return fail(id, -32000, `${guestPath}: ${e.code || 'error'}`, e.code || 'EIO');
}

// One request line -> the response text (null for a notification).
function answerSync(req) {
  const bad = check(req);
  if (bad !== null) return req && req.id === undefined ? null : bad;
  const p = req.params;
  let out;
  try {
    const real = fs.realpathSync(path.join(root, p.path));
    if (!inside(real)) return fail(req.id, -32001, `${p.path}: outside the root`, 'EPERM');
    out = reply(req.id, result(p, fs.readFileSync(real)));
  } catch (e) {
    out = osError(req.id, p.path, e);
  }
  return req.id === undefined ? null : out;
}

async function answerAsync(req) {
  const bad = check(req);
  if (bad !== null) return req && req.id === undefined ? null : bad;
  const p = req.params;
  let out;
  try {
    const real = await fs.promises.realpath(path.join(root, p.path));
    if (!inside(real)) return fail(req.id, -32001, `${p.path}: outside the root`, 'EPERM');
    out = reply(req.id, result(p, await fs.promises.readFile(real)));
  } catch (e) {
    out = osError(req.id, p.path, e);
  }
  return req.id === undefined ? null : out;
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
      let req;
      try {
        req = JSON.parse(line);
      } catch (e) {
        sock.write(fail(null, -32700, 'parse error') + '\n');
        continue;
      }
      if (useAsync) {
        answerAsync(req).then((out) => { if (out !== null && !sock.destroyed) sock.write(out + '\n'); });
      } else {
        const out = answerSync(req);
        if (out !== null) sock.write(out + '\n');
      }
    }
  });
  sock.on('error', () => sock.destroy());
});

try { fs.unlinkSync(sockPath); } catch (e) { /* not there */ }
server.listen(sockPath);
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
