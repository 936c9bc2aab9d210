/*
** seccomp.h: the runtime's seccomp filter (hc_seccomp in hostcall.h).
*/
#ifndef HC_SECCOMP_H
#define HC_SECCOMP_H

#include <stddef.h>

/* Install the filter on every thread of the process (and so on every tool it starts): 0, or -1
** with a message in err. */
int hc_seccomp_apply(char *err, size_t errsz);
/* "seccomp: available" or why not, for the kernel report. Static storage. */
const char *hc_seccomp_report(void);
/* How many system calls the filter refuses (for tests and the docs). */
size_t hc_seccomp_denied_count(void);

#endif
