/*
** netapi.c: ctx.net primitives. Every destination is checked by the tenant's network policy
** (core/netpolicy.c) before any packet: a name no rule names is never sent to DNS, and what a
** lookup returns is filtered by the same check the connection will make.
*/
#include "netapi.h"
#include "internal.h"
#include "json.h"
#include "netpolicy.h"
#include "resolver.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

static hc_tenant *tenant_of(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

/* nil, ERRNO, message, kind: what ctx lifts into an error object. */
static int fail(lua_State *L, int err, const char *kind, const char *msg) {
  const char *name = strerrorname_np(err);
  lua_pushnil(L);
  lua_pushstring(L, name ? name : "EIO");
  lua_pushstring(L, msg);
  lua_pushstring(L, kind);
  return 4;
}

/* {===== the policy ===== */

static void add_rules(lua_State *L, hc_netpolicy *p, const char *field, int kind) {
  if (lua_getfield(L, 1, field) != LUA_TTABLE) { lua_pop(L, 1); return; }
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    const char *rule = lua_tostring(L, -1);
    char err[256];
    if (!rule || hc_netpolicy_add(p, kind, rule, err, sizeof err) != 0)
      luaL_error(L, "net.%s[%d]: %s", field, (int)i, rule ? err : "expected a string");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* set_net({allow = {...}, deny = {...}, listen = {...}}): once, at load. */
static int net_set(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  if (t->net) return luaL_error(L, "set_net: already set");
  hc_netpolicy *p = hc_netpolicy_new();
  if (!p) return luaL_error(L, "set_net: out of memory");
  t->net = p;   /* owned by the tenant from here: an error below still frees it */
  add_rules(L, p, "allow", HC_NETRULE_ALLOW);
  add_rules(L, p, "deny", HC_NETRULE_DENY);
  add_rules(L, p, "listen", HC_NETRULE_LISTEN);
  return 0;
}

/* }===== */

/* {===== resolve ===== */

typedef struct lookup {
  hc_task *k;
  hc_resolve_job *job;
  int done, err, naddrs;
  char name[HC_NET_NAME_MAX + 1];
  struct sockaddr_storage addrs[HC_RESOLVER_MAX_ADDRS];
} lookup;

static void lookup_answered(void *data, int err, const struct sockaddr_storage *addrs, int n) {
  lookup *w = data;
  w->job = NULL;
  w->done = 1;
  w->err = err;
  w->naddrs = n;
  memcpy(w->addrs, addrs, (size_t)n * sizeof *addrs);
  hc_task_wake(w->k);   /* may end the call: w is not touched after this */
}

static void lookup_called_off(hc_task *k, void *data) {
  lookup *w = data;
  if (w->job) hc_resolver_cancel(k->s->rt->resolver, w->job);
  w->job = NULL;
}

/* The addresses of one answer the policy lets this tenant reach on some port, as text. */
static int push_allowed(lua_State *L, const hc_tenant *t, const lookup *w) {
  lua_createtable(L, w->naddrs, 0);
  hc_json_push_array_mt(L);
  lua_setmetatable(L, -2);
  int n = 0;
  hc_netaddr seen[HC_RESOLVER_MAX_ADDRS];
  for (int i = 0; i < w->naddrs; i++) {
    hc_netaddr a;
    if (hc_netaddr_from_sockaddr((const struct sockaddr *)&w->addrs[i], sizeof w->addrs[i], &a, NULL))
      continue;
    int dup = 0;
    for (int j = 0; j < n && !dup; j++) dup = hc_netaddr_equal(&seen[j], &a);
    if (dup || hc_netpolicy_check(t->net, HC_NETRULE_ALLOW, &a, -1, w->name) != 0) continue;
    seen[n] = a;
    char text[HC_NETADDR_STRLEN];
    hc_netaddr_format(&a, text, sizeof text);
    lua_pushstring(L, text);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

static int resolve_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  lookup *w = lua_touserdata(L, 2);
  hc_tenant *t = tenant_of(L);
  if (!w->done) return fail(L, ETIMEDOUT, "os", "name lookup timed out");
  if (w->err) {
    char msg[320];
    snprintf(msg, sizeof msg, "%s: %s", w->name, w->err == ENOENT ? "no such host" : strerror(w->err));
    return fail(L, w->err, "os", msg);
  }
  return push_allowed(L, t, w);
}

/* resolve(host) -> { address text, ... } allowed by the policy, or nil, err. */
static int net_resolve(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  size_t len;
  const char *host = luaL_checklstring(L, 1, &len);
  hc_netaddr ip;
  char name[HC_NET_NAME_MAX + 1];
  if (len == 0 || len > HC_NET_HOST_MAX || memchr(host, '\0', len))
    return fail(L, EINVAL, "os", "malformed host");
  int kind = hc_net_parse_host(host, &ip, name, sizeof name);
  if (kind < 0) return fail(L, EINVAL, "os", "malformed host");
  if (!t->net) return fail(L, EACCES, "refused", "no network rules in the policy");
  if (kind == HC_HOST_IP) {
    if (hc_netpolicy_check(t->net, HC_NETRULE_ALLOW, &ip, -1, NULL) != 0)
      return fail(L, EACCES, "refused", "the policy does not allow this address");
    lua_createtable(L, 1, 0);
    hc_json_push_array_mt(L);
    lua_setmetatable(L, -2);
    char text[HC_NETADDR_STRLEN];
    hc_netaddr_format(&ip, text, sizeof text);
    lua_pushstring(L, text);
    lua_rawseti(L, -2, 1);
    return 1;
  }
  /* A name no rule names is never sent to DNS. */
  if (!hc_netpolicy_name_allowed(t->net, HC_NETRULE_ALLOW, name, -1))
    return fail(L, EACCES, "refused", "the policy names no such host");
  if (!t->current) return luaL_error(L, "resolve: not inside a call");
  hc_runtime *rt = t->rt;
  if (!rt->resolver && !(rt->resolver = hc_resolver_new(&rt->loop)))
    return fail(L, errno ? errno : ENOMEM, "os", "cannot start the resolver");
  lua_settop(L, 1);
  lookup *w = lua_newuserdatauv(L, sizeof *w, 0);   /* stays on this stack while parked */
  memset(w, 0, sizeof *w);
  w->k = t->current;
  memcpy(w->name, name, strlen(name) + 1);
  if (hc_resolver_submit(rt->resolver, name, lookup_answered, w, &w->job) != 0)
    return fail(L, errno, "os", "cannot queue the name lookup");
  hc_task_park(t->current, 0, lookup_called_off, w);
  lua_pushlightuserdata(L, &hc_sentinel);
  return lua_yieldk(L, 1, 0, resolve_k);
}

/* }===== */

void hc_netapi_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"set_net", net_set},
    {"net_resolve", net_resolve},
    {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}

void hc_netapi_free(hc_tenant *t) {
  hc_netpolicy_free(t->net);
  t->net = NULL;
}

void hc_netapi_runtime_free(hc_runtime *rt) {
  hc_resolver_free(rt->resolver);
  rt->resolver = NULL;
}
