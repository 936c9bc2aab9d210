-- End-to-end tests of the command line (CONTRACT.md sections 2, 8, 9): help and version, usage
-- errors, call, check, describe, demo, load failures and --handlers paths.
-- Run: busted --lua=lua5.4 spec/cli_spec.lua
-- luacheck: std +busted
local hc = require "spec.support.hc"

local decode, cli = hc.decode, hc.cli

after_each(hc.cleanup)

local COMMANDS = { "serve", "call", "check", "describe", "demo" }

local function policy(src, name, dir)
  dir = dir or hc.tmpdir()
  return hc.write(dir .. "/" .. (name or "t.lua"), src or 'return { methods = { "sys.*" } }\n'), dir
end

describe("layout (contract 1)", function()
  it("the top level has what the contract names, and build/hostcall is the CLI", function()
    for _, f in ipairs { "core", "lua", "handlers", "policies", "spec", "CMakeLists.txt",
                         "hostcall-scm-1.rockspec", "README.md", "core/hostcall.h" } do
      assert.is_true(hc.exists(hc.repo .. "/" .. f), f .. " is missing")
    end
    local r = cli { "--version" }
    assert.are.equal("hostcall " .. hc.hostcall.version .. "\n", r.stdout)
  end)
end)

describe("help, version and usage errors", function()
  it("hostcall --help: usage on stdout naming every command, exit 0", function()
    for _, flag in ipairs { "--help", "-h" } do
      local r = cli { flag }
      assert.are.equal(0, r.code)
      assert.matches("^usage: hostcall", r.stdout)
      for _, c in ipairs(COMMANDS) do assert.truthy(r.stdout:find(c, 1, true), c) end
      assert.are.equal("", r.stderr)
    end
  end)

  it("hostcall --version prints the version, exit 0", function()
    local r = cli { "--version" }
    assert.are.equal(0, r.code)
    assert.matches("^hostcall %d+%.%d+%.%d+\n$", r.stdout)
  end)

  for _, c in ipairs(COMMANDS) do
    it(c .. " --help and --version", function()
      local r = cli { c, "--help" }
      assert.are.equal(0, r.code)
      assert.matches("^usage: hostcall " .. c, r.stdout)
      r = cli { c, "--version" }
      assert.are.equal(0, r.code)
      assert.matches("^hostcall %d+%.%d+%.%d+\n$", r.stdout)
    end)
  end

  it("no command: usage on stderr, exit 2", function()
    local r = cli {}
    assert.are.equal(2, r.code)
    assert.matches("usage", r.stderr)
  end)

  it("an unknown command: exit 2, names it and points to --help", function()
    local r = cli { "frobnicate" }
    assert.are.equal(2, r.code)
    assert.truthy(r.stderr:find("frobnicate", 1, true))
    assert.truthy(r.stderr:find("--help", 1, true))
    assert.are.equal("", r.stdout)
  end)

  it("an unknown option: exit 2, names it and points to --help", function()
    for _, c in ipairs { "call", "serve", "check" } do
      local r = cli { c, "--frobnicate" }
      assert.are.equal(2, r.code)
      assert.truthy(r.stderr:find("--frobnicate", 1, true), r.stderr)
      assert.truthy(r.stderr:find("--help", 1, true))
    end
  end)

  it("an option missing its argument: exit 2", function()
    local r = cli { "check", "--policy" }
    assert.are.equal(2, r.code)
    assert.truthy(#r.stderr > 0)
  end)

  it("bad option values and combinations: exit 2 with a message", function()
    local pol = policy()
    for _, args in ipairs {
      { "serve", "--policy", pol },
      { "serve", "--policy", pol, "--stdio", "--listen", "unix:/tmp/x.sock" },
      { "serve", "--policy", pol, "--listen", "tcp:127.0.0.1:9" },
      { "serve", "--policy", pol, "--stdio", "--framing", "xml" },
      { "serve", "--policy", pol, "--stdio", "--resolver", "magic" },
      { "call", "--policy", pol },
      { "call", "--policy", pol, "sys.ping", "{}", "extra" },
      { "check" },
      { "check", "--policy", pol, "extra" },
      { "describe" },
      { "demo", "extra" },
    } do
      local r = cli(args, { timeout = 5 })
      assert.are.equal(2, r.code, table.concat(args, " ") .. ": " .. r.stderr)
      assert.truthy(#r.stderr > 0, table.concat(args, " "))
    end
  end)
end)

describe("hostcall call", function()
  it("success: the compact result JSON and a newline on stdout, exit 0", function()
    local pol = policy()
    local r = cli { "call", "--policy", pol, "sys.ping" }
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("{}\n", r.stdout)
    assert.are.equal("", r.stderr)
    r = cli { "call", "--policy", pol, "sys.sleep", '{"ms": 10}' }
    assert.are.equal(0, r.code)
    assert.are.equal("{}\n", r.stdout)
    r = cli { "call", "--policy", pol, "sys.describe" }
    assert.are.equal(0, r.code)
    assert.are.equal("\n", r.stdout:sub(-1))
    assert.falsy(r.stdout:sub(1, -2):find("\n", 1, true))
    assert.is_string(decode(r.stdout).openrpc)
  end)

  it("failure: the error object on stderr, nothing on stdout, exit 1", function()
    local pol = policy('return { methods = { "sys.ping", "sys.sleep" } }')
    local r = cli { "call", "--policy", pol, "sys.sleep", '{"ms":"soon"}' }
    assert.are.equal(1, r.code)
    assert.are.equal("", r.stdout)
    local e = decode(r.stderr)
    assert.are.equal(-32602, e.code)
    assert.truthy(e.message:find("ms", 1, true))
    assert.is_nil(e.jsonrpc, "the error object, not the whole response")
    r = cli { "call", "--policy", pol, "sys.describe" }
    assert.are.equal(1, r.code)
    e = decode(r.stderr)
    assert.are.equal(-32001, e.code)
    assert.are.equal("EACCES", e.data.errno)
    r = cli { "call", "--policy", pol, "no.such" }
    assert.are.equal(1, r.code)
    assert.are.equal(-32601, decode(r.stderr).code)
  end)

  it("PARAMS_JSON that is not JSON, or not an object/array: exit 1 with an error object", function()
    local pol = policy()
    for _, p in ipairs { "{", "nope", '"str"', "42", '{"ms":1}}' } do
      local r = cli { "call", "--policy", pol, "sys.sleep", p }
      assert.are.equal(1, r.code, p)
      assert.are.equal("", r.stdout, p)
      local e = decode(r.stderr)
      assert.is_true(e.code == -32700 or e.code == -32600 or e.code == -32602, p)
    end
  end)

  it("PARAMS_JSON cannot smuggle other envelope members into the request", function()
    local pol = policy('return { methods = { "sys.ping" } }')
    for _, p in ipairs { '{}, "method": "sys.exit"', '{}, "id": 2', '{},"jsonrpc":"1.0"' } do
      local r = cli { "call", "--policy", pol, "sys.ping", p }
      assert.are.equal(1, r.code, p)
      assert.are.equal("", r.stdout, p)
    end
  end)

  it("the METHOD is JSON-escaped: quotes, backslashes and control characters are just characters", function()
    local pol = policy()
    for _, m in ipairs { 'sys.ping"', 'a\\b', "sys.ping\n", 'x","method":"sys.ping' } do
      local r = cli { "call", "--policy", pol, m }
      assert.are.equal(1, r.code, m)
      assert.are.equal(-32601, decode(r.stderr).code, m .. ": " .. r.stderr)
    end
  end)

  it("--audit FILE writes one audit line for the call", function()
    local pol, dir = policy()
    local r = cli { "call", "--policy", pol, "--audit", dir .. "/a.log", "sys.ping" }
    assert.are.equal(0, r.code)
    local lines = hc.lines(hc.read(dir .. "/a.log") or "")
    assert.are.equal(1, #lines)
    assert.are.equal("sys.ping", decode(lines[1]).method)
  end)
end)

describe("hostcall check", function()
  it("a good policy: exit 0 and the effective capabilities", function()
    local pol = policy('return { tenant = "acme", methods = { "sys.ping", "sys.sleep" }, ' ..
                       'limits = { concurrency = 7 } }',
                       "acme.lua")
    local r = cli { "check", "--policy", pol }
    assert.are.equal(0, r.code, r.stderr)
    local lines = hc.lines(r.stdout)
    assert.truthy(lines[1]:find("ok", 1, true))
    assert.truthy(lines[1]:find("acme", 1, true))
    local caps = decode(lines[#lines])
    assert.are.equal("acme", caps.tenant)
    assert.are.same({ "sys.ping", "sys.sleep" }, caps.granted_methods)
    assert.are.equal(7, caps.limits.concurrency)
  end)

  it("a syntax error: exit 2, FILE:LINE: message, no host directory beyond what was typed", function()
    local pol, dir = policy("return {\n  methods = { \"sys.*\" }\n  tenant = 'x'\n}\n", "bad.lua")
    local r = cli({ "check", "--policy", "bad.lua" }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches("^bad%.lua:%d+: ", r.stderr)
    assert.falsy(r.stderr:find(dir, 1, true), r.stderr)
    assert.are.equal("", r.stdout)
    r = cli { "check", "--policy", pol }
    assert.are.equal(2, r.code)
    assert.matches("bad%.lua:%d+: ", r.stderr)
  end)

  it("a runtime error in the policy: exit 2, FILE:LINE:", function()
    local _, dir = policy("local t = nil\nreturn t.x\n", "boom.lua")
    local r = cli({ "check", "--policy", "boom.lua" }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches("^boom%.lua:2: ", r.stderr)
  end)

  it("a type error: exit 2 with the field's path", function()
    local _, dir = policy('return { mounts = { ["/input"] = { path = "/tmp", perms = "rx" } } }', "acme.lua")
    local r = cli({ "check", "--policy", "acme.lua" }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.truthy(r.stderr:find('acme.lua: mounts["/input"].perms: expected "ro" or "rw"', 1, true), r.stderr)
    local _, dir2 = policy('return { methods = { "sys.*" }, limits = { sessions = 1.5 } }', "acme.lua")
    r = cli({ "check", "--policy", "acme.lua" }, { cwd = dir2 })
    assert.are.equal(2, r.code)
    assert.truthy(r.stderr:find("acme.lua: limits.sessions", 1, true), r.stderr)
  end)

  it("a policy file that does not exist: exit 2, the name in the message", function()
    local dir = hc.tmpdir()
    local r = cli { "check", "--policy", dir .. "/missing.lua" }
    assert.are.equal(2, r.code)
    assert.truthy(r.stderr:find("missing.lua", 1, true))
    r = cli { "call", "--policy", dir .. "/missing.lua", "sys.ping" }
    assert.are.equal(2, r.code)
  end)

  it("a policy path that is a directory: exit 2", function()
    local r = cli { "check", "--policy", hc.tmpdir() }
    assert.are.equal(2, r.code)
    assert.truthy(#r.stderr > 0)
  end)

  it("a bad policy makes every command exit 2 with the message on stderr", function()
    local pol = policy("return { methods = 5 }", "bad.lua")
    for _, args in ipairs {
      { "check", "--policy", pol },
      { "describe", "--policy", pol },
      { "call", "--policy", pol, "sys.ping" },
      { "serve", "--policy", pol, "--stdio" },
      { "serve", "--policy", pol, "--listen", "unix:" .. hc.tmpdir() .. "/s.sock" },
    } do
      local r = cli(args, { timeout = 5 })
      assert.are.equal(2, r.code, table.concat(args, " "))
      assert.truthy(r.stderr:find("bad.lua: methods", 1, true), r.stderr)
      assert.are.equal("", r.stdout)
    end
  end)

  it("a bad handler makes every command exit 2", function()
    local pol = policy()
    local h = hc.handler_dir { ["h.lua"] = "return {\n  [\"h.x\"] = { call = 1 },\n}" }
    for _, args in ipairs {
      { "check", "--policy", pol, "--handlers", h },
      { "describe", "--policy", pol, "--handlers", h },
      { "call", "--policy", pol, "--handlers", h, "sys.ping" },
      { "serve", "--policy", pol, "--handlers", h, "--stdio" },
    } do
      local r = cli(args, { timeout = 5 })
      assert.are.equal(2, r.code, table.concat(args, " "))
      assert.truthy(r.stderr:find("h.lua", 1, true), r.stderr)
      assert.falsy(r.stderr:find(h, 1, true), "host directory in: " .. r.stderr)
    end
  end)
end)

describe("hostcall describe", function()
  it("prints the OpenRPC document of exactly the granted methods", function()
    local pol = policy('return { methods = { "sys.ping", "sys.sleep" } }')
    local r = cli { "describe", "--policy", pol }
    assert.are.equal(0, r.code)
    local doc = decode(r.stdout)
    assert.matches("^1%.", doc.openrpc)
    local names = {}
    for _, m in ipairs(doc.methods) do names[#names + 1] = m.name end
    assert.are.same({ "sys.ping", "sys.sleep" }, names)
  end)

  it("the same document as sys.describe answers over the wire", function()
    local pol = policy('return { methods = { "sys.describe", "sys.ping" } }')
    local r = cli { "describe", "--policy", pol }
    local c = cli { "call", "--policy", pol, "sys.describe" }
    assert.are.same(decode(r.stdout), decode(c.stdout))
  end)
end)

describe("hostcall demo", function()
  local function demo_dirs()
    local p = io.popen("ls -d /tmp/hostcall-demo-* 2>/dev/null")
    local set = {}
    for line in p:lines() do set[line] = true end
    p:close()
    return set
  end

  it("exit 0; the transcript shows requests, responses, audit lines and every kind of error", function()
    local before = demo_dirs()
    local r = cli({ "demo" }, { timeout = 30 })
    assert.are.equal(0, r.code, r.stderr)
    local out = r.stdout
    assert.truthy(out:find("\n-> {", 1, true), "no request lines")
    assert.truthy(out:find("\n<- {", 1, true), "no response lines")
    assert.truthy(out:find("audit: {", 1, true), "no audit lines")
    for _, code in ipairs { "-32001", "-32602", "-32601", "-32700", "-32600" } do
      assert.truthy(out:find('"code":' .. code, 1, true), "no " .. code .. " in the transcript")
    end
    for line in out:gmatch("audit: ([^\n]+)") do
      local a = decode(line)
      assert.is_string(a.ts)
      assert.is_string(a.tenant)
    end
    for line in out:gmatch("\n<%- ({[^\n]+)") do
      if not line:find("%.%.%. %(%d+ bytes%)$") then decode(line) end
    end
    assert.falsy(out:find("/tmp/", 1, true), "a host path in the transcript")
    local after = demo_dirs()
    for d in pairs(after) do
      assert.is_true(before[d] == true, "the demo left its workspace behind: " .. d)
    end
  end)
end)

describe("--handlers paths", function()
  it("are relative to the current directory, not to the policy's", function()
    local root = hc.tmpdir()
    os.execute("mkdir -p " .. hc.q(root .. "/pol/h") .. " " .. hc.q(root .. "/h"))
    hc.write(root .. "/pol/p.lua", 'return { methods = { "sys.*", "h.*" } }')
    hc.write(root .. "/h/h.lua", 'return { ["h.where"] = { call = function() return { from = "cwd" } end } }')
    hc.write(root .. "/pol/h/h.lua",
             'return { ["h.where"] = { call = function() return { from = "policy dir" } end } }')
    local r = cli({ "call", "--policy", "pol/p.lua", "--handlers", "h", "h.where" }, { cwd = root })
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal('{"from":"cwd"}\n', r.stdout)
    r = cli({ "call", "--policy", "p.lua", "--handlers", "../h", "h.where" }, { cwd = root .. "/pol" })
    assert.are.equal('{"from":"cwd"}\n', r.stdout)
  end)

  it("a policy's own handlers field is relative to the policy's directory", function()
    local root = hc.tmpdir()
    os.execute("mkdir -p " .. hc.q(root .. "/pol/ph") .. " " .. hc.q(root .. "/elsewhere"))
    hc.write(root .. "/pol/p.lua", 'return { methods = { "ph.*" }, handlers = { "ph" } }')
    hc.write(root .. "/pol/ph/ph.lua", 'return { ["ph.hi"] = { call = function() return { hi = 1 } end } }')
    local r = cli({ "call", "--policy", root .. "/pol/p.lua", "ph.hi" }, { cwd = root .. "/elsewhere" })
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal('{"hi":1}\n', r.stdout)
  end)

  it("repeatable, loaded in order; a missing directory is a load failure (exit 2)", function()
    local pol = policy('return { methods = { "a.*", "b.*" } }')
    local a = hc.handler_dir { ["a.lua"] = 'return { ["a.x"] = { call = function() return { a = true } end } }' }
    local b = hc.handler_dir { ["b.lua"] = 'return { ["b.x"] = { call = function() return { b = true } end } }' }
    local r = cli { "call", "--policy", pol, "--handlers", a, "--handlers", b, "b.x" }
    assert.are.equal('{"b":true}\n', r.stdout)
    r = cli { "check", "--policy", pol, "--handlers", a, "--handlers", a .. "/nope" }
    assert.are.equal(2, r.code)
  end)
end)

describe("serve --tenants (contract 2; issue 6)", function()
  -- The full multi-tenant suite is spec/tenants_spec.lua; here, the command line's own errors.
  it("needs --listen-dir, takes no --policy, and exits 2 when no policy loads", function()
    local tenants, sockets = hc.tmpdir(), hc.tmpdir()
    local r = cli { "serve", "--tenants", tenants }
    assert.are.equal(2, r.code)
    assert.truthy(r.stderr:find("--tenants needs --listen-dir", 1, true), r.stderr)
    r = cli { "serve", "--tenants", tenants, "--listen-dir", sockets, "--policy", "x.lua" }
    assert.are.equal(2, r.code)
    r = cli { "serve", "--tenants", tenants, "--listen-dir", sockets }
    assert.are.equal(2, r.code)
    assert.truthy(r.stderr:find("no policy loaded", 1, true), r.stderr)
    r = cli { "serve", "--policy", "x.lua", "--listen-dir", sockets }
    assert.are.equal(2, r.code)
  end)
end)
