/*
** landlock.c: the process confines itself with Landlock (landlock.h, docs/defence-in-depth.md).
**
** The UAPI is the kernel's (linux/landlock.h); Debian 12's headers stop at ABI 2, so what later
** ABIs added is declared here under the kernel's own names and values. Rights by ABI:
**   1  filesystem: execute, read/write files, read dirs, remove, make (reg/dir/sym/sock/...)
**   2  + REFER (reparenting: rename/link across directories; without it always EXDEV)
**   3  + TRUNCATE
**   4  + TCP: bind and connect by port (handled_access_net, LANDLOCK_RULE_NET_PORT)
**   5  + IOCTL_DEV (ioctl on device files)
**   6  + scoping: signals and abstract unix sockets (the `scoped` field)
**   7  + audit logging flags for restrict_self (not used: the defaults log denials)
**   8  + LANDLOCK_RESTRICT_SELF_TSYNC (every thread of the process at once)
** A ruleset is built from the rights the running kernel's ABI knows, and the attr size passed
** is the one that ABI knows, so an older kernel never sees a field or a bit it would refuse.
*/
#include "landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

/* {===== the UAPI beyond Debian 12's header ===== */

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)                  /* ABI 2 */
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)               /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)              /* ABI 5 */
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)               /* ABI 4 */
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#define HC_LANDLOCK_RULE_NET_PORT 2                            /* ABI 4: LANDLOCK_RULE_NET_PORT */
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)        /* ABI 6 */
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif
#ifndef LANDLOCK_RESTRICT_SELF_TSYNC
#define LANDLOCK_RESTRICT_SELF_TSYNC (1U << 3)                 /* ABI 8 */
#endif
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif

/* struct landlock_ruleset_attr as of ABI 6; the size passed tells the kernel which prefix. */
struct hc_ll_ruleset_attr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;   /* ABI 4 */
  uint64_t scoped;               /* ABI 6 */
};
#define ATTR_SIZE_ABI1 (sizeof(uint64_t))
#define ATTR_SIZE_ABI4 (2 * sizeof(uint64_t))
#define ATTR_SIZE_ABI6 (3 * sizeof(uint64_t))

/* struct landlock_net_port_attr (ABI 4) */
struct hc_ll_net_port_attr {
  uint64_t allowed_access;
  uint64_t port;
};

#define FS_ABI1 ((1ULL << 13) - 1)   /* EXECUTE .. MAKE_SYM */
/* The rights a rule on a file (not a directory) may carry: the kernel refuses others (EINVAL). */
#define FS_FILE_RIGHTS (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
                        LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
                        LANDLOCK_ACCESS_FS_IOCTL_DEV)

#define RIGHTS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define RIGHTS_WRITE (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | \
                      LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR | \
                      LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | \
                      LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_REFER | \
                      LANDLOCK_ACCESS_FS_TRUNCATE)
#define RIGHTS_EXEC LANDLOCK_ACCESS_FS_EXECUTE
/* Never granted: MAKE_CHAR, MAKE_BLOCK, MAKE_FIFO, IOCTL_DEV. Handled all the same, so denied. */

#define ABI_TCP 4
#define ABI_SCOPE 6
#define ABI_TSYNC 8

#define MAX_PINNED 8   /* procfs rule fds kept open for the process's life (see pin_procfs) */

static long ll_create_ruleset(const void *attr, size_t size, uint32_t flags) {
  return syscall(SYS_landlock_create_ruleset, attr, size, flags);
}
static long ll_add_rule(int ruleset_fd, int type, const void *attr) {
  return syscall(SYS_landlock_add_rule, ruleset_fd, type, attr, 0U);
}
static long ll_restrict_self(int ruleset_fd, uint32_t flags) {
  return syscall(SYS_landlock_restrict_self, ruleset_fd, flags);
}

/* }===== */

/* {===== the kernel's ABI and the report ===== */

static atomic_int g_kernel_abi = -1;   /* -1: not asked yet */
static atomic_int g_abi_errno;         /* why 0 */
static atomic_int g_cap_abi;           /* tests: 0 = no cap */
static char g_report[512];
static int g_restricted;               /* g_report says what a restriction enforced */
static int g_pinned[MAX_PINNED];
static int g_npinned;

static int kernel_abi(void) {
  int v = atomic_load(&g_kernel_abi);
  if (v >= 0) return v;
  long r = ll_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (r < 0) {
    atomic_store(&g_abi_errno, errno);
    r = 0;
  }
  atomic_store(&g_kernel_abi, (int)r);
  return (int)r;
}

int hc_landlock_abi(void) {
  int v = kernel_abi(), cap = atomic_load(&g_cap_abi);
  return cap > 0 && cap < v ? cap : v;
}

void hc_landlock_testing_cap_abi(int abi) { atomic_store(&g_cap_abi, abi > 0 ? abi : 0); }

static const char *errno_name(int e) {
  const char *n = strerrorname_np(e);
  return n ? n : "EIO";
}

/* What the kernel offers, without "; confined ...". */
static void base_report(char *buf, size_t size) {
  int abi = hc_landlock_abi();
  if (abi == 0) {
    int e = atomic_load(&g_abi_errno);
    const char *why = e == ENOSYS ? ": not built into this kernel"
                    : e == EOPNOTSUPP ? ": disabled at boot" : "";
    snprintf(buf, size, "landlock unavailable (%s%s): not confined", errno_name(e ? e : ENOSYS),
             why);
  } else if (abi < ABI_TCP) {
    snprintf(buf, size, "landlock ABI %d: filesystem rules only (TCP rules need ABI 4%s)", abi,
             abi == 1 ? "; renames and links across directories fail with EXDEV" : "");
  } else if (abi < ABI_SCOPE) {
    snprintf(buf, size, "landlock ABI %d: filesystem and TCP rules", abi);
  } else {
    snprintf(buf, size, "landlock ABI %d: filesystem, TCP and IPC scope rules", abi);
  }
}

const char *hc_landlock_report(void) {
  if (!g_restricted) base_report(g_report, sizeof g_report);
  return g_report;
}

/* }===== */

/* {===== recording rules ===== */

typedef struct path_rule {
  char *path;      /* for messages */
  int fd;          /* O_PATH */
  int is_dir;
  int is_proc;     /* on procfs: pinned after the restriction */
  uint64_t rights; /* LANDLOCK_ACCESS_FS_*, before masking by the ABI */
} path_rule;

typedef struct port_rule {
  uint16_t port;
  int bind;
} port_rule;

struct hc_landlock {
  path_rule *paths;
  size_t npaths, cpaths;
  port_rule *ports;
  size_t nports, cports;
  int tcp_bind, tcp_connect;        /* directions restricted (handled) */
  int scope_signals, scope_abstract;
  int thread_only;
  int done;                         /* restricted (or failed): only free is left */
};

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

hc_landlock *hc_landlock_new(void) {
  hc_landlock *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  l->scope_signals = 1;
  l->scope_abstract = 1;
  return l;
}

static void close_paths(hc_landlock *l) {
  for (size_t i = 0; i < l->npaths; i++)
    if (l->paths[i].fd >= 0) { close(l->paths[i].fd); l->paths[i].fd = -1; }
}

void hc_landlock_free(hc_landlock *l) {
  if (!l) return;
  close_paths(l);
  for (size_t i = 0; i < l->npaths; i++) free(l->paths[i].path);
  free(l->paths);
  free(l->ports);
  free(l);
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem) {
  if (n < *cap) return 0;
  size_t nc = *cap ? *cap * 2 : 16;
  void *p = realloc(*arr, nc * elem);
  if (!p) return -1;
  *arr = p;
  *cap = nc;
  return 0;
}

int hc_landlock_allow_path(hc_landlock *l, const char *path, int access, char *err, size_t errlen) {
  if (!l) return fail(err, errlen, "landlock: no ruleset");
  if (l->done) return fail(err, errlen, "landlock: ruleset already applied");
  if (!path || !*path) return fail(err, errlen, "landlock: empty path");
  if (access == 0 || (access & ~(HC_LL_READ | HC_LL_WRITE | HC_LL_EXEC)))
    return fail(err, errlen, "landlock: %s: bad access mask %d", path, access);
  uint64_t rights = RIGHTS_READ;
  if (access & HC_LL_WRITE) rights |= RIGHTS_WRITE;
  if (access & HC_LL_EXEC) rights |= RIGHTS_EXEC;

  int fd = open(path, O_PATH | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return 1;   /* nothing there to allow */
    return fail(err, errlen, "landlock: %s: %s", path, errno_name(errno));
  }
  struct stat st;
  struct statfs sf;
  if (fstat(fd, &st) != 0 || fstatfs(fd, &sf) != 0) {
    int e = errno;
    close(fd);
    return fail(err, errlen, "landlock: %s: %s", path, errno_name(e));
  }
  char *copy = strdup(path);
  if (!copy || grow((void **)&l->paths, &l->cpaths, l->npaths, sizeof *l->paths) != 0) {
    free(copy);
    close(fd);
    return fail(err, errlen, "landlock: %s: ENOMEM", path);
  }
  path_rule *r = &l->paths[l->npaths++];
  r->path = copy;
  r->fd = fd;
  r->is_dir = S_ISDIR(st.st_mode);
  r->is_proc = sf.f_type == PROC_SUPER_MAGIC;
  r->rights = rights;
  return 0;
}

int hc_landlock_allow_tcp(hc_landlock *l, int port, int bind, char *err, size_t errlen) {
  if (!l) return fail(err, errlen, "landlock: no ruleset");
  if (l->done) return fail(err, errlen, "landlock: ruleset already applied");
  if (port < 0 || port > 65535)
    return fail(err, errlen, "landlock: TCP port %d out of range", port);
  if (grow((void **)&l->ports, &l->cports, l->nports, sizeof *l->ports) != 0)
    return fail(err, errlen, "landlock: TCP port %d: ENOMEM", port);
  l->ports[l->nports].port = (uint16_t)port;
  l->ports[l->nports].bind = !!bind;
  l->nports++;
  hc_landlock_deny_tcp(l, bind);
  return 0;
}

void hc_landlock_deny_tcp(hc_landlock *l, int bind) {
  if (!l) return;
  if (bind) l->tcp_bind = 1;
  else l->tcp_connect = 1;
}

void hc_landlock_scope(hc_landlock *l, int signals, int abstract_unix) {
  if (!l) return;
  l->scope_signals = !!signals;
  l->scope_abstract = !!abstract_unix;
}

void hc_landlock_thread_only(hc_landlock *l) {
  if (l) l->thread_only = 1;
}

/* }===== */

/* {===== system paths ===== */

#if defined(__x86_64__)
#define HC_MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define HC_MULTIARCH "aarch64-linux-gnu"
#elif defined(__i386__)
#define HC_MULTIARCH "i386-linux-gnu"
#elif defined(__riscv) && __riscv_xlen == 64
#define HC_MULTIARCH "riscv64-linux-gnu"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HC_MULTIARCH "powerpc64le-linux-gnu"
#elif defined(__s390x__)
#define HC_MULTIARCH "s390x-linux-gnu"
#endif

/* docs/defence-in-depth.md explains each line. Symlinks are followed: a rule is on the file or
** directory a path names when it is added. */
static const struct { const char *path; int access; } SYSTEM_PATHS[] = {
  /* TLS: the trust store OpenSSL's default paths load (OPENSSLDIR is /usr/lib/ssl on Debian;
  ** its cert.pem and certs/ lead to /etc/ssl/certs, whose hashed links lead to
  ** /usr/share/ca-certificates), and the system OpenSSL configuration (minimum protocol and
  ** security level), read when the first TLS context is made. /etc/ssl/private is not allowed. */
  {"/etc/ssl/certs", HC_LL_READ},
  {"/usr/share/ca-certificates", HC_LL_READ},
  {"/usr/lib/ssl", HC_LL_READ},
  {"/etc/ssl/openssl.cnf", HC_LL_READ},
  /* The resolver (getaddrinfo on the resolver's worker threads) and NSS. A rule on a file
  ** follows the file, not its name: a resolv.conf replaced by rename is a new file, unreadable.
  ** So the directories systemd-resolved and resolvconf rewrite it in (resolv.conf is then a
  ** symlink into one) are allowed whole where they exist: they hold nothing else. */
  {"/etc/resolv.conf", HC_LL_READ},
  {"/run/systemd/resolve", HC_LL_READ},
  {"/run/resolvconf", HC_LL_READ},
  {"/etc/hosts", HC_LL_READ},
  {"/etc/nsswitch.conf", HC_LL_READ},
  {"/etc/gai.conf", HC_LL_READ},
  {"/etc/host.conf", HC_LL_READ},
  {"/etc/services", HC_LL_READ},
  /* Shared objects loaded after the start: NSS modules, OpenSSL providers and engines; and the
  ** dynamic loader as the interpreter of a tool's executable (execute). */
  {"/etc/ld.so.cache", HC_LL_READ},
#ifdef HC_MULTIARCH
  {"/usr/lib/" HC_MULTIARCH, HC_LL_READ | HC_LL_EXEC},
  {"/lib/" HC_MULTIARCH, HC_LL_READ | HC_LL_EXEC},
#endif
  {"/usr/lib64", HC_LL_READ | HC_LL_EXEC},
  {"/lib64", HC_LL_READ | HC_LL_EXEC},
  /* Devices: a sink and a randomness fallback (OpenSSL uses getrandom first). */
  {"/dev/null", HC_LL_READ | HC_LL_WRITE},
  {"/dev/urandom", HC_LL_READ},
  /* This process's own /proc directory (its fd table, maps, status): the rule is on
  ** /proc/<pid> of the process that adds it, so build the ruleset in the process it confines. */
  {"/proc/self", HC_LL_READ},
};

int hc_landlock_add_system_paths(hc_landlock *l, char *err, size_t errlen) {
  for (size_t i = 0; i < sizeof SYSTEM_PATHS / sizeof SYSTEM_PATHS[0]; i++)
    if (hc_landlock_allow_path(l, SYSTEM_PATHS[i].path, SYSTEM_PATHS[i].access, err, errlen) < 0)
      return -1;
  return 0;
}

/* }===== */

/* {===== restricting ===== */

static uint64_t fs_rights_for(int abi) {
  uint64_t r = FS_ABI1;
  if (abi >= 2) r |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) r |= LANDLOCK_ACCESS_FS_TRUNCATE;
  if (abi >= 5) r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return r;
}

/* Threads of this process, from /proc/self/status; 0 when it cannot tell. */
static int count_threads(void) {
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[4096];
  size_t got = 0;
  for (;;) {
    ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
    if (got == sizeof buf - 1) break;
  }
  close(fd);
  buf[got] = '\0';
  const char *t = strstr(buf, "\nThreads:");
  return t ? atoi(t + 9) : 0;
}

/* A rule on procfs names an inode that procfs makes anew whenever the dentry is looked up
** again (pid directories are not cached by inode number), and the rule pins the inode, not the
** dentry: keeping an fd open keeps the dentry, so the rule keeps matching. For the life of the
** process, since the restriction lasts that long. */
static void pin_procfs(hc_landlock *l) {
  for (size_t i = 0; i < l->npaths; i++) {
    if (!l->paths[i].is_proc || l->paths[i].fd < 0 || g_npinned == MAX_PINNED) continue;
    g_pinned[g_npinned++] = l->paths[i].fd;
    l->paths[i].fd = -1;
  }
}

int hc_landlock_restrict(hc_landlock *l, char *err, size_t errlen) {
  if (!l) return fail(err, errlen, "landlock: no ruleset");
  if (l->done) return fail(err, errlen, "landlock: ruleset already applied");
  int abi = hc_landlock_abi();
  if (abi == 0) {
    base_report(g_report, sizeof g_report);
    l->done = 1;
    close_paths(l);
    fail(err, errlen, "%s", g_report);
    return 1;
  }

  int threads = count_threads();
  int tsync = abi >= ABI_TSYNC;
  if (threads > 1 && !tsync && !l->thread_only) {
    return fail(err, errlen,
                "landlock: %d threads are running and this kernel (ABI %d < 8) confines only the "
                "calling thread: restrict before any thread starts", threads, abi);
  }

  struct hc_ll_ruleset_attr attr;
  memset(&attr, 0, sizeof attr);
  size_t attr_size = ATTR_SIZE_ABI1;
  uint64_t fs = fs_rights_for(abi);
  attr.handled_access_fs = fs;
  size_t tcp_rules = 0, tcp_ignored = 0;
  if (abi >= ABI_TCP) {
    attr_size = ATTR_SIZE_ABI4;
    if (l->tcp_bind) attr.handled_access_net |= LANDLOCK_ACCESS_NET_BIND_TCP;
    if (l->tcp_connect) attr.handled_access_net |= LANDLOCK_ACCESS_NET_CONNECT_TCP;
  } else {
    tcp_ignored = l->nports;
  }
  if (abi >= ABI_SCOPE) {
    attr_size = ATTR_SIZE_ABI6;
    if (l->scope_signals) attr.scoped |= LANDLOCK_SCOPE_SIGNAL;
    if (l->scope_abstract) attr.scoped |= LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET;
  }

  long rfd = ll_create_ruleset(&attr, attr_size, 0);
  if (rfd < 0)
    return fail(err, errlen, "landlock: landlock_create_ruleset: %s", errno_name(errno));
  int fd = (int)rfd;   /* the kernel makes it close-on-exec */

  size_t npaths = 0;
  for (size_t i = 0; i < l->npaths; i++) {
    path_rule *r = &l->paths[i];
    uint64_t rights = r->rights & fs;
    if (!r->is_dir) rights &= FS_FILE_RIGHTS;
    if (!rights) continue;
    struct landlock_path_beneath_attr pb;
    memset(&pb, 0, sizeof pb);
    pb.allowed_access = rights;
    pb.parent_fd = r->fd;
    if (ll_add_rule(fd, LANDLOCK_RULE_PATH_BENEATH, &pb) != 0) {
      int e = errno;
      close(fd);
      return fail(err, errlen, "landlock: landlock_add_rule %s: %s", r->path, errno_name(e));
    }
    npaths++;
  }
  if (abi >= ABI_TCP) {
    for (size_t i = 0; i < l->nports; i++) {
      struct hc_ll_net_port_attr np;
      memset(&np, 0, sizeof np);
      np.allowed_access = l->ports[i].bind ? LANDLOCK_ACCESS_NET_BIND_TCP
                                           : LANDLOCK_ACCESS_NET_CONNECT_TCP;
      np.port = l->ports[i].port;
      if (ll_add_rule(fd, HC_LANDLOCK_RULE_NET_PORT, &np) != 0) {
        int e = errno;
        close(fd);
        return fail(err, errlen, "landlock: landlock_add_rule (TCP %s %u): %s",
                    l->ports[i].bind ? "bind" : "connect", (unsigned)l->ports[i].port,
                    errno_name(e));
      }
      tcp_rules++;
    }
  }

  /* Required without CAP_SYS_ADMIN, and wanted anyway: nothing exec'd gains privileges. */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) != 0) {
    int e = errno;
    close(fd);
    return fail(err, errlen, "landlock: PR_SET_NO_NEW_PRIVS: %s", errno_name(e));
  }
  if (ll_restrict_self(fd, tsync ? LANDLOCK_RESTRICT_SELF_TSYNC : 0U) != 0) {
    int e = errno;
    close(fd);
    return fail(err, errlen, "landlock: landlock_restrict_self: %s", errno_name(e));
  }
  close(fd);
  l->done = 1;
  pin_procfs(l);
  close_paths(l);

  char base[160];
  base_report(base, sizeof base);
  char scope[64] = "";
  int sig = !!(attr.scoped & LANDLOCK_SCOPE_SIGNAL);
  int abstract = !!(attr.scoped & LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET);
  if (sig || abstract)
    snprintf(scope, sizeof scope, ", scoped: %s%s%s", sig ? "signals" : "",
             sig && abstract ? " and " : "", abstract ? "abstract unix sockets" : "");
  char tcp[96] = "";
  if (abi >= ABI_TCP)
    snprintf(tcp, sizeof tcp, ", TCP connect %s, TCP bind %s",
             l->tcp_connect ? "by rule" : "unrestricted", l->tcp_bind ? "by rule" : "unrestricted");
  else if (tcp_ignored)
    snprintf(tcp, sizeof tcp, ", %zu TCP rule%s ignored (ABI 4 needed)", tcp_ignored,
             tcp_ignored == 1 ? "" : "s");
  const char *who = tsync ? "all threads"
                  : threads == 1 ? "the process"
                  : threads > 1 ? "this thread only, not the other threads"
                  : "this thread and what it starts";
  g_restricted = 1;
  snprintf(g_report, sizeof g_report, "%s; confined %s: %zu path rule%s, %zu TCP rule%s%s%s",
           base, who, npaths, npaths == 1 ? "" : "s", tcp_rules, tcp_rules == 1 ? "" : "s", tcp,
           scope);
  return 0;
}

/* }===== */
