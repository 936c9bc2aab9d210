-- runtime.lua: a tenant's trusted glue: loads its policy and handlers, then answers each call
-- in the order the contract fixes: grant, params schema, authorize hook, handler.
local host, import = ...
local policy = import("policy")
local registry = import("registry")
local sandbox = import("sandbox")
local openrpc = import("openrpc")
local schema = import("schema")

local M = {}

local E_OS, E_REFUSED, E_LIMIT, E_PARAMS, E_INTERNAL, E_NOMETHOD =
  -32000, -32001, -32002, -32602, -32603, -32601
local MAX_MESSAGE = 512
-- Error objects made by ctx.error: what they mean is kept here, out of the tenant's reach, so
-- one can be neither forged nor changed after it is made.
local errors = setmetatable({}, { __mode = "k" })
local LIMITS = { memory = true, instructions = true, time = true, handles = true, size = true,
                 quota = true, concurrency = true }
local REFUSALS = { EPERM = true, EROFS = true, EACCES = true }

local type, next, pcall, setmetatable = type, next, pcall, setmetatable
local sfind, ssub = string.find, string.sub

local function message(v, default)
  if type(v) ~= "string" then return default end
  if #v > MAX_MESSAGE then v = ssub(v, 1, MAX_MESSAGE) .. "..." end
  return v
end

local function deepcopy(v, depth)
  if type(v) ~= "table" then return v end
  if depth > 200 then error("params too deep") end
  local c = {}
  for k, x in next, v do c[k] = deepcopy(x, depth + 1) end
  if host.is_array(v) then setmetatable(c, host.array) end
  return c
end

-- ctx.error(kind, name, message): an error a handler returns (`return nil, ctx.error(...)`)
-- or raises, for the contract's codes other than -32000.
local function make_error(kind, name, msg)
  local code
  if kind == "refused" and REFUSALS[name] then code = E_REFUSED
  elseif kind == "limit" and LIMITS[name] then code = E_LIMIT
  elseif kind == "os" and type(name) == "string" and sfind(name, "^E[A-Z0-9]+$") then code = E_OS
  elseif kind == "params" then code, name = E_PARAMS, nil
  else error("ctx.error: unknown kind or name", 2) end
  local e = { code = code, name = name, message = message(msg, name or "error") }
  errors[e] = { code, name, e.message }
  return e
end

local function error_of(e)
  local rec = errors[e]
  if rec then return false, rec[1], rec[2], rec[3] end
  return nil
end

-- Map what a handler's call returned (after pcall) to dispatch's results.
local function finish(m, ok, r1, r2, r3)
  if not ok then
    local f, code, name, msg = error_of(r1)
    if f == false then return f, code, name, msg end
    return false, E_INTERNAL, nil, "handler error: " .. message(r1, "(error object is not a string)")
  end
  if r1 ~= nil then return true, r1, m.result end
  if type(r2) == "string" then
    if sfind(r2, "^E[A-Z0-9]+$") and #r2 <= 32 then return false, E_OS, r2, message(r3, r2) end
    return false, E_INTERNAL, nil, "handler returned an invalid errno name"
  end
  local f, code, name, msg = error_of(r2)
  if f == false then return f, code, name, msg end
  return false, E_INTERNAL, nil, "handler returned no result"
end

function M.init(cfg)
  local pol, err = policy.load(cfg.policy_src, cfg.policy_name, cfg.policy_dir, sandbox.new_env())
  if not pol then return nil, err end
  -- From here on the tenant's own memory limit applies: handler files count against it.
  local mok, merr = pcall(host.set_memory_limit, pol.limits.memory)
  if not mok then return nil, cfg.policy_name .. ": " .. tostring(merr) end
  -- The mounts go to the core (core/fsapi.c), which resolves every guest path beneath them.
  local mounts = {}
  for guest, m in pairs(pol.mounts) do
    mounts[#mounts + 1] = { guest = guest, path = m.path, perms = m.perms,
                            ephemeral = m.ephemeral, quota = m.quota }
  end
  table.sort(mounts, function(a, b) return a.guest < b.guest end)
  local sok, serr = pcall(host.set_mounts, mounts)
  if not sok then return nil, cfg.policy_name .. ": " .. tostring(serr) end
  -- The net rules go to the core too (core/netpolicy.c): every destination is checked there.
  local nok, nerr = pcall(host.set_net, pol.net)
  if not nok then return nil, cfg.policy_name .. ": " .. tostring(nerr) end
  local tok, terr = pcall(host.set_tls, pol.tls.ca_file)
  if not tok then return nil, cfg.policy_name .. ": " .. tostring(terr) end
  local hok, herr = pcall(host.set_http, pol.http.allow)
  if not hok then return nil, cfg.policy_name .. ": " .. tostring(herr) end
  -- The tools go to the core (core/toolapi.c): a handler names a tool; argv, env and cwd come
  -- from here only. Their params schemas are compiled here: a bad one fails the load.
  local tok2, terr2 = pcall(host.set_tools, pol.tools)
  if not tok2 then return nil, cfg.policy_name .. ": " .. tostring(terr2) end
  local tool_check, tool_list = {}, {}
  local tool_names = {}
  for name in pairs(pol.tools) do tool_names[#tool_names + 1] = name end
  table.sort(tool_names)
  for _, name in ipairs(tool_names) do
    local t = pol.tools[name]
    if t.params then
      local v, cerr = schema.compile(t.params, "tools." .. name .. ".params")
      if not v then return nil, cfg.policy_name .. ": " .. tostring(cerr) end
      tool_check[name] = v
    end
    tool_list[#tool_list + 1] = { name = name, description = t.description, params = t.params or {} }
  end
  local tools_json = assert(host.json_encode(setmetatable(tool_list, host.array)))

  local dirs = {}
  for _, d in ipairs(cfg.handler_dirs) do dirs[#dirs + 1] = d end
  for _, d in ipairs(pol.handlers or {}) do dirs[#dirs + 1] = { path = d, label = d } end
  local methods, lerr = registry.load(dirs)
  if not methods then return nil, lerr end

  local granted = {}
  for name in pairs(methods) do
    if policy.grants(pol, name) then granted[#granted + 1] = name end
  end
  table.sort(granted)
  for _, name in ipairs(granted) do
    local m = methods[name]
    m.granted = true
    local cok, cerr = registry.compile(m)
    if not cok then return nil, cerr end
  end
  if methods["sys.describe"] then
    methods["rpc.discover"] = setmetatable({ name = "rpc.discover" }, { __index = methods["sys.describe"] })
  end

  local tenant = pol.tenant
  -- Everything the loader modules (policy, registry, openrpc) are needed for is computed now,
  -- so the runtime can drop them after init: an idle tenant keeps only what calls use.
  -- Kept as JSON text, not tables: an idle tenant holds a few KiB instead of the whole tree.
  local doc = assert(host.json_encode(openrpc.document(methods, granted, cfg.version, tenant)))
  local caps = policy.capabilities(pol)
  caps.granted_methods = setmetatable({ table.unpack(granted) }, host.array)
  caps = assert(host.json_encode(caps))
  -- Only the describe document needed these. A method the policy does not grant keeps only its
  -- name's answer (-32001, not -32601): its handler, schemas and closures can be collected.
  local NOT_GRANTED = { granted = false }
  for name, m in pairs(methods) do
    if m.granted then
      rawset(m, "params", nil)
      rawset(m, "doc", nil)
      rawset(m, "where", nil)
    else
      methods[name] = NOT_GRANTED
    end
  end
  local function describe() return host.json_decode(doc) end

  -- Core primitives answer nil, ERRNO, message, kind on failure: lift them to error objects.
  local function lift(f)
    return function(...)
      local a, b, c, d = f(...)
      if a == nil and d then return nil, make_error(d, b, c) end
      return a, b, c
    end
  end
  local fs_write, fs_open = lift(host.fs_write), lift(host.fs_open)
  local fs = sandbox.view({
    stat = lift(host.fs_stat), read = lift(host.fs_read), list = lift(host.fs_list),
    write = function(path, data, o)
      o = o or {}
      return fs_write(path, data, o.offset, o.append, o.create, o.truncate, o.exclusive)
    end,
    mkdir = lift(host.fs_mkdir), remove = lift(host.fs_remove), rename = lift(host.fs_rename),
    truncate = lift(host.fs_truncate), symlink = lift(host.fs_symlink),
    readlink = lift(host.fs_readlink), link = lift(host.fs_link), chmod = lift(host.fs_chmod),
    utimes = lift(host.fs_utimes),
    open = function(path, mode, o)
      o = o or {}
      return fs_open(path, mode, o.create, o.truncate, o.exclusive)
    end,
    opendir = lift(host.fs_opendir), readdir = lift(host.fs_readdir),
  }, "ctx.fs")
  local io = sandbox.view({
    read = lift(host.io_read), write = lift(host.io_write), seek = lift(host.io_seek),
    close = lift(host.io_close), sync = lift(host.io_sync),
  }, "ctx.io")
  local net_connect = lift(host.net_connect)
  local net = sandbox.view({
    resolve = lift(host.net_resolve),
    connect = function(host_, port, o)
      o = o or {}
      return net_connect(host_, port, o.transport, o.timeout_ms, o.tls)
    end,
    listen = lift(host.net_listen), accept = lift(host.net_accept),
    shutdown = lift(host.net_shutdown), setopt = lift(host.net_setopt),
    sendto = lift(host.net_sendto), recvfrom = lift(host.net_recvfrom), poll = lift(host.net_poll),
  }, "ctx.net")
  local tool_run = lift(host.tool_run)
  local tools = sandbox.view({
    list = function() return host.json_decode(tools_json) end,
    -- nil when args fit the tool's params schema, else a -32602 error object
    check = function(name, args)
      if not pol.tools[name] then return make_error("params", nil, "unknown tool: " .. tostring(name)) end
      local v = tool_check[name]
      if not v then return nil end
      local ok, msg = v(args)
      if not ok then return make_error("params", nil, "args: " .. tostring(msg)) end
      return nil
    end,
    run = tool_run,
  }, "ctx.tools")
  local http_request = lift(host.http_request)
  local http = sandbox.view({
    request = function(url, method, headers, body, o)
      return http_request(url, method, headers, body, (o or {}).timeout_ms)
    end,
    resolve = lift(host.http_resolve),
  }, "ctx.http")
  local base64 = sandbox.view({ encode = host.b64_encode, decode = lift(host.b64_decode) },
                              "ctx.base64")
  local limits = {}
  for k, v in pairs(pol.limits) do limits[k] = v end

  local api = sandbox.view({
    fs = fs,
    io = io,
    net = net,
    http = http,
    tools = tools,
    base64 = base64,
    utf8_whole = host.utf8_whole,
    limits = sandbox.view(limits, "ctx.limits"),
    sleep = host.sleep,
    exit = host.exit,
    log = host.log,
    now = host.time,
    clock = host.clock,
    null = host.null,
    array = function(t)
      if t == nil then return setmetatable({}, host.array) end
      if host.is_array(t) then return t end
      return setmetatable(t, host.array)
    end,
    is_array = host.is_array,
    json = sandbox.view({ encode = host.json_encode, decode = host.json_decode }, "ctx.json"),
    error = make_error,
    describe = describe,
    tenant = tenant,
  }, "ctx")
  local ctx_mt = {
    __index = api,
    __newindex = function() error("ctx is read-only", 2) end,
    __metatable = false,
  }

  local authorize = pol.authorize

  local function dispatch(method, params, session)
    local m = methods[method]
    if m == nil then return false, E_NOMETHOD, nil, "method not found" end
    if not m.granted then return false, E_REFUSED, "EACCES", "method not granted by policy" end
    local v = m.validate
    if v then
      if params == nil then params = {} end
      local ok, verr = v(params)
      if not ok then return false, E_PARAMS, nil, verr end
    end
    if authorize then
      local ok, allowed, reason = pcall(authorize, { method = method, params = deepcopy(params, 0),
                                                     session = session, tenant = tenant })
      if not ok then
        host.log("authorize hook failed: " .. message(allowed, "(non-string error)"))
        return false, E_REFUSED, "EACCES", "refused by policy (authorize hook failed)"
      end
      if allowed ~= true then
        return false, E_REFUSED, "EACCES", message(reason, "refused by policy")
      end
    end
    local ctx = setmetatable({ method = method, session = session }, ctx_mt)
    return finish(m, pcall(m.call, ctx, params))
  end

  return {
    dispatch = dispatch,
    describe = describe,
    capabilities = function() return host.json_decode(caps) end,
    limits = pol.limits,
    tenant = tenant,
  }
end

return M
