/*
** bench_net: echo round trips through the runtime (net.connect once, then io.write + io.read of
** 64 bytes per round trip, each an hc_call) beside a direct C client doing write + read on its
** own connection to the same loopback echo server, in the same run. Target (issue 5): the
** runtime at least 30 % of the direct client's round trips per second.
**
** usage: bench_net [ROUNDS]   (interleaved rounds of 0.3 s each; the median is reported)
*/
#include "hostcall.h"
#include "base64.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* {===== the echo server: one thread per connection (the reference's and the runtime's) ===== */

static void *echo_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(fd, buf + off, (size_t)(n - off));
      if (w <= 0) { close(fd); return NULL; }
      off += w;
    }
  }
  close(fd);
  return NULL;
}

static void *echo_server(void *arg) {
  int ls = (int)(intptr_t)arg;
  for (;;) {
    int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) { if (errno == EINTR) continue; break; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_t t;
    if (pthread_create(&t, NULL, echo_conn, (void *)(intptr_t)fd) == 0) pthread_detach(t);
    else close(fd);
  }
  return NULL;
}

/* }===== */

static double direct_loop(int port, double secs) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { perror("connect"); exit(1); }
  char msg[64], back[64];
  memset(msg, 'm', sizeof msg);
  long n = 0;
  double t0 = now_s(), t;
  do {
    for (int i = 0; i < 64; i++) {
      if (write(fd, msg, sizeof msg) != (ssize_t)sizeof msg) { perror("write"); exit(1); }
      size_t got = 0;
      while (got < sizeof back) {
        ssize_t r = read(fd, back + got, sizeof back - got);
        if (r <= 0) { perror("read"); exit(1); }
        got += (size_t)r;
      }
    }
    n += 64;
    t = now_s();
  } while (t - t0 < secs);
  close(fd);
  return (t - t0) / (double)n;
}

static void call_ok(hc_runtime *rt, const char *req, const char *expect, char *out, size_t cap) {
  char *resp;
  size_t rl;
  if (hc_call(rt, req, strlen(req), &resp, &rl) != 0 || !resp || !strstr(resp, expect)) {
    fprintf(stderr, "bench_net: unexpected answer to %s: %s\n", req, resp ? resp : "(none)");
    exit(1);
  }
  if (out) snprintf(out, cap, "%s", resp);
  hc_free(resp);
}

static double runtime_loop(hc_runtime *rt, const char *handle, double secs) {
  char wr[256], rd[256];
  unsigned char msg[64];
  char B64[HC_BASE64_ENCODED_LEN(64) + 1];
  memset(msg, 'm', sizeof msg);
  B64[hc_base64_encode(msg, sizeof msg, B64)] = '\0';
  snprintf(wr, sizeof wr, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"io.write\",\"params\":{\"handle\":\"%s\",\"data\":\"%s\"}}", handle, B64);
  snprintf(rd, sizeof rd, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"io.read\",\"params\":{\"handle\":\"%s\",\"length\":64,\"timeout_ms\":5000}}", handle);
  long n = 0;
  double t0 = now_s(), t;
  do {
    for (int i = 0; i < 64; i++) {
      call_ok(rt, wr, "\"bytes_written\":64", NULL, 0);
      /* the echo may come back in pieces: read until all 64 bytes are back */
      int got = 0;
      while (got < 64) {
        char *resp;
        size_t rl;
        if (hc_call(rt, rd, strlen(rd), &resp, &rl) != 0 || !resp) exit(1);
        char *p = strstr(resp, "\"bytes_read\":");
        if (!p) { fprintf(stderr, "bench_net: %s\n", resp); exit(1); }
        got += atoi(p + 13);
        hc_free(resp);
      }
    }
    n += 64;
    t = now_s();
  } while (t - t0 < secs);
  return (t - t0) / (double)n;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 5;
  if (rounds < 1 || rounds > 32) rounds = 5;
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  if (bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 64) != 0 ||
      getsockname(ls, (struct sockaddr *)&sa, &sl) != 0) { perror("listen"); return 1; }
  int port = ntohs(sa.sin_port);
  pthread_t srv;
  pthread_create(&srv, NULL, echo_server, (void *)(intptr_t)ls);
  pthread_detach(srv);

  char pol[256];
  snprintf(pol, sizeof pol, "return { methods = { 'net.*', 'io.*' }, net = { allow = { '127.0.0.1:%d' } } }", port);
  hc_config cfg;
  hc_config_init(&cfg);
  char *err = NULL;
  hc_runtime *rt = hc_runtime_new_string(pol, strlen(pol), "bench.lua", &cfg, &err);
  if (!rt) { fprintf(stderr, "bench_net: %s\n", err); return 1; }
  char req[256], resp[1024];
  snprintf(req, sizeof req, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"net.connect\",\"params\":{\"host\":\"127.0.0.1\",\"port\":%d}}", port);
  call_ok(rt, req, "\"handle\":\"", resp, sizeof resp);
  char handle[32];
  snprintf(handle, sizeof handle, "%.17s", strstr(resp, "\"handle\":\"") + 10);
  snprintf(req, sizeof req, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"net.setopt\",\"params\":{\"handle\":\"%s\",\"nodelay\":true}}", handle);
  call_ok(rt, req, "\"result\"", NULL, 0);

  double direct[32], viart[32], ratio[32];
  for (int k = 0; k < rounds; k++) {
    direct[k] = direct_loop(port, 0.3);
    viart[k] = runtime_loop(rt, handle, 0.3);
    ratio[k] = direct[k] / viart[k];
  }
  qsort(direct, (size_t)rounds, sizeof(double), cmp);
  qsort(viart, (size_t)rounds, sizeof(double), cmp);
  qsort(ratio, (size_t)rounds, sizeof(double), cmp);
  int m = rounds / 2;
  printf("-- echo round trips, 64 bytes, loopback (median of %d interleaved rounds)\n", rounds);
  printf("   direct C client (write + read)           %.2f us/round trip (%.0f/s)\n", direct[m] * 1e6, 1 / direct[m]);
  printf("   runtime: hc_call io.write + io.read      %.2f us/round trip (%.0f/s)\n", viart[m] * 1e6, 1 / viart[m]);
  printf("   => %.0f%% of the direct client's round trips per second (target >= 30%%)\n", ratio[m] * 100);
  printf("RESULT direct_us=%.2f runtime_us=%.2f ratio=%.3f\n", direct[m] * 1e6, viart[m] * 1e6, ratio[m]);
  hc_runtime_free(rt);
  return 0;
}
