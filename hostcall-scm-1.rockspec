-- The Lua module `hostcall` (the same C core as the CLI and libhostcall), built with CMake.
rockspec_format = "3.0"
package = "hostcall"
version = "scm-1"
source = { url = "git+file:///work/main" }
description = {
  summary = "A Lua-scriptable host function runtime: capability sandboxing over JSON-RPC 2.0",
  license = "MIT",
}
dependencies = { "lua >= 5.4, < 5.5" }
build = {
  type = "cmake",
  variables = { CMAKE_BUILD_TYPE = "Release" },
  install = { lib = { hostcall = "build.luarocks/hostcall.so" } },
}
