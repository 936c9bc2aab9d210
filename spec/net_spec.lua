-- spec/net_spec.lua: the network policy end to end (CONTRACT.md section 6): rules checked when
-- the policy loads, and net.resolve under them. Names come from /etc/hosts ("localhost"): no
-- test needs the network. Sockets, TLS and http.fetch join this file as they land.
-- luacheck: std +busted
local hc = require "spec.support.hc"
local cjson = require "cjson"

local function pol(allow, deny)
  local function list(t)
    local q = {}
    for i, r in ipairs(t or {}) do q[i] = string.format("%q", r) end
    return "{ " .. table.concat(q, ", ") .. " }"
  end
  return string.format('return { methods = { "net.*", "sys.*" }, net = { allow = %s, deny = %s } }',
                       list(allow), list(deny))
end

local function resolve(rt, host)
  local _, r = hc.call(rt, hc.req(1, "net.resolve", { host = host }))
  return r
end

local function refused(r, code, errno)
  assert.is_table(r.error, "expected an error, got " .. cjson.encode(r))
  assert.equal(code, r.error.code)
  assert.equal(errno, r.error.data.errno)
end

describe("net rules at load", function()
  after_each(function() hc.cleanup() end)

  it("refuses a bad rule with its field path", function()
    local cases = {
      { pol({ "10.1.0.1/16:80" }), 'net.allow[1]' },
      { pol({ "127.0.0.1:80", "1.2.3.4:70-60" }), 'net.allow[2]' },
      { pol({}, { "[fd00::/8]:0" }), 'net.deny[1]' },
    }
    for _, c in ipairs(cases) do
      local rt, err = hc.try_new({ policy_source = c[1], name = "acme.lua" })
      assert.is_nil(rt, c[1])
      assert.matches("acme.lua: " .. c[2], err, 1, true)
      assert.not_matches("/", err:gsub("%[fd00::/8%]", ""):gsub("%d+%.%d+%.%d+%.%d+/%d+", ""))
    end
  end)
end)

describe("net.resolve", function()
  after_each(function() hc.cleanup() end)

  it("gives loopback only through an IP rule, never through a name rule", function()
    local by_name = hc.runtime(pol({ "localhost:*" }))
    local r = resolve(by_name, "localhost")
    assert.is_nil(r.error)
    assert.same({}, r.result.addresses)   -- localhost is named, but its addresses are loopback
    local by_ip = hc.runtime(pol({ "localhost:*", "127.0.0.1:8080" }))
    r = resolve(by_ip, "localhost")
    assert.same({ "127.0.0.1" }, r.result.addresses)
  end)

  it("canonicalises every IPv4 form of an allowed literal", function()
    local rt = hc.runtime(pol({ "127.0.0.1:8080" }))
    for _, h in ipairs({ "127.0.0.1", "0x7f.1", "0177.0.0.1", "2130706433", "127.1", "0x7f000001" }) do
      local r = resolve(rt, h)
      assert.is_nil(r.error, h)
      assert.same({ "127.0.0.1" }, r.result.addresses, h)
    end
  end)

  it("refuses literals no IP rule unlocks, in every form", function()
    local rt = hc.runtime(pol({ "0.0.0.0/0:*", "localhost:*", "[::/0]:*" }))
    local forms = { "127.0.0.1", "0x7f.1", "2130706433", "::ffff:127.0.0.1", "::127.0.0.1",
                    "64:ff9b::7f00:1", "2002:7f00:1::", "169.254.169.254", "0xa9fea9fe",
                    "::ffff:169.254.169.254", "10.0.0.1", "::1", "fe80::1", "224.0.0.1",
                    "255.255.255.255", "0.0.0.0", "::" }
    for _, h in ipairs(forms) do refused(resolve(rt, h), -32001, "EACCES") end
    -- a public address under the broad rule is fine
    assert.same({ "93.184.216.34" }, resolve(rt, "93.184.216.34").result.addresses)
  end)

  it("deny wins over allow", function()
    local rt = hc.runtime(pol({ "127.0.0.1:80", "10.0.0.0/8:*" }, { "127.0.0.1:*", "10.1.0.0/16:*" }))
    refused(resolve(rt, "127.0.0.1"), -32001, "EACCES")
    refused(resolve(rt, "10.1.2.3"), -32001, "EACCES")
    assert.same({ "10.2.0.1" }, resolve(rt, "10.2.0.1").result.addresses)
    local named = hc.runtime(pol({ "localhost:*", "127.0.0.1:*" }, { "localhost:*" }))
    refused(resolve(named, "localhost"), -32001, "EACCES")   -- denied by name: not even looked up
  end)

  it("refuses a name no rule names, and malformed hosts", function()
    local rt = hc.runtime(pol({ "localhost:*" }))
    refused(resolve(rt, "example.com"), -32001, "EACCES")
    refused(resolve(rt, "LOCALHOST.example"), -32001, "EACCES")
    for _, h in ipairs({ "bad..name", "-a.com", "1.2.3.4.5", "256.0.0.1", "::1%lo", "[::1",
                         "a b", string.rep("a", 64) .. ".com", "1.2.3.4:80" }) do
      refused(resolve(rt, h), -32000, "EINVAL")
    end
    local _, r = hc.call(rt, hc.req(1, "net.resolve", { host = string.rep("a", 300) }))
    assert.equal(-32602, r.error.code)
  end)

  it("matches names without regard to case or a trailing dot", function()
    local rt = hc.runtime(pol({ "LocalHost:*", "127.0.0.1:80" }))
    assert.same({ "127.0.0.1" }, resolve(rt, "LOCALHOST.").result.addresses)
  end)

  it("resolves many names at once without holding up other calls", function()
    local rt = hc.runtime(pol({ "localhost:*", "127.0.0.1:80" }))
    local batch = {}
    for i = 1, 30 do batch[i] = hc.req(i, "net.resolve", { host = "localhost" }) end
    batch[31] = hc.req(31, "sys.ping", {})
    local text = rt:call("[" .. table.concat(batch, ",") .. "]")
    local answers = cjson.decode(text)
    assert.equal(31, #answers)
    for _, a in ipairs(answers) do
      assert.is_nil(a.error)
      if a.id ~= 31 then assert.same({ "127.0.0.1" }, a.result.addresses) end
    end
  end)

  it("is refused without net rules, and is not granted by default", function()
    local none = hc.runtime('return { methods = { "net.*" } }')
    refused(resolve(none, "127.0.0.1"), -32001, "EACCES")
    local ungranted = hc.runtime('return { methods = { "sys.*" }, net = { allow = { "127.0.0.1:80" } } }')
    refused(resolve(ungranted, "127.0.0.1"), -32001, "EACCES")
  end)
end)

describe("sockets (smoke; spec/net_socket_spec.lua is the adversarial suite)", function()
  after_each(function() hc.cleanup() end)

  local POL = 'return { methods = { "net.*", "io.*", "sys.*" }, net = { allow = { "127.0.0.1:%d" }, ' ..
              'listen = { "127.0.0.1:%d" } } }'

  local function call(rt, m, p)
    local _, r = hc.call(rt, hc.req(1, m, p))
    return r
  end

  it("listens, connects, accepts, and echoes through io.write/io.read in one session", function()
    local port = 20000 + math.random(0, 9999)
    local rt = hc.runtime(string.format(POL, port, port))
    local l = call(rt, "net.listen", { addr = "127.0.0.1", port = port })
    assert.is_nil(l.error)
    local c = call(rt, "net.connect", { host = "127.0.0.1", port = port })
    assert.is_nil(c.error)
    assert.same({ addr = "127.0.0.1", port = port }, c.result.peer)
    local a = call(rt, "net.accept", { handle = l.result.handle, timeout_ms = 1000 })
    assert.is_nil(a.error)
    assert.same(c.result["local"], a.result.peer)
    local w = call(rt, "io.write", { handle = c.result.handle, data = "aGVsbG8=" })
    assert.equal(5, w.result.bytes_written)
    local r = call(rt, "io.read", { handle = a.result.handle, timeout_ms = 1000 })
    assert.equal("aGVsbG8=", r.result.data)
    assert.is_false(r.result.eof)
    assert.same({}, call(rt, "net.shutdown", { handle = c.result.handle, how = "write" }).result)
    r = call(rt, "io.read", { handle = a.result.handle, timeout_ms = 1000 })
    assert.is_true(r.result.eof)
    assert.equal(0, r.result.bytes_read)
    -- nothing more to accept: the wait ends with ETIMEDOUT, and the runtime goes on
    refused(call(rt, "net.accept", { handle = l.result.handle, timeout_ms = 50 }), -32000, "ETIMEDOUT")
    assert.same({}, call(rt, "io.close", { handle = c.result.handle }).result)
    refused(call(rt, "io.read", { handle = c.result.handle }), -32000, "EBADF")
  end)

  it("refuses destinations and binds before any packet", function()
    local port = 20000 + math.random(0, 9999)
    local rt = hc.runtime(string.format(POL, port, port))
    refused(call(rt, "net.connect", { host = "127.0.0.1", port = port + 1 }), -32001, "EACCES")
    refused(call(rt, "net.connect", { host = "0x7f.1", port = port + 1 }), -32001, "EACCES")
    refused(call(rt, "net.connect", { host = "localhost", port = port }), -32001, "EACCES")
    refused(call(rt, "net.listen", { addr = "0.0.0.0", port = port }), -32001, "EACCES")
    refused(call(rt, "net.listen", { addr = "127.0.0.1", port = port + 1 }), -32001, "EACCES")
  end)

  it("counts sockets against limits.sockets", function()
    local port = 20000 + math.random(0, 9999)
    local rt = hc.runtime(string.format(
      'return { methods = { "net.*", "io.*" }, limits = { sockets = 2 }, net = { listen = { "127.0.0.1:%d-%d" } } }',
      port, port + 2))
    assert.is_nil(call(rt, "net.listen", { addr = "127.0.0.1", port = port, transport = "udp" }).error)
    assert.is_nil(call(rt, "net.listen", { addr = "127.0.0.1", port = port + 1, transport = "udp" }).error)
    local r = call(rt, "net.listen", { addr = "127.0.0.1", port = port + 2, transport = "udp" })
    assert.equal(-32002, r.error.code)
    assert.equal("handles", r.error.data.limit)
  end)

  it("serve raises its open-file soft limit to the hard limit", function()
    local dir = hc.tmpdir()
    hc.write(dir .. "/p.lua", hc.SYS_ALL)
    local srv = hc.serve({ policy = dir .. "/p.lua" })
    local limits = hc.read("/proc/" .. srv.pid .. "/limits") or ""
    local soft, hard = limits:match("Max open files%s+(%S+)%s+(%S+)")
    assert.is_not_nil(soft)
    assert.equal(hard, soft)
  end)
end)

describe("TLS on net.connect", function()
  local dir, servers = nil, {}
  local PORT = 20000 + math.random(0, 9999)

  local function sh(cmd)
    local ok = os.execute("(" .. cmd .. ") >/dev/null 2>&1")
    assert(ok, "command failed: " .. cmd)
  end

  -- A CA and two server certificates made now: one for localhost/127.0.0.1, one for another name.
  setup(function()
    dir = hc.tmpdir()
    local q = hc.q
    sh(string.format("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem " ..
                     "-days 2 -subj '/CN=hostcall test CA'", q(dir)))
    for _, c in ipairs({ { "good", "DNS:localhost,IP:127.0.0.1" }, { "other", "DNS:other.test" } }) do
      hc.write(dir .. "/" .. c[1] .. ".ext", "subjectAltName=" .. c[2] .. "\n")
      sh(string.format("cd %s && openssl req -newkey rsa:2048 -nodes -keyout %s.key -out %s.csr " ..
                       "-subj '/CN=%s' && openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key " ..
                       "-CAcreateserial -out %s.pem -days 2 -extfile %s.ext",
                       q(dir), c[1], c[1], c[1], c[1], c[1], c[1]))
    end
    -- s_server -rev answers each line reversed; one server per certificate, bounded by timeout.
    for i, name in ipairs({ "good", "other" }) do
      local pidfile = dir .. "/" .. name .. ".pid"
      os.execute(string.format("cd %s && (timeout 120 openssl s_server -accept 127.0.0.1:%d -cert %s.pem " ..
                               "-key %s.key -rev -quiet >/dev/null 2>&1 & echo $! > %s) ",
                               q(dir), PORT + i - 1, name, name, q(pidfile)))
      servers[#servers + 1] = pidfile
    end
    -- wait until both accept
    local socket = require "socket"
    for i = 1, 2 do
      assert(hc.wait_until(function()
        local s = socket.tcp()
        s:settimeout(0.2)
        local ok = s:connect("127.0.0.1", PORT + i - 1)
        s:close()
        return ok
      end, 10), "s_server did not start")
    end
  end)

  teardown(function()
    for _, pf in ipairs(servers) do
      local pid = (hc.read(pf) or ""):match("%d+")
      if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    end
    hc.cleanup()
  end)

  local function rt_with(ca)
    local tls = ca and string.format("tls = { ca_file = %q },", ca) or ""
    return hc.runtime(string.format(
      'return { methods = { "net.*", "io.*" }, %s net = { allow = { "localhost:%d-%d", "127.0.0.1:%d-%d" } } }',
      tls, PORT, PORT + 1, PORT, PORT + 1))
  end

  local function call(rt, m, p)
    local _, r = hc.call(rt, hc.req(1, m, p))
    return r
  end

  it("verifies the certificate for the name, sends SNI, and carries data both ways", function()
    local rt = rt_with(dir .. "/ca.pem")
    for _, host in ipairs({ "localhost", "127.0.0.1" }) do
      local c = call(rt, "net.connect", { host = host, port = PORT, tls = true, timeout_ms = 5000 })
      assert.is_nil(c.error, host)
      local h = c.result.handle
      assert.equal(6, call(rt, "io.write", { handle = h, data = "aGVsbG8K" }).result.bytes_written)
      local got = ""
      while #got < 8 do
        local r = call(rt, "io.read", { handle = h, timeout_ms = 5000 })
        assert.is_nil(r.error)
        got = got .. r.result.data
        if r.result.eof then break end
      end
      assert.equal("b2xsZWgK", got)   -- "olleh\n"
      call(rt, "io.close", { handle = h })
    end
  end)

  it("refuses a certificate for another name", function()
    local rt = rt_with(dir .. "/ca.pem")
    local r = call(rt, "net.connect", { host = "localhost", port = PORT + 1, tls = true, timeout_ms = 5000 })
    refused(r, -32000, "EPROTO")
    assert.matches("hostname mismatch", r.error.message, 1, true)
  end)

  it("refuses a certificate from a CA it does not trust", function()
    local rt = rt_with(nil)
    local r = call(rt, "net.connect", { host = "localhost", port = PORT, tls = true, timeout_ms = 5000 })
    refused(r, -32000, "EPROTO")
    assert.matches("certificate verify failed", r.error.message, 1, true)
  end)

  it("fails the load when tls.ca_file cannot be read as certificates", function()
    hc.write(dir .. "/junk.pem", "not a certificate\n")
    local rt, err = hc.try_new({ policy_source = string.format(
      'return { tls = { ca_file = %q } }', dir .. "/junk.pem"), name = "acme.lua" })
    assert.is_nil(rt)
    assert.matches("acme.lua: tls.ca_file: cannot load it", err, 1, true)
  end)
end)

describe("http.fetch", function()
  local PORT = 20000 + math.random(0, 9999)
  local pidfile
  local BASE = "http://127.0.0.1:" .. PORT

  setup(function()
    local dir = hc.tmpdir()
    pidfile = dir .. "/httpd.pid"
    os.execute(string.format("(timeout 120 lua5.4 %s %d >/dev/null 2>&1 & echo $! > %s)",
                             hc.q(hc.repo .. "/spec/fixtures/net/httpd.lua"), PORT, hc.q(pidfile)))
    local socket = require "socket"
    assert(hc.wait_until(function()
      local s = socket.tcp()
      s:settimeout(0.2)
      local ok = s:connect("127.0.0.1", PORT)
      s:close()
      return ok
    end, 10), "httpd did not start")
  end)

  teardown(function()
    local pid = (hc.read(pidfile) or ""):match("%d+")
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    hc.cleanup()
  end)

  local function rt_for(rules)
    local list = {}
    for i, r in ipairs(rules) do
      local methods = r[2] and string.format(", methods = { %s }", r[2]) or ""
      list[i] = string.format("{ url = %q%s }", r[1], methods)
    end
    return hc.runtime(string.format('return { methods = { "http.*", "sys.*" }, http = { allow = { %s } } }',
                                    table.concat(list, ", ")))
  end

  local function fetch(rt, p)
    local _, r = hc.call(rt, hc.req(1, "http.fetch", p))
    return r
  end

  it("gets, follows a redirect, reads chunked and unframed bodies", function()
    local rt = rt_for({ { BASE .. "/" } })
    local r = fetch(rt, { url = BASE .. "/ok", encoding = "utf8" })
    assert.equal(200, r.result.status)
    assert.equal("hello", r.result.body)
    assert.same({ "X-Test", "yes" }, r.result.headers[2])
    r = fetch(rt, { url = BASE .. "/ok" })
    assert.equal("aGVsbG8=", r.result.body)
    r = fetch(rt, { url = BASE .. "/chunked", encoding = "utf8" })
    assert.equal("hello world", r.result.body)
    r = fetch(rt, { url = BASE .. "/nolength", encoding = "utf8" })
    assert.equal("until close", r.result.body)
    r = fetch(rt, { url = BASE .. "/redirect?to=/ok", encoding = "utf8" })
    assert.equal(200, r.result.status)
    assert.equal(BASE .. "/ok", r.result.url)
    r = fetch(rt, { url = BASE .. "/redirect?to=/ok", redirect = false })
    assert.equal(302, r.result.status)
  end)

  it("writes the request line, Host and framing itself; the guest's headers are checked", function()
    local rt = rt_for({ { BASE .. "/", '"GET", "POST"' } })
    local r = fetch(rt, { url = BASE .. "/echo", method = "POST", body = "abc", encoding = "utf8",
                          headers = { { "X-A", "1" } } })
    assert.equal(table.concat({ "POST /echo HTTP/1.1", "Host: 127.0.0.1:" .. PORT, "X-A: 1",
                                "Connection: close", "Content-Length: 3", "", "abc" }, "\n"),
                 r.result.body)
    for _, bad in ipairs({ { "Host", "evil.example" }, { "Content-Length", "0" },
                           { "Transfer-Encoding", "chunked" }, { "X", "a\r\nGET /admin HTTP/1.1" },
                           { "X\r\nY", "1" }, { "Bad Name", "1" }, { "X", "nul\0" } }) do
      refused(fetch(rt, { url = BASE .. "/echo", headers = { bad } }), -32000, "EINVAL")
    end
    -- 303 turns a POST into a GET without a body
    r = fetch(rt, { url = BASE .. "/303", method = "POST", body = "abc", encoding = "utf8" })
    assert.matches("^GET /echo HTTP/1.1\n", r.result.body)
  end)

  it("refuses what the rules do not name, on every hop", function()
    local rt = rt_for({ { BASE .. "/ok" }, { BASE .. "/redirect" }, { BASE .. "/loop" } })
    refused(fetch(rt, { url = BASE .. "/echo" }), -32001, "EACCES")           -- path outside
    refused(fetch(rt, { url = BASE .. "/okx" }), -32001, "EACCES")            -- not a segment boundary
    refused(fetch(rt, { url = BASE .. "/ok/../echo" }), -32001, "EACCES")     -- normalised first
    refused(fetch(rt, { url = BASE .. "/ok", method = "POST" }), -32001, "EACCES")   -- GET only
    refused(fetch(rt, { url = "http://127.0.0.1:" .. (PORT + 1) .. "/ok" }), -32001, "EACCES")
    refused(fetch(rt, { url = "https://127.0.0.1:" .. PORT .. "/ok" }), -32001, "EACCES")
    -- a redirect to a place the rules do not allow, and to other schemes
    refused(fetch(rt, { url = BASE .. "/redirect?to=/echo" }), -32001, "EACCES")
    refused(fetch(rt, { url = BASE .. "/redirect?to=http://127.0.0.1:" .. (PORT + 1) .. "/ok" }), -32001, "EACCES")
    refused(fetch(rt, { url = BASE .. "/redirect?to=file:///etc/passwd" }), -32001, "EACCES")
    refused(fetch(rt, { url = BASE .. "/redirect?to=gopher://127.0.0.1/" }), -32001, "EACCES")
    refused(fetch(rt, { url = BASE .. "/loop" }), -32000, "ELOOP")
    refused(fetch(rt, { url = "ftp://127.0.0.1/" }), -32001, "EACCES")
    refused(fetch(rt, { url = "http://user@127.0.0.1:" .. PORT .. "/ok" }), -32000, "EINVAL")
  end)

  it("reaches loopback only when the rule's host is an IP literal", function()
    local rt = rt_for({ { "http://localhost:" .. PORT .. "/" } })
    refused(fetch(rt, { url = "http://localhost:" .. PORT .. "/ok" }), -32001, "EACCES")
  end)

  it("bounds the body and the time, and goes on", function()
    local rt = rt_for({ { BASE .. "/" } })
    local r = fetch(rt, { url = BASE .. "/big" })
    assert.equal(-32002, r.error.code)
    assert.equal("size", r.error.data.limit)
    r = fetch(rt, { url = BASE .. "/big", max_bytes = 4 * 1024 * 1024 })
    assert.is_nil(r.error)
    assert.equal((2 * 1024 * 1024 + 2) // 3 * 4, #r.result.body)
    r = fetch(rt, { url = BASE .. "/bighead" })   -- response headers past 64 KiB
    assert.equal(-32002, r.error.code)
    assert.equal("size", r.error.data.limit)
    local t0 = hc.now()
    refused(fetch(rt, { url = BASE .. "/hang", timeout_ms = 300 }), -32000, "ETIMEDOUT")
    assert.is_true(hc.now() - t0 < 2.5)
    local _, p = hc.call(rt, hc.req(2, "sys.ping", {}))
    assert.same({}, p.result)
  end)
end)

describe("many sockets", function()
  after_each(function() hc.cleanup() end)

  it("holds 1,000 connections across four sessions with no thread per socket", function()
    local port = 20000 + math.random(0, 9999)
    local dir = hc.tmpdir()
    hc.write(dir .. "/p.lua", string.format(
      'return { methods = { "net.*", "io.*", "sys.*" }, limits = { sockets = 1100, concurrency = 512 }, ' ..
      'net = { allow = { "127.0.0.1:%d" }, listen = { "127.0.0.1:%d" } } }', port, port))
    local srv = hc.serve({ policy = dir .. "/p.lua" })
    local conns = {}
    for i = 1, 4 do conns[i] = hc.connect(srv.sock) end
    -- the listening socket's queue holds the connections: no accept is needed for them to open
    assert(conns[1]:send_line(hc.req(1, "net.listen", { addr = "127.0.0.1", port = port, backlog = 4096 })))
    local l = cjson.decode((assert(conns[1]:recv_line(5))))
    assert.is_nil(l.error)
    for i = 1, 4 do
      local batch = {}
      for j = 1, 250 do batch[j] = hc.req(j, "net.connect", { host = "127.0.0.1", port = port, timeout_ms = 10000 }) end
      assert(conns[i]:send(table.concat(batch, "\n") .. "\n", 10))
    end
    local ok = 0
    for i = 1, 4 do
      local lines = assert(conns[i]:recv_lines(250, 30))
      for _, line in ipairs(lines) do
        if cjson.decode(line).result then ok = ok + 1 end
      end
    end
    assert.equal(1000, ok)
    local status = hc.read("/proc/" .. srv.pid .. "/status") or ""
    local threads = tonumber(status:match("Threads:%s*(%d+)"))
    assert.is_true(threads <= 4, "threads: " .. tostring(threads))
    local fds = 0
    for _ in require("lfs").dir("/proc/" .. srv.pid .. "/fd") do fds = fds + 1 end
    assert.is_true(fds >= 1000, "fds: " .. fds)
    -- a session's sockets close with it
    conns[4]:close()
    assert(hc.wait_until(function()
      local n = 0
      for _ in require("lfs").dir("/proc/" .. srv.pid .. "/fd") do n = n + 1 end
      return n <= fds - 250
    end, 5), "the closed session's sockets stayed open")
  end)
end)
