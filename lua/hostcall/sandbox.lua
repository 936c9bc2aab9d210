-- sandbox.lua: the environments tenant code runs in (handler files, policies, load()).
-- Tenant code gets fresh tables whose only links into the state are read-only proxies of
-- library copies: what it writes there stays in its own environment.
local host = ...

local M = {}

local co_create, co_yield, co_status = coroutine.create, coroutine.yield, coroutine.status
local co_close, co_running = coroutine.close, coroutine.running
local call_threads = host.call_threads
local pack, unpack = table.pack, table.unpack
local error, type, rawget, setmetatable_raw = error, type, rawget, setmetatable

local function readonly(t, name)
  return setmetatable_raw({}, {
    __index = t,
    __newindex = function() error(name .. " is read-only", 2) end,
    __metatable = false,
  })
end
M.readonly = readonly

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- A host wait (sys.sleep, later sockets) or a time slice yields from deep inside a handler. When
-- the handler runs its own coroutines, their resume (C, core/sandbox.c) passes the yield up to
-- the loop and the wake-up back down, so tenant code can never catch or forge a host wait, and a
-- tripped budget inside a coroutine is rethrown rather than returned as false.
local resume = host.co_resume

local function wrap(f)
  local co = co_create(f)
  return function(...)
    local r = pack(resume(co, ...))
    if not r[1] then error(r[2], 2) end
    return unpack(r, 2, r.n)
  end
end

local coroutine_lib = readonly({
  create = co_create,
  resume = resume,
  wrap = wrap,
  yield = co_yield,
  status = co_status,
  running = co_running,
  isyieldable = coroutine.isyieldable,
  close = function(co)
    if call_threads[co] then error("cannot close a call's own coroutine", 2) end
    return co_close(co)
  end,
}, "coroutine")

local function safe_setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not available", 2)
  end
  return setmetatable_raw(t, mt)
end

local function safe_collectgarbage(opt)
  if opt == "count" then return collectgarbage("count") end
  error("collectgarbage: only \"count\" is available", 2)
end

local MAX_CHUNK = 1024 * 1024
local libs = {
  string = copy(string), table = copy(table), math = copy(math), utf8 = copy(utf8),
}
libs.string.dump = nil
local os_lib = readonly({
  time = function() return math.floor(host.time()) end,
  clock = host.clock,
}, "os")

local BASE = { "assert", "error", "ipairs", "next", "pairs", "rawequal", "rawget",
  "rawlen", "rawset", "select", "getmetatable", "tonumber", "tostring", "type" }

-- A new environment for one piece of tenant code.
function M.new_env()
  local env = {}
  for _, k in ipairs(BASE) do env[k] = _G[k] end
  env._VERSION = _VERSION
  env.pcall = host.pcall       -- rethrow tripped budgets (core/sandbox.c)
  env.xpcall = host.xpcall
  env.setmetatable = safe_setmetatable
  env.collectgarbage = safe_collectgarbage
  env.coroutine = coroutine_lib
  env.os = os_lib
  for name, lib in pairs(libs) do env[name] = readonly(lib, name) end
  env.load = function(chunk, name, _, e)
    if type(chunk) ~= "string" then error("load: only source text is accepted", 2) end
    if #chunk > MAX_CHUNK then return nil, "load: chunk larger than 1 MiB" end
    if type(name) ~= "string" then name = "=(load)" end
    return load(chunk, name, "t", e == nil and env or e)
  end
  env._G = env
  return env
end

return M
