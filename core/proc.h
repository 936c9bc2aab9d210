/*
** proc.h: running an operator-declared tool as a child process, without a shell and without
** blocking. The tool is started from a fixed argv with exactly the given environment, in a
** given directory, fed its input on stdin and read on stdout/stderr through non-blocking pipes;
** its exit is seen through a pidfd (no SIGCHLD handler, no waitpid(-1)). Killing it kills every
** process it started: the tool runs as PID 1 of its own PID namespace where the kernel allows
** it, else as a child subreaper in its own session, found again by walking /proc
** (docs/tools.md has the design, the guarantees of each path, and what depends on the kernel).
**
** The embedder's loop watches the four fds of hc_proc_fds and calls hc_proc_step when one is
** ready; hc_proc_step never blocks. Rule for watchers: hc_proc_step (and only it, and
** hc_proc_free) closes an fd once it is done with; after every hc_proc_step, read hc_proc_fds
** again and drop the watch on any fd that became -1 before opening anything else, so a stale
** watch can never meet a reused fd number.
**
** Linux >= 5.3 (pidfd_open, CLONE_PIDFD); PID namespaces where clone(2) may create them.
*/
#ifndef HC_PROC_H
#define HC_PROC_H

#include <stddef.h>
#include <sys/types.h>

typedef struct hc_proc hc_proc;

typedef struct hc_proc_spec {
  const char *const *argv;   /* argv[0] is an absolute path; NULL-terminated */
  const char *const *envp;   /* the whole environment; NULL-terminated (may be empty; NULL = empty) */
  int cwd_fd;                /* a directory fd (O_PATH is fine) to fchdir into, or -1 for "/" */
  const char *input; size_t input_len;   /* written to the child's stdin (copied), then stdin is closed */
  size_t max_output;         /* stdout bytes kept; more is an overflow (the tool is killed) */
  size_t max_stderr;         /* stderr bytes kept (the rest discarded, never an error) */
} hc_proc_spec;

enum { HC_PROC_RUNNING, HC_PROC_EXITED, HC_PROC_SIGNALED, HC_PROC_OVERFLOW, HC_PROC_KILLED };

/* Start it. NULL with *err an errno value: ENOENT (no such program), EACCES, ENOEXEC, ENOTDIR
** (cwd_fd), EINVAL (argv[0] missing or relative, input_len without input), EMFILE/ENFILE,
** ENOMEM, EAGAIN (process or namespace limits), ENOSYS (the kernel has no pidfds), ECHILD
** (SIGCHLD is set to SIG_IGN/SA_NOCLDWAIT: the kernel would reap tools itself). The embedder must
** reap only its own children, by pid: a tool reaped by someone else's waitpid(-1) ends EXITED
** with exit code -1. Returns once the tool's execve has succeeded or failed: the child makes a
** fixed, short list of syscalls before it and waits on nothing the tool controls. */
hc_proc *hc_proc_spawn(const hc_proc_spec *spec, int *err);

/* The fds to watch (-1 when done with): the pidfd (readable when the child has exited), stdin
** (writable), stdout and stderr (readable). All O_CLOEXEC; the pipes O_NONBLOCK; the pidfd is only
** polled (reaping uses WNOHANG), so it stays blocking for hc_proc_free's wait. Any argument may
** be NULL. */
void hc_proc_fds(const hc_proc *p, int *pidfd, int *in_fd, int *out_fd, int *err_fd);

/* Make whatever progress is possible without blocking (write stdin, read stdout/stderr, reap).
** Returns the state; once it is not RUNNING the output is final and every fd is closed. */
int hc_proc_step(hc_proc *p);

/* Kill the tool and every process it started; the state becomes KILLED once reaped (by
** hc_proc_step when the pidfd turns readable, or by hc_proc_free). A no-op once not RUNNING or
** when already killed (an overflow stays OVERFLOW). Never blocks on the tool. */
void hc_proc_kill(hc_proc *p);

/* stdout so far (not NUL-terminated; "" when empty); len may be NULL. */
const char *hc_proc_output(const hc_proc *p, size_t *len);
const char *hc_proc_stderr(const hc_proc *p, size_t *len);
/* EXITED: the exit status; SIGNALED: the signal number; KILLED/OVERFLOW: however the tool
** ended (normally SIGKILL's number, or its status if it exited first); RUNNING, or a status
** lost to another reaper: -1. */
int hc_proc_exit_code(const hc_proc *p);
pid_t hc_proc_pid(const hc_proc *p);   /* the tool's pid in the runtime's PID namespace (logs, tests) */

/* Kills if still running, reaps (waiting for the kernel to finish the kill), closes every fd. */
void hc_proc_free(hc_proc *p);

/* Confinement paths, best first. AUTO probes (a short-lived child per candidate) and keeps the
** first path the kernel allows; the choice then holds for every spawn (a spawn whose clone later
** fails fails, it is never silently downgraded) until the effective uid changes (dropping root
** re-probes) or hc_proc_set_isolation is called. Probe, and report, after privileges and any
** Landlock confinement are final. */
enum { HC_PROC_ISO_AUTO, HC_PROC_ISO_PIDNS, HC_PROC_ISO_USERNS, HC_PROC_ISO_PGROUP };

/* What confinement this kernel/process allows, for the startup report, e.g. "pid namespace". */
const char *hc_proc_isolation(void);
/* The path in use (probing if needed): one of HC_PROC_ISO_*, or -1 when nothing works (no pidfd). */
int hc_proc_isolation_mode(void);
/* Choose a path (tests; an embedder that wants no namespaces). A specific path is probed first:
** 0, or -1 with errno (EPERM, EINVAL, ENOSPC, ... from clone) leaving the choice unchanged; it is
** then kept whatever happens to the uid. AUTO: probe again at the next need. Tools already
** running keep the path they started with. */
int hc_proc_set_isolation(int mode);

/* Tests only: 1 makes the child close its fds by listing /proc/self/fd instead of close_range;
** 1 makes spawns use the raw clone syscall as where clone3 is ENOSYS (0 tries clone3 again). */
void hc_proc_testing_no_close_range(int on);
void hc_proc_testing_no_clone3(int on);

#endif
