/*
** socket.h: io.read / io.write on socket handles. Non-blocking: a call that would block parks on
** the handle (core/stream.c) and is resumed when the socket is ready, so a slow peer stalls only
** its own call.
*/
#ifndef HC_SOCKET_H
#define HC_SOCKET_H

#include <lua.h>

#include "stream.h"

/* ctx.io.read(h, length, offset, encoding, timeout_ms) on a socket: what has arrived (waiting
** for at least one byte), eof once the peer has closed. */
int hc_socket_io_read(lua_State *L, hc_handle *h);
/* ctx.io.write(h, data, offset, timeout_ms) on a socket: all of data, waiting as needed. */
int hc_socket_io_write(lua_State *L, hc_handle *h);
/* The wait primitive both use, and net.accept/connect: park on h for dir until deadline_us and
** yield with continuation k (the stack is kept). Returns what lua_yieldk returns. */
int hc_socket_wait(lua_State *L, hc_handle *h, int dir, uint64_t deadline_us, lua_KFunction k);
/* Send p[*sent..n) without blocking: 0 when all is sent, a wait direction + 1, or -1 with *err
** and msg. */
int hc_socket_send_some(hc_handle *h, const char *p, size_t n, size_t *sent, int *err, char *msg,
                        size_t msglen);
/* nil, ERRNO, message, "os" (or "refused" for EACCES/EPERM): 4 results. */
int hc_socket_fail(lua_State *L, int err, const char *what);

#endif
