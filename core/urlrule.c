/*
** urlrule.c: strict URL parsing, http rule matching, redirect resolution and the request head.
**
** One parser serves all three sides: the operator's rules are parsed by it, the guest's URL is
** parsed by it, and the request line is written from the very string the check compared. There
** is no second parser to disagree with, so the classic confusions (userinfo, backslashes, "..",
** encoded dots and slashes, numeric hosts) are settled once, here, and mostly by refusing: what
** RFC 3986 leaves to taste, or what real servers are known to read differently, is an error, not
** an interpretation. Design and the reasons for each choice: docs/http-rules.md.
*/
#include "urlrule.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_DNS_MAX 253        /* a host name's length, without the trailing dot */
#define URL_LABEL_MAX 63       /* one DNS label */
#define URL_PORT_DIGITS 5      /* "65535"; more digits is refused before it could overflow */
#define URL_IP6_TEXT 64        /* room for an IPv6 literal's text (INET6_ADDRSTRLEN is 46) */
#define URL_PORT_TEXT 16       /* ":65535" and its NUL, with room to spare */

static const char HEXDIGITS[] = "0123456789ABCDEF";


/* {===== errors ===== */

typedef struct url_err {
  const char **code;   /* "EINVAL", "EACCES", "ENOMEM" */
  char *msg;
  size_t cap;
} url_err;

static int fail (url_err *e, const char *code, const char *m) {
  if (e->code) *e->code = code;
  if (e->msg && e->cap) snprintf(e->msg, e->cap, "%s", m);
  return -1;
}

#define BAD(e, m)  fail((e), "EINVAL", (m))

/* A refusal naming the character: it is printable ASCII here (scan_bytes ran first). */
static int bad_char (url_err *e, const char *what, int c) {
  char m[96];
  snprintf(m, sizeof m, "character '%c' not allowed in %s", c, what);
  return BAD(e, m);
}

/* }===== */


/* {===== character classes (RFC 3986 section 2, RFC 9110 section 5.6.2) ===== */

static int is_alpha (int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit (int c) { return c >= '0' && c <= '9'; }
static int to_lower (int c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

static int hexval (int c) {
  if (is_digit(c)) return c - '0';
  c = to_lower(c);
  return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* c != 0 because strchr would find the terminator. */
static int in_set (int c, const char *set) { return c != 0 && strchr(set, c) != NULL; }

static int is_unreserved (int c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int is_pchar (int c) {   /* pchar without pct-encoded, which is checked apart */
  return is_unreserved(c) || in_set(c, "!$&'()*+,;=") || c == ':' || c == '@';
}

static int is_tchar (int c) {
  return is_alpha(c) || is_digit(c) || in_set(c, "!#$%&'*+-.^_`|~");
}

/* Case-insensitive compare of s[0..n) with a lowercase literal. */
static int span_is (const char *s, size_t n, const char *lit) {
  size_t i;
  for (i = 0; i < n && lit[i]; i++)
    if (to_lower((unsigned char)s[i]) != lit[i]) return 0;
  return i == n && lit[i] == '\0';
}

/* }===== */


/* {===== pieces of a URL ===== */

/*
** Bytes no part of a URL may hold, each named in the message: CR and LF (request splitting), NUL
** (truncation in C servers), other controls, space, raw non-ASCII (encodings differ), and the
** backslash (WHATWG parsers read it as '/', so "http://a.com\@b.com/" is two different hosts).
*/
static int scan_bytes (const char *s, size_t n, url_err *e) {
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == 0) return BAD(e, "NUL byte in URL");
    if (c == '\r' || c == '\n') return BAD(e, "CR or LF in URL");
    if (c < 0x20 || c == 0x7f) return BAD(e, "control character in URL");
    if (c == ' ') return BAD(e, "space in URL");
    if (c >= 0x80) return BAD(e, "non-ASCII byte in URL (percent-encode it)");
    if (c == '\\') return BAD(e, "backslash in URL");
  }
  return 0;
}

/* Length of a syntactically valid scheme followed by ':' (ALPHA *( ALPHA / DIGIT / "+" / "-" /
** "." )), or 0 when s does not start with one (it is then not an absolute URL). */
static size_t scheme_len (const char *s, size_t n) {
  size_t i = 0;
  if (n == 0 || !is_alpha((unsigned char)s[0])) return 0;
  while (i < n) {
    int c = (unsigned char)s[i];
    if (!(is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.')) break;
    i++;
  }
  return (i < n && s[i] == ':') ? i : 0;
}

/* An IPv6 literal (what was inside the brackets), stored in its canonical text so that
** "[0:0::1]" and "[::1]" are one host to the rules. Zone identifiers and IPvFuture refused. */
static int parse_ip6 (const char *p, size_t n, hc_url *u, url_err *e) {
  char text[URL_IP6_TEXT];
  unsigned char bin[16];
  if (n == 0) return BAD(e, "empty IPv6 literal");
  if (p[0] == 'v' || p[0] == 'V') return BAD(e, "IPvFuture literals are not supported");
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)p[i];
    if (c == '%') return BAD(e, "IPv6 zone identifiers are not allowed");
    if (!(hexval(c) >= 0 || c == ':' || c == '.')) return BAD(e, "bad IPv6 literal");
  }
  if (n >= sizeof text) return BAD(e, "bad IPv6 literal");
  memcpy(text, p, n);
  text[n] = '\0';
  if (inet_pton(AF_INET6, text, bin) != 1) return BAD(e, "bad IPv6 literal");
  if (!inet_ntop(AF_INET6, bin, u->host, sizeof u->host)) return BAD(e, "bad IPv6 literal");
  u->host_is_ip6 = 1;
  return 0;
}

/* A label inet_aton or a browser would read as a number: all digits, or "0x" and hex. */
static int numeric_label (const char *s) {
  if (s[0] == '0' && s[1] == 'x') {
    for (s += 2; *s; s++)
      if (hexval((unsigned char)*s) < 0) return 0;
    return 1;
  }
  for (; *s; s++)
    if (!is_digit((unsigned char)*s)) return 0;
  return 1;
}

/* The canonical dotted quad: four decimal parts 0..255, no leading zeros. */
static int canonical_ip4 (const char *s) {
  int parts = 0;
  while (parts < 4) {
    int v = 0, digits = 0;
    while (is_digit((unsigned char)s[digits])) {
      v = v * 10 + (s[digits] - '0');
      if (++digits > 3) return 0;
    }
    if (digits == 0 || v > 255 || (digits > 1 && s[0] == '0')) return 0;
    s += digits;
    parts++;
    if (parts < 4 && *s++ != '.') return 0;
  }
  return *s == '\0';
}

/*
** A registered name: labels of letters, digits, '-' and '_' (seen in real names), lowercased,
** one trailing dot dropped. Percent-encoded names are refused (decoding them is where parsers
** part ways). A name whose last label is numeric is an IPv4 address to inet_aton, getaddrinfo
** and browsers alike, so it must then be the canonical dotted quad: "127.1", "2130706433",
** "0x7f.1" and "0177.0.0.1" would otherwise be checked as one host and connected to as another.
*/
static int parse_name (const char *p, size_t n, hc_url *u, url_err *e) {
  size_t label = 0, last = 0;
  if (n > 0 && p[n - 1] == '.') n--;
  if (n == 0) return BAD(e, "empty host");
  if (n > URL_DNS_MAX) return BAD(e, "host name too long");
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)p[i];
    if (c == '.') {
      if (label == 0) return BAD(e, "empty label in host name");
      label = 0;
      last = i + 1;
    } else if (is_alpha(c) || is_digit(c) || c == '-' || c == '_') {
      if (++label > URL_LABEL_MAX) return BAD(e, "host name label too long");
    } else if (c == '%') {
      return BAD(e, "percent-encoded host names are not allowed");
    } else {
      return bad_char(e, "host", c);
    }
    u->host[i] = (char)to_lower(c);
  }
  if (label == 0) return BAD(e, "empty label in host name");
  u->host[n] = '\0';
  if (numeric_label(u->host + last)) {
    if (!canonical_ip4(u->host)) return BAD(e, "numeric host must be a dotted-quad IPv4 address");
    u->host_is_ip4 = 1;
  }
  return 0;
}

/* 1..65535 in at most five decimal digits; no sign, no leading zero, not empty. */
static int parse_port (const char *p, size_t n, int *port, url_err *e) {
  int v = 0;
  if (n == 0) return BAD(e, "empty port");
  for (size_t i = 0; i < n; i++)
    if (!is_digit((unsigned char)p[i])) return BAD(e, "port is not a decimal number");
  if (n > URL_PORT_DIGITS) return BAD(e, "port out of range 1..65535");
  for (size_t i = 0; i < n; i++) v = v * 10 + (p[i] - '0');
  if (v < 1 || v > 65535) return BAD(e, "port out of range 1..65535");
  if (p[0] == '0') return BAD(e, "port with a leading zero");
  *port = v;
  return 0;
}

/* authority = host [ ":" port ]; no userinfo: "http://good.com@evil.com/" goes to evil.com. */
static int parse_authority (const char *a, size_t n, hc_url *u, url_err *e) {
  size_t i;
  if (memchr(a, '@', n)) return BAD(e, "userinfo (user@host) is not allowed");
  if (n == 0) return BAD(e, "empty host");
  if (a[0] == '[') {
    const char *close = memchr(a, ']', n);
    if (!close) return BAD(e, "unterminated IPv6 literal");
    i = (size_t)(close - a);
    if (parse_ip6(a + 1, i - 1, u, e)) return -1;
    i++;
    if (i < n && a[i] != ':') return BAD(e, "junk after an IPv6 literal");
  } else {
    for (i = 0; i < n && a[i] != ':'; i++) {}
    if (parse_name(a, i, u, e)) return -1;
  }
  u->port = u->https ? 443 : 80;
  return i < n ? parse_port(a + i + 1, n - i - 1, &u->port, e) : 0;
}

/* A path (query == 0), query or fragment (query == 1) against RFC 3986's grammar: pchar and
** "/", plus "?" after the path; every '%' is followed by two hex digits. */
static int check_component (const char *p, size_t n, int query, url_err *e) {
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)p[i];
    if (c == '%') {
      if (n - i < 3 || hexval((unsigned char)p[i + 1]) < 0 || hexval((unsigned char)p[i + 2]) < 0)
        return BAD(e, "'%' not followed by two hex digits");
      i += 2;
    } else if (!(is_pchar(c) || c == '/' || (query && c == '?'))) {
      return bad_char(e, query ? "query or fragment" : "path", c);
    }
  }
  return 0;
}

/*
** 1 for ".", 2 for "..", 0 for any other segment (already decoded); -1 for a dot segment with
** parameters, "..;x" or "..%3B": Tomcat and others strip parameters before resolving dots, so
** "/v1/..;/admin" would be under "/v1/" to us and "/admin" to them.
*/
static int dot_segment (const char *s, size_t n) {
  size_t d = 0;
  while (d < n && d < 2 && s[d] == '.') d++;
  if (d == 0) return 0;
  if (d == n) return (int)d;
  if (s[d] == ';' || (n - d >= 3 && memcmp(s + d, "%3B", 3) == 0)) return -1;
  return 0;
}

/*
** The path as it is checked and sent. Escapes of unreserved characters are decoded and the rest
** get uppercase hex (RFC 3986 6.2.2.1-2: two spellings of one path become one string); then
** remove_dot_segments (5.2.4), with segments recognised *after* decoding, so "%2e%2E" is "..".
** Refused: escapes of '/' and '\' (servers disagree whether they separate segments), of control
** characters (truncation, log injection), and %C0/%C1 (only ever overlong UTF-8 for '.' or '/').
** p is empty or starts with '/', and its escapes are valid (check_component ran). Output never
** outgrows the input, plus "/" for an empty path: n + 2 bytes.
*/
static char *normalise_path (const char *p, size_t n, url_err *e) {
  char *out = malloc(n + 2);
  size_t o = 0, i = 0;
  int trailing = 0;    /* the last segment was a dot segment: the result ends in '/' */
  if (!out) { fail(e, "ENOMEM", "out of memory"); return NULL; }
  while (i < n) {
    size_t seg = o;    /* where this segment's '/' went */
    const char *why = NULL;
    out[o++] = '/';
    for (i++; i < n && p[i] != '/'; ) {
      int c = (unsigned char)p[i];
      if (c != '%') { out[o++] = (char)c; i++; continue; }
      c = hexval((unsigned char)p[i + 1]) * 16 + hexval((unsigned char)p[i + 2]);
      i += 3;
      if (is_unreserved(c)) { out[o++] = (char)c; continue; }
      if (c == '/' || c == '\\') why = "encoded slash or backslash (%2F, %5C) in path";
      else if (c < 0x20 || c == 0x7f) why = "encoded control character in path";
      else if (c == 0xc0 || c == 0xc1) why = "overlong UTF-8 (%C0, %C1) in path";
      if (why) break;
      out[o++] = '%';
      out[o++] = HEXDIGITS[c >> 4];
      out[o++] = HEXDIGITS[c & 15];
    }
    int dots = why ? 0 : dot_segment(out + seg + 1, o - seg - 1);
    if (dots < 0) why = "dot segment with parameters (\"..;\") in path";
    if (why) { free(out); BAD(e, why); return NULL; }
    trailing = dots > 0;
    if (dots) {
      o = seg;                                   /* drop "/." or "/.." itself */
      if (dots == 2) {                           /* and, for "..", the segment before it */
        while (o > 0 && out[o - 1] != '/') o--;
        if (o > 0) o--;
      }
    }
  }
  if (trailing || o == 0) out[o++] = '/';
  out[o] = '\0';
  return out;
}

/*
** The whole parse. On failure the caller frees and zeroes *u. *fragment is set when the URL
** had one (it is dropped: a fragment never reaches the server, and a rule may not have one).
*/
static int url_parse (const char *s, size_t len, hc_url *u, url_err *e, int *fragment) {
  size_t sl, i, a0, p0, q0, f0;
  memset(u, 0, sizeof *u);
  *fragment = 0;
  if (!s || len == 0) return BAD(e, "empty URL");
  if (len > HC_URL_MAX) return BAD(e, "URL too long");
  sl = scheme_len(s, len);
  if (sl == 0) return BAD(e, "not an absolute URL (expected http:// or https://)");
  if (span_is(s, sl, "https")) u->https = 1;
  else if (!span_is(s, sl, "http")) return fail(e, "EACCES", "scheme is not http or https");
  if (scan_bytes(s + sl, len - sl, e)) return -1;
  i = sl + 1;
  if (len - i < 2 || s[i] != '/' || s[i + 1] != '/')
    return BAD(e, "expected \"//\" after the scheme");
  a0 = i + 2;
  for (i = a0; i < len && s[i] != '/' && s[i] != '?' && s[i] != '#'; i++) {}
  if (parse_authority(s + a0, i - a0, u, e)) return -1;
  for (p0 = i; i < len && s[i] != '?' && s[i] != '#'; i++) {}
  q0 = i;                                        /* the query includes its '?' */
  if (i < len && s[i] == '?')
    while (i < len && s[i] != '#') i++;
  f0 = i;                                        /* the fragment includes its '#' */
  if (check_component(s + p0, q0 - p0, 0, e)) return -1;
  if (q0 < f0 && check_component(s + q0 + 1, f0 - q0 - 1, 1, e)) return -1;
  if (f0 < len && check_component(s + f0 + 1, len - f0 - 1, 1, e)) return -1;
  *fragment = f0 < len;
  if (!(u->path = normalise_path(s + p0, q0 - p0, e))) return -1;
  size_t pl = strlen(u->path);
  if (!(u->target = malloc(pl + (f0 - q0) + 1))) return fail(e, "ENOMEM", "out of memory");
  memcpy(u->target, u->path, pl);
  memcpy(u->target + pl, s + q0, f0 - q0);
  u->target[pl + (f0 - q0)] = '\0';
  return 0;
}

/* }===== */


/* {===== the public URL functions ===== */

int hc_url_parse (const char *s, size_t len, hc_url *u, const char **err_code, char *msg,
                  size_t msgcap) {
  url_err e = { err_code, msg, msgcap };
  int fragment;
  if (url_parse(s, len, u, &e, &fragment) == 0) return 0;
  hc_url_free(u);
  memset(u, 0, sizeof *u);
  return -1;
}

void hc_url_free (hc_url *u) {
  if (!u) return;
  free(u->target);
  free(u->path);
  u->target = u->path = NULL;
}

/*
** RFC 3986 5.2.2 in its strict form ("http:g" is not relative), done by building the target URI
** as text and parsing it: the result then passes every check a fresh URL does, dot segments are
** removed by the one normaliser, and nothing of the reference is trusted for being "relative".
*/
int hc_url_resolve (const hc_url *base, const char *loc, size_t len, hc_url *out,
                    const char **err_code, char *msg, size_t msgcap) {
  url_err e = { err_code, msg, msgcap };
  const char *scheme, *keep = "";
  size_t keepn = 0, k, need;
  char *buf;
  int rc;
  if (!out || out == base) return BAD(&e, "the result cannot overwrite the base URL");
  memset(out, 0, sizeof *out);
  if (!base || !base->path || !base->target || base->path[0] != '/')
    return BAD(&e, "no base URL");
  if (!loc || len == 0) return BAD(&e, "empty Location");
  if (len > HC_URL_MAX) return BAD(&e, "Location too long");
  if (scheme_len(loc, len)) return hc_url_parse(loc, len, out, err_code, msg, msgcap);
  for (k = 0; k < len && loc[k] != '/' && loc[k] != '?' && loc[k] != '#'; k++)
    if (loc[k] == ':') return BAD(&e, "':' in the first segment of a relative reference");
  scheme = base->https ? "https:" : "http:";
  if (loc[0] == '?') keep = base->path;                     /* same path, new query */
  else if (loc[0] == '#') keep = base->target;              /* same everything */
  else if (loc[0] != '/') keep = base->path;                /* merge (5.2.3), cut below */
  keepn = strlen(keep);
  if (loc[0] != '/' && loc[0] != '?' && loc[0] != '#')
    while (keepn > 0 && keep[keepn - 1] != '/') keepn--;
  need = strlen(scheme) + sizeof base->host + URL_PORT_TEXT + 8 + keepn + len;
  if (!(buf = malloc(need))) return fail(&e, "ENOMEM", "out of memory");
  if (len >= 2 && loc[0] == '/' && loc[1] == '/')         /* network-path: only the scheme */
    k = (size_t)snprintf(buf, need, "%s", scheme);
  else
    k = (size_t)snprintf(buf, need, "%s//%s%s%s:%d", scheme, base->host_is_ip6 ? "[" : "",
                         base->host, base->host_is_ip6 ? "]" : "", base->port);
  memcpy(buf + k, keep, keepn);
  memcpy(buf + k + keepn, loc, len);
  rc = hc_url_parse(buf, k + keepn + len, out, err_code, msg, msgcap);
  free(buf);
  return rc;
}

int hc_http_method_valid (const char *method) {
  size_t n;
  if (!method) return 0;
  for (n = 0; method[n]; n++)
    if (n >= HC_HTTP_METHOD_MAX || !is_tchar((unsigned char)method[n])) return 0;
  return n > 0;
}

/* What the head writer re-checks before trusting a struct it may not have made: a target of
** visible ASCII starting with '/', and a host of host characters, NUL-terminated in place. */
static int target_ok (const char *t) {
  size_t n;
  if (!t || t[0] != '/') return 0;
  for (n = 0; t[n]; n++) {
    int c = (unsigned char)t[n];
    if (n >= HC_URL_MAX || c <= 0x20 || c >= 0x7f || c == '#' || c == '\\') return 0;
  }
  return 1;
}

static int host_ok (const hc_url *u) {
  size_t n = strnlen(u->host, sizeof u->host);
  if (n == 0 || n == sizeof u->host) return 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)u->host[i];
    int ok = u->host_is_ip6 ? (hexval(c) >= 0 || c == ':' || c == '.')
                            : (is_alpha(c) || is_digit(c) || c == '-' || c == '_' || c == '.');
    if (!ok) return 0;
  }
  return 1;
}

int hc_http_request_head (const hc_url *u, const char *method, char *out, size_t cap) {
  char port[URL_PORT_TEXT] = "";
  int n;
  if (!out || cap == 0) return -1;
  out[0] = '\0';
  if (!u || !hc_http_method_valid(method) || !target_ok(u->target) || !host_ok(u)) return -1;
  if (u->port < 1 || u->port > 65535) return -1;
  if (u->port != (u->https ? 443 : 80)) snprintf(port, sizeof port, ":%d", u->port);
  n = snprintf(out, cap, "%s %s HTTP/1.1\r\nHost: %s%s%s%s\r\n", method, u->target,
               u->host_is_ip6 ? "[" : "", u->host, u->host_is_ip6 ? "]" : "", port);
  if (n < 0 || (size_t)n >= cap) { out[0] = '\0'; return -1; }
  return n;
}

/* }===== */


/* {===== rules ===== */

typedef struct http_rule {
  int https, port, host_is_ip6;
  char host[256];
  char *path;            /* normalised, as hc_url's */
  size_t nmethods;
  char methods[HC_HTTP_RULE_METHODS][HC_HTTP_METHOD_MAX + 1];
} http_rule;

struct hc_httprules {
  http_rule *v;
  size_t n, cap;
};

hc_httprules *hc_httprules_new (void) { return calloc(1, sizeof(hc_httprules)); }

void hc_httprules_free (hc_httprules *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n; i++) free(r->v[i].path);
  free(r->v);
  free(r);
}

size_t hc_httprules_count (const hc_httprules *r) { return r ? r->n : 0; }

int hc_httprules_add (hc_httprules *r, const char *url, const char *const *methods,
                      size_t nmethods, char *err, size_t errlen) {
  static const char *const get_only[] = { "GET" };   /* the policy's default too */
  url_err e = { NULL, err, errlen };
  hc_url u;
  http_rule *nr;
  int fragment;
  if (!r || !url) return BAD(&e, "no rule URL");
  if (!methods || nmethods == 0) { methods = get_only; nmethods = 1; }
  if (nmethods > HC_HTTP_RULE_METHODS) return BAD(&e, "too many methods in one rule");
  for (size_t i = 0; i < nmethods; i++)   /* never echoed: it may hold CR LF */
    if (!hc_http_method_valid(methods[i])) return BAD(&e, "a method is not an HTTP token");
  if (url_parse(url, strlen(url), &u, &e, &fragment)) { hc_url_free(&u); return -1; }
  if (fragment || strchr(u.target, '?')) {
    hc_url_free(&u);
    return BAD(&e, "a rule URL has no query or fragment: its path is a prefix");
  }
  if (r->n == r->cap) {
    size_t ncap = r->cap ? r->cap * 2 : 4;
    http_rule *nv = realloc(r->v, ncap * sizeof *nv);
    if (!nv) { hc_url_free(&u); return BAD(&e, "out of memory"); }
    r->v = nv;
    r->cap = ncap;
  }
  nr = &r->v[r->n];
  memset(nr, 0, sizeof *nr);
  nr->https = u.https;
  nr->port = u.port;
  nr->host_is_ip6 = u.host_is_ip6;
  memcpy(nr->host, u.host, sizeof nr->host);
  nr->path = u.path;                 /* ownership moves to the rule */
  u.path = NULL;
  hc_url_free(&u);
  nr->nmethods = nmethods;
  for (size_t i = 0; i < nmethods; i++)
    memcpy(nr->methods[i], methods[i], strlen(methods[i]) + 1);
  r->n++;
  return 0;
}

/* Prefix on a segment boundary. A rule path ending in '/' is a plain prefix ("/v1/" allows
** "/v1/" and "/v1/x", not "/v1"); one not ending in '/' names itself and what is below it
** ("/v1" allows "/v1", "/v1/", "/v1/x", not "/v1x" or "/v1.json"). Bytes compare literally,
** "//" included: "/v1//x" is under "/v1/", "//v1/x" is not. */
static int path_under (const char *rule, const char *path) {
  size_t n = strlen(rule);
  if (strncmp(path, rule, n) != 0) return 0;
  return rule[n - 1] == '/' || path[n] == '\0' || path[n] == '/';
}

static int rule_allows (const http_rule *ru, const hc_url *u, const char *method) {
  if (ru->https != u->https || ru->port != u->port || ru->host_is_ip6 != u->host_is_ip6) return 0;
  if (strcmp(ru->host, u->host) != 0 || !path_under(ru->path, u->path)) return 0;
  for (size_t i = 0; i < ru->nmethods; i++)
    if (strcmp(ru->methods[i], method) == 0) return 1;
  return 0;
}

int hc_httprules_check (const hc_httprules *r, const hc_url *u, const char *method) {
  /* No rule holds a non-token method, so this only refuses early and says so. */
  if (!r || !u || !u->path || u->path[0] != '/' || !hc_http_method_valid(method)) return EACCES;
  if (!memchr(u->host, '\0', sizeof u->host)) return EACCES;
  for (size_t i = 0; i < r->n; i++)
    if (rule_allows(&r->v[i], u, method)) return 0;
  return EACCES;
}

/* }===== */
