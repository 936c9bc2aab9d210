-- sandbox.lua: the environments tenant code runs in (handler files, policies, load()).
-- Every environment is a fresh table; what it shares with others (the libraries, ctx) is
-- reached only through read-only views (userdata, core/sandbox.c): rawset cannot change them,
-- pairs cannot hand out what is behind them, getmetatable says false.
local host = ...

local M = {}

local view = host.view
local error, type, rawget, setmetatable_raw = error, type, rawget, setmetatable

M.view = view

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
local pack, unpack = table.pack, table.unpack

local function wrap(f)
  local co = coroutine.create(f)
  return function(...)
    local r = pack(resume(co, ...))
    if not r[1] then error(r[2], 2) end
    return unpack(r, 2, r.n)
  end
end

local coroutine_view = view({
  create = coroutine.create,
  resume = resume,
  wrap = wrap,
  yield = coroutine.yield,
  status = coroutine.status,
  running = coroutine.running,
  isyieldable = coroutine.isyieldable,
  close = host.co_close,
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
local lib_views = {
  string = view(copy(string), "string"),
  table = view(copy(table), "table"),
  math = view(copy(math), "math"),
  utf8 = view(copy(utf8), "utf8"),
  coroutine = coroutine_view,
  os = view({ time = function() return math.floor(host.time()) end, clock = host.clock }, "os"),
}

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
  for name, v in pairs(lib_views) do env[name] = v end
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
