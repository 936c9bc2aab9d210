-- demo.lua: the policy `hostcall demo` runs its scripted guest session against.
-- Host paths are relative to this file's directory (the demo's temporary workspace).
return {
  tenant = "demo",
  mounts = {
    ["/input"] = { path = "input", perms = "ro" },
    ["/output"] = { path = "output", perms = "rw" },
  },
  methods = { "sys.*", "fs.*", "io.*" },
  limits = { time_ms = 2000, concurrency = 64 },
  -- Per-call hook: the demo refuses sys.exit so the scripted session cannot end itself early,
  -- and refuses sleeps longer than a second.
  authorize = function(call)
    if call.method == "sys.exit" then return false, "sys.exit is disabled in the demo" end
    if call.method == "sys.sleep" and call.params.ms > 1000 then
      return false, "the demo allows sleeps of at most 1000 ms"
    end
    return true
  end,
}
