/*
** privdrop.h: dropping root for good after the privileged part of the start (binding sockets,
** opening capability directories). docs/defence-in-depth.md has the order.
*/
#ifndef HC_PRIVDROP_H
#define HC_PRIVDROP_H

#include <stddef.h>

/* Become user NAME: its uid, its primary gid and its supplementary groups (from the passwd and
** group databases), for real, effective and saved ids, in every thread of the process (glibc
** applies set*id calls to all threads). Irreversible: afterwards it checks that no capability is
** left and that setuid(0) fails, and refuses a user whose uid or primary gid is 0. Reads NSS
** (/etc/passwd, /etc/group): call it before Landlock confines the process. Already being that
** user (not root) is success. 0, or -1 with a message in err; on -1 after a partial change the
** caller must exit. */
int hc_drop_privileges(const char *user, char *err, size_t errlen);

#endif
