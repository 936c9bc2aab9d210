-- spec/schema_spec.lua: the JSON Schema subset of lua/hostcall/schema.lua (docs/schema-subset.md).
-- luacheck: std +busted

-- The array marker of the stub: its metamethods fail loudly, so any test that touches an array
-- also proves the validator never runs a metamethod of a value.
local ARRAY_MT = {
  __index = function() error("metamethod __index called on an array") end,
  __len = function() error("metamethod __len called on an array") end,
  __eq = function() error("metamethod __eq called on an array") end,
}
-- JSON null is a light userdata in the core; here a unique table (with a metatable, so nothing
-- may take it for an object).
local NULL = setmetatable({}, { __name = "null" })
local host_stub = {
  null = NULL,
  is_array = function(t) return getmetatable(t) == ARRAY_MT end,
}

local MODULE = "lua/hostcall/schema.lua"
local schema = loadfile(MODULE)(host_stub, function() end)

local function A(t) return setmetatable(t, ARRAY_MT) end

local function compile(s)
  local v, err = schema.compile(s, "s")
  assert(v, err)
  return v
end

local function accepts(s, value)
  local ok, err = compile(s)(value)
  assert.are.equal(nil, err)
  assert.is_true(ok)
end

local function refuses(s, value, message)
  local ok, err = compile(s)(value)
  assert.is_nil(ok)
  assert.are.equal(message, err)
end

local function schema_error(s, message, where)
  local v, err = schema.compile(s, where or "s")
  assert.is_nil(v)
  assert.are.equal(message, err)
end

-- One value of each JSON type.
local SAMPLES = {
  string = "x", integer = 1, number = 1.5, boolean = true, null = NULL,
  object = {}, array = A({}),
}
local TYPES = { "string", "integer", "number", "boolean", "null", "object", "array" }

describe("schema module", function()
  it("loads with only base, string, table, math, utf8 and coroutine, and sets no global", function()
    local env = {}
    for _, k in ipairs({ "assert", "error", "getmetatable", "ipairs", "load", "next", "pairs",
      "pcall", "print", "rawequal", "rawget", "rawlen", "rawset", "select", "setmetatable",
      "tonumber", "tostring", "type", "xpcall", "_VERSION" }) do
      env[k] = _G[k]
    end
    for _, k in ipairs({ "string", "table", "math", "utf8", "coroutine" }) do env[k] = _G[k] end
    setmetatable(env, {
      __index = function(_, k) error("global read: " .. tostring(k)) end,
      __newindex = function(_, k) error("global write: " .. tostring(k)) end,
    })
    local chunk = assert(loadfile(MODULE, "t", env))
    local m = chunk(host_stub, function() error("import must not be needed") end)
    assert.is_function(m.compile)
    local v = assert(m.compile({ type = "object", properties = { a = { type = "string" } } }))
    assert.is_true(v({ a = "x" }))
  end)

  it("uses params as the default root name and another when given", function()
    local v = compile({ type = "object", properties = { key = { type = "string" } } })
    local ok, err = v({ key = 1 })
    assert.is_nil(ok)
    assert.are.equal("params.key: expected string, got integer", err)
    ok, err = v({ key = 1 }, "result")
    assert.is_nil(ok)
    assert.are.equal("result.key: expected string, got integer", err)
  end)

  it("uses schema as the default prefix of schema errors", function()
    local v, err = schema.compile({ format = "email" })
    assert.is_nil(v)
    assert.are.equal('schema: unknown keyword "format"', err)
  end)
end)

describe("type", function()
  for _, t in ipairs(TYPES) do
    it("'" .. t .. "' accepts its values and refuses the others, naming both types", function()
      for _, other in ipairs(TYPES) do
        local value = SAMPLES[other]
        if other == t or (t == "number" and other == "integer") then
          accepts({ type = t }, value)
        else
          refuses({ type = t }, value, "params: expected " .. t .. ", got " .. other)
        end
      end
    end)
  end

  it("takes integer to mean a Lua integer: 1.0 is a number, not an integer", function()
    accepts({ type = "integer" }, 1)
    accepts({ type = "integer" }, math.mininteger)
    refuses({ type = "integer" }, 1.0, "params: expected integer, got number")
    refuses({ type = "integer" }, 2.0 ^ 53, "params: expected integer, got number")
    accepts({ type = "number" }, 1.0)
    accepts({ type = "number" }, 1)
  end)

  it("tells an empty object from an empty array", function()
    accepts({ type = "object" }, {})
    refuses({ type = "object" }, A({}), "params: expected object, got array")
    accepts({ type = "array" }, A({}))
    refuses({ type = "array" }, {}, "params: expected array, got object")
  end)

  it("takes null for null only", function()
    accepts({ type = "null" }, NULL)
    refuses({ type = "object" }, NULL, "params: expected object, got null")
    refuses({ type = "string" }, NULL, "params: expected string, got null")
    refuses({ type = "null" }, false, "params: expected null, got boolean")
  end)

  it("accepts a list of types and names them all when refusing", function()
    local s = { type = { "string", "null" } }
    accepts(s, "x")
    accepts(s, NULL)
    refuses(s, 1, "params: expected string or null, got integer")
    refuses({ type = { "string", "integer", "null" } }, 1.5,
      "params: expected string, integer or null, got number")
    accepts({ type = { "number", "null" } }, 3)
    refuses({ type = { "integer", "boolean" } }, 3.0, "params: expected integer or boolean, got number")
  end)

  it("accepts anything when absent", function()
    for _, t in ipairs(TYPES) do accepts({}, SAMPLES[t]) end
  end)

  it("names a non-JSON Lua value by its Lua type", function()
    refuses({ type = "string" }, print, "params: expected string, got function")
  end)
end)

describe("objects", function()
  local typed = {
    type = "object",
    properties = { key = { type = "string" }, n = { type = "integer" }, flag = { type = "boolean" } },
    required = { "key" },
  }

  it("validates each property by its schema and leaves absent ones alone", function()
    accepts(typed, { key = "k", n = 3, flag = false })
    accepts(typed, { key = "k" })
    refuses(typed, { key = 1 }, "params.key: expected string, got integer")
    refuses(typed, { key = "k", n = 1.0 }, "params.n: expected integer, got number")
    refuses(typed, { key = "k", flag = "yes" }, "params.flag: expected boolean, got string")
  end)

  it("reports a missing required property at the object", function()
    refuses(typed, { n = 1 }, 'params: missing required property "key"')
    refuses({ required = { "a", "b" } }, { a = 1 }, 'params: missing required property "b"')
  end)

  it("counts a null as present: a required property may be null only if its type says so", function()
    refuses(typed, { key = NULL }, "params.key: expected string, got null")
    accepts({ required = { "key" }, properties = { key = { type = { "string", "null" } } } },
      { key = NULL })
  end)

  it("applies required and properties to objects only when type is absent", function()
    local s = { required = { "a" }, properties = { a = { type = "string" } } }
    accepts(s, "not an object")
    accepts(s, A({ 1 }))
    refuses(s, {}, 'params: missing required property "a"')
  end)

  it("quotes keys that are not identifiers in paths", function()
    local s = { properties = {
      ["a b"] = { type = "string" }, ["1x"] = { type = "string" }, ['say "hi"'] = { type = "string" },
      ["été"] = { type = "string" }, [""] = { type = "string" }, ["x\n"] = { type = "string" },
      _ok9 = { type = "string" },
    } }
    refuses(s, { ["a b"] = 1 }, 'params["a b"]: expected string, got integer')
    refuses(s, { ["1x"] = 1 }, 'params["1x"]: expected string, got integer')
    refuses(s, { ['say "hi"'] = 1 }, 'params["say \\"hi\\""]: expected string, got integer')
    refuses(s, { ["été"] = 1 }, 'params["été"]: expected string, got integer')
    refuses(s, { [""] = 1 }, 'params[""]: expected string, got integer')
    refuses(s, { ["x\n"] = 1 }, 'params["x\\u000a"]: expected string, got integer')
    refuses(s, { _ok9 = 1 }, "params._ok9: expected string, got integer")
  end)

  it("refuses unexpected properties when additionalProperties is false", function()
    local s = { type = "object", properties = { a = { type = "integer" } }, additionalProperties = false }
    accepts(s, { a = 1 })
    accepts(s, {})
    refuses(s, { a = 1, extra = true }, 'params: unexpected property "extra"')
    refuses(s, { ["b c"] = 1 }, 'params: unexpected property "b c"')
  end)

  it("validates the values of other properties with an additionalProperties schema", function()
    local s = { properties = { a = { type = "string" } }, additionalProperties = { type = "integer" } }
    accepts(s, { a = "x", b = 1, c = 2 })
    refuses(s, { a = "x", b = "y" }, "params.b: expected integer, got string")
    refuses(s, { ["b c"] = "y" }, 'params["b c"]: expected integer, got string')
    refuses(s, { a = 1 }, "params.a: expected string, got integer")
  end)

  it("allows other properties by default and with additionalProperties true", function()
    accepts({ properties = { a = { type = "string" } } }, { a = "x", zzz = {} })
    accepts({ additionalProperties = true }, { zzz = 1 })
  end)

  it("cuts a long guest key to 64 bytes in messages, at a character boundary", function()
    local long = string.rep("k", 100)
    refuses({ additionalProperties = false }, { [long] = 1 },
      'params: unexpected property "' .. string.rep("k", 64) .. '..."')
    refuses({ additionalProperties = { type = "string" } }, { [long] = 1 },
      'params["' .. string.rep("k", 64) .. '..."]: expected string, got integer')
    local accented = "a" .. string.rep("é", 40) -- 81 bytes; byte 65 is inside an é
    refuses({ additionalProperties = false }, { [accented] = 1 },
      'params: unexpected property "a' .. string.rep("é", 31) .. '..."')
  end)

  it("does not show a guest key that is not valid UTF-8", function()
    refuses({ additionalProperties = false }, { ["\xff"] = 1 }, "params: unexpected property <invalid UTF-8>")
  end)

  it("refuses an object with a non-string key when it walks the keys", function()
    refuses({ additionalProperties = false }, { [1] = "x" }, "params: object has a non-string key")
    refuses({ maxProperties = 3 }, { [true] = "x" }, "params: object has a non-string key")
  end)

  it("checks minProperties and maxProperties", function()
    local s = { type = "object", minProperties = 1, maxProperties = 2 }
    refuses(s, {}, "params: expected at least 1 property")
    accepts(s, { a = 1 })
    accepts(s, { a = 1, b = NULL })
    refuses(s, { a = 1, b = 2, c = 3 }, "params: expected at most 2 properties")
    refuses({ minProperties = 2 }, { a = 1 }, "params: expected at least 2 properties")
    refuses({ maxProperties = 0 }, { a = 1 }, "params: expected at most 0 properties")
  end)

  it("reads objects raw: a metatable on a value never runs", function()
    local trap = setmetatable({ key = "k" }, {
      __index = function() error("__index called") end,
      __pairs = function() error("__pairs called") end,
      __len = function() error("__len called") end,
    })
    accepts(typed, trap)
    local missing = setmetatable({}, getmetatable(trap))
    refuses(typed, missing, 'params: missing required property "key"')
    refuses({ additionalProperties = false }, trap, 'params: unexpected property "key"')
  end)
end)

describe("arrays", function()
  it("validates every item and names it with a 0-based index", function()
    local s = { type = "object", properties = { items = { type = "array", items = { type = "string" } } } }
    accepts(s, { items = A({ "a", "b" }) })
    accepts(s, { items = A({}) })
    refuses(s, { items = A({ "a", "b", "c", 4 }) }, "params.items[3]: expected string, got integer")
    refuses(s, { items = A({ 1 }) }, "params.items[0]: expected string, got integer")
  end)

  it("validates nested arrays of objects", function()
    local s = {
      type = "object",
      properties = {
        rows = {
          type = "array",
          items = {
            type = "object",
            required = { "cells" },
            properties = {
              cells = { type = "array", items = {
                type = "object", properties = { v = { type = "integer" }, ["odd key"] = { type = "null" } },
              } },
            },
          },
        },
      },
    }
    accepts(s, { rows = A({ { cells = A({ { v = 1 }, { v = 2, ["odd key"] = NULL } }) } }) })
    refuses(s, { rows = A({ { cells = A({}) }, { cells = A({ { v = 1.5 } }) } }) },
      "params.rows[1].cells[0].v: expected integer, got number")
    refuses(s, { rows = A({ { cells = A({ {}, { ["odd key"] = 0 } }) } }) },
      'params.rows[0].cells[1]["odd key"]: expected null, got integer')
    refuses(s, { rows = A({ { cells = A({}) }, {} }) },
      'params.rows[1]: missing required property "cells"')
    refuses(s, { rows = A({ A({}) }) }, "params.rows[0]: expected object, got array")
  end)

  it("checks minItems and maxItems", function()
    local s = { type = "array", minItems = 1, maxItems = 2 }
    refuses(s, A({}), "params: expected at least 1 item")
    accepts(s, A({ 1 }))
    accepts(s, A({ 1, "two" }))
    refuses(s, A({ 1, 2, 3 }), "params: expected at most 2 items")
    refuses({ minItems = 2 }, A({ 1 }), "params: expected at least 2 items")
    accepts({ minItems = 2 }, { a = 1 }) -- not an array: the keyword does not apply
  end)

  it("checks uniqueItems on scalar items", function()
    local s = { type = "array", uniqueItems = true }
    accepts(s, A({ "a", "b", 1, 1.5, true, false, NULL }))
    refuses(s, A({ "a", "b", "a" }), "params: items [0] and [2] are equal")
    refuses(s, A({ 0, NULL, NULL }), "params: items [1] and [2] are equal")
    refuses(s, A({ false, true, false }), "params: items [0] and [2] are equal")
    accepts(s, A({ 1, "1" }))
  end)

  it("counts 1 and 1.0 as the same item for uniqueItems", function()
    refuses({ uniqueItems = true }, A({ 1, 1.0 }), "params: items [0] and [1] are equal")
  end)

  it("refuses arrays and objects as items of a uniqueItems array", function()
    refuses({ uniqueItems = true }, A({ 1, {} }),
      "params[1]: expected a scalar item (uniqueItems), got object")
    refuses({ uniqueItems = true }, A({ A({}) }),
      "params[0]: expected a scalar item (uniqueItems), got array")
  end)

  it("allows duplicates with uniqueItems false", function()
    accepts({ uniqueItems = false }, A({ 1, 1 }))
  end)

  it("does not walk values deeper than the schema", function()
    local deep = A({})
    for _ = 1, 10000 do deep = A({ deep }) end
    accepts({ type = "array", items = { type = "array" } }, A({ deep }))
  end)
end)

describe("strings", function()
  it("counts code points, not bytes, for maxLength", function()
    local s = { type = "string", maxLength = 3 }
    accepts(s, "été") -- 5 bytes
    accepts(s, "abc")
    accepts(s, "😀😀😀") -- 12 bytes
    accepts(s, "")
    refuses(s, "ééée", "params: expected at most 3 characters")
    refuses(s, "abcd", "params: expected at most 3 characters")
    refuses(s, string.rep("a", 100000), "params: expected at most 3 characters")
  end)

  it("counts code points, not bytes, for minLength", function()
    local s = { type = "string", minLength = 2 }
    refuses(s, "é", "params: expected at least 2 characters") -- 2 bytes
    refuses(s, "", "params: expected at least 2 characters")
    accepts(s, "éé")
    accepts(s, "ab")
    refuses({ minLength = 1 }, "", "params: expected at least 1 character")
    refuses({ maxLength = 1 }, "ab", "params: expected at most 1 character")
  end)

  it("fails a string that is not valid UTF-8", function()
    local s = { type = "string", maxLength = 100 }
    refuses(s, "ab\xff", "params: invalid UTF-8")
    refuses(s, "\xc0\x80", "params: invalid UTF-8") -- overlong NUL
    refuses(s, "\xed\xa0\x80", "params: invalid UTF-8") -- a surrogate
    refuses({ minLength = 0 }, "\xe9t\xe9", "params: invalid UTF-8") -- Latin-1
  end)

  it("applies length keywords to strings only when type is absent", function()
    accepts({ maxLength = 1 }, 12345)
    accepts({ minLength = 3 }, A({}))
  end)

  it("never puts the value in a message", function()
    local secret = "hunter2-secret-token"
    local _, e1 = compile({ type = "integer" })(secret)
    local _, e2 = compile({ maxLength = 3 })(secret)
    local _, e3 = compile({ enum = { "a" } })(secret)
    local _, e4 = compile({ additionalProperties = false, properties = {} })({ k = secret })
    for _, e in ipairs({ e1, e2, e3, e4 }) do
      assert.is_string(e)
      assert.is_nil(e:find("hunter2", 1, true))
    end
  end)
end)

describe("numbers", function()
  it("checks minimum and maximum inclusively", function()
    local s = { type = "integer", minimum = 1, maximum = 10 }
    accepts(s, 1)
    accepts(s, 10)
    refuses(s, 0, "params: expected a value >= 1")
    refuses(s, 11, "params: expected a value <= 10")
  end)

  it("checks exclusiveMinimum and exclusiveMaximum as numbers", function()
    local s = { type = "number", exclusiveMinimum = 0, exclusiveMaximum = 1.5 }
    accepts(s, 0.5)
    accepts(s, 1)
    refuses(s, 0, "params: expected a value > 0")
    refuses(s, 0.0, "params: expected a value > 0")
    refuses(s, 1.5, "params: expected a value < 1.5")
  end)

  it("shows float bounds as floats", function()
    refuses({ minimum = 1.0 }, 0, "params: expected a value >= 1.0")
    refuses({ maximum = 0.1 }, 1, "params: expected a value <= 0.1")
  end)

  it("compares integers with float bounds exactly", function()
    local big = 2.0 ^ 53 -- 9007199254740992.0
    refuses({ maximum = big }, 9007199254740993, "params: expected a value <= 9007199254740992.0")
    accepts({ maximum = big }, 9007199254740992)
    refuses({ exclusiveMaximum = big }, 9007199254740992,
      "params: expected a value < 9007199254740992.0")
    accepts({ minimum = -big }, -9007199254740992)
  end)

  it("applies numeric keywords to numbers only when type is absent", function()
    accepts({ minimum = 5 }, "3")
    refuses({ minimum = 5 }, 3, "params: expected a value >= 5")
  end)

  it("fails NaN against any bound", function()
    refuses({ minimum = 0 }, 0 / 0, "params: expected a value >= 0")
    refuses({ maximum = 0 }, 0 / 0, "params: expected a value <= 0")
  end)

  it("checks multipleOf exactly on integers", function()
    local s = { type = "integer", multipleOf = 5 }
    accepts(s, 10)
    accepts(s, 0)
    accepts(s, -15)
    refuses(s, 12, "params: expected a multiple of 5")
    refuses(s, 10.0, "params: expected integer, got number")
    accepts({ type = "integer", multipleOf = 2 }, math.mininteger)
    -- 2^63 - 1 = 3 * 3074457345618258602 + 1: exact where a float would round to 2^63.
    refuses({ type = "integer", multipleOf = 3 }, math.maxinteger, "params: expected a multiple of 3")
    accepts({ type = "integer", multipleOf = 3 }, math.maxinteger - 1)
    local n = { type = { "integer", "null" }, multipleOf = 2 }
    accepts(n, NULL)
    accepts(n, 4)
    refuses(n, 3, "params: expected a multiple of 2")
  end)
end)

describe("enum and const", function()
  it("accepts only the listed values and lists them when refusing", function()
    local s = { type = "string", enum = { "r", "w", "a", "rw" } }
    accepts(s, "r")
    accepts(s, "rw")
    refuses(s, "x", 'params: expected one of "r", "w", "a", "rw"')
  end)

  it("matches by JSON type as well as value", function()
    local s = { enum = { 1, "x", true, NULL, 2.5, 3.0 } }
    for _, v in ipairs({ 1, "x", true, NULL, 2.5, 3.0 }) do accepts(s, v) end
    local msg = 'params: expected one of 1, "x", true, null, 2.5, 3.0'
    refuses(s, 1.0, msg)
    refuses(s, 3, msg)
    refuses(s, "1", msg)
    refuses(s, false, msg)
    refuses(s, {}, msg)
  end)

  it("checks const", function()
    accepts({ const = "v1" }, "v1")
    refuses({ const = "v1" }, "v2", 'params: expected "v1"')
    accepts({ const = NULL }, NULL)
    refuses({ const = NULL }, "null", "params: expected null")
    accepts({ const = false }, false)
    refuses({ const = false }, NULL, "params: expected false")
    refuses({ const = 7 }, 7.0, "params: expected 7")
  end)

  it("refuses bad enum and const values at compile time", function()
    schema_error({ enum = {} }, "s.enum: expected a non-empty list")
    schema_error({ enum = "r" }, "s.enum: expected a non-empty list")
    schema_error({ enum = { a = 1 } }, "s.enum: expected a non-empty list")
    schema_error({ enum = { "a", {} } },
      "s.enum[2]: expected a string, a finite number, a boolean or null, got object")
    schema_error({ enum = { 0 / 0 } },
      "s.enum[1]: expected a string, a finite number, a boolean or null, got number")
    schema_error({ const = {} }, "s.const: expected a string, a finite number, a boolean or null, got object")
    schema_error({ const = math.huge },
      "s.const: expected a string, a finite number, a boolean or null, got number")
  end)
end)

describe("combinators", function()
  it("anyOf accepts a value matching any alternative and explains every failure", function()
    local s = { anyOf = { { type = "string" }, { type = "integer", minimum = 0 } } }
    accepts(s, "x")
    accepts(s, 3)
    refuses(s, -1,
      "params: matches none of anyOf (anyOf[1]: expected string, got integer; anyOf[2]: expected a value >= 0)")
  end)

  it("anyOf gives the path inside an alternative relative to the value", function()
    local s = { type = "object", properties = { mode = { anyOf = {
      { type = "object", required = { "a" }, properties = { a = { type = "string" } } },
      { type = "array", items = { type = "integer" } },
    } } } }
    accepts(s, { mode = { a = "x" } })
    accepts(s, { mode = A({ 1, 2 }) })
    refuses(s, { mode = { a = 1 } },
      "params.mode: matches none of anyOf (anyOf[1] at .a: expected string, got integer; "
      .. "anyOf[2]: expected array, got object)")
    refuses(s, { mode = A({ 1, "2" }) },
      "params.mode: matches none of anyOf (anyOf[1]: expected object, got array; "
      .. "anyOf[2] at [1]: expected integer, got string)")
  end)

  it("oneOf accepts exactly one match", function()
    local s = { oneOf = { { type = "integer" }, { type = "number", minimum = 10 } } }
    accepts(s, 5)
    accepts(s, 10.5)
    refuses(s, 12, "params: matches more than one of oneOf (oneOf[1] and oneOf[2])")
    refuses(s, 2.5, "params: matches none of oneOf (oneOf[1]: expected integer, got number; "
      .. "oneOf[2]: expected a value >= 10)")
  end)

  it("allOf needs every schema and reports the first failure as is", function()
    local s = { allOf = {
      { type = "object", required = { "a" } },
      { properties = { a = { type = "integer", maximum = 3 } } },
    } }
    accepts(s, { a = 2 })
    refuses(s, {}, 'params: missing required property "a"')
    refuses(s, { a = 4 }, "params.a: expected a value <= 3")
    refuses(s, "x", "params: expected object, got string")
  end)

  it("not refuses what its schema accepts", function()
    local s = { ["not"] = { type = "null" } }
    accepts(s, 1)
    accepts(s, {})
    refuses(s, NULL, 'params: must not match the "not" schema')
    refuses({ type = "object", properties = { x = { ["not"] = { enum = { "root" } } } } },
      { x = "root" }, 'params.x: must not match the "not" schema')
  end)

  it("refuses malformed combinators at compile time", function()
    schema_error({ anyOf = {} }, "s.anyOf: expected a non-empty list of schemas")
    schema_error({ oneOf = { type = "string" } }, "s.oneOf: expected a non-empty list of schemas")
    schema_error({ allOf = "x" }, "s.allOf: expected a non-empty list of schemas")
    schema_error({ anyOf = { {}, "string" } }, "s.anyOf[2]: expected a schema (a table)")
    schema_error({ ["not"] = true }, "s.not: expected a schema (a table)")
    schema_error({ allOf = { { properties = { x = { pattern = "^a" } } } } },
      's.allOf[1].properties.x: unknown keyword "pattern"')
  end)
end)

describe("refused keywords", function()
  local refused = {
    "pattern", "format", "$ref", "$defs", "definitions", "$id", "$schema", "$anchor",
    "$dynamicRef", "$vocabulary", "if", "then", "else", "dependentRequired", "dependentSchemas",
    "dependencies", "patternProperties", "propertyNames", "contains", "minContains",
    "maxContains", "prefixItems", "additionalItems", "unevaluatedProperties", "unevaluatedItems",
    "contentEncoding", "contentMediaType", "contentSchema", "nullable", "id", "typo",
  }
  for _, k in ipairs(refused) do
    it('refuses "' .. k .. '" at compile time', function()
      schema_error({ [k] = "x" }, 's: unknown keyword "' .. k .. '"')
      schema_error({ properties = { key = { type = "string", [k] = "x" } } },
        's.properties.key: unknown keyword "' .. k .. '"')
    end)
  end

  it("names the keyword's path after the caller's prefix", function()
    schema_error({ type = "object", properties = { key = { type = "string", format = "uuid" } } },
      'kv.lua: ["kv.get"].params.properties.key: unknown keyword "format"', 'kv.lua: ["kv.get"].params')
    schema_error({ properties = { ["a b"] = { items = { pattern = "x" } } } },
      's.properties["a b"].items: unknown keyword "pattern"')
    schema_error({ additionalProperties = { format = "x" } }, 's.additionalProperties: unknown keyword "format"')
    schema_error({ ["not"] = { ["if"] = {} } }, 's.not: unknown keyword "if"')
  end)
end)

describe("schema errors", function()
  local cases = {
    { { maxLength = -1 }, "s.maxLength: expected a non-negative integer" },
    { { maxLength = 1.5 }, "s.maxLength: expected a non-negative integer" },
    { { maxLength = 3.0 }, "s.maxLength: expected a non-negative integer" },
    { { minLength = "3" }, "s.minLength: expected a non-negative integer" },
    { { minItems = -2 }, "s.minItems: expected a non-negative integer" },
    { { maxItems = true }, "s.maxItems: expected a non-negative integer" },
    { { minProperties = {} }, "s.minProperties: expected a non-negative integer" },
    { { maxProperties = -1 }, "s.maxProperties: expected a non-negative integer" },
    { { minimum = "1" }, "s.minimum: expected a finite number" },
    { { maximum = math.huge }, "s.maximum: expected a finite number" },
    { { minimum = 0 / 0 }, "s.minimum: expected a finite number" },
    { { exclusiveMinimum = true },
      "s.exclusiveMinimum: expected a number (the boolean form of draft 4 is not supported)" },
    { { exclusiveMaximum = "1" }, "s.exclusiveMaximum: expected a finite number" },
    { { type = "integer", multipleOf = 0.5 }, "s.multipleOf: expected a positive integer" },
    { { type = "integer", multipleOf = 0 }, "s.multipleOf: expected a positive integer" },
    { { type = "integer", multipleOf = -3 }, "s.multipleOf: expected a positive integer" },
    { { type = "number", multipleOf = 2 },
      's.multipleOf: requires a type that allows "integer" and not "number"' },
    { { multipleOf = 2 }, 's.multipleOf: requires a type that allows "integer" and not "number"' },
    { { type = { "integer", "number" }, multipleOf = 2 },
      's.multipleOf: requires a type that allows "integer" and not "number"' },
    { { type = 5 }, "s.type: expected a type name or a non-empty list of type names" },
    { { type = {} }, "s.type: expected a type name or a non-empty list of type names" },
    { { type = "float" }, 's.type: unknown type "float"' },
    { { type = "Object" }, 's.type: unknown type "Object"' },
    { { type = { "string", 3 } }, "s.type[2]: expected a type name, got integer" },
    { { type = { "string", "null", "string" } }, 's.type[3]: duplicate type "string"' },
    { { properties = "x" }, "s.properties: expected a table of schemas" },
    { { properties = { { type = "string" } } }, "s.properties: expected string keys, got a number key" },
    { { properties = { a = "string" } }, "s.properties.a: expected a schema (a table)" },
    { { properties = { a = NULL } }, "s.properties.a: expected a schema (a table)" },
    { { required = "key" }, "s.required: expected a list of strings" },
    { { required = { a = true } }, "s.required: expected a list of strings" },
    { { required = { "a", 1 } }, "s.required[2]: expected a string, got integer" },
    { { required = { "a", "a" } }, 's.required[2]: duplicate name "a"' },
    { { properties = { a = {} }, required = { "a", "b" }, additionalProperties = false },
      's.required[2]: "b" is not in properties and additionalProperties is false' },
    { { additionalProperties = "no" }, "s.additionalProperties: expected a boolean or a schema" },
    { { uniqueItems = "yes" }, "s.uniqueItems: expected a boolean" },
    { { uniqueItems = true, items = { type = { "string", "object" } } },
      "s.uniqueItems: only supported for scalar items, but items allows object" },
    { { items = { { type = "string" }, { type = "integer" } } },
      "s.items: the tuple form (a list of schemas) is not supported: give one schema" },
    { { items = "string" }, "s.items: expected a schema (a table)" },
    { { description = 5 }, "s.description: expected a string" },
    { { title = true }, "s.title: expected a string" },
    { { ["$comment"] = {} }, 's["$comment"]: expected a string' },
    { { deprecated = "yes" }, "s.deprecated: expected a boolean" },
    { { readOnly = 1 }, "s.readOnly: expected a boolean" },
    { { writeOnly = "no" }, "s.writeOnly: expected a boolean" },
    { { examples = "x" }, "s.examples: expected a list" },
    { { "string" }, "s: unexpected non-string key 1 (keywords are strings)" },
    { { [true] = 1 }, "s: unexpected non-string key of type boolean (keywords are strings)" },
    { { minLength = 4, maxLength = 3 }, "s.minLength: greater than maxLength" },
    { { minItems = 2, maxItems = 1 }, "s.minItems: greater than maxItems" },
    { { minProperties = 9, maxProperties = 1 }, "s.minProperties: greater than maxProperties" },
    { { minimum = 1.5, maximum = 1 }, "s.minimum: greater than maximum" },
    { { type = "integer", minLength = 1 }, "s.minLength: applies to strings, but type does not allow them" },
    { { type = "string", properties = {} }, "s.properties: applies to objects, but type does not allow them" },
    { { type = { "object", "null" }, items = {} }, "s.items: applies to arrays, but type does not allow them" },
    { { type = "boolean", maximum = 1 }, "s.maximum: applies to numbers, but type does not allow them" },
  }
  for i, c in ipairs(cases) do
    local expected = c[2]
    it("#" .. i .. ": " .. expected, function()
      schema_error(c[1], expected)
    end)
  end

  it("refuses a schema that is not a table", function()
    schema_error("string", "s: expected a schema (a table)")
    schema_error(nil, "s: expected a schema (a table)")
    schema_error(true, "s: expected a schema (a table)")
  end)

  it("reports the same error on every run when several keywords are bad", function()
    local s = { zzz = 1, format = "x", aaa = 2, minLength = -1 }
    for _ = 1, 20 do schema_error(s, 's: unknown keyword "aaa"') end
  end)

  it("keeps annotations without validating them", function()
    local s = {
      type = "object", title = "T", description = "D", ["$comment"] = "C", deprecated = false,
      readOnly = true, writeOnly = false, default = { a = "not an integer" }, examples = { 1, "x" },
      properties = { a = { type = "integer", default = "nope", description = "an integer" } },
    }
    accepts(s, { a = 1 })
    refuses(s, { a = "nope" }, "params.a: expected integer, got string")
  end)

  it("reads the schema once: later changes to the table change nothing", function()
    local s = { type = "object", properties = { a = { type = "string" } }, required = { "a" } }
    local v = compile(s)
    s.properties.a.type = "integer"
    s.required[1] = "b"
    s.format = "x"
    assert.is_true(v({ a = "x" }))
  end)
end)

describe("schema depth", function()
  local function chain(levels, key)
    local root = {}
    local cur = root
    for _ = 2, levels do
      local sub = {}
      if key == "properties" then cur.properties = { x = sub }
      elseif key == "anyOf" then cur.anyOf = { sub }
      else cur[key] = sub end
      cur = sub
    end
    cur.type = "integer"
    return root
  end

  it("accepts 32 levels", function()
    local v = compile(chain(32, "items"))
    local value = 7
    for _ = 2, 32 do value = A({ value }) end
    assert.is_true(v(value))
  end)

  it("refuses 33 levels, naming where", function()
    local v, err = schema.compile(chain(33, "items"), "s")
    assert.is_nil(v)
    assert.are.equal("s" .. string.rep(".items", 32) .. ": schema nested deeper than 32 levels", err)
  end)

  it("counts every kind of nesting", function()
    assert.is_function(schema.compile(chain(32, "properties")))
    for _, key in ipairs({ "properties", "anyOf", "not", "additionalProperties" }) do
      local v, err = schema.compile(chain(33, key), "s")
      assert.is_nil(v)
      assert.truthy(err:find("schema nested deeper than 32 levels", 1, true), key)
    end
  end)

  it("refuses a cyclic schema", function()
    local s = { type = "array" }
    s.items = s
    local v, err = schema.compile(s, "s")
    assert.is_nil(v)
    assert.truthy(err:find("schema nested deeper than 32 levels", 1, true))
  end)
end)

-- The validators are generated Lua source (docs/schema-subset.md, "How it is compiled"): what the
-- schema says must stay data, the code must load for any schema the parser accepts, and the work
-- must stay bounded by the schema.
describe("generated validators", function()
  local HOSTILE = { 'a"b', "a\\", "]]", "--[[", "\n", "\r\n", "\0", "%s", "%q", "end", "x') error('pwned') --",
    '"); error("pwned"); --', "\xff\xfe", string.rep("é", 50) }

  it("keep every schema string as data: names, enum values, const, messages", function()
    for _, name in ipairs(HOSTILE) do
      local s = { type = "object", required = { name }, additionalProperties = false,
        properties = { [name] = { type = "string", enum = { name, "ok" } } } }
      accepts(s, { [name] = name })
      accepts(s, { [name] = "ok" })
      local ok, err = compile(s)({})
      assert.is_nil(ok)
      local shown = assert(err:match("^params: missing required property (.*)$"))
      refuses(s, { [name] = "no" }, "params" .. (shown:match('^"[%a_][%w_]*"$') and "." ..
        name or "[" .. shown .. "]") .. ": expected one of " .. shown .. ', "ok"')
      refuses({ const = name }, "x", "params: expected " .. shown)
    end
    refuses({ type = "object", required = { 'a"\n' } }, {}, 'params: missing required property "a\\"\\u000a"')
  end)

  it("write schema strings into the source only as %q literals", function()
    for _, name in ipairs(HOSTILE) do
      local src = assert(schema.source({ type = "object", properties = { [name] = { const = name } } }))
      assert.truthy(src:find(string.format("%q", name), 1, true), name)
    end
  end)

  it("check() reports the schema errors of compile() and makes nothing", function()
    assert.is_true(schema.check({ type = "object", properties = { a = { type = "string" } } }, "s"))
    local ok, err = schema.check({ type = "integer", minLength = 1 }, "s")
    assert.is_nil(ok)
    assert.are.equal("s.minLength: applies to strings, but type does not allow them", err)
    ok, err = schema.check({ format = "x" })
    assert.is_nil(ok)
    assert.are.equal('schema: unknown keyword "format"', err)
  end)

  it("load for deep and wide schemas (helper functions past the inline depth)", function()
    -- 32 levels of objects with 16 properties each, additionalProperties false, 10 required
    local s, value = { type = "integer", minimum = 0 }, 5
    for _ = 2, 32 do
      local props, v = { a = s }, { a = value }
      for i = 1, 15 do props["p" .. i] = { type = "string", maxLength = 3 }; v["p" .. i] = "x" end
      s = { type = "object", additionalProperties = false, properties = props,
        required = { "a", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9" } }
      value = v
    end
    accepts(s, value)
    local leaf = value
    for _ = 2, 31 do leaf = leaf.a end
    leaf.a = -1
    refuses(s, value, "params" .. string.rep(".a", 31) .. ": expected a value >= 0")
    leaf.a, leaf.zz = 0, true
    refuses(s, value, "params" .. string.rep(".a", 30) .. ': unexpected property "zz"')

    -- 3000 properties, all required
    local props, req, v = {}, {}, {}
    for i = 1, 3000 do
      props["prop_" .. i] = { type = "integer", minimum = i }
      req[i], v["prop_" .. i] = "prop_" .. i, i
    end
    for _, extra in ipairs({ false, true }) do
      local wide = { type = "object", properties = props, required = req, additionalProperties = extra }
      accepts(wide, v)
      v.prop_2999 = 1
      refuses(wide, v, "params.prop_2999: expected a value >= 2999")
      v.prop_2999 = nil
      refuses(wide, v, 'params: missing required property "prop_2999"')
      v.prop_2999 = 2999
    end

    -- long lists of alternatives and values
    local alts, values = {}, {}
    for i = 1, 300 do alts[i] = { const = i }; values[i] = "v" .. i end
    accepts({ anyOf = alts }, 300)
    accepts({ oneOf = alts }, 1)
    refuses({ allOf = alts }, 2, "params: expected 1")
    accepts({ enum = values }, "v300")
    refuses({ enum = values }, "v301", "params: expected one of " .. table.concat((function()
      local shown = {}
      for i, x in ipairs(values) do shown[i] = '"' .. x .. '"' end
      return shown
    end)(), ", "))
  end)

  it("do work bounded by the schema: nested anyOf, oneOf and not fail in linear time", function()
    local function cost(s, value)
      local v = compile(s)
      local n = 0
      debug.sethook(function() n = n + 1 end, "", 100)
      v(value)
      debug.sethook()
      return n * 100
    end
    local function nested(key, levels)
      local s = { type = "integer" }
      for _ = 2, levels do
        if key == "not" then s = { ["not"] = { ["not"] = s } }
        else s = { [key] = { { type = "boolean" }, s } } end
      end
      return s
    end
    for _, key in ipairs({ "anyOf", "oneOf" }) do
      local shallow, deep = cost(nested(key, 4), "x"), cost(nested(key, 32), "x")
      assert.is_true(deep < shallow * 16, key .. ": " .. shallow .. " then " .. deep)
    end
    assert.is_true(cost(nested("not", 16), "x") < 100000)
  end)

  it("treat a property that is false as present, with additionalProperties false or not", function()
    for _, extra in ipairs({ false, true }) do
      local s = { type = "object", required = { "a" }, additionalProperties = extra,
        properties = { a = { type = "boolean" }, b = { type = "string" } } }
      accepts(s, { a = false })
      refuses(s, { a = false, b = false }, "params.b: expected string, got boolean")
      refuses(s, { b = "x" }, 'params: missing required property "a"')
    end
  end)

  it("report with additionalProperties false what the key walk reported, in the same order", function()
    local s = { type = "object", required = { "z" }, additionalProperties = false, maxProperties = 2,
      minProperties = 2, properties = { a = { type = "string" }, z = { type = "integer" } } }
    refuses(s, { a = 1, extra = 1 }, 'params: missing required property "z"')
    refuses(s, { z = 1, a = 1, extra = 1 }, "params.a: expected string, got integer")
    refuses(s, { z = 1, extra = 1 }, 'params: unexpected property "extra"')
    refuses(s, { z = 1, [1] = "x" }, "params: object has a non-string key")
    refuses(s, { z = 1 }, "params: expected at least 2 properties")
    accepts(s, { z = 1, a = "x" })
    local three = { type = "object", additionalProperties = false, maxProperties = 2,
      properties = { a = {}, b = {}, c = {} } }
    refuses(three, { a = 1, b = 2, c = 3 }, "params: expected at most 2 properties")
    -- maxProperties: the first key that breaks a rule decides, in the table's own (next) order,
    -- which the string hashes decide: try names until both orders have been seen
    local seen = {}
    for j = 1, 64 do
      local a, b = "a" .. j, "b" .. j
      local two = { type = "object", additionalProperties = false, maxProperties = 1,
        properties = { [a] = {}, [b] = {} } }
      for i = 1, 16 do
        local t = { [a] = 1, [b] = 2, ["x" .. i] = 3 }
        local undeclared_first = next(t) == "x" .. i
        seen[undeclared_first] = true
        refuses(two, t, "params: " .. (undeclared_first and 'unexpected property "x' .. i .. '"'
          or "expected at most 1 property"))
      end
    end
    assert.is_true(seen[true] and seen[false])
    local none = { type = "object", additionalProperties = false, minProperties = 0 }
    accepts(none, {})
    refuses(none, { x = 1 }, 'params: unexpected property "x"')
    -- an object with another metatable is read raw, by the walk too
    local odd = setmetatable({ z = 1, a = "x" }, { __index = function() error("read through") end,
      __pairs = function() error("pairs") end })
    accepts(s, odd)
  end)
end)
