/*
** test_landlock.c: the process confining itself (core/landlock.c) and dropping root
** (core/privdrop.c). Both are irreversible, so every test that restricts or drops runs in a
** forked child: the child restricts, tries things, and exits with the number of its failed
** checks (each printed with its line), which the parent checks is 0. What this kernel lacks
** (Landlock itself, TCP rules before ABI 4, scoping before ABI 6, root for the privilege drop)
** is skipped with the reason printed, and the test still passes.
**
** Fixture: a private temporary tree
**   A/  allowed read-write          B/  not allowed at all (B/secret)
**   R/  allowed read-only (R/file, R/trunc, R/true: a copy of /bin/true)
**   X/  allowed read + execute (X/true)
*/
#include "landlock.h"
#include "privdrop.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int g_abi;
static char g_root[64];
static char g_a[128], g_b[128], g_r[128], g_x[128];

/* {===== helpers ===== */

static const char *ename(int e) {
  const char *n = e ? strerrorname_np(e) : "0";
  return n ? n : "?";
}

/* Checks inside a child: print, count, go on. */
static int c_failed;
#define CK(cond) \
  ((cond) ? 1 : (c_failed++, fprintf(stderr, "  child %s:%d: %s (errno %s)\n", __FILE__, \
                                     __LINE__, #cond, ename(errno)), 0))

typedef int (*child_fn)(void *arg);

/* Run fn in a forked child; its return value is the exit code. 128+N for signal N, -1.
** The child leaves with _exit (atexit handlers are the parent's business), or with exit when
** normal_exit is set: then LeakSanitizer's exit-time check runs inside the restricted child. */
static int in_child_exit(child_fn fn, void *arg, int normal_exit) {
  fflush(stdout);
  fflush(stderr);
  pid_t p = fork();
  if (p < 0) return -1;
  if (p == 0) {
    c_failed = 0;
    int r = fn(arg);
    fflush(stdout);
    fflush(stderr);
    r = r ? r : (c_failed > 100 ? 100 : c_failed);
    if (normal_exit) exit(r);
    _exit(r);
  }
  int st;
  while (waitpid(p, &st, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *path_in(char *buf, size_t size, const char *dir, const char *name) {
  snprintf(buf, size, "%s/%s", dir, name);
  return buf;
}

static void write_file(const char *path, const char *content, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t)strlen(content)) perror(path);
  if (fd >= 0) close(fd);
}

static void copy_file(const char *from, const char *to, mode_t mode) {
  int in = open(from, O_RDONLY | O_CLOEXEC);
  int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  char buf[65536];
  ssize_t n;
  if (in < 0 || out < 0) perror(to);
  while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n) { perror(to); break; }
  if (in >= 0) close(in);
  if (out >= 0) close(out);
}

static int in_child(child_fn fn, void *arg) { return in_child_exit(fn, arg, 0); }

/* open() succeeds (and the fd is closed): 1; fails with errno kept: 0. */
static int can_open(const char *path, int flags) {
  int fd = open(path, flags | O_CLOEXEC, 0600);
  if (fd < 0) return 0;
  close(fd);
  return 1;
}

static int denied(const char *path, int flags) {
  errno = 0;
  return !can_open(path, flags) && errno == EACCES;
}

static int read_equals(const char *path, const char *want) {
  char buf[256];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n < 0) return 0;
  buf[n] = '\0';
  return strcmp(buf, want) == 0;
}

/* Restrict with l (freed), printing the message on anything but 0. */
static int restrict_with(hc_landlock *l) {
  char err[512] = "";
  int r = hc_landlock_restrict(l, err, sizeof err);
  if (r != 0) fprintf(stderr, "  hc_landlock_restrict: %d: %s\n", r, err);
  hc_landlock_free(l);
  return r;
}

static int allow(hc_landlock *l, const char *path, int access) {
  char err[512] = "";
  int r = hc_landlock_allow_path(l, path, access, err, sizeof err);
  if (r < 0) fprintf(stderr, "  hc_landlock_allow_path(%s): %s\n", path, err);
  return r;
}

/* Run argv0 in a grandchild: its exit status, or 200 + errno when execve failed. */
static int run_program(const char *path) {
  pid_t p = fork();
  if (p < 0) return -1;
  if (p == 0) {
    char *const argv[] = {(char *)path, NULL};
    char *const envp[] = {NULL};
    execve(path, argv, envp);
    _exit(200 + (errno < 55 ? errno : 55));
  }
  int st;
  while (waitpid(p, &st, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A free TCP port on 127.0.0.1 (bound to 0, read back, closed), or a listener kept open. */
static int tcp_socket_on(int port, int listen_too, int *port_out) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  socklen_t len = sizeof a;
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || (listen_too && listen(s, 8) != 0) ||
      getsockname(s, (struct sockaddr *)&a, &len) != 0) {
    int e = errno;
    close(s);
    errno = e;
    return -1;
  }
  if (port_out) *port_out = ntohs(a.sin_port);
  return s;
}

static int free_port(void) {
  int port = -1;
  int s = tcp_socket_on(0, 0, &port);
  if (s >= 0) close(s);
  return port;
}

/* bind (1) or connect (0) a fresh TCP socket to 127.0.0.1:port. 0, or -1 with errno. */
static int tcp_try(int port, int bind_it) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  int r = bind_it ? bind(s, (struct sockaddr *)&a, sizeof a)
                  : connect(s, (struct sockaddr *)&a, sizeof a);
  int e = errno;
  close(s);
  errno = e;
  return r;
}

#define SKIP(name, ...) (printf("SKIP %s: ", name), printf(__VA_ARGS__), printf("\n"))

/* }===== */

/* {===== the report ===== */

TEST(report) {
  const char *rep = hc_landlock_report();
  printf("  %s\n", rep);
  CHECK(g_abi >= 0);
  if (g_abi > 0) {
    char want[64];
    snprintf(want, sizeof want, "landlock ABI %d: ", g_abi);
    CHECK(strncmp(rep, want, strlen(want)) == 0);
    if (g_abi >= 4) CHECK(strstr(rep, "TCP") != NULL);
  } else {
    CHECK(strncmp(rep, "landlock unavailable (", 22) == 0);
    CHECK(strstr(rep, "not confined") != NULL);
  }
}

/* }===== */

/* {===== filesystem ===== */

static int child_fs(void *arg) {
  (void)arg;
  char p[256], q[256];
  hc_landlock *l = hc_landlock_new();
  if (!CK(l) || !CK(allow(l, g_a, HC_LL_WRITE) == 0) || !CK(allow(l, g_r, HC_LL_READ) == 0) ||
      !CK(restrict_with(l) == 0))
    return 1;
  CK(prctl(PR_GET_NO_NEW_PRIVS, 0L, 0L, 0L, 0L) == 1);

  /* A: create, write, read back, truncate, rename within, link, symlink, remove */
  path_in(p, sizeof p, g_a, "new");
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (CK(fd >= 0)) {
    CK(write(fd, "hello", 5) == 5);
    close(fd);
  }
  CK(read_equals(p, "hello"));
  CK(can_open(p, O_WRONLY | O_TRUNC));
  CK(truncate(p, 2) == 0);
  CK(read_equals(p, ""));
  CK(mkdir(path_in(q, sizeof q, g_a, "sub"), 0700) == 0);
  CK(rename(p, path_in(q, sizeof q, g_a, "sub/new")) == 0);   /* reparenting: REFER (ABI 2) */
  CK(link(q, path_in(p, sizeof p, g_a, "hard")) == 0);
  CK(unlink(p) == 0);
  CK(symlink("sub/new", path_in(p, sizeof p, g_a, "sym")) == 0);
  CK(unlink(p) == 0);
  CK(unlink(q) == 0);
  CK(rmdir(path_in(q, sizeof q, g_a, "sub")) == 0);
  CK(can_open(g_a, O_RDONLY | O_DIRECTORY));
  /* never granted, even in A: fifos and device nodes */
  errno = 0;
  CK(mkfifo(path_in(p, sizeof p, g_a, "fifo"), 0600) != 0 && errno == EACCES);

  /* B: nothing, not even listing it */
  CK(denied(path_in(p, sizeof p, g_b, "secret"), O_RDONLY));
  CK(denied(g_b, O_RDONLY | O_DIRECTORY));
  CK(denied(path_in(p, sizeof p, g_b, "new"), O_WRONLY | O_CREAT));
  CK(denied("/etc/passwd", O_RDONLY));

  /* R: read, never write, create, remove or truncate */
  CK(read_equals(path_in(p, sizeof p, g_r, "file"), "r"));
  CK(can_open(g_r, O_RDONLY | O_DIRECTORY));
  CK(denied(p, O_WRONLY));
  CK(denied(p, O_RDONLY | O_TRUNC) || g_abi < 3);
  errno = 0;
  CK(unlink(p) != 0 && errno == EACCES);
  CK(denied(path_in(q, sizeof q, g_r, "new"), O_WRONLY | O_CREAT));
  errno = 0;
  CK(mkdir(path_in(q, sizeof q, g_r, "dir"), 0700) != 0 && errno == EACCES);
  errno = 0;
  CK(rename(p, path_in(q, sizeof q, g_a, "moved")) != 0 && errno == EACCES);   /* no remove in R */
  return 0;
}

TEST(filesystem) {
  if (g_abi == 0) { SKIP("filesystem", "%s", hc_landlock_report()); return; }
  CHECK(in_child(child_fs, NULL) == 0);
}

static int child_exec(void *arg) {
  (void)arg;
  char p[256];
  char err[512];
  hc_landlock *l = hc_landlock_new();
  if (!CK(l)) return 1;
  CK(allow(l, g_x, HC_LL_EXEC) == 0);
  CK(allow(l, g_r, HC_LL_READ) == 0);
  /* the dynamic loader and libc, for a dynamically linked program */
  if (!CK(hc_landlock_add_system_paths(l, err, sizeof err) == 0)) fprintf(stderr, "  %s\n", err);
  if (!CK(restrict_with(l) == 0)) return 1;
  CK(run_program(path_in(p, sizeof p, g_x, "true")) == 0);
  CK(run_program(path_in(p, sizeof p, g_r, "true")) == 200 + EACCES);   /* readable, not exec */
  CK(run_program("/bin/true") == 200 + EACCES);                         /* outside every rule */
  CK(read_equals(path_in(p, sizeof p, g_r, "file"), "r"));
  return 0;
}

TEST(exec) {
  if (g_abi == 0) { SKIP("exec", "%s", hc_landlock_report()); return; }
  CHECK(in_child(child_exec, NULL) == 0);
}

/* A path that does not exist is skipped; a rule on one file allows that file only. */
static int child_file_rule(void *arg) {
  (void)arg;
  char p[256];
  hc_landlock *l = hc_landlock_new();
  if (!CK(l)) return 1;
  /* file rules carry only file rights: WRITE and EXEC on a file must not be refused */
  if (!CK(allow(l, path_in(p, sizeof p, g_r, "trunc"), HC_LL_READ | HC_LL_WRITE | HC_LL_EXEC) == 0))
    return 1;
  CK(allow(l, "/nonexistent-hostcall/dir", HC_LL_WRITE) == 1);
  if (!CK(restrict_with(l) == 0)) return 1;
  CK(can_open(p, O_RDWR));
  CK(denied(path_in(p, sizeof p, g_r, "file"), O_RDONLY));
  CK(denied(g_r, O_RDONLY | O_DIRECTORY));
  return 0;
}

TEST(paths) {
  char err[256] = "";
  hc_landlock *l = hc_landlock_new();
  CHECK(l != NULL);
  CHECK(hc_landlock_allow_path(l, "/nonexistent-hostcall/x", HC_LL_READ, err, sizeof err) == 1);
  CHECK(hc_landlock_allow_path(l, "/etc/hostname/below-a-file", HC_LL_READ, err, sizeof err) == 1);
  CHECK(hc_landlock_allow_path(l, "", HC_LL_READ, err, sizeof err) == -1);
  CHECK(hc_landlock_allow_path(l, NULL, HC_LL_READ, err, sizeof err) == -1);
  CHECK(hc_landlock_allow_path(l, g_a, 0, err, sizeof err) == -1);
  CHECK(strstr(err, "bad access") != NULL);
  CHECK(hc_landlock_allow_path(l, g_a, 8, err, sizeof err) == -1);
  CHECK(hc_landlock_allow_path(l, g_a, HC_LL_READ, err, sizeof err) == 0);
  CHECK(hc_landlock_allow_tcp(l, 70000, 1, err, sizeof err) == -1);
  CHECK(strstr(err, "70000") != NULL);
  CHECK(hc_landlock_allow_tcp(l, -1, 0, err, sizeof err) == -1);
  CHECK(hc_landlock_allow_tcp(l, 443, 0, err, sizeof err) == 0);
  CHECK(hc_landlock_add_system_paths(l, err, sizeof err) == 0);
  hc_landlock_free(l);   /* never applied: nothing happened to this process */
  CHECK(can_open(g_b, O_RDONLY | O_DIRECTORY));
  hc_landlock_free(NULL);
  if (g_abi == 0) { SKIP("paths (a file rule)", "%s", hc_landlock_report()); return; }
  CHECK(in_child(child_file_rule, NULL) == 0);
}

/* A second restriction narrows the first; the same object cannot be applied twice. */
static int child_stack(void *arg) {
  (void)arg;
  char p[256], err[256];
  hc_landlock *l = hc_landlock_new();
  if (!CK(l)) return 1;
  CK(allow(l, g_a, HC_LL_WRITE) == 0);
  CK(allow(l, g_r, HC_LL_READ) == 0);
  if (!CK(hc_landlock_restrict(l, err, sizeof err) == 0)) return 1;
  CK(hc_landlock_restrict(l, err, sizeof err) == -1);
  CK(hc_landlock_allow_path(l, g_b, HC_LL_READ, err, sizeof err) == -1);
  hc_landlock_free(l);
  CK(read_equals(path_in(p, sizeof p, g_r, "file"), "r"));
  l = hc_landlock_new();
  if (!CK(l)) return 1;
  CK(allow(l, g_a, HC_LL_WRITE) == 0);
  CK(allow(l, g_b, HC_LL_READ) == 0);   /* allowed here, but the first ruleset still says no */
  if (!CK(restrict_with(l) == 0)) return 1;
  CK(denied(path_in(p, sizeof p, g_r, "file"), O_RDONLY));
  CK(denied(path_in(p, sizeof p, g_b, "secret"), O_RDONLY));
  CK(can_open(path_in(p, sizeof p, g_a, "stacked"), O_WRONLY | O_CREAT));
  CK(unlink(p) == 0);
  return 0;
}

TEST(stacking) {
  if (g_abi == 0) { SKIP("stacking", "%s", hc_landlock_report()); return; }
  CHECK(in_child(child_stack, NULL) == 0);
}

/* }===== */

/* {===== what a serve needs ===== */

static int child_system(void *arg) {
  (void)arg;
  char err[512];
  hc_landlock *l = hc_landlock_new();
  if (!CK(l)) return 1;
  if (!CK(hc_landlock_add_system_paths(l, err, sizeof err) == 0)) fprintf(stderr, "  %s\n", err);
  if (!CK(restrict_with(l) == 0)) return 1;

  const char *readable[] = {"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf",
                            "/etc/services", "/etc/ssl/certs/ca-certificates.crt",
                            "/usr/lib/ssl/openssl.cnf", "/usr/lib/ssl/cert.pem",
                            "/etc/ld.so.cache", "/proc/self/status", "/proc/self/maps"};
  for (size_t i = 0; i < sizeof readable / sizeof readable[0]; i++) {
    if (access(readable[i], F_OK) != 0) continue;   /* stat is not confined: absent here */
    if (!CK(can_open(readable[i], O_RDONLY))) fprintf(stderr, "  (%s)\n", readable[i]);
  }
  CK(can_open("/dev/null", O_RDWR));
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  char rnd[16];
  if (CK(fd >= 0)) {
    CK(read(fd, rnd, sizeof rnd) == (ssize_t)sizeof rnd);
    close(fd);
  }
  DIR *d = opendir("/proc/self/fd");   /* what a close-range fallback lists */
  if (CK(d != NULL)) closedir(d);
  /* not a system path */
  CK(denied("/etc/passwd", O_RDONLY));
  CK(denied("/etc/shadow", O_RDONLY));
  if (access("/etc/ssl/private", F_OK) == 0) CK(denied("/etc/ssl/private", O_RDONLY | O_DIRECTORY));
  CK(denied("/usr/bin", O_RDONLY | O_DIRECTORY));
  CK(denied("/tmp", O_RDONLY | O_DIRECTORY));
  CK(!can_open("/usr/lib/x86_64-linux-gnu/new-file", O_WRONLY | O_CREAT));

  /* the resolver, as the runtime's workers call it */
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo("localhost", NULL, &hints, &res);
  if (!CK(rc == 0)) fprintf(stderr, "  getaddrinfo: %s\n", gai_strerror(rc));
  if (res) freeaddrinfo(res);

  /* TLS: the system trust store through OpenSSL's default paths */
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (CK(ctx != NULL)) {
    CK(SSL_CTX_set_default_verify_paths(ctx) == 1);
    if (access("/usr/lib/ssl/cert.pem", F_OK) == 0)
      CK(sk_X509_OBJECT_num(X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx))) > 0);
    SSL_CTX_free(ctx);
  }

  /* /proc/self is this process's directory: a child's own /proc/self is another one */
  pid_t p = fork();
  if (p == 0) _exit(can_open("/proc/self/status", O_RDONLY) ? 1 : errno == EACCES ? 0 : 2);
  int st = -1;
  CK(p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  return 0;
}

TEST(system_paths) {
  if (g_abi == 0) { SKIP("system_paths", "%s", hc_landlock_report()); return; }
  CHECK(in_child(child_system, NULL) == 0);
}

/* Under ASan, LeakSanitizer's exit-time check lists /proc/<pid>/task from a helper it clones:
** the /proc/self rule covers it (without it: "LeakSanitizer has encountered a fatal error"). */
static int child_exit(void *arg) {
  (void)arg;
  char err[512];
  hc_landlock *l = hc_landlock_new();
  if (!CK(l)) return 1;
  if (!CK(hc_landlock_add_system_paths(l, err, sizeof err) == 0)) fprintf(stderr, "  %s\n", err);
  if (!CK(restrict_with(l) == 0)) return 1;
  static void *kept;
  kept = malloc(64);   /* reachable at exit: not a leak, but the check walks it */
  return kept ? 0 : 1;
}

TEST(exit_checks) {
  if (g_abi == 0) { SKIP("exit_checks", "%s", hc_landlock_report()); return; }
  CHECK(in_child_exit(child_exit, NULL, 1) == 0);
}

/* The /proc/self rule must survive the kernel reclaiming /proc dentries: procfs makes a new
** inode for /proc/<pid> when it is looked up again, and a rule names an inode. The restriction
** keeps the rule's fd open to pin it. Without the pin a read after a drop_caches fails with
** EACCES often but not always (whether the dentry goes depends on the dcache's LRU and on
** whoever else reads /proc): this test shows the pinned rule survives every round; it cannot
** promise to catch a missing pin on every run. Needs root (drop_caches). */
#define PIN_ROUNDS 6
typedef struct sync_pipes { int to_parent[2], to_child[2]; } sync_pipes;

static int child_proc_pin(void *arg) {
  sync_pipes *sp = arg;
  char err[512], c = 'x';
  hc_landlock *l = hc_landlock_new();
  if (!CK(l)) return 1;
  if (!CK(hc_landlock_add_system_paths(l, err, sizeof err) == 0)) fprintf(stderr, "  %s\n", err);
  if (!CK(restrict_with(l) == 0)) return 1;
  CK(can_open("/proc/self/status", O_RDONLY));
  /* Reclaim is not deterministic (a dentry used lately survives one pass): several rounds. */
  for (int round = 0; round < PIN_ROUNDS; round++) {
    CK(write(sp->to_parent[1], &c, 1) == 1);
    CK(read(sp->to_child[0], &c, 1) == 1);   /* the parent has dropped the caches */
    if (!CK(can_open("/proc/self/status", O_RDONLY))) fprintf(stderr, "  round %d\n", round);
  }
  DIR *d = opendir("/proc/self/fd");
  if (CK(d != NULL)) closedir(d);
  return 0;
}

static void *drop_caches_when_asked(void *arg) {
  sync_pipes *sp = arg;
  char c;
  while (read(sp->to_parent[0], &c, 1) == 1) {
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "2", 1) != 1) perror("drop_caches");
    if (fd >= 0) close(fd);
    if (write(sp->to_child[1], &c, 1) != 1) perror("pipe");
  }
  return NULL;
}

TEST(proc_pin) {
  if (g_abi == 0) { SKIP("proc_pin", "%s", hc_landlock_report()); return; }
  if (access("/proc/sys/vm/drop_caches", W_OK) != 0) {
    SKIP("proc_pin", "cannot write /proc/sys/vm/drop_caches (%s): needs root", ename(errno));
    return;
  }
  sync_pipes sp;
  if (!CHECK(pipe2(sp.to_parent, O_CLOEXEC) == 0 && pipe2(sp.to_child, O_CLOEXEC) == 0)) return;
  pthread_t th;   /* the parent answers from a thread while it waits for the child */
  if (!CHECK(pthread_create(&th, NULL, drop_caches_when_asked, &sp) == 0)) return;
  CHECK(in_child(child_proc_pin, &sp) == 0);
  close(sp.to_parent[1]);   /* the thread's read ends */
  pthread_join(th, NULL);
  close(sp.to_parent[0]);
  close(sp.to_child[0]);
  close(sp.to_child[1]);
}

/* }===== */

/* {===== TCP ===== */

typedef struct tcp_ports { int bind_ok, bind_other, listen_ok, listen_other; } tcp_ports;

static int child_tcp(void *arg) {
  const tcp_ports *t = arg;
  char err[256];
  hc_landlock *l = hc_landlock_new();
  if (!CK(l)) return 1;
  CK(hc_landlock_allow_tcp(l, t->bind_ok, 1, err, sizeof err) == 0);
  CK(hc_landlock_allow_tcp(l, t->listen_ok, 0, err, sizeof err) == 0);
  if (!CK(restrict_with(l) == 0)) return 1;
  CK(strstr(hc_landlock_report(), "2 TCP rules") != NULL);
  CK(tcp_try(t->bind_ok, 1) == 0);
  errno = 0;
  CK(tcp_try(t->bind_other, 1) == -1 && errno == EACCES);
  CK(tcp_try(t->listen_ok, 0) == 0);
  errno = 0;
  CK(tcp_try(t->listen_other, 0) == -1 && errno == EACCES);   /* a listener is there */
  /* UDP is not TCP: never restricted */
  int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CK(u >= 0 && bind(u, (struct sockaddr *)&a, sizeof a) == 0);
  if (u >= 0) close(u);
  return 0;
}

/* Only binding is restricted: connecting is not, and a bind-deny with no port refuses all. */
static int child_tcp_one_way(void *arg) {
  const tcp_ports *t = arg;
  hc_landlock *l = hc_landlock_new();
  if (!CK(l)) return 1;
  hc_landlock_deny_tcp(l, 1);
  if (!CK(restrict_with(l) == 0)) return 1;
  CK(strstr(hc_landlock_report(), "TCP connect unrestricted, TCP bind by rule") != NULL);
  errno = 0;
  CK(tcp_try(t->bind_ok, 1) == -1 && errno == EACCES);
  CK(tcp_try(t->listen_other, 0) == 0);
  return 0;
}

TEST(tcp) {
  if (g_abi < 4) {
    SKIP("tcp", "Landlock ABI %d: TCP rules need ABI 4 (Linux 6.7); they are recorded and ignored",
         g_abi);
    return;
  }
  tcp_ports t;
  int l1 = tcp_socket_on(0, 1, &t.listen_ok), l2 = tcp_socket_on(0, 1, &t.listen_other);
  t.bind_ok = free_port();
  t.bind_other = free_port();
  CHECK(l1 >= 0 && l2 >= 0 && t.bind_ok > 0 && t.bind_other > 0 && t.bind_ok != t.bind_other);
  CHECK(in_child(child_tcp, &t) == 0);
  CHECK(in_child(child_tcp_one_way, &t) == 0);
  if (l1 >= 0) close(l1);
  if (l2 >= 0) close(l2);
}

/* }===== */

/* {===== every ABI this kernel can emulate ===== */

typedef struct abi_case { int abi, bind_ok, bind_other; } abi_case;

static int child_abi(void *arg) {
  const abi_case *c = arg;
  char p[256], q[256], err[512];
  hc_landlock_testing_cap_abi(c->abi);
  CK(hc_landlock_abi() == c->abi);
  hc_landlock *l = hc_landlock_new();
  if (!CK(l)) return 1;
  CK(allow(l, g_a, HC_LL_WRITE) == 0);
  CK(allow(l, g_r, HC_LL_READ) == 0);
  CK(allow(l, g_x, HC_LL_EXEC) == 0);
  CK(hc_landlock_add_system_paths(l, err, sizeof err) == 0);
  CK(hc_landlock_allow_tcp(l, c->bind_ok, 1, err, sizeof err) == 0);
  if (!CK(restrict_with(l) == 0)) return 1;   /* never EINVAL: no right the ABI does not know */
  const char *rep = hc_landlock_report();
  char want[32];
  snprintf(want, sizeof want, "landlock ABI %d:", c->abi);
  CK(strncmp(rep, want, strlen(want)) == 0);
  if (c->abi < 4) CK(strstr(rep, "1 TCP rule ignored (ABI 4 needed)") != NULL);
  /* the same filesystem picture at every level */
  CK(can_open(path_in(p, sizeof p, g_a, "abi"), O_WRONLY | O_CREAT));
  CK(denied(path_in(q, sizeof q, g_b, "secret"), O_RDONLY));
  CK(run_program(path_in(q, sizeof q, g_x, "true")) == 0);
  CK(run_program(path_in(q, sizeof q, g_r, "true")) == 200 + EACCES);
  /* reparenting: ABI 1 cannot allow it (EXDEV), ABI 2 can */
  CK(mkdir(path_in(q, sizeof q, g_a, "abi-d"), 0700) == 0);
  char r[300];
  snprintf(r, sizeof r, "%s/abi", q);
  errno = 0;
  if (c->abi == 1) CK(rename(p, r) == -1 && errno == EXDEV);
  else CK(rename(p, r) == 0);
  unlink(p);
  unlink(r);
  CK(rmdir(q) == 0);
  /* truncate is restricted from ABI 3 */
  errno = 0;
  if (c->abi >= 3) CK(truncate(path_in(q, sizeof q, g_r, "trunc"), 0) == -1 && errno == EACCES);
  /* TCP from ABI 4 */
  errno = 0;
  if (c->abi >= 4) CK(tcp_try(c->bind_other, 1) == -1 && errno == EACCES);
  else CK(tcp_try(c->bind_other, 1) == 0);
  CK(tcp_try(c->bind_ok, 1) == 0);
  return 0;
}

TEST(abi_levels) {
  if (g_abi == 0) { SKIP("abi_levels", "%s", hc_landlock_report()); return; }
  for (int abi = 1; abi <= g_abi; abi++) {
    abi_case c = {abi, free_port(), free_port()};
    int rc = in_child(child_abi, &c);
    if (!CHECK(rc == 0)) fprintf(stderr, "  at ABI %d\n", abi);
  }
  printf("  rulesets for ABI 1..%d applied\n", g_abi);
}

/* }===== */

/* {===== threads ===== */

typedef struct probe_thread {
  int cmd[2], ans[2];
  pthread_t th;
} probe_thread;

/* Waits for a byte, then tries to read B/secret and answers 1 (could) or 0 (EACCES). */
static void *probe_main(void *arg) {
  probe_thread *t = arg;
  char c, p[256];
  while (read(t->cmd[0], &c, 1) == 1) {
    char a = (char)can_open(path_in(p, sizeof p, g_b, "secret"), O_RDONLY);
    if (write(t->ans[1], &a, 1) != 1) break;
  }
  return NULL;
}

static int probe_start(probe_thread *t) {
  if (pipe2(t->cmd, O_CLOEXEC) != 0 || pipe2(t->ans, O_CLOEXEC) != 0) return -1;
  return pthread_create(&t->th, NULL, probe_main, t) == 0 ? 0 : -1;
}

static int probe_ask(probe_thread *t) {
  char c = 'x', a = -1;
  if (write(t->cmd[1], &c, 1) != 1 || read(t->ans[0], &a, 1) != 1) return -1;
  return a;
}

static void probe_stop(probe_thread *t) {
  close(t->cmd[1]);
  pthread_join(t->th, NULL);
  close(t->cmd[0]);
  close(t->ans[0]);
  close(t->ans[1]);
}

static int child_threads(void *arg) {
  (void)arg;
  char p[256], err[512];
  probe_thread before, after;
  if (!CK(probe_start(&before) == 0)) return 1;
  CK(probe_ask(&before) == 1);

  hc_landlock *l = hc_landlock_new();
  if (!CK(l)) return 1;
  CK(allow(l, g_a, HC_LL_WRITE) == 0);
  if (g_abi >= 8) {   /* LANDLOCK_RESTRICT_SELF_TSYNC: every thread at once */
    CK(restrict_with(l) == 0);
    CK(strstr(hc_landlock_report(), "all threads") != NULL);
    CK(probe_ask(&before) == 0);
  } else {
    /* refused while another thread runs: it would stay unconfined */
    CK(hc_landlock_restrict(l, err, sizeof err) == -1);
    CK(strstr(err, "2 threads") != NULL);
    CK(can_open(path_in(p, sizeof p, g_b, "secret"), O_RDONLY));   /* nothing was applied */
    /* the embedder accepts the consequence */
    hc_landlock_thread_only(l);
    CK(restrict_with(l) == 0);
    CK(strstr(hc_landlock_report(), "this thread only") != NULL);
    CK(denied(path_in(p, sizeof p, g_b, "secret"), O_RDONLY));
    CK(probe_ask(&before) == 1);   /* the thread that existed before: NOT confined */
  }
  /* a thread created after the restriction inherits it */
  if (CK(probe_start(&after) == 0)) {
    CK(probe_ask(&after) == 0);
    probe_stop(&after);
  }
  probe_stop(&before);
  return 0;
}

TEST(threads) {
  if (g_abi == 0) { SKIP("threads", "%s", hc_landlock_report()); return; }
  CHECK(in_child(child_threads, NULL) == 0);
}

/* }===== */

/* {===== scoping (ABI 6) ===== */

static int abstract_listener(const char *name, struct sockaddr_un *a, socklen_t *len) {
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  size_t n = strlen(name);
  memcpy(a->sun_path + 1, name, n);   /* sun_path[0] = 0: the abstract namespace */
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
  if (bind(s, (struct sockaddr *)a, *len) != 0 || listen(s, 4) != 0) {
    close(s);
    return -1;
  }
  return s;
}

typedef struct scope_case { int scoped; struct sockaddr_un addr; socklen_t len; } scope_case;

static int child_scope(void *arg) {
  const scope_case *c = arg;
  hc_landlock *l = hc_landlock_new();
  if (!CK(l)) return 1;
  CK(allow(l, g_a, HC_LL_WRITE) == 0);
  if (!c->scoped) hc_landlock_scope(l, 0, 0);
  if (!CK(restrict_with(l) == 0)) return 1;
  errno = 0;
  if (c->scoped) CK(kill(getppid(), 0) == -1 && errno == EPERM);   /* outside the domain */
  else CK(kill(getppid(), 0) == 0);
  pid_t p = fork();   /* inside it */
  if (p == 0) { pause(); _exit(0); }
  CK(p > 0 && kill(p, SIGKILL) == 0);
  int st;
  CK(p > 0 && waitpid(p, &st, 0) == p);
  CK(kill(getpid(), 0) == 0);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  errno = 0;
  int r = connect(s, (const struct sockaddr *)&c->addr, c->len);
  if (c->scoped) CK(r == -1 && errno == EPERM);
  else CK(r == 0);
  close(s);
  return 0;
}

TEST(scoping) {
  if (g_abi < 6) {
    SKIP("scoping", "Landlock ABI %d: signal and abstract-socket scoping need ABI 6 (Linux 6.12)",
         g_abi);
    return;
  }
  scope_case c;
  char name[64];
  snprintf(name, sizeof name, "hostcall-landlock-test-%d", (int)getpid());
  int s = abstract_listener(name, &c.addr, &c.len);
  CHECK(s >= 0);
  c.scoped = 1;
  CHECK(in_child(child_scope, &c) == 0);
  c.scoped = 0;
  CHECK(in_child(child_scope, &c) == 0);
  if (s >= 0) close(s);
}

/* }===== */

/* {===== dropping privileges ===== */

static uid_t g_nobody_uid;
static gid_t g_nobody_gid;

static void *uid_thread(void *arg) {
  long *out = arg;
  *out = syscall(SYS_getuid);   /* this thread's own credentials */
  return NULL;
}

static int child_drop(void *arg) {
  (void)arg;
  char err[512] = "", p[256];
  if (!CK(hc_drop_privileges("nobody", err, sizeof err) == 0)) {
    fprintf(stderr, "  %s\n", err);
    return 1;
  }
  CK(getuid() == g_nobody_uid && geteuid() == g_nobody_uid);
  CK(getgid() == g_nobody_gid && getegid() == g_nobody_gid);
  gid_t groups[64];
  int n = getgroups(64, groups);
  CK(n >= 0);
  for (int i = 0; i < n; i++) CK(groups[i] != 0);
  errno = 0;
  CK(setuid(0) == -1 && errno == EPERM);
  errno = 0;
  CK(seteuid(0) == -1 && errno == EPERM);
  errno = 0;
  CK(setgid(0) == -1 && errno == EPERM);
  CK(prctl(PR_GET_DUMPABLE, 0L, 0L, 0L, 0L) == 0);   /* the kernel's rule on a uid change */
  long tuid = -1;   /* a thread created after the drop */
  pthread_t th;
  if (CK(pthread_create(&th, NULL, uid_thread, &tuid) == 0)) {
    pthread_join(th, NULL);
    CK(tuid == (long)g_nobody_uid);
  }
  /* again: already that user */
  CK(hc_drop_privileges("nobody", err, sizeof err) == 0);
  /* another user: not root any more */
  CK(hc_drop_privileges("daemon", err, sizeof err) == -1);
  CK(strstr(err, "not root") != NULL || strstr(err, "no such user") != NULL);
  /* Landlock after the drop: no_new_privs makes it allowed without capabilities */
  if (g_abi > 0) {
    hc_landlock *l = hc_landlock_new();
    if (CK(l)) {
      CK(allow(l, g_r, HC_LL_READ) == 0);
      CK(restrict_with(l) == 0);
      CK(read_equals(path_in(p, sizeof p, g_r, "file"), "r"));
      CK(denied(path_in(p, sizeof p, g_b, "secret"), O_RDONLY));
    }
  }
  return 0;
}

/* A thread that was running before the drop reads its own uid after it: glibc applies the
** set*id calls to every thread. */
typedef struct parked { int cmd[2]; long uid; } parked;

static void *parked_main(void *arg) {
  parked *k = arg;
  char c;
  if (read(k->cmd[0], &c, 1) == 1) k->uid = syscall(SYS_getuid);
  return NULL;
}

static int child_drop_threads(void *arg) {
  (void)arg;
  char err[512] = "";
  parked k = {{-1, -1}, -1};
  pthread_t th;
  if (!CK(pipe2(k.cmd, O_CLOEXEC) == 0) || !CK(pthread_create(&th, NULL, parked_main, &k) == 0))
    return 1;
  if (!CK(hc_drop_privileges("nobody", err, sizeof err) == 0)) fprintf(stderr, "  %s\n", err);
  char c = 'x';
  CK(write(k.cmd[1], &c, 1) == 1);
  pthread_join(th, NULL);
  CK(k.uid == (long)g_nobody_uid);
  close(k.cmd[0]);
  close(k.cmd[1]);
  return 0;
}

TEST(privileges) {
  char err[512] = "";
  CHECK(hc_drop_privileges("no-such-user-hostcall", err, sizeof err) == -1);
  CHECK(strstr(err, "no such user") != NULL);
  CHECK(hc_drop_privileges("root", err, sizeof err) == -1);
  CHECK(strstr(err, "refusing") != NULL);
  CHECK(hc_drop_privileges("", err, sizeof err) == -1);
  CHECK(getuid() == geteuid());   /* nothing changed here */
  if (geteuid() != 0) {
    SKIP("privileges (drop)", "not running as root (uid %u)", (unsigned)geteuid());
    return;
  }
  struct passwd *pw = getpwnam("nobody");
  if (!pw) { SKIP("privileges (drop)", "no user \"nobody\" here"); return; }
  g_nobody_uid = pw->pw_uid;
  g_nobody_gid = pw->pw_gid;
  CHECK(in_child(child_drop, NULL) == 0);
  CHECK(in_child(child_drop_threads, NULL) == 0);
  CHECK(getuid() == 0);
}

/* }===== */

static void fixture(void) {
  char p[256];
  snprintf(g_root, sizeof g_root, "/tmp/hc-landlock-XXXXXX");
  if (!mkdtemp(g_root)) { perror("mkdtemp"); exit(1); }
  if (chmod(g_root, 0755) != 0) perror(g_root);   /* readable by "nobody" after the drop */
  snprintf(g_a, sizeof g_a, "%s/A", g_root);
  snprintf(g_b, sizeof g_b, "%s/B", g_root);
  snprintf(g_r, sizeof g_r, "%s/R", g_root);
  snprintf(g_x, sizeof g_x, "%s/X", g_root);
  const char *dirs[] = {g_a, g_b, g_r, g_x};
  for (int i = 0; i < 4; i++)
    if (mkdir(dirs[i], 0755) != 0) { perror(dirs[i]); exit(1); }
  write_file(path_in(p, sizeof p, g_b, "secret"), "s", 0644);
  write_file(path_in(p, sizeof p, g_r, "file"), "r", 0644);
  write_file(path_in(p, sizeof p, g_r, "trunc"), "truncate me", 0644);
  copy_file("/bin/true", path_in(p, sizeof p, g_r, "true"), 0755);
  copy_file("/bin/true", path_in(p, sizeof p, g_x, "true"), 0755);
}

static void cleanup(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
  if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", g_root);
}

int main(void) {
  g_abi = hc_landlock_abi();
  fixture();
  RUN(report);
  RUN(paths);
  RUN(filesystem);
  RUN(exec);
  RUN(stacking);
  RUN(system_paths);
  RUN(exit_checks);
  RUN(proc_pin);
  RUN(tcp);
  RUN(abi_levels);
  RUN(threads);
  RUN(scoping);
  RUN(privileges);
  cleanup();
  return tu_summary();
}
