/*
** tls.c: OpenSSL client sessions over a handle's non-blocking socket. One SSL_CTX per tenant
** (its trust store: the system's and its ca_file); TLS 1.2 at least; peer verification always
** on, with the host name or IP checked by OpenSSL itself.
*/
#include "tls.h"
#include "internal.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

int hc_tls_tenant_init(hc_tenant *t, const char *ca_file, char *err, size_t errlen) {
  if (t->tls) return 0;
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) { snprintf(err, errlen, "cannot create a TLS context"); return -1; }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_set_default_verify_paths(ctx) != 1) ERR_clear_error();   /* no system store: ca_file only */
  if (ca_file && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    snprintf(err, errlen, "tls.ca_file: cannot load it (%s)", e ? ERR_reason_error_string(e) : "unknown");
    SSL_CTX_free(ctx);
    return -1;
  }
  t->tls = ctx;
  return 0;
}

void hc_tls_tenant_free(hc_tenant *t) {
  SSL_CTX_free(t->tls);
  t->tls = NULL;
}

int hc_tls_attach(hc_tenant *t, hc_handle *h, const char *host, int host_is_ip, char *err, size_t errlen) {
  if (!t->tls && hc_tls_tenant_init(t, NULL, err, errlen) != 0) return -1;
  SSL *ssl = SSL_new(t->tls);
  if (!ssl || SSL_set_fd(ssl, h->fd) != 1) {
    SSL_free(ssl);
    snprintf(err, errlen, "cannot start TLS");
    return -1;
  }
  int ok = host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1
                      : SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
  if (!ok) {
    SSL_free(ssl);
    ERR_clear_error();
    snprintf(err, errlen, "cannot set the TLS peer name");
    return -1;
  }
  SSL_set_connect_state(ssl);
  h->ssl = ssl;
  return 0;
}

void hc_tls_detach(hc_handle *h) {
  if (!h->ssl) return;
  SSL_shutdown(h->ssl);   /* best effort: one close_notify, never a wait */
  SSL_free(h->ssl);
  ERR_clear_error();
  h->ssl = NULL;
}

/* Map an SSL_get_error outcome: a wait direction + 1, or -1 with *err/msg. */
static int outcome(SSL *ssl, int rc, int *err, char *msg, size_t msglen) {
  int e = SSL_get_error(ssl, rc);
  if (e == SSL_ERROR_WANT_READ) return HC_WAIT_READ + 1;
  if (e == SSL_ERROR_WANT_WRITE) return HC_WAIT_WRITE + 1;
  long v = SSL_get_verify_result(ssl);
  unsigned long q = ERR_peek_error();
  if (e == SSL_ERROR_SSL && v != X509_V_OK) {
    *err = EPROTO;
    snprintf(msg, msglen, "TLS: certificate verify failed: %s", X509_verify_cert_error_string(v));
  } else if (e == SSL_ERROR_SYSCALL && errno) {
    *err = errno;
    snprintf(msg, msglen, "TLS: %s", strerror(errno));
  } else {
    *err = EPROTO;
    snprintf(msg, msglen, "TLS: %s", q ? ERR_reason_error_string(q) : "protocol error");
  }
  ERR_clear_error();
  return -1;
}

int hc_tls_handshake(hc_handle *h, int *err, char *msg, size_t msglen) {
  ERR_clear_error();
  int rc = SSL_do_handshake(h->ssl);
  if (rc == 1) return 0;
  return outcome(h->ssl, rc, err, msg, msglen);
}

int hc_tls_read(hc_handle *h, void *buf, size_t len, size_t *n, int *eof, int *err, char *msg, size_t msglen) {
  *n = 0;
  *eof = 0;
  ERR_clear_error();
  errno = 0;
  if (SSL_read_ex(h->ssl, buf, len, n) == 1) return 0;
  int e = SSL_get_error(h->ssl, 0);
  if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0) ||
      (e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
    ERR_clear_error();
    *eof = 1;   /* closed (with or without close_notify): the end of the stream */
    return 0;
  }
  return outcome(h->ssl, 0, err, msg, msglen);
}

int hc_tls_write(hc_handle *h, const void *buf, size_t len, size_t *n, int *err, char *msg, size_t msglen) {
  *n = 0;
  ERR_clear_error();
  errno = 0;
  if (SSL_write_ex(h->ssl, buf, len, n) == 1) return 0;
  return outcome(h->ssl, 0, err, msg, msglen);
}
