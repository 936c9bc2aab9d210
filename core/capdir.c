/*
** capdir.c: capability directories: one resolver for every operation, never outside the root.
**
** Fast path: openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): the kernel refuses ".." above the
** root, absolute symlinks and magic links, and any race (EXDEV -> escape, EAGAIN -> retry).
** Fallback (ENOSYS, or EPERM from a seccomp filter, or forced): a manual walk holding a stack of
** O_PATH|O_NOFOLLOW fds; ".." pops the stack and is refused at the root (never opened); each
** symlink is read and spliced into the remaining path (at most HC_SYMLINK_MAX; absolute targets
** refused); a trailing slash is a "must be a directory" flag, never re-appended to a component
** opened with O_NOFOLLOW (the 2026 escapes in cap-std and Go's os.Root came from exactly that).
*/
#include "capdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WALK_MAX_DEPTH 512          /* directory fds held by one walk */
#define REMOVE_MAX_DEPTH 2048       /* nesting a recursive remove follows (a 4096-byte path) */

static int g_openat2 = -1;          /* -1 unknown, 0 absent, 1 present */

int hc_capdir_check(const char *rel, size_t len) {
  if (len > HC_PATH_MAX) return -ENAMETOOLONG;
  if (memchr(rel, '\0', len)) return -EINVAL;
  size_t comp = 0;
  for (size_t i = 0; i < len; i++) {
    comp = rel[i] == '/' ? 0 : comp + 1;
    if (comp > HC_NAME_MAX) return -ENAMETOOLONG;
  }
  return 0;
}

int hc_capdir_open(hc_capdir *c, const char *host_path, int ro, hc_resolver r) {
  c->ro = ro;
  c->resolver = r;
  c->fd = open(host_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  return c->fd < 0 ? -errno : 0;
}

void hc_capdir_close(hc_capdir *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

/* {===== the fast path ===== */

static int open_beneath2(int root, const char *rel, int flags, mode_t mode) {
  /* openat(2) ignores other flags beside O_PATH; openat2(2) refuses them: behave like openat. */
  if (flags & O_PATH) flags &= O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (int tries = 0; tries < 16; tries++) {
    long fd = syscall(SYS_openat2, root, *rel ? rel : ".", &how, sizeof how);
    if (fd >= 0) return (int)fd;
    if (errno == EAGAIN || errno == EINTR) continue;   /* a concurrent rename: try again */
    if (errno == EXDEV) return -HC_EESCAPE;
    return -errno;
  }
  return -EAGAIN;
}

/* }===== */

/* {===== the walk ===== */

typedef struct walk {
  int root;
  int stack[WALK_MAX_DEPTH];
  int depth;
  char path[2 * HC_PATH_MAX + 2];   /* the components still to walk */
  size_t pos, len;
  int links;
} walk;

static int cur_fd(const walk *w) { return w->depth ? w->stack[w->depth - 1] : w->root; }

static void walk_free(walk *w) {
  while (w->depth) close(w->stack[--w->depth]);
}

/* Next component into comp; returns its length, 0 at the end. *last: nothing follows it;
** *slash: it was followed by a slash (a directory is required). */
static size_t next_comp(walk *w, char *comp, int *last, int *slash) {
  while (w->pos < w->len && w->path[w->pos] == '/') w->pos++;
  size_t start = w->pos;
  while (w->pos < w->len && w->path[w->pos] != '/') w->pos++;
  size_t n = w->pos - start;
  memcpy(comp, w->path + start, n);
  comp[n] = '\0';
  *slash = w->pos < w->len;
  size_t p = w->pos;
  while (p < w->len && w->path[p] == '/') p++;
  *last = p >= w->len;
  return n;
}

/* Replace the component just read (a symlink) by its target. */
static int splice_link(walk *w, int dirfd, const char *comp) {
  char target[HC_PATH_MAX + 1];
  if (++w->links > HC_SYMLINK_MAX) return -ELOOP;
  ssize_t n = readlinkat(dirfd, comp, target, sizeof target);
  if (n < 0) return errno == EINVAL ? -EAGAIN : -errno;   /* EINVAL: no longer a link (a race) */
  if ((size_t)n >= sizeof target) return -ENAMETOOLONG;
  if (n == 0) return -ENOENT;
  if (target[0] == '/') return -HC_EESCAPE;   /* absolute targets are never followed */
  size_t rest = w->len - w->pos;
  if ((size_t)n + 1 + rest >= sizeof w->path) return -ENAMETOOLONG;
  char tail[sizeof w->path];
  memcpy(tail, w->path + w->pos, rest);
  memcpy(w->path, target, (size_t)n);
  memcpy(w->path + n, tail, rest);   /* the tail keeps its own leading slash, if any */
  w->len = (size_t)n + rest;
  w->pos = 0;
  return 0;
}

static int open_walk(int root, const char *rel, int flags, mode_t mode) {
  walk w;
  w.root = root;
  w.depth = 0;
  w.links = 0;
  w.pos = 0;
  w.len = strlen(rel);
  if (w.len >= sizeof w.path) return -ENAMETOOLONG;
  memcpy(w.path, rel, w.len);
  int follow_final = !(flags & O_NOFOLLOW);
  char comp[HC_NAME_MAX + 1];
  int last, slash, r;
  for (;;) {
    size_t n = next_comp(&w, comp, &last, &slash);
    if (n > HC_NAME_MAX) { r = -ENAMETOOLONG; break; }
    if (n == 0) {   /* the path ends at a directory we hold: open it */
      r = openat(cur_fd(&w), ".", (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC, mode);
      if (r < 0) r = -errno;
      break;
    }
    if (strcmp(comp, ".") == 0) continue;
    if (strcmp(comp, "..") == 0) {
      if (w.depth == 0) { r = -HC_EESCAPE; break; }   /* never above the root, never opened */
      close(w.stack[--w.depth]);
      continue;
    }
    int dirfd = cur_fd(&w);
    if (!last || slash) {
      /* An intermediate component (or a final one with a trailing slash): a directory, or a
      ** symlink to splice. The slash is never added back to a name opened O_NOFOLLOW. */
      int fd = openat(dirfd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) { r = -errno; break; }
      struct stat st;
      if (fstat(fd, &st) != 0) { r = -errno; close(fd); break; }
      if (S_ISLNK(st.st_mode)) {
        close(fd);
        if ((r = splice_link(&w, dirfd, comp)) != 0) break;
        continue;
      }
      if (!S_ISDIR(st.st_mode)) { close(fd); r = -ENOTDIR; break; }
      if (w.depth == WALK_MAX_DEPTH) { close(fd); r = -ENAMETOOLONG; break; }
      w.stack[w.depth++] = fd;
      continue;
    }
    /* The final component, without a trailing slash. A symlink there is spliced when the
    ** operation follows it; otherwise O_NOFOLLOW holds. */
    if (follow_final) {
      struct stat st;
      if (fstatat(dirfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) { r = -EEXIST; break; }
        if ((r = splice_link(&w, dirfd, comp)) != 0) break;
        continue;
      }
    }
    r = openat(dirfd, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
    if (r < 0) { r = -errno; break; }
    if (follow_final && (flags & O_PATH)) {
      /* O_PATH|O_NOFOLLOW opens a symlink itself: one swapped in since the check above is a
      ** race we refuse rather than follow. */
      struct stat st;
      if (fstat(r, &st) != 0 || S_ISLNK(st.st_mode)) { close(r); r = -ELOOP; }
    }
    break;
  }
  walk_free(&w);
  return r;
}

/* }===== */

int hc_capdir_openat(const hc_capdir *c, const char *rel, int flags, mode_t mode) {
  int r = hc_capdir_check(rel, strlen(rel));
  if (r) return r;
  if (rel[0] == '/') return -HC_EESCAPE;   /* beneath means relative: an absolute path escapes */
  if (c->resolver != HC_RESOLVE_WALK && g_openat2 != 0) {
    r = open_beneath2(c->fd, rel, flags, mode);
    if (r != -ENOSYS && !(r == -EPERM && g_openat2 < 0)) {
      g_openat2 = 1;
      /* ELOOP is both "too many links" and "a magic link": the walk tells them apart (it reads
      ** a magic link's absolute target and calls it the escape it is). */
      /* "link/" with O_CREAT is EISDIR to the kernel before it looks at the link: say whether
      ** the link leads outside, as the walk would. */
      size_t rl = strlen(rel);
      if (r == -EISDIR && rl && rel[rl - 1] == '/') {
        int probe = open_beneath2(c->fd, rel, O_PATH, 0);
        if (probe >= 0) close(probe);
        if (probe == -HC_EESCAPE) return probe;
      }
      if (r == -ELOOP && c->resolver != HC_RESOLVE_OPENAT2) {
        int w = open_walk(c->fd, rel, flags & ~(O_CREAT | O_EXCL | O_TRUNC), mode);
        if (w >= 0) close(w);
        if (w == -HC_EESCAPE) return w;
      }
      return r;
    }
    if (c->resolver == HC_RESOLVE_OPENAT2) return r;
    g_openat2 = 0;   /* no openat2 here (old kernel, or a seccomp filter): walk from now on */
  }
  return open_walk(c->fd, rel, flags, mode);
}

/* {===== parents and operations ===== */

int hc_capdir_parent(const hc_capdir *c, const char *rel, int *dirfd, char *name, int *must_dir) {
  size_t len = strlen(rel);
  int r = hc_capdir_check(rel, len);
  if (r) return r;
  *must_dir = 0;
  while (len && rel[len - 1] == '/') { len--; *must_dir = 1; }
  size_t start = len;
  while (start && rel[start - 1] != '/') start--;
  size_t n = len - start;
  if (n == 0 || (n == 1 && rel[start] == '.') || (n == 2 && rel[start] == '.' && rel[start + 1] == '.')) {
    /* the root itself, ".", "..": no name to act on; but one that reaches outside says so */
    int fd = hc_capdir_openat(c, rel, O_PATH, 0);
    if (fd == -HC_EESCAPE) return fd;
    if (fd >= 0) close(fd);
    return -EINVAL;
  }
  memcpy(name, rel + start, n);
  name[n] = '\0';
  char dir[HC_PATH_MAX + 1];
  memcpy(dir, rel, start);
  dir[start] = '\0';
  int fd = hc_capdir_openat(c, dir, O_PATH | O_DIRECTORY, 0);
  if (fd < 0) return fd;
  *dirfd = fd;
  return 0;
}

int hc_capdir_stat(const hc_capdir *c, const char *rel, int follow, struct stat *st) {
  size_t len = strlen(rel);
  if (follow || len == 0 || rel[len - 1] == '/') {
    int fd = hc_capdir_openat(c, rel, O_PATH, 0);
    if (fd < 0) return fd;
    int r = fstat(fd, st) == 0 ? 0 : -errno;
    close(fd);
    return r;
  }
  int dfd, must_dir;
  char name[HC_NAME_MAX + 1];
  int r = hc_capdir_parent(c, rel, &dfd, name, &must_dir);
  if (r == -EINVAL) {   /* "a/.." or "." : a directory the resolver can open */
    int fd = hc_capdir_openat(c, rel, O_PATH, 0);
    if (fd < 0) return fd;
    r = fstat(fd, st) == 0 ? 0 : -errno;
    close(fd);
    return r;
  }
  if (r) return r;
  r = fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
  close(dfd);
  return r;
}

/* A read-only capability refuses a mutation, but an escape is still reported as the escape. */
int hc_capdir_refuse_ro(const hc_capdir *c, const char *rel) {
  int fd = hc_capdir_openat(c, rel, O_PATH, 0);
  if (fd == -HC_EESCAPE) return fd;
  if (fd >= 0) close(fd);
  int dfd, must_dir;
  char name[HC_NAME_MAX + 1];
  int r = hc_capdir_parent(c, rel, &dfd, name, &must_dir);
  if (r == -HC_EESCAPE) return r;
  if (r == 0) close(dfd);
  return -EROFS;
}

#define MUTATE(c, rel) do { if ((c)->ro) return hc_capdir_refuse_ro(c, rel); } while (0)

int hc_capdir_mkdir(const hc_capdir *c, const char *rel, mode_t mode) {
  int dfd, must_dir;
  char name[HC_NAME_MAX + 1];
  int r = hc_capdir_parent(c, rel, &dfd, name, &must_dir);
  if (r) return r;
  if (c->ro) { close(dfd); return -EROFS; }
  r = mkdirat(dfd, name, mode & 0777) == 0 ? 0 : -errno;
  close(dfd);
  return r;
}

int hc_capdir_unlink(const hc_capdir *c, const char *rel) {
  int dfd, must_dir;
  char name[HC_NAME_MAX + 1];
  int r = hc_capdir_parent(c, rel, &dfd, name, &must_dir);
  if (r) return r;
  if (c->ro) { close(dfd); return -EROFS; }
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) r = -errno;
  else if (must_dir && !S_ISDIR(st.st_mode)) r = -ENOTDIR;
  else r = unlinkat(dfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) == 0 ? 0 : -errno;
  close(dfd);
  return r;
}

/* Empty the directory dfd holds, by fds only: each descent is O_NOFOLLOW, so a directory
** swapped for a symlink mid-way is removed as the link it now is, never followed. */
static int empty_dir(int dfd, int depth) {
  if (depth > REMOVE_MAX_DEPTH) return -ELOOP;
  int dup_fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup_fd < 0) return -errno;
  DIR *d = fdopendir(dup_fd);
  if (!d) { int e = errno; close(dup_fd); return -e; }
  int r = 0;
  struct dirent *de;
  while (r == 0 && (errno = 0, de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (unlinkat(dfd, de->d_name, 0) == 0) continue;
    if (errno != EISDIR && errno != EPERM) { r = -errno; break; }
    int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
      if (errno == ENOENT) continue;
      r = -errno;
      break;
    }
    r = empty_dir(sub, depth + 1);
    close(sub);
    if (r == 0 && unlinkat(dfd, de->d_name, AT_REMOVEDIR) != 0 && errno != ENOENT) r = -errno;
  }
  if (r == 0 && errno != 0 && de == NULL) r = -errno;
  closedir(d);
  return r;
}

int hc_capdir_remove_all(const hc_capdir *c, const char *rel) {
  int dfd, must_dir;
  char name[HC_NAME_MAX + 1];
  int r = hc_capdir_parent(c, rel, &dfd, name, &must_dir);
  if (r) return r;
  if (c->ro) { close(dfd); return -EROFS; }
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    r = -errno;
  } else if (!S_ISDIR(st.st_mode)) {
    r = must_dir ? -ENOTDIR : (unlinkat(dfd, name, 0) == 0 ? 0 : -errno);
  } else {
    int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
      r = -errno;
    } else {
      r = empty_dir(sub, 0);
      close(sub);
      if (r == 0) r = unlinkat(dfd, name, AT_REMOVEDIR) == 0 ? 0 : -errno;
    }
  }
  close(dfd);
  return r;
}

/* Both ends of a rename or link: parents resolved beneath their capabilities. */
typedef struct two_ends { int fd1, fd2, md1, md2; char n1[HC_NAME_MAX + 1], n2[HC_NAME_MAX + 1]; } two_ends;

static int both_parents(const hc_capdir *from, const char *frel, const hc_capdir *to,
                        const char *trel, two_ends *e) {
  int r = hc_capdir_parent(from, frel, &e->fd1, e->n1, &e->md1);
  if (r) return r;
  r = hc_capdir_parent(to, trel, &e->fd2, e->n2, &e->md2);
  if (r) close(e->fd1);
  return r;
}

int hc_capdir_rename(const hc_capdir *from, const char *frel, const hc_capdir *to,
                     const char *trel, int overwrite) {
  two_ends e;
  int r = both_parents(from, frel, to, trel, &e);
  if (r) return r;
  int fd1 = e.fd1, fd2 = e.fd2, md1 = e.md1, md2 = e.md2;
  const char *n1 = e.n1, *n2 = e.n2;
  /* Nothing leaves a read-only capability, nothing enters a read-only one. */
  struct stat s1, s2;
  if (from->ro || to->ro) {
    r = -EROFS;
  } else if ((md1 || md2) && (fstatat(fd1, n1, &s1, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(s1.st_mode))) {
    r = errno == ENOENT ? -ENOENT : -ENOTDIR;   /* "x/" names a directory, never a file */
  } else if (md2 && fstatat(fd2, n2, &s2, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(s2.st_mode)) {
    r = -ENOTDIR;   /* "link/" never replaces the link, and never follows it */
  } else {
    r = renameat2(fd1, n1, fd2, n2, overwrite ? 0 : RENAME_NOREPLACE) == 0 ? 0 : -errno;
  }
  close(fd1);
  close(fd2);
  return r;
}

int hc_capdir_link(const hc_capdir *from, const char *frel, const hc_capdir *to, const char *trel) {
  two_ends e;
  int r = both_parents(from, frel, to, trel, &e);
  if (r) return r;
  int fd1 = e.fd1, fd2 = e.fd2, md1 = e.md1, md2 = e.md2;
  const char *n1 = e.n1, *n2 = e.n2;
  /* A hard link to a read-only file from a writable mount would make it writable. */
  if (from->ro || to->ro) r = -EROFS;
  else if (md1 || md2) r = -ENOTDIR;   /* no hard links to directories; "x/" names one */
  else r = linkat(fd1, n1, fd2, n2, 0) == 0 ? 0 : -errno;   /* the link itself, never followed */
  close(fd1);
  close(fd2);
  return r;
}

int hc_capdir_symlink(const hc_capdir *c, const char *target, const char *rel) {
  size_t tl = strlen(target);
  if (tl == 0) return -ENOENT;
  if (tl > HC_PATH_MAX) return -ENAMETOOLONG;
  if (target[0] == '/') return -HC_EESCAPE;   /* absolute symlinks cannot be created */
  int dfd, must_dir;
  char name[HC_NAME_MAX + 1];
  int r = hc_capdir_parent(c, rel, &dfd, name, &must_dir);
  if (r) return r;
  if (c->ro) { close(dfd); return -EROFS; }
  r = symlinkat(target, dfd, name) == 0 ? 0 : -errno;
  close(dfd);
  return r;
}

int hc_capdir_readlink(const hc_capdir *c, const char *rel, char *buf, size_t size) {
  int dfd, must_dir;
  char name[HC_NAME_MAX + 1];
  int r = hc_capdir_parent(c, rel, &dfd, name, &must_dir);
  if (r) return r;
  if (must_dir) {   /* "link/" names what the link points to, which is no link */
    close(dfd);
    int fd = hc_capdir_openat(c, rel, O_PATH, 0);
    if (fd < 0) return fd;
    close(fd);
    return -EINVAL;
  }
  ssize_t n = readlinkat(dfd, name, buf, size - 1);
  close(dfd);
  if (n < 0) return -errno;
  buf[n] = '\0';
  if (buf[0] == '/') return -HC_EESCAPE;   /* would reveal a host path */
  return (int)n;
}

/* chmod and utimes act on the inode an O_PATH fd pins, through its /proc magic link: a symlink
** swapped in after the resolution can never redirect them. */
static int pinned_path(const hc_capdir *c, const char *rel, char *proc, size_t size, int *fd) {
  *fd = hc_capdir_openat(c, rel, O_PATH, 0);
  if (*fd < 0) return *fd;
  snprintf(proc, size, "/proc/self/fd/%d", *fd);
  return 0;
}

int hc_capdir_chmod(const hc_capdir *c, const char *rel, mode_t mode) {
  MUTATE(c, rel);
  char proc[64];
  int fd, r = pinned_path(c, rel, proc, sizeof proc, &fd);
  if (r) return r;
  r = chmod(proc, mode & 07777) == 0 ? 0 : -errno;
  close(fd);
  return r;
}

int hc_capdir_utimes(const hc_capdir *c, const char *rel, const struct timespec ts[2]) {
  MUTATE(c, rel);
  char proc[64];
  int fd, r = pinned_path(c, rel, proc, sizeof proc, &fd);
  if (r) return r;
  r = utimensat(AT_FDCWD, proc, ts, 0) == 0 ? 0 : -errno;
  close(fd);
  return r;
}

int hc_capdir_truncate(const hc_capdir *c, const char *rel, off_t length) {
  MUTATE(c, rel);
  if (length < 0) return -EINVAL;
  int fd = hc_capdir_openat(c, rel, O_WRONLY | O_NONBLOCK | O_NOCTTY, 0);
  if (fd < 0) return fd;
  struct stat st;
  int r = fstat(fd, &st) != 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL
          : ftruncate(fd, length) == 0 ? 0 : -errno;
  close(fd);
  return r;
}

/* }===== */
