-- hostcall.schema: the JSON Schema subset that validates handler params (docs/schema-subset.md).
--
-- compile(schema, where) reads a handler's schema once and turns it into a tree of closures;
-- the returned validate(value, root_name) runs on every call, so it does no keyword dispatch:
-- each schema node became one closure holding only the checks its keywords asked for.
--
-- Inside the tree a check is check(v) -> nil when v is valid, or (rel_path, message) when it is
-- not; rel_path ("" at the failing node, ".key", "[3]", ...) is built on the way back up only when
-- something failed, so a valid value allocates nothing (except the set of uniqueItems).
--
-- Values come from the wire decoder: integers are Lua integers, other numbers floats, null is
-- host.null, arrays carry the array marker (host.is_array). Only raw access is used on values
-- (rawget, rawlen, next, type, math.type): no metamethod of a value ever runs. Messages name the
-- type of a bad value, never the value (it may be large or secret); enum/const list the schema's
-- own values. Recursion follows the schema, so the work on nested values is bounded by the
-- schema's depth (at most MAX_DEPTH), whatever the depth of the value.

local host, import = ... -- luacheck: ignore import

local type, rawget, rawlen, rawequal, next, tostring, tonumber, error, pcall, ipairs,
  setmetatable, getmetatable = type, rawget, rawlen, rawequal, next, tostring, tonumber, error,
  pcall, ipairs, setmetatable, getmetatable
local mtype, huge = math.type, math.huge
local ulen = utf8.len
local sfmt, sbyte, ssub, sfind, sgsub = string.format, string.byte, string.sub, string.find,
  string.gsub
local concat, sort = table.concat, table.sort

local null = host.null
local is_array = host.is_array

local MAX_DEPTH = 32   -- a schema nested deeper than this is refused at compile time
local KEY_SHOW_MAX = 64 -- bytes of a guest-chosen key shown in a message before "..."

local M = { MAX_DEPTH = MAX_DEPTH }

---------------------------------------------------------------------------------------------------
-- Formatting (used on failure paths and at compile time only)

-- The JSON type name of a value; other Lua types (never produced by the decoder) keep their name.
local function jtype(v)
  if rawequal(v, null) then return "null" end
  local t = type(v)
  if t == "number" then return mtype(v) == "integer" and "integer" or "number" end
  if t == "table" then return is_array(v) and "array" or "object" end
  return t
end

local function escape_char(c)
  if c == '"' then return '\\"' end
  if c == "\\" then return "\\\\" end
  return sfmt("\\u%04x", sbyte(c))
end

-- A string as a JSON literal. With limit, at most limit bytes are shown (cut at a code point
-- boundary, then "..."). Control characters are escaped; invalid UTF-8 is not shown.
local function quote(s, limit)
  local cut = false
  if limit and #s > limit then
    local n = limit
    while n > 0 and (sbyte(s, n + 1) & 0xC0) == 0x80 do n = n - 1 end
    s, cut = ssub(s, 1, n), true
  end
  if not ulen(s) then return "<invalid UTF-8>" end
  s = sgsub(s, '[%c"\\]', escape_char)
  return '"' .. s .. (cut and '..."' or '"')
end

-- A path step for an object key: .name for identifiers, ["odd key"] otherwise.
local function key_seg(key, limit)
  if (not limit or #key <= limit) and sfind(key, "^[A-Za-z_][A-Za-z0-9_]*$") then
    return "." .. key
  end
  return "[" .. quote(key, limit) .. "]"
end

-- A scalar of the schema (enum/const) as JSON text; floats keep a ".0" so 1.0 is not shown as 1.
local function show(v)
  if rawequal(v, null) then return "null" end
  local t = type(v)
  if t == "string" then return quote(v) end
  if mtype(v) == "float" then
    local s = sfmt("%.14g", v)
    if tonumber(s) ~= v then s = sfmt("%.17g", v) end
    if sfind(s, "^%-?%d+$") then s = s .. ".0" end
    return s
  end
  return tostring(v)
end

-- "a", "a or b", "a, b or c"
local function join_or(list)
  if #list == 1 then return list[1] end
  return concat(list, ", ", 1, #list - 1) .. " or " .. list[#list]
end

local function plural(n, word)
  if n == 1 then return "1 " .. word end
  return n .. " " .. (word == "property" and "properties" or word .. "s")
end

---------------------------------------------------------------------------------------------------
-- Compile-time helpers

local SchemaError = {}

local function fail(path, msg)
  error(setmetatable({ msg = path .. ": " .. msg }, SchemaError), 0)
end

-- A Lua sequence 1..n and nothing else (an empty table counts).
local function is_list(t)
  if type(t) ~= "table" or rawequal(t, null) then return false end
  local n, count = rawlen(t), 0
  for k in next, t do
    if mtype(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

local function is_scalar(v)
  local t = type(v)
  return rawequal(v, null) or t == "string" or t == "boolean"
    or (t == "number" and v == v and v ~= huge and v ~= -huge)
end

local JSON_TYPES = {
  string = true, integer = true, number = true, boolean = true, null = true, object = true,
  array = true,
}

-- The validated keywords; the value names the instance type the keyword applies to (or true).
local KEYWORDS = {
  type = true, enum = true, const = true,
  anyOf = true, oneOf = true, allOf = true, ["not"] = true,
  properties = "object", required = "object", additionalProperties = "object",
  minProperties = "object", maxProperties = "object",
  items = "array", minItems = "array", maxItems = "array", uniqueItems = "array",
  minLength = "string", maxLength = "string",
  minimum = "number", maximum = "number", exclusiveMinimum = "number",
  exclusiveMaximum = "number", multipleOf = "number",
}

-- Annotations: kept in the schema (documentation, the wire encoder's hints), never validated.
-- The value names the type the annotation must have ("any" for default).
local ANNOTATIONS = {
  description = "string", title = "string", ["$comment"] = "string",
  deprecated = "boolean", readOnly = "boolean", writeOnly = "boolean",
  default = "any", examples = "list",
}

local GROUP_NOUN = { object = "objects", array = "arrays", string = "strings", number = "numbers" }

local function get_count(s, k, path)
  local v = rawget(s, k)
  if v ~= nil and (mtype(v) ~= "integer" or v < 0) then
    fail(path .. "." .. k, "expected a non-negative integer")
  end
  return v
end

local function get_number(s, k, path)
  local v = rawget(s, k)
  if v == nil then return nil end
  if type(v) ~= "number" or v ~= v or v == huge or v == -huge then
    if type(v) == "boolean" then
      fail(path .. "." .. k, "expected a number (the boolean form of draft 4 is not supported)")
    end
    fail(path .. "." .. k, "expected a finite number")
  end
  return v
end

local function not_above(s, lo, hi, path)
  local a, b = rawget(s, lo), rawget(s, hi)
  if a and b and a > b then fail(path .. "." .. lo, "greater than " .. hi) end
end

-- Runs the checks of steps in order; the first failure wins.
local function seq(steps)
  local n = #steps
  if n == 0 then return function() end end
  if n == 1 then return steps[1] end
  if n == 2 then
    local a, b = steps[1], steps[2]
    return function(v)
      local p, m = a(v)
      if p then return p, m end
      return b(v)
    end
  end
  return function(v)
    for i = 1, n do
      local p, m = steps[i](v)
      if p then return p, m end
    end
  end
end

-- A check of a single JSON type.
local function single_type_check(name)
  local msg = "expected " .. name .. ", got "
  if name == "string" then
    return function(v) if type(v) ~= "string" then return "", msg .. jtype(v) end end
  elseif name == "integer" then
    return function(v) if mtype(v) ~= "integer" then return "", msg .. jtype(v) end end
  elseif name == "number" then
    return function(v) if type(v) ~= "number" then return "", msg .. jtype(v) end end
  elseif name == "boolean" then
    return function(v) if type(v) ~= "boolean" then return "", msg .. jtype(v) end end
  elseif name == "null" then
    return function(v) if not rawequal(v, null) then return "", msg .. jtype(v) end end
  elseif name == "object" then
    return function(v)
      if type(v) ~= "table" or rawequal(v, null) or is_array(v) then return "", msg .. jtype(v) end
    end
  else -- array
    return function(v)
      if type(v) ~= "table" or not is_array(v) then return "", msg .. jtype(v) end
    end
  end
end

-- Scalar types whose check is `fn(v) ~= name` with a C function.
local INLINE_TESTS = { string = type, boolean = type, number = type, integer = mtype }

local compile_node -- forward

---------------------------------------------------------------------------------------------------
-- Keyword groups. Each builds one closure; `enforce` (a message prefix or nil) says whether the
-- closure also is the node's type check ("expected object, got ...") or lets other types through.

local function string_group(s, path, enforce)
  local minl, maxl = get_count(s, "minLength", path), get_count(s, "maxLength", path)
  not_above(s, "minLength", "maxLength", path)
  local short = minl and "expected at least " .. plural(minl, "character")
  local long = maxl and "expected at most " .. plural(maxl, "character")
  return function(v)
    if type(v) ~= "string" then
      if enforce then return "", enforce .. jtype(v) end
      return
    end
    -- Every code point takes at most 4 bytes: a string that long is too long without scanning it.
    if maxl and (#v + 3) // 4 > maxl then return "", long end
    local n = ulen(v)
    if not n then return "", "invalid UTF-8" end
    if minl and n < minl then return "", short end
    if maxl and n > maxl then return "", long end
  end
end

local function number_group(s, path, enforce, int_only, types_given)
  local min, max = get_number(s, "minimum", path), get_number(s, "maximum", path)
  local xmin, xmax = get_number(s, "exclusiveMinimum", path), get_number(s, "exclusiveMaximum", path)
  not_above(s, "minimum", "maximum", path)
  local mult = rawget(s, "multipleOf")
  if mult ~= nil then
    if mtype(mult) ~= "integer" or mult <= 0 then
      fail(path .. ".multipleOf", "expected a positive integer")
    end
    -- Exact only on integers: refuse it unless the node's type lets no float through.
    if not types_given or not types_given.integer or types_given.number then
      fail(path .. ".multipleOf", 'requires a type that allows "integer" and not "number"')
    end
  end
  local msg_min = min and "expected a value >= " .. show(min)
  local msg_max = max and "expected a value <= " .. show(max)
  local msg_xmin = xmin and "expected a value > " .. show(xmin)
  local msg_xmax = xmax and "expected a value < " .. show(xmax)
  local msg_mult = mult and "expected a multiple of " .. show(mult)
  -- Comparisons are written so that NaN (never produced by the decoder) fails them all; Lua 5.4
  -- compares integers with floats exactly.
  return function(v)
    if int_only then
      if mtype(v) ~= "integer" then
        if enforce then return "", enforce .. jtype(v) end
        return
      end
    elseif type(v) ~= "number" then
      if enforce then return "", enforce .. jtype(v) end
      return
    end
    -- luacheck: push ignore 581 (the negated comparisons are what makes NaN fail)
    if min and not (v >= min) then return "", msg_min end
    if max and not (v <= max) then return "", msg_max end
    if xmin and not (v > xmin) then return "", msg_xmin end
    if xmax and not (v < xmax) then return "", msg_xmax end
    -- luacheck: pop
    if mult and v % mult ~= 0 then return "", msg_mult end
  end
end

local function array_group(s, path, depth, enforce)
  local mini, maxi = get_count(s, "minItems", path), get_count(s, "maxItems", path)
  not_above(s, "minItems", "maxItems", path)
  local items = rawget(s, "items")
  local item_check
  if items ~= nil then
    if type(items) == "table" and not rawequal(items, null) and rawget(items, 1) ~= nil then
      fail(path .. ".items", "the tuple form (a list of schemas) is not supported: give one schema")
    end
    item_check = compile_node(items, path .. ".items", depth + 1)
  end
  local unique = rawget(s, "uniqueItems")
  if unique ~= nil and type(unique) ~= "boolean" then
    fail(path .. ".uniqueItems", "expected a boolean")
  end
  unique = unique or nil
  if unique and type(items) == "table" then
    local t = rawget(items, "type")
    local list = type(t) == "string" and { t } or t
    for _, name in ipairs(list or {}) do
      if name == "object" or name == "array" then
        fail(path .. ".uniqueItems", "only supported for scalar items, but items allows " .. name)
      end
    end
  end
  local few = mini and "expected at least " .. plural(mini, "item")
  local many = maxi and "expected at most " .. plural(maxi, "item")
  return function(v)
    if type(v) ~= "table" or not is_array(v) then
      if enforce then return "", enforce .. jtype(v) end
      return
    end
    local n = rawlen(v)
    if mini and n < mini then return "", few end
    if maxi and n > maxi then return "", many end
    if item_check then
      for i = 1, n do
        local p, m = item_check(rawget(v, i))
        if p then return "[" .. (i - 1) .. "]" .. p, m end
      end
    end
    if unique then
      -- Scalars only; as table keys 1 and 1.0 are the same key, so they count as duplicates.
      local seen = {}
      for i = 1, n do
        local x = rawget(v, i)
        if not is_scalar(x) then
          return "[" .. (i - 1) .. "]", "expected a scalar item (uniqueItems), got " .. jtype(x)
        end
        local j = seen[x]
        if j then return "", "items [" .. j .. "] and [" .. (i - 1) .. "] are equal" end
        seen[x] = i - 1
      end
    end
  end
end

local function object_group(s, path, depth, enforce)
  local props = rawget(s, "properties")
  local names, checks, segs, declared = {}, {}, {}, {}
  -- tests[i](x) ~= wants[i] is the whole check of a property whose schema is just a scalar type:
  -- calling type/math.type directly saves a closure call per property on the hot path.
  local tests, wants, wmsgs = {}, {}, {}
  if props ~= nil then
    if type(props) ~= "table" or rawequal(props, null) then
      fail(path .. ".properties", "expected a table of schemas")
    end
    for k in next, props do
      if type(k) ~= "string" then
        fail(path .. ".properties", "expected string keys, got a " .. type(k) .. " key")
      end
      names[#names + 1] = k
    end
    sort(names) -- a deterministic order for the messages
    for i, k in ipairs(names) do
      checks[i], tests[i], wants[i] =
        compile_node(rawget(props, k), path .. ".properties" .. key_seg(k), depth + 1)
      segs[i] = key_seg(k)
      declared[k] = true
      if wants[i] then wmsgs[i] = "expected " .. wants[i] .. ", got " end
    end
  end
  local nprops = #names

  local addl = rawget(s, "additionalProperties")
  local extra -- nil: any extra key allowed; false: none; a function: the check of extra values
  if addl == false then
    extra = false
  elseif type(addl) == "table" and not rawequal(addl, null) then
    extra = compile_node(addl, path .. ".additionalProperties", depth + 1)
  elseif addl ~= nil and addl ~= true then
    fail(path .. ".additionalProperties", "expected a boolean or a schema")
  end

  local req = rawget(s, "required")
  local reqs, reqmsg = {}, {}
  if req ~= nil then
    if not is_list(req) then fail(path .. ".required", "expected a list of strings") end
    local seen = {}
    for i, name in ipairs(req) do
      local p = path .. ".required[" .. i .. "]"
      if type(name) ~= "string" then fail(p, "expected a string, got " .. jtype(name)) end
      if seen[name] then fail(p, "duplicate name " .. quote(name)) end
      if extra == false and not declared[name] then
        fail(p, quote(name) .. " is not in properties and additionalProperties is false")
      end
      seen[name] = true
      reqs[i] = name
      reqmsg[i] = "missing required property " .. quote(name)
    end
  end
  local nreq = #reqs

  local minp, maxp = get_count(s, "minProperties", path), get_count(s, "maxProperties", path)
  not_above(s, "minProperties", "maxProperties", path)
  local few = minp and "expected at least " .. plural(minp, "property")
  local many = maxp and "expected at most " .. plural(maxp, "property")
  local walk = extra ~= nil or minp ~= nil or maxp ~= nil

  return function(v)
    if type(v) ~= "table" then
      if enforce then return "", enforce .. jtype(v) end
      return
    end
    -- A JSON array carries the marker metatable, so a table without a metatable is an object,
    -- and indexing it is raw access (no metamethod to run; v == null cannot run one either).
    -- A table with any other metatable is read with rawget.
    local get = rawget
    if getmetatable(v) == nil and v ~= null then
      get = nil
    elseif rawequal(v, null) or is_array(v) then
      if enforce then return "", enforce .. jtype(v) end
      return
    end
    for i = 1, nreq do
      local x
      if get then x = get(v, reqs[i]) else x = v[reqs[i]] end
      if x == nil then return "", reqmsg[i] end
    end
    for i = 1, nprops do
      local x
      if get then x = get(v, names[i]) else x = v[names[i]] end
      if x ~= nil then
        local want = wants[i]
        if want then
          if tests[i](x) ~= want then return segs[i], wmsgs[i] .. jtype(x) end
        else
          local p, m = checks[i](x)
          if p then return segs[i] .. p, m end
        end
      end
    end
    if walk then
      local count = 0
      for k, x in next, v do
        if type(k) ~= "string" then return "", "object has a non-string key" end
        count = count + 1
        if maxp and count > maxp then return "", many end
        if extra ~= nil and not declared[k] then
          if not extra then return "", "unexpected property " .. quote(k, KEY_SHOW_MAX) end
          local p, m = extra(x)
          if p then return key_seg(k, KEY_SHOW_MAX) .. p, m end
        end
      end
      if minp and count < minp then return "", few end
    end
  end
end

---------------------------------------------------------------------------------------------------
-- enum / const / combinators

local function value_set(list, path, what)
  local set, ints, floats = {}, {}, {}
  for i, x in ipairs(list) do
    if not is_scalar(x) then
      fail(what == "const" and path or path .. "[" .. i .. "]",
        "expected a string, a finite number, a boolean or null, got " .. jtype(x))
    end
    local mt = mtype(x)
    if mt == "integer" then ints[x] = true
    elseif mt == "float" then floats[x] = true
    else set[x] = true end
  end
  -- Matching is by JSON type and value: an integer never matches a float (1 vs 1.0).
  return function(v)
    local mt = mtype(v)
    local ok
    if mt == "integer" then ok = ints[v]
    elseif mt == "float" then ok = floats[v]
    else ok = set[v] end
    return ok
  end
end

local function enum_check(s, path)
  local list = rawget(s, "enum")
  if not is_list(list) or #list == 0 then fail(path .. ".enum", "expected a non-empty list") end
  local has = value_set(list, path .. ".enum", "enum")
  local shown = {}
  for i, x in ipairs(list) do shown[i] = show(x) end
  local msg = "expected one of " .. concat(shown, ", ")
  return function(v) if not has(v) then return "", msg end end
end

local function const_check(s, path)
  local c = rawget(s, "const")
  local has = value_set({ c }, path .. ".const", "const")
  local msg = "expected " .. show(c)
  return function(v) if not has(v) then return "", msg end end
end

local function schema_list(s, k, path, depth)
  local list = rawget(s, k)
  if not is_list(list) or #list == 0 then
    fail(path .. "." .. k, "expected a non-empty list of schemas")
  end
  local checks = {}
  for i, sub in ipairs(list) do
    checks[i] = compile_node(sub, path .. "." .. k .. "[" .. i .. "]", depth + 1)
  end
  return checks
end

-- Why every alternative failed: "anyOf[1]: msg; anyOf[2] at .x: msg" (schema lists are numbered
-- from 1 as the Lua source writes them; the instance path is relative to this node).
local function alternative_error(k, i, p, m)
  if p == "" then return k .. "[" .. i .. "]: " .. m end
  return k .. "[" .. i .. "] at " .. p .. ": " .. m
end

local function any_of(checks)
  local n = #checks
  return function(v)
    local errs = {}
    for i = 1, n do
      local p, m = checks[i](v)
      if not p then return end
      errs[i] = alternative_error("anyOf", i, p, m)
    end
    return "", "matches none of anyOf (" .. concat(errs, "; ") .. ")"
  end
end

local function one_of(checks)
  local n = #checks
  return function(v)
    local errs, first = {}, nil
    for i = 1, n do
      local p, m = checks[i](v)
      if not p then
        if first then
          return "", "matches more than one of oneOf (oneOf[" .. first .. "] and oneOf[" .. i .. "])"
        end
        first = i
      elseif not first then
        errs[i] = alternative_error("oneOf", i, p, m)
      end
    end
    if not first then return "", "matches none of oneOf (" .. concat(errs, "; ") .. ")" end
  end
end

local function not_of(check)
  return function(v)
    if not check(v) then return "", 'must not match the "not" schema' end
  end
end

---------------------------------------------------------------------------------------------------
-- A schema node

compile_node = function(s, path, depth)
  if type(s) ~= "table" or rawequal(s, null) then fail(path, "expected a schema (a table)") end
  if depth > MAX_DEPTH then fail(path, "schema nested deeper than " .. MAX_DEPTH .. " levels") end

  local keys = {}
  for k in next, s do
    if type(k) ~= "string" then
      fail(path, "unexpected non-string key " .. (type(k) == "number" and tostring(k) or
        "of type " .. type(k)) .. " (keywords are strings)")
    end
    keys[#keys + 1] = k
  end
  sort(keys) -- report the same error first on every run
  local groups = {}
  for _, k in ipairs(keys) do
    local g = KEYWORDS[k]
    if g then
      if g ~= true then groups[g] = groups[g] or k end
    else
      local a = ANNOTATIONS[k]
      if not a then fail(path, "unknown keyword " .. quote(k)) end
      local v = rawget(s, k)
      if (a == "string" or a == "boolean") and type(v) ~= a then
        fail(path .. key_seg(k), "expected a " .. a)
      elseif a == "list" and not is_list(v) then
        fail(path .. key_seg(k), "expected a list")
      end
    end
  end

  -- type
  local t = rawget(s, "type")
  local tlist, tset
  if t ~= nil then
    if type(t) == "string" then
      tlist = { t }
    elseif is_list(t) and #t > 0 then
      tlist = t
    else
      fail(path .. ".type", "expected a type name or a non-empty list of type names")
    end
    tset = {}
    for i, name in ipairs(tlist) do
      local p = type(t) == "string" and path .. ".type" or path .. ".type[" .. i .. "]"
      if type(name) ~= "string" then fail(p, "expected a type name, got " .. jtype(name)) end
      if not JSON_TYPES[name] then fail(p, "unknown type " .. quote(name)) end
      if tset[name] then fail(p, "duplicate type " .. quote(name)) end
      tset[name] = true
    end
    -- Keywords of a type the node cannot be are mistakes, not no-ops.
    for g, k in next, groups do
      local allowed = tset[g] or (g == "number" and tset.integer)
      if not allowed then
        fail(path .. "." .. k, "applies to " .. GROUP_NOUN[g] .. ", but type does not allow them")
      end
    end
  end

  -- The single type of the node, if any: its keyword group then doubles as the type check.
  local single = tlist and #tlist == 1 and tlist[1]
  local single_group = single and ((single == "integer" or single == "number") and "number" or single)
  local steps = {}
  local function group_enforce(g)
    if g == single_group then return "expected " .. single .. ", got " end
  end
  if tset and not (single_group and groups[single_group]) then
    if single then
      steps[#steps + 1] = single_type_check(single)
    else
      local accept, names = {}, {}
      for i, name in ipairs(tlist) do accept[name] = true; names[i] = name end
      if accept.number then accept.integer = true end
      local msg = "expected " .. join_or(names) .. ", got "
      steps[#steps + 1] = function(v)
        local j = jtype(v)
        if not accept[j] then return "", msg .. j end
      end
    end
  end
  if groups.object then steps[#steps + 1] = object_group(s, path, depth, group_enforce("object")) end
  if groups.array then steps[#steps + 1] = array_group(s, path, depth, group_enforce("array")) end
  if groups.string then steps[#steps + 1] = string_group(s, path, group_enforce("string")) end
  if groups.number then
    steps[#steps + 1] = number_group(s, path, group_enforce("number"), single == "integer", tset)
  end
  if rawget(s, "enum") ~= nil then steps[#steps + 1] = enum_check(s, path) end
  if rawget(s, "const") ~= nil then steps[#steps + 1] = const_check(s, path) end
  if rawget(s, "allOf") ~= nil then
    for _, c in ipairs(schema_list(s, "allOf", path, depth)) do steps[#steps + 1] = c end
  end
  if rawget(s, "anyOf") ~= nil then steps[#steps + 1] = any_of(schema_list(s, "anyOf", path, depth)) end
  if rawget(s, "oneOf") ~= nil then steps[#steps + 1] = one_of(schema_list(s, "oneOf", path, depth)) end
  if rawget(s, "not") ~= nil then
    steps[#steps + 1] = not_of(compile_node(rawget(s, "not"), path .. ".not", depth + 1))
  end
  -- A node that is only a scalar type check (its one step is single_type_check) also tells its
  -- parent how to test it inline.
  if #steps == 1 and single and not groups[single_group] and INLINE_TESTS[single] then
    return steps[1], INLINE_TESTS[single], single
  end
  return seq(steps)
end

---------------------------------------------------------------------------------------------------
-- API

-- compile(schema, where) -> validate | nil, message. `where` prefixes schema errors
-- (default "schema"). The schema is read once: changing the table later changes nothing.
function M.compile(s, where)
  where = where or "schema"
  local ok, check = pcall(compile_node, s, where, 1)
  if not ok then
    if getmetatable(check) == SchemaError then return nil, check.msg end
    error(check, 0) -- a bug here, not a bad schema
  end
  -- validate(value, root_name) -> true | nil, "params.key: expected string, got integer"
  return function(value, root)
    local p, m = check(value)
    if p == nil then return true end
    return nil, (root or "params") .. p .. ": " .. m
  end
end

return M
