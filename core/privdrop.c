/*
** privdrop.c: becoming an unprivileged user for good (privdrop.h).
**
** Order: supplementary groups, then the gid, then the uid (after the uid, changing groups is no
** longer allowed). setresuid with all three ids non-zero clears the permitted, effective and
** ambient capability sets unless SECBIT_KEEP_CAPS / SECBIT_NO_SETUID_FIXUP say otherwise, so the
** result is checked rather than assumed: no capability left, and setuid(0) refused.
** The glibc wrappers are used on purpose: the raw syscalls change only the calling thread.
** The kernel also makes the process non-dumpable on this change (no core file, /proc/<pid>
** owned by root, no ptrace by other processes of the same user); that is kept.
*/
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PW_BUF_MAX (1 << 20)   /* a passwd entry larger than this is not one we want */
#define GROUPS_MAX 65536       /* the kernel's NGROUPS_MAX */

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static const char *errno_name(int e) {
  const char *n = strerrorname_np(e);
  return n ? n : "EIO";
}

/* The user's uid and gid. 0, or -1 with a message. */
static int lookup_user(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen) {
  long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  size_t size = hint > 0 ? (size_t)hint : 1024;
  for (;;) {
    char *buf = malloc(size);
    if (!buf) return fail(err, errlen, "user %s: ENOMEM", user);
    struct passwd pw, *found = NULL;
    int rc = getpwnam_r(user, &pw, buf, size, &found);
    if (rc == ERANGE && size < PW_BUF_MAX) {
      free(buf);
      size *= 2;
      continue;
    }
    if (found) {
      *uid = pw.pw_uid;
      *gid = pw.pw_gid;
    }
    free(buf);
    if (rc) return fail(err, errlen, "user %s: cannot look it up: %s", user, errno_name(rc));
    if (!found) return fail(err, errlen, "user %s: no such user", user);
    return 0;
  }
}

/* The user's groups (the primary one included), malloc'd into *out. Count, or -1. */
static int user_groups(const char *user, gid_t gid, gid_t **out, char *err, size_t errlen) {
  int n = 32;
  for (;;) {
    gid_t *g = malloc((size_t)n * sizeof *g);
    if (!g) return fail(err, errlen, "user %s: ENOMEM", user);
    int want = n;
    if (getgrouplist(user, gid, g, &want) >= 0) {
      *out = g;
      return want;
    }
    free(g);
    if (want <= n) want = n * 2;   /* glibc reports the count it needs; be safe if it did not */
    if (want > GROUPS_MAX)
      return fail(err, errlen, "user %s: more than %d groups", user, GROUPS_MAX);
    n = want;
  }
}

/* Whether any capability is left in the permitted or effective set. 1, 0, or -1. */
static int has_capabilities(void) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) != 0) return -1;
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
    if (data[i].permitted || data[i].effective) return 1;
  return 0;
}

static int check_dropped(const char *user, uid_t uid, gid_t gid, char *err, size_t errlen) {
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0)
    return fail(err, errlen, "user %s: getresuid: %s", user, errno_name(errno));
  if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid)
    return fail(err, errlen, "user %s: ids did not change as asked", user);
  int caps = has_capabilities();
  if (caps != 0)
    return fail(err, errlen, "user %s: %s", user,
                caps > 0 ? "capabilities are left after the switch (securebits?)"
                         : "capget failed");
  /* The proof: root cannot be had back. */
  if (setuid(0) == 0 || errno != EPERM)
    return fail(err, errlen, "user %s: setuid(0) did not fail with EPERM: exiting is the only "
                "safe thing left", user);
  if (setgid(0) == 0 || errno != EPERM)
    return fail(err, errlen, "user %s: setgid(0) did not fail with EPERM", user);
  return 0;
}

int hc_drop_privileges(const char *user, char *err, size_t errlen) {
  if (!user || !*user) return fail(err, errlen, "--user: empty user name");
  uid_t uid = 0;
  gid_t gid = 0;
  if (lookup_user(user, &uid, &gid, err, errlen) != 0) return -1;
  if (uid == 0) return fail(err, errlen, "user %s: uid 0 is root, refusing", user);
  if (gid == 0) return fail(err, errlen, "user %s: primary group 0 is root's, refusing", user);

  uid_t ru, eu, su;
  if (getresuid(&ru, &eu, &su) != 0)
    return fail(err, errlen, "user %s: getresuid: %s", user, errno_name(errno));
  if (ru == uid && eu == uid && su == uid)   /* already that user: nothing to drop */
    return check_dropped(user, uid, gid, err, errlen);
  if (eu != 0)
    return fail(err, errlen, "user %s: running as uid %u, not root: cannot switch users", user,
                (unsigned)eu);

  gid_t *groups = NULL;
  int n = user_groups(user, gid, &groups, err, errlen);
  if (n < 0) return -1;
  for (int i = 0; i < n; i++) {
    if (groups[i] == 0) {
      free(groups);
      return fail(err, errlen, "user %s: member of group 0 (root's), refusing", user);
    }
  }
  /* Capabilities must not survive the uid change (PR_SET_KEEPCAPS is per thread: this one). */
  if (prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L) != 0) {
    free(groups);
    return fail(err, errlen, "user %s: PR_SET_KEEPCAPS: %s", user, errno_name(errno));
  }
  int rc = setgroups((size_t)n, groups);
  int e = errno;
  free(groups);
  if (rc != 0) return fail(err, errlen, "user %s: setgroups: %s", user, errno_name(e));
  if (setresgid(gid, gid, gid) != 0)
    return fail(err, errlen, "user %s: setresgid: %s", user, errno_name(errno));
  if (setresuid(uid, uid, uid) != 0)
    return fail(err, errlen, "user %s: setresuid: %s", user, errno_name(errno));
  return check_dropped(user, uid, gid, err, errlen);
}
