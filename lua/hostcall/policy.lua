-- hostcall.policy: load a tenant's policy file and validate it (CONTRACT.md section 8).
--
-- A policy is operator-written Lua, but its `authorize` hook may hold code taken from others, so
-- the chunk runs in the caller's sandbox environment under host.protected_run's instruction budget.
-- After that no policy code runs here: the returned tables are read with next/rawget only (no
-- metamethod can fire) and deep-copied into a normalized policy. Every mistake is refused with
-- the field's path ("acme.lua: limits.memroy: unknown field"): a typo must never silently grant or
-- drop something. See docs/policy-guide.md for the operator's view of every rule below.
local host, import = ... -- luacheck: ignore import

local policy = {}

-- Captured once: the string metatable is shared by the whole Lua state, so never rely on
-- method calls (s:sub) while handling values a policy produced.
local type, next, rawget, error, pcall, load, tonumber = type, next, rawget, error, pcall, load, tonumber
local getmetatable, setmetatable, ipairs = getmetatable, setmetatable, ipairs
local math_type, tointeger = math.type, math.tointeger
local sbyte, sfind, sformat, sgsub, smatch, ssub, gmatch =
  string.byte, string.find, string.format, string.gsub, string.match, string.sub, string.gmatch
local tconcat, tsort, tpack = table.concat, table.sort, table.pack
local utf8_len = utf8.len

local MiB = 1024 * 1024
local GiB = 1024 * MiB

local MAX_SOURCE = MiB          -- policy source text
local MAX_PATH = 4096           -- guest and host paths, in bytes
local MAX_COMPONENT = 255       -- one guest path component
local MAX_NAME = 64             -- tenant and tool names
local MAX_SCHEMA_DEPTH = 64     -- nesting of a tool's params table
local MAX_SCHEMA_VALUES = 100000
local MAX_SHOWN = 100           -- bytes of a string quoted in a message

-- name, default, upper bound, the bound as the message shows it
local LIMITS = {
  { "memory",        32 * MiB,   64 * GiB,      "68719476736 (64 GiB)" },
  { "instructions",  10000000,   1000000000000, "1000000000000 (10^12)" },
  { "time_ms",       5000,       86400000,      "86400000 (24 h)" },
  { "handles",       256,        1048576,       "1048576" },
  { "sockets",       64,         1048576,       "1048576" },
  { "concurrency",   256,        65536,         "65536" },
  { "sessions",      64,         65536,         "65536" },
  { "idle_ms",       600000,     604800000,     "604800000 (7 days)" },
  { "request_bytes", 16 * MiB,   GiB,           "1073741824 (1 GiB)" },
  { "read_bytes",    16 * MiB,   GiB,           "1073741824 (1 GiB)" },
}

local TOOL_DEFAULTS = { stdin = "args", timeout_ms = 10000, max_output = MiB, max_running = 4 }
-- field, upper bound, the bound as the message shows it (in the order they are checked)
local TOOL_BOUNDS = {
  { "timeout_ms",  86400000, "86400000 (24 h)" },
  { "max_output",  GiB,      "1073741824 (1 GiB)" },
  { "max_running", 1024,     "1024" },
}

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local TOP_FIELDS = set_of { "tenant", "mounts", "net", "http", "tls", "tools", "methods",
                            "handlers", "limits", "authorize" }
local MOUNT_FIELDS = set_of { "path", "perms", "ephemeral", "quota" }
local NET_FIELDS = set_of { "allow", "deny", "listen" }
local HTTP_FIELDS = set_of { "allow" }
local HTTP_RULE_FIELDS = set_of { "url", "methods" }
local TLS_FIELDS = set_of { "ca_file" }
local TOOL_FIELDS = set_of { "argv", "stdin", "cwd", "timeout_ms", "description", "params", "env",
                             "max_output", "max_running" }
local LIMIT_FIELDS = {}
for _, l in ipairs(LIMITS) do LIMIT_FIELDS[l[1]] = true end

-- {=====  Messages  =====}

-- A validation failure: raised inside validate(), turned into "name: path: msg" by load().
local Failure = {}

local function fail(path, fmt, ...)
  error(setmetatable({ path = path, msg = sformat(fmt, ...) }, Failure), 0)
end

-- A string as a Lua literal, control bytes escaped, long ones cut (the cut shown as "...).
local function show(s)
  local body = ssub(s, 1, MAX_SHOWN)
  local escape = utf8_len(body) and '[%c"\\]' or '[%c"\\\128-\255]'
  body = sgsub(body, escape, function(c)
    if c == '"' or c == "\\" then return "\\" .. c end
    return sformat("\\%d", sbyte(c))
  end)
  return '"' .. body .. (#s > MAX_SHOWN and '"...' or '"')
end

local function show_number(n)
  if math_type(n) == "integer" then return sformat("%d", n) end
  if n ~= n then return "nan" end -- not "-nan" on some platforms
  return sformat("%.14g", n)
end

-- The path of t[k] given the path of t: `limits.memory`, `mounts["/in"]`, `methods[2]`.
-- `bracket`: always `["k"]`, for maps keyed by guest paths.
local function key_path(parent, k, bracket)
  local kt = type(k)
  if kt == "string" and not bracket and smatch(k, "^[A-Za-z_][A-Za-z0-9_]*$") then
    return parent == "" and k or parent .. "." .. k
  elseif kt == "string" then
    return parent .. "[" .. show(k) .. "]"
  elseif kt == "number" then
    return parent .. "[" .. show_number(k) .. "]"
  end
  return parent .. "[<" .. kt .. ">]"
end

-- {=====  Shapes: tables, records, lists, maps  =====}

local TYPE_RANK = { number = 1, string = 2 }

local function key_less(a, b)
  local ra, rb = TYPE_RANK[type(a)] or 3, TYPE_RANK[type(b)] or 3
  if ra ~= rb then return ra < rb end
  if ra == 3 then return false end
  return a < b
end

-- Keys in a fixed order, so that of several mistakes the same one is always reported.
local function sorted_keys(t)
  local keys, n = {}, 0
  for k in next, t do n = n + 1; keys[n] = k end
  tsort(keys, key_less)
  return keys, n
end

local function expect(path, v, want)
  local vt = type(v)
  if vt ~= want then fail(path, "expected %s, got %s", want, vt) end
  if vt == "table" and getmetatable(v) ~= nil then
    fail(path, "expected a plain table, got a table with a metatable")
  end
  return v
end

local function expect_optional(path, v, want)
  if v == nil then return nil end
  return expect(path, v, want)
end

-- A table with a closed set of string fields.
local function record(path, v, fields)
  expect(path, v, "table")
  local keys, n = sorted_keys(v)
  for i = 1, n do
    local k = keys[i]
    if type(k) ~= "string" or not fields[k] then fail(key_path(path, k), "unknown field") end
  end
  return v
end

-- A proper sequence: keys exactly 1..n. Returns n.
local function list(path, v)
  expect(path, v, "table")
  local keys, n = sorted_keys(v)
  for i = 1, n do
    local k = keys[i]
    if k ~= i then
      if math_type(k) == "integer" and k > i then
        fail(sformat("%s[%d]", path, i), "missing (a list must not have holes)")
      end
      fail(key_path(path, k), "unexpected key (expected a list)")
    end
  end
  return n
end

-- A map with string keys, visited in sorted order: fn(key, value, path_of_entry).
local function each_entry(path, v, fn, bracket)
  expect(path, v, "table")
  local keys, n = sorted_keys(v)
  for i = 1, n do
    if type(keys[i]) ~= "string" then
      fail(key_path(path, keys[i]), "expected a string key, got %s", type(keys[i]))
    end
  end
  for i = 1, n do
    local k = keys[i]
    fn(k, rawget(v, k), key_path(path, k, bracket))
  end
end

-- {=====  Scalars  =====}

local function no_nul(path, s)
  if sfind(s, "\0", 1, true) then fail(path, "must not contain a NUL byte") end
  return s
end

local function nonempty_string(path, v)
  expect(path, v, "string")
  if v == "" then fail(path, "must not be empty") end
  return no_nul(path, v)
end

-- Integral floats (1e6, 2^20) are accepted and stored as integers.
local function positive_integer(path, v, max, max_text)
  local vt = type(v)
  if vt ~= "number" then fail(path, "expected positive integer, got %s", vt) end
  local i = tointeger(v)
  if i == nil or i < 1 then fail(path, "expected positive integer, got %s", show_number(v)) end
  if max and i > max then fail(path, "must be at most %s, got %d", max_text, i) end
  return i
end

local function boolean(path, v, default)
  if v == nil then return default end
  return expect(path, v, "boolean")
end

local function one_of(path, v, a, b, default)
  if v == nil and default ~= nil then return default end
  if v ~= a and v ~= b then fail(path, 'expected "%s" or "%s"', a, b) end
  return v
end

-- {=====  Paths  =====}

-- Why a guest path is refused, or nil. Guest paths must already be normalized: rewriting them
-- here would hide what the operator meant.
local function guest_path_problem(p)
  if p == "" then return "must not be empty" end
  if sfind(p, "\0", 1, true) then return "must not contain a NUL byte" end
  if #p > MAX_PATH then return sformat("is longer than %d bytes", MAX_PATH) end
  if sbyte(p, 1) ~= 47 then return 'must be absolute (start with "/")' end
  if p == "/" then return 'must not be "/" itself' end
  if sbyte(p, -1) == 47 then return 'must not end with "/"' end
  if sfind(p, "//", 1, true) then return 'must not contain an empty component ("//")' end
  for comp in gmatch(p, "[^/]+") do
    if comp == "." or comp == ".." then return 'must not contain "." or ".." components' end
    if #comp > MAX_COMPONENT then
      return sformat("has a component longer than %d bytes", MAX_COMPONENT)
    end
  end
  return nil
end

local function guest_path(path, v)
  expect(path, v, "string")
  local problem = guest_path_problem(v)
  if problem then fail(path, "guest path %s", problem) end
  return v
end

-- Lexical only: "." components and repeated slashes go, ".." stays for the OS to resolve (the
-- filesystem is not touched here, and ".." cannot be folded safely without it).
local function normalize_host_path(p)
  local parts, n = {}, 0
  for comp in gmatch(p, "[^/]+") do
    if comp ~= "." then n = n + 1; parts[n] = comp end
  end
  return "/" .. tconcat(parts, "/")
end

local function host_path(path, v, basedir)
  nonempty_string(path, v)
  local abs = v
  if sbyte(v, 1) ~= 47 then
    if basedir == nil then fail(path, "must be absolute (policy given as a string)") end
    abs = basedir .. "/" .. v
  end
  abs = normalize_host_path(abs)
  if #abs > MAX_PATH then fail(path, "is longer than %d bytes once resolved", MAX_PATH) end
  return abs
end

-- {=====  Network rules  =====}

-- A decimal without sign or leading zeros, within [lo, hi]; returns the number or nil.
local function decimal_in(s, lo, hi)
  if not smatch(s, "^%d+$") or #s > 10 or (#s > 1 and sbyte(s, 1) == 48) then return nil end
  local n = tonumber(s)
  if n < lo or n > hi then return nil end
  return n
end

local function ipv4_ok(s)
  local a, b, c, d = smatch(s, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return false end
  return decimal_in(a, 0, 255) and decimal_in(b, 0, 255) and decimal_in(c, 0, 255)
    and decimal_in(d, 0, 255) and true or false
end

-- Counts the 16-bit groups of one side of "::", or nil if malformed. `last`: this side ends the
-- address, so its final group may be a dotted IPv4 address (two groups).
local function ipv6_groups(part, last)
  if part == "" then return 0 end
  local n, pos = 0, 1
  while true do
    local colon = sfind(part, ":", pos, true)
    local g = ssub(part, pos, colon and colon - 1 or -1)
    if not colon and last and sfind(g, ".", 1, true) then
      if not ipv4_ok(g) then return nil end
      return n + 2
    end
    if not smatch(g, "^%x%x?%x?%x?$") then return nil end
    n = n + 1
    if not colon then return n end
    pos = colon + 1
  end
end

local function ipv6_ok(s)
  if not sfind(s, ":", 1, true) or sfind(s, "[^%x:.]") then return false end
  local dc = sfind(s, "::", 1, true)
  if not dc then return ipv6_groups(s, true) == 8 end
  local tail = ssub(s, dc + 2)
  if sfind(tail, "::", 1, true) then return false end
  local h, t = ipv6_groups(ssub(s, 1, dc - 1), false), ipv6_groups(tail, true)
  return h ~= nil and t ~= nil and h + t <= 7
end

local function hostname_ok(s)
  if #s > 253 then return false end
  for label in gmatch(s .. ".", "([^.]*)%.") do
    if #label < 1 or #label > 63 or sfind(label, "[^A-Za-z0-9_-]") then return false end
  end
  return true
end

-- A host outside brackets: IPv4, IPv4 CIDR (when allowed) or a host name.
local function check_host(h, allow_cidr)
  local addr, prefix = smatch(h, "^([^/]*)/(.*)$")
  if addr then
    if not allow_cidr then return nil, sformat("host %s: a CIDR prefix is not allowed here", show(h)) end
    if not ipv4_ok(addr) then
      return nil, sformat("host %s: a CIDR prefix needs an IPv4 address (IPv6 goes in brackets)", show(h))
    end
    if not decimal_in(prefix, 0, 32) then
      return nil, sformat("host %s: an IPv4 prefix length must be 0-32", show(h))
    end
    return true
  end
  if ipv4_ok(h) then return true end
  if not hostname_ok(h) then
    return nil, sformat("host %s is not an IP address, CIDR or host name", show(h))
  end
  -- No top-level domain is numeric: "10.1", "2130706433" or "0x7f.1" are IPv4 short forms that
  -- resolvers read differently; a rule must say which address it means.
  local tld = smatch(h, "([^.]*)$")
  if smatch(tld, "^%d+$") or smatch(tld, "^0[xX]") then
    return nil, sformat("host %s: write an IPv4 address as four decimal octets", show(h))
  end
  return true
end

local function check_ports(p)
  if p == "*" then return true end
  if decimal_in(p, 1, 65535) then return true end
  local lo, hi = smatch(p, "^([^-]*)-([^-]*)$")
  lo, hi = lo and decimal_in(lo, 1, 65535), hi and decimal_in(hi, 1, 65535)
  if lo and hi then
    if lo > hi then return nil, sformat("port range %s: LOW must not exceed HIGH", show(p)) end
    return true
  end
  return nil, sformat("ports %s: expected a port 1-65535, LOW-HIGH, or *", show(p))
end

-- Checks one net rule "HOST:PORTS" (syntax only; the C network policy has the real parser).
-- Returns true, or nil and the reason.
function policy.check_net_rule(s)
  if type(s) ~= "string" then return nil, "expected string, got " .. type(s) end
  if s == "" then return nil, "must not be empty" end
  if sfind(s, "%s") then return nil, "must not contain whitespace" end
  if sfind(s, "%c") then return nil, "must not contain control characters" end
  local ports
  if sbyte(s, 1) == 91 then -- "[IPv6]:PORTS" or "[IPv6/LEN]:PORTS"
    local close = sfind(s, "]", 2, true)
    if not close then return nil, sformat('%s: missing "]" after the IPv6 address', show(s)) end
    if ssub(s, close + 1, close + 1) ~= ":" then
      return nil, sformat('%s: expected ":PORTS" after "]"', show(s))
    end
    local inner = ssub(s, 2, close - 1)
    local addr, prefix = smatch(inner, "^([^/]*)/(.*)$")
    if not ipv6_ok(addr or inner) then
      return nil, sformat("%s is not an IPv6 address", show("[" .. inner .. "]"))
    end
    if prefix and not decimal_in(prefix, 0, 128) then
      return nil, sformat("%s: an IPv6 prefix length must be 0-128", show("[" .. inner .. "]"))
    end
    ports = ssub(s, close + 2)
  else
    local h
    h, ports = smatch(s, "^(.*):([^:]*)$")
    if not h then return nil, sformat('%s: expected HOST:PORTS, e.g. "api.example.com:443"', show(s)) end
    if h == "" then return nil, sformat("%s: the host is empty", show(s)) end
    if sfind(h, ":", 1, true) then
      return nil, sformat('%s: an IPv6 address must be in brackets, e.g. "[::1]:443"', show(s))
    end
    local ok, why = check_host(h, true)
    if not ok then return nil, why end
  end
  return check_ports(ports)
end

local function net_rule(path, v)
  expect(path, v, "string")
  local ok, why = policy.check_net_rule(v)
  if not ok then fail(path, "%s", why) end
  return v
end

-- {=====  HTTP rules  =====}

local function check_url(u)
  local rest = smatch(u, "^https?://(.*)$")
  if not rest then return nil, 'expected a URL starting with "http://" or "https://"' end
  if sfind(u, "%s") or sfind(u, "%c") then return nil, "must not contain whitespace or control characters" end
  if sfind(u, "#", 1, true) then return nil, 'must not contain a fragment ("#")' end
  if sfind(u, "?", 1, true) then
    return nil, 'must not contain a query ("?"): a rule matches scheme, host, port and path prefix'
  end
  local authority = smatch(rest, "^[^/]*")
  if authority == "" then return nil, "has no host" end
  if sfind(authority, "@", 1, true) then return nil, 'must not contain credentials ("user@")' end
  local h, port
  if sbyte(authority, 1) == 91 then
    local inner, after = smatch(authority, "^%[([^%]]*)%](.*)$")
    if not inner or not ipv6_ok(inner) then return nil, sformat("host %s is not an IPv6 address", show(authority)) end
    if after ~= "" then
      port = smatch(after, "^:(.*)$")
      if not port then return nil, sformat('expected ":PORT" after %s', show("[" .. inner .. "]")) end
    end
  else
    h, port = smatch(authority, "^([^:]*):(.*)$")
    h = h or authority
    if h == "" then return nil, "has no host" end
    local ok, why = check_host(h, false)
    if not ok then return nil, why end
  end
  if port and not decimal_in(port, 1, 65535) then
    return nil, sformat("port %s: expected 1-65535", show(port))
  end
  return true
end

local function http_rule(path, v)
  record(path, v, HTTP_RULE_FIELDS)
  local url = rawget(v, "url")
  expect(path .. ".url", url, "string")
  local ok, why = check_url(url)
  if not ok then fail(path .. ".url", "%s", why) end
  local methods = { "GET" }
  local mv = rawget(v, "methods")
  if mv ~= nil then
    local mpath = path .. ".methods"
    local n = list(mpath, mv)
    if n == 0 then fail(mpath, 'must not be empty (omit it to allow "GET" only)') end
    methods = {}
    for i = 1, n do
      local ipath = sformat("%s[%d]", mpath, i)
      local m = expect(ipath, rawget(mv, i), "string")
      if #m > 32 or not smatch(m, "^[A-Z][A-Z_-]*$") then
        fail(ipath, "expected an uppercase HTTP method name, got %s", show(m))
      end
      methods[i] = m
    end
  end
  return { url = url, methods = methods }
end

-- {=====  Method patterns  =====}

local function method_name_ok(s)
  return s ~= "" and not sfind(s, "[^A-Za-z0-9_$/.-]") and sbyte(s, 1) ~= 46
    and sbyte(s, -1) ~= 46 and not sfind(s, "..", 1, true)
end

local function method_pattern(path, v)
  expect(path, v, "string")
  if v == "*" or method_name_ok(v) then return v end
  if ssub(v, -2) == ".*" and method_name_ok(ssub(v, 1, -3)) then return v end
  fail(path, 'expected "*", a method name, or a prefix ending in ".*", got %s', show(v))
end

-- What grants() consults: every pattern sorted into a flag, a set of names, a set of prefixes.
local function compile_methods(methods)
  local g = { all = false, exact = {}, prefixes = {}, nprefixes = 0 }
  for _, p in ipairs(methods) do
    if p == "*" then
      g.all = true
    elseif type(p) == "string" and ssub(p, -2) == ".*" then
      g.prefixes[ssub(p, 1, -2)] = true -- keeps the dot: "fs.*" -> "fs."
      g.nprefixes = g.nprefixes + 1
    elseif type(p) == "string" then
      g.exact[p] = true
    end
  end
  return g
end

local compiled = setmetatable({}, { __mode = "k" })

-- {=====  Data copies  =====}

-- A deep copy of plain data (a tool's params schema). Refuses functions, userdata, metatables,
-- cycles, and sizes that only a generator could produce.
local function copy_data(path, v, depth, budget, active)
  local vt = type(v)
  if vt == "string" or vt == "boolean" then return v end
  if vt == "number" then
    if v ~= v or v == 1 / 0 or v == -1 / 0 then fail(path, "expected a finite number, got %s", show_number(v)) end
    return v
  end
  if vt ~= "table" then fail(path, "expected plain data, got %s", vt) end
  expect(path, v, "table")
  if depth > MAX_SCHEMA_DEPTH then fail(path, "nested deeper than %d levels", MAX_SCHEMA_DEPTH) end
  if active[v] then fail(path, "contains itself (cycles are not allowed)") end
  active[v] = true
  local out = {}
  local keys, n = sorted_keys(v)
  for i = 1, n do
    local k = keys[i]
    if type(k) ~= "string" and math_type(k) ~= "integer" then
      fail(key_path(path, k), "keys must be strings or integers, got %s", math_type(k) or type(k))
    end
    budget[1] = budget[1] - 1
    if budget[1] < 0 then fail(path, "too large (more than %d values)", MAX_SCHEMA_VALUES) end
    out[k] = copy_data(key_path(path, k), rawget(v, k), depth + 1, budget, active)
  end
  active[v] = nil
  return out
end

-- {=====  Sections  =====}

local function check_tenant(v, default)
  if v == nil then
    v = default
    if #v > MAX_NAME or not smatch(v, "^[A-Za-z0-9_][A-Za-z0-9_.-]*$") then
      fail("tenant", "the file name gives %s, which is not a valid tenant name; set tenant", show(v))
    end
    return v
  end
  expect("tenant", v, "string")
  if #v < 1 or #v > MAX_NAME or not smatch(v, "^[A-Za-z0-9_][A-Za-z0-9_.-]*$") then
    fail("tenant", 'expected 1-64 characters of A-Z a-z 0-9 _ . - not starting with "." or "-", got %s',
         show(v))
  end
  return v
end

local function check_mounts(v, basedir)
  local mounts = {}
  if v == nil then return mounts end
  each_entry("mounts", v, function(guest, m, path)
    local problem = guest_path_problem(guest)
    if problem then fail(path, "guest path %s", problem) end
    record(path, m, MOUNT_FIELDS)
    local quota = rawget(m, "quota")
    mounts[guest] = {
      path = host_path(path .. ".path", rawget(m, "path"), basedir),
      perms = one_of(path .. ".perms", rawget(m, "perms"), "ro", "rw"),
      ephemeral = boolean(path .. ".ephemeral", rawget(m, "ephemeral"), false),
      quota = quota ~= nil and positive_integer(path .. ".quota", quota) or nil,
    }
  end, true)
  return mounts
end

local function string_list(path, v, check)
  local out = {}
  if v == nil then return out end
  for i = 1, list(path, v) do
    out[i] = check(sformat("%s[%d]", path, i), rawget(v, i))
  end
  return out
end

local function check_net(v)
  if v == nil then return { allow = {}, deny = {}, listen = {} } end
  record("net", v, NET_FIELDS)
  return {
    allow = string_list("net.allow", rawget(v, "allow"), net_rule),
    deny = string_list("net.deny", rawget(v, "deny"), net_rule),
    listen = string_list("net.listen", rawget(v, "listen"), net_rule),
  }
end

local function check_http(v)
  local rules = {}
  if v == nil then return { allow = rules } end
  record("http", v, HTTP_FIELDS)
  local allow = rawget(v, "allow")
  if allow ~= nil then
    for i = 1, list("http.allow", allow) do
      rules[i] = http_rule(sformat("http.allow[%d]", i), rawget(allow, i))
    end
  end
  return { allow = rules }
end

local function check_tls(v, basedir)
  if v == nil then return {} end
  record("tls", v, TLS_FIELDS)
  local ca = rawget(v, "ca_file")
  return { ca_file = ca ~= nil and host_path("tls.ca_file", ca, basedir) or nil }
end

local function under_a_mount(guest, mounts)
  for m in next, mounts do
    if guest == m or ssub(guest, 1, #m + 1) == m .. "/" then return true end
  end
  return false
end

local function check_tool(path, t, mounts)
  record(path, t, TOOL_FIELDS)
  local tool = {}

  local apath = path .. ".argv"
  local argv = rawget(t, "argv")
  local n = list(apath, argv)
  if n == 0 then fail(apath, "must not be empty") end
  tool.argv = {}
  for i = 1, n do
    local ipath = sformat("%s[%d]", apath, i)
    local a = no_nul(ipath, expect(ipath, rawget(argv, i), "string"))
    if i == 1 and sbyte(a, 1) ~= 47 then fail(ipath, "must be an absolute path, got %s", show(a)) end
    tool.argv[i] = a
  end

  tool.stdin = one_of(path .. ".stdin", rawget(t, "stdin"), "args", "none", TOOL_DEFAULTS.stdin)

  local cwd = rawget(t, "cwd")
  if cwd ~= nil then
    guest_path(path .. ".cwd", cwd)
    if not under_a_mount(cwd, mounts) then fail(path .. ".cwd", "%s is not under any mount", show(cwd)) end
    tool.cwd = cwd
  end

  for _, b in ipairs(TOOL_BOUNDS) do
    local field, value = b[1], rawget(t, b[1])
    tool[field] = value == nil and TOOL_DEFAULTS[field]
      or positive_integer(path .. "." .. field, value, b[2], b[3])
  end

  tool.description = expect_optional(path .. ".description", rawget(t, "description"), "string") or ""

  local params = rawget(t, "params")
  if params ~= nil then
    expect(path .. ".params", params, "table")
    tool.params = copy_data(path .. ".params", params, 1, { MAX_SCHEMA_VALUES }, {})
  end

  tool.env = {}
  local env = rawget(t, "env")
  if env ~= nil then
    each_entry(path .. ".env", env, function(k, val, epath)
      if k == "" or sfind(k, "=", 1, true) or sfind(k, "\0", 1, true) then
        fail(epath, 'an environment variable name must be non-empty, without "=" or NUL')
      end
      tool.env[k] = no_nul(epath, expect(epath, val, "string"))
    end)
  end
  return tool
end

local function check_tools(v, mounts)
  local tools = {}
  if v == nil then return tools end
  each_entry("tools", v, function(name, t, path)
    if #name > MAX_NAME or not smatch(name, "^[A-Za-z0-9_.-]+$") then
      fail(path, "a tool name must be 1-64 characters of A-Z a-z 0-9 _ . -")
    end
    tools[name] = check_tool(path, t, mounts)
  end)
  return tools
end

local function check_limits(v)
  local limits = {}
  if v ~= nil then record("limits", v, LIMIT_FIELDS) end
  for _, l in ipairs(LIMITS) do
    local name, default, max, max_text = l[1], l[2], l[3], l[4]
    local value = v ~= nil and rawget(v, name) or nil
    limits[name] = value == nil and default or positive_integer("limits." .. name, value, max, max_text)
  end
  return limits
end

local function validate(raw, basedir, default_tenant)
  record("", raw, TOP_FIELDS)
  local pol = {}
  pol.tenant = check_tenant(rawget(raw, "tenant"), default_tenant)
  pol.mounts = check_mounts(rawget(raw, "mounts"), basedir)
  pol.net = check_net(rawget(raw, "net"))
  pol.http = check_http(rawget(raw, "http"))
  pol.tls = check_tls(rawget(raw, "tls"), basedir)
  pol.tools = check_tools(rawget(raw, "tools"), pol.mounts)
  pol.methods = string_list("methods", rawget(raw, "methods"), method_pattern)
  pol.handlers = string_list("handlers", rawget(raw, "handlers"), function(path, d)
    return host_path(path, d, basedir)
  end)
  pol.limits = check_limits(rawget(raw, "limits"))
  pol.authorize = expect_optional("authorize", rawget(raw, "authorize"), "function")
  return pol
end

-- {=====  Public API  =====}

-- Prefixes a message with "name: " unless Lua already put "name:LINE:" there.
local function with_name(name, err)
  if type(err) ~= "string" then
    return sformat("%s: policy raised an error value of type %s", name, type(err))
  end
  if ssub(err, 1, #name + 1) == name .. ":" then return err end
  return name .. ": " .. err
end

-- Loads, runs and validates one policy. Returns the normalized policy, or nil and
-- "name: path: message" / "name:LINE: message". Wrong argument types are the caller's bug and
-- raise an error.
function policy.load(src, name, basedir, env)
  if type(src) ~= "string" then error("policy.load: src must be a string", 2) end
  if type(name) ~= "string" or name == "" then error("policy.load: name must be a non-empty string", 2) end
  if basedir ~= nil and (type(basedir) ~= "string" or sbyte(basedir, 1) ~= 47) then
    error("policy.load: basedir must be an absolute path or nil", 2)
  end
  if type(env) ~= "table" then error("policy.load: env must be a table", 2) end

  if #src > MAX_SOURCE then return nil, name .. ": policy larger than 1 MiB" end
  if ssub(src, 1, 3) == "\239\187\191" then src = ssub(src, 4) end -- UTF-8 BOM, as lua(1) skips it
  if sbyte(src, 1) == 27 then
    return nil, name .. ": precompiled (bytecode) policies are refused; give Lua source text"
  end
  if sbyte(src, 1) == 35 then src = "--" .. src end -- "#!" first line, line numbers kept

  local chunk, err = load(src, "=" .. name, "t", env)
  if not chunk then return nil, with_name(name, err) end
  local ran = tpack(host.protected_run(chunk))
  if not ran[1] then return nil, with_name(name, ran[2]) end
  local raw = ran[2]
  if type(raw) ~= "table" then
    return nil, sformat("%s: policy must return a table, got %s", name, type(raw))
  end
  if getmetatable(raw) ~= nil then
    return nil, name .. ": policy must return a plain table, got a table with a metatable"
  end

  local ok, result = pcall(validate, raw, basedir, smatch(name, "^(.*)%.lua$") or name)
  if ok then
    compiled[result] = compile_methods(result.methods)
    return result
  end
  if getmetatable(result) == Failure then
    return nil, sformat("%s: %s: %s", name, result.path, result.msg)
  end
  error(result, 0) -- not a policy mistake: a bug here, or out of memory
end

-- Does the policy grant this method name? Runs per call: one flag, one set lookup, then one set
-- lookup per dot in the name.
function policy.grants(pol, method)
  if type(method) ~= "string" then return false end
  local g = compiled[pol]
  if not g then
    g = compile_methods(pol.methods or {})
    compiled[pol] = g
  end
  if g.all or g.exact[method] then return true end
  if g.nprefixes == 0 then return false end
  local prefixes, len = g.prefixes, #method
  local dot = sfind(method, ".", 1, true)
  while dot do
    if dot < len and prefixes[ssub(method, 1, dot)] then return true end
    dot = sfind(method, ".", dot + 1, true)
  end
  return false
end

local function array(t)
  if host.array then setmetatable(t, host.array) end
  return t
end

local function array_copy(src)
  local out = {}
  for i, v in ipairs(src) do out[i] = v end
  return array(out)
end

local function sorted_names(map)
  local names = {}
  for k in next, map do names[#names + 1] = k end
  tsort(names)
  return names
end

-- The effective capabilities, as plain data for `hostcall check` (lists marked as arrays).
-- Host paths are included (check is for the operator); env values and argv beyond the program
-- are not, since they may carry secrets and check output tends to end up in logs.
function policy.capabilities(pol)
  local mounts = {}
  for i, guest in ipairs(sorted_names(pol.mounts)) do
    local m = pol.mounts[guest]
    mounts[i] = { guest = guest, path = m.path, perms = m.perms, ephemeral = m.ephemeral,
                  quota = m.quota }
  end
  local http = {}
  for i, r in ipairs(pol.http.allow) do
    http[i] = { url = r.url, methods = array_copy(r.methods) }
  end
  local tools = {}
  for i, name in ipairs(sorted_names(pol.tools)) do
    local t = pol.tools[name]
    tools[i] = { name = name, program = t.argv[1], description = t.description, stdin = t.stdin,
                 cwd = t.cwd, timeout_ms = t.timeout_ms, max_output = t.max_output,
                 max_running = t.max_running, env = array(sorted_names(t.env)) }
  end
  local limits = {}
  for _, l in ipairs(LIMITS) do limits[l[1]] = pol.limits[l[1]] end
  return {
    tenant = pol.tenant,
    methods = array_copy(pol.methods),
    mounts = array(mounts),
    net = { allow = array_copy(pol.net.allow), deny = array_copy(pol.net.deny),
            listen = array_copy(pol.net.listen) },
    http = { allow = array(http) },
    tls = { ca_file = pol.tls.ca_file },
    tools = array(tools),
    handlers = array_copy(pol.handlers),
    limits = limits,
    authorize = pol.authorize ~= nil,
  }
end

return policy
