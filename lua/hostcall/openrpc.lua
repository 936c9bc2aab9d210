-- openrpc.lua: the OpenRPC 1.x document of the methods a tenant may call.
local host = ...

local M = {}
local array = host.array

local function list(t) return setmetatable(t, array) end

-- Deep copy of a schema as plain JSON data; lists become marked arrays so [] survives.
local function plain(v)
  if type(v) ~= "table" then return v end
  local out = {}
  local n = rawlen(v)
  local is_list = n > 0 or host.is_array(v)
  for k, x in next, v do out[k] = plain(x) end
  if is_list then setmetatable(out, array) end
  return out
end
M.plain = plain

local function describe_params(s)
  if type(s) ~= "table" then return list({}), "either" end
  local params = {}
  local req = {}
  for _, r in ipairs(s.required or {}) do req[r] = true end
  local props = s.properties or {}
  local names = {}
  for k in pairs(props) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local p = props[k]
    params[#params + 1] = {
      name = k,
      required = req[k] == true,
      description = type(p) == "table" and p.description or nil,
      schema = plain(p),
    }
  end
  return list(params), "by-name"
end

-- methods: name -> entry (doc, params, result); names: sorted list of the granted names.
function M.document(methods, names, version, tenant)
  local out = {}
  for _, name in ipairs(names) do
    local m = methods[name]
    local params, structure = describe_params(m.params)
    out[#out + 1] = {
      name = name,
      summary = m.doc and m.doc:match("^[^\n]*") or nil,
      description = m.doc,
      params = params,
      paramStructure = structure,
      result = { name = "result", schema = m.result and plain(m.result) or { type = "object" } },
    }
  end
  return {
    openrpc = "1.3.2",
    info = { title = "hostcall: " .. tenant, version = version,
             description = "Host functions this tenant's policy grants." },
    methods = list(out),
  }
end

return M
