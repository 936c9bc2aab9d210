-- net.lua: the network methods (CONTRACT.md section 6). Every destination goes to ctx.net, which
-- checks it against the policy's net rules (core/netpolicy.c) before any packet; this file only
-- shapes params and results. So far: net.resolve.

return {
  ["net.resolve"] = {
    doc = "The addresses of `host` that the policy lets this tenant reach.\n" ..
          "A name no rule names is EACCES and is never sent to DNS; an address the rules allow " ..
          "on no port is left out (loopback, private and link-local addresses only through an " ..
          "IP or CIDR rule that names them). An IP literal in any IPv4 form comes back " ..
          "canonical, or EACCES.",
    params = {
      type = "object", required = { "host" }, additionalProperties = false,
      properties = {
        host = { type = "string", minLength = 1, maxLength = 254,
                 description = "A host name, or an IPv4/IPv6 address." },
      },
    },
    result = {
      type = "object", required = { "addresses" }, additionalProperties = false,
      properties = { addresses = { type = "array", items = { type = "string" } } },
    },
    call = function(ctx, p)
      local addrs, err = ctx.net.resolve(p.host)
      if not addrs then return nil, err end
      return { addresses = addrs }
    end,
  },
}
