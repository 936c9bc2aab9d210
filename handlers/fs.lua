-- fs.lua: the filesystem methods (CONTRACT.md section 4). Every path goes to ctx.fs, which
-- resolves it beneath the policy's mounts; this file only shapes params, defaults and results.
-- OS and security errors come back from ctx.fs as error objects and are returned as they are.

-- Schemas shared by several methods (each use compiles to its own copy).
local PATH = { type = "string", description = "Absolute guest path, under one of the mounts." }
local OFFSET = { type = "integer", minimum = 0, description = "Byte offset in the file." }
local ENCODING = { type = "string", enum = { "base64", "utf8" }, default = "base64",
                   description = "How `data` carries the bytes: standard base64, or UTF-8 text." }
local MODE = { type = "integer", minimum = 0, maximum = 511,
               description = "Permission bits, 0 to 0o777 (511), as an integer." }
local LIMIT = { type = "integer", minimum = 1, default = 1000, description = "Most entries to return." }
local HANDLE = { type = { "string", "integer" },
                 description = "A handle from fs.open or fs.opendir (anything else is EBADF)." }
local TYPE = { type = "string", enum = { "file", "dir", "symlink", "fifo", "socket", "char", "block" } }
local ENTRIES = { type = "array", items = { type = "object", required = { "name", "type" },
                  properties = { name = { type = "string" }, type = TYPE } } }
local VOID = { type = "object", additionalProperties = false }
local INT = { type = "integer" }

local DEFAULT_LENGTH = 65536
local DEFAULT_DIR_MODE = tonumber("755", 8)

-- The result of a text read: the text stops at the last whole character.
local function text_result(ctx, bytes, eof)
  local text = ctx.utf8_whole(bytes)
  -- At the end of the file a cut character never completes: the file is not UTF-8.
  if not text or (eof and #text < #bytes) then
    return nil, ctx.error("os", "EILSEQ", "the bytes are not valid UTF-8: read them as base64")
  end
  return { data = text, bytes_read = #text, eof = eof }
end

-- The bytes a write carries: `data` is base64, or the text itself with encoding "utf8".
local function write_bytes(ctx, p)
  if p.encoding == "utf8" then return p.data end
  return ctx.base64.decode(p.data)
end

return {
  ["fs.stat"] = {
    doc = "Type, size, permissions and times of the file at `path`.\n" ..
          "`follow = false` describes a symlink itself instead of what it points to. " ..
          "`mode` is st_mode & 0o7777; times are integer nanoseconds since the epoch.",
    params = {
      type = "object", required = { "path" }, additionalProperties = false,
      properties = {
        path = PATH,
        follow = { type = "boolean", default = true, description = "Follow a final symlink." },
      },
    },
    result = {
      type = "object", additionalProperties = false,
      required = { "type", "size", "mode", "nlink", "mtime_ns", "atime_ns", "ctime_ns" },
      properties = { type = TYPE, size = INT, mode = INT, nlink = INT,
                     mtime_ns = INT, atime_ns = INT, ctime_ns = INT },
    },
    call = function(ctx, p)
      local st, err = ctx.fs.stat(p.path, p.follow ~= false)
      if not st then return nil, err end
      return st
    end,
  },

  ["fs.read"] = {
    doc = "Read up to `length` bytes of the file at `path`, from `offset`.\n" ..
          "`length` defaults to 65536 (or limits.read_bytes if that is smaller); more than " ..
          "limits.read_bytes is -32002 size. `eof` is true when offset + bytes_read reaches the " ..
          "file's size. With encoding \"utf8\", `data` is text that stops at the last whole " ..
          "character (bytes_read counts only those bytes); bytes that are not UTF-8 are EILSEQ.",
    params = {
      type = "object", required = { "path" }, additionalProperties = false,
      properties = {
        path = PATH,
        offset = { type = "integer", minimum = 0, default = 0, description = "Where to start." },
        length = { type = "integer", minimum = 0, default = DEFAULT_LENGTH,
                   description = "Most bytes to read." },
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
      if p.encoding == "utf8" then
        local bytes, eof = ctx.fs.read(p.path, p.offset or 0, length)
        if not bytes then return nil, eof end
        return text_result(ctx, bytes, eof)
      end
      -- base64 straight from the core: the bytes never become a Lua string of their own
      local data, eof, n = ctx.fs.read(p.path, p.offset or 0, length, "base64")
      if not data then return nil, eof end
      return { data = data, bytes_read = n, eof = eof }
    end,
  },

  ["fs.write"] = {
    doc = "Write `data` to the file at `path`, creating it unless `create = false`.\n" ..
          "With neither `offset` nor `append`, the file's contents are replaced (`truncate` " ..
          "defaults to true); with `offset` the bytes overwrite from there, with `append` they " ..
          "go at the end (both at once is EINVAL). `exclusive` fails with EEXIST if the file " ..
          "exists. `data` is base64, or the text itself with encoding \"utf8\".",
    params = {
      type = "object", required = { "path", "data" }, additionalProperties = false,
      properties = {
        path = PATH,
        data = { type = "string", description = "The bytes, as `encoding` says." },
        offset = OFFSET,
        append = { type = "boolean", default = false, description = "Write at the end of the file." },
        create = { type = "boolean", default = true, description = "Create the file if it is missing." },
        truncate = { type = "boolean",
                     description = "Empty the file first (default: true without offset or append)." },
        exclusive = { type = "boolean", default = false,
                      description = "Fail with EEXIST if the file exists." },
        encoding = ENCODING,
      },
    },
    result = {
      type = "object", required = { "bytes_written" }, additionalProperties = false,
      properties = { bytes_written = INT },
    },
    call = function(ctx, p)
      if p.offset and p.append then
        return nil, ctx.error("os", "EINVAL", "offset and append cannot be used together")
      end
      if p.exclusive and p.create == false then
        return nil, ctx.error("os", "EINVAL", "exclusive cannot be used with create = false")
      end
      local bytes, err = write_bytes(ctx, p)
      if not bytes then return nil, err end
      local truncate = p.truncate
      if truncate == nil then truncate = p.offset == nil and not p.append end
      local written, werr = ctx.fs.write(p.path, bytes, {
        offset = p.offset, append = p.append == true, create = p.create ~= false,
        truncate = truncate, exclusive = p.exclusive == true,
      })
      if not written then return nil, werr end
      return { bytes_written = written }
    end,
  },

  ["fs.list"] = {
    doc = "One page of the entries of the directory at `path`, with each entry's type.\n" ..
          "Pass the `cursor` of a page to get the next one; the last page has no `cursor`. " ..
          "`fs.list` of \"/\" lists the mount points.",
    params = {
      type = "object", required = { "path" }, additionalProperties = false,
      properties = {
        path = PATH,
        cursor = { type = "string", description = "The `cursor` of the previous page." },
        limit = LIMIT,
      },
    },
    result = {
      type = "object", required = { "entries" }, additionalProperties = false,
      properties = { entries = ENTRIES, cursor = { type = "string" } },
    },
    call = function(ctx, p)
      local entries, cursor = ctx.fs.list(p.path, p.cursor, p.limit or 1000)
      if not entries then return nil, cursor end
      return { entries = entries, cursor = cursor }
    end,
  },

  ["fs.mkdir"] = {
    doc = "Create the directory `path`; with `parents`, missing parents too (and no EEXIST).\n" ..
          "`mode` defaults to 0o755 (493); the runtime's umask still applies.",
    params = {
      type = "object", required = { "path" }, additionalProperties = false,
      properties = {
        path = PATH,
        parents = { type = "boolean", default = false, description = "Create missing parents." },
        mode = MODE,
      },
    },
    result = VOID,
    call = function(ctx, p)
      local ok, err = ctx.fs.mkdir(p.path, p.parents == true, p.mode or DEFAULT_DIR_MODE)
      if not ok then return nil, err end
      return {}
    end,
  },

  ["fs.remove"] = {
    doc = "Remove the file, symlink or empty directory at `path`.\n" ..
          "With `recursive`, a directory and everything under it.",
    params = {
      type = "object", required = { "path" }, additionalProperties = false,
      properties = {
        path = PATH,
        recursive = { type = "boolean", default = false, description = "Remove a whole tree." },
      },
    },
    result = VOID,
    call = function(ctx, p)
      local ok, err = ctx.fs.remove(p.path, p.recursive == true)
      if not ok then return nil, err end
      return {}
    end,
  },

  ["fs.rename"] = {
    doc = "Rename `from` to `to`, replacing `to` unless `overwrite = false` (then EEXIST).",
    params = {
      type = "object", required = { "from", "to" }, additionalProperties = false,
      properties = {
        from = PATH, to = PATH,
        overwrite = { type = "boolean", default = true, description = "Replace an existing `to`." },
      },
    },
    result = VOID,
    call = function(ctx, p)
      local ok, err = ctx.fs.rename(p.from, p.to, p.overwrite ~= false)
      if not ok then return nil, err end
      return {}
    end,
  },

  ["fs.truncate"] = {
    doc = "Set the size of the file at `path` to `length` bytes (cut, or extend with zeros).",
    params = {
      type = "object", required = { "path", "length" }, additionalProperties = false,
      properties = {
        path = PATH,
        length = { type = "integer", minimum = 0, description = "The new size in bytes." },
      },
    },
    result = VOID,
    call = function(ctx, p)
      local ok, err = ctx.fs.truncate(p.path, p.length)
      if not ok then return nil, err end
      return {}
    end,
  },

  ["fs.symlink"] = {
    doc = "Create a symlink at `path` pointing to `target`.\n" ..
          "`target` must be relative and stay inside the mount: absolute targets are EPERM.",
    params = {
      type = "object", required = { "target", "path" }, additionalProperties = false,
      properties = {
        target = { type = "string", description = "What the link points to (relative)." },
        path = PATH,
      },
    },
    result = VOID,
    call = function(ctx, p)
      local ok, err = ctx.fs.symlink(p.target, p.path)
      if not ok then return nil, err end
      return {}
    end,
  },

  ["fs.readlink"] = {
    doc = "The target of the symlink at `path`, as it was written.",
    params = {
      type = "object", required = { "path" }, additionalProperties = false,
      properties = { path = PATH },
    },
    result = {
      type = "object", required = { "target" }, additionalProperties = false,
      properties = { target = { type = "string" } },
    },
    call = function(ctx, p)
      local target, err = ctx.fs.readlink(p.path)
      if not target then return nil, err end
      return { target = target }
    end,
  },

  ["fs.link"] = {
    doc = "Create a hard link `to` to the file `from`.",
    params = {
      type = "object", required = { "from", "to" }, additionalProperties = false,
      properties = { from = PATH, to = PATH },
    },
    result = VOID,
    call = function(ctx, p)
      local ok, err = ctx.fs.link(p.from, p.to)
      if not ok then return nil, err end
      return {}
    end,
  },

  ["fs.chmod"] = {
    doc = "Set the permission bits of `path` to `mode` (0 to 0o777, i.e. 511).",
    params = {
      type = "object", required = { "path", "mode" }, additionalProperties = false,
      properties = { path = PATH, mode = MODE },
    },
    result = VOID,
    call = function(ctx, p)
      local ok, err = ctx.fs.chmod(p.path, p.mode)
      if not ok then return nil, err end
      return {}
    end,
  },

  ["fs.utimes"] = {
    doc = "Set the access and/or modification time of `path`, in nanoseconds since the epoch.\n" ..
          "A time that is not given is left unchanged.",
    params = {
      type = "object", required = { "path" }, additionalProperties = false,
      properties = {
        path = PATH,
        atime_ns = { type = "integer", description = "New access time (ns since the epoch)." },
        mtime_ns = { type = "integer", description = "New modification time (ns since the epoch)." },
      },
    },
    result = VOID,
    call = function(ctx, p)
      local ok, err = ctx.fs.utimes(p.path, p.atime_ns, p.mtime_ns)
      if not ok then return nil, err end
      return {}
    end,
  },

  ["fs.open"] = {
    doc = "Open the file at `path` and answer a handle for io.read, io.write, io.seek, io.close.\n" ..
          "`mode`: \"r\" read; \"w\" write, creating and truncating; \"a\" append, creating; " ..
          "\"rw\" read and write an existing file. `create` and `truncate` override those " ..
          "defaults; `exclusive` creates the file and fails with EEXIST if it exists. " ..
          "`truncate` with \"r\", or `exclusive` with `create = false`, is EINVAL.",
    params = {
      type = "object", required = { "path", "mode" }, additionalProperties = false,
      properties = {
        path = PATH,
        mode = { type = "string", enum = { "r", "w", "a", "rw" }, description = "Access mode." },
        create = { type = "boolean",
                   description = "Create the file if missing (default: with w, a, exclusive)." },
        truncate = { type = "boolean", description = "Empty the file on open (default: w)." },
        exclusive = { type = "boolean", default = false,
                      description = "Fail with EEXIST if the file exists." },
      },
    },
    result = {
      type = "object", required = { "handle" }, additionalProperties = false,
      properties = { handle = HANDLE },
    },
    call = function(ctx, p)
      local create, truncate = p.create, p.truncate
      if create == nil then create = p.mode == "w" or p.mode == "a" or p.exclusive == true end
      if truncate == nil then truncate = p.mode == "w" end
      if truncate and p.mode == "r" then
        return nil, ctx.error("os", "EINVAL", "truncate needs a writable mode")
      end
      if p.exclusive and not create then
        return nil, ctx.error("os", "EINVAL", "exclusive cannot be used with create = false")
      end
      local handle, err = ctx.fs.open(p.path, p.mode,
        { create = create, truncate = truncate, exclusive = p.exclusive == true })
      if not handle then return nil, err end
      return { handle = handle }
    end,
  },

  ["fs.opendir"] = {
    doc = "Open the directory at `path` and answer a handle for fs.readdir and io.close.",
    params = {
      type = "object", required = { "path" }, additionalProperties = false,
      properties = { path = PATH },
    },
    result = {
      type = "object", required = { "handle" }, additionalProperties = false,
      properties = { handle = HANDLE },
    },
    call = function(ctx, p)
      local handle, err = ctx.fs.opendir(p.path)
      if not handle then return nil, err end
      return { handle = handle }
    end,
  },

  ["fs.readdir"] = {
    doc = "The next entries of a directory handle from fs.opendir; `eof` once all were given.",
    params = {
      type = "object", required = { "handle" }, additionalProperties = false,
      properties = { handle = HANDLE, limit = LIMIT },
    },
    result = {
      type = "object", required = { "entries", "eof" }, additionalProperties = false,
      properties = { entries = ENTRIES, eof = { type = "boolean" } },
    },
    call = function(ctx, p)
      local entries, eof = ctx.fs.readdir(p.handle, p.limit or 1000)
      if not entries then return nil, eof end
      return { entries = entries, eof = eof }
    end,
  },
}
