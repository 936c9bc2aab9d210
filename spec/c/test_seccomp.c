/*
** test_seccomp.c: the seccomp filter (hc_seccomp). In forked children (a filter cannot be taken
** back): every refused call is EPERM, from the thread that installed it and from a thread that
** already existed (TSYNC); what the runtime and its tools need still works (files, sockets,
** epoll, clone of a child, exec); a child and an exec'd program inherit it; the runtime serves
** fs.read under it. Skipped, and said so, where the kernel has no seccomp.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostcall.h"
#include "seccomp.h"
#include "testutil.h"

/* The child's verdict: 0, or the number of the first check that failed. */
static int refused(long r) { return r == -1 && errno == EPERM; }

static int denied_calls(void) {
  if (!refused(ptrace(PTRACE_TRACEME, 0, NULL, NULL))) return 1;
  if (!refused(unshare(CLONE_NEWUSER))) return 2;
  if (!refused(syscall(SYS_setns, 0, 0))) return 3;
  if (!refused(mount("none", "/tmp", "tmpfs", 0, NULL))) return 4;
  if (!refused(syscall(SYS_bpf, 0, NULL, 0))) return 5;
  if (!refused(syscall(SYS_io_uring_setup, 1, NULL))) return 6;
  if (!refused(syscall(SYS_keyctl, 0, 0, 0, 0, 0))) return 7;
  if (!refused(syscall(SYS_open_by_handle_at, 0, NULL, 0))) return 8;
  if (!refused(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0))) return 9;
  if (!refused(syscall(SYS_userfaultfd, 0))) return 10;
  if (!refused(syscall(SYS_kexec_load, 0, 0, NULL, 0))) return 11;
  if (!refused(syscall(SYS_init_module, NULL, 0, ""))) return 12;
#if defined(__x86_64__)
  /* an x32 number for getpid (39 | bit 30): refused whole, never run as getpid */
  if (!refused(syscall(39 | 0x40000000))) return 13;
#endif
  return 0;
}

static int allowed_calls(void) {
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  char buf[64];
  if (fd < 0 || read(fd, buf, sizeof buf) <= 0) return 20;
  close(fd);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return 21;
  close(ep);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 22;
  close(sv[0]);
  close(sv[1]);
  if (getpid() <= 0) return 23;
  /* a child (clone) that execs a program: both run under the filter and still work */
  pid_t p = fork();
  if (p == 0) {
    execl("/bin/sh", "sh", "-c", "exit 7", (char *)NULL);
    _exit(99);
  }
  int st;
  if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 7) return 24;
  /* the exec'd program inherits the filter: unshare is refused there too */
  p = fork();
  if (p == 0) {
    execl("/bin/sh", "sh", "-c", "exec unshare --user true 2>/dev/null; exit 5", (char *)NULL);
    _exit(99);
  }
  if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) == 0) return 25;
  return 0;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int filtered, thread_verdict = -1;

/* A thread that exists before the filter is installed: TSYNC must cover it. */
static void *early_thread(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  while (!filtered) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  thread_verdict = refused(unshare(CLONE_NEWUSER)) && refused(ptrace(PTRACE_TRACEME, 0, NULL, NULL)) ? 0 : 30;
  return NULL;
}

static int child_main(void) {
  pthread_t th;
  if (pthread_create(&th, NULL, early_thread, NULL) != 0) return 40;
  char *err = NULL;
  if (hc_seccomp(&err) != 0) {
    fprintf(stderr, "hc_seccomp: %s\n", err ? err : "?");
    return 41;
  }
  pthread_mutex_lock(&mu);
  filtered = 1;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
  pthread_join(th, NULL);
  if (thread_verdict != 0) return thread_verdict;
  int r = denied_calls();
  if (r) return r;
  r = allowed_calls();
  if (r) return r;
  /* a runtime serves a read under the filter (openat2, the loop, the watchdog) */
  char dir[] = "/tmp/hc-test-seccomp-XXXXXX";
  if (!mkdtemp(dir)) return 50;
  char path[128], pol[256];
  snprintf(path, sizeof path, "%s/f", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, "hi", 2) != 2) return 51;
  close(fd);
  snprintf(pol, sizeof pol, "return { methods = { 'fs.*' }, mounts = { ['/d'] = { path = '%s', perms = 'ro' } } }", dir);
  hc_config cfg;
  hc_config_init(&cfg);
  hc_runtime *rt = hc_runtime_new_string(pol, strlen(pol), "t.lua", &cfg, &err);
  if (!rt) return 52;
  const char *req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"fs.read\",\"params\":{\"path\":\"/d/f\"}}";
  char *resp = NULL;
  size_t n;
  int ok = hc_call(rt, req, strlen(req), &resp, &n) == 0 && resp && strstr(resp, "\"data\":\"aGk=\"");
  hc_free(resp);
  hc_runtime_free(rt);
  unlink(path);
  rmdir(dir);
  return ok ? 0 : 53;
}

static int parent_mode;

TEST(filter_in_a_child) {
  pid_t p = fork();
  if (p == 0) _exit(child_main());
  int st = 0;
  CHECK(p > 0 && waitpid(p, &st, 0) == p);
  if (!CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0))
    fprintf(stderr, "  the child failed check %d (status %#x)\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1, st);
  /* the parent is untouched: the filter went to the child only */
  CHECK(prctl(PR_GET_SECCOMP, 0L, 0L, 0L, 0L) == parent_mode);
}

int main(void) {
  if (prctl(PR_GET_SECCOMP, 0L, 0L, 0L, 0L) < 0) {
    printf("seccomp not available here: skipped (%s)\n", hc_seccomp_report());
    return 0;
  }
  parent_mode = prctl(PR_GET_SECCOMP, 0L, 0L, 0L, 0L);   /* 2 under a container's own filter */
  CHECK(hc_seccomp_denied_count() >= 40);
  RUN(filter_in_a_child);
  return tu_summary();
}
