-- net.lua: the network methods (CONTRACT.md section 6). Every destination goes to ctx.net, which
-- checks it against the policy's net rules (core/netpolicy.c) before any packet; this file only
-- shapes params and results. Sockets are handles: io.read/io.write/io.close work on them.

local HOST = { type = "string", minLength = 1, maxLength = 254,
               description = "A host name, or an IPv4/IPv6 address." }
-- Port 0 passes the schema: the core refuses it as the policy refusal it is (EACCES).
local PORT = { type = "integer", minimum = 0, maximum = 65535 }
local TRANSPORT = { type = "string", enum = { "tcp", "udp" }, default = "tcp" }
local TIMEOUT = { type = "integer", minimum = 0, maximum = 86400000,
                  description = "Most milliseconds to wait (then ETIMEDOUT)." }
local HANDLE = { type = { "string", "integer" },
                 description = "A socket handle (anything else is EBADF)." }
local ENDPOINT = { type = "object", required = { "addr", "port" },
                   properties = { addr = { type = "string" }, port = { type = "integer" } } }
local VOID = { type = "object", additionalProperties = false }

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

  ["net.connect"] = {
    doc = "Open a TCP connection (or a connected UDP socket) to `host`:`port`.\n" ..
          "The destination is checked against the policy's allow rules before any packet; a " ..
          "name is resolved only if a rule names it, and the connection goes to an address the " ..
          "same check allowed (tried in order). `timeout_ms` bounds the connect (ETIMEDOUT).",
    params = {
      type = "object", required = { "host", "port" }, additionalProperties = false,
      properties = { host = HOST, port = PORT, transport = TRANSPORT, timeout_ms = TIMEOUT,
                     tls = { type = "boolean", default = false,
                             description = "TLS over the connection: the certificate is verified " ..
                                           "against the system store and the policy's tls.ca_file, " ..
                                           "for the host name (or IP) given." } },
    },
    result = {
      type = "object", required = { "handle", "peer", "local" }, additionalProperties = false,
      properties = { handle = HANDLE, peer = ENDPOINT, ["local"] = ENDPOINT },
    },
    call = function(ctx, p)
      local h, peer, here = ctx.net.connect(p.host, p.port, { transport = p.transport,
                                            timeout_ms = p.timeout_ms, tls = p.tls })
      if not h then return nil, peer end
      return { handle = h, peer = peer, ["local"] = here }
    end,
  },

  ["net.listen"] = {
    doc = "Listen on `addr`:`port` (an IP address a `listen` rule names); with transport " ..
          "\"udp\", a bound socket for net.sendto/net.recvfrom.",
    params = {
      type = "object", required = { "addr", "port" }, additionalProperties = false,
      properties = { addr = HOST, port = PORT, transport = TRANSPORT,
                     backlog = { type = "integer", minimum = 1, maximum = 4096, default = 64 } },
    },
    result = { type = "object", required = { "handle" }, additionalProperties = false,
               properties = { handle = HANDLE } },
    call = function(ctx, p)
      local h, err = ctx.net.listen(p.addr, p.port, p.transport, p.backlog)
      if not h then return nil, err end
      return { handle = h }
    end,
  },

  ["net.accept"] = {
    doc = "The next connection on a listening socket, waiting for one (at most `timeout_ms`).",
    params = {
      type = "object", required = { "handle" }, additionalProperties = false,
      properties = { handle = HANDLE, timeout_ms = TIMEOUT },
    },
    result = {
      type = "object", required = { "handle", "peer" }, additionalProperties = false,
      properties = { handle = HANDLE, peer = ENDPOINT },
    },
    call = function(ctx, p)
      local h, peer = ctx.net.accept(p.handle, p.timeout_ms)
      if not h then return nil, peer end
      return { handle = h, peer = peer }
    end,
  },

  ["net.shutdown"] = {
    doc = "Shut down reading, writing or both directions of a socket.",
    params = {
      type = "object", required = { "handle", "how" }, additionalProperties = false,
      properties = { handle = HANDLE, how = { type = "string", enum = { "read", "write", "both" } } },
    },
    result = VOID,
    call = function(ctx, p)
      local ok, err = ctx.net.shutdown(p.handle, p.how)
      if not ok then return nil, err end
      return {}
    end,
  },

  ["net.setopt"] = {
    doc = "Set TCP_NODELAY and/or SO_KEEPALIVE on a TCP connection (the only options offered).",
    params = {
      type = "object", required = { "handle" }, additionalProperties = false,
      properties = { handle = HANDLE, nodelay = { type = "boolean" }, keepalive = { type = "boolean" } },
    },
    result = VOID,
    call = function(ctx, p)
      local ok, err = ctx.net.setopt(p.handle, p.nodelay, p.keepalive)
      if not ok then return nil, err end
      return {}
    end,
  },

  ["net.sendto"] = {
    doc = "Send one datagram from a UDP socket (from net.listen with transport \"udp\") to " ..
          "`host`:`port`; every datagram's destination is checked like a connect.",
    params = {
      type = "object", required = { "handle", "data", "host", "port" }, additionalProperties = false,
      properties = { handle = HANDLE, data = { type = "string", description = "base64" },
                     host = HOST, port = PORT },
    },
    result = { type = "object", required = { "bytes_sent" }, additionalProperties = false,
               properties = { bytes_sent = { type = "integer" } } },
    call = function(ctx, p)
      local bytes, derr = ctx.base64.decode(p.data)
      if not bytes then return nil, derr end
      local n, err = ctx.net.sendto(p.handle, bytes, p.host, p.port)
      if not n then return nil, err end
      return { bytes_sent = n }
    end,
  },

  ["net.recvfrom"] = {
    doc = "The next datagram on a UDP socket (at most `length` bytes of it), waiting for one.",
    params = {
      type = "object", required = { "handle" }, additionalProperties = false,
      properties = { handle = HANDLE, timeout_ms = TIMEOUT,
                     length = { type = "integer", minimum = 1, maximum = 65536, default = 65536 } },
    },
    result = {
      type = "object", required = { "data", "peer" }, additionalProperties = false,
      properties = { data = { type = "string" }, peer = ENDPOINT, bytes_read = { type = "integer" } },
    },
    call = function(ctx, p)
      local data, peer, n = ctx.net.recvfrom(p.handle, p.length, p.timeout_ms)
      if not data then return nil, peer end
      return { data = data, peer = peer, bytes_read = n }
    end,
  },

  ["net.poll"] = {
    doc = "Which of the given sockets are ready to read or write, waiting up to `timeout_ms` " ..
          "(0: answer at once) for at least one. `ready` lists only sockets with events.",
    params = {
      type = "object", required = { "handles", "timeout_ms" }, additionalProperties = false,
      properties = {
        handles = { type = "array", maxItems = 1024, items = {
          type = "object", required = { "handle", "events" }, additionalProperties = false,
          properties = { handle = HANDLE, events = { type = "array", uniqueItems = true,
            items = { type = "string", enum = { "read", "write" } } } } } },
        timeout_ms = TIMEOUT,
      },
    },
    result = {
      type = "object", required = { "ready" }, additionalProperties = false,
      properties = { ready = { type = "array", items = {
        type = "object", properties = { handle = HANDLE, events = { type = "array",
          items = { type = "string" } } } } } },
    },
    call = function(ctx, p)
      local list = {}
      for i, e in ipairs(p.handles) do
        local want = {}
        for _, ev in ipairs(e.events) do want[ev] = true end
        list[i] = { handle = e.handle, read = want.read, write = want.write }
      end
      local ready, err = ctx.net.poll(list, p.timeout_ms)
      if not ready then return nil, err end
      return { ready = ready }
    end,
  },
}
