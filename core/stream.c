/*
** stream.c: the session's handle table (files, directory streams, sockets) and the readiness
** waits of sockets. A socket's fd is watched by the loop only while a call waits on it; the call
** parks (hc_task_park) and is woken when the fd is ready, when its own timer comes, or when the
** handle is closed under it (then it finds the token gone: EBADF).
*/
#include "stream.h"
#include "internal.h"
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

static int is_socket(const hc_handle *h) { return h->kind >= HC_STREAM_TCP; }

/* {===== the table ===== */

static void close_fd(hc_handle *h) {
  hc_tls_detach(h);
  if (h->dir) closedir(h->dir);
  else if (h->fd >= 0) close(h->fd);
}

int hc_fail_limit(lua_State *L, const char *limit, const char *msg) {
  lua_pushnil(L);
  lua_pushstring(L, limit);
  lua_pushstring(L, msg);
  lua_pushliteral(L, "limit");
  return 4;
}

int hc_stream_push(lua_State *L, hc_session *s, hc_handle *h) {
  hc_tenant *t = s->t;
  int sock = is_socket(h);
  int64_t open_now = sock ? t->nsockets : t->nhandles;
  int64_t limit = sock ? t->limits.sockets : t->limits.handles;
  uint64_t tok;
  if (open_now >= limit || getrandom(&tok, sizeof tok, 0) != sizeof tok) {
    int over = open_now >= limit;
    close_fd(h);
    free(h);
    lua_pushnil(L);
    if (over) {
      lua_pushstring(L, "handles");
      lua_pushstring(L, sock ? "too many open sockets (limits.sockets)"
                             : "too many open handles (limits.handles)");
      lua_pushliteral(L, "limit");
    } else {
      lua_pushliteral(L, "EIO");
      lua_pushliteral(L, "no randomness for a handle");
      lua_pushliteral(L, "os");
    }
    return 4;
  }
  h->token = tok | 1;
  h->s = s;
  h->w.fd = -1;
  h->next = s->handles;
  s->handles = h;
  if (sock) t->nsockets++;
  else t->nhandles++;
  char text[24];
  snprintf(text, sizeof text, "h%016llx", (unsigned long long)h->token);
  lua_pushstring(L, text);
  return 1;
}

hc_handle *hc_stream_find_token(hc_session *s, uint64_t token) {
  for (hc_handle *h = s->handles; h; h = h->next)
    if (h->token == token) return h;
  return NULL;
}

hc_handle *hc_stream_find(hc_session *s, lua_State *L, int idx) {
  const char *tok = lua_tostring(L, idx);
  if (!tok || tok[0] != 'h' || strlen(tok) != 17) return NULL;
  char *end;
  uint64_t v = strtoull(tok + 1, &end, 16);
  if (*end || !v) return NULL;
  return hc_stream_find_token(s, v);
}

/* }===== */

/* {===== readiness ===== */

static void update_interest(hc_handle *h) {
  hc_loop *loop = &h->s->rt->loop;
  uint32_t ev = (h->waiter[HC_WAIT_READ] ? EPOLLIN | EPOLLRDHUP : 0) |
                (h->waiter[HC_WAIT_WRITE] ? EPOLLOUT : 0);
  if (!ev) {
    if (h->w.registered) hc_loop_unwatch(loop, &h->w);
    return;
  }
  if (h->w.registered) hc_loop_rewatch(loop, &h->w, ev);
  else hc_loop_watch(loop, &h->w, ev);
}

static void on_ready(hc_loop *loop, hc_watch *w, uint32_t ev) {
  (void)loop;
  hc_handle *h = w->data;
  int bad = (ev & (EPOLLERR | EPOLLHUP)) != 0;
  hc_task *rd = (bad || (ev & (EPOLLIN | EPOLLRDHUP))) ? h->waiter[HC_WAIT_READ] : NULL;
  hc_task *wr = (bad || (ev & EPOLLOUT)) ? h->waiter[HC_WAIT_WRITE] : NULL;
  if (rd) { h->waiter[HC_WAIT_READ] = NULL; rd->park_cancel = NULL; }
  if (wr) { h->waiter[HC_WAIT_WRITE] = NULL; wr->park_cancel = NULL; }
  update_interest(h);
  /* The first call woken may close h: nothing below touches it. */
  if (rd) hc_task_wake(rd);
  if (wr) hc_task_wake(wr);
}

static void wait_called_off(hc_task *k, void *data) {
  hc_handle *h = data;
  for (int d = 0; d < 2; d++)
    if (h->waiter[d] == k) h->waiter[d] = NULL;
  update_interest(h);
}

int hc_stream_wait(hc_handle *h, int dir, uint64_t until_us) {
  hc_task *k = h->s->t->current;
  if (!k || h->waiter[dir]) { errno = EBUSY; return -1; }
  h->w.fd = h->fd;
  h->w.cb = on_ready;
  h->w.data = h;
  h->waiter[dir] = k;
  update_interest(h);
  hc_task_park(k, until_us, wait_called_off, h);
  return 0;
}

/* }===== */

void hc_stream_close(hc_session *s, hc_handle *h) {
  for (hc_handle **pp = &s->handles; *pp; pp = &(*pp)->next) {
    if (*pp != h) continue;
    *pp = h->next;
    break;
  }
  for (int d = 0; d < 2; d++) {
    hc_task *k = h->waiter[d];
    if (!k) continue;
    h->waiter[d] = NULL;
    hc_task_wake_soon(k);   /* it runs later, finds its token gone and answers EBADF */
  }
  if (h->w.registered) hc_loop_unwatch(&s->rt->loop, &h->w);
  close_fd(h);
  free(h->pushback);
  if (is_socket(h)) s->t->nsockets--;
  else s->t->nhandles--;
  free(h);
}

void hc_stream_close_all(hc_session *s) {
  while (s->handles) hc_stream_close(s, s->handles);
}
