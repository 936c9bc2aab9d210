-- spec/fs_memory_spec.lua: a primitive that opens a file or a directory and then builds its
-- answer in the tenant's Lua state can be refused memory half way (limits.memory). The refusal
-- is the call's answer (-32002 memory); the fd or directory stream it held must not stay open in
-- the host, or a guest could exhaust the process's fds with reads that never fit.
-- luacheck: std +busted
local hc = require "spec.support.hc"
local lfs = require "lfs"

local MiB = 1024 * 1024

local function open_fds()
  local n = 0
  for name in lfs.dir("/proc/self/fd") do
    if name:match("^%d+$") then n = n + 1 end
  end
  return n
end

local function policy(dir, memory)
  return ([[return { methods = { "fs.*", "io.*", "sys.*", "t.*" },
    limits = { memory = %d },
    mounts = { ["/data"] = { path = %q, perms = "ro" } } }]]):format(memory, dir)
end

-- A tenant handler that reads inside pcall: the tenant catches the memory error itself, so only
-- the core can close what the primitive held.
local HANDLER = [[
return {
  ["t.swallow"] = {
    params = { type = "object", properties = { path = { type = "string" }, n = { type = "integer" },
                                               list = { type = "boolean" } } },
    call = function(ctx, p)
      local caught = 0
      for _ = 1, 20 do
        local ok = pcall(function()
          if p.list then return ctx.fs.list(p.path, nil, 10000) end
          return ctx.fs.read(p.path, 0, p.n, "base64")
        end)
        if not ok then caught = caught + 1 end
      end
      return { caught = caught }
    end,
  },
}
]]

describe("memory refused half way through a primitive", function()
  local dir, rt

  setup(function()
    dir = hc.tmpdir()
    local f = assert(io.open(dir .. "/big", "wb"))
    f:write(("x"):rep(6 * MiB))
    f:close()
    f = assert(io.open(dir .. "/small", "wb"))
    f:write("hello")
    f:close()
    lfs.mkdir(dir .. "/many")
    local name = ("n"):rep(240)
    for i = 1, 10000 do
      f = assert(io.open(("%s/many/%s%05d"):format(dir, name, i), "wb"))
      f:close()
    end
    rt = hc.runtime(policy(dir, 3 * MiB), { handlers = { hc.handler_dir { ["t.lua"] = HANDLER } } })
  end)

  teardown(function() hc.cleanup() end)

  local function call(id, method, params)
    local _, v = hc.call(rt, hc.req(id, method, params))
    return v
  end

  it("fs.read too big for the tenant's memory is -32002 memory, and no fd stays open", function()
    assert.equal("hello", (call(1, "fs.read", { path = "/data/small", encoding = "utf8" }).result or {}).data)
    local before = open_fds()
    for i = 1, 30 do
      local v = call(i, "fs.read", { path = "/data/big", length = 6 * MiB })
      assert.is_nil(v.result)
      assert.equal(-32002, v.error.code)
      assert.equal("memory", v.error.data.limit)
      v = call(i, "fs.read", { path = "/data/big", length = 6 * MiB, encoding = "utf8" })
      assert.equal(-32002, v.error.code)
    end
    assert.equal(before, open_fds())
    assert.equal("hello", (call(2, "fs.read", { path = "/data/small", encoding = "utf8" }).result or {}).data)
  end)

  it("fs.list of a directory too big for the tenant's memory leaves no directory open", function()
    local before = open_fds()
    for i = 1, 10 do
      local v = call(i, "fs.list", { path = "/data/many", limit = 10000 })
      assert.is_nil(v.result)
      assert.equal(-32002, v.error.code)
      assert.equal("memory", v.error.data.limit)
    end
    assert.equal(before, open_fds())
  end)

  it("a handler that catches the memory error itself leaves no fd behind either", function()
    local before = open_fds()
    for i = 1, 5 do
      local v = call(i, "t.swallow", { path = "/data/big", n = 6 * MiB })
      -- a tripped budget cannot be caught: the call ends with -32002, whatever the handler does
      assert.is_nil(v.result)
      assert.equal(-32002, v.error.code)
      v = call(i, "t.swallow", { path = "/data/many", list = true })
      assert.is_nil(v.result)
      assert.equal("memory", v.error.data.limit)
    end
    assert.equal(before, open_fds())
    assert.equal("hello", (call(3, "fs.read", { path = "/data/small", encoding = "utf8" }).result or {}).data)
  end)
end)
