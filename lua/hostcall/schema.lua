-- hostcall.schema: the JSON Schema subset that validates handler params (docs/schema-subset.md).
--
-- compile(schema, where) reads a handler's schema once, in two passes:
--   1. parse: every keyword is checked (schema errors come out here, always in the same order) and
--      each schema node becomes a plan: the list of steps its keywords ask for, in the order they
--      run, with their bounds and messages already worked out;
--   2. generate: the plans become Lua source specialised to this schema (as ajv does for
--      JavaScript), loaded once with `load`. Property names, bounds and messages are literals in
--      that code and the checks of nested nodes are written inline, so a call does no keyword
--      dispatch, walks no table of the schema and, for most schemas, makes no Lua call besides
--      validate itself: only C calls such as type(), which no Lua code can avoid.
--
-- Inside the generated code a failure leaves at once: `return E(root, path, message)` in
-- validate itself, `return path, message` in a helper function (the alternatives of anyOf, oneOf
-- and not, whose failures must be caught rather than reported, and nodes nested deeper than
-- INLINE_DEPTH below the function they are in). Paths are literals except for array indexes and
-- guest keys, and they are only built on the failing path, so a valid value allocates nothing
-- (except the set of uniqueItems, and the reasons of anyOf/oneOf alternatives that fail).
--
-- Checks run in the order the closure validator ran them, so the first failure, and so the
-- message, is the same. Where the generated code takes a shortcut it is only on the path of a
-- valid value, and anything unusual falls back to the original order: an object with
-- additionalProperties = false is read by one walk over its keys (or its keys are counted), and
-- only an object with another key runs the key walk that reports it (closed_walk); a string
-- enum is compared before the type is tested, and the type is tested first when it does not
-- match. The code that only runs on failure (that walk, uniqueItems, the messages of anyOf and
-- oneOf) is in plain Lua helpers below, not generated.
--
-- Nothing the schema (a tenant file) says ever becomes code: strings and numbers enter the source
-- only through lit() (string.format's %q, which Lua reads back as the same value), and the only
-- identifiers are the generator's own. The chunk is loaded in an empty environment and receives
-- its helpers as arguments, so it can reach no global.
--
-- Values come from the wire decoder: integers are Lua integers, other numbers floats, null is
-- host.null, arrays carry the array marker (host.is_array). Only raw access is used on values
-- (rawget, rawlen, next, type, math.type; v[k] only on a table without a metatable): no
-- metamethod of a value ever runs. Messages name the type of a bad value, never the value (it
-- may be large or secret); enum/const list the schema's own values. Recursion follows the schema,
-- so the work on nested values is bounded by the schema's depth (at most MAX_DEPTH), whatever the
-- depth of the value.
--
-- spec/schema_diff_spec.lua checks the generated validators against the closure-based validator
-- this file replaced (spec/fixtures/schema_closures.lua): same decisions, same messages, same
-- schema errors.

local host, import = ... -- luacheck: ignore import

local type, rawget, rawlen, rawequal, next, tostring, tonumber, error, pcall, ipairs,
  setmetatable, getmetatable, load = type, rawget, rawlen, rawequal, next, tostring, tonumber,
  error, pcall, ipairs, setmetatable, getmetatable, load
local mtype, huge = math.type, math.huge
local ulen = utf8.len
local sfmt, sbyte, ssub, sfind, sgsub, srep = string.format, string.byte, string.sub, string.find,
  string.gsub, string.rep
local concat, sort, unpack = table.concat, table.sort, table.unpack

local null = host.null
local is_array = host.is_array

local MAX_DEPTH = 32   -- a schema nested deeper than this is refused at compile time
local KEY_SHOW_MAX = 64 -- bytes of a guest-chosen key shown in a message before "..."

-- Generation limits (they change the shape of the code, never what it decides):
local INLINE_DEPTH = 6 -- nodes written inline below a function before a helper function starts:
                       -- bounds each function's locals (200 at most) and its nesting of blocks
local REQ_LOCALS = 8   -- required properties of an object whose values stay in locals for the
                       -- property checks (the others are read again)
local ENUM_INLINE = 8  -- enum lists up to this long are written as comparisons, longer as a set
local ANY_INLINE = 4   -- anyOf lists up to this long are tried in place, longer by a helper
local GATHER_MAX = 16  -- declared properties of an additionalProperties = false object read by
                       -- one walk over its keys (emit_gathered); more are read one by one

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

---------------------------------------------------------------------------------------------------
-- Pass 1: parse. Each keyword group becomes a step (a plain table); the schema errors are raised
-- here, in a fixed order: the groups in the order compile_node lists them, the keywords of a group
-- in the order its function reads them. `enforce` (a message prefix or nil) says whether the step
-- also is the node's type check ("expected object, got ...") or lets other types through.

local parse_node -- forward

local function string_step(s, path, enforce)
  local minl, maxl = get_count(s, "minLength", path), get_count(s, "maxLength", path)
  not_above(s, "minLength", "maxLength", path)
  return {
    kind = "string", enforce = enforce, minl = minl, maxl = maxl,
    short = minl and "expected at least " .. plural(minl, "character"),
    long = maxl and "expected at most " .. plural(maxl, "character"),
  }
end

local function number_step(s, path, enforce, int_only, types_given)
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
  return {
    kind = "number", enforce = enforce, int_only = int_only,
    min = min, max = max, xmin = xmin, xmax = xmax, mult = mult,
    msg_min = min and "expected a value >= " .. show(min),
    msg_max = max and "expected a value <= " .. show(max),
    msg_xmin = xmin and "expected a value > " .. show(xmin),
    msg_xmax = xmax and "expected a value < " .. show(xmax),
    msg_mult = mult and "expected a multiple of " .. show(mult),
  }
end

local function array_step(s, path, depth, enforce)
  local mini, maxi = get_count(s, "minItems", path), get_count(s, "maxItems", path)
  not_above(s, "minItems", "maxItems", path)
  local items = rawget(s, "items")
  local item_node
  if items ~= nil then
    if type(items) == "table" and not rawequal(items, null) and rawget(items, 1) ~= nil then
      fail(path .. ".items", "the tuple form (a list of schemas) is not supported: give one schema")
    end
    item_node = parse_node(items, path .. ".items", depth + 1)
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
  return {
    kind = "array", enforce = enforce, mini = mini, maxi = maxi, items = item_node,
    unique = unique,
    few = mini and "expected at least " .. plural(mini, "item"),
    many = maxi and "expected at most " .. plural(maxi, "item"),
  }
end

local function object_step(s, path, depth, enforce)
  local props = rawget(s, "properties")
  local list, declared = {}, {} -- list: { name, seg, node } in name order
  if props ~= nil then
    if type(props) ~= "table" or rawequal(props, null) then
      fail(path .. ".properties", "expected a table of schemas")
    end
    local names = {}
    for k in next, props do
      if type(k) ~= "string" then
        fail(path .. ".properties", "expected string keys, got a " .. type(k) .. " key")
      end
      names[#names + 1] = k
    end
    sort(names) -- a deterministic order for the messages
    for i, k in ipairs(names) do
      list[i] = {
        name = k, seg = key_seg(k),
        node = parse_node(rawget(props, k), path .. ".properties" .. key_seg(k), depth + 1),
      }
      declared[k] = true
    end
  end

  local addl = rawget(s, "additionalProperties")
  local extra -- nil: any extra key allowed; false: none; a node: the schema of extra values
  if addl == false then
    extra = false
  elseif type(addl) == "table" and not rawequal(addl, null) then
    extra = parse_node(addl, path .. ".additionalProperties", depth + 1)
  elseif addl ~= nil and addl ~= true then
    fail(path .. ".additionalProperties", "expected a boolean or a schema")
  end

  local req = rawget(s, "required")
  local reqs, reqmsg, reqset = {}, {}, {}
  if req ~= nil then
    if not is_list(req) then fail(path .. ".required", "expected a list of strings") end
    for i, name in ipairs(req) do
      local p = path .. ".required[" .. i .. "]"
      if type(name) ~= "string" then fail(p, "expected a string, got " .. jtype(name)) end
      if reqset[name] then fail(p, "duplicate name " .. quote(name)) end
      if extra == false and not declared[name] then
        fail(p, quote(name) .. " is not in properties and additionalProperties is false")
      end
      reqset[name] = true
      reqs[i] = name
      reqmsg[i] = "missing required property " .. quote(name)
    end
  end

  local minp, maxp = get_count(s, "minProperties", path), get_count(s, "maxProperties", path)
  not_above(s, "minProperties", "maxProperties", path)
  return {
    kind = "object", enforce = enforce, props = list, declared = declared, extra = extra,
    reqs = reqs, reqmsg = reqmsg, reqset = reqset, minp = minp, maxp = maxp,
    few = minp and "expected at least " .. plural(minp, "property"),
    many = maxp and "expected at most " .. plural(maxp, "property"),
  }
end

-- enum / const: the values (scalars only), and the membership test of the old closure validator,
-- which the generated code calls for long lists. Matching is by JSON type and value: an integer
-- never matches a float (1 vs 1.0).
local function value_set(list, path, what)
  local set, ints, floats, values = {}, {}, {}, {}
  for i, x in ipairs(list) do
    if not is_scalar(x) then
      fail(what == "const" and path or path .. "[" .. i .. "]",
        "expected a string, a finite number, a boolean or null, got " .. jtype(x))
    end
    values[i] = x
    local mt = mtype(x)
    if mt == "integer" then ints[x] = true
    elseif mt == "float" then floats[x] = true
    else set[x] = true end
  end
  local function has(v)
    local mt = mtype(v)
    local ok
    if mt == "integer" then ok = ints[v]
    elseif mt == "float" then ok = floats[v]
    else ok = set[v] end
    return ok
  end
  return values, has
end

local function enum_step(s, path)
  local list = rawget(s, "enum")
  if not is_list(list) or #list == 0 then fail(path .. ".enum", "expected a non-empty list") end
  local values, has = value_set(list, path .. ".enum", "enum")
  local shown = {}
  for i, x in ipairs(list) do shown[i] = show(x) end
  return { kind = "enum", values = values, has = has, msg = "expected one of " .. concat(shown, ", ") }
end

local function const_step(s, path)
  local c = rawget(s, "const")
  local values, has = value_set({ c }, path .. ".const", "const")
  return { kind = "enum", values = values, has = has, msg = "expected " .. show(c) }
end

local function schema_list(s, k, path, depth)
  local list = rawget(s, k)
  if not is_list(list) or #list == 0 then
    fail(path .. "." .. k, "expected a non-empty list of schemas")
  end
  local nodes = {}
  for i, sub in ipairs(list) do
    nodes[i] = parse_node(sub, path .. "." .. k .. "[" .. i .. "]", depth + 1)
  end
  return nodes
end

-- A schema node -> { steps = { step, ... } }; the steps run in order and the first failure wins.
parse_node = function(s, path, depth)
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
      steps[#steps + 1] = { kind = "type", name = single }
    else
      local names = {}
      for i, name in ipairs(tlist) do names[i] = name end
      steps[#steps + 1] = { kind = "types", names = names, msg = "expected " .. join_or(names) .. ", got " }
    end
  end
  if groups.object then steps[#steps + 1] = object_step(s, path, depth, group_enforce("object")) end
  if groups.array then steps[#steps + 1] = array_step(s, path, depth, group_enforce("array")) end
  if groups.string then steps[#steps + 1] = string_step(s, path, group_enforce("string")) end
  if groups.number then
    steps[#steps + 1] = number_step(s, path, group_enforce("number"), single == "integer", tset)
  end
  if rawget(s, "enum") ~= nil then steps[#steps + 1] = enum_step(s, path) end
  if rawget(s, "const") ~= nil then steps[#steps + 1] = const_step(s, path) end
  if rawget(s, "allOf") ~= nil then
    for _, n in ipairs(schema_list(s, "allOf", path, depth)) do
      steps[#steps + 1] = { kind = "node", node = n } -- the same value, checked in place
    end
  end
  if rawget(s, "anyOf") ~= nil then
    steps[#steps + 1] = { kind = "anyOf", nodes = schema_list(s, "anyOf", path, depth) }
  end
  if rawget(s, "oneOf") ~= nil then
    steps[#steps + 1] = { kind = "oneOf", nodes = schema_list(s, "oneOf", path, depth) }
  end
  if rawget(s, "not") ~= nil then
    steps[#steps + 1] = { kind = "not", node = parse_node(rawget(s, "not"), path .. ".not", depth + 1) }
  end
  return { steps = steps }
end

---------------------------------------------------------------------------------------------------
-- Pass 2: generate. A plan becomes the body of a Lua function; `x` below is always the name of the
-- local that holds the value being checked, `path` the path of that value inside the function's
-- own value, as a list of parts: { s = literal text } or { c = Lua expression giving text }.

-- A string or number of the schema as a Lua literal that reads back as the same value: the only
-- way schema data enters the generated source. %q writes strings with every quote, backslash,
-- newline and control byte escaped, integers exactly (math.mininteger in hex) and floats in
-- hexadecimal, exactly. Numbers are parenthesised so that a negative one is never glued to an
-- operator before it.
local function lit(v)
  if type(v) == "string" then return sfmt("%q", v) end
  if type(v) == "number" then return "(" .. sfmt("%q", v) .. ")" end
  return tostring(v) -- true, false
end

-- path followed by parts (a new list: paths are shared by the code written after them).
local function path_with(path, ...)
  local p = {}
  for i, part in ipairs(path) do p[i] = part end
  for _, part in ipairs({ ... }) do p[#p + 1] = part end
  return p
end

-- path followed by the array index held by the loop variable i, written 0-based as the guest
-- wrote the JSON: [0], [1], ...
local function path_index(path, i)
  return path_with(path, { s = "[" }, { c = "(" .. i .. " - 1)" }, { s = "]" })
end

-- The path as one Lua expression; adjacent literal parts become one literal. Paths are never
-- changed once made, so the expression is kept in the path (every check of a node shares it).
local function path_code(path)
  if path.code then return path.code end
  local out, text = {}, nil
  for _, part in ipairs(path) do
    if part.s then
      text = (text or "") .. part.s
    else
      if text then out[#out + 1] = lit(text); text = nil end
      out[#out + 1] = part.c
    end
  end
  if text then out[#out + 1] = lit(text) end
  path.code = #out == 0 and '""' or concat(out, " .. ")
  return path.code
end

-- A function being written. gen is shared by all the functions of one schema: fresh-name counter,
-- helper functions, constants (K: tables the code reads, such as the set of declared names).
local function new_fn(gen, is_root)
  return { gen = gen, out = {}, n = 0, depth = 1, level = 0, root = is_root }
end

-- Indentation by block depth (the text is for people reading source(); load does not care).
local INDENT = setmetatable({}, { __index = function(t, d)
  local s = srep("  ", d)
  t[d] = s
  return s
end })

-- Lines go to f.out as indentation, text and newline: concatenated once, at the end.
local function put(f, line)
  local out, n = f.out, f.n
  out[n + 1], out[n + 2], out[n + 3] = INDENT[f.depth], line, "\n"
  f.n = n + 3
end
local function open(f, line) put(f, line); f.depth = f.depth + 1 end
local function close(f) f.depth = f.depth - 1; put(f, "end") end

local function fresh(f, base)
  local gen = f.gen
  gen.names = gen.names + 1
  return base .. gen.names
end

local function constant(f, value)
  local gen = f.gen
  gen.K[#gen.K + 1] = value
  return "K[" .. #gen.K .. "]"
end

-- The statement that reports a failure: validate returns nil and the full message; a helper
-- function returns (path, message) for its caller to prefix or collect.
local function fail_stmt(f, path, msg)
  if f.root then return "return E(root, " .. path_code(path) .. ", " .. msg .. ")" end
  return "return " .. path_code(path) .. ", " .. msg
end

-- "y is nil", written `not y and y == nil`: a present value is almost always truthy, and a test of
-- truth is one cheap instruction where == nil is a comparison.
local function absent(y) return "not " .. y .. " and " .. y .. " == nil" end

-- The message "<prefix><JSON type of x>".
local function got(prefix, x) return lit(prefix) .. " .. jtype(" .. x .. ")" end

local emit_node, new_function -- forward

-- A nested node (a property, the items, extra values, an allOf entry): inline while the function
-- is shallow enough, else in a helper function of its own.
local function emit_child(f, node, x, path)
  if #node.steps == 0 then return end -- {} or annotations only: accepts anything
  if f.level >= INLINE_DEPTH then
    local id = new_function(f.gen, node)
    local p, m = fresh(f, "p"), fresh(f, "m")
    put(f, sfmt("do local %s, %s = F[%d](%s) if %s then %s end end", p, m, id, x, p,
      fail_stmt(f, path_with(path, { c = p }), m)))
    return
  end
  f.level = f.level + 1
  emit_node(f, node, x, path)
  f.level = f.level - 1
end

-- The condition under which x is NOT of a single type (the check of `type = "name"`).
local NOT_TYPE = {
  string = function(x) return "type(" .. x .. ') ~= "string"' end,
  integer = function(x) return "mtype(" .. x .. ') ~= "integer"' end,
  number = function(x) return "type(" .. x .. ') ~= "number"' end,
  boolean = function(x) return "type(" .. x .. ') ~= "boolean"' end,
  null = function(x) return "not rawequal(" .. x .. ", null)" end,
  object = function(x)
    return "type(" .. x .. ') ~= "table" or rawequal(' .. x .. ", null) or is_array(" .. x .. ")"
  end,
  array = function(x) return "type(" .. x .. ') ~= "table" or not is_array(' .. x .. ")" end,
}
-- ... and under which x IS of it, given t = type(x): jtype(x) == name, without calling jtype.
local IS_TYPE = {
  string = function(_, t) return t .. ' == "string"' end,
  integer = function(x) return "mtype(" .. x .. ') == "integer"' end,
  number = function(_, t) return t .. ' == "number"' end,
  boolean = function(_, t) return t .. ' == "boolean"' end,
  null = function(x) return "rawequal(" .. x .. ", null)" end,
  object = function(x, t)
    return "(" .. t .. ' == "table" and not rawequal(' .. x .. ", null) and not is_array(" .. x .. "))"
  end,
  array = function(x, t)
    return "(" .. t .. ' == "table" and not rawequal(' .. x .. ", null) and is_array(" .. x .. "))"
  end,
}

local EMIT = {}

EMIT.type = function(f, st, x, path)
  put(f, sfmt("if %s then %s end", NOT_TYPE[st.name](x),
    fail_stmt(f, path, got("expected " .. st.name .. ", got ", x))))
end

EMIT.types = function(f, st, x, path)
  local accept = {}
  for _, name in ipairs(st.names) do accept[name] = true end
  if accept.number then accept.integer = nil end -- a number test takes integers too
  local t = fresh(f, "t")
  local conds = {}
  for _, name in ipairs(st.names) do
    if accept[name] then conds[#conds + 1] = IS_TYPE[name](x, t) end
  end
  put(f, sfmt("do local %s = type(%s) if not (%s) then %s end end", t, x, concat(conds, " or "),
    fail_stmt(f, path, got(st.msg, x))))
end

EMIT.string = function(f, st, x, path)
  if st.enforce then
    put(f, sfmt('if type(%s) ~= "string" then %s end', x, fail_stmt(f, path, got(st.enforce, x))))
    open(f, "do")
  else
    open(f, sfmt('if type(%s) == "string" then', x))
  end
  if st.maxl then
    -- Every code point takes at most 4 bytes: a string that long is too long without scanning it.
    put(f, sfmt("if (#%s + 3) // 4 > %s then %s end", x, lit(st.maxl), fail_stmt(f, path, lit(st.long))))
  end
  local n = fresh(f, "n")
  put(f, sfmt("local %s = ulen(%s)", n, x))
  put(f, sfmt("if not %s then %s end", n, fail_stmt(f, path, lit("invalid UTF-8"))))
  if st.minl then
    put(f, sfmt("if %s < %s then %s end", n, lit(st.minl), fail_stmt(f, path, lit(st.short))))
  end
  if st.maxl then
    put(f, sfmt("if %s > %s then %s end", n, lit(st.maxl), fail_stmt(f, path, lit(st.long))))
  end
  close(f)
end

EMIT.number = function(f, st, x, path)
  local test, want = st.int_only and "mtype" or "type", st.int_only and "integer" or "number"
  if st.enforce then
    put(f, sfmt('if %s(%s) ~= "%s" then %s end', test, x, want, fail_stmt(f, path, got(st.enforce, x))))
  else
    open(f, sfmt('if %s(%s) == "%s" then', test, x, want))
  end
  -- Negated comparisons, so that NaN (never produced by the decoder) fails them all; Lua 5.4
  -- compares integers with floats exactly.
  local function bound(op, b, msg)
    if b then put(f, sfmt("if not (%s %s %s) then %s end", x, op, lit(b), fail_stmt(f, path, lit(msg)))) end
  end
  bound(">=", st.min, st.msg_min)
  bound("<=", st.max, st.msg_max)
  bound(">", st.xmin, st.msg_xmin)
  bound("<", st.xmax, st.msg_xmax)
  if st.mult then
    put(f, sfmt("if %s %% %s ~= 0 then %s end", x, lit(st.mult), fail_stmt(f, path, lit(st.msg_mult))))
  end
  if not st.enforce then close(f) end
end

-- enum and const. A short list is a chain of comparisons: == on a string, a boolean or a number
-- never runs a metamethod, null is compared with rawequal, and numbers are compared only after
-- math.type says integer or float, so that 1 never matches 1.0. A long list uses the set.
local function enum_match(f, st, x)
  if #st.values > ENUM_INLINE then
    return sfmt("%s(%s)", constant(f, st.has), x)
  end
  local other, ints, floats = {}, {}, {}
  for _, v in ipairs(st.values) do
    if rawequal(v, null) then other[#other + 1] = sfmt("rawequal(%s, null)", x)
    elseif mtype(v) == "integer" then ints[#ints + 1] = sfmt("%s == %s", x, lit(v))
    elseif mtype(v) == "float" then floats[#floats + 1] = sfmt("%s == %s", x, lit(v))
    else other[#other + 1] = sfmt("%s == %s", x, lit(v)) end
  end
  if #ints > 0 then
    other[#other + 1] = sfmt('(mtype(%s) == "integer" and (%s))', x, concat(ints, " or "))
  end
  if #floats > 0 then
    other[#other + 1] = sfmt('(mtype(%s) == "float" and (%s))', x, concat(floats, " or "))
  end
  return concat(other, " or ")
end

EMIT.enum = function(f, st, x, path)
  put(f, sfmt("if not (%s) then %s end", enum_match(f, st, x), fail_stmt(f, path, lit(st.msg))))
end

-- type = "string" (or "boolean") followed by an enum or const of such values only: a value that
-- matches the list has the type, so the type is tested only when the list does not match, and
-- still first, so the message is the one it always was.
local function fusable(st, nxt)
  if st.kind ~= "type" or (st.name ~= "string" and st.name ~= "boolean") then return false end
  if not nxt or nxt.kind ~= "enum" then return false end
  for _, v in ipairs(nxt.values) do
    if type(v) ~= st.name then return false end
  end
  return true
end

local function emit_type_enum(f, st, nxt, x, path)
  open(f, sfmt("if not (%s) then", enum_match(f, nxt, x)))
  put(f, sfmt("if %s then %s end", NOT_TYPE[st.name](x),
    fail_stmt(f, path, got("expected " .. st.name .. ", got ", x))))
  put(f, fail_stmt(f, path, lit(nxt.msg)))
  close(f)
end

EMIT.node = function(f, st, x, path) emit_child(f, st.node, x, path) end

-- anyOf: up to ANY_INLINE alternatives are called in place, each only if the ones before it
-- failed (a failing alternative returns its path, never nil or false), and their reasons go to
-- any_of_failed only when all have failed; longer lists go to the any_of helper.
EMIT.anyOf = function(f, st, x, path)
  local ids = {}
  for i, node in ipairs(st.nodes) do ids[i] = new_function(f.gen, node) end
  local p, m = fresh(f, "p"), fresh(f, "m")
  if #ids > ANY_INLINE then
    put(f, sfmt("do local %s, %s = any_of(%s, F, %s) if %s then %s end end", p, m, x,
      constant(f, ids), p, fail_stmt(f, path_with(path, { c = p }), m)))
    return
  end
  local reasons = {}
  open(f, "do")
  for i, id in ipairs(ids) do
    local pi, mi = fresh(f, "p"), fresh(f, "m")
    reasons[#reasons + 1] = pi
    reasons[#reasons + 1] = mi
    put(f, sfmt("local %s, %s = F[%d](%s)", pi, mi, id, x))
    open(f, sfmt("if %s then", pi))
    if i == #ids then
      put(f, sfmt("local %s, %s = any_of_failed(%s)", p, m, concat(reasons, ", ")))
      put(f, fail_stmt(f, path_with(path, { c = p }), m))
    end
  end
  for _ = 1, #ids do close(f) end
  close(f)
end

EMIT.oneOf = function(f, st, x, path)
  local ids = {}
  for i, node in ipairs(st.nodes) do ids[i] = new_function(f.gen, node) end
  local p, m = fresh(f, "p"), fresh(f, "m")
  put(f, sfmt("do local %s, %s = one_of(%s, F, %s) if %s then %s end end", p, m, x,
    constant(f, ids), p, fail_stmt(f, path_with(path, { c = p }), m)))
end

EMIT["not"] = function(f, st, x, path)
  local id = new_function(f.gen, st.node)
  put(f, sfmt("if not F[%d](%s) then %s end", id, x,
    fail_stmt(f, path, lit('must not match the "not" schema'))))
end

EMIT.array = function(f, st, x, path)
  if st.enforce then
    put(f, sfmt('if type(%s) ~= "table" or not is_array(%s) then %s end', x, x,
      fail_stmt(f, path, got(st.enforce, x))))
    open(f, "do")
  else
    open(f, sfmt('if type(%s) == "table" and is_array(%s) then', x, x))
  end
  local n = fresh(f, "n")
  put(f, sfmt("local %s = rawlen(%s)", n, x))
  if st.mini then put(f, sfmt("if %s < %s then %s end", n, lit(st.mini), fail_stmt(f, path, lit(st.few)))) end
  if st.maxi then put(f, sfmt("if %s > %s then %s end", n, lit(st.maxi), fail_stmt(f, path, lit(st.many)))) end
  if st.items and #st.items.steps > 0 then
    local i, y = fresh(f, "i"), fresh(f, "y")
    open(f, sfmt("for %s = 1, %s do", i, n))
    put(f, sfmt("local %s = rawget(%s, %s)", y, x, i))
    emit_child(f, st.items, y, path_index(path, i))
    close(f)
  end
  if st.unique then
    local p, m = fresh(f, "p"), fresh(f, "m")
    put(f, sfmt("do local %s, %s = unique_items(%s, %s) if %s then %s end end", p, m, x, n, p,
      fail_stmt(f, path_with(path, { c = p }), m)))
  end
  close(f)
end

-- The walk over an object's keys, as the closure validator did it: in next order, a non-string
-- key fails, maxProperties fails as soon as the count passes it, then an undeclared key is
-- checked against the additionalProperties schema (absent: allowed). With additionalProperties
-- = false, see emit_closed_walk.
local function emit_walk(f, st, x, path, c)
  local k = fresh(f, "k")
  local y = st.extra and fresh(f, "y")
  open(f, sfmt("for %s%s in next, %s do", k, y and ", " .. y or "", x))
  put(f, sfmt('if type(%s) ~= "string" then %s end', k,
    fail_stmt(f, path, lit("object has a non-string key"))))
  put(f, sfmt("%s = %s + 1", c, c))
  if st.maxp then
    put(f, sfmt("if %s > %s then %s end", c, lit(st.maxp), fail_stmt(f, path, lit(st.many))))
  end
  if st.extra then
    local undeclared = #st.props > 0 and sfmt("not %s[%s]", constant(f, st.declared), k)
    if undeclared then open(f, "if " .. undeclared .. " then") end
    emit_child(f, st.extra, y, path_with(path, { c = sfmt("key_seg(%s, %d)", k, KEY_SHOW_MAX) }))
    if undeclared then close(f) end
  end
  close(f)
end

-- The same walk with additionalProperties = false, done by the closed_walk helper: it only runs
-- on an object that has a key no property declares, so it always fails and is no hot path. c,
-- if given, receives its count of keys.
local function emit_closed_walk(f, st, x, path, c)
  local m, n = fresh(f, "m"), fresh(f, "n")
  put(f, sfmt("do local %s, %s = closed_walk(%s, %s, %s, %s) if %s then %s end%s end", m, n, x,
    constant(f, st.declared), st.maxp and lit(st.maxp) or "nil", st.many and lit(st.many) or "nil",
    m, fail_stmt(f, path, m), c and sfmt(" %s = %s", c, n) or ""))
end

-- The properties of an object read by one walk: with additionalProperties = false every key must
-- be visited anyway, so the walk hands each declared value to its own local (a chain of string
-- comparisons: the required names first) and notes whether any other key was seen. The checks
-- then run in the usual order on those locals; only an object with another key runs the key walk
-- (closed_walk), which reports exactly what it always did. Not used with maxProperties, where
-- the walk must stop as soon as the count passes it.
local function emit_gathered(f, st, x, path)
  local vars, order, decl = {}, {}, {}
  for _, name in ipairs(st.reqs) do order[#order + 1] = name end
  for _, pr in ipairs(st.props) do
    if not st.reqset[pr.name] then order[#order + 1] = pr.name end
  end
  for i, name in ipairs(order) do vars[name] = fresh(f, "y"); decl[i] = vars[name] end
  local odd, c = fresh(f, "odd"), st.minp and fresh(f, "c")
  local k, y = fresh(f, "k"), fresh(f, "y")
  put(f, "local " .. concat(decl, ", ") .. ", " .. odd)
  if c then put(f, sfmt("local %s = 0", c)) end
  open(f, sfmt("for %s, %s in next, %s do", k, y, x))
  if c then put(f, sfmt("%s = %s + 1", c, c)) end
  for i, name in ipairs(order) do
    put(f, sfmt("%s %s == %s then %s = %s", i == 1 and "if" or "elseif", k, lit(name), vars[name], y))
  end
  put(f, sfmt("else %s = true end", odd))
  close(f)
  -- required, in the schema's order (every one is declared: additionalProperties is false)
  for i, name in ipairs(st.reqs) do
    put(f, sfmt("if %s then %s end", absent(vars[name]), fail_stmt(f, path, lit(st.reqmsg[i]))))
  end
  -- properties, in name order
  for _, pr in ipairs(st.props) do
    if #pr.node.steps > 0 then
      local at = path_with(path, { s = pr.seg })
      if st.reqset[pr.name] then
        emit_child(f, pr.node, vars[pr.name], at)
      else
        open(f, sfmt("if %s ~= nil then", vars[pr.name]))
        emit_child(f, pr.node, vars[pr.name], at)
        close(f)
      end
    end
  end
  -- the keys: another key fails the walk; without one, the count of keys decides minProperties
  open(f, sfmt("if %s then", odd))
  emit_closed_walk(f, st, x, path)
  close(f)
  if st.minp then
    put(f, sfmt("if %s < %s then %s end", c, lit(st.minp), fail_stmt(f, path, lit(st.few))))
  end
end

-- The properties of an object read one by one (v[name], or rawget when r says the table has a
-- metatable), then the walk over the keys if some keyword needs it.
local function emit_fetched(f, st, x, path, r)
  local function fetch(y, name)
    local k = lit(name)
    put(f, sfmt("if %s then %s = rawget(%s, %s) else %s = %s[%s] end", r, y, x, k, y, x, k))
  end

  -- required, in the schema's order. The first REQ_LOCALS declared ones keep their value for the
  -- property checks below (they are present: no nil test, no second read).
  local kept, nkept, other = {}, 0, nil
  for i, name in ipairs(st.reqs) do
    local var
    if st.declared[name] and nkept < REQ_LOCALS then
      nkept = nkept + 1
      var = fresh(f, "q")
      kept[name] = var
      put(f, "local " .. var)
    else -- one local for all the others
      if not other then other = fresh(f, "y"); put(f, "local " .. other) end
      var = other
    end
    fetch(var, name)
    put(f, sfmt("if %s then %s end", absent(var), fail_stmt(f, path, lit(st.reqmsg[i]))))
  end

  -- With additionalProperties = false (and properties not gathered: too many, or maxProperties),
  -- the walk that looks for undeclared keys is replaced by a count: the declared properties
  -- present (np) against all the keys. Equal counts mean every key is a declared name, so the
  -- walk would find nothing (not even a non-string key); only a mismatch runs the walk, which
  -- then reports what it always did.
  local counting = st.extra == false and #st.props > 0
  local np
  if counting then
    np = fresh(f, "np")
    put(f, sfmt("local %s = %d", np, #st.reqs)) -- every required name is declared here
  end

  -- properties, in name order
  for _, pr in ipairs(st.props) do
    local at = path_with(path, { s = pr.seg })
    local has_code = #pr.node.steps > 0
    if kept[pr.name] then
      emit_child(f, pr.node, kept[pr.name], at)
    elseif st.reqset[pr.name] then
      if has_code then
        local y = fresh(f, "y")
        open(f, "do")
        put(f, "local " .. y)
        fetch(y, pr.name)
        emit_child(f, pr.node, y, at)
        close(f)
      end
    elseif has_code or counting then
      local y = fresh(f, "y")
      open(f, "do")
      put(f, "local " .. y)
      fetch(y, pr.name)
      open(f, sfmt("if %s ~= nil then", y))
      if counting then put(f, sfmt("%s = %s + 1", np, np)) end
      emit_child(f, pr.node, y, at)
      close(f)
      close(f)
    end
  end

  -- the keys
  if st.extra ~= nil or st.minp or st.maxp then
    local c = fresh(f, "c")
    put(f, sfmt("local %s = 0", c))
    if counting then
      -- The count stops past maxProperties, as the walk does; the walk then decides (it fails,
      -- on the first key it would have failed on).
      if st.maxp then
        put(f, sfmt("for _ in next, %s do %s = %s + 1 if %s > %s then break end end", x, c, c, c,
          lit(st.maxp)))
        open(f, sfmt("if %s ~= %s or %s > %s then", c, np, c, lit(st.maxp)))
      else
        put(f, sfmt("for _ in next, %s do %s = %s + 1 end", x, c, c))
        open(f, sfmt("if %s ~= %s then", c, np))
      end
      emit_closed_walk(f, st, x, path)
      close(f)
    elseif st.extra == false then
      -- no declared property: any key at all is refused (or is a non-string key)
      open(f, sfmt("if next(%s) ~= nil then", x))
      emit_closed_walk(f, st, x, path, c)
      close(f)
    else
      emit_walk(f, st, x, path, c)
    end
    -- After a walk these cannot fail (it checked them key by key); after a count they are the
    -- walk's verdict on an object whose keys are all declared.
    if st.maxp then
      put(f, sfmt("if %s > %s then %s end", c, lit(st.maxp), fail_stmt(f, path, lit(st.many))))
    end
    if st.minp then
      put(f, sfmt("if %s < %s then %s end", c, lit(st.minp), fail_stmt(f, path, lit(st.few))))
    end
  end
end

EMIT.object = function(f, st, x, path)
  -- A JSON array carries the marker metatable, so a table without a metatable is an object (the
  -- common case: one getmetatable, and x ~= null cannot run a metamethod then). A table with any
  -- other metatable is an object read with rawget, never x[k]: r says so, where the properties
  -- are read by name (a gathering walk reads raw anyway).
  -- (With maxProperties the walk must stop as soon as the count passes it: no gathering then.)
  local gather = st.extra == false and #st.props > 0 and #st.props <= GATHER_MAX and not st.maxp
  local r = not gather and fresh(f, "r")
  open(f, "do")
  if gather then
    -- not an object: not a table, or a table with a metatable that is null or an array
    local bad = sfmt('type(%s) ~= "table" or (getmetatable(%s) ~= nil or %s == null) and '
      .. "(rawequal(%s, null) or is_array(%s))", x, x, x, x, x)
    if st.enforce then
      put(f, sfmt("if %s then %s end", bad, fail_stmt(f, path, got(st.enforce, x))))
    else
      open(f, sfmt("if not (%s) then", bad))
    end
    emit_gathered(f, st, x, path)
  else
    if st.enforce then
      put(f, sfmt("local %s = false", r))
      put(f, sfmt('if type(%s) ~= "table" then %s end', x, fail_stmt(f, path, got(st.enforce, x))))
      open(f, sfmt("if getmetatable(%s) ~= nil or %s == null then", x, x))
      put(f, sfmt("if rawequal(%s, null) or is_array(%s) then %s end", x, x,
        fail_stmt(f, path, got(st.enforce, x))))
      put(f, r .. " = true")
      close(f)
    else
      put(f, "local " .. r)
      open(f, sfmt('if type(%s) == "table" then', x))
      put(f, sfmt("if getmetatable(%s) == nil and %s ~= null then %s = false", x, x, r))
      put(f, sfmt("elseif not (rawequal(%s, null) or is_array(%s)) then %s = true end", x, x, r))
      close(f)
      open(f, sfmt("if %s ~= nil then", r))
    end
    emit_fetched(f, st, x, path, r)
  end
  if not st.enforce then close(f) end
  close(f)
end

emit_node = function(f, node, x, path)
  local steps, i = node.steps, 1
  while steps[i] do
    local st, nxt = steps[i], steps[i + 1]
    if fusable(st, nxt) then
      emit_type_enum(f, st, nxt, x, path)
      i = i + 2
    else
      EMIT[st.kind](f, st, x, path)
      i = i + 1
    end
  end
end

-- A helper function F[id](v) -> nil, or (path, message) with the path relative to v.
new_function = function(gen, node)
  local f = new_fn(gen, false)
  emit_node(f, node, "v", {})
  gen.fns[#gen.fns + 1] = "F[" .. #gen.fns + 1 .. "] = function(v)\n" .. concat(f.out) .. "end\n"
  return #gen.fns
end

-- Why every alternative failed: "anyOf[1]: msg; anyOf[2] at .x: msg" (schema lists are numbered
-- from 1 as the Lua source writes them; the instance path is relative to this node).
local function alternative_error(k, i, p, m)
  if p == "" then return k .. "[" .. i .. "]: " .. m end
  return k .. "[" .. i .. "] at " .. p .. ": " .. m
end

-- anyOf and oneOf at run time: ids are the helper functions of the alternatives, each called
-- once (calling them again for the message would double the work at every nesting level). The
-- reasons of failed alternatives are kept as they come and put into words only if needed.

-- The message of an anyOf whose alternatives all failed, from their (path, message) pairs.
local function any_of_failed(...)
  local reasons, errs = { ... }, {}
  for i = 1, #reasons // 2 do
    errs[i] = alternative_error("anyOf", i, reasons[2 * i - 1], reasons[2 * i])
  end
  return "", "matches none of anyOf (" .. concat(errs, "; ") .. ")"
end

local function any_of(v, F, ids)
  local fails = {}
  for i = 1, #ids do
    local p, m = F[ids[i]](v)
    if not p then return end
    fails[2 * i - 1], fails[2 * i] = p, m
  end
  return any_of_failed(unpack(fails))
end

local function one_of(v, F, ids)
  local fails, first = nil, nil
  for i = 1, #ids do
    local p, m = F[ids[i]](v)
    if not p then
      if first then
        return "", "matches more than one of oneOf (oneOf[" .. first .. "] and oneOf[" .. i .. "])"
      end
      first = i
    elseif not first then
      fails = fails or {}
      fails[2 * i - 1], fails[2 * i] = p, m
    end
  end
  if first then return end
  local errs = {}
  for i = 1, #ids do errs[i] = alternative_error("oneOf", i, fails[2 * i - 1], fails[2 * i]) end
  return "", "matches none of oneOf (" .. concat(errs, "; ") .. ")"
end

local function E(root, p, m) return nil, (root or "params") .. p .. ": " .. m end

-- uniqueItems over the n items of a: scalars only; as table keys 1 and 1.0 are the same key, so
-- they count as duplicates.
local function unique_items(a, n)
  local seen = {}
  for i = 1, n do
    local x = rawget(a, i)
    if not is_scalar(x) then
      return "[" .. (i - 1) .. "]", "expected a scalar item (uniqueItems), got " .. jtype(x)
    end
    local j = seen[x]
    if j then return "", "items [" .. j .. "] and [" .. (i - 1) .. "] are equal" end
    seen[x] = i - 1
  end
end

-- The walk over the keys of an object with additionalProperties = false, as the closure
-- validator did it: in next order, a non-string key fails, maxProperties fails as soon as the
-- count passes it, then a key that is not declared fails. -> message | nil, count of keys
local function closed_walk(v, declared, maxp, many)
  local c = 0
  for k in next, v do
    if type(k) ~= "string" then return "object has a non-string key" end
    c = c + 1
    if maxp and c > maxp then return many end
    if not declared[k] then return "unexpected property " .. quote(k, KEY_SHOW_MAX) end
  end
  return nil, c
end

-- What the generated chunk receives (and all it can reach: it runs in an empty environment).
local HELPERS = "type, mtype, rawget, rawlen, rawequal, next, getmetatable, ulen, null, is_array, "
  .. "jtype, key_seg, E, any_of, any_of_failed, one_of, unique_items, closed_walk, K"
local NO_GLOBALS = setmetatable({}, {
  __index = function(_, k) error("generated validator read global " .. tostring(k), 2) end,
  __newindex = function(_, k) error("generated validator wrote global " .. tostring(k), 2) end,
})

-- The source of the validator of a parsed schema, and its constants.
local function generate(node)
  local gen = { names = 0, fns = {}, K = {} }
  local f = new_fn(gen, true)
  emit_node(f, node, "v", {})
  local src = "local " .. HELPERS .. " = ...\nlocal F = {}\n" .. concat(gen.fns, "")
    .. "return function(v, root)\n" .. concat(f.out)
    .. "  return true\nend\n"
  return src, gen.K
end

-- Loaded chunks by source text. Many schemas generate the same text (every { type = "object",
-- additionalProperties = false }, the same shape in several methods and in their results): each
-- is loaded once, and the chunk makes new closures (own F, own K) on each use. The cache is for
-- the burst of compiles at boot: it holds at most CACHE_BYTES of source, then starts again, so a
-- module kept alive after boot keeps little.
local CACHE_BYTES = 32 * 1024
local chunks, cached = {}, 0

local function instantiate(src, K)
  local chunk = chunks[src]
  if not chunk then
    local err
    chunk, err = load(src, "=schema", "t", NO_GLOBALS)
    if not chunk then error("schema: generated code does not load: " .. err, 0) end -- a bug here
    if cached + #src > CACHE_BYTES then chunks, cached = {}, 0 end
    if #src <= CACHE_BYTES then chunks[src], cached = chunk, cached + #src end
  end
  return chunk(type, mtype, rawget, rawlen, rawequal, next, getmetatable, ulen, null, is_array,
    jtype, key_seg, E, any_of, any_of_failed, one_of, unique_items, closed_walk, K)
end

---------------------------------------------------------------------------------------------------
-- API

local function parse(s, where)
  local ok, node = pcall(parse_node, s, where or "schema", 1)
  if not ok then
    if getmetatable(node) == SchemaError then return nil, node.msg end
    error(node, 0) -- a bug here, not a bad schema
  end
  return node
end

-- compile(schema, where) -> validate | nil, message. `where` prefixes schema errors
-- (default "schema"). The schema is read once: changing the table later changes nothing.
-- validate(value, root_name) -> true | nil, "params.key: expected string, got integer"
function M.compile(s, where)
  local node, err = parse(s, where)
  if not node then return nil, err end
  return instantiate(generate(node))
end

-- check(schema, where) -> true | nil, message: the schema errors of compile(), without making a
-- validator (for a caller that only needs to know the schema is good, such as a result schema).
function M.check(s, where)
  local node, err = parse(s, where)
  if not node then return nil, err end
  return true
end

-- source(schema, where) -> the Lua text compile() loads for this schema | nil, message. For
-- reading and debugging only.
function M.source(s, where)
  local node, err = parse(s, where)
  if not node then return nil, err end
  return (generate(node))
end

return M
