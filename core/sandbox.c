/*
** sandbox.c: metering tenant code without paying for it on every call.
**
** Lua 5.4's count hook slows all code 1.4-2.2x whatever its interval, so it is never left
** installed on a healthy call. A per-runtime POSIX timer delivers a signal to the loop thread
** every HC_SLICE_US while a resume runs; the handler installs a one-shot hook on the running Lua
** thread (lua_sethook is made for this: lua.c does it from SIGINT). That hook removes itself,
** charges the slice, checks the budgets, and yields back to the loop where every frame can
** yield, or kills the call where it cannot once it passes HC_HARD_SLICE_US.
**
** Instructions are therefore counted by sampling: at each slice the one-shot hook counts the
** next HC_SAMPLE_INSTRUCTIONS instructions exactly and times them; the stretch of running code
** before the sample is charged at the rate the sample saw (corrected for the hook's own cost,
** calibrated once per process). Time the call spends in C (allocating, copying) lowers the rate
** the sample sees, so it is not mistaken for instructions. A tenant whose limits.instructions is
** below HC_EXACT_INSTRUCTIONS is counted exactly instead, with the count hook on from its first
** instruction (and so at the hook's price).
**
** A tripped budget is sticky: the hook raises again at every chance, and the tenant-facing pcall,
** xpcall and coroutine.resume rethrow instead of returning false, so no handler can swallow it.
** xpcall's message handler runs as ordinary code after the unwinding (Lua runs message handlers
** with hooks off, where a loop could never be stopped).
*/
#include "sandbox.h"
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const TRIP_LIMIT[] = {NULL, "time", "instructions", "memory"};

const char *hc_trip_limit(int kind) {
  return kind > 0 && kind <= HC_TRIP_MEMORY ? TRIP_LIMIT[kind] : NULL;
}

static hc_tenant *tenant_of(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

void hc_sandbox_trip(hc_tenant *t, int kind) {
  if (t->current && !t->current->tripped) t->current->tripped = kind;
}

/* {===== calibration ===== */

static double g_ipus;   /* Lua VM instructions per microsecond on this machine, hook-free */
static double g_hook_factor = 1.0;   /* how much slower code runs under a count hook */
static pthread_once_t g_calibrated = PTHREAD_ONCE_INIT;

static void calib_hook(lua_State *L, lua_Debug *ar) { (void)L; (void)ar; }

static void calibrate(void) {
  g_ipus = 100.0;   /* a safe guess if the measurement fails */
  lua_State *L = luaL_newstate();
  if (!L) return;
  /* One FORLOOP instruction per iteration: time it. */
  static const char loop[] = "local n = ... for i = 1, n do end";
  uint64_t dt[2] = {0, 0};
  for (int hooked = 0; hooked < 2; hooked++) {
    if (luaL_loadstring(L, loop) != LUA_OK) break;
    if (hooked) lua_sethook(L, calib_hook, LUA_MASKCOUNT, HC_HOOK_COUNT);
    lua_Integer n = 2000000;
    uint64_t t0 = hc_now_us();
    lua_pushinteger(L, n);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) break;
    dt[hooked] = hc_now_us() - t0;
    lua_sethook(L, NULL, 0, 0);
    if (!hooked && dt[0] > 0) g_ipus = (double)n / (double)dt[0];
  }
  if (dt[0] > 0 && dt[1] > dt[0]) g_hook_factor = (double)dt[1] / (double)dt[0];
  lua_close(L);
}

double hc_sandbox_rate(void) {
  pthread_once(&g_calibrated, calibrate);
  return g_ipus;
}

/* Charge the running time since the last charge as instructions (not in exact mode, where the
** hook counts them). */
static void charge_time(hc_tenant *t, hc_task *k, uint64_t now) {
  if (now > k->charged_us && !t->exact_hook && t->rt->cfg.metering == HC_METER_WATCHDOG)
    k->instructions += (int64_t)((double)(now - k->charged_us) * (k->rate > 0 ? k->rate : g_ipus));
  k->charged_us = now;
}

/* }===== */

/* {===== the hooks ===== */

static void budget_hook(lua_State *L, lua_Debug *ar);

/* A tripped call keeps a hook for good: whatever it runs next raises at once. */
static void stick(lua_State *L, hc_tenant *t) {
  lua_sethook(L, budget_hook, LUA_MASKCOUNT, HC_HOOK_COUNT);
  lua_State *call = atomic_load(&t->call_thread);
  if (call && call != L) lua_sethook(call, budget_hook, LUA_MASKCOUNT, HC_HOOK_COUNT);
}

static void raise_trip(lua_State *L, hc_task *k) {
  stick(L, tenant_of(L));
  luaL_error(L, "%s limit reached", hc_trip_limit(k->tripped));
}

static void slice_hook(lua_State *L, lua_Debug *ar);

/* The budgets, then the slice: trip (raise), yield back to the loop, or go on. A hook calling
** this must return right after it: lua_yield from a hook only marks the yield. */
static void check_call(lua_State *L, hc_tenant *t, hc_task *k, uint64_t now) {
  if (k->instructions > t->limits.instructions) k->tripped = HC_TRIP_INSTRUCTIONS;
  else if (now >= k->deadline_us) k->tripped = HC_TRIP_TIME;
  if (k->tripped) raise_trip(L, k);
  uint64_t ran = now - atomic_load_explicit(&t->resume_start_us, memory_order_relaxed);
  if (ran < HC_SLICE_US) return;
  if (t->can_slice && lua_isyieldable(L)) {
    t->slice_pending = 1;
    lua_yield(L, 0);   /* back to the loop; the call goes on at the next turn */
    return;
  }
  if (ran >= HC_HARD_SLICE_US) {
    k->tripped = HC_TRIP_TIME;
    stick(L, t);
    luaL_error(L, "time limit reached (ran %d ms where it could not yield)", (int)(ran / 1000));
  }
  /* cannot yield yet: the next tick of the watchdog looks again */
}

/* Counting the sample: HC_HOOK_COUNT instructions per call, exactly. */
static void sample_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  hc_tenant *t = tenant_of(L);
  hc_task *k = t->current;
  if (!k) { lua_sethook(L, NULL, 0, 0); return; }
  if (k->tripped) raise_trip(L, k);
  k->instructions += HC_HOOK_COUNT;
  k->sample_count += HC_HOOK_COUNT;
  if (k->sample_count < HC_SAMPLE_INSTRUCTIONS) return;
  uint64_t now = hc_now_us();
  uint64_t took = now > k->sample_us ? now - k->sample_us : 1;
  /* The rate hook-free code ran at, as this sample shows it. */
  k->rate = (double)k->sample_count / (double)took * g_hook_factor;
  k->charged_us = now;   /* the sample itself was counted exactly */
  lua_sethook(L, NULL, 0, 0);
  slice_hook(L, NULL);
}

/* The watchdog's one-shot: charge what ran before, start a sample if none is running, then
** check the budgets and the slice. */
static void slice_hook(lua_State *L, lua_Debug *ar) {
  hc_tenant *t = tenant_of(L);
  hc_task *k = t->current;
  lua_sethook(L, NULL, 0, 0);
  lua_State *call = atomic_load(&t->call_thread);
  if (call && call != L && lua_gethook(call) == slice_hook) lua_sethook(call, NULL, 0, 0);
  if (!k) return;
  if (k->tripped) raise_trip(L, k);
  uint64_t now = hc_now_us();
  if (ar) {   /* from the watchdog: charge the stretch before, then count a sample exactly */
    if (t->sample_abandoned) {
      /* The last sample never filled: this call runs few instructions (it is mostly in C).
      ** Its count so far was exact; its rate is what it managed. */
      uint64_t took = now > k->sample_us ? now - k->sample_us : 1;
      k->rate = (double)k->sample_count / (double)took * g_hook_factor;
      k->charged_us = now;
      t->sample_abandoned = 0;
    }
    /* The one-shot fires at the first instruction after the tick: whatever ran between the
    ** tick and now was C (a long syscall, a big copy), not instructions. */
    uint64_t tick = atomic_load(&t->tick_us);
    if (tick > k->charged_us && tick < now) {
      charge_time(t, k, tick);
      k->charged_us = now;
    } else {
      charge_time(t, k, now);
    }
    k->sample_us = now;
    k->sample_count = 0;
    lua_sethook(L, sample_hook, LUA_MASKCOUNT, HC_HOOK_COUNT);
    /* No rate known yet: decide about the slice once the sample has measured one (its end
    ** calls back here), so a call never runs on a guessed rate for more than one slice. */
    if (k->rate <= 0) {
      if (k->instructions > t->limits.instructions) k->tripped = HC_TRIP_INSTRUCTIONS;
      else if (now >= k->deadline_us) k->tripped = HC_TRIP_TIME;
      if (k->tripped) raise_trip(L, k);
      return;
    }
  }
  check_call(L, t, k, now);   /* last: it may yield */
}

static void budget_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  hc_tenant *t = tenant_of(L);
  hc_task *k = t->current;
  if (!k) {   /* loading a policy or handler file */
    t->load_budget -= HC_HOOK_COUNT;
    if (t->load_budget <= 0) luaL_error(L, "instruction budget exhausted while loading");
    return;
  }
  if (k->tripped) raise_trip(L, k);
  k->instructions += HC_HOOK_COUNT;
  check_call(L, t, k, hc_now_us());   /* last: it may yield */
}

void hc_sandbox_charge(lua_State *L, int64_t n) {
  hc_tenant *t = tenant_of(L);
  hc_task *k = t->current;
  if (!k) {
    t->load_budget -= n;
    if (t->load_budget <= 0) luaL_error(L, "instruction budget exhausted while loading");
    return;
  }
  if (k->tripped) raise_trip(L, k);
  k->instructions += n;
  uint64_t now = hc_now_us();
  if (k->instructions > t->limits.instructions) k->tripped = HC_TRIP_INSTRUCTIONS;
  else if (now >= k->deadline_us) k->tripped = HC_TRIP_TIME;
  /* C work cannot yield: past the hard slice it has held the loop too long. */
  else if (now - atomic_load(&t->resume_start_us) >= HC_HARD_SLICE_US) k->tripped = HC_TRIP_TIME;
  if (k->tripped) raise_trip(L, k);
}

/* }===== */

/* {===== the watchdog ===== */

static void sample_hook(lua_State *L, lua_Debug *ar);

static void arm(hc_runtime *rt, uint64_t us) {
  struct itimerspec its = {{0, 0}, {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000}};
  rt->wd_armed = 1;
  if (timer_settime(rt->wd_timer, 0, &its, NULL) != 0) rt->wd_armed = 0;
}

static void on_watchdog(int sig, siginfo_t *si, void *uc) {
  (void)sig; (void)uc;
  int saved = errno;
  hc_runtime *rt = si->si_code == SI_TIMER ? si->si_value.sival_ptr : NULL;
  if (rt) {
    hc_tenant *t = atomic_load(&rt->active);
    lua_State *L = t ? atomic_load(&t->running) : NULL;
    if (!L) {
      rt->wd_armed = 0;
    } else {
      uint64_t ran = hc_now_us() - atomic_load(&t->resume_start_us);
      if (ran + 1000 >= HC_SLICE_US) {
        /* A one-shot on the running thread (and the call's own, in case the running one ends
        ** before its next instruction); never over a hook that is already there. */
        lua_State *call = atomic_load(&t->call_thread);
        lua_Hook h = lua_gethook(L);
        /* A sample still running after a whole slice (the call is mostly in C) is given up:
        ** the checks cannot wait for its instructions. */
        if (h == sample_hook) t->sample_abandoned = 1;
        if (!h || h == sample_hook) {   /* the first tick since the last check: C ran from here */
          atomic_store(&t->tick_us, hc_now_us());
          lua_sethook(L, slice_hook, LUA_MASKCOUNT, 1);
        }
        if (call && call != L && !lua_gethook(call)) lua_sethook(call, slice_hook, LUA_MASKCOUNT, 1);
        arm(rt, HC_SLICE_US);   /* and again next slice, for as long as it runs */
      } else {
        arm(rt, HC_SLICE_US - ran);
      }
    }
  }
  errno = saved;
}

static int watchdog_signal(void) { return SIGRTMIN + 3; }

void hc_sandbox_bind_thread(hc_runtime *rt) {
  static _Thread_local pid_t my_tid;   /* gettid is a real syscall: ask once per thread */
  if (!my_tid) my_tid = gettid();
  pid_t tid = my_tid;
  if (rt->wd_ok && rt->wd_tid == tid) return;
  if (rt->wd_ok) timer_delete(rt->wd_timer);
  rt->wd_ok = 0;
  rt->wd_armed = 0;
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = watchdog_signal();
  sev.sigev_value.sival_ptr = rt;
  sev._sigev_un._tid = tid;
  if (timer_create(CLOCK_MONOTONIC, &sev, &rt->wd_timer) == 0) {
    rt->wd_ok = 1;
    rt->wd_tid = tid;
  }
}

int hc_sandbox_init(hc_runtime *rt) {
  hc_sandbox_rate();
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_watchdog;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(watchdog_signal(), NULL, &old) != 0) return -1;
  if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN && old.sa_sigaction != on_watchdog)
    return -1;   /* the embedder uses this signal: fall back to hooks on every call */
  if (sigaction(watchdog_signal(), &sa, NULL) != 0) return -1;
  hc_sandbox_bind_thread(rt);
  return rt->wd_ok ? 0 : -1;
}

void hc_sandbox_free(hc_runtime *rt) {
  if (rt->wd_ok) timer_delete(rt->wd_timer);
  rt->wd_ok = 0;
}

void hc_sandbox_enter(hc_tenant *t, hc_task *k, lua_State *co) {
  hc_runtime *rt = t->rt;
  uint64_t now = hc_now_us();
  t->current = k;
  t->can_slice = 1;
  t->slice_pending = 0;
  k->charged_us = now;
  t->sample_abandoned = 0;
  /* A sample left over from the last resume starts again (else it would time the wait too);
  ** a pending slice check is dropped. */
  lua_Hook h = lua_gethook(co);
  if (h == sample_hook) {
    k->sample_us = now;
    k->sample_count = 0;
  } else if (h == slice_hook) {
    lua_sethook(co, NULL, 0, 0);
  }
  atomic_store(&t->resume_start_us, now);
  atomic_store(&t->running, co);
  atomic_store(&t->call_thread, co);
  atomic_store(&rt->active, t);
  if (rt->cfg.metering == HC_METER_OFF) return;
  if (t->exact_hook || !rt->wd_ok || rt->cfg.metering == HC_METER_ALWAYS)
    lua_sethook(co, budget_hook, LUA_MASKCOUNT, HC_HOOK_COUNT);
  else if (!rt->wd_armed) arm(rt, HC_SLICE_US);
}

void hc_sandbox_leave(hc_tenant *t) {
  if (t->current) charge_time(t, t->current, hc_now_us());
  atomic_store(&t->running, NULL);
  atomic_store(&t->call_thread, NULL);
  atomic_store(&t->rt->active, NULL);
  t->current = NULL;
}

void hc_sandbox_reset(lua_State *co) { lua_sethook(co, NULL, 0, 0); }

void hc_sandbox_end_call(hc_tenant *t, hc_task *k, lua_State *co) {
  hc_sandbox_enter(t, k, co);
  lua_sethook(co, budget_hook, LUA_MASKCOUNT, HC_HOOK_COUNT);
  t->can_slice = 0;   /* closing cannot be suspended */
  lua_resetthread(co);
  hc_sandbox_leave(t);
  lua_sethook(co, NULL, 0, 0);
}

/* }===== */

/* {===== wrappers given to tenant code ===== */

static int tripped(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  return t->current && t->current->tripped;
}

static int pcall_k(lua_State *L, int status, lua_KContext extra) {
  if (status != LUA_OK && status != LUA_YIELD) {
    if (tripped(L)) return lua_error(L);
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - (int)extra;
}

static int sb_pcall(lua_State *L) {
  luaL_checkany(L, 1);
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  int st = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, pcall_k);
  return pcall_k(L, st, 0);
}

/* stack: 1 = handler, 2 = false, 3 = the handler's result */
static int xpcall_handled_k(lua_State *L, int status, lua_KContext ctx) {
  (void)L; (void)status; (void)ctx;
  return 2;
}

static int xpcall_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  if (status == LUA_OK || status == LUA_YIELD) return lua_gettop(L) - 1;
  if (tripped(L)) return lua_error(L);
  /* stack: handler, true, error */
  lua_pushboolean(L, 0);
  lua_replace(L, 2);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 1);   /* handler, false, handler, error */
  lua_callk(L, 1, 1, 0, xpcall_handled_k);
  return 2;
}

static int sb_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);   /* f, handler, true, f, args... */
  lua_remove(L, 1);      /* handler, true, f, args... */
  int st = lua_pcallk(L, n - 2, LUA_MULTRET, 0, 0, xpcall_k);
  return xpcall_k(L, st, 0);
}

static const char CALL_THREADS_KEY = 0;
static const char PARKED_KEY = 0;   /* coroutines whose host wait or slice is passing through */

/* PARKED[co] = v (v: 1 set, 0 clear); or, with v < 0, is co parked? */
static int parked(lua_State *L, lua_State *co, int v) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &PARKED_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    if (v <= 0) return 0;
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &PARKED_KEY);
  }
  lua_pushthread(co);
  lua_xmove(co, L, 1);
  int yes = 0;
  if (v < 0) {
    yes = lua_rawget(L, -2) != LUA_TNIL;
  } else {
    if (v) lua_pushboolean(L, 1);
    else lua_pushnil(L);
    lua_rawset(L, -3);
  }
  lua_pop(L, 1);
  return yes;
}

static int is_call_thread(lua_State *L, int idx) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &CALL_THREADS_KEY);
  lua_pushvalue(L, idx);
  int yes = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return yes;
}

static int co_resume_k(lua_State *L, int status, lua_KContext ctx);

/* Resume a tenant coroutine: host waits and slice yields inside it pass up to the loop and the
** wake-up back down; a tripped budget inside it propagates instead of returning false. */
static int resume_child(lua_State *L, lua_State *co, int nargs) {
  hc_tenant *t = tenant_of(L);
  if (!lua_checkstack(co, nargs + 1)) return luaL_error(L, "too many arguments to resume");
  lua_xmove(L, co, nargs);
  lua_State *prev = atomic_load(&t->running);
  int prev_can = t->can_slice;
  t->can_slice = prev_can && lua_isyieldable(L);
  lua_Hook h = lua_gethook(L);
  if (h && !lua_gethook(co)) lua_sethook(co, h, lua_gethookmask(L), lua_gethookcount(L));
  atomic_store(&t->running, co);
  int nres = 0;
  int st = lua_resume(co, L, nargs, &nres);
  atomic_store(&t->running, prev);
  t->can_slice = prev_can;
  /* The watchdog may have hooked only the coroutine: hook its resumer too, so no coroutine in
  ** between runs unmetered; and charge each resume, since a coroutine shorter than the hook's
  ** interval would otherwise never be counted. */
  h = lua_gethook(co);
  if (h && !lua_gethook(L)) lua_sethook(L, h, lua_gethookmask(co), lua_gethookcount(co));
  if (h && st != LUA_YIELD && !tripped(L)) hc_sandbox_charge(L, HC_HOOK_COUNT / 4);
  if (st == LUA_YIELD) {
    int host_wait = nres == 1 && lua_touserdata(co, -1) == &hc_sentinel;
    int slice = nres == 0 && t->slice_pending;
    if (host_wait || slice) {
      lua_pop(co, nres);
      if (!lua_isyieldable(L)) return luaL_error(L, "cannot wait here: the caller cannot yield");
      parked(L, co, 1);   /* until the loop's wake-up comes back down, nobody else may resume it */
      if (host_wait) lua_pushlightuserdata(L, &hc_sentinel);
      return lua_yieldk(L, host_wait ? 1 : 0, 0, co_resume_k);
    }
    if (h && !tripped(L)) hc_sandbox_charge(L, HC_HOOK_COUNT / 4);
  }
  if (st == LUA_OK || st == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) return luaL_error(L, "too many results to resume");
    lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return nres + 1;
  }
  lua_xmove(co, L, 1);
  if (tripped(L)) return lua_error(L);
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  return 2;
}

static int co_resume_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  lua_State *co = lua_tothread(L, 1);
  parked(L, co, 0);
  return resume_child(L, co, lua_gettop(L) - 1);
}

static int sb_co_resume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co != NULL, 1, "coroutine");
  if (is_call_thread(L, 1)) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "cannot resume a call's own coroutine");
    return 2;
  }
  if (parked(L, co, -1)) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "cannot resume a coroutine that is waiting on the host");
    return 2;
  }
  return resume_child(L, co, lua_gettop(L) - 1);
}

/* coroutine.close: never a call's own or a parked coroutine; its __close handlers run metered,
** on the coroutine being closed, and a budget they trip propagates. */
static int sb_co_close(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co != NULL, 1, "coroutine");
  if (is_call_thread(L, 1)) return luaL_error(L, "cannot close a call's own coroutine");
  if (parked(L, co, -1)) return luaL_error(L, "cannot close a coroutine that is waiting on the host");
  lua_Debug ar;
  int st = lua_status(co);
  if (co == L || (st == LUA_OK && lua_getstack(co, 0, &ar)))
    return luaL_error(L, "cannot close a %s coroutine", co == L ? "running" : "normal");
  lua_Hook h = lua_gethook(L);
  if (h) lua_sethook(co, h, lua_gethookmask(L), lua_gethookcount(L));
  lua_State *prev = atomic_load(&t->running);
  int prev_can = t->can_slice;
  t->can_slice = 0;
  atomic_store(&t->running, co);
  st = lua_resetthread(co);
  atomic_store(&t->running, prev);
  t->can_slice = prev_can;
  if (lua_gethook(co) && !lua_gethook(L)) lua_sethook(L, lua_gethook(co), lua_gethookmask(co), lua_gethookcount(co));
  if (st == LUA_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_xmove(co, L, 1);
  if (tripped(L)) return lua_error(L);
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  return 2;
}

/* {===== read-only views ===== */

static int view_newindex(lua_State *L) {
  return luaL_error(L, "%s is read-only", lua_tostring(L, lua_upvalueindex(1)));
}

static int view_next(lua_State *L) {
  lua_settop(L, 2);
  if (lua_next(L, lua_upvalueindex(1))) return 2;
  return 0;
}

static int view_pairs(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushcclosure(L, view_next, 1);   /* walks the table without handing it out */
  return 1;
}

/* view(t, name): a read-only view of t. A userdata, so rawset cannot touch it; __index reads t,
** pairs walks t without returning it, getmetatable says false. Shared safely between files. */
static int sb_view(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *name = luaL_optstring(L, 2, "table");
  lua_newuserdatauv(L, 0, 0);
  lua_createtable(L, 0, 5);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, name);
  lua_pushcclosure(L, view_newindex, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, view_pairs, 1);
  lua_setfield(L, -2, "__pairs");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_setmetatable(L, -2);
  return 1;
}

/* }===== */

/* protected_run(fn, ...) -> true, results... | false, err: a policy or handler file's top level,
** under an instruction budget so a file that loops forever fails to load. */
static int sb_protected_run(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  t->load_budget = HC_LOAD_INSTRUCTIONS;
  lua_sethook(L, budget_hook, LUA_MASKCOUNT, HC_HOOK_COUNT);
  int st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  lua_sethook(L, NULL, 0, 0);
  if (st != LUA_OK) {
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      lua_pushstring(L, st == LUA_ERRMEM ? "not enough memory" : "error object is not a string");
    }
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  return lua_gettop(L);
}

void hc_sandbox_push_call_threads(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &CALL_THREADS_KEY);
  if (!lua_isnil(L, -1)) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &CALL_THREADS_KEY);
}

void hc_sandbox_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"pcall", sb_pcall}, {"xpcall", sb_xpcall}, {"co_resume", sb_co_resume},
    {"co_close", sb_co_close}, {"view", sb_view},
    {"protected_run", sb_protected_run}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
  hc_sandbox_push_call_threads(L);
  lua_setfield(L, -2, "call_threads");
}

/* }===== */
