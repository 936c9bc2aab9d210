-- The red team's black-box spec of the filesystem host functions: fs.* and io.* over JSON-RPC
-- (CONTRACT.md sections 3, 4, 5 and 8). Written from the contract, against every known way out of
-- a capability directory: cap-std's, Go os.Root's and wasmtime-wasi's filesystem tests and the
-- 2025-2026 advisories (trailing slash after a symlink, read-only bypass through truncate, link,
-- rename or open-with-truncate, chmod through a swapped symlink, remove TOCTOU, /proc magic
-- links, step-out-and-back-in, symlink chains and loops, NUL bytes, over-long names, FIFOs).
--
-- Every case runs twice, each in a fresh fixture tree (spec/fixtures/fs/tree.pl): with the
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
-- (mtime and ctime are compared to the nanosecond, so any write shows even where the bytes are
-- only read for the outside's files.) Races run spec/fixtures/fs/swap.pl in the background.
--
-- Checks are soft: a case runs to its end and reports every mismatch at once. A mismatch is
-- tagged [SECURITY] (an escape, a change outside the writable mounts, a leak, a hang) or
-- [conformance] (a wrong answer that crossed no boundary).
-- Run: cmake -S . -B build >/dev/null && cmake --build build -j2
--      busted --lua=lua5.4 spec/fs_spec.lua
-- FS_SPEC_TIMES=1 prints each run's seconds; FS_SPEC_TRANSCRIPT=<part of a case name> prints its
-- calls and answers (a ready reproduction). HOSTCALL_BUILD=<dir> tests another build.
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

-- Every entry under dir: type, mode, size, mtime, ctime (ns), links, symlink target, inode, and
-- the bytes of the outside's files.
local function snapshot(dir)
  local p = io.popen("find " .. hc.q(dir) ..
    " -printf '%P\\t%y\\t%m\\t%s\\t%T@\\t%C@\\t%n\\t%l\\t%i\\n' 2>/dev/null")
  local snap = {}
  for line in p:lines() do
    local rel, typ = line:match("^([^\t]*)\t(%a)")
    if rel then
      -- Contents are read for the outside's files; elsewhere the ns ctime tells any change.
      if typ == "f" and (dir .. "/" .. rel):find("/outside/", 1, true) then
        line = line .. "\t" .. (hc.read(dir .. "/" .. rel) or "<unreadable>")
      end
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

local host_epoch = 0             -- bumped by every change the spec itself makes on the host

local function sh(cmd)
  host_epoch = host_epoch + 1
  local ok = os.execute(cmd)
  assert(ok, "shell command failed: " .. cmd)
end

local function host_write(path, data)
  host_epoch = host_epoch + 1
  return hc.write(path, data)
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
    local code = type(v.error.code) == "number" and math.tointeger(v.error.code) or v.error.code
    return string.format("error %s %s", tostring(code), tostring(d.errno or d.limit or ""))
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
    -- Done where an escape was expected: a breach. Other wrong successes are breaches only if
    -- they changed what they must not (deny checks the host).
    local sev = nil
    if expects_refusal(expect) then
      for _, x in ipairs(type(expect) == "table" and expect or { expect }) do
        if x == "EPERM" then sev = "SECURITY" end
      end
    end
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
  local env = self.env
  local dir = scope or env.root
  -- The last deny's "after" is this one's "before" when nothing happened in between.
  local before
  if not scope and env.snap and env.snap_calls == env.id and env.snap_epoch == host_epoch then
    before = env.snap
  else
    before = snapshot(dir)
  end
  local e, resp = self:fail(method, params, expect)
  local after = snapshot(dir)
  if not scope then env.snap, env.snap_calls, env.snap_epoch = after, env.id, host_epoch end
  local changes = diff(before, after)
  if #changes > 0 then
    -- A change under a writable mount's own directory is a wrong answer; anywhere else (the
    -- outside, a read-only mount's directory) it is a breach.
    local sev = "conformance"
    for _, c in ipairs(changes) do
      local rel = c:match("^%a+ ([^:]*)")
      if not (rel and (rel:match("^out/") or rel:match("^out2/") or rel == "out" or rel == "out2")) then
        sev = "SECURITY"
      end
    end
    self.env:fail(sev, "%s%s %s: refused or not, it changed the host:\n      %s", self.label, method,
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
    local ok, rt = pcall(hc.try_new, { policy_source = hc.SYS_ALL, name = "t.lua", resolver = "no-such-resolver" })
    if ok and rt then
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
  sh("perl " .. hc.q(FIXTURES .. "/tree.pl") .. " " .. hc.q(root) ..
     " && TZ=UTC touch -d '2001-02-03 04:05:06.123456789' " .. hc.q(root .. "/in/file.txt"))
  return setmetatable({
    name = name, resolver = resolver, root = root, id = 0, transcript = {}, failures = {},
    callers = {}, cleanups = {},
    forbidden = { root, "/tmp/hc-spec-", "/proc/self/fd/", hc.repo },
  }, Env)
end

function Env:fail(severity, fmt, ...)
  if #self.failures >= 500 then return end   -- a race can fail thousands of times: 500 tell enough
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
  local t0 = hc.now()
  local ok, err = xpcall(body, function(e)
    if type(e) == "string" and e:find("mismatch%(es%) with the contract") then return e end
    return debug.traceback(tostring(e), 2)
  end, env)
  env:close()
  local dump = os.getenv("FS_SPEC_TRANSCRIPT")   -- a substring of a case's name: its calls on stderr
  if dump and name:find(dump, 1, true) then
    io.stderr:write("== " .. name .. " [" .. resolver .. "]\n  " .. table.concat(env.transcript, "\n  ") .. "\n")
  end
  if os.getenv("FS_SPEC_TIMES") then   -- FS_SPEC_TIMES=1: each run's seconds on stderr
    io.stderr:write(string.format("%6.2f s  %s [%s]\n", hc.now() - t0, name, resolver))
  end
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
    local function gone()   -- exited: no /proc entry, or a zombie nobody reaped yet
      local st = hc.read("/proc/" .. pid .. "/stat")
      return not st or st:match("^%d+ %b() (%a)") == "Z"
    end
    if not hc.wait_until(gone, 3) then os.execute("kill -9 " .. pid .. " 2>/dev/null") end
  end
  env.cleanups[#env.cleanups + 1] = stop
  return stop
end

-- }=====

after_each(function() hc.cleanup() end)

-- {===== more caller helpers =====

-- A handle token (raw JSON) from fs.open / fs.opendir, or nil (soft).
function Caller:handle(params, method)
  local res, resp = self:try(method or "fs.open", params)
  if not res then return nil end
  local tok = raw_member(resp, "handle")
  if not tok then
    self.env:fail(nil, "%s%s: the handle is neither a string nor an integer: %s", self.label,
                  method or "fs.open", short(self.env, resp))
    return nil
  end
  return raw(tok)
end

-- A read's result against the expected bytes and eof (soft). `text`: data is utf8 text.
function Caller:expect_read(method, params, want, eof, text)
  local res, resp = self:try(method, params)
  if not res then return nil end
  local what = self.label .. method .. " " .. short(self.env, params)
  local bytes = text and res.data or unb64(res.data)
  self.env:check(bytes == want, nil, "%s: data %s, expected %s", what,
                 string.format("%q", tostring(bytes)), string.format("%q", want))
  self.env:check(res.bytes_read == #want and resp:find('"bytes_read":' .. #want .. "[,}]") ~= nil, nil,
                 "%s: bytes_read %s, expected the integer %d", what, tostring(res.bytes_read), #want)
  if eof ~= nil then
    self.env:check(res.eof == eof, nil, "%s: eof %s, expected %s", what, tostring(res.eof), tostring(eof))
  end
  return res, resp
end

-- Any outcome in `codes` (a set of error codes; "result" allows a result). Returns the answer.
function Caller:any(method, params, codes)
  local v, resp, what = self:call(method, params)
  local key = v.error and v.error.code or "result"
  if not codes[key] then
    self.env:fail(nil, "%s%s: unexpected answer %s", self.label, what, short(self.env, resp))
  end
  return v, resp
end

-- }=====

local W = b64("PWNED\n")

describe("the resolver option", function()
  it('hostcall.new takes resolver = "walk" and "openat2" and refuses an unknown resolver', function()
    for _, r in ipairs { "walk", "openat2" } do
      local rt, err = hc.try_new { policy_source = hc.SYS_ALL, name = "t.lua", resolver = r }
      assert(rt, "resolver = " .. r .. " refused: " .. tostring(err))
      rt:close()
    end
    -- Refused: nil and a message, or an error raised.
    local ok, rt, err = pcall(hc.try_new, { policy_source = hc.SYS_ALL, name = "t.lua", resolver = "no-such-resolver" })
    if not ok then rt, err = nil, rt end
    if rt then rt:close() end
    assert(rt == nil, 'hostcall.new accepted resolver = "no-such-resolver": the option is not supported')
    assert(tostring(err):find("resolver", 1, true), "the message should name the option: " .. tostring(err))
  end)
end)

describe("the guest namespace", function()
  case("fs.list / lists exactly the mount points; any other path outside every mount is EPERM", function(env)
    local r = env:runtime { mounts = { ["/in"] = { "in", "ro" }, ["/out"] = { "out", "rw" } } }
    local res, resp = r:ok("fs.list", { path = "/" })
    env:check(same_list(names_of(res.entries), { "in", "out" }), nil,
              "fs.list /: expected the entries in and out, got %s", enc(names_of(res.entries)))
    for _, e in ipairs(res.entries or {}) do
      env:check(e.type == "dir", nil, "fs.list /: %s has type %s, expected dir", tostring(e.name), tostring(e.type))
    end
    env:check(not resp:find('"cursor"'), nil, "fs.list /: a cursor on the only page: %s", resp)
    local outside = { "/etc", "/etc/passwd", "/inx", "/inx/file.txt", "/i", "/in2/file.txt", "/outside",
                      "/outside/secret", "/tmp", "/proc/self/root", env:path("outside/secret"),
                      env:path("in/file.txt"), env:path("outside") }
    for _, p in ipairs(outside) do
      r:deny("fs.list", { path = p }, "EPERM")
      r:deny("fs.read", { path = p }, "EPERM")
      r:deny("fs.stat", { path = p }, "EPERM")
      r:deny("fs.stat", { path = p, follow = false }, "EPERM")
      r:deny("fs.opendir", { path = p }, "EPERM")
      r:deny("fs.open", { path = p, mode = "r" }, "EPERM")
      r:deny("fs.readlink", { path = p }, "EPERM")
    end
    r:deny("fs.write", { path = "/newfile", data = W }, "EPERM")
    r:deny("fs.write", { path = env:path("outside/secret"), data = W }, "EPERM")
    r:deny("fs.write", { path = env:path("out/new"), data = W }, "EPERM")
    r:deny("fs.open", { path = "/newfile", mode = "w" }, "EPERM")
    r:deny("fs.mkdir", { path = "/newdir" }, "EPERM")
    r:deny("fs.mkdir", { path = "/outside/x/y", parents = true }, "EPERM")
    r:deny("fs.remove", { path = "/outside/secret" }, "EPERM")
    r:deny("fs.remove", { path = env:path("outside"), recursive = true }, "EPERM")
    r:deny("fs.remove", { path = "/", recursive = true }, { "EPERM", "EBUSY", "EINVAL" })
    r:deny("fs.symlink", { target = "out/file.txt", path = "/lnk" }, "EPERM")
    r:deny("fs.rename", { from = "/out/file.txt", to = "/moved" }, "EPERM")
    r:deny("fs.rename", { from = "/etc/hostname", to = "/out/stolen" }, "EPERM")
    r:deny("fs.rename", { from = env:path("outside/secret"), to = "/out/stolen" }, "EPERM")
    r:deny("fs.link", { from = "/out/file.txt", to = "/hard" }, "EPERM")
    r:deny("fs.link", { from = env:path("outside/secret"), to = "/out/hard" }, "EPERM")
    r:deny("fs.chmod", { path = "/etc", mode = 511 }, "EPERM")
    r:deny("fs.chmod", { path = env:path("outside/secret"), mode = 511 }, "EPERM")
    r:deny("fs.truncate", { path = env:path("outside/secret"), length = 0 }, "EPERM")
    r:deny("fs.utimes", { path = env:path("outside/secret"), mtime_ns = 0 }, "EPERM")
  end)

  case("empty, relative and odd guest paths", function(env)
    local r = env:std()
    for _, m in ipairs { "fs.read", "fs.stat", "fs.list", "fs.opendir", "fs.readlink", "fs.remove" } do
      r:deny(m, { path = "" }, "ENOENT")
    end
    r:deny("fs.write", { path = "", data = W }, "ENOENT")
    r:deny("fs.mkdir", { path = "" }, "ENOENT")
    r:deny("fs.open", { path = "", mode = "w" }, "ENOENT")
    -- A relative path is never resolved against the runtime's working directory (nor against a
    -- mount): outside every mount (EPERM), or not a guest path at all (-32602 or EINVAL).
    local NOT_A_PATH = { "EPERM", "-32602", "EINVAL" }
    for _, p in ipairs { "in/file.txt", "spec/fs_spec.lua", "./spec/fs_spec.lua", ".", "..", "../../etc/passwd",
                         "in", "out/file.txt" } do
      r:deny("fs.read", { path = p }, NOT_A_PATH)
      r:deny("fs.stat", { path = p }, NOT_A_PATH)
      r:deny("fs.list", { path = p }, NOT_A_PATH)
      r:deny("fs.write", { path = p .. "x", data = W }, NOT_A_PATH)
    end
    -- Backslashes and percent signs are bytes of a name, nothing more.
    r:deny("fs.read", { path = "/in/..\\outside\\secret" }, "ENOENT")
    r:deny("fs.read", { path = "/in/%2e%2e/outside/secret" }, "ENOENT")
    r:deny("fs.read", { path = "/in/..%2foutside%2fsecret" }, "ENOENT")
    r:deny("fs.read", { path = "/in/...", }, "ENOENT")
    -- Redundant separators and dots that stay inside the mount are fine.
    for _, p in ipairs { "/in//file.txt", "/in/./file.txt", "/in/dir/../file.txt", "/in/dir/./../dir/../file.txt",
                         "/in/dot/dot/file.txt", "/in/link_dir/../file.txt", "/in/dir/up", "/in/link_rel_in",
                         "/in/./dir/.././/file.txt" } do
      r:expect_read("fs.read", { path = p }, "hello\n", true)
    end
    -- A file is not a directory, a directory is not a file.
    r:deny("fs.read", { path = "/in/file.txt/" }, "ENOTDIR")
    r:deny("fs.read", { path = "/in/file.txt/." }, "ENOTDIR")
    r:deny("fs.read", { path = "/in/file.txt/.." }, "ENOTDIR")
    r:deny("fs.stat", { path = "/in/file.txt/" }, "ENOTDIR")
    r:deny("fs.list", { path = "/in/file.txt" }, "ENOTDIR")
    r:deny("fs.opendir", { path = "/in/file.txt" }, "ENOTDIR")
    for _, p in ipairs { "/in", "/in/", "/in/dir", "/in/dir/", "/in/link_dir", "/out" } do
      r:deny("fs.read", { path = p }, "EISDIR")
    end
    r:deny("fs.read", { path = "/in/nope" }, "ENOENT")
    r:deny("fs.read", { path = "/in/nope/x" }, "ENOENT")
    r:deny("fs.list", { path = "/in/nope" }, "ENOENT")
    for _, p in ipairs { "/in", "/in/", "/in/.", "/in/dir/..", "/in/link_dir/" } do
      local st = r:try("fs.stat", { path = p })
      if st then env:check(st.type == "dir", nil, "fs.stat %s: type %s, expected dir", p, tostring(st.type)) end
    end
  end)
end)

describe("escapes", function()
  case("stepping out of a mount and back in is an escape", function(env)
    local r = env:std()
    local paths = { "/in/../in/file.txt", "/in/../in/", "/in/..", "/in/../", "/in/../in", "/in/dir/../../in/file.txt",
                    "/in/dir/../..", "/in/dir/../../", "/in/../out/file.txt", "/out/../in/file.txt",
                    "/out/../out/file.txt", "/out/../out2/two.txt", "/in/" .. ("../"):rep(40) .. "etc/passwd",
                    "/in/../outside/secret", "/in/dir/../../outside/secret", "/in/./../outside/secret",
                    "/in/dir/deeper/../../../outside/secret", "/in/updown", "/in/dir/up2", "/in/dotdot/in/file.txt",
                    "/in/dotdot", "/in/dotdot/", "/in/dot/../in/file.txt", "/in/link_dir/../../in/file.txt",
                    "/in/link_dir/up2", "/in/dir/../dotdot/in/file.txt" }
    for _, p in ipairs(paths) do
      r:deny("fs.read", { path = p }, "EPERM")
      r:deny("fs.stat", { path = p }, "EPERM")
      r:deny("fs.open", { path = p, mode = "r" }, "EPERM")
    end
    for _, p in ipairs { "/in/..", "/in/../", "/in/../in", "/in/dir/../..", "/in/dotdot", "/in/dotdot/", "/out/..",
                         "/out/../out", "/in/link_dir/../.." } do
      r:deny("fs.list", { path = p }, "EPERM")
      r:deny("fs.opendir", { path = p }, "EPERM")
    end
    local muts = {
      { "fs.write", { path = "/out/../out/new.txt", data = W } },
      { "fs.write", { path = "/out/../out/file.txt", data = W } },
      { "fs.write", { path = "/out/../out/file.txt", data = W, append = true } },
      { "fs.mkdir", { path = "/out/../out/newdir" } },
      { "fs.mkdir", { path = "/out/../out/a/b", parents = true } },
      { "fs.remove", { path = "/out/../out/file.txt" } },
      { "fs.remove", { path = "/out/../out/tree", recursive = true } },
      { "fs.rename", { from = "/out/file.txt", to = "/out/../out/renamed" } },
      { "fs.rename", { from = "/out/../out/file.txt", to = "/out/renamed" } },
      { "fs.link", { from = "/out/file.txt", to = "/out/../out/hl" } },
      { "fs.link", { from = "/out/../out/file.txt", to = "/out/hl" } },
      { "fs.symlink", { target = "file.txt", path = "/out/../out/sl" } },
      { "fs.chmod", { path = "/out/../out/file.txt", mode = 511 } },
      { "fs.utimes", { path = "/out/../out/file.txt", mtime_ns = 0 } },
      { "fs.truncate", { path = "/out/../out/file.txt", length = 0 } },
      { "fs.open", { path = "/out/../out/file.txt", mode = "w" } },
      { "fs.readlink", { path = "/out/../out/esc_rel" } },
      { "fs.write", { path = "/out/../outside/new", data = W } },
      { "fs.mkdir", { path = "/out/../outside/newdir" } },
      { "fs.remove", { path = "/out/../outside/secret" } },
      { "fs.remove", { path = "/out/../outside", recursive = true } },
      { "fs.chmod", { path = "/out/..", mode = 511 } },
      { "fs.chmod", { path = "/out/../", mode = 511 } },
      { "fs.utimes", { path = "/out/..", mtime_ns = 0 } },
      { "fs.rename", { from = "/out/..", to = "/out/x" } },
      { "fs.remove", { path = "/out/..", recursive = true } },
    }
    for _, m in ipairs(muts) do r:deny(m[1], m[2], "EPERM") end
  end)

  case("an escape is EPERM even on a read-only mount (escape wins over EROFS)", function(env)
    local r = env:std()
    for _, p in ipairs { "/in/../outside/secret", "/in/esc_rel", "/in/esc_abs", "/in/esc_rel_dir/secret",
                         "/in/esc_abs_dir/secret", "/in/chain/e1", "/in/dotdot/outside/secret" } do
      r:deny("fs.write", { path = p, data = W }, "EPERM")
      r:deny("fs.write", { path = p, data = W, append = true }, "EPERM")
      r:deny("fs.write", { path = p, data = W, offset = 0 }, "EPERM")
      r:deny("fs.open", { path = p, mode = "w" }, "EPERM")
      r:deny("fs.open", { path = p, mode = "a" }, "EPERM")
      r:deny("fs.open", { path = p, mode = "rw" }, "EPERM")
      r:deny("fs.truncate", { path = p, length = 0 }, "EPERM")
      r:deny("fs.chmod", { path = p, mode = 511 }, "EPERM")
      r:deny("fs.utimes", { path = p, mtime_ns = 0, atime_ns = 0 }, "EPERM")
    end
    for _, p in ipairs { "/in/../outside/secret", "/in/esc_rel_dir/secret", "/in/esc_abs_dir/secret",
                         "/in/esc_rel_dir/secret_dir" } do
      r:deny("fs.remove", { path = p }, "EPERM")
      r:deny("fs.remove", { path = p, recursive = true }, "EPERM")
      r:deny("fs.rename", { from = p, to = "/out/stolen" }, "EPERM")
      r:deny("fs.rename", { from = p, to = "/in/stolen" }, "EPERM")
      r:deny("fs.link", { from = p, to = "/out/hard" }, "EPERM")
    end
    for _, p in ipairs { "/in/../outside/new", "/in/esc_rel_dir/new", "/in/esc_abs_dir/new" } do
      r:deny("fs.write", { path = p, data = W }, "EPERM")
      r:deny("fs.mkdir", { path = p }, "EPERM")
      r:deny("fs.mkdir", { path = p .. "/a/b", parents = true }, "EPERM")
      r:deny("fs.symlink", { target = "x", path = p }, "EPERM")
      r:deny("fs.rename", { from = "/out/file.txt", to = p }, "EPERM")
      r:deny("fs.link", { from = "/out/file.txt", to = p }, "EPERM")
      r:deny("fs.open", { path = p, mode = "w" }, "EPERM")
      r:deny("fs.open", { path = p, mode = "r", create = true }, "EPERM")
    end
    -- An absolute symlink target is an escape before it is a write to a read-only mount.
    r:deny("fs.symlink", { target = "/etc/passwd", path = "/in/abs" }, "EPERM")
    r:deny("fs.symlink", { target = env:path("in/file.txt"), path = "/in/abs" }, "EPERM")
    -- The link itself is inside: removing or renaming it is a write to a read-only mount.
    r:deny("fs.remove", { path = "/in/esc_rel" }, "EROFS")
    r:deny("fs.remove", { path = "/in/esc_abs_dir" }, "EROFS")
    r:deny("fs.rename", { from = "/in/esc_rel", to = "/in/renamed" }, "EROFS")
  end)
end)

describe("read-only mounts", function()
  case("a read-only mount refuses every mutation with EROFS and changes nothing", function(env)
    local r = env:std()
    local calls = {
      { "fs.write", { path = "/in/file.txt", data = W } },
      { "fs.write", { path = "/in/file.txt", data = W, offset = 0 } },
      { "fs.write", { path = "/in/file.txt", data = W, append = true } },
      { "fs.write", { path = "/in/file.txt", data = W, truncate = false } },
      { "fs.write", { path = "/in/file.txt", data = "" } },
      { "fs.write", { path = "/in/file.txt", data = "", offset = 0, truncate = true } },
      { "fs.write", { path = "/in/file.txt", data = W, create = false } },
      { "fs.write", { path = "/in/new.txt", data = W } },
      { "fs.write", { path = "/in/new.txt", data = W, exclusive = true } },
      { "fs.write", { path = "/in/dir/new.txt", data = W } },
      { "fs.write", { path = "/in/link_rel_in", data = W } },
      { "fs.write", { path = "/in/link_dir/sub.txt", data = W } },
      { "fs.write", { path = "/in/dir/up", data = W } },
      { "fs.truncate", { path = "/in/file.txt", length = 0 } },
      { "fs.truncate", { path = "/in/file.txt", length = 6 } },
      { "fs.truncate", { path = "/in/file.txt", length = 1000 } },
      { "fs.truncate", { path = "/in/link_rel_in", length = 0 } },
      { "fs.open", { path = "/in/file.txt", mode = "w" } },
      { "fs.open", { path = "/in/file.txt", mode = "a" } },
      { "fs.open", { path = "/in/file.txt", mode = "rw" } },
      { "fs.open", { path = "/in/file.txt", mode = "rw", truncate = true } },
      { "fs.open", { path = "/in/file.txt", mode = "w", truncate = false, create = false } },
      { "fs.open", { path = "/in/link_rel_in", mode = "w" } },
      { "fs.open", { path = "/in/new.txt", mode = "w" } },
      { "fs.open", { path = "/in/new.txt", mode = "r", create = true } },
      { "fs.open", { path = "/in/new.txt", mode = "a", create = true, exclusive = true } },
      { "fs.mkdir", { path = "/in/newdir" } },
      { "fs.mkdir", { path = "/in/a/b/c", parents = true } },
      { "fs.mkdir", { path = "/in/dir/new", mode = 448 } },
      { "fs.remove", { path = "/in/file.txt" } },
      { "fs.remove", { path = "/in/empty" } },
      { "fs.remove", { path = "/in/dir", recursive = true } },
      { "fs.remove", { path = "/in/dir/deeper" } },
      { "fs.remove", { path = "/in/link_rel_in" } },
      { "fs.remove", { path = "/in/fifo" } },
      { "fs.rename", { from = "/in/file.txt", to = "/in/moved.txt" } },
      { "fs.rename", { from = "/in/dir", to = "/in/moved" } },
      { "fs.rename", { from = "/in/file.txt", to = "/in/empty" } },
      { "fs.rename", { from = "/in/file.txt", to = "/in/file.txt" } },
      { "fs.link", { from = "/in/file.txt", to = "/in/hard" } },
      { "fs.symlink", { target = "file.txt", path = "/in/sl" } },
      { "fs.chmod", { path = "/in/file.txt", mode = 511 } },
      { "fs.chmod", { path = "/in/file.txt", mode = 420 } },
      { "fs.chmod", { path = "/in/dir", mode = 511 } },
      { "fs.chmod", { path = "/in/link_rel_in", mode = 511 } },
      { "fs.chmod", { path = "/in", mode = 511 } },
      { "fs.utimes", { path = "/in/file.txt", mtime_ns = 0 } },
      { "fs.utimes", { path = "/in/file.txt", atime_ns = 0 } },
      { "fs.utimes", { path = "/in/file.txt", atime_ns = 0, mtime_ns = 0 } },
      { "fs.utimes", { path = "/in", mtime_ns = 0 } },
    }
    for _, c in ipairs(calls) do r:deny(c[1], c[2], "EROFS") end
    -- Where the OS would say EEXIST or ENOENT first, either answer is fine; nothing changes.
    r:deny("fs.mkdir", { path = "/in/dir" }, { "EROFS", "EEXIST" })
    r:deny("fs.remove", { path = "/in/nope" }, { "EROFS", "ENOENT" })
    -- "r" with truncate never truncates.
    r:deny("fs.open", { path = "/in/file.txt", mode = "r", truncate = true }, { "EINVAL", "EROFS" })
    -- A read handle cannot write.
    local h = r:handle { path = "/in/file.txt", mode = "r" }
    if h then
      r:deny("io.write", { handle = h, data = W }, { "EBADF", "EROFS" })
      r:deny("io.write", { handle = h, data = W, offset = 0 }, { "EBADF", "EROFS" })
      r:ok("io.close", { handle = h })
    end
    r:expect_read("fs.read", { path = "/in/file.txt" }, "hello\n", true)
  end)

  case("nothing read-only is linked or renamed into a writable mount, nothing is renamed into one", function(env)
    local r = env:std()
    r:deny("fs.link", { from = "/in/file.txt", to = "/out/hard" }, "EROFS")
    r:deny("fs.link", { from = "/in/dir/sub.txt", to = "/out/dir/hard" }, "EROFS")
    r:deny("fs.link", { from = "/in/link_rel_in", to = "/out/hard" }, "EROFS")
    r:deny("fs.link", { from = "/in/empty", to = "/out2/hard" }, "EROFS")
    r:deny("fs.link", { from = "/out/file.txt", to = "/in/hard" }, "EROFS")
    r:deny("fs.rename", { from = "/in/file.txt", to = "/out/moved" }, "EROFS")
    r:deny("fs.rename", { from = "/in/dir", to = "/out/moveddir" }, "EROFS")
    r:deny("fs.rename", { from = "/in/file.txt", to = "/out/file.txt" }, "EROFS")
    r:deny("fs.rename", { from = "/in/file.txt", to = "/out/moved", overwrite = false }, "EROFS")
    r:deny("fs.rename", { from = "/out/file.txt", to = "/in/moved" }, "EROFS")
    r:deny("fs.rename", { from = "/out/file.txt", to = "/in/file.txt" }, "EROFS")
    r:deny("fs.rename", { from = "/out/dir", to = "/in/dir2" }, "EROFS")
    -- A symlink in the writable mount into the read-only mount's host directory is an escape.
    r:deny("fs.write", { path = "/out/to_in", data = W }, "EPERM")
    r:deny("fs.truncate", { path = "/out/to_in", length = 0 }, "EPERM")
    r:deny("fs.chmod", { path = "/out/to_in", mode = 511 }, "EPERM")
    r:deny("fs.utimes", { path = "/out/to_in", mtime_ns = 0 }, "EPERM")
    r:deny("fs.open", { path = "/out/to_in", mode = "rw" }, "EPERM")
    r:deny("fs.read", { path = "/out/to_in" }, "EPERM")
    -- A copy by read and write is a copy: writing it leaves the original alone.
    local bytes = r:read("/in/file.txt")
    r:ok("fs.write", { path = "/out/copy", data = b64(bytes) })
    r:ok("fs.write", { path = "/out/copy", data = W })
    env:check(hc.read(env:path("in/file.txt")) == "hello\n", "SECURITY", "writing a copy changed the original")
  end)
end)

describe("symlinks", function()
  case("reads never follow a symlink out of the mount, relative or absolute", function(env)
    local r = env:std()
    for _, m in ipairs { "in", "out" } do
      local files = { "esc_rel", "esc_abs", "esc_rel_dir/secret", "esc_abs_dir/secret", "esc_rel_dir/secret_dir/inner",
                      "esc_abs_dir/secret_dir/inner", "esc_rel_dir/./secret", "esc_rel_dir/secret_dir/../secret" }
      if m == "in" then
        files[#files + 1] = "esc_abs_inside"
        files[#files + 1] = "chain/e1"
      else
        files[#files + 1] = "tree/sec"
        files[#files + 1] = "tree/b/lnk/secret"
        files[#files + 1] = "tree/abs/secret"
        files[#files + 1] = "dang_esc"
        files[#files + 1] = "dang_abs"
      end
      for _, f in ipairs(files) do
        local p = "/" .. m .. "/" .. f
        r:deny("fs.read", { path = p }, "EPERM")
        r:deny("fs.read", { path = p, offset = 3, length = 4 }, "EPERM")
        r:deny("fs.read", { path = p, encoding = "utf8" }, "EPERM")
        r:deny("fs.stat", { path = p }, "EPERM")
        r:deny("fs.open", { path = p, mode = "r" }, "EPERM")
      end
      for _, d in ipairs { "esc_rel_dir", "esc_abs_dir", "esc_rel_dir/secret_dir", "esc_abs_dir/." } do
        local p = "/" .. m .. "/" .. d
        r:deny("fs.list", { path = p }, "EPERM")
        r:deny("fs.opendir", { path = p }, "EPERM")
        r:deny("fs.stat", { path = p }, "EPERM")
      end
      -- The link itself may be described: lstat never reaches its target.
      local st = r:try("fs.stat", { path = "/" .. m .. "/esc_rel", follow = false })
      if st then
        env:check(st.type == "symlink" and st.size == #"../outside/secret", nil,
                  "fs.stat /%s/esc_rel follow=false: expected the link itself, got %s", m, enc(st))
      end
      -- follow = false applies to the last component only.
      r:deny("fs.stat", { path = "/" .. m .. "/esc_rel_dir/secret", follow = false }, "EPERM")
    end
  end)

  case("writes never follow a symlink out of a writable mount", function(env)
    local r = env:std()
    for _, f in ipairs { "esc_rel", "esc_abs", "esc_rel_dir/secret", "esc_abs_dir/secret", "tree/sec",
                         "tree/b/lnk/secret", "tree/abs/secret", "dang_esc", "dang_abs", "esc_rel_dir/new",
                         "esc_abs_dir/new", "tree/b/lnk/new" } do
      local p = "/out/" .. f
      r:deny("fs.write", { path = p, data = W }, "EPERM")
      r:deny("fs.write", { path = p, data = W, append = true }, "EPERM")
      r:deny("fs.write", { path = p, data = W, offset = 0 }, "EPERM")
      r:deny("fs.write", { path = p, data = W, create = false }, "EPERM")
      r:deny("fs.open", { path = p, mode = "w" }, "EPERM")
      r:deny("fs.open", { path = p, mode = "a" }, "EPERM")
      r:deny("fs.open", { path = p, mode = "rw" }, "EPERM")
      r:deny("fs.open", { path = p, mode = "rw", create = true }, "EPERM")
      r:deny("fs.truncate", { path = p, length = 0 }, "EPERM")
      r:deny("fs.chmod", { path = p, mode = 511 }, "EPERM")
      r:deny("fs.utimes", { path = p, mtime_ns = 0, atime_ns = 0 }, "EPERM")
    end
    -- O_EXCL never follows: EEXIST (the link exists) or EPERM.
    r:deny("fs.write", { path = "/out/dang_esc", data = W, exclusive = true }, { "EEXIST", "EPERM" })
    r:deny("fs.open", { path = "/out/dang_abs", mode = "w", exclusive = true }, { "EEXIST", "EPERM" })
    for _, d in ipairs { "esc_rel_dir", "esc_abs_dir", "tree/b/lnk", "tree/abs" } do
      local p = "/out/" .. d
      r:deny("fs.mkdir", { path = p .. "/newdir" }, "EPERM")
      r:deny("fs.mkdir", { path = p .. "/a/b", parents = true }, "EPERM")
      r:deny("fs.remove", { path = p .. "/secret" }, "EPERM")
      r:deny("fs.remove", { path = p .. "/secret_dir", recursive = true }, "EPERM")
      r:deny("fs.remove", { path = p .. "/secret_dir/inner" }, "EPERM")
      r:deny("fs.rename", { from = p .. "/secret", to = "/out/stolen" }, "EPERM")
      r:deny("fs.rename", { from = p .. "/secret_dir", to = "/out/stolen" }, "EPERM")
      r:deny("fs.rename", { from = "/out/file.txt", to = p .. "/planted" }, "EPERM")
      r:deny("fs.rename", { from = "/out/file.txt", to = p .. "/secret" }, "EPERM")
      r:deny("fs.link", { from = p .. "/secret", to = "/out/hard" }, "EPERM")
      r:deny("fs.link", { from = "/out/file.txt", to = p .. "/hard" }, "EPERM")
      r:deny("fs.symlink", { target = "x", path = p .. "/sl" }, "EPERM")
      r:deny("fs.readlink", { path = p .. "/x" }, "EPERM")
      r:deny("fs.chmod", { path = p, mode = 511 }, "EPERM")
      r:deny("fs.chmod", { path = p .. "/secret", mode = 511 }, "EPERM")
      r:deny("fs.utimes", { path = p, mtime_ns = 0 }, "EPERM")
    end
  end)

  case("a trailing slash after a symlink never follows it out", function(env)
    local r = env:std()
    for _, m in ipairs { "in", "out" } do
      for _, d in ipairs { "esc_rel_dir/", "esc_abs_dir/", "esc_rel_dir//", "esc_abs_dir/.", "esc_rel_dir/./" } do
        local p = "/" .. m .. "/" .. d
        r:deny("fs.stat", { path = p }, "EPERM")
        r:deny("fs.stat", { path = p, follow = false }, "EPERM")
        r:deny("fs.list", { path = p }, "EPERM")
        r:deny("fs.opendir", { path = p }, "EPERM")
        r:deny("fs.open", { path = p, mode = "r" }, "EPERM")
        r:deny("fs.chmod", { path = p, mode = 511 }, "EPERM")
        r:deny("fs.utimes", { path = p, mtime_ns = 0 }, "EPERM")
        r:deny("fs.truncate", { path = p, length = 0 }, "EPERM")
        r:deny("fs.readlink", { path = p }, { "EPERM", "EINVAL" })
      end
      for _, f in ipairs { "esc_rel/", "esc_abs/" } do
        local p = "/" .. m .. "/" .. f
        r:deny("fs.read", { path = p }, { "EPERM", "ENOTDIR" })
        r:deny("fs.stat", { path = p }, { "EPERM", "ENOTDIR" })
        r:deny("fs.chmod", { path = p, mode = 511 }, { "EPERM", "ENOTDIR" })
        r:deny("fs.truncate", { path = p, length = 0 }, { "EPERM", "ENOTDIR" })
      end
    end
    -- Operations on the name itself: refused one way or another, and nothing changes.
    for _, d in ipairs { "esc_rel_dir/", "esc_abs_dir/" } do
      local p = "/out/" .. d
      r:deny("fs.remove", { path = p }, { "ENOTDIR", "EPERM", "ELOOP" })
      r:deny("fs.remove", { path = p, recursive = true }, { "ENOTDIR", "EPERM", "ELOOP" })
      r:deny("fs.rename", { from = p, to = "/out/moved" }, { "ENOTDIR", "EPERM" })
      r:deny("fs.rename", { from = "/out/dir", to = p }, { "ENOTDIR", "EPERM", "EISDIR", "EEXIST" })
      r:deny("fs.rename", { from = "/out/file.txt", to = p }, { "ENOTDIR", "EPERM", "EISDIR" })
      r:deny("fs.link", { from = p, to = "/out/hl" }, { "ENOTDIR", "EPERM", "os:EPERM" })
      r:deny("fs.link", { from = "/out/file.txt", to = p }, { "ENOTDIR", "EPERM", "EEXIST" })
      r:deny("fs.symlink", { target = "x", path = p }, { "EEXIST", "EPERM", "ENOTDIR" })
      r:deny("fs.mkdir", { path = p }, { "EEXIST", "EPERM" })
      r:deny("fs.write", { path = p, data = W }, { "EPERM", "EISDIR" })
    end
    -- Dangling symlinks that would land outside: nothing is ever created there.
    for _, l in ipairs { "dang_esc", "dang_abs" } do
      local p = "/out/" .. l
      r:deny("fs.mkdir", { path = p .. "/" }, { "EEXIST", "EPERM" })
      r:deny("fs.mkdir", { path = p }, { "EEXIST", "EPERM" })
      r:deny("fs.mkdir", { path = p .. "/x", parents = true }, { "EEXIST", "EPERM", "ENOTDIR" })
      r:deny("fs.mkdir", { path = p .. "/", parents = true }, { "EEXIST", "EPERM", "ENOTDIR" })
      r:deny("fs.write", { path = p .. "/", data = W }, { "EPERM", "EISDIR", "ENOTDIR", "ENOENT" })
      r:deny("fs.open", { path = p .. "/", mode = "w" }, { "EPERM", "EISDIR", "ENOTDIR", "ENOENT" })
      r:deny("fs.symlink", { target = "x", path = p .. "/" }, { "EEXIST", "EPERM", "ENOTDIR", "ENOENT" })
      r:deny("fs.rename", { from = "/out/dir", to = p .. "/" }, { "ENOTDIR", "EPERM", "ENOENT", "EEXIST" })
      r:deny("fs.link", { from = "/out/file.txt", to = p .. "/" }, { "ENOTDIR", "EPERM", "EEXIST", "ENOENT" })
    end
    -- Inside the mount a trailing slash after a symlink to a directory follows it.
    local res = r:try("fs.list", { path = "/in/link_dir/" })
    if res then
      env:check(same_list(names_of(res.entries), { "deeper", "sub.txt", "up", "up2" }), nil,
                "fs.list /in/link_dir/: got %s", enc(names_of(res.entries)))
    end
    local st = r:try("fs.stat", { path = "/in/link_dir/", follow = false })
    if st then env:check(st.type == "dir", nil, "fs.stat /in/link_dir/ follow=false: type %s, expected dir",
        tostring(st.type)) end
  end)

  case("symlink chains of 40 resolve, 41 and loops are ELOOP", function(env)
    sh("perl " .. hc.q(FIXTURES .. "/tree.pl") .. " " .. hc.q(env.root) .. " chains")
    local r = env:std()
    r:expect_read("fs.read", { path = "/in/chain/l1" }, "hello\n", true)
    r:expect_read("fs.read", { path = "/in/chain/l2" }, "hello\n", true)
    r:deny("fs.read", { path = "/in/chain/m1" }, "ELOOP")
    r:deny("fs.stat", { path = "/in/chain/m1" }, "ELOOP")
    r:expect_read("fs.read", { path = "/in/chain/m2" }, "hello\n", true)
    for _, p in ipairs { "/in/loop_a", "/in/loop_b", "/in/self", "/in/loop_a/x", "/in/self/", "/in/self/file.txt" } do
      r:deny("fs.read", { path = p }, "ELOOP")
      r:deny("fs.stat", { path = p }, "ELOOP")
      r:deny("fs.list", { path = p }, "ELOOP")
    end
    r:deny("fs.read", { path = "/in/chain/e1" }, "EPERM")
    for _, p in ipairs { "/in/loop_a", "/in/self", "/in/chain/m1" } do
      local st = r:try("fs.stat", { path = p, follow = false })
      if st then env:check(st.type == "symlink", nil, "fs.stat %s follow=false: type %s", p, tostring(st.type)) end
    end
    local res = r:try("fs.list", { path = "/in/chain" })
    if res then
      local n, bad = 0, nil
      for _, e in ipairs(res.entries or {}) do
        n = n + 1
        if e.type ~= "symlink" then bad = e.name .. " is " .. tostring(e.type) end
      end
      env:check(n == 83 and not bad, nil, "fs.list /in/chain: %d entries (expected 83)%s", n,
          bad and (", " .. bad) or "")
    end
    -- Loops made by the guest in a writable mount.
    r:ok("fs.symlink", { target = "sl2", path = "/out/sl1" })
    r:ok("fs.symlink", { target = "sl1", path = "/out/sl2" })
    r:deny("fs.write", { path = "/out/sl1", data = W }, "ELOOP")
    r:deny("fs.mkdir", { path = "/out/sl1/x", parents = true }, { "ELOOP", "EEXIST", "ENOTDIR" })
    r:deny("fs.chmod", { path = "/out/sl1", mode = 511 }, "ELOOP")
  end)

  case("links, symlinks and readlink never reach or reveal the outside", function(env)
    local r = env:std()
    -- fs.link of a symlink links the symlink itself (or is refused): never the outside's inode.
    local out_before = snapshot(env:path("outside"))
    for i, p in ipairs { "/out/esc_rel", "/out/esc_abs", "/out/tree/sec", "/out/dang_esc" } do
      local to = "/out/hard" .. i
      local v = r:call("fs.link", { from = p, to = to })
      if v.error then
        env:check(matches(v.error, "EPERM"), nil, "fs.link %s: expected a result or -32001 EPERM, got %s", p,
            enc(v.error))
      else
        r:deny("fs.read", { path = to }, "EPERM")
        r:deny("fs.write", { path = to, data = W }, "EPERM")
        env:check(lfs.symlinkattributes(env:path("out/hard" .. i), "mode") == "link", "SECURITY",
                  "fs.link %s -> %s: the new name is not the symlink: the link followed it out", p, to)
      end
    end
    local changes = diff(out_before, snapshot(env:path("outside")))
    env:check(#changes == 0, "SECURITY", "fs.link of symlinks changed the outside:\n      %s",
              table.concat(changes, "\n      "))
    -- Absolute symlinks cannot be created.
    for _, t in ipairs { "/etc/passwd", "/", env:path("outside/secret"), env:path("out/file.txt"), "//etc",
                         "/../etc", "/out/file.txt" } do
      r:deny("fs.symlink", { target = t, path = "/out/abs_new" }, "EPERM")
    end
    -- Relative ones can; following one that leaves the mount is EPERM.
    local v = r:call("fs.symlink", { target = "../outside/secret", path = "/out/rel_new" })
    if v.error then
      env:check(matches(v.error, "EPERM"), nil, "fs.symlink ../outside/secret: expected a result or EPERM, got %s",
                enc(v.error))
    else
      r:deny("fs.read", { path = "/out/rel_new" }, "EPERM")
      r:deny("fs.write", { path = "/out/rel_new", data = W }, "EPERM")
      r:deny("fs.chmod", { path = "/out/rel_new", mode = 511 }, "EPERM")
    end
    r:ok("fs.symlink", { target = "dir/sub.txt", path = "/out/ok_link" })
    r:expect_read("fs.read", { path = "/out/ok_link" }, "sub\n", true)
    local res = r:try("fs.readlink", { path = "/out/ok_link" })
    if res then env:check(res.target == "dir/sub.txt", nil, "fs.readlink /out/ok_link: %s", enc(res)) end
    r:deny("fs.symlink", { target = "x", path = "/out/ok_link" }, "EEXIST")
    r:deny("fs.symlink", { target = "file.txt\0../../outside/secret", path = "/out/nul_link" }, "EINVAL")
    r:deny("fs.symlink", { target = "", path = "/out/empty_link" }, "ENOENT")
    r:deny("fs.symlink", { target = ("a/"):rep(2100), path = "/out/long_link" }, "ENAMETOOLONG")
    -- fs.readlink never reveals a host path.
    for _, p in ipairs { "/out/esc_abs", "/out/esc_abs_dir", "/in/esc_abs", "/in/esc_abs_dir", "/in/esc_abs_inside",
                         "/out/dang_abs", "/out/tree/abs" } do
      r:deny("fs.readlink", { path = p }, "EPERM")
    end
    res = r:try("fs.readlink", { path = "/out/esc_rel" })
    if res then env:check(res.target == "../outside/secret", nil, "fs.readlink /out/esc_rel: %s", enc(res)) end
    res = r:try("fs.readlink", { path = "/in/link_rel_in" })
    if res then env:check(res.target == "file.txt", nil, "fs.readlink /in/link_rel_in: %s", enc(res)) end
    r:deny("fs.readlink", { path = "/in/file.txt" }, "EINVAL")
    r:deny("fs.readlink", { path = "/in/dir" }, "EINVAL")
    r:deny("fs.readlink", { path = "/in/nope" }, "ENOENT")
    r:deny("fs.readlink", { path = "/in/esc_rel_dir/secret" }, "EPERM")
    r:deny("fs.readlink", { path = "/in/esc_abs_dir/x" }, "EPERM")
  end)

  case("a recursive remove never follows a symlink out", function(env)
    local r = env:std()
    local outside = env:path("outside")
    local before = snapshot(outside)
    -- deeper trees, with links at every level
    sh("cd " .. hc.q(env:path("out/tree")) .. " && mkdir -p d1/d2/d3 && ln -s ../../../../../outside d1/d2/d3/up" ..
       " && ln -s ../../../../outside/secret d1/d2/s && ln -s " .. hc.q(outside) .. " d1/abs && : > d1/d2/d3/f")
    r:ok("fs.remove", { path = "/out/tree", recursive = true })
    env:check(not hc.exists(env:path("out/tree")), nil, "fs.remove /out/tree recursive: still there")
    for _, p in ipairs { "/out/esc_rel_dir", "/out/esc_abs_dir", "/out/esc_rel", "/out/dang_esc" } do
      r:ok("fs.remove", { path = p, recursive = true })
    end
    r:ok("fs.remove", { path = "/out/esc_abs" })
    for _, f in ipairs { "esc_rel_dir", "esc_abs_dir", "esc_rel", "esc_abs", "dang_esc" } do
      env:check(lfs.symlinkattributes(env:path("out/" .. f)) == nil, nil, "fs.remove /out/%s: still there", f)
    end
    -- deeper than any fixed recursion bound a remover might have, a link to the outside at the bottom
    local deep = "out/deep/" .. ("d/"):rep(300)
    r:try("fs.mkdir", { path = "/" .. deep, parents = true })
    sh("mkdir -p " .. hc.q(env:path(deep)) .. " && ln -s " .. ("../"):rep(302) .. "outside " ..
       hc.q(env:path(deep .. "up")))
    r:try("fs.remove", { path = "/out/deep", recursive = true })
    env:check(not hc.exists(env:path("out/deep")), nil, "fs.remove of a tree 300 deep: still there")
    r:ok("sys.ping", {})
    local changes = diff(before, snapshot(outside))
    env:check(#changes == 0, "SECURITY", "recursive removes changed the outside:\n      %s",
              table.concat(changes, "\n      "))
  end)
end)

-- The number of this process's fd open on `path`, or nil.
local function fd_of(path)
  for name in lfs.dir("/proc/self/fd") do
    if name:match("^%d+$") and lfs.symlinkattributes("/proc/self/fd/" .. name, "target") == path then
      return tonumber(name)
    end
  end
  return nil
end

local function abs_symlink(p)
  local t = lfs.symlinkattributes(p, "target")
  return t and t:sub(1, 1) == "/"
end

-- One call's answer from a list of response lines: id -> decoded.
local function by_id(text)
  local out = {}
  for _, line in ipairs(hc.lines(text)) do
    local ok, v = pcall(cjson.decode, line)
    if ok and type(v) == "table" and v.jsonrpc == "2.0" and type(v.id) == "number" then
      out[math.tointeger(v.id)] = v
    end
  end
  return out
end

local function request_line(id, method, params)
  return '{"jsonrpc":"2.0","id":' .. id .. ',"method":' .. jstr(method) .. ',"params":' .. enc(params) .. "}"
end

describe("special files", function()
  case("/proc magic links are never followed", function(env)
    local f = assert(io.open(env:path("outside/secret"), "rb"))
    finally(function() f:close() end)
    local fd = assert(fd_of(env:path("outside/secret")), "cannot find the fd of the open secret")
    local r = env:runtime { mounts = { ["/p"] = { "/proc/self", "ro" }, ["/in"] = { "in", "ro" } } }
    local st = r:try("fs.stat", { path = "/p/status" })
    if st then env:check(st.type == "file", nil, "fs.stat /p/status: type %s, expected file", tostring(st.type)) end
    local links = { "/p/fd/" .. fd, "/p/fd/" .. fd .. "/", "/p/root/etc/passwd",
        "/p/root" .. env:path("outside/secret"),
                    "/p/cwd/spec/fs_spec.lua", "/p/exe", "/p/cwd", "/p/root", "/p/root/", "/p/cwd/",
                    "/p/fd/" .. fd .. "/../secret_dir/inner" }
    for _, p in ipairs(links) do
      r:deny("fs.read", { path = p }, "EPERM")
      r:deny("fs.stat", { path = p }, "EPERM")
      r:deny("fs.open", { path = p, mode = "r" }, "EPERM")
    end
    for _, p in ipairs { "/p/root", "/p/cwd", "/p/root/", "/p/cwd/", "/p/root/tmp" } do
      r:deny("fs.list", { path = p }, "EPERM")
      r:deny("fs.opendir", { path = p }, "EPERM")
    end
    for _, p in ipairs { "/p/exe", "/p/cwd", "/p/root", "/p/fd/" .. fd } do
      r:deny("fs.readlink", { path = p }, "EPERM")
    end
    r:deny("fs.write", { path = "/p/fd/" .. fd, data = W }, "EPERM")
    r:deny("fs.truncate", { path = "/p/fd/" .. fd, length = 0 }, "EPERM")
    r:deny("fs.chmod", { path = "/p/fd/" .. fd, mode = 511 }, "EPERM")
    r:deny("fs.read", { path = "/p/../" .. fd }, "EPERM")
  end)

  case("character devices, and eof on what is not a regular file", function(env)
    local r = env:runtime { mounts = { ["/dev"] = { "/dev", "ro" }, ["/in"] = { "in", "ro" } } }
    r:expect_read("fs.read", { path = "/dev/zero", length = 10 }, ("\0"):rep(10), false)
    r:expect_read("fs.read", { path = "/dev/zero", offset = 1000, length = 3 }, ("\0"):rep(3), false)
    r:expect_read("fs.read", { path = "/dev/null" }, "", true)
    for _, p in ipairs { "/dev/null", "/dev/zero" } do
      local st = r:try("fs.stat", { path = p })
      if st then env:check(st.type == "char", nil, "fs.stat %s: type %s, expected char", p, tostring(st.type)) end
    end
    r:fail("fs.write", { path = "/dev/null", data = W }, "EROFS")
    r:fail("fs.read", { path = "/dev/zero", length = 16 * MiB + 1 }, "limit:size")
    local h = r:handle { path = "/dev/zero", mode = "r" }
    if h then
      r:expect_read("io.read", { handle = h, length = 5 }, ("\0"):rep(5), false)
      r:ok("io.close", { handle = h })
    end
    r:fail("fs.read", { path = "/dev/../etc/passwd" }, "EPERM")
    local res = r:try("fs.list", { path = "/dev" })
    if res then
      local t = type_map(res.entries)
      env:check(t.null == "char" and t.zero == "char", nil, "fs.list /dev: null is %s, zero is %s", tostring(t.null),
                tostring(t.zero))
    end
  end)

  case("FIFOs, sockets and standard streams never hang the runtime", function(env)
    local srv = env:server { mounts = { ["/in"] = { "in", "ro" }, ["/out"] = { "out", "rw" },
        ["/dev"] = { "/dev", "ro" } },
                             limits = { time_ms = 1000 } }
    local c = srv:caller(nil, 4)
    local OSERR = { result = true, [-32000] = true, [-32002] = true }
    for _, pt in ipairs { { "/in/fifo", "fifo" }, { "/in/sock", "socket" } } do
      local p, t = pt[1], pt[2]
      local st = c:try("fs.stat", { path = p })
      if st then env:check(st.type == t, nil, "fs.stat %s: type %s, expected %s", p, tostring(st.type), t) end
    end
    for _, p in ipairs { "/in/fifo", "/out/fifo" } do
      local v = c:any("fs.read", { path = p }, OSERR)
      if v.result then
        env:check(v.result.bytes_read == 0 and v.result.eof == true, nil,
                  "fs.read %s (no writer): expected 0 bytes and eof, got %s", p, enc(v.result))
      end
      c:any("fs.read", { path = p, length = 1, encoding = "utf8" }, OSERR)
    end
    c:any("fs.read", { path = "/in/sock" }, { [-32000] = true })
    c:any("fs.open", { path = "/in/sock", mode = "r" }, { [-32000] = true })
    local v, resp = c:any("fs.open", { path = "/in/fifo", mode = "r" }, OSERR)
    if v.result and raw_member(resp, "handle") then
      local h = raw(raw_member(resp, "handle"))
      c:any("io.read", { handle = h }, OSERR)
      c:ok("io.close", { handle = h })
    end
    c:any("fs.write", { path = "/out/fifo", data = W }, OSERR)
    c:any("fs.write", { path = "/out/fifo", data = W, append = true }, OSERR)
    c:any("fs.write", { path = "/out/fifo", data = W, offset = 0 }, OSERR)
    for _, mode in ipairs { "w", "a" } do
      local ov, oresp = c:any("fs.open", { path = "/out/fifo", mode = mode }, OSERR)
      if ov.result and raw_member(oresp, "handle") then c:ok("io.close", { handle = raw(raw_member(oresp,
          "handle")) }) end
    end
    c:any("fs.truncate", { path = "/out/fifo", length = 0 }, { [-32000] = true })
    c:fail("fs.write", { path = "/in/fifo", data = W }, "EROFS")
    -- The standard streams are absolute symlinks into /proc: never followed.
    if abs_symlink("/dev/stdin") then c:fail("fs.read", { path = "/dev/stdin" }, "EPERM") end
    if abs_symlink("/dev/fd") then
      c:fail("fs.read", { path = "/dev/fd/0" }, "EPERM")
      c:fail("fs.list", { path = "/dev/fd" }, "EPERM")
    end
    -- A FIFO opened rw: a read with nothing to read ends within limits.time_ms and never stalls
    -- another call.
    local ov, oresp = c:any("fs.open", { path = "/out/fifo", mode = "rw" }, OSERR)
    if ov.result and raw_member(oresp, "handle") then
      local h = raw(raw_member(oresp, "handle"))
      local wv = c:any("io.write", { handle = h, data = b64("x") }, OSERR)
      if wv.result then c:expect_read("io.read", { handle = h, length = 10 }, "x", false) end
      env.id = env.id + 2
      local rid, pid = env.id - 1, env.id
      c.conn:send_line(request_line(rid, "io.read", { handle = h, length = 10 }))
      c.conn:send_line('{"jsonrpc":"2.0","id":' .. pid .. ',"method":"sys.ping"}')
      local t0, got = hc.now(), {}
      while (not got[rid] or not got[pid]) and hc.now() - t0 < 4 do
        local line = c.conn:recv_line(4 - (hc.now() - t0))
        if not line then break end
        local ok, dv = pcall(cjson.decode, line)
        if ok and type(dv) == "table" and type(dv.id) == "number" then
          got[math.tointeger(dv.id)] = { v = dv, t = hc.now() - t0 }
        end
      end
      env:check(got[pid] and got[pid].t < 2, "SECURITY", "sys.ping behind an io.read of an empty FIFO: %s",
                got[pid] and string.format("answered after %.1f s",
                    got[pid].t) or "no answer within 4 s (the runtime hangs)")
      env:check(got[rid] ~= nil, "SECURITY",
                "io.read of an empty FIFO: no answer within 4 s with limits.time_ms = 1000 (the call hangs)")
      if got[rid] then
        local rv = got[rid].v
        env:check(rv.result or (rv.error and rv.error.code ~= -32603), nil,
                  "io.read of an empty FIFO: %s", enc(rv))
        c:note("io.read of an empty FIFO => " .. outcome_of(rv))
        if got[pid] then c:ok("io.close", { handle = h }) end
      end
    end
    if not env.failures[1] or not env.failures[#env.failures]:find("hangs") then c:ok("sys.ping", {}) end
  end)
end)

describe("path validation", function()
  case("a NUL byte anywhere in a path is EINVAL", function(env)
    local r = env:std()
    for _, p in ipairs { "/in/file.txt\0", "/in/file.txt\0/../../outside/secret", "/in\0/file.txt", "\0", "/in/\0",
                         "/in/dir\0/sub.txt", "/in/esc_rel\0", "/\0/in/file.txt" } do
      for _, m in ipairs { "fs.read", "fs.stat", "fs.list", "fs.opendir", "fs.readlink" } do
        r:deny(m, { path = p }, "EINVAL")
      end
      r:deny("fs.open", { path = p, mode = "r" }, "EINVAL")
    end
    for _, p in ipairs { "/out/new\0.txt", "/out/file.txt\0", "/out/file.txt\0/x", "/out/\0", "/out\0/x",
                         "/out/dir\0/../../outside/x", "/out/tree\0" } do
      r:deny("fs.write", { path = p, data = W }, "EINVAL")
      r:deny("fs.mkdir", { path = p }, "EINVAL")
      r:deny("fs.mkdir", { path = p, parents = true }, "EINVAL")
      r:deny("fs.remove", { path = p }, "EINVAL")
      r:deny("fs.remove", { path = p, recursive = true }, "EINVAL")
      r:deny("fs.truncate", { path = p, length = 0 }, "EINVAL")
      r:deny("fs.chmod", { path = p, mode = 511 }, "EINVAL")
      r:deny("fs.utimes", { path = p, mtime_ns = 0 }, "EINVAL")
      r:deny("fs.open", { path = p, mode = "w" }, "EINVAL")
      r:deny("fs.symlink", { target = "file.txt", path = p }, "EINVAL")
      r:deny("fs.rename", { from = "/out/file.txt", to = p }, "EINVAL")
      r:deny("fs.rename", { from = p, to = "/out/renamed" }, "EINVAL")
      r:deny("fs.link", { from = "/out/file.txt", to = p }, "EINVAL")
      r:deny("fs.link", { from = p, to = "/out/hl" }, "EINVAL")
    end
  end)

  case("what the JSON layer must not let through: invalid UTF-8, lone surrogates, duplicate keys", function(env)
    local r = env:std()
    local NO = { "-32700", "-32600", "-32602", "EINVAL", "ENOENT", "EILSEQ" }
    -- overlong "..", overlong "/", a lone surrogate escape, a raw surrogate, a raw 0xff
    for _, p in ipairs { '"/in/\192\174\192\174/outside/secret"', '"/in/..\192\175outside\192\175secret"',
                         '"/in/\\ud800/../../outside/secret"', '"/in/\237\160\128/x"', '"/in/\255"' } do
      r:deny("fs.read", { path = raw(p) }, NO)
      r:deny("fs.write", { path = raw(p:gsub("/in/", "/out/", 1)), data = W }, NO)
    end
    -- one key twice: never the second one's meaning
    local v = r:call("fs.read", raw('{"path":"/in/file.txt","path":"/in/../outside/secret"}'))
    env:check(v.error ~= nil, "SECURITY", "fs.read with the key path twice: a result: %s", enc(v.result))
    v = r:call("fs.write", raw('{"path":"/out/dup","data":"eA==","path":"/in/file.txt"}'))
    env:check(v.error ~= nil and hc.read(env:path("in/file.txt")) == "hello\n", "SECURITY",
              "fs.write with the key path twice: %s", enc(v.error or v.result))
  end)

  case("names over 255 bytes and paths over 4096 bytes are ENAMETOOLONG", function(env)
    local r = env:std()
    local n255, n256 = ("n"):rep(255), ("n"):rep(256)
    local e256 = ("\195\169"):rep(128)             -- 128 x "é": 256 bytes, 128 characters
    r:deny("fs.read", { path = "/in/" .. n255 }, "ENOENT")
    r:deny("fs.stat", { path = "/in/dir/" .. n255 }, "ENOENT")
    for _, p in ipairs { "/in/" .. n256, "/in/" .. n256 .. "/x", "/in/dir/" .. n256, "/in/" .. n256 .. "/../file.txt",
                         "/in/" .. e256 } do
      r:deny("fs.read", { path = p }, "ENAMETOOLONG")
      r:deny("fs.stat", { path = p }, "ENAMETOOLONG")
      r:deny("fs.list", { path = p }, "ENAMETOOLONG")
    end
    for _, p in ipairs { "/out/" .. n256, "/out/" .. e256, "/out/dir/" .. n256, "/out/" .. n256 .. "/x" } do
      r:deny("fs.write", { path = p, data = W }, "ENAMETOOLONG")
      r:deny("fs.mkdir", { path = p }, "ENAMETOOLONG")
      r:deny("fs.mkdir", { path = p, parents = true }, "ENAMETOOLONG")
      r:deny("fs.symlink", { target = "file.txt", path = p }, "ENAMETOOLONG")
      r:deny("fs.rename", { from = "/out/file.txt", to = p }, "ENAMETOOLONG")
      r:deny("fs.link", { from = "/out/file.txt", to = p }, "ENAMETOOLONG")
      r:deny("fs.open", { path = p, mode = "w" }, "ENAMETOOLONG")
    end
    -- 255 bytes is a name, in bytes, whatever the characters.
    local e255 = ("\195\169"):rep(127) .. "x"
    r:ok("fs.write", { path = "/out/" .. n255, data = b64("x") })
    r:ok("fs.write", { path = "/out/" .. e255, data = b64("y") })
    r:expect_read("fs.read", { path = "/out/" .. n255 }, "x", true)
    r:expect_read("fs.read", { path = "/out/" .. e255 }, "y", true)
    local res = r:try("fs.list", { path = "/out" })
    if res then
      local t = type_map(res.entries)
      env:check(t[n255] == "file" and t[e255] == "file", nil, "fs.list /out: the 255-byte names are missing")
    end
    -- 4096 bytes is a path; 4097 is not.
    local p4096 = "/in/" .. ("./"):rep(2042) .. "file.txt"
    local p4097 = "/in/" .. ("./"):rep(2042) .. "/file.txt"
    assert(#p4096 == 4096 and #p4097 == 4097)
    r:expect_read("fs.read", { path = p4096 }, "hello\n", true)
    r:deny("fs.read", { path = p4097 }, "ENAMETOOLONG")
    r:deny("fs.stat", { path = p4097 }, "ENAMETOOLONG")
    local w4096 = "/out/" .. ("./"):rep(2041) .. "new_a.txt"
    local w4097 = "/out/" .. ("./"):rep(2042) .. "new4.txt"
    assert(#w4096 == 4096 and #w4097 == 4097)
    r:deny("fs.write", { path = w4097, data = W }, "ENAMETOOLONG")
    r:deny("fs.mkdir", { path = w4097 }, "ENAMETOOLONG")
    r:deny("fs.symlink", { target = "file.txt", path = w4097 }, "ENAMETOOLONG")
    r:deny("fs.rename", { from = "/out/file.txt", to = w4097 }, "ENAMETOOLONG")
    r:deny("fs.link", { from = "/out/file.txt", to = w4097 }, "ENAMETOOLONG")
    r:deny("fs.rename", { from = w4097, to = "/out/x" }, "ENAMETOOLONG")
    r:ok("fs.write", { path = w4096, data = b64("z") })
    env:check(hc.read(env:path("out/new_a.txt")) == "z", nil, "fs.write of a 4096-byte path: out/new_a.txt missing")
    -- Far over the limits: refused quickly, whatever the components.
    r:deny("fs.read", { path = "/in/" .. ("a/"):rep(50000) }, "ENAMETOOLONG")
    r:deny("fs.read", { path = "/in/" .. ("x"):rep(100000) }, "ENAMETOOLONG")
    r:deny("fs.read", { path = "/in/" .. ("../"):rep(1400) .. "etc/passwd" }, { "ENAMETOOLONG", "EPERM" })
    r:deny("fs.write", { path = "/out/" .. ("../"):rep(1400) .. "x", data = W }, { "ENAMETOOLONG", "EPERM" })
  end)
end)

describe("lengths and offsets", function()
  case("negative lengths and offsets, and params of the wrong type, are -32602", function(env)
    local r = env:std()
    local h = r:handle { path = "/out/digits", mode = "rw" }
    local bad = {
      { "fs.read", { path = "/in/file.txt", offset = -1 } },
      { "fs.read", { path = "/in/file.txt", length = -1 } },
      { "fs.read", { path = "/in/file.txt", offset = math.mininteger } },
      { "fs.read", { path = "/in/file.txt", length = math.mininteger } },
      { "fs.read", { path = "/in/file.txt", offset = 1.5 } },
      { "fs.read", { path = "/in/file.txt", length = "10" } },
      { "fs.read", { path = "/in/file.txt", offset = raw("18446744073709551616") } },
      { "fs.read", { path = "/in/file.txt", length = raw("9223372036854775808") } },
      -- (1e400 is JSON but past any double: the strict codec refuses the frame with -32700,
      -- which spec/rpc_spec.lua covers for numbers out of range)
      { "fs.read", { path = 42 } },
      { "fs.read", { path = array { "/in/file.txt" } } },
      { "fs.read", {} },
      { "fs.read", { path = "/in/file.txt", encoding = "latin1" } },
      { "fs.write", { path = "/out/digits", data = W, offset = -1 } },
      { "fs.write", { path = "/out/digits" } },
      { "fs.write", { path = "/out/digits", data = 12 } },
      { "fs.write", { path = "/out/digits", data = W, append = "yes" } },
      { "fs.truncate", { path = "/out/digits", length = -1 } },
      { "fs.truncate", { path = "/out/digits" } },
      { "fs.chmod", { path = "/out/digits", mode = 512 } },
      { "fs.chmod", { path = "/out/digits", mode = 2541 } },
      { "fs.chmod", { path = "/out/digits", mode = -1 } },
      { "fs.chmod", { path = "/out/digits", mode = "0644" } },
      { "fs.mkdir", { path = "/out/m", mode = 1000 } },
      { "fs.open", { path = "/out/digits", mode = "x" } },
      { "fs.open", { path = "/out/digits", mode = "r+" } },
      { "fs.open", { path = "/out/digits" } },
      { "fs.utimes", { path = "/out/digits", mtime_ns = "now" } },
      { "fs.stat", { path = "/in/file.txt", follow = "no" } },
      { "fs.rename", { from = "/out/digits" } },
      { "fs.list", { path = "/in", limit = -1 } },
      { "fs.list", { path = "/in", cursor = array() } },
      { "io.read", { handle = h or 0, length = -1 } },
      { "io.read", { handle = h or 0, offset = -1 } },
      { "io.write", { handle = h or 0, data = W, offset = -1 } },
      { "io.seek", { handle = h or 0, offset = 0, whence = "middle" } },
      { "io.seek", { handle = h or 0, whence = "set" } },
      { "io.read", { handle = true } },
      { "io.read", { handle = {} } },
      { "io.read", { handle = 1.5 } },
      { "io.read", {} },
      { "fs.readdir", { handle = array() } },
    }
    for _, c in ipairs(bad) do r:deny(c[1], c[2], "-32602") end
    -- `data` that is not standard padded base64: refused before anything is written.
    r:deny("fs.write", { path = "/out/digits", data = "!!!not base64!!!" }, { "-32602", "EINVAL" })
    r:deny("fs.write", { path = "/out/digits", data = "QQ" }, { "-32602", "EINVAL" })
    r:deny("fs.write", { path = "/out/digits", data = "QQ==QQ==" }, { "-32602", "EINVAL" })
    r:deny("fs.write", { path = "/out/new.bin", data = "Q===" }, { "-32602", "EINVAL" })
    if h then
      r:deny("io.write", { handle = h, data = "%%%%" }, { "-32602", "EINVAL" })
      r:ok("io.close", { handle = h })
    end
  end)

  case("huge lengths and offsets: -32002 size or EINVAL, never a huge allocation or a huge file", function(env)
    local r = env:std()
    for _, len in ipairs { 16 * MiB + 1, 1 << 40, 1 << 62, INT64_MAX } do
      r:fail("fs.read", { path = "/in/file.txt", length = len }, "limit:size")
    end
    r:expect_read("fs.read", { path = "/in/file.txt", length = 16 * MiB }, "hello\n", true)
    for _, off in ipairs { 1 << 40, 1 << 62, INT64_MAX } do
      local v = r:call("fs.read", { path = "/in/file.txt", offset = off, length = 1 })
      if v.error then
        env:check(matches(v.error, "EINVAL"), nil, "fs.read offset %d: %s", off, enc(v.error))
      else
        env:check(v.result.bytes_read == 0 and v.result.eof == true, nil, "fs.read offset %d: %s", off, enc(v.result))
      end
    end
    local h = r:handle { path = "/in/file.txt", mode = "r" }
    if h then
      r:fail("io.read", { handle = h, length = 1 << 62 }, "limit:size")
      r:fail("io.read", { handle = h, length = INT64_MAX }, "limit:size")
      local v = r:call("io.read", { handle = h, offset = INT64_MAX, length = 1 })
      if v.error then env:check(matches(v.error, "EINVAL"), nil, "io.read offset max: %s", enc(v.error))
      else env:check(v.result.bytes_read == 0 and v.result.eof == true, nil, "io.read offset max: %s",
          enc(v.result)) end
      local sv, sresp = r:call("io.seek", { handle = h, offset = INT64_MAX, whence = "set" })
      if sv.error then env:check(matches(sv.error, "EINVAL"), nil, "io.seek to the largest offset: %s", enc(sv.error))
      else
        env:check(raw_member(sresp, "offset") == tostring(INT64_MAX), nil, "io.seek to %d: %s", INT64_MAX, sresp)
      end
      r:fail("io.seek", { handle = h, offset = math.mininteger, whence = "cur" }, { "EINVAL", "-32602" })
      r:fail("io.seek", { handle = h, offset = -1, whence = "set" }, { "EINVAL", "-32602" })
      r:ok("io.close", { handle = h })
    end
    local BIG = { "EFBIG", "EINVAL", "limit:size", "limit:quota" }
    r:deny("fs.write", { path = "/out/digits", data = b64("x"), offset = INT64_MAX }, BIG)
    r:deny("fs.write", { path = "/out/digits", data = b64("x"), offset = 1 << 62 }, BIG)
    r:deny("fs.truncate", { path = "/out/digits", length = INT64_MAX }, BIG)
    r:deny("fs.truncate", { path = "/out/digits", length = 1 << 62 }, BIG)
    local hw = r:handle { path = "/out/digits", mode = "rw" }
    if hw then
      r:deny("io.write", { handle = hw, data = b64("x"), offset = INT64_MAX }, BIG)
      r:ok("io.close", { handle = hw })
    end
  end)

  case("a huge length is never allocated up front (a child under ulimit -v 384 MiB)", function(env)
    local pf = env:policy_file { limits = { read_bytes = 1024 * MiB } }
    local lines = {
      request_line(1, "fs.read", { path = "/in/file.txt", length = 1024 * MiB }),
      request_line(2, "fs.read", { path = "/in/empty", length = 1024 * MiB }),
      request_line(3, "fs.read", { path = "/in/file.txt", length = 1024 * MiB, encoding = "utf8" }),
      request_line(4, "fs.list", { path = "/in", limit = 1000000000 }),
      request_line(5, "sys.ping", {}),
    }
    local args = { "serve", "--policy", pf, "--stdio" }
    for _, a in ipairs(env:resolver_args()) do args[#args + 1] = a end
    local res = hc.cli(args, { stdin = table.concat(lines, "\n") .. "\n", timeout = 20,
                               env = "sh -c 'ulimit -v 393216 && exec \"$0\" \"$@\"'" })
    local got = by_id(res.stdout)
    env:check(res.code == 0 and not res.timed_out, "SECURITY",
              "serve --stdio under ulimit -v 384 MiB exited %s%s: %s", tostring(res.code),
              res.timed_out and " (timed out)" or "", res.stderr:sub(1, 300))
    local function want(id, what, pred)
      local v = got[id]
      -- No answer (a crash, a hang) is a breach; a wrong answer is a wrong answer.
      env:check(v ~= nil and pred(v), v and "conformance" or "SECURITY", "%s: %s", what, v and enc(v) or "no answer")
      env.transcript[#env.transcript + 1] = what .. " => " .. outcome_of(v)
    end
    want(1, "fs.read of 6 bytes with length 1 GiB", function(v)
      return v.result and v.result.bytes_read == 6 and v.result.eof == true end)
    want(2, "fs.read of an empty file with length 1 GiB", function(v)
      return v.result and v.result.bytes_read == 0 and v.result.eof == true end)
    want(3, "fs.read utf8 with length 1 GiB", function(v) return v.result and v.result.data == "hello\n" end)
    want(4, "fs.list with limit 10^9", function(v)
      return v.result ~= nil or (v.error and (v.error.code == -32602 or matches(v.error, "EINVAL"))) end)
    want(5, "sys.ping after them", function(v) return v.result ~= nil end)
  end)

  case("eof: offset + bytes_read reaches the size for files; 0 bytes for anything else", function(env)
    local r = env:std()
    local reads = {
      { { path = "/in/file.txt" }, "hello\n", true },
      { { path = "/in/file.txt", length = 3 }, "hel", false },
      { { path = "/in/file.txt", offset = 3, length = 3 }, "lo\n", true },
      { { path = "/in/file.txt", offset = 3 }, "lo\n", true },
      { { path = "/in/file.txt", offset = 5, length = 100 }, "\n", true },
      { { path = "/in/file.txt", offset = 6 }, "", true },
      { { path = "/in/file.txt", offset = 100 }, "", true },
      { { path = "/in/file.txt", length = 0 }, "", false },
      { { path = "/in/file.txt", offset = 6, length = 0 }, "", true },
      { { path = "/in/file.txt", length = 6 }, "hello\n", true },
      { { path = "/in/file.txt", length = 5 }, "hello", false },
      { { path = "/in/empty" }, "", true },
      { { path = "/in/empty", length = 0 }, "", true },
      { { path = "/in/link_rel_in", offset = 1, length = 2 }, "el", false },
    }
    for _, c in ipairs(reads) do r:expect_read("fs.read", c[1], c[2], c[3]) end
    local h = r:handle { path = "/in/file.txt", mode = "r" }
    if h then
      r:expect_read("io.read", { handle = h, length = 4 }, "hell", false)
      r:expect_read("io.read", { handle = h, length = 4 }, "o\n", true)
      r:expect_read("io.read", { handle = h }, "", true)
      r:expect_read("io.read", { handle = h, offset = 1, length = 2 }, "el", false)
      r:expect_read("io.read", { handle = h, offset = 5, length = 10 }, "\n", true)
      r:expect_read("io.read", { handle = h, offset = 6 }, "", true)
      r:ok("io.close", { handle = h })
    end
    -- A file that grows between reads: eof is about the size after the read.
    host_write(env:path("out/grow"), "ab")
    r:expect_read("fs.read", { path = "/out/grow", length = 2 }, "ab", true)
    host_write(env:path("out/grow"), "abcd")
    r:expect_read("fs.read", { path = "/out/grow", length = 2 }, "ab", false)
  end)

  case("utf8 reads stop at the last whole character; bytes that are not UTF-8 are EILSEQ", function(env)
    local r = env:std()
    local a, e, euro, smile = "a", "\195\169", "\226\130\172", "\240\159\152\128"
    local reads = {
      { { length = 1 }, a, false }, { { length = 2 }, a, false }, { { length = 3 }, a .. e, false },
      { { length = 4 }, a .. e, false }, { { length = 5 }, a .. e, false }, { { length = 6 }, a .. e .. euro, false },
      { { length = 9 }, a .. e .. euro, false }, { { length = 10 }, a .. e .. euro .. smile, true },
      { {}, a .. e .. euro .. smile, true }, { { offset = 3, length = 3 }, euro, false },
      { { offset = 6 }, smile, true }, { { offset = 1, length = 1 }, "", false }, { { offset = 10 }, "", true },
    }
    for _, c in ipairs(reads) do
      local p = { path = "/in/utf8.txt", encoding = "utf8" }
      for k, v in pairs(c[1]) do p[k] = v end
      r:expect_read("fs.read", p, c[2], c[3], true)
    end
    r:expect_read("fs.read", { path = "/in/empty", encoding = "utf8" }, "", true, true)
    r:expect_read("fs.read", { path = "/in/cut.txt", encoding = "utf8", length = 3 }, "ab", false, true)
    for _, p in ipairs { "/in/bad.txt", "/in/cut.txt", "/in/surrogate.txt", "/in/overlong.txt" } do
      r:fail("fs.read", { path = p, encoding = "utf8" }, "EILSEQ")
    end
    r:fail("fs.read", { path = "/in/utf8.txt", encoding = "utf8", offset = 2 }, "EILSEQ")
    r:expect_read("fs.read", { path = "/in/bad.txt", encoding = "base64" }, "\255\254", true)
    -- utf8 writes carry the text itself.
    local text = "h\195\169llo " .. smile
    r:ok("fs.write", { path = "/out/u.txt", data = text, encoding = "utf8" })
    env:check(hc.read(env:path("out/u.txt")) == text, nil, "fs.write utf8: the file holds %q",
              tostring(hc.read(env:path("out/u.txt"))))
  end)
end)

describe("writing", function()
  case("fs.write replaces the contents unless given an offset or append", function(env)
    local r = env:std()
    local digits = env:path("out/digits")
    local function reset() host_write(digits, "0123456789") end
    local function expect(what, want)
      local got = hc.read(digits)
      env:check(got == want, nil, "%s: the file holds %q, expected %q", what, tostring(got), want)
    end
    local writes = {
      { { data = b64("ab") }, "ab" },
      { { data = b64("ab"), offset = 2 }, "01ab456789" },
      { { data = b64("ab"), offset = 0 }, "ab23456789" },
      { { data = b64("ab"), append = true }, "0123456789ab" },
      { { data = b64("ab"), truncate = false }, "ab23456789" },
      { { data = b64("ab"), offset = 12 }, "0123456789\0\0ab" },
      { { data = b64("ab"), offset = 2, truncate = true }, "\0\0ab" },
      { { data = b64("ab"), append = true, truncate = true }, "ab" },
      { { data = "" }, "" },
      { { data = "", append = true }, "0123456789" },
      { { data = b64("ab"), create = false }, "ab" },
    }
    for _, w in ipairs(writes) do
      reset()
      local p = { path = "/out/digits" }
      for k, v in pairs(w[1]) do p[k] = v end
      local res, resp = r:try("fs.write", p)
      if res then
        local n = #(unb64(p.data) or "")
        env:check(resp:find('"bytes_written":' .. n .. "[,}]") ~= nil, nil, "fs.write %s: %s", enc(w[1]), resp)
        expect("fs.write " .. enc(w[1]), w[2])
      end
    end
    reset()
    r:deny("fs.write", { path = "/out/digits", data = W, offset = 1, append = true }, "EINVAL")
    r:deny("fs.write", { path = "/out/missing", data = W, create = false }, "ENOENT")
    r:deny("fs.write", { path = "/out/digits", data = W, exclusive = true }, "EEXIST")
    r:deny("fs.write", { path = "/out/dir", data = W }, "EISDIR")
    r:deny("fs.write", { path = "/out/nodir/x", data = W }, "ENOENT")
    r:deny("fs.write", { path = "/out/digits/x", data = W }, "ENOTDIR")
    r:deny("fs.write", { path = "/out", data = W }, "EISDIR")
    r:ok("fs.write", { path = "/out/excl", data = b64("new"), exclusive = true })
    env:check(hc.read(env:path("out/excl")) == "new", nil, "fs.write exclusive: out/excl holds %q",
              tostring(hc.read(env:path("out/excl"))))
    r:ok("fs.write", { path = "/out2/x", data = b64("two") })
    env:check(hc.read(env:path("out2/x")) == "two", nil, "fs.write /out2/x did not land in out2")
    -- O_EXCL never follows a symlink.
    r:deny("fs.write", { path = "/out/dang_in", data = W, exclusive = true }, { "EEXIST", "EPERM" })
    r:deny("fs.write", { path = "/out/esc_rel", data = W, exclusive = true }, { "EEXIST", "EPERM" })
  end)

  case("fs.open modes r, w, a, rw; io.read, io.write, io.seek, io.sync, io.close", function(env)
    local r = env:std()
    local digits = env:path("out/digits")
    local function reset() host_write(digits, "0123456789") end
    local function expect(what, want)
      local got = hc.read(digits)
      env:check(got == want, nil, "%s: the file holds %q, expected %q", what, tostring(got), want)
    end
    -- w: creates and truncates at once.
    local hw = r:handle { path = "/out/digits", mode = "w" }
    expect("fs.open w (before any write)", "")
    if hw then
      local res, resp = r:try("io.write", { handle = hw, data = b64("xyz") })
      if res then env:check(resp:find('"bytes_written":3[,}]') ~= nil, nil, "io.write: %s", resp) end
      r:fail("io.read", { handle = hw }, "EBADF")
      r:ok("io.sync", { handle = hw })
      r:ok("io.close", { handle = hw })
    end
    expect("fs.open w + io.write xyz", "xyz")
    local hn = r:handle { path = "/out/new_w", mode = "w" }
    if hn then r:ok("io.close", { handle = hn }) end
    env:check(hc.read(env:path("out/new_w")) == "", nil, "fs.open w did not create the file")
    -- a: appends whatever the position; an offset is EINVAL.
    reset()
    local ha = r:handle { path = "/out/digits", mode = "a" }
    if ha then
      r:try("io.write", { handle = ha, data = b64("AB") })
      r:try("io.seek", { handle = ha, offset = 0, whence = "set" })
      r:try("io.write", { handle = ha, data = b64("CD") })
      r:deny("io.write", { handle = ha, data = b64("X"), offset = 0 }, "EINVAL")
      r:deny("io.write", { handle = ha, data = b64("X"), offset = 12 }, "EINVAL")
      r:fail("io.read", { handle = ha }, "EBADF")
      r:ok("io.close", { handle = ha })
    end
    expect("fs.open a + io.write AB, seek 0, CD", "0123456789ABCD")
    local hn2 = r:handle { path = "/out/new_a", mode = "a" }
    if hn2 then r:ok("io.close", { handle = hn2 }) end
    env:check(hc.exists(env:path("out/new_a")), nil, "fs.open a did not create the file")
    -- r and rw do not create.
    r:deny("fs.open", { path = "/out/missing", mode = "r" }, "ENOENT")
    r:deny("fs.open", { path = "/out/missing", mode = "rw" }, "ENOENT")
    -- rw: read, write in place, seek.
    reset()
    local h = r:handle { path = "/out/digits", mode = "rw" }
    expect("fs.open rw (no truncate)", "0123456789")
    if h then
      r:expect_read("io.read", { handle = h, length = 3 }, "012", false)
      r:try("io.write", { handle = h, data = b64("AB") })
      expect("rw: read 3, write AB", "012AB56789")
      local function seek(offset, whence, want)
        local res, resp = r:try("io.seek", { handle = h, offset = offset, whence = whence })
        if res then
          env:check(raw_member(resp, "offset") == tostring(want), nil, "io.seek %d %s: %s, expected %d", offset,
                    whence, resp, want)
        end
      end
      seek(0, "set", 0)
      r:expect_read("io.read", { handle = h, length = 2 }, "01", false)
      seek(-2, "end", 8)
      r:expect_read("io.read", { handle = h }, "89", true)
      seek(1, "cur", 11)
      r:expect_read("io.read", { handle = h }, "", true)
      r:fail("io.seek", { handle = h, offset = -100, whence = "cur" }, "EINVAL")
      r:try("io.write", { handle = h, data = b64("Z"), offset = 0 })
      expect("rw: io.write Z at offset 0", "Z12AB56789")
      r:ok("io.sync", { handle = h })
      r:ok("io.close", { handle = h })
    end
    -- r: no writes.
    local hr = r:handle { path = "/out/digits", mode = "r" }
    if hr then
      r:deny("io.write", { handle = hr, data = W }, "EBADF")
      r:ok("io.close", { handle = hr })
    end
    r:deny("fs.open", { path = "/out/digits", mode = "w", exclusive = true, create = true }, "EEXIST")
    r:deny("fs.open", { path = "/out/digits", mode = "w", exclusive = true, create = false }, "EINVAL")
    local he = r:handle { path = "/out/excl", mode = "w", exclusive = true }
    if he then r:ok("io.close", { handle = he }) end
    r:deny("fs.open", { path = "/out/dir", mode = "w" }, "EISDIR")
    r:deny("fs.open", { path = "/out/dir", mode = "rw" }, "EISDIR")
    r:deny("fs.open", { path = "/out/dir", mode = "a" }, "EISDIR")
    -- "r" on a directory: EISDIR at once, or a handle whose reads are EISDIR.
    local v, resp = r:call("fs.open", { path = "/out/dir", mode = "r" })
    if v.result and raw_member(resp, "handle") then
      local hd = raw(raw_member(resp, "handle"))
      r:fail("io.read", { handle = hd }, "EISDIR")
      r:ok("io.close", { handle = hd })
    elseif v.error then
      env:check(matches(v.error, "EISDIR"), nil, "fs.open /out/dir r: %s", enc(v.error))
    end
  end)
end)

-- Tokens that are not the live handle `live` (raw JSON): made up, and one off from it.
local function made_up_tokens(live)
  local list = { "0", "1", "2", "3", "-1", "4294967296", "9223372036854775807", '""', '"0"', '"1"', '"x"',
                 '"handle"', '"' .. ("A"):rep(64) .. '"' }
  if live then
    local s = live.text
    if s:sub(1, 1) == '"' then
      local inner = s:sub(2, -2)
      local last = inner:sub(-1)
      list[#list + 1] = '"' .. inner:sub(1, -2) .. (last == "0" and "1" or "0") .. '"'
      list[#list + 1] = '"' .. inner .. 'x"'
      list[#list + 1] = '"' .. inner:sub(2) .. '"'
      if inner:match("^%d+$") then list[#list + 1] = inner end
    else
      local n = math.tointeger(tonumber(s))
      if n then
        list[#list + 1] = tostring(n + 1)
        list[#list + 1] = tostring(n - 1)
        list[#list + 1] = '"' .. s .. '"'
      end
    end
  end
  local out = {}
  for _, t in ipairs(list) do if not live or t ~= live.text then out[#out + 1] = raw(t) end end
  return out
end

describe("handles", function()
  case("closed, made-up and another runtime's handles are EBADF", function(env)
    local ra = env:runtime { label = "A" }
    local rb = env:runtime { label = "B" }
    local hb = rb:handle { path = "/out/file.txt", mode = "r" }
    local ha = ra:handle { path = "/in/file.txt", mode = "r" }
    local hd = ra:handle({ path = "/in" }, "fs.opendir")
    assert(ha and hb and hd, "fs.open / fs.opendir failed")
    env:check(ha.text ~= hb.text, nil, "two runtimes' first handles are the same token %s: guessable", ha.text)
    rb:deny("io.read", { handle = ha }, "EBADF")
    rb:deny("io.write", { handle = ha, data = W }, "EBADF")
    rb:deny("io.seek", { handle = ha, offset = 0, whence = "set" }, "EBADF")
    rb:deny("io.close", { handle = ha }, "EBADF")
    rb:deny("fs.readdir", { handle = hd }, "EBADF")
    rb:deny("io.close", { handle = hd }, "EBADF")
    ra:expect_read("io.read", { handle = ha, length = 5 }, "hello", false)
    for _, t in ipairs(made_up_tokens(ha)) do
      if t.text ~= hd.text then
        ra:deny("io.read", { handle = t }, "EBADF")
        ra:deny("io.close", { handle = t }, "EBADF")
        ra:deny("fs.readdir", { handle = t }, "EBADF")
      end
    end
    -- One table for files and directories: each refuses the other's operations.
    ra:fail("fs.readdir", { handle = ha }, { "ENOTDIR", "EBADF" })
    ra:fail("io.read", { handle = hd }, { "EISDIR", "EBADF" })
    ra:fail("io.write", { handle = hd, data = W }, { "EISDIR", "EBADF" })
    -- Closed is closed.
    ra:ok("io.close", { handle = ha })
    ra:ok("io.close", { handle = hd })
    for _, h in ipairs { ha, hd } do
      ra:deny("io.read", { handle = h }, "EBADF")
      ra:deny("io.write", { handle = h, data = W }, "EBADF")
      ra:deny("io.seek", { handle = h, offset = 0, whence = "set" }, "EBADF")
      ra:deny("io.sync", { handle = h }, "EBADF")
      ra:deny("io.close", { handle = h }, "EBADF")
      ra:deny("fs.readdir", { handle = h }, "EBADF")
    end
    rb:expect_read("io.read", { handle = hb }, "hello\n", true)
    rb:ok("io.close", { handle = hb })
  end)

  case("handles and cursors are per session, unguessable, and closed when the session ends", function(env)
    host_write(env:path("out/a.txt"), "AAA")
    host_write(env:path("out/b.txt"), "BBB")
    local srv = env:server { limits = { handles = 4 } }
    local A, B = srv:caller("A"), srv:caller("B")
    local ha = A:handle { path = "/out/a.txt", mode = "r" }
    local hb = B:handle { path = "/out/b.txt", mode = "r" }
    assert(ha and hb, "fs.open failed")
    env:check(ha.text ~= hb.text, nil, "the first handles of two sessions are both %s: a session can use the other's",
              ha.text)
    B:deny("io.read", { handle = ha }, "EBADF")
    B:deny("io.write", { handle = ha, data = W }, "EBADF")
    B:deny("io.close", { handle = ha }, "EBADF")
    for _, t in ipairs(made_up_tokens(ha)) do
      if t.text ~= hb.text then B:deny("io.read", { handle = t }, "EBADF") end
    end
    A:expect_read("io.read", { handle = ha }, "AAA", true)
    local hd = A:handle({ path = "/in" }, "fs.opendir")
    if hd then
      B:deny("fs.readdir", { handle = hd }, "EBADF")
      A:ok("io.close", { handle = hd })
    end
    local _, resp = A:ok("fs.list", { path = "/in", limit = 1 })
    local cursor = raw_member(resp, "cursor")
    if env:check(cursor ~= nil, nil, "fs.list /in limit 1: no cursor: %s", resp) then
      B:deny("fs.list", { path = "/in", cursor = raw(cursor) }, "EBADF")
      A:try("fs.list", { path = "/in", cursor = raw(cursor), limit = 1 })
    end
    -- limits.handles is per tenant: A fills it, B is refused, A leaves, B gets them.
    local hit = false
    for _ = 1, 6 do
      local v = A:call("fs.open", { path = "/out/a.txt", mode = "r" })
      if v.error then
        hit = true
        env:check(matches(v.error, "limit:handles"), nil, "fs.open past limits.handles: %s", enc(v.error))
        break
      end
    end
    env:check(hit, nil, "limits.handles = 4: six more fs.open in one session never hit it")
    B:fail("fs.open", { path = "/out/b.txt", mode = "r" }, "limit:handles")
    A.conn:close()
    local freed = hc.wait_until(function()
      local v = B:call("fs.open", { path = "/out/b.txt", mode = "r" }, { quiet = true })
      return v.result ~= nil
    end, 3, 0.05)
    env:check(freed, nil, "the handles of a session that ended were not closed (B still refused after 3 s)")
    B:note("after A left, B can open: " .. tostring(freed ~= nil))
  end)

  case("limits.handles: -32002 handles past it; failed opens and path calls take none", function(env)
    local r = env:runtime { limits = { handles = 3 } }
    for _ = 1, 10 do r:fail("fs.open", { path = "/in/nope", mode = "r" }, "ENOENT") end
    local h1 = r:handle { path = "/in/file.txt", mode = "r" }
    local h2 = r:handle { path = "/out/file.txt", mode = "rw" }
    local h3 = r:handle({ path = "/in/dir" }, "fs.opendir")
    r:fail("fs.open", { path = "/in/file.txt", mode = "r" }, "limit:handles")
    r:fail("fs.opendir", { path = "/in" }, "limit:handles")
    r:expect_read("fs.read", { path = "/in/file.txt" }, "hello\n", true)
    r:try("fs.write", { path = "/out/x", data = W })
    r:try("fs.list", { path = "/in/dir" })
    if h1 then r:ok("io.close", { handle = h1 }) end
    local h4 = r:handle { path = "/in/file.txt", mode = "r" }
    r:fail("fs.open", { path = "/in/file.txt", mode = "r" }, "limit:handles")
    for _, h in ipairs { h2, h3, h4 } do r:ok("io.close", { handle = h }) end
    for _ = 1, 3 do r:handle { path = "/in/file.txt", mode = "r" } end
  end)
end)

describe("listing", function()
  -- Page through fs.list; returns name -> count, pages, and the answers' problems.
  local function page_all(env, r, path, limit, between)
    local seen, pages, cursor = {}, 0, nil
    repeat
      local p = { path = path, limit = limit }
      if cursor then p.cursor = raw(cursor) end
      local v, resp = r:call("fs.list", p, { quiet = true })
      if not v.result then
        env:fail(nil, "fs.list %s page %d: %s", path, pages + 1, short(env, resp))
        break
      end
      pages = pages + 1
      local n = #(v.result.entries or {})
      env:check(n <= (limit or 1000), nil, "fs.list %s page %d: %d entries, over the limit %d", path, pages, n,
          limit or 1000)
      env:check(not resp:find('"cursor":null', 1, true), nil, "fs.list: the cursor is null instead of absent")
      for _, e in ipairs(v.result.entries or {}) do seen[e.name] = (seen[e.name] or 0) + 1 end
      cursor = raw_member(resp, "cursor")
      if cursor and n == 0 then env:fail(nil, "fs.list %s page %d: an empty page with a cursor", path, pages) end
      if between then between(pages) end
    until not cursor or pages > 3000
    return seen, pages
  end

  -- One directory of 2500 empty files for the read-only listing cases (slow disks make it
  -- costly), mounted at /big; removed after the last of them.
  local shared_big
  teardown(function() if shared_big then os.execute("rm -rf " .. hc.q(shared_big)) end end)
  local function big_runtime(env)
    if not shared_big then
      local p = io.popen("mktemp -d /tmp/hc-spec-big-XXXXXX")
      shared_big = p:read("l")
      p:close()
      assert(shared_big and shared_big:match("^/tmp/hc%-spec%-big%-"), "mktemp failed")
      sh("cd " .. hc.q(shared_big) .. " && seq -f 'f%04g' 0 2499 | xargs touch")
    end
    local mounts = { ["/big"] = { shared_big, "ro" } }
    for k, v in pairs(STD_MOUNTS) do mounts[k] = v end
    return env:runtime { mounts = mounts }
  end

  local function make_big(env, dir, n)
    sh("mkdir -p " .. hc.q(env:path(dir)) .. " && cd " .. hc.q(env:path(dir)) ..
       " && seq -f 'f%04g' 0 " .. (n - 1) .. " | xargs touch")
  end

  case("fs.list in pages of 1000: a directory of 2500 entries, every name exactly once", function(env)
    local r = big_runtime(env)
    local seen, pages = page_all(env, r, "/big")
    local missing, twice, extra = 0, 0, 0
    for i = 0, 2499 do
      local c = seen[string.format("f%04d", i)]
      if not c then missing = missing + 1 elseif c > 1 then twice = twice + 1 end
    end
    for name in pairs(seen) do if not name:match("^f%d%d%d%d$") then extra = extra + 1 end end
    env:check(missing == 0 and twice == 0 and extra == 0, nil,
              "fs.list /big in pages: %d missing, %d more than once, %d unexpected", missing, twice, extra)
    env:check(pages == 3, nil, "fs.list /big: %d pages of at most 1000, expected 3", pages)
    r:note(string.format("big: %d pages, %d missing, %d twice", pages, missing, twice))
    -- limit 7 over 20 entries
    make_big(env, "out/small", 20)
    seen, pages = page_all(env, r, "/out/small", 7)
    local count = 0
    for _, c in pairs(seen) do count = count + 1; env:check(c == 1, nil, "fs.list limit 7: a name %d times", c) end
    env:check(count == 20 and pages == 3, nil, "fs.list limit 7 over 20: %d names in %d pages", count, pages)
    -- an empty directory is an empty list, and no cursor
    sh("mkdir " .. hc.q(env:path("out/emptydir")))
    local _, resp = r:ok("fs.list", { path = "/out/emptydir" })
    env:check(resp:find('"entries":[]', 1, true) and not resp:find('"cursor"', 1, true), nil,
              "fs.list of an empty directory: %s", resp)
    -- cursors: made up, and from another runtime
    r:fail("fs.list", { path = "/big", cursor = "bogus" }, "EBADF")
    r:fail("fs.list", { path = "/big", cursor = "" }, "EBADF")
    r:fail("fs.list", { path = "/big", cursor = "-1" }, "EBADF")
    r:fail("fs.list", { path = "/big", cursor = "18446744073709551615" }, "EBADF")
    r:fail("fs.list", { path = "/big", cursor = "9223372036854775807" }, "EBADF")
    local _, resp2 = r:ok("fs.list", { path = "/big", limit = 10 })
    local cur = raw_member(resp2, "cursor")
    if cur then
      local other = big_runtime(env)
      other:fail("fs.list", { path = "/big", cursor = raw(cur) }, "EBADF")
      r:fail("fs.list", { path = "/out/small", cursor = raw(cur) }, { "EBADF", "EINVAL" })
    end
  end)

  case("fs.list pages of 500 while the directory changes: untouched names exactly once", function(env)
    local r = env:std()
    make_big(env, "out/big", 1200)
    local seen = page_all(env, r, "/out/big", 500, function(page)
      if page == 1 then
        sh("cd " .. hc.q(env:path("out/big")) .. " && seq -f 'n%03g' 0 299 | xargs touch" ..
           " && seq -f 'f%04g' 1100 1199 | xargs rm -f")
      end
    end)
    local missing, twice = 0, 0
    for i = 0, 1099 do
      local c = seen[string.format("f%04d", i)]
      if not c then missing = missing + 1 elseif c > 1 then twice = twice + 1 end
    end
    for _, c in pairs(seen) do if c > 1 then twice = twice + 1 end end
    env:check(missing == 0 and twice == 0, nil,
              "fs.list while 300 names are added and 100 removed: %d untouched names missing, %d names seen twice",
              missing, twice)
    r:note("changing: " .. missing .. " missing, " .. twice .. " twice")
  end)

  case("fs.opendir and fs.readdir stream a directory to eof, every name exactly once", function(env)
    local r = big_runtime(env)
    local h = r:handle({ path = "/big" }, "fs.opendir")
    assert(h, "fs.opendir failed")
    local seen, calls, eof = {}, 0, false
    while not eof and calls < 3000 do
      local v, resp = r:call("fs.readdir", { handle = h }, { quiet = true })
      if not v.result then env:fail(nil, "fs.readdir: %s", short(env, resp)) break end
      calls = calls + 1
      local n = #(v.result.entries or {})
      env:check(n <= 1000, nil, "fs.readdir: %d entries, over the default limit 1000", n)
      for _, e in ipairs(v.result.entries or {}) do seen[e.name] = (seen[e.name] or 0) + 1 end
      eof = v.result.eof == true
      if not eof and n == 0 then env:fail(nil, "fs.readdir: 0 entries and not eof") break end
    end
    local count, twice = 0, 0
    for _, c in pairs(seen) do count = count + 1; if c > 1 then twice = twice + 1 end end
    env:check(count == 2500 and twice == 0 and calls <= 4, nil,
              "fs.readdir: %d names (expected 2500), %d twice, in %d calls", count, twice, calls)
    r:note(string.format("readdir: %d names, %d twice", count, twice))
    local _, resp = r:ok("fs.readdir", { handle = h })
    env:check(resp:find('"entries":[]', 1, true) and resp:find('"eof":true', 1, true), nil,
              "fs.readdir after eof: %s", resp)
    r:ok("io.close", { handle = h })
    r:fail("fs.readdir", { handle = h }, "EBADF")
    local h2 = r:handle({ path = "/in" }, "fs.opendir")
    if h2 then
      local res = r:try("fs.readdir", { handle = h2, limit = 1 })
      if res then env:check(#(res.entries or {}) == 1 and res.eof == false, nil, "fs.readdir limit 1: %s", enc(res)) end
      r:ok("io.close", { handle = h2 })
    end
    r:fail("fs.opendir", { path = "/in/file.txt" }, "ENOTDIR")
    r:fail("fs.opendir", { path = "/in/nope" }, "ENOENT")
  end)

  case("entries carry their own type; symlinks are never followed; no . or ..", function(env)
    local r = env:std()
    local want = { ["file.txt"] = "file", empty = "file", dir = "dir", chain = "dir", sticky = "dir",
                   link_dir = "symlink", link_rel_in = "symlink", esc_abs = "symlink", esc_abs_dir = "symlink",
                   esc_rel_dir = "symlink", self = "symlink", dotdot = "symlink", fifo = "fifo", sock = "socket" }
    local host = {}
    for name in lfs.dir(env:path("in")) do if name ~= "." and name ~= ".." then host[#host + 1] = name end end
    table.sort(host)
    local res = r:try("fs.list", { path = "/in" })
    if res then
      env:check(same_list(names_of(res.entries), host), nil, "fs.list /in: %s, expected %s", enc(names_of(res.entries)),
                enc(host))
      local t = type_map(res.entries)
      for name, ty in pairs(want) do
        env:check(t[name] == ty, nil, "fs.list /in: %s has type %s, expected %s", name, tostring(t[name]), ty)
      end
    end
    local h = r:handle({ path = "/in" }, "fs.opendir")
    if h then
      local got = {}
      for _ = 1, 10 do
        local rr = r:try("fs.readdir", { handle = h, limit = 7 })
        if not rr then break end
        for _, e in ipairs(rr.entries or {}) do got[#got + 1] = e end
        if rr.eof then break end
      end
      local t = type_map(got)
      env:check(same_list(names_of(got), host), nil, "fs.readdir /in: %s", enc(names_of(got)))
      for name, ty in pairs(want) do
        env:check(t[name] == ty, nil, "fs.readdir /in: %s has type %s, expected %s", name, tostring(t[name]), ty)
      end
      r:ok("io.close", { handle = h })
    end
  end)

  case("names that are not UTF-8 or hold control bytes: a valid answer, the runtime goes on", function(env)
    local r = env:std()
    sh("mkdir " .. hc.q(env:path("out/odd")) .. " && cd " .. hc.q(env:path("out/odd")) ..
       " && touch \"$(printf '\\377\\376')\" \"$(printf 'a\\nb')\" \"$(printf 'tab\\there')\" plain")
    local v, resp = r:call("fs.list", { path = "/out/odd" })
    env:check(utf8.len(resp) ~= nil, nil, "fs.list of odd names: the answer is not UTF-8 (not JSON text)")
    if v.result then
      env:check(type_map(v.result.entries).plain == "file", nil, "fs.list of odd names: plain is missing: %s",
                enc(names_of(v.result.entries)))
      env:check(type_map(v.result.entries)["a\nb"] == "file", nil, "fs.list: the name a\\nb is missing")
    end
    r:ok("sys.ping", {})
  end)
end)

describe("metadata and directory operations", function()
  case("fs.stat: type, size, mode = st_mode & 0o7777, nlink, exact integer times", function(env)
    local r = env:std()
    local st, resp = r:try("fs.stat", { path = "/in/file.txt" })
    if st then
      env:check(st.type == "file" and st.size == 6 and st.mode == 420 and st.nlink == 1, nil,
          "fs.stat /in/file.txt: %s", resp)
      env:check(resp:find('"mtime_ns":981173106123456789[,}]') ~= nil, nil,
                "fs.stat /in/file.txt: mtime_ns is not exactly 981173106123456789: %s", resp)
      for _, k in ipairs { "size", "mode", "nlink", "mtime_ns", "atime_ns", "ctime_ns" } do
        env:check(resp:find('"' .. k .. '":%-?%d+[,}]') ~= nil, nil, "fs.stat: %s is not an integer: %s", k, resp)
      end
    end
    local want = {
      { { path = "/in/dir" }, "dir", 493 }, { { path = "/in/suid" }, "file", 2541 },
      { { path = "/in/sticky" }, "dir", 1023 }, { { path = "/in/link_rel_in" }, "file", 420 },
      { { path = "/in/link_rel_in", follow = false }, "symlink" }, { { path = "/in/fifo" }, "fifo" },
      { { path = "/in/sock" }, "socket" }, { { path = "/in/loop_a", follow = false }, "symlink" },
      { { path = "/in" }, "dir" }, { { path = "/in/" }, "dir" }, { { path = "/in/link_dir/", follow = false }, "dir" },
      { { path = "/in/esc_abs", follow = false }, "symlink" }, { { path = "/in/empty" }, "file" },
    }
    for _, w in ipairs(want) do
      local s = r:try("fs.stat", w[1])
      if s then
        env:check(s.type == w[2] and (w[3] == nil or s.mode == w[3]), nil,
            "fs.stat %s: type %s mode %s, expected %s %s",
                  enc(w[1]), tostring(s.type), tostring(s.mode), w[2], tostring(w[3]))
      end
    end
    local ls = r:try("fs.stat", { path = "/in/link_rel_in", follow = false })
    if ls then env:check(ls.size == 8, nil, "fs.stat of a symlink: size %s, expected 8", tostring(ls.size)) end
    r:fail("fs.stat", { path = "/in/nope" }, "ENOENT")
    r:fail("fs.stat", { path = "/in/nope", follow = false }, "ENOENT")
  end)

  case("fs.utimes and fs.chmod", function(env)
    local r = env:std()
    r:ok("fs.utimes", { path = "/out/file.txt", mtime_ns = 1234567890123456789, atime_ns = 1000000000123456789 })
    local _, resp = r:ok("fs.stat", { path = "/out/file.txt" })
    env:check(resp:find('"mtime_ns":1234567890123456789[,}]') and resp:find('"atime_ns":1000000000123456789[,}]'), nil,
              "fs.utimes then fs.stat: %s", resp)
    r:ok("fs.utimes", { path = "/out/file.txt", atime_ns = 5 })
    _, resp = r:ok("fs.stat", { path = "/out/file.txt" })
    env:check(resp:find('"mtime_ns":1234567890123456789[,}]') and resp:find('"atime_ns":5[,}]'), nil,
              "fs.utimes atime only: the mtime changed: %s", resp)
    r:ok("fs.chmod", { path = "/out/file.txt", mode = 416 })
    local st = r:try("fs.stat", { path = "/out/file.txt" })
    if st then env:check(st.mode == 416, nil, "fs.chmod 416: mode %s", tostring(st.mode)) end
    env:check(lfs.attributes(env:path("out/file.txt"), "permissions") == "rw-r-----", nil, "fs.chmod 416: host %s",
              tostring(lfs.attributes(env:path("out/file.txt"), "permissions")))
    r:ok("fs.chmod", { path = "/out/dir", mode = 448 })
    env:check(lfs.attributes(env:path("out/dir"), "permissions") == "rwx------", nil, "fs.chmod /out/dir 448")
    -- chmod and utimes follow a symlink that stays inside.
    r:ok("fs.symlink", { target = "digits", path = "/out/dl" })
    r:ok("fs.chmod", { path = "/out/dl", mode = 384 })
    env:check(lfs.attributes(env:path("out/digits"), "permissions") == "rw-------", nil,
        "fs.chmod through an inner link")
    r:ok("fs.chmod", { path = "/out", mode = 493 })
    r:fail("fs.chmod", { path = "/out/nope", mode = 420 }, "ENOENT")
    r:fail("fs.utimes", { path = "/out/nope", mtime_ns = 0 }, "ENOENT")
  end)

  case("fs.mkdir, fs.remove, fs.rename, fs.link, fs.truncate", function(env)
    local r = env:std()
    local function is_dir(p) return lfs.attributes(env:path(p), "mode") == "directory" end
    r:ok("fs.mkdir", { path = "/out/m1" })
    env:check(is_dir("out/m1"), nil, "fs.mkdir /out/m1: no directory")
    r:deny("fs.mkdir", { path = "/out/m1" }, "EEXIST")
    r:deny("fs.mkdir", { path = "/out/file.txt" }, "EEXIST")
    r:ok("fs.mkdir", { path = "/out/p/q/r", parents = true })
    env:check(is_dir("out/p/q/r"), nil, "fs.mkdir parents: no out/p/q/r")
    r:ok("fs.mkdir", { path = "/out/p/q/r", parents = true })
    r:ok("fs.mkdir", { path = "/out/m2", mode = 448 })
    env:check(lfs.attributes(env:path("out/m2"), "permissions") == "rwx------", nil, "fs.mkdir mode 448")
    r:deny("fs.mkdir", { path = "/out/x/y" }, "ENOENT")
    r:deny("fs.mkdir", { path = "/out/file.txt/x" }, "ENOTDIR")
    r:deny("fs.mkdir", { path = "/out/file.txt/x/y", parents = true }, { "ENOTDIR", "EEXIST" })
    r:deny("fs.mkdir", { path = "/out" }, { "EEXIST", "EINVAL" })
    -- remove
    r:ok("fs.remove", { path = "/out/m1" })
    env:check(not hc.exists(env:path("out/m1")), nil, "fs.remove /out/m1: still there")
    r:deny("fs.remove", { path = "/out/p" }, "ENOTEMPTY")
    r:ok("fs.remove", { path = "/out/p", recursive = true })
    env:check(not hc.exists(env:path("out/p")), nil, "fs.remove recursive /out/p: still there")
    r:deny("fs.remove", { path = "/out/nope" }, "ENOENT")
    r:deny("fs.remove", { path = "/out/file.txt/" }, "ENOTDIR")
    r:ok("fs.remove", { path = "/out/dang_in" })
    r:ok("fs.remove", { path = "/out/fifo" })
    -- The mount's root is the capability itself: never removed, not even emptied.
    r:deny("fs.remove", { path = "/out" }, { "EPERM", "EBUSY", "EINVAL", "EACCES" })
    r:deny("fs.remove", { path = "/out", recursive = true }, { "EPERM", "EBUSY", "EINVAL", "EACCES" })
    r:deny("fs.remove", { path = "/out/", recursive = true }, { "EPERM", "EBUSY", "EINVAL", "EACCES" })
    r:deny("fs.remove", { path = "/out/.", recursive = true }, { "EPERM", "EBUSY", "EINVAL", "EACCES" })
    r:deny("fs.rename", { from = "/out", to = "/out2/moved" }, { "EPERM", "EBUSY", "EINVAL", "EACCES" })
    -- rename
    r:ok("fs.rename", { from = "/out/file.txt", to = "/out/renamed.txt" })
    env:check(hc.read(env:path("out/renamed.txt")) == "hello\n" and not hc.exists(env:path("out/file.txt")), nil,
              "fs.rename /out/file.txt /out/renamed.txt")
    r:deny("fs.rename", { from = "/out/renamed.txt", to = "/out/digits", overwrite = false }, "EEXIST")
    r:ok("fs.rename", { from = "/out/renamed.txt", to = "/out/digits" })
    env:check(hc.read(env:path("out/digits")) == "hello\n", nil, "fs.rename over an existing file")
    r:deny("fs.rename", { from = "/out/dir", to = "/out/dir/sub" }, "EINVAL")
    r:deny("fs.rename", { from = "/out/nope", to = "/out/x" }, "ENOENT")
    local v = r:call("fs.rename", { from = "/out/digits", to = "/out2/moved" })
    if v.error then env:check(matches(v.error, "EXDEV"), nil, "fs.rename across writable mounts: %s", enc(v.error))
    else env:check(hc.read(env:path("out2/moved")) == "hello\n", nil, "fs.rename to /out2: nothing in out2") end
    -- link
    host_write(env:path("out/l1"), "link me")
    r:ok("fs.link", { from = "/out/l1", to = "/out/l2" })
    local st = r:try("fs.stat", { path = "/out/l2" })
    if st then env:check(st.nlink == 2 and st.size == 7, nil, "fs.link: %s", enc(st)) end
    env:check(lfs.attributes(env:path("out/l1"), "ino") == lfs.attributes(env:path("out/l2"), "ino"), nil,
              "fs.link: not the same inode")
    r:deny("fs.link", { from = "/out/l1", to = "/out/l2" }, "EEXIST")
    r:deny("fs.link", { from = "/out/dir", to = "/out/dir2" }, { "os:EPERM" })
    r:deny("fs.link", { from = "/out/nope", to = "/out/l3" }, "ENOENT")
    -- truncate
    host_write(env:path("out/t"), "0123456789")
    r:ok("fs.truncate", { path = "/out/t", length = 4 })
    env:check(hc.read(env:path("out/t")) == "0123", nil, "fs.truncate 4")
    r:ok("fs.truncate", { path = "/out/t", length = 8 })
    env:check(hc.read(env:path("out/t")) == "0123\0\0\0\0", nil, "fs.truncate 8 extends with zeros")
    r:deny("fs.truncate", { path = "/out/dir", length = 0 }, { "EISDIR", "EINVAL" })
    r:deny("fs.truncate", { path = "/out/nope", length = 0 }, "ENOENT")
  end)
end)

describe("mounts", function()
  case("the longest prefix wins; nested mounts; no escape from the inner one", function(env)
    local r = env:runtime { mounts = { ["/in"] = { "in", "ro" }, ["/in2"] = { "out2", "rw" },
        ["/out"] = { "out", "rw" },
                                       ["/out/nested"] = { "nest", "ro" } } }
    for _, p in ipairs { "/out/nested/n.txt", "/out//nested/n.txt", "/out/./nested/n.txt", "/out/nested//n.txt",
                         "/out/nested/./n.txt" } do
      r:expect_read("fs.read", { path = p }, "NESTED\n", true)
    end
    local st = r:try("fs.stat", { path = "/out/nested" })
    if st then env:check(st.mode == 488, nil, "fs.stat /out/nested: mode %s, expected 488 (the nested mount)",
        tostring(st.mode)) end
    local res = r:try("fs.list", { path = "/out/nested" })
    if res then env:check(same_list(names_of(res.entries), { "n.txt" }), nil, "fs.list /out/nested: %s",
        enc(names_of(res.entries))) end
    for _, p in ipairs { "/out/nested/n.txt", "/out/nested/new", "/out//nested/new", "/out/./nested/new",
                         "/out/nested//new" } do
      r:deny("fs.write", { path = p, data = W }, "EROFS")
    end
    r:deny("fs.mkdir", { path = "/out/nested/d" }, "EROFS")
    r:deny("fs.remove", { path = "/out/nested/n.txt" }, "EROFS")
    r:deny("fs.rename", { from = "/out/nested/n.txt", to = "/out/stolen" }, "EROFS")
    r:deny("fs.link", { from = "/out/nested/n.txt", to = "/out/hard" }, "EROFS")
    r:deny("fs.rename", { from = "/out/file.txt", to = "/out/nested/x" }, "EROFS")
    r:deny("fs.chmod", { path = "/out/nested", mode = 511 }, "EROFS")
    for _, p in ipairs { "/out/nested/../file.txt", "/out/nested/..", "/out/nested/../nested/n.txt",
        "/in/../in2/two.txt",
                         "/in2/../in/file.txt" } do
      r:deny("fs.read", { path = p }, "EPERM")
      r:deny("fs.stat", { path = p }, "EPERM")
    end
    r:deny("fs.write", { path = "/out/nested/../x", data = W }, "EPERM")
    -- A prefix counts only on a component boundary.
    r:expect_read("fs.read", { path = "/in2/two.txt" }, "two\n", true)
    r:ok("fs.write", { path = "/in2/x", data = W })
    env:check(hc.read(env:path("out2/x")) == "PWNED\n", nil, "fs.write /in2/x did not land in the /in2 mount")
    r:ok("fs.write", { path = "/out/nestedx", data = W })
    env:check(hc.exists(env:path("out/nestedx")), nil, "fs.write /out/nestedx did not land in the /out mount")
    env:check(hc.read(env:path("out/nested/n.txt")) == "DECOY\n" and hc.read(env:path("nest/n.txt")) == "NESTED\n",
              "SECURITY",
              "a shadowed or nested file changed")
    res = r:try("fs.list", { path = "/" })
    if res then
      env:check(same_list(names_of(res.entries), { "in", "in2", "out" }), nil, "fs.list /: %s, expected in, in2, out",
                enc(names_of(res.entries)))
    end
  end)

  case("ephemeral mounts: a fresh empty directory per session, removed when it ends", function(env)
    sh("mkdir " .. hc.q(env:path("eph")))
    local mounts = { ["/scratch"] = { "eph", "rw", ephemeral = true }, ["/in"] = { "in", "ro" } }
    local r1 = env:runtime { mounts = mounts, label = "s1" }
    local r2 = env:runtime { mounts = mounts, label = "s2" }
    r1:ok("fs.write", { path = "/scratch/a", data = b64("one") })
    local res = r2:try("fs.list", { path = "/scratch" })
    if res then env:check(#(res.entries or {}) == 0, "SECURITY", "a second session sees the first's files: %s",
        enc(res)) end
    r2:fail("fs.read", { path = "/scratch/a" }, "ENOENT")
    r2:ok("fs.write", { path = "/scratch/b", data = b64("two") })
    local subdirs = {}
    for name in lfs.dir(env:path("eph")) do if name ~= "." and name ~= ".." then subdirs[#subdirs + 1] = name end end
    env:check(#subdirs == 2, nil, "ephemeral: %d directories under the mount for 2 sessions", #subdirs)
    for _, d in ipairs(subdirs) do   -- (the names are random: kept out of the transcript)
      local v = r1:call("fs.read", { path = "/scratch/../" .. d .. "/b" }, { quiet = true })
      env:check(v.error and matches(v.error, "EPERM"), v.result and "SECURITY" or nil,
                "s1: fs.read /scratch/../<a session directory>/b: %s", enc(v.error or v.result))
    end
    r1:deny("fs.list", { path = "/scratch/.." }, "EPERM")
    r1.rt:close()
    local left = 0
    for name in lfs.dir(env:path("eph")) do if name ~= "." and name ~= ".." then left = left + 1 end end
    env:check(left == 1, nil, "ephemeral: %d directories left after one of two sessions ended", left)
    r2:expect_read("fs.read", { path = "/scratch/b" }, "two", true)
  end)

  case("quota: writes past a mount's quota are -32002 quota", function(env)
    sh("mkdir " .. hc.q(env:path("q")))
    local r = env:runtime { mounts = { ["/q"] = { "q", "rw", quota = 1000 } } }
    r:ok("fs.write", { path = "/q/a", data = b64(("a"):rep(600)) })
    r:fail("fs.write", { path = "/q/b", data = b64(("b"):rep(600)) }, "limit:quota")
    local got = hc.read(env:path("q/b"))
    env:check(got == nil or #got < 600, nil, "fs.write past the quota left %d bytes", got and #got or 0)
  end)

  case("quota: replacing, truncating, removing and streaming keep the count", function(env)
    sh("mkdir " .. hc.q(env:path("q")))
    local r = env:runtime { mounts = { ["/q"] = { "q", "rw", quota = 1000 } } }
    r:ok("fs.write", { path = "/q/a", data = b64(("a"):rep(600)) })
    r:ok("fs.write", { path = "/q/a", data = b64(("a"):rep(900)) })          -- replaces: 900
    r:fail("fs.truncate", { path = "/q/a", length = 2000 }, "limit:quota")
    r:ok("fs.truncate", { path = "/q/a", length = 100 })                     -- 100
    r:ok("fs.write", { path = "/q/b", data = b64(("b"):rep(800)) })          -- 900
    r:fail("fs.write", { path = "/q/c", data = b64(("c"):rep(200)) }, "limit:quota")
    r:ok("fs.remove", { path = "/q/b" })                                     -- 100
    local h = r:handle({ path = "/q/c", mode = "w" })
    r:ok("io.write", { handle = h, data = b64(("c"):rep(900)) })             -- 1000
    r:fail("io.write", { handle = h, data = b64("c") }, "limit:quota")
    local got = hc.read(env:path("q/c"))
    env:check(got ~= nil and #got == 900, nil, "io.write past the quota changed the file: %d bytes",
              got and #got or -1)
  end)

  case("fs.* and io.* need their grants", function(env)
    local r = env:runtime { methods = { "fs.read", "sys.*" } }
    r:expect_read("fs.read", { path = "/in/file.txt" }, "hello\n", true)
    r:deny("fs.write", { path = "/out/x", data = W }, "EACCES")
    r:deny("fs.open", { path = "/in/file.txt", mode = "r" }, "EACCES")
    r:deny("io.read", { handle = 1 }, "EACCES")
    r:deny("fs.nope", { path = "/in" }, "-32601")
    local r2 = env:runtime { methods = { "sys.*" }, label = "none" }
    r2:deny("fs.read", { path = "/in/file.txt" }, "EACCES")
  end)
end)

describe("races", function()
  -- Start swap.pl on out/swap (a directory of decoys <-> a symlink to ../outside); wait until it runs.
  local function start_swap(env, name, target)
    name, target = name or "swap", target or "../outside"
    local stop = background(env, string.format("exec perl %s %s %s %s 30", hc.q(FIXTURES .. "/swap.pl"),
                                               hc.q(env:path("out")), hc.q(name), hc.q(target)))
    finally(stop)
    local evil = env:path("out/" .. name:gsub("([^/]+)$", ".evil.%1"))
    assert(hc.wait_until(function() return lfs.symlinkattributes(evil) ~= nil end, 5), "swap.pl did not start")
    return stop
  end

  case("a directory swapped for a symlink to the outside while fs.read goes through it: never the secret", function(env)
    local r = env:std()
    local before = snapshot(env:path("outside"))
    local stop = start_swap(env)
    local stats = { calls = 0, decoy = 0, refused = 0, absent = 0, other = 0 }
    local paths = { "/out/swap/secret", "/out/swap/sub/../secret", "/out/swap/secret_dir/inner", "/out/swap/./secret" }
    local deadline = hc.now() + 1.8
    local nfail = #env.failures
    while hc.now() < deadline and #env.failures - nfail < 20 do
      for _, p in ipairs(paths) do
        local v = r:call("fs.read", { path = p }, { quiet = true })
        stats.calls = stats.calls + 1
        if v.result then
          local bytes = unb64(v.result.data)
          if bytes == "decoy\n" then stats.decoy = stats.decoy + 1
          else env:fail("SECURITY", "fs.read %s under the swap: %q", p, tostring(bytes)) end
        elseif v.error and v.error.code == -32001 then stats.refused = stats.refused + 1
        elseif v.error and v.error.code == -32000 and v.error.data and v.error.data.errno == "ENOENT" then
          stats.absent = stats.absent + 1
        else stats.other = stats.other + 1 end
      end
      local v = r:call("fs.stat", { path = "/out/swap/secret" }, { quiet = true })
      if v.result then
        env:check(v.result.size ~= SECRET_SIZE, "SECURITY",
            "fs.stat /out/swap/secret under the swap: the secret's size")
      end
      r:call("fs.list", { path = "/out/swap" }, { quiet = true })
      r:call("fs.list", { path = "/out/swap/secret_dir" }, { quiet = true })
      local ov, oresp = r:call("fs.open", { path = "/out/swap/secret", mode = "r" }, { quiet = true })
      if ov.result and raw_member(oresp, "handle") then
        local h = raw(raw_member(oresp, "handle"))
        r:call("io.read", { handle = h }, { quiet = true })
        r:call("io.close", { handle = h }, { quiet = true })
      end
    end
    stop()
    local changes = diff(before, snapshot(env:path("outside")))
    env:check(#changes == 0, "SECURITY", "the outside changed during the read race:\n      %s",
        table.concat(changes, "\n      "))
    env:check(stats.decoy > 0 and stats.refused > 0, nil,
              "the race never saw both states (%d decoy reads, %d refusals, %d ENOENT, %d other in %d reads)",
              stats.decoy, stats.refused, stats.absent, stats.other, stats.calls)
    r:note("read race: no secret")
  end)

  case("mutations and recursive removes through a swapped directory never reach the outside", function(env)
    local r = env:std()
    local outside = env:path("outside")
    local before = snapshot(outside)
    local stop = start_swap(env)
    -- and one level down, inside a directory the spec keeps removing whole
    local stop2 = start_swap(env, "holder/swap", "../../outside")
    local ops = {
      { "fs.remove", { path = "/out/holder", recursive = true } },
      { "fs.chmod", { path = "/out/holder/swap", mode = 511 } },
      { "fs.write", { path = "/out/holder/swap/secret", data = W } },
      { "fs.write", { path = "/out/swap/secret", data = W } },
      { "fs.write", { path = "/out/swap/secret", data = W, append = true } },
      { "fs.write", { path = "/out/swap/planted", data = W } },
      { "fs.truncate", { path = "/out/swap/secret", length = 0 } },
      { "fs.chmod", { path = "/out/swap/secret", mode = 511 } },
      { "fs.chmod", { path = "/out/swap", mode = 511 } },
      { "fs.chmod", { path = "/out/swap/", mode = 511 } },
      { "fs.utimes", { path = "/out/swap/secret", mtime_ns = 0, atime_ns = 0 } },
      { "fs.utimes", { path = "/out/swap", mtime_ns = 0 } },
      { "fs.remove", { path = "/out/swap/secret" } },
      { "fs.remove", { path = "/out/swap/secret_dir", recursive = true } },
      { "fs.remove", { path = "/out/swap/secret_dir/inner" } },
      { "fs.remove", { path = "/out/swap", recursive = true } },
      { "fs.remove", { path = "/out/swap/", recursive = true } },
      { "fs.rename", { from = "/out/swap/secret", to = "/out/stolen" } },
      { "fs.rename", { from = "/out/swap/secret_dir", to = "/out/stolen_dir" } },
      { "fs.link", { from = "/out/swap/secret", to = "/out/hard" } },
      { "fs.mkdir", { path = "/out/swap/newdir" } },
      { "fs.mkdir", { path = "/out/swap/a/b", parents = true } },
      { "fs.symlink", { target = "x", path = "/out/swap/newlink" } },
      { "fs.open", { path = "/out/swap/secret", mode = "w" } },
      { "fs.open", { path = "/out/swap/secret", mode = "rw" } },
    }
    local stats = { calls = 0, ok = 0, refused = 0 }
    local deadline = hc.now() + 1.2
    while hc.now() < deadline do
      for _, op in ipairs(ops) do
        local v, resp = r:call(op[1], op[2], { quiet = true })
        stats.calls = stats.calls + 1
        if v.result then
          stats.ok = stats.ok + 1
          if raw_member(resp, "handle") then r:call("io.close", { handle = raw(raw_member(resp, "handle")) },
              { quiet = true }) end
        elseif v.error and v.error.code == -32001 then stats.refused = stats.refused + 1 end
      end
      for _, f in ipairs { "stolen", "hard" } do
        local got = hc.read(env:path("out/" .. f))
        if got and got:find("SECRET", 1, true) then env:fail("SECURITY", "out/%s holds the outside's secret", f) end
        host_epoch = host_epoch + 1
        os.remove(env:path("out/" .. f))
      end
      os.execute("rm -rf " .. hc.q(env:path("out/stolen_dir")))
      host_write(env:path("out/src"), "src\n")
    end
    stop()
    stop2()
    local changes = diff(before, snapshot(outside))
    env:check(#changes == 0, "SECURITY", "the outside changed during the mutation race:\n      %s",
              table.concat(changes, "\n      "))
    env:check(stats.ok > 0 and stats.refused > 0, nil, "the race never saw both states (%d ok, %d refused in %d calls)",
              stats.ok, stats.refused, stats.calls)
    r:note("mutation race: outside unchanged")
  end)
end)
