-- spec/reload_spec.lua: hot reload (SIGHUP, `hostcall reload`) and `hostcall stats` through the
-- control socket (contract section 2; issue 6). Sessions in flight keep the policy they started
-- with; new sessions get the new one; a broken file keeps the old policy; no call is dropped.
-- luacheck: std +busted
local hc = require "spec.support.hc"
local cjson = require "cjson"

local SYS = 'return { methods = { "sys.*" } }'
local NONE = 'return { methods = { "fs.*" } }'   -- sys.ping no longer granted

local function ping(conn, id)
  assert(conn:send_line(hc.req(id, "sys.ping", {})))
  return cjson.decode((assert(conn:recv_line(5))))
end

local function control(sock, cmd)
  local r = hc.cli { cmd, "--control", "unix:" .. sock }
  return r.code, r.stdout
end

describe("reload", function()
  after_each(function() hc.cleanup() end)

  local function tenants_server(files)
    local dir, socks = hc.tmpdir(), hc.tmpdir()
    for name, src in pairs(files) do hc.write(dir .. "/" .. name .. ".lua", src) end
    local ctl = socks .. "/ctl"
    local srv = hc.serve({ argv = { "serve", "--tenants", dir, "--listen-dir", socks, "--control",
                                    "unix:" .. ctl, "--audit", "/dev/null" },
                           sock = socks .. "/" .. next(files) .. ".sock" })
    return srv, dir, socks, ctl
  end

  it("gives new sessions the new policy while a session in flight keeps its own", function()
    local srv, dir, socks = tenants_server({ acme = SYS })
    local old = hc.connect(socks .. "/acme.sock")
    assert.same({}, ping(old, 1).result)
    hc.write(dir .. "/acme.lua", NONE)
    srv:signal("HUP")
    assert(hc.wait_until(function() return srv:stderr():find("reload: 1 reloaded", 1, true) end, 5))
    local new = hc.connect(socks .. "/acme.sock")
    local r = ping(new, 2)
    assert.equal(-32001, r.error.code)
    assert.same({}, ping(old, 3).result)   -- the session that started before keeps its policy
  end)

  it("keeps the old policy when the new file fails, and says where", function()
    local srv, dir, socks, ctl = tenants_server({ acme = SYS, beta = SYS })
    hc.write(dir .. "/beta.lua", "return { methods = {\n  oops }")
    local code, out = control(ctl, "reload")
    assert.equal(0, code)
    assert.equal(true, cjson.decode(out).reloaded)
    assert.matches("tenant beta: reload failed, keeping the policy it had: beta.lua:2:", srv:stderr(), 1, true)
    assert.same({}, ping(hc.connect(socks .. "/beta.sock"), 1).result)
    assert.same({}, ping(hc.connect(socks .. "/acme.sock"), 1).result)
  end)

  it("adds a tenant for a new file and removes the socket of a removed one", function()
    local _, dir, socks, ctl = tenants_server({ acme = SYS, beta = SYS })
    local b = hc.connect(socks .. "/beta.sock")
    assert.same({}, ping(b, 1).result)
    hc.write(dir .. "/gamma.lua", SYS)
    os.remove(dir .. "/beta.lua")
    assert.equal(0, (control(ctl, "reload")))
    assert.same({}, ping(hc.connect(socks .. "/gamma.sock"), 1).result)
    assert.is_false(hc.exists(socks .. "/beta.sock"))
    -- the removed tenant's session drains: it is closed, not left open
    assert(b:wait_closed(5))
    local _, out = control(ctl, "stats")
    local names = {}
    for _, t in ipairs(cjson.decode(out).tenants) do names[#names + 1] = t.tenant end
    assert.same({ "acme", "gamma" }, names)
  end)

  it("drops no call and answers none with an error while reloading under load", function()
    local srv, dir, socks, ctl = tenants_server({ acme = SYS })
    local conns = {}
    for i = 1, 3 do conns[i] = hc.connect(socks .. "/acme.sock") end
    local sent, answered = 0, 0
    for round = 1, 20 do
      for _, c in ipairs(conns) do
        local batch = {}
        for j = 1, 20 do batch[j] = hc.req(round * 100 + j, "sys.ping", {}) end
        assert(c:send(table.concat(batch, "\n") .. "\n"))
        sent = sent + 20
      end
      if round % 4 == 0 then
        hc.write(dir .. "/acme.lua", SYS .. string.rep(" ", round))   -- a new load each time
        srv:signal("HUP")
      end
      for _, c in ipairs(conns) do
        local lines = assert(c:recv_lines(20, 10))
        for _, l in ipairs(lines) do
          local r = cjson.decode(l)
          assert.is_nil(r.error, l)
          answered = answered + 1
        end
      end
    end
    assert.equal(sent, answered)
    assert(hc.wait_until(function() return srv:stderr():find("reload: 1 reloaded", 1, true) end, 5))
    local _, out = control(ctl, "stats")
    local st = cjson.decode(out).tenants[1]
    assert.equal(sent, st.calls)   -- counters survive reloads
    assert.equal(0, st.errors)
  end)

  it("reloads a single --policy server on SIGHUP", function()
    local dir = hc.tmpdir()
    hc.write(dir .. "/p.lua", SYS)
    local srv = hc.serve({ policy = dir .. "/p.lua" })
    hc.write(dir .. "/p.lua", NONE)
    srv:signal("HUP")
    assert(hc.wait_until(function() return srv:stderr():find("reload: 1 reloaded", 1, true) end, 5))
    assert.equal(-32001, ping(hc.connect(srv.sock), 1).error.code)
  end)
end)

describe("stats", function()
  after_each(function() hc.cleanup() end)

  it("counts calls, errors, denials and latency per tenant", function()
    local dir, socks = hc.tmpdir(), hc.tmpdir()
    hc.write(dir .. "/acme.lua", SYS)
    hc.write(dir .. "/beta.lua", NONE)
    local ctl = socks .. "/ctl"
    hc.serve({ argv = { "serve", "--tenants", dir, "--listen-dir", socks, "--control", "unix:" .. ctl,
                        "--audit", "/dev/null" }, sock = socks .. "/acme.sock" })
    local a, b = hc.connect(socks .. "/acme.sock"), hc.connect(socks .. "/beta.sock")
    for i = 1, 10 do ping(a, i) end
    for i = 1, 3 do ping(b, i) end
    local code, out = control(ctl, "stats")
    assert.equal(0, code)
    local st = {}
    for _, t in ipairs(cjson.decode(out).tenants) do st[t.tenant] = t end
    assert.equal(10, st.acme.calls)
    assert.equal(0, st.acme.errors)
    assert.equal(3, st.beta.calls)
    assert.equal(3, st.beta.denied)
    assert.is_true(st.acme.sessions >= 1)
    assert.is_true(st.acme.p50_us >= 0 and st.acme.p99_us >= st.acme.p50_us)
    assert.is_true(st.acme.memory > 0)
    -- the socket itself: one line in, one line out, then closed
    local c = hc.connect(ctl)
    assert(c:send_line("nonsense"))
    assert.matches("unknown command", (assert(c:recv_line(5))), 1, true)
    assert(c:wait_closed(5))
  end)

  it("reports a control socket nobody listens on", function()
    local r = hc.cli { "stats", "--control", "unix:" .. hc.tmpdir() .. "/none" }
    assert.equal(1, r.code)
    assert.matches("cannot reach the control socket", r.stderr, 1, true)
  end)
end)
