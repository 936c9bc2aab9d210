-- bench/bench_schema.lua: the params validator (lua/hostcall/schema.lua) on its own, against the
-- closure-tree validator it replaced (spec/fixtures/schema_closures.lua), in one Lua state.
--
--   lua5.4 bench/bench_schema.lua                      times: interleaved rounds, medians, ratios
--   lua5.4 bench/bench_schema.lua count IMPL CASE N    runs one case N times, for callgrind:
--     valgrind --tool=callgrind --callgrind-out-file=/dev/null lua5.4 bench/bench_schema.lua \
--       count new fs.read 20000     (and with 120000; the difference / 100000 = instructions
--       per validation; IMPL is new or old, CASE a name below or "compile")
--
-- Knobs: ROUNDS [7], ROUND_MS [200]. Run from the repository root. The host is a stub (null is a
-- table, arrays carry a marker metatable), as in spec/schema_spec.lua; in the runtime null is a
-- light userdata and is_array a C function, which changes the absolute numbers a little.

local ARRAY_MT = {}
local NULL = setmetatable({}, { __name = "null" })
local host = { null = NULL, is_array = function(t) return getmetatable(t) == ARRAY_MT end }
local function A(t) return setmetatable(t, ARRAY_MT) end

local IMPLS = {
  new = "lua/hostcall/schema.lua",
  old = "spec/fixtures/schema_closures.lua",
}

-- The schemas: the shipped fs.read params, a one-property schema, a list of entries, a
-- nullable union, a map; each with a valid value, and fs.read with a refused one.
local ENTRY = { type = "object", required = { "name", "type" }, properties = {
  name = { type = "string" },
  type = { type = "string", enum = { "file", "dir", "symlink", "fifo", "socket", "char", "block" } },
} }
local FS_READ = {
  type = "object", required = { "path" }, additionalProperties = false,
  properties = {
    path = { type = "string", description = "Absolute guest path, under one of the mounts." },
    offset = { type = "integer", minimum = 0, default = 0, description = "Where to start." },
    length = { type = "integer", minimum = 0, default = 65536, description = "Most bytes to read." },
    encoding = { type = "string", enum = { "base64", "utf8" }, default = "base64" },
  },
}
local entries = {}
for i = 1, 10 do entries[i] = { name = "f" .. i, type = i % 2 == 0 and "file" or "dir" } end

local CASES = {
  { "fs.read", FS_READ, { path = "/data/f", length = 4096 } },
  { "fs.read refused", FS_READ, { path = "/data/f", length = 4096, lenght = 1 } },
  { "one property", { type = "object", properties = { path = { type = "string" } } },
    { path = "/data/f", length = 4096 } },
  { "10 entries", { type = "object", properties = { entries = { type = "array", items = ENTRY } } },
    { entries = A(entries) } },
  { "union", { type = "object", properties = {
      handle = { type = { "string", "integer" } },
      limit = { anyOf = { { type = "integer", minimum = 1 }, { type = "null" } } },
    } }, { handle = 3, limit = NULL } },
  { "map", { type = "object", additionalProperties = { type = "string", maxLength = 64 } },
    { a = "x", b = "yy", c = "zzz", d = "w" } },
}

local function load_impl(name)
  return assert(loadfile(IMPLS[name]))(host, function() end)
end

local function find_case(name)
  for _, c in ipairs(CASES) do if c[1] == name then return c end end
  error("no case " .. name)
end

if arg[1] == "count" then
  local m, n = load_impl(arg[2]), tonumber(arg[4])
  if arg[3] == "compile" then
    for _ = 1, n do assert(m.compile(FS_READ, "fs.read")) end
  else
    local c = find_case(arg[3])
    local v = assert(m.compile(c[2]))
    local value = c[3]
    for _ = 1, n do v(value) end
  end
  return
end

local ROUNDS = tonumber(os.getenv("ROUNDS")) or 7
local ROUND_MS = tonumber(os.getenv("ROUND_MS")) or 200

-- ns per call of f, over about ROUND_MS.
local function time(f)
  local n, t0 = 0, os.clock()
  local t
  repeat
    for _ = 1, 1000 do f() end
    n = n + 1000
    t = os.clock() - t0
  until t * 1000 >= ROUND_MS
  return t / n * 1e9
end

local function median(list)
  table.sort(list)
  return list[(#list + 1) // 2]
end

local impls = { new = load_impl("new"), old = load_impl("old") }
print(string.format("%-18s %12s %12s %8s", "case", "old ns", "new ns", "old/new"))
local function row(name, fo, fn)
  local to, tn = {}, {}
  for r = 1, ROUNDS do
    to[r], tn[r] = time(fo), time(fn)
  end
  local a, b = median(to), median(tn)
  print(string.format("%-18s %12.1f %12.1f %8.2f", name, a, b, a / b))
end
for _, c in ipairs(CASES) do
  local vo, vn = assert(impls.old.compile(c[2])), assert(impls.new.compile(c[2]))
  local ro, rn = table.pack(vo(c[3])), table.pack(vn(c[3]))
  assert(ro[1] == rn[1] and ro[2] == rn[2], "the implementations disagree on " .. c[1])
  local value = c[3]
  row(c[1], function() vo(value) end, function() vn(value) end)
end
row("compile fs.read", function() impls.old.compile(FS_READ, "x") end,
  function() impls.new.compile(FS_READ, "x") end)
