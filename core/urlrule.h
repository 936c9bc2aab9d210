/*
** urlrule.h: the URL side of the http capability. An `http` policy rule unlocks an HTTP request
** primitive, never a socket: the core parses the URL (strictly: RFC 3986 with the ambiguous
** corners refused), checks it against the tenant's rules (scheme, host, port, path prefix on a
** segment boundary, method) and writes the request line and Host header itself, from the same
** parsed URL that was checked. Pure: no sockets, no DNS. Design: docs/http-rules.md.
**
** Errors: a function that fails returns -1 and sets *err_code to "EINVAL" (malformed),
** "EACCES" (a scheme other than http/https) or "ENOMEM", with a short message in msg.
*/
#ifndef HC_URLRULE_H
#define HC_URLRULE_H

#include <stddef.h>

#define HC_URL_MAX 8192            /* bytes in a URL, a Location, or a resolved URL */
#define HC_HTTP_METHOD_MAX 32      /* bytes in a request method */
#define HC_HTTP_RULE_METHODS 32    /* methods one rule may list */

typedef struct hc_url {
  int https;              /* 1 for https, 0 for http */
  char host[256];         /* lowercased; IPv6 without brackets, canonical text; no trailing dot */
  int host_is_ip6;        /* the URL had [v6] */
  int port;               /* explicit or default 80/443 */
  char *target;           /* malloc'd origin-form request target: path + optional "?query";
                          ** never a fragment. This is exactly what the request line carries. */
  char *path;             /* malloc'd normalised path alone (starts with "/") */
  int host_is_ip4;        /* the host is a dotted-quad IPv4 literal (canonical: no other forms) */
} hc_url;

/* Parse an absolute http/https URL of len bytes (NUL is a byte like any other, and refused).
** *u is overwritten, not freed: on success free it with hc_url_free; on failure it is zeroed
** (so hc_url_free is harmless). err_code, msg may be NULL. */
int hc_url_parse(const char *s, size_t len, hc_url *u, const char **err_code, char *msg,
                 size_t msgcap);
void hc_url_free(hc_url *u);

/* Resolve a redirect Location against base (RFC 3986 section 5.2, strict): absolute,
** scheme-relative "//h/p", absolute-path "/p", query "?q", fragment "#f", or relative "p".
** The result is parsed as hc_url_parse would. out must not be base. */
int hc_url_resolve(const hc_url *base, const char *loc, size_t len, hc_url *out,
                   const char **err_code, char *msg, size_t msgcap);

/* 1 if method is an RFC 9110 token (tchar+) of at most HC_HTTP_METHOD_MAX bytes. */
int hc_http_method_valid(const char *method);

typedef struct hc_httprules hc_httprules;

hc_httprules *hc_httprules_new(void);
void hc_httprules_free(hc_httprules *r);
/* Add a rule: url is a prefix like "https://api.example.com/v1/" (no query, no fragment);
** methods are tokens compared exactly (case-sensitive); methods == NULL or nmethods == 0
** means GET only (as a policy rule without `methods`). 0, or -1 with a message in err. */
int hc_httprules_add(hc_httprules *r, const char *url, const char *const *methods,
                     size_t nmethods, char *err, size_t errlen);
size_t hc_httprules_count(const hc_httprules *r);
/* 0 if some rule allows (u, method); EACCES otherwise, a malformed method included. Any
** nonzero answer is a refusal. */
int hc_httprules_check(const hc_httprules *r, const hc_url *u, const char *method);

/* Write "METHOD TARGET HTTP/1.1\r\nHost: host[:port]\r\n" (port only when not the scheme's
** default; IPv6 in brackets) and a NUL into out. Returns the length without the NUL, or -1
** (out[0] = '\0' when cap > 0) if it does not fit or method/u is malformed. */
int hc_http_request_head(const hc_url *u, const char *method, char *out, size_t cap);

#endif
