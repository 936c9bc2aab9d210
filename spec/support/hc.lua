-- spec/support/hc.lua: shared helpers for the end-to-end specs (rpc, serve, cli).
--   local hc = require "spec.support.hc"     (busted runs from the repository root)
-- Locates the build (env HOSTCALL_BUILD, default "<repo>/build"), loads the hostcall Lua module,
-- makes temp dirs, runs the CLI with a deadline, and starts `hostcall serve --listen unix:PATH`
-- in the background. Every wait here has a deadline: a hang fails a test, it never hangs CI.
-- hc.cleanup() (call it from after_each) stops every server and removes every temp dir.
local socket = require "socket"
local unix = require "socket.unix"
local lfs = require "lfs"
local cjson = require "cjson"

local M = {}

-- {===== locations =====

local function dirname(p) return (p:match("^(.*)/[^/]*$")) or "." end

local function absolute(p)
  if p:sub(1, 1) == "/" then return p end
  return lfs.currentdir() .. "/" .. p
end

local here = debug.getinfo(1, "S").source
here = here:sub(1, 1) == "@" and here:sub(2) or "spec/support/hc.lua"
M.repo = dirname(dirname(dirname(absolute(here))))
M.repo = M.repo:gsub("/%./", "/"):gsub("/%.$", "")
M.build = os.getenv("HOSTCALL_BUILD") or (M.repo .. "/build")
M.bin = M.build .. "/hostcall"
package.cpath = M.build .. "/?.so;" .. package.cpath
M.hostcall = require "hostcall"
M.null = cjson.null

-- }=====

-- {===== small utilities =====

function M.now() return socket.gettime() end
function M.sleep(s) socket.sleep(s) end

-- Poll fn() every `step` seconds until it returns a truthy value or `timeout` seconds pass.
-- Returns fn's value, or nil after the deadline.
function M.wait_until(fn, timeout, step)
  local deadline = M.now() + (timeout or 5)
  repeat
    local v = fn()
    if v then return v end
    socket.sleep(step or 0.01)
  until M.now() > deadline
  return fn()
end

-- Shell-quote one word.
function M.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function M.write(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  assert(f:close())
  return path
end

function M.exists(path) return lfs.attributes(path) ~= nil end

-- JSON text -> Lua value (cjson: every number becomes a float; compare ids as raw text).
function M.decode(text)
  local ok, v = pcall(cjson.decode, text)
  if not ok then error("not JSON: " .. tostring(text):sub(1, 300), 2) end
  return v
end

-- A single JSON-RPC request text (params may be a Lua value or a raw JSON string).
function M.req(id, method, params)
  local parts = { '"jsonrpc":"2.0"' }
  if id ~= nil then parts[#parts + 1] = '"id":' .. (type(id) == "string" and cjson.encode(id) or tostring(id)) end
  parts[#parts + 1] = '"method":' .. cjson.encode(method)
  if params ~= nil then
    parts[#parts + 1] = '"params":' .. (type(params) == "string" and params or cjson.encode(params))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- The raw text of a response's id member: the runtime writes '{"jsonrpc":"2.0","id":' first,
-- then ',"result":' or ',"error":'.
function M.raw_id(resp)
  local a = resp:match('^{"jsonrpc":"2%.0","id":(.-),"result":')
  local b = resp:match('^{"jsonrpc":"2%.0","id":(.-),"error":')
  if a and b then return #a < #b and a or b end
  return a or b
end

-- The raw result text of a successful single response.
function M.raw_result(resp)
  return resp:match('^{"jsonrpc":"2%.0","id":.-,"result":(.*)}$')
end

-- }=====

-- {===== cleanup registry =====

local temp_dirs, servers = {}, {}

function M.tmpdir()
  local p = io.popen("mktemp -d /tmp/hc-spec-XXXXXX")
  local dir = p:read("l")
  p:close()
  assert(dir and dir:match("^/tmp/hc%-spec%-"), "mktemp failed")
  temp_dirs[#temp_dirs + 1] = dir
  return dir
end

function M.cleanup()
  for i = #servers, 1, -1 do
    servers[i]:stop()
    servers[i] = nil
  end
  for i = #temp_dirs, 1, -1 do
    os.execute("rm -rf " .. M.q(temp_dirs[i]))
    temp_dirs[i] = nil
  end
end

-- }=====

-- {===== the in-process module =====

M.SYS_ALL = 'return { methods = { "sys.*" } }'

-- A runtime from policy source (name "t.lua" unless given). Extra fields of opts are passed on
-- (handlers = {dir}, ...). Raises with the load message if it fails.
function M.runtime(src, opts)
  local args = { policy_source = src or M.SYS_ALL, name = "t.lua" }
  for k, v in pairs(opts or {}) do args[k] = v end
  local rt, err = M.hostcall.new(args)
  if not rt then error("hostcall.new failed: " .. tostring(err), 2) end
  return rt
end

-- hostcall.new's two results, without raising.
function M.try_new(args) return M.hostcall.new(args) end

-- A handler directory with the given files (name -> source).
function M.handler_dir(files, dir)
  dir = dir or M.tmpdir()
  for name, src in pairs(files) do M.write(dir .. "/" .. name, src) end
  return dir
end

-- Call and decode: the raw text and its decoded value.
function M.call(rt, text)
  local resp = rt:call(text)
  if resp == nil then return nil, nil end
  return resp, M.decode(resp)
end

-- }=====

-- {===== the CLI =====

-- Run build/hostcall with args (a list of words). opts: stdin (string), stdin_file (path),
-- stdin_cmd (a shell command whose output is piped in), cwd, timeout (seconds, default 20),
-- env (string prefix like "FOO=1"). Returns { code, stdout, stderr, timed_out, elapsed }.
function M.cli(args, opts)
  opts = opts or {}
  local dir = M.tmpdir()
  local words = { M.q(opts.bin or M.bin) }
  for _, a in ipairs(args or {}) do words[#words + 1] = M.q(a) end
  local input = "/dev/null"
  if opts.stdin then input = M.write(dir .. "/stdin", opts.stdin) end
  if opts.stdin_file then input = opts.stdin_file end
  local cmd = string.format("timeout -k 2 %d %s %s", opts.timeout or 20, opts.env or "",
                            table.concat(words, " "))
  if opts.stdin_cmd then
    cmd = "( " .. opts.stdin_cmd .. " ) | " .. cmd
  else
    cmd = cmd .. " < " .. M.q(input)
  end
  cmd = string.format("cd %s && %s > %s 2> %s; echo $? > %s", M.q(opts.cwd or M.repo), cmd,
                      M.q(dir .. "/stdout"), M.q(dir .. "/stderr"), M.q(dir .. "/rc"))
  local t0 = M.now()
  os.execute(cmd)
  local rc = tonumber((M.read(dir .. "/rc") or ""):match("%d+"))
  return {
    code = rc,
    stdout = M.read(dir .. "/stdout") or "",
    stderr = M.read(dir .. "/stderr") or "",
    timed_out = rc == 124 or rc == 137,
    elapsed = M.now() - t0,
  }
end

-- Non-empty lines of a text.
function M.lines(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

-- LSP frames of a text: a list of bodies; raises on malformed framing.
function M.lsp_frames(text)
  local out, pos = {}, 1
  while pos <= #text do
    local hstart, hend = text:find("\r\n\r\n", pos, true)
    if not hstart then error("unterminated lsp header at byte " .. pos .. ": " .. text:sub(pos, pos + 80)) end
    local header = text:sub(pos, hstart - 1)
    local n = tonumber(header:match("^Content%-Length: (%d+)$"))
    if not n then error("bad lsp header: " .. header) end
    out[#out + 1] = text:sub(hend + 1, hend + n)
    if #out[#out] ~= n then error("short lsp body") end
    pos = hend + n + 1
  end
  return out
end

function M.lsp(body) return "Content-Length: " .. #body .. "\r\n\r\n" .. body end

-- }=====

-- {===== a background server =====

local Server = {}
Server.__index = Server

-- Start `hostcall serve --policy POLICY --listen unix:DIR/s.sock [extra...]` in the background.
-- opts: policy (path, required), args (extra words), cwd, sock (the socket path; default a new
-- temp dir's s.sock), no_wait (do not probe the socket), argv (every word after the binary,
-- instead of the ones above; sock is then only probed). The server's stdout/stderr go to files.
function M.serve(opts)
  local dir = M.tmpdir()
  local self = setmetatable({ dir = dir, sock = opts.sock or (dir .. "/s.sock"), pidfile = dir .. "/pid",
                              rcfile = dir .. "/rc", errfile = dir .. "/stderr",
                              outfile = dir .. "/stdout" }, Server)
  local words = { M.q(M.bin), "serve", "--policy", M.q(opts.policy), "--listen", M.q("unix:" .. self.sock) }
  if opts.argv then words = { M.q(M.bin) } end
  for _, a in ipairs(opts.argv or opts.args or {}) do words[#words + 1] = M.q(a) end
  local inner = string.format("%s > %s 2> %s < /dev/null & echo $! > %s; wait $!; echo $? > %s",
    table.concat(words, " "), M.q(self.outfile), M.q(self.errfile), M.q(self.pidfile), M.q(self.rcfile))
  os.execute(string.format("cd %s && sh -c %s > /dev/null 2>&1 < /dev/null &", M.q(opts.cwd or M.repo),
                           M.q(inner)))
  servers[#servers + 1] = self
  self.pid = M.wait_until(function()
    return tonumber((M.read(self.pidfile) or ""):match("%d+"))
  end, 5)
  assert(self.pid, "the server did not start")
  if not opts.no_wait then
    local c = M.wait_until(function()
      local s = unix()
      s:settimeout(1)
      if s:connect(self.sock) then return s end
      s:close()
      if self:exit_code() then error("the server exited: " .. (M.read(self.errfile) or "")) end
    end, 10)
    assert(c, "the server's socket never accepted: " .. (M.read(self.errfile) or ""))
    c:close()
  end
  return self
end

function Server:alive()
  if self:exit_code() then return false end
  return os.execute("kill -0 " .. self.pid .. " 2>/dev/null") == true
end

function Server:signal(sig) os.execute("kill -" .. sig .. " " .. self.pid .. " 2>/dev/null") end

-- The exit status once it exited (nil while it runs).
function Server:exit_code()
  return tonumber((M.read(self.rcfile) or ""):match("%d+"))
end

-- Wait (up to timeout seconds) for the server to exit; returns its exit status or nil.
function Server:wait_exit(timeout)
  return M.wait_until(function() return self:exit_code() end, timeout or 5)
end

-- SIGTERM, then SIGKILL after a deadline. Idempotent.
function Server:stop()
  if self.stopped then return end
  self.stopped = true
  if self:exit_code() then return end
  self:signal("TERM")
  if not self:wait_exit(3) then
    self:signal("KILL")
    self:wait_exit(3)
  end
end

function Server:stderr() return M.read(self.errfile) or "" end

-- A field of /proc/PID/status in kB (VmRSS, VmHWM), or nil.
function Server:status_kb(field)
  local s = M.read("/proc/" .. self.pid .. "/status")
  return s and tonumber(s:match(field .. ":%s*(%d+)"))
end

-- }=====

-- {===== a client connection =====

local Conn = {}
Conn.__index = Conn

-- Connect to a unix socket (retrying until the deadline). Returns a Conn or raises.
function M.connect(path, timeout)
  local s = M.wait_until(function()
    local c = unix()
    c:settimeout(1)
    if c:connect(path) then return c end
    c:close()
  end, timeout or 5)
  assert(s, "cannot connect to " .. path)
  return setmetatable({ s = s, buf = "" }, Conn)
end

-- One attempt; nil, err when the connection is refused.
function M.try_connect(path)
  local c = unix()
  c:settimeout(1)
  local ok, err = c:connect(path)
  if not ok then c:close(); return nil, err end
  return setmetatable({ s = c, buf = "" }, Conn)
end

-- Send all of data before the deadline (seconds). Returns true, or nil, err, bytes_sent.
function Conn:send(data, timeout)
  local deadline = M.now() + (timeout or 5)
  local i = 1
  while i <= #data do
    local left = deadline - M.now()
    if left <= 0 then return nil, "timeout", i - 1 end
    self.s:settimeout(left)
    local last, err, partial = self.s:send(data, i)
    if last then
      i = last + 1
    else
      if err ~= "timeout" then return nil, err, (partial or i - 1) end
      i = (partial or i - 1) + 1
    end
  end
  return true
end

-- Send data one byte at a time with a small pause between bytes (split frames).
function Conn:send_bytes(data, pause)
  for i = 1, #data do
    assert(self:send(data:sub(i, i)))
    if pause and pause > 0 then socket.sleep(pause) end
  end
  return true
end

function Conn:send_line(line, timeout) return self:send(line .. "\n", timeout) end

-- Fill the buffer with whatever arrives before the deadline. Returns true if something came,
-- nil, "closed" at EOF, nil, "timeout" otherwise. (select + a non-blocking receive: luasocket's
-- receive(n) would wait for all n bytes.)
function Conn:fill(deadline)
  while true do
    local left = deadline - M.now()
    if left <= 0 then return nil, "timeout" end
    socket.select({ self.s }, nil, left)
    self.s:settimeout(0)
    local data, err, partial = self.s:receive(65536)
    data = data or partial
    if data and #data > 0 then
      self.buf = self.buf .. data
      return true
    end
    if err == "closed" then
      self.closed = true
      return nil, "closed"
    end
    if err ~= "timeout" then return nil, err end
  end
end

-- The next line (without "\n") before the deadline, or nil, "timeout"|"closed".
function Conn:recv_line(timeout)
  local deadline = M.now() + (timeout or 5)
  while true do
    local nl = self.buf:find("\n", 1, true)
    if nl then
      local line = self.buf:sub(1, nl - 1)
      self.buf = self.buf:sub(nl + 1)
      return line
    end
    local ok, err = self:fill(deadline)
    if not ok then return nil, err end
  end
end

-- n lines before one deadline; returns the list (may be short) and the error that cut it short.
function Conn:recv_lines(n, timeout)
  local deadline = M.now() + (timeout or 5)
  local out = {}
  while #out < n do
    local line, err = self:recv_line(deadline - M.now())
    if not line then return out, err end
    out[#out + 1] = line
  end
  return out
end

-- Exactly n bytes before the deadline (lsp bodies).
function Conn:recv_bytes(n, timeout)
  local deadline = M.now() + (timeout or 5)
  while #self.buf < n do
    local ok, err = self:fill(deadline)
    if not ok then return nil, err end
  end
  local out = self.buf:sub(1, n)
  self.buf = self.buf:sub(n + 1)
  return out
end

-- One lsp frame's body before the deadline.
function Conn:recv_lsp(timeout)
  local deadline = M.now() + (timeout or 5)
  while not self.buf:find("\r\n\r\n", 1, true) do
    local ok, err = self:fill(deadline)
    if not ok then return nil, err end
  end
  local hs, he = self.buf:find("\r\n\r\n", 1, true)
  local n = tonumber(self.buf:sub(1, hs - 1):match("^Content%-Length: (%d+)$"))
  if not n then return nil, "bad header: " .. self.buf:sub(1, hs - 1) end
  self.buf = self.buf:sub(he + 1)
  return self:recv_bytes(n, deadline - M.now())
end

-- Wait until the peer closes (EOF) before the deadline: true, or nil if still open.
-- Anything received meanwhile is kept in self.buf.
function Conn:wait_closed(timeout)
  local deadline = M.now() + (timeout or 5)
  while true do
    if self.closed then return true end
    local ok, err = self:fill(deadline)
    if not ok and err == "closed" then return true end
    if not ok and err == "timeout" then return nil end
    if not ok then return true end   -- reset by peer and the like
  end
end

function Conn:close()
  if self.s then self.s:close() end
  self.s = nil
end

-- }=====

return M
