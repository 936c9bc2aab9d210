/*
** luamod.c: require "hostcall": the same core as a Lua module.
**   local hostcall = require "hostcall"
**   local rt = assert(hostcall.new { policy = "acme.lua", handlers = { "dir" } })
**   local response = rt:call('{"jsonrpc":"2.0","id":1,"method":"sys.ping"}')  -- string or nil
**   rt:describe(), rt:capabilities(), rt:tenant(), rt:close()
** Also hostcall.new { policy_source = "return {...}", name = "acme.lua" }.
*/
#include "hostcall.h"

#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#define RT_MT "hostcall.runtime"
#define MAX_DIRS 64

typedef struct lrt { hc_runtime *rt; } lrt;

static hc_runtime *check_rt(lua_State *L) {
  lrt *u = luaL_checkudata(L, 1, RT_MT);
  luaL_argcheck(L, u->rt != NULL, 1, "runtime is closed");
  return u->rt;
}

static int l_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  hc_config cfg;
  hc_config_init(&cfg);
  const char *dirs[MAX_DIRS + 1] = {0};
  int nd = 0;
  if (lua_getfield(L, 1, "handlers") == LUA_TTABLE) {
    for (int i = 1; nd < MAX_DIRS; i++) {
      if (lua_rawgeti(L, -1, i) != LUA_TSTRING) { lua_pop(L, 1); break; }
      dirs[nd++] = lua_tostring(L, -1);
      lua_pop(L, 1);   /* the string stays alive: the table holds it */
    }
  }
  lua_pop(L, 1);
  cfg.handler_dirs = dirs;
  if (lua_getfield(L, 1, "system_handlers") == LUA_TSTRING) cfg.system_handler_dir = lua_tostring(L, -1);
  else if (lua_toboolean(L, -1) == 0 && !lua_isnil(L, -1)) cfg.no_system_handlers = 1;
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "audit_fd") == LUA_TNUMBER) cfg.audit_fd = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "resolver") == LUA_TSTRING) {
    const char *r = lua_tostring(L, -1);
    if (strcmp(r, "openat2") == 0) cfg.resolver = 1;
    else if (strcmp(r, "walk") == 0) cfg.resolver = 2;
    else return luaL_error(L, "hostcall.new: resolver must be \"openat2\" or \"walk\"");
  }
  lua_pop(L, 1);
  lrt *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->rt = NULL;
  luaL_setmetatable(L, RT_MT);
  char *err = NULL;
  size_t len;
  if (lua_getfield(L, 1, "policy_source") == LUA_TSTRING) {
    const char *src = lua_tolstring(L, -1, &len);
    lua_getfield(L, 1, "name");
    u->rt = hc_runtime_new_string(src, len, luaL_optstring(L, -1, "policy.lua"), &cfg, &err);
    lua_pop(L, 1);
  } else {
    lua_getfield(L, 1, "policy");
    const char *path = lua_tostring(L, -1);
    if (!path) return luaL_error(L, "hostcall.new: policy or policy_source is required");
    u->rt = hc_runtime_new_file(path, &cfg, &err);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (!u->rt) {
    lua_pushnil(L);
    lua_pushstring(L, err ? err : "out of memory");
    hc_free(err);
    return 2;
  }
  return 1;
}

static int l_call(lua_State *L) {
  hc_runtime *rt = check_rt(L);
  size_t len, rlen;
  const char *req = luaL_checklstring(L, 2, &len);
  char *resp = NULL;
  if (hc_call(rt, req, len, &resp, &rlen) != 0) return luaL_error(L, "hc_call failed");
  if (resp) lua_pushlstring(L, resp, rlen);
  else lua_pushnil(L);
  hc_free(resp);
  return 1;
}

static int push_owned(lua_State *L, char *s) {
  if (!s) return luaL_error(L, "out of memory");
  lua_pushstring(L, s);
  hc_free(s);
  return 1;
}

static int l_describe(lua_State *L) { return push_owned(L, hc_describe(check_rt(L))); }
static int l_caps(lua_State *L) { return push_owned(L, hc_capabilities(check_rt(L))); }
static int l_tenant(lua_State *L) { lua_pushstring(L, hc_tenant_name(check_rt(L))); return 1; }

static int l_close(lua_State *L) {
  lrt *u = luaL_checkudata(L, 1, RT_MT);
  if (u->rt) hc_runtime_free(u->rt);
  u->rt = NULL;
  return 0;
}

int luaopen_hostcall(lua_State *L);
int luaopen_hostcall(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"call", l_call}, {"describe", l_describe}, {"capabilities", l_caps},
    {"tenant", l_tenant}, {"close", l_close}, {NULL, NULL}};
  luaL_newmetatable(L, RT_MT);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, l_new);
  lua_setfield(L, -2, "new");
  lua_pushstring(L, hc_version());
  lua_setfield(L, -2, "version");
  return 1;
}
