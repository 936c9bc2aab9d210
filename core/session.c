/*
** session.c: one guest connection: reading and framing its input, writing its output with
** backpressure, batches, cancellation, idle time-out, and closing.
*/
#include "internal.h"
#include "fsapi.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SESSION_READ_CHUNK 65536
#define SESSION_HIGH_WATER (1u << 20)   /* stop reading a guest that does not read its answers */
#define SESSION_LOW_WATER (256u << 10)

static void session_on_io(hc_loop *loop, hc_watch *w, uint32_t revents);

/* {===== output ===== */

static void frame_out(hc_session *s, const char *body, size_t len) {
  if (s->dead) return;
  if (s->kind == HC_SESSION_FD && s->rt->cfg.framing == HC_FRAMING_LSP) {
    char hdr[64];
    int k = snprintf(hdr, sizeof hdr, "Content-Length: %zu\r\n\r\n", len);
    hc_buf_add(&s->out, hdr, (size_t)k);
  }
  hc_buf_add(&s->out, body, len);
  if (s->kind == HC_SESSION_FD && s->rt->cfg.framing == HC_FRAMING_NDJSON)
    hc_buf_addc(&s->out, '\n');
  hc_session_mark_dirty(s);
}

void hc_session_answer(hc_session *s, hc_batch *b, const char *body, size_t len) {
  if (!b) { frame_out(s, body, len); return; }
  hc_buf_addc(&b->out, b->answers ? ',' : '[');
  hc_buf_add(&b->out, body, len);
  b->answers++;
}

/* The answer in b (the runtime's scratch). When the session's output is empty and needs no header
** before the body, the two buffers trade memory instead of copying a body of megabytes. */
void hc_session_answer_buf(hc_session *s, hc_batch *batch, hc_buf *b) {
  int lsp = s->kind == HC_SESSION_FD && s->rt->cfg.framing == HC_FRAMING_LSP;
  if (batch || s->dead || lsp || s->out.n || s->out.oom || b->oom) {
    hc_session_answer(s, batch, b->p, b->n);
    return;
  }
  char *p = s->out.p;
  size_t cap = s->out.cap;
  s->out.p = b->p;
  s->out.cap = b->cap;
  s->out.n = b->n;
  b->p = p;
  b->cap = cap;
  b->n = 0;
  if (s->kind == HC_SESSION_FD && s->rt->cfg.framing == HC_FRAMING_NDJSON) hc_buf_addc(&s->out, '\n');
  hc_session_mark_dirty(s);
}

void hc_session_mark_dirty(hc_session *s) {
  if (s->dirty || s->dead) return;
  s->dirty = 1;
  s->next_dirty = s->rt->dirty;
  s->rt->dirty = s;
}

/* write() that cannot raise SIGPIPE in the embedding process. */
static ssize_t write_nosigpipe(int fd, const void *p, size_t n) {
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigpending(&pending);
  int was_pending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t r = write(fd, p, n);
  int e = errno;
  if (r < 0 && e == EPIPE && !was_pending) {
    struct timespec zero = {0, 0};
    sigtimedwait(&pipe_set, NULL, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = e;
  return r;
}

static void want_write(hc_session *s, int on) {
  hc_loop *loop = &s->rt->loop;
  if (s->in_fd == s->out_fd) {
    uint32_t ev = (s->paused || s->eof ? 0 : EPOLLIN) | (on ? EPOLLOUT : 0);
    if (hc_loop_rewatch(loop, &s->win, ev)) s->dead = 1;
    return;
  }
  if (on) {
    if (hc_loop_rewatch(loop, &s->wout, EPOLLOUT)) s->dead = 1;
  } else if (s->wout.registered) {
    hc_loop_unwatch(loop, &s->wout);
  }
}

void hc_session_flush(hc_session *s) {
  if (s->kind != HC_SESSION_FD || s->dead) return;
  while (s->out_off < s->out.n) {
    const char *p = s->out.p + s->out_off;
    size_t n = s->out.n - s->out_off;
    ssize_t r = s->out_is_sock ? send(s->out_fd, p, n, MSG_NOSIGNAL) : write_nosigpipe(s->out_fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      want_write(s, 1);
      return;
    }
    if (r <= 0) {   /* the guest went away: nothing more can reach it */
      s->out_off = s->out.n = 0;
      s->eof = 1;
      hc_session_close(s);
      return;
    }
    s->out_off += (size_t)r;
  }
  s->out_off = s->out.n = 0;
  if (s->out.cap > 4 * SESSION_HIGH_WATER) hc_buf_free(&s->out);
  want_write(s, 0);
  hc_session_update_read(s);
}

/* }===== */

/* {===== input ===== */

/* Reading pauses for backpressure, draining and exits. A paused pipe is unwatched outright:
** epoll reports a hang-up even with no events asked for, and that would spin the loop. */
void hc_session_update_read(hc_session *s) {
  if (s->kind != HC_SESSION_FD || s->dead) return;
  size_t pending = s->out.n - s->out_off;
  int pause = s->eof || s->exiting || s->rt->stopping || pending > SESSION_HIGH_WATER ||
              (s->paused && pending > SESSION_LOW_WATER);
  if (pause == s->paused && (pause || s->win.registered)) return;
  s->paused = pause;
  hc_loop *loop = &s->rt->loop;
  if (s->in_fd != s->out_fd) {
    if (pause) hc_loop_unwatch(loop, &s->win);
    else if (hc_loop_watch(loop, &s->win, EPOLLIN)) s->dead = 1;
    return;
  }
  uint32_t ev = (pause ? 0 : EPOLLIN) | (pending ? EPOLLOUT : 0);
  if (hc_loop_rewatch(loop, &s->win, ev)) s->dead = 1;
}

static void answer_frame_error(hc_session *s, int code, const char *msg, const char *limit,
                               size_t bytes_in) {
  hc_buf *b = &s->rt->scratch;
  hc_buf_reset(b);
  hc_rpc_error(b, "null", 4, code, msg, NULL, limit);
  frame_out(s, b->p, b->n);
  hc_audit(s->rt, s, "null", 4, NULL, code, NULL, limit, s->rt->loop.now_us, bytes_in, b->n);
}

static void cancel_request(hc_session *s, hc_batch *b, const hc_rpc_req *r) {
  const char *id;
  size_t id_len;
  if (hc_rpc_params_id(r->params, r->params_len, &id, &id_len) == 0) {
    for (hc_task *k = s->tasks; k; k = k->next) {
      if (k->has_id && k->id_len == id_len && memcmp(k->id, id, id_len) == 0) {
        hc_task_cancel(k, HC_E_CANCELLED, NULL, "request cancelled");
        break;
      }
    }
  }
  size_t out = 0;
  if (r->has_id) {   /* sent as a request rather than a notification: acknowledge it */
    hc_buf *buf = &s->rt->scratch;
    hc_buf_reset(buf);
    hc_rpc_result_open(buf, r->id, r->id_len);
    hc_buf_add(buf, "{}}", 3);
    out = buf->n;
    hc_session_answer(s, b, buf->p, buf->n);
  }
  hc_audit(s->rt, s, r->id, r->id_len, r->method, 0, NULL, NULL, s->rt->loop.now_us, r->span_len,
           out);
}

static void handle_request(hc_session *s, hc_batch *b, const hc_rpc_req *r) {
  if (r->invalid) {
    hc_buf *buf = &s->rt->scratch;
    hc_buf_reset(buf);
    hc_rpc_error(buf, r->id, r->id_len, HC_E_INVALID, r->why, NULL, NULL);
    hc_session_answer(s, b, buf->p, buf->n);
    hc_audit(s->rt, s, r->id, r->id_len, r->method_len ? r->method : NULL, HC_E_INVALID, NULL,
             NULL, s->rt->loop.now_us, r->span_len, buf->n);
    return;
  }
  if (r->method_unknown) {   /* too long, or with a NUL: no method can have that name */
    hc_buf *buf = &s->rt->scratch;
    size_t out = 0;
    hc_buf_reset(buf);
    if (r->has_id) {
      hc_rpc_error(buf, r->id, r->id_len, HC_E_NOMETHOD, "method not found", NULL, NULL);
      out = buf->n;
      hc_session_answer(s, b, buf->p, buf->n);
    }
    hc_audit(s->rt, s, r->id, r->id_len, NULL, HC_E_NOMETHOD, NULL, NULL, s->rt->loop.now_us,
             r->span_len, out);
    return;
  }
  if (strcmp(r->method, "$/cancelRequest") == 0) {
    cancel_request(s, b, r);
    return;
  }
  hc_task_start(s, b, r);
}

void hc_session_frame(hc_session *s, const char *frame, size_t len) {
  hc_rpc_req one, *many = NULL;
  size_t count = 0;
  const char *err = NULL;
  char msg[160];
  s->last_active = s->rt->loop.now_us;
  switch (hc_rpc_parse_with(frame, len, &s->rt->rpc_scratch, &one, &many, &count, &err)) {
    case HC_RPC_PARSE_ERROR:
      snprintf(msg, sizeof msg, "parse error: %s", err);
      answer_frame_error(s, HC_E_PARSE, msg, NULL, len);
      return;
    case HC_RPC_NOMEM:
      answer_frame_error(s, HC_E_LIMIT, "out of memory parsing the request", "memory", len);
      return;
    case HC_RPC_SINGLE:
      handle_request(s, NULL, &one);
      return;
    case HC_RPC_BATCH:
      break;
  }
  if (count == 0) {
    answer_frame_error(s, HC_E_INVALID, "empty batch", NULL, len);
    return;
  }
  hc_batch *b = calloc(1, sizeof *b);
  if (!b) {
    free(many);
    answer_frame_error(s, HC_E_LIMIT, "out of memory starting the batch", "memory", len);
    return;
  }
  b->s = s;
  b->pending = 1;   /* held until every request of the batch has started */
  for (size_t i = 0; i < count && !s->dead; i++) handle_request(s, b, &many[i]);
  free(many);
  if (--b->pending == 0) {
    if (b->answers) {
      hc_buf_addc(&b->out, ']');
      if (!b->out.oom) frame_out(s, b->out.p, b->out.n);
    }
    hc_buf_free(&b->out);
    free(b);
  }
}

static void process_input(hc_session *s) {
  const char *f;
  size_t n;
  for (;;) {
    if (s->dead || s->exiting) return;
    switch (hc_framer_next(&s->fr, &f, &n)) {
      case HC_FRAME_NONE: return;
      case HC_FRAME_OK: hc_session_frame(s, f, n); break;
      case HC_FRAME_OVERSIZE:
        answer_frame_error(s, HC_E_LIMIT, "request larger than limits.request_bytes", "size",
                           s->fr.event_bytes);
        break;
      case HC_FRAME_BAD: {
        char msg[160];
        snprintf(msg, sizeof msg, "parse error: %s", s->fr.msg);
        answer_frame_error(s, HC_E_PARSE, msg, NULL, s->fr.event_bytes);
        break;
      }
      case HC_FRAME_FATAL: {
        char msg[160];
        snprintf(msg, sizeof msg, "parse error: %s; closing the session", s->fr.msg);
        answer_frame_error(s, HC_E_PARSE, msg, NULL, hc_framer_pending(&s->fr));
        s->eof = 1;
        hc_session_update_read(s);
        return;
      }
    }
  }
}

static void session_read(hc_session *s) {
  char *space = hc_framer_space(&s->fr, SESSION_READ_CHUNK);
  if (!space) {
    answer_frame_error(s, HC_E_LIMIT, "out of memory reading the request", "memory", 0);
    s->eof = 1;
    hc_session_update_read(s);
    return;
  }
  ssize_t r = read(s->in_fd, space, SESSION_READ_CHUNK);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (r <= 0) {
    const char *f;
    size_t n;
    switch (hc_framer_eof(&s->fr, &f, &n)) {
      case HC_FRAME_OK: hc_session_frame(s, f, n); break;
      case HC_FRAME_OVERSIZE:
        answer_frame_error(s, HC_E_LIMIT, "request larger than limits.request_bytes", "size",
                           s->fr.event_bytes);
        break;
      default: break;
    }
    s->eof = 1;
    hc_session_update_read(s);
    hc_session_mark_dirty(s);
    return;
  }
  hc_framer_commit(&s->fr, (size_t)r);
  process_input(s);
  hc_session_update_read(s);
}

static void session_on_io(hc_loop *loop, hc_watch *w, uint32_t revents) {
  (void)loop;
  hc_session *s = w->data;
  if (s->dead) return;
  if (w == &s->wout || (revents & EPOLLOUT)) hc_session_flush(s);
  if (w == &s->wout || s->dead) return;
  if (!s->paused && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
    session_read(s);
  } else if (revents & (EPOLLHUP | EPOLLERR)) {
    /* A socket hung up both ways while paused: no answer can reach the guest any more. */
    hc_session_close(s);
  }
}

/* }===== */

static void session_idle(hc_loop *loop, hc_timer *tm) {
  hc_session *s = tm->data;
  uint64_t limit = (uint64_t)s->t->limits.idle_ms * 1000u;
  if (s->inflight == 0 && loop->now_us - s->last_active >= limit) {
    hc_log(s->rt, "session %llu: closed after %lld ms idle", (unsigned long long)s->id,
           (long long)s->t->limits.idle_ms);
    hc_session_close(s);
    return;
  }
  uint64_t base = s->inflight ? loop->now_us : s->last_active;
  hc_loop_timer_start(loop, &s->idle, base + limit);
}

hc_session *hc_session_new(hc_runtime *rt, hc_tenant *t, int kind, int in_fd, int out_fd, int owns_fd) {
  hc_session *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->rt = rt;
  s->t = t ? t : rt->tenant;
  s->t->refs++;
  s->id = ++rt->next_session;
  s->kind = kind;
  s->in_fd = in_fd;
  s->out_fd = out_fd;
  s->owns_fd = owns_fd;
  s->last_active = hc_now_us();
  hc_framer_init(&s->fr, rt->cfg.framing, (size_t)s->t->limits.request_bytes);
  s->idle.cb = session_idle;
  s->idle.data = s;
  if (kind == HC_SESSION_FD) {
    struct stat st;
    s->out_is_sock = fstat(out_fd, &st) == 0 && S_ISSOCK(st.st_mode);
    s->win.fd = in_fd;
    s->win.cb = session_on_io;
    s->win.data = s;
    s->wout.fd = out_fd;
    s->wout.cb = session_on_io;
    s->wout.data = s;
    int fl = fcntl(in_fd, F_GETFL);
    s->in_flags = fl;
    s->out_flags = out_fd != in_fd ? fcntl(out_fd, F_GETFL) : fl;
    if (fl < 0 || fcntl(in_fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        hc_loop_watch(&rt->loop, &s->win, EPOLLIN) < 0) {
      hc_framer_free(&s->fr);
      free(s);
      return NULL;
    }
    if (out_fd != in_fd && s->out_flags >= 0) fcntl(out_fd, F_SETFL, s->out_flags | O_NONBLOCK);
    if (s->t->limits.idle_ms > 0)
      hc_loop_timer_start(&rt->loop, &s->idle, s->last_active + (uint64_t)s->t->limits.idle_ms * 1000u);
    s->t->nsessions++;
  }
  s->next = rt->sessions;
  if (rt->sessions) rt->sessions->prev = s;
  rt->sessions = s;
  return s;
}

int hc_session_done(const hc_session *s) {
  if (s->dead) return 1;
  return (s->eof || s->exiting || s->rt->stopping) && s->inflight == 0 && s->out.n == s->out_off;
}

void hc_session_close(hc_session *s) {
  if (s->dead) return;
  hc_runtime *rt = s->rt;
  while (s->tasks) hc_task_discard(s->tasks);
  hc_fsapi_session_close(s);
  s->dead = 1;
  hc_loop_unwatch(&rt->loop, &s->win);
  hc_loop_unwatch(&rt->loop, &s->wout);
  hc_loop_timer_stop(&rt->loop, &s->idle);
  if (s->owns_fd) {
    close(s->in_fd);
  } else if (s->kind == HC_SESSION_FD) {   /* give the caller its fds back as they were */
    fcntl(s->in_fd, F_SETFL, s->in_flags);
    if (s->out_fd != s->in_fd) fcntl(s->out_fd, F_SETFL, s->out_flags);
  }
  if (s->kind == HC_SESSION_FD) s->t->nsessions--;
  if (s->prev) s->prev->next = s->next;
  else rt->sessions = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = rt->reap;
  rt->reap = s;
}

void hc_sessions_flush_dirty(hc_runtime *rt) {
  while (rt->dirty) {
    hc_session *s = rt->dirty;
    rt->dirty = s->next_dirty;
    s->dirty = 0;
    if (s->dead) continue;
    hc_session_flush(s);
    if (!s->dead && s->owns_fd && hc_session_done(s)) hc_session_close(s);
  }
}

void hc_sessions_reap(hc_runtime *rt) {
  hc_session **pp = &rt->reap;
  while (*pp) {
    hc_session *s = *pp;
    if (s->keep_alive) { pp = &s->next; continue; }
    *pp = s->next;
    hc_framer_free(&s->fr);
    hc_buf_free(&s->out);
    hc_tenant_unref(rt, s->t);
    free(s);
  }
}
