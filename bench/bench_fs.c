/*
** bench_fs: fs.read of a 4 KiB file through the C API (JSON, base64, Lua handler, policy and
** the capability resolver together) beside the raw syscall loop it stands for, measured in the
** same run: openat2(RESOLVE_BENEATH) + read 4 KiB + close. Target: at least 40 % of the raw
** loop's throughput. Also fs.stat and fs.write, and the walk resolver for comparison.
*/
#include "hostcall.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

static double raw_loop(int root, double secs) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  char buf[4096];
  long n = 0;
  double t0 = now_s(), t;
  do {
    for (int i = 0; i < 256; i++) {
      long fd = syscall(SYS_openat2, root, "d/file4k", &how, sizeof how);
      if (fd < 0 || read((int)fd, buf, sizeof buf) != (ssize_t)sizeof buf) { perror("raw"); exit(1); }
      close((int)fd);
    }
    n += 256;
    t = now_s();
  } while (t - t0 < secs);
  return (t - t0) / (double)n;
}

static double api_loop(hc_runtime *rt, const char *req, const char *expect, double secs) {
  size_t len = strlen(req);
  long n = 0;
  double t0 = now_s(), t;
  do {
    for (int i = 0; i < 64; i++) {
      char *resp;
      size_t rl;
      if (hc_call(rt, req, len, &resp, &rl) != 0 || !resp || !strstr(resp, expect)) {
        fprintf(stderr, "bench_fs: unexpected answer: %s\n", resp ? resp : "(none)");
        exit(1);
      }
      hc_free(resp);
    }
    n += 64;
    t = now_s();
  } while (t - t0 < secs);
  return (t - t0) / (double)n;
}

static hc_runtime *make(const char *dir, int resolver) {
  char pol[512];
  snprintf(pol, sizeof pol,
           "return { methods = { 'fs.*' }, mounts = { ['/data'] = { path = '%s', perms = 'rw' } } }", dir);
  hc_config cfg;
  hc_config_init(&cfg);
  cfg.resolver = resolver;
  char *err = NULL;
  hc_runtime *rt = hc_runtime_new_string(pol, strlen(pol), "bench.lua", &cfg, &err);
  if (!rt) { fprintf(stderr, "bench_fs: %s\n", err); exit(1); }
  return rt;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 5;
  if (rounds < 1 || rounds > 32) rounds = 5;
  char dir[] = "/tmp/hc-bench-fs-XXXXXX";
  if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
  char path[256];
  snprintf(path, sizeof path, "%s/d", dir);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/d/file4k", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  char block[4096];
  for (size_t i = 0; i < sizeof block; i++) block[i] = (char)('a' + i % 26);
  if (fd < 0 || write(fd, block, sizeof block) != (ssize_t)sizeof block) { perror("fixture"); return 1; }
  close(fd);
  int root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  hc_runtime *rt = make(dir, 0), *walk = make(dir, 2);
  const char *rd = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"fs.read\",\"params\":{\"path\":\"/data/d/file4k\",\"length\":4096}}";
  const char *st = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"fs.stat\",\"params\":{\"path\":\"/data/d/file4k\"}}";
  const char *wr = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"fs.write\",\"params\":{\"path\":\"/data/d/w\",\"data\":\"aGVsbG8=\"}}";
  double raw[32], api[32], apiw[32], stat_t[32], write_t[32], ratio[32];
  for (int k = 0; k < rounds; k++) {
    raw[k] = raw_loop(root, 0.25);
    api[k] = api_loop(rt, rd, "\"bytes_read\":4096", 0.25);
    apiw[k] = api_loop(walk, rd, "\"bytes_read\":4096", 0.25);
    stat_t[k] = api_loop(rt, st, "\"size\":4096", 0.15);
    write_t[k] = api_loop(rt, wr, "\"bytes_written\":5", 0.15);
    ratio[k] = raw[k] / api[k];
  }
  qsort(raw, (size_t)rounds, sizeof(double), cmp);
  qsort(api, (size_t)rounds, sizeof(double), cmp);
  qsort(apiw, (size_t)rounds, sizeof(double), cmp);
  qsort(stat_t, (size_t)rounds, sizeof(double), cmp);
  qsort(write_t, (size_t)rounds, sizeof(double), cmp);
  qsort(ratio, (size_t)rounds, sizeof(double), cmp);
  int m = rounds / 2;
  printf("-- fs through the C API vs the raw syscall loop (median of %d interleaved rounds)\n", rounds);
  printf("   raw openat2+read 4 KiB+close   %.2f us/op\n", raw[m] * 1e6);
  printf("   fs.read 4 KiB (openat2)        %.2f us/op  => %.0f%% of the raw loop's throughput (target >= 40%%)\n",
         api[m] * 1e6, ratio[m] * 100);
  printf("   fs.read 4 KiB (walk resolver)  %.2f us/op\n", apiw[m] * 1e6);
  printf("   fs.stat                        %.2f us/op\n", stat_t[m] * 1e6);
  printf("   fs.write 5 bytes               %.2f us/op\n", write_t[m] * 1e6);
  hc_runtime_free(rt);
  hc_runtime_free(walk);
  close(root);
  unlink(path);
  snprintf(path, sizeof path, "%s/d/w", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/d", dir);
  rmdir(path);
  rmdir(dir);
  return 0;
}
