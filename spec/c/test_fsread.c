/*
** test_fsread.c: fs.read and fs.list through hc_call, so that every read path of core/fsapi.c
** runs under AddressSanitizer and UBSan in CI: the single pread of length + 1 (into the text for
** small base64 reads, through the runtime's peek buffer otherwise), the fstat path (FIFOs,
** lengths over 64 KiB), eof at every edge, and the tenant's memory cap refusing an answer half
** way, which must leave no fd open.
*/
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "hostcall.h"
#include "testutil.h"

static char root[64];

static void put(const char *name, const char *bytes, size_t n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", root, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, bytes, n) != (ssize_t)n) { perror(path); exit(1); }
  close(fd);
}

static unsigned char pattern_at(size_t i) { return (unsigned char)(i * 131 + 7); }

static hc_runtime *runtime(long memory) {
  char pol[512];
  snprintf(pol, sizeof pol,
           "return { methods = { 'fs.*' }, limits = { memory = %ld },"
           " mounts = { ['/in'] = { path = '%s', perms = 'ro' } } }", memory, root);
  hc_config cfg;
  hc_config_init(&cfg);
  char *err = NULL;
  hc_runtime *rt = hc_runtime_new_string(pol, strlen(pol), "t.lua", &cfg, &err);
  if (!rt) { fprintf(stderr, "runtime: %s\n", err ? err : "?"); exit(1); }
  return rt;
}

static char *call(hc_runtime *rt, const char *params) {
  char req[512];
  snprintf(req, sizeof req, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"fs.read\",\"params\":%s}", params);
  char *resp = NULL;
  size_t n;
  if (hc_call(rt, req, strlen(req), &resp, &n) != 0 || !resp) { fprintf(stderr, "hc_call failed\n"); exit(1); }
  return resp;
}

/* The bytes of a result's "data" (base64), decoded; *n their count; NULL if there is none. */
static unsigned char *data_of(const char *resp, size_t *n) {
  const char *d = strstr(resp, "\"data\":\"");
  if (!d) return NULL;
  d += 8;
  const char *e = strchr(d, '"');
  unsigned char *out = malloc((size_t)(e - d) + 1);
  long k = hc_base64_decode(d, (size_t)(e - d), out);
  if (k < 0) { free(out); return NULL; }
  *n = (size_t)k;
  return out;
}

/* fs.read answered with exactly `want_n` bytes of the big file from `off`, and this eof. */
static void expect_big(hc_runtime *rt, const char *params, size_t off, size_t want_n, int eof) {
  char *resp = call(rt, params);
  size_t n = 0;
  unsigned char *b = data_of(resp, &n);
  int ok = b && n == want_n;
  for (size_t i = 0; ok && i < n; i++) ok = b[i] == pattern_at(off + i);
  if (!CHECK(ok)) fprintf(stderr, "  %s: %zu bytes, expected %zu: %.120s\n", params, n, want_n, resp);
  if (!CHECK(strstr(resp, eof ? "\"eof\":true" : "\"eof\":false") != NULL))
    fprintf(stderr, "  %s: eof should be %d: %.120s\n", params, eof, resp);
  free(b);
  hc_free(resp);
}

static void expect_text(hc_runtime *rt, const char *params, const char *want, int eof) {
  char *resp = call(rt, params);
  char field[256];
  snprintf(field, sizeof field, "\"data\":\"%s\"", want);
  if (!CHECK(strstr(resp, field) != NULL)) fprintf(stderr, "  %s: %s\n", params, resp);
  if (!CHECK(strstr(resp, eof ? "\"eof\":true" : "\"eof\":false") != NULL))
    fprintf(stderr, "  %s: eof should be %d: %s\n", params, eof, resp);
  hc_free(resp);
}

static void expect_error(hc_runtime *rt, const char *params, const char *what) {
  char *resp = call(rt, params);
  if (!CHECK(strstr(resp, what) != NULL)) fprintf(stderr, "  %s: expected %s: %.200s\n", params, what, resp);
  hc_free(resp);
}

static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

TEST(small_files_and_eof) {
  hc_runtime *rt = runtime(32 << 20);
  /* base64 "aGVsbG8K" is hello\n; the small-read path (straight into the text) */
  expect_text(rt, "{\"path\":\"/in/hello\",\"length\":3}", "aGVs", 0);
  expect_text(rt, "{\"path\":\"/in/hello\",\"offset\":3}", "bG8K", 1);
  expect_text(rt, "{\"path\":\"/in/hello\",\"length\":6}", "aGVsbG8K", 1);
  expect_text(rt, "{\"path\":\"/in/hello\",\"length\":5}", "aGVsbG8=", 0);
  expect_text(rt, "{\"path\":\"/in/hello\",\"length\":0}", "", 0);
  expect_text(rt, "{\"path\":\"/in/hello\",\"offset\":6,\"length\":0}", "", 1);
  expect_text(rt, "{\"path\":\"/in/hello\",\"offset\":100}", "", 1);
  expect_text(rt, "{\"path\":\"/in/empty\"}", "", 1);
  /* utf8: through the peek buffer as a Lua string */
  expect_text(rt, "{\"path\":\"/in/hello\",\"length\":2,\"encoding\":\"utf8\"}", "he", 0);
  expect_text(rt, "{\"path\":\"/in/hello\",\"encoding\":\"utf8\"}", "hello\\n", 1);
  expect_error(rt, "{\"path\":\"/in/sub\"}", "\"EISDIR\"");
  expect_error(rt, "{\"path\":\"/in/sub\",\"length\":100000}", "\"EISDIR\"");
  expect_error(rt, "{\"path\":\"/in/nope\"}", "\"ENOENT\"");
  expect_error(rt, "{\"path\":\"/in/../x\"}", "\"EPERM\"");
  /* a FIFO with no writer: ESPIPE sends it the fstat way; 0 bytes and eof, nothing hangs */
  expect_text(rt, "{\"path\":\"/in/fifo\"}", "", 1);
  /* with a writer and bytes waiting: offset 0 reads them; another offset is ESPIPE; nothing
  ** waiting (a writer still there) is EAGAIN, never a hang */
  char path[512];
  snprintf(path, sizeof path, "%s/fifo", root);
  int w = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  CHECK(w >= 0 && write(w, "abc", 3) == 3);
  expect_error(rt, "{\"path\":\"/in/fifo\",\"offset\":1}", "\"ESPIPE\"");
  expect_text(rt, "{\"path\":\"/in/fifo\"}", "YWJj", 0);
  expect_error(rt, "{\"path\":\"/in/fifo\"}", "\"EAGAIN\"");
  CHECK(write(w, "xyz", 3) == 3);
  expect_text(rt, "{\"path\":\"/in/fifo\",\"encoding\":\"utf8\"}", "xyz", 0);
  close(w);
  hc_runtime_free(rt);
}

TEST(every_read_path_of_a_big_file) {
  hc_runtime *rt = runtime(32 << 20);
  size_t big = 200000;
  expect_big(rt, "{\"path\":\"/in/big\",\"length\":16383}", 0, 16383, 0);        /* into the text */
  expect_big(rt, "{\"path\":\"/in/big\",\"length\":16384}", 0, 16384, 0);        /* peek buffer */
  expect_big(rt, "{\"path\":\"/in/big\"}", 0, 65536, 0);                         /* default */
  expect_big(rt, "{\"path\":\"/in/big\",\"length\":65537}", 0, 65537, 0);        /* fstat way */
  expect_big(rt, "{\"path\":\"/in/big\",\"offset\":199990,\"length\":100000}", 199990, 10, 1);
  expect_big(rt, "{\"path\":\"/in/big\",\"offset\":199990,\"length\":10}", 199990, 10, 1);
  expect_big(rt, "{\"path\":\"/in/big\",\"offset\":199990,\"length\":9}", 199990, 9, 0);
  expect_big(rt, "{\"path\":\"/in/big\",\"offset\":1,\"length\":199999}", 1, big - 1, 1);
  expect_big(rt, "{\"path\":\"/in/big\",\"length\":4096}", 0, 4096, 0);
  expect_big(rt, "{\"path\":\"/in/f4k\",\"length\":4096}", 0, 4096, 1);
  expect_big(rt, "{\"path\":\"/in/f4k\",\"length\":4095}", 0, 4095, 0);
  hc_runtime_free(rt);
}

TEST(memory_cap_refusals_leave_no_fd) {
  hc_runtime *rt = runtime(3 << 20);
  char *warm = call(rt, "{\"path\":\"/in/hello\"}");   /* mounts open, pools made */
  hc_free(warm);
  int before = open_fds();
  for (int i = 0; i < 20; i++) {
    expect_error(rt, "{\"path\":\"/in/huge\",\"length\":6000000}", "\"memory\"");
    expect_error(rt, "{\"path\":\"/in/huge\",\"length\":6000000,\"encoding\":\"utf8\"}", "\"memory\"");
  }
  char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"fs.list\",\"params\":{\"path\":\"/in/many\",\"limit\":10000}}";
  for (int i = 0; i < 5; i++) {
    char *resp = NULL;
    size_t n;
    CHECK(hc_call(rt, req, strlen(req), &resp, &n) == 0 && resp);
    if (!CHECK(resp && strstr(resp, "\"memory\""))) fprintf(stderr, "  fs.list: %.200s\n", resp);
    hc_free(resp);
  }
  int after = open_fds();
  if (!CHECK(after == before)) fprintf(stderr, "  %d fds before, %d after\n", before, after);
  expect_text(rt, "{\"path\":\"/in/hello\",\"length\":3}", "aGVs", 0);   /* still serving */
  hc_runtime_free(rt);
}

int main(void) {
  snprintf(root, sizeof root, "/tmp/hc-test-fsread-XXXXXX");
  if (!mkdtemp(root)) { perror("mkdtemp"); return 1; }
  put("hello", "hello\n", 6);
  put("empty", "", 0);
  size_t big = 200000;
  unsigned char *b = malloc(6000000);
  for (size_t i = 0; i < 6000000; i++) b[i] = pattern_at(i);
  put("big", (const char *)b, big);
  put("f4k", (const char *)b, 4096);
  put("huge", (const char *)b, 6000000);
  free(b);
  char path[512];
  snprintf(path, sizeof path, "%s/sub", root);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/fifo", root);
  if (mkfifo(path, 0644) != 0) { perror("mkfifo"); return 1; }
  snprintf(path, sizeof path, "%s/many", root);
  mkdir(path, 0755);
  char name[300];
  memset(name, 'n', 240);
  for (int i = 0; i < 10000; i++) {
    snprintf(name + 240, sizeof name - 240, "%05d", i);
    snprintf(path, sizeof path, "many/%s", name);
    put(path, "", 0);
  }
  RUN(small_files_and_eof);
  RUN(every_read_path_of_a_big_file);
  RUN(memory_cap_refusals_leave_no_fd);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
  return tu_summary();
}
