/*
** task.c: one call = one coroutine of the tenant's state. A call that waits (sys.sleep, later
** sockets and tools) yields back to the loop, which resumes it when its timer or fd is ready,
** so a waiting call never holds up the others.
*/
#include "internal.h"
#include "json.h"
#include "sandbox.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

static void task_resume(hc_task *k, int nargs);

static int task_main_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  return lua_gettop(L);
}

/* The coroutine's body: decode params (a memory error here is the call's, not the host's),
** then the glue's dispatch(method, params, session). */
static int task_main(lua_State *L) {
  hc_task *k = lua_touserdata(L, 1);
  hc_tenant *t = k->s->t;
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref_dispatch);
  lua_pushlstring(L, k->method, strlen(k->method));
  if (k->params) {
    hc_jcur c;
    hc_jcur_init(&c, k->params, k->params_len, HC_JSON_MAX_DEPTH);
    k->params = NULL;
    if (hc_jcur_value_lua(&c, L)) {
      lua_settop(L, 0);
      lua_pushboolean(L, 0);
      lua_pushinteger(L, HC_E_PARAMS);   /* valid JSON text, refused by the strict decoder */
      lua_pushnil(L);
      lua_pushfstring(L, "invalid params: %s", c.err);
      return 4;
    }
  } else {
    lua_pushnil(L);
  }
  lua_pushinteger(L, (lua_Integer)k->s->id);
  lua_callk(L, 3, LUA_MULTRET, 0, task_main_k);
  return task_main_k(L, LUA_OK, 0);
}

/* {===== ending a call ===== */

static void task_unlink(hc_task *k) {
  hc_session *s = k->s;
  if (k->prev) k->prev->next = k->next;
  else s->tasks = k->next;
  if (k->next) k->next->prev = k->prev;
  s->inflight--;
}

static void batch_done(hc_session *s, hc_batch *b, int emit) {
  if (--b->pending) return;
  if (emit && b->answers) {
    hc_buf_addc(&b->out, ']');
    if (!b->out.oom) hc_session_answer(s, NULL, b->out.p, b->out.n);
  }
  hc_buf_free(&b->out);
  free(b);
}

static void ring_add(hc_runtime *rt, hc_tenant *t) {
  if (t->in_ring) return;
  t->in_ring = 1;
  t->ring_next = NULL;
  if (rt->ring_tail) rt->ring_tail->ring_next = t;
  else rt->ring_head = t;
  rt->ring_tail = t;
}

static void ring_remove(hc_runtime *rt, hc_tenant *t) {
  if (!t->in_ring) return;
  hc_tenant *prev = NULL;
  for (hc_tenant *q = rt->ring_head; q; prev = q, q = q->ring_next) {
    if (q != t) continue;
    if (prev) prev->ring_next = t->ring_next;
    else rt->ring_head = t->ring_next;
    if (rt->ring_tail == t) rt->ring_tail = prev;
    break;
  }
  t->in_ring = 0;
  t->ring_next = NULL;
}

/* To the back of its tenant's queue, the timer armed for the call's deadline. */
static int runq_add(hc_task *k) {
  hc_runtime *rt = k->s->rt;
  hc_tenant *t = k->s->t;
  if (hc_loop_timer_start(&rt->loop, &k->timer, k->deadline_us) != 0) return -1;
  k->waiting = 1;
  k->queued = 1;
  k->runq_next = NULL;
  if (t->runq_tail) t->runq_tail->runq_next = k;
  else t->runq_head = k;
  t->runq_tail = k;
  ring_add(rt, t);
  return 0;
}

static void runq_remove(hc_task *k) {
  hc_tenant *t = k->s->t;
  hc_task *prev = NULL;
  for (hc_task *q = t->runq_head; q; prev = q, q = q->runq_next) {
    if (q != k) continue;
    if (prev) prev->runq_next = k->runq_next;
    else t->runq_head = k->runq_next;
    if (t->runq_tail == k) t->runq_tail = prev;
    break;
  }
  k->queued = 0;
  k->runq_next = NULL;
  if (!t->runq_head) ring_remove(k->s->rt, t);
}

static void park_call_off(hc_task *k) {
  void (*cancel)(hc_task *, void *) = k->park_cancel;
  if (!cancel) return;
  k->park_cancel = NULL;
  cancel(k, k->park_data);
}

/* Answer (unless a notification), audit, and recycle the thread. */
static void task_end(hc_task *k, hc_buf *resp, int code, const char *errno_name,
                     const char *limit, int reset) {
  hc_session *s = k->s;
  hc_runtime *rt = s->rt;
  size_t out = 0;
  hc_loop_timer_stop(&rt->loop, &k->timer);
  park_call_off(k);
  if (k->queued) runq_remove(k);
  if (k->has_id && resp) {
    out = resp->n;
    hc_session_answer_buf(s, k->batch, resp);
  }
  hc_audit(rt, s, k->id, k->id_len, k->method, code, errno_name, limit, k->start_us, k->bytes_in,
           out);
  task_unlink(k);
  if (reset) {
    /* An errored or cut-short call: its pending __close handlers run under its own budget
    ** (tripped, if it was cut short), never free of limits. */
    if (k->waiting || code == HC_E_CANCELLED) k->tripped = k->tripped ? k->tripped : HC_TRIP_TIME;
    hc_sandbox_end_call(s->t, k, k->co);
  }
  hc_tenant_release_thread(s->t, k->co, k->co_ref, 0);
  if (k->exit_code >= 0 && !s->exiting) {
    s->exiting = 1;
    s->exit_code = k->exit_code;
    hc_session_update_read(s);
  }
  if (k->batch) batch_done(s, k->batch, 1);
  s->last_active = rt->loop.now_us;
  hc_session_mark_dirty(s);
  free(k->params_owned);
  free(k->id);
  free(k);
}

static void task_fail(hc_task *k, int code, const char *name, const char *msg, int reset) {
  hc_buf *b = &k->s->rt->scratch;
  const char *errno_name = (code == HC_E_OS || code == HC_E_REFUSED) ? name : NULL;
  const char *limit = code == HC_E_LIMIT ? name : NULL;
  if ((code == HC_E_OS || code == HC_E_REFUSED) && !errno_name) errno_name = "EIO";
  if (code == HC_E_LIMIT && !limit) limit = "memory";
  hc_buf_reset(b);
  hc_rpc_error(b, k->has_id ? k->id : "null", k->has_id ? k->id_len : 4, code, msg, errno_name,
               limit);
  task_end(k, b, code, errno_name, limit, reset);
}

/* The dispatch returned: (true, result, schema) or (false, code, name, message). */
static void task_returned(hc_task *k, int nres) {
  lua_State *co = k->co;
  int base = lua_gettop(co) - nres + 1;
  if (nres >= 2 && lua_toboolean(co, base)) {
    hc_buf *b = &k->s->rt->scratch;
    const char *err = NULL;
    hc_buf_reset(b);
    hc_rpc_result_open(b, k->id, k->id_len);
    int schema = (nres >= 3 && lua_type(co, base + 2) == LUA_TTABLE) ? base + 2 : 0;
    /* A result is host memory outside the tenant's cap: no bigger than the cap itself. */
    b->limit = k->s->t->mem_limit + 4096;
    int bad = hc_json_encode(co, base + 1, schema, b, HC_JSON_MAX_DEPTH, &err);
    int over = b->oom == 2;
    b->limit = 0;
    if (!bad && !b->oom) {
      hc_buf_addc(b, '}');
      lua_settop(co, 0);
      task_end(k, b, 0, NULL, NULL, 0);
      return;
    }
    lua_settop(co, 0);
    if (over) {
      task_fail(k, HC_E_LIMIT, "size", "result larger than the tenant's memory limit", 0);
      return;
    }
    char msg[160];
    snprintf(msg, sizeof msg, "handler result is not JSON: %s", err ? err : "out of memory");
    task_fail(k, HC_E_INTERNAL, NULL, msg, 0);
    return;
  }
  int code = nres >= 2 ? (int)lua_tointeger(co, base + 1) : HC_E_INTERNAL;
  char name[40] = "", msg[600] = "internal error";
  if (nres >= 3 && lua_type(co, base + 2) == LUA_TSTRING)
    snprintf(name, sizeof name, "%s", lua_tostring(co, base + 2));
  if (nres >= 4 && lua_type(co, base + 3) == LUA_TSTRING)
    snprintf(msg, sizeof msg, "%s", lua_tostring(co, base + 3));
  lua_settop(co, 0);
  task_fail(k, code, name[0] ? name : NULL, msg, 0);
}

/* }===== */

static void task_resume(hc_task *k, int nargs) {
  hc_tenant *t = k->s->t;
  lua_State *co = k->co;
  int nres = 0;
  hc_sandbox_enter(t, k, co);
  int st = lua_resume(co, NULL, nargs, &nres);
  int slice = t->slice_pending;
  hc_sandbox_leave(t);
  if (k->params_owned && !k->not_started) {   /* decoded by the first resume */
    free(k->params_owned);
    k->params_owned = NULL;
  }
  if (k->tripped) {   /* whatever the code made of it, a tripped budget is the answer */
    const char *limit = hc_trip_limit(k->tripped);
    char msg[64];
    snprintf(msg, sizeof msg, "%s limit reached", limit);
    if (k->tripped == HC_TRIP_MEMORY) {
      lua_settop(co, 0);
      t->host_alloc++;
      lua_gc(t->L, LUA_GCCOLLECT);   /* leave the tenant usable for its next call */
      t->host_alloc--;
    }
    task_fail(k, HC_E_LIMIT, limit, msg, 1);
    return;
  }
  if (st == LUA_YIELD && nres == 0 && slice) {
    /* A time slice ended: to the back of the run queue. The loop serves every guest's I/O
    ** between two slices, so a tenant's busy calls delay another tenant by one slice at most;
    ** the timer stays armed for the call's deadline. */
    if (runq_add(k) == 0) return;
    task_fail(k, HC_E_LIMIT, "memory", "out of memory arming a timer", 1);
    return;
  }
  if (st == LUA_YIELD) {
    int host_wait = nres == 1 && lua_touserdata(co, -1) == &hc_sentinel && k->wake_us;
    lua_pop(co, nres);
    if (host_wait) {
      uint64_t when = k->wake_us < k->deadline_us ? k->wake_us : k->deadline_us;
      k->waiting = 1;
      if (hc_loop_timer_start(&k->s->rt->loop, &k->timer, when) == 0) return;
      task_fail(k, HC_E_LIMIT, "memory", "out of memory arming a timer", 1);
      return;
    }
    task_fail(k, HC_E_INTERNAL, NULL, "handler yielded outside a coroutine", 1);
    return;
  }
  if (st == LUA_OK) {
    task_returned(k, nres);
    return;
  }
  if (st == LUA_ERRMEM) {
    task_fail(k, HC_E_LIMIT, "memory", "memory limit reached", 1);
    return;
  }
  char msg[600];
  snprintf(msg, sizeof msg, "internal error: %s",
           lua_type(co, -1) == LUA_TSTRING ? lua_tostring(co, -1) : "(error object is not a string)");
  task_fail(k, HC_E_INTERNAL, NULL, msg, 1);
}

static void task_timer(hc_loop *loop, hc_timer *tm) {
  hc_task *k = tm->data;
  k->waiting = 0;
  k->wake_us = 0;
  park_call_off(k);
  if (k->queued) runq_remove(k);
  if (loop->now_us >= k->deadline_us) {
    task_fail(k, HC_E_LIMIT, "time", "time limit reached", 1);
    return;
  }
  task_resume(k, 0);
}

int hc_task_wait(hc_task *k, uint64_t wake_us) {
  k->wake_us = wake_us ? wake_us : 1;
  return 0;
}

void hc_task_park(hc_task *k, uint64_t until_us, void (*cancel)(hc_task *k, void *data), void *data) {
  k->wake_us = until_us && until_us < k->deadline_us ? until_us : k->deadline_us;
  k->park_cancel = cancel;
  k->park_data = data;
}

static void first_resume(hc_task *k) {
  lua_pushcfunction(k->co, task_main);
  lua_pushlightuserdata(k->co, k);
  task_resume(k, 1);
}

int hc_task_run_queued(hc_runtime *rt) {
  hc_tenant *t = rt->ring_head;
  if (!t) return 0;
  hc_task *k = t->runq_head;
  ring_remove(rt, t);
  runq_remove(k);
  if (t->runq_head) ring_add(rt, t);   /* its next call waits for the other tenants' turns */
  hc_loop_timer_stop(&rt->loop, &k->timer);
  k->waiting = 0;
  if (hc_now_us() >= k->deadline_us) {
    task_fail(k, HC_E_LIMIT, "time", "time limit reached", 1);
    return 1;
  }
  if (k->not_started) {
    k->not_started = 0;
    first_resume(k);
  } else {
    task_resume(k, 0);
  }
  return 1;
}

void hc_task_wake_soon(hc_task *k) {
  k->park_cancel = NULL;
  hc_loop_timer_start(&k->s->rt->loop, &k->timer, hc_now_us());
}

void hc_task_wake(hc_task *k) {
  hc_loop_timer_stop(&k->s->rt->loop, &k->timer);
  k->waiting = 0;
  k->wake_us = 0;
  k->park_cancel = NULL;
  task_resume(k, 0);
}

static void refuse(hc_session *s, hc_batch *b, const hc_rpc_req *r, int code, const char *msg,
                   const char *limit) {
  hc_buf *buf = &s->rt->scratch;
  size_t out = 0;
  hc_buf_reset(buf);
  if (r->has_id) {
    hc_rpc_error(buf, r->id, r->id_len, code, msg, NULL, limit);
    out = buf->n;
    hc_session_answer(s, b, buf->p, buf->n);
  }
  hc_audit(s->rt, s, r->has_id ? r->id : "null", r->has_id ? r->id_len : 4, r->method, code, NULL,
           limit, s->rt->loop.now_us, r->span_len, out);
}

void hc_task_start(hc_session *s, hc_batch *b, const hc_rpc_req *r) {
  hc_tenant *t = s->t;
  if (s->inflight >= t->limits.concurrency) {
    refuse(s, b, r, HC_E_LIMIT, "too many calls in flight", "concurrency");
    return;
  }
  hc_task *k = calloc(1, sizeof *k);
  char *id = k ? malloc(r->id_len ? r->id_len : 1) : NULL;
  int ref = LUA_NOREF;
  lua_State *co = id ? hc_tenant_thread(t, &ref) : NULL;
  if (!co) {
    free(id);
    free(k);
    refuse(s, b, r, HC_E_LIMIT, "out of memory starting the call", "memory");
    return;
  }
  memcpy(id, r->id, r->id_len);
  k->s = s;
  k->batch = b;
  k->co = co;
  k->co_ref = ref;
  k->id = id;
  k->id_len = r->id_len;
  k->has_id = r->has_id;
  memcpy(k->method, r->method, r->method_len + 1);
  k->params = r->params;
  k->params_len = r->params_len;
  k->start_us = hc_now_us();
  k->deadline_us = k->start_us + (uint64_t)t->limits.time_ms * 1000u;
  k->bytes_in = r->span_len;
  k->exit_code = -1;
  k->timer.cb = task_timer;
  k->timer.data = k;
  k->next = s->tasks;
  if (s->tasks) s->tasks->prev = k;
  s->tasks = k;
  s->inflight++;
  if (b) b->pending++;
  /* The tenant already has calls waiting for a slice (long-running work): this one waits its
  ** turn behind them (params copied: the frame they point into is reused), so a burst of busy
  ** calls from one tenant holds the others up by about one slice, not one slice per call. */
  if (t->in_ring && k->params_len) {
    if ((k->params_owned = malloc(k->params_len))) {
      memcpy(k->params_owned, k->params, k->params_len);
      k->params = k->params_owned;
      k->not_started = 1;
      if (runq_add(k) == 0) return;
      k->not_started = 0;
      k->params = r->params;
      free(k->params_owned);
      k->params_owned = NULL;
    }
  } else if (t->in_ring) {
    k->not_started = 1;
    if (runq_add(k) == 0) return;
    k->not_started = 0;
  }
  first_resume(k);
}

void hc_task_cancel(hc_task *k, int code, const char *limit, const char *msg) {
  if (k->s->t->current == k) return;   /* running now: it finishes by itself */
  task_fail(k, code, limit, msg, 1);
}

/* The session is going away: no answer, but the audit still sees the call end. */
void hc_task_discard(hc_task *k) {
  hc_session *s = k->s;
  hc_batch *b = k->batch;
  k->has_id = 0;
  k->batch = NULL;
  task_fail(k, HC_E_CANCELLED, NULL, "session closed", 1);
  if (b) batch_done(s, b, 0);
}
