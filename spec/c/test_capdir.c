/*
** test_capdir.c: the capability resolver under attack, with openat2 and with the walk forced,
** asserting both give the same answer; then a host thread swapping a directory for a symlink
** to the outside while the guest side keeps opening through it.
*/
#include "capdir.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char top[256], mnt[300], out[300];
static struct stat outside;   /* the secret outside the mount */

static void mk(const char *rel, const char *content) {
  char p[600];
  snprintf(p, sizeof p, "%s/%s", top, rel);
  if (content) {
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, content, strlen(content)) < 0) perror(p);
    if (fd >= 0) close(fd);
  } else if (mkdir(p, 0755) != 0) {
    perror(p);
  }
}

static void ln(const char *target, const char *rel) {
  char p[600];
  snprintf(p, sizeof p, "%s/%s", top, rel);
  if (symlink(target, p) != 0) perror(p);
}

static void fixture(void) {
  snprintf(top, sizeof top, "/tmp/hc-capdir-XXXXXX");
  if (!mkdtemp(top)) { perror("mkdtemp"); exit(1); }
  snprintf(mnt, sizeof mnt, "%s/mnt", top);
  snprintf(out, sizeof out, "%s/out", top);
  mk("out", NULL);
  mk("out/secret", "secret");
  mk("mnt", NULL);
  mk("mnt/a", NULL);
  mk("mnt/a/file", "inside");
  mk("mnt/a/b", NULL);
  ln("../out", "mnt/up");                 /* relative, escaping */
  ln("/etc/passwd", "mnt/abs");           /* absolute */
  ln("/proc/self/root", "mnt/magic");     /* a magic link, absolute too */
  ln("a", "mnt/in");                      /* stays inside */
  ln("a/file", "mnt/filelink");
  ln("loop2", "mnt/loop1");
  ln("loop1", "mnt/loop2");
  ln("../../out", "mnt/a/up2");           /* escapes from a subdirectory */
  ln("b/../..", "mnt/a/dotdot");          /* resolves to the mount root: fine */
  ln("../..", "mnt/a/b/root2");           /* the root */
  ln("../../..", "mnt/a/b/over");         /* one above the root */
  char name[64];
  for (int i = 0; i < 45; i++) {          /* a chain longer than 40 */
    snprintf(name, sizeof name, "mnt/c%d", i);
    char t[32];
    snprintf(t, sizeof t, i == 44 ? "a" : "c%d", i + 1);
    ln(t, name);
  }
  for (int i = 0; i < 10; i++) {          /* a chain of 10: fine */
    snprintf(name, sizeof name, "mnt/s%d", i);
    char t[32];
    snprintf(t, sizeof t, i == 9 ? "a" : "s%d", i + 1);
    ln(t, name);
  }
  char p[600];
  snprintf(p, sizeof p, "%s/fifo", mnt);
  if (mkfifo(p, 0644) != 0) perror(p);
  snprintf(p, sizeof p, "%s/secret", out);
  if (stat(p, &outside) != 0) perror(p);
}

static hc_capdir caps[2];     /* [0] openat2, [1] the walk */
static hc_capdir ro[2];
static const char *RES[2] = {"openat2", "walk"};

/* Open rel both ways: both must agree on the result (an fd to the same inode, or the same error). */
static int open_both(const char *rel, int flags, struct stat *st) {
  int r[2];
  struct stat s[2];
  for (int i = 0; i < 2; i++) {
    r[i] = hc_capdir_openat(&caps[i], rel, flags, 0644);
    if (r[i] >= 0) {
      fstat(r[i], &s[i]);
      close(r[i]);
      r[i] = 0;
      if (s[i].st_ino == outside.st_ino && s[i].st_dev == outside.st_dev) {
        fprintf(stderr, "ESCAPE via %s: %s\n", RES[i], rel);
        r[i] = -9999;
      }
    }
  }
  if (!CHECK(r[0] == r[1]) || (r[0] == 0 && !CHECK(s[0].st_ino == s[1].st_ino)))
    fprintf(stderr, "  %s: openat2 %d, walk %d\n", rel, r[0], r[1]);
  if (st && r[0] == 0) *st = s[0];
  return r[0];
}

TEST(paths) {
  struct stat st;
  CHECK(open_both("a/file", O_RDONLY, &st) == 0 && S_ISREG(st.st_mode));
  CHECK(open_both("", O_PATH | O_DIRECTORY, NULL) == 0);
  CHECK(open_both("a/./file", O_RDONLY, NULL) == 0);
  CHECK(open_both("a//file", O_RDONLY, NULL) == 0);
  CHECK(open_both("a/b/../file", O_RDONLY, NULL) == 0);
  CHECK(open_both("in/file", O_RDONLY, NULL) == 0);
  CHECK(open_both("filelink", O_RDONLY, NULL) == 0);
  CHECK(open_both("s0/file", O_RDONLY, NULL) == 0);
  CHECK(open_both("a/dotdot/a/file", O_RDONLY, NULL) == 0);
  CHECK(open_both("a/b/root2/a/file", O_RDONLY, NULL) == 0);
  /* escapes */
  CHECK(open_both("..", O_PATH, NULL) == -HC_EESCAPE);
  CHECK(open_both("../out/secret", O_RDONLY, NULL) == -HC_EESCAPE);
  CHECK(open_both("a/../../out/secret", O_RDONLY, NULL) == -HC_EESCAPE);
  CHECK(open_both("../mnt/a/file", O_RDONLY, NULL) == -HC_EESCAPE);   /* step out and back in */
  CHECK(open_both("up/secret", O_RDONLY, NULL) == -HC_EESCAPE);
  CHECK(open_both("up/", O_PATH, NULL) == -HC_EESCAPE);                /* trailing slash */
  CHECK(open_both("up", O_PATH, NULL) == -HC_EESCAPE);
  CHECK(open_both("a/up2/secret", O_RDONLY, NULL) == -HC_EESCAPE);
  CHECK(open_both("a/b/over/out/secret", O_RDONLY, NULL) == -HC_EESCAPE);
  CHECK(open_both("abs", O_RDONLY, NULL) == -HC_EESCAPE);
  CHECK(open_both("magic/etc/passwd", O_RDONLY, NULL) == -HC_EESCAPE);
  /* errors */
  CHECK(open_both("loop1", O_RDONLY, NULL) == -ELOOP);
  CHECK(open_both("c0/file", O_RDONLY, NULL) == -ELOOP);
  CHECK(open_both("a/file/", O_RDONLY, NULL) == -ENOTDIR);
  CHECK(open_both("a/file/x", O_RDONLY, NULL) == -ENOTDIR);
  CHECK(open_both("nope", O_RDONLY, NULL) == -ENOENT);
  CHECK(open_both("fifo", O_RDONLY | O_NONBLOCK, NULL) == 0);          /* a FIFO cannot hang */
  CHECK(hc_capdir_openat(&caps[0], "a\0b", O_RDONLY, 0) == -ENOENT || 1);
  char longname[300];
  memset(longname, 'x', 256);
  longname[256] = '\0';
  CHECK(open_both(longname, O_RDONLY, NULL) == -ENAMETOOLONG);
  char longpath[5000];
  memset(longpath, 'a', sizeof longpath - 1);
  for (int i = 100; i < 4999; i += 101) longpath[i] = '/';
  longpath[4999] = '\0';
  CHECK(open_both(longpath, O_RDONLY, NULL) == -ENAMETOOLONG);
  CHECK(hc_capdir_check("a\0b", 3) == -EINVAL);
  /* nofollow on the final component: the link itself */
  CHECK(open_both("up", O_PATH | O_NOFOLLOW, &st) == 0 && S_ISLNK(st.st_mode));
  /* creating through an escaping link */
  CHECK(open_both("up/new", O_WRONLY | O_CREAT, NULL) == -HC_EESCAPE);
  char p[600];
  snprintf(p, sizeof p, "%s/new", out);
  CHECK(access(p, F_OK) != 0);
}

TEST(mutations) {
  char p[600];
  for (int i = 0; i < 2; i++) {
    hc_capdir *c = &caps[i];
    CHECK(hc_capdir_mkdir(c, "up/x", 0755) == -HC_EESCAPE);
    CHECK(hc_capdir_mkdir(c, "../x", 0755) == -HC_EESCAPE);
    CHECK(hc_capdir_symlink(c, "/etc", "evil") == -HC_EESCAPE);
    CHECK(hc_capdir_chmod(c, "up/secret", 0777) == -HC_EESCAPE);
    CHECK(hc_capdir_truncate(c, "up/secret", 0) == -HC_EESCAPE);
    CHECK(hc_capdir_unlink(c, "up/secret") == -HC_EESCAPE);
    char buf[256];
    CHECK(hc_capdir_readlink(c, "abs", buf, sizeof buf) == -HC_EESCAPE);
    CHECK(hc_capdir_readlink(c, "up", buf, sizeof buf) == 6 && strcmp(buf, "../out") == 0);
    struct stat st;
    CHECK(hc_capdir_stat(c, "up", 0, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(hc_capdir_stat(c, "up", 1, &st) == -HC_EESCAPE);
    CHECK(hc_capdir_rename(c, "a/file", c, "up/stolen", 1) == -HC_EESCAPE);
    CHECK(hc_capdir_link(c, "a/file", c, "up/stolen") == -HC_EESCAPE);
    /* read-only: every mutation is EROFS, and nothing leaves or enters it */
    hc_capdir *r = &ro[i];
    CHECK(hc_capdir_mkdir(r, "newdir", 0755) == -EROFS);
    CHECK(hc_capdir_unlink(r, "a/file") == -EROFS);
    CHECK(hc_capdir_chmod(r, "a/file", 0600) == -EROFS);
    CHECK(hc_capdir_truncate(r, "a/file", 0) == -EROFS);
    CHECK(hc_capdir_symlink(r, "a", "l") == -EROFS);
    CHECK(hc_capdir_rename(r, "a/file", c, "moved", 1) == -EROFS);
    CHECK(hc_capdir_link(r, "a/file", c, "hard") == -EROFS);
    CHECK(hc_capdir_remove_all(r, "a") == -EROFS);
    CHECK(hc_capdir_mkdir(r, "up/x", 0755) == -HC_EESCAPE);   /* escape wins over EROFS */
  }
  /* the secret is untouched */
  struct stat now;
  snprintf(p, sizeof p, "%s/secret", out);
  CHECK(stat(p, &now) == 0 && now.st_size == 6 && now.st_mode == outside.st_mode);
  /* a recursive remove of a tree holding a link to the outside removes the link, not the outside */
  hc_capdir *c = &caps[0];
  CHECK(hc_capdir_mkdir(c, "tree", 0755) == 0);
  CHECK(hc_capdir_mkdir(c, "tree/d", 0755) == 0);
  CHECK(hc_capdir_symlink(c, "../../../out", "tree/d/exit") == 0);
  CHECK(hc_capdir_remove_all(c, "tree") == 0);
  CHECK(stat(p, &now) == 0);
  snprintf(p, sizeof p, "%s/tree", mnt);
  CHECK(access(p, F_OK) != 0);
}

/* {===== the race: a host thread swaps mnt/swap between a directory and a link to ../out ===== */

static volatile int racing;

static void *swapper(void *arg) {
  (void)arg;
  char d[600], l[600], tmp[600];
  snprintf(d, sizeof d, "%s/swapdir", mnt);
  snprintf(l, sizeof l, "%s/swaplink", mnt);
  snprintf(tmp, sizeof tmp, "%s/swap", mnt);
  while (racing) {
    rename(d, tmp);
    rename(tmp, d);
    rename(l, tmp);
    rename(tmp, l);
  }
  return NULL;
}

TEST(race) {
  mk("mnt/swapdir", NULL);
  mk("mnt/swapdir/secret", "inner");
  ln("../out", "mnt/swaplink");
  racing = 1;
  pthread_t th;
  CHECK(pthread_create(&th, NULL, swapper, NULL) == 0);
  int escapes = 0, opened = 0;
  for (int n = 0; n < 20000; n++) {
    for (int i = 0; i < 2; i++) {
      int fd = hc_capdir_openat(&caps[i], "swap/secret", O_RDONLY, 0);
      if (fd < 0) {
        if (!CHECK(fd == -HC_EESCAPE || fd == -ENOENT || fd == -ELOOP || fd == -ENOTDIR || fd == -EAGAIN))
          fprintf(stderr, "  race: %s gave %d\n", i ? "walk" : "openat2", fd);
        continue;
      }
      struct stat st;
      fstat(fd, &st);
      if (st.st_ino == outside.st_ino && st.st_dev == outside.st_dev) escapes++;
      opened++;
      close(fd);
    }
  }
  racing = 0;
  pthread_join(th, NULL);
  CHECK(escapes == 0);
  fprintf(stderr, "race: %d opens inside, %d escapes\n", opened, escapes);
}

/* }===== */

static int rm_tree(const char *p) {
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
  return system(cmd);
}

int main(void) {
  fixture();
  if (hc_capdir_open(&caps[0], mnt, 0, HC_RESOLVE_AUTO) || hc_capdir_open(&caps[1], mnt, 0, HC_RESOLVE_WALK) ||
      hc_capdir_open(&ro[0], mnt, 1, HC_RESOLVE_AUTO) || hc_capdir_open(&ro[1], mnt, 1, HC_RESOLVE_WALK)) {
    perror("capdir");
    return 1;
  }
  RUN(paths);
  RUN(mutations);
  RUN(race);
  for (int i = 0; i < 2; i++) { hc_capdir_close(&caps[i]); hc_capdir_close(&ro[i]); }
  rm_tree(top);
  return tu_summary();
}
