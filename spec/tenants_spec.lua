-- End-to-end tests of multi-tenant serving (CONTRACT.md sections 2, 3, 8, 10):
-- `hostcall serve --tenants DIR --listen-dir DIR`, one Lua state and one socket per tenant.
-- Every test is an attack by one tenant's guest (or a broken operator file) first, then what must
-- hold for the others: no shared handler state, no reaching another tenant's mounts or handles,
-- no choosing one's tenant, per-tenant quotas, limits and sessions, broken files skipped.
-- Handler fixtures (spec/fixtures/tenants/): shared/kv.lua (module-level state, ctx.tenant, a
-- poisoning attempt), bonly/bonly.lua (a handler dir one tenant only names), noisy/noisy.lua
-- (calls that run into the limits).
-- Run: HOSTCALL_BUILD=$PWD/build busted --lua=lua5.4 spec/tenants_spec.lua
-- luacheck: std +busted
local hc = require "spec.support.hc"
local lfs = require "lfs"

local req, decode = hc.req, hc.decode

after_each(hc.cleanup)

local FIXTURES = hc.repo .. "/spec/fixtures/tenants"

-- {===== helpers =====

local function mkdir(p)
  assert(lfs.mkdir(p), "mkdir " .. p)
  return p
end

-- A fresh tree: ROOT/pol (the --tenants dir), ROOT/socks (the --listen-dir), ROOT/h/NAME (copies
-- of spec/fixtures/tenants/NAME, so policies name them relative to their own directory).
local function tree(handler_dirs)
  local root = hc.tmpdir()
  mkdir(root .. "/pol")
  mkdir(root .. "/socks")
  mkdir(root .. "/h")
  for _, name in ipairs(handler_dirs or {}) do
    mkdir(root .. "/h/" .. name)
    for f in lfs.dir(FIXTURES .. "/" .. name) do
      if f:match("%.lua$") then
        hc.write(root .. "/h/" .. name .. "/" .. f, assert(hc.read(FIXTURES .. "/" .. name .. "/" .. f)))
      end
    end
  end
  return root
end

-- Write ROOT/pol/FILE for every FILE -> source text.
local function policies(root, map)
  for file, src in pairs(map) do hc.write(root .. "/pol/" .. file, src) end
end

local function sock(root, name) return root .. "/socks/" .. name .. ".sock" end

-- Start `serve --tenants ROOT/pol --listen-dir ROOT/socks [args...]`, probing tenant `probe`'s socket.
local function serve(root, probe, opts)
  opts = opts or {}
  local argv = { "serve", "--tenants", root .. "/pol", "--listen-dir", root .. "/socks" }
  for _, a in ipairs(opts.args or {}) do argv[#argv + 1] = a end
  return hc.serve { argv = argv, sock = sock(root, probe), no_wait = opts.no_wait }
end

-- The names in a directory (without . and ..), sorted.
local function ls(dir)
  local out = {}
  for f in lfs.dir(dir) do
    if f ~= "." and f ~= ".." then out[#out + 1] = f end
  end
  table.sort(out)
  return out
end

local seq = 0

-- One request on connection c (params: a Lua value or raw JSON text); its decoded answer and line.
local function call(c, method, params, timeout)
  seq = seq + 1
  local id = "r" .. seq
  assert(c:send_line(req(id, method, params)))
  local line, err = c:recv_line(timeout or 3)
  assert(line, method .. ": no answer (" .. tostring(err) .. ")")
  assert.are.equal('"' .. id .. '"', hc.raw_id(line), line)
  return decode(line), line
end

-- The result of a call that must succeed.
local function result(c, method, params)
  local v, line = call(c, method, params)
  assert(v.result ~= nil, method .. " failed: " .. line)
  return v.result, line
end

-- The error of a call that must fail with `code` (and errno or limit `name`, when given).
local function failure(c, method, params, code, name)
  local v, line = call(c, method, params)
  assert(v.error, method .. " succeeded: " .. line)
  assert.are.equal(code, v.error.code, line)
  if name then
    local d = v.error.data or {}
    assert.are.equal(name, d.errno or d.limit, line)
  end
  return v.error, line
end

-- Decoded audit lines of FILE, once there are at least n (and the text `also`, when given), or
-- after the deadline.
local function audit(path, n, also)
  local lines = {}
  hc.wait_until(function()
    local text = hc.read(path) or ""
    lines = hc.lines(text)
    return #lines >= n and (not also or text:find(also, 1, true))
  end, 3)
  local out = {}
  for i, l in ipairs(lines) do out[i] = decode(l) end
  return out
end

local function utf8_write(path, text) return { path = path, data = text, encoding = "utf8" } end

-- }=====

describe("serve --tenants: two tenants side by side", function()
  it("a's guest cannot reach b: handler state, mounts, handles, per-tenant handlers, grants", function()
    local root = tree { "shared", "bonly" }
    mkdir(root .. "/data")
    for _, t in ipairs { "a", "b" } do mkdir(root .. "/data/" .. t) end
    local secret = root .. "/data/a/secret.txt"
    hc.write(secret, "a's secret")
    local all = '"sys.*", "kv.*", "fs.*", "io.*", "bonly.*"'
    policies(root, {
      ["a.lua"] = "return { methods = { " .. all .. ' }, handlers = { "../h/shared" },\n' ..
                  '  mounts = { ["/d"] = { path = "../data/a", perms = "rw" },\n' ..
                  '             ["/aonly"] = { path = "../data/a", perms = "ro" } } }\n',
      -- b: the same guest path /d, another host directory; one more handler dir of its own
      ["b.lua"] = "return { methods = { " .. all .. ' }, handlers = { "../h/shared", "../h/bonly" },\n' ..
                  '  mounts = { ["/d"] = { path = "../data/b", perms = "rw" } } }\n',
      -- c: a mount on a's very directory, but no grant for fs.*, io.* or kv.*
      ["c.lua"] = 'return { methods = { "sys.*" }, handlers = { "../h/shared" },\n' ..
                  '  mounts = { ["/d"] = { path = "../data/a", perms = "rw" } } }\n',
    })
    serve(root, "c")
    local a, b, c = hc.connect(sock(root, "a")), hc.connect(sock(root, "b")), hc.connect(sock(root, "c"))

    -- module-level state of a handler file both policies load from the same directory
    result(a, "kv.set", { key = "k", value = "a-secret" })
    for i = 1, 3 do assert.are.equal(i, result(a, "kv.count").n) end
    failure(b, "kv.get", { key = "k" }, -32000, "ENOENT")
    assert.are.equal(1, result(b, "kv.count").n)
    result(b, "kv.set", { key = "k", value = "b-value" })
    assert.are.equal("a-secret", result(a, "kv.get", { key = "k" }).value)
    assert.are.equal("b-value", result(b, "kv.get", { key = "k" }).value)
    assert.are.equal(4, result(a, "kv.count").n)
    assert.are.equal("a", result(a, "kv.whoami").tenant)
    assert.are.equal("b", result(b, "kv.whoami").tenant)
    -- a tries to poison globals and the string metatable; b's copy does not see it
    result(a, "kv.poison")
    assert.are.same({ upper = "X", poison = true }, result(b, "kv.probe"))

    -- a handler directory only b's policy names: a does not even see its methods
    assert.are.equal("b-secret", result(b, "bonly.secret").secret)
    failure(a, "bonly.secret", nil, -32601)
    local _, described = result(a, "sys.describe")
    assert.falsy(described:find("bonly", 1, true), "a's sys.describe shows b's handler")

    -- mounts: the same guest path is a different directory; a's other mount does not exist for b
    assert.are.equal("a's secret", result(a, "fs.read", { path = "/d/secret.txt", encoding = "utf8" }).data)
    failure(b, "fs.read", { path = "/d/secret.txt", encoding = "utf8" }, -32000, "ENOENT")
    failure(b, "fs.read", { path = "/aonly/secret.txt" }, -32001, "EPERM")
    failure(b, "fs.read", { path = "/d/../../a/secret.txt" }, -32001, "EPERM")
    failure(b, "fs.read", { path = "/d/../a/secret.txt" }, -32001, "EPERM")
    failure(b, "fs.read", { path = secret }, -32001, "EPERM")
    failure(b, "fs.write", utf8_write("/aonly/secret.txt", "owned"), -32001, "EPERM")
    local entries = result(b, "fs.list", { path = "/" }).entries
    assert.are.equal(1, #entries)
    assert.are.equal("d", entries[1].name)
    -- a relative symlink out of b's mount towards a's directory: never followed
    call(b, "fs.symlink", { target = "../a/secret.txt", path = "/d/link" })
    local v, line = call(b, "fs.read", { path = "/d/link", encoding = "utf8" })
    assert.is_nil(v.result, "b read a's file through a symlink: " .. line)
    result(b, "fs.write", utf8_write("/d/secret.txt", "b was here"))
    assert.are.equal("b was here", hc.read(root .. "/data/b/secret.txt"))

    -- handles: a's open handle token is nothing in b's session
    local _, opened = result(a, "fs.open", { path = "/d/secret.txt", mode = "r" })
    local h = assert(opened:match('"handle":("[^"]*")') or opened:match('"handle":(%-?%d+)'), opened)
    failure(b, "io.read", '{"handle":' .. h .. '}', -32000, "EBADF")
    failure(b, "io.write", '{"handle":' .. h .. ',"data":"eA=="}', -32000, "EBADF")
    failure(b, "io.close", '{"handle":' .. h .. '}', -32000, "EBADF")
    assert.are.equal(#"a's secret", result(a, "io.read", '{"handle":' .. h .. '}').bytes_read)

    -- grants: c mounts a's very directory but is not granted fs.*, io.* or kv.*
    failure(c, "fs.read", { path = "/d/secret.txt" }, -32001, "EACCES")
    failure(c, "fs.write", utf8_write("/d/secret.txt", "c was here"), -32001, "EACCES")
    failure(c, "fs.remove", { path = "/d/secret.txt" }, -32001, "EACCES")
    failure(c, "io.read", '{"handle":' .. h .. '}', -32001, "EACCES")
    failure(c, "kv.get", { key = "k" }, -32001, "EACCES")
    assert.are.same({}, result(c, "sys.ping"))

    -- a's host file never changed
    assert.are.equal("a's secret", hc.read(secret))
    a:close()
    b:close()
    c:close()
  end)

  it("server-wide --handlers are loaded per tenant too: module state is not shared", function()
    local root = tree { "shared" }
    policies(root, {
      ["a.lua"] = 'return { methods = { "sys.*", "kv.*" } }\n',
      ["b.lua"] = 'return { methods = { "sys.*", "kv.*" } }\n',
    })
    serve(root, "b", { args = { "--handlers", root .. "/h/shared" } })
    local a, b = hc.connect(sock(root, "a")), hc.connect(sock(root, "b"))
    result(a, "kv.set", { key = "x", value = "1" })
    result(a, "kv.count")
    result(a, "kv.count")
    failure(b, "kv.get", { key = "x" }, -32000, "ENOENT")
    assert.are.equal(1, result(b, "kv.count").n)
    assert.are.equal(3, result(a, "kv.count").n)
    a:close()
    b:close()
  end)
end)

describe("serve --tenants: the tenant is the socket's", function()
  it("nothing a guest sends chooses its tenant; audit lines carry the socket's tenant", function()
    local root = tree { "shared" }
    mkdir(root .. "/data")
    mkdir(root .. "/data/a")
    hc.write(root .. "/data/a/secret.txt", "a's secret")
    policies(root, {
      ["a.lua"] = 'return { methods = { "sys.*", "kv.*", "fs.*" }, handlers = { "../h/shared" },\n' ..
                  '  mounts = { ["/d"] = { path = "../data/a", perms = "rw" } } }\n',
      ["b.lua"] = 'return { methods = { "sys.*", "kv.*" }, handlers = { "../h/shared" } }\n',
    })
    local log = root .. "/audit.log"
    serve(root, "b", { args = { "--audit", log } })
    local a, b = hc.connect(sock(root, "a")), hc.connect(sock(root, "b"))

    -- a has a long call in flight whose id b knows
    assert(a:send_line(req("a-sleep", "sys.sleep", '{"ms":300}')))

    assert.are.same({}, result(b, "sys.ping", { tenant = "a" }))
    assert.are.equal("b", result(b, "kv.whoami", { tenant = "a", session = 1 }).tenant)
    for _, m in ipairs { "a/fs.read", "acme/fs.read", "a.fs.read", "a:fs.read", "../a/fs.read", "a/sys.ping" } do
      failure(b, m, { path = "/d/secret.txt", encoding = "utf8" }, -32601)
    end
    -- a "tenant" member in the envelope: refused as an invalid request, or served as b (no grant)
    for _, frame in ipairs {
      '{"jsonrpc":"2.0","id":"env1","tenant":"a","method":"fs.read",' ..
        '"params":{"path":"/d/secret.txt","encoding":"utf8"}}',
      '{"tenant":"a","jsonrpc":"2.0","id":"env2","method":"fs.read","params":{"path":"/d/secret.txt"}}',
    } do
      assert(b:send_line(frame))
      local line = assert(b:recv_line(3))
      local v = decode(line)
      assert.is_nil(v.result, "b read a's file: " .. line)
      assert.is_true(v.error.code == -32600 or v.error.code == -32001, line)
    end
    assert(b:send_line('{"jsonrpc":"2.0","id":"env3","tenant":"a","method":"kv.whoami"}'))
    local line = assert(b:recv_line(3))
    local v = decode(line)
    if v.result then assert.are.equal("b", v.result.tenant, line) else assert.are.equal(-32600, v.error.code, line) end
    -- in a batch
    assert(b:send_line('[{"jsonrpc":"2.0","id":"bat1","method":"kv.whoami","params":{"tenant":"a"}},' ..
                       '{"jsonrpc":"2.0","id":"bat2","method":"a/kv.whoami"}]'))
    local arr = decode(assert(b:recv_line(3)))
    assert.are.equal(2, #arr)
    for _, m in ipairs(arr) do
      if m.id == "bat1" then assert.are.equal("b", m.result.tenant) else assert.are.equal(-32601, m.error.code) end
    end
    -- b cancels a's call by its id: a's call is untouched
    assert(b:send_line('{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"a-sleep"}}'))
    assert.are.same({}, result(b, "sys.ping"))
    assert.are.equal('{"jsonrpc":"2.0","id":"a-sleep","result":{}}', a:recv_line(3))

    -- 14 calls of b (the $/cancelRequest may be audited too) and a's sleep
    local lines = audit(log, 15, '"method":"sys.sleep"')
    local sessions = {}
    for i, l in ipairs(lines) do
      local want = l.method == "sys.sleep" and "a" or "b"
      assert.are.equal(want, l.tenant, hc.lines(hc.read(log))[i])
      sessions[l.tenant] = sessions[l.tenant] or l.session
      assert.are.equal(sessions[l.tenant], l.session)
    end
    assert.is_truthy(sessions.a and sessions.b)
    a:close()
    b:close()
  end)
end)

describe("serve --tenants: quotas are per tenant", function()
  it("a hitting its mount quota does not stop b's writes, and b's bytes do not count for a", function()
    local root = tree()
    mkdir(root .. "/data")
    for _, t in ipairs { "a", "b" } do mkdir(root .. "/data/" .. t) end
    local function pol(t)
      return 'return { methods = { "fs.*", "sys.*" },\n' ..
             '  mounts = { ["/d"] = { path = "../data/' .. t .. '", perms = "rw", quota = 1000 } } }\n'
    end
    policies(root, { ["a.lua"] = pol("a"), ["b.lua"] = pol("b") })
    serve(root, "b")
    local a, b = hc.connect(sock(root, "a")), hc.connect(sock(root, "b"))
    assert.are.equal(800, result(a, "fs.write", utf8_write("/d/one", ("a"):rep(800))).bytes_written)
    failure(a, "fs.write", utf8_write("/d/two", ("a"):rep(800)), -32002, "quota")
    assert.is_false(hc.exists(root .. "/data/a/two"), "the refused write created its file")
    failure(a, "fs.write", { path = "/d/one", data = ("a"):rep(300), encoding = "utf8", append = true },
            -32002, "quota")
    assert.are.equal(800, #hc.read(root .. "/data/a/one"))
    -- b, right after: its own quota, untouched by a's 800 bytes
    assert.are.equal(800, result(b, "fs.write", utf8_write("/d/one", ("b"):rep(800))).bytes_written)
    assert.are.equal(150, result(b, "fs.write", utf8_write("/d/two", ("b"):rep(150))).bytes_written)
    -- a has 200 bytes left, whatever b stored (950 bytes)
    assert.are.equal(150, result(a, "fs.write", utf8_write("/d/three", ("a"):rep(150))).bytes_written)
    failure(a, "fs.write", utf8_write("/d/four", ("a"):rep(100)), -32002, "quota")
    failure(b, "fs.write", utf8_write("/d/three", ("b"):rep(100)), -32002, "quota")
    assert.are.equal(("b"):rep(800), hc.read(root .. "/data/b/one"))
    assert.are.equal(("a"):rep(800), hc.read(root .. "/data/a/one"))
    a:close()
    b:close()
  end)
end)

describe("serve --tenants: a noisy tenant at its limits", function()
  it("a spins and allocates to its caps while b's pings stay prompt; a works afterwards", function()
    local root = tree { "noisy" }
    policies(root, {
      -- time_ms leaves the allocators room: tenants take turns for slices, so a's six calls
      -- share a's turn (a's share does not grow with its number of calls)
      ["a.lua"] = 'return { methods = { "sys.*", "noisy.*" }, handlers = { "../h/noisy" },\n' ..
                  '  limits = { instructions = 10^12, time_ms = 2500, memory = 16 * 2^20 } }\n',
      ["c.lua"] = 'return { methods = { "sys.*", "noisy.*" }, handlers = { "../h/noisy" },\n' ..
                  '  limits = { instructions = 10^8, time_ms = 3000 } }\n',
      ["b.lua"] = 'return { methods = { "sys.*", "noisy.*" }, handlers = { "../h/noisy" } }\n',
    })
    serve(root, "b")
    local a1, a2 = hc.connect(sock(root, "a")), hc.connect(sock(root, "a"))
    local c1 = hc.connect(sock(root, "c"))
    local b = hc.connect(sock(root, "b"))
    -- the storm: four spins and two allocators in a, two spins in c
    local function frames(list)
      local out = {}
      for i, m in ipairs(list) do out[i] = req(m[1], m[2]) end
      return table.concat(out, "\n") .. "\n"
    end
    assert(a1:send(frames { { "s1", "noisy.spin" }, { "s2", "noisy.spin" }, { "m1", "noisy.mem" } }))
    assert(a2:send(frames { { "s3", "noisy.spin" }, { "s4", "noisy.spin" }, { "m2", "noisy.mem" } }))
    assert(c1:send(frames { { "i1", "noisy.spin" }, { "i2", "noisy.spin" } }))
    local t0 = hc.now()
    local worst, n = 0, 0
    while hc.now() - t0 < 1.3 do
      local t = hc.now()
      local v = call(b, n % 5 == 4 and "noisy.ok" or "sys.ping", nil, 2)
      assert(v.result, "b's call failed during the storm")
      worst = math.max(worst, hc.now() - t)
      n = n + 1
      hc.sleep(0.02)   -- pacing of b's pings, not synchronisation
    end
    assert.is_true(n >= 3, "only " .. n .. " of b's calls answered in 1.3 s")
    assert.is_true(worst < 0.5, "b's slowest answer during the storm took " .. worst .. " s")
    -- a's and c's calls each end at their own limit
    local got = {}
    for _, conn in ipairs { a1, a2, c1 } do
      local out, err = conn:recv_lines(conn == c1 and 2 or 3, 8)
      for _, line in ipairs(out) do got[decode(line).id] = decode(line) end
      assert.are.equal(conn == c1 and 2 or 3, #out, "answers missing: " .. tostring(err))
    end
    for id, want in pairs { s1 = "time", s2 = "time", s3 = "time", s4 = "time", m1 = "memory", m2 = "memory",
                            i1 = "instructions", i2 = "instructions" } do
      local e = got[id] and got[id].error
      assert(e, id .. ": " .. tostring(got[id] and got[id].result))
      assert.are.equal(-32002, e.code, id)
      assert.are.equal(want, e.data.limit, id)
    end
    -- and the noisy tenants' next calls work
    assert.is_true(result(a1, "noisy.ok").ok)
    assert.are.same({}, result(a2, "sys.ping"))
    assert.is_true(result(c1, "noisy.ok").ok)
    assert.is_true(result(b, "noisy.ok").ok)
    a1:close()
    a2:close()
    c1:close()
    b:close()
  end)
end)

describe("serve --tenants: a noisy tenant with many calls in flight", function()
  -- The attack: calls in flight are a's to spend (limits.concurrency, 256 per session by default,
  -- and 64 sessions): 64 busy calls must not make b wait for a's whole time_ms.
  it("64 spinning calls of a (within its default concurrency) do not starve b's pings", function()
    local root = tree { "noisy" }
    policies(root, {
      ["a.lua"] = 'return { methods = { "sys.*", "noisy.*" }, handlers = { "../h/noisy" },\n' ..
                  '  limits = { instructions = 10^12, time_ms = 1500 } }\n',
      ["b.lua"] = 'return { methods = { "sys.*" } }\n',
    })
    serve(root, "b")
    local a1, a2 = hc.connect(sock(root, "a")), hc.connect(sock(root, "a"))
    local b = hc.connect(sock(root, "b"))
    for _, conn in ipairs { a1, a2 } do
      local parts = {}
      for i = 1, 32 do parts[i] = req(i, "noisy.spin") end
      assert(conn:send(table.concat(parts, "\n") .. "\n"))
    end
    hc.sleep(0.05)   -- let the storm start
    local t0 = hc.now()
    local worst, n = 0, 0
    while hc.now() - t0 < 1.2 do
      local t = hc.now()
      local v = call(b, "sys.ping", nil, 8)
      assert(v.result, "b's ping failed during the storm")
      worst = math.max(worst, hc.now() - t)
      n = n + 1
      hc.sleep(0.02)   -- pacing of b's pings, not synchronisation
    end
    -- a's calls all end at their time limit
    for _, conn in ipairs { a1, a2 } do
      local out, err = conn:recv_lines(32, 8)
      assert.are.equal(32, #out, "a's answers missing: " .. tostring(err))
      for _, line in ipairs(out) do assert.are.equal("time", decode(line).error.data.limit, line) end
    end
    assert.is_true(worst < 0.5, "b's slowest ping during a's storm took " .. worst .. " s (" .. n .. " pings)")
    assert.are.same({}, result(a1, "sys.ping"))
    a1:close()
    a2:close()
    b:close()
  end)
end)

describe("serve --tenants: sessions are counted per tenant", function()
  it("a's limits.sessions = 1 refuses a's second connection while b accepts several", function()
    local root = tree()
    policies(root, {
      ["a.lua"] = 'return { methods = { "sys.*" }, limits = { sessions = 1 } }\n',
      ["b.lua"] = 'return { methods = { "sys.*" } }\n',
    })
    local srv = serve(root, "b")   -- the readiness probe goes to b, never to a
    local a1 = hc.connect(sock(root, "a"))
    assert.are.same({}, result(a1, "sys.ping"))
    local a2 = hc.try_connect(sock(root, "a"))
    if a2 then
      a2:send_line(req(1, "sys.ping"))
      assert.is_true(a2:wait_closed(3), "a's second session was not closed")
      assert.are.equal("", a2.buf, "a's second session was served")
      a2:close()
    end
    assert.truthy(hc.wait_until(function() return srv:stderr():find("refused", 1, true) end, 3),
                  "no log line: " .. srv:stderr())
    local bs = {}
    for i = 1, 5 do
      bs[i] = hc.connect(sock(root, "b"))
      assert.are.same({}, result(bs[i], "sys.ping"))
    end
    for i = 1, 5 do assert.are.same({}, result(bs[i], "sys.ping")) end
    assert.are.same({}, result(a1, "sys.ping"))
    -- a's slot comes back when its session ends
    a1:close()
    local ok = hc.wait_until(function()
      local d = hc.try_connect(sock(root, "a"))
      if not d then return nil end
      d:send_line(req(9, "sys.ping"))
      local line = d:recv_line(0.5)
      d:close()
      return line == '{"jsonrpc":"2.0","id":9,"result":{}}'
    end, 3, 0.05)
    assert.is_true(ok, "a could not open a session after its only one ended")
    for i = 1, 5 do bs[i]:close() end
  end)
end)

describe("serve --tenants: broken operator files", function()
  local LONG = ("n"):rep(65)

  it("broken policies are logged by file and skipped; the good tenants serve", function()
    local root = tree()
    mkdir(root .. "/hbad")
    hc.write(root .. "/hbad/broken.lua", "return {\n  ['x.y'] = { call = function( end },\n}\n")
    local ok_src = 'return { methods = { "sys.*" } }\n'
    policies(root, {
      ["good1.lua"] = ok_src,
      ["good2.lua"] = 'return { tenant = "good2", methods = { "sys.*" } }\n',
      ["syntax.lua"] = 'return {\n  methods = { "sys.*" },\n  limits = { = 3 },\n}\n',
      ["boom.lua"] = "local x = nil\nreturn x.y\n",
      -- policies claiming another tenant's name, before and after it in name order
      ["aaa.lua"] = 'return { tenant = "good1", methods = {} }\n',
      ["wrong.lua"] = 'return { tenant = "good2", methods = {} }\n',
      ["bad name.lua"] = ok_src,
      ["-dash.lua"] = ok_src,
      [LONG .. ".lua"] = ok_src,
      ["caf\xc3\xa9.lua"] = ok_src,
      ["hbad.lua"] = 'return { methods = { "sys.*" }, handlers = { "../hbad" } }\n',
      [".hidden.lua"] = ok_src,
      ["notes.txt"] = ok_src,
      ["good3.lua.bak"] = ok_src,
      [".lua"] = ok_src,
    })
    mkdir(root .. "/pol/dir.lua")
    local log = root .. "/audit.log"
    local srv = serve(root, "good2", { args = { "--audit", log } })
    local err = srv:stderr()
    assert.are.same({ "good1.sock", "good2.sock" }, ls(root .. "/socks"))
    assert.truthy(err:find("serving 2 tenants", 1, true), err)
    assert.truthy(err:find("syntax.lua:3:", 1, true), err)
    assert.truthy(err:find("boom.lua:2:", 1, true), err)
    for _, f in ipairs { "syntax.lua", "boom.lua", "aaa.lua", "wrong.lua", "bad name.lua", "-dash.lua",
                         LONG .. ".lua", "caf\xc3\xa9.lua", "hbad.lua", "dir.lua" } do
      assert.truthy(err:find("tenant " .. f .. " skipped", 1, true), f .. " not logged: " .. err)
    end
    -- no host directory in the messages about the files' contents
    for _, l in ipairs(hc.lines(err)) do
      if l:find(" skipped: ", 1, true) and not l:find("dir.lua", 1, true) then
        assert.falsy(l:find(root, 1, true), l)
      end
    end
    -- good1 and good2 are served by their own policies, not by the files that claimed their names
    for _, t in ipairs { "good1", "good2" } do
      local c = hc.connect(sock(root, t))
      assert.are.same({}, result(c, "sys.ping"))
      c:close()
    end
    local lines = audit(log, 2)
    assert.are.equal(2, #lines)
    assert.are.same({ "good1", "good2" }, { lines[1].tenant, lines[2].tenant })
  end)

  it("a NAME.lua that is a directory: skipped, logged by its file name, never a host directory", function()
    local root = tree()
    policies(root, { ["good.lua"] = 'return { methods = { "sys.*" } }\n' })
    mkdir(root .. "/pol/dir.lua")
    local srv = serve(root, "good")
    assert.are.same({ "good.sock" }, ls(root .. "/socks"))
    local line
    for _, l in ipairs(hc.lines(srv:stderr())) do
      if l:find("dir.lua", 1, true) then line = l end
    end
    assert(line, "dir.lua not logged: " .. srv:stderr())
    assert.truthy(line:find("tenant dir.lua skipped: ", 1, true), line)
    -- docs/policy-guide.md: "Every message starts with the policy file's base name (never a host
    -- directory)"
    assert.falsy(line:find(root, 1, true), line)
  end)

  it("a directory where nothing loads: exit 2, no socket left", function()
    local root = tree()
    policies(root, {
      ["syntax.lua"] = 'return {\n  methods = { "sys.*" },\n  limits = { = 3 },\n}\n',
      ["wrong.lua"] = 'return { tenant = "other", methods = { "sys.*" } }\n',
      ["bad name.lua"] = 'return { methods = { "sys.*" } }\n',
      ["notes.txt"] = 'return { methods = { "sys.*" } }\n',
    })
    local r = hc.cli({ "serve", "--tenants", root .. "/pol", "--listen-dir", root .. "/socks" }, { timeout = 10 })
    assert.are.equal(2, r.code, r.stderr)
    assert.truthy(r.stderr:find("syntax.lua:3:", 1, true), r.stderr)
    assert.are.same({}, ls(root .. "/socks"))
    -- an empty directory, and one that does not exist
    local empty = mkdir(root .. "/empty")
    r = hc.cli({ "serve", "--tenants", empty, "--listen-dir", root .. "/socks" }, { timeout = 10 })
    assert.are.equal(2, r.code, r.stderr)
    r = hc.cli({ "serve", "--tenants", root .. "/nope", "--listen-dir", root .. "/socks" }, { timeout = 10 })
    assert.are.equal(2, r.code, r.stderr)
    assert.are.same({}, ls(root .. "/socks"))
  end)
end)

describe("serve --tenants: socket files", function()
  it("mode 0600 even under umask 0; SIGTERM drains calls in flight, exits 0, removes them", function()
    local root = tree()
    policies(root, {
      ["a.lua"] = 'return { methods = { "sys.*" } }\n',
      ["b.lua"] = 'return { methods = { "sys.*" } }\n',
    })
    local bin = hc.bin
    hc.bin = "/bin/sh"
    local ok, srv = pcall(hc.serve, {
      argv = { "-c", "umask 000 && exec " .. hc.q(bin) .. " serve --tenants " .. hc.q(root .. "/pol") ..
                     " --listen-dir " .. hc.q(root .. "/socks") },
      sock = sock(root, "b"),
    })
    hc.bin = bin
    assert(ok, srv)
    for _, t in ipairs { "a", "b" } do
      local p = io.popen("stat -c %a " .. hc.q(sock(root, t)))
      assert.are.equal("600", p:read("l"), t .. ".sock")
      p:close()
    end
    local c = hc.connect(sock(root, "a"))
    assert(c:send_line(req("slow", "sys.sleep", '{"ms":400}')))
    assert.are.same({}, result(c, "sys.ping"))   -- the sleep is now in flight
    srv:signal("TERM")
    assert.are.equal('{"jsonrpc":"2.0","id":"slow","result":{}}', c:recv_line(3))
    assert.are.equal(0, srv:wait_exit(5))
    assert.are.same({}, ls(root .. "/socks"))
    c:close()
  end)

  it("stale sockets left by a killed server are replaced at the next start", function()
    local root = tree()
    policies(root, { ["a.lua"] = 'return { methods = { "sys.*" } }\n' })
    local srv = serve(root, "a")
    srv:signal("KILL")
    assert.truthy(srv:wait_exit(5))
    assert.are.same({ "a.sock" }, ls(root .. "/socks"))
    serve(root, "a")
    local c = hc.connect(sock(root, "a"))
    assert.are.same({}, result(c, "sys.ping"))
    c:close()
  end)
end)

describe("serve --tenants: many tenants", function()
  it("50 tenants all get a socket and answer sys.ping as themselves", function()
    local root = tree()
    local map = {}
    for i = 0, 49 do map[string.format("t%02d.lua", i)] = 'return { methods = { "sys.*" } }\n' end
    policies(root, map)
    local log = root .. "/audit.log"
    local t0 = hc.now()
    local srv = serve(root, "t49", { args = { "--audit", log } })
    -- the line comes right after the last socket: wait for it rather than race it
    assert.truthy(hc.wait_until(function() return srv:stderr():find("serving 50 tenants", 1, true) end, 5),
                  srv:stderr())
    local want = {}
    for i = 0, 49 do want[#want + 1] = string.format("t%02d.sock", i) end
    assert.are.same(want, ls(root .. "/socks"))
    local conns = {}
    for i = 0, 49 do
      local name = string.format("t%02d", i)
      conns[i] = hc.connect(sock(root, name))
      assert(conns[i]:send_line(req(name, "sys.ping")))
    end
    for i = 0, 49 do
      local name = string.format("t%02d", i)
      assert.are.equal('{"jsonrpc":"2.0","id":"' .. name .. '","result":{}}', conns[i]:recv_line(3))
      conns[i]:close()
    end
    local lines = audit(log, 50)
    assert.are.equal(50, #lines)
    for _, l in ipairs(lines) do assert.are.equal(l.id, l.tenant) end
    assert.is_true(hc.now() - t0 < 10, "50 tenants took " .. (hc.now() - t0) .. " s")
  end)
end)
