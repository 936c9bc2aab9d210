-- spec/schema_diff_spec.lua: the generated validators of lua/hostcall/schema.lua against the
-- closure-tree validator they replaced (spec/fixtures/schema_closures.lua, the oracle).
-- luacheck: std +busted
--
-- Thousands of random schemas (mostly valid, some with one mistake) and, for each, random values
-- (most shaped by the schema so that they reach deep checks, some anything at all): both
-- implementations must give the same schema error, the same decision and the same message, byte
-- for byte. The generator is a private PRNG with a fixed seed, so the same cases come back on
-- every run (only the order in which `next` visits a table's keys changes from run to run, with
-- Lua's string hash seed: both implementations always see the same order). Set SCHEMA_DIFF_SEED
-- to explore other seeds, SCHEMA_DIFF_SCALE (default 1) to run more, and SCHEMA_DIFF_VERBOSE=1
-- for the counts.

-- The same stub as schema_spec.lua: metamethods of arrays fail loudly, null is a unique table.
-- (In the core null is a light userdata; one test runs with a userdata null instead.)
local ARRAY_MT = {
  __index = function() error("metamethod __index called on an array") end,
  __len = function() error("metamethod __len called on an array") end,
  __eq = function() error("metamethod __eq called on an array") end,
}
local NULL
-- Some other metatable a value may carry: reading through it would fail the test.
local ODD_MT = {
  __index = function() error("metamethod __index called on a value") end,
  __eq = function() error("metamethod __eq called on a value") end,
}

local new, old

-- Both implementations, loaded with `null` as the JSON null.
local function use_null(null)
  NULL = null
  local host_stub = { null = null, is_array = function(t) return getmetatable(t) == ARRAY_MT end }
  new = loadfile("lua/hostcall/schema.lua")(host_stub, function() end)
  old = loadfile("spec/fixtures/schema_closures.lua")(host_stub, function() end)
end
use_null(setmetatable({}, { __name = "null" }))

local function A(t) return setmetatable(t, ARRAY_MT) end

local SEED = tonumber(os.getenv("SCHEMA_DIFF_SEED")) or 20240611
local SCALE = tonumber(os.getenv("SCHEMA_DIFF_SCALE")) or 1

---------------------------------------------------------------------------------------------------
-- A private xorshift64 PRNG: busted reseeds math.random, this stays reproducible.

local state
local function reseed(s) state = s ~ 0x5DEECE66D; if state == 0 then state = 1 end end
local function rnd()
  state = state ~ (state << 13)
  state = state ~ (state >> 7)
  state = state ~ (state << 17)
  return state >> 1 -- non-negative
end
local function rint(lo, hi) return hi <= lo and lo or lo + rnd() % (hi - lo + 1) end
local function chance(p) return rnd() % 1000000 < p * 1000000 end
local function pick(list) return list[rint(1, #list)] end

---------------------------------------------------------------------------------------------------
-- Pools. Names and strings include what could break generated code if it were pasted raw.

local NAMES = { "a", "b", "c", "path", "x1", "_", "a b", "1x", "été", "", "end", "nil",
  'q"uote', "back\\slash", "new\nline", "]]", "--", "%s", "%q", "x') error('pwned') --",
  "\0nul", "\r\n", string.rep("k", 70), string.rep("é", 40), "\xff\xfe" }
local STRINGS = { "", "x", "ab", "abc", "é", "ée", "😀", "😀😀😀", "ééée", "base64", "utf8",
  "a b", '"', "\\", "\n", "]]", "%d", "\xff", "\xed\xa0\x80", string.rep("z", 17) }
local TYPES = { "string", "integer", "number", "boolean", "null", "object", "array" }
local INTS = { 0, 1, -1, 2, 3, 7, 10, 512, 1000, -7, 65535, math.maxinteger, math.mininteger,
  2 ^ 53 | 0, (2 ^ 53 | 0) + 1 }
local FLOATS = { 0.0, -0.0, 0.5, 1.0, 1.5, -2.5, 10.0, 1e300, -1e-300, 2.0 ^ 53, 0.1, 3.0 }

local function scalar()
  local r = rint(1, 6)
  if r == 1 then return pick(STRINGS)
  elseif r == 2 then return pick(INTS)
  elseif r == 3 then return pick(FLOATS)
  elseif r == 4 then return chance(0.5)
  elseif r == 5 then return NULL
  else return pick(NAMES) end
end

---------------------------------------------------------------------------------------------------
-- Random schemas. `bad` is the chance of one mistake per node.

local gen_schema

local function count_kw(lo, hi, bad)
  if chance(bad) then return pick({ -1, 1.5, "3", true }) end -- a bad count
  return rint(lo, hi)
end

local function bound(bad)
  if chance(bad) then return pick({ 0 / 0, math.huge, true, "1" }) end
  if chance(0.6) then return pick(INTS) end
  return pick(FLOATS)
end

-- A min* above its max* is a schema error: swapped unless a mistake is wanted.
local function order(s, lo, hi, bad)
  local a, b = s[lo], s[hi]
  if type(a) == "number" and type(b) == "number" and a > b and not chance(bad) then
    s[lo], s[hi] = b, a
  end
end

local function schema_list(depth, maxd, bad)
  local l = {}
  for i = 1, rint(1, 3) do l[i] = gen_schema(depth + 1, maxd, bad) end
  if chance(0.02) then return {} end
  return l
end

gen_schema = function(depth, maxd, bad)
  local s = {}
  local leaf = depth >= maxd
  -- type
  local types
  local r = rint(1, 10)
  if r <= 6 then
    types = { pick(TYPES) }
    s.type = types[1]
  elseif r <= 8 then
    types = { pick(TYPES), pick(TYPES), chance(0.5) and pick(TYPES) or nil }
    local seen, list = {}, {}
    for _, t in ipairs(types) do
      if not seen[t] or chance(0.05) then list[#list + 1] = t; seen[t] = true end
    end
    types, s.type = list, list
  end
  local allows = {}
  for _, t in ipairs(types or TYPES) do allows[t] = true end
  if allows.number then allows.integer = true end
  -- A keyword of a type the node cannot be is a schema error: mostly respect types.
  local function may(t) return allows[t] or chance(bad) end

  if may("object") and not leaf and chance(0.6) then
    if chance(0.8) then
      local props = {}
      for _ = 1, rint(0, 4) do props[pick(NAMES)] = gen_schema(depth + 1, maxd, bad) end
      s.properties = props
    end
    if chance(0.5) then
      local req, seen = {}, {}
      for name in pairs(s.properties or {}) do
        if chance(0.6) then req[#req + 1] = name; seen[name] = true end
      end
      if chance(0.2) then
        local name = pick(NAMES)
        if not seen[name] or chance(bad * 5) then req[#req + 1] = name end
      end
      table.sort(req)
      s.required = req
    end
    local a = rint(1, 5)
    if a == 1 then s.additionalProperties = false
    elseif a == 2 then s.additionalProperties = true
    elseif a == 3 then s.additionalProperties = gen_schema(depth + 1, maxd, bad) end
    if s.additionalProperties == false and s.required then -- required names must be declared
      local ok = {}
      for _, name in ipairs(s.required) do
        if (s.properties and s.properties[name]) or chance(bad) then ok[#ok + 1] = name end
      end
      s.required = ok
    end
    if chance(0.25) then s.minProperties = count_kw(0, 3, bad) end
    if chance(s.additionalProperties == false and 0.4 or 0.25) then
      s.maxProperties = count_kw(0, 4, bad)
    end
    order(s, "minProperties", "maxProperties", bad)
  end
  if may("array") and not leaf and chance(0.5) then
    if chance(0.8) then s.items = gen_schema(depth + 1, maxd, bad) end
    if chance(0.3) then s.minItems = count_kw(0, 3, bad) end
    if chance(0.3) then s.maxItems = count_kw(0, 4, bad) end
    order(s, "minItems", "maxItems", bad)
    if chance(0.3) then
      s.uniqueItems = chance(0.8)
      if type(s.items) == "table" then
        local t = s.items.type
        local list = type(t) == "string" and { t } or t
        for _, name in ipairs(type(list) == "table" and list or {}) do
          if (name == "object" or name == "array") and not chance(bad * 5) then s.uniqueItems = nil end
        end
      end
    end
  end
  if may("string") and chance(0.4) then
    if chance(0.6) then s.minLength = count_kw(0, 3, bad) end
    if chance(0.6) then s.maxLength = count_kw(0, 4, bad) end
    order(s, "minLength", "maxLength", bad)
  end
  if may("integer") and chance(0.5) then
    if chance(0.5) then s.minimum = bound(bad) end
    if chance(0.5) then s.maximum = bound(bad) end
    order(s, "minimum", "maximum", bad)
    if chance(0.25) then s.exclusiveMinimum = bound(bad) end
    if chance(0.25) then s.exclusiveMaximum = bound(bad) end
    local int_only = types and allows.integer and not (function()
      for _, t in ipairs(types) do if t == "number" then return true end end
    end)()
    if (int_only and chance(0.4)) or chance(bad) then
      s.multipleOf = chance(bad) and pick({ 0.5, 0, -2, "2" }) or pick({ 1, 2, 3, 512 })
    end
  end
  -- A scalar of the node's single type when it has one (a list that implies the type is checked
  -- in a different order by the generated code), any scalar otherwise.
  local function typed_scalar()
    local t = types and #types == 1 and types[1]
    if t == "string" then return pick(chance(0.5) and STRINGS or NAMES)
    elseif t == "boolean" then return chance(0.5)
    elseif t == "integer" then return pick(INTS)
    elseif t == "number" then return chance(0.5) and pick(FLOATS) or pick(INTS)
    elseif t == "null" then return NULL end
    return scalar()
  end
  if chance(0.15) then
    local e = {}
    local typed = chance(0.6)
    for i = 1, rint(1, chance(0.2) and 12 or 4) do e[i] = typed and typed_scalar() or scalar() end
    if chance(bad) then e[#e + 1] = pick({ {}, 0 / 0, math.huge }) end
    if chance(bad) then e = {} end
    s.enum = e
  end
  if chance(0.05) then s.const = chance(bad) and {} or (chance(0.5) and typed_scalar() or scalar()) end
  if not leaf then
    if chance(0.1) then s.allOf = schema_list(depth, maxd, bad) end
    if chance(0.1) then s.anyOf = schema_list(depth, maxd, bad) end
    if chance(0.08) then s.oneOf = schema_list(depth, maxd, bad) end
    if chance(0.06) then s["not"] = gen_schema(depth + 1, maxd, bad) end
  end
  if chance(0.2) then s.description = chance(bad) and 1 or "doc" end
  if chance(0.1) then s.default = scalar() end
  if chance(0.05) then s.examples = chance(bad) and "x" or { scalar() } end
  if chance(0.03) then s.deprecated = chance(bad) and "yes" or true end
  if chance(bad) then -- one of the mistakes the parser must word the same way
    local m = rint(1, 9)
    if m == 1 then s[pick({ "format", "pattern", "$ref", "nullable", "if", "minimun" })] = "x"
    elseif m == 2 then s[1] = "string"
    elseif m == 3 then s.type = pick({ "float", 3, {}, { "string", 1 } })
    elseif m == 4 then s.items = { { type = "string" } }
    elseif m == 5 then s.additionalProperties = pick({ "no", 0 })
    elseif m == 6 then s.properties = pick({ "x", { [1] = { type = "string" } } })
    elseif m == 7 then s.required = pick({ "a", { 1 }, { "a", "a" } })
    elseif m == 8 then s.exclusiveMinimum = true
    else s.minLength, s.maxLength = 3, 1 end
  end
  return s
end

---------------------------------------------------------------------------------------------------
-- Random values: shaped by the schema most of the time.

local gen_value

local function any_value(depth)
  local r = rint(1, 14)
  if r <= 5 then return scalar()
  elseif r == 6 then return 0 / 0
  elseif r == 7 then return pick({ math.huge, -math.huge })
  elseif r == 8 then return A({})
  elseif r == 9 then return {}
  elseif r == 10 then return depth < 3 and A({ any_value(depth + 1), any_value(depth + 1) }) or A({})
  elseif r == 11 then return depth < 3 and { [pick(NAMES)] = any_value(depth + 1) } or {}
  elseif r == 12 then return setmetatable({}, ODD_MT)
  elseif r == 13 then return pick({ { 1, 2 }, { [true] = 1 }, { [1.5] = "x", a = 1 } })
  else return pick({ print, coroutine.create(print) }) end
end

local function string_near(s)
  if chance(0.1) then return pick({ "\xff", "a\xc3", "\xed\xa0\x80" }) end
  local lo = math.type(s.minLength) == "integer" and s.minLength or 0
  local hi = math.type(s.maxLength) == "integer" and s.maxLength or lo + 3
  local n = rint(math.max(0, lo - 1), hi + 1)
  local parts = {}
  for i = 1, n do parts[i] = pick({ "a", "é", "😀", "z" }) end
  return table.concat(parts)
end

local function number_near(s, int)
  local anchors = {}
  for _, k in ipairs({ "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum" }) do
    local b = s[k]
    if type(b) == "number" and b == b and b ~= math.huge and b ~= -math.huge then
      anchors[#anchors + 1] = b
    end
  end
  local v
  if #anchors > 0 and chance(0.7) then
    v = pick(anchors)
    local r = rint(1, 3)
    if r == 1 then v = v - 1 elseif r == 2 then v = v + 1 end
    if r == 1 and v ~= v then v = 0 end
  elseif math.type(s.multipleOf) == "integer" and chance(0.5) then
    v = s.multipleOf * rint(-3, 3) + (chance(0.3) and 1 or 0)
  else
    v = int and pick(INTS) or pick(FLOATS)
  end
  if int and math.type(v) == "float" then
    if v == v and v >= -2 ^ 62 and v <= 2 ^ 62 then v = math.floor(v) | 0 else v = 0 end
  elseif not int and chance(0.5) and math.type(v) == "integer" then
    v = v + 0.0
  end
  return v
end

gen_value = function(s, depth)
  if type(s) ~= "table" or depth > 12 or chance(0.15) then return any_value(depth) end
  if type(s.enum) == "table" and #s.enum > 0 and chance(0.6) then return pick(s.enum) end
  if s.const ~= nil and chance(0.6) then return s.const end
  for _, k in ipairs({ "anyOf", "oneOf", "allOf" }) do
    if type(s[k]) == "table" and #s[k] > 0 and chance(0.4) then
      return gen_value(pick(s[k]), depth + 1)
    end
  end
  local t = s.type
  if type(t) == "table" then t = #t > 0 and pick(t) or nil end
  if type(t) ~= "string" then t = pick(TYPES) end
  if chance(0.1) then t = pick(TYPES) end
  if t == "string" then return string_near(s)
  elseif t == "integer" then return number_near(s, true)
  elseif t == "number" then return number_near(s, false)
  elseif t == "boolean" then return chance(0.5)
  elseif t == "null" then return NULL
  elseif t == "array" then
    local n = rint(0, 4)
    if math.type(s.minItems) == "integer" and chance(0.5) then n = math.max(0, s.minItems + rint(-1, 1)) end
    local a = {}
    for i = 1, n do a[i] = gen_value(s.items, depth + 1) end
    if s.uniqueItems and n >= 2 and chance(0.3) then a[n] = a[1] end
    return A(a)
  else
    local o = {}
    local props = type(s.properties) == "table" and s.properties or {}
    local req = {}
    if type(s.required) == "table" then for _, name in ipairs(s.required) do req[name] = true end end
    for name, sub in pairs(props) do
      if chance(req[name] and 0.95 or 0.6) then o[name] = gen_value(sub, depth + 1) end
    end
    if type(s.required) == "table" then
      for _, name in ipairs(s.required) do
        if type(name) == "string" and o[name] == nil and chance(0.7) then o[name] = any_value(depth + 1) end
      end
    end
    if chance(0.3) then
      o[pick(NAMES)] = gen_value(type(s.additionalProperties) == "table" and s.additionalProperties
        or nil, depth + 1)
    end
    if chance(0.03) then o[pick({ 1, true, 2.5 })] = "k" end
    if chance(0.05) then setmetatable(o, ODD_MT) end
    return o
  end
end

---------------------------------------------------------------------------------------------------
-- Comparison

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

local function describe_value(v, depth)
  depth = depth or 0
  if rawequal(v, NULL) then return "null" end
  if type(v) ~= "table" then return show(v) end
  if depth > 4 then return "{...}" end
  local parts = {}
  for k, x in next, v do parts[#parts + 1] = "[" .. show(k) .. "]=" .. describe_value(x, depth + 1) end
  local mt = getmetatable(v)
  local tag = mt == ARRAY_MT and "A" or mt and "M" or ""
  return tag .. "{" .. table.concat(parts, ", ") .. "}"
end

local function same(label, s, a, b, value)
  for i = 1, math.max(a.n, b.n) do
    if a[i] ~= b[i] and not (a[i] ~= a[i] and b[i] ~= b[i]) then
      error(string.format("%s differs for schema %s value %s:\n  old: %s %s %s\n  new: %s %s %s",
        label, describe_value(s), describe_value(value), show(a[1]), show(a[2]), show(a[3]),
        show(b[1]), show(b[2]), show(b[3])), 0)
    end
  end
end

-- Compiles s with both; checks every value of values. Returns the number of values compared.
local function compare(s, values)
  local co = table.pack(pcall(old.compile, s, "w"))
  local cn = table.pack(pcall(new.compile, s, "w"))
  assert(co[1] and cn[1], "compile raised: " .. tostring(co[2]) .. " / " .. tostring(cn[2]))
  if type(co[2]) ~= "function" or type(cn[2]) ~= "function" then
    same("compile", s, { n = 3, type(co[2]), co[2] == nil, co[3] }, { n = 3, type(cn[2]),
      cn[2] == nil, cn[3] }, nil)
    return 0
  end
  local vo, vn = co[2], cn[2]
  for i, value in ipairs(values) do
    local root = (i % 3 == 0) and "result" or nil
    same("validate", s, table.pack(pcall(vo, value, root)), table.pack(pcall(vn, value, root)), value)
  end
  return #values
end

local function run(nschemas, nvalues, maxd, bad)
  local compiled, pairs_seen, refused = 0, 0, 0
  for _ = 1, nschemas do
    local s = gen_schema(1, maxd, bad)
    local values = {}
    for j = 1, nvalues do values[j] = gen_value(s, 1) end
    local n = compare(s, values)
    if n > 0 then compiled = compiled + 1 else refused = refused + 1 end
    pairs_seen = pairs_seen + n
  end
  if os.getenv("SCHEMA_DIFF_VERBOSE") then
    print(string.format("\n%d schemas compiled, %d refused, %d (schema, value) pairs", compiled,
      refused, pairs_seen))
  end
  return compiled, refused, pairs_seen
end

-- Objects only: the generated code reads them in three ways (one gathering walk, reads by name
-- with a count of the keys, reads by name with the full walk), chosen by additionalProperties,
-- maxProperties and the number of properties; the key order of the table decides which error
-- the walk meets first. Schemas with 1 to 20 properties, values with any subset of them plus
-- other keys.
local function object_case(nvalues)
  local nprops = rint(1, chance(0.2) and 20 or 5)
  local props, names = {}, {}
  for i = 1, nprops do
    local name = chance(0.8) and ("p" .. i) or pick(NAMES)
    if not props[name] then
      props[name] = gen_schema(3, 3, 0)
      names[#names + 1] = name
    end
  end
  table.sort(names)
  local req = {}
  for _, name in ipairs(names) do if chance(0.4) then req[#req + 1] = name end end
  local s = { type = chance(0.9) and "object" or nil, properties = props, required = req }
  local a = rint(1, 4)
  if a == 1 then s.additionalProperties = false
  elseif a == 2 then s.additionalProperties = { type = pick({ "string", "integer" }) }
  elseif a == 3 then s.additionalProperties = true end
  if chance(0.4) then s.maxProperties = rint(0, #names + 1) end
  if chance(0.3) then s.minProperties = rint(0, #names + 1) end
  order(s, "minProperties", "maxProperties", 0)
  local values = {}
  for j = 1, nvalues do
    local o = {}
    for _, name in ipairs(names) do
      if chance(0.6) then o[name] = chance(0.8) and gen_value(props[name], 2) or any_value(2) end
    end
    for _ = 1, (chance(0.5) and rint(1, 3) or 0) do o["x" .. rint(1, 40)] = chance(0.5) and "s" or 1 end
    if chance(0.05) then o[pick({ 1, true, 2.5 })] = "k" end
    if chance(0.05) then setmetatable(o, ODD_MT) end
    values[j] = o
  end
  return s, values
end

describe("generated validators against the closure validator", function()
  it("agree on objects: property reads, key counts and the key walk", function()
    reseed(SEED + 4)
    local n = 0
    for _ = 1, 1500 * SCALE do n = n + compare(object_case(20)) end
    assert.is_true(n > 25000 * SCALE)
  end)

  it("agree on random valid schemas and shaped values", function()
    reseed(SEED)
    local compiled, _, n = run(2500 * SCALE, 30, 4, 0)
    assert.is_true(compiled > 2000 * SCALE)
    assert.is_true(n > 60000 * SCALE)
  end)

  it("agree on deep schemas (nodes past the inline depth become helper functions)", function()
    reseed(SEED + 1)
    local compiled, _, n = run(400 * SCALE, 20, 12, 0)
    assert.is_true(compiled > 300 * SCALE)
    assert.is_true(n > 6000 * SCALE)
  end)

  it("agree on schema errors, word for word", function()
    reseed(SEED + 2)
    local compiled, refused = run(2500 * SCALE, 5, 4, 0.08)
    assert.is_true(refused > 500 * SCALE)
    assert.is_true(compiled > 500 * SCALE)
  end)

  it("agree with a null that is not a table (userdata, as in the core)", function()
    local table_null = NULL
    use_null(io.stdout)
    reseed(SEED + 5)
    local _, _, n = run(600 * SCALE, 20, 5, 0.02)
    for _ = 1, 300 * SCALE do n = n + compare(object_case(10)) end
    use_null(table_null)
    assert.is_true(n > 10000 * SCALE)
  end)

  it("agree on the shipped handlers' schemas", function()
    reseed(SEED + 3)
    local n = 0
    for _, file in ipairs({ "handlers/fs.lua", "handlers/io.lua", "handlers/net.lua",
      "handlers/sys.lua" }) do
      local env = setmetatable({}, { __index = _G })
      local chunk = loadfile(file, "t", env)
      local ok, defs = pcall(chunk or error)
      if ok and type(defs) == "table" then -- (handlers are edited elsewhere: a broken one is skipped)
        for _, def in pairs(defs) do
          for _, k in ipairs({ "params", "result" }) do
            if type(def[k]) == "table" then
              local values = {}
              for j = 1, 200 do values[j] = gen_value(def[k], 1) end
              n = n + compare(def[k], values)
            end
          end
        end
      end
    end
    assert.is_true(n > 0)
  end)
end)
