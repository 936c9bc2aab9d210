-- sys.lua: the runtime's own methods. Like every handler file, it only uses `ctx`.
return {
  ["sys.ping"] = {
    doc = "Answer at once with an empty object: a liveness check. Takes any params or none.",
    result = { type = "object", additionalProperties = false },
    call = function() return {} end,
  },

  ["sys.describe"] = {
    doc = "The OpenRPC document of exactly the methods this session may call.",
    params = { type = "object", additionalProperties = false },
    result = { type = "object" },
    call = function(ctx) return ctx.describe() end,
  },

  ["sys.sleep"] = {
    doc = "Wait `ms` milliseconds without holding up other calls, then answer {}.\n" ..
          "Capped at 60000 ms; the call's time limit (limits.time_ms) still applies.",
    params = {
      type = "object", required = { "ms" }, additionalProperties = false,
      properties = { ms = { type = "integer", minimum = 0, maximum = 60000,
                            description = "Milliseconds to wait." } },
    },
    result = { type = "object", additionalProperties = false },
    call = function(ctx, p)
      ctx.sleep(p.ms)
      return {}
    end,
  },

  ["sys.exit"] = {
    doc = "End this session after answering {}; `hostcall serve --stdio` exits with `code`.",
    params = {
      type = "object", additionalProperties = false,
      properties = { code = { type = "integer", minimum = 0, maximum = 255,
                              description = "Exit status (default 0)." } },
    },
    result = { type = "object", additionalProperties = false },
    call = function(ctx, p)
      ctx.exit(p.code or 0)
      return {}
    end,
  },
}
