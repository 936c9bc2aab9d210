/*
** fsapi.h: the filesystem and stream host functions tenant handlers reach through ctx.fs,
** ctx.io and ctx.base64: guest paths -> the tenant's mounts -> one capability resolver.
*/
#ifndef HC_FSAPI_H
#define HC_FSAPI_H

#include <lua.h>

typedef struct hc_tenant hc_tenant;
typedef struct hc_session hc_session;

/* Register fs_*, io_*, b64_* and set_mounts into the table on top of the stack. */
void hc_fsapi_open(lua_State *L);
void hc_fsapi_free(hc_tenant *t);                   /* the tenant's mounts */
void hc_fsapi_session_close(hc_session *s);         /* close the session's handles */
/* The directory at the guest path on the stack at idx, resolved beneath the tenant's mounts like
** every fs.* path: an O_PATH fd, or -errno (HC_EESCAPE for an escape). */
int hc_fsapi_dirfd(lua_State *L, int idx);
/* Every mount's host directory and whether it is writable (core/confine.c's Landlock rules). */
void hc_fsapi_each_mount(hc_tenant *t, void (*fn)(void *ud, const char *host, int rw), void *ud);

#endif
