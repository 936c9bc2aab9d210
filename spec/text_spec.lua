-- spec/text_spec.lua: base64 reads come back from the core as hostcall.text values (core/json.c),
-- which the encoder writes without a Lua string copy. What a handler can do with them, and that
-- the bytes are right at every length around the encoder's block sizes (SIMD: 12 in, 16 out).
-- luacheck: std +busted
local hc = require "spec.support.hc"

local ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- The reference: plain Lua, three bytes at a time.
local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local k = {}
    for j = 3, 0, -1 do
      local x = (v // (64 ^ j)) % 64
      k[#k + 1] = ALPHA:sub(x + 1, x + 1)
    end
    if not b then k[3], k[4] = "=", "=" elseif not c then k[4] = "=" end
    out[#out + 1] = table.concat(k)
  end
  return table.concat(out)
end

local HANDLER = [[
return {
  ["t.probe"] = {
    params = { type = "object", properties = { path = { type = "string" }, n = { type = "integer" } } },
    call = function(ctx, p)
      local t, eof, n = ctx.fs.read(p.path, 0, p.n, "base64")
      if not t then return nil, eof end
      local ok_concat = pcall(function() return t .. "x" end)
      local ok_rep = pcall(string.rep, t, 2)
      return {
        data = t, len = #t, str = tostring(t), ty = type(t), mt = getmetatable(t) == false,
        json = ctx.json.encode({ t }), n = n, eof = eof, concat = ok_concat, rep = ok_rep,
      }
    end,
  },
  ["t.io"] = {
    params = { type = "object", properties = { path = { type = "string" }, n = { type = "integer" } } },
    call = function(ctx, p)
      local h = assert(ctx.fs.open(p.path, "r"))
      local parts, total = {}, 0
      repeat
        local t, eof, n = ctx.io.read(h, p.n, nil, "base64")
        if not t then return nil, eof end
        parts[#parts + 1] = tostring(t)
        total = total + n
      until eof
      ctx.io.close(h)
      return { chunks = parts, total = total }
    end,
  },
}
]]

describe("base64 reads as hostcall.text", function()
  local root, rt
  setup(function()
    root = hc.tmpdir()
    local dir = hc.handler_dir({ ["t.lua"] = HANDLER })
    rt = hc.runtime(string.format(
      'return { methods = { "t.*", "fs.*", "io.*" }, mounts = { ["/d"] = { path = %q, perms = "ro" } } }',
      root), { handlers = { dir } })
  end)
  teardown(function() hc.cleanup() end)

  local function file(n, seed)
    local t = {}
    for i = 1, n do t[i] = string.char((i * 131 + seed) % 256) end
    local s = table.concat(t)
    hc.write(root .. "/f" .. n, s)
    return s
  end

  it("is a locked userdata that has a length, a string form, and encodes as a JSON string", function()
    local s = file(100, 7)
    local _, r = hc.call(rt, hc.req(1, "t.probe", { path = "/d/f100", n = 100 }))
    assert.is_nil(r.error)
    local res = r.result
    assert.equal("userdata", res.ty)
    assert.is_true(res.mt)
    assert.equal(b64(s), res.data)
    assert.equal(b64(s), res.str)
    assert.equal(#b64(s), res.len)
    assert.equal('["' .. b64(s) .. '"]', res.json)
    assert.equal(100, res.n)
    assert.is_true(res.eof)
    assert.is_false(res.concat)   -- not a string: tostring() first
    assert.is_false(res.rep)
  end)

  it("matches a plain reference at every length from 0 to 100 and around 4 KiB", function()
    local lens = {}
    for n = 0, 100 do lens[#lens + 1] = n end
    for n = 4080, 4110 do lens[#lens + 1] = n end
    for _, n in ipairs(lens) do
      local s = file(n, n)
      local _, r = hc.call(rt, hc.req(1, "fs.read", { path = "/d/f" .. n, length = n + 5 }))
      assert.is_nil(r.error, "length " .. n)
      assert.equal(b64(s), r.result.data, "length " .. n)
      assert.equal(n, r.result.bytes_read)
      -- and a read cut short by the caller's length
      local k = n // 2
      _, r = hc.call(rt, hc.req(2, "fs.read", { path = "/d/f" .. n, length = k, offset = 1 }))
      local want = math.max(0, math.min(k, n - 1))
      assert.equal(b64(s:sub(2, 1 + want)), r.result.data, "length " .. n .. " cut at " .. k)
      assert.equal(want, r.result.bytes_read)
    end
  end)

  it("streams through io.read in chunks that are not multiples of three", function()
    local s = file(10007, 3)
    for _, chunk in ipairs({ 1, 7, 1000, 4096, 65536 }) do
      local _, r = hc.call(rt, hc.req(1, "t.io", { path = "/d/f10007", n = chunk }))
      assert.is_nil(r.error)
      assert.equal(10007, r.result.total)
      local pos = 1
      for i, c in ipairs(r.result.chunks) do
        local len = math.min(chunk, 10007 - (pos - 1))
        assert.equal(b64(s:sub(pos, pos + len - 1)), c, "chunk " .. i .. " of " .. chunk)
        pos = pos + len
      end
      assert.equal(10008, pos)
    end
  end)

  it("refuses an unknown encoding name", function()
    file(10, 1)
    local dir = hc.handler_dir({ ["u.lua"] = [[
      return { ["u.bad"] = { call = function(ctx)
        local ok, err = pcall(ctx.fs.read, "/d/f10", 0, 10, "hex")
        return { ok = ok, err = tostring(err) }
      end } }
    ]] })
    local rt2 = hc.runtime(string.format(
      'return { methods = { "u.*" }, mounts = { ["/d"] = { path = %q, perms = "ro" } } }', root),
      { handlers = { dir } })
    local _, r = hc.call(rt2, hc.req(1, "u.bad", {}))
    assert.is_false(r.result.ok)
    assert.matches("invalid option 'hex'", r.result.err, 1, true)
  end)
end)
