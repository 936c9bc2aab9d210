-- http.lua: http.fetch (CONTRACT.md section 6), HTTP/1.1 written in Lua on the core's request
-- primitive. ctx.http.request checks the URL against the policy's http rules, connects (TLS for
-- https) and writes the request line, Host and framing itself; the handle it gives back can only
-- be read. Everything else is here: headers, content-length and chunked bodies, max_bytes,
-- timeouts and redirects (every hop goes through the primitive again, so through the rules).

local HEAD_MAX = 64 * 1024        -- bytes of a status line and headers
local HOPS_MAX = 10               -- redirects followed, then ELOOP
local DEFAULT_MAX_BYTES = 1024 * 1024
local DEFAULT_TIMEOUT_MS = 30000
local READ_CHUNK = 65536

local PAIR = { type = "array", minItems = 2, maxItems = 2, items = { type = "string" } }

local function clock_ms(ctx) return ctx.clock() * 1000 end

-- A reader over one response handle: buffered bytes, refilled by ctx.io.read until a deadline.
local function reader(ctx, h, deadline)
  local buf, eof = "", false
  local r = {}
  function r.fill()
    if eof then return nil, "EPIPE" end
    local left = math.floor(deadline - clock_ms(ctx))
    if left <= 0 then return nil, ctx.error("os", "ETIMEDOUT", "http: the response took too long") end
    local data, e = ctx.io.read(h, READ_CHUNK, nil, nil, left)
    if not data then return nil, e end
    if e then eof = true end
    buf = buf .. data
    return true
  end
  -- The next line (without CRLF), at most `max` bytes.
  function r.line(max)
    while true do
      local i = buf:find("\r\n", 1, true)
      if i then
        local l = buf:sub(1, i - 1)
        buf = buf:sub(i + 2)
        return l
      end
      if #buf > max then return nil, ctx.error("limit", "size", "http: a header line is too long") end
      local ok, e = r.fill()
      if not ok then
        if e == "EPIPE" then return nil, ctx.error("os", "EPROTO", "http: the response ended early") end
        return nil, e
      end
    end
  end
  -- Exactly n bytes.
  function r.exactly(n)
    while #buf < n do
      local ok, e = r.fill()
      if not ok then
        if e == "EPIPE" then return nil, ctx.error("os", "EPROTO", "http: the body ended early") end
        return nil, e
      end
    end
    local s = buf:sub(1, n)
    buf = buf:sub(n + 1)
    return s
  end
  -- Everything up to the end of the stream, refusing more than max.
  function r.rest(max)
    while not eof do
      if #buf > max then return nil, ctx.error("limit", "size", "http: the body is larger than max_bytes") end
      local ok, e = r.fill()
      if not ok and e ~= "EPIPE" then return nil, e end
    end
    if #buf > max then return nil, ctx.error("limit", "size", "http: the body is larger than max_bytes") end
    local s = buf
    buf = ""
    return s
  end
  return r
end

local function too_big(ctx)
  return nil, ctx.error("limit", "size", "http: the body is larger than max_bytes")
end

-- The body, framed as the headers say.
local function read_body(ctx, r, headers, max)
  local te, cl
  for _, hv in ipairs(headers) do
    local n = hv[1]:lower()
    if n == "transfer-encoding" then te = hv[2]:lower() end
    if n == "content-length" then
      if cl and cl ~= hv[2] then return nil, ctx.error("os", "EPROTO", "http: conflicting Content-Length") end
      cl = hv[2]
    end
  end
  if te then
    if not te:match("chunked%s*$") then
      return nil, ctx.error("os", "EPROTO", "http: unsupported Transfer-Encoding " .. te)
    end
    local parts, total = {}, 0
    while true do
      local line, e = r.line(1024)
      if not line then return nil, e end
      local size = tonumber(line:match("^%s*(%x+)%s*[;]?.-$") or "", 16)
      if not size or #line:match("^%s*(%x+)") > 15 then
        return nil, ctx.error("os", "EPROTO", "http: bad chunk size")
      end
      if size == 0 then break end
      total = total + size
      if total > max then return too_big(ctx) end
      local data, de = r.exactly(size)
      if not data then return nil, de end
      parts[#parts + 1] = data
      local crlf, ce = r.exactly(2)
      if not crlf then return nil, ce end
      if crlf ~= "\r\n" then return nil, ctx.error("os", "EPROTO", "http: bad chunk end") end
    end
    repeat   -- trailers, ignored
      local line, e = r.line(HEAD_MAX)
      if not line then return nil, e end
    until line == ""
    return table.concat(parts)
  end
  if cl then
    local n = cl:match("^%s*(%d+)%s*$")
    n = n and #n <= 15 and tonumber(n)
    if not n then return nil, ctx.error("os", "EPROTO", "http: bad Content-Length") end
    if n > max then return too_big(ctx) end
    return r.exactly(n)
  end
  return r.rest(max)
end

-- One request and its response: status, headers, body.
local function exchange(ctx, url, method, headers, body, deadline, max)
  local h, e = ctx.http.request(url, method, headers, body,
                                { timeout_ms = math.max(1, math.floor(deadline - clock_ms(ctx))) })
  if not h then return nil, e end
  local r = reader(ctx, h, deadline)
  local function done(...) ctx.io.close(h); return ... end
  local status_line, se = r.line(HEAD_MAX)
  if not status_line then return done(nil, se) end
  local status = tonumber(status_line:match("^HTTP/1%.[01] (%d%d%d)"))
  if not status then return done(nil, ctx.error("os", "EPROTO", "http: not an HTTP/1.x status line")) end
  local out, size = {}, #status_line
  while true do
    local line, le = r.line(HEAD_MAX)
    if not line then return done(nil, le) end
    if line == "" then break end
    size = size + #line
    if size > HEAD_MAX or #out >= 200 then
      return done(nil, ctx.error("limit", "size", "http: the response headers are too large"))
    end
    local n, v = line:match("^([!#$%%&'*+%-.^_`|~%w]+):[ \t]*(.-)[ \t]*$")
    if not n then return done(nil, ctx.error("os", "EPROTO", "http: a malformed header line")) end
    out[#out + 1] = ctx.array({ n, v })
  end
  local data = ""
  if method ~= "HEAD" and status ~= 204 and status ~= 304 and not (status >= 100 and status < 200) then
    local b, be = read_body(ctx, r, out, max)
    if not b then return done(nil, be) end
    data = b
  end
  return done(status, out, data)
end

local REDIRECTS = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

return {
  ["http.fetch"] = {
    doc = "An HTTP/1.1 request to `url`, as the policy's http rules allow (scheme, host, port, " ..
          "path prefix, method), following redirects (each hop checked again; at most 10, then " ..
          "ELOOP; a hop to a scheme other than http/https is EACCES) unless `redirect = false`.\n" ..
          "`headers` are [name, value] pairs both ways (the runtime sets Host, Content-Length " ..
          "and Connection itself). `body` and the answer's body are base64, or text with " ..
          "encoding \"utf8\". A body over `max_bytes` (default 1 MiB) is -32002 size; " ..
          "`timeout_ms` (default 30000) bounds the whole fetch (ETIMEDOUT).",
    params = {
      type = "object", required = { "url" }, additionalProperties = false,
      properties = {
        url = { type = "string", minLength = 1, maxLength = 8192 },
        method = { type = "string", minLength = 1, maxLength = 32, default = "GET" },
        headers = { type = "array", maxItems = 100, items = PAIR },
        body = { type = "string" },
        timeout_ms = { type = "integer", minimum = 1, maximum = 600000, default = DEFAULT_TIMEOUT_MS },
        max_bytes = { type = "integer", minimum = 0, maximum = 1073741824, default = DEFAULT_MAX_BYTES },
        redirect = { type = "boolean", default = true },
        encoding = { type = "string", enum = { "base64", "utf8" }, default = "base64" },
      },
    },
    result = {
      type = "object", required = { "status", "headers", "body" }, additionalProperties = false,
      properties = { status = { type = "integer" }, headers = { type = "array", items = PAIR },
                     body = { type = "string" }, url = { type = "string" } },
    },
    call = function(ctx, p)
      local method = p.method or "GET"
      local body
      if p.body then
        if p.encoding == "utf8" then body = p.body
        else
          local b, e = ctx.base64.decode(p.body)
          if not b then return nil, e end
          body = b
        end
      end
      local max = p.max_bytes or DEFAULT_MAX_BYTES
      local deadline = clock_ms(ctx) + (p.timeout_ms or DEFAULT_TIMEOUT_MS)
      local url, hops = p.url, 0
      while true do
        local status, headers, data = exchange(ctx, url, method, p.headers or {}, body, deadline, max)
        if not status then return nil, headers end
        local location
        for _, hv in ipairs(headers) do
          if hv[1]:lower() == "location" then location = hv[2] end
        end
        if p.redirect == false or not REDIRECTS[status] or not location then
          local text = data
          if p.encoding == "utf8" then
            if not utf8.len(data) then
              return nil, ctx.error("os", "EILSEQ", "http: the body is not UTF-8: fetch it as base64")
            end
          else
            text = ctx.base64.encode(data)
          end
          return { status = status, headers = ctx.array(headers), body = text, url = url }
        end
        hops = hops + 1
        if hops > HOPS_MAX then
          return nil, ctx.error("os", "ELOOP", "http: more than " .. HOPS_MAX .. " redirects")
        end
        local next_url, re = ctx.http.resolve(url, location)
        if not next_url then return nil, re end
        -- 303, and 301/302 after a POST, continue as GET without a body (what clients do)
        if status == 303 or ((status == 301 or status == 302) and method == "POST") then
          method, body = "GET", nil
        end
        url = next_url
      end
    end,
  },
}
