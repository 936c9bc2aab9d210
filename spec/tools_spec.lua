-- spec/tools_spec.lua: tool.call and tool.list (contract section 7; issue 6). The tools here are
-- coreutils and sh, declared by the test's policy: argv fixed, no shell unless the policy names
-- one, the environment exactly the policy's env, the cwd inside a mount, and a timeout that
-- kills everything the tool started.
-- luacheck: std +busted
local hc = require "spec.support.hc"
local cjson = require "cjson"

-- Whether a process whose command line is exactly `cmd` runs anywhere. Pids inside a tool's own
-- PID namespace mean nothing here, so the tools below run uniquely recognisable sleeps.
local function running(cmd)
  return os.execute("pgrep -x -f " .. hc.q(cmd) .. " >/dev/null 2>&1") == true
end

describe("tools", function()
  local out, rt
  setup(function()
    out = hc.tmpdir()
    rt = hc.runtime(string.format([[
      return {
        methods = { "tool.*", "sys.*" },
        mounts = { ["/out"] = { path = %q, perms = "rw" } },
        tools = {
          echo = { argv = { "/bin/cat" }, description = "Echo the args.",
                   params = { type = "object", required = { "x" }, properties = { x = { type = "integer" } } } },
          count = { argv = { "/usr/bin/wc", "-c" }, description = "Count the bytes of the args." },
          pwd = { argv = { "/bin/sh", "-c", "printf '\"%%s\"' \"$(pwd)\"" }, cwd = "/out" },
          env = { argv = { "/bin/sh", "-c", "/usr/bin/env > env.txt; echo '{}'" }, cwd = "/out",
                  env = { LANG = "C", ONLY = "this" } },
          hang = { argv = { "/bin/sh", "-c", "sleep 1001.5 & setsid sleep 1002.5 & wait" }, timeout_ms = 300 },
          orphan = { argv = { "/bin/sh", "-c", "setsid sleep 1003.5 & echo '{}'" } },
          flood = { argv = { "/usr/bin/yes" }, max_output = 10000 },
          fail = { argv = { "/bin/sh", "-c", "echo 'it broke' >&2; exit 3" } },
          junk = { argv = { "/bin/echo", "not json" } },
          one = { argv = { "/bin/sh", "-c", "sleep 0.5; echo '{}'" }, max_running = 1 },
          missing = { argv = { "/no/such/program" } },
        },
      }]], out))
  end)
  teardown(function() hc.cleanup() end)

  local function call(name, args, id)
    local _, r = hc.call(rt, hc.req(id or 1, "tool.call", { name = name, args = args }))
    return r
  end

  it("lists the policy's tools with their description and params", function()
    local _, r = hc.call(rt, hc.req(1, "tool.list", {}))
    local by = {}
    for _, t in ipairs(r.result.tools) do by[t.name] = t end
    assert.equal("Echo the args.", by.echo.description)
    assert.same({ "x" }, by.echo.params.required)
    assert.same({}, by.flood.params)
    assert.is_not_nil(by.missing)
  end)

  it("gives the args as JSON on stdin and answers the JSON on stdout", function()
    assert.same({ x = 5 }, call("echo", { x = 5 }).result)
    assert.equal(#cjson.encode({ a = "b" }) + 1, call("count", { a = "b" }).result)
  end)

  it("checks the args against the tool's params, and refuses unknown tools", function()
    assert.equal(-32602, call("echo", { x = "five" }).error.code)
    assert.equal(-32602, call("echo", {}).error.code)
    assert.equal(-32602, call("no-such-tool", {}).error.code)
    local _, r = hc.call(rt, hc.req(1, "tool.call", { args = {} }))
    assert.equal(-32602, r.error.code)
  end)

  it("runs in the mount's directory with exactly the policy's environment", function()
    assert.equal(out, call("pwd").result)
    assert.same({}, call("env").result)
    local env = hc.read(out .. "/env.txt")
    assert.matches("LANG=C\n", env, 1, true)
    assert.matches("ONLY=this\n", env, 1, true)
    for _, leaked in ipairs({ "HOME=", "PATH=", "USER=", "HOSTCALL_BUILD=", "LUA_PATH=" }) do
      assert.is_nil(env:find("\n" .. leaked, 1, true) or env:find("^" .. leaked), leaked .. " leaked")
    end
  end)

  it("kills a tool past its timeout, and everything it started", function()
    local t0 = hc.now()
    local r = call("hang")
    assert.equal(-32002, r.error.code)
    assert.equal("time", r.error.data.limit)
    assert.is_true(hc.now() - t0 < 3)
    for _, cmd in ipairs({ "sleep 1001.5", "sleep 1002.5" }) do
      assert(hc.wait_until(function() return not running(cmd) end, 3), cmd .. " is still running")
    end
  end)

  it("leaves nothing running after a tool that exits normally", function()
    assert.same({}, call("orphan").result)
    assert(hc.wait_until(function() return not running("sleep 1003.5") end, 3),
           "the setsid child outlived its tool")
  end)

  it("answers floods, failures, junk and missing programs with the contract's codes", function()
    local r = call("flood")
    assert.equal(-32002, r.error.code)
    assert.equal("size", r.error.data.limit)
    r = call("fail")
    assert.equal(-32000, r.error.code)
    assert.equal("EIO", r.error.data.errno)
    assert.matches("status 3: it broke", r.error.message, 1, true)
    r = call("junk")
    assert.equal("EBADMSG", r.error.data.errno)
    r = call("missing")
    assert.equal("ENOENT", r.error.data.errno)
    assert.same({}, select(2, hc.call(rt, hc.req(9, "sys.ping", {}))).result)
  end)

  it("refuses a run past max_running", function()
    local batch = "[" .. hc.req(1, "tool.call", { name = "one" }) .. "," ..
                  hc.req(2, "tool.call", { name = "one" }) .. "]"
    local answers = cjson.decode(rt:call(batch))
    local codes = {}
    for _, a in ipairs(answers) do codes[a.id] = a.error and a.error.data.limit or "ok" end
    assert.same({ "ok", "concurrency" }, { codes[1], codes[2] })
  end)
end)

describe("tools over a socket", function()
  after_each(function() hc.cleanup() end)

  it("a running tool blocks nothing: a ping sent after it is answered first", function()
    local dir = hc.tmpdir()
    hc.write(dir .. "/p.lua", [[return { methods = { "tool.*", "sys.*" },
      tools = { slow = { argv = { "/bin/sh", "-c", "sleep 1; echo '{}'" } } } }]])
    local srv = hc.serve({ policy = dir .. "/p.lua" })
    local c = hc.connect(srv.sock)
    assert(c:send_line(hc.req(1, "tool.call", { name = "slow" })))
    assert(c:send_line(hc.req(2, "sys.ping", {})))
    local first = cjson.decode((assert(c:recv_line(5))))
    assert.equal(2, first.id)
    local second = cjson.decode((assert(c:recv_line(5))))
    assert.equal(1, second.id)
    assert.same({}, second.result)
  end)
end)
