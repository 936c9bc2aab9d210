/*
** test_net.c: the network primitives through the public C API, so that ASan and UBSan see them
** (the Lua specs run the plain build): listen/connect/accept, echo with io.write/io.read, eof
** after shutdown, timeouts, a handle closed under a waiting call, net.poll, UDP, a name resolved
** through the worker threads, http.fetch against a small server thread (chunked and redirects),
** and the session's sockets closed by hc_runtime_free.
**
** Runs with the repository as working directory: the shipped handlers come from handlers/.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hostcall.h"
#include "testutil.h"

static hc_runtime *rt;
static char last[8192];

/* One call; the answer is kept in `last`. */
static const char *call(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *call(const char *fmt, ...) {
  char req[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(req, sizeof req, fmt, ap);
  va_end(ap);
  char *resp = NULL;
  size_t rl;
  last[0] = '\0';
  if (hc_call(rt, req, strlen(req), &resp, &rl) == 0 && resp) snprintf(last, sizeof last, "%s", resp);
  hc_free(resp);
  return last;
}

static int has(const char *needle) {
  int ok = strstr(last, needle) != NULL;
  if (!ok) fprintf(stderr, "  missing %s in: %s\n", needle, last);
  return ok;
}

/* The value of "handle":"..." in the last answer. */
static void handle_of(char *out) {
  const char *p = strstr(last, "\"handle\":\"");
  snprintf(out, 18, "%s", p ? p + 10 : "");
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  bind(fd, (struct sockaddr *)&sa, sizeof sa);
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  close(fd);
  return ntohs(sa.sin_port);
}

/* {===== a tiny HTTP server thread: /chunked, /redirect, anything else 404 ===== */

static int http_fd;

static void *http_server(void *arg) {
  (void)arg;
  for (int n = 0; n < 4; n++) {
    int c = accept4(http_fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) break;
    char req[2048];
    size_t got = 0;
    while (got < sizeof req - 1 && !memmem(req, got, "\r\n\r\n", 4)) {
      ssize_t r = read(c, req + got, sizeof req - 1 - got);
      if (r <= 0) break;
      got += (size_t)r;
    }
    req[got] = '\0';
    const char *resp = strncmp(req, "GET /chunked ", 13) == 0
      ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
      : strncmp(req, "GET /redirect ", 14) == 0
      ? "HTTP/1.1 302 Found\r\nLocation: /chunked\r\nContent-Length: 0\r\n\r\n"
      : "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    ssize_t w = write(c, resp, strlen(resp));
    (void)w;
    close(c);
  }
  return NULL;
}

/* }===== */

TEST(tcp_echo_eof_timeouts_and_closing_under_a_wait) {
  char l[24], c[24], a[24];
  call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"net.listen\",\"params\":{\"addr\":\"127.0.0.1\",\"port\":%d}}", 0);
  /* port 0 is never reachable: a policy refusal */
  CHECK(has("EACCES"));
  int port = free_port();
  call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"net.listen\",\"params\":{\"addr\":\"127.0.0.1\",\"port\":%d}}", port);
  CHECK(has("\"handle\""));
  handle_of(l);
  call("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"net.connect\",\"params\":{\"host\":\"127.0.0.1\",\"port\":%d}}", port);
  CHECK(has("\"peer\":{"));
  handle_of(c);
  call("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"net.accept\",\"params\":{\"handle\":\"%s\",\"timeout_ms\":2000}}", l);
  CHECK(has("\"handle\""));
  handle_of(a);
  call("{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"io.write\",\"params\":{\"handle\":\"%s\",\"data\":\"aGVsbG8=\"}}", c);
  CHECK(has("\"bytes_written\":5"));
  call("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"io.read\",\"params\":{\"handle\":\"%s\",\"timeout_ms\":2000}}", a);
  CHECK(has("\"data\":\"aGVsbG8=\""));
  call("{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"io.read\",\"params\":{\"handle\":\"%s\",\"timeout_ms\":50}}", a);
  CHECK(has("ETIMEDOUT"));
  call("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"net.accept\",\"params\":{\"handle\":\"%s\",\"timeout_ms\":50}}", l);
  CHECK(has("ETIMEDOUT"));
  call("{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"net.shutdown\",\"params\":{\"handle\":\"%s\",\"how\":\"write\"}}", c);
  call("{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"io.read\",\"params\":{\"handle\":\"%s\",\"timeout_ms\":2000}}", a);
  CHECK(has("\"eof\":true"));
  /* a batch: one call waits to read, the next closes the handle under it: EBADF, no crash */
  call("[{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"io.read\",\"params\":{\"handle\":\"%s\",\"timeout_ms\":2000}},"
       "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"io.close\",\"params\":{\"handle\":\"%s\"}}]", c, c);
  CHECK(has("EBADF"));
  CHECK(has("\"id\":11,\"result\":{}"));
  /* refused before any packet */
  call("{\"jsonrpc\":\"2.0\",\"id\":14,\"method\":\"net.connect\",\"params\":{\"host\":\"0x7f.1\",\"port\":%d}}", 80);
  CHECK(has("EACCES"));
}

TEST(names_poll_and_udp) {
  int port = free_port();
  char u1[24], u2[24];
  call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"net.resolve\",\"params\":{\"host\":\"localhost\"}}");
  CHECK(has("\"addresses\":[\"127.0.0.1\"]") || has("\"::1\""));
  call("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"net.listen\",\"params\":{\"addr\":\"127.0.0.1\",\"port\":%d,\"transport\":\"udp\"}}", port);
  handle_of(u1);
  call("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"net.listen\",\"params\":{\"addr\":\"127.0.0.1\",\"port\":%d,\"transport\":\"udp\"}}", port + 1);
  handle_of(u2);
  call("{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"net.poll\",\"params\":{\"handles\":[{\"handle\":\"%s\",\"events\":[\"read\"]}],\"timeout_ms\":30}}", u2);
  CHECK(has("\"ready\":[]"));
  call("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"net.sendto\",\"params\":{\"handle\":\"%s\",\"data\":\"aGk=\",\"host\":\"localhost\",\"port\":%d}}", u1, port + 1);
  CHECK(has("\"bytes_sent\":2"));
  call("{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"net.poll\",\"params\":{\"handles\":[{\"handle\":\"%s\",\"events\":[\"read\"]}],\"timeout_ms\":2000}}", u2);
  CHECK(has("\"events\":[\"read\"]"));
  call("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"net.recvfrom\",\"params\":{\"handle\":\"%s\",\"timeout_ms\":2000}}", u2);
  CHECK(has("\"data\":\"aGk=\""));
  /* two readers at once on one socket: the second is EBUSY, the first times out */
  call("[{\"jsonrpc\":\"2.0\",\"id\":12,\"method\":\"io.read\",\"params\":{\"handle\":\"%s\",\"timeout_ms\":100}},"
       "{\"jsonrpc\":\"2.0\",\"id\":13,\"method\":\"io.read\",\"params\":{\"handle\":\"%s\",\"timeout_ms\":100}}]", u2, u2);
  CHECK(has("EBUSY"));
  CHECK(has("ETIMEDOUT"));
  call("{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"net.sendto\",\"params\":{\"handle\":\"%s\",\"data\":\"aGk=\",\"host\":\"127.0.0.2\",\"port\":%d}}", u1, port + 1);
  CHECK(has("EACCES"));
}

int main(void) {
  int port_http;
  {
    http_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (bind(http_fd, (struct sockaddr *)&sa, sizeof sa) || listen(http_fd, 8) ||
        getsockname(http_fd, (struct sockaddr *)&sa, &sl)) { perror("http server"); return 1; }
    port_http = ntohs(sa.sin_port);
  }
  pthread_t srv;
  pthread_create(&srv, NULL, http_server, NULL);
  char pol[1024];
  snprintf(pol, sizeof pol,
           "return { methods = { 'net.*', 'io.*', 'http.*' }, limits = { sockets = 16 },\n"
           "  net = { allow = { '127.0.0.1:1024-65535', 'localhost:1024-65535' }, listen = { '127.0.0.1:1024-65535' } },\n"
           "  http = { allow = { { url = 'http://127.0.0.1:%d/' } } } }", port_http);
  hc_config cfg;
  hc_config_init(&cfg);
  char *err = NULL;
  rt = hc_runtime_new_string(pol, strlen(pol), "net.lua", &cfg, &err);
  if (!rt) { fprintf(stderr, "runtime: %s\n", err); free(err); return 1; }
  RUN(tcp_echo_eof_timeouts_and_closing_under_a_wait);
  RUN(names_poll_and_udp);
  tu_current = "http";
  call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"http.fetch\",\"params\":{\"url\":\"http://127.0.0.1:%d/chunked\",\"encoding\":\"utf8\"}}", port_http);
  CHECK(has("\"body\":\"abcde\""));
  call("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"http.fetch\",\"params\":{\"url\":\"http://127.0.0.1:%d/redirect\",\"encoding\":\"utf8\"}}", port_http);
  CHECK(has("\"body\":\"abcde\""));
  call("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"http.fetch\",\"params\":{\"url\":\"http://127.0.0.1:%d/x\",\"headers\":[[\"X\",\"a\\r\\nb\"]]}}", port_http);
  CHECK(has("EINVAL"));
  /* TLS to a server that never answers the ClientHello: the handshake parks, then times out */
  call("{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"net.connect\",\"params\":{\"host\":\"127.0.0.1\",\"port\":%d,\"tls\":true,\"timeout_ms\":300}}", port_http);
  CHECK(has("ETIMEDOUT"));
  hc_runtime_free(rt);   /* with sockets still open: all closed, no leak under ASan */
  shutdown(http_fd, SHUT_RDWR);
  close(http_fd);
  pthread_join(srv, NULL);
  return tu_summary();
}
