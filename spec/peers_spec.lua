-- spec/peers_spec.lua: `serve --tenants DIR --listen unix:PATH` (hc_serve_peers): one socket for
-- every tenant, each guest served by the tenant its peer's uid names (SO_PEERCRED, which the
-- kernel sets at connect: a guest cannot choose it). Guests of other users are run with setpriv
-- (util-linux); skipped, with the reason, when the tests do not run as root.
--   root (uid 0)       -> tenant "root"  (named after the user): sys.*
--   nobody (65534)     -> tenant "65534" (named by the uid: no tenant is named "nobody"): sys.ping
--   uid 65533 (no user, no tenant) -> refused, logged, never served
-- Run: busted --lua=lua5.4 spec/peers_spec.lua
-- luacheck: std +busted
local hc = require "spec.support.hc"
local cjson = require "cjson"

after_each(hc.cleanup)

local function is_root() return io.popen("id -u"):read("l") == "0" end

-- One request from a guest running as uid/gid `id` (nil: this process's own user): the answer
-- line, or nil and why.
local function ask_as(id, sock, line)
  local client = [[
local unix = require "socket.unix"
local c = unix()
c:settimeout(3)
assert(c:connect(arg[1]))
assert(c:send(arg[2] .. "\n"))
local l, err = c:receive("*l")
io.write(l or ("NONE " .. tostring(err)))
]]
  local f = hc.tmpdir() .. "/client.lua"
  hc.write(f, client)
  os.execute("chmod 0755 " .. hc.q(f:match("^(.*)/")) .. " && chmod 0644 " .. hc.q(f))
  local prefix = id and string.format("setpriv --reuid=%d --regid=%d --clear-groups ", id, id) or ""
  local p = io.popen(prefix .. "lua5.4 " .. hc.q(f) .. " " .. hc.q(sock) .. " " .. hc.q(line) .. " 2>&1")
  local out = p:read("a")
  p:close()
  if out:match("^NONE") or out == "" then return nil, out end
  local ok, v = pcall(cjson.decode, out)
  if not ok then return nil, out end
  return v
end

describe("serve --tenants --listen: one socket, tenants by peer uid", function()
  local root, srv, sock

  before_each(function()
    if not is_root() then return end
    root = hc.tmpdir()
    os.execute("mkdir -p " .. hc.q(root .. "/pol") .. " " .. hc.q(root .. "/run") ..
               " && chmod 0755 " .. hc.q(root) .. " " .. hc.q(root .. "/run"))
    hc.write(root .. "/pol/root.lua", 'return { methods = { "sys.*" } }')
    hc.write(root .. "/pol/65534.lua", 'return { methods = { "sys.ping" } }')
    sock = root .. "/run/all.sock"
    srv = hc.serve { argv = { "serve", "--tenants", root .. "/pol", "--listen", "unix:" .. sock }, sock = sock }
  end)

  it("serves each user as its own tenant, and nobody else", function()
    if not is_root() then print("SKIP: needs root to connect as other users") return end
    -- the socket is open to every user: the peer's uid is the check
    local mode = io.popen("stat -c %a " .. hc.q(sock)):read("l")
    assert.equal("666", mode)
    -- root: its tenant grants sys.*, so describe works and lists sys.sleep
    local v = assert(ask_as(nil, sock, hc.req(1, "sys.describe", {})))
    assert.is_table(v.result, cjson.encode(v))
    assert.truthy(cjson.encode(v.result):find("sys.sleep", 1, true), "root's tenant grants sys.*")
    -- nobody: served by the tenant named "65534", which grants sys.ping only
    v = assert(ask_as(65534, sock, hc.req(2, "sys.ping", {})))
    assert.is_not_nil(v.result, cjson.encode(v))
    v = assert(ask_as(65534, sock, hc.req(3, "sys.describe", {})))
    assert.equal(-32001, v.error.code)
    -- a uid with no user and no tenant: the connection is closed unanswered, and logged
    local none, why = ask_as(65533, sock, hc.req(4, "sys.ping", {}))
    assert.is_nil(none, why)
    assert.truthy(hc.wait_until(function()
      return srv:stderr():find("no tenant for peer uid 65533", 1, true)
    end, 3), srv:stderr())
    assert.is_true(srv:alive())
  end)

  it("a reload adds a tenant for a user who had none", function()
    if not is_root() then print("SKIP: needs root to connect as other users") return end
    assert.is_nil((ask_as(65533, sock, hc.req(1, "sys.ping", {}))))
    hc.write(root .. "/pol/65533.lua", 'return { methods = { "sys.ping" } }')
    srv:signal("HUP")
    assert.truthy(hc.wait_until(function() return srv:stderr():find("1 added", 1, true) end, 5), srv:stderr())
    local v = assert(ask_as(65533, sock, hc.req(2, "sys.ping", {})))
    assert.is_not_nil(v.result, cjson.encode(v))
  end)

  it("takes one of --listen-dir or --listen, and --listen must be unix:", function()
    local r = hc.cli { "serve", "--tenants", hc.tmpdir(), "--listen-dir", hc.tmpdir(), "--listen", "unix:/tmp/x" }
    assert.equal(2, r.code)
    r = hc.cli { "serve", "--tenants", hc.tmpdir(), "--listen", "tcp:1" }
    assert.equal(2, r.code)
    assert.truthy(r.stderr:find("unix:PATH", 1, true), r.stderr)
  end)
end)
