/*
** socket.c: io.read and io.write on sockets. The stack of the primitive carries its state across
** a wait (the handle's token, the deadline, bytes written so far); the continuation looks the
** handle up again, so a handle closed meanwhile is EBADF and never a dangling pointer.
*/
#include "socket.h"
#include "base64.h"
#include "internal.h"
#include "json.h"
#include "tls.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#define SOCK_READ_DEFAULT 65536
#define SOCK_READ_GUESS 4096    /* bytes to make room for when the kernel says none are queued */

static hc_tenant *tenant_of(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

int hc_socket_fail(lua_State *L, int err, const char *what) {
  const char *name = strerrorname_np(err);
  char msg[300];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  lua_pushnil(L);
  lua_pushstring(L, name ? name : "EIO");
  lua_pushstring(L, msg);
  lua_pushstring(L, err == EACCES || err == EPERM ? "refused" : "os");
  return 4;
}


int hc_socket_wait(lua_State *L, hc_handle *h, int dir, uint64_t deadline_us, lua_KFunction k) {
  if (hc_stream_wait(h, dir, deadline_us) != 0)
    return hc_socket_fail(L, errno, dir == HC_WAIT_READ ? "another call is reading this socket"
                                                         : "another call is writing this socket");
  lua_pushlightuserdata(L, &hc_sentinel);
  return lua_yieldk(L, 1, 0, k);
}

/* The deadline of one wait: timeout_ms from now, or 0 (only the call's time_ms). */
static uint64_t op_deadline(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return 0;
  lua_Integer ms = luaL_checkinteger(L, idx);
  if (ms < 0) ms = 0;
  if (ms > 86400000) ms = 86400000;
  return hc_now_us() + (uint64_t)ms * 1000u + 1;
}

static hc_handle *again(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  return t->current ? hc_stream_find(t->current->s, L, 1) : NULL;
}

static int timed_out(lua_State *L, int idx) {
  lua_Integer d = lua_tointeger(L, idx);
  return d > 0 && hc_now_us() >= (uint64_t)d;
}

/* {===== read ===== */

enum { MODE_BYTES, MODE_BASE64, MODE_UTF8 };

/* Give n bytes back to the front of h's pushback. */
static int push_back(hc_handle *h, const char *p, size_t n) {
  if (n == 0) return 0;
  char *q = malloc(h->npush + n);
  if (!q) return -1;
  memcpy(q, p, n);
  if (h->npush) memcpy(q + n, h->pushback, h->npush);
  free(h->pushback);
  h->pushback = q;
  h->npush += n;
  return 0;
}

/* Up to `want` bytes into p: the pushback first, then what the socket has. Returns the count, or
** -1 would block (nothing at all), -2 with *err/msg set; *eof at the peer's close. */
static ssize_t take(hc_handle *h, char *p, size_t want, int *eof, int *wait_dir, int *err, char *msg,
                    size_t msglen) {
  size_t k = h->npush < want ? h->npush : want;
  *eof = 0;
  if (k) {
    memcpy(p, h->pushback, k);
    memmove(h->pushback, h->pushback + k, h->npush - k);
    h->npush -= k;
  }
  if (k == want) return (ssize_t)k;
  if (h->ssl) {
    size_t got = 0;
    int r = hc_tls_read(h, p + k, want - k, &got, eof, err, msg, msglen);
    if (r < 0) return k ? (ssize_t)k : -2;
    if (r > 0) { *wait_dir = r - 1; return k ? (ssize_t)k : -1; }
    return (ssize_t)(k + got);
  }
  ssize_t n = recv(h->fd, p + k, want - k, MSG_DONTWAIT);
  if (n < 0 && errno == EINTR) n = recv(h->fd, p + k, want - k, MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) { *wait_dir = HC_WAIT_READ; return k ? (ssize_t)k : -1; }
    if (k) return (ssize_t)k;   /* the error shows on the next read */
    *err = errno;
    snprintf(msg, msglen, "read: %s", strerror(errno));
    return -2;
  }
  if (n == 0) *eof = 1;   /* the peer closed its side */
  return (ssize_t)(k + (size_t)n);
}

/* stack: 1 handle, 2 length, 3 offset, 4 mode, 5 timeout_ms, 6 deadline (integer) */
static int read_step(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  lua_settop(L, 6);
  hc_handle *h = again(L);
  if (!h) return hc_socket_fail(L, EBADF, "handle");
  lua_Integer len = lua_tointeger(L, 2);
  int mode = (int)lua_tointeger(L, 4);
  int avail = 0;
  if (h->ssl || ioctl(h->fd, FIONREAD, &avail) != 0 || avail <= 0) avail = SOCK_READ_GUESS * (h->ssl ? 4 : 1);
  size_t want = (size_t)avail + h->npush;
  if ((lua_Integer)want > len) want = (size_t)len;
  if (want == 0) {   /* a read of 0 bytes: nothing to wait for */
    lua_pushliteral(L, "");
    lua_pushboolean(L, 0);
    if (mode != MODE_BASE64) return 2;
    lua_pushinteger(L, 0);
    return 3;
  }
  hc_json_text *txt = NULL;
  luaL_Buffer b;
  char *buf, *p;
  if (mode == MODE_BASE64) {
    txt = hc_json_push_text(L, HC_BASE64_INPLACE_CAP(want));
    buf = txt->p;
    p = buf + txt->cap - want;
  } else {
    buf = p = luaL_buffinitsize(L, &b, want);
  }
  int eof = 0, dir = HC_WAIT_READ, err = 0;
  char msg[256];
  ssize_t n = take(h, p, want, &eof, &dir, &err, msg, sizeof msg);
  if (n >= 0 && mode == MODE_UTF8) {   /* whole characters only; a cut one waits for the rest */
    long whole = hc_utf8_whole_len(p, (size_t)n);
    if (whole < 0) {
      push_back(h, p, (size_t)n);   /* still there for a base64 read */
      err = EILSEQ;
      snprintf(msg, sizeof msg, "the bytes are not valid UTF-8: read them as base64");
      n = -2;
    } else if ((size_t)whole < (size_t)n) {
      push_back(h, p + whole, (size_t)n - (size_t)whole);
      if (eof) {
        err = EILSEQ;
        snprintf(msg, sizeof msg, "the stream ends inside a UTF-8 character");
        n = -2;
      } else if (whole == 0) {
        n = -1;   /* only part of a character so far */
      } else {
        n = whole;
      }
    }
  }
  if (n < 0) {
    if (mode != MODE_BASE64) luaL_pushresultsize(&b, 0);
    lua_settop(L, 6);
    if (n == -2) return hc_socket_fail(L, err, msg);
    if (timed_out(L, 6)) return hc_socket_fail(L, ETIMEDOUT, "read");
    return hc_socket_wait(L, h, dir, (uint64_t)lua_tointeger(L, 6), read_step);
  }
  if (mode == MODE_BASE64) txt->n = hc_base64_encode((const unsigned char *)p, (size_t)n, buf);
  else luaL_pushresultsize(&b, (size_t)n);
  lua_pushboolean(L, eof && h->npush == 0);
  if (mode != MODE_BASE64) return 2;
  lua_pushinteger(L, (lua_Integer)n);
  return 3;
}

int hc_socket_io_read(lua_State *L, hc_handle *h) {
  hc_tenant *t = tenant_of(L);
  lua_Integer len = luaL_optinteger(L, 2, SOCK_READ_DEFAULT);
  if (!lua_isnoneornil(L, 3)) return hc_socket_fail(L, ESPIPE, "offset on a socket");
  static const char *const names[] = {"bytes", "base64", "utf8", NULL};
  int mode = luaL_checkoption(L, 4, "bytes", names);
  if (len < 0) return hc_socket_fail(L, EINVAL, "read");
  if (len > t->limits.read_bytes) return hc_fail_limit(L, "size", "read longer than limits.read_bytes");
  uint64_t deadline = op_deadline(L, 5);
  (void)h;
  lua_settop(L, 5);
  lua_pushinteger(L, mode);
  lua_replace(L, 4);
  lua_pushinteger(L, (lua_Integer)deadline);
  return read_step(L, LUA_OK, 0);
}

/* }===== */

/* {===== write ===== */

int hc_socket_send_some(hc_handle *h, const char *p, size_t n, size_t *sent, int *err, char *msg,
                        size_t msglen) {
  while (*sent < n) {
    if (h->ssl) {
      size_t w = 0;
      int r = hc_tls_write(h, p + *sent, n - *sent, &w, err, msg, msglen);
      if (r != 0) return r;
      *sent += w;
      continue;
    }
    ssize_t w = send(h->fd, p + *sent, n - *sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return HC_WAIT_WRITE + 1;
    if (w < 0) {
      *err = errno;
      snprintf(msg, msglen, "write: %s", strerror(errno));
      return -1;
    }
    *sent += (size_t)w;
  }
  return 0;
}

/* stack: 1 handle, 2 data, 3 offset, 4 timeout_ms, 5 deadline, 6 bytes written so far */
static int write_step(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  lua_settop(L, 6);
  hc_handle *h = again(L);
  if (!h) return hc_socket_fail(L, EBADF, "handle");
  size_t n;
  const char *data = lua_tolstring(L, 2, &n);
  size_t done = (size_t)lua_tointeger(L, 6);
  while (done < n && h->ssl) {
    size_t w = 0;
    int err = 0;
    char msg[256];
    int r = hc_tls_write(h, data + done, n - done, &w, &err, msg, sizeof msg);
    if (r < 0) return hc_socket_fail(L, err, msg);
    if (r > 0) {
      lua_pushinteger(L, (lua_Integer)done);
      lua_replace(L, 6);
      if (timed_out(L, 5)) return hc_socket_fail(L, ETIMEDOUT, "write");
      return hc_socket_wait(L, h, r - 1, (uint64_t)lua_tointeger(L, 5), write_step);
    }
    done += w;
  }
  while (done < n) {
    ssize_t w = send(h->fd, data + done, n - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int e = errno;
      if (e != EAGAIN && e != EWOULDBLOCK) return hc_socket_fail(L, e, "write");
      lua_pushinteger(L, (lua_Integer)done);
      lua_replace(L, 6);
      if (timed_out(L, 5)) return hc_socket_fail(L, ETIMEDOUT, "write");
      return hc_socket_wait(L, h, HC_WAIT_WRITE, (uint64_t)lua_tointeger(L, 5), write_step);
    }
    done += (size_t)w;
  }
  lua_pushinteger(L, (lua_Integer)done);
  return 1;
}

int hc_socket_io_write(lua_State *L, hc_handle *h) {
  if (h->response_only) return hc_socket_fail(L, EBADF, "an http response can only be read");
  luaL_checkstring(L, 2);
  if (!lua_isnoneornil(L, 3)) return hc_socket_fail(L, ESPIPE, "offset on a socket");
  uint64_t deadline = op_deadline(L, 4);
  lua_settop(L, 4);
  lua_pushinteger(L, (lua_Integer)deadline);
  lua_pushinteger(L, 0);
  return write_step(L, LUA_OK, 0);
}

/* }===== */
