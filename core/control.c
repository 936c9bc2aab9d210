/*
** control.c: the operator's control socket (`hostcall reload`, `hostcall stats`) and the stats
** document. One command per connection, one answer, then the connection closes; everything is
** non-blocking in the loop, and a connection that says nothing for 5 s is dropped.
*/
#include "internal.h"
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONTROL_LINE_MAX 64   /* read at most 63 bytes: a command and its newline */
#define CONTROL_LINE_TEXT "62"
#define CONTROL_IDLE_US 5000000u

typedef struct hc_control {
  hc_runtime *rt;
  int fd;
  hc_watch w;
  hc_timer idle;
  char line[CONTROL_LINE_MAX];
  size_t n;
  hc_buf out;
  size_t off;
  struct hc_control *next;
} hc_control;

/* {===== stats ===== */

static void add_u64(hc_buf *b, uint64_t v) {
  char tmp[24];
  int k = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
  hc_buf_add(b, tmp, (size_t)k);
}

static void add_field(hc_buf *b, const char *name, uint64_t v) {
  hc_buf_addc(b, ',');
  hc_json_add_string(b, name, strlen(name));
  hc_buf_addc(b, ':');
  add_u64(b, v);
}

static void stats_into(hc_runtime *rt, hc_buf *b) {
  hc_buf_add(b, "{\"tenants\":[", 12);
  for (size_t i = 0; i < rt->ntenants; i++) {
    hc_tenant *t = rt->tenants[i];
    if (i) hc_buf_addc(b, ',');
    hc_buf_add(b, "{\"tenant\":", 10);
    hc_json_add_string(b, t->name, strlen(t->name));
    static const hc_counters none;
    const hc_counters *st = t->stats ? t->stats : &none;
    add_field(b, "calls", st->calls);
    add_field(b, "errors", st->errors);
    add_field(b, "denied", st->denied);
    add_field(b, "limited", st->limited);
    add_field(b, "p50_us", hc_stats_quantile(st, 0.50));
    add_field(b, "p99_us", hc_stats_quantile(st, 0.99));
    add_field(b, "memory", t->mem_used);
    add_field(b, "handles", (uint64_t)t->nhandles);
    add_field(b, "sockets", (uint64_t)t->nsockets);
    add_field(b, "sessions", (uint64_t)t->nsessions);
    hc_buf_addc(b, '}');
  }
  size_t retired = 0;
  for (hc_tenant *t = rt->retired; t; t = t->next_retired) retired++;
  hc_buf_add(b, "],\"retired\":", 12);
  add_u64(b, retired);
  hc_buf_addc(b, '}');
}

char *hc_stats(hc_runtime *rt) {
  hc_buf b = HC_BUF_INIT;
  stats_into(rt, &b);
  hc_buf_addc(&b, '\0');
  if (b.oom) { hc_buf_free(&b); return NULL; }
  return b.p;
}

/* }===== */

/* {===== connections ===== */

static void control_close(hc_control *c) {
  hc_runtime *rt = c->rt;
  for (hc_control **pp = &rt->controls; *pp; pp = &(*pp)->next)
    if (*pp == c) { *pp = c->next; break; }
  if (c->w.registered) hc_loop_unwatch(&rt->loop, &c->w);
  hc_loop_timer_stop(&rt->loop, &c->idle);
  close(c->fd);
  hc_buf_free(&c->out);
  free(c);
}

static void control_flush(hc_control *c) {
  while (c->off < c->out.n) {
    ssize_t w = send(c->fd, c->out.p + c->off, c->out.n - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      hc_loop_rewatch(&c->rt->loop, &c->w, EPOLLOUT);
      return;
    }
    if (w <= 0) break;
    c->off += (size_t)w;
  }
  control_close(c);
}

static void control_command(hc_control *c) {
  hc_runtime *rt = c->rt;
  c->line[c->n < CONTROL_LINE_MAX ? c->n : CONTROL_LINE_MAX - 1] = '\0';
  char *nl = strchr(c->line, '\n');
  if (nl) *nl = '\0';
  if (!nl) {   /* the buffer filled before a newline: said so, and nothing of it is run */
    hc_buf_adds(&c->out, "{\"error\":\"command line too long: at most " CONTROL_LINE_TEXT
                         " bytes before the newline\"}");
  } else if (strcmp(c->line, "stats") == 0) {
    stats_into(rt, &c->out);
  } else if (strcmp(c->line, "reload") == 0) {
    hc_reload_now(rt);
    hc_buf_add(&c->out, "{\"reloaded\":true,\"tenants\":", 27);
    add_u64(&c->out, rt->ntenants);
    hc_buf_addc(&c->out, '}');
  } else {
    hc_buf_add(&c->out, "{\"error\":\"unknown command: try reload or stats\"}", 48);
  }
  hc_buf_addc(&c->out, '\n');
  control_flush(c);
}

static void on_control_io(hc_loop *loop, hc_watch *w, uint32_t ev) {
  (void)loop;
  hc_control *c = w->data;
  if (c->out.n) { control_flush(c); return; }
  if (ev & (EPOLLERR | EPOLLHUP)) { control_close(c); return; }
  for (;;) {
    ssize_t r = read(c->fd, c->line + c->n, CONTROL_LINE_MAX - 1 - c->n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (r <= 0) { control_close(c); return; }
    c->n += (size_t)r;
    if (memchr(c->line, '\n', c->n) || c->n >= CONTROL_LINE_MAX - 1) { control_command(c); return; }
  }
}

static void on_control_idle(hc_loop *loop, hc_timer *t) {
  (void)loop;
  control_close(t->data);
}

static void on_control_accept(hc_loop *loop, hc_watch *w, uint32_t ev) {
  (void)ev;
  hc_runtime *rt = w->data;
  for (int i = 0; i < 16; i++) {
    int fd = accept4(rt->control_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    hc_control *c = calloc(1, sizeof *c);
    if (!c) { close(fd); return; }
    c->rt = rt;
    c->fd = fd;
    c->w.fd = fd;
    c->w.cb = on_control_io;
    c->w.data = c;
    c->idle.cb = on_control_idle;
    c->idle.data = c;
    if (hc_loop_watch(loop, &c->w, EPOLLIN) ||
        hc_loop_timer_start(loop, &c->idle, hc_now_us() + CONTROL_IDLE_US)) {
      if (c->w.registered) hc_loop_unwatch(loop, &c->w);
      close(fd);
      free(c);
      return;
    }
    c->next = rt->controls;
    rt->controls = c;
  }
}

int hc_control_listen(hc_runtime *rt, int fd) {
  if (rt->control_fd >= 0) { errno = EBUSY; return -1; }
  rt->control_fd = fd;
  rt->wcontrol.fd = fd;
  rt->wcontrol.cb = on_control_accept;
  rt->wcontrol.data = rt;
  if (hc_loop_watch(&rt->loop, &rt->wcontrol, EPOLLIN)) { rt->control_fd = -1; return -1; }
  return 0;
}

void hc_control_free(hc_runtime *rt) {
  while (rt->controls) control_close(rt->controls);
  if (rt->wcontrol.registered) hc_loop_unwatch(&rt->loop, &rt->wcontrol);
  rt->control_fd = -1;
}

/* }===== */
