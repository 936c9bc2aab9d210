/*
** netapi.c: ctx.net primitives. Every destination is checked by the tenant's network policy
** (core/netpolicy.c) before any packet: a name no rule names is never sent to DNS, and what a
** lookup returns is filtered by the same check the connection will make.
*/
#include "netapi.h"
#include "base64.h"
#include "internal.h"
#include "json.h"
#include "netpolicy.h"
#include "resolver.h"
#include "socket.h"
#include "stream.h"
#include "tls.h"
#include "urlrule.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
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

/* set_tls(ca_file or nil): the tenant's trust store, loaded now so a bad file fails the load. */
static int net_set_tls(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  const char *ca = luaL_optstring(L, 1, NULL);
  if (!ca) return 0;
  char err[300];
  if (hc_tls_tenant_init(t, ca, err, sizeof err) != 0) return luaL_error(L, "%s", err);
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

/* {===== sockets: connect, listen, accept, shutdown, setopt ===== */

#define CONNECT_ADDRS HC_RESOLVER_MAX_ADDRS

/* A connect in progress, kept on the call's stack across its waits. */
typedef struct dial {
  lookup look;                     /* the name lookup, when the host is a name */
  int resolving;
  int udp, port;
  int via;                         /* the host was a name (look.name) */
  int n, i, last_err;
  int tls, connected;
  int http;                        /* an http request: addresses by the http rule's terms */
  size_t sent;                     /* bytes of the request (stack slot 6) written so far */
  char tls_host[HC_NET_NAME_MAX + 1];  /* the name to verify (or the IP's text) */
  hc_netaddr addrs[CONNECT_ADDRS];
  uint64_t deadline, token;
} dial;

static void push_addr(lua_State *L, const struct sockaddr_storage *ss, socklen_t len) {
  hc_netaddr a;
  int port = 0;
  char text[HC_NETADDR_STRLEN] = "";
  if (hc_netaddr_from_sockaddr((const struct sockaddr *)ss, len, &a, &port) == 0)
    hc_netaddr_format(&a, text, sizeof text);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, text);
  lua_setfield(L, -2, "addr");
  lua_pushinteger(L, port);
  lua_setfield(L, -2, "port");
}

/* The peer and local addresses of a connected fd, as {addr, port} tables. */
static void push_ends(lua_State *L, int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) len = 0;
  push_addr(L, &ss, len);
  len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) len = 0;
  push_addr(L, &ss, len);
}

static int parse_port(lua_State *L, int idx) {
  lua_Integer p = luaL_checkinteger(L, idx);
  return p >= 0 && p <= 65535 ? (int)p : -1;   /* 0 goes on to the policy, which refuses it */
}

static uint64_t deadline_of(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return 0;
  lua_Integer ms = luaL_checkinteger(L, idx);
  if (ms < 0) ms = 0;
  if (ms > 86400000) ms = 86400000;
  return hc_now_us() + (uint64_t)ms * 1000u + 1;
}

static int dial_step(lua_State *L, int status, lua_KContext ctx);

/* Start the next address: a fresh non-blocking socket as a handle, and connect. */
static int dial_next(lua_State *L, dial *d) {
  hc_tenant *t = tenant_of(L);
  hc_session *s = t->current->s;
  while (d->i < d->n) {
    hc_netaddr *a = &d->addrs[d->i++];
    struct sockaddr_storage ss;
    socklen_t len;
    hc_netaddr_to_sockaddr(a, d->port, &ss, &len);
    int fd = socket(ss.ss_family, (d->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { d->last_err = errno; continue; }
    hc_handle *h = calloc(1, sizeof *h);
    if (!h) { close(fd); return hc_socket_fail(L, ENOMEM, "connect"); }
    h->kind = d->udp ? HC_STREAM_UDP : HC_STREAM_TCP;
    h->fd = fd;
    lua_settop(L, 6);
    if (hc_stream_push(L, s, h) != 1) return 4;   /* limits.sockets */
    lua_pop(L, 1);
    d->token = h->token;
    d->connected = 0;
    if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
      d->connected = 1;
      return dial_step(L, LUA_OK, 1);
    }
    if (errno != EINPROGRESS) {
      d->last_err = errno;
      hc_stream_close(s, h);
      continue;
    }
    return hc_socket_wait(L, h, HC_WAIT_WRITE, d->deadline, dial_step);
  }
  return hc_socket_fail(L, d->last_err ? d->last_err : EACCES, "connect");
}

/* The http rule's terms for an address: whatever rule class it is in, apart from what is never
** reachable or denied; through a name, public space only. */
static int http_reachable(const hc_tenant *t, const hc_netaddr *a, int port, const char *via) {
  if (hc_netpolicy_denied(t->net, a, port, via)) return 0;
  return !via || hc_netaddr_class(a) == HC_ADDR_PUBLIC;
}

/* stack: 1 host, 2 port, 3 transport, 4 timeout_ms, 5 dial, 6 request text or nil */
/* A dial step that did not finish (r from hc_tls_handshake / hc_socket_send_some): r < 0 failed
** (err, msg); r > 0 waits for readiness r - 1, unless the deadline has passed. */
static int dial_unfinished(lua_State *L, hc_session *s, hc_handle *h, dial *d, int r, int err,
                           const char *msg, const char *what) {
  if (r > 0 && !(d->deadline && hc_now_us() >= d->deadline))
    return hc_socket_wait(L, h, r - 1, d->deadline, dial_step);
  hc_stream_close(s, h);
  return r < 0 ? hc_socket_fail(L, err, msg) : hc_socket_fail(L, ETIMEDOUT, what);
}

/* Look d->tls_host up on the resolver's threads, the call parked until the answer (dial_step
** then dials the addresses the policy allows). net.connect and http.request alike. */
static int dial_resolve(lua_State *L, hc_tenant *t, dial *d, uint64_t deadline) {
  hc_runtime *rt = t->rt;
  if (!rt->resolver && !(rt->resolver = hc_resolver_new(&rt->loop)))
    return hc_socket_fail(L, errno ? errno : ENOMEM, "cannot start the resolver");
  d->via = 1;
  d->resolving = 1;
  d->look.k = t->current;
  memcpy(d->look.name, d->tls_host, strlen(d->tls_host) + 1);
  if (hc_resolver_submit(rt->resolver, d->look.name, lookup_answered, &d->look, &d->look.job) != 0)
    return hc_socket_fail(L, errno, "cannot queue the name lookup");
  hc_task_park(t->current, deadline, lookup_called_off, &d->look);
  lua_pushlightuserdata(L, &hc_sentinel);
  return lua_yieldk(L, 1, 0, dial_step);
}

static int dial_step(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  lua_settop(L, 6);
  dial *d = lua_touserdata(L, 5);
  hc_tenant *t = tenant_of(L);
  hc_session *s = t->current->s;
  if (d->resolving) {   /* the lookup answered: keep what the policy allows on this port */
    d->resolving = 0;
    lookup *w = &d->look;
    if (!w->done) return hc_socket_fail(L, ETIMEDOUT, "name lookup");
    if (w->err) return hc_socket_fail(L, w->err, w->err == ENOENT ? "no such host" : "name lookup");
    for (int i = 0; i < w->naddrs && d->n < CONNECT_ADDRS; i++) {
      hc_netaddr a;
      if (hc_netaddr_from_sockaddr((const struct sockaddr *)&w->addrs[i], sizeof w->addrs[i], &a, NULL) == 0 &&
          (d->http ? http_reachable(t, &a, d->port, w->name)
                   : hc_netpolicy_check(t->net, HC_NETRULE_ALLOW, &a, d->port, w->name) == 0))
        d->addrs[d->n++] = a;
    }
    if (d->n == 0) return hc_socket_fail(L, EACCES, "the policy allows none of the host's addresses");
    return dial_next(L, d);
  }
  (void)ctx;
  hc_handle *h = hc_stream_find_token(s, d->token);
  if (!h) return hc_socket_fail(L, EBADF, "handle");
  if (!d->connected) {   /* woken: connected, refused, or the deadline came */
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0) err = errno;
    if (err == 0) {
      struct sockaddr_storage ss;
      socklen_t len = sizeof ss;
      if (getpeername(h->fd, (struct sockaddr *)&ss, &len) != 0)
        err = d->deadline && hc_now_us() >= d->deadline ? ETIMEDOUT : ENOTCONN;
    }
    if (err) {
      d->last_err = err;
      hc_stream_close(s, h);
      if (err == ETIMEDOUT) return hc_socket_fail(L, err, "connect");
      return dial_next(L, d);
    }
    d->connected = 1;
  }
  if (d->tls) {   /* the handshake, step by step; a failure here is not retried elsewhere */
    char msg[256];
    int err = 0;
    if (!h->ssl && hc_tls_attach(t, h, d->tls_host, !d->via, msg, sizeof msg) != 0) {
      hc_stream_close(s, h);
      return hc_socket_fail(L, EPROTO, msg);
    }
    int r = hc_tls_handshake(h, &err, msg, sizeof msg);
    if (r != 0) return dial_unfinished(L, s, h, d, r, err, msg, "TLS handshake");
  }
  if (lua_type(L, 6) == LUA_TSTRING) {   /* an http request: the core writes it whole */
    size_t n;
    const char *req = lua_tolstring(L, 6, &n);
    char msg[256];
    int err = 0;
    int r = hc_socket_send_some(h, req, n, &d->sent, &err, msg, sizeof msg);
    if (r != 0) return dial_unfinished(L, s, h, d, r, err, msg, "sending the request");
    h->response_only = 1;
  }
  char text[24];
  snprintf(text, sizeof text, "h%016llx", (unsigned long long)h->token);
  lua_pushstring(L, text);
  push_ends(L, h->fd);
  return 3;
}

/* connect(host, port, transport, timeout_ms, tls) -> handle, peer, local | nil, err */
static int net_connect(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  size_t len;
  const char *host = luaL_checklstring(L, 1, &len);
  int port = parse_port(L, 2);
  const char *tr = luaL_optstring(L, 3, "tcp");
  if (port < 0) return hc_socket_fail(L, EINVAL, "port must be 0..65535");
  if (strcmp(tr, "tcp") != 0 && strcmp(tr, "udp") != 0) return hc_socket_fail(L, EINVAL, "transport");
  if (len == 0 || len > HC_NET_HOST_MAX || memchr(host, '\0', len)) return hc_socket_fail(L, EINVAL, "malformed host");
  if (!t->current) return luaL_error(L, "connect: not inside a call");
  uint64_t deadline = deadline_of(L, 4);
  int tls = lua_toboolean(L, 5);
  if (tls && tr[0] == 'u') return hc_socket_fail(L, EINVAL, "tls needs transport tcp");
  lua_settop(L, 4);
  dial *d = lua_newuserdatauv(L, sizeof *d, 0);
  memset(d, 0, sizeof *d);
  lua_pushnil(L);   /* slot 6: no request to write */
  d->tls = tls;
  d->udp = tr[0] == 'u';
  d->port = port;
  d->deadline = deadline;
  hc_netaddr ip;
  char name[HC_NET_NAME_MAX + 1];
  int kind = hc_net_parse_host(host, &ip, name, sizeof name);
  if (kind < 0) return hc_socket_fail(L, EINVAL, "malformed host");
  if (!t->net) return hc_socket_fail(L, EACCES, "no network rules in the policy");
  if (kind == HC_HOST_IP) {
    if (hc_netpolicy_check(t->net, HC_NETRULE_ALLOW, &ip, port, NULL) != 0)
      return hc_socket_fail(L, EACCES, "the policy does not allow this destination");
    d->addrs[d->n++] = ip;
    hc_netaddr_format(&ip, d->tls_host, sizeof d->tls_host);
    return dial_next(L, d);
  }
  if (!hc_netpolicy_name_allowed(t->net, HC_NETRULE_ALLOW, name, port))
    return hc_socket_fail(L, EACCES, "the policy names no such host and port");
  memcpy(d->tls_host, name, strlen(name) + 1);
  return dial_resolve(L, t, d, deadline);
}

/* listen(addr, port, transport, backlog) -> handle: an IP literal a listen rule names. */
static int net_listen(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  const char *addr = luaL_checkstring(L, 1);
  int port = parse_port(L, 2);
  const char *tr = luaL_optstring(L, 3, "tcp");
  lua_Integer backlog = luaL_optinteger(L, 4, 64);
  if (port < 0) return hc_socket_fail(L, EINVAL, "port must be 0..65535");
  if (strcmp(tr, "tcp") != 0 && strcmp(tr, "udp") != 0) return hc_socket_fail(L, EINVAL, "transport");
  if (backlog < 1 || backlog > 4096) backlog = 64;
  hc_netaddr ip;
  if (strlen(addr) > HC_NET_HOST_MAX || hc_net_parse_host(addr, &ip, NULL, 0) != HC_HOST_IP)
    return hc_socket_fail(L, EINVAL, "listen needs an IP address");
  if (!t->net || hc_netpolicy_check(t->net, HC_NETRULE_LISTEN, &ip, port, NULL) != 0)
    return hc_socket_fail(L, EACCES, "no listen rule allows this address and port");
  if (!t->current) return luaL_error(L, "listen: not inside a call");
  struct sockaddr_storage ss;
  socklen_t len;
  hc_netaddr_to_sockaddr(&ip, port, &ss, &len);
  int udp = tr[0] == 'u';
  int fd = socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return hc_socket_fail(L, errno, "socket");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr *)&ss, len) != 0 || (!udp && listen(fd, (int)backlog) != 0)) {
    int e = errno;
    close(fd);
    return hc_socket_fail(L, e, "listen");
  }
  hc_handle *h = calloc(1, sizeof *h);
  if (!h) { close(fd); return hc_socket_fail(L, ENOMEM, "listen"); }
  h->kind = udp ? HC_STREAM_UDP : HC_STREAM_LISTEN;
  h->fd = fd;
  return hc_stream_push(L, t->current->s, h);
}

/* stack: 1 handle, 2 timeout_ms, 3 deadline */
static int accept_step(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  lua_settop(L, 3);
  hc_tenant *t = tenant_of(L);
  hc_session *s = t->current->s;
  hc_handle *h = hc_stream_find(s, L, 1);
  if (!h || h->kind < HC_STREAM_TCP) return hc_socket_fail(L, EBADF, "handle");
  if (h->kind != HC_STREAM_LISTEN) return hc_socket_fail(L, EINVAL, "not a listening socket");
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int fd = accept4(h->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == EINTR || e == ECONNABORTED) return accept_step(L, LUA_OK, 0);
    if (e != EAGAIN && e != EWOULDBLOCK) return hc_socket_fail(L, e, "accept");
    lua_Integer dl = lua_tointeger(L, 3);
    if (dl > 0 && hc_now_us() >= (uint64_t)dl) return hc_socket_fail(L, ETIMEDOUT, "accept");
    return hc_socket_wait(L, h, HC_WAIT_READ, (uint64_t)dl, accept_step);
  }
  hc_handle *c = calloc(1, sizeof *c);
  if (!c) { close(fd); return hc_socket_fail(L, ENOMEM, "accept"); }
  c->kind = HC_STREAM_TCP;
  c->fd = fd;
  int n = hc_stream_push(L, s, c);
  if (n != 1) return n;
  push_addr(L, &ss, len);
  return 2;
}

static int net_accept(lua_State *L) {
  if (!tenant_of(L)->current) return luaL_error(L, "accept: not inside a call");
  uint64_t dl = deadline_of(L, 2);
  lua_settop(L, 2);
  lua_pushinteger(L, (lua_Integer)dl);
  return accept_step(L, LUA_OK, 0);
}

static hc_handle *socket_arg(lua_State *L, int idx) {
  hc_tenant *t = tenant_of(L);
  if (!t->current) return NULL;
  hc_handle *h = hc_stream_find(t->current->s, L, idx);
  return h && h->kind >= HC_STREAM_TCP ? h : NULL;
}

/* shutdown(handle, how) */
static int net_shutdown(lua_State *L) {
  hc_handle *h = socket_arg(L, 1);
  if (!h) return hc_socket_fail(L, EBADF, "handle");
  static const char *const hows[] = {"read", "write", "both", NULL};
  int how = luaL_checkoption(L, 2, "both", hows);
  if (shutdown(h->fd, how == 0 ? SHUT_RD : how == 1 ? SHUT_WR : SHUT_RDWR) != 0)
    return hc_socket_fail(L, errno, "shutdown");
  lua_pushboolean(L, 1);
  return 1;
}

/* setopt(handle, nodelay, keepalive): the whitelist; nil leaves an option as it is. */
static int net_setopt(lua_State *L) {
  hc_handle *h = socket_arg(L, 1);
  if (!h) return hc_socket_fail(L, EBADF, "handle");
  if (h->kind != HC_STREAM_TCP && (!lua_isnoneornil(L, 2) || !lua_isnoneornil(L, 3)))
    return hc_socket_fail(L, EOPNOTSUPP, "setopt: TCP connections only");
  if (!lua_isnoneornil(L, 2)) {
    int v = lua_toboolean(L, 2);
    if (setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) != 0) return hc_socket_fail(L, errno, "nodelay");
  }
  if (!lua_isnoneornil(L, 3)) {
    int v = lua_toboolean(L, 3);
    if (setsockopt(h->fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v) != 0) return hc_socket_fail(L, errno, "keepalive");
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* }===== */

/* {===== http: a request primitive, never a socket ===== */

#define HTTP_HEADERS_MAX 100
#define HTTP_HEADER_NAME_MAX 256
#define HTTP_HEADER_VALUE_MAX 8192

/* Framing and routing belong to the core: a guest cannot set them. */
static const char *const FORBIDDEN[] = {
  "host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer",
  "keep-alive", "proxy-connection", "expect", NULL,
};

static int header_name_ok(const char *s, size_t n) {
  static const char extra[] = "!#$%&'*+-.^_`|~";
  if (n == 0 || n > HTTP_HEADER_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!isalnum(c) && !strchr(extra, c)) return 0;
  }
  for (int i = 0; FORBIDDEN[i]; i++)
    if (strlen(FORBIDDEN[i]) == n && strncasecmp(FORBIDDEN[i], s, n) == 0) return 0;
  return 1;
}

static int header_value_ok(const char *s, size_t n) {
  if (n > HTTP_HEADER_VALUE_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f) return 0;   /* no CR, LF, NUL: no second request */
  }
  return 1;
}

/* set_http({ {url=, methods={...}}, ... }): once, at load. */
static int net_set_http(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  if (t->http) return luaL_error(L, "set_http: already set");
  if (!(t->http = hc_httprules_new())) return luaL_error(L, "set_http: out of memory");
  lua_Integer n = luaL_len(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lua_getfield(L, -1, "url");
    const char *url = lua_tostring(L, -1);
    lua_getfield(L, -2, "methods");
    const char *methods[HC_HTTP_RULE_METHODS];
    size_t nm = 0;
    if (lua_istable(L, -1)) {
      lua_Integer k = luaL_len(L, -1);
      for (lua_Integer j = 1; j <= k && nm < HC_HTTP_RULE_METHODS; j++) {
        lua_rawgeti(L, -1, j);
        methods[nm++] = lua_tostring(L, -1);   /* the table keeps the string alive */
        lua_pop(L, 1);
      }
    }
    char err[256];
    if (!url || hc_httprules_add(t->http, url, nm ? methods : NULL, nm, err, sizeof err) != 0)
      return luaL_error(L, "http.allow[%d].url: %s", (int)i, url ? err : "expected a string");
    lua_pop(L, 3);
  }
  return 0;
}

/* http_request(url, method, headers, body, timeout_ms) -> handle, peer, local: the request is
** written by the core after the URL rule allowed it; the handle can only be read. */
static int net_http_request(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  size_t ulen, blen = 0;
  const char *url = luaL_checklstring(L, 1, &ulen);
  const char *method = luaL_checkstring(L, 2);
  const char *body = luaL_optlstring(L, 4, NULL, &blen);
  if (!t->current) return luaL_error(L, "http: not inside a call");
  hc_url u;
  const char *code = NULL;
  char msg[256];
  if (hc_url_parse(url, ulen, &u, &code, msg, sizeof msg) != 0)
    return hc_socket_fail(L, code && strcmp(code, "EACCES") == 0 ? EACCES : code && strcmp(code, "ENOMEM") == 0 ? ENOMEM : EINVAL, msg);
  if (!hc_http_method_valid(method)) { hc_url_free(&u); return hc_socket_fail(L, EINVAL, "method"); }
  if (!t->http || hc_httprules_check(t->http, &u, method) != 0) {
    hc_url_free(&u);
    return hc_socket_fail(L, EACCES, "no http rule allows this method and URL");
  }
  /* The request, whole: head (the core's own), the guest's headers (checked), framing, body.
  ** Built on top of exactly five slots, so it lands in slot 6, where the dial wants it. */
  lua_settop(L, 5);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  char head[HC_URL_MAX + 512];
  int hl = hc_http_request_head(&u, method, head, sizeof head);
  if (hl < 0) { hc_url_free(&u); return hc_socket_fail(L, EINVAL, "request line"); }
  luaL_addlstring(&b, head, (size_t)hl);
  if (lua_istable(L, 3)) {
    lua_Integer nh = luaL_len(L, 3);
    if (nh > HTTP_HEADERS_MAX) { hc_url_free(&u); return hc_socket_fail(L, EINVAL, "too many headers"); }
    for (lua_Integer i = 1; i <= nh; i++) {
      lua_rawgeti(L, 3, i);
      lua_rawgeti(L, -1, 1);
      lua_rawgeti(L, -2, 2);
      size_t nl = 0, vl = 0;
      int strings = lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING;
      const char *name = strings ? lua_tolstring(L, -2, &nl) : NULL;
      const char *value = strings ? lua_tolstring(L, -1, &vl) : NULL;
      if (!strings || !header_name_ok(name, nl) || !header_value_ok(value, vl)) {
        hc_url_free(&u);
        snprintf(msg, sizeof msg, "headers[%d]: not a header a request may carry", (int)i);
        return hc_socket_fail(L, EINVAL, msg);
      }
      /* copied before the pop; the buffer sees a balanced stack */
      char line[HTTP_HEADER_NAME_MAX + HTTP_HEADER_VALUE_MAX + 8];
      int ll = snprintf(line, sizeof line, "%.*s: %.*s\r\n", (int)nl, name, (int)vl, value);
      lua_pop(L, 3);
      luaL_addlstring(&b, line, (size_t)ll);
    }
  }
  luaL_addstring(&b, "Connection: close\r\n");
  if (body) {
    char cl[48];
    snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", blen);
    luaL_addstring(&b, cl);
  }
  luaL_addstring(&b, "\r\n");
  if (body) luaL_addlstring(&b, body, blen);
  luaL_pushresult(&b);
  uint64_t deadline = deadline_of(L, 5);
  /* The dial's stack: 1 host, 2 port, 3 transport, 4 timeout, 5 dial, 6 request. */
  lua_pushstring(L, u.host);
  lua_replace(L, 1);
  lua_pushinteger(L, u.port);
  lua_replace(L, 2);
  lua_pushliteral(L, "tcp");
  lua_replace(L, 3);
  lua_settop(L, 6);
  dial *d = lua_newuserdatauv(L, sizeof *d, 0);
  memset(d, 0, sizeof *d);
  lua_replace(L, 5);
  d->http = 1;
  d->tls = u.https;
  d->port = u.port;
  d->deadline = deadline;
  int literal = u.host_is_ip4 || u.host_is_ip6;
  memcpy(d->tls_host, u.host, strlen(u.host) + 1);
  hc_url_free(&u);
  if (literal) {
    hc_netaddr ip;
    if (hc_net_parse_host(d->tls_host, &ip, NULL, 0) != HC_HOST_IP || !http_reachable(t, &ip, d->port, NULL))
      return hc_socket_fail(L, EACCES, "the policy does not allow this destination");
    d->addrs[d->n++] = ip;
    return dial_next(L, d);
  }
  return dial_resolve(L, t, d, deadline);
}

/* http_resolve(base, location) -> absolute URL text: where a redirect points. */
static int net_http_resolve(lua_State *L) {
  size_t bl, ll;
  const char *base = luaL_checklstring(L, 1, &bl), *loc = luaL_checklstring(L, 2, &ll);
  hc_url b, o;
  const char *code = NULL;
  char msg[256];
  if (hc_url_parse(base, bl, &b, &code, msg, sizeof msg) != 0) return hc_socket_fail(L, EINVAL, msg);
  int r = hc_url_resolve(&b, loc, ll, &o, &code, msg, sizeof msg);
  if (r != 0) {
    hc_url_free(&b);
    return hc_socket_fail(L, code && strcmp(code, "EACCES") == 0 ? EACCES : EINVAL, msg);
  }
  char port[16] = "";
  if (o.port != (o.https ? 443 : 80)) snprintf(port, sizeof port, ":%d", o.port);
  lua_pushfstring(L, "%s://%s%s%s%s%s", o.https ? "https" : "http", o.host_is_ip6 ? "[" : "", o.host,
                  o.host_is_ip6 ? "]" : "", port, o.target);
  hc_url_free(&b);
  hc_url_free(&o);
  return 1;
}

/* }===== */

/* {===== datagrams ===== */

typedef struct datagram {
  lookup look;
  int resolving, port;
  hc_netaddr to;
  uint64_t token;
} datagram;

/* stack: 1 handle, 2 data, 3 host, 4 port, 5 datagram */
static int sendto_step(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  lua_settop(L, 5);
  hc_tenant *t = tenant_of(L);
  datagram *g = lua_touserdata(L, 5);
  if (g->resolving) {
    g->resolving = 0;
    lookup *w = &g->look;
    if (!w->done) return hc_socket_fail(L, ETIMEDOUT, "name lookup");
    if (w->err) return hc_socket_fail(L, w->err, w->err == ENOENT ? "no such host" : "name lookup");
    int found = 0;
    for (int i = 0; i < w->naddrs && !found; i++)
      found = hc_netaddr_from_sockaddr((const struct sockaddr *)&w->addrs[i], sizeof w->addrs[i], &g->to, NULL) == 0 &&
              hc_netpolicy_check(t->net, HC_NETRULE_ALLOW, &g->to, g->port, w->name) == 0;
    if (!found) return hc_socket_fail(L, EACCES, "the policy allows none of the host's addresses");
  }
  hc_handle *h = hc_stream_find_token(t->current->s, g->token);
  if (!h) return hc_socket_fail(L, EBADF, "handle");
  size_t n;
  const char *data = lua_tolstring(L, 2, &n);
  struct sockaddr_storage ss;
  socklen_t len;
  hc_netaddr_to_sockaddr(&g->to, g->port, &ss, &len);
  ssize_t w = sendto(h->fd, data, n, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&ss, len);
  if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return hc_socket_wait(L, h, HC_WAIT_WRITE, 0, sendto_step);
  if (w < 0) return hc_socket_fail(L, errno, "sendto");
  lua_pushinteger(L, (lua_Integer)w);
  return 1;
}

/* sendto(handle, data, host, port) -> bytes sent: each datagram checked like a connect. */
static int net_sendto(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  hc_handle *h = t->current ? hc_stream_find(t->current->s, L, 1) : NULL;
  if (!h || h->kind != HC_STREAM_UDP) return hc_socket_fail(L, EBADF, "handle");
  luaL_checkstring(L, 2);
  size_t len;
  const char *host = luaL_checklstring(L, 3, &len);
  int port = parse_port(L, 4);
  if (port < 0) return hc_socket_fail(L, EINVAL, "port must be 0..65535");
  if (len == 0 || len > HC_NET_HOST_MAX || memchr(host, '\0', len)) return hc_socket_fail(L, EINVAL, "malformed host");
  lua_settop(L, 4);
  datagram *g = lua_newuserdatauv(L, sizeof *g, 0);
  memset(g, 0, sizeof *g);
  g->port = port;
  g->token = h->token;
  char name[HC_NET_NAME_MAX + 1];
  int kind = hc_net_parse_host(host, &g->to, name, sizeof name);
  if (kind < 0) return hc_socket_fail(L, EINVAL, "malformed host");
  if (!t->net) return hc_socket_fail(L, EACCES, "no network rules in the policy");
  if (kind == HC_HOST_IP) {
    if (hc_netpolicy_check(t->net, HC_NETRULE_ALLOW, &g->to, port, NULL) != 0)
      return hc_socket_fail(L, EACCES, "the policy does not allow this destination");
    return sendto_step(L, LUA_OK, 0);
  }
  if (!hc_netpolicy_name_allowed(t->net, HC_NETRULE_ALLOW, name, port))
    return hc_socket_fail(L, EACCES, "the policy names no such host and port");
  hc_runtime *rt = t->rt;
  if (!rt->resolver && !(rt->resolver = hc_resolver_new(&rt->loop)))
    return hc_socket_fail(L, errno ? errno : ENOMEM, "cannot start the resolver");
  g->resolving = 1;
  g->look.k = t->current;
  memcpy(g->look.name, name, strlen(name) + 1);
  if (hc_resolver_submit(rt->resolver, name, lookup_answered, &g->look, &g->look.job) != 0)
    return hc_socket_fail(L, errno, "cannot queue the name lookup");
  hc_task_park(t->current, 0, lookup_called_off, &g->look);
  lua_pushlightuserdata(L, &hc_sentinel);
  return lua_yieldk(L, 1, 0, sendto_step);
}

/* stack: 1 handle, 2 length, 3 timeout_ms, 4 deadline */
static int recvfrom_step(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  lua_settop(L, 4);
  hc_tenant *t = tenant_of(L);
  hc_handle *h = hc_stream_find(t->current->s, L, 1);
  if (!h || h->kind != HC_STREAM_UDP) return hc_socket_fail(L, EBADF, "handle");
  size_t want = (size_t)lua_tointeger(L, 2);
  hc_json_text *txt = hc_json_push_text(L, HC_BASE64_INPLACE_CAP(want));
  char *p = txt->p + txt->cap - want;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  ssize_t n = recvfrom(h->fd, p, want, MSG_DONTWAIT, (struct sockaddr *)&ss, &len);
  if (n < 0) {
    int e = errno;
    lua_settop(L, 4);
    if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR) return hc_socket_fail(L, e, "recvfrom");
    lua_Integer dl = lua_tointeger(L, 4);
    if (dl > 0 && hc_now_us() >= (uint64_t)dl) return hc_socket_fail(L, ETIMEDOUT, "recvfrom");
    return hc_socket_wait(L, h, HC_WAIT_READ, (uint64_t)dl, recvfrom_step);
  }
  txt->n = hc_base64_encode((const unsigned char *)p, (size_t)n, txt->p);
  push_addr(L, &ss, len);
  lua_pushinteger(L, (lua_Integer)n);
  return 3;
}

/* recvfrom(handle, length, timeout_ms) -> data (base64 text), peer, bytes */
static int net_recvfrom(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  if (!t->current) return luaL_error(L, "recvfrom: not inside a call");
  lua_Integer want = luaL_optinteger(L, 2, 65536);
  if (want < 1 || want > 65536) return hc_socket_fail(L, EINVAL, "length must be 1..65536");
  uint64_t dl = deadline_of(L, 3);
  lua_settop(L, 3);
  lua_pushinteger(L, want);
  lua_replace(L, 2);
  lua_pushinteger(L, (lua_Integer)dl);
  return recvfrom_step(L, LUA_OK, 0);
}

/* }===== */

/* {===== poll ===== */

#define POLL_MAX 1024   /* handles one net.poll may name (the method's maxItems too) */

/* A private epoll set over the polled sockets; the loop watches the set itself. Freed by the
** collector (the call may be cut short while it waits), its watch dropped before that. */
typedef struct pollset {
  hc_handle h;                     /* not in the table: only its fd, watch and waiter are used */
} pollset;

static int pollset_gc(lua_State *L) {
  pollset *ps = lua_touserdata(L, 1);
  if (ps->h.fd >= 0) close(ps->h.fd);
  ps->h.fd = -1;
  return 0;
}

/* stack: 1 list, 2 timeout_ms, 3 deadline, 4 pollset */
static int poll_step(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  lua_settop(L, 4);
  hc_tenant *t = tenant_of(L);
  pollset *ps = lua_touserdata(L, 4);
  struct epoll_event evs[POLL_MAX];   /* every polled handle may be ready: report them all */
  int n = epoll_wait(ps->h.fd, evs, POLL_MAX, 0);
  if (n < 0 && errno != EINTR) return hc_socket_fail(L, errno, "poll");
  lua_Integer dl = lua_tointeger(L, 3);
  if (n <= 0 && !(ctx == 1 && dl == 0) && !(dl > 0 && hc_now_us() >= (uint64_t)dl)) {
    ps->h.s = t->current->s;
    return hc_socket_wait(L, &ps->h, HC_WAIT_READ, (uint64_t)dl, poll_step);
  }
  lua_createtable(L, n > 0 ? n : 0, 0);
  hc_json_push_array_mt(L);
  lua_setmetatable(L, -2);
  for (int i = 0; i < n; i++) {
    lua_Integer idx = (lua_Integer)evs[i].data.u64;
    lua_rawgeti(L, 1, idx);
    lua_getfield(L, -1, "handle");
    lua_createtable(L, 0, 2);
    lua_insert(L, -2);
    lua_setfield(L, -2, "handle");
    lua_createtable(L, 2, 0);
    hc_json_push_array_mt(L);
    lua_setmetatable(L, -2);
    int k = 0;
    if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
      lua_pushliteral(L, "read");
      lua_rawseti(L, -2, ++k);
    }
    if (evs[i].events & (EPOLLOUT | EPOLLERR)) {
      lua_pushliteral(L, "write");
      lua_rawseti(L, -2, ++k);
    }
    lua_setfield(L, -2, "events");
    lua_rawseti(L, 5, i + 1);
    lua_pop(L, 1);   /* the list entry */
  }
  return 1;
}

/* poll({ {handle=, read=bool, write=bool}, ... }, timeout_ms) -> { {handle, events}, ... } */
static int net_poll(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  if (!t->current) return luaL_error(L, "poll: not inside a call");
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer ms = luaL_checkinteger(L, 2);
  uint64_t dl = ms > 0 ? deadline_of(L, 2) : 0;
  lua_settop(L, 2);
  lua_pushinteger(L, (lua_Integer)dl);
  pollset *ps = lua_newuserdatauv(L, sizeof *ps, 0);
  memset(ps, 0, sizeof *ps);
  ps->h.fd = -1;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, pollset_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  ps->h.fd = epoll_create1(EPOLL_CLOEXEC);
  if (ps->h.fd < 0) return hc_socket_fail(L, errno, "poll");
  lua_Integer n = luaL_len(L, 1);
  if (n > POLL_MAX) return hc_socket_fail(L, EINVAL, "poll: at most 1024 handles");
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lua_getfield(L, -1, "handle");
    hc_handle *h = hc_stream_find(t->current->s, L, -1);
    lua_getfield(L, -2, "read");
    lua_getfield(L, -3, "write");
    int rd = lua_toboolean(L, -2), wr = lua_toboolean(L, -1);
    lua_pop(L, 4);
    if (!h || h->kind < HC_STREAM_TCP) return hc_socket_fail(L, EBADF, "poll: handle");
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = (rd ? EPOLLIN | EPOLLRDHUP : 0) | (wr ? EPOLLOUT : 0);
    ev.data.u64 = (uint64_t)i;
    if (epoll_ctl(ps->h.fd, EPOLL_CTL_ADD, h->fd, &ev) != 0)
      return hc_socket_fail(L, errno == EEXIST ? EINVAL : errno, "poll: a handle twice, or not pollable");
  }
  return poll_step(L, LUA_OK, 1);
}

/* }===== */

void hc_netapi_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"set_net", net_set},
    {"set_tls", net_set_tls},
    {"set_http", net_set_http},
    {"http_request", net_http_request},
    {"http_resolve", net_http_resolve},
    {"net_resolve", net_resolve},
    {"net_connect", net_connect},
    {"net_listen", net_listen},
    {"net_accept", net_accept},
    {"net_shutdown", net_shutdown},
    {"net_setopt", net_setopt},
    {"net_sendto", net_sendto},
    {"net_recvfrom", net_recvfrom},
    {"net_poll", net_poll},
    {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}

void hc_netapi_free(hc_tenant *t) {
  hc_tls_tenant_free(t);
  hc_httprules_free(t->http);
  t->http = NULL;
  hc_netpolicy_free(t->net);
  t->net = NULL;
}

void hc_netapi_runtime_free(hc_runtime *rt) {
  hc_resolver_free(rt->resolver);
  rt->resolver = NULL;
}
