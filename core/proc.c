/*
** proc.c: a tool as a child process (docs/tools.md).
**
** Start: clone(CLONE_PIDFD | CLONE_VFORK [| CLONE_NEWPID [| CLONE_NEWUSER]]) in the fork style
** (no CLONE_VM, no new stack: the child runs on a private copy of this thread's stack), with
** every signal blocked around it and exit_signal 0 (execve resets it to SIGCHLD: until then a
** child that fails raises no SIGCHLD and no embedder's waitpid(-1) can take it from us). The
** child makes raw syscalls only (no malloc, no stdio, no locks): it maps its uid (user
** namespace), becomes a session leader, asks for SIGKILL on its parent's death, forbids core
** dumps, fchdirs, puts the pipes on 0/1/2, closes every other fd, resets every signal to
** SIG_DFL with an empty mask, and execve()s argv[0] with envp. CLONE_VFORK holds the parent until
** that execve has succeeded or the child has died; an exec failure's errno comes back through a
** CLOEXEC pipe that is read without blocking, since by then it is either written or never will be.
**
** Confinement: in a PID namespace the tool is PID 1, and when PID 1 dies the kernel kills every
** process of the namespace before the pidfd turns readable. Without one the tool is a session
** leader and a child subreaper (so orphans below it stay below it while it runs); killing it
** SIGSTOPs the whole subtree, found from /proc ppid links and the tool's process group, until no
** new process appears, then SIGKILLs each through a pidfd.
*/
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef __WALL
#define __WALL 0x40000000
#endif
#ifndef PR_SET_CHILD_SUBREAPER
#define PR_SET_CHILD_SUBREAPER 36
#endif
/* The generic syscall numbers (identical on every architecture but alpha and mips, whose headers
** always define them). */
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* The raw clone syscall takes (flags, stack, parent_tid, ...) everywhere but s390 and microblaze;
** CLONE_PIDFD returns the pidfd through parent_tid. Used only where clone3 is ENOSYS (old kernels,
** container seccomp profiles that answer ENOSYS to clone3). */
#if defined(SYS_clone) && !defined(__s390__) && !defined(__s390x__) && !defined(__microblaze__)
#define HC_LEGACY_CLONE 1
#endif

#define READ_CHUNK 65536
#define READS_PER_STEP 16           /* per stream: the loop stays responsive to a flooding tool */
#define FINAL_DRAIN_READS 64        /* after the reap: what the pipes hold (<= pipe-max-size),
                                    ** bounded even if an escaped writer remains (fallback path) */
#define WALK_ROUNDS 64              /* /proc scans per kill (fallback path) */

struct hc_proc {
  pid_t pid;
  int pidfd, in_fd, out_fd, err_fd;
  int mode;                  /* HC_PROC_ISO_* this tool started with */
  int state;
  int kill_reason;           /* 0, HC_PROC_KILLED or HC_PROC_OVERFLOW: the first wins */
  int exited;                /* seen exited (zombie) in the fallback: group swept */
  int reaped;
  int wcode, wstatus;        /* si_code and si_status from waitid */
  char *in; size_t in_len, in_off;
  char *out; size_t out_len, out_cap, max_out;
  char *err; size_t err_len, err_cap, max_err;
};

/* {===== small helpers ===== */

static int pidfd_signal(int pidfd, int sig) {
  return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static int pidfd_open_pid(pid_t pid) {
  return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);   /* close(2) on Linux releases the fd even when it reports EINTR/EIO */
  *fd = -1;
}

/* Move an fd above 2 so the child's dup3 onto 0/1/2 can never meet it; 0 or -1 with errno. */
static int above_stdio(int *fd) {
  if (*fd > 2) return 0;
  int n = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
  if (n < 0) return -1;
  close(*fd);
  *fd = n;
  return 0;
}

static int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -1;
  return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* write(2) without ever raising SIGPIPE in the process (as core/session.c does): SIGPIPE is
** blocked in this thread around the write, and one it raised is consumed before unblocking. */
static ssize_t write_nosigpipe(int fd, const void *p, size_t n) {
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  int was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
  if (pthread_sigmask(SIG_BLOCK, &pipe_set, &old) != 0) { errno = EINVAL; return -1; }
  ssize_t r = write(fd, p, n);
  int e = errno;
  if (r < 0 && e == EPIPE && !was_pending) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {}
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);   /* restoring a mask we read cannot fail */
  errno = e;
  return r;
}

/* }===== */

/* {===== the child (between clone and execve: raw syscalls on prepared data only) ===== */

typedef struct child_args {
  const char *path;
  char *const *argv, *const *envp;
  int cwd_fd;
  int in_fd, out_fd, err_fd;  /* the child's ends, all > 2 */
  int ep;                     /* the exec-error pipe's write end (> 2), or -1 when probing */
  int userns, map_ids, subreaper, probe, no_close_range;
  char uid_map[48], gid_map[48];
  unsigned long fd_limit;     /* for the last-resort close loop */
  struct sigaction dfl;
  sigset_t empty;
} child_args;

struct hc_rlimit64 { uint64_t cur, max; };

#define RAW_ATTRS __attribute__((noreturn, noinline, no_sanitize("address", "undefined")))
#define RAW_FN __attribute__((noinline, no_sanitize("address", "undefined")))

RAW_ATTRS static void child_fail(int ep, int e) {
  if (ep >= 0) {
    long r;
    do r = syscall(SYS_write, ep, &e, sizeof e); while (r < 0 && errno == EINTR);
  }
  for (;;) syscall(SYS_exit_group, ep >= 0 ? 127 : (e & 0xff ? e & 0xff : 1));
}

RAW_FN static int child_write_file(const char *path, const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  long fd = syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  long r;
  do r = syscall(SYS_write, (int)fd, s, n); while (r < 0 && errno == EINTR);
  int e = r < 0 ? errno : (size_t)r != n ? EIO : 0;
  syscall(SYS_close, (int)fd);
  return e;
}

/* close_range's fallback: list /proc/self/fd (getdents64 on a stack buffer), closing every fd
** above `keep` but the listing's own; without /proc, close every number up to the limit. */
RAW_FN static void child_close_from(int keep, unsigned long limit) {
  long d = syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d >= 0) {
    long buf[512];   /* long-aligned for the records */
    long n;
    for (;;) {
      n = syscall(SYS_getdents64, (int)d, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      char *b = (char *)buf;
      for (long off = 0; off < n;) {
        unsigned short reclen;
        memcpy(&reclen, b + off + 16, sizeof reclen);   /* d_ino u64, d_off s64, d_reclen u16 */
        const char *name = b + off + 19;
        long fd = 0;
        int digits = name[0] != 0;
        for (const char *c = name; *c; c++) {
          if (*c < '0' || *c > '9' || fd > INT_MAX / 10) { digits = 0; break; }
          fd = fd * 10 + (*c - '0');
        }
        if (digits && fd > keep && fd != d) syscall(SYS_close, (int)fd);
        off += reclen ? reclen : n;
      }
    }
    syscall(SYS_close, (int)d);
    if (n == 0) return;   /* listed to the end: every fd above keep is closed */
  }
  for (unsigned long fd = (unsigned long)keep + 1; fd < limit; fd++) syscall(SYS_close, (int)fd);
}

RAW_ATTRS static void child_main(const child_args *a) {
  int ep = a->ep, e;
  if (a->map_ids) {
    /* The child maps its own uid and gid (itself, 1:1): allowed from inside a new user namespace
    ** for the creator's ids only, once setgroups is denied. */
    if ((e = child_write_file("/proc/self/setgroups", "deny")) ||
        (e = child_write_file("/proc/self/uid_map", a->uid_map)) ||
        (e = child_write_file("/proc/self/gid_map", a->gid_map)))
      child_fail(ep, e);
  }
  if (a->probe) for (;;) syscall(SYS_exit_group, 0);

  if (syscall(SYS_setsid) < 0) child_fail(ep, errno);
  if (a->subreaper && syscall(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1L, 0L, 0L, 0L) < 0)
    child_fail(ep, errno);
  /* (The parent thread is held in CLONE_VFORK's wait meanwhile: it can die before this only by a
  ** SIGKILL or another thread's exit_group, which end the whole runtime.) */
  if (syscall(SYS_prctl, PR_SET_PDEATHSIG, (long)SIGKILL, 0L, 0L, 0L) < 0) child_fail(ep, errno);
  /* No core files: a tool's memory holds its env (operator secrets) and cwd is a tenant's mount. */
  struct hc_rlimit64 nocore = {0, 0};
  if (syscall(SYS_prlimit64, 0, RLIMIT_CORE, &nocore, NULL) < 0) child_fail(ep, errno);
  if (a->cwd_fd >= 0 ? syscall(SYS_fchdir, a->cwd_fd) < 0 : syscall(SYS_chdir, "/") < 0)
    child_fail(ep, errno);

  if (syscall(SYS_dup3, a->in_fd, 0, 0) < 0 || syscall(SYS_dup3, a->out_fd, 1, 0) < 0 ||
      syscall(SYS_dup3, a->err_fd, 2, 0) < 0)
    child_fail(ep, errno);
  if (ep != 3) {   /* the error pipe goes to 3, still close-on-exec */
    if (syscall(SYS_dup3, ep, 3, O_CLOEXEC) < 0) child_fail(ep, errno);
    ep = 3;
  }
  if (a->no_close_range || syscall(SYS_close_range, 4U, ~0U, 0U) < 0)
    child_close_from(3, a->fd_limit);

  for (int s = 1; s < NSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    /* exec resets handled signals anyway; this is for ignored ones (SIG_IGN survives execve).
    ** glibc refuses its two internal signals with EINVAL: those go to the kernel directly, or
    ** a runtime started with them ignored would pass that on to every tool. */
    if (sigaction(s, &a->dfl, NULL) == 0) continue;
    if (errno != EINVAL) child_fail(ep, errno);
#if defined(__x86_64__) || defined(__aarch64__)
    struct { void *handler; unsigned long flags; void *restorer; unsigned long mask; } kact = {0};
    kact.handler = (void *)SIG_DFL;   /* the kernel's own struct: no restorer for SIG_DFL */
    if (syscall(SYS_rt_sigaction, s, &kact, NULL, sizeof kact.mask) != 0 && errno != EINVAL)
      child_fail(ep, errno);
#endif
  }
  if (sigprocmask(SIG_SETMASK, &a->empty, NULL) != 0) child_fail(ep, errno);
  syscall(SYS_execve, a->path, a->argv, a->envp);
  child_fail(ep, errno);
}

/* }===== */

/* {===== clone ===== */

static atomic_int g_mode;            /* 0 (AUTO): not chosen yet; -1: nothing works */
static atomic_uint g_mode_euid;      /* the euid it was chosen under: a privilege drop re-probes */
static atomic_int g_mode_forced;     /* chosen by hc_proc_set_isolation: kept as it is */
static atomic_int g_no_clone3;
static atomic_int g_no_pidfd_wait;   /* waitid(P_PIDFD) is 5.4; 5.3 has pidfds without it */
static atomic_int g_no_close_range_testing;

struct hc_clone_args {               /* struct clone_args, version 0 (64 bytes) */
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static unsigned long mode_flags(int mode) {
  switch (mode) {
    case HC_PROC_ISO_PIDNS: return CLONE_NEWPID;
    case HC_PROC_ISO_USERNS: return CLONE_NEWUSER | CLONE_NEWPID;
    default: return 0;
  }
}

/* Fork-style clone with a pidfd and exit_signal 0, every signal blocked across it (the child
** starts with all of them blocked, so no handler of the runtime ever runs in it). The child
** never returns from here. Returns the pid, or -1 with errno. */
static pid_t start_child(int mode, const child_args *a, int *pidfd) {
  unsigned long flags = mode_flags(mode) | CLONE_VFORK | CLONE_PIDFD;
  sigset_t all, old;
  sigfillset(&all);
  int e = pthread_sigmask(SIG_SETMASK, &all, &old);
  if (e) { errno = e; return -1; }
  long pid = -1;
  e = ENOSYS;
  if (!atomic_load(&g_no_clone3)) {
    struct hc_clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = flags;
    ca.pidfd = (uint64_t)(uintptr_t)pidfd;
    ca.exit_signal = 0;
    pid = syscall(SYS_clone3, &ca, sizeof ca);
    e = errno;
    if (pid < 0 && e == ENOSYS) atomic_store(&g_no_clone3, 1);
  }
#ifdef HC_LEGACY_CLONE
  if (pid < 0 && e == ENOSYS) {
    pid = syscall(SYS_clone, flags, 0L, pidfd, 0L, 0L);
    e = errno;
  }
#endif
  if (pid == 0) child_main(a);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) { errno = e; return -1; }
  return (pid_t)pid;
}

/* waitid on our child by pidfd (by pid on a 5.3 kernel: still ours alone, it is unreaped). */
static int wait_child(int pidfd, pid_t pid, siginfo_t *si, int options) {
  for (;;) {
    memset(si, 0, sizeof *si);
    int r;
    if (!atomic_load(&g_no_pidfd_wait)) {
      r = waitid((idtype_t)P_PIDFD, (id_t)pidfd, si, options | __WALL);
      if (r < 0 && errno == EINVAL) { atomic_store(&g_no_pidfd_wait, 1); continue; }
    } else {
      r = waitid(P_PID, (id_t)pid, si, options | __WALL);
    }
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

static void child_args_init(child_args *a, int mode) {
  memset(a, 0, sizeof *a);
  a->cwd_fd = a->in_fd = a->out_fd = a->err_fd = a->ep = -1;
  a->userns = mode == HC_PROC_ISO_USERNS;
  /* A process that changed uid without an exec (a runtime that dropped root) is not dumpable:
  ** its /proc/self files, the child's too, belong to root, so the maps cannot be written without
  ** making the child (a copy of the runtime's memory) ptrace-able by every process of its uid,
  ** the tools included. Then the tool runs unmapped: its kernel uid, which every permission check
  ** uses, is still the runtime's; only inside its namespace it reads as the overflow id. */
  a->map_ids = a->userns && prctl(PR_GET_DUMPABLE, 0L, 0L, 0L, 0L) == 1;
  a->subreaper = mode == HC_PROC_ISO_PGROUP;
  snprintf(a->uid_map, sizeof a->uid_map, "%lu %lu 1\n", (unsigned long)geteuid(),
           (unsigned long)geteuid());
  snprintf(a->gid_map, sizeof a->gid_map, "%lu %lu 1\n", (unsigned long)getegid(),
           (unsigned long)getegid());
  a->dfl.sa_handler = SIG_DFL;
  sigemptyset(&a->dfl.sa_mask);
  sigemptyset(&a->empty);
}

/* Can this process start a child with this mode's clone flags? 0 or an errno value. */
static int probe(int mode) {
  child_args a;
  child_args_init(&a, mode);
  a.probe = 1;
  int pidfd = -1;
  pid_t pid = start_child(mode, &a, &pidfd);
  if (pid < 0) return errno;
  siginfo_t si;
  int e = 0;
  if (wait_child(pidfd, pid, &si, WEXITED) < 0) e = errno;
  else if (si.si_code != CLD_EXITED || si.si_status != 0)
    e = si.si_code == CLD_EXITED ? si.si_status : EPERM;   /* the errno the map write got */
  close(pidfd);
  return e;
}

int hc_proc_isolation_mode(void) {
  int m = atomic_load(&g_mode);
  if (m && (atomic_load(&g_mode_forced) || atomic_load(&g_mode_euid) == (unsigned)geteuid()))
    return m;
  /* Root with CAP_SYS_ADMIN gets NEWPID alone; anyone else may get it through NEWUSER. A runtime
  ** that drops root after probing (core/privdrop.c) is probed again under its new euid. */
  static const int order[] = {HC_PROC_ISO_PIDNS, HC_PROC_ISO_USERNS, HC_PROC_ISO_PGROUP};
  m = -1;
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
    if (probe(order[i]) == 0) { m = order[i]; break; }
  }
  atomic_store(&g_mode_euid, (unsigned)geteuid());
  atomic_store(&g_mode, m);
  return m;
}

int hc_proc_set_isolation(int mode) {
  if (mode == HC_PROC_ISO_AUTO) {
    atomic_store(&g_mode_forced, 0);
    atomic_store(&g_mode, 0);
    return 0;
  }
  if (mode != HC_PROC_ISO_PIDNS && mode != HC_PROC_ISO_USERNS && mode != HC_PROC_ISO_PGROUP) {
    errno = EINVAL;
    return -1;
  }
  int e = probe(mode);
  if (e) { errno = e; return -1; }
  atomic_store(&g_mode_forced, 1);
  atomic_store(&g_mode, mode);
  return 0;
}

const char *hc_proc_isolation(void) {
  switch (hc_proc_isolation_mode()) {
    case HC_PROC_ISO_PIDNS: return "pid namespace";
    case HC_PROC_ISO_USERNS:
      return prctl(PR_GET_DUMPABLE, 0L, 0L, 0L, 0L) == 1
                 ? "user + pid namespace"
                 : "user + pid namespace (ids unmapped: the runtime is not dumpable)";
    case HC_PROC_ISO_PGROUP:
      return "process group fallback (no pid namespace): the tool a session leader and subreaper, "
             "its tree found in /proc on kill";
    default: return "none: no pidfd support (Linux >= 5.3 needed); tools cannot run";
  }
}

void hc_proc_testing_no_close_range(int on) { atomic_store(&g_no_close_range_testing, !!on); }
void hc_proc_testing_no_clone3(int on) { atomic_store(&g_no_clone3, !!on); }

/* }===== */

/* {===== spawn ===== */

hc_proc *hc_proc_spawn(const hc_proc_spec *spec, int *err) {
  static const char *const no_env[] = {NULL};
  int e = 0;
  if (!spec || !spec->argv || !spec->argv[0] || spec->argv[0][0] != '/' ||
      (spec->input_len && !spec->input)) {
    *err = EINVAL;
    return NULL;
  }
  int mode = hc_proc_isolation_mode();
  if (mode < 0) { *err = ENOSYS; return NULL; }
  /* SIGCHLD ignored (or SA_NOCLDWAIT): the kernel would reap the tool itself, its status lost and
  ** its pid (and process group id) free for reuse while we still think of it as the tool's. */
  struct sigaction chld;
  if (sigaction(SIGCHLD, NULL, &chld) != 0) { *err = errno; return NULL; }
  if (chld.sa_handler == SIG_IGN || (chld.sa_flags & SA_NOCLDWAIT)) { *err = ECHILD; return NULL; }

  hc_proc *p = calloc(1, sizeof *p);
  if (!p) { *err = ENOMEM; return NULL; }
  p->pid = -1;
  p->pidfd = p->in_fd = p->out_fd = p->err_fd = -1;
  p->mode = mode;
  p->state = HC_PROC_RUNNING;
  p->max_out = spec->max_output;
  p->max_err = spec->max_stderr;
  if (spec->input_len) {
    p->in = malloc(spec->input_len);
    if (!p->in) { free(p); *err = ENOMEM; return NULL; }
    memcpy(p->in, spec->input, spec->input_len);
    p->in_len = spec->input_len;
  }

  int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1}, ep[2] = {-1, -1};
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(er, O_CLOEXEC) ||
      pipe2(ep, O_CLOEXEC) || set_nonblock(in[1]) || set_nonblock(out[0]) ||
      set_nonblock(er[0]) || set_nonblock(ep[0]) || above_stdio(&in[0]) ||
      above_stdio(&out[1]) || above_stdio(&er[1]) || above_stdio(&ep[1])) {
    e = errno;
    goto fail;
  }

  child_args a;
  child_args_init(&a, mode);
  a.path = spec->argv[0];
  a.argv = (char *const *)spec->argv;
  a.envp = (char *const *)(spec->envp ? spec->envp : no_env);
  a.cwd_fd = spec->cwd_fd;
  a.in_fd = in[0];
  a.out_fd = out[1];
  a.err_fd = er[1];
  a.ep = ep[1];
  a.no_close_range = atomic_load(&g_no_close_range_testing);
  struct rlimit rl;
  a.fd_limit = 65536;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rlim_t m = rl.rlim_max != RLIM_INFINITY && rl.rlim_max > rl.rlim_cur ? rl.rlim_max : rl.rlim_cur;
    a.fd_limit = m == RLIM_INFINITY || m > (1u << 20) ? (1u << 20) : (unsigned long)m;
  }

  int pidfd = -1;
  pid_t pid = start_child(mode, &a, &pidfd);
  e = errno;
  close_fd(&in[0]);
  close_fd(&out[1]);
  close_fd(&er[1]);
  close_fd(&ep[1]);
  if (pid < 0) goto fail;

  /* CLONE_VFORK returned: the child has exec'd (the pipe's write end closed with it) or died. */
  int child_errno = 0;
  ssize_t r;
  do r = read(ep[0], &child_errno, sizeof child_errno); while (r < 0 && errno == EINTR);
  close_fd(&ep[0]);
  if (r == (ssize_t)sizeof child_errno) {
    siginfo_t si;
    if (wait_child(pidfd, pid, &si, WEXITED) < 0) { /* ECHILD only: reaped by someone else */ }
    close(pidfd);
    e = child_errno ? child_errno : EIO;
    goto fail;
  }

  p->pid = pid;
  p->pidfd = pidfd;
  p->out_fd = out[0];
  p->err_fd = er[0];
  if (p->in_len) p->in_fd = in[1];
  else close_fd(&in[1]);   /* no input: the tool sees EOF at once */
  return p;

fail:
  close_fd(&in[0]); close_fd(&in[1]);
  close_fd(&out[0]); close_fd(&out[1]);
  close_fd(&er[0]); close_fd(&er[1]);
  close_fd(&ep[0]); close_fd(&ep[1]);
  free(p->in);
  free(p);
  *err = e ? e : EIO;
  return NULL;
}

/* }===== */

/* {===== killing (the fallback path's walk) ===== */

typedef struct pstat { pid_t pid, ppid, pgrp; } pstat;
typedef struct tracked { pid_t pid, pgrp; int fd; } tracked;

static int read_stat(int procfd, pid_t pid, pstat *ps) {
  char path[32], buf[512];
  snprintf(path, sizeof path, "%d/stat", (int)pid);
  int fd = openat(procfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n;
  do n = read(fd, buf, sizeof buf - 1); while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  char *rp = strrchr(buf, ')');   /* comm may hold spaces and ')': the fields follow the last */
  char state;
  int ppid, pgrp;
  if (!rp || sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) != 3) return -1;
  ps->pid = pid;
  ps->ppid = ppid;
  ps->pgrp = pgrp;
  return 0;
}

/* Every process in /proc: pid, ppid, pgrp. 0 or -1. */
static int snapshot(DIR *d, pstat **v, size_t *n, size_t *cap) {
  *n = 0;
  rewinddir(d);
  struct dirent *de;
  while ((errno = 0, de = readdir(d)) != NULL) {
    char *end;
    long pid = strtol(de->d_name, &end, 10);
    if (*end || pid <= 0 || pid > INT_MAX) continue;
    if (*n == *cap) {
      size_t nc = *cap ? *cap * 2 : 512;
      pstat *nv = realloc(*v, nc * sizeof *nv);
      if (!nv) return -1;
      *v = nv;
      *cap = nc;
    }
    if (read_stat(dirfd(d), (pid_t)pid, &(*v)[*n]) == 0) (*n)++;
  }
  return errno ? -1 : 0;
}

static int is_tracked(const tracked *t, size_t nt, pid_t pid) {
  for (size_t i = 0; i < nt; i++)
    if (t[i].pid == pid) return 1;
  return 0;
}

static int belongs(const tracked *t, size_t nt, const pstat *s, pid_t group) {
  return s->pgrp == group || is_tracked(t, nt, s->ppid);
}

/* Stop every process below the tool (ppid links: the tool is a subreaper, so orphans stay below
** it while it runs) or in its process group, rescanning until a scan finds nobody new (a stopped
** process cannot fork); then kill them all, and the process groups they lead while those are
** still alive and so cannot be reused. Each is signalled through a pidfd opened and then checked
** against a fresh read of its stat, so a recycled pid is never signalled. */
static void walk_and_kill(hc_proc *p) {
  tracked *t = malloc(16 * sizeof *t);
  size_t nt = 0, capt = 16;
  pstat *snap = NULL, now;
  size_t ns = 0, caps = 0;
  DIR *d = opendir("/proc");
  if (!t || !d) goto kill;
  t[nt++] = (tracked){p->pid, p->pid, -1};
  if (pidfd_signal(p->pidfd, SIGSTOP) < 0 && errno != ESRCH) goto kill;
  for (int round = 0; round < WALK_ROUNDS; round++) {
    if (snapshot(d, &snap, &ns, &caps) < 0) break;
    int added = 0, changed;
    do {
      changed = 0;
      for (size_t i = 0; i < ns; i++) {
        if (is_tracked(t, nt, snap[i].pid) || !belongs(t, nt, &snap[i], p->pid)) continue;
        int fd = pidfd_open_pid(snap[i].pid);
        if (fd < 0) continue;   /* gone already */
        if (read_stat(dirfd(d), snap[i].pid, &now) < 0 || !belongs(t, nt, &now, p->pid)) {
          close(fd);
          continue;
        }
        if (nt == capt) {
          tracked *nt2 = realloc(t, capt * 2 * sizeof *t);
          if (!nt2) {   /* cannot keep it: kill it now, the rest still gets found */
            pidfd_signal(fd, SIGKILL);
            close(fd);
            continue;
          }
          t = nt2;
          capt *= 2;
        }
        t[nt++] = (tracked){now.pid, now.pgrp, fd};
        pidfd_signal(fd, SIGSTOP);   /* ESRCH: it died meanwhile; nothing else can fail */
        changed = added = 1;
      }
    } while (changed);
    if (!added) break;
  }
kill:
  kill(-p->pid, SIGKILL);   /* the tool is unreaped: its group id cannot have been reused */
  for (size_t i = 1; t && i < nt; i++)
    if (t[i].pgrp == t[i].pid) kill(-t[i].pid, SIGKILL);   /* ESRCH: an empty group */
  for (size_t i = 0; t && i < nt; i++) {
    if (t[i].fd >= 0) {
      pidfd_signal(t[i].fd, SIGKILL);
      close(t[i].fd);
    }
  }
  pidfd_signal(p->pidfd, SIGKILL);
  if (d) closedir(d);
  free(snap);
  free(t);
}

static int wait_child(int pidfd, pid_t pid, siginfo_t *si, int options);
static void status_lost(hc_proc *p);

/* Kill the tool's whole tree, once; nothing to do once reaped. */
static void kill_tree(hc_proc *p) {
  if (p->reaped || p->pidfd < 0) return;
  if (p->mode != HC_PROC_ISO_PGROUP) {
    pidfd_signal(p->pidfd, SIGKILL);   /* PID 1: the kernel kills the rest of the namespace */
    return;
  }
  /* The walk starts from the tool's pid and group id as numbers: only while the tool is unreaped
  ** (running, or a zombie) do they still name it. */
  siginfo_t si;
  if (wait_child(p->pidfd, p->pid, &si, WEXITED | WNOWAIT | WNOHANG) < 0) {
    status_lost(p);
    return;
  }
  walk_and_kill(p);
}

void hc_proc_kill(hc_proc *p) {
  if (!p || p->state != HC_PROC_RUNNING || p->kill_reason) return;
  p->kill_reason = HC_PROC_KILLED;
  kill_tree(p);
}

/* }===== */

/* {===== I/O and reaping ===== */

static void write_stdin(hc_proc *p) {
  while (p->in_fd >= 0) {
    if (p->in_off >= p->in_len) break;
    size_t n = p->in_len - p->in_off;
    ssize_t r = write_nosigpipe(p->in_fd, p->in + p->in_off, n > (1u << 20) ? (1u << 20) : n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (r <= 0) break;   /* EPIPE: the tool does not read its input; that is its business */
    p->in_off += (size_t)r;
  }
  close_fd(&p->in_fd);
  free(p->in);
  p->in = NULL;
  p->in_len = p->in_off = 0;
}

static void overflow(hc_proc *p) {
  if (!p->kill_reason) {
    p->kill_reason = HC_PROC_OVERFLOW;
    kill_tree(p);
  }
  close_fd(&p->out_fd);
}

static void read_stdout(hc_proc *p, int budget) {
  char scratch[256];
  while (p->out_fd >= 0 && budget-- > 0) {
    char *dst = scratch;
    size_t room = sizeof scratch;
    if (p->out_len < p->max_out) {
      if (p->out_len == p->out_cap) {
        size_t nc = p->out_cap ? p->out_cap * 2 : READ_CHUNK;
        if (nc > p->max_out || nc < p->out_cap) nc = p->max_out;
        char *np = realloc(p->out, nc);
        if (!np) { overflow(p); return; }   /* output that cannot be kept: as too much */
        p->out = np;
        p->out_cap = nc;
      }
      dst = p->out + p->out_len;
      room = p->out_cap - p->out_len;
    }
    ssize_t r = read(p->out_fd, dst, room);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (r <= 0) { close_fd(&p->out_fd); return; }   /* EOF (or an error: nothing more comes) */
    if (dst == scratch) { overflow(p); return; }     /* a byte past max_output */
    p->out_len += (size_t)r;
  }
}

static void read_stderr(hc_proc *p, int budget) {
  char scratch[READ_CHUNK];
  while (p->err_fd >= 0 && budget-- > 0) {
    char *dst = scratch;
    size_t room = sizeof scratch;
    if (p->err_len < p->max_err) {
      if (p->err_len == p->err_cap) {
        size_t nc = p->err_cap ? p->err_cap * 2 : 4096;
        if (nc > p->max_err || nc < p->err_cap) nc = p->max_err;
        char *np = realloc(p->err, nc);
        if (np) { p->err = np; p->err_cap = nc; }
      }
      if (p->err_len < p->err_cap) {   /* else (no memory): read and discard, as past the cap */
        dst = p->err + p->err_len;
        room = p->err_cap - p->err_len;
      }
    }
    ssize_t r = read(p->err_fd, dst, room);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (r <= 0) { close_fd(&p->err_fd); return; }
    if (dst != scratch) p->err_len += (size_t)r;
  }
}

/* Reap the tool if it has exited (block: wait for it). In the fallback path its process group is
** killed first, while the unreaped zombie still holds the group id (so the id cannot have been
** reused): background children that stayed in the group do not outlive it. 1 reaped, 0 not yet. */
static int reap(hc_proc *p, int block) {
  siginfo_t si;
  int nohang = block ? 0 : WNOHANG;
  if (p->reaped) return 1;
  if (p->mode == HC_PROC_ISO_PGROUP && !p->exited) {
    if (wait_child(p->pidfd, p->pid, &si, WEXITED | WNOWAIT | nohang) < 0) goto lost;
    if (si.si_pid == 0) return 0;
    p->exited = 1;
    kill(-p->pid, SIGKILL);   /* ESRCH: nobody left in the group */
  }
  if (wait_child(p->pidfd, p->pid, &si, WEXITED | nohang) < 0) goto lost;
  if (si.si_pid == 0) return 0;
  p->wcode = si.si_code;
  p->wstatus = si.si_status;
  p->reaped = 1;
  return 1;
lost:
  status_lost(p);
  return 1;
}

/* ECHILD: someone else reaped the tool (an embedder's waitpid(-1), or SIGCHLD set to SIG_IGN after
** the spawn). Its status is lost, and its pid and group id may already name other processes:
** nothing is signalled by number any more (in the fallback, the group is not swept). */
static void status_lost(hc_proc *p) {
  p->wcode = CLD_EXITED;
  p->wstatus = -1;
  p->reaped = 1;
}

static void finish(hc_proc *p) {
  /* Everything the tool wrote is in the pipes now; in a PID namespace every writer is dead too. */
  close_fd(&p->in_fd);
  read_stdout(p, FINAL_DRAIN_READS);
  read_stderr(p, FINAL_DRAIN_READS);
  close_fd(&p->out_fd);
  close_fd(&p->err_fd);
  close_fd(&p->pidfd);
  free(p->in);
  p->in = NULL;
  if (p->kill_reason) p->state = p->kill_reason;
  else if (p->wcode == CLD_EXITED) p->state = HC_PROC_EXITED;
  else p->state = HC_PROC_SIGNALED;
}

int hc_proc_step(hc_proc *p) {
  if (p->state != HC_PROC_RUNNING) return p->state;
  write_stdin(p);
  read_stdout(p, READS_PER_STEP);
  read_stderr(p, READS_PER_STEP);
  if (reap(p, 0)) finish(p);
  return p->state;
}

/* }===== */

/* {===== accessors, free ===== */

void hc_proc_fds(const hc_proc *p, int *pidfd, int *in_fd, int *out_fd, int *err_fd) {
  if (pidfd) *pidfd = p->pidfd;
  if (in_fd) *in_fd = p->in_fd;
  if (out_fd) *out_fd = p->out_fd;
  if (err_fd) *err_fd = p->err_fd;
}

const char *hc_proc_output(const hc_proc *p, size_t *len) {
  if (len) *len = p->out_len;
  return p->out ? p->out : "";
}

const char *hc_proc_stderr(const hc_proc *p, size_t *len) {
  if (len) *len = p->err_len;
  return p->err ? p->err : "";
}

int hc_proc_exit_code(const hc_proc *p) {
  if (p->state == HC_PROC_RUNNING) return -1;
  return p->wstatus;   /* CLD_EXITED: the status; CLD_KILLED/CLD_DUMPED: the signal */
}

pid_t hc_proc_pid(const hc_proc *p) { return p->pid; }

void hc_proc_free(hc_proc *p) {
  if (!p) return;
  if (p->state == HC_PROC_RUNNING) {
    if (!p->kill_reason) {
      p->kill_reason = HC_PROC_KILLED;
      kill_tree(p);
    }
    reap(p, 1);   /* SIGKILLed: the kernel bounds this wait */
  }
  close_fd(&p->in_fd);
  close_fd(&p->out_fd);
  close_fd(&p->err_fd);
  close_fd(&p->pidfd);
  free(p->in);
  free(p->out);
  free(p->err);
  free(p);
}

/* }===== */
