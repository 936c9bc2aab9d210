/*
** confine.c: defence in depth for a serving runtime (hc_confine): Landlock rules gathered from
** what the runtime was given (mounts, policy and handler directories, the socket directory, tool
** programs, the system's CA and resolver files) and a privilege drop. Applied once, after the
** sockets are bound and before serving; a reload that would need a path outside them is refused.
*/
#include "fsapi.h"
#include "internal.h"
#include "landlock.h"
#include "netpolicy.h"
#include "privdrop.h"
#include "seccomp.h"
#include "proc.h"
#include "toolapi.h"
#include "urlrule.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gather {
  hc_landlock *l;
  hc_runtime *rt;
  char err[256];
  int failed;
} gather;

static void remember(hc_runtime *rt, const char *path) {
  char **g = realloc(rt->confined, (rt->nconfined + 1) * sizeof *g);
  if (!g) return;
  rt->confined = g;
  if ((rt->confined[rt->nconfined] = strdup(path))) rt->nconfined++;
}

static void allow(gather *g, const char *path, int access) {
  if (!path || g->failed) return;
  char real[PATH_MAX];
  const char *p = realpath(path, real) ? real : path;
  if (hc_landlock_allow_path(g->l, p, access, g->err, sizeof g->err) < 0) g->failed = 1;
  else remember(g->rt, p);
}

static void on_mount(void *ud, const char *host, int rw) {
  allow(ud, host, rw ? HC_LL_READ | HC_LL_WRITE : HC_LL_READ);
}

static void on_program(void *ud, const char *path) { allow(ud, path, HC_LL_EXEC); }

/* The directory of a file path (the policy file's). */
static void allow_dir_of(gather *g, const char *file, int access) {
  if (!file) return;
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", file);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) *slash = '\0';
  allow(g, dir, access);
}

int hc_confine(hc_runtime *rt, const char *user, int landlock, const char *const *rw_paths,
               char **errmsg) {
  char err[300];
  if (landlock) {
    gather g = {.rt = rt};
    if (!(g.l = hc_landlock_new())) { *errmsg = strdup("out of memory"); return -1; }
    if (hc_landlock_add_system_paths(g.l, g.err, sizeof g.err) < 0) g.failed = 1;
    allow(&g, rt->system_handler_dir, HC_LL_READ);
    for (char **d = rt->handler_dirs; d && *d; d++) allow(&g, *d, HC_LL_READ);
    allow(&g, rt->tenants_dir, HC_LL_READ);
    allow(&g, rt->listen_dir, HC_LL_READ | HC_LL_WRITE);
    for (const char *const *p = rw_paths; p && *p; p++) allow(&g, *p, HC_LL_READ | HC_LL_WRITE);
    int any_net = 0;
    for (size_t i = 0; i < rt->ntenants; i++) {
      hc_tenant *t = rt->tenants[i];
      allow_dir_of(&g, t->file, HC_LL_READ);   /* reloads re-read it, and its handler dirs */
      hc_fsapi_each_mount(t, on_mount, &g);
      hc_toolapi_each_program(t, on_program, &g);
      any_net |= hc_netpolicy_count(t->net, HC_NETRULE_ALLOW) || hc_netpolicy_count(t->net, HC_NETRULE_LISTEN) ||
                 (t->http && hc_httprules_count(t->http) > 0);
    }
    /* No tenant has a network rule: no TCP at all (where the kernel can say so). Otherwise the
    ** network policy decides, address by address; Landlock only knows ports. */
    if (!any_net) {
      hc_landlock_deny_tcp(g.l, 0);
      hc_landlock_deny_tcp(g.l, 1);
    }
    int r = g.failed ? -1 : hc_landlock_restrict(g.l, g.err, sizeof g.err);
    hc_landlock_free(g.l);
    if (r < 0) {
      snprintf(err, sizeof err, "landlock: %s", g.err);
      *errmsg = strdup(err);
      return -1;
    }
    if (r == 1) {   /* the kernel has no Landlock */
      snprintf(err, sizeof err, "landlock: %s", g.err[0] ? g.err : hc_landlock_report());
      *errmsg = strdup(err);
      return -1;
    }
    rt->landlocked = 1;
    hc_log(rt, "%s", hc_landlock_report());
  }
  if (user && hc_drop_privileges(user, err, sizeof err) != 0) {
    *errmsg = strdup(err);
    return -1;
  }
  return 0;
}

/* A reload under Landlock: can the new tenant live with what was allowed? */
int hc_confine_covers(hc_runtime *rt, const char *path) {
  if (!rt->landlocked || !path) return 1;
  char real[PATH_MAX];
  const char *p = realpath(path, real) ? real : path;
  for (size_t i = 0; i < rt->nconfined; i++) {
    size_t n = strlen(rt->confined[i]);
    if (strncmp(p, rt->confined[i], n) == 0 && (p[n] == '/' || p[n] == '\0' || (n == 1 && p[0] == '/')))
      return 1;
  }
  return 0;
}

typedef struct check {
  hc_runtime *rt;
  const char *bad;
} check;

static void check_mount(void *ud, const char *host, int rw) {
  (void)rw;
  check *c = ud;
  if (!c->bad && !hc_confine_covers(c->rt, host)) c->bad = host;
}

static void check_program(void *ud, const char *path) {
  check *c = ud;
  if (!c->bad && !hc_confine_covers(c->rt, path)) c->bad = path;
}

const char *hc_confine_tenant_outside(hc_runtime *rt, hc_tenant *t) {
  if (!rt->landlocked) return NULL;
  check c = {rt, NULL};
  hc_fsapi_each_mount(t, check_mount, &c);
  hc_toolapi_each_program(t, check_program, &c);
  return c.bad;
}

const char *hc_kernel_report(void) {
  static char line[320];
  snprintf(line, sizeof line, "%s; %s; tools run in: %s", hc_landlock_report(), hc_seccomp_report(),
           hc_proc_isolation());
  return line;
}

int hc_seccomp(char **errmsg) {
  char err[256];
  if (hc_seccomp_apply(err, sizeof err) == 0) return 0;
  if (errmsg) *errmsg = strdup(err);
  return -1;
}
