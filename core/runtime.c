/*
** runtime.c: the public API (hostcall.h): building a runtime, one call, serving fds and
** listeners, and stopping with a drain.
*/
#include "internal.h"
#include "netapi.h"
#include "embed.h"
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define POLICY_MAX_BYTES (1u << 20)
#define ACCEPT_BATCH 64
#define ACCEPT_BACKOFF_US 100000u
#define TENANTS_MAX 100000          /* policies one directory may hold */

/* One listening socket, and the tenant whose guests it accepts: a session's tenant is fixed by
** the socket it came in on, never by anything the guest says. */
struct hc_listener {
  hc_runtime *rt;
  hc_tenant *t;
  int fd;
  int owned;                 /* made by hc_serve_tenants: closed and unlinked by it */
  int by_peer;               /* hc_serve_peers: t is NULL, each guest's peer uid picks it */
  char *path;
  hc_watch w;
  hc_timer resume;           /* re-enables accepting after EMFILE */
};

const char *hc_version(void) { return HC_VERSION; }
void hc_free(void *p) { free(p); }

const hc_embedded *hc_embedded_find(const hc_embedded *table, const char *name) {
  for (const hc_embedded *e = table; e->name; e++)
    if (strcmp(e->name, name) == 0) return e;
  return NULL;
}

const char *hc_builtin_policy(const char *name, size_t *len) {
  const hc_embedded *e = hc_embedded_find(hc_embedded_policies, name);
  if (!e) return NULL;
  if (len) *len = e->size;
  return e->data;
}

void hc_config_init(hc_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->audit_fd = -1;
  cfg->framing = HC_FRAMING_NDJSON;
  cfg->drain_ms = 10000;
}

static char *fmt_err(const char *fmt, const char *a, const char *b) {
  char msg[1024];
  snprintf(msg, sizeof msg, fmt, a, b);
  return strdup(msg);
}

static void set_err(char **errmsg, char *msg) {
  if (errmsg) *errmsg = msg;
  else free(msg);
}

static const char *errname(int e) {
  const char *n = strerrorname_np(e);
  return n ? n : "EIO";
}

/* {===== construction ===== */

static void runtime_free_fields(hc_runtime *rt) {
  free(rt->system_handler_dir);
  for (char **d = rt->handler_dirs; d && *d; d++) free(*d);
  free(rt->handler_dirs);
}

static void on_stop(hc_loop *loop, hc_watch *w, uint32_t revents);
static void on_reload(hc_loop *loop, hc_watch *w, uint32_t revents);
static void on_drain_timeout(hc_loop *loop, hc_timer *t);

/* The runtime without its tenants: the loop, handler directories, the watchdog. */
static hc_runtime *runtime_core(const hc_config *cfg, char **err) {
  hc_runtime *rt = calloc(1, sizeof *rt);
  if (!rt) { *err = strdup("out of memory"); return NULL; }
  if (cfg) rt->cfg = *cfg;
  else hc_config_init(&rt->cfg);
  rt->cfg.handler_dirs = NULL;
  rt->cfg.system_handler_dir = NULL;
  rt->stopfd = -1;
  rt->reloadfd = -1;
  rt->control_fd = -1;
  rt->loop.epfd = -1;
  if (!(cfg && cfg->no_system_handlers)) {
    const char *sys = cfg && cfg->system_handler_dir ? cfg->system_handler_dir : getenv("HOSTCALL_HANDLERS");
    if (!sys || !*sys) sys = HC_DEFAULT_HANDLER_DIR;
    rt->system_handler_dir = strdup(sys);
    if (!rt->system_handler_dir) { *err = strdup("out of memory"); goto fail; }
  }
  size_t nd = 0;
  while (cfg && cfg->handler_dirs && cfg->handler_dirs[nd]) nd++;
  rt->handler_dirs = calloc(nd + 1, sizeof *rt->handler_dirs);
  if (!rt->handler_dirs) { *err = strdup("out of memory"); goto fail; }
  for (size_t i = 0; i < nd; i++) {
    char real[PATH_MAX];
    if (!realpath(cfg->handler_dirs[i], real)) {
      *err = fmt_err("handler directory %s: %s", cfg->handler_dirs[i], errname(errno));
      goto fail;
    }
    if (!(rt->handler_dirs[i] = strdup(real))) { *err = strdup("out of memory"); goto fail; }
  }
  if (hc_loop_init(&rt->loop)) { *err = fmt_err("epoll: %s%s", errname(errno), ""); goto fail; }
  rt->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (rt->stopfd < 0) { *err = fmt_err("eventfd: %s%s", errname(errno), ""); goto fail; }
  rt->wstop.fd = rt->stopfd;
  rt->wstop.cb = on_stop;
  rt->wstop.data = rt;
  rt->reloadfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (rt->reloadfd < 0) { *err = fmt_err("eventfd: %s%s", errname(errno), ""); goto fail; }
  rt->wreload.fd = rt->reloadfd;
  rt->wreload.cb = on_reload;
  rt->wreload.data = rt;
  rt->drain_timer.cb = on_drain_timeout;
  rt->drain_timer.data = rt;
  if (hc_sandbox_init(rt) != 0)
    hc_log(rt, "watchdog timer unavailable: metering every call (slower)");
  return rt;
fail:
  hc_runtime_free(rt);
  return NULL;
}

static int add_tenant(hc_runtime *rt, hc_tenant *t) {
  hc_tenant **n = realloc(rt->tenants, (rt->ntenants + 1) * sizeof *n);
  if (!n) return -1;
  rt->tenants = n;
  rt->tenants[rt->ntenants++] = t;
  rt->tenant = rt->tenants[0];
  return 0;
}

static hc_runtime *runtime_new(const char *src, size_t len, const char *name, const char *dir,
                               const hc_config *cfg, char **errmsg) {
  char *err = NULL;
  hc_runtime *rt = runtime_core(cfg, &err);
  if (!rt) { set_err(errmsg, err ? err : strdup("out of memory")); return NULL; }
  hc_tenant *t = hc_tenant_new(rt, src, len, name, dir, &err);
  if (!t || add_tenant(rt, t)) {
    if (t) hc_tenant_free(t);
    set_err(errmsg, err ? err : strdup("out of memory"));
    hc_runtime_free(rt);
    return NULL;
  }
  return rt;
}

/* The policy file's text. Messages name it as `shown` (a tenants directory's files by their base
** name: the operator's log never needs the host path of a file it named itself). */
static char *read_policy_as(const char *path, const char *shown, size_t *len, char **errmsg);

static char *read_policy(const char *path, size_t *len, char **errmsg) {
  return read_policy_as(path, path, len, errmsg);
}

static char *read_policy_as(const char *path, const char *shown, size_t *len, char **errmsg) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    set_err(errmsg, fmt_err("cannot read policy %s: %s", shown, errname(errno)));
    if (fd >= 0) close(fd);
    return NULL;
  }
  if (!S_ISREG(st.st_mode) || st.st_size > (off_t)POLICY_MAX_BYTES) {
    set_err(errmsg, fmt_err("policy %s: %s", shown,
                            S_ISREG(st.st_mode) ? "larger than 1 MiB" : "not a regular file"));
    close(fd);
    return NULL;
  }
  char *buf = malloc((size_t)st.st_size + 1);
  size_t n = 0;
  while (buf && n < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  if (!buf) { set_err(errmsg, strdup("out of memory")); return NULL; }
  *len = n;
  return buf;
}

hc_runtime *hc_runtime_new_file(const char *policy_path, const hc_config *cfg, char **errmsg) {
  size_t len;
  char *src = read_policy(policy_path, &len, errmsg);
  if (!src) return NULL;
  char real[PATH_MAX];
  if (!realpath(policy_path, real)) {
    set_err(errmsg, fmt_err("policy %s: %s", policy_path, errname(errno)));
    free(src);
    return NULL;
  }
  char *slash = strrchr(real, '/');
  const char *base = slash ? slash + 1 : real;
  char name[NAME_MAX + 1];
  size_t blen = strlen(base);
  if (blen > NAME_MAX) blen = NAME_MAX;
  memcpy(name, base, blen);
  name[blen] = '\0';
  if (slash == real) real[1] = '\0';
  else if (slash) *slash = '\0';
  hc_runtime *rt = runtime_new(src, len, name, real, cfg, errmsg);
  free(src);
  if (rt) {
    char full[PATH_MAX + NAME_MAX + 2];
    snprintf(full, sizeof full, "%s/%s", real, name);
    rt->tenant->file = strdup(full);
  }
  return rt;
}

hc_runtime *hc_runtime_new_string(const char *src, size_t len, const char *name,
                                  const hc_config *cfg, char **errmsg) {
  return runtime_new(src, len, name && *name ? name : "policy.lua", NULL, cfg, errmsg);
}

/* A tenant's name becomes a socket's file name: nothing that could be a path or hidden. */
static int name_ok(const char *file) {
  size_t n = strlen(file) - 4;   /* without ".lua" */
  if (n == 0 || n > 64 || file[0] == '.') return 0;
  for (size_t i = 0; i < n; i++) {
    char c = file[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The policy files of a tenants directory (NAME.lua, not hidden), sorted; *n of them. */
static char **list_policies(const char *dir, size_t *n) {
  DIR *d = opendir(dir);
  *n = 0;
  if (!d) return NULL;
  char **names = NULL;
  size_t cap = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL && *n < TENANTS_MAX) {
    size_t l = strlen(de->d_name);
    if (l <= 4 || strcmp(de->d_name + l - 4, ".lua") != 0 || de->d_name[0] == '.') continue;
    if (*n == cap) {
      char **g = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *g);
      if (!g) break;
      names = g;
    }
    if (!(names[*n] = strdup(de->d_name))) break;
    (*n)++;
  }
  closedir(d);
  if (names) qsort(names, *n, sizeof *names, by_name);
  return names;
}

static void free_names(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

/* One tenant from DIR/FNAME, or NULL with *perr (the file's own `file:line: message`). */
static hc_tenant *load_tenant_file(hc_runtime *rt, const char *dir, const char *fname, char **perr) {
  char path[PATH_MAX + NAME_MAX + 2];
  size_t len;
  snprintf(path, sizeof path, "%s/%s", dir, fname);
  if (!name_ok(fname)) {
    *perr = fmt_err("a tenant name is 1-64 of A-Z a-z 0-9 . _ -%s%s", "", "");
    return NULL;
  }
  char *src = read_policy_as(path, fname, &len, perr);
  if (!src) return NULL;
  hc_tenant *t = hc_tenant_new(rt, src, len, fname, dir, perr);
  free(src);
  /* The file names the tenant (and its socket): a policy may not claim another name. */
  size_t base = strlen(fname) - 4;
  if (t && (strlen(t->name) != base || strncmp(t->name, fname, base) != 0)) {
    *perr = fmt_err("its tenant field \"%s\" is not its file's name%s", t->name, "");
    hc_tenant_free(t);
    return NULL;
  }
  if (t && !(t->file = strdup(path))) {
    hc_tenant_free(t);
    *perr = strdup("out of memory");
    return NULL;
  }
  return t;
}

hc_runtime *hc_runtime_new_tenants(const char *dir, const hc_config *cfg, char **errmsg) {
  char real[PATH_MAX];
  if (!realpath(dir, real)) { set_err(errmsg, fmt_err("tenants %s: %s", dir, errname(errno))); return NULL; }
  size_t n;
  char **names = list_policies(real, &n);
  char *err = NULL;
  hc_runtime *rt = runtime_core(cfg, &err);
  for (size_t i = 0; rt && i < n; i++) {
    /* A broken policy is logged with its file and skipped: the others still serve. */
    char *perr = NULL;
    hc_tenant *t = load_tenant_file(rt, real, names[i], &perr);
    if (!t || add_tenant(rt, t)) {
      hc_log(rt, "tenant %s skipped: %s", names[i], perr ? perr : "out of memory");
      if (t) hc_tenant_free(t);
    }
    free(perr);
  }
  free_names(names, n);
  if (rt && !(rt->tenants_dir = strdup(real))) { hc_runtime_free(rt); rt = NULL; }
  if (!rt) { set_err(errmsg, err ? err : strdup("out of memory")); return NULL; }
  if (rt->ntenants == 0) {
    set_err(errmsg, fmt_err("tenants %s: no policy loaded (NAME.lua files)%s", dir, ""));
    hc_runtime_free(rt);
    return NULL;
  }
  return rt;
}

/* {===== tenants over time: retiring, reloading ===== */

void hc_tenant_unref(hc_runtime *rt, hc_tenant *t) {
  if (--t->refs > 0 || !t->retired) return;
  for (hc_tenant **pp = &rt->retired; *pp; pp = &(*pp)->next_retired) {
    if (*pp != t) continue;
    *pp = t->next_retired;
    hc_tenant_free(t);
    return;
  }
}

/* Take t out of service: sessions that hold it finish with it; it is freed after the last. */
static void retire(hc_runtime *rt, hc_tenant *t) {
  t->retired = 1;
  if (rt->direct && rt->direct->t == t) {   /* hc_call's session starts again on the new one */
    hc_session *d = rt->direct;
    rt->direct = NULL;
    hc_session_close(d);
  }
  if (t->refs == 0) { hc_tenant_free(t); return; }
  t->next_retired = rt->retired;
  rt->retired = t;
}

static struct hc_listener *listener_of(hc_runtime *rt, hc_tenant *t) {
  for (size_t i = 0; i < rt->nlisteners; i++)
    if (rt->listeners[i]->t == t) return rt->listeners[i];
  return NULL;
}

static void listener_close(hc_runtime *rt, struct hc_listener *l) {
  if (l->w.registered) hc_loop_unwatch(&rt->loop, &l->w);
  hc_loop_timer_stop(&rt->loop, &l->resume);
  if (l->owned) {
    close(l->fd);
    if (l->path) unlink(l->path);
  }
  free(l->path);
  free(l);
}

static void on_accept(hc_loop *loop, hc_watch *w, uint32_t revents);

/* A listener for tenant t on fd (owned: made here at path, closed and unlinked here). */
static struct hc_listener *listener_add(hc_runtime *rt, hc_tenant *t, int fd, const char *path) {
  struct hc_listener **g = realloc(rt->listeners, (rt->nlisteners + 1) * sizeof *g);
  struct hc_listener *l = calloc(1, sizeof *l);
  if (g) rt->listeners = g;
  int fl = fcntl(fd, F_GETFL);
  if (!g || !l || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) { free(l); return NULL; }
  l->rt = rt;
  l->t = t;
  l->fd = fd;
  l->owned = path != NULL;
  l->path = path ? strdup(path) : NULL;
  l->w.fd = fd;
  l->w.cb = on_accept;
  l->w.data = l;
  if (!rt->stopping && hc_loop_watch(&rt->loop, &l->w, EPOLLIN)) { free(l->path); free(l); return NULL; }
  rt->listeners[rt->nlisteners++] = l;
  return l;
}

/* Make NAME.sock in the listen directory for t, and serve it. */
static int listen_for(hc_runtime *rt, hc_tenant *t) {
  char path[PATH_MAX];
  char *err = NULL;
  if ((size_t)snprintf(path, sizeof path, "%s/%s.sock", rt->listen_dir, t->name) >= sizeof path) {
    hc_log(rt, "tenant %s: socket path too long", t->name);
    return -1;
  }
  int fd = hc_listen_unix(path, &err);
  if (fd < 0) {
    hc_log(rt, "tenant %s: %s", t->name, err ? err : "cannot listen");
    free(err);
    return -1;
  }
  if (!listener_add(rt, t, fd, path)) {
    close(fd);
    unlink(path);
    hc_log(rt, "tenant %s: cannot serve its socket", t->name);
    return -1;
  }
  return 0;
}

/* Replace tenants[i] by a fresh load of its file; a failure keeps the old one. 1 if replaced. */
static int reload_tenant(hc_runtime *rt, size_t i) {
  hc_tenant *old = rt->tenants[i];
  char *perr = NULL;
  hc_tenant *t = NULL;
  const char *slash = strrchr(old->file, '/');
  if (slash) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - old->file), old->file);
    if (rt->tenants_dir) {
      t = load_tenant_file(rt, dir, slash + 1, &perr);
    } else {
      size_t len;
      char *src = read_policy(old->file, &len, &perr);
      if (src) {
        t = hc_tenant_new(rt, src, len, slash + 1, dir, &perr);
        free(src);
        if (t && !(t->file = strdup(old->file))) { hc_tenant_free(t); t = NULL; }
      }
    }
  }
  const char *outside = t ? hc_confine_tenant_outside(rt, t) : NULL;
  if (outside) {
    hc_log(rt, "tenant %s: reload refused, keeping the policy it had: it needs %s, outside what "
           "--landlock allows (restart to widen it)", old->name, outside);
    hc_tenant_free(t);
    return 0;
  }
  if (!t) {
    hc_log(rt, "tenant %s: reload failed, keeping the policy it had: %s", old->name,
           perr ? perr : "out of memory");
    free(perr);
    return 0;
  }
  /* the counters belong to the tenant's name, not to one load: old sessions count there too */
  if (old->stats) {
    if (t->stats && --t->stats->refs == 0) free(t->stats);
    t->stats = old->stats;
    t->stats->refs++;
  }
  rt->tenants[i] = t;
  rt->tenant = rt->tenants[0];
  struct hc_listener *l = listener_of(rt, old);
  if (l) l->t = t;
  retire(rt, old);
  return 1;
}

/* Sessions of a tenant that is going away: no new frames; each closes once its calls are done. */
static void drain_tenant(hc_runtime *rt, hc_tenant *t) {
  for (hc_session *s = rt->sessions; s; s = s->next) {
    if (s->t != t || s->kind != HC_SESSION_FD) continue;
    s->exiting = 1;
    hc_session_update_read(s);
    hc_session_mark_dirty(s);
  }
}

static void reload(hc_runtime *rt) {
  size_t reloaded = 0, added = 0, removed = 0;
  if (!rt->tenants_dir) {
    if (rt->ntenants && rt->tenants[0]->file) reloaded = (size_t)reload_tenant(rt, 0);
    else hc_log(rt, "reload: the policy came from source text: nothing to reload");
  } else {
    size_t n;
    char **names = list_policies(rt->tenants_dir, &n);
    /* removed files: their tenants drain and close */
    for (size_t i = 0; i < rt->ntenants;) {
      hc_tenant *t = rt->tenants[i];
      const char *base = strrchr(t->file, '/') + 1;
      int present = 0;
      for (size_t j = 0; j < n && !present; j++) present = strcmp(names[j], base) == 0;
      if (present || rt->ntenants == 1) { i++; continue; }
      struct hc_listener *l = listener_of(rt, t);
      if (l) {
        for (size_t k = 0; k < rt->nlisteners; k++)
          if (rt->listeners[k] == l) rt->listeners[k] = rt->listeners[--rt->nlisteners];
        listener_close(rt, l);
      }
      drain_tenant(rt, t);
      memmove(&rt->tenants[i], &rt->tenants[i + 1], (rt->ntenants - i - 1) * sizeof *rt->tenants);
      rt->ntenants--;
      rt->tenant = rt->tenants[0];
      retire(rt, t);
      removed++;
    }
    for (size_t j = 0; j < n; j++) {
      size_t i = 0;
      while (i < rt->ntenants && strcmp(strrchr(rt->tenants[i]->file, '/') + 1, names[j]) != 0) i++;
      if (i < rt->ntenants) { reloaded += (size_t)reload_tenant(rt, i); continue; }
      char *perr = NULL;
      hc_tenant *t = load_tenant_file(rt, rt->tenants_dir, names[j], &perr);
      const char *outside = t ? hc_confine_tenant_outside(rt, t) : NULL;
      if (outside) {
        hc_log(rt, "tenant %s not added: it needs %s, outside what --landlock allows", names[j], outside);
        hc_tenant_free(t);
        free(perr);
        continue;
      }
      if (!t || add_tenant(rt, t)) {
        hc_log(rt, "tenant %s not added: %s", names[j], perr ? perr : "out of memory");
        if (t) hc_tenant_free(t);
      } else {
        added++;
        if (rt->listen_dir) listen_for(rt, t);
      }
      free(perr);
    }
    free_names(names, n);
  }
  char counts[64];
  snprintf(counts, sizeof counts, "%zu reloaded, %zu added, %zu removed, %zu serving", reloaded, added,
           removed, rt->ntenants);
  hc_log(rt, "reload: %s", counts);
}

void hc_reload(hc_runtime *rt) {
  uint64_t one = 1;
  ssize_t r = write(rt->reloadfd, &one, sizeof one);   /* async-signal-safe */
  (void)r;
}

static void on_reload(hc_loop *loop, hc_watch *w, uint32_t revents) {
  (void)loop; (void)revents;
  hc_runtime *rt = w->data;
  uint64_t v;
  if (read(rt->reloadfd, &v, sizeof v) == (ssize_t)sizeof v && !rt->stopping) reload(rt);
}

void hc_reload_now(hc_runtime *rt) {
  if (!rt->in_call) reload(rt);
}

/* }===== */

size_t hc_tenant_count(const hc_runtime *rt) { return rt->ntenants; }

const char *hc_tenant_name_at(const hc_runtime *rt, size_t i) {
  return i < rt->ntenants ? rt->tenants[i]->name : NULL;
}

void hc_runtime_free(hc_runtime *rt) {
  if (!rt) return;
  while (rt->sessions) hc_session_close(rt->sessions);
  hc_sessions_flush_dirty(rt);
  hc_audit_flush(rt);
  hc_sessions_reap(rt);
  hc_netapi_runtime_free(rt);   /* no session is left to wait on a lookup */
  for (size_t i = 0; i < rt->ntenants; i++) hc_tenant_free(rt->tenants[i]);
  free(rt->tenants);
  while (rt->retired) {
    hc_tenant *t = rt->retired;
    rt->retired = t->next_retired;
    hc_tenant_free(t);
  }
  free(rt->listeners);
  free(rt->tenants_dir);
  free(rt->listen_dir);
  for (size_t i = 0; i < rt->nconfined; i++) free(rt->confined[i]);
  free(rt->confined);
  if (rt->reloadfd >= 0) close(rt->reloadfd);
  hc_control_free(rt);
  hc_sandbox_free(rt);
  if (rt->stopfd >= 0) close(rt->stopfd);
  hc_loop_close(&rt->loop);
  hc_buf_free(&rt->scratch);
  hc_buf_free(&rt->rpc_scratch);
  hc_buf_free(&rt->audit);
  free(rt->peek);
  runtime_free_fields(rt);
  free(rt);
}

const char *hc_tenant_name(const hc_runtime *rt) { return rt->tenant->name; }

/* }===== */

static void turn(hc_runtime *rt, int timeout_ms) {
  /* Calls waiting for their next slice: poll I/O without sleeping, then give one a slice. */
  hc_loop_turn(&rt->loop, rt->ring_head ? 0 : timeout_ms);
  hc_task_run_queued(rt);
  hc_sessions_flush_dirty(rt);
  hc_audit_flush(rt);
  hc_sessions_reap(rt);
}

#define HC_CALL_HANDOVER 4096    /* answers this big are given to the caller, not copied */
#define HC_CALL_KEEP (1 << 20)   /* up to this size, a handed-over buffer is replaced at once */

int hc_call(hc_runtime *rt, const char *request, size_t len, char **response, size_t *response_len) {
  *response = NULL;
  *response_len = 0;
  if (rt->in_call) return -1;
  if (!rt->direct && !(rt->direct = hc_session_new(rt, NULL, HC_SESSION_DIRECT, -1, -1, 0))) return -1;
  hc_session *s = rt->direct;
  rt->in_call = 1;
  hc_sandbox_bind_thread(rt);
  hc_buf_reset(&s->out);
  rt->loop.now_us = hc_now_us();
  if (len > (size_t)rt->tenant->limits.request_bytes) {
    hc_buf *b = &rt->scratch;
    hc_buf_reset(b);
    hc_rpc_error(b, "null", 4, HC_E_LIMIT, "request larger than limits.request_bytes", NULL, "size");
    hc_buf_add(&s->out, b->p, b->n);
    hc_audit(rt, s, "null", 4, NULL, HC_E_LIMIT, NULL, "size", rt->loop.now_us, len, b->n);
  } else {
    hc_session_frame(s, request, len);
  }
  while (s->inflight > 0) turn(rt, -1);
  hc_sessions_flush_dirty(rt);
  hc_audit_flush(rt);
  rt->in_call = 0;
  if (s->out.oom) { hc_buf_reset(&s->out); return -1; }
  if (s->out.n >= HC_CALL_HANDOVER && hc_buf_reserve(&s->out, 1) == 0) {
    /* A big answer is handed over, not copied. The session gets a fresh buffer of the same
    ** size (up to 1 MiB), so the next answer of that size does not grow one step by step. */
    size_t cap = s->out.cap <= HC_CALL_KEEP ? s->out.cap : 0;
    char *fresh = cap ? malloc(cap) : NULL;
    s->out.p[s->out.n] = '\0';
    *response = s->out.p;
    *response_len = s->out.n;
    s->out.p = fresh;
    s->out.cap = fresh ? cap : 0;
    s->out.n = 0;
    return 0;
  }
  if (s->out.n) {
    char *r = malloc(s->out.n + 1);
    if (!r) return -1;
    memcpy(r, s->out.p, s->out.n);
    r[s->out.n] = '\0';
    *response = r;
    *response_len = s->out.n;
  }
  hc_buf_reset(&s->out);
  return 0;
}

/* {===== serving and stopping ===== */

void hc_stop(hc_runtime *rt) {
  uint64_t one = 1;
  atomic_store(&rt->stop_requested, 1);
  ssize_t r = write(rt->stopfd, &one, sizeof one);   /* async-signal-safe */
  (void)r;
}

static void begin_stop(hc_runtime *rt) {
  if (rt->stopping) return;
  rt->stopping = 1;
  for (size_t i = 0; i < rt->nlisteners; i++)
    if (rt->listeners[i]->w.registered) hc_loop_unwatch(&rt->loop, &rt->listeners[i]->w);
  for (hc_session *s = rt->sessions; s; s = s->next) {
    hc_session_update_read(s);
    hc_session_mark_dirty(s);
  }
  hc_loop_timer_start(&rt->loop, &rt->drain_timer,
                      hc_now_us() + (uint64_t)(rt->cfg.drain_ms > 0 ? rt->cfg.drain_ms : 0) * 1000u);
}

static void on_stop(hc_loop *loop, hc_watch *w, uint32_t revents) {
  (void)loop; (void)revents;
  hc_runtime *rt = w->data;
  uint64_t v;
  ssize_t r = read(rt->stopfd, &v, sizeof v);
  (void)r;
  begin_stop(rt);
}

static void on_drain_timeout(hc_loop *loop, hc_timer *t) {
  (void)loop;
  hc_runtime *rt = t->data;
  rt->drain_expired = 1;
  for (hc_session *s = rt->sessions; s; s = s->next)
    while (s->tasks) hc_task_cancel(s->tasks, HC_E_CANCELLED, NULL, "cancelled: the runtime is shutting down");
}

static int serve_begin(hc_runtime *rt) {
  hc_sandbox_bind_thread(rt);
  rt->stopping = 0;
  rt->drain_expired = 0;
  if (hc_loop_watch(&rt->loop, &rt->wstop, EPOLLIN)) return -1;
  if (hc_loop_watch(&rt->loop, &rt->wreload, EPOLLIN)) return -1;
  if (atomic_load(&rt->stop_requested)) begin_stop(rt);
  return 0;
}

static void serve_end(hc_runtime *rt) {
  uint64_t v;
  int saved = errno;
  ssize_t r = read(rt->stopfd, &v, sizeof v);   /* a stop that was never read ends here */
  (void)r;
  errno = saved;
  hc_loop_unwatch(&rt->loop, &rt->wstop);
  hc_loop_unwatch(&rt->loop, &rt->wreload);
  hc_loop_timer_stop(&rt->loop, &rt->drain_timer);
  atomic_store(&rt->stop_requested, 0);
}

int hc_serve_fd(hc_runtime *rt, int in_fd, int out_fd) {
  if (rt->in_call || serve_begin(rt)) return -1;
  hc_session *s = hc_session_new(rt, NULL, HC_SESSION_FD, in_fd, out_fd, 0);
  if (!s) { serve_end(rt); return -1; }
  /* The session is freed only here: turn() may close it (idle, guest gone) but reaps it only
  ** once it is off the reap list, which keep_alive holds it out of. */
  s->keep_alive = 1;
  while (!hc_session_done(s)) turn(rt, -1);
  int code = s->exiting ? s->exit_code : 0;
  s->keep_alive = 0;
  hc_session_close(s);
  hc_sessions_flush_dirty(rt);
  hc_audit_flush(rt);
  hc_sessions_reap(rt);
  serve_end(rt);
  return code;
}

static void on_accept_resume(hc_loop *loop, hc_timer *t) {
  struct hc_listener *l = t->data;
  if (!l->rt->stopping && !l->w.registered) hc_loop_watch(loop, &l->w, EPOLLIN);
}

static hc_tenant *tenant_named(hc_runtime *rt, const char *name) {
  for (size_t i = 0; i < rt->ntenants; i++)
    if (strcmp(rt->tenants[i]->name, name) == 0) return rt->tenants[i];
  return NULL;
}

/* hc_serve_peers: the tenant of the peer on fd, by its uid (SO_PEERCRED, set by the kernel at
** connect): the tenant named after the peer's user, else the one named by the uid in decimal
** (what works when NSS cannot be read, e.g. under Landlock). NULL: none; *uid says whose. */
static hc_tenant *peer_tenant(hc_runtime *rt, int fd, long *uid) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  *uid = -1;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) return NULL;
  *uid = (long)cred.uid;
  struct passwd pw, *found = NULL;
  char buf[1024];
  hc_tenant *t = NULL;
  if (getpwuid_r(cred.uid, &pw, buf, sizeof buf, &found) == 0 && found) t = tenant_named(rt, pw.pw_name);
  if (!t) {
    char num[24];
    snprintf(num, sizeof num, "%lu", (unsigned long)cred.uid);
    t = tenant_named(rt, num);
  }
  return t;
}

static void on_accept(hc_loop *loop, hc_watch *w, uint32_t revents) {
  (void)revents;
  struct hc_listener *l = w->data;
  hc_runtime *rt = l->rt;
  for (int i = 0; i < ACCEPT_BATCH; i++) {
    hc_tenant *t = l->t;
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      /* Out of fds or memory: stop accepting for a moment instead of spinning. */
      hc_log(rt, "accept: %s; pausing new sessions", errname(errno));
      hc_loop_unwatch(loop, w);
      l->resume.cb = on_accept_resume;
      l->resume.data = l;
      hc_loop_timer_start(loop, &l->resume, hc_now_us() + ACCEPT_BACKOFF_US);
      return;
    }
    if (l->by_peer) {
      long uid;
      if (!(t = peer_tenant(rt, fd, &uid))) {
        hc_log(rt, "session refused: no tenant for peer uid %ld", uid);
        close(fd);
        continue;
      }
    }
    if (t->nsessions >= t->limits.sessions) {
      hc_log(rt, "tenant %s: session refused: at its limit of %lld sessions", t->name,
             (long long)t->limits.sessions);
      close(fd);
      continue;
    }
    if (!hc_session_new(rt, t, HC_SESSION_FD, fd, fd, 1)) {
      hc_log(rt, "session refused: %s", errname(errno));
      close(fd);
    }
  }
}

/* The loop, until a stop has drained every guest session; then every listener goes. */
static void serve_until_stopped(hc_runtime *rt) {
  for (;;) {
    turn(rt, -1);
    if (!rt->stopping) continue;
    int busy = 0;
    for (hc_session *s = rt->sessions; s; s = s->next)
      if (s->kind == HC_SESSION_FD && !hc_session_done(s)) busy = 1;
    if (!busy) break;
  }
  for (hc_session *s = rt->sessions, *next; s; s = next) {
    next = s->next;
    if (s->kind == HC_SESSION_FD) hc_session_close(s);
  }
  for (size_t i = 0; i < rt->nlisteners; i++) listener_close(rt, rt->listeners[i]);
  free(rt->listeners);
  rt->listeners = NULL;
  rt->nlisteners = 0;
  hc_sessions_flush_dirty(rt);
  hc_audit_flush(rt);
  hc_sessions_reap(rt);
  serve_end(rt);
}

int hc_serve_listeners(hc_runtime *rt, const int *fds, size_t n) {
  if (rt->in_call || n == 0 || n > rt->ntenants) { errno = EINVAL; return -1; }
  if (serve_begin(rt)) return -1;
  for (size_t i = 0; i < n; i++) {
    if (!listener_add(rt, rt->tenants[i], fds[i], NULL)) {
      int e = errno ? errno : ENOMEM;
      for (size_t j = 0; j < rt->nlisteners; j++) listener_close(rt, rt->listeners[j]);
      free(rt->listeners);
      rt->listeners = NULL;
      rt->nlisteners = 0;
      serve_end(rt);
      errno = e;
      return -1;
    }
  }
  serve_until_stopped(rt);
  return 0;
}

int hc_serve_tenants(hc_runtime *rt, const char *listen_dir) {
  if (rt->in_call) { errno = EINVAL; return -1; }
  free(rt->listen_dir);
  if (!(rt->listen_dir = strdup(listen_dir))) { errno = ENOMEM; return -1; }
  if (serve_begin(rt)) return -1;
  size_t ok = 0;
  for (size_t i = 0; i < rt->ntenants; i++) ok += listen_for(rt, rt->tenants[i]) == 0;
  if (ok == 0) {
    serve_end(rt);
    errno = EADDRNOTAVAIL;
    return -1;
  }
  hc_log(rt, "serving %zu tenant%s in %s", ok, ok == 1 ? "" : "s", listen_dir);
  serve_until_stopped(rt);
  return 0;
}

int hc_serve_listener(hc_runtime *rt, int listen_fd) {
  return hc_serve_listeners(rt, &listen_fd, 1);
}

int hc_serve_peers(hc_runtime *rt, int listen_fd) {
  if (rt->in_call) { errno = EINVAL; return -1; }
  if (serve_begin(rt)) return -1;
  struct hc_listener *l = listener_add(rt, NULL, listen_fd, NULL);
  if (!l) {
    int e = errno ? errno : ENOMEM;
    serve_end(rt);
    errno = e;
    return -1;
  }
  l->by_peer = 1;
  hc_log(rt, "serving %zu tenant%s on one socket, each guest by its peer's user", rt->ntenants,
         rt->ntenants == 1 ? "" : "s");
  serve_until_stopped(rt);
  return 0;
}

int hc_listen_unix(const char *path, char **errmsg) {
  struct sockaddr_un sa = {0};
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) {
    set_err(errmsg, fmt_err("unix socket path too long: %s%s", path, ""));
    return -1;
  }
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) { set_err(errmsg, fmt_err("socket: %s%s", errname(errno), "")); return -1; }
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
    /* Replace a stale socket, never a live one: another server may be answering there. */
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (probe >= 0) close(probe);
    if (live) {
      set_err(errmsg, fmt_err("listen on %s: %s (another server is answering there)", path,
                              "EADDRINUSE"));
      close(fd);
      return -1;
    }
    unlink(path);
  }
  mode_t old = umask(0177);   /* the socket is born 0600: no window where others can connect */
  int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
  int e = errno;
  umask(old);
  if (r < 0 || listen(fd, 512) < 0) {
    if (r == 0) e = errno;
    set_err(errmsg, fmt_err("listen on %s: %s", path, errname(e)));
    close(fd);
    return -1;
  }
  return fd;
}

/* }===== */

char *hc_describe(hc_runtime *rt) {
  char *out = NULL;
  hc_tenant_call_json(rt->tenant, rt->tenant->ref_describe, &out);
  return out;
}

char *hc_capabilities(hc_runtime *rt) {
  char *out = NULL;
  hc_tenant_call_json(rt->tenant, rt->tenant->ref_caps, &out);
  return out;
}
