-- End-to-end tests of the daemon through the CLI (CONTRACT.md sections 2, 3, 8, 10): framing
-- (ndjson and lsp) on stdio and on a unix socket, exit status, concurrency inside a session,
-- limits (size, concurrency, sessions, idle), cancellation, backpressure, SIGTERM, audit lines.
-- Run: busted --lua=lua5.4 spec/serve_spec.lua
-- luacheck: std +busted
local hc = require "spec.support.hc"

local req, decode = hc.req, hc.decode

after_each(hc.cleanup)

-- A policy file granting sys.* with extra top-level fields (Lua source text).
local function policy(extra, name)
  local dir = hc.tmpdir()
  return hc.write(dir .. "/" .. (name or "t.lua"),
                  'return { methods = { "sys.*" }' .. (extra and (", " .. extra) or "") .. " }\n")
end

local function stdio(pol, input, args, opts)
  local words = { "serve", "--policy", pol, "--stdio" }
  for _, a in ipairs(args or {}) do words[#words + 1] = a end
  opts = opts or {}
  if input then opts.stdin = input end
  return hc.cli(words, opts)
end

-- Decoded responses of an ndjson stdout, and the same indexed by raw id text.
local function responses(text)
  local list, by = {}, {}
  for _, line in ipairs(hc.lines(text)) do
    local v = decode(line)
    list[#list + 1] = v
    by[hc.raw_id(line) or "?"] = v
  end
  return list, by
end

local function lines_of(...)
  return table.concat({ ... }, "\n") .. "\n"
end

describe("serve --stdio, ndjson", function()
  it("answers one line per request, in order, and exits 0 when stdin closes", function()
    local r = stdio(policy(), lines_of(req(1, "sys.ping"), req(2, "sys.ping", "[1,2]"), req(3, "nope")))
    assert.are.equal(0, r.code, r.stderr)
    local out = hc.lines(r.stdout)
    assert.are.equal(3, #out)
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', out[1])
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', out[2])
    assert.are.equal(-32601, decode(out[3]).error.code)
    assert.are.equal("\n", r.stdout:sub(-1))
  end)

  it("ignores empty lines, whitespace-only lines and CRLF line ends", function()
    local input = "\n\n" .. req(1, "sys.ping") .. "\r\n\r\n   \t \n" .. req(2, "sys.ping") .. "\r\n\n"
    local r = stdio(policy(), input)
    assert.are.equal(0, r.code)
    local list = responses(r.stdout)
    assert.are.equal(2, #list)
    for _, v in ipairs(list) do assert.are.same({}, v.result) end
  end)

  it("a last line without a newline is still a frame", function()
    local r = stdio(policy(), req(1, "sys.ping"))
    assert.are.equal(0, r.code)
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}\n', r.stdout)
  end)

  it("a batch is answered on one line", function()
    local r = stdio(policy(), "[" .. req(1, "sys.ping") .. "," .. req(2, "sys.sleep", '{"ms":20}') .. "]\n")
    local out = hc.lines(r.stdout)
    assert.are.equal(1, #out)
    assert.are.equal(2, #decode(out[1]))
  end)

  it("a line over limits.request_bytes is -32002 size with id null; the next line is answered", function()
    local pol = policy("limits = { request_bytes = 1024 }")
    local big = req(1, "sys.ping", '{"pad":"' .. string.rep("x", 2000) .. '"}')
    local r = stdio(pol, lines_of(big, req(2, "sys.ping"), string.rep("y", 5000), req(3, "sys.ping")))
    assert.are.equal(0, r.code)
    local out = hc.lines(r.stdout)
    assert.are.equal(4, #out, r.stdout)
    local e = decode(out[1])
    assert.are.equal(-32002, e.error.code)
    assert.are.equal("size", e.error.data.limit)
    assert.are.equal("null", hc.raw_id(out[1]))
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', out[2])
    assert.are.equal("size", decode(out[3]).error.data.limit)
    assert.are.equal('{"jsonrpc":"2.0","id":3,"result":{}}', out[4])
  end)

  it("a frame of exactly limits.request_bytes is accepted, one byte more is not", function()
    local pol = policy("limits = { request_bytes = 1024 }")
    local function sized(id, n)
      local base = req(id, "sys.ping")
      return base:sub(1, -2) .. string.rep(" ", n - #base) .. "}"
    end
    assert.are.equal(1024, #sized(1, 1024))
    local r = stdio(pol, lines_of(sized(1, 1024), sized(2, 1025), sized(3, 1024)) )
    local out = hc.lines(r.stdout)
    assert.are.equal(3, #out)
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', out[1])
    assert.are.equal("size", decode(out[2]).error.data.limit)
    assert.are.equal('{"jsonrpc":"2.0","id":3,"result":{}}', out[3])
    -- the same frame ending in CRLF: the CR is not part of the frame
    r = stdio(pol, sized(4, 1024) .. "\r\n")
    assert.are.equal('{"jsonrpc":"2.0","id":4,"result":{}}\n', r.stdout)
  end)

  it("a 100 MiB line: size error, memory stays bounded, the session goes on", function()
    local pol = policy()
    local dir = hc.tmpdir()
    local have_time = os.execute("test -x /usr/bin/time") == true
    local gen = "head -c 104857600 /dev/zero | tr '\\0' 'a'; printf '\\n%s\\n' " .. hc.q(req(2, "sys.ping"))
    local words = { "serve", "--policy", pol, "--stdio" }
    local opts = { stdin_cmd = gen, timeout = 60 }
    local r
    if have_time then
      local bin = hc.bin
      opts.bin = "/usr/bin/time"
      table.insert(words, 1, bin)
      table.insert(words, 1, dir .. "/rss")
      table.insert(words, 1, "-o")
      table.insert(words, 1, "%M")
      table.insert(words, 1, "-f")
    end
    r = hc.cli(words, opts)
    assert.are.equal(0, r.code, r.stderr:sub(1, 500))
    local out = hc.lines(r.stdout)
    assert.are.equal(2, #out)
    assert.are.equal("size", decode(out[1]).error.data.limit)
    assert.are.equal("null", hc.raw_id(out[1]))
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', out[2])
    if have_time then
      local kb = tonumber((hc.read(dir .. "/rss") or ""):match("(%d+)%s*$"))
      assert.is_number(kb)
      assert.is_true(kb < 48 * 1024, "max RSS " .. kb .. " kB for a 100 MiB line")
    end
  end)

  it("stdin closing with a sys.sleep 200 in flight: the sleep is still answered, then exit 0", function()
    local r = stdio(policy(), lines_of(req(1, "sys.sleep", '{"ms":200}'), req(2, "sys.ping")))
    assert.are.equal(0, r.code)
    local out = hc.lines(r.stdout)
    assert.are.equal(2, #out)
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', out[1])
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', out[2])
    assert.is_true(r.elapsed >= 0.2)
  end)

  it("sys.exit {code=3}: answers {} and exits 3", function()
    local r = stdio(policy(), lines_of(req(1, "sys.exit", '{"code":3}')))
    assert.are.equal(3, r.code)
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}\n', r.stdout)
    r = stdio(policy(), lines_of(req(1, "sys.exit")))
    assert.are.equal(0, r.code)
    r = stdio(policy(), lines_of(req(1, "sys.exit", '{"code":255}')))
    assert.are.equal(255, r.code)
  end)

  it("sys.exit with a call in flight: the call is answered too, and the process exits with the code", function()
    local r = stdio(policy(), lines_of(req(1, "sys.sleep", '{"ms":150}'), req(2, "sys.exit", '{"code":4}')))
    assert.are.equal(4, r.code)
    local _, by = responses(r.stdout)
    assert.are.same({}, by["2"].result)
    assert.is_not_nil(by["1"], "the sleep in flight was dropped: " .. r.stdout)
  end)

  it("sys.exit stops the session: the stdin that follows is not served", function()
    local r = stdio(policy(), lines_of(req(1, "sys.exit", '{"code":5}'), req(2, "sys.sleep", '{"ms":3000}')))
    assert.are.equal(5, r.code)
    assert.is_true(r.elapsed < 2.5, "took " .. r.elapsed)
  end)

  it("thousands of calls: every one answered, exit 0", function()
    local parts = {}
    for i = 1, 3000 do parts[i] = req(i, "sys.ping") end
    local r = stdio(policy(), table.concat(parts, "\n") .. "\n")
    assert.are.equal(0, r.code)
    local out = hc.lines(r.stdout)
    assert.are.equal(3000, #out)
    for i = 1, 3000 do assert.are.equal('{"jsonrpc":"2.0","id":' .. i .. ',"result":{}}', out[i]) end
  end)

  it("audit lines go to stderr by default, to --audit FILE when given", function()
    local r = stdio(policy(), lines_of(req(1, "sys.ping")))
    local found
    for _, line in ipairs(hc.lines(r.stderr)) do
      if line:sub(1, 1) == "{" and decode(line).method == "sys.ping" then found = true end
    end
    assert.is_true(found, "no audit line on stderr: " .. r.stderr)
    local dir = hc.tmpdir()
    r = stdio(policy(), lines_of(req(1, "sys.ping")), { "--audit", dir .. "/audit.log" })
    assert.falsy(r.stderr:find('"method":"sys.ping"', 1, true), r.stderr)
    assert.truthy((hc.read(dir .. "/audit.log") or ""):find('"method":"sys.ping"', 1, true))
  end)

  it("a sys.exit notification ends the session with its code, without a response", function()
    local r = stdio(policy(), '{"jsonrpc":"2.0","method":"sys.exit","params":{"code":6}}\n')
    assert.are.equal(6, r.code)
    assert.are.equal("", r.stdout)
  end)

  it("empty stdin: nothing written, exit 0", function()
    local r = stdio(policy(), "")
    assert.are.equal(0, r.code)
    assert.are.equal("", r.stdout)
  end)

  it("a guest that closes stdout early: the server exits instead of hanging", function()
    local dir = hc.tmpdir()
    local parts = {}
    for i = 1, 20000 do parts[i] = req(i, "sys.ping") end
    hc.write(dir .. "/in", table.concat(parts, "\n") .. "\n")
    local cmd = string.format("cd %s && timeout -k 2 10 %s serve --policy %s --stdio < in 2>/dev/null" ..
                              " | head -c 100 > out;" ..
                              " echo ${PIPESTATUS[0]} > rc", hc.q(dir), hc.q(hc.bin), hc.q(policy()))
    os.execute("bash -c " .. hc.q(cmd))
    local rc = tonumber((hc.read(dir .. "/rc") or ""):match("%d+"))
    assert.are_not.equal(124, rc, "the server hung after its reader went away")
    assert.are_not.equal(137, rc)
    assert.are.equal(100, #hc.read(dir .. "/out"))
  end)

  it("a policy that fails to load: exit 2, the message on stderr, nothing on stdout", function()
    local dir = hc.tmpdir()
    local pol = hc.write(dir .. "/bad.lua", "return { limits = { concurrency = 0 } }")
    local r = stdio(pol, lines_of(req(1, "sys.ping")))
    assert.are.equal(2, r.code)
    assert.matches("bad%.lua: limits%.concurrency", r.stderr)
    assert.are.equal("", r.stdout)
  end)
end)

describe("serve --stdio --framing lsp", function()
  local lsp = hc.lsp

  it("answers good frames with Content-Length framing", function()
    local input = lsp(req(1, "sys.ping")) ..
      "Content-Length: " .. #req(2, "sys.ping") ..
      "\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n" ..
      req(2, "sys.ping") .. lsp("[" .. req(3, "sys.ping") .. "]")
    local r = stdio(policy(), input, { "--framing", "lsp" })
    assert.are.equal(0, r.code)
    local frames = hc.lsp_frames(r.stdout)
    assert.are.equal(3, #frames)
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', frames[1])
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', frames[2])
    assert.are.equal('[{"jsonrpc":"2.0","id":3,"result":{}}]', frames[3])
  end)

  it("a body may contain newlines and need not end with one", function()
    local body = '{\n"jsonrpc":"2.0",\n"id":1,\n"method":"sys.ping"\n}'
    local r = stdio(policy(), lsp(body), { "--framing", "lsp" })
    assert.are.same({ '{"jsonrpc":"2.0","id":1,"result":{}}' }, hc.lsp_frames(r.stdout))
  end)

  it("header names are case-insensitive", function()
    local body = req(1, "sys.ping")
    local r = stdio(policy(), "content-length: " .. #body .. "\r\n\r\n" .. body, { "--framing", "lsp" })
    assert.are.same({ '{"jsonrpc":"2.0","id":1,"result":{}}' }, hc.lsp_frames(r.stdout))
  end)

  it("an unknown header: -32700, then the next frame still works", function()
    local body = req(1, "sys.ping")
    local input = "X-Unknown: 1\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body .. lsp(req(2, "sys.ping"))
    local r = stdio(policy(), input, { "--framing", "lsp" })
    local frames = hc.lsp_frames(r.stdout)
    assert.are.equal(2, #frames)
    assert.are.equal(-32700, decode(frames[1]).error.code)
    assert.are.equal("null", hc.raw_id(frames[1]))
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', frames[2])
  end)

  it("a missing Content-Length: -32700 with id null, and no hang", function()
    local r = stdio(policy(), "Content-Type: x\r\n\r\n" .. req(1, "sys.ping") .. lsp(req(2, "sys.ping")),
                    { "--framing", "lsp" }, { timeout = 10 })
    assert.is_false(r.timed_out)
    local frames = hc.lsp_frames(r.stdout)
    assert.is_true(#frames >= 1)
    assert.are.equal(-32700, decode(frames[1]).error.code)
    assert.are.equal("null", hc.raw_id(frames[1]))
  end)

  it("an invalid Content-Length: -32700, and no hang", function()
    for _, v in ipairs { "abc", "-5", "", "1 2", "99999999999999999999999" } do
      local r = stdio(policy(), "Content-Length: " .. v .. "\r\n\r\n" .. req(1, "sys.ping"),
                      { "--framing", "lsp" }, { timeout = 10 })
      assert.is_false(r.timed_out, v)
      local frames = hc.lsp_frames(r.stdout)
      assert.is_true(#frames >= 1, v)
      assert.are.equal(-32700, decode(frames[1]).error.code, v)
    end
  end)

  it("a body over limits.request_bytes: -32002 size, the body is skipped, the next frame works", function()
    local pol = policy("limits = { request_bytes = 1024 }")
    local big = req(1, "sys.ping", '{"pad":"' .. string.rep("x", 3000) .. '"}')
    local r = stdio(pol, lsp(big) .. lsp(req(2, "sys.ping")), { "--framing", "lsp" })
    local frames = hc.lsp_frames(r.stdout)
    assert.are.equal(2, #frames)
    assert.are.equal("size", decode(frames[1]).error.data.limit)
    assert.are.equal("null", hc.raw_id(frames[1]))
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', frames[2])
  end)

  it("a truncated last frame at EOF: no answer for it, exit 0, no hang", function()
    local body = req(2, "sys.ping")
    local r = stdio(policy(), lsp(req(1, "sys.ping")) .. "Content-Length: " .. (#body + 10) .. "\r\n\r\n" .. body,
                    { "--framing", "lsp" }, { timeout = 10 })
    assert.is_false(r.timed_out)
    assert.are.equal(0, r.code)
    assert.are.same({ '{"jsonrpc":"2.0","id":1,"result":{}}' }, hc.lsp_frames(r.stdout))
  end)

  it("a frame with a parse error in its body gets -32700 and the next frame works", function()
    local r = stdio(policy(), lsp("{oops") .. lsp(req(2, "sys.ping")), { "--framing", "lsp" })
    local frames = hc.lsp_frames(r.stdout)
    assert.are.equal(2, #frames)
    assert.are.equal(-32700, decode(frames[1]).error.code)
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', frames[2])
  end)
end)

describe("serve --listen unix:PATH", function()
  it("the socket is created with mode 0600", function()
    local srv = hc.serve { policy = policy() }
    local mode = io.popen("stat -c %a " .. hc.q(srv.sock)):read("l")
    assert.are.equal("600", mode)
  end)

  it("a request sent one byte at a time is answered", function()
    local srv = hc.serve { policy = policy() }
    local c = hc.connect(srv.sock)
    c:send_bytes(req(1, "sys.ping") .. "\r\n", 0.002)
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', c:recv_line(3))
    c:send_bytes("\n\n" .. req(2, "sys.ping"), 0.001)
    c:send("\n")
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', c:recv_line(3))
    c:close()
  end)

  it("two requests in one write and one request split across writes", function()
    local srv = hc.serve { policy = policy() }
    local c = hc.connect(srv.sock)
    local a, b = req(1, "sys.ping"), req(2, "sys.ping")
    c:send(a .. "\n" .. b:sub(1, 10))
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', c:recv_line(3))
    c:send(b:sub(11) .. "\n")
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', c:recv_line(3))
    c:close()
  end)

  it("a frame of exactly request_bytes ending in CRLF, split before the LF, is accepted", function()
    local srv = hc.serve { policy = policy("limits = { request_bytes = 1024 }") }
    local base = req(1, "sys.ping")
    local frame = base:sub(1, -2) .. string.rep(" ", 1024 - #base) .. "}"
    local c = hc.connect(srv.sock)
    c:send(frame .. "\r")
    hc.sleep(0.05)   -- not synchronisation: lets the server read the CR before the LF arrives
    c:send("\n" .. req(2, "sys.ping") .. "\n")
    local out = c:recv_lines(2, 3)
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', out[1])
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', out[2])
    c:close()
  end)

  it("lsp framing with a split header and body", function()
    local srv = hc.serve { policy = policy(), args = { "--framing", "lsp" } }
    local c = hc.connect(srv.sock)
    local body = req(1, "sys.ping")
    local frame = "Content-Length: " .. #body .. "\r\n\r\n" .. body
    c:send_bytes(frame, 0.001)
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', c:recv_lsp(3))
    body = req(2, "sys.ping")
    c:send("Content-Length: " .. #body .. "\r\n")
    hc.sleep(0.02)
    c:send("\r\n" .. body:sub(1, 7))
    hc.sleep(0.02)
    c:send(body:sub(8))
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', c:recv_lsp(3))
    c:close()
  end)

  it("many concurrent sessions: 20 clients at once, each gets exactly its own answers", function()
    local srv = hc.serve { policy = policy() }
    local conns = {}
    for i = 1, 20 do conns[i] = hc.connect(srv.sock) end
    local t0 = hc.now()
    for i, c in ipairs(conns) do
      local parts = {}
      for j = 1, 5 do
        local id = string.format('"c%d-%d"', i, j)
        parts[j] = j % 2 == 0 and ('{"jsonrpc":"2.0","id":' .. id .. ',"method":"sys.sleep","params":{"ms":100}}')
                               or ('{"jsonrpc":"2.0","id":' .. id .. ',"method":"sys.ping"}')
      end
      assert.is_true(c:send(table.concat(parts, "\n") .. "\n"))
    end
    for i, c in ipairs(conns) do
      local got = {}
      local out, err = c:recv_lines(5, 5)
      assert.are.equal(5, #out, "client " .. i .. ": " .. tostring(err))
      for _, line in ipairs(out) do got[#got + 1] = hc.raw_id(line) end
      table.sort(got)
      local want = {}
      for j = 1, 5 do want[j] = string.format('"c%d-%d"', i, j) end
      table.sort(want)
      assert.are.same(want, got)
      c:close()
    end
    assert.is_true(hc.now() - t0 < 2, "20 clients took " .. (hc.now() - t0) .. " s")
  end)

  it("THE KEY TEST: 100 sleeps of 100 ms then a ping on one connection", function()
    local srv = hc.serve { policy = policy() }
    local c = hc.connect(srv.sock)
    local parts = {}
    for i = 1, 100 do parts[i] = req(i, "sys.sleep", '{"ms":100}') end
    parts[101] = req('ping', "sys.ping")
    local t0 = hc.now()
    assert.is_true(c:send(table.concat(parts, "\n") .. "\n"))
    local out, err = c:recv_lines(101, 5)
    local dt = hc.now() - t0
    assert.are.equal(101, #out, "answers: " .. #out .. " (" .. tostring(err) .. ")")
    assert.are.equal('{"jsonrpc":"2.0","id":"ping","result":{}}', out[1], "the ping waited behind the sleeps")
    local seen = {}
    for k = 2, 101 do
      local v = decode(out[k])
      assert.are.same({}, v.result, out[k])
      seen[#seen + 1] = tonumber(hc.raw_id(out[k]))
    end
    table.sort(seen)
    for i = 1, 100 do assert.are.equal(i, seen[i]) end
    assert.is_true(dt < 2, "100 x 100 ms sleeps took " .. dt .. " s: they did not run concurrently")
    c:close()
  end)

  it("responses come out of order, matched by id", function()
    local srv = hc.serve { policy = policy() }
    local c = hc.connect(srv.sock)
    c:send(lines_of(req("slow", "sys.sleep", '{"ms":300}'), req("mid", "sys.sleep", '{"ms":60}'),
                    req("fast", "sys.ping")))
    local out = c:recv_lines(3, 3)
    assert.are.same({ '"fast"', '"mid"', '"slow"' }, { hc.raw_id(out[1]), hc.raw_id(out[2]), hc.raw_id(out[3]) })
    c:close()
  end)

  it("a batch's answer waits for its slowest member; a later single call overtakes it", function()
    local srv = hc.serve { policy = policy() }
    local c = hc.connect(srv.sock)
    c:send("[" .. req(1, "sys.sleep", '{"ms":200}') .. "," .. req(2, "sys.ping") .. "]\n" .. req(3, "sys.ping") .. "\n")
    local out = c:recv_lines(2, 3)
    assert.are.equal('{"jsonrpc":"2.0","id":3,"result":{}}', out[1])
    assert.are.equal(2, #decode(out[2]))
    c:close()
  end)

  it("limits.concurrency = 5: the 6th concurrent sleep gets -32002 concurrency at once", function()
    local srv = hc.serve { policy = policy("limits = { concurrency = 5 }") }
    local c = hc.connect(srv.sock)
    local parts = {}
    for i = 1, 6 do parts[i] = req(i, "sys.sleep", '{"ms":300}') end
    local t0 = hc.now()
    c:send(table.concat(parts, "\n") .. "\n")
    local first = c:recv_line(3)
    assert.is_true(hc.now() - t0 < 0.25, "the refusal was not immediate")
    local v = decode(first)
    assert.are.equal("6", hc.raw_id(first))
    assert.are.equal(-32002, v.error.code)
    assert.are.equal("concurrency", v.error.data.limit)
    local rest = c:recv_lines(5, 3)
    assert.are.equal(5, #rest)
    for _, line in ipairs(rest) do assert.are.same({}, decode(line).result) end
    -- the slots are free again
    c:send(req(7, "sys.sleep", '{"ms":1}') .. "\n")
    assert.are.equal('{"jsonrpc":"2.0","id":7,"result":{}}', c:recv_line(3))
    c:close()
  end)

  it("limits.concurrency is per session: another session is not refused", function()
    local srv = hc.serve { policy = policy("limits = { concurrency = 2 }") }
    local a, b = hc.connect(srv.sock), hc.connect(srv.sock)
    a:send(lines_of(req(1, "sys.sleep", '{"ms":300}'), req(2, "sys.sleep", '{"ms":300}')))
    a:send(lines_of(req(3, "sys.ping")))
    assert.are.equal("concurrency", decode(a:recv_line(3)).error.data.limit)
    b:send(lines_of(req(1, "sys.sleep", '{"ms":10}'), req(2, "sys.ping")))
    local out = b:recv_lines(2, 3)
    for _, line in ipairs(out) do assert.are.same({}, decode(line).result) end
    a:close()
    b:close()
  end)

  it("$/cancelRequest on a sleeping call: it answers -32800 right away", function()
    local srv = hc.serve { policy = policy() }
    local c = hc.connect(srv.sock)
    c:send(lines_of(req(7, "sys.sleep", '{"ms":5000}'), req("s", "sys.sleep", '{"ms":5000}'),
                    req(1, "sys.ping")))
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', c:recv_line(3))
    local t0 = hc.now()
    c:send('{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":7}}\n')
    local line = c:recv_line(2)
    assert.is_true(hc.now() - t0 < 0.5)
    assert.are.equal("7", hc.raw_id(line))
    assert.are.equal(-32800, decode(line).error.code)
    c:send('{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"s"}}\n')
    line = c:recv_line(2)
    assert.are.equal('"s"', hc.raw_id(line))
    assert.are.equal(-32800, decode(line).error.code)
    -- nothing else was sent for the cancel notifications themselves
    c:send(req(2, "sys.ping") .. "\n")
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', c:recv_line(2))
    c:close()
  end)

  it("$/cancelRequest matches ids exactly (7 is not \"7\") and only within its own session", function()
    local srv = hc.serve { policy = policy() }
    local a, b = hc.connect(srv.sock), hc.connect(srv.sock)
    a:send(lines_of(req(7, "sys.sleep", '{"ms":300}'), req(1, "sys.ping")))
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', a:recv_line(3))
    a:send('{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"7"}}\n')
    b:send('{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":7}}\n')
    assert.are.equal('{"jsonrpc":"2.0","id":7,"result":{}}', a:recv_line(3))
    a:close()
    b:close()
  end)

  it("limits.sessions = 2: a third connection is closed by the server and the refusal is logged", function()
    -- no readiness probe: its connection could still count as a session when a and b arrive
    local srv = hc.serve { policy = policy("limits = { sessions = 2 }"), no_wait = true }
    local a, b = hc.connect(srv.sock), hc.connect(srv.sock)
    a:send(req(1, "sys.ping") .. "\n")
    b:send(req(1, "sys.ping") .. "\n")
    assert.is_string(a:recv_line(3))
    assert.is_string(b:recv_line(3))
    local c = hc.try_connect(srv.sock)
    if c then
      c:send(req(1, "sys.ping") .. "\n")
      assert.is_true(c:wait_closed(3), "the third session was not closed")
      assert.are.equal("", c.buf, "the third session was served")
      c:close()
    end
    assert.truthy(hc.wait_until(function() return srv:stderr():find("refused", 1, true) end, 3),
                  "no log line: " .. srv:stderr())
    -- a slot frees up when a session ends
    a:close()
    local ok = hc.wait_until(function()
      local d = hc.try_connect(srv.sock)
      if not d then return nil end
      d:send(req(9, "sys.ping") .. "\n")
      local line = d:recv_line(0.5)
      d:close()
      return line == '{"jsonrpc":"2.0","id":9,"result":{}}'
    end, 3, 0.05)
    assert.is_true(ok, "no session could be opened after one ended")
    b:close()
  end)

  it("limits.idle_ms = 200: an idle session is closed, one with a call in flight is not", function()
    local srv = hc.serve { policy = policy("limits = { idle_ms = 200 }") }
    local idle = hc.connect(srv.sock)
    local busy = hc.connect(srv.sock)
    local t0 = hc.now()
    busy:send(req(1, "sys.sleep", '{"ms":700}') .. "\n")
    assert.is_true(idle:wait_closed(3), "the idle session was never closed")
    local dt = hc.now() - t0
    assert.is_true(dt >= 0.15 and dt < 1.5, "closed after " .. dt .. " s")
    local line = busy:recv_line(3)
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', line)
    assert.is_true(hc.now() - t0 >= 0.65)
    -- once its call is answered it is idle like any other
    local t1 = hc.now()
    assert.is_true(busy:wait_closed(3))
    assert.is_true(hc.now() - t1 < 1.5)
    idle:close()
    busy:close()
  end)

  it("limits.idle_ms: activity keeps a session open", function()
    local srv = hc.serve { policy = policy("limits = { idle_ms = 300 }") }
    local c = hc.connect(srv.sock)
    for i = 1, 6 do
      c:send(req(i, "sys.ping") .. "\n")
      assert.are.equal('{"jsonrpc":"2.0","id":' .. i .. ',"result":{}}', c:recv_line(2))
      hc.sleep(0.1)   -- pacing, 6 x 100 ms = twice the idle limit in total
    end
    c:close()
  end)

  it("a guest that never reads its responses: bounded memory, other sessions still served", function()
    local srv = hc.serve { policy = policy() }
    local greedy = hc.connect(srv.sock)
    local line = req(1, "sys.ping") .. "\n"
    local chunk = string.rep(line, 1000)
    local sent, blocked = 0, false
    local t0 = hc.now()
    while sent < 2000000 and hc.now() - t0 < 8 do
      local ok = greedy:send(chunk, 0.5)
      if not ok then blocked = true break end
      sent = sent + 1000
    end
    assert.is_true(blocked, "the server read " .. sent .. " requests without the guest reading any answer")
    local rss = srv:status_kb("VmRSS")
    assert.is_number(rss)
    assert.is_true(rss < 64 * 1024, "server RSS " .. rss .. " kB")
    local other = hc.connect(srv.sock)
    local t1 = hc.now()
    other:send(req(2, "sys.ping") .. "\n")
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', other:recv_line(2))
    assert.is_true(hc.now() - t1 < 1)
    greedy:close()
    -- the server notices the greedy guest left and goes on
    other:send(req(3, "sys.ping") .. "\n")
    assert.are.equal('{"jsonrpc":"2.0","id":3,"result":{}}', other:recv_line(2))
    other:close()
    assert.is_true(srv:alive())
  end)

  it("a 100 MiB line on the socket: size error, VmHWM well under 100 MiB, keeps serving", function()
    local srv = hc.serve { policy = policy() }
    local c = hc.connect(srv.sock)
    local chunk = string.rep("a", 65536)
    for _ = 1, 1600 do assert.is_true(c:send(chunk, 10)) end
    c:send("\n" .. req(2, "sys.ping") .. "\n")
    local out = c:recv_lines(2, 10)
    assert.are.equal(2, #out)
    assert.are.equal("size", decode(out[1]).error.data.limit)
    assert.are.equal("null", hc.raw_id(out[1]))
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', out[2])
    local hwm = srv:status_kb("VmHWM")
    assert.is_number(hwm)
    assert.is_true(hwm < 48 * 1024, "server peak RSS " .. hwm .. " kB")
    c:close()
  end)

  it("a guest that disconnects with calls in flight does not disturb the server", function()
    local srv = hc.serve { policy = policy() }
    local c = hc.connect(srv.sock)
    c:send(lines_of(req(1, "sys.sleep", '{"ms":150}'), "[" .. req(2, "sys.sleep", '{"ms":150}') .. "]"))
    c:close()
    hc.sleep(0.3)   -- let the sleeps end on a connection that is gone
    local d = hc.connect(srv.sock)
    d:send(req(3, "sys.ping") .. "\n")
    assert.are.equal('{"jsonrpc":"2.0","id":3,"result":{}}', d:recv_line(2))
    d:close()
    assert.is_true(srv:alive())
  end)

  it("binary garbage gets parse errors and the session goes on", function()
    local srv = hc.serve { policy = policy() }
    local c = hc.connect(srv.sock)
    c:send("\0\1\2\255\254{{{\n\27[31m\n" .. req(1, "sys.ping") .. "\n")
    local out = c:recv_lines(3, 3)
    assert.are.equal(3, #out)
    assert.are.equal(-32700, decode(out[1]).error.code)
    assert.are.equal(-32700, decode(out[2]).error.code)
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', out[3])
    c:close()
  end)

  it("$/cancelRequest on a call inside a batch: the batch answer carries -32800 for it", function()
    local srv = hc.serve { policy = policy() }
    local c = hc.connect(srv.sock)
    c:send("[" .. req(1, "sys.sleep", '{"ms":5000}') .. "," .. req(2, "sys.ping") .. "]\n" ..
           req(3, "sys.ping") .. "\n")
    assert.are.equal('{"jsonrpc":"2.0","id":3,"result":{}}', c:recv_line(2))
    local t0 = hc.now()
    c:send('{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}\n')
    local line = c:recv_line(2)
    assert.is_true(hc.now() - t0 < 0.5)
    local arr = decode(line)
    assert.are.equal(2, #arr)
    local codes = {}
    for _, m in ipairs(arr) do codes[m.id] = m.error and m.error.code or "ok" end
    assert.are.same({ -32800, "ok" }, codes)
    c:close()
  end)

  it("limits.concurrency inside one batch: the call past the limit is refused in the array", function()
    local srv = hc.serve { policy = policy("limits = { concurrency = 2 }") }
    local c = hc.connect(srv.sock)
    c:send("[" .. req(1, "sys.sleep", '{"ms":50}') .. "," .. req(2, "sys.sleep", '{"ms":50}') .. "," ..
           req(3, "sys.sleep", '{"ms":50}') .. "]\n")
    local arr = decode(c:recv_line(2))
    assert.are.equal(3, #arr)
    local limited = 0
    for _, m in ipairs(arr) do
      if m.error then
        assert.are.equal("concurrency", m.error.data.limit)
        limited = limited + 1
      end
    end
    assert.are.equal(1, limited)
    c:close()
  end)

  it("sys.exit on a socket ends that session only; the server and other sessions go on", function()
    local srv = hc.serve { policy = policy() }
    local a, b = hc.connect(srv.sock), hc.connect(srv.sock)
    a:send(req(1, "sys.exit", '{"code":7}') .. "\n")
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', a:recv_line(2))
    assert.is_true(a:wait_closed(2), "the session that called sys.exit stayed open")
    b:send(req(2, "sys.ping") .. "\n")
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', b:recv_line(2))
    assert.is_true(srv:alive())
    local d = hc.connect(srv.sock)
    d:send(req(3, "sys.ping") .. "\n")
    assert.are.equal('{"jsonrpc":"2.0","id":3,"result":{}}', d:recv_line(2))
    a:close()
    b:close()
    d:close()
  end)

  it("a second server on the socket of a live one does not take it over", function()
    local pol = policy()
    local first = hc.serve { policy = pol }
    local r = hc.cli({ "serve", "--policy", pol, "--listen", "unix:" .. first.sock }, { timeout = 3 })
    assert.is_false(r.timed_out, "the second server started serving on the first one's socket")
    assert.are_not.equal(0, r.code)
    local c = hc.connect(first.sock, 1)
    c:send(req(1, "sys.ping") .. "\n")
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', c:recv_line(2))
    c:close()
  end)

  it("a regular file at the socket path is neither removed nor replaced", function()
    local dir = hc.tmpdir()
    local path = hc.write(dir .. "/precious", "data")
    local r = hc.cli({ "serve", "--policy", policy(), "--listen", "unix:" .. path }, { timeout = 3 })
    assert.is_false(r.timed_out)
    assert.are_not.equal(0, r.code)
    assert.are.equal("data", hc.read(path))
    assert.is_true(#r.stderr > 0)
  end)

  it("a stale socket file (no server behind it) is replaced", function()
    local pol = policy()
    local first = hc.serve { policy = pol }
    local path = first.sock
    first:signal("KILL")
    assert.is_not_nil(hc.wait_until(function() return not first:alive() end, 3))
    assert.is_true(hc.exists(path))
    local second = hc.serve { policy = pol, cwd = hc.repo, sock = path }
    local c = hc.connect(second.sock)
    c:send(req(1, "sys.ping") .. "\n")
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', c:recv_line(2))
    c:close()
  end)

  it("SIGTERM with a sys.sleep 300 in flight: answered, no new sessions, exit 0", function()
    local srv = hc.serve { policy = policy() }
    local c = hc.connect(srv.sock)
    c:send(lines_of(req(1, "sys.sleep", '{"ms":300}'), req(2, "sys.ping")))
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', c:recv_line(3))
    local t0 = hc.now()
    srv:signal("TERM")
    hc.sleep(0.05)   -- let the signal land before the new connection
    local late = hc.try_connect(srv.sock)
    if late then
      late:send(req(9, "sys.ping") .. "\n")
      local line = late:recv_line(0.15)
      assert.is_nil(line, "a connection made after SIGTERM was served: " .. tostring(line))
    end
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', c:recv_line(3))
    assert.are.equal(0, srv:wait_exit(5))
    assert.is_true(hc.now() - t0 < 3)
    if late then
      assert.is_true(late:wait_closed(2))
      assert.falsy(late.buf:find('"id":9', 1, true), "the late session was answered")
      late:close()
    end
    c:close()
  end)

  it("SIGTERM with a call that outlives the 10 s drain: it is answered, then the server exits 0", function()
    local srv = hc.serve { policy = policy("limits = { time_ms = 60000 }") }
    local c = hc.connect(srv.sock)
    c:send(lines_of(req(1, "sys.sleep", '{"ms":30000}'), req(2, "sys.ping")))
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', c:recv_line(3))
    local t0 = hc.now()
    srv:signal("TERM")
    local code = srv:wait_exit(14)
    local dt = hc.now() - t0
    assert.are.equal(0, code, "exit status after the drain")
    assert.is_true(dt > 9 and dt < 13, "exited " .. dt .. " s after SIGTERM")
    c:wait_closed(1)
    local line = c.buf:match("^([^\n]*)\n")
    assert.is_string(line, "the call in flight got no answer before the session closed")
    assert.are.equal("1", hc.raw_id(line))
    assert.is_table(decode(line).error)
    c:close()
  end)

  it("SIGTERM with nothing in flight: exits 0 promptly, idle sessions and all", function()
    local srv = hc.serve { policy = policy() }
    local c = hc.connect(srv.sock)
    c:send(req(1, "sys.ping") .. "\n")
    assert.is_string(c:recv_line(2))
    local t0 = hc.now()
    srv:signal("TERM")
    assert.are.equal(0, srv:wait_exit(3))
    assert.is_true(hc.now() - t0 < 1)
    assert.is_true(c:wait_closed(1))
    c:close()
  end)
end)

describe("audit lines (contract 10)", function()
  local TS = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.?%d*Z$"

  local function audit_lines(path, n)
    local lines = hc.wait_until(function()
      local l = hc.lines(hc.read(path) or "")
      return #l >= n and l or nil
    end, 3)
    return lines or hc.lines(hc.read(path) or "")
  end

  it("one JSON object per call, with every field", function()
    local dir = hc.tmpdir()
    local log = dir .. "/audit.log"
    local pol = hc.write(dir .. "/acme.lua",
      'return { methods = { "sys.ping", "sys.sleep" }, limits = { request_bytes = 1024 } }\n')
    local srv = hc.serve { policy = pol, args = { "--audit", log } }
    local c = hc.connect(srv.sock)
    local reqs = {
      req(1, "sys.ping"),
      '{"jsonrpc":"2.0","id":"b","method":"sys.sleep","params":{"ms":"x"}}',
      req(3, "sys.describe"),
      req(nil, "sys.ping"),
      req(5, "sys.sleep", '{"ms":50}'),
      string.rep("z", 2000),
      req(7, "nope"),
    }
    c:send(table.concat(reqs, "\n") .. "\n")
    local answers = c:recv_lines(6, 3)
    assert.are.equal(6, #answers)
    local lines = audit_lines(log, 7)
    assert.are.equal(7, #lines, table.concat(lines, "\n"))
    assert.falsy(srv:stderr():find('"outcome"', 1, true), "audit lines leaked to stderr")
    local by = {}
    for _, line in ipairs(lines) do
      local a = decode(line)
      assert.matches(TS, a.ts)
      assert.are.equal("acme", a.tenant)
      assert.is_number(a.session)
      assert.is_number(a.us)
      assert.is_number(a.bytes_in)
      assert.is_number(a.bytes_out)
      assert.is_true(a.us >= 0 and a.bytes_in >= 0 and a.bytes_out >= 0)
      assert.is_true(a.outcome == "ok" or math.type(a.outcome) ~= nil, line)
      local rid = line:match('"id":(.-),"method"')
      by[rid] = { a = a, raw = line }
    end
    local ok = by["1"].a
    assert.are.equal("sys.ping", ok.method)
    assert.are.equal("ok", ok.outcome)
    assert.are.equal(#reqs[1], ok.bytes_in)
    assert.are.equal(#'{"jsonrpc":"2.0","id":1,"result":{}}', ok.bytes_out)
    assert.is_nil(ok.errno)
    assert.is_nil(ok.limit)
    assert.are.equal(-32602, by['"b"'].a.outcome)
    local refused = by["3"].a
    assert.are.equal(-32001, refused.outcome)
    assert.are.equal("EACCES", refused.errno)
    local slept = by["5"].a
    assert.are.equal("ok", slept.outcome)
    assert.is_true(slept.us >= 50000, "us " .. slept.us)
    assert.are.equal(-32601, by["7"].a.outcome)
    -- the notification is audited too, with id null and nothing sent back
    local notif, size
    for _, line in ipairs(lines) do
      local a = decode(line)
      if a.id == hc.null and a.method == "sys.ping" then notif = a end
      if a.limit == "size" then size = a end
    end
    assert.is_table(notif, "the notification was not audited")
    assert.are.equal("ok", notif.outcome)
    assert.are.equal(0, notif.bytes_out)
    assert.is_table(size, "the oversize frame was not audited")
    assert.are.equal(-32002, size.outcome)
    c:close()
  end)

  -- Reading of the contract: bytes_in is what came in for that frame; an oversize frame that was
  -- read and skipped still came in (hc_call's own size check already audits its length).
  it("an oversize frame is audited with the bytes that came in", function()
    local dir = hc.tmpdir()
    local log = dir .. "/audit.log"
    local srv = hc.serve { policy = policy("limits = { request_bytes = 1024 }"), args = { "--audit", log } }
    local c = hc.connect(srv.sock)
    c:send(string.rep("z", 5000) .. "\n")
    assert.are.equal("size", decode(c:recv_line(2)).error.data.limit)
    local a = decode(audit_lines(log, 1)[1])
    assert.are.equal(-32002, a.outcome)
    assert.are.equal("size", a.limit)
    assert.is_true(a.bytes_in >= 1024, "an oversize frame audited with bytes_in " .. a.bytes_in)
    c:close()
  end)

  it("a frame that fails to parse is audited with the bytes that came in", function()
    local dir = hc.tmpdir()
    local log = dir .. "/audit.log"
    local srv = hc.serve { policy = policy(), args = { "--audit", log } }
    local c = hc.connect(srv.sock)
    c:send('{"jsonrpc":"2.0","id":6,"method":\n')
    assert.are.equal(-32700, decode(c:recv_line(2)).error.code)
    local a = decode(audit_lines(log, 1)[1])
    assert.are.equal(-32700, a.outcome)
    assert.are.equal(#'{"jsonrpc":"2.0","id":6,"method":', a.bytes_in)
    c:close()
  end)

  it("a batch is audited once per call in it", function()
    local dir = hc.tmpdir()
    local log = dir .. "/audit.log"
    local srv = hc.serve { policy = policy(), args = { "--audit", log } }
    local c = hc.connect(srv.sock)
    c:send("[" .. req(1, "sys.ping") .. "," .. req(2, "nope") .. "," .. req(nil, "sys.ping") .. "]\n")
    assert.is_string(c:recv_line(2))
    local lines = audit_lines(log, 3)
    assert.are.equal(3, #lines)
    local outcomes = {}
    for _, line in ipairs(lines) do local o = decode(line).outcome
      outcomes[#outcomes + 1] = tostring(math.tointeger(o) or o) end
    table.sort(outcomes)
    assert.are.same({ "-32601", "ok", "ok" }, outcomes)
    c:close()
  end)

  it("sessions are told apart; a refused-by-hook call carries errno", function()
    local dir = hc.tmpdir()
    local log = dir .. "/audit.log"
    local pol = hc.write(dir .. "/t.lua", 'return { methods = { "sys.*" }, authorize = function(c) ' ..
      'if c.method == "sys.sleep" then return false, "no" end return true end }\n')
    local srv = hc.serve { policy = pol, args = { "--audit", log } }
    local a, b = hc.connect(srv.sock), hc.connect(srv.sock)
    a:send(req(1, "sys.ping") .. "\n")
    assert.is_string(a:recv_line(2))
    b:send(req(2, "sys.sleep", '{"ms":1}') .. "\n")
    assert.is_string(b:recv_line(2))
    local lines = audit_lines(log, 2)
    assert.are.equal(2, #lines)
    local x, y = decode(lines[1]), decode(lines[2])
    assert.are_not.equal(x.session, y.session)
    assert.are.equal("EACCES", y.errno)
    assert.are.equal(-32001, y.outcome)
    a:close()
    b:close()
  end)

  it("ids in audit lines are the raw ids", function()
    local dir = hc.tmpdir()
    local log = dir .. "/audit.log"
    local srv = hc.serve { policy = policy(), args = { "--audit", log } }
    local c = hc.connect(srv.sock)
    c:send('{"jsonrpc":"2.0","id":9007199254740993,"method":"sys.ping"}\n')
    assert.is_string(c:recv_line(2))
    local lines = audit_lines(log, 1)
    assert.truthy(lines[1]:find('"id":9007199254740993,', 1, true), lines[1])
    c:close()
  end)
end)
