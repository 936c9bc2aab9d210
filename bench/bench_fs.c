/*
** bench_fs: fs.read of a 4 KiB file through the C API (JSON, base64, Lua handler, policy and
** the capability resolver together) beside the raw syscall loop it stands for, measured in the
** same run: openat2(RESOLVE_BENEATH) + read 4 KiB + close. Target: at least 40 % of the raw
** loop's throughput. Also fs.stat, fs.write and fs.list, each beside its own raw loop, and the
** walk resolver for comparison.
*/
#include "hostcall.h"
#include "base64.h"

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

/* The thread's CPU time: unlike wall time, it does not count the time the scheduler gave to
** the machine's other tenants (these machines are shared). */
static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double last_cpu;   /* CPU seconds per op of the last loop */

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
  double t0 = now_s(), c0 = cpu_s(), t;
  do {
    for (int i = 0; i < 256; i++) {
      long fd = syscall(SYS_openat2, root, "d/file4k", &how, sizeof how);
      if (fd < 0 || read((int)fd, buf, sizeof buf) != (ssize_t)sizeof buf) { perror("raw"); exit(1); }
      close((int)fd);
    }
    n += 256;
    t = now_s();
  } while (t - t0 < secs);
  last_cpu = (cpu_s() - c0) / (double)n;
  return (t - t0) / (double)n;
}

/* Whether the answer holds `expect` outside its data string: scanning the 5.5 KB of base64
** with strstr would bill the harness to the runtime. */
static int answer_has(const char *resp, size_t rl, const char *expect) {
  const char *d = strstr(resp, "\"data\":\"");
  if (!d) return strstr(resp, expect) != NULL;
  const char *end = memchr(d + 8, '"', rl - (size_t)(d + 8 - resp));
  if (!end) return 0;
  return memmem(resp, (size_t)(d - resp), expect, strlen(expect)) != NULL || strstr(end, expect) != NULL;
}

/* The raw references for the other methods: what a careful C server does for each, with the
** same resolver. stat: openat2(O_PATH) + fstat + close (statx has no RESOLVE_BENEATH); write:
** openat2(O_WRONLY) + pwrite at 0 + close (fs.write with an offset overwrites in place); list:
** openat2(O_DIRECTORY) + getdents64 to the end + close. */
enum { OP_STAT, OP_WRITE, OP_LIST };

static void raw_other(int root, int op) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  const char *path = op == OP_STAT ? "d/file4k" : op == OP_WRITE ? "d/w" : "list";
  how.flags = (op == OP_STAT ? O_PATH : op == OP_WRITE ? O_WRONLY : O_RDONLY | O_DIRECTORY) | O_CLOEXEC;
  long fd = syscall(SYS_openat2, root, path, &how, sizeof how);
  if (fd < 0) { perror("raw_other"); exit(1); }
  if (op == OP_STAT) {
    struct stat st;
    if (fstat((int)fd, &st) != 0) { perror("fstat"); exit(1); }
  } else if (op == OP_WRITE) {
    if (pwrite((int)fd, "hello", 5, 0) != 5) { perror("pwrite"); exit(1); }
  } else {
    char buf[8192];
    long n;
    while ((n = syscall(SYS_getdents64, (int)fd, buf, sizeof buf)) > 0) {}
    if (n < 0) { perror("getdents64"); exit(1); }
  }
  close((int)fd);
}

static double raw_other_loop(int root, int op, double secs) {
  long n = 0;
  double t0 = now_s(), t;
  do {
    for (int i = 0; i < 64; i++) raw_other(root, op);
    n += 64;
    t = now_s();
  } while (t - t0 < secs);
  return (t - t0) / (double)n;
}

static double api_loop(hc_runtime *rt, const char *req, const char *expect, double secs) {
  size_t len = strlen(req);
  long n = 0;
  double t0 = now_s(), c0 = cpu_s(), t;
  do {
    for (int i = 0; i < 64; i++) {
      char *resp;
      size_t rl;
      if (hc_call(rt, req, len, &resp, &rl) != 0 || !resp || !answer_has(resp, rl, expect)) {
        fprintf(stderr, "bench_fs: unexpected answer: %s\n", resp ? resp : "(none)");
        exit(1);
      }
      hc_free(resp);
    }
    n += 64;
    t = now_s();
  } while (t - t0 < secs);
  last_cpu = (cpu_s() - c0) / (double)n;
  return (t - t0) / (double)n;
}

/* {===== streaming: io.read in 1 MiB chunks vs a C loop that reads and base64-encodes ===== */
/* The reference encodes with the runtime's own encoder (SIMD where the CPU has it): the
** fastest encoder at hand, so the ratio measures only what the runtime adds. */

static double c_stream(const char *path) {
  static unsigned char buf[1 << 20];
  static char out[(1 << 20) / 3 * 4 + 8];
  double t0 = now_s();
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) { perror("stream"); exit(1); }
  volatile size_t sink = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) { perror("read"); exit(1); }
    if (n == 0) break;
    sink += hc_base64_encode(buf, (size_t)n, out);
  }
  close(fd);
  (void)sink;
  return now_s() - t0;
}

/* Whether needle occurs in [s, end). */
static int field_in(const char *s, const char *end, const char *needle) {
  size_t n = strlen(needle);
  for (const char *p = s; p + n <= end; p++)
    if (memcmp(p, needle, n) == 0) return 1;
  return 0;
}

/* The integer after "key": in [s, end), or -1. */
static long field_int(const char *s, const char *end, const char *key) {
  size_t n = strlen(key);
  for (const char *p = s; p + n < end; p++)
    if (memcmp(p, key, n) == 0) return strtol(p + n, NULL, 10);
  return -1;
}

static double hc_stream(hc_runtime *rt, long want_bytes) {
  double t0 = now_s();
  long total = 0;
  char *resp;
  size_t rl;
  const char *open_req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"fs.open\",\"params\":{\"path\":\"/data/d/big\",\"mode\":\"r\"}}";
  if (hc_call(rt, open_req, strlen(open_req), &resp, &rl) != 0 || !resp) exit(1);
  char *h = strstr(resp, "\"handle\":\"");
  if (!h) { fprintf(stderr, "bench_fs: %s\n", resp); exit(1); }
  char handle[32];
  snprintf(handle, sizeof handle, "%.17s", h + 10);
  hc_free(resp);
  char req[256];
  snprintf(req, sizeof req, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"io.read\",\"params\":{\"handle\":\"%s\",\"length\":1048576}}", handle);
  for (;;) {
    if (hc_call(rt, req, strlen(req), &resp, &rl) != 0 || !resp) exit(1);
    /* Look at the fields around `data` only: scanning its 1.4 MB would bill the harness's
    ** strstr to the runtime. */
    char *d = strstr(resp, "\"data\":\"");
    char *end = d ? memchr(d + 8, '"', rl - (size_t)(d + 8 - resp)) : NULL;
    long got = end ? field_int(resp, d, "\"bytes_read\":") : -1;
    if (got < 0 && end) got = field_int(end, resp + rl, "\"bytes_read\":");
    /* every byte counted, and as many base64 characters as bytes say */
    if (got < 0 || (end - (d + 8)) != (got + 2) / 3 * 4) {
      fprintf(stderr, "bench_fs: %.200s\n", resp);
      exit(1);
    }
    total += got;
    int done = field_in(resp, d, "\"eof\":true") || strstr(end, "\"eof\":true") != NULL;
    hc_free(resp);
    if (done) break;
  }
  snprintf(req, sizeof req, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"io.close\",\"params\":{\"handle\":\"%s\"}}", handle);
  if (hc_call(rt, req, strlen(req), &resp, &rl) == 0) hc_free(resp);
  if (total != want_bytes) {
    fprintf(stderr, "bench_fs: streamed %ld bytes of %ld\n", total, want_bytes);
    exit(1);
  }
  return now_s() - t0;
}

/* }===== */

static hc_runtime *make(const char *dir, int resolver) {
  char pol[512];
  snprintf(pol, sizeof pol,
           "return { methods = { 'fs.*', 'io.*' }, mounts = { ['/data'] = { path = '%s', perms = 'rw' } } }", dir);
  hc_config cfg;
  hc_config_init(&cfg);
  cfg.resolver = resolver;
  char *err = NULL;
  hc_runtime *rt = hc_runtime_new_string(pol, strlen(pol), "bench.lua", &cfg, &err);
  if (!rt) { fprintf(stderr, "bench_fs: %s\n", err); exit(1); }
  return rt;
}

int main(int argc, char **argv) {
  /* Many short interleaved rounds: a busy spell on this shared machine then falls on a raw
  ** round and its fs.read round alike, and the median of the per-round ratios sets it aside. */
  int rounds = argc > 1 ? atoi(argv[1]) : 15;
  if (rounds < 1 || rounds > 32) rounds = 15;
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
  /* a directory of 16 entries for fs.list, and the file fs.write overwrites */
  snprintf(path, sizeof path, "%s/list", dir);
  mkdir(path, 0755);
  for (int i = 0; i < 16; i++) {
    snprintf(path, sizeof path, "%s/list/entry-%02d", dir, i);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) { perror("fixture"); return 1; }
    close(fd);
  }
  snprintf(path, sizeof path, "%s/d/w", dir);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, "hello", 5) != 5) { perror("fixture"); return 1; }
  close(fd);
  int root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  hc_runtime *rt = make(dir, 0), *walk = make(dir, 2);
  const char *rd = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"fs.read\",\"params\":{\"path\":\"/data/d/file4k\",\"length\":4096}}";
  const char *st = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"fs.stat\",\"params\":{\"path\":\"/data/d/file4k\"}}";
  const char *wr = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"fs.write\",\"params\":{\"path\":\"/data/d/w\",\"data\":\"aGVsbG8=\",\"offset\":0}}";
  const char *ls = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"fs.list\",\"params\":{\"path\":\"/data/list\"}}";
  double raw[32], api[32], apiw[32], ratio[32], cratio[32];
  double ref[3][32], api3[3][32], ratio3[3][32];
  const char *reqs[3] = {st, wr, ls}, *expects[3] = {"\"size\":4096", "\"bytes_written\":5", "entry-15"};
  for (int k = 0; k < rounds; k++) {
    raw[k] = raw_loop(root, 0.1);
    double raw_cpu = last_cpu;
    api[k] = api_loop(rt, rd, "\"bytes_read\":4096", 0.1);
    cratio[k] = raw_cpu / last_cpu;
    apiw[k] = api_loop(walk, rd, "\"bytes_read\":4096", 0.05);
    ratio[k] = raw[k] / api[k];
    for (int op = 0; op < 3; op++) {
      ref[op][k] = raw_other_loop(root, op, 0.04);
      api3[op][k] = api_loop(rt, reqs[op], expects[op], 0.04);
      ratio3[op][k] = ref[op][k] / api3[op][k];
    }
  }
  /* The median of the per-round ratios, and the ratio of each side's fastest round: noise only
  ** adds time, so the fastest rounds are the two loops on a quiet machine. */
  double best_ratio = 0;
  {
    double rmin = raw[0], amin = api[0];
    for (int k = 1; k < rounds; k++) {
      if (raw[k] < rmin) rmin = raw[k];
      if (api[k] < amin) amin = api[k];
    }
    best_ratio = rmin / amin;
  }
  qsort(raw, (size_t)rounds, sizeof(double), cmp);
  qsort(api, (size_t)rounds, sizeof(double), cmp);
  qsort(apiw, (size_t)rounds, sizeof(double), cmp);
  qsort(ratio, (size_t)rounds, sizeof(double), cmp);
  qsort(cratio, (size_t)rounds, sizeof(double), cmp);
  for (int op = 0; op < 3; op++) {
    qsort(ref[op], (size_t)rounds, sizeof(double), cmp);
    qsort(api3[op], (size_t)rounds, sizeof(double), cmp);
    qsort(ratio3[op], (size_t)rounds, sizeof(double), cmp);
  }
  int m = rounds / 2;
  printf("-- fs through the C API vs the raw syscall loop (median of %d interleaved rounds)\n", rounds);
  printf("   raw openat2+read 4 KiB+close   %.2f us/op %8.0f calls/s\n", raw[m] * 1e6, 1 / raw[m]);
  printf("   fs.read 4 KiB (openat2)        %.2f us/op %8.0f calls/s  => %.0f%% of the raw loop's throughput (target >= 40%%)\n",
         api[m] * 1e6, 1 / api[m], ratio[m] * 100);
  printf("                                  fastest rounds: %.0f%%; in CPU time per op: %.0f%%\n",
         best_ratio * 100, cratio[m] * 100);
  printf("   fs.read 4 KiB (walk resolver)  %.2f us/op\n", apiw[m] * 1e6);
  static const char *const names[3] = {"fs.stat", "fs.write 5 B at 0", "fs.list 16 entries"};
  static const char *const refs[3] = {"openat2(O_PATH)+fstat+close", "openat2+pwrite+close",
                                      "openat2+getdents64+close"};
  for (int op = 0; op < 3; op++)
    printf("   %-19s %7.2f us/op %8.0f calls/s  raw %s %.2f us => %.0f%%\n", names[op],
           api3[op][m] * 1e6, 1 / api3[op][m], refs[op], ref[op][m] * 1e6, ratio3[op][m] * 100);
  printf("RESULT read_ratio=%.3f read_best=%.3f raw_read_us=%.3f read_us=%.3f raw_stat_us=%.3f "
         "raw_write_us=%.3f raw_list_us=%.3f\n", ratio[m], best_ratio, raw[m] * 1e6, api[m] * 1e6,
         ref[OP_STAT][m] * 1e6, ref[OP_WRITE][m] * 1e6, ref[OP_LIST][m] * 1e6);

  /* Streaming: FS_STREAM_MB (default 256; the figure is 1024) through io.read. */
  long mb = getenv("FS_STREAM_MB") ? atol(getenv("FS_STREAM_MB")) : 256;
  if (mb < 1) mb = 1;
  snprintf(path, sizeof path, "%s/d/big", dir);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  static char chunk[1 << 20];
  for (size_t i = 0; i < sizeof chunk; i++) chunk[i] = (char)(i * 131 + 7);
  for (long i = 0; fd >= 0 && i < mb; i++)
    if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk) { perror("big"); return 1; }
  if (fd >= 0) close(fd);
  double cs[3], hs[3];
  for (int k = 0; k < 3; k++) { cs[k] = c_stream(path); hs[k] = hc_stream(rt, mb << 20); }
  qsort(cs, 3, sizeof(double), cmp);
  qsort(hs, 3, sizeof(double), cmp);
  printf("   stream %ld MiB: C read+base64 %.0f MiB/s, io.read 1 MiB chunks %.0f MiB/s => %.0f%% (target >= 40%%)\n",
         mb, mb / cs[1], mb / hs[1], cs[1] / hs[1] * 100);
  unlink(path);
  hc_runtime_free(rt);
  hc_runtime_free(walk);
  close(root);
  snprintf(path, sizeof path, "%s/d/w", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/d/file4k", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/d", dir);
  rmdir(path);
  for (int i = 0; i < 16; i++) {
    snprintf(path, sizeof path, "%s/list/entry-%02d", dir, i);
    unlink(path);
  }
  snprintf(path, sizeof path, "%s/list", dir);
  rmdir(path);
  rmdir(dir);
  return 0;
}
