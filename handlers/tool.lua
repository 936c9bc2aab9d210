-- tool.lua: tool.call and tool.list (CONTRACT.md section 7). A tool is a program the policy
-- declares; ctx.tools.run starts exactly that program (its argv, env and cwd come from the policy,
-- never from here or the guest), gives it the args as JSON on stdin and returns its stdout. This
-- file checks the args against the tool's schema and turns stdout back into JSON.

local TOOL = { type = "object", required = { "name", "description", "params" },
               properties = { name = { type = "string" }, description = { type = "string" },
                              params = { type = "object" } } }

return {
  ["tool.list"] = {
    doc = "The tools the policy declares: name, description and the JSON Schema of their args.",
    result = { type = "object", required = { "tools" }, additionalProperties = false,
               properties = { tools = { type = "array", items = TOOL } } },
    call = function(ctx)
      return { tools = ctx.tools.list() }
    end,
  },

  ["tool.call"] = {
    doc = "Run the tool `name` with `args` (JSON on its stdin) and answer what it prints on " ..
          "stdout, which must be one JSON value. An unknown tool or args that do not fit its " ..
          "params are -32602; a tool past its timeout is -32002 time and its output past " ..
          "max_output -32002 size (the tool and everything it started are killed); a non-zero " ..
          "exit is -32000 EIO (with the start of its stderr); output that is not JSON is " ..
          "-32000 EBADMSG; at max_running, -32002 concurrency.",
    params = {
      type = "object", required = { "name" }, additionalProperties = false,
      properties = {
        name = { type = "string", minLength = 1, maxLength = 64 },
        args = { description = "The tool's input, checked against its params schema." },
      },
    },
    call = function(ctx, p)
      local args = p.args
      if args == nil then args = {} end
      local bad = ctx.tools.check(p.name, args)
      if bad then return nil, bad end
      local input, eerr = ctx.json.encode(args)
      if not input then return nil, ctx.error("params", nil, "args: " .. tostring(eerr)) end
      local out, err = ctx.tools.run(p.name, input .. "\n")
      if not out then return nil, err end
      local result = ctx.json.decode(out)
      if result == nil then
        return nil, "EBADMSG", "tool " .. p.name .. ": its output is not one JSON value"
      end
      return result
    end,
  },
}
