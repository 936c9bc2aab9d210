/*
** seccomp.c: a seccomp filter refusing (EPERM) the system calls hostcall and its tools never
** need, and that widen what a compromised process could reach: tracing other processes, kernel
** modules and kexec, mounts and namespaces (setns, unshare: tools get their PID namespace from
** clone, which stays allowed), BPF and perf, userfaultfd, io_uring (its operations would pass
** the filter unseen), keyrings, file handles that bypass path checks (open_by_handle_at), the
** clock, swap, reboot. A denylist, not an allowlist: the runtime's own needs (openat2, epoll,
** sockets, clone for tools, exec) vary with the kernel and libc, and a missing entry in an
** allowlist would be a crash in production. Calls from another architecture's ABI (i386 via
** int 0x80, x32) are refused whole. Applied to every thread at once (TSYNC), after NO_NEW_PRIVS,
** so tools inherit it and setuid programs gain nothing through exec.
*/
#include "seccomp.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define HC_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define HC_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

static const int denied[] = {
#ifdef __NR_ptrace
  __NR_ptrace,
#endif
#ifdef __NR_process_vm_readv
  __NR_process_vm_readv, __NR_process_vm_writev,
#endif
#ifdef __NR_kexec_load
  __NR_kexec_load,
#endif
#ifdef __NR_kexec_file_load
  __NR_kexec_file_load,
#endif
#ifdef __NR_init_module
  __NR_init_module, __NR_finit_module, __NR_delete_module,
#endif
#ifdef __NR_mount
  __NR_mount, __NR_umount2, __NR_pivot_root,
#endif
#ifdef __NR_fsopen
  __NR_fsopen, __NR_fsconfig, __NR_fsmount, __NR_fspick, __NR_move_mount, __NR_open_tree,
#endif
#ifdef __NR_mount_setattr
  __NR_mount_setattr,
#endif
#ifdef __NR_setns
  __NR_setns, __NR_unshare,
#endif
#ifdef __NR_bpf
  __NR_bpf,
#endif
#ifdef __NR_perf_event_open
  __NR_perf_event_open,
#endif
#ifdef __NR_userfaultfd
  __NR_userfaultfd,
#endif
#ifdef __NR_io_uring_setup
  __NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register,
#endif
#ifdef __NR_keyctl
  __NR_keyctl, __NR_add_key, __NR_request_key,
#endif
#ifdef __NR_open_by_handle_at
  __NR_open_by_handle_at, __NR_name_to_handle_at,
#endif
#ifdef __NR_acct
  __NR_acct,
#endif
#ifdef __NR_swapon
  __NR_swapon, __NR_swapoff,
#endif
#ifdef __NR_reboot
  __NR_reboot,
#endif
#ifdef __NR_settimeofday
  __NR_settimeofday, __NR_clock_settime, __NR_clock_adjtime, __NR_adjtimex,
#endif
#ifdef __NR_iopl
  __NR_iopl, __NR_ioperm,
#endif
#ifdef __NR_quotactl
  __NR_quotactl,
#endif
#ifdef __NR_syslog
  __NR_syslog,
#endif
#ifdef __NR_uselib
  __NR_uselib,
#endif
#ifdef __NR_vhangup
  __NR_vhangup,
#endif
#ifdef __NR_lookup_dcookie
  __NR_lookup_dcookie,
#endif
#ifdef __NR_modify_ldt
  __NR_modify_ldt,
#endif
#ifdef __NR_kcmp
  __NR_kcmp,
#endif
#ifdef __NR_pidfd_getfd
  __NR_pidfd_getfd,
#endif
};

#define NDENIED (sizeof denied / sizeof denied[0])

size_t hc_seccomp_denied_count(void) { return NDENIED; }

const char *hc_seccomp_report(void) {
#ifndef HC_AUDIT_ARCH
  return "seccomp: not on this architecture";
#else
  if (prctl(PR_GET_SECCOMP, 0L, 0L, 0L, 0L) < 0) return "seccomp: unavailable (not built into this kernel)";
  return "seccomp: available";
#endif
}

int hc_seccomp_apply(char *err, size_t errsz) {
#ifndef HC_AUDIT_ARCH
  snprintf(err, errsz, "seccomp: no filter for this architecture");
  return -1;
#else
  struct sock_filter f[8 + NDENIED];
  size_t n = 0;
  const unsigned char after = (unsigned char)(NDENIED + 1);   /* past the checks and ALLOW */
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, HC_AUDIT_ARCH, 1, 0);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
  /* x32 calls carry bit 30 and reach the same kernel code under other numbers */
  f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, after, 0);
#endif
  for (size_t i = 0; i < NDENIED; i++)
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)denied[i],
                                          (unsigned char)(NDENIED - i), 0);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  struct sock_fprog prog = {(unsigned short)n, f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) != 0) {
    snprintf(err, errsz, "seccomp: no_new_privs: %s", strerror(errno));
    return -1;
  }
  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
  if (r != 0) {
    if (r > 0) snprintf(err, errsz, "seccomp: thread %ld could not take the filter", r);
    else snprintf(err, errsz, "seccomp: %s", strerror(errno));
    return -1;
  }
  return 0;
#endif
}
