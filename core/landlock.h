/*
** landlock.h: confining the runtime's own process with Landlock (defence in depth: what the
** process can still reach if everything above it fails). The kernel's UAPI through raw syscalls,
** no library. docs/defence-in-depth.md has what is confined, what is not, and the order.
**
** Use: new, allow what the serve needs (its capability directories, policy and handler
** directories, hc_landlock_add_system_paths, TCP ports), restrict, free. Rules are recorded
** (paths are opened O_PATH at the call, so a path that does not exist is known at once) and the
** kernel ruleset is built at hc_landlock_restrict, from the access rights the running kernel's
** ABI knows: a ruleset never asks for a right the kernel does not know.
**
** Threads: before ABI 8 a restriction applies to the calling thread and the threads and
** processes it creates afterwards, never to threads that already exist. hc_landlock_restrict
** therefore refuses while other threads run (unless hc_landlock_thread_only was called); on
** ABI >= 8 it restricts every thread at once (LANDLOCK_RESTRICT_SELF_TSYNC). Restrict before
** the first call is served: the runtime's only threads are the resolver's workers, created on
** the first name lookup by the thread that runs the loop.
**
** Irreversible: a restricted process can only be restricted further.
*/
#ifndef HC_LANDLOCK_H
#define HC_LANDLOCK_H

#include <stddef.h>

/* The Landlock ABI version the kernel offers (0: none, or disabled at boot). */
int hc_landlock_abi(void);
/* One line for the startup log, e.g. "landlock ABI 4: filesystem and TCP rules" or
** "landlock unavailable (ENOSYS): not confined"; after hc_landlock_restrict it also says what was
** enforced and what was ignored. A static buffer: read it from the thread that restricts. */
const char *hc_landlock_report(void);

typedef struct hc_landlock hc_landlock;

hc_landlock *hc_landlock_new(void);   /* NULL only when out of memory */
void hc_landlock_free(hc_landlock *l);

/* Access beneath a path (a directory and everything under it, or one file):
**   HC_LL_READ   read files, list directories;
**   HC_LL_WRITE  HC_LL_READ + write, create, remove, rename and truncate files and directories,
**                make symlinks and unix sockets in it;
**   HC_LL_EXEC   HC_LL_READ + execute.
** Bits combine. A path that does not exist is skipped: 1. Symlinks are followed: the rule is on
** what the path names now. 0, or -1 with a message in err. */
enum { HC_LL_READ = 1, HC_LL_WRITE = 2, HC_LL_EXEC = 4 };
int hc_landlock_allow_path(hc_landlock *l, const char *path, int access, char *err, size_t errlen);

/* TCP (ABI >= 4; on older kernels recorded and ignored, and the report says so): allow connect
** to a remote port (bind 0), or bind on a local port (bind 1). Each direction is restricted only
** once it has a rule (or hc_landlock_deny_tcp): then every other port is refused with EACCES.
** Port 0 in a bind rule allows binding an ephemeral port. UDP is never restricted. */
int hc_landlock_allow_tcp(hc_landlock *l, int port, int bind, char *err, size_t errlen);
/* Restrict a direction with no port allowed (yet): e.g. a daemon that never binds TCP. */
void hc_landlock_deny_tcp(hc_landlock *l, int bind);

/* IPC scoping (ABI >= 6, on by default): the process cannot signal processes outside its
** Landlock domain, nor connect to abstract unix sockets created outside it. */
void hc_landlock_scope(hc_landlock *l, int signals, int abstract_unix);

/* Accept confining only the calling thread when other threads exist (ABI < 8): those threads
** stay unconfined. Without it, hc_landlock_restrict refuses in a multi-threaded process. */
void hc_landlock_thread_only(hc_landlock *l);

/* What a typical serve needs after start, each a rule (paths that do not exist are skipped):
** the CA store, the resolver's files, the shared libraries loaded later (NSS modules, OpenSSL
** providers), /dev/null, /dev/urandom, /proc/self. docs/defence-in-depth.md lists each and why.
** 0, or -1 with a message. */
int hc_landlock_add_system_paths(hc_landlock *l, char *err, size_t errlen);

/* Restrict the calling process: sets no_new_privs, builds the ruleset for this kernel's ABI,
** restricts (all threads on ABI >= 8, else the calling thread and its future children).
**   0  confined (the report says what was enforced);
**   1  not confined: the kernel has no Landlock (err says why; nothing was changed);
**  -1  error, err says what (no_new_privs may already be set; nothing else was changed).
** The rules' path fds are closed; the object can then only be freed. */
int hc_landlock_restrict(hc_landlock *l, char *err, size_t errlen);

/* Tests only: act as if the kernel offered at most this ABI (0: the kernel's own), to exercise
** the rulesets older kernels get. */
void hc_landlock_testing_cap_abi(int abi);

#endif
