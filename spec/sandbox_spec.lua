-- The red team's spec of the tenant sandbox (issue 3; CONTRACT.md sections 8-9; docs/handlers.md).
-- Every attack is one handler file in spec/fixtures/sandbox/ with one exact expected outcome:
-- the attack is written first, then the defence it must meet. After each attack the runtime must
-- still answer sys.ping, and another tenant must still answer its own handler unchanged.
--
-- Attacks that would hang or crash the process if their defence failed run in a child process
-- (`timeout`, `ulimit -v`), so a failed defence fails its test instead of hanging the suite.
-- Run: cmake -S . -B build && cmake --build build -j2
--      timeout 900 busted --lua=lua5.4 spec/sandbox_spec.lua
-- luacheck: std +busted
local hc = require "spec.support.hc"
local cjson = require "cjson"

local FIXTURES = hc.repo .. "/spec/fixtures/sandbox"
local MiB = 1024 * 1024
local CHILD_TIMEOUT = 8            -- seconds a child may take before it counts as hung
local CHILD_VMEM_KB = 2 * 1024 * 1024   -- the child's address space: a runaway host buffer fails

-- {===== policies and handler directories =====

local function limits_src(limits)
  local l = { time_ms = 1000, memory = 16 * MiB }
  for k, v in pairs(limits or {}) do l[k] = v end
  local keys = {}
  for k in pairs(l) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = string.format("%s = %d", k, l[k]) end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

local function policy(limits, extra)
  return "return { methods = { 'sys.*', 'atk.*' }, limits = " .. limits_src(limits) ..
         (extra and (", " .. extra) or "") .. " }"
end

-- A fresh directory holding copies of the named fixture files (each attack loads only its own).
local function fixture_dir(files)
  local dir = hc.tmpdir()
  for _, f in ipairs(files) do
    local src = assert(hc.read(FIXTURES .. "/" .. f), "no fixture " .. f)
    hc.write(dir .. "/" .. f, src)
  end
  return dir
end

-- }=====

-- {===== requests and answers =====

local next_id = 0
local function request(method, params)
  next_id = next_id + 1
  return hc.req(next_id, method, params)
end

local function batch(list)
  local parts = {}
  for i, c in ipairs(list) do parts[i] = hc.req(i, c[1], c[2]) end
  return "[" .. table.concat(parts, ",") .. "]"
end

-- The decoded answer of a single call; fails the test on anything but one JSON-RPC response.
local function answer(resp, what)
  assert(type(resp) == "string", (what or "call") .. ": expected a response, got " .. tostring(resp))
  local v = hc.decode(resp)
  assert(type(v) == "table" and v.jsonrpc == "2.0", "not a JSON-RPC response: " .. resp)
  return v
end

local function expect_result(resp, what)
  local v = answer(resp, what)
  assert(v.error == nil, (what or "call") .. ": expected a result, got " .. resp)
  return v.result
end

local function expect_error(resp, code, what)
  local v = answer(resp, what)
  assert(type(v.error) == "table", (what or "call") .. ": expected error " .. code .. ", got " .. resp)
  assert(v.error.code == code, (what or "call") .. ": expected error " .. code .. ", got " .. resp)
  return v.error
end

local function expect_limit(resp, limit, what)
  local e = expect_error(resp, -32002, what)
  assert(type(e.data) == "table" and e.data.limit == limit,
         (what or "call") .. ": expected data.limit " .. limit .. ", got " .. resp)
  return e
end

-- Neither a host path nor the repository's location may reach a guest.
local function assert_no_paths(text, extra)
  assert.is_nil(text:find(hc.repo, 1, true), "a host path leaked: " .. text)
  assert.is_nil(text:find("/tmp/", 1, true), "a host path leaked: " .. text)
  assert.is_nil(text:find("/work/", 1, true), "a host path leaked: " .. text)
  assert.is_nil(text:find("/usr/", 1, true), "a host path leaked: " .. text)
  if extra then assert.is_nil(text:find(extra, 1, true), "a host path leaked: " .. text) end
end

-- }=====

-- {===== the bystander tenant =====

local OTHER_POLICY = "return { methods = { 'sys.*', 'atk.*' }, limits = { time_ms = 1000 } }"
local OTHER_EXPECT = { answer = 42, tenant = "other", wrap = "real", rep = "abab",
                       encode = '[1,"x"]', time = true, globals = true }

local other_rt
local function other()
  if not other_rt then
    local dir = hc.tmpdir()
    hc.write(dir .. "/other_tenant.lua", assert(hc.read(FIXTURES .. "/other_tenant.lua")))
    other_rt = assert(hc.hostcall.new { policy_source = OTHER_POLICY, name = "other.lua",
                                        handlers = { dir } })
  end
  return other_rt
end

-- The runtime still answers sys.ping with {}, and the other tenant is unchanged.
local function bystanders(rt)
  if rt then assert.are.same({}, expect_result(rt:call(request("sys.ping")), "sys.ping after the attack")) end
  assert.are.same(OTHER_EXPECT, expect_result(other():call(request("atk.other")), "the other tenant"))
end

-- }=====

-- {===== in-process attacks =====

-- A runtime for the given fixture files; extra policy fields (authorize = ...) in `extra`.
local function tenant(files, limits, extra)
  local rt, err = hc.hostcall.new { policy_source = policy(limits, extra), name = "t.lua",
                                    handlers = { fixture_dir(files) } }
  assert(rt, "hostcall.new failed: " .. tostring(err))
  return rt
end

local function call(rt, method, params) return rt:call(request(method, params)) end

-- }=====

-- {===== attacks in a child process =====

-- The child: builds the bystander tenant and the attacked one, makes the calls, then sys.ping and
-- the bystander's call; one JSON line per step, flushed, so a hang shows how far it got.
local DRIVER = [==[
local cjson = require "cjson"
local socket = require "socket"
local f = assert(io.open(arg[1], "rb"))
local cfg = cjson.decode(f:read("a"))
f:close()
package.cpath = cfg.cpath .. "/?.so;" .. package.cpath
local hostcall = require "hostcall"
local function out(t) io.stdout:write(cjson.encode(t), "\n"); io.stdout:flush() end
local other = assert(hostcall.new { policy_source = cfg.other_policy, name = "other.lua",
                                    handlers = { cfg.other_dir } })
local t0 = socket.gettime()
local rt, err = hostcall.new { policy_source = cfg.policy, name = "t.lua", handlers = { cfg.dir } }
if not rt then
  out { step = "new", error = tostring(err), ms = (socket.gettime() - t0) * 1000 }
else
  out { step = "new", ms = (socket.gettime() - t0) * 1000 }
  for i, req in ipairs(cfg.calls) do
    local t1 = socket.gettime()
    local resp = rt:call(req)
    out { step = "call", i = i, resp = resp or cjson.null, ms = (socket.gettime() - t1) * 1000 }
  end
  out { step = "ping", resp = rt:call('{"jsonrpc":"2.0","id":"ping","method":"sys.ping"}') or cjson.null }
end
out { step = "other", resp = other:call('{"jsonrpc":"2.0","id":"o","method":"atk.other"}') or cjson.null }
out { step = "done" }
]==]

local driver_path
local function driver()
  if not driver_path or not hc.exists(driver_path) then
    driver_path = hc.write(hc.tmpdir() .. "/driver.lua", DRIVER)
  end
  return driver_path
end

-- opts: files (fixture names) or dir, limits, extra, calls = { {method, params} | raw text },
-- timeout (s), vmem_kb. Returns { rc, hung, new_error, new_ms, calls = { {resp, ms} },
-- ping, other, stderr, stdout }.
local function child(opts)
  local dir = opts.dir or fixture_dir(opts.files)
  local odir = hc.tmpdir()
  hc.write(odir .. "/other_tenant.lua", assert(hc.read(FIXTURES .. "/other_tenant.lua")))
  local reqs = {}
  for i, c in ipairs(opts.calls or {}) do
    reqs[i] = type(c) == "string" and c or hc.req(i, c[1], c[2])
  end
  local work = hc.tmpdir()
  local cfg = hc.write(work .. "/cfg.json", cjson.encode {
    cpath = hc.build, policy = opts.policy or policy(opts.limits, opts.extra), dir = dir,
    other_policy = OTHER_POLICY, other_dir = odir, calls = reqs })
  local cmd = string.format(
    "ulimit -v %d; cd %s && timeout -k 1 %d lua5.4 %s %s > %s 2> %s; echo $? > %s",
    opts.vmem_kb or CHILD_VMEM_KB, hc.q(hc.repo), opts.timeout or CHILD_TIMEOUT, hc.q(driver()),
    hc.q(cfg), hc.q(work .. "/out"), hc.q(work .. "/err"), hc.q(work .. "/rc"))
  os.execute("bash -c " .. hc.q(cmd))
  local r = { rc = tonumber((hc.read(work .. "/rc") or ""):match("%d+")), calls = {},
              stdout = hc.read(work .. "/out") or "", stderr = hc.read(work .. "/err") or "" }
  r.hung = r.rc == 124 or r.rc == 137
  for line in r.stdout:gmatch("[^\n]+") do
    local ok, s = pcall(cjson.decode, line)
    if ok then
      if s.step == "new" then r.new_error, r.new_ms = s.error, s.ms
      elseif s.step == "call" then r.calls[s.i] = { resp = s.resp ~= cjson.null and s.resp or nil, ms = s.ms }
      elseif s.step == "ping" then r.ping = s.resp ~= cjson.null and s.resp or nil
      elseif s.step == "other" then r.other = s.resp ~= cjson.null and s.resp or nil
      elseif s.step == "done" then r.done = true end
    end
  end
  return r
end

local function describe_child(r)
  return string.format("rc=%s%s; %d call(s) answered; stderr: %s", tostring(r.rc),
    r.hung and " (HUNG: killed by timeout)" or "", #r.calls, r.stderr:sub(1, 400))
end

-- The child ran to the end: not hung, not crashed; sys.ping answered {}; the other tenant
-- answered unchanged.
local function survived(r)
  assert(not r.hung, "the runtime hung: " .. describe_child(r))
  assert(r.rc == 0 and r.done, "the child died: " .. describe_child(r))
  assert.are.same({}, expect_result(r.ping, "sys.ping after the attack"))
  assert.are.same(OTHER_EXPECT, expect_result(r.other, "the other tenant"))
end

local function nth(r, i)
  local c = r.calls[i]
  assert(c, "call " .. i .. " was never answered: " .. describe_child(r))
  return c.resp, c.ms
end

-- The usual shape: the attack twice (a limit hit leaves the tenant usable and the next call is
-- metered afresh), then sys.ping, then the other tenant.
local function attack_child(files, method, limits, params, more)
  local calls = { { method, params }, { method, params } }
  for _, c in ipairs(more or {}) do calls[#calls + 1] = c end
  local r = child { files = files, limits = limits, calls = calls }
  survived(r)
  return r
end

-- }=====

-- Limits: spinning runs into time (instructions out of reach) or into instructions (time long).
local TIME = { time_ms = 300, instructions = 1000000000000 }
local INSTR = { time_ms = 5000, instructions = 2000000 }

after_each(hc.cleanup)
teardown(function() if other_rt then other_rt:close() end end)

describe("the environment", function()
  it("holds exactly the documented globals", function()
    local rt = tenant({ "env_globals.lua" })
    assert.are.same({ "_G", "_VERSION", "assert", "collectgarbage", "coroutine", "error",
                      "getmetatable", "ipairs", "load", "math", "next", "os", "pairs", "pcall",
                      "rawequal", "rawget", "rawlen", "rawset", "select", "setmetatable", "string",
                      "table", "tonumber", "tostring", "type", "utf8", "xpcall" },
                    expect_result(call(rt, "atk.globals")))
    bystanders(rt)
  end)

  it("reaches no io, os beyond time/clock, debug, package, require, dofile, loadfile, print, " ..
     "string.dump, collectgarbage beyond count - nor does code given to load()", function()
    local rt = tenant({ "env_globals.lua" })
    assert.are.same({}, expect_result(call(rt, "atk.forbidden")))
    bystanders(rt)
  end)

  it("string metatable: locked, no way to the real string table, no metatable for basic types", function()
    local rt = tenant({ "string_meta.lua" })
    assert.are.same({ meta = "false", index = false, setmeta_string = false, dump_method = true,
                      dump_lib = true, write_lib = false, method_rep = "abab" },
                    expect_result(call(rt, "atk.string_meta")))
    assert.are.same({ set = 0, got = 0 }, expect_result(call(rt, "atk.basic_meta")))
    bystanders(rt)
  end)

  it("rawset through the read-only library views (coroutine, os, string, table, math, utf8, " ..
     "ctx.json) changes nothing for another handler file or a later call", function()
    local rt = tenant({ "shared_poison.lua", "shared_victim.lua" })
    assert.are.same({}, expect_result(call(rt, "atk.poison")))
    assert.are.same({ wrap = "real", resume = "true", time = true, clock = true, rep = "abab",
                      concat = "ab", floor = 1, char = "A", encode = "[1]", decode = "table",
                      sleep = "function", describe = "table" },
                    expect_result(call(rt, "atk.victim")))
    bystanders(rt)
  end)

  it("... nor for the policy's authorize hook (which sys.ping then still passes)", function()
    -- the policy's authorize hook runs in the policy's environment and uses os and coroutine
    local rt = tenant({ "shared_poison.lua" }, nil,
      "authorize = function(call) return os.time() > 0 and " ..
      "coroutine.wrap(function() return true end)() == true end")
    assert.are.same({}, expect_result(call(rt, "sys.ping")))
    assert.are.same({}, expect_result(call(rt, "atk.poison")))
    bystanders(rt)
  end)
end)

describe("loading code", function()
  it("load() refuses bytecode whatever the mode, and anything but source text", function()
    local rt = tenant({ "bytecode_load.lua" })
    local res = expect_result(call(rt, "atk.load_binary"))
    assert.are.equal(6, #res)
    for _, r in ipairs(res) do
      assert.is_false(r.loaded, r.label .. " loaded")
      if r.label:find("reader") then
        assert.matches("only source text", r.msg, 1, true)
      else
        assert.matches("binary chunk", r.msg, 1, true)
      end
      assert_no_paths(r.msg)
    end
    bystanders(rt)
  end)

  it("a handler file of real bytecode fails to load with a clean error naming no host path", function()
    local dir = hc.tmpdir()
    local bc = string.dump(load("return { ['atk.bc'] = { call = function() return {} end } }"))
    hc.write(dir .. "/bytecode.lua", bc)
    local rt, err = hc.hostcall.new { policy_source = policy(), name = "t.lua", handlers = { dir } }
    assert.is_nil(rt)
    assert.is_string(err)
    assert.matches("bytecode%.lua", err)
    assert.matches("binary chunk", err, 1, true)
    assert_no_paths(err, dir)
    bystanders()
  end)

  it("a policy of bytecode fails to load with a clean error", function()
    local bc = string.dump(load("return { methods = { 'sys.*' } }"))
    local rt, err = hc.hostcall.new { policy_source = bc, name = "bc.lua" }
    assert.is_nil(rt)
    assert.matches("^bc%.lua: ", err)
    assert(err:find("binary chunk", 1, true) or err:find("bytecode", 1, true), err)
    bystanders()
  end)

  it("a handler file that does not parse: the error names the file, never its path", function()
    -- (written here, not kept as a fixture, so that luacheck over spec/ still parses everything)
    local dir = hc.tmpdir()
    hc.write(dir .. "/load_syntax.lua", "return {\n  ['atk.x'] = { call = function() return {} end },\n" ..
                                        "  oops oops\n}\n")
    local rt, err = hc.hostcall.new { policy_source = policy(), name = "t.lua", handlers = { dir } }
    assert.is_nil(rt)
    assert.matches("^load_syntax%.lua:3:", err)
    assert_no_paths(err, dir)
    bystanders()
  end)

  it("a handler file over 1 MiB, and one nested 400000 deep, fail cleanly", function()
    local dir = hc.tmpdir()
    hc.write(dir .. "/huge.lua", "return {} --" .. ("x"):rep(MiB))
    local rt, err = hc.hostcall.new { policy_source = policy(), name = "t.lua", handlers = { dir } }
    assert.is_nil(rt)
    assert.matches("^huge%.lua: ", err)
    assert(err:find("larger than 1 MiB", 1, true) or err:find("EFBIG", 1, true), err)
    dir = hc.tmpdir()
    hc.write(dir .. "/deep.lua", "return " .. ("{"):rep(400000) .. ("}"):rep(400000))
    rt, err = hc.hostcall.new { policy_source = policy(), name = "t.lua", handlers = { dir } }
    assert.is_nil(rt)
    assert.matches("^deep%.lua:", err)
    assert_no_paths(err, dir)
    bystanders()
  end)

  it("a handler file whose top level loops forever fails to load (instruction budget)", function()
    local r = child { files = { "load_spin.lua" } }
    assert(not r.hung, "loading hung: " .. describe_child(r))
    assert.is_string(r.new_error, "the runtime started with a looping handler file")
    assert.matches("^load_spin%.lua", r.new_error)
    assert.matches("budget", r.new_error)
    assert.are.same(OTHER_EXPECT, expect_result(r.other, "the other tenant"))
  end)

  -- string.rep("", maxinteger) is a C loop of 2^63 empty copies in stock Lua; the sandbox's
  -- string.rep answers "" at once, so the file simply loads.
  it("a handler file whose top level makes a C call that would never return loads at once", function()
    local r = child { files = { "load_c_loop.lua" }, calls = { { "atk.never" } } }
    assert(not r.hung, "loading hung (string.rep('', maxinteger) at load): " .. describe_child(r))
    assert.is_nil(r.new_error)
    assert.are.same({}, expect_result(nth(r, 1)))
    assert.are.same(OTHER_EXPECT, expect_result(r.other, "the other tenant"))
  end)

  for _, case in ipairs {
    { "load_def_meta.lua", "a method definition whose __index never returns" },
    { "load_schema_meta.lua", "a params schema whose __index and __pairs never return" },
  } do
    it(case[2] .. ": the runtime starts (or refuses the file) without running it", function()
      local r = child { files = { case[1] }, calls = { { "sys.ping" } } }
      assert(not r.hung, "loading hung: " .. describe_child(r))
      assert.are.same(OTHER_EXPECT, expect_result(r.other, "the other tenant"))
      if not r.new_error then survived(r) end
    end)
  end

  it("memory a handler file keeps from load time counts against limits.memory", function()
    local rt, err = hc.hostcall.new { policy_source = policy { memory = 8 * MiB }, name = "t.lua",
                                      handlers = { fixture_dir({ "load_hoard.lua" }) } }
    if rt then
      local got = expect_result(call(rt, "atk.hoard"))
      rt:close()
      error(string.format("a tenant limited to 8 MiB holds %d KiB (%d MiB kept from load time)",
                          got.kib, got.chunks))
    end
    assert.matches("memory", err)
    bystanders()
  end)
end)

describe("__gc", function()
  it("setmetatable refuses __gc, and one added later never runs", function()
    local rt = tenant({ "gc_metamethod.lua" })
    local r = expect_result(call(rt, "atk.gc_direct"))
    assert.is_false(r.ok)
    assert.matches("__gc", r.err, 1, true)
    expect_result(call(rt, "atk.gc_late"))
    assert.are.same({ finalized = 0 }, expect_result(call(rt, "atk.gc_count")))
    bystanders(rt)
  end)

  it("the JSON array metatable (ctx.array, params arrays) is out of the tenant's reach", function()
    local rt = tenant({ "gc_arraymt.lua" })
    local r = expect_result(call(rt, "atk.arraymt_reach", { list = { 1 } }))
    assert.is_false(r.writable, "the shared array metatable is writable")
    assert.are_not.equal("table", r.ctx_array)
    assert.are_not.equal("table", r.params_array)
    bystanders(rt)
  end)

  it("no __gc through the JSON array metatable", function()
    local rt = tenant({ "gc_arraymt.lua" })
    expect_result(call(rt, "atk.arraymt_gc"))
    assert.are.same({ finalized = 0 }, expect_result(call(rt, "atk.arraymt_count")),
                    "a tenant finalizer ran")
    bystanders(rt)
  end)

  it("the JSON array metatable cannot be changed to fool the policy's authorize hook", function()
    local rt = tenant({ "arraymt_authorize.lua" }, nil,
      "authorize = function(call) if call.method == 'atk.guarded' then " ..
      "return #call.params.paths == 0, 'paths need approval' end return true end")
    local guarded = { paths = { "/etc/shadow" } }
    expect_error(call(rt, "atk.guarded", guarded), -32001)
    expect_result(call(rt, "atk.arraymt_poison"))
    local e = expect_error(call(rt, "atk.guarded", guarded), -32001,
                           "the authorize hook after the tenant changed the array metatable")
    assert.are.equal("paths need approval", e.message)
    bystanders(rt)
  end)

  it("a looping finalizer through the JSON array metatable cannot hang the runtime", function()
    local r = child { files = { "gc_arraymt_spin.lua" }, limits = TIME,
                      calls = { { "atk.arraymt_gc_spin" }, { "atk.churn" }, { "atk.churn" } } }
    survived(r)
    assert.are.same({}, expect_result(nth(r, 1)))
    assert.are.same({}, expect_result(nth(r, 2)))
  end)
end)

describe("ctx and the runtime's private tables", function()
  it("ctx: no metatable, only plain fields, read-only, fresh per call; describe() is a copy", function()
    local rt = tenant({ "ctx_probe.lua" })
    local r = expect_result(call(rt, "atk.ctx_probe"))
    assert.are.equal("false", r.meta)
    assert.are.equal("false", r.json_meta)
    assert.is_false(r.write)
    assert.is_false(r.write_json)
    for _, kv in ipairs(r.keys) do
      assert(kv == "method:string" or kv == "session:number" or kv == "tenant:string",
             "pairs(ctx) reaches " .. kv)
    end
    assert.are.same({ left_behind = false }, expect_result(call(rt, "atk.ctx_fresh")))
    local doc = expect_result(call(rt, "sys.describe"))
    assert.is_table(doc.info)
    assert(#doc.methods >= 3, "sys.describe changed by a handler")
    bystanders(rt)
  end)

  it("an error object made by ctx.error cannot be changed into another code or limit", function()
    local rt = tenant({ "error_forge.lua" })
    local resp = call(rt, "atk.err_mutate")
    local e = expect_limit(resp, "size")
    assert.are.equal("too big", e.message)
    bystanders(rt)
  end)

  it("an error object cannot be forged (returned or raised) with the marker key", function()
    local rt = tenant({ "error_forge.lua" })
    for _, m in ipairs { "atk.err_forge", "atk.err_forge_raise" } do
      local v = answer(call(rt, m))
      assert.is_table(v.error, m)
      local ok = v.error.code == -32603 or (v.error.code == -32000 and v.error.data.errno == "ENOENT")
      assert(ok, m .. ": the runtime honoured a forged error object: " .. cjson.encode(v.error))
    end
    bystanders(rt)
  end)

  it("a call's own coroutine, kept in a global, cannot be resumed or closed by another call", function()
    local rt = tenant({ "call_thread.lua" })
    local arr = hc.decode(rt:call(batch { { "atk.ct_park", { ms = 200 } }, { "atk.ct_use" } }))
    local by = {}
    for _, m in ipairs(arr) do by[m.id] = m end
    assert.are.same({ woke = true }, by[1].result, cjson.encode(by[1]))
    assert.are.same({ resume = false, close = false, wrapped = false, own = false }, by[2].result,
                    cjson.encode(by[2]))
    bystanders(rt)
  end)

  it("a coroutine parked in another call's host wait cannot be resumed from this call", function()
    local rt = tenant({ "coroutine_steal.lua" })
    local arr = hc.decode(rt:call(batch { { "atk.co_park" }, { "atk.co_steal" } }))
    local by = {}
    for _, m in ipairs(arr) do by[m.id] = m end
    assert.is_table(by[2].result, cjson.encode(by[2]))
    assert.is_false(by[2].result.ok, "call 2 resumed call 1's parked coroutine: " .. cjson.encode(by[2]))
    assert.are.same({ ok = true, v = "slept" }, by[1].result, "call 1's wait was hijacked")
    bystanders(rt)
  end)

  it("... nor closed", function()
    local rt = tenant({ "coroutine_steal.lua" })
    local arr = hc.decode(rt:call(batch { { "atk.co_park" }, { "atk.co_close_other" } }))
    local by = {}
    for _, m in ipairs(arr) do by[m.id] = m end
    assert.are.same({ closed = false }, by[2].result, cjson.encode(by[2]))
    assert.are.same({ ok = true, v = "slept" }, by[1].result, "call 1's wait was broken")
    bystanders(rt)
  end)

  it("error messages name the handler file, never a host path", function()
    local rt = tenant({ "error_paths.lua" })
    local resp = call(rt, "atk.err_plain")
    local e = expect_error(resp, -32603)
    assert.matches("^handler error: error_paths%.lua:%d+: boom$", e.message)
    for _, m in ipairs { "atk.err_plain", "atk.err_level", "atk.err_load" } do
      assert_no_paths(call(rt, m))
    end
    local r = expect_result(call(rt, "atk.err_load"))
    assert.matches("^%(load%):1: ", r.msg)
    assert.matches("^%(load%):1: in chunk", r.msg2)
    bystanders(rt)
  end)

  it("an error object or a result whose metamethods never return is not touched", function()
    local r = child { files = { "error_paths.lua" }, limits = TIME,
                      calls = { { "atk.err_meta" }, { "atk.result_meta" } } }
    survived(r)
    local e = expect_error(nth(r, 1), -32603)
    assert.are.equal("handler error: (error object is not a string)", e.message)
    assert.are.same({ a = 1 }, expect_result(nth(r, 2)))
  end)
end)

describe("instruction and time limits cannot be swallowed", function()
  it("a plain loop: -32002 instructions", function()
    local r = attack_child({ "spin.lua" }, "atk.spin", INSTR)
    expect_limit(nth(r, 1), "instructions")
    expect_limit(nth(r, 2), "instructions")
  end)

  it("a plain loop: -32002 time", function()
    local r = attack_child({ "spin.lua" }, "atk.spin", TIME)
    expect_limit(nth(r, 1), "time")
    expect_limit(nth(r, 2), "time")
  end)

  it("a loop of waits (ctx.sleep(0)): -32002 time", function()
    local r = attack_child({ "spin.lua" }, "atk.sleep_loop", TIME)
    expect_limit(nth(r, 1), "time")
    expect_limit(nth(r, 2), "time")
  end)

  for _, case in ipairs {
    { "atk.pcall_loop", "pcall in a loop" },
    { "atk.pcall_success", "pcall, then a success" },
    { "atk.pcall_tail", "pcall, then a tail call returning a success" },
    { "atk.pcall_nested", "pcall(pcall, pcall, spin)" },
    { "atk.error_in_handler", "pcall, then a ctx.error of another kind" },
  } do
    it(case[2] .. ": -32002 time", function()
      local r = attack_child({ "pcall_swallow.lua" }, case[1], TIME)
      expect_limit(nth(r, 1), "time")
      expect_limit(nth(r, 2), "time")
    end)
  end

  it("pcall in a loop: -32002 instructions", function()
    local r = attack_child({ "pcall_swallow.lua" }, "atk.pcall_loop", INSTR)
    expect_limit(nth(r, 1), "instructions")
  end)

  for _, case in ipairs {
    { "atk.xpcall_handler_loops", "an xpcall message handler that loops" },
    { "atk.xpcall_trip_handler_loops", "a tripped budget with a message handler that loops" },
    { "atk.xpcall_success", "an xpcall handler that turns the trip into a value" },
    { "atk.xpcall_loop", "xpcall in a loop" },
  } do
    it(case[2] .. ": -32002 time", function()
      local r = attack_child({ "xpcall_swallow.lua" }, case[1], TIME)
      expect_limit(nth(r, 1), "time")
      expect_limit(nth(r, 2), "time")
    end)
  end

  -- A call that cannot yield (a C function called back into Lua) is killed once it passes a
  -- short bound, long before its time limit (2000 ms here).
  for _, case in ipairs {
    { "atk.sort_comparator", "a loop in a table.sort comparator", true },
    { "atk.sort_comparator_pcall", "table.sort with a looping comparator under pcall, in a loop", true },
    { "atk.gsub_callback", "a loop in a gsub callback", true },
    { "atk.tostring_meta", "a loop in __tostring", true },
    { "atk.close_meta", "a loop in __close" },
    { "atk.close_after_trip", "a loop in a __close run while the tripped budget unwinds" },
    { "atk.coroutine_close_once", "a loop in __close run by coroutine.close", true },
    { "atk.coroutine_close", "a loop in __close run by coroutine.close, in a loop", true },
  } do
    it(case[2] .. ": -32002 time" .. (case[3] and ", killed within the short bound" or ""), function()
      local r = attack_child({ "nonyield_loops.lua" }, case[1],
                             { time_ms = 2000, instructions = 1000000000000 })
      local resp, ms = nth(r, 1)
      expect_limit(resp, "time")
      expect_limit(nth(r, 2), "time")
      if case[3] then
        assert(ms < 1000, string.format("a call that cannot yield ran %.0f ms (limit 2000)", ms))
      end
    end)
  end

  it("a coroutine spinning after the watchdog fired in the coroutine it resumed: -32002 time", function()
    local r = attack_child({ "short_coroutines.lua" }, "atk.middle_spin", TIME)
    expect_limit(nth(r, 1), "time")
    expect_limit(nth(r, 2), "time")
  end)

  it("many short coroutines run from a coroutine: -32002 time", function()
    local r = attack_child({ "short_coroutines.lua" }, "atk.short_nested", TIME)
    expect_limit(nth(r, 1), "time")
    expect_limit(nth(r, 2), "time")
  end)

  it("many short coroutines: -32002 time", function()
    local r = attack_child({ "short_coroutines.lua" }, "atk.short_flat", TIME)
    expect_limit(nth(r, 1), "time")
  end)

  it("instructions run inside short coroutines are counted: -32002 instructions", function()
    local r = attack_child({ "short_coroutines.lua" }, "atk.short_count",
                           { time_ms = 5000, instructions = 900000 })
    expect_limit(nth(r, 1), "instructions")
    expect_limit(nth(r, 2), "instructions")
  end)

  it("a __close pending while the call waits does not run unmetered when the call is ended", function()
    local r = attack_child({ "close_on_cancel.lua" }, "atk.close_spin_sleeping", TIME)
    expect_limit(nth(r, 1), "time")
    expect_limit(nth(r, 2), "time")
  end)

  it("... nor allocate outside the tenant's memory limit", function()
    local r = attack_child({ "close_on_cancel.lua" }, "atk.close_alloc_sleeping", TIME)
    expect_limit(nth(r, 1), "time")
  end)

  it("load() of a big chunk in a loop: -32002 time", function()
    local r = attack_child({ "parser_abuse.lua" }, "atk.parse_loop", TIME)
    expect_limit(nth(r, 1), "time")
  end)
end)

describe("one long C call", function()
  -- Stock string.rep loops 2^63 times copying nothing; the sandbox's answers "" at once.
  for _, case in ipairs {
    { "atk.rep_empty", "string.rep('', maxinteger)" },
    { "atk.rep_empty_sep", "string.rep('', maxinteger, '')" },
  } do
    it(case[2] .. ": the right answer (\"\"), at once", function()
      local r = attack_child({ "c_loops.lua" }, case[1], TIME)
      assert.are.same({ s = "" }, expect_result(nth(r, 1)))
    end)
  end
  for _, case in ipairs {
    { "atk.table_move", "table.move({}, 1, maxinteger - 1, 2)" },
    { "atk.pattern_find", "a pattern with quadratic backtracking (find)" },
    { "atk.pattern_gsub", "a pattern with quadratic backtracking (gsub)" },
    { "atk.pattern_gmatch", "a pattern with cubic backtracking (gmatch)" },
    { "atk.pattern_match_pcall", "backtracking patterns under pcall, in a loop" },
  } do
    it(case[2] .. ": -32002 time", function()
      local r = attack_child({ "c_loops.lua" }, case[1], TIME)
      expect_limit(nth(r, 1), "time")
      expect_limit(nth(r, 2), "time")
    end)
  end
end)

describe("memory", function()
  for _, case in ipairs {
    { "atk.mem_table", "a table that grows forever" },
    { "atk.mem_strings_pcall", "1 MiB strings kept, each under pcall" },
    { "atk.mem_rep", "string.rep of 1 GiB" },
    { "atk.mem_rep_pcall", "string.rep of 1 GiB under pcall, then a success" },
    { "atk.mem_concat", "table.concat of 32 MiB" },
    { "atk.mem_pack", "string.pack of 1 GiB of padding" },
    { "atk.mem_coroutines", "coroutines kept forever" },
    { "atk.mem_stack", "the Lua stack of a deep recursion" },
  } do
    it(case[2] .. ": -32002 memory, and the next call works", function()
      local r = attack_child({ "memory.lua" }, case[1], { time_ms = 5000 }, nil, { { "atk.mem_small" } })
      expect_limit(nth(r, 1), "memory")
      expect_limit(nth(r, 2), "memory")
      assert.are.same({ n = 1000 }, expect_result(nth(r, 3)))
    end)
  end

  it("memory pinned by a global to within a few KiB of the limit: the next calls still run", function()
    local rt = tenant({ "memory_pinned.lua" }, { time_ms = 5000 })
    local r = expect_result(call(rt, "atk.pin_memory", { limit_kib = 16 * 1024 }))
    assert(r.pinned_kib > 16 * 1024 - 64, "the attack did not get close to the limit")
    bystanders(rt)
    bystanders(rt)
  end)

  it("ctx.json.encode of a DAG that expands to 2^100 leaves: -32002 memory", function()
    local r = attack_child({ "json_bombs.lua" }, "atk.json_encode_dag", TIME)
    expect_limit(nth(r, 1), "memory")
  end)

  for _, case in ipairs {
    { "atk.result_dag", "a result that expands to 2^100 leaves" },
    { "atk.result_wide", "a result that is one 1 MiB string 4096 times" },
  } do
    it(case[2] .. ": -32002 memory or size, not a host buffer of gigabytes", function()
      local r = attack_child({ "json_bombs.lua" }, case[1], TIME)
      local v = answer(nth(r, 1))
      assert(v.error and v.error.code == -32002 and
             (v.error.data.limit == "memory" or v.error.data.limit == "size"),
             "expected -32002 memory/size, got " .. nth(r, 1):sub(1, 300))
    end)
  end
end)

describe("stack overflows and deep data (CVE-2021-32626 class)", function()
  it("deep Lua recursion: -32002 memory (the stack is the tenant's memory)", function()
    local rt = tenant({ "recursion.lua" })
    expect_limit(call(rt, "atk.lua_recursion"), "memory")
    bystanders(rt)
  end)

  for _, m in ipairs { "atk.c_recursion_index", "atk.c_recursion_tostring", "atk.c_recursion_gsub",
                       "atk.c_recursion_coroutines", "atk.c_recursion_sort" } do
    it(m .. ": -32603 stack overflow", function()
      local rt = tenant({ "recursion.lua" })
      local e = expect_error(call(rt, m), -32603)
      assert.matches("stack overflow", e.message, 1, true)
      bystanders(rt)
    end)
  end

  it("atk.c_recursion_pcall: each pcall catches the overflow below it", function()
    local rt = tenant({ "recursion.lua" })
    local res = expect_result(call(rt, "atk.c_recursion_pcall"))
    assert.matches("stack overflow", res[#res], 1, true)
    bystanders(rt)
  end)

  it("deep and cyclic data: clean errors from the codec", function()
    local rt = tenant({ "json_bombs.lua" })
    local r = expect_result(call(rt, "atk.json_decode_deep"))
    assert.is_false(r.decoded)
    assert.matches("deep", r.err)
    r = expect_result(call(rt, "atk.encode_cyclic"))
    assert.is_false(r.encoded)
    assert.matches("too deep or cyclic", r.err, 1, true)
    for _, m in ipairs { "atk.result_cyclic", "atk.result_deep" } do
      local e = expect_error(call(rt, m), -32603)
      assert.matches("too deep or cyclic", e.message, 1, true)
    end
    bystanders(rt)
  end)

  it("params nested deeper than the codec allows", function()
    local rt = tenant({ "spin.lua" })
    local deep = ("["):rep(100000) .. ("]"):rep(100000)
    local v = answer(rt:call('{"jsonrpc":"2.0","id":1,"method":"atk.ok","params":' .. deep .. '}'))
    assert.is_table(v.error)
    assert.is_true(v.error.code == -32700 or v.error.code == -32600 or v.error.code == -32602,
                   cjson.encode(v.error))
    bystanders(rt)
  end)
end)

describe("the parser and lexer (CVE-2025-49844 / 46819 classes)", function()
  for _, m in ipairs { "atk.parse_nested_parens", "atk.parse_nested_tables",
                       "atk.parse_nested_functions", "atk.parse_nested_blocks",
                       "atk.parse_concat_chain", "atk.parse_unary_chain", "atk.parse_many_locals",
                       "atk.parse_many_upvalues", "atk.parse_huge", "atk.parse_garbage" } do
    it(m .. ": load() returns nil and a message", function()
      local rt = tenant({ "parser_abuse.lua" }, { time_ms = 5000 })
      local r = expect_result(call(rt, m))
      assert.is_false(r.loaded)
      assert.is_true(#r.msg > 0)
      assert_no_paths(r.msg)
      bystanders(rt)
    end)
  end

  for _, m in ipairs { "atk.parse_long_bracket", "atk.parse_many_constants" } do
    it(m .. ": parses or fails, cleanly", function()
      local rt = tenant({ "parser_abuse.lua" }, { time_ms = 5000 })
      local r = expect_result(call(rt, m))
      assert.is_boolean(r.loaded)
      bystanders(rt)
    end)
  end
end)

describe("integer overflows and huge counts (CVE-2025-46817 class)", function()
  it("are clean errors a handler can catch", function()
    local rt = tenant({ "overflow.lua" }, { time_ms = 5000 })
    local r = expect_result(call(rt, "atk.overflows"))
    for _, k in ipairs { "unpack_huge", "unpack_wrap", "unpack_neg", "rep_too_large",
                         "rep_sep_too_large", "format_int", "format_width", "format_precision",
                         "format_q", "format_many", "pack_size", "pack_align", "unpack_fmt",
                         "unpack_pos", "utf8_char", "utf8_codepoint", "byte_slice", "select_neg",
                         "concat_range", "insert_pos", "move_wrap", "move_dest", "random_range",
                         "tointeger", "idiv_zero", "mod_zero" } do
      assert.is_string(r[k], k)
      assert(r[k]:find("^error: "), k .. " did not fail: " .. tostring(r[k]))
    end
    for _, k in ipairs { "unpack_wrap2", "packsize_huge", "min_idiv", "shift", "sub_extreme",
                         "find_init", "tostring_nan" } do
      assert.is_string(r[k], k)
    end
    bystanders(rt)
  end)
end)

describe("fairness (hostcall serve --listen unix:PATH)", function()
  local function server(limits)
    local dir = hc.tmpdir()
    local pol = hc.write(dir .. "/fair.lua", policy(limits))
    local hdir = fixture_dir({ "spin.lua", "nonyield_loops.lua" })
    return hc.serve { policy = pol, args = { "--handlers", hdir } }
  end

  local function by_id(lines)
    local out = {}
    for i, l in ipairs(lines) do
      local v = hc.decode(l)
      out[#out + 1] = { id = v.id, v = v, order = i }
    end
    return out
  end

  it("a spinning call is sliced: a ping sent after it is answered before it ends", function()
    local srv = server { time_ms = 1500, instructions = 1000000000000 }
    local c = hc.connect(srv.sock)
    assert(c:send(hc.req(1, "atk.spin") .. "\n" .. hc.req(2, "sys.ping") .. "\n"))
    local got = by_id(c:recv_lines(2, 10))
    assert.are.equal(2, #got, "answers missing")
    assert.are.equal(2, got[1].id, "the ping waited for the spinning call to end")
    assert.are.same({}, got[1].v.result)
    assert.are.equal(1, got[2].id)
    assert.are.equal(-32002, got[2].v.error.code)
    assert.are.equal("time", got[2].v.error.data.limit)
    c:close()
    assert.is_true(srv:alive())
  end)

  it("a spinning call in one session does not hold up another session", function()
    local srv = server { time_ms = 3000, instructions = 1000000000000 }
    local a, b = hc.connect(srv.sock), hc.connect(srv.sock)
    assert(a:send_line(hc.req(1, "atk.spin")))
    hc.sleep(0.05)
    assert(b:send_line(hc.req(2, "sys.ping")))
    local pong = b:recv_line(2.5)
    assert.is_string(pong, "the other session's ping was not answered while the spin ran")
    assert.are.same({}, hc.decode(pong).result)
    assert.are.equal("", a.buf, "the spinning call ended before the ping was answered")
    local spun = a:recv_line(10)
    assert.is_string(spun)
    assert.are.equal("time", hc.decode(spun).error.data.limit)
    a:close(); b:close()
  end)

  it("a long finite call is sliced and still completes", function()
    local srv = server { time_ms = 5000, instructions = 1000000000000 }
    local c = hc.connect(srv.sock)
    assert(c:send(hc.req(1, "atk.busy", { ms = 400 }) .. "\n" .. hc.req(2, "sys.ping") .. "\n"))
    local got = by_id(c:recv_lines(2, 10))
    assert.are.equal(2, #got)
    assert.are.equal(2, got[1].id, "the ping waited for the busy call")
    assert.are.same({ done = true }, got[2].v.result)
    c:close()
  end)

  it("a call that cannot yield is killed within the short bound, then the ping is answered", function()
    local srv = server { time_ms = 5000, instructions = 1000000000000 }
    local c = hc.connect(srv.sock)
    local t0 = hc.now()
    assert(c:send(hc.req(1, "atk.sort_comparator") .. "\n" .. hc.req(2, "sys.ping") .. "\n"))
    local got = by_id(c:recv_lines(2, 10))
    local elapsed = hc.now() - t0
    assert.are.equal(2, #got)
    local spin, ping = got[1].id == 1 and got[1] or got[2], got[1].id == 2 and got[1] or got[2]
    assert.are.same({}, ping.v.result)
    assert.are.equal(-32002, spin.v.error.code)
    assert.are.equal("time", spin.v.error.data.limit)
    assert(elapsed < 2.5, string.format("a call that cannot yield held the loop %.1f s (limit 5 s)", elapsed))
    c:close()
  end)
end)
