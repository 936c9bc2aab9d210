/*
** internal.h: the runtime's private structures, shared by tenant.c, task.c, session.c,
** audit.c and runtime.c. Nothing here is part of the public API.
*/
#ifndef HC_INTERNAL_H
#define HC_INTERNAL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <lua.h>

#include "buf.h"
#include "frame.h"
#include "hostcall.h"
#include "loop.h"
#include "rpc.h"
#include "stats.h"

typedef struct hc_tenant hc_tenant;
typedef struct hc_session hc_session;
typedef struct hc_task hc_task;
typedef struct hc_batch hc_batch;

typedef struct hc_limits {
  int64_t memory, instructions, time_ms, handles, sockets, concurrency, sessions, idle_ms,
          request_bytes, read_bytes;
} hc_limits;

#define HC_LOAD_INSTRUCTIONS 50000000   /* budget for running a policy or handler file */
#define HC_SLEEP_MAX_MS 3600000

struct hc_tenant {
  hc_runtime *rt;
  char *name;
  lua_State *L;
  size_t mem_used, mem_limit;
  int64_t load_budget;      /* instructions left for the file being loaded */
  int host_alloc;           /* >0: the host is allocating; never refuse for the cap */
  hc_limits limits;
  int ref_dispatch, ref_describe, ref_caps;
  lua_State **pool;         /* idle call threads */
  int *pool_ref;
  size_t npool, cappool;
  hc_task *current;         /* the call whose coroutine is running now */
  lua_State *_Atomic running;          /* the Lua thread running now (for the watchdog) */
  lua_State *_Atomic call_thread;      /* the running call's own thread */
  _Atomic uint64_t resume_start_us;    /* when the current resume began */
  int can_slice;            /* every frame between the loop and `running` can yield */
  int slice_pending;        /* the hook yielded for a time slice */
  volatile sig_atomic_t sample_abandoned;   /* the watchdog gave up an unfinished sample */
  _Atomic uint64_t tick_us;                 /* when the watchdog last installed the one-shot */
  int exact_hook;           /* limits.instructions is small: meter every call from its start */
  int nsessions;
  void *mounts;             /* fsapi.c: the policy's mounts (hc_mount[]) */
  size_t nmounts;
  int64_t nhandles;         /* open files and directory streams across the tenant's sessions */
  int64_t nsockets;         /* open sockets across the tenant's sessions */
  uint64_t cursor_key;      /* fsapi.c: keys this tenant's fs.list cursors */
  struct hc_netpolicy *net; /* netapi.c: the policy's net rules */
  void *tls;                /* tls.c: the tenant's SSL_CTX (trust store), made on first need */
  struct hc_httprules *http;  /* netapi.c: the policy's http rules */
  void *tools;              /* toolapi.c: the policy's tools */
  int refs;                 /* sessions holding it: a retired tenant is freed at 0 */
  int retired;              /* replaced by a reload, or its file removed */
  hc_tenant *next_retired;
  char *file;               /* the policy file it came from (NULL: source text), for reloads */
  hc_counters *stats;       /* shared by every load of this tenant (reloads keep counting) */
  hc_task *runq_head, *runq_tail;   /* its calls waiting for a slice, first come first served */
  hc_tenant *ring_next;     /* the runtime's ring of tenants with waiting calls */
  int in_ring;
};

struct hc_task {
  hc_session *s;
  hc_batch *batch;
  lua_State *co;
  int co_ref;
  char *id;                 /* raw JSON text of the id */
  size_t id_len;
  int has_id;
  char method[HC_METHOD_MAX + 1];
  const char *params;       /* valid only until the call's first resume */
  size_t params_len;
  uint64_t start_us, wake_us, deadline_us;
  hc_timer timer;
  size_t bytes_in;
  int waiting;
  int exit_code;            /* >=0: sys.exit asked to end the session with this code */
  int64_t instructions;     /* charged so far (core/sandbox.c: by running time, or exactly) */
  uint64_t charged_us;      /* running time charged up to here */
  uint64_t sample_us;       /* when the current exact sample began */
  int64_t sample_count;     /* instructions counted in it */
  double rate;              /* instructions per microsecond, from the last sample (0: none) */
  int tripped;              /* HC_TRIP_*: a budget ran out; sticky */
  void (*park_cancel)(hc_task *k, void *data);   /* an external wait to call off (hc_task_park) */
  hc_task *runq_next;       /* in its tenant's queue of calls waiting for a slice */
  int queued;
  int not_started;          /* queued before its first resume (params copied: params_owned) */
  char *params_owned;
  void *park_data;
  hc_task *prev, *next;
};

struct hc_batch {
  hc_session *s;
  size_t pending;           /* calls of the batch not answered yet */
  size_t answers;
  hc_buf out;               /* "[a,b,..." */
};

enum { HC_SESSION_DIRECT = 0, HC_SESSION_FD = 1 };

struct hc_session {
  hc_runtime *rt;
  hc_tenant *t;
  uint64_t id;
  int kind;
  int in_fd, out_fd;
  int owns_fd;              /* close in_fd (== out_fd) when the session ends */
  int out_is_sock;
  int in_flags, out_flags;  /* fd flags to restore when the session ends */
  hc_watch win, wout;       /* wout unused when in_fd == out_fd */
  hc_framer fr;
  hc_buf out;
  size_t out_off;
  int eof, dead, paused, exiting, exit_code, dirty;
  int inflight;
  hc_task *tasks;
  uint64_t last_active;
  hc_timer idle;
  hc_session *prev, *next;  /* the runtime's sessions */
  hc_session *next_dirty;
  int keep_alive;           /* hc_serve_fd still uses it: closing must not free it */
  struct hc_handle *handles;  /* fsapi.c: this session's open files and directory streams */
  void *eph;                /* fsapi.c: this session's directories of ephemeral mounts */
  size_t neph;
};

struct hc_runtime {
  hc_config cfg;
  char *system_handler_dir;
  char **handler_dirs;
  hc_loop loop;
  hc_tenant *tenant;
  int stopfd;
  hc_watch wstop;
  atomic_int stop_requested;
  int stopping;
  hc_timer drain_timer;
  int drain_expired;
  hc_session *sessions;
  hc_session *dirty;
  hc_session *reap;
  hc_session *direct;
  hc_tenant **tenants;       /* every tenant; tenant == tenants[0], the one hc_call serves */
  size_t ntenants;
  struct hc_listener **listeners;  /* hc_serve_*: one listening socket per tenant served */
  size_t nlisteners;
  hc_tenant *retired;       /* tenants replaced or removed, kept while sessions use them */
  char *tenants_dir;        /* hc_runtime_new_tenants: where reloads look */
  char *listen_dir;         /* hc_serve_tenants: where tenant sockets live */
  int reloadfd;             /* hc_reload: async-signal-safe request, handled by the loop */
  hc_watch wreload;
  struct hc_control *controls;   /* control connections in progress */
  int landlocked;           /* confine.c: Landlock applied; reloads must stay within confined[] */
  char **confined;
  size_t nconfined;
  int control_fd;
  hc_watch wcontrol;
  uint64_t next_session;
  int in_call;
  hc_buf scratch;
  hc_buf rpc_scratch;       /* member names while parsing envelopes */
  struct hc_resolver *resolver;   /* netapi.c: name lookups, started on first need */
  hc_tenant *ring_head, *ring_tail;   /* tenants with calls waiting for a slice, in turn */
  timer_t wd_timer;         /* the watchdog (sandbox.c) */
  int wd_ok;
  pid_t wd_tid;
  volatile sig_atomic_t wd_armed;
  hc_tenant *_Atomic active;  /* the tenant running Lua now */
  hc_buf audit;
  char *peek;               /* fsapi.c: HC_PEEK_MAX + 1 bytes for fs.read's single pread */
  time_t audit_sec;         /* the second audit_stamp was formatted for */
  char audit_stamp[64];
};

/* tenant.c */
hc_tenant *hc_tenant_new(hc_runtime *rt, const char *src, size_t len, const char *name,
                         const char *dir, char **err);
void hc_tenant_free(hc_tenant *t);
int hc_tenant_call_json(hc_tenant *t, int ref, char **out);   /* describe/capabilities */
lua_State *hc_tenant_thread(hc_tenant *t, int *ref);
void hc_tenant_release_thread(hc_tenant *t, lua_State *co, int ref, int reset);
extern char hc_sentinel;

/* task.c */
void hc_task_start(hc_session *s, hc_batch *b, const hc_rpc_req *r);
void hc_task_cancel(hc_task *k, int code, const char *limit, const char *msg);
void hc_task_discard(hc_task *k);
int hc_task_wait(hc_task *k, uint64_t wake_us);
/* Park the running call on something outside the loop's timers (a name lookup, later a socket):
** the C function then yields hc_sentinel. It is resumed by hc_task_wake, or with no news when
** until_us (0: its deadline) comes; cancel(k, data) runs first if the timer or the call's end
** comes before the wake, so the waker never touches a dead call. */
void hc_task_park(hc_task *k, uint64_t until_us, void (*cancel)(hc_task *k, void *data), void *data);
void hc_task_wake(hc_task *k);
/* Give one queued call its next slice, taking tenants in turn (so one tenant's many busy calls
** delay another's by about one slice); 1 if one ran. */
int hc_task_run_queued(hc_runtime *rt);
/* Resume a parked call from its timer at the next turn, its wait called off (the thing it waited
** on is gone: it looks again and finds out). */
void hc_task_wake_soon(hc_task *k);

/* session.c */
/* A session of tenant t (NULL: the runtime's first tenant). */
hc_session *hc_session_new(hc_runtime *rt, hc_tenant *t, int kind, int in_fd, int out_fd, int owns_fd);
void hc_session_frame(hc_session *s, const char *frame, size_t len);
void hc_session_answer(hc_session *s, hc_batch *b, const char *body, size_t len);
void hc_session_answer_buf(hc_session *s, hc_batch *batch, hc_buf *b);
void hc_session_close(hc_session *s);
void hc_session_flush(hc_session *s);
void hc_session_mark_dirty(hc_session *s);
int hc_session_done(const hc_session *s);
void hc_session_update_read(hc_session *s);
void hc_sessions_flush_dirty(hc_runtime *rt);
void hc_sessions_reap(hc_runtime *rt);
/* A session let go of its tenant: a retired one is freed when no session holds it. */
void hc_tenant_unref(hc_runtime *rt, hc_tenant *t);
void hc_control_free(hc_runtime *rt);   /* control.c: connections and the control watch */
/* confine.c: 1 if path lies within what Landlock allows (always 1 when not confined). */
int hc_confine_covers(hc_runtime *rt, const char *path);
/* The first host path a tenant needs that Landlock does not allow, or NULL. */
const char *hc_confine_tenant_outside(hc_runtime *rt, hc_tenant *t);

/* audit.c */
void hc_audit(hc_runtime *rt, hc_session *s, const char *id, size_t id_len, const char *method,
              int code, const char *errno_name, const char *limit, uint64_t start_us,
              size_t bytes_in, size_t bytes_out);
void hc_audit_flush(hc_runtime *rt);
void hc_log(hc_runtime *rt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
