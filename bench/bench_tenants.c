/*
** bench_tenants: `hostcall serve --tenants` with 1, 100 and N (default 10,000) tenants loaded:
** load time, the server's RSS per tenant, and sys.ping throughput spread over 64 connections to
** tenants picked at random, each pipelining 16 deep. Throughput with many tenants is reported as a
** ratio of throughput with one (target: within 80 %), measured in the same run.
**
** usage: bench_tenants HOSTCALL_BINARY [N] [SECONDS]
*/
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CONNS 64
#define DEPTH 16

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
  if (f) fclose(f);
  return kb;
}

static int connect_unix(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) return -1;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

/* One server with n tenants: load time, RSS, and pings per second. */
static int run(const char *bin, const char *root, int n, double secs, double *rps, double *load_s,
               long *kb) {
  char tdir[512], sdir[512], cmd[2048];
  snprintf(tdir, sizeof tdir, "%s/t%d", root, n);
  snprintf(sdir, sizeof sdir, "%s/s%d", root, n);
  mkdir(tdir, 0700);
  mkdir(sdir, 0700);
  for (int i = 0; i < n; i++) {
    char p[600];
    snprintf(p, sizeof p, "%s/t%05d.lua", tdir, i);
    FILE *f = fopen(p, "w");
    if (!f) { perror(p); return -1; }
    fputs("return { methods = { 'sys.*' } }\n", f);
    fclose(f);
  }
  double t0 = now_s();
  pid_t pid = fork();
  if (pid == 0) {
    int dn = open("/dev/null", O_WRONLY);
    dup2(dn, 2);
    execl(bin, bin, "serve", "--tenants", tdir, "--listen-dir", sdir, "--audit", "/dev/null", (char *)NULL);
    _exit(127);
  }
  char last[600];
  snprintf(last, sizeof last, "%s/t%05d.sock", sdir, n - 1);
  struct stat st;
  while (stat(last, &st) != 0) {
    if (now_s() - t0 > 600 || waitpid(pid, NULL, WNOHANG) == pid) { fprintf(stderr, "server did not start\n"); return -1; }
    usleep(20000);
  }
  *load_s = now_s() - t0;
  *kb = rss_kb(pid);
  int fds[CONNS];
  srand(42);
  for (int i = 0; i < CONNS; i++) {
    char p[600];
    snprintf(p, sizeof p, "%s/t%05d.sock", sdir, rand() % n);
    fds[i] = connect_unix(p);
    if (fds[i] < 0) { perror(p); kill(pid, SIGKILL); return -1; }
  }
  static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sys.ping\"}\n";
  char batch[sizeof req * DEPTH];
  for (int k = 0; k < DEPTH; k++) memcpy(batch + k * (sizeof req - 1), req, sizeof req - 1);
  size_t blen = DEPTH * (sizeof req - 1);
  long answered = 0, owed[CONNS];
  for (int i = 0; i < CONNS; i++) {
    if (write(fds[i], batch, blen) != (ssize_t)blen) return -1;
    owed[i] = DEPTH;
  }
  /* A warm-up half second first: every tenant's call thread and caches, as in steady state. */
  double start = now_s(), warm = start + 0.5, end = warm + secs;
  int measuring = 0;
  struct pollfd pf[CONNS];
  char buf[65536];
  while (now_s() < end) {
    if (!measuring && now_s() >= warm) { measuring = 1; answered = 0; start = now_s(); }
    for (int i = 0; i < CONNS; i++) { pf[i].fd = fds[i]; pf[i].events = POLLIN; }
    if (poll(pf, CONNS, 1000) <= 0) break;
    for (int i = 0; i < CONNS; i++) {
      if (!(pf[i].revents & POLLIN)) continue;
      ssize_t r = read(fds[i], buf, sizeof buf);
      if (r <= 0) { fprintf(stderr, "connection closed\n"); return -1; }
      for (ssize_t k = 0; k < r; k++)
        if (buf[k] == '\n') { answered++; owed[i]--; }
      if (owed[i] <= DEPTH / 2) {   /* top the window up */
        size_t more = (size_t)(DEPTH - owed[i]) * (sizeof req - 1);
        if (write(fds[i], batch, more) != (ssize_t)more) return -1;
        owed[i] = DEPTH;
      }
    }
  }
  *rps = (double)answered / (now_s() - start);
  for (int i = 0; i < CONNS; i++) close(fds[i]);
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", tdir, sdir);
  if (system(cmd) != 0) return -1;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: bench_tenants HOSTCALL [N] [SECONDS]\n"); return 2; }
  int big = argc > 2 ? atoi(argv[2]) : 10000;
  double secs = argc > 3 ? atof(argv[3]) : 2.0;
  char root[] = "/tmp/hc-bench-tenants-XXXXXX";
  if (!mkdtemp(root)) { perror("mkdtemp"); return 1; }
  int ns[3] = {1, 100, big};
  double rps[3], load[3];
  long kb[3];
  for (int i = 0; i < 3; i++)
    if (run(argv[1], root, ns[i], secs, &rps[i], &load[i], &kb[i]) != 0) return 1;
  rmdir(root);
  printf("-- tenants: sys.ping over %d connections to random tenants, %d deep (same run)\n", CONNS, DEPTH);
  for (int i = 0; i < 3; i++)
    printf("   %6d tenants: load %.2f s, RSS %ld MiB (%.0f KiB per tenant), %.0f pings/s (%.0f%% of 1 tenant)\n",
           ns[i], load[i], kb[i] / 1024, ns[i] > 1 ? (double)(kb[i] - kb[0]) / (ns[i] - 1) : 0.0,
           rps[i], rps[i] / rps[0] * 100);
  printf("RESULT tenants=%d rss_mib=%ld ratio=%.3f\n", big, kb[2] / 1024, rps[2] / rps[0]);
  return 0;
}
