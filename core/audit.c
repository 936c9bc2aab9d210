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

void hc_audit(hc_runtime *rt, hc_session *s, const char *id, size_t id_len, const char *method,
              int code, const char *errno_name, const char *limit, uint64_t start_us,
              size_t bytes_in, size_t bytes_out) {
  if (rt->cfg.audit_fd < 0 && !rt->cfg.audit) return;
  hc_buf *b = &rt->audit;
  size_t mark = b->n;
  char tmp[160];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int k = snprintf(tmp, sizeof tmp, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\",\"tenant\":",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                   tm.tm_sec, ts.tv_nsec / 1000);
  hc_buf_add(b, tmp, (size_t)k);
  const char *tenant = s->t->name ? s->t->name : "";
  hc_json_add_string(b, tenant, strlen(tenant));
  k = snprintf(tmp, sizeof tmp, ",\"session\":%llu,\"id\":", (unsigned long long)s->id);
  hc_buf_add(b, tmp, (size_t)k);
  hc_buf_add(b, id, id_len);
  hc_buf_adds(b, ",\"method\":");
  if (method) hc_json_add_string(b, method, strlen(method));
  else hc_buf_adds(b, "null");
  if (code) k = snprintf(tmp, sizeof tmp, ",\"outcome\":%d", code);
  else k = snprintf(tmp, sizeof tmp, ",\"outcome\":\"ok\"");
  hc_buf_add(b, tmp, (size_t)k);
  if (errno_name) {
    hc_buf_adds(b, ",\"errno\":");
    hc_json_add_string(b, errno_name, strlen(errno_name));
  }
  if (limit) {
    hc_buf_adds(b, ",\"limit\":");
    hc_json_add_string(b, limit, strlen(limit));
  }
  uint64_t now = hc_now_us();
  k = snprintf(tmp, sizeof tmp, ",\"us\":%llu,\"bytes_in\":%zu,\"bytes_out\":%zu}\n",
               (unsigned long long)(now > start_us ? now - start_us : 0), bytes_in, bytes_out);
  hc_buf_add(b, tmp, (size_t)k);
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
