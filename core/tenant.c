/*
** tenant.c: one Lua state per tenant: its allocator and memory accounting, the host functions
** the trusted glue may use, the embedded glue itself, and the pool of call threads.
*/
#include "internal.h"
#include "chunk.h"
#include "embed.h"
#include "json.h"
#include "sandbox.h"
#include "fsapi.h"
#include "netapi.h"
#include "toolapi.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TENANT_BOOT_MEMORY (32u << 20)  /* cap while the policy itself is loading */
#define TENANT_POOL_MAX 64              /* idle call threads kept for reuse */
#define HOOK_COUNT 1000

char hc_sentinel;                        /* its address marks a host wait */
static const char GLUE_CACHE = 0;        /* registry keys (addresses) */
static const char HOST_TABLE = 0;

/* {===== allocator ===== */

static void *tenant_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  hc_tenant *t = ud;
  size_t old = ptr ? osize : 0;   /* with ptr NULL, osize is a type tag, not a size */
  if (nsize == 0) {
    free(ptr);
    t->mem_used -= old;
    return NULL;
  }
  if (nsize > old && !t->host_alloc && t->mem_used - old + nsize > t->mem_limit) {
    hc_sandbox_trip(t, HC_TRIP_MEMORY);   /* a call at its cap cannot catch this with pcall */
    return NULL;
  }
  void *p = ptr ? realloc(ptr, nsize) : malloc(nsize);
  if (!p) return NULL;
  t->mem_used = t->mem_used - old + nsize;
  return p;
}

static hc_tenant *tenant_of(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

/* }===== */

/* {===== host functions (reachable only from the trusted glue, some re-exported via ctx) ===== */

static int host_is_array(lua_State *L) {
  int yes = 0;
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    hc_json_push_array_mt(L);
    yes = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, yes);
  return 1;
}

static int push_errno(lua_State *L, int err) {
  lua_pushnil(L);
  lua_pushstring(L, strerrorname_np(err) ? strerrorname_np(err) : "EIO");
  return 2;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* load_chunk(src, name[, env]) -> function | nil, message: load(src, name, "t", env), the text
** compiled once per process (core/chunk.c) for the handler files every tenant loads. */
static int host_load_chunk(lua_State *L) {
  size_t len;
  const char *src = luaL_checklstring(L, 1, &len);
  const char *name = luaL_checkstring(L, 2);
  if (hc_chunk_load(L, src, len, name) != LUA_OK) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  if (!lua_isnone(L, 3)) {
    lua_pushvalue(L, 3);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  }
  return 1;
}

/* list_dir(path) -> sorted names of the *.lua regular files | nil, ERRNO */
static int host_list_dir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return push_errno(L, errno);
  DIR *d = fdopendir(fd);
  if (!d) { int e = errno; close(fd); return push_errno(L, e); }
  char **names = NULL;
  size_t n = 0, cap = 0;
  int err = 0;
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    struct stat st;
    if (len < 5 || strcmp(de->d_name + len - 4, ".lua") != 0 || de->d_name[0] == '.') continue;
    if (fstatat(fd, de->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode)) continue;
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      char **nn = realloc(names, ncap * sizeof *nn);
      if (!nn) { err = ENOMEM; break; }
      names = nn;
      cap = ncap;
    }
    if (!(names[n] = strdup(de->d_name))) { err = ENOMEM; break; }
    n++;
    errno = 0;
  }
  if (!err && errno) err = errno;
  closedir(d);
  if (!err) {
    qsort(names, n, sizeof *names, cmp_str);
    lua_createtable(L, (int)n, 0);
  }
  for (size_t i = 0; i < n; i++) {
    if (!err) {
      lua_pushstring(L, names[i]);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    free(names[i]);
  }
  free(names);
  return err ? push_errno(L, err) : 1;
}

/* read_file(path, max) -> contents | nil, ERRNO ("EFBIG" past max) */
static int host_read_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max = luaL_checkinteger(L, 2);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return push_errno(L, errno);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int e = S_ISREG(st.st_mode) ? errno : EINVAL;
    close(fd);
    return push_errno(L, e);
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_Integer total = 0;
  for (;;) {
    char *p = luaL_prepbuffer(&b);
    ssize_t r = read(fd, p, LUAL_BUFFERSIZE);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { int e = errno; close(fd); return push_errno(L, e); }
    if (r == 0) break;
    total += r;
    if (total > max) { close(fd); return push_errno(L, EFBIG); }
    luaL_addsize(&b, (size_t)r);
  }
  close(fd);
  luaL_pushresult(&b);
  return 1;
}

static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  (void)L; (void)status; (void)ctx;
  return 0;
}

/* sleep(ms): park this call; the loop resumes it when the time comes. */
static int host_sleep(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  lua_Integer ms = luaL_checkinteger(L, 1);
  luaL_argcheck(L, ms >= 0 && ms <= HC_SLEEP_MAX_MS, 1, "out of range");
  if (!t->current) return luaL_error(L, "sleep: not inside a call");
  if (hc_task_wait(t->current, hc_now_us() + (uint64_t)ms * 1000u))
    return luaL_error(L, "sleep: out of memory");
  lua_pushlightuserdata(L, &hc_sentinel);
  return lua_yieldk(L, 1, 0, sleep_k);
}

static int host_exit(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  lua_Integer code = luaL_optinteger(L, 1, 0);
  luaL_argcheck(L, code >= 0 && code <= 255, 1, "exit code must be 0..255");
  if (!t->current) return luaL_error(L, "exit: not inside a call");
  t->current->exit_code = (int)code;
  return 0;
}

static int host_log(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  size_t n;
  const char *msg = luaL_checklstring(L, 1, &n);
  char clean[512];
  size_t k = 0;
  for (size_t i = 0; i < n && k < sizeof clean - 1; i++)
    clean[k++] = (msg[i] >= 0x20 && msg[i] != 0x7f) || (unsigned char)msg[i] >= 0x80 ? msg[i] : '?';
  clean[k] = '\0';
  hc_log(t->rt, "tenant %s: %s%s", t->name ? t->name : "?", clean, n >= sizeof clean ? "..." : "");
  return 0;
}

static int host_time(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

static int host_clock(lua_State *L) {
  lua_pushnumber(L, (lua_Number)hc_now_us() / 1e6);
  return 1;
}

/* set_memory_limit(bytes): the policy's limits.memory, applied before handlers load, so what
** a handler file keeps from its top level counts too. */
static int host_set_memory_limit(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  lua_Integer n = luaL_checkinteger(L, 1);
  if (n <= 0 || (size_t)n < t->mem_used)
    return luaL_error(L, "limits.memory (%I bytes) is below what the runtime itself uses (%I)", n,
                      (lua_Integer)t->mem_used);
  t->mem_limit = (size_t)n;
  hc_json_set_encode_limit(L, (size_t)n);
  return 0;
}

/* string.rep: the stock one loops n times even when every copy is empty. Otherwise it is safe:
** it allocates the whole result first (the memory cap refuses a huge one), then copies. */
static int sb_rep(lua_State *L) {
  size_t l, lsep = 0;
  luaL_checklstring(L, 1, &l);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &lsep);
  if (n <= 0 || l + lsep == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* table.move with the stock semantics, but charged: a move of 2^63 nils is a C loop no hook
** would ever see. */
static int sb_move(lua_State *L) {
  lua_Integer f = luaL_checkinteger(L, 2);
  lua_Integer e = luaL_checkinteger(L, 3);
  lua_Integer d = luaL_checkinteger(L, 4);
  int tt = !lua_isnoneornil(L, 5) ? 5 : 1;
  luaL_checkany(L, 1);
  luaL_checkany(L, tt);
  if (e >= f) {
    luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
    lua_Integer n = e - f + 1;
    luaL_argcheck(L, d <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
    int forward = d > e || d <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ));
    for (lua_Integer i = 0; i < n; i++) {
      lua_Integer k = forward ? i : n - 1 - i;
      if ((i & 1023) == 1023) hc_sandbox_charge(L, 1024 * 8);
      lua_geti(L, 1, f + k);
      lua_seti(L, tt, d + k);
    }
  }
  lua_pushvalue(L, tt);
  return 1;
}

/* import(name): the embedded glue module hostcall/NAME.lua, loaded once per state. */
static int host_import(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &GLUE_CACHE);
  if (lua_getfield(L, -1, name) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  char path[128], chunk[140];
  snprintf(path, sizeof path, "hostcall/%s.lua", name);
  const hc_embedded *e = hc_embedded_find(hc_embedded_lua, path);
  if (!e) return luaL_error(L, "no glue module %s", name);
  snprintf(chunk, sizeof chunk, "=%s", path);
  if (hc_chunk_load(L, e->data, e->size, chunk) != LUA_OK) return lua_error(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &HOST_TABLE);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_call(L, 2, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, name);
  return 1;
}

/* }===== */

/* {===== boot ===== */

typedef struct boot_args {
  hc_tenant *t;
  const char *src;
  size_t len;
  const char *name, *dir;
} boot_args;

static void set_fn(lua_State *L, const char *name, lua_CFunction f) {
  lua_pushcfunction(L, f);
  lua_setfield(L, -2, name);
}

static lua_Integer limit_field(lua_State *L, int idx, const char *k, lua_Integer dflt) {
  lua_Integer v = dflt;
  if (lua_getfield(L, idx, k) == LUA_TNUMBER && lua_isinteger(L, -1)) v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

static void open_lib(lua_State *L, const char *name, lua_CFunction f) {
  luaL_requiref(L, name, f, 1);
  lua_pop(L, 1);
}

static int tenant_boot(lua_State *L) {
  boot_args *a = lua_touserdata(L, 1);
  hc_tenant *t = a->t;
  hc_runtime *rt = t->rt;

  open_lib(L, LUA_GNAME, luaopen_base);
  open_lib(L, LUA_COLIBNAME, luaopen_coroutine);
  open_lib(L, LUA_TABLIBNAME, luaopen_table);
  open_lib(L, LUA_STRLIBNAME, luaopen_string);
  open_lib(L, LUA_MATHLIBNAME, luaopen_math);
  open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
  /* The base library's file loaders reach the host's filesystem: gone before any glue runs. */
  lua_pushnil(L); lua_setglobal(L, "dofile");
  lua_pushnil(L); lua_setglobal(L, "loadfile");
  lua_pushnil(L); lua_setglobal(L, "print");
  /* string.dump would let tenant code make bytecode: removed from the real table, which is
  ** also every string's __index; the string metatable is locked. */
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  hc_pattern_open(L);   /* pattern matching that a budget can stop (pattern.c) */
  lua_getfield(L, -1, "rep");
  lua_pushcclosure(L, sb_rep, 1);
  lua_setfield(L, -2, "rep");
  lua_pop(L, 1);
  lua_getglobal(L, LUA_TABLIBNAME);
  lua_pushcfunction(L, sb_move);
  lua_setfield(L, -2, "move");
  lua_pop(L, 1);
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);

  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &GLUE_CACHE);

  lua_newtable(L);   /* host */
  set_fn(L, "json_encode", hc_json_l_encode);
  set_fn(L, "json_decode", hc_json_l_decode);
  set_fn(L, "is_array", host_is_array);
  hc_sandbox_open(L);   /* pcall, xpcall, co_resume, protected_run, call_threads */
  set_fn(L, "list_dir", host_list_dir);
  set_fn(L, "load_chunk", host_load_chunk);
  set_fn(L, "read_file", host_read_file);
  set_fn(L, "sleep", host_sleep);
  set_fn(L, "exit", host_exit);
  set_fn(L, "log", host_log);
  set_fn(L, "time", host_time);
  set_fn(L, "clock", host_clock);
  set_fn(L, "set_memory_limit", host_set_memory_limit);
  hc_fsapi_open(L);
  hc_netapi_open(L);
  hc_toolapi_open(L);
  hc_json_push_null(L);
  lua_setfield(L, -2, "null");
  hc_json_push_array_mt(L);
  lua_setfield(L, -2, "array");
  lua_pushlightuserdata(L, &hc_sentinel);
  lua_setfield(L, -2, "sentinel");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &HOST_TABLE);

  /* A self-referencing closure: import's upvalue is import itself. */
  lua_pushnil(L);
  lua_pushcclosure(L, host_import, 1);
  lua_pushvalue(L, -1);
  lua_setupvalue(L, -2, 1);
  int import = lua_gettop(L);

  lua_pushvalue(L, import);
  lua_pushliteral(L, "runtime");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "init");
  lua_createtable(L, 0, 8);   /* cfg */
  lua_pushlstring(L, a->src, a->len);
  lua_setfield(L, -2, "policy_src");
  lua_pushstring(L, a->name);
  lua_setfield(L, -2, "policy_name");
  if (a->dir) { lua_pushstring(L, a->dir); lua_setfield(L, -2, "policy_dir"); }
  lua_pushliteral(L, HC_VERSION);
  lua_setfield(L, -2, "version");
  lua_newtable(L);
  int ndirs = 0;
  if (rt->system_handler_dir) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, rt->system_handler_dir);
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "(shipped handlers)");
    lua_setfield(L, -2, "label");
    lua_rawseti(L, -2, ++ndirs);
  }
  for (char **d = rt->handler_dirs; d && *d; d++) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, *d);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, *d);
    lua_setfield(L, -2, "label");
    lua_rawseti(L, -2, ++ndirs);
  }
  lua_setfield(L, -2, "handler_dirs");
  lua_call(L, 1, 2);
  if (lua_isnil(L, -2)) {
    if (lua_type(L, -1) != LUA_TSTRING) lua_pushliteral(L, "policy failed to load");
    return lua_error(L);
  }
  lua_pop(L, 1);
  int rtab = lua_gettop(L);
  lua_getfield(L, rtab, "dispatch");
  t->ref_dispatch = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, rtab, "describe");
  t->ref_describe = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, rtab, "capabilities");
  t->ref_caps = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, rtab, "tenant");
  t->name = strdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "tenant");
  if (!t->name) return luaL_error(L, "out of memory");
  lua_pop(L, 1);
  /* The loader modules were only needed to load: let them go (an idle tenant stays small). */
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &GLUE_CACHE);
  lua_getfield(L, rtab, "limits");
  int li = lua_gettop(L);
  hc_limits *l = &t->limits;
  l->memory = limit_field(L, li, "memory", 32 << 20);
  l->instructions = limit_field(L, li, "instructions", 10000000);
  l->time_ms = limit_field(L, li, "time_ms", 5000);
  l->handles = limit_field(L, li, "handles", 256);
  l->sockets = limit_field(L, li, "sockets", 64);
  l->concurrency = limit_field(L, li, "concurrency", 256);
  l->sessions = limit_field(L, li, "sessions", 64);
  l->idle_ms = limit_field(L, li, "idle_ms", 600000);
  l->request_bytes = limit_field(L, li, "request_bytes", 16 << 20);
  l->read_bytes = limit_field(L, li, "read_bytes", 16 << 20);
  return 0;
}

hc_tenant *hc_tenant_new(hc_runtime *rt, const char *src, size_t len, const char *name,
                         const char *dir, char **err) {
  hc_tenant *t = calloc(1, sizeof *t);
  if (!t) { *err = strdup("out of memory"); return NULL; }
  t->rt = rt;
  t->mem_limit = TENANT_BOOT_MEMORY;
  t->stats = calloc(1, sizeof *t->stats);
  if (!t->stats) { free(t); *err = strdup("out of memory"); return NULL; }
  t->stats->refs = 1;
  t->ref_dispatch = t->ref_describe = t->ref_caps = LUA_NOREF;
  t->L = lua_newstate(tenant_alloc, t);
  if (!t->L) { free(t->stats); free(t); *err = strdup("out of memory"); return NULL; }
  boot_args a = {t, src, len, name, dir};
  lua_pushcfunction(t->L, tenant_boot);
  lua_pushlightuserdata(t->L, &a);
  if (lua_pcall(t->L, 1, 0, 0) != LUA_OK) {
    const char *m = lua_type(t->L, -1) == LUA_TSTRING ? lua_tostring(t->L, -1) : "policy failed to load";
    *err = strdup(m);
    hc_tenant_free(t);
    return NULL;
  }
  lua_settop(t->L, 0);
  lua_gc(t->L, LUA_GCCOLLECT);
  /* Calls make short-lived garbage (params, results, byte strings): a generational collector
  ** frees it young instead of re-marking the whole tenant every cycle. */
  lua_gc(t->L, LUA_GCGEN, 0, 0);
  t->mem_limit = (size_t)t->limits.memory;
  hc_json_set_encode_limit(t->L, t->mem_limit);
  t->exact_hook = t->limits.instructions < HC_EXACT_INSTRUCTIONS;

  return t;
}

void hc_tenant_free(hc_tenant *t) {
  if (!t) return;
  if (t->L) lua_close(t->L);
  hc_fsapi_free(t);
  hc_netapi_free(t);
  hc_toolapi_free(t);
  if (t->stats && --t->stats->refs == 0) free(t->stats);
  free(t->file);
  free(t->pool);
  free(t->pool_ref);
  free(t->name);
  free(t);
}

/* }===== */

/* {===== call threads ===== */

lua_State *hc_tenant_thread(hc_tenant *t, int *ref) {
  if (t->npool) {
    t->npool--;
    *ref = t->pool_ref[t->npool];
    return t->pool[t->npool];
  }
  lua_State *L = t->L;
  if (!lua_checkstack(L, 4)) return NULL;
  t->host_alloc++;
  lua_State *co = lua_newthread(L);
  hc_sandbox_push_call_threads(L);
  lua_pushvalue(L, -2);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  *ref = luaL_ref(L, LUA_REGISTRYINDEX);
  t->host_alloc--;
  return co;
}

void hc_tenant_release_thread(hc_tenant *t, lua_State *co, int ref, int reset) {
  if (reset) lua_resetthread(co);   /* callers with a call end it metered first (task.c) */
  hc_sandbox_reset(co);
  lua_settop(co, 0);
  if (t->npool < TENANT_POOL_MAX) {
    if (t->npool == t->cappool) {
      size_t ncap = t->cappool ? t->cappool * 2 : 16;
      lua_State **np = realloc(t->pool, ncap * sizeof *np);
      if (np) t->pool = np;
      int *nr = np ? realloc(t->pool_ref, ncap * sizeof *nr) : NULL;
      if (nr) t->pool_ref = nr;
      if (np && nr) t->cappool = ncap;
    }
    if (t->npool < t->cappool) {
      t->pool[t->npool] = co;
      t->pool_ref[t->npool] = ref;
      t->npool++;
      return;
    }
  }
  lua_State *L = t->L;
  t->host_alloc++;
  hc_sandbox_push_call_threads(L);
  lua_pushthread(co);
  lua_xmove(co, L, 1);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
  t->host_alloc--;
}

/* }===== */

static int call_json(lua_State *L) {
  int ref = (int)lua_tointeger(L, 1);
  hc_buf *out = lua_touserdata(L, 2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_call(L, 0, 1);
  const char *err = NULL;
  if (hc_json_encode(L, -1, 0, out, HC_JSON_MAX_DEPTH, &err)) return luaL_error(L, "%s", err);
  return 0;
}

int hc_tenant_call_json(hc_tenant *t, int ref, char **out) {
  hc_buf b = HC_BUF_INIT;
  lua_State *L = t->L;
  lua_pushcfunction(L, call_json);
  lua_pushinteger(L, ref);
  lua_pushlightuserdata(L, &b);
  t->host_alloc++;
  int st = lua_pcall(L, 2, 0, 0);
  t->host_alloc--;
  if (st != LUA_OK || !hc_buf_cstr(&b)) {
    lua_settop(L, 0);
    hc_buf_free(&b);
    *out = NULL;
    return -1;
  }
  *out = b.p;
  return 0;
}
