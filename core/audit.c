/*
** audit.c: one JSON line per call (contract section 10), and the runtime's log messages.
*/
#include "internal.h"
#include "json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AUDIT_FLUSH_BYTES 65536

static void write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t r = write(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;   /* an audit sink that fails must not stop the calls */
    p += r;
    n -= (size_t)r;
  }
}

void hc_audit_flush(hc_runtime *rt) {
  if (rt->audit.n && rt->cfg.audit_fd >= 0) write_all(rt->cfg.audit_fd, rt->audit.p, rt->audit.n);
  hc_buf_reset(&rt->audit);
}

/* Decimal digits of v, written backwards from end; returns the start. */
static char *u64_digits(char *end, uint64_t v) {
  do { *--end = (char)('0' + v % 10); v /= 10; } while (v);
  return end;
}

static void add_u64(hc_buf *b, uint64_t v) {
  char tmp[24];
  char *p = u64_digits(tmp + sizeof tmp, v);
  hc_buf_add(b, p, (size_t)(tmp + sizeof tmp - p));
}

static void add_int(hc_buf *b, int v) {
  if (v < 0) { hc_buf_addc(b, '-'); add_u64(b, (uint64_t)-(int64_t)v); }
  else add_u64(b, (uint64_t)v);
}

/* The "YYYY-MM-DDTHH:MM:SS" part changes once a second: format it then, not per line. */
static void add_timestamp(hc_runtime *rt, hc_buf *b) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != rt->audit_sec) {
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(rt->audit_stamp, sizeof rt->audit_stamp, "%04d-%02d-%02dT%02d:%02d:%02d",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    rt->audit_sec = ts.tv_sec;
  }
  char frac[8] = {'.', '0', '0', '0', '0', '0', '0', 'Z'};
  long us = ts.tv_nsec / 1000;
  for (int i = 6; i >= 1; i--) { frac[i] = (char)('0' + us % 10); us /= 10; }
  hc_buf_adds(b, rt->audit_stamp);
  hc_buf_add(b, frac, sizeof frac);
}

void hc_audit(hc_runtime *rt, hc_session *s, const char *id, size_t id_len, const char *method,
              int code, const char *errno_name, const char *limit, uint64_t start_us,
              size_t bytes_in, size_t bytes_out) {
  uint64_t now = hc_now_us();
  if (s->t->stats) hc_stats_record(s->t->stats, code, now > start_us ? now - start_us : 0);
  if (rt->cfg.audit_fd < 0 && !rt->cfg.audit) return;
  hc_buf *b = &rt->audit;
  size_t mark = b->n;
  hc_buf_add(b, "{\"ts\":\"", 7);
  add_timestamp(rt, b);
  hc_buf_add(b, "\",\"tenant\":", 11);
  const char *tenant = s->t->name ? s->t->name : "";
  hc_json_add_string(b, tenant, strlen(tenant));
  hc_buf_add(b, ",\"session\":", 11);
  add_u64(b, s->id);
  hc_buf_add(b, ",\"id\":", 6);
  hc_buf_add(b, id, id_len);
  hc_buf_add(b, ",\"method\":", 10);
  if (method) hc_json_add_string(b, method, strlen(method));
  else hc_buf_add(b, "null", 4);
  if (code) {
    hc_buf_add(b, ",\"outcome\":", 11);
    add_int(b, code);
  } else {
    hc_buf_add(b, ",\"outcome\":\"ok\"", 15);
  }
  if (errno_name) {
    hc_buf_add(b, ",\"errno\":", 9);
    hc_json_add_string(b, errno_name, strlen(errno_name));
  }
  if (limit) {
    hc_buf_add(b, ",\"limit\":", 9);
    hc_json_add_string(b, limit, strlen(limit));
  }
  hc_buf_add(b, ",\"us\":", 6);
  add_u64(b, now > start_us ? now - start_us : 0);
  hc_buf_add(b, ",\"bytes_in\":", 12);
  add_u64(b, bytes_in);
  hc_buf_add(b, ",\"bytes_out\":", 13);
  add_u64(b, bytes_out);
  hc_buf_add(b, "}\n", 2);
  if (b->oom) { hc_buf_reset(b); return; }
  if (rt->cfg.audit) {
    rt->cfg.audit(rt->cfg.audit_ud, b->p + mark, b->n - mark - 1);
    b->n = mark;
  } else if (b->n >= AUDIT_FLUSH_BYTES) {
    hc_audit_flush(rt);
  }
}

void hc_log(hc_runtime *rt, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (rt->cfg.log) {
    rt->cfg.log(rt->cfg.log_ud, msg);
    return;
  }
  char line[1100];
  int k = snprintf(line, sizeof line, "hostcall: %s\n", msg);
  if (k > 0) write_all(2, line, (size_t)k < sizeof line ? (size_t)k : sizeof line - 1);
}
