/*
** tls.h: TLS as a stream option of a TCP handle (OpenSSL). Certificates are verified against the
** system store plus the tenant's tls.ca_file; the host name (or IP) is checked and sent as SNI.
** Every call is non-blocking: a handshake, read or write that needs the socket parks on it.
*/
#ifndef HC_TLS_H
#define HC_TLS_H

#include <lua.h>

#include "stream.h"

typedef struct hc_tenant hc_tenant;

/* The tenant's client context, with ca_file (NULL: the system store only) added. 0, or -1 with a
** message in err (a CA file that cannot be loaded). */
int hc_tls_tenant_init(hc_tenant *t, const char *ca_file, char *err, size_t errlen);
void hc_tls_tenant_free(hc_tenant *t);

/* Start a client session on h (connected TCP) for host (a name, or an IP literal's text). */
int hc_tls_attach(hc_tenant *t, hc_handle *h, const char *host, int host_is_ip, char *err, size_t errlen);
void hc_tls_detach(hc_handle *h);

/* One non-blocking step. Return 0 when done, HC_WAIT_READ / HC_WAIT_WRITE + 1 when the socket
** must be ready first, or -1 with *err an errno value and msg a reason. */
int hc_tls_handshake(hc_handle *h, int *err, char *msg, size_t msglen);
/* *n: bytes moved; 0 with *eof set at a clean or abrupt close. */
int hc_tls_read(hc_handle *h, void *buf, size_t len, size_t *n, int *eof, int *err, char *msg, size_t msglen);
int hc_tls_write(hc_handle *h, const void *buf, size_t len, size_t *n, int *err, char *msg, size_t msglen);

#endif
