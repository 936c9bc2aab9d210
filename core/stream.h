/*
** stream.h: the session's handle table, one for files, directory streams and sockets. Handles
** are random 64-bit tokens ("h" + 16 hex digits): unguessable beyond the session, and a closed or
** foreign one is simply not found (EBADF). Everything is closed when the session ends.
*/
#ifndef HC_STREAM_H
#define HC_STREAM_H

#include <dirent.h>
#include <stdint.h>
#include <lua.h>

#include "loop.h"

typedef struct hc_session hc_session;
typedef struct hc_task hc_task;
struct hc_mount;

enum { HC_STREAM_FILE, HC_STREAM_DIR, HC_STREAM_TCP, HC_STREAM_UDP, HC_STREAM_LISTEN };
enum { HC_WAIT_READ = 0, HC_WAIT_WRITE = 1 };

typedef struct hc_handle {
  uint64_t token;
  int kind;                        /* HC_STREAM_* */
  int fd;
  DIR *dir;                        /* HC_STREAM_DIR */
  int append, readable, writable;  /* files */
  struct hc_mount *mount;          /* whose quota a file's writes count against */
  /* sockets: a call waiting for readiness parks here (one reader and one writer at a time) */
  hc_session *s;
  hc_watch w;
  hc_task *waiter[2];
  void *ssl;                       /* core/tls.c: an SSL session over fd, or NULL */
  int response_only;               /* an http request's connection: the guest may only read */
  char *pushback;                  /* socket bytes read but given back (a cut UTF-8 character, or
                                   ** bytes refused as text), returned first by the next read */
  size_t npush;
  struct hc_handle *next;
} hc_handle;

/* Links a new handle (calloc'ed by the caller, fd/dir set) into the session's table and pushes
** its token; at the tenant's limit it closes what it was given and pushes nil, "handles", msg,
** "limit" (4 results) instead. Returns the number of results. */
int hc_stream_push(lua_State *L, hc_session *s, hc_handle *h);
/* A primitive's answer for a limit hit: nil, LIMIT, msg, "limit" (the glue makes it -32002). */
int hc_fail_limit(lua_State *L, const char *limit, const char *msg);
/* The handle whose token is at stack index idx, or NULL. */
hc_handle *hc_stream_find(hc_session *s, lua_State *L, int idx);
hc_handle *hc_stream_find_token(hc_session *s, uint64_t token);
/* Unlink and close one; waiting calls are woken to find it gone. */
void hc_stream_close(hc_session *s, hc_handle *h);
void hc_stream_close_all(hc_session *s);
/* Park the running call until h's fd is ready in direction dir or until_us (0: the call's
** deadline); the caller then yields hc_sentinel. -1 (EBUSY) when another call already waits. */
int hc_stream_wait(hc_handle *h, int dir, uint64_t until_us);

#endif
