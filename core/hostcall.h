/*
** hostcall.h: the public C API of libhostcall, a Lua-scriptable host function runtime.
**
** A runtime (hc_runtime) holds one tenant or many (each its policy, its handlers and its
** sandboxed Lua state) and the one event loop that serves their guests with JSON-RPC 2.0.
**
** Ownership: every char * the API returns is allocated by the library and released with
** hc_free(). Strings passed in are copied; the caller keeps ownership of them.
** Threads: a runtime is single-threaded: call every function on one runtime from one thread at a
** time. Different runtimes may be used from different threads. hc_stop() is the one exception:
** it is async-signal-safe and may be called from any thread or a signal handler.
** Errors: constructors return NULL and, if errmsg is non-NULL, a message in *errmsg (hc_free it).
** Messages never carry host paths beyond what the caller gave.
*/
#ifndef HOSTCALL_H
#define HOSTCALL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HC_VERSION_MAJOR 0
#define HC_VERSION_MINOR 1
#define HC_VERSION_PATCH 0

typedef struct hc_runtime hc_runtime;

typedef enum { HC_FRAMING_NDJSON = 0, HC_FRAMING_LSP = 1 } hc_framing;

/* How running tenant code is metered (instructions, time, time slices). */
typedef enum {
  HC_METER_WATCHDOG = 0,  /* default: a timer arms the count hook only when a call runs long */
  HC_METER_ALWAYS = 1,    /* the count hook on every call from its first instruction (slower) */
  HC_METER_OFF = 2        /* no metering of running code at all: for benchmarks only */
} hc_metering;

/* Receives one audit line (a JSON object, no newline) per call. */
typedef void (*hc_audit_fn)(void *ud, const char *line, size_t len);
/* Receives one log message (no newline): refused sessions, handler load notes, shutdown. */
typedef void (*hc_log_fn)(void *ud, const char *msg);

typedef struct hc_config {
  /* Extra handler directories, loaded after the shipped ones; relative to the current
  ** directory. NULL-terminated list, or NULL. */
  const char *const *handler_dirs;
  /* Directory of the shipped handlers (sys.lua, ...). NULL: $HOSTCALL_HANDLERS, else the
  ** build's default. */
  const char *system_handler_dir;
  int no_system_handlers;     /* 1: load only handler_dirs and the policy's own */
  hc_framing framing;         /* for hc_serve_*; hc_call takes one frame as is */
  int audit_fd;               /* audit lines go here (one per line) when >= 0 ... */
  hc_audit_fn audit;          /* ... or to this callback; neither: no audit */
  void *audit_ud;
  hc_log_fn log;              /* NULL: logs go to stderr */
  void *log_ud;
  int drain_ms;               /* how long hc_stop lets calls in flight finish; default 10000 */
  hc_metering metering;       /* default HC_METER_WATCHDOG */
  int resolver;               /* 0 auto (openat2, walking where the kernel lacks it), 1 openat2,
                              ** 2 the manual walk: for tests and old kernels */
} hc_config;

/* Fill cfg with the defaults (audit_fd = -1, ndjson, drain 10 s). */
void hc_config_init(hc_config *cfg);

/* A runtime from a policy file. Relative host paths in it are relative to its directory. */
hc_runtime *hc_runtime_new_file(const char *policy_path, const hc_config *cfg, char **errmsg);
/* A runtime from policy source text; `name` ("acme.lua") names the tenant and the messages.
** Host paths in such a policy must be absolute. */
hc_runtime *hc_runtime_new_string(const char *src, size_t len, const char *name,
                                  const hc_config *cfg, char **errmsg);
/* A runtime of many tenants: one per DIR/NAME.lua, tenant NAME (a policy whose `tenant` field
** names another tenant is skipped, like one that fails to load), in name order. A policy that fails to load is logged (through cfg->log) with its
** file and skipped; NULL only when none loads. */
hc_runtime *hc_runtime_new_tenants(const char *dir, const hc_config *cfg, char **errmsg);
size_t hc_tenant_count(const hc_runtime *rt);
/* The i-th tenant's name (owned by the runtime), or NULL. hc_call serves tenant 0. */
const char *hc_tenant_name_at(const hc_runtime *rt, size_t i);
void hc_runtime_free(hc_runtime *rt);

/* One JSON-RPC frame in (a request, a notification or a batch), its response out. Runs the
** loop until every call of the frame is answered (a sys.sleep makes it wait). *response is NULL
** and *response_len 0 when there is nothing to answer (notifications). Returns 0, or -1 when
** out of memory or when called re-entrantly from a handler. */
int hc_call(hc_runtime *rt, const char *request, size_t len, char **response,
            size_t *response_len);

/* Serve one guest over in_fd/out_fd (they may be equal, e.g. a socket) until the input ends
** and every response is written, sys.exit, or hc_stop. Returns the exit code (sys.exit's, or 0),
** or -1 with errno on a setup failure. The fds stay open; the caller closes them. */
int hc_serve_fd(hc_runtime *rt, int in_fd, int out_fd);
/* Accept guests on a listening stream socket, each a session served concurrently, until hc_stop.
** Returns 0 after draining, -1 with errno on a setup failure. */
int hc_serve_listener(hc_runtime *rt, int listen_fd);
/* The same for many tenants at once: guests accepted on fds[i] are sessions of tenant i (so a
** guest can never choose its tenant). n is at most hc_tenant_count(rt). */
int hc_serve_listeners(hc_runtime *rt, const int *fds, size_t n);
/* Many tenants, one socket each, made and removed here: DIR/NAME.sock (mode 0600) for every
** tenant, also for tenants a reload adds (and removed for those it removes). Returns 0 after a
** stop has drained, -1 with errno when no socket could be made. */
int hc_serve_tenants(hc_runtime *rt, const char *listen_dir);
/* Many tenants on one listening unix socket: each guest is served by the tenant its peer's uid
** names (SO_PEERCRED): the tenant named after the peer's user, else the one named by the uid in
** decimal ("1000"); a peer no tenant matches is refused and logged. The caller makes the socket
** and chooses its mode (other users must be able to connect; their uid is the access check).
** Reloads apply (a tenant added by a reload serves its user from then on). Returns 0 after a
** stop has drained, -1 with errno on a setup failure. */
int hc_serve_peers(hc_runtime *rt, int listen_fd);
/* Re-read the policies (and their handlers): hc_runtime_new_file's file, or every file of
** hc_runtime_new_tenants' directory (new files added, removed files drained and closed). A
** policy that fails to load keeps the tenant as it was, with the error logged (file:line).
** Sessions in flight finish with the policy they started with; new sessions get the new one.
** Async-signal-safe (the serving loop does the work); hc_reload_now does it at once (not from a
** handler). */
void hc_reload(hc_runtime *rt);
void hc_reload_now(hc_runtime *rt);
/* Per-tenant counters as JSON: calls, errors, denied, limited, p50_us, p99_us, memory, handles,
** sockets, sessions. */
char *hc_stats(hc_runtime *rt);
/* Serve a control socket too (hc_listen_unix): one command per connection, "reload" or
** "stats", answered with one line. Call before hc_serve_*. */
int hc_control_listen(hc_runtime *rt, int fd);
/* Defence in depth, once, after binding sockets and before hc_serve_*: with landlock, confine the
** process (Landlock, where the kernel has it) to what the runtime needs: its mounts (ro or rw),
** policy and handler directories, the socket directory, tool programs, rw_paths (NULL-terminated:
** e.g. the directory of a --listen socket), and the system's CA store and resolver files; a
** reload that would need more is refused and logged. With user, then drop to that user
** (irreversibly; never root). 0, or -1 with *errmsg (Landlock unavailable is an error). Call
** from the thread that will serve, before any other thread exists. */
int hc_confine(hc_runtime *rt, const char *user, int landlock, const char *const *rw_paths,
               char **errmsg);
/* Defence in depth, after hc_confine: a seccomp filter on every thread of the process (and so on
** every tool it starts) that refuses with EPERM the system calls hostcall never needs: ptrace,
** modules and kexec, mounts, setns/unshare, bpf, perf, userfaultfd, io_uring, keyrings,
** open_by_handle_at, the clock, swap, reboot (docs/defence-in-depth.md). Irreversible. 0, or -1
** with *errmsg. */
int hc_seccomp(char **errmsg);
/* One line on what this kernel lets hostcall do: the Landlock ABI, seccomp, and how tools are
** confined (a PID namespace, or a process-group fallback). Static storage. */
const char *hc_kernel_report(void);
/* Create a listening unix socket at path (mode 0600; a stale socket file is replaced).
** Returns the fd, or -1 with *errmsg set. */
int hc_listen_unix(const char *path, char **errmsg);
/* Ask a serving runtime to stop: no new sessions or frames, calls in flight get drain_ms to
** finish, then hc_serve_* return. Async-signal-safe and thread-safe. */
void hc_stop(hc_runtime *rt);

/* The OpenRPC 1.x document (JSON) of exactly the methods the policy grants. */
char *hc_describe(hc_runtime *rt);
/* The effective capabilities as JSON (what `hostcall check` prints). */
char *hc_capabilities(hc_runtime *rt);
/* The tenant's name. Owned by the runtime. */
const char *hc_tenant_name(const hc_runtime *rt);

/* A policy compiled into the library ("demo.lua", "default.lua"), or NULL. Static storage. */
const char *hc_builtin_policy(const char *name, size_t *len);

void hc_free(void *p);
const char *hc_version(void);

#ifdef __cplusplus
}
#endif
#endif
