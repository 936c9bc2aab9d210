-- End-to-end tests of the wire protocol (CONTRACT.md sections 3, 7, 8, 9) through the in-process
-- Lua module: JSON-RPC 2.0 to the letter, the order of checks, ids, the JSON codec at the edge,
-- handler files, the authorize hook, policy errors and sys.describe.
-- Run: busted --lua=lua5.4 spec/rpc_spec.lua
-- luacheck: std +busted
local hc = require "spec.support.hc"

local req, decode = hc.req, hc.decode

-- A runtime granting sys.* (plus extra handler dirs / policy source when given).
local function sys_rt(src, opts) return hc.runtime(src or hc.SYS_ALL, opts) end

-- Asserts resp is a single error response with this code and raw id; returns the decoded value.
local function assert_error(resp, code, raw_id)
  assert.is_string(resp, "expected a response, got nil")
  local v = decode(resp)
  assert.are.equal("2.0", v.jsonrpc)
  assert.is_table(v.error, "expected an error: " .. resp)
  assert.is_nil(v.result)
  assert.are.equal(code, v.error.code, resp)
  assert.is_string(v.error.message)
  if raw_id then assert.are.equal(raw_id, hc.raw_id(resp), resp) end
  return v
end

local function assert_result(resp, raw_id)
  assert.is_string(resp, "expected a response, got nil")
  local v = decode(resp)
  assert.are.equal("2.0", v.jsonrpc)
  assert.is_nil(v.error, resp)
  assert.is_not_nil(v.result, resp)
  if raw_id then assert.are.equal(raw_id, hc.raw_id(resp), resp) end
  return v
end

-- Members of a batch response (an array), indexed by the decoded id (null ids collected apart).
local function by_id(resp)
  assert.is_string(resp)
  local arr = decode(resp)
  assert.are.equal("[", resp:sub(1, 1), "a batch answer is an array: " .. resp)
  local map, nulls = {}, {}
  for _, m in ipairs(arr) do
    if m.id == hc.null then nulls[#nulls + 1] = m else map[m.id] = m end
  end
  return map, nulls, arr
end

local function still_serves(rt)
  assert_result(rt:call(req(424242, "sys.ping")), "424242")
end

after_each(hc.cleanup)

describe("JSON-RPC 2.0 specification examples", function()
  local rt
  before_each(function() rt = sys_rt() end)
  after_each(function() rt:close() end)

  it("rpc call with positional parameters", function()
    local resp = rt:call('{"jsonrpc": "2.0", "method": "sys.ping", "params": [42, 23], "id": 1}')
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', resp)
    resp = rt:call('{"jsonrpc": "2.0", "method": "sys.ping", "params": [23, 42], "id": 2}')
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', resp)
  end)

  it("rpc call with named parameters", function()
    local resp = rt:call('{"jsonrpc": "2.0", "method": "sys.ping", ' ..
                         '"params": {"subtrahend": 23, "minuend": 42}, "id": 3}')
    assert.are.equal('{"jsonrpc":"2.0","id":3,"result":{}}', resp)
    resp = rt:call('{"jsonrpc": "2.0", "method": "sys.sleep", "params": {"ms": 1}, "id": 4}')
    assert.are.equal('{"jsonrpc":"2.0","id":4,"result":{}}', resp)
  end)

  it("a call without params, and params given positionally to a by-name method", function()
    assert.are.equal('{"jsonrpc":"2.0","id":5,"result":{}}', rt:call(req(5, "sys.ping")))
    local v = assert_error(rt:call('{"jsonrpc":"2.0","method":"sys.sleep","params":[1],"id":6}'), -32602, "6")
    assert.matches("params", v.error.message)
  end)

  it("a notification gets no response, even for a method that does not exist", function()
    assert.is_nil(rt:call('{"jsonrpc": "2.0", "method": "sys.ping", "params": [1,2,3,4,5]}'))
    assert.is_nil(rt:call('{"jsonrpc": "2.0", "method": "foobar"}'))
    assert.is_nil(rt:call('{"jsonrpc": "2.0", "method": "sys.sleep", "params": {"ms": "bad"}}'))
    still_serves(rt)
  end)

  it("rpc call of non-existent method", function()
    assert_error(rt:call('{"jsonrpc": "2.0", "method": "foobar", "id": "1"}'), -32601, '"1"')
  end)

  it("rpc call with invalid JSON", function()
    local resp = rt:call('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]')
    assert_error(resp, -32700, "null")
  end)

  it("rpc call with invalid Request object", function()
    assert_error(rt:call('{"jsonrpc": "2.0", "method": 1, "params": "bar"}'), -32600, "null")
  end)

  it("rpc call Batch, invalid JSON", function()
    local resp = rt:call('[\n  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},\n' ..
                         '  {"jsonrpc": "2.0", "method"\n]')
    assert.are.equal("{", resp:sub(1, 1), "a single error, not an array")
    assert_error(resp, -32700, "null")
  end)

  it("rpc call with an empty Array: one error object, not an array", function()
    local resp = rt:call("[]")
    assert.are.equal("{", resp:sub(1, 1))
    assert_error(resp, -32600, "null")
    assert_error(rt:call(" [ \n ] "), -32600, "null")
  end)

  it("rpc call with an invalid Batch (but not empty)", function()
    local _, nulls, arr = by_id(rt:call("[1]"))
    assert.are.equal(1, #arr)
    assert.are.equal(1, #nulls)
    assert.are.equal(-32600, nulls[1].error.code)
  end)

  it("rpc call with invalid Batch", function()
    local _, nulls, arr = by_id(rt:call("[1,2,3]"))
    assert.are.equal(3, #arr)
    for _, m in ipairs(nulls) do
      assert.are.equal("2.0", m.jsonrpc)
      assert.are.equal(-32600, m.error.code)
    end
    assert.are.equal(3, #nulls)
  end)

  it("rpc call Batch (mixed)", function()
    local resp = rt:call([=[[
        {"jsonrpc": "2.0", "method": "sys.ping", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "sys.ping", "params": [7]},
        {"jsonrpc": "2.0", "method": "sys.sleep", "params": {"ms": 5}, "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "sys.describe", "id": "9"}
    ]]=])
    local map, nulls, arr = by_id(resp)
    assert.are.equal(5, #arr)
    assert.are.same({}, map["1"].result)
    assert.are.same({}, map["2"].result)
    assert.are.equal(1, #nulls)
    assert.are.equal(-32600, nulls[1].error.code)
    assert.are.equal(-32601, map["5"].error.code)
    assert.is_string(map["9"].result.openrpc)
  end)

  it("rpc call Batch (all notifications): no response at all", function()
    assert.is_nil(rt:call([=[[
        {"jsonrpc": "2.0", "method": "sys.ping", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "sys.ping", "params": [7]},
        {"jsonrpc": "2.0", "method": "no.such.method"}
    ]]=]))
    still_serves(rt)
  end)

  it("a batch of 10,000 calls is answered in full, quickly", function()
    local parts = {}
    for i = 1, 10000 do parts[i] = req(i, "sys.ping") end
    local t0 = hc.now()
    local map, _, arr = by_id(rt:call("[" .. table.concat(parts, ",") .. "]"))
    assert.are.equal(10000, #arr)
    assert.are.same({}, map[10000].result)
    assert.is_true(hc.now() - t0 < 3, "took " .. (hc.now() - t0) .. " s")
  end)

  it("a batch's sleeps run concurrently and every answer comes back in one array", function()
    local parts = {}
    for i = 1, 10 do parts[i] = req(i, "sys.sleep", '{"ms":100}') end
    local t0 = hc.now()
    local map, _, arr = by_id(rt:call("[" .. table.concat(parts, ",") .. "]"))
    local dt = hc.now() - t0
    assert.are.equal(10, #arr)
    for i = 1, 10 do assert.are.same({}, map[i].result) end
    assert.is_true(dt < 0.6, "10 x 100 ms sleeps in a batch took " .. dt .. " s")
  end)
end)

describe("invalid requests (-32600)", function()
  local rt
  before_each(function() rt = sys_rt() end)
  after_each(function() rt:close() end)

  local cases = {
    ["jsonrpc missing"] = '{"id":1,"method":"sys.ping"}',
    ['jsonrpc "1.0"'] = '{"jsonrpc":"1.0","id":1,"method":"sys.ping"}',
    ["jsonrpc a number"] = '{"jsonrpc":2.0,"id":1,"method":"sys.ping"}',
    ['jsonrpc "2.0 "'] = '{"jsonrpc":"2.0 ","id":1,"method":"sys.ping"}',
    ["method missing"] = '{"jsonrpc":"2.0","id":1}',
    ["method a number"] = '{"jsonrpc":"2.0","id":1,"method":1}',
    ["method null"] = '{"jsonrpc":"2.0","id":1,"method":null}',
    ["params a string"] = '{"jsonrpc":"2.0","id":1,"method":"sys.ping","params":"x"}',
    ["params a number"] = '{"jsonrpc":"2.0","id":1,"method":"sys.ping","params":3}',
    ["params true"] = '{"jsonrpc":"2.0","id":1,"method":"sys.ping","params":true}',
    ["params null"] = '{"jsonrpc":"2.0","id":1,"method":"sys.ping","params":null}',
    ["an empty object"] = "{}",
  }
  for name, text in pairs(cases) do
    it(name .. " -> -32600 with the request's id (or null)", function()
      local v = assert_error(rt:call(text), -32600)
      local rid = hc.raw_id(rt:call(text))
      assert.is_true(rid == "1" or rid == "null", "id " .. tostring(rid))
      assert.is_nil(v.result)
      still_serves(rt)
    end)
  end

  for name, idtext in pairs { ["an object"] = '{"a":1}', ["an array"] = "[1]", ["true"] = "true",
                              ["false"] = "false" } do
    it("id " .. name .. " -> -32600 with id null", function()
      assert_error(rt:call('{"jsonrpc":"2.0","id":' .. idtext .. ',"method":"sys.ping"}'), -32600, "null")
    end)
  end

  for _, top in ipairs { "1", '"x"', "null", "true", "false", "3.5", '""' } do
    it("a top-level " .. top .. " -> one -32600 with id null", function()
      local resp = rt:call(top)
      assert.are.equal("{", resp:sub(1, 1))
      assert_error(resp, -32600, "null")
    end)
  end

  it("a batch mixing valid, invalid and notifications answers each non-notification", function()
    local map, nulls, arr = by_id(rt:call(
      '[' .. req(1, "sys.ping") .. ',{"jsonrpc":"1.0","id":2,"method":"sys.ping"},' ..
      req(nil, "sys.ping") .. ',"str",' .. req(3, "nope") .. ',{"jsonrpc":"2.0","id":{},"method":"x"}]'))
    assert.are.equal(5, #arr)
    assert.are.same({}, map[1].result)
    assert.are.equal(-32600, map[2].error.code)
    assert.are.equal(-32601, map[3].error.code)
    assert.are.equal(2, #nulls)
    for _, m in ipairs(nulls) do assert.are.equal(-32600, m.error.code) end
  end)

  it("a nested batch is not a request", function()
    local _, nulls, arr = by_id(rt:call("[[" .. req(1, "sys.ping") .. "]]"))
    assert.are.equal(1, #arr)
    assert.are.equal(-32600, nulls[1].error.code)
  end)

  it("duplicate envelope members are refused, never half-applied", function()
    for _, text in ipairs {
      '{"jsonrpc":"2.0","id":1,"method":"sys.ping","method":"sys.exit"}',
      '{"jsonrpc":"2.0","id":1,"id":2,"method":"sys.ping"}',
      '{"jsonrpc":"2.0","jsonrpc":"1.0","id":1,"method":"sys.ping"}',
      '{"jsonrpc":"2.0","id":1,"method":"sys.sleep","params":{"ms":1},"params":{"ms":2}}',
    } do
      local v = decode(rt:call(text))
      assert.is_table(v.error, text)
      assert.is_true(v.error.code == -32600 or v.error.code == -32700, text)
      if v.error.code == -32700 then assert.are.equal(hc.null, v.id) end
    end
  end)

  it("duplicate keys inside params are an error (and -32700 always has id null)", function()
    local resp = rt:call('{"jsonrpc":"2.0","id":7,"method":"sys.sleep","params":{"ms":1,"ms":50000}}')
    local v = decode(resp)
    assert.is_table(v.error, resp)
    if v.error.code == -32700 then
      assert.are.equal("null", hc.raw_id(resp), "contract 3: parse error -32700 with id: null")
    else
      assert.are.equal(-32602, v.error.code)
      assert.are.equal("7", hc.raw_id(resp))
    end
  end)
end)

describe("parse errors (-32700, id null)", function()
  local rt
  before_each(function() rt = sys_rt() end)
  after_each(function() rt:close() end)

  local cases = {
    ["invalid UTF-8 in the method"] = '{"jsonrpc":"2.0","id":1,"method":"sys.p\255ng"}',
    ["invalid UTF-8 in a string id"] = '{"jsonrpc":"2.0","id":"\192\175","method":"sys.ping"}',
    ["invalid UTF-8 in params"] = '{"jsonrpc":"2.0","id":1,"method":"sys.ping","params":{"a":"\237\160\128"}}',
    ["a truncated UTF-8 sequence"] = '{"jsonrpc":"2.0","id":1,"method":"sys.ping","params":["\226\130"]}',
    ["UTF-8 above U+10FFFF"] = '{"jsonrpc":"2.0","id":1,"method":"sys.ping","params":["\244\144\128\128"]}',
    ["a lone high surrogate escape in params"] = '{"jsonrpc":"2.0","id":1,"method":"sys.ping","params":["\\ud800"]}',
    ["a lone low surrogate escape in the id"] = '{"jsonrpc":"2.0","id":"\\udc00","method":"sys.ping"}',
    ["a high surrogate followed by a non-surrogate"] =
      '{"jsonrpc":"2.0","id":1,"method":"sys.ping","params":["\\ud800\\u0041"]}',
    ["NaN"] = '{"jsonrpc":"2.0","id":1,"method":"sys.ping","params":[NaN]}',
    ["Infinity"] = '{"jsonrpc":"2.0","id":1,"method":"sys.ping","params":[Infinity]}',
    ["-Infinity as an id"] = '{"jsonrpc":"2.0","id":-Infinity,"method":"sys.ping"}',
    ["a hex number"] = '{"jsonrpc":"2.0","id":0x10,"method":"sys.ping"}',
    ["a leading zero"] = '{"jsonrpc":"2.0","id":01,"method":"sys.ping"}',
    ["a leading plus"] = '{"jsonrpc":"2.0","id":+1,"method":"sys.ping"}',
    ["a bare decimal point"] = '{"jsonrpc":"2.0","id":1.,"method":"sys.ping"}',
    ["a raw control character in a string"] = '{"jsonrpc":"2.0","id":"a\tb","method":"sys.ping"}',
    ["a bad escape"] = '{"jsonrpc":"2.0","id":"\\x41","method":"sys.ping"}',
    ["single quotes"] = "{'jsonrpc':'2.0','id':1,'method':'sys.ping'}",
    ["a trailing comma"] = '{"jsonrpc":"2.0","id":1,"method":"sys.ping",}',
    ["trailing garbage"] = '{"jsonrpc":"2.0","id":1,"method":"sys.ping"} x',
    ["two JSON texts"] = '{"jsonrpc":"2.0","id":1,"method":"sys.ping"}{"jsonrpc":"2.0","id":2,"method":"sys.ping"}',
    ["a truncated text"] = '{"jsonrpc":"2.0","id":1,"method":"sys.ping"',
    ["an empty frame"] = "",
    ["only whitespace"] = " \t\r\n ",
    ["a NUL byte outside strings"] = '{"jsonrpc":"2.0","id":1,"method":"sys.ping"}\0',
    ["a comment"] = '{"jsonrpc":"2.0","id":1,"method":"sys.ping"} // hi',
  }
  for name, text in pairs(cases) do
    it(name, function()
      local resp = rt:call(text)
      assert.are.equal("{", resp:sub(1, 1))
      assert_error(resp, -32700, "null")
      still_serves(rt)
    end)
  end

  it("100,000 levels of nesting: an error, fast, and the runtime lives on", function()
    for _, text in ipairs {
      string.rep("[", 100000) .. string.rep("]", 100000),
      string.rep("[", 100000),
      '{"jsonrpc":"2.0","id":1,"method":"sys.ping","params":' .. string.rep('{"a":', 100000) ..
        "1" .. string.rep("}", 100000) .. "}",
      '{"jsonrpc":"2.0","id":1,"method":"sys.ping","params":' .. string.rep("[", 100000) ..
        string.rep("]", 100000) .. "}",
    } do
      local t0 = hc.now()
      local resp = rt:call(text)
      local dt = hc.now() - t0
      local v = decode(resp)
      assert.is_table(v.error)
      assert.is_true(v.error.code == -32700 or v.error.code == -32600 or v.error.code == -32002, resp)
      assert.is_true(dt < 1, "took " .. dt .. " s")
    end
    still_serves(rt)
  end)

  it("moderate nesting inside params is fine", function()
    local text = '{"jsonrpc":"2.0","id":1,"method":"sys.ping","params":' .. string.rep("[", 60) ..
      string.rep("]", 60) .. "}"
    assert_result(rt:call(text), "1")
  end)

  it("a UTF-8 BOM before the text: either ignored or a parse error, never a crash", function()
    local resp = rt:call("\239\187\191" .. req(1, "sys.ping"))
    local v = decode(resp)
    if v.error then assert_error(resp, -32700, "null") else assert_result(resp, "1") end
    still_serves(rt)
  end)

  it("whitespace around the text is allowed", function()
    assert_result(rt:call(" \t\r\n " .. req(1, "sys.ping") .. " \r\n\t "), "1")
    assert.are.equal(2, #decode(rt:call("\n[ " .. req(1, "sys.ping") .. " ,\n " .. req(2, "sys.ping") .. " ]\n")))
  end)

  it("valid escapes and raw UTF-8 in params are accepted", function()
    assert_result(rt:call('{"jsonrpc":"2.0","id":1,"method":"sys.ping",' ..
                          '"params":["\\ud83d\\ude00","\240\159\152\128","\\u0000","\\/"]}'), "1")
  end)
end)

describe("method names", function()
  local rt
  before_each(function() rt = sys_rt() end)
  after_each(function() rt:close() end)

  it("method not found -32601", function()
    for _, m in ipairs { "nope", "sys.pin", "sys.ping ", "SYS.PING", "sys", "sys.", ".sys.ping", "" } do
      assert_error(rt:call(req(1, m)), -32601, "1")
    end
  end)

  -- Reading of the contract: a method member that is a JSON string is a valid Request object
  -- (JSON-RPC 2.0 section 4); a name no method has is "method not found", whatever its length
  -- or content. Above all, it must never reach a method it merely starts with.
  it("a very long method name is method not found (-32601), never a crash", function()
    for _, n in ipairs { 257, 4096, 1000000 } do
      local resp = rt:call(req(1, "sys.ping" .. string.rep("x", n)))
      assert_error(resp, -32601, "1")
    end
    still_serves(rt)
  end)

  it("a method name containing a NUL escape is not the name before the NUL (-32601)", function()
    local resp = rt:call('{"jsonrpc":"2.0","id":1,"method":"sys.ping\\u0000.evil"}')
    assert_error(resp, -32601, "1")
    resp = rt:call('{"jsonrpc":"2.0","id":2,"method":"sys.ping\\u0000"}')
    assert_error(resp, -32601, "2")
  end)

  it("escaped method names are decoded before lookup", function()
    assert_result(rt:call('{"jsonrpc":"2.0","id":1,"method":"sys.\\u0070ing"}'), "1")
  end)

  it("rpc.* names are reserved: -32601, except rpc.discover", function()
    for _, m in ipairs { "rpc.foo", "rpc.describe", "rpc.", "rpc.discover.x", "rpc.Discover" } do
      assert_error(rt:call(req(1, m)), -32601, "1")
    end
    assert_result(rt:call(req(1, "rpc.discover")), "1")
  end)

  it("rpc.discover answers exactly what sys.describe answers", function()
    local a = hc.raw_result(rt:call(req(1, "rpc.discover")))
    local b = hc.raw_result(rt:call(req(1, "sys.describe")))
    assert.is_string(a)
    assert.are.equal(b, a)
    assert.are.equal(rt:describe(), a)
  end)

  it("$/cancelRequest for an unknown id: no effect, no response", function()
    assert.is_nil(rt:call('{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":12345}}'))
    assert.is_nil(rt:call('{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"nope"}}'))
    assert.is_nil(rt:call('{"jsonrpc":"2.0","method":"$/cancelRequest"}'))
    assert.is_nil(rt:call('{"jsonrpc":"2.0","method":"$/cancelRequest","params":[1]}'))
    still_serves(rt)
  end)

  it("other $/ notifications are ignored without a response", function()
    assert.is_nil(rt:call('{"jsonrpc":"2.0","method":"$/progress","params":{"token":1}}'))
    still_serves(rt)
  end)
end)

describe("ids round-trip exactly", function()
  local rt
  before_each(function() rt = sys_rt() end)
  after_each(function() rt:close() end)

  for _, id in ipairs { "9007199254740993", "-9007199254740993", "-0", "1e3", "1E+3", "1.5",
                        "0", "-1", "12345678901234567890123", "1.0", "2.50e-3",
                        '"\\u00e9"', '"\\\\"', '"\\"quoted\\""', '"a\\/b"', '"\\ud83d\\ude00"',
                        '"\195\169"', '""', '"1"', '" spaced "', "null" } do
    it(id, function()
      local resp = rt:call('{"jsonrpc":"2.0","id":' .. id .. ',"method":"sys.ping"}')
      assert.are.equal('{"jsonrpc":"2.0","id":' .. id .. ',"result":{}}', resp)
      resp = rt:call('{"jsonrpc":"2.0","id":' .. id .. ',"method":"no.such"}')
      assert.are.equal(id, hc.raw_id(resp))
    end)
  end

  it("id null is a request, not a notification", function()
    assert.are.equal('{"jsonrpc":"2.0","id":null,"result":{}}',
      rt:call('{"jsonrpc":"2.0","id":null,"method":"sys.ping"}'))
  end)

  it("the id may come before or after the other members, with any whitespace", function()
    assert.are.equal('{"jsonrpc":"2.0","id":77,"result":{}}',
      rt:call('{ "method" : "sys.ping" , "id" :\n 77 , "jsonrpc" : "2.0" }'))
  end)

  it("ids round-trip inside batches too", function()
    local resp = rt:call('[{"jsonrpc":"2.0","id":9007199254740993,"method":"sys.ping"},' ..
                         '{"jsonrpc":"2.0","id":"\\u00e9\\\\","method":"sys.ping"}]')
    assert.truthy(resp:find('"id":9007199254740993,', 1, true))
    assert.truthy(resp:find('"id":"\\u00e9\\\\",', 1, true))
  end)
end)

describe("params, grants and the order of checks", function()
  it("invalid params -32602 name the field", function()
    local rt = sys_rt()
    local cases = {
      { '{"ms":"soon"}', "ms" },
      { '{"ms":-1}', "ms" },
      { '{"ms":60001}', "ms" },
      { '{"ms":1.5}', "ms" },
      { '{"ms":1,"extra":true}', "extra" },
      { "{}", "ms" },
    }
    for _, c in ipairs(cases) do
      local v = assert_error(rt:call(req(1, "sys.sleep", c[1])), -32602, "1")
      assert.truthy(v.error.message:find(c[2], 1, true), c[1] .. " -> " .. v.error.message)
    end
    local v = assert_error(rt:call(req(2, "sys.exit", '{"code":256}')), -32602, "2")
    assert.truthy(v.error.message:find("code", 1, true))
    rt:close()
  end)

  it("a method that exists but is not granted is -32001 EACCES with data.errno", function()
    local rt = hc.runtime('return { methods = { "sys.ping" } }')
    local v = assert_error(rt:call(req(1, "sys.sleep", '{"ms":1}')), -32001, "1")
    assert.are.equal("EACCES", v.error.data.errno)
    v = assert_error(rt:call(req(2, "sys.describe")), -32001, "2")
    assert.are.equal("EACCES", v.error.data.errno)
    assert_result(rt:call(req(3, "sys.ping")), "3")
    rt:close()
  end)

  it("a policy with no methods grants nothing", function()
    local rt = hc.runtime("return {}")
    local v = assert_error(rt:call(req(1, "sys.ping")), -32001, "1")
    assert.are.equal("EACCES", v.error.data.errno)
    rt:close()
  end)

  it("not granted beats bad params; a nonexistent method with bad params is -32601", function()
    local rt = hc.runtime('return { methods = { "sys.ping" } }')
    local v = assert_error(rt:call(req(1, "sys.sleep", '{"ms":"x"}')), -32001, "1")
    assert.are.equal("EACCES", v.error.data.errno)
    assert_error(rt:call(req(2, "nope.sleep", '{"ms":"x"}')), -32601, "2")
    assert_error(rt:call(req(3, "sys.nope", '{"ms":"x"}')), -32601, "3")
    rt:close()
  end)

  it("bad params beat the authorize hook (params first, then the hook)", function()
    local rt = hc.runtime('return { methods = { "sys.*" }, authorize = function() return false, "never" end }')
    assert_error(rt:call(req(1, "sys.sleep", '{"ms":"x"}')), -32602, "1")
    local v = assert_error(rt:call(req(2, "sys.sleep", '{"ms":1}')), -32001, "2")
    assert.are.equal("never", v.error.message)
    rt:close()
  end)

  it("a grant pattern like sys.* does not grant a method merely sharing a prefix", function()
    local dir = hc.handler_dir { ["x.lua"] = [[return {
      ["sysx.ping"] = { call = function() return {} end },
      ["sys.deep.ping"] = { call = function() return {} end } }]] }
    local rt = hc.runtime('return { methods = { "sys.*" } }', { handlers = { dir } })
    local v = assert_error(rt:call(req(1, "sysx.ping")), -32001, "1")
    assert.are.equal("EACCES", v.error.data.errno)
    rt:close()
  end)
end)

describe("handler files", function()
  local HANDLERS = [[
return {
  ["t.raise"] = { call = function() error("boom") end },
  ["t.raise_table"] = { call = function() error({ code = 1 }) end },
  ["t.enoent"] = { call = function() return nil, "ENOENT", "no such key" end },
  ["t.enoent_bare"] = { call = function() return nil, "ENOENT" end },
  ["t.badeno"] = { call = function() return nil, "not an errno", "x" end },
  ["t.nothing"] = { call = function() end },
  ["t.func"] = { call = function() return function() end end },
  ["t.func_inside"] = { call = function() return { f = function() end } end },
  ["t.nan"] = { call = function() return { x = 0/0 } end },
  ["t.badutf8"] = { call = function() return { s = "\255" } end },
  ["t.cycle"] = { call = function() local t = {} t.t = t return t end },
  ["t.empty_list"] = { call = function(ctx) return ctx.array() end },
  ["t.empty_obj"] = { call = function() return {} end },
  ["t.nested_empty"] = { call = function(ctx) return { a = ctx.array(), o = {}, l = { 1, 2 } } end },
  ["t.big"] = { call = function() return { n = 1 << 62, m = math.mininteger, x = math.maxinteger } end },
  ["t.float"] = { call = function() return { f = 0.1, g = 2^62 } end },
  ["t.string"] = { call = function() return "just a string" end },
  ["t.false"] = { call = function() return false end },
  ["t.null"] = { call = function(ctx) return ctx.null end },
  ["t.echo"] = { call = function(_, p) return p end },
  ["t.sparse"] = { call = function() return { [1] = 1, [3] = 3 } end },
  ["t.mixed"] = { call = function() return { 1, 2, x = 3 } end },
  ["t.yield"] = { call = function() coroutine.yield("not a host wait") return {} end },
  ["t.wrap_sleep"] = { call = function(ctx)
    local co = coroutine.wrap(function() ctx.sleep(20) coroutine.yield(5) return 6 end)
    return { a = co(), b = co() } end },
  ["t.self_resume"] = { call = function()
    local ok = coroutine.resume(coroutine.running())
    return { ok = ok } end },
  ["t.bad_exit"] = { call = function(ctx) ctx.exit(300) return {} end },
  ["t.bad_sleep"] = { call = function(ctx) ctx.sleep(-1) return {} end },
  ["t.tamper"] = { call = function()
    local n = 0
    if pcall(function() string.format = function() return "pwned" end end) then n = n + 1 end
    if pcall(function() getmetatable("").__index.format = nil end) then n = n + 1 end
    if pcall(function() table.concat = nil end) then n = n + 1 end
    return { tampered = n } end },
  ["t.where"] = { call = function() return { where = debug and "debug" or "no debug",
                                             io = io and "io" or "no io", os_exit = (os and os.exit) and "yes" or "no",
                                             req = require and "require" or "no require" } end },
}
]]
  local rt, dir
  before_each(function()
    dir = hc.handler_dir { ["t.lua"] = HANDLERS }
    rt = hc.runtime('return { methods = { "sys.*", "t.*" } }', { handlers = { dir } })
  end)
  after_each(function() rt:close() end)

  it("an error raised in call is -32603, carries no host path, and the runtime keeps serving", function()
    local v = assert_error(rt:call(req(1, "t.raise")), -32603, "1")
    assert.truthy(v.error.message:find("boom", 1, true))
    assert.truthy(v.error.message:find("t.lua:", 1, true), v.error.message)
    assert.falsy(v.error.message:find(dir, 1, true), "host path in: " .. v.error.message)
    assert.falsy(v.error.message:find("/tmp", 1, true), "host path in: " .. v.error.message)
    assert_error(rt:call(req(2, "t.raise_table")), -32603, "2")
    still_serves(rt)
  end)

  it('nil, "ENOENT", "msg" is -32000 with data.errno ENOENT', function()
    local v = assert_error(rt:call(req(1, "t.enoent")), -32000, "1")
    assert.are.equal("ENOENT", v.error.data.errno)
    assert.are.equal("no such key", v.error.message)
    v = assert_error(rt:call(req(2, "t.enoent_bare")), -32000, "2")
    assert.are.equal("ENOENT", v.error.data.errno)
  end)

  it("an invalid errno name is -32603", function()
    local v = assert_error(rt:call(req(1, "t.badeno")), -32603, "1")
    assert.is_nil(v.error.data and v.error.data.errno)
  end)

  it("returning nothing is -32603", function()
    assert_error(rt:call(req(1, "t.nothing")), -32603, "1")
  end)

  it("returning a value that is not JSON is -32603", function()
    for i, m in ipairs { "t.func", "t.func_inside", "t.nan", "t.badutf8", "t.cycle", "t.sparse", "t.mixed" } do
      local resp = rt:call(req(i, m))
      assert_error(resp, -32603, tostring(i))
    end
    still_serves(rt)
  end)

  it("ctx.array() is [], an empty table is {}, nested too", function()
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":[]}', rt:call(req(1, "t.empty_list")))
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":{}}', rt:call(req(2, "t.empty_obj")))
    local raw = hc.raw_result(rt:call(req(3, "t.nested_empty")))
    assert.truthy(raw:find('"a":[]', 1, true), raw)
    assert.truthy(raw:find('"o":{}', 1, true), raw)
    assert.truthy(raw:find('"l":[1,2]', 1, true), raw)
  end)

  it("integers are exact: 2^62, mininteger, maxinteger", function()
    local raw = hc.raw_result(rt:call(req(1, "t.big")))
    assert.truthy(raw:find('"n":4611686018427387904', 1, true), raw)
    assert.truthy(raw:find('"m":-9223372036854775808', 1, true), raw)
    assert.truthy(raw:find('"x":9223372036854775807', 1, true), raw)
  end)

  it("floats keep their value", function()
    local raw = hc.raw_result(rt:call(req(1, "t.float")))
    local v = decode(raw)
    assert.are.equal(0.1, v.f)
    assert.are.equal(2^62, v.g)
  end)

  it("a non-table result that is JSON is passed on as is", function()
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":"just a string"}', rt:call(req(1, "t.string")))
    assert.are.equal('{"jsonrpc":"2.0","id":2,"result":false}', rt:call(req(2, "t.false")))
    assert.are.equal('{"jsonrpc":"2.0","id":3,"result":null}', rt:call(req(3, "t.null")))
  end)

  it("params reach the handler exactly: big integers, [] vs {}, null, unicode", function()
    local params = '{"big":9007199254740993,"neg":-9223372036854775808,"a":[],"o":{},"n":null,' ..
                   '"s":"\\u00e9\\ud83d\\ude00","f":1.5,"i":3,"nested":{"l":[1,[],{}]}}'
    local raw = hc.raw_result(rt:call(req(1, "t.echo", params)))
    for _, piece in ipairs { '"big":9007199254740993', '"neg":-9223372036854775808', '"a":[]', '"o":{}',
                             '"n":null', '"f":1.5', '"i":3', '"l":[1,[],{}]' } do
      assert.truthy(raw:find(piece, 1, true), piece .. " not in " .. raw)
    end
    assert.are.equal("\195\169\240\159\152\128", decode(raw).s)
  end)

  it("a handler that yields a value of its own is -32603, and the runtime keeps serving", function()
    assert_error(rt:call(req(1, "t.yield")), -32603, "1")
    still_serves(rt)
  end)

  it("a host wait inside a handler's own coroutine still works", function()
    local v = assert_result(rt:call(req(1, "t.wrap_sleep")), "1")
    assert.are.same({ a = 5, b = 6 }, v.result)
  end)

  it("a handler cannot resume its own call's coroutine", function()
    local v = assert_result(rt:call(req(1, "t.self_resume")), "1")
    assert.is_false(v.result.ok)
  end)

  it("ctx.exit and ctx.sleep with bad arguments are -32603, not a crash", function()
    assert_error(rt:call(req(1, "t.bad_exit")), -32603, "1")
    assert_error(rt:call(req(2, "t.bad_sleep")), -32603, "2")
    still_serves(rt)
  end)

  it("a handler cannot tamper with the libraries the runtime itself uses", function()
    local v = assert_result(rt:call(req(1, "t.tamper")), "1")
    assert.are.equal(0, v.result.tampered)
    local e = assert_error(rt:call(req(2, "sys.sleep", '{"ms":"x"}')), -32602, "2")
    assert.truthy(e.error.message:find("ms", 1, true))
    assert.falsy(e.error.message:find("pwned", 1, true))
  end)

  it("handler code sees no io, os.exit, require or debug", function()
    local v = assert_result(rt:call(req(1, "t.where")), "1")
    assert.are.same({ where = "no debug", io = "no io", os_exit = "no", req = "no require" }, v.result)
  end)
end)

describe("limits inside a call (contract 8)", function()
  it("memory: a handler that allocates past limits.memory gets -32002 memory; the runtime lives on", function()
    local dir = hc.handler_dir { ["m.lua"] = [[return {
      ["m.hog"] = { call = function()
        local t = {} for i = 1, 64 do t[i] = string.rep("x", 1024 * 1024) .. i end
        return { n = #t } end },
    }]] }
    local rt = hc.runtime('return { methods = { "sys.*", "m.*" }, limits = { memory = 8 * 1024 * 1024 } }',
                          { handlers = { dir } })
    local v = assert_error(rt:call(req(1, "m.hog")), -32002, "1")
    assert.are.equal("memory", v.error.data.limit)
    still_serves(rt)
    rt:close()
  end)

  it("time: a call that waits past limits.time_ms gets -32002 time", function()
    local rt = hc.runtime('return { methods = { "sys.*" }, limits = { time_ms = 100 } }')
    local t0 = hc.now()
    local v = assert_error(rt:call(req(1, "sys.sleep", '{"ms":2000}')), -32002, "1")
    assert.are.equal("time", v.error.data.limit)
    assert.is_true(hc.now() - t0 < 1)
    rt:close()
  end)

  -- In a child process: a runtime that does not enforce the limit would hang this process.
  it("instructions: a handler that loops forever gets -32002 instructions", function()
    local dir = hc.handler_dir { ["loop.lua"] = [[return {
      ["loop.forever"] = { call = function() local n = 0 while true do n = n + 1 end end },
    }]] }
    local pdir = hc.tmpdir()
    hc.write(pdir .. "/p.lua", 'return { methods = { "loop.*" }, limits = { instructions = 100000, time_ms = 1000 } }')
    local r = hc.cli({ "call", "--policy", pdir .. "/p.lua", "--handlers", dir, "loop.forever" }, { timeout = 5 })
    assert.is_false(r.timed_out, "the call never ended (no instruction limit)")
    assert.are.equal(1, r.code)
    local lines = hc.lines(r.stderr)
    local e = decode(lines[#lines])   -- the error object is the last line (log lines may precede it)
    assert.are.equal(-32002, e.code)
    assert.is_true(e.data.limit == "instructions" or e.data.limit == "time", r.stderr)
  end)

  it("an authorize hook that loops forever does not hang the runtime", function()
    local pdir = hc.tmpdir()
    hc.write(pdir .. "/p.lua", [[return { methods = { "sys.*" }, limits = { instructions = 100000 },
      authorize = function() while true do end end }]])
    local r = hc.cli({ "call", "--policy", pdir .. "/p.lua", "sys.ping" }, { timeout = 5 })
    assert.is_false(r.timed_out, "the call never ended")
    assert.are.equal(1, r.code)
    local lines = hc.lines(r.stderr)
    local e = decode(lines[#lines])
    assert.is_true(e.code == -32001 or e.code == -32002, r.stderr)
  end)
end)

describe("handler load errors", function()
  local function load_fails(files, pattern, extra_check)
    local dir = hc.handler_dir(files)
    local rt, err = hc.try_new { policy_source = 'return { methods = { "sys.*" } }', name = "t.lua",
                                 handlers = { dir } }
    assert.is_nil(rt)
    assert.is_string(err)
    if pattern then assert.matches(pattern, err) end
    assert.falsy(err:find(dir, 1, true), "host directory in: " .. err)
    if extra_check then extra_check(err) end
    -- the same through the CLI: exit 2, the message on stderr
    local pdir = hc.tmpdir()
    hc.write(pdir .. "/p.lua", 'return { methods = { "sys.*" } }')
    local r = hc.cli { "check", "--policy", pdir .. "/p.lua", "--handlers", dir }
    assert.are.equal(2, r.code, r.stderr)
    if pattern then assert.matches(pattern, r.stderr) end
    return err
  end

  it("a syntax error: NAME.lua:LINE: and no host directory", function()
    load_fails({ ["bad.lua"] = "return {\n  [\"x.y\"] = { call = function() end },\n  oops oops\n}" },
               "^bad%.lua:%d+:")
  end)

  it("an error while the file runs: NAME.lua:LINE:", function()
    load_fails({ ["boom.lua"] = "local x = nil\nreturn x.y" }, "^boom%.lua:2:")
  end)

  it("an unknown field in a method definition", function()
    load_fails({ ["f.lua"] = 'return { ["x.y"] = { call = function() end, bogus = 1 } }' }, "bogus")
  end)

  it("a wrongly typed field", function()
    load_fails({ ["f.lua"] = 'return { ["x.y"] = { call = "not a function" } }' }, "call")
    load_fails({ ["f.lua"] = 'return { ["x.y"] = { doc = "no call" } }' }, "call")
  end)

  it("a schema keyword outside the subset: format, pattern", function()
    load_fails({ ["f.lua"] = [[return { ["x.y"] = { call = function() end,
      params = { type = "object", properties = { s = { type = "string", format = "email" } } } } }]] }, "format")
    load_fails({ ["f.lua"] = [[return { ["x.y"] = { call = function() end,
      params = { type = "object", properties = { s = { type = "string", pattern = "^a" } } } } }]] }, "pattern")
    load_fails({ ["f.lua"] = [[return { ["x.y"] = { call = function() end,
      result = { type = "object", patternProperties = { ["^a"] = {} } } } }]] }, "patternProperties")
  end)

  it("a file returning a non-table", function()
    load_fails({ ["n.lua"] = "return 42" }, "n%.lua")
    load_fails({ ["n.lua"] = "" }, "n%.lua")
  end)

  it("two files defining the same method", function()
    load_fails({ ["a.lua"] = 'return { ["x.dup"] = { call = function() end } }',
                 ["b.lua"] = 'return { ["x.dup"] = { call = function() end } }' }, "x%.dup")
  end)

  it("a handler directory redefining a shipped method (sys.ping)", function()
    load_fails({ ["a.lua"] = 'return { ["sys.ping"] = { call = function() return { evil = true } end } }' },
               "sys%.ping")
  end)

  it("a method name starting with rpc. (or $/)", function()
    load_fails({ ["r.lua"] = 'return { ["rpc.discover"] = { call = function() end } }' }, "rpc%.")
    load_fails({ ["r.lua"] = 'return { ["rpc.mine"] = { call = function() end } }' }, "rpc%.")
    load_fails({ ["r.lua"] = 'return { ["$/cancelRequest"] = { call = function() end } }' }, "%$/")
  end)

  it("a file that loops forever while loading fails to load instead of hanging", function()
    local t0 = hc.now()
    load_fails({ ["l.lua"] = "while true do end" }, "l%.lua")
    assert.is_true(hc.now() - t0 < 15)
  end)

  it("a handler directory that does not exist", function()
    local rt, err = hc.try_new { policy_source = hc.SYS_ALL, name = "t.lua", handlers = { "/nonexistent/hc-dir" } }
    assert.is_nil(rt)
    assert.is_string(err)
  end)
end)

describe("the authorize hook", function()
  local ECHO = [[return {
    ["t.echo"] = { params = { type = "object" }, call = function(_, p) return p end },
  }]]

  local function hook_rt(hook)
    local dir = hc.handler_dir { ["t.lua"] = ECHO }
    return hc.runtime('return { methods = { "sys.*", "t.*" }, authorize = ' .. hook .. ' }',
                      { handlers = { dir } })
  end

  it("a refusal with a reason is -32001 EACCES with the reason as message", function()
    local rt = hook_rt [[function(call)
      if call.method == "sys.sleep" and call.params.ms > 10 then return false, "no long naps" end
      return true end]]
    local v = assert_error(rt:call(req(1, "sys.sleep", '{"ms":500}')), -32001, "1")
    assert.are.equal("EACCES", v.error.data.errno)
    assert.are.equal("no long naps", v.error.message)
    assert_result(rt:call(req(2, "sys.sleep", '{"ms":1}')), "2")
    rt:close()
  end)

  it("a refusal without a reason still refuses", function()
    local rt = hook_rt "function() return false end"
    local v = assert_error(rt:call(req(1, "sys.ping")), -32001, "1")
    assert.are.equal("EACCES", v.error.data.errno)
    rt:close()
  end)

  it("only true allows: nil, 1, \"yes\" refuse (fail closed)", function()
    for _, ret in ipairs { "nil", "1", '"yes"', "{}" } do
      local rt = hook_rt("function() return " .. ret .. " end")
      local v = assert_error(rt:call(req(1, "sys.ping")), -32001, "1")
      assert.are.equal("EACCES", v.error.data.errno)
      rt:close()
    end
  end)

  it("a hook that raises refuses (fail closed) and the runtime keeps serving", function()
    local rt = hook_rt 'function(call) if call.method == "sys.ping" then error("hook bug") end return true end'
    local v = assert_error(rt:call(req(1, "sys.ping")), -32001, "1")
    assert.are.equal("EACCES", v.error.data.errno)
    assert_result(rt:call(req(2, "sys.sleep", '{"ms":1}')), "2")
    rt:close()
  end)

  it("a hook that mutates call.params does not change what the handler sees", function()
    local rt = hook_rt [[function(call)
      if call.method == "t.echo" then call.params.who = "mallory"; call.params.added = true
        call.params.list[1] = 99 end
      return true end]]
    local v = assert_result(rt:call(req(1, "t.echo", '{"who":"alice","list":[1,2]}')), "1")
    assert.are.same({ who = "alice", list = { 1, 2 } }, v.result)
    rt:close()
  end)

  it("the hook sees the method and the params as the guest sent them", function()
    local rt = hook_rt [[function(call)
      if call.method == "t.echo" and call.params.key == "secret" then return false, "not that key" end
      return true end]]
    assert.are.equal("not that key", assert_error(rt:call(req(1, "t.echo", '{"key":"secret"}')), -32001).error.message)
    assert_result(rt:call(req(2, "t.echo", '{"key":"public"}')), "2")
    rt:close()
  end)

  it("the hook is not consulted for a method that is not granted or does not exist", function()
    local rt = hc.runtime('return { methods = { "sys.ping" }, authorize = function() return false, "HOOK" end }')
    assert_error(rt:call(req(1, "nope")), -32601, "1")
    local v = assert_error(rt:call(req(2, "sys.sleep", '{"ms":1}')), -32001, "2")
    assert.are_not.equal("HOOK", v.error.message)
    rt:close()
  end)
end)

describe("policy errors end to end", function()
  local function new_fails(src, name)
    local rt, err = hc.try_new { policy_source = src, name = name or "acme.lua" }
    assert.is_nil(rt)
    assert.is_string(err)
    return err
  end

  it("a type error names the field by its path (contract 8's example)", function()
    local err = new_fails('return { mounts = { ["/input"] = { path = "/tmp", perms = "rx" } } }')
    assert.are.equal('acme.lua: mounts["/input"].perms: expected "ro" or "rw"', err)
  end)

  it("limits and methods are checked with their paths", function()
    assert.matches("^acme%.lua: limits%.concurrency: ", new_fails('return { limits = { concurrency = "many" } }'))
    assert.matches("^acme%.lua: limits%.request_bytes: ", new_fails("return { limits = { request_bytes = 0 } }"))
    assert.matches("^acme%.lua: methods", new_fails('return { methods = "sys.*" }'))
    assert.matches("^acme%.lua: ", new_fails("return { bogus_field = 1 }"))
  end)

  it("a syntax error is NAME.lua:LINE:", function()
    assert.matches("^acme%.lua:2:", new_fails("return {\n  tenant = = 1 }"))
  end)

  it("a policy that does not return a table, or reaches for io/os/require", function()
    assert.matches("^acme%.lua", new_fails("return 7"))
    assert.matches("^acme%.lua", new_fails("return { tenant = io.read() }"))
    assert.matches("^acme%.lua", new_fails("return { tenant = os.getenv('HOME') }"))
    assert.matches("^acme%.lua", new_fails("return { tenant = require('os') }"))
  end)

  it("through a file: the message names the file as given, not its directory", function()
    local dir = hc.tmpdir()
    hc.write(dir .. "/acme.lua", "return {\n  limits = { idle_ms = -5 },\n}")
    local rt, err = hc.try_new { policy = dir .. "/acme.lua" }
    assert.is_nil(rt)
    assert.matches("^acme%.lua: limits%.idle_ms: ", err)
    local r = hc.cli({ "check", "--policy", "acme.lua" }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches("acme%.lua: limits%.idle_ms: ", r.stderr)
    assert.falsy(r.stderr:find(dir, 1, true), r.stderr)
  end)

  it("the tenant defaults to the file name without .lua", function()
    local rt = hc.runtime(hc.SYS_ALL, { name = "acme.lua" })
    assert.are.equal("acme", rt:tenant())
    rt:close()
  end)
end)

describe("sys.describe", function()
  it("lists exactly the granted methods (grant sys.ping only: no sys.sleep)", function()
    local rt = hc.runtime('return { methods = { "sys.ping" } }')
    local doc = decode(rt:describe())
    local names = {}
    for _, m in ipairs(doc.methods) do names[#names + 1] = m.name end
    assert.are.same({ "sys.ping" }, names)
    assert.falsy(rt:describe():find("sys.sleep", 1, true))
    rt:close()
  end)

  it("is an OpenRPC 1.x document, methods sorted, with params and result schemas", function()
    local dir = hc.handler_dir { ["z.lua"] = [[return {
      ["a.first"] = { doc = "First.", params = { type = "object", properties = { k = { type = "string" } } },
                      result = { type = "object" }, call = function() return {} end },
      ["zz.last"] = { call = function() return {} end },
    }]] }
    local rt = hc.runtime('return { methods = { "sys.*", "a.*", "zz.*" } }', { handlers = { dir } })
    local resp = rt:call(req(1, "sys.describe"))
    local doc = assert_result(resp, "1").result
    assert.matches("^1%.", doc.openrpc)
    assert.is_string(doc.info.title)
    assert.is_string(doc.info.version)
    local names = {}
    for _, m in ipairs(doc.methods) do
      names[#names + 1] = m.name
      assert.is_table(m.params, m.name)
      assert.is_table(m.result, m.name)
      assert.is_string(m.result.name, m.name)
      assert.is_table(m.result.schema, m.name)
    end
    assert.are.same({ "a.first", "sys.describe", "sys.exit", "sys.ping", "sys.sleep", "zz.last" }, names)
    for _, m in ipairs(doc.methods) do
      if m.name == "a.first" then
        assert.are.equal("k", m.params[1].name)
        assert.are.same({ type = "string" }, m.params[1].schema)
      end
      if m.name == "sys.sleep" then
        assert.are.equal("ms", m.params[1].name)
        assert.is_true(m.params[1].required)
      end
    end
    rt:close()
  end)

  it("empty lists are [] (params of sys.describe)", function()
    local rt = hc.runtime('return { methods = { "sys.describe" } }')
    local raw = hc.raw_result(rt:call(req(1, "sys.describe")))
    assert.truthy(raw:find('"params":[]', 1, true), raw)
    assert.falsy(raw:find('"params":{}', 1, true), raw)
    rt:close()
  end)

  it("a policy granting nothing describes no methods, as an empty list", function()
    local rt = hc.runtime("return {}")
    assert.truthy(rt:describe():find('"methods":[]', 1, true), rt:describe())
    rt:close()
  end)

  it("rpc.discover follows sys.describe's grant", function()
    local rt = hc.runtime('return { methods = { "sys.ping" } }')
    local a = decode(rt:call(req(1, "rpc.discover")))
    local b = decode(rt:call(req(1, "sys.describe")))
    assert.are.same(b.error, a.error)
    rt:close()
  end)

  it("the CLI's describe prints the same document", function()
    local dir = hc.tmpdir()
    hc.write(dir .. "/acme.lua", 'return { methods = { "sys.ping", "sys.sleep" } }')
    local rt = assert(hc.hostcall.new { policy = dir .. "/acme.lua" })
    local r = hc.cli { "describe", "--policy", dir .. "/acme.lua" }
    assert.are.equal(0, r.code)
    assert.are.equal("\n", r.stdout:sub(-1))
    assert.are.same(decode(rt:describe()), decode(r.stdout))
    rt:close()
  end)
end)

describe("the module API", function()
  it("a closed runtime refuses calls; close twice is fine", function()
    local rt = sys_rt()
    rt:close()
    rt:close()
    assert.has_error(function() rt:call(req(1, "sys.ping")) end)
  end)

  it("hostcall.version matches the CLI's --version", function()
    local r = hc.cli { "--version" }
    assert.are.equal("hostcall " .. hc.hostcall.version .. "\n", r.stdout)
  end)

  it("sys.exit in-process answers {} and the runtime still serves the next call", function()
    local rt = sys_rt()
    assert.are.equal('{"jsonrpc":"2.0","id":1,"result":{}}', rt:call(req(1, "sys.exit", '{"code":3}')))
    still_serves(rt)
    rt:close()
  end)

end)
