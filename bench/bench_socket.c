/*
** bench_socket.c: pipelined JSON-RPC throughput of an NDJSON server on a unix socket.
**
** One connection. Requests {"jsonrpc":"2.0","id":K,"method":"sys.ping","params":{}} (K counts
** up) are written while fewer than `window` are outstanding; responses are counted by their
** newlines. Non-blocking socket and poll(2). After a warm-up, requests/second over a fixed
** duration is reported. A window of 1 is latency-bound: one round trip at a time.
**
** --request JSON sends another request instead of sys.ping: JSON is one request on one line
** (no newline) that contains `"id":0` exactly once; each request gets the counter in place of
** that 0. The first-answer check (byte for byte, for sys.ping) is then replaced by
** --expect-substring S (repeatable, at most 8): every response line must contain every S, or
** the run fails. Either way any `"error"` in a response fails the run.
**
** usage: bench_socket PATH [--window N] [--duration-ms MS] [--warmup-ms MS]
**                          [--request JSON] [--expect-substring S]...
** stdout: one line "rps=<requests/s> window=<N> responses=<count> total=<count> errors=<count>"
** (responses: in the measured window; total: since the connection, warm-up included).
** Exit status 1 on any failure (connection refused or closed, an error response, no progress).
*/
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define WBUF_CAP (1u << 20)
#define RBUF_CAP 65536
#define STALL_S 5.0   /* no response for this long: the server is stuck */

static double now_s(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
    perror("bench_socket: clock_gettime");
    exit(1);
  }
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die_errno(const char *what) {
  fprintf(stderr, "bench_socket: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int connect_unix(const char *path) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) {
    fprintf(stderr, "bench_socket: socket path too long\n");
    exit(1);
  }
  memcpy(sa.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) die_errno("socket");
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die_errno("connect");
  return fd;
}

/* The request, split around its id: head ends with `"id":`, tail ends with "\n". */
static const char *req_head = "{\"jsonrpc\":\"2.0\",\"id\":";
static const char *req_tail = ",\"method\":\"sys.ping\",\"params\":{}}\n";
static size_t head_len, tail_len;

/* Split a --request template at its `"id":0`; 0 on success. */
static int set_template(const char *tpl) {
  static const char key[] = "\"id\":0";
  const char *at = strstr(tpl, key);
  if (!at || strstr(at + 1, key) || strchr(tpl, '\n')) return -1;
  const char *after = at + sizeof key - 1;
  if (*after >= '0' && *after <= '9') return -1;   /* "id":07 is not a template */
  size_t hl = (size_t)(after - 1 - tpl), tl = strlen(after);
  char *h = malloc(hl + 1), *t = malloc(tl + 2);
  if (!h || !t) return -1;
  memcpy(h, tpl, hl);
  h[hl] = '\0';
  memcpy(t, after, tl);
  t[tl] = '\n';
  t[tl + 1] = '\0';
  req_head = h;
  req_tail = t;
  return 0;
}

/* Append one request with id `id`; returns its length. */
static size_t put_request(char *dst, uint64_t id) {
  char digits[24];
  int nd = 0;
  do { digits[nd++] = (char)('0' + id % 10); id /= 10; } while (id);
  size_t k = 0;
  memcpy(dst, req_head, head_len);
  k += head_len;
  while (nd) dst[k++] = digits[--nd];
  memcpy(dst + k, req_tail, tail_len);
  return k + tail_len;
}

/* --expect-substring: each response line is assembled here and checked whole. */
#define MAX_EXPECT 8
static const char *expect[MAX_EXPECT];
static int n_expect;
static char *line;
static size_t line_len, line_cap;

/* Check one complete response line (without its newline); counts failures into *errors. */
static void check_line(const char *s, size_t n, uint64_t *errors) {
  int ok = memmem(s, n, "\"error\"", 7) == NULL;
  for (int i = 0; ok && i < n_expect; i++) ok = memmem(s, n, expect[i], strlen(expect[i])) != NULL;
  if (!ok) {
    if (!*errors) fprintf(stderr, "bench_socket: unexpected answer: %.*s\n", (int)(n < 300 ? n : 300), s);
    (*errors)++;
  }
}

/* Feed received bytes into the line assembler; returns the number of complete lines. */
static uint64_t feed_lines(const char *p, size_t n, uint64_t *errors) {
  uint64_t lines = 0;
  const char *e = p + n;
  while (p < e) {
    const char *nl = memchr(p, '\n', (size_t)(e - p));
    size_t seg = (size_t)((nl ? nl : e) - p);
    if (nl && line_len == 0) {
      check_line(p, seg, errors);   /* whole line inside this read: no copy */
    } else {
      if (line_len + seg > line_cap) {
        line_cap = (line_len + seg) * 2;
        line = realloc(line, line_cap);
        if (!line) die_errno("realloc");
      }
      memcpy(line + line_len, p, seg);
      line_len += seg;
      if (nl) {
        check_line(line, line_len, errors);
        line_len = 0;
      }
    }
    if (!nl) break;
    lines++;
    p = nl + 1;
  }
  return lines;
}

int main(int argc, char **argv) {
  const char *path = NULL;
  long window = 64;
  double duration = 2.0, warmup = 0.3;
  int custom = 0, bad = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--window") == 0 && i + 1 < argc) window = atol(argv[++i]);
    else if (strcmp(argv[i], "--duration-ms") == 0 && i + 1 < argc) duration = atof(argv[++i]) / 1000;
    else if (strcmp(argv[i], "--warmup-ms") == 0 && i + 1 < argc) warmup = atof(argv[++i]) / 1000;
    else if (strcmp(argv[i], "--request") == 0 && i + 1 < argc) {
      custom = 1;
      if (set_template(argv[++i]) != 0) {
        fprintf(stderr, "bench_socket: --request needs one line containing \"id\":0 exactly once\n");
        return 2;
      }
    } else if (strcmp(argv[i], "--expect-substring") == 0 && i + 1 < argc && n_expect < MAX_EXPECT &&
               argv[i + 1][0])
      expect[n_expect++] = argv[++i];
    else if (argv[i][0] != '-' && !path) path = argv[i];
    else bad = 1, i = argc;
  }
  if (bad || !path || window < 1 || window > 100000 || !(duration > 0) || warmup < 0) {
    fprintf(stderr, "usage: bench_socket PATH [--window N] [--duration-ms MS] [--warmup-ms MS]\n"
                    "                    [--request JSON] [--expect-substring S]...\n");
    return 2;
  }
  head_len = strlen(req_head);
  tail_len = strlen(req_tail);
  size_t req_max = head_len + tail_len + 24;   /* the longest request, with a 20-digit id */
  if (req_max > WBUF_CAP / 4) {
    fprintf(stderr, "bench_socket: --request too long\n");
    return 2;
  }
  /* With --request, the sys.ping first-answer check does not apply; the lines are checked. */
  int by_line = n_expect > 0;

  int fd = connect_unix(path);
  char *wbuf = malloc(WBUF_CAP);
  char *rbuf = malloc(RBUF_CAP + 1);
  if (!wbuf || !rbuf) die_errno("malloc");
  size_t woff = 0, wlen = 0;        /* bytes of wbuf written / filled */
  uint64_t next_id = 1, queued = 0, received = 0, errors = 0;
  uint64_t base_received = 0;
  int checked_first = 0;
  double t_start = now_s(), t_measure = t_start + warmup, t_end = t_measure + duration;
  double t_last_progress = t_start;
  int measuring = warmup == 0;

  for (;;) {
    double t = now_s();
    if (!measuring && t >= t_measure) {
      measuring = 1;
      base_received = received;
      t_measure = t;
      t_end = t + duration;
    }
    if (measuring && t >= t_end) break;
    if (t - t_last_progress > STALL_S) {
      fprintf(stderr, "bench_socket: no response for %.0f s (%llu outstanding)\n", STALL_S,
              (unsigned long long)(queued - received));
      return 1;
    }

    /* Top up the window: queue requests into the write buffer. */
    if (woff == wlen) woff = wlen = 0;
    while (queued - received < (uint64_t)window && WBUF_CAP - wlen >= req_max) {
      wlen += put_request(wbuf + wlen, next_id++);
      queued++;
    }

    struct pollfd p = {.fd = fd, .events = POLLIN | (woff < wlen ? POLLOUT : 0)};
    int pr = poll(&p, 1, 100);
    if (pr < 0) {
      if (errno == EINTR) continue;
      die_errno("poll");
    }
    if (pr == 0) continue;
    if (p.revents & POLLNVAL) { fprintf(stderr, "bench_socket: POLLNVAL\n"); return 1; }

    if ((p.revents & POLLOUT) && woff < wlen) {
      ssize_t w = send(fd, wbuf + woff, wlen - woff, MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) die_errno("send");
      if (w > 0) woff += (size_t)w;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = recv(fd, rbuf, RBUF_CAP, 0);
      if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) die_errno("recv");
      if (r == 0) {
        fprintf(stderr, "bench_socket: the server closed the connection\n");
        return 1;
      }
      if (r > 0) {
        rbuf[r] = '\0';
        if (by_line) {
          received += feed_lines(rbuf, (size_t)r, &errors);
        } else {
          if (!checked_first && !custom) {
            checked_first = 1;
            if (strncmp(rbuf, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}", 36) != 0 &&
                strncmp(rbuf, "{\"jsonrpc\":\"2.0\",\"result\":{},\"id\":1}", 36) != 0) {
              fprintf(stderr, "bench_socket: unexpected first answer: %.200s\n", rbuf);
              return 1;
            }
          }
          for (const char *q = rbuf; (q = memmem(q, (size_t)(rbuf + r - q), "\"error\"", 7)); q += 7)
            errors++;
          for (const char *q = rbuf, *e = rbuf + r; (q = memchr(q, '\n', (size_t)(e - q))); q++)
            received++;
        }
        t_last_progress = now_s();
      }
    }
  }
  double elapsed = now_s() - t_measure;
  uint64_t n = received - base_received;
  if (close(fd) != 0) die_errno("close");
  free(wbuf);
  free(rbuf);
  free(line);
  printf("rps=%.0f window=%ld responses=%llu total=%llu errors=%llu\n", (double)n / elapsed,
         window, (unsigned long long)n, (unsigned long long)received, (unsigned long long)errors);
  if (errors) {
    fprintf(stderr, "bench_socket: %llu error%s responses\n", (unsigned long long)errors,
            n_expect ? " or unexpected" : "");
    return 1;
  }
  return n ? 0 : 1;
}
