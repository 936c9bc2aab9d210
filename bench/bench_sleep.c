/*
** bench_sleep.c: do waiting calls hold up the others?
**
** On one connection to a hostcall socket: 100 requests sys.sleep {"ms":100} (ids 1..100),
** then one sys.ping (id 101), written back to back. Measured from just before the first write:
** when the ping's answer arrives, when the last of the 100 sleeps is answered (ideally ~100 ms:
** they all sleep at once), and whether the ping was answered before any sleep.
**
** usage: bench_sleep PATH [--count N] [--ms MS]
** stdout: "ping_ms=.. sleeps_ms=.. ping_first=yes|no sleeps=N errors=N"
** Exit status 1 on a failure (an error response, a missing answer, 10 s without progress).
*/
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_COUNT 10000
#define TIMEOUT_S 10.0

static double now_s(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
    perror("bench_sleep: clock_gettime");
    exit(1);
  }
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die_errno(const char *what) {
  fprintf(stderr, "bench_sleep: %s: %s\n", what, strerror(errno));
  exit(1);
}

int main(int argc, char **argv) {
  const char *path = NULL;
  int count = 100, ms = 100;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) count = atoi(argv[++i]);
    else if (strcmp(argv[i], "--ms") == 0 && i + 1 < argc) ms = atoi(argv[++i]);
    else if (argv[i][0] != '-' && !path) path = argv[i];
    else path = NULL, i = argc;
  }
  if (!path || count < 1 || count > MAX_COUNT || ms < 0 || ms > 60000) {
    fprintf(stderr, "usage: bench_sleep PATH [--count N] [--ms MS]\n");
    return 2;
  }

  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) { fprintf(stderr, "bench_sleep: path too long\n"); return 1; }
  memcpy(sa.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die_errno("socket");
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die_errno("connect");

  /* All the requests in one buffer, so they arrive together. */
  size_t cap = (size_t)count * 96 + 128, len = 0;
  char *req = malloc(cap);
  if (!req) die_errno("malloc");
  for (int i = 1; i <= count; i++) {
    int k = snprintf(req + len, cap - len,
                     "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"sys.sleep\",\"params\":{\"ms\":%d}}\n",
                     i, ms);
    if (k < 0 || (size_t)k >= cap - len) { fprintf(stderr, "bench_sleep: buffer\n"); return 1; }
    len += (size_t)k;
  }
  int ping_id = count + 1;
  int k = snprintf(req + len, cap - len,
                   "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"sys.ping\",\"params\":{}}\n", ping_id);
  if (k < 0 || (size_t)k >= cap - len) { fprintf(stderr, "bench_sleep: buffer\n"); return 1; }
  len += (size_t)k;

  double t0 = now_s();
  for (size_t off = 0; off < len;) {
    ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) die_errno("send");
    off += (size_t)w;
  }
  free(req);

  /* Read answers line by line; pick the id out of each. */
  char buf[1 << 16];
  size_t have = 0;
  int sleeps = 0, errors = 0, ping_seen = 0, sleeps_before_ping = 0;
  double t_ping = -1, t_sleeps = -1;
  while (sleeps < count || !ping_seen) {
    double left = TIMEOUT_S - (now_s() - t0);
    if (left <= 0) {
      fprintf(stderr, "bench_sleep: timed out: %d of %d sleeps answered, ping %s\n", sleeps, count,
              ping_seen ? "answered" : "not answered");
      return 1;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int pr = poll(&p, 1, (int)(left * 1000) + 1);
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) die_errno("poll");
    if (pr == 0) continue;
    ssize_t r = recv(fd, buf + have, sizeof buf - 1 - have, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die_errno("recv");
    if (r == 0) { fprintf(stderr, "bench_sleep: the server closed the connection\n"); return 1; }
    double t = now_s();
    have += (size_t)r;
    buf[have] = '\0';
    char *line = buf, *nl;
    while ((nl = memchr(line, '\n', have - (size_t)(line - buf)))) {
      *nl = '\0';
      const char *idp = strstr(line, "\"id\":");
      int id = idp ? atoi(idp + 5) : -1;
      if (strstr(line, "\"error\"")) {
        errors++;
        if (errors <= 3) fprintf(stderr, "bench_sleep: error answer: %.300s\n", line);
      }
      if (id == ping_id) {
        ping_seen = 1;
        t_ping = t - t0;
        sleeps_before_ping = sleeps;
      } else if (id >= 1 && id <= count) {
        if (++sleeps == count) t_sleeps = t - t0;
      } else {
        fprintf(stderr, "bench_sleep: answer with an unexpected id: %.300s\n", line);
        return 1;
      }
      line = nl + 1;
    }
    have -= (size_t)(line - buf);
    memmove(buf, line, have);
    if (have == sizeof buf - 1) { fprintf(stderr, "bench_sleep: answer too long\n"); return 1; }
  }
  if (close(fd) != 0) die_errno("close");
  printf("ping_ms=%.2f sleeps_ms=%.2f ping_first=%s sleeps=%d errors=%d\n", t_ping * 1000,
         t_sleeps * 1000, sleeps_before_ping == 0 ? "yes" : "no", sleeps, errors);
  return errors ? 1 : 0;
}
