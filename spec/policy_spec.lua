-- Tests for lua/hostcall/policy.lua: loading, validation (exact messages and paths), grants,
-- capabilities. Run: busted --lua=lua5.4 spec/policy_spec.lua
-- luacheck: std +busted

local MODULE = "lua/hostcall/policy.lua"
local ARRAY = { __name = "array marker" }

-- The private _ENV trusted glue runs with: base, string, table, math, utf8, coroutine only.
local function glue_env()
  local env = {}
  for _, k in ipairs { "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall",
                       "print", "rawequal", "rawget", "rawlen", "rawset", "select",
                       "setmetatable", "tonumber", "tostring", "type", "xpcall", "load",
                       "_VERSION", "warn" } do
    env[k] = _G[k]
  end
  env.string, env.table, env.math, env.utf8, env.coroutine = string, table, math, utf8, coroutine
  env._G = env
  return env
end

local function load_module(host)
  local chunk = assert(loadfile(MODULE, "t", glue_env()))
  return chunk(host, function() end)
end

local host_stub = {
  protected_run = function(fn, ...) return pcall(fn, ...) end,
  array = ARRAY,
}
local policy = load_module(host_stub)

-- What a caller might give a policy chunk: a few safe base functions.
local function sandbox(extra)
  local env = { pairs = pairs, ipairs = ipairs, type = type, error = error, tostring = tostring,
                string = string, math = math, table = table, setmetatable = setmetatable }
  for k, v in pairs(extra or {}) do env[k] = v end
  return env
end

local BASEDIR = "/srv/policies"

local function load_src(src, name, basedir, env)
  return policy.load(src, name or "acme.lua", basedir, env or sandbox())
end

-- Loads `return <body>` with a basedir and expects exactly `message`.
local function refuses(body, message, basedir)
  local pol, err = load_src("return " .. body, "acme.lua", basedir or BASEDIR)
  assert.is_nil(pol)
  assert.are.equal(message, err)
end

local function accepts(body, basedir)
  local pol, err = load_src("return " .. body, "acme.lua", basedir or BASEDIR)
  assert.is_nil(err)
  assert.is_table(pol)
  return pol
end

local CONTRACT_EXAMPLE = [[
return {
  tenant = "acme",
  mounts = {
    ["/input"]  = { path = "data/in",  perms = "ro" },
    ["/output"] = { path = "data/out", perms = "rw", ephemeral = true, quota = 64 * 1024 * 1024 },
  },
  net = {
    allow = { "127.0.0.1:8080", "10.1.0.0/16:5432", "api.example.com:443", "[::1]:9000",
              "[fd00::/8]:8000-8999" },
    deny  = { "10.1.9.0/24:*" },
    listen = { "127.0.0.1:7000" },
  },
  http = { allow = { { url = "https://api.example.com/v1/", methods = { "GET", "POST" } } } },
  tls = { ca_file = "ca.pem" },
  tools = { wc = { argv = { "/usr/bin/wc", "-c" }, stdin = "args", cwd = "/output", timeout_ms = 2000,
                   description = "Count bytes.", params = { type = "object" },
                   env = { LANG = "C" }, max_output = 1024 * 1024, max_running = 4 } },
  methods = { "fs.*", "io.*", "sys.*", "tool.*", "net.*", "http.*" },
  handlers = { "tenant-handlers" },
  limits = { memory = 32 * 1024 * 1024, instructions = 10000000, time_ms = 5000, handles = 256,
             concurrency = 256, sockets = 64, sessions = 64, idle_ms = 600000,
             request_bytes = 16 * 1024 * 1024, read_bytes = 16 * 1024 * 1024 },
  authorize = function(call)
    return true
  end,
}
]]

local DEFAULT_LIMITS = {
  memory = 33554432, instructions = 10000000, time_ms = 5000, handles = 256, sockets = 64,
  concurrency = 256, sessions = 64, idle_ms = 600000, request_bytes = 16777216,
  read_bytes = 16777216,
}

describe("policy.load", function()
  describe("a valid policy", function()
    it("normalizes the contract's example", function()
      local pol = assert(load_src(CONTRACT_EXAMPLE, "acme.lua", BASEDIR))
      local authorize = pol.authorize
      assert.is_function(authorize)
      pol.authorize = nil
      assert.are.same({
        tenant = "acme",
        mounts = {
          ["/input"] = { path = "/srv/policies/data/in", perms = "ro", ephemeral = false },
          ["/output"] = { path = "/srv/policies/data/out", perms = "rw", ephemeral = true,
                          quota = 67108864 },
        },
        net = {
          allow = { "127.0.0.1:8080", "10.1.0.0/16:5432", "api.example.com:443", "[::1]:9000",
                    "[fd00::/8]:8000-8999" },
          deny = { "10.1.9.0/24:*" },
          listen = { "127.0.0.1:7000" },
        },
        http = { allow = { { url = "https://api.example.com/v1/", methods = { "GET", "POST" } } } },
        tls = { ca_file = "/srv/policies/ca.pem" },
        tools = { wc = { argv = { "/usr/bin/wc", "-c" }, stdin = "args", cwd = "/output",
                         timeout_ms = 2000, description = "Count bytes.",
                         params = { type = "object" }, env = { LANG = "C" },
                         max_output = 1048576, max_running = 4 } },
        methods = { "fs.*", "io.*", "sys.*", "tool.*", "net.*", "http.*" },
        handlers = { "/srv/policies/tenant-handlers" },
        limits = DEFAULT_LIMITS,
      }, pol)
      assert.are.equal(true, authorize({ method = "fs.read", params = {} }))
    end)

    it("fills in every default for an empty policy", function()
      local pol = accepts("{}")
      assert.are.same({
        tenant = "acme", mounts = {}, net = { allow = {}, deny = {}, listen = {} },
        http = { allow = {} }, tls = {}, tools = {}, methods = {}, handlers = {},
        limits = DEFAULT_LIMITS,
      }, pol)
    end)

    it("fills in tool and http defaults", function()
      local pol = accepts([[{ tools = { ["my-tool.v2"] = { argv = { "/bin/true" } } },
                              http = { allow = { { url = "http://example.com" } } } }]])
      assert.are.same({ argv = { "/bin/true" }, stdin = "args", timeout_ms = 10000,
                        description = "", env = {}, max_output = 1048576, max_running = 4 },
                      pol.tools["my-tool.v2"])
      assert.are.same({ { url = "http://example.com", methods = { "GET" } } }, pol.http.allow)
    end)

    it("takes the tenant from the file name, without .lua", function()
      assert.are.equal("beta-2", load_src("return {}", "beta-2.lua", BASEDIR).tenant)
      assert.are.equal("gamma", load_src("return {}", "gamma", BASEDIR).tenant)
      assert.are.equal("explicit", load_src("return { tenant = 'explicit' }", "x.lua", BASEDIR).tenant)
    end)

    it("refuses a file name that makes no valid tenant unless tenant is set", function()
      local pol, err = load_src("return {}", "bad name.lua", BASEDIR)
      assert.is_nil(pol)
      assert.are.equal('bad name.lua: tenant: the file name gives "bad name", which is not a valid '
        .. 'tenant name; set tenant', err)
      assert.are.equal("ok", load_src("return { tenant = 'ok' }", "bad name.lua", BASEDIR).tenant)
    end)

    it("accepts integral floats for integers and stores integers", function()
      local pol = accepts("{ limits = { instructions = 1e6, memory = 2^20 } }")
      assert.are.equal(1000000, pol.limits.instructions)
      assert.are.equal("integer", math.type(pol.limits.instructions))
      assert.are.equal("integer", math.type(pol.limits.memory))
    end)

    it("accepts the upper bounds themselves", function()
      local pol = accepts("{ limits = { memory = 64 * 1024 * 1024 * 1024, time_ms = 86400000 } }")
      assert.are.equal(68719476736, pol.limits.memory)
    end)

    it("skips a #! first line and a UTF-8 BOM, keeping line numbers", function()
      assert.is_table(load_src("#!/usr/bin/env lua\nreturn {}", "acme.lua", BASEDIR))
      assert.is_table(load_src("\239\187\191return {}", "acme.lua", BASEDIR))
      local _, err = load_src("#!/usr/bin/env lua\nreturn {\nlimits = 1 +}", "acme.lua", BASEDIR)
      assert.matches("^acme%.lua:3: ", err)
    end)

    it("runs the chunk in the given environment only", function()
      local pol = accepts("{ tenant = (io or os or require) and 'leaky' or 'sealed' }")
      assert.are.equal("sealed", pol.tenant)
      local env = sandbox({ NAME = "from-env" })
      assert.are.equal("from-env", load_src("return { tenant = NAME }", "a.lua", BASEDIR, env).tenant)
    end)
  end)

  describe("chunk errors", function()
    it("reports a syntax error as name:LINE:", function()
      local pol, err = load_src("return {\n  tenant = 'a'\n  mounts = {} }", "acme.lua", BASEDIR)
      assert.is_nil(pol)
      assert.matches("^acme%.lua:3: ", err)
      assert.is_nil(err:find("/srv", 1, true))
    end)

    it("reports a runtime error as name:LINE:", function()
      local _, err = load_src("local t = {}\nerror('boom')\nreturn t", "acme.lua", BASEDIR)
      assert.are.equal("acme.lua:2: boom", err)
      _, err = load_src("local x\nreturn x.y", "acme.lua", BASEDIR)
      assert.matches("^acme%.lua:2: attempt to index a nil value", err)
    end)

    it("prefixes a runtime error without a position with the name", function()
      local _, err = load_src("error('plain', 0)", "acme.lua", BASEDIR)
      assert.are.equal("acme.lua: plain", err)
      _, err = load_src("error({})", "acme.lua", BASEDIR)
      assert.are.equal("acme.lua: policy raised an error value of type table", err)
    end)

    it("refuses a chunk that returns no table", function()
      assert.are.same({ nil, "acme.lua: policy must return a table, got nil" },
                      { load_src("local x = 1", "acme.lua", BASEDIR) })
      assert.are.same({ nil, "acme.lua: policy must return a table, got number" },
                      { load_src("return 42", "acme.lua", BASEDIR) })
      assert.are.same({ nil, "acme.lua: policy must return a table, got string" },
                      { load_src("return 'x'", "acme.lua", BASEDIR) })
    end)

    it("refuses bytecode", function()
      local bytecode = string.dump(load("return { tenant = 'x' }"))
      assert.are.same({ nil, "acme.lua: precompiled (bytecode) policies are refused; give Lua source text" },
                      { load_src(bytecode, "acme.lua", BASEDIR) })
    end)

    it("refuses sources over 1 MiB and accepts exactly 1 MiB", function()
      local body = "return {}"
      local exact = string.rep(" ", 1024 * 1024 - #body) .. body
      assert.is_table(load_src(exact, "acme.lua", BASEDIR))
      assert.are.same({ nil, "acme.lua: policy larger than 1 MiB" },
                      { load_src(" " .. exact, "acme.lua", BASEDIR) })
    end)

    it("fails a policy that loops forever through protected_run", function()
      local budgeted = load_module({
        protected_run = function(fn, ...)
          local co = coroutine.create(fn)
          debug.sethook(co, function() error("instruction budget exhausted", 0) end, "", 100000)
          return coroutine.resume(co, ...)
        end,
      })
      local pol, err = budgeted.load("while true do end", "loop.lua", BASEDIR, sandbox())
      assert.is_nil(pol)
      assert.are.equal("loop.lua: instruction budget exhausted", err)
      assert.is_table(budgeted.load("return {}", "fine.lua", BASEDIR, sandbox()))
    end)

    it("raises on a caller's bug instead of blaming the policy", function()
      assert.has_error(function() policy.load(nil, "a.lua", BASEDIR, {}) end)
      assert.has_error(function() policy.load("return {}", "a.lua", "relative/dir", {}) end)
      assert.has_error(function() policy.load("return {}", "a.lua", BASEDIR, nil) end)
    end)
  end)

  describe("the returned table", function()
    it("is a deep copy: mutating what the chunk returned changes nothing", function()
      local kept
      local env = sandbox({ keep = function(t) kept = t; return t end })
      local pol = assert(load_src([[
        return keep {
          mounts = { ["/in"] = { path = "/data", perms = "ro" } },
          tools = { t = { argv = { "/bin/t" }, params = { type = "object", properties = { a = {} } },
                          env = { A = "1" } } },
          methods = { "fs.read" },
          net = { allow = { "1.2.3.4:80" } },
          limits = { memory = 1000000 },
        }]], "acme.lua", BASEDIR, env))
      kept.mounts["/in"].perms = "rw"
      kept.mounts["/evil"] = { path = "/", perms = "rw" }
      kept.tools.t.argv[1] = "/bin/sh"
      kept.tools.t.params.properties.a.type = "string"
      kept.tools.t.env.A = "2"
      kept.methods[1] = "*"
      kept.net.allow[2] = "0.0.0.0/0:*"
      kept.limits.memory = 1
      assert.are.equal("ro", pol.mounts["/in"].perms)
      assert.is_nil(pol.mounts["/evil"])
      assert.are.equal("/bin/t", pol.tools.t.argv[1])
      assert.are.same({ type = "object", properties = { a = {} } }, pol.tools.t.params)
      assert.are.equal("1", pol.tools.t.env.A)
      assert.are.same({ "fs.read" }, pol.methods)
      assert.are.same({ "1.2.3.4:80" }, pol.net.allow)
      assert.are.equal(1000000, pol.limits.memory)
      assert.is_false(policy.grants(pol, "fs.write"))
      assert.are_not.equal(kept.tools.t.params, pol.tools.t.params)
    end)

    it("refuses tables with metatables without running their metamethods", function()
      local ran = false
      local env = sandbox({ trap = function() ran = true; error("metamethod ran") end })
      local _, err = load_src("return setmetatable({}, { __index = { methods = { '*' } } })",
                              "acme.lua", BASEDIR, env)
      assert.are.equal("acme.lua: policy must return a plain table, got a table with a metatable", err)
      _, err = load_src("return { limits = setmetatable({}, { __index = trap, __pairs = trap }) }",
                        "acme.lua", BASEDIR, env)
      assert.are.equal("acme.lua: limits: expected a plain table, got a table with a metatable", err)
      _, err = load_src("return { methods = setmetatable({}, { __len = trap, __index = trap }) }",
                        "acme.lua", BASEDIR, env)
      assert.are.equal("acme.lua: methods: expected a plain table, got a table with a metatable", err)
      assert.is_false(ran)
    end)
  end)

  describe("unknown fields", function()
    it("are refused at every level", function()
      refuses("{ limitz = {} }", "acme.lua: limitz: unknown field")
      refuses("{ limits = { memroy = 1 } }", "acme.lua: limits.memroy: unknown field")
      refuses('{ mounts = { ["/in"] = { path = "/d", perms = "ro", ephemral = true } } }',
              'acme.lua: mounts["/in"].ephemral: unknown field')
      refuses("{ net = { alow = {} } }", "acme.lua: net.alow: unknown field")
      refuses("{ http = { deny = {} } }", "acme.lua: http.deny: unknown field")
      refuses('{ http = { allow = { { url = "http://a.example", method = { "GET" } } } } }',
              "acme.lua: http.allow[1].method: unknown field")
      refuses('{ tls = { ca = "x.pem" } }', "acme.lua: tls.ca: unknown field")
      refuses('{ tools = { wc = { argv = { "/bin/wc" }, timeout = 5 } } }',
              "acme.lua: tools.wc.timeout: unknown field")
      refuses('{ ["foo bar"] = 1 }', 'acme.lua: ["foo bar"]: unknown field')
      refuses("{ [1] = 'x' }", "acme.lua: [1]: unknown field")
    end)

    it("are reported in a fixed order", function()
      for _ = 1, 5 do refuses("{ zeta = 1, alpha = 2, mid = 3 }", "acme.lua: alpha: unknown field") end
    end)
  end)

  describe("tenant", function()
    it("checks type and syntax", function()
      refuses("{ tenant = 7 }", "acme.lua: tenant: expected string, got number")
      local syntax = 'acme.lua: tenant: expected 1-64 characters of A-Z a-z 0-9 _ . - not starting '
        .. 'with "." or "-", got '
      refuses('{ tenant = "" }', syntax .. '""')
      refuses('{ tenant = "a b" }', syntax .. '"a b"')
      refuses('{ tenant = ".hidden" }', syntax .. '".hidden"')
      refuses('{ tenant = "-x" }', syntax .. '"-x"')
      refuses('{ tenant = "a/b" }', syntax .. '"a/b"')
      refuses('{ tenant = string.rep("a", 65) }', syntax .. '"' .. string.rep("a", 65) .. '"')
      assert.are.equal(string.rep("a", 64), accepts('{ tenant = string.rep("a", 64) }').tenant)
      assert.are.equal("A_b.c-9", accepts('{ tenant = "A_b.c-9" }').tenant)
    end)
  end)

  describe("mounts", function()
    it("checks types", function()
      refuses('{ mounts = "x" }', "acme.lua: mounts: expected table, got string")
      refuses('{ mounts = { ["/in"] = "/data" } }', 'acme.lua: mounts["/in"]: expected table, got string')
      refuses('{ mounts = { [1] = { path = "/d", perms = "ro" } } }',
              "acme.lua: mounts[1]: expected a string key, got number")
      refuses('{ mounts = { ["/in"] = { perms = "ro" } } }',
              'acme.lua: mounts["/in"].path: expected string, got nil')
      refuses('{ mounts = { ["/in"] = { path = 1, perms = "ro" } } }',
              'acme.lua: mounts["/in"].path: expected string, got number')
      refuses('{ mounts = { ["/in"] = { path = "", perms = "ro" } } }',
              'acme.lua: mounts["/in"].path: must not be empty')
      refuses('{ mounts = { ["/in"] = { path = "/a\\0b", perms = "ro" } } }',
              'acme.lua: mounts["/in"].path: must not contain a NUL byte')
      refuses('{ mounts = { ["/input"] = { path = "/d", perms = "rx" } } }',
              'acme.lua: mounts["/input"].perms: expected "ro" or "rw"')
      refuses('{ mounts = { ["/input"] = { path = "/d" } } }',
              'acme.lua: mounts["/input"].perms: expected "ro" or "rw"')
      refuses('{ mounts = { ["/input"] = { path = "/d", perms = 1 } } }',
              'acme.lua: mounts["/input"].perms: expected "ro" or "rw"')
      refuses('{ mounts = { ["/in"] = { path = "/d", perms = "rw", ephemeral = "yes" } } }',
              'acme.lua: mounts["/in"].ephemeral: expected boolean, got string')
      refuses('{ mounts = { ["/in"] = { path = "/d", perms = "rw", quota = 0 } } }',
              'acme.lua: mounts["/in"].quota: expected positive integer, got 0')
      refuses('{ mounts = { ["/in"] = { path = "/d", perms = "rw", quota = 1.5 } } }',
              'acme.lua: mounts["/in"].quota: expected positive integer, got 1.5')
      refuses('{ mounts = { ["/in"] = { path = "/d", perms = "rw", quota = "1G" } } }',
              'acme.lua: mounts["/in"].quota: expected positive integer, got string')
    end)

    it("refuses guest paths that are not normalized and absolute", function()
      local cases = {
        ["/a/../b"] = 'guest path must not contain "." or ".." components',
        ["/a/./b"] = 'guest path must not contain "." or ".." components',
        ["/.."] = 'guest path must not contain "." or ".." components',
        ["/a//b"] = 'guest path must not contain an empty component ("//")',
        ["/a/"] = 'guest path must not end with "/"',
        ["/"] = 'guest path must not be "/" itself',
        ["a"] = 'guest path must be absolute (start with "/")',
        [""] = "guest path must not be empty",
        ["/a\0b"] = "guest path must not contain a NUL byte",
        ["in"] = 'guest path must be absolute (start with "/")',
        ["/" .. string.rep("x", 256)] = "guest path has a component longer than 255 bytes",
        [string.rep("/abcdefg", 513)] = "guest path is longer than 4096 bytes",
      }
      for guest, problem in pairs(cases) do
        local src = string.format("return { mounts = { [%q] = { path = '/d', perms = 'ro' } } }", guest)
        local pol, err = load_src(src, "acme.lua", BASEDIR)
        assert.is_nil(pol)
        assert.matches("^acme%.lua: mounts%[.*%]: ", err)
        assert.are.equal(problem, err:match("%]: (.*)$"))
      end
      assert.are.equal('acme.lua: mounts["/a/../b"]: guest path must not contain "." or ".." components',
        select(2, load_src("return { mounts = { ['/a/../b'] = { path = '/d', perms = 'ro' } } }",
                           "acme.lua", BASEDIR)))
    end)

    it("accepts nested mounts and long-but-legal guest paths", function()
      local pol = accepts('{ mounts = { ["/a"] = { path = "/x", perms = "ro" }, '
        .. '["/a/b"] = { path = "/y", perms = "rw" }, '
        .. '["/" .. string.rep("c", 255)] = { path = "/z", perms = "ro" } } }')
      assert.are.equal("/y", pol.mounts["/a/b"].path)
    end)

    it("resolves relative host paths against basedir, lexically", function()
      local pol = accepts([[{ mounts = {
        ["/a"] = { path = "data/./in//x/", perms = "ro" },
        ["/b"] = { path = "../shared", perms = "ro" },
        ["/c"] = { path = "/abs//p/./q", perms = "ro" },
        ["/d"] = { path = ".", perms = "ro" } } }]])
      assert.are.equal("/srv/policies/data/in/x", pol.mounts["/a"].path)
      assert.are.equal("/srv/policies/../shared", pol.mounts["/b"].path)
      assert.are.equal("/abs/p/q", pol.mounts["/c"].path)
      assert.are.equal("/srv/policies", pol.mounts["/d"].path)
    end)

    it("takes only absolute host paths from a policy given as a string", function()
      local pol, err = load_src('return { mounts = { ["/in"] = { path = "data", perms = "ro" } } }',
                                "acme.lua", nil)
      assert.is_nil(pol)
      assert.are.equal('acme.lua: mounts["/in"].path: must be absolute (policy given as a string)', err)
      pol, err = load_src('return { tls = { ca_file = "ca.pem" } }', "acme.lua", nil)
      assert.is_nil(pol)
      assert.are.equal("acme.lua: tls.ca_file: must be absolute (policy given as a string)", err)
      pol, err = load_src('return { handlers = { "/ok", "h" } }', "acme.lua", nil)
      assert.is_nil(pol)
      assert.are.equal("acme.lua: handlers[2]: must be absolute (policy given as a string)", err)
      pol = assert(load_src('return { mounts = { ["/in"] = { path = "/data//in", perms = "ro" } } }',
                            "acme.lua", nil))
      assert.are.equal("/data/in", pol.mounts["/in"].path)
    end)
  end)

  describe("lists", function()
    it("must be proper sequences", function()
      refuses('{ methods = { "fs.*", nil, "io.*" } }',
              "acme.lua: methods[2]: missing (a list must not have holes)")
      refuses('{ methods = { "fs.*", x = 1 } }', "acme.lua: methods.x: unexpected key (expected a list)")
      refuses('{ methods = { [0] = "fs.*" } }', "acme.lua: methods[0]: unexpected key (expected a list)")
      refuses('{ handlers = { [2] = "h" } }', "acme.lua: handlers[1]: missing (a list must not have holes)")
      refuses('{ net = { allow = { "1.2.3.4:80", ["1"] = "x" } } }',
              'acme.lua: net.allow["1"]: unexpected key (expected a list)')
    end)
  end)

  describe("net", function()
    it("checks types", function()
      refuses('{ net = "all" }', "acme.lua: net: expected table, got string")
      refuses('{ net = { allow = "1.2.3.4:80" } }', "acme.lua: net.allow: expected table, got string")
      refuses('{ net = { deny = { 80 } } }', "acme.lua: net.deny[1]: expected string, got number")
    end)

    it("names the offending rule by index", function()
      refuses('{ net = { allow = { "127.0.0.1:8080", "a.example:443", "nohost" } } }',
              'acme.lua: net.allow[3]: "nohost": expected HOST:PORTS, e.g. "api.example.com:443"')
      refuses('{ net = { listen = { "127.0.0.1:0" } } }',
              'acme.lua: net.listen[1]: ports "0": expected a port 1-65535, LOW-HIGH, or *')
    end)
  end)

  describe("http", function()
    it("checks types and rules", function()
      refuses('{ http = "x" }', "acme.lua: http: expected table, got string")
      refuses('{ http = { allow = { "https://a.example/" } } }',
              "acme.lua: http.allow[1]: expected table, got string")
      refuses('{ http = { allow = { { methods = { "GET" } } } } }',
              "acme.lua: http.allow[1].url: expected string, got nil")
      refuses('{ http = { allow = { { url = "ftp://a.example/" } } } }',
              'acme.lua: http.allow[1].url: expected a URL starting with "http://" or "https://"')
      refuses('{ http = { allow = { { url = "HTTPS://a.example/" } } } }',
              'acme.lua: http.allow[1].url: expected a URL starting with "http://" or "https://"')
      refuses('{ http = { allow = { { url = "https:///path" } } } }', "acme.lua: http.allow[1].url: has no host")
      refuses('{ http = { allow = { { url = "https://u:p@a.example/" } } } }',
              'acme.lua: http.allow[1].url: must not contain credentials ("user@")')
      refuses('{ http = { allow = { { url = "https://a.example/x#y" } } } }',
              'acme.lua: http.allow[1].url: must not contain a fragment ("#")')
      refuses('{ http = { allow = { { url = "https://a.example:0/" } } } }',
              'acme.lua: http.allow[1].url: port "0": expected 1-65535')
      refuses('{ http = { allow = { { url = "https://a.example/ x" } } } }',
              "acme.lua: http.allow[1].url: must not contain whitespace or control characters")
      refuses('{ http = { allow = { { url = "https://a.example/", methods = {} } } } }',
              'acme.lua: http.allow[1].methods: must not be empty (omit it to allow "GET" only)')
      refuses('{ http = { allow = { { url = "https://a.example/", methods = { "GET", "post" } } } } }',
              'acme.lua: http.allow[1].methods[2]: expected an uppercase HTTP method name, got "post"')
      refuses('{ http = { allow = { { url = "https://a.example/", methods = "GET" } } } }',
              "acme.lua: http.allow[1].methods: expected table, got string")
    end)

    it("accepts IP literal and bracketed IPv6 URLs with ports", function()
      local pol = accepts('{ http = { allow = { { url = "http://127.0.0.1:8080/api" }, '
        .. '{ url = "https://[::1]:8443/" }, { url = "https://Api.Example.com" } } } }')
      assert.are.equal(3, #pol.http.allow)
    end)
  end)

  describe("tls", function()
    it("checks types", function()
      refuses('{ tls = "ca.pem" }', "acme.lua: tls: expected table, got string")
      refuses("{ tls = { ca_file = true } }", "acme.lua: tls.ca_file: expected string, got boolean")
      assert.are.same({}, accepts("{ tls = {} }").tls)
    end)
  end)

  describe("tools", function()
    local function tool(fields)
      return '{ mounts = { ["/out"] = { path = "/o", perms = "rw" } }, tools = { wc = { argv = { "/bin/wc" }, '
        .. fields .. ' } } }'
    end

    it("checks the tool map and names", function()
      refuses('{ tools = { "x" } }', "acme.lua: tools[1]: expected a string key, got number")
      refuses('{ tools = { ["bad name"] = { argv = { "/bin/x" } } } }',
              'acme.lua: tools["bad name"]: a tool name must be 1-64 characters of A-Z a-z 0-9 _ . -')
      refuses('{ tools = { wc = "/bin/wc" } }', "acme.lua: tools.wc: expected table, got string")
    end)

    it("checks argv", function()
      refuses('{ tools = { wc = {} } }', "acme.lua: tools.wc.argv: expected table, got nil")
      refuses('{ tools = { wc = { argv = {} } } }', "acme.lua: tools.wc.argv: must not be empty")
      refuses('{ tools = { wc = { argv = { "wc" } } } }',
              'acme.lua: tools.wc.argv[1]: must be an absolute path, got "wc"')
      refuses('{ tools = { wc = { argv = { "/bin/wc", 5 } } } }',
              "acme.lua: tools.wc.argv[2]: expected string, got number")
      refuses('{ tools = { wc = { argv = { "/bin/wc", "a\\0b" } } } }',
              "acme.lua: tools.wc.argv[2]: must not contain a NUL byte")
    end)

    it("checks the other fields", function()
      refuses(tool('stdin = "file"'), 'acme.lua: tools.wc.stdin: expected "args" or "none"')
      refuses(tool('cwd = "out"'), 'acme.lua: tools.wc.cwd: guest path must be absolute (start with "/")')
      refuses(tool('cwd = "/out/../etc"'),
              'acme.lua: tools.wc.cwd: guest path must not contain "." or ".." components')
      refuses(tool('cwd = "/elsewhere"'), 'acme.lua: tools.wc.cwd: "/elsewhere" is not under any mount')
      refuses(tool('cwd = "/outside"'), 'acme.lua: tools.wc.cwd: "/outside" is not under any mount')
      refuses(tool("cwd = 1"), "acme.lua: tools.wc.cwd: expected string, got number")
      refuses(tool("timeout_ms = 0"), "acme.lua: tools.wc.timeout_ms: expected positive integer, got 0")
      refuses(tool("timeout_ms = 86400001"),
              "acme.lua: tools.wc.timeout_ms: must be at most 86400000 (24 h), got 86400001")
      refuses(tool("max_output = -1"), "acme.lua: tools.wc.max_output: expected positive integer, got -1")
      refuses(tool("max_running = 1025"), "acme.lua: tools.wc.max_running: must be at most 1024, got 1025")
      refuses(tool("description = 1"), "acme.lua: tools.wc.description: expected string, got number")
      refuses(tool('params = "object"'), "acme.lua: tools.wc.params: expected table, got string")
      refuses(tool("params = { type = 'object', check = function() end }"),
              "acme.lua: tools.wc.params.check: expected plain data, got function")
      refuses(tool("params = { [true] = 1 }"),
              "acme.lua: tools.wc.params[<boolean>]: keys must be strings or integers, got boolean")
      refuses(tool("params = (function() local t = {}; t.self = t; return t end)()"),
              "acme.lua: tools.wc.params.self: contains itself (cycles are not allowed)")
      refuses(tool("params = { max = 1/0 }"), "acme.lua: tools.wc.params.max: expected a finite number, got inf")
      refuses(tool("env = { LANG = 1 }"), "acme.lua: tools.wc.env.LANG: expected string, got number")
      refuses(tool('env = { ["A=B"] = "x" }'),
              'acme.lua: tools.wc.env["A=B"]: an environment variable name must be non-empty, without "=" or NUL')
      refuses(tool('env = { "x" }'), "acme.lua: tools.wc.env[1]: expected a string key, got number")
    end)

    it("accepts cwd at or under a mount and shared schema subtables", function()
      local pol = accepts(tool('cwd = "/out/sub", params = (function() local s = { type = "string" } '
        .. 'return { type = "object", properties = { a = s, b = s } } end)()'))
      assert.are.equal("/out/sub", pol.tools.wc.cwd)
      assert.are.same({ type = "string" }, pol.tools.wc.params.properties.b)
      assert.are.equal("/out", accepts(tool('cwd = "/out"')).tools.wc.cwd)
    end)

    it("refuses a schema too deep or too large", function()
      refuses(tool("params = (function() local t = {} for _ = 1, 70 do t = { t } end return t end)()"),
              "acme.lua: tools.wc.params" .. string.rep("[1]", 64) .. ": nested deeper than 64 levels")
      -- a DAG whose copy would be 2^40 values
      local pol, err = load_src("return " .. tool(
        "params = (function() local t = {} for _ = 1, 40 do t = { a = t, b = t } end return t end)()"),
        "acme.lua", BASEDIR)
      assert.is_nil(pol)
      assert.matches("^acme%.lua: tools%.wc%.params[.ab]*: too large %(more than 100000 values%)$", err)
    end)
  end)

  describe("methods", function()
    it("checks patterns", function()
      refuses('{ methods = "fs.*" }', "acme.lua: methods: expected table, got string")
      refuses("{ methods = { 1 } }", "acme.lua: methods[1]: expected string, got number")
      local msg = 'acme.lua: methods[2]: expected "*", a method name, or a prefix ending in ".*", got '
      for _, bad in ipairs { "fs*", "*.read", "", "fs..read", ".fs", "fs.", "fs.**", "fs read", "**" } do
        refuses(string.format('{ methods = { "io.*", %q } }', bad), msg .. string.format("%q", bad))
      end
      assert.are.same({ "*", "fs.read", "a.b.*", "$/cancelRequest", "rpc.discover" },
        accepts('{ methods = { "*", "fs.read", "a.b.*", "$/cancelRequest", "rpc.discover" } }').methods)
    end)
  end)

  describe("handlers", function()
    it("checks and resolves directories", function()
      refuses('{ handlers = "h" }', "acme.lua: handlers: expected table, got string")
      refuses("{ handlers = { 1 } }", "acme.lua: handlers[1]: expected string, got number")
      refuses('{ handlers = { "" } }', "acme.lua: handlers[1]: must not be empty")
      assert.are.same({ "/srv/policies/h", "/opt/h" }, accepts('{ handlers = { "./h/", "/opt/h" } }').handlers)
    end)
  end)

  describe("limits", function()
    it("checks types, values and bounds", function()
      refuses('{ limits = "big" }', "acme.lua: limits: expected table, got string")
      refuses('{ limits = { memory = "32M" } }', "acme.lua: limits.memory: expected positive integer, got string")
      refuses("{ limits = { memory = 1.5 } }", "acme.lua: limits.memory: expected positive integer, got 1.5")
      refuses("{ limits = { handles = 0 } }", "acme.lua: limits.handles: expected positive integer, got 0")
      refuses("{ limits = { sockets = -3 } }", "acme.lua: limits.sockets: expected positive integer, got -3")
      refuses("{ limits = { time_ms = 0/0 } }", "acme.lua: limits.time_ms: expected positive integer, got nan")
      refuses("{ limits = { memory = 64 * 1024 * 1024 * 1024 + 1 } }",
              "acme.lua: limits.memory: must be at most 68719476736 (64 GiB), got 68719476737")
      refuses("{ limits = { time_ms = 86400001 } }",
              "acme.lua: limits.time_ms: must be at most 86400000 (24 h), got 86400001")
      refuses("{ limits = { instructions = 1e13 } }",
              "acme.lua: limits.instructions: must be at most 1000000000000 (10^12), got 10000000000000")
      refuses("{ limits = { request_bytes = 2^31 } }",
              "acme.lua: limits.request_bytes: must be at most 1073741824 (1 GiB), got 2147483648")
      refuses("{ limits = { read_bytes = 1e300 } }",
              "acme.lua: limits.read_bytes: expected positive integer, got 1e+300")
    end)

    it("keeps given values and defaults the rest", function()
      local pol = accepts("{ limits = { sessions = 2, idle_ms = 1000 } }")
      local want = {}
      for k, v in pairs(DEFAULT_LIMITS) do want[k] = v end
      want.sessions, want.idle_ms = 2, 1000
      assert.are.same(want, pol.limits)
    end)
  end)

  describe("authorize", function()
    it("must be a function", function()
      refuses("{ authorize = true }", "acme.lua: authorize: expected function, got boolean")
      refuses("{ authorize = {} }", "acme.lua: authorize: expected function, got table")
      assert.is_nil(accepts("{}").authorize)
    end)
  end)
end)

describe("policy.check_net_rule", function()
  local good = {
    "127.0.0.1:8080", "10.1.0.0/16:5432", "api.example.com:443", "[::1]:9000", "[fd00::/8]:8000-8999",
    "10.1.9.0/24:*", "0.0.0.0/0:443", "[::]:1", "[::/0]:65535", "[::ffff:10.0.0.1]:80",
    "[2001:db8:0:0:0:0:0:1]:22", "localhost:80", "_srv.example:1-1", "a-b.c_d.example:1-65535",
  }
  for _, rule in ipairs(good) do
    it("accepts " .. rule, function()
      assert.are.same({ true }, { policy.check_net_rule(rule) })
    end)
  end

  local bad = {
    [""] = "must not be empty",
    ["a.example :80"] = "must not contain whitespace",
    ["a.example:80\0"] = "must not contain control characters",
    ["a.example"] = '"a.example": expected HOST:PORTS, e.g. "api.example.com:443"',
    [":80"] = '":80": the host is empty',
    ["::1:80"] = '"::1:80": an IPv6 address must be in brackets, e.g. "[::1]:443"',
    ["[::1:80"] = '"[::1:80": missing "]" after the IPv6 address',
    ["[::1]80"] = '"[::1]80": expected ":PORTS" after "]"',
    ["[1:2:3]:80"] = '"[1:2:3]" is not an IPv6 address',
    ["[1::2::3]:80"] = '"[1::2::3]" is not an IPv6 address',
    ["[fe80::1%eth0]:80"] = '"[fe80::1%eth0]" is not an IPv6 address',
    ["[::1/129]:80"] = '"[::1/129]": an IPv6 prefix length must be 0-128',
    ["10.0.0.0/33:80"] = 'host "10.0.0.0/33": an IPv4 prefix length must be 0-32',
    ["a.example/8:80"] = 'host "a.example/8": a CIDR prefix needs an IPv4 address (IPv6 goes in brackets)',
    ["256.1.1.1:80"] = 'host "256.1.1.1": write an IPv4 address as four decimal octets',
    ["010.0.0.1:80"] = 'host "010.0.0.1": write an IPv4 address as four decimal octets',
    ["10.1:80"] = 'host "10.1": write an IPv4 address as four decimal octets',
    ["2130706433:80"] = 'host "2130706433": write an IPv4 address as four decimal octets',
    ["0x7f.1:80"] = 'host "0x7f.1": write an IPv4 address as four decimal octets',
    ["*:80"] = 'host "*" is not an IP address, CIDR or host name',
    ["a..example:80"] = 'host "a..example" is not an IP address, CIDR or host name',
    ["a.example:0"] = 'ports "0": expected a port 1-65535, LOW-HIGH, or *',
    ["a.example:65536"] = 'ports "65536": expected a port 1-65535, LOW-HIGH, or *',
    ["a.example:"] = 'ports "": expected a port 1-65535, LOW-HIGH, or *',
    ["a.example:080"] = 'ports "080": expected a port 1-65535, LOW-HIGH, or *',
    ["a.example:9-1"] = 'port range "9-1": LOW must not exceed HIGH',
    ["a.example:1-"] = 'ports "1-": expected a port 1-65535, LOW-HIGH, or *',
  }
  for rule, reason in pairs(bad) do
    it("refuses " .. string.format("%q", rule), function()
      assert.are.same({ nil, reason }, { policy.check_net_rule(rule) })
    end)
  end

  it("refuses non-strings", function()
    assert.are.same({ nil, "expected string, got number" }, { policy.check_net_rule(80) })
  end)
end)

describe("policy.grants", function()
  local function pol_with(methods)
    return assert(load_src("return { methods = " .. methods .. " }", "acme.lua", BASEDIR))
  end

  it("grants nothing by default", function()
    local pol = pol_with("nil")
    assert.is_false(policy.grants(pol, "sys.ping"))
    assert.is_false(policy.grants(pol, "fs.read"))
  end)

  it("grants everything with *", function()
    local pol = pol_with('{ "*" }')
    assert.is_true(policy.grants(pol, "fs.read"))
    assert.is_true(policy.grants(pol, "anything"))
  end)

  it("grants exact names only", function()
    local pol = pol_with('{ "fs.read" }')
    assert.is_true(policy.grants(pol, "fs.read"))
    assert.is_false(policy.grants(pol, "fs.write"))
    assert.is_false(policy.grants(pol, "fs.read.x"))
    assert.is_false(policy.grants(pol, "fs"))
  end)

  it("grants a prefix on a dot boundary", function()
    local pol = pol_with('{ "fs.*", "a.b.*" }')
    assert.is_true(policy.grants(pol, "fs.read"))
    assert.is_true(policy.grants(pol, "fs.x.y"))
    assert.is_false(policy.grants(pol, "fsx.read"))
    assert.is_false(policy.grants(pol, "fs"))
    assert.is_false(policy.grants(pol, "fs."))
    assert.is_false(policy.grants(pol, "xfs.read"))
    assert.is_true(policy.grants(pol, "a.b.c"))
    assert.is_false(policy.grants(pol, "a.bc"))
    assert.is_false(policy.grants(pol, "a.b"))
  end)

  it("refuses non-string method names", function()
    assert.is_false(policy.grants(pol_with('{ "*" }'), nil))
    assert.is_false(policy.grants(pol_with('{ "*" }'), 1))
  end)

  it("works on a policy table it did not load", function()
    assert.is_true(policy.grants({ methods = { "io.*" } }, "io.read"))
    assert.is_false(policy.grants({ methods = { "io.*" } }, "fs.read"))
  end)
end)

describe("policy.capabilities", function()
  it("describes the contract's example, lists marked as arrays", function()
    local caps = policy.capabilities(assert(load_src(CONTRACT_EXAMPLE, "acme.lua", BASEDIR)))
    assert.are.same({
      tenant = "acme",
      methods = { "fs.*", "io.*", "sys.*", "tool.*", "net.*", "http.*" },
      mounts = {
        { guest = "/input", path = "/srv/policies/data/in", perms = "ro", ephemeral = false },
        { guest = "/output", path = "/srv/policies/data/out", perms = "rw", ephemeral = true,
          quota = 67108864 },
      },
      net = {
        allow = { "127.0.0.1:8080", "10.1.0.0/16:5432", "api.example.com:443", "[::1]:9000",
                  "[fd00::/8]:8000-8999" },
        deny = { "10.1.9.0/24:*" },
        listen = { "127.0.0.1:7000" },
      },
      http = { allow = { { url = "https://api.example.com/v1/", methods = { "GET", "POST" } } } },
      tls = { ca_file = "/srv/policies/ca.pem" },
      tools = { { name = "wc", program = "/usr/bin/wc", description = "Count bytes.", stdin = "args",
                  cwd = "/output", timeout_ms = 2000, max_output = 1048576, max_running = 4,
                  env = { "LANG" } } },
      handlers = { "/srv/policies/tenant-handlers" },
      limits = DEFAULT_LIMITS,
      authorize = true,
    }, caps)
    for _, list in ipairs { caps.methods, caps.mounts, caps.net.allow, caps.net.deny, caps.net.listen,
                            caps.http.allow, caps.http.allow[1].methods, caps.tools, caps.tools[1].env,
                            caps.handlers } do
      assert.are.equal(ARRAY, getmetatable(list))
    end
    assert.is_nil(getmetatable(caps.limits))
    assert.is_nil(getmetatable(caps.mounts[1]))
  end)

  it("marks empty lists as arrays too", function()
    local caps = policy.capabilities(accepts("{}"))
    assert.are.equal(ARRAY, getmetatable(caps.methods))
    assert.are.equal(ARRAY, getmetatable(caps.mounts))
    assert.are.equal(ARRAY, getmetatable(caps.net.deny))
    assert.are.same({}, caps.tls)
    assert.is_false(caps.authorize)
  end)

  it("leaves lists unmarked when the host has no array marker", function()
    local plain = load_module({ protected_run = host_stub.protected_run })
    local caps = plain.capabilities(assert(plain.load("return {}", "a.lua", BASEDIR, sandbox())))
    assert.is_nil(getmetatable(caps.methods))
  end)
end)
