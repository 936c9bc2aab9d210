-- registry.lua: loads every handler file of the handler directories into a method table.
-- There is no central list of methods: a file dropped into a directory is the registration.
local host, import = ...
local schema = import("schema")
local sandbox = import("sandbox")

local M = {}

local MAX_FILE = 1024 * 1024
local FIELDS = { doc = "string", params = "table", result = "table", call = "function" }

local function valid_name(name)
  if type(name) ~= "string" or #name == 0 or #name > 256 then return false end
  if name:find("[^%w_%$/%.%-]") or name:find("^%.") or name:find("%.$") or name:find("%.%.") then
    return false
  end
  return true
end
M.valid_name = valid_name

local function qname(name) return string.format("[%q]", name) end

local function named(msg, fname)
  if type(msg) ~= "string" then msg = "error loading" end
  if msg:sub(1, #fname + 1) ~= fname .. ":" then msg = fname .. ": " .. msg end
  return msg
end

-- Definitions and schemas must be plain data: a metatable would let tenant code run (__index,
-- __pairs) while the runtime reads them, outside any budget.
local function plain(v, where, depth)
  if type(v) ~= "table" then return true end
  if depth > 64 then return nil, where .. ": nested too deeply" end
  if getmetatable(v) ~= nil then return nil, where .. ": must be a plain table (no metatable)" end
  for k, x in next, v do
    local ok, err = plain(x, where, depth + 1)
    if not ok then return nil, err end
    if type(k) == "table" then return nil, where .. ": table keys are not allowed" end
  end
  return true
end

-- Load one handler file's source: returns a list of {name, def} or nil, message.
local function load_file(src, fname)
  if #src > MAX_FILE then return nil, fname .. ": handler file larger than 1 MiB" end
  local env = sandbox.new_env()
  local chunk, err = host.load_chunk(src, "=" .. fname, env)   -- text only, compiled once a process
  if not chunk then return nil, named(err, fname) end
  local ok, defs = host.protected_run(chunk)
  if not ok then return nil, named(defs, fname) end
  if type(defs) ~= "table" then
    return nil, string.format("%s: a handler file must return a table, got %s", fname, type(defs))
  end
  if getmetatable(defs) ~= nil then return nil, fname .. ": must return a plain table (no metatable)" end
  local out = {}
  for name, def in next, defs do
    if not valid_name(name) then
      return nil, string.format("%s: invalid method name %s", fname,
        type(name) == "string" and string.format("%q", name) or type(name))
    end
    local where = fname .. ": " .. qname(name)
    if name:find("^rpc%.") or name:find("^%$/") then
      return nil, where .. ": method names starting with \"rpc.\" or \"$/\" are reserved"
    end
    if type(def) ~= "table" then return nil, where .. ": expected table, got " .. type(def) end
    if getmetatable(def) ~= nil then return nil, where .. ": must be a plain table (no metatable)" end
    for k, v in next, def do
      local want = FIELDS[k]
      if not want then
        return nil, string.format("%s.%s: unknown field", where, tostring(k))
      end
      if type(v) ~= want then
        return nil, string.format("%s.%s: expected %s, got %s", where, k, want, type(v))
      end
    end
    if rawget(def, "call") == nil then return nil, where .. ".call: missing" end
    for _, k in ipairs({ "params", "result" }) do
      local pok, perr = plain(rawget(def, k), where .. "." .. k, 0)
      if not pok then return nil, perr end
    end
    local m = { name = name, doc = rawget(def, "doc"), call = rawget(def, "call"), file = fname,
                params = rawget(def, "params"), result = rawget(def, "result"), where = where }
    -- Checked here, compiled by the runtime for the methods the policy grants (M.compile): a
    -- tenant does not carry validators for methods it can never call.
    if m.params then
      local good, serr = schema.check(m.params, where .. ".params")
      if not good then return nil, serr end
    end
    if m.result then   -- only checked: results are never validated, so no validator is made
      local good, serr = schema.check(m.result, where .. ".result")
      if not good then return nil, serr end
    end
    out[#out + 1] = m
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end
M.load_file = load_file

-- The params validator of a loaded method (its schema was checked by load_file).
function M.compile(m)
  if not m.params then return true end
  local v, err = schema.compile(m.params, m.where .. ".params")
  if not v then return nil, err end
  m.validate = v
  return true
end

-- Load every *.lua file of each directory, in order. Returns methods (name -> entry) or nil, msg.
function M.load(dirs)
  local methods = {}
  for _, dir in ipairs(dirs) do
    local files, err = host.list_dir(dir.path)
    if not files then
      return nil, string.format("handler directory %s: %s", dir.label, err)
    end
    for _, fname in ipairs(files) do
      local src, rerr = host.read_file(dir.path .. "/" .. fname, MAX_FILE + 1)
      if not src then return nil, string.format("%s: %s", fname, rerr) end
      local list, lerr = load_file(src, fname)
      if not list then return nil, lerr end
      for _, m in ipairs(list) do
        local prev = methods[m.name]
        if prev then
          return nil, string.format("%s: method %q is already defined in %s", fname, m.name,
            prev.file)
        end
        methods[m.name] = m
      end
    end
  end
  return methods
end

return M
