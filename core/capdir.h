/*
** capdir.h: capability directories. A mount is a directory fd plus permissions; every path a
** guest names is resolved *beneath* it by one resolver, so no path can escape, by construction:
** openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), or, where the kernel lacks it, a manual walk
** over O_PATH|O_NOFOLLOW fds that never opens "..". Mutations resolve the parent beneath the
** mount and make one *at call on a final name.
**
** Errors are negative errno values; -HC_EESCAPE marks an escape (answered -32001 EPERM), and
** -EROFS from a read-only mount is a refusal too (-32001). Everything else is the OS's (-32000).
*/
#ifndef HC_CAPDIR_H
#define HC_CAPDIR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define HC_PATH_MAX 4096
#define HC_NAME_MAX 255
#define HC_SYMLINK_MAX 40        /* symlink expansions per resolution (the kernel's own bound) */
#define HC_EESCAPE 100000        /* not an errno: "reaches outside the capability" */

typedef enum { HC_RESOLVE_AUTO = 0, HC_RESOLVE_OPENAT2, HC_RESOLVE_WALK } hc_resolver;

typedef struct hc_capdir {
  int fd;                        /* O_PATH | O_DIRECTORY of the mount's root */
  int ro;
  hc_resolver resolver;
  char name[64];                 /* a session directory's name under its mount (ephemeral) */
} hc_capdir;

/* Open the root of a capability directory. 0 or -errno. */
int hc_capdir_open(hc_capdir *c, const char *host_path, int ro, hc_resolver r);
void hc_capdir_close(hc_capdir *c);

/* Check a path relative to the capability (no leading '/'; "" is the root): length, NUL,
** component lengths. 0 or -errno. */
int hc_capdir_check(const char *rel, size_t len);

/* Open rel beneath c (flags as for openat; O_CLOEXEC added; O_NOFOLLOW applies to the final
** component only). Returns an fd or -errno / -HC_EESCAPE. */
int hc_capdir_openat(const hc_capdir *c, const char *rel, int flags, mode_t mode);

/* Resolve the parent of rel beneath c: *dirfd (close it) and the final name in name[]
** (NAME_MAX + 1). A trailing slash sets *must_dir. rel naming the root itself, or ending in
** "." or "..", is -EINVAL for operations that need a name. */
int hc_capdir_parent(const hc_capdir *c, const char *rel, int *dirfd, char *name, int *must_dir);

/* For a read-only capability: -HC_EESCAPE if rel reaches outside (an escape wins), else -EROFS. */
int hc_capdir_refuse_ro(const hc_capdir *c, const char *rel);

/* Operations (0 or -errno). Mutations on a read-only capability are -EROFS before any syscall. */
int hc_capdir_stat(const hc_capdir *c, const char *rel, int follow, struct stat *st);
int hc_capdir_mkdir(const hc_capdir *c, const char *rel, mode_t mode);
int hc_capdir_unlink(const hc_capdir *c, const char *rel);   /* a file, or an empty directory */
int hc_capdir_remove_all(const hc_capdir *c, const char *rel);
int hc_capdir_rename(const hc_capdir *from, const char *frel, const hc_capdir *to,
                     const char *trel, int overwrite);
int hc_capdir_link(const hc_capdir *from, const char *frel, const hc_capdir *to, const char *trel);
int hc_capdir_symlink(const hc_capdir *c, const char *target, const char *rel);
int hc_capdir_readlink(const hc_capdir *c, const char *rel, char *buf, size_t size);
int hc_capdir_chmod(const hc_capdir *c, const char *rel, mode_t mode);
int hc_capdir_utimes(const hc_capdir *c, const char *rel, const struct timespec ts[2]);
int hc_capdir_truncate(const hc_capdir *c, const char *rel, off_t length);

#endif
