/*
** toolapi.c: running a policy's tool for a call. The process's pidfd and pipes are watched by the
** loop while the call is parked; the tool's timeout is a loop timer that kills its whole tree
** (core/proc.c). A call that ends first (its own time limit, a cancel, the session closing)
** kills the tool too: nothing a tool starts outlives the call that started it.
*/
#include "toolapi.h"
#include "capdir.h"
#include "fsapi.h"
#include "internal.h"
#include "proc.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define TOOL_STDERR_MAX 4096   /* kept for the error message of a failing tool */

typedef struct tool_spec {
  char *name;
  char **argv;                /* NULL-terminated */
  char **envp;                /* "K=V", NULL-terminated */
  char *cwd;                  /* guest path, or NULL */
  int stdin_args;
  int64_t timeout_ms, max_output, max_running;
  int running;
} tool_spec;

typedef struct tool_set {
  tool_spec *v;
  size_t n;
} tool_set;

/* One run in progress: freed by the call's continuation, or when the call ends first. */
typedef struct tool_run {
  hc_task *k;
  hc_runtime *rt;
  tool_spec *spec;
  hc_proc *p;
  hc_watch w[4];              /* pidfd, stdin, stdout, stderr */
  hc_timer timeout;
  int done, timed_out;
} tool_run;

static hc_tenant *tenant_of(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

static int fail(lua_State *L, const char *name, const char *msg, const char *kind) {
  lua_pushnil(L);
  lua_pushstring(L, name);
  lua_pushstring(L, msg);
  lua_pushstring(L, kind);
  return 4;
}

/* {===== the policy's tools ===== */

static void spec_free(tool_spec *s) {
  free(s->name);
  for (char **a = s->argv; a && *a; a++) free(*a);
  free(s->argv);
  for (char **e = s->envp; e && *e; e++) free(*e);
  free(s->envp);
  free(s->cwd);
}

void hc_toolapi_free(hc_tenant *t) {
  tool_set *ts = t->tools;
  if (!ts) return;
  for (size_t i = 0; i < ts->n; i++) spec_free(&ts->v[i]);
  free(ts->v);
  free(ts);
  t->tools = NULL;
}

static char *dup_field(lua_State *L, int idx, const char *field) {
  lua_getfield(L, idx, field);
  const char *s = lua_tostring(L, -1);
  char *d = s ? strdup(s) : NULL;
  lua_pop(L, 1);
  return d;
}

static int64_t int_field(lua_State *L, int idx, const char *field, int64_t dflt) {
  lua_getfield(L, idx, field);
  int64_t v = lua_isinteger(L, -1) ? (int64_t)lua_tointeger(L, -1) : dflt;
  lua_pop(L, 1);
  return v;
}

/* set_tools({ name = {argv=, env=, stdin=, cwd=, timeout_ms=, max_output=, max_running=} }):
** the loader checked every field (lua/hostcall/policy.lua); this copies them into C. */
static int tools_set(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  tool_set *ts = calloc(1, sizeof *ts);
  if (!ts) return luaL_error(L, "set_tools: out of memory");
  hc_toolapi_free(t);
  t->tools = ts;
  size_t cap = 0;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TTABLE) { lua_pop(L, 1); continue; }
    if (ts->n == cap) {
      tool_spec *g = realloc(ts->v, (cap = cap ? cap * 2 : 8) * sizeof *g);
      if (!g) return luaL_error(L, "set_tools: out of memory");
      ts->v = g;
    }
    tool_spec *s = &ts->v[ts->n];
    memset(s, 0, sizeof *s);
    ts->n++;
    int d = lua_gettop(L);
    s->name = strdup(lua_tostring(L, -2));
    s->cwd = dup_field(L, d, "cwd");
    char *mode = dup_field(L, d, "stdin");
    s->stdin_args = !mode || strcmp(mode, "args") == 0;
    free(mode);
    s->timeout_ms = int_field(L, d, "timeout_ms", 10000);
    s->max_output = int_field(L, d, "max_output", 1 << 20);
    s->max_running = int_field(L, d, "max_running", 4);
    lua_getfield(L, d, "argv");
    lua_Integer n = luaL_len(L, -1);
    s->argv = calloc((size_t)n + 1, sizeof *s->argv);
    for (lua_Integer i = 1; s->argv && i <= n; i++) {
      lua_rawgeti(L, -1, i);
      s->argv[i - 1] = strdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_getfield(L, d, "env");
    size_t ne = 0, ecap = 4;
    s->envp = calloc(ecap + 1, sizeof *s->envp);
    if (lua_istable(L, -1)) {
      lua_pushnil(L);
      while (s->envp && lua_next(L, -2)) {
        size_t kl, vl;
        const char *k = lua_tolstring(L, -2, &kl), *v = lua_tolstring(L, -1, &vl);
        if (ne == ecap) {
          char **g = realloc(s->envp, ((ecap *= 2) + 1) * sizeof *g);
          if (!g) break;
          s->envp = g;
        }
        char *kv = malloc(kl + vl + 2);
        if (kv) {
          memcpy(kv, k, kl);
          kv[kl] = '=';
          memcpy(kv + kl + 1, v, vl + 1);
          s->envp[ne++] = kv;
          s->envp[ne] = NULL;
        }
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
    if (!s->name || !s->argv || !s->envp) return luaL_error(L, "set_tools: out of memory");
    lua_settop(L, d);
    lua_pop(L, 1);
  }
  return 0;
}

/* }===== */

/* {===== a run ===== */

static void run_unwatch(tool_run *r) {
  for (int i = 0; i < 4; i++)
    if (r->w[i].registered) hc_loop_unwatch(&r->rt->loop, &r->w[i]);
}

/* Watch what is still open; the state once the tool is reaped. */
static void run_rewatch(tool_run *r) {
  int fds[4];
  hc_proc_fds(r->p, &fds[0], &fds[1], &fds[2], &fds[3]);
  static const uint32_t ev[4] = {EPOLLIN, EPOLLOUT, EPOLLIN, EPOLLIN};
  for (int i = 0; i < 4; i++) {
    if (r->w[i].registered && r->w[i].fd != fds[i]) hc_loop_unwatch(&r->rt->loop, &r->w[i]);
    if (fds[i] >= 0 && !r->w[i].registered) {
      r->w[i].fd = fds[i];
      hc_loop_watch(&r->rt->loop, &r->w[i], ev[i]);
    }
  }
}

static void run_finish(tool_run *r) {
  r->done = 1;
  run_unwatch(r);
  hc_loop_timer_stop(&r->rt->loop, &r->timeout);
  hc_task_wake(r->k);   /* the continuation reads the results and frees r */
}

static void on_tool_io(hc_loop *loop, hc_watch *w, uint32_t ev) {
  (void)loop; (void)ev;
  tool_run *r = w->data;
  if (hc_proc_step(r->p) != HC_PROC_RUNNING) { run_finish(r); return; }
  run_rewatch(r);
}

static void on_tool_timeout(hc_loop *loop, hc_timer *t) {
  (void)loop;
  tool_run *r = t->data;
  r->timed_out = 1;
  hc_proc_kill(r->p);
  if (hc_proc_step(r->p) != HC_PROC_RUNNING) { run_finish(r); return; }
  run_rewatch(r);
}

static void run_free(tool_run *r) {
  run_unwatch(r);
  hc_loop_timer_stop(&r->rt->loop, &r->timeout);
  if (r->p) hc_proc_free(r->p);   /* kills what still runs, reaps, closes */
  r->spec->running--;
  free(r);
}

/* The call ended first: the tool goes with it. */
static void run_called_off(hc_task *k, void *data) {
  (void)k;
  run_free(data);
}

/* After the wait: stdout, the outcome, stderr. */
static int run_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  tool_run *r = (tool_run *)ctx;
  int st = hc_proc_step(r->p);
  size_t on, en;
  const char *out = hc_proc_output(r->p, &on), *err = hc_proc_stderr(r->p, &en);
  char msg[TOOL_STDERR_MAX + 128];
  int code = hc_proc_exit_code(r->p);
  int n;
  if (r->timed_out) {
    snprintf(msg, sizeof msg, "tool %s: killed after its timeout of %lld ms", r->spec->name,
             (long long)r->spec->timeout_ms);
    n = fail(L, "time", msg, "limit");
  } else if (st == HC_PROC_OVERFLOW) {
    snprintf(msg, sizeof msg, "tool %s: more output than its max_output of %lld bytes",
             r->spec->name, (long long)r->spec->max_output);
    n = fail(L, "size", msg, "limit");
  } else if (st == HC_PROC_EXITED && code == 0) {
    lua_pushlstring(L, out, on);
    lua_pushinteger(L, 0);
    n = 2;
  } else {
    snprintf(msg, sizeof msg, "tool %s: %s %d%s%.*s", r->spec->name,
             st == HC_PROC_EXITED ? "exited with status" : "killed by signal", code,
             en ? ": " : "", (int)(en > 512 ? 512 : en), err);
    for (char *c = msg; *c; c++) if ((unsigned char)*c < 0x20) *c = ' ';
    n = fail(L, "EIO", msg, "os");
  }
  run_free(r);
  return n;
}

/* tool_run(name, input) -> stdout, 0 | nil, err */
static int tool_run_fn(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  const char *name = luaL_checkstring(L, 1);
  size_t ilen = 0;
  const char *input = luaL_optlstring(L, 2, "", &ilen);
  tool_set *ts = t->tools;
  tool_spec *spec = NULL;
  for (size_t i = 0; ts && i < ts->n && !spec; i++)
    if (strcmp(ts->v[i].name, name) == 0) spec = &ts->v[i];
  if (!spec) return fail(L, "EINVAL", "no such tool in the policy", "os");
  if (!t->current) return luaL_error(L, "tool_run: not inside a call");
  if (spec->running >= spec->max_running)
    return fail(L, "concurrency", "the tool is at its max_running", "limit");
  int cwd = -1;
  if (spec->cwd) {
    lua_pushstring(L, spec->cwd);
    cwd = hc_fsapi_dirfd(L, lua_gettop(L));
    lua_pop(L, 1);
    if (cwd < 0) {
      char m[300];
      snprintf(m, sizeof m, "tool %s: its cwd %s: %s", name, spec->cwd,
               cwd == -HC_EESCAPE ? "outside the mounts" : strerror(-cwd));
      return fail(L, cwd == -HC_EESCAPE ? "EPERM" : strerrorname_np(-cwd) ? strerrorname_np(-cwd) : "EIO",
                  m, cwd == -HC_EESCAPE ? "refused" : "os");
    }
  }
  tool_run *r = calloc(1, sizeof *r);
  if (!r) { if (cwd >= 0) close(cwd); return fail(L, "ENOMEM", "out of memory", "os"); }
  hc_proc_spec ps = {
    .argv = (const char *const *)spec->argv, .envp = (const char *const *)spec->envp,
    .cwd_fd = cwd, .input = spec->stdin_args ? input : NULL, .input_len = spec->stdin_args ? ilen : 0,
    .max_output = (size_t)spec->max_output, .max_stderr = TOOL_STDERR_MAX,
  };
  int err = 0;
  r->p = hc_proc_spawn(&ps, &err);
  if (cwd >= 0) close(cwd);
  if (!r->p) {
    free(r);
    char m[300];
    snprintf(m, sizeof m, "tool %s: cannot start %s: %s", name, spec->argv[0], strerror(err));
    return fail(L, strerrorname_np(err) ? strerrorname_np(err) : "EIO", m, "os");
  }
  spec->running++;
  r->k = t->current;
  r->rt = t->rt;
  r->spec = spec;
  for (int i = 0; i < 4; i++) { r->w[i].cb = on_tool_io; r->w[i].data = r; r->w[i].fd = -1; }
  r->timeout.cb = on_tool_timeout;
  r->timeout.data = r;
  hc_loop_timer_start(&r->rt->loop, &r->timeout, hc_now_us() + (uint64_t)spec->timeout_ms * 1000u);
  if (hc_proc_step(r->p) != HC_PROC_RUNNING) {   /* done already (a very quick tool) */
    r->done = 1;
    hc_loop_timer_stop(&r->rt->loop, &r->timeout);
    return run_k(L, LUA_OK, (lua_KContext)r);
  }
  run_rewatch(r);
  hc_task_park(t->current, 0, run_called_off, r);
  lua_pushlightuserdata(L, &hc_sentinel);
  return lua_yieldk(L, 1, (lua_KContext)r, run_k);
}

/* }===== */

void hc_toolapi_each_program(hc_tenant *t, void (*fn)(void *ud, const char *path), void *ud) {
  tool_set *ts = t->tools;
  for (size_t i = 0; ts && i < ts->n; i++)
    if (ts->v[i].argv && ts->v[i].argv[0]) fn(ud, ts->v[i].argv[0]);
}

void hc_toolapi_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"set_tools", tools_set}, {"tool_run", tool_run_fn}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
