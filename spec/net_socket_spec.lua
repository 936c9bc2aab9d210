-- spec/net_socket_spec.lua: the socket half of the network capability, black box (CONTRACT.md
-- sections 3, 5, 6, 8; docs/network-policy.md): net.connect, net.listen, net.accept,
-- net.sendto, net.recvfrom, net.shutdown, net.setopt, net.poll, and io.read/io.write/io.close
-- on sockets. Each test states its attack first, then what must hold.
-- Run: busted --lua=lua5.4 spec/net_socket_spec.lua
--
-- Loopback only; every wait has a deadline (policies set limits.time_ms, the wire helpers have
-- their own), so a broken runtime fails a test and never hangs the suite.
-- Peers: the in-process module (hc.runtime) runs one call to completion, so a luasocket server in
-- this process cannot act *during* a call; it does not need to for most tests, because the
-- kernel completes a loopback handshake and buffers bytes without the server's help (connect,
-- then accept after the call returns; send first, then io.read). Where a peer must act during a
-- call, it is a child process (spec/fixtures/net/echo.lua), or the runtime is a `hostcall serve`
-- child (hc.serve) and this process plays the peer between the lines it sends.
-- luacheck: std +busted
local hc = require "spec.support.hc"
local socket = require "socket"
local cjson = require "cjson"

local ECHO = hc.repo .. "/spec/fixtures/net/echo.lua"
local TIME_MS = 4000   -- limits.time_ms of every policy here unless a test says otherwise

-- {===== base64 (standard, padded) =====

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local ENC, DEC = {}, {}
for i = 1, 64 do
  ENC[i - 1] = B64:sub(i, i)
  DEC[B64:byte(i)] = i - 1
end

local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    out[#out + 1] = ENC[(n >> 18) & 63] .. ENC[(n >> 12) & 63] ..
                    (b and ENC[(n >> 6) & 63] or "=") .. (c and ENC[n & 63] or "=")
  end
  return table.concat(out)
end

local function unb64(s)
  assert(type(s) == "string" and #s % 4 == 0, "data is not padded base64: " .. tostring(s):sub(1, 80))
  local out = {}
  for i = 1, #s, 4 do
    local q = { s:byte(i, i + 3) }
    local pad = 0
    local n = 0
    for k = 1, 4 do
      local v
      if q[k] == 61 and i + 3 >= #s and k >= 3 then pad, v = pad + 1, 0 else v = DEC[q[k]] end
      assert(v, "data is not base64: " .. s:sub(i, i + 3))
      n = (n << 6) | v
    end
    local chunk = string.char((n >> 16) & 255, (n >> 8) & 255, n & 255)
    out[#out + 1] = chunk:sub(1, 3 - pad)
  end
  return table.concat(out)
end

-- }=====

-- {===== what each test leaves behind: runtimes, sockets, child peers =====

local rts, socks, kids = {}, {}, {}

local function track(s)
  socks[#socks + 1] = s
  return s
end

after_each(function()
  for i = #rts, 1, -1 do
    pcall(rts[i].close, rts[i])
    rts[i] = nil
  end
  for i = #socks, 1, -1 do
    pcall(socks[i].close, socks[i])
    socks[i] = nil
  end
  for i = #kids, 1, -1 do
    os.execute("kill -9 " .. kids[i] .. " 2>/dev/null")
    kids[i] = nil
  end
  hc.cleanup()
end)

-- }=====

-- {===== policies and calls =====

local function list(t)
  local q = {}
  for i, r in ipairs(t or {}) do q[i] = string.format("%q", r) end
  return "{ " .. table.concat(q, ", ") .. " }"
end

-- Policy source. o: allow, deny, listen (rule lists), methods (default net.*, io.*, sys.*),
-- limits (a table merged over { time_ms = TIME_MS }), extra (more top-level fields, as source).
local function policy(o)
  o = o or {}
  local limits = { time_ms = TIME_MS }
  for k, v in pairs(o.limits or {}) do limits[k] = v end
  local lim = {}
  for k, v in pairs(limits) do lim[#lim + 1] = k .. " = " .. tostring(v) end
  table.sort(lim)
  return string.format("return { methods = %s, net = { allow = %s, deny = %s, listen = %s }, " ..
                       "limits = { %s }%s }",
                       list(o.methods or { "net.*", "io.*", "sys.*" }), list(o.allow), list(o.deny),
                       list(o.listen), table.concat(lim, ", "), o.extra and (", " .. o.extra) or "")
end

local function runtime(o)
  local rt = hc.runtime(policy(o))
  rts[#rts + 1] = rt
  return rt
end

-- An answer: the decoded response with its raw text (`text`) and, for in-process calls, the
-- seconds it took (`dt`). A single value, so `fails(call(...), ...)` passes all of it.
local function answer(text, dt)
  local v = text and hc.decode(text) or {}
  v.text, v.dt = text, dt
  return v
end

-- One call on an in-process runtime.
local function call(rt, method, params)
  local t0 = hc.now()
  local text = rt:call(hc.req(1, method, params))
  return answer(text, hc.now() - t0)
end

local function label(what) return what and (tostring(what) .. ": ") or "" end

-- The result of an answer, or a failed assertion showing the whole answer.
local function ok(a, what)
  assert(a.error == nil and a.result ~= nil, label(what) .. "expected a result, got " .. tostring(a.text))
  return a.result
end

local function set_of(x)
  if x == nil then return nil end
  if type(x) ~= "table" then x = { x } end
  local s = {}
  for _, e in ipairs(x) do s[e] = true end
  return s
end

-- An error answer matching one of alts, { {code, errno or list of errnos or nil}, ... }: the error.
local function fails_any(a, alts, what)
  assert(type(a.error) == "table", label(what) .. "expected an error, got " .. tostring(a.text))
  local e = a.error
  for _, alt in ipairs(alts) do
    if e.code == alt[1] then
      local want = set_of(alt[2])
      if not want then return e end
      if type(e.data) == "table" and want[e.data.errno] then return e end
    end
  end
  local wanted = {}
  for _, alt in ipairs(alts) do
    local ern = alt[2]
    if type(ern) == "table" then ern = table.concat(ern, "|") end
    wanted[#wanted + 1] = tostring(alt[1]) .. (ern and (" " .. ern) or "")
  end
  error(label(what) .. "expected " .. table.concat(wanted, " or ") .. ", got " .. tostring(a.text), 2)
end

local function fails(a, code, errno, what) return fails_any(a, { { code, errno } }, what) end

local function refused(a, what) return fails(a, -32001, "EACCES", what) end

-- Malformed params: the schema's -32602, or the OS-level EINVAL (the contract allows either).
local function invalid(a, what) return fails_any(a, { { -32602 }, { -32000, "EINVAL" } }, what) end

-- -32002 with data.limit "handles" (CONTRACT.md section 8) or "sockets".
local function over_sockets(a, what)
  local e = fails(a, -32002, nil, what)
  assert(type(e.data) == "table" and (e.data.limit == "handles" or e.data.limit == "sockets"),
         label(what) .. "expected limit handles (or sockets), got " .. tostring(a.text))
end

local function connect(rt, host, port, extra)
  local p = { host = host, port = port }
  for k, x in pairs(extra or {}) do p[k] = x end
  return call(rt, "net.connect", p)
end

-- A connection that must succeed: its handle, its result, the answer.
local function connected(rt, host, port, extra)
  local a = connect(rt, host, port, extra)
  local r = ok(a, "net.connect " .. tostring(host) .. " " .. tostring(port))
  assert(type(r.handle) == "string", "the handle is not a string: " .. tostring(a.text))
  return r.handle, r, a
end

-- A read that must succeed: the bytes, the result.
local function read(rt, h, extra)
  local p = { handle = h, timeout_ms = 2000 }
  for k, x in pairs(extra or {}) do p[k] = x end
  local r = ok(call(rt, "io.read", p), "io.read")
  local bytes = (p.encoding == "utf8") and r.data or unb64(r.data)
  assert.equal(#bytes, r.bytes_read, "bytes_read")
  return bytes, r
end

local function write(rt, h, bytes)
  local a = call(rt, "io.write", { handle = h, data = b64(bytes), timeout_ms = 2000 })
  local r = ok(a, "io.write")
  assert.equal(#bytes, r.bytes_written, "bytes_written")
  assert.truthy(a.text:find('"bytes_written":' .. #bytes .. "[,}]"), "bytes_written is not an integer: " .. a.text)
  return r
end

local function closed(rt, h)
  local a = call(rt, "io.close", { handle = h })
  ok(a, "io.close")
  assert.truthy(a.text:find('"result":{}', 1, true), "io.close answers {}: " .. a.text)
end

-- }=====

-- {===== loopback peers in this process =====

-- A TCP listener on addr (default 127.0.0.1), an ephemeral port: the socket and its port.
local function listener(addr, backlog)
  local l = assert(socket.bind(addr or "127.0.0.1", 0, backlog or 128))
  track(l)
  local _, port = l:getsockname()
  return l, tonumber(port)
end

-- The next connection waiting on l (up to timeout seconds), or nil.
local function accept(l, timeout)
  l:settimeout(timeout or 2)
  local c = l:accept()
  if c then
    track(c)
    c:settimeout(2)
  end
  return c
end

-- True when nobody connected to l: no connection is waiting, even after a short grace period
-- (a loopback handshake completes inside connect(), so one that was made is already queued).
local function untouched(l)
  socket.select({ l }, nil, 0.05)
  return accept(l, 0) == nil
end

-- How many connections are waiting on l (accepting them all).
local function drain(l)
  local n = 0
  while accept(l, 0.05) do n = n + 1 end
  return n
end

-- A port nothing listens on right now (for rules naming a port before the runtime binds it).
local function free_port(kind)
  local s
  if kind == "udp" then
    s = socket.udp()
    assert(s:setsockname("127.0.0.1", 0))
  else
    s = socket.tcp()
    assert(s:bind("127.0.0.1", 0))
  end
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- A UDP socket on 127.0.0.1, an ephemeral port: the socket and its port.
local function udp_peer()
  local u = socket.udp()
  assert(u:setsockname("127.0.0.1", 0))
  track(u)
  local _, port = u:getsockname()
  u:settimeout(1)
  return u, tonumber(port)
end

-- No datagram arrives at u within a short grace period.
local function quiet(u)
  u:settimeout(0.1)
  local d = u:receivefrom()
  u:settimeout(1)
  return d == nil
end

-- A peer that resets: SO_LINGER 0, then close, sends RST instead of FIN.
local function reset(c)
  assert(c:setoption("linger", { on = true, timeout = 0 }))
  c:close()
end

-- }=====

-- {===== a child echo peer =====

local function echo_peer(life)
  local dir = hc.tmpdir()
  local cmd = string.format("lua5.4 %s %s %s %d > %s 2>&1 < /dev/null & echo $! > %s",
                            hc.q(ECHO), hc.q(dir .. "/port"), hc.q(dir .. "/log"), life or 20,
                            hc.q(dir .. "/err"), hc.q(dir .. "/pid"))
  os.execute(cmd)
  local pid = hc.wait_until(function() return tonumber((hc.read(dir .. "/pid") or ""):match("%d+")) end, 5)
  assert(pid, "the echo peer did not start")
  kids[#kids + 1] = pid
  local port = hc.wait_until(function() return tonumber((hc.read(dir .. "/port") or ""):match("^%d+")) end, 5)
  assert(port, "the echo peer is not listening: " .. (hc.read(dir .. "/err") or ""))
  local peer = { port = port, pid = pid }
  function peer.count(what)   -- how many "accept" or "eof" lines it logged
    local n = 0
    for _ in (hc.read(dir .. "/log") or ""):gmatch(what .. " %d+\n") do n = n + 1 end
    return n
  end
  return peer
end

-- }=====

-- {===== a hostcall serve child, and sessions with it =====

local function serve(o)
  local dir = hc.tmpdir()
  return hc.serve({ policy = hc.write(dir .. "/t.lua", policy(o)) })
end

local Sess = {}
Sess.__index = Sess

local function session(srv)
  local s = setmetatable({ c = hc.connect(srv.sock), got = {}, srv = srv }, Sess)
  track(s)
  return s
end

function Sess:send(id, method, params) assert(self.c:send_line(hc.req(id, method, params), 20)) end

function Sess:cancel(id) assert(self.c:send_line(hc.req(nil, "$/cancelRequest", { id = id }))) end

local function key(id)
  if type(id) == "number" then return math.tointeger(id) or id end
  return tostring(id)
end

-- The next answer, whatever its id.
function Sess:next(timeout)
  local line, err = self.c:recv_line(timeout or 5)
  assert(line, "no answer before the deadline (" .. tostring(err) .. ")")
  return answer(line)
end

-- The answer to id (answers to other ids that come first are kept for later).
function Sess:answer(id, timeout)
  local deadline = hc.now() + (timeout or 5)
  while not self.got[id] do
    local a = self:next(math.max(0.01, deadline - hc.now()))
    self.got[key(a.id)] = a
  end
  local a = self.got[id]
  self.got[id] = nil
  return a
end

function Sess:call(id, method, params, timeout)
  self:send(id, method, params)
  return self:answer(id, timeout)
end

function Sess:close() self.c:close() end

-- }=====

describe("net.connect: a round trip", function()
  it("echoes bytes through a loopback peer; peer and local are the two ends; close is EOF", function()
    local l, port = listener()
    local rt = runtime({ allow = { "127.0.0.1:" .. port } })
    local h, r, a = connected(rt, "127.0.0.1", port)
    assert.same({ addr = "127.0.0.1", port = port }, r.peer)
    assert.equal("127.0.0.1", r["local"].addr)
    local lport = math.tointeger(r["local"].port)
    assert.is_true(lport ~= nil and lport >= 1 and lport <= 65535, a.text)
    assert.truthy(a.text:find('"port":' .. port .. "[,}]"), "ports are JSON integers: " .. a.text)
    assert.truthy(a.text:find('"port":' .. lport .. "[,}]"), "ports are JSON integers: " .. a.text)
    local p = accept(l)
    assert(p, "the peer saw no connection")
    local pa, pp = p:getpeername()
    assert.equal("127.0.0.1", pa)
    assert.equal(lport, tonumber(pp))

    write(rt, h, "hello\0\255")
    assert.equal("hello\0\255", p:receive(7))
    assert(p:send("world!"))
    local got, rr = read(rt, h)
    assert.equal("world!", got)
    assert.is_false(rr.eof)
    closed(rt, h)
    local _, err = p:receive(1)
    assert.equal("closed", err)   -- the peer sees EOF once the guest closes
    fails(call(rt, "io.read", { handle = h, timeout_ms = 100 }), -32000, "EBADF", "read after close")
  end)

  it("carries 1 MiB of every byte value both ways through a live peer (a child process)", function()
    local peer = echo_peer()
    local rt = runtime({ allow = { "127.0.0.1:" .. peer.port } })
    local h = connected(rt, "127.0.0.1", peer.port, { timeout_ms = 2000 })
    local parts = {}
    for i = 0, 4095 do parts[#parts + 1] = string.char(i % 256) .. string.rep(string.char(255 - i % 256), 255) end
    local blob = table.concat(parts)
    assert.equal(1048576, #blob)
    write(rt, h, blob)   -- all of it, in one call
    local got, n = {}, 0
    local deadline = hc.now() + 10
    while n < #blob and hc.now() < deadline do
      local bytes, r = read(rt, h, { length = 65536 })
      assert.is_true(r.bytes_read <= 65536)
      assert.is_false(r.eof, "EOF before all the bytes came back")
      got[#got + 1] = bytes
      n = n + #bytes
    end
    assert.equal(#blob, n)
    assert.is_true(table.concat(got) == blob, "the bytes that came back differ from those sent")
    -- half-close: the peer sees EOF, has nothing left to send and closes: our read is EOF
    ok(call(rt, "net.shutdown", { handle = h, how = "write" }))
    local bytes, r = read(rt, h)
    assert.equal("", bytes)
    assert.is_true(r.eof)
    closed(rt, h)
    assert.truthy(hc.wait_until(function() return peer.count("eof") == 1 end, 3))
  end)

  it("io.read returns what is there without waiting for `length`; a short length leaves the rest", function()
    local l, port = listener()
    local rt = runtime({ allow = { "127.0.0.1:" .. port }, limits = { time_ms = 2000 } })
    local h = connected(rt, "127.0.0.1", port)
    local p = assert(accept(l))
    assert(p:send("abcdef"))
    socket.sleep(0.05)
    local t0 = hc.now()
    assert.equal("ab", (read(rt, h, { length = 2 })))
    assert.equal("cdef", (read(rt, h, { length = 65536 })))
    assert.is_true(hc.now() - t0 < 1, "io.read waited for more than what was there")
    -- text, with encoding utf8, both ways
    local a = call(rt, "io.write", { handle = h, data = "héllo ✓", encoding = "utf8" })
    assert.equal(#"héllo ✓", ok(a).bytes_written)
    assert.equal("héllo ✓", p:receive(#"héllo ✓"))
    assert(p:send("ünï"))
    socket.sleep(0.05)
    assert.equal("ünï", (read(rt, h, { encoding = "utf8" })))
  end)

  it("a utf8 read stops at the last whole character; invalid bytes are EILSEQ and are not lost", function()
    local l, port = listener()
    local rt = runtime({ allow = { "127.0.0.1:" .. port } })
    local h = connected(rt, "127.0.0.1", port)
    local p = assert(accept(l))
    assert(p:send("a\xC3"))   -- 'é' cut in two by the peer
    socket.sleep(0.05)
    assert.equal("a", (read(rt, h, { encoding = "utf8" })))
    assert(p:send("\xA9b"))
    socket.sleep(0.05)
    assert.equal("éb", (read(rt, h, { encoding = "utf8" })))   -- the held-back byte was kept
    assert(p:send("\xFF\xFEz"))
    socket.sleep(0.05)
    fails(call(rt, "io.read", { handle = h, encoding = "utf8", timeout_ms = 500 }), -32000, "EILSEQ")
    assert.equal("\xFF\xFEz", (read(rt, h)))   -- the same bytes, as base64
  end)

  it("a name reaches only the address its IP rule allows, and the peer is that address", function()
    local l, port = listener()
    local l6 = socket.bind("::1", port)   -- the same port on ::1, if this host has IPv6
    if l6 then track(l6) end
    local rt = runtime({ allow = { "localhost:*", "127.0.0.1:" .. port } })
    for _, name in ipairs({ "localhost", "LocalHost.", "LOCALHOST" }) do
      local _, r = connected(rt, name, port)
      assert.same({ addr = "127.0.0.1", port = port }, r.peer, name)
    end
    assert.equal(3, drain(l))
    if l6 then assert.is_true(untouched(l6), "a name reached ::1, which no rule allows") end
  end)

  it("reaches [::1] through an IPv6 rule (where the host has IPv6)", function()
    local l6 = socket.bind("::1", 0)
    if not l6 then return end   -- no IPv6 loopback here: nothing to test
    track(l6)
    local _, port = l6:getsockname()
    port = tonumber(port)
    local rt = runtime({ allow = { "[::1]:" .. port } })
    for _, host in ipairs({ "::1", "[::1]", "0:0:0:0:0:0:0:1" }) do
      local _, r = connected(rt, host, port)
      assert.same({ addr = "::1", port = port }, r.peer, host)
      assert.equal("::1", r["local"].addr, host)
    end
    assert.equal(3, drain(l6))
    refused(connect(rt, "127.0.0.1", port))   -- [::1] is not 127.0.0.1
  end)

  it("an IPv4-mapped spelling of an allowed address is that address: never EACCES", function()
    local l, port = listener()
    local rt = runtime({ allow = { "127.0.0.1:" .. port } })
    for _, host in ipairs({ "::ffff:127.0.0.1", "[::ffff:7f00:1]" }) do
      local a = connect(rt, host, port, { timeout_ms = 500 })
      -- the host may lack IPv6 (or mapped addresses): an OS error is fine, a refusal is not
      if a.error then
        fails(a, -32000, nil, host)
      else
        assert.equal(port, ok(a, host).peer.port)
        assert(accept(l), host .. ": connected, but not to the listener on 127.0.0.1")
      end
    end
  end)
end)

describe("net.connect: refusals come before any packet", function()
  local LOOPBACK_FORMS = { "127.0.0.1", "0x7f.1", "0177.0.0.1", "2130706433", "127.1", "0x7f000001",
                           "017700000001", "0x7f.0.0.1", "127.0.1", "::ffff:127.0.0.1",
                           "[::ffff:127.0.0.1]", "::ffff:7f00:1", "::127.0.0.1", "64:ff9b::7f00:1",
                           "64:ff9b::127.0.0.1", "2002:7f00:1::", "2002:7f00:1:ffff::1" }

  it("loopback through a name rule only: the name and every numeric spelling of 127.0.0.1", function()
    local l, port = listener()
    local rt = runtime({ allow = { "localhost:*" } })
    local forms = { "localhost", "LOCALHOST.", "localhost." }
    for _, f in ipairs(LOOPBACK_FORMS) do forms[#forms + 1] = f end
    for _, host in ipairs(forms) do
      local a = connect(rt, host, port, { timeout_ms = 500 })
      refused(a, host)
      assert.is_true(a.dt < 1, host .. ": a refusal took " .. a.dt .. " s")
    end
    assert.is_true(untouched(l), "a refused connect reached the listener")
  end)

  it("special space under 0.0.0.0/0 and [::/0]: loopback, metadata, private, link-local, reserved", function()
    local l, port = listener()
    local rt = runtime({ allow = { "0.0.0.0/0:*", "[::/0]:*", "localhost:*" } })
    local forms = { "localhost", "::1", "[::1]", "0:0:0:0:0:0:0:1",
                    "169.254.169.254", "0xa9fea9fe", "2852039166", "0251.0376.0251.0376", "169.254.43518",
                    "::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::",
                    "10.0.0.1", "10.1", "012.0.0.1", "0xa000001", "167772161", "::ffff:10.0.0.1",
                    "::10.0.0.1", "64:ff9b::a00:1", "2002:a00:1::1",
                    "172.16.0.1", "192.168.1.1", "100.64.0.1", "192.0.0.1", "192.0.2.1", "198.18.0.1",
                    "240.0.0.1", "fe80::1", "fd00::1", "fc00::1", "fec0::1", "2001:db8::1", "2001::1",
                    "64:ff9b:1::1" }
    for _, f in ipairs(LOOPBACK_FORMS) do forms[#forms + 1] = f end
    for _, host in ipairs(forms) do
      local a = connect(rt, host, port, { timeout_ms = 500 })
      refused(a, host)
      assert.is_true(a.dt < 1, host .. ": a refusal took " .. a.dt .. " s")
    end
    assert.is_true(untouched(l))
  end)

  it("unspecified, broadcast and multicast destinations are refused even when rules name them", function()
    local l, port = listener()
    local rt = runtime({ allow = { "127.0.0.1:*", "0.0.0.0/0:*", "0.0.0.0:*", "0.0.0.0/8:*",
                                   "224.0.0.0/4:*", "255.255.255.255:*", "[::]:*", "[ff00::/8]:*",
                                   "[::/0]:*" } })
    -- connecting to 0.0.0.0 reaches the local host on Linux: the listener would see it
    local forms = { "0.0.0.0", "0", "0x0", "0.0", "00", "::", "[::]", "::ffff:0.0.0.0", "0:0:0:0:0:0:0:0",
                    "224.0.0.1", "0xe0000001", "239.255.255.250", "::ffff:224.0.0.1", "ff02::1",
                    "ff05::2", "255.255.255.255", "0xffffffff", "4294967295", "::ffff:255.255.255.255" }
    for _, transport in ipairs({ "tcp", "udp" }) do
      for _, host in ipairs(forms) do
        refused(connect(rt, host, port, { transport = transport, timeout_ms = 500 }), transport .. " " .. host)
      end
    end
    assert.is_true(untouched(l))
  end)

  it("port 0 is refused by policy (EACCES), for connect, udp, listen and sendto, and sends nothing", function()
    -- CONTRACT.md section 6: "port 0 [is] always refused"; refusals are -32001 EACCES. A schema
    -- that stops port 0 first (-32602) sends nothing either, but answers a different code.
    local l, port = listener()
    local up = free_port("udp")
    local other, oport = udp_peer()
    local rt = runtime({ allow = { "127.0.0.1:*", "0.0.0.0/0:*" }, listen = { "127.0.0.1:*" } })
    refused(connect(rt, "127.0.0.1", 0), "tcp connect to port 0")
    refused(connect(rt, "127.0.0.1", 0, { transport = "udp" }), "udp connect to port 0")
    refused(call(rt, "net.listen", { addr = "127.0.0.1", port = 0 }), "listen on port 0")
    refused(call(rt, "net.listen", { addr = "127.0.0.1", port = 0, transport = "udp" }), "udp listen on port 0")
    local h = ok(call(rt, "net.listen", { addr = "127.0.0.1", port = up, transport = "udp" })).handle
    refused(call(rt, "net.sendto", { handle = h, data = b64("x"), host = "127.0.0.1", port = 0 }), "sendto port 0")
    assert.is_true(untouched(l))
    assert.is_true(quiet(other))
    assert.is_number(oport)
    assert.is_number(port)
  end)

  it("a port outside the rule's ports is refused; the rule's own port is not", function()
    local l1, p1 = listener()
    local l2, p2 = listener()
    local rt = runtime({ allow = { "127.0.0.1:" .. p1 .. "-" .. p1 } })
    refused(connect(rt, "127.0.0.1", p2))
    assert.is_true(untouched(l2))
    connected(rt, "127.0.0.1", p1)
    assert.equal(1, drain(l1))
  end)

  it("deny wins over allow: by address, by CIDR over what a name resolves to, by name", function()
    local l1, p1 = listener()
    local l2, p2 = listener()
    local rt = runtime({ allow = { "127.0.0.0/8:*" }, deny = { "127.0.0.1:" .. p1 } })
    refused(connect(rt, "127.0.0.1", p1))
    refused(connect(rt, "::ffff:127.0.0.1", p1))
    refused(connect(rt, "0x7f.1", p1))
    assert.is_true(untouched(l1))
    connected(rt, "127.0.0.1", p2)   -- the rest of the allow rule still holds
    assert.equal(1, drain(l2))

    local by_cidr = runtime({ allow = { "localhost:*", "127.0.0.1:*" }, deny = { "127.0.0.0/8:" .. p1 } })
    refused(connect(by_cidr, "localhost", p1))
    assert.is_true(untouched(l1))
    local by_name = runtime({ allow = { "localhost:*", "127.0.0.1:*" }, deny = { "localhost:*" } })
    refused(connect(by_name, "localhost", p2))
    assert.is_true(untouched(l2))
  end)

  it("a name needs a name rule for that port: an IP rule alone, or another port, is refused", function()
    local l, port = listener()
    local ip_only = runtime({ allow = { "127.0.0.1:" .. port } })
    refused(connect(ip_only, "localhost", port))
    local other_port = runtime({ allow = { "localhost:" .. (port == 1 and 2 or 1), "127.0.0.1:*" } })
    refused(connect(other_port, "localhost", port))
    local unnamed = runtime({ allow = { "localhost:*", "0.0.0.0/0:*" } })
    for _, name in ipairs({ "example.com", "metadata.google.internal", "localhost.localdomain",
                            "127.0.0.1.nip.io", "xn--bcher-kva.example" }) do
      local a = connect(unnamed, name, port, { timeout_ms = 500 })
      refused(a, name)
      assert.is_true(a.dt < 1, name .. ": refused after " .. a.dt .. " s: was it looked up?")
    end
    assert.is_true(untouched(l))
  end)

  it("a listen rule, an ungranted method or the authorize hook never open a connection", function()
    local l, port = listener()
    local listen_only = runtime({ listen = { "127.0.0.1:" .. port } })
    refused(connect(listen_only, "127.0.0.1", port), "a listen rule")
    local ungranted = runtime({ allow = { "127.0.0.1:" .. port }, methods = { "io.*", "sys.*" } })
    refused(connect(ungranted, "127.0.0.1", port), "not granted")
    local hooked = runtime({ allow = { "127.0.0.1:" .. port },
                             extra = "authorize = function(call) return call.method ~= 'net.connect', 'no' end" })
    refused(connect(hooked, "127.0.0.1", port), "authorize by method")
    local by_port = runtime({ allow = { "127.0.0.1:" .. port },
                              extra = "authorize = function(call) return call.params.port ~= " .. port .. " end" })
    refused(connect(by_port, "127.0.0.1", port), "authorize by port")
    assert.is_true(untouched(l))
  end)

  it("a refusal's message names no address, least of all one the guest did not write", function()
    local _, port = listener()
    local rt = runtime({ allow = { "localhost:*", "0.0.0.0/0:*" } })
    for _, host in ipairs({ "localhost", "0x7f.1", "2130706433", "::ffff:a9fe:a9fe", "10.1" }) do
      local msg = tostring(refused(connect(rt, host, port), host).message)
      for _, addr in ipairs({ "127.0.0.1", "169.254.169.254", "10.0.0.1", "::1" }) do
        assert.falsy(msg:find(addr, 1, true), host .. ": the message names " .. addr .. ": " .. msg)
      end
    end
  end)
end)

describe("net.connect: OS errors", function()
  it("a closed port is ECONNREFUSED; the runtime goes on", function()
    local port = free_port()
    local rt = runtime({ allow = { "127.0.0.1:" .. port } })
    fails(connect(rt, "127.0.0.1", port, { timeout_ms = 1000 }), -32000, "ECONNREFUSED")
    ok(call(rt, "sys.ping", {}))
  end)

  it("a peer whose accept queue is full: ETIMEDOUT at timeout_ms", function()
    local _, port = listener("127.0.0.1", 0)
    -- fill the queue (backlog 0 holds one), then check this kernel drops the next SYN
    local filler = track(socket.tcp())
    filler:settimeout(1)
    assert(filler:connect("127.0.0.1", port))
    local probe = track(socket.tcp())
    probe:settimeout(0.2)
    if probe:connect("127.0.0.1", port) then
      return   -- this kernel answers a full queue (syncookies, abort_on_overflow): nothing to test
    end
    probe:close()
    local rt = runtime({ allow = { "127.0.0.1:" .. port } })
    local a = connect(rt, "127.0.0.1", port, { timeout_ms = 300 })
    fails(a, -32000, "ETIMEDOUT")
    assert.is_true(a.dt >= 0.25 and a.dt < 2, "timed out after " .. a.dt .. " s, asked 0.3")
    ok(call(rt, "sys.ping", {}))
  end)

  it("a TLS handshake with a peer that never answers: ETIMEDOUT at timeout_ms", function()
    local l, port = listener()
    local rt = runtime({ allow = { "127.0.0.1:" .. port } })
    local a = connect(rt, "127.0.0.1", port, { tls = true, timeout_ms = 300 })
    fails(a, -32000, "ETIMEDOUT")
    assert.is_true(a.dt >= 0.25 and a.dt < 2, "took " .. a.dt .. " s")
    assert.equal(1, drain(l))
    ok(call(rt, "sys.ping", {}))
  end)

  it("limits.time_ms bounds a wait that has no timeout_ms: -32002 time; the socket lives on", function()
    local l, port = listener()
    local rt = runtime({ allow = { "127.0.0.1:" .. port }, limits = { time_ms = 300 } })
    local h = connected(rt, "127.0.0.1", port)
    local p = assert(accept(l))
    local a = call(rt, "io.read", { handle = h })
    assert.equal("time", fails(a, -32002, nil).data.limit)
    assert.is_true(a.dt >= 0.25 and a.dt < 2, "took " .. a.dt .. " s")
    assert(p:send("after"))
    socket.sleep(0.05)
    assert.equal("after", (read(rt, h, { timeout_ms = 200 })))
  end)
end)

describe("waits never block the runtime (hostcall serve, pipelined)", function()
  it("a silent peer: io.read timeout_ms 200 is ETIMEDOUT, and a ping sent after it is answered first", function()
    local l, port = listener()
    local s = session(serve({ allow = { "127.0.0.1:" .. port } }))
    local c = ok(s:call(1, "net.connect", { host = "127.0.0.1", port = port }))
    assert(accept(l))
    local t0 = hc.now()
    s:send(2, "io.read", { handle = c.handle, timeout_ms = 200 })
    s:send(3, "sys.ping", {})
    assert.equal(3, key(s:next(2).id), "the ping waited behind the read")
    assert.is_true(hc.now() - t0 < 0.2, "the ping took as long as the read's timeout")
    fails(s:answer(2, 3), -32000, "ETIMEDOUT")
    local dt = hc.now() - t0
    assert.is_true(dt >= 0.18 and dt < 2, "ETIMEDOUT after " .. dt .. " s, asked 0.2")
    ok(s:call(4, "sys.ping", {}))
  end)

  it("every kind of wait at once: they run concurrently and the session still answers", function()
    local l, port = listener()
    local lp, up = free_port(), free_port("udp")
    local s = session(serve({ allow = { "127.0.0.1:" .. port },
                              listen = { "127.0.0.1:" .. lp, "127.0.0.1:" .. up } }))
    local c = ok(s:call(1, "net.connect", { host = "127.0.0.1", port = port }))
    assert(accept(l))
    local tl = ok(s:call(2, "net.listen", { addr = "127.0.0.1", port = lp }))
    local ul = ok(s:call(3, "net.listen", { addr = "127.0.0.1", port = up, transport = "udp" }))
    local t0 = hc.now()
    s:send(10, "io.read", { handle = c.handle, timeout_ms = 400 })
    s:send(11, "net.accept", { handle = tl.handle, timeout_ms = 400 })
    s:send(12, "net.recvfrom", { handle = ul.handle, timeout_ms = 400 })
    s:send(13, "net.poll", { handles = { { handle = c.handle, events = { "read" } } }, timeout_ms = 400 })
    s:send(14, "sys.ping", {})
    assert.equal(14, key(s:next(2).id), "the ping waited behind a socket wait")
    fails(s:answer(10, 3), -32000, "ETIMEDOUT", "io.read")
    fails(s:answer(11, 3), -32000, "ETIMEDOUT", "net.accept")
    fails(s:answer(12, 3), -32000, "ETIMEDOUT", "net.recvfrom")
    local pa = s:answer(13, 3)
    assert.same({}, ok(pa, "net.poll").ready)
    assert.truthy(pa.text:find('"ready":[]', 1, true), "an empty ready list is [] on the wire: " .. pa.text)
    local dt = hc.now() - t0
    assert.is_true(dt < 1.2, "four 0.4 s waits took " .. dt .. " s: they ran one after another")
  end)

  it("a read that waits is answered when bytes arrive; $/cancelRequest ends one without losing bytes", function()
    local l, port = listener()
    local s = session(serve({ allow = { "127.0.0.1:" .. port } }))
    local c = ok(s:call(1, "net.connect", { host = "127.0.0.1", port = port }))
    local p = assert(accept(l))
    s:send(2, "io.read", { handle = c.handle })
    ok(s:call(3, "sys.ping", {}))   -- the read is in flight, the session answers
    assert(p:send("late"))
    assert.equal("late", unb64(ok(s:answer(2, 3)).data))

    s:send(4, "io.read", { handle = c.handle })
    ok(s:call(5, "sys.ping", {}))
    s:cancel(4)
    fails(s:answer(4, 2), -32800, nil, "the cancelled read")
    assert(p:send("kept"))
    local a = s:call(6, "io.read", { handle = c.handle, timeout_ms = 1000 })
    assert.equal("kept", unb64(ok(a).data), "a cancelled read swallowed bytes")
  end)

  it("a second reader on one socket is EBUSY; the first still gets the bytes", function()
    local l, port = listener()
    local s = session(serve({ allow = { "127.0.0.1:" .. port } }))
    local c = ok(s:call(1, "net.connect", { host = "127.0.0.1", port = port }))
    local p = assert(accept(l))
    s:send(2, "io.read", { handle = c.handle, timeout_ms = 3000 })
    ok(s:call(3, "sys.ping", {}))
    fails(s:call(4, "io.read", { handle = c.handle, timeout_ms = 3000 }, 2), -32000, "EBUSY", "a second reader")
    assert(p:send("one"))
    assert.equal("one", unb64(ok(s:answer(2, 3)).data))
  end)

  it("a write to a peer that never reads: ETIMEDOUT at timeout_ms, the session answers meanwhile", function()
    local l, port = listener()
    local srv = serve({ allow = { "127.0.0.1:" .. port },
                        limits = { request_bytes = 32 * 1024 * 1024, memory = 128 * 1024 * 1024 } })
    local s = session(srv)
    local c = ok(s:call(1, "net.connect", { host = "127.0.0.1", port = port }))
    assert(accept(l))
    -- 12 MiB: far more than loopback buffers hold for a reader that reads nothing (about 4 MiB)
    local data = string.rep("eHh4", 4 * 1024 * 1024)   -- base64 of "xxx", 4 Mi times
    local t0 = hc.now()
    s:send(2, "io.write", '{"handle":' .. cjson.encode(c.handle) .. ',"data":"' .. data .. '","timeout_ms":500}')
    s:send(3, "sys.ping", {})
    assert.equal(3, key(s:next(5).id), "the ping waited behind a blocked write")
    fails(s:answer(2, 5), -32000, "ETIMEDOUT")
    assert.is_true(hc.now() - t0 < 4)
    ok(s:call(4, "sys.ping", {}))
    assert.is_true(srv:alive())
  end)
end)

describe("peers that misbehave", function()
  it("a peer that resets: io.read is ECONNRESET (or EOF), and the runtime goes on", function()
    local l, port = listener()
    local rt = runtime({ allow = { "127.0.0.1:" .. port } })
    local h = connected(rt, "127.0.0.1", port)
    reset(assert(accept(l)))
    socket.sleep(0.05)
    local a = call(rt, "io.read", { handle = h, timeout_ms = 1000 })
    if a.result then
      assert.is_true(a.result.eof, a.text)
      assert.equal(0, a.result.bytes_read)
    else
      fails(a, -32000, "ECONNRESET")
    end
    ok(call(rt, "sys.ping", {}))
    closed(rt, h)
  end)

  it("writes after a reset or a close are EPIPE/ECONNRESET, never a SIGPIPE that kills the server", function()
    local l, port = listener()
    local srv = serve({ allow = { "127.0.0.1:" .. port } })
    local s = session(srv)
    local id = 0
    local function nid()
      id = id + 1
      return id
    end
    for _, how in ipairs({ "reset", "close" }) do
      local c = ok(s:call(nid(), "net.connect", { host = "127.0.0.1", port = port }))
      local p = assert(accept(l))
      if how == "reset" then reset(p) else p:close() end
      socket.sleep(0.05)
      local failed
      for _ = 1, 5 do
        local a = s:call(nid(), "io.write", { handle = c.handle, data = b64(string.rep("z", 4096)), timeout_ms = 500 })
        if a.error then
          fails(a, -32000, { "EPIPE", "ECONNRESET" }, how)
          failed = true
          break
        end
        socket.sleep(0.02)
      end
      assert.is_true(failed, how .. ": five writes to a dead peer all succeeded")
      assert.is_true(srv:alive(), how .. ": the server died")
      ok(s:call(nid(), "sys.ping", {}))
    end
  end)

  it("a peer's orderly close: its last bytes, then eof with 0 bytes, and eof again", function()
    local l, port = listener()
    local rt = runtime({ allow = { "127.0.0.1:" .. port } })
    local h = connected(rt, "127.0.0.1", port)
    local p = assert(accept(l))
    assert(p:send("bye"))
    p:close()
    socket.sleep(0.05)
    local bytes, r = read(rt, h, { length = 3 })
    assert.equal("bye", bytes)
    assert.is_false(r.eof)   -- eof is true when a read returns 0 bytes (CONTRACT.md section 4)
    for _ = 1, 2 do
      bytes, r = read(rt, h)
      assert.equal("", bytes)
      assert.is_true(r.eof)
    end
  end)

  it("closing a socket while a read waits on it: the read ends, never with another socket's bytes", function()
    local l, port = listener()
    local s = session(serve({ allow = { "127.0.0.1:" .. port } }))
    local c1 = ok(s:call(1, "net.connect", { host = "127.0.0.1", port = port }))
    assert(accept(l))
    local t0 = hc.now()
    s:send(2, "io.read", { handle = c1.handle })   -- waits: the peer is silent
    ok(s:call(3, "io.close", { handle = c1.handle }))
    -- a new socket most likely gets the descriptor number the closed one had
    local c2 = ok(s:call(4, "net.connect", { host = "127.0.0.1", port = port }))
    local p2 = assert(accept(l))
    assert(p2:send("secret"))
    local a = s:answer(2, 3)
    assert.is_true(hc.now() - t0 < 2.5, "the read on the closed handle waited until time_ms")
    assert.falsy(a.text:find(b64("secret"), 1, true), "a read on a closed handle got another socket's bytes")
    if a.result then
      assert.equal("", unb64(a.result.data), a.text)
      assert.is_true(a.result.eof, a.text)
    end
    local r = ok(s:call(5, "io.read", { handle = c2.handle, timeout_ms = 1000 }))
    assert.equal("secret", unb64(r.data))
  end)
end)

describe("100 connections in one session", function()
  it("pipelined connect x100, write, read back, close: all answered, the peer sees 100 EOFs", function()
    local peer = echo_peer(30)
    local s = session(serve({ allow = { "127.0.0.1:" .. peer.port }, limits = { sockets = 128 } }))
    local N = 100
    for i = 1, N do s:send(i, "net.connect", { host = "127.0.0.1", port = peer.port, timeout_ms = 3000 }) end
    local handles, seen, ports = {}, {}, {}
    for i = 1, N do
      local r = ok(s:answer(i, 10), "connect " .. i)
      assert.is_nil(seen[r.handle], "two connections got the same handle")
      assert.is_nil(ports[r["local"].port], "two connections got the same local port")
      seen[r.handle], ports[r["local"].port] = true, true
      handles[i] = r.handle
    end
    for i = 1, N do s:send(1000 + i, "io.write", { handle = handles[i], data = b64("conn-" .. i .. ";") }) end
    for i = 1, N do assert.equal(#("conn-" .. i .. ";"), ok(s:answer(1000 + i, 10)).bytes_written) end
    for i = 1, N do s:send(2000 + i, "io.read", { handle = handles[i], timeout_ms = 3000 }) end
    for i = 1, N do
      assert.equal("conn-" .. i .. ";", unb64(ok(s:answer(2000 + i, 10), "read " .. i).data))
    end
    for i = 1, N do s:send(3000 + i, "io.close", { handle = handles[i] }) end
    for i = 1, N do ok(s:answer(3000 + i, 10)) end
    assert.equal(N, peer.count("accept"))
    assert.truthy(hc.wait_until(function() return peer.count("eof") == N end, 5),
                  "the peer saw " .. peer.count("eof") .. " EOFs of " .. N)
  end)
end)

describe("net.listen and net.accept", function()
  it("listens on a port a listen rule names, accepts, and carries bytes both ways", function()
    local port = free_port()
    local rt = runtime({ listen = { "127.0.0.1:" .. port } })
    local lh = ok(call(rt, "net.listen", { addr = "127.0.0.1", port = port, backlog = 8 })).handle
    assert.is_string(lh)
    fails(call(rt, "net.accept", { handle = lh, timeout_ms = 200 }), -32000, "ETIMEDOUT", "nobody came")
    local client = track(socket.tcp())
    client:settimeout(2)
    assert(client:connect("127.0.0.1", port))
    local _, cport = client:getsockname()
    local pr = ok(call(rt, "net.poll", { handles = { { handle = lh, events = { "read" } } }, timeout_ms = 1000 }))
    assert.equal(1, #pr.ready, "a listener with a connection waiting is readable")
    local r = ok(call(rt, "net.accept", { handle = lh, timeout_ms = 1000 }))
    assert.is_string(r.handle)
    assert.are_not.equal(lh, r.handle)
    assert.same({ addr = "127.0.0.1", port = tonumber(cport) }, r.peer)
    write(rt, r.handle, "from the guest")
    assert.equal("from the guest", client:receive(14))
    assert(client:send("to the guest"))
    assert.equal("to the guest", (read(rt, r.handle)))
    closed(rt, r.handle)
    local _, err = client:receive(1)
    assert.equal("closed", err)
    closed(rt, lh)
    local late = socket.tcp()
    late:settimeout(1)
    assert.is_nil(late:connect("127.0.0.1", port), "the closed listener still accepts")
    late:close()
  end)

  it("refuses binds no listen rule allows: allow rules, wildcards, other addresses, deny, names", function()
    local port = free_port()
    local other = port == 65535 and 65534 or port + 1
    local function nobody_listens()
      local c = socket.tcp()
      c:settimeout(1)
      local okc = c:connect("127.0.0.1", port)
      c:close()
      return not okc
    end
    local allow_only = runtime({ allow = { "127.0.0.1:" .. port } })
    refused(call(allow_only, "net.listen", { addr = "127.0.0.1", port = port }), "an allow rule")
    refused(call(allow_only, "net.listen", { addr = "127.0.0.1", port = port, transport = "udp" }), "udp")
    local wide = runtime({ listen = { "0.0.0.0/0:*", "0.0.0.0:*", "[::/0]:*", "[::]:*", "127.0.0.1:" .. port,
                                      "127.0.0.1:" .. other },
                           deny = { "127.0.0.1:" .. other } })
    for _, addr in ipairs({ "0.0.0.0", "0", "::", "[::]", "::ffff:0.0.0.0", "224.0.0.1", "255.255.255.255",
                            "127.0.0.2", "::1", "10.0.0.1", "169.254.169.254" }) do
      refused(call(wide, "net.listen", { addr = addr, port = port }), addr)
    end
    refused(call(wide, "net.listen", { addr = "127.0.0.1", port = other }), "a denied port")
    assert.is_true(nobody_listens(), "a refused listen bound the port")
    local narrow = runtime({ listen = { "127.0.0.1:" .. other } })
    refused(call(narrow, "net.listen", { addr = "127.0.0.1", port = port }), "a port outside the rule")
    local ungranted = runtime({ listen = { "127.0.0.1:" .. port }, methods = { "io.*", "sys.*" } })
    refused(call(ungranted, "net.listen", { addr = "127.0.0.1", port = port }), "not granted")
    -- a name rule never unlocks loopback, for a bind either
    local by_name = runtime({ listen = { "localhost:*" } })
    fails_any(call(by_name, "net.listen", { addr = "localhost", port = port }),
              { { -32001, "EACCES" }, { -32000, "EINVAL" }, { -32602 } }, "listen on a name")
    assert.is_true(nobody_listens())
  end)

  it("a port already in use is EADDRINUSE", function()
    local _, port = listener()
    local rt = runtime({ listen = { "127.0.0.1:" .. port } })
    fails(call(rt, "net.listen", { addr = "127.0.0.1", port = port }), -32000, "EADDRINUSE")
  end)
end)

describe("UDP", function()
  it("sendto and recvfrom through a bound socket; recvfrom times out", function()
    local peer, pport = udp_peer()
    local up = free_port("udp")
    local rt = runtime({ allow = { "127.0.0.1:" .. pport }, listen = { "127.0.0.1:" .. up } })
    local h = ok(call(rt, "net.listen", { addr = "127.0.0.1", port = up, transport = "udp" })).handle
    fails(call(rt, "net.recvfrom", { handle = h, timeout_ms = 200 }), -32000, "ETIMEDOUT")
    local a = call(rt, "net.sendto", { handle = h, data = b64("ping\0"), host = "127.0.0.1", port = pport })
    assert.equal(5, ok(a).bytes_sent)
    assert.truthy(a.text:find('"bytes_sent":5[,}]'), a.text)
    local d, from, fport = peer:receivefrom()
    assert.equal("ping\0", d)
    assert.equal("127.0.0.1", from)
    assert.equal(up, tonumber(fport))
    assert(peer:sendto("pong", "127.0.0.1", up))
    socket.sleep(0.05)
    local r = ok(call(rt, "net.recvfrom", { handle = h, timeout_ms = 1000 }))
    assert.equal("pong", unb64(r.data))
    assert.same({ addr = "127.0.0.1", port = pport }, r.peer)
    -- at most `length` bytes of a datagram
    assert(peer:sendto("0123456789", "127.0.0.1", up))
    socket.sleep(0.05)
    r = ok(call(rt, "net.recvfrom", { handle = h, length = 4, timeout_ms = 1000 }))
    assert.equal("0123", unb64(r.data))
    -- an empty datagram is a datagram
    ok(call(rt, "net.sendto", { handle = h, data = "", host = "127.0.0.1", port = pport }))
    assert.equal("", (peer:receivefrom()))
  end)

  it("checks every datagram: refused destinations are EACCES and nothing is sent", function()
    local peer, pport = udp_peer()
    local other, oport = udp_peer()
    local up = free_port("udp")
    local rt = runtime({ allow = { "127.0.0.1:" .. pport, "0.0.0.0/0:*", "localhost:*" },
                         listen = { "127.0.0.1:" .. up } })
    local h = ok(call(rt, "net.listen", { addr = "127.0.0.1", port = up, transport = "udp" })).handle
    local function sendto(host, port)
      return call(rt, "net.sendto", { handle = h, data = b64("x"), host = host, port = port })
    end
    refused(sendto("127.0.0.1", oport), "a port no rule names")
    refused(sendto("localhost", oport), "loopback by name")
    for _, host in ipairs({ "0x7f.1", "::ffff:127.0.0.1", "2130706433", "255.255.255.255", "224.0.0.1",
                            "239.255.255.250", "0.0.0.0", "::", "10.0.0.1", "169.254.169.254",
                            "192.168.1.255", "ff02::1", "example.com" }) do
      refused(sendto(host, oport), host)
    end
    assert.is_true(quiet(other), "a refused datagram arrived")
    ok(sendto("127.0.0.1", pport))   -- the allowed one still goes
    assert.equal("x", (peer:receivefrom()))
  end)

  it("a connected UDP socket: io.write and io.read carry datagrams; refused peers are EACCES", function()
    local peer, pport = udp_peer()
    local other, oport = udp_peer()
    local rt = runtime({ allow = { "127.0.0.1:" .. pport } })
    local h, r = connected(rt, "127.0.0.1", pport, { transport = "udp" })
    assert.same({ addr = "127.0.0.1", port = pport }, r.peer)
    write(rt, h, "dgram")
    local d, _, fport = peer:receivefrom()
    assert.equal("dgram", d)
    assert.equal(r["local"].port, tonumber(fport))
    assert(peer:sendto("reply", "127.0.0.1", math.tointeger(r["local"].port)))
    socket.sleep(0.05)
    assert.equal("reply", (read(rt, h)))
    refused(connect(rt, "127.0.0.1", oport, { transport = "udp" }))
    -- sendto on a connected socket still checks the destination it names
    local a = call(rt, "net.sendto", { handle = h, data = b64("sneak"), host = "127.0.0.1", port = oport })
    fails_any(a, { { -32001, "EACCES" }, { -32000, { "EISCONN", "EINVAL", "EOPNOTSUPP" } } })
    assert.is_true(quiet(other), "a datagram reached a port no rule names")
  end)

  it("sendto on a TCP socket never reaches a destination the rules refuse", function()
    local l, port = listener()
    local other, oport = udp_peer()
    local rt = runtime({ allow = { "127.0.0.1:" .. port } })
    local h = connected(rt, "127.0.0.1", port)
    assert(accept(l))
    local a = call(rt, "net.sendto", { handle = h, data = b64("sneak"), host = "127.0.0.1", port = oport })
    fails_any(a, { { -32001, "EACCES" }, { -32000 } })
    assert.is_true(quiet(other))
  end)
end)

describe("handles and limits", function()
  it("limits.sockets: one more is -32002 handles and opens nothing; closing one frees a slot", function()
    local l, port = listener()
    local lp = free_port()
    local rt = runtime({ allow = { "127.0.0.1:" .. port }, listen = { "127.0.0.1:" .. lp },
                         limits = { sockets = 2 } })
    local h1 = connected(rt, "127.0.0.1", port)
    connected(rt, "127.0.0.1", port)
    assert.equal(2, drain(l))
    over_sockets(call(rt, "net.connect", { host = "127.0.0.1", port = port }), "a third connect")
    over_sockets(call(rt, "net.connect", { host = "127.0.0.1", port = port, transport = "udp" }), "a udp socket")
    over_sockets(call(rt, "net.listen", { addr = "127.0.0.1", port = lp }), "a listener")
    assert.is_true(untouched(l), "the refused connect still connected")
    closed(rt, h1)
    connected(rt, "127.0.0.1", port)
    assert.equal(1, drain(l))
  end)

  it("limits.sockets counts the sockets accepted from a listener", function()
    local lp = free_port()
    local rt = runtime({ listen = { "127.0.0.1:" .. lp }, limits = { sockets = 2 } })
    local lh = ok(call(rt, "net.listen", { addr = "127.0.0.1", port = lp })).handle
    for _ = 1, 2 do
      local c = track(socket.tcp())
      c:settimeout(1)
      assert(c:connect("127.0.0.1", lp))
    end
    ok(call(rt, "net.accept", { handle = lh, timeout_ms = 1000 }))
    over_sockets(call(rt, "net.accept", { handle = lh, timeout_ms = 1000 }), "a third socket")
  end)

  it("limits.sockets is per tenant: another session is refused until the first one ends", function()
    local l, port = listener()
    local srv = serve({ allow = { "127.0.0.1:" .. port }, limits = { sockets = 2 } })
    local a = session(srv)
    ok(a:call(1, "net.connect", { host = "127.0.0.1", port = port }))
    ok(a:call(2, "net.connect", { host = "127.0.0.1", port = port }))
    local b = session(srv)
    over_sockets(b:call(1, "net.connect", { host = "127.0.0.1", port = port }), "another session")
    a:close()   -- its sockets close with it, and their slots come back
    local id = 1
    local got = hc.wait_until(function()
      id = id + 1
      return b:call(id, "net.connect", { host = "127.0.0.1", port = port }).result
    end, 3, 0.05)
    assert.truthy(got, "the ended session's sockets still count")
    drain(l)
  end)

  it("a session's sockets close when it ends; its handles mean nothing in another session", function()
    local l, port = listener()
    local srv = serve({ allow = { "127.0.0.1:" .. port } })
    local a = session(srv)
    local b = session(srv)
    local ca = ok(a:call(1, "net.connect", { host = "127.0.0.1", port = port }))
    local pa = assert(accept(l))
    for i, m in ipairs({ { "io.write", { handle = ca.handle, data = b64("from b") } },
                         { "io.read", { handle = ca.handle, timeout_ms = 100 } },
                         { "net.shutdown", { handle = ca.handle, how = "both" } },
                         { "net.setopt", { handle = ca.handle, nodelay = true } },
                         { "net.poll", { handles = { { handle = ca.handle, events = { "read" } } }, timeout_ms = 0 } },
                         { "io.close", { handle = ca.handle } } }) do
      fails(b:call(i, m[1], m[2]), -32000, "EBADF", "session b: " .. m[1])
    end
    pa:settimeout(0.1)
    local got, err = pa:receive(1)
    assert.is_nil(got, "session b's write reached session a's peer")
    assert.equal("timeout", err, "session b closed or shut down session a's socket")
    ok(a:call(2, "sys.ping", {}))
    a:close()
    pa:settimeout(3)
    got, err = pa:receive(1)
    assert.is_nil(got)
    assert.equal("closed", err, "the peer never saw the ended session's socket close")
  end)

  it("closing the in-process runtime closes its sockets", function()
    local l, port = listener()
    local rt = runtime({ allow = { "127.0.0.1:" .. port } })
    connected(rt, "127.0.0.1", port)
    local p = assert(accept(l))
    rt:close()
    p:settimeout(2)
    local _, err = p:receive(1)
    assert.equal("closed", err)
  end)

  it("a closed, made-up or mangled handle is EBADF on every socket method", function()
    local _, port = listener()
    local rt = runtime({ allow = { "127.0.0.1:" .. port } })
    local live = connected(rt, "127.0.0.1", port)
    local dead = connected(rt, "127.0.0.1", port)
    closed(rt, dead)
    local flipped = live:sub(1, -2) .. (live:sub(-1) == "0" and "1" or "0")
    for _, h in ipairs({ dead, flipped, "h0000000000000001", "", "x", live .. " ", live:upper(), live .. live }) do
      local what = "handle " .. cjson.encode(h)
      for _, m in ipairs({ { "io.read", { handle = h, timeout_ms = 100 } },
                           { "io.write", { handle = h, data = b64("x") } },
                           { "io.close", { handle = h } },
                           { "net.accept", { handle = h, timeout_ms = 100 } },
                           { "net.recvfrom", { handle = h, timeout_ms = 100 } },
                           { "net.sendto", { handle = h, data = b64("x"), host = "127.0.0.1", port = port } },
                           { "net.shutdown", { handle = h, how = "both" } },
                           { "net.setopt", { handle = h, keepalive = true } },
                           { "net.poll", { handles = { { handle = h, events = { "read" } } }, timeout_ms = 0 } } }) do
        fails(call(rt, m[1], m[2]), -32000, "EBADF", what .. " " .. m[1])
      end
    end
    fails(call(rt, "io.close", { handle = dead }), -32000, "EBADF", "a second close")
    closed(rt, live)   -- none of that touched the live one
  end)

  it("an integer where a handle goes is not a live handle: EBADF (CONTRACT.md section 3)", function()
    -- "a handle is an opaque token (string or integer, as the runtime chooses); anything that is
    -- not a live handle of this session is -32000 EBADF": io.* already answers so.
    local _, port = listener()
    local rt = runtime({ allow = { "127.0.0.1:" .. port } })
    for _, h in ipairs({ 0, -1, 12345 }) do
      for _, m in ipairs({ { "io.read", { handle = h, timeout_ms = 100 } },
                           { "io.close", { handle = h } },
                           { "net.accept", { handle = h, timeout_ms = 100 } },
                           { "net.recvfrom", { handle = h, timeout_ms = 100 } },
                           { "net.shutdown", { handle = h, how = "both" } },
                           { "net.setopt", { handle = h, keepalive = true } },
                           { "net.poll", { handles = { { handle = h, events = { "read" } } }, timeout_ms = 0 } } }) do
        fails(call(rt, m[1], m[2]), -32000, "EBADF", "handle " .. h .. " " .. m[1])
      end
    end
  end)

  it("a file handle is not a socket, and a socket is not a file", function()
    local dir = hc.tmpdir()
    local l, port = listener()
    local rt = runtime({ allow = { "127.0.0.1:" .. port }, methods = { "net.*", "io.*", "sys.*", "fs.*" },
                         extra = string.format("mounts = { [\"/w\"] = { path = %q, perms = \"rw\" } }", dir) })
    local fh = ok(call(rt, "fs.open", { path = "/w/f", mode = "w" })).handle
    local notsock = { { -32000, { "EBADF", "ENOTSOCK" } } }
    fails_any(call(rt, "net.accept", { handle = fh, timeout_ms = 100 }), notsock, "net.accept on a file")
    fails_any(call(rt, "net.recvfrom", { handle = fh, timeout_ms = 100 }), notsock, "net.recvfrom on a file")
    fails_any(call(rt, "net.shutdown", { handle = fh, how = "both" }), notsock, "net.shutdown on a file")
    fails_any(call(rt, "net.setopt", { handle = fh, nodelay = true }), notsock, "net.setopt on a file")
    fails_any(call(rt, "net.poll", { handles = { { handle = fh, events = { "read" } } }, timeout_ms = 0 }),
              notsock, "net.poll on a file")
    fails_any(call(rt, "net.sendto", { handle = fh, data = b64("x"), host = "127.0.0.1", port = port }),
              { { -32000, { "EBADF", "ENOTSOCK" } }, { -32001, "EACCES" } }, "net.sendto on a file")
    assert.is_true(untouched(l))
    local sh = connected(rt, "127.0.0.1", port)
    assert(accept(l))
    fails_any(call(rt, "io.seek", { handle = sh, offset = 0, whence = "set" }),
              { { -32000, { "ESPIPE", "EINVAL" } } }, "io.seek on a socket")
    fails_any(call(rt, "io.read", { handle = sh, offset = 0, timeout_ms = 100 }),
              { { -32000, { "ESPIPE", "EINVAL" } }, { -32602 } }, "io.read at an offset on a socket")
    fails_any(call(rt, "io.write", { handle = sh, offset = 0, data = b64("x") }),
              { { -32000, { "ESPIPE", "EINVAL" } }, { -32602 } }, "io.write at an offset on a socket")
    closed(rt, fh)
    closed(rt, sh)
  end)
end)

describe("net.shutdown, net.setopt, net.poll", function()
  it("shutdown write: the peer sees EOF and can still answer; read and both are accepted", function()
    local l, port = listener()
    local rt = runtime({ allow = { "127.0.0.1:" .. port } })
    local h = connected(rt, "127.0.0.1", port)
    local p = assert(accept(l))
    local a = call(rt, "net.shutdown", { handle = h, how = "write" })
    ok(a)
    assert.truthy(a.text:find('"result":{}', 1, true), a.text)
    local _, err = p:receive(1)
    assert.equal("closed", err)
    assert(p:send("still here"))
    assert.equal("still here", (read(rt, h)))
    fails(call(rt, "io.write", { handle = h, data = b64("x"), timeout_ms = 200 }), -32000, { "EPIPE", "ESHUTDOWN" },
          "a write after shutdown write")
    ok(call(rt, "net.shutdown", { handle = h, how = "read" }))
    ok(call(rt, "net.shutdown", { handle = h, how = "both" }))
    for _, how in ipairs({ "sideways", "", "WRITE" }) do
      invalid(call(rt, "net.shutdown", { handle = h, how = how }), how)
    end
    invalid(call(rt, "net.shutdown", { handle = h }), "no how")
  end)

  it("setopt nodelay and keepalive; wrong types are -32602", function()
    local l, port = listener()
    local rt = runtime({ allow = { "127.0.0.1:" .. port } })
    local h = connected(rt, "127.0.0.1", port)
    assert(accept(l))
    local a = call(rt, "net.setopt", { handle = h, nodelay = true, keepalive = true })
    ok(a)
    assert.truthy(a.text:find('"result":{}', 1, true), a.text)
    ok(call(rt, "net.setopt", { handle = h, nodelay = false }))
    ok(call(rt, "net.setopt", { handle = h, keepalive = false }))
    fails(call(rt, "net.setopt", { handle = h, nodelay = "yes" }), -32602)
    fails(call(rt, "net.setopt", { handle = h, keepalive = 1 }), -32602)
  end)

  it("poll: readiness of two sockets, read and write, EOF as readable, empty on timeout", function()
    local l, port = listener()
    local rt = runtime({ allow = { "127.0.0.1:" .. port } })
    local h1 = connected(rt, "127.0.0.1", port)
    local p1 = assert(accept(l))
    local h2 = connected(rt, "127.0.0.1", port)
    local p2 = assert(accept(l))
    local both_read = { { handle = h1, events = { "read" } }, { handle = h2, events = { "read" } } }

    local a = call(rt, "net.poll", { handles = both_read, timeout_ms = 200 })
    assert.same({}, ok(a).ready)
    assert.truthy(a.text:find('"ready":[]', 1, true), a.text)
    assert.is_true(a.dt >= 0.18 and a.dt < 2, "an empty poll returned after " .. a.dt .. " s, asked 0.2")

    assert(p1:send("x"))
    socket.sleep(0.05)
    local r = ok(call(rt, "net.poll", { handles = both_read, timeout_ms = 1000 }))
    assert.same({ { handle = h1, events = { "read" } } }, r.ready)

    r = ok(call(rt, "net.poll", { handles = { { handle = h1, events = { "read", "write" } },
                                             { handle = h2, events = { "write" } } }, timeout_ms = 1000 }))
    local by = {}
    for _, e in ipairs(r.ready) do
      local evs = {}
      for _, x in ipairs(e.events) do evs[x] = true end
      by[e.handle] = evs
    end
    assert.same({ [h1] = { read = true, write = true }, [h2] = { write = true } }, by)

    -- readiness consumes nothing: still readable with timeout 0, until the bytes are read
    r = ok(call(rt, "net.poll", { handles = { { handle = h1, events = { "read" } } }, timeout_ms = 0 }))
    assert.equal(1, #r.ready)
    assert.equal("x", (read(rt, h1)))
    r = ok(call(rt, "net.poll", { handles = { { handle = h1, events = { "read" } } }, timeout_ms = 0 }))
    assert.same({}, r.ready)

    p2:close()   -- EOF is readable
    socket.sleep(0.05)
    r = ok(call(rt, "net.poll", { handles = both_read, timeout_ms = 1000 }))
    assert.same({ { handle = h2, events = { "read" } } }, r.ready)

    for _, bad in ipairs({ { handles = { { handle = h1, events = { "bogus" } } }, timeout_ms = 0 },
                           { handles = { { handle = h1 } }, timeout_ms = 0 },
                           { handles = "h1", timeout_ms = 0 },
                           { handles = both_read, timeout_ms = -1 } }) do
      invalid(call(rt, "net.poll", bad), cjson.encode(bad))
    end
  end)
end)

describe("malformed params", function()
  it("net.connect: missing or ill-typed host and port, out-of-range ports, unknown transports", function()
    local l, port = listener()
    local rt = runtime({ allow = { "0.0.0.0/0:*", "127.0.0.1:*", "localhost:*" } })
    local cases = {
      { port = port },
      { host = "127.0.0.1" },
      { host = "127.0.0.1", port = tostring(port) },
      { host = "127.0.0.1", port = 70000 },
      { host = "127.0.0.1", port = 65536 },
      { host = "127.0.0.1", port = -1 },
      { host = "127.0.0.1", port = port + 0.5 },
      { host = "127.0.0.1", port = port, transport = "sctp" },
      { host = "127.0.0.1", port = port, transport = "TCP" },
      { host = "127.0.0.1", port = port, timeout_ms = -5 },
      { host = "127.0.0.1", port = port, timeout_ms = "fast" },
      { host = "127.0.0.1", port = port, tls = "yes" },
      { host = 2130706433, port = port },
      { host = { "127.0.0.1" }, port = port },
      { host = "", port = port },
      { host = "127.0.0.1 evil", port = port },
      { host = "a b", port = port },
      { host = "127.0.0.1\n", port = port },
      { host = " 127.0.0.1", port = port },
      { host = "127.0.0.1.", port = port },
      { host = "127.0.0.1:" .. port, port = port },
      { host = "127.0.0.1\0.evil", port = port },
      { host = "1.2.3.4.5", port = port },
      { host = "256.0.0.1", port = port },
      { host = "::1%lo", port = port },
      { host = "[::1", port = port },
      { host = "[127.0.0.1]", port = port },
      { host = "bad..name", port = port },
      { host = "ｌｏｃａｌｈｏｓｔ", port = port },
      { host = "１２７．０．０．１", port = port },
      { host = string.rep("a", 300), port = port },
    }
    for _, p in ipairs(cases) do invalid(call(rt, "net.connect", p), cjson.encode(p)) end
    fails(call(rt, "net.connect", "[\"127.0.0.1\", " .. port .. "]"), -32602, nil, "params as an array")
    assert.is_true(untouched(l), "a malformed connect reached the listener")
  end)

  it("io.read, io.write, net.listen, net.sendto, net.recvfrom and net.accept check their params", function()
    local l, port = listener()
    local up = free_port("udp")
    local rt = runtime({ allow = { "127.0.0.1:*" }, listen = { "127.0.0.1:" .. up },
                         limits = { read_bytes = 1024 } })
    local h = connected(rt, "127.0.0.1", port)
    assert(accept(l))
    local u = ok(call(rt, "net.listen", { addr = "127.0.0.1", port = up, transport = "udp" })).handle
    invalid(call(rt, "io.read", { handle = h, length = -1 }), "length -1")
    invalid(call(rt, "io.read", { handle = h, timeout_ms = -1 }), "timeout_ms -1")
    invalid(call(rt, "io.read", { handle = h, encoding = "latin1" }), "encoding latin1")
    invalid(call(rt, "io.read"), "no params")
    local e = fails(call(rt, "io.read", { handle = h, length = 2048, timeout_ms = 100 }), -32002, nil,
                    "over read_bytes")
    assert.equal("size", e.data.limit)
    invalid(call(rt, "io.write", { handle = h }), "no data")
    invalid(call(rt, "io.write", { handle = h, data = "not base64!" }), "bad base64")
    invalid(call(rt, "io.write", { handle = h, data = "QUJD=" }), "bad padding")
    invalid(call(rt, "io.write", { handle = h, data = 42 }), "data 42")
    invalid(call(rt, "net.listen", { port = up, transport = "udp" }), "no addr")
    invalid(call(rt, "net.listen", { addr = "127.0.0.1", port = 70000 }), "port 70000")
    invalid(call(rt, "net.listen", { addr = "127.0.0.1", port = up, transport = "raw" }), "transport raw")
    invalid(call(rt, "net.listen", { addr = "127.0.0.1", port = up, backlog = -1 }), "backlog -1")
    invalid(call(rt, "net.listen", { addr = "127.0.0.1 ", port = up }), "addr with a space")
    invalid(call(rt, "net.sendto", { handle = u, data = b64("x"), host = "127.0.0.1" }), "sendto without port")
    invalid(call(rt, "net.sendto", { handle = u, data = b64("x"), port = port }), "sendto without host")
    invalid(call(rt, "net.sendto", { handle = u, data = b64("x"), host = "127.0.0.1", port = 70000 }), "port 70000")
    invalid(call(rt, "net.sendto", { handle = u, data = b64("x"), host = "a b", port = port }), "host a b")
    invalid(call(rt, "net.sendto", { handle = u, host = "127.0.0.1", port = port }), "sendto without data")
    invalid(call(rt, "net.recvfrom", { handle = u, length = -1 }), "recvfrom length -1")
    invalid(call(rt, "net.recvfrom", { handle = u, timeout_ms = "soon" }), "recvfrom timeout_ms soon")
    invalid(call(rt, "net.accept", { handle = u, timeout_ms = -1 }), "accept timeout_ms -1")
    invalid(call(rt, "net.accept", {}), "accept without a handle")
    ok(call(rt, "sys.ping", {}))
  end)
end)

describe("the socket methods are granted and described", function()
  it("net.* and io.* grant them, and sys.describe lists them", function()
    local rt = runtime({})
    local doc = ok(call(rt, "sys.describe", {}))
    local names = {}
    for _, m in ipairs(doc.methods or {}) do names[m.name] = true end
    for _, m in ipairs({ "net.connect", "net.listen", "net.accept", "net.sendto", "net.recvfrom",
                         "net.shutdown", "net.poll", "net.setopt", "io.read", "io.write", "io.close" }) do
      assert.is_true(names[m] == true, m .. " is not in sys.describe")
    end
  end)
end)
