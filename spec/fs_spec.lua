-- The red team's black-box spec of the filesystem host functions: fs.* and io.* over JSON-RPC
-- (CONTRACT.md sections 3, 4, 5 and 8). Written from the contract, against every known way out of
-- a capability directory: cap-std's, Go os.Root's and wasmtime-wasi's filesystem tests and the
-- 2025-2026 advisories (trailing slash after a symlink, read-only bypass through truncate, link,
-- rename or open-with-truncate, chmod through a swapped symlink, remove TOCTOU, /proc magic
-- links, step-out-and-back-in, symlink chains and loops, NUL bytes, over-long names, FIFOs).
--
-- Every case runs twice, each in a fresh fixture tree (spec/fixtures/fs/tree.sh): with the
-- default resolver and with `resolver = "walk"` (hostcall.new option; `--resolver walk` for the
-- CLI). If the option is not supported the walk runs fail, they are never skipped. The walk run
-- also compares its transcript (method, params, code and errno or normalised result of every
-- call) with the default run's: both resolvers must give the same answers.
--
-- On every response: no host path of the fixture (nor /proc/self/fd/N, nor the repository) may
-- appear unless the guest itself sent it, and no byte of the outside's files may appear. After
-- every refused call the whole fixture tree (the outside included) is byte-for-byte unchanged:
-- contents, type, mode, size, mtime, ctime, link count, symlink target, no new names.
--
-- Checks are soft: a case runs to its end and reports every mismatch at once. A mismatch is
-- tagged [SECURITY] (an escape, a change, a read-only bypass, a leak, a hang) or [conformance].
-- Run: cmake -S . -B build >/dev/null && cmake --build build -j2
--      busted --lua=lua5.4 spec/fs_spec.lua
-- luacheck: std +busted
local hc = require "spec.support.hc"
local lfs = require "lfs"
local cjson = require "cjson"

local FIXTURES = hc.repo .. "/spec/fixtures/fs"
local MiB = 1024 * 1024
local SECRETS = { "TOP-SECRET", "INNER-SECRET", "only_outside" }
local SECRET_SIZE = 22             -- bytes of outside/secret; every decoy is 6
local INT64_MAX = math.maxinteger

-- {===== JSON out (exact integers, no "\/"), base64 =====

local RAW_MT, ARRAY_MT = {}, {}
-- A raw JSON token spliced into a request as is (handles and cursors travel back byte for byte).
local function raw(text) return setmetatable({ text = text }, RAW_MT) end
local function array(t) return setmetatable(t or {}, ARRAY_MT) end

local function jstr(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function enc(v)
  local t = type(v)
  if t == "string" then return jstr(v) end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    return string.format("%.17g", v)
  end
  if v == nil or v == cjson.null then return "null" end
  assert(t == "table", "cannot encode a " .. t)
  if getmetatable(v) == RAW_MT then return v.text end
  if getmetatable(v) == ARRAY_MT or #v > 0 then
    local parts = {}
    for i = 1, #v do parts[i] = enc(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local parts = {}
  for _, k in ipairs(sorted_keys(v)) do parts[#parts + 1] = jstr(tostring(k)) .. ":" .. enc(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_INDEX = {}
for i = 1, 64 do B64_INDEX[B64:byte(i)] = i - 1 end

local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    local function ch(k) return B64:sub(k + 1, k + 1) end
    out[#out + 1] = ch(n >> 18) .. ch((n >> 12) & 63) .. (b and ch((n >> 6) & 63) or "=") ..
                    (c and ch(n & 63) or "=")
  end
  return table.concat(out)
end

-- Strict standard padded base64 -> bytes, or nil.
local function unb64(s)
  if type(s) ~= "string" or #s % 4 ~= 0 then return nil end
  local out = {}
  for i = 1, #s, 4 do
    local q = { s:byte(i, i + 3) }
    local pad = 0
    if q[4] == 61 then pad = 1 end
    if q[3] == 61 then
      if pad ~= 1 then return nil end
      pad = 2
    end
    if pad > 0 and i + 4 <= #s then return nil end
    local n = 0
    for j = 1, 4 - pad do
      local d = B64_INDEX[q[j]]
      if not d then return nil end
      n = n | (d << (18 - 6 * (j - 1)))
    end
    local bytes = string.char((n >> 16) & 255, (n >> 8) & 255, n & 255)
    out[#out + 1] = bytes:sub(1, 3 - pad)
  end
  return table.concat(out)
end

-- The raw JSON token of the first `"key":` member of a response (handles, cursors, *_ns).
local function raw_member(resp, key)
  local s = resp:match('"' .. key .. '":%s*("[^"]*")') or resp:match('"' .. key .. '":%s*(%-?%d+)')
  return s
end

-- }=====

-- {===== the fixture: a tree, its snapshot, and diffs =====

-- Every entry under dir: type, mode, size, mtime, ctime, links, symlink target, inode, and the
-- bytes of regular files.
local function snapshot(dir)
  local p = io.popen("find " .. hc.q(dir) ..
    " -printf '%P\\t%y\\t%m\\t%s\\t%T@\\t%C@\\t%n\\t%l\\t%i\\n' 2>/dev/null")
  local snap = {}
  for line in p:lines() do
    local rel, typ = line:match("^([^\t]*)\t(%a)")
    if rel then
      if typ == "f" then line = line .. "\t" .. (hc.read(dir .. "/" .. rel) or "<unreadable>") end
      snap[rel] = line
    end
  end
  p:close()
  return snap
end

local function diff(before, after, limit)
  local out = {}
  for _, k in ipairs(sorted_keys(before)) do
    if after[k] == nil then out[#out + 1] = "removed " .. (k == "" and "." or k)
    elseif after[k] ~= before[k] then
      out[#out + 1] = "changed " .. (k == "" and "." or k) .. ": " .. before[k]:gsub("\t", " ") ..
                      "  ->  " .. after[k]:gsub("\t", " ")
    end
  end
  for _, k in ipairs(sorted_keys(after)) do
    if before[k] == nil then out[#out + 1] = "added " .. k end
  end
  while #out > (limit or 8) do out[#out] = nil end
  return out
end

local function sh(cmd)
  local ok = os.execute(cmd)
  assert(ok, "shell command failed: " .. cmd)
end

-- }=====

-- {===== expectations =====
-- "EPERM", "EROFS", "EACCES": -32001 with that errno.  "limit:NAME": -32002 with data.limit.
-- "os:NAME": -32000 NAME even where NAME is EPERM.  "-32602" etc.: that code.  Other names:
-- -32000 with that errno.  A list: any of them.

local REFUSALS = { EPERM = true, EROFS = true, EACCES = true }

local function parse_expect(s)
  if s:match("^%-%d+$") then return tonumber(s), nil end
  local lim = s:match("^limit:(.+)$")
  if lim then return -32002, lim end
  local osname = s:match("^os:(.+)$")
  if osname then return -32000, osname end
  if REFUSALS[s] then return -32001, s end
  return -32000, s
end

local function show_expect(expect)
  local alts = type(expect) == "table" and expect or { expect }
  local out = {}
  for i, s in ipairs(alts) do
    local code, name = parse_expect(s)
    out[i] = tostring(code) .. (name and (" " .. name) or "")
  end
  return table.concat(out, " or ")
end

local function matches(err, expect)
  local alts = type(expect) == "table" and expect or { expect }
  for _, s in ipairs(alts) do
    local code, name = parse_expect(s)
    local data = type(err.data) == "table" and err.data or {}
    if err.code == code and (name == nil or data.errno == name or data.limit == name) then
      return true
    end
  end
  return false
end

local function expects_refusal(expect)
  local alts = type(expect) == "table" and expect or { expect }
  for _, s in ipairs(alts) do
    local code = parse_expect(s)
    if code ~= -32001 then return false end
  end
  return true
end

-- }=====

-- {===== callers: one runtime, or one connection to a server =====

local Caller = {}
Caller.__index = Caller

local function short(env, v, n)
  local s = type(v) == "string" and v or enc(v)
  s = s:gsub(env.root:gsub("%p", "%%%0"), "<ROOT>")
  n = n or 400
  if #s > n then s = s:sub(1, n) .. "...(" .. #s .. " bytes)" end
  return s
end

-- Every string a value holds (to find what the guest named, or what a response reveals).
local function strings_of(v, out, key)
  out = out or {}
  if type(v) == "string" then
    out[#out + 1] = v
    if key == "data" then
      local bytes = unb64(v)
      if bytes then out[#out + 1] = bytes end
    end
  elseif type(v) == "table" then
    if getmetatable(v) == RAW_MT then out[#out + 1] = v.text return out end
    for k, x in pairs(v) do strings_of(x, out, k) end
  end
  return out
end

-- The transcript line of a call: params and answer with tokens, times and order normalised.
local function normalise(v, key)
  if key == "handle" or key == "cursor" then return "<token>" end
  if type(key) == "string" and key:match("_ns$") then return "<ns>" end
  if type(v) ~= "table" then return v end
  if getmetatable(v) == RAW_MT then return "<token>" end
  local out = {}
  for k, x in pairs(v) do out[k] = normalise(x, k) end
  if key == "entries" then
    table.sort(out, function(a, b) return tostring(a.name) < tostring(b.name) end)
  end
  return out
end

local function outcome_of(v)
  if type(v) ~= "table" then return "no answer" end
  if v.error then
    local d = type(v.error.data) == "table" and v.error.data or {}
    return string.format("error %s %s", tostring(v.error.code), tostring(d.errno or d.limit or ""))
  end
  return "result " .. enc(normalise(v.result))
end

function Caller:note(line) local t = self.env.transcript; t[#t + 1] = line end

-- Send one call; answer (decoded), raw text. Checks every answer for leaks.
function Caller:call(method, params, opts)
  opts = opts or {}
  local env = self.env
  env.id = env.id + 1
  local text = '{"jsonrpc":"2.0","id":' .. env.id .. ',"method":' .. jstr(method) ..
               (params ~= nil and (',"params":' .. enc(params)) or "") .. "}"
  local what = method .. " " .. short(env, params == nil and "" or params)
  local resp, why = self.send(text)
  if not resp then
    env:fail("SECURITY", "%s%s: no answer (%s): the runtime hangs", self.label, what, tostring(why))
    error(env:report(), 0)   -- nothing after a hang can be trusted
  end
  local ok, v = pcall(cjson.decode, resp)
  if not ok or type(v) ~= "table" then
    env:fail("conformance", "%s%s: not a JSON-RPC response: %s", self.label, what, short(env, resp))
    v = {}
  end
  -- Host paths: only what the guest itself sent may come back.
  local sent = table.concat(strings_of(params), "\0")
  local got = strings_of(v)
  got[#got + 1] = resp
  for _, f in ipairs(env.forbidden) do
    if not sent:find(f, 1, true) then
      for _, s in ipairs(got) do
        if s:find(f, 1, true) then
          env:fail("SECURITY", "%s%s: the answer reveals the host path %q: %s", self.label, what,
                   f == env.root and "<ROOT>" or f, short(env, resp))
          break
        end
      end
    end
  end
  for _, secret in ipairs(SECRETS) do
    for _, s in ipairs(got) do
      if s:find(secret, 1, true) then
        env:fail("SECURITY", "%s%s: the answer carries the outside's %s: %s", self.label, what, secret,
                 short(env, resp))
        break
      end
    end
  end
  if v.error then
    local e = v.error
    local d = type(e.data) == "table" and e.data or {}
    if type(e.message) ~= "string" then
      env:fail("conformance", "%s%s: error without a message: %s", self.label, what, short(env, resp))
    end
    if (e.code == -32000 or e.code == -32001) and not (type(d.errno) == "string" and d.errno:match("^E%u+$")) then
      env:fail("conformance", "%s%s: %d without data.errno: %s", self.label, what, e.code, short(env, resp))
    end
    if e.code == -32002 and type(d.limit) ~= "string" then
      env:fail("conformance", "%s%s: -32002 without data.limit: %s", self.label, what, short(env, resp))
    end
    if e.code == -32603 then
      env:fail("conformance", "%s%s: internal error: %s", self.label, what, short(env, resp))
    end
  end
  if not opts.quiet then
    self:note(self.label .. method .. " " .. short(env, normalise(params), 300) .. " => " .. outcome_of(v))
  end
  return v, resp, what
end

-- A result, or a hard failure (what follows depends on it).
function Caller:ok(method, params)
  local v, resp, what = self:call(method, params)
  if v.error or v.result == nil then
    self.env:fail(nil, "%s%s: expected a result, got %s", self.label, what, short(self.env, resp))
    error(self.env:report(), 0)
  end
  return v.result, resp
end

-- A result or not (soft): the result, or nil after recording the failure.
function Caller:try(method, params)
  local v, resp, what = self:call(method, params)
  if v.error or v.result == nil then
    self.env:fail(nil, "%s%s: expected a result, got %s", self.label, what, short(self.env, resp))
    return nil, resp
  end
  return v.result, resp
end

-- An error as `expect` says (soft).
function Caller:fail(method, params, expect)
  local v, resp, what = self:call(method, params)
  if not v.error then
    local sev = expects_refusal(expect) and "SECURITY" or nil
    self.env:fail(sev, "%s%s: expected %s, got a result: %s", self.label, what, show_expect(expect),
                  short(self.env, resp))
    return nil, resp
  end
  if not matches(v.error, expect) then
    self.env:fail(nil, "%s%s: expected %s, got %s", self.label, what, show_expect(expect),
                  short(self.env, resp))
  end
  return v.error, resp
end

-- An error as `expect` says, and nothing under the fixture root (or `scope`) changed.
function Caller:deny(method, params, expect, scope)
  local dir = scope or self.env.root
  local before = snapshot(dir)
  local e, resp = self:fail(method, params, expect)
  local changes = diff(before, snapshot(dir))
  if #changes > 0 then
    self.env:fail("SECURITY", "%s%s %s: refused or not, it changed the host:\n      %s", self.label, method,
                  short(self.env, params), table.concat(changes, "\n      "))
  end
  return e, resp
end

-- The bytes of a file through fs.read (hard).
function Caller:read(path, extra)
  local p = { path = path }
  for k, v in pairs(extra or {}) do p[k] = v end
  local res = self:ok("fs.read", p)
  return unb64(res.data) or error("fs.read " .. path .. ": data is not base64: " .. tostring(res.data)), res
end

-- }=====

-- {===== environments: one fixture tree, one resolver =====

local Env = {}
Env.__index = Env

local walk_support      -- nil: not probed yet; true; or the reason it is not supported
local function need_walk()
  if walk_support == nil then
    local rt = hc.try_new { policy_source = hc.SYS_ALL, name = "t.lua", resolver = "no-such-resolver" }
    if rt then
      rt:close()
      walk_support = 'hostcall.new accepted resolver = "no-such-resolver": the `resolver` option is ' ..
                     "not supported (it is ignored), so this walk-resolver run cannot be told apart from " ..
                     "the default resolver; failing instead of skipping"
    else
      local rt2, err2 = hc.try_new { policy_source = hc.SYS_ALL, name = "t.lua", resolver = "walk" }
      if rt2 then rt2:close(); walk_support = true
      else walk_support = 'hostcall.new refused resolver = "walk": ' .. tostring(err2) end
    end
  end
  if walk_support ~= true then error(walk_support, 0) end
end

local function new_env(name, resolver)
  local root = hc.tmpdir()
  sh("sh " .. hc.q(FIXTURES .. "/tree.sh") .. " " .. hc.q(root) .. " >/dev/null")
  return setmetatable({
    name = name, resolver = resolver, root = root, id = 0, transcript = {}, failures = {},
    callers = {}, cleanups = {},
    forbidden = { root, "/tmp/hc-spec-", "/proc/self/fd/", hc.repo },
  }, Env)
end

function Env:fail(severity, fmt, ...)
  local msg = string.format(fmt, ...)
  self.failures[#self.failures + 1] = "[" .. (severity or "conformance") .. "] " .. msg
end

function Env:check(cond, severity, fmt, ...)
  if not cond then self:fail(severity, fmt, ...) end
  return cond
end

function Env:report()
  local n = #self.failures
  local shown = {}
  for i = 1, math.min(n, 40) do shown[i] = "  " .. self.failures[i] end
  if n > 40 then shown[#shown + 1] = string.format("  ... and %d more", n - 40) end
  return string.format("%d mismatch(es) with the contract [%s resolver]:\n%s", n, self.resolver,
                       table.concat(shown, "\n"))
end

function Env:path(rel) return self.root .. "/" .. rel end

-- Policy source: mounts = { ["/in"] = { "in", "ro", ephemeral = ..., quota = ... } } (host
-- paths relative to the fixture root unless absolute), limits = {...}, methods = {...}.
function Env:policy_src(opts)
  local mounts = {}
  for _, guest in ipairs(sorted_keys(opts.mounts)) do
    local m = opts.mounts[guest]
    local host = m[1]:sub(1, 1) == "/" and m[1] or self:path(m[1])
    local extra = ""
    if m.ephemeral ~= nil then extra = extra .. ", ephemeral = " .. tostring(m.ephemeral) end
    if m.quota ~= nil then extra = extra .. string.format(", quota = %d", m.quota) end
    mounts[#mounts + 1] = string.format("[%q] = { path = %q, perms = %q%s }", guest, host, m[2], extra)
  end
  local methods = {}
  for i, m in ipairs(opts.methods or { "fs.*", "io.*", "sys.*" }) do methods[i] = string.format("%q", m) end
  local limits = {}
  for _, k in ipairs(sorted_keys(opts.limits or {})) do
    limits[#limits + 1] = string.format("%s = %d", k, opts.limits[k])
  end
  return string.format("return { methods = { %s }, mounts = { %s }, limits = { %s } }",
                       table.concat(methods, ", "), table.concat(mounts, ", "), table.concat(limits, ", "))
end

local STD_MOUNTS = { ["/in"] = { "in", "ro" }, ["/out"] = { "out", "rw" }, ["/out2"] = { "out2", "rw" } }

-- An in-process runtime on this env's resolver. opts: mounts (default STD_MOUNTS), limits,
-- methods, label (prefixes its transcript lines).
function Env:runtime(opts)
  opts = opts or {}
  opts.mounts = opts.mounts or STD_MOUNTS
  local args = {}
  if self.resolver == "walk" then
    need_walk()
    args.resolver = "walk"
  end
  local rt = hc.runtime(self:policy_src(opts), args)
  local c = setmetatable({ env = self, label = opts.label and (opts.label .. ": ") or "", rt = rt }, Caller)
  c.send = function(text) return rt:call(text) end
  self.callers[#self.callers + 1] = c
  return c
end

-- The standard runtime: /in ro, /out rw, /out2 rw.
function Env:std()
  if not self._std then self._std = self:runtime() end
  return self._std
end

-- A policy file for the CLI (absolute host paths), and the CLI words for this resolver.
function Env:policy_file(opts)
  opts = opts or {}
  opts.mounts = opts.mounts or STD_MOUNTS
  return hc.write(self:path("policy/" .. (opts.file or "t.lua")), self:policy_src(opts))
end

function Env:resolver_args()
  if self.resolver == "walk" then return { "--resolver", "walk" } end
  return {}
end

-- `hostcall serve --listen unix:...` on this env's resolver; connect() gives a Caller.
function Env:server(opts)
  local args = self:resolver_args()
  local srv = hc.serve { policy = self:policy_file(opts), args = args }
  local env = self
  function srv.caller(_, label, timeout)
    local conn = hc.connect(srv.sock)
    local c = setmetatable({ env = env, label = label and (label .. ": ") or "", conn = conn }, Caller)
    c.send = function(text)
      local ok, err = conn:send_line(text)
      if not ok then return nil, err end
      return conn:recv_line(timeout or 5)
    end
    env.cleanups[#env.cleanups + 1] = function() conn:close() end
    return c
  end
  return srv
end

function Env:close()
  for i = #self.cleanups, 1, -1 do pcall(self.cleanups[i]) end
  for _, c in ipairs(self.callers) do if c.rt then pcall(c.rt.close, c.rt) end end
end

-- }=====

-- {===== cases: each body runs on both resolvers, and the answers must agree =====

local transcripts = {}

local function compare(name, a, b)
  local out = {}
  for i = 1, math.min(#a, #b) do
    if a[i] ~= b[i] then
      out[#out + 1] = string.format("  call %d:\n    default: %s\n    walk:    %s", i, a[i], b[i])
      if #out == 10 then break end
    end
  end
  if #out == 0 then return nil end
  return string.format("[conformance] %s: the resolvers disagree:\n%s", name, table.concat(out, "\n"))
end

local function run(name, resolver, body)
  local env = new_env(name, resolver)
  local ok, err = xpcall(body, function(e)
    if type(e) == "string" and e:find("mismatch%(es%) with the contract") then return e end
    return debug.traceback(tostring(e), 2)
  end, env)
  env:close()
  transcripts[name] = transcripts[name] or {}
  transcripts[name][resolver] = env.transcript
  local msgs = {}
  if not ok then msgs[#msgs + 1] = err
  elseif #env.failures > 0 then msgs[#msgs + 1] = env:report() end
  if resolver == "walk" and transcripts[name].default then
    msgs[#msgs + 1] = compare(name, transcripts[name].default, env.transcript)
  end
  if #msgs > 0 then error(table.concat(msgs, "\n"), 0) end
end

local function case(name, body)
  it(name .. " [default resolver]", function() run(name, "default", body) end)
  it(name .. " [walk resolver]", function() run(name, "walk", body) end)
end

-- }=====

-- {===== small shared checks =====

local function names_of(entries)
  local out = {}
  for i, e in ipairs(entries or {}) do out[i] = e.name end
  table.sort(out)
  return out
end

local function type_map(entries)
  local out = {}
  for _, e in ipairs(entries or {}) do out[e.name] = e.type end
  return out
end

local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- Background helpers (races): start `sh -c 'CMD &'`, return a stop function.
local function background(env, cmd)
  local pidfile = env:path("policy/bg." .. tostring(#env.cleanups) .. ".pid")
  sh(string.format("sh -c %s", hc.q(string.format("%s >/dev/null 2>&1 </dev/null & echo $! > %s", cmd,
                                                  hc.q(pidfile)))))
  local pid = hc.wait_until(function() return tonumber((hc.read(pidfile) or ""):match("%d+")) end, 5)
  assert(pid, "the background loop did not start")
  local stopped = false
  local function stop()
    if stopped then return end
    stopped = true
    os.execute("kill " .. pid .. " 2>/dev/null")
    hc.wait_until(function() return not os.execute("kill -0 " .. pid .. " 2>/dev/null") end, 3)
    os.execute("kill -9 " .. pid .. " 2>/dev/null")
  end
  env.cleanups[#env.cleanups + 1] = stop
  return stop
end

-- }=====

after_each(function() hc.cleanup() end)
