/*
** chunk.h: Lua source compiled once per process. Every tenant state loads the same glue modules
** and, mostly, the same handler files; parsing them was half of what a tenant cost to load.
*/
#ifndef HC_CHUNK_H
#define HC_CHUNK_H

#include <lua.h>
#include <stddef.h>

/* Load src as a text chunk named `name` (a chunk name: "=file.lua"), like
** luaL_loadbufferx(L, src, len, name, "t"): the same function on the stack (upvalues unset, the
** first one the globals as lua_load leaves it) or the same error. A (name, text) pair compiled
** once is kept as bytecode for every later load in any state of the process; only text this
** function compiled itself is ever loaded as bytecode. LUA_OK or the lua_load error code. */
int hc_chunk_load(lua_State *L, const char *src, size_t len, const char *name);

/* Testing and measuring: the cache's hits, misses and bytes held; drop everything. */
void hc_chunk_stats(size_t *hits, size_t *misses, size_t *bytes);
void hc_chunk_clear(void);

#endif
