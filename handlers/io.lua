-- io.lua: the stream methods (CONTRACT.md section 5) on handles from fs.open, fs.opendir and the
-- net.* methods (sockets: reads return what has arrived, writes send everything; both may wait).
-- The handle table lives in ctx.io: a closed, foreign or made-up handle comes back as EBADF.

local HANDLE = { type = { "string", "integer" },
                 description = "A handle from fs.open (anything else is EBADF)." }
local ENCODING = { type = "string", enum = { "base64", "utf8" }, default = "base64",
                   description = "How `data` carries the bytes: standard base64, or UTF-8 text." }
local VOID = { type = "object", additionalProperties = false }
local INT = { type = "integer" }

local DEFAULT_LENGTH = 65536
local TIMEOUT = { type = "integer", minimum = 0, maximum = 86400000,
                  description = "Sockets: most milliseconds to wait (then ETIMEDOUT); files never wait." }

-- The bytes a write carries: `data` is base64, or the text itself with encoding "utf8".
local function write_bytes(ctx, p)
  if p.encoding == "utf8" then return p.data end
  return ctx.base64.decode(p.data)
end

return {
  ["io.read"] = {
    doc = "Read up to `length` bytes from a handle, at its position or at `offset`.\n" ..
          "Without `offset` the handle's position moves past the bytes read; with it, it stays. " ..
          "`length` defaults to 65536 (or limits.read_bytes if that is smaller); more than " ..
          "limits.read_bytes is -32002 size. With encoding \"utf8\", `data` is text that stops " ..
          "at the last whole character and the position moves only past those bytes; bytes " ..
          "that are not UTF-8 are EILSEQ and leave the position where it was.",
    params = {
      type = "object", required = { "handle" }, additionalProperties = false,
      properties = {
        handle = HANDLE,
        length = { type = "integer", minimum = 0, default = DEFAULT_LENGTH,
                   description = "Most bytes to read." },
        offset = { type = "integer", minimum = 0,
                   description = "Read here instead of at the handle's position." },
        timeout_ms = TIMEOUT,
        encoding = ENCODING,
      },
    },
    result = {
      type = "object", required = { "data", "bytes_read", "eof" }, additionalProperties = false,
      properties = { data = { type = "string" }, bytes_read = INT, eof = { type = "boolean" } },
    },
    call = function(ctx, p)
      -- over limits.read_bytes is -32002 size: the core checks it, before any allocation
      local length = p.length or math.min(DEFAULT_LENGTH, ctx.limits.read_bytes)
      if p.encoding ~= "utf8" then   -- base64 straight from the core, no Lua copy of the bytes
        local data, eof, n = ctx.io.read(p.handle, length, p.offset, "base64", p.timeout_ms)
        if not data then return nil, eof end
        return { data = data, bytes_read = n, eof = eof }
      end
      -- "utf8": a socket gives whole characters (the core keeps a cut one); a file, its bytes
      local bytes, eof = ctx.io.read(p.handle, length, p.offset, "utf8", p.timeout_ms)
      if not bytes then return nil, eof end
      local text = ctx.utf8_whole(bytes)
      -- At the end of a file a cut character never completes: the file is not UTF-8.
      if eof and text and #text < #bytes then text = nil end
      local unused = #bytes - (text and #text or 0)
      if unused > 0 and p.offset == nil then
        -- Give back what is not returned, so the next read starts with it.
        local pos, err = ctx.io.seek(p.handle, -unused, "cur")
        if not pos then return nil, err end
      end
      if not text then
        return nil, ctx.error("os", "EILSEQ", "the bytes are not valid UTF-8: read them as base64")
      end
      return { data = text, bytes_read = #text, eof = eof }
    end,
  },

  ["io.write"] = {
    doc = "Write `data` to a handle, at its position (or the end, for mode \"a\") or at `offset`.\n" ..
          "`offset` on a handle opened with mode \"a\" is EINVAL. `data` is base64, or the text " ..
          "itself with encoding \"utf8\".",
    params = {
      type = "object", required = { "handle", "data" }, additionalProperties = false,
      properties = {
        handle = HANDLE,
        data = { type = "string", description = "The bytes, as `encoding` says." },
        offset = { type = "integer", minimum = 0,
                   description = "Write here instead of at the handle's position." },
        timeout_ms = TIMEOUT,
        encoding = ENCODING,
      },
    },
    result = {
      type = "object", required = { "bytes_written" }, additionalProperties = false,
      properties = { bytes_written = INT },
    },
    call = function(ctx, p)
      local bytes, err = write_bytes(ctx, p)
      if not bytes then return nil, err end
      local written, werr = ctx.io.write(p.handle, bytes, p.offset, p.timeout_ms)
      if not written then return nil, werr end
      return { bytes_written = written }
    end,
  },

  ["io.seek"] = {
    doc = "Move a handle's position and answer the new `offset` from the start of the file.\n" ..
          "`whence`: \"set\" from the start, \"cur\" from the position, \"end\" from the end; " ..
          "`offset` may be negative with \"cur\" and \"end\" (a position before 0 is EINVAL).",
    params = {
      type = "object", required = { "handle", "offset", "whence" }, additionalProperties = false,
      properties = {
        handle = HANDLE,
        offset = { type = "integer", description = "Bytes from the point `whence` names." },
        whence = { type = "string", enum = { "set", "cur", "end" }, description = "From where." },
      },
    },
    result = {
      type = "object", required = { "offset" }, additionalProperties = false,
      properties = { offset = INT },
    },
    call = function(ctx, p)
      local offset, err = ctx.io.seek(p.handle, p.offset, p.whence)
      if not offset then return nil, err end
      return { offset = offset }
    end,
  },

  ["io.close"] = {
    doc = "Close a handle (file, directory or socket); it is EBADF from then on.",
    params = {
      type = "object", required = { "handle" }, additionalProperties = false,
      properties = { handle = HANDLE },
    },
    result = VOID,
    call = function(ctx, p)
      local ok, err = ctx.io.close(p.handle)
      if not ok then return nil, err end
      return {}
    end,
  },

  ["io.sync"] = {
    doc = "Flush a file handle's data and metadata to storage (fsync).",
    params = {
      type = "object", required = { "handle" }, additionalProperties = false,
      properties = { handle = HANDLE },
    },
    result = VOID,
    call = function(ctx, p)
      local ok, err = ctx.io.sync(p.handle)
      if not ok then return nil, err end
      return {}
    end,
  },
}
