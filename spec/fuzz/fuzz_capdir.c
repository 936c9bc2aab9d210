/*
** fuzz_capdir.c: random paths over a fixture tree full of links, through both resolvers; asserts
** that nothing outside the capability is ever opened and that the resolvers agree on escapes.
**
** Two ways to run it:
**   libFuzzer:  make fuzz   (clang -fsanitize=fuzzer,address; the fuzzer drives the paths)
**   ctest:      built with the C tests: a fixed-seed generator drives 200,000 paths instead.
*/
#include "capdir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char top[64];
static hc_capdir caps[2];
static struct stat outside_dir, outside_file;
static int ready;

static void sh(const char *fmt, const char *arg) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, fmt, arg, arg, arg, arg, arg, arg, arg, arg);
  if (system(cmd) != 0) { fprintf(stderr, "fixture failed: %s\n", cmd); abort(); }
}

static void setup(void) {
  if (ready) return;
  snprintf(top, sizeof top, "/tmp/hc-fuzz-XXXXXX");
  if (!mkdtemp(top)) abort();
  sh("mkdir -p %s/out %s/m/a/b/c %s/m/d && echo s > %s/out/secret && echo x > %s/m/a/f", top);
  sh("cd %s/m && ln -s ../out up && ln -s /etc abs && ln -s a in && ln -s a/b/c deep && "
     "ln -s up/secret via && ln -s l2 l1 && ln -s l1 l2 && ln -s . self && ln -s .. parent && "
     "cd a && ln -s ../../out up2 && ln -s ../.. root && ln -s b/../.. rootish && "
     "cd b && ln -s ../../../out/secret s3 && ln -s /proc/self/root magic", top);
  char p[128];
  snprintf(p, sizeof p, "%s/out", top);
  stat(p, &outside_dir);
  snprintf(p, sizeof p, "%s/out/secret", top);
  stat(p, &outside_file);
  snprintf(p, sizeof p, "%s/m", top);
  if (hc_capdir_open(&caps[0], p, 1, HC_RESOLVE_AUTO) || hc_capdir_open(&caps[1], p, 1, HC_RESOLVE_WALK))
    abort();
  ready = 1;
}

static const char *const PIECES[] = {
  "a", "b", "c", "d", "f", "up", "abs", "in", "deep", "via", "l1", "self", "parent", "up2",
  "root", "rootish", "s3", "magic", "..", ".", "", "out", "secret", "m", "x"};
#define NPIECES (sizeof PIECES / sizeof PIECES[0])

/* Build a path from the input: each byte picks a component; some bytes add a trailing slash. */
static void make_path(const uint8_t *data, size_t size, char *path, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < size && k + 16 < cap; i++) {
    const char *piece = PIECES[data[i] % NPIECES];
    size_t n = strlen(piece);
    if (k + n + 2 >= cap) break;
    if (k) path[k++] = '/';
    memcpy(path + k, piece, n);
    k += n;
    if (data[i] & 0x80 && i + 1 == size) path[k++] = '/';
  }
  path[k] = '\0';
}

static void check_one(const char *path) {
  static const int FLAGS[] = {O_RDONLY, O_PATH, O_PATH | O_NOFOLLOW, O_RDONLY | O_DIRECTORY};
  for (size_t f = 0; f < sizeof FLAGS / sizeof FLAGS[0]; f++) {
    int r[2];
    for (int i = 0; i < 2; i++) {
      r[i] = hc_capdir_openat(&caps[i], path, FLAGS[f] | O_NONBLOCK, 0);
      if (r[i] >= 0) {
        struct stat st;
        fstat(r[i], &st);
        if ((st.st_ino == outside_file.st_ino && st.st_dev == outside_file.st_dev) ||
            (st.st_ino == outside_dir.st_ino && st.st_dev == outside_dir.st_dev)) {
          fprintf(stderr, "ESCAPE (%s resolver, flags %#x): %s\n", i ? "walk" : "openat2", FLAGS[f], path);
          abort();
        }
        close(r[i]);
        r[i] = 0;
      }
    }
    /* The two resolvers must agree on what is an escape. */
    if ((r[0] == -HC_EESCAPE) != (r[1] == -HC_EESCAPE)) {
      fprintf(stderr, "DISAGREE (flags %#x): %s: openat2 %d, walk %d\n", FLAGS[f], path, r[0], r[1]);
      abort();
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[HC_PATH_MAX];
  setup();
  make_path(data, size, path, sizeof path);
  check_one(path);
  return 0;
}

#ifndef HC_LIBFUZZER
int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 200000;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  uint8_t buf[12];
  for (long i = 0; i < n; i++) {
    size_t len = 1 + (size_t)(i % 12);
    for (size_t j = 0; j < len; j++) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      buf[j] = (uint8_t)x;
    }
    LLVMFuzzerTestOneInput(buf, len);
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
  if (system(cmd) != 0) return 1;
  printf("%ld passed, 0 failed\n", n);
  return 0;
}
#endif
