/*
** test_urlrule.c: the http capability's URL side (core/urlrule.h) under attack: the parser
** against the classic parser-confusion corpus, rule matching (scheme, host, port, path prefix
** on a segment boundary, method), redirect resolution (RFC 3986 5.4 and hostile Locations),
** the request head, and a fixed-seed mutation run asserting the parser's output invariants.
**
** Every refusal also names the check that must fire (a substring of its message), so removing
** or loosening one check fails here even when a later check would happen to catch the input.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "urlrule.h"
#include "testutil.h"

#define L(lit)  lit, sizeof(lit) - 1    /* literal and its length: NUL bytes stay in */

/* {===== helpers ===== */

/* "scheme://host[:port]target", the port only when not the default: how a test spells a URL. */
static const char *fmt_url (const hc_url *u) {
  static char b[HC_URL_MAX + 512];
  char port[16] = "";
  if (u->port != (u->https ? 443 : 80)) snprintf(port, sizeof port, ":%d", u->port);
  snprintf(b, sizeof b, "%s://%s%s%s%s%s", u->https ? "https" : "http",
           u->host_is_ip6 ? "[" : "", u->host, u->host_is_ip6 ? "]" : "", port,
           u->target ? u->target : "(null)");
  return b;
}

static void show_input (const char *s, size_t n) {
  fprintf(stderr, "  input: \"");
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') fprintf(stderr, "\\x%02x", c);
    else fputc(c, stderr);
  }
  fprintf(stderr, "\"\n");
}

static int is_zeroed (const hc_url *u) {
  return u->target == NULL && u->path == NULL && u->host[0] == '\0' && u->port == 0 &&
         u->https == 0 && u->host_is_ip6 == 0 && u->host_is_ip4 == 0;
}

/* }===== */


/* {===== parse: accepted ===== */

typedef struct ok_case {
  const char *in;
  size_t n;
  int https;
  const char *host;
  int port;
  const char *target;
  const char *path;
} ok_case;

static const ok_case parse_ok[] = {
  /* scheme, host, port */
  { L("http://a.com/"), 0, "a.com", 80, "/", "/" },
  { L("http://a.com"), 0, "a.com", 80, "/", "/" },
  { L("https://a.com"), 1, "a.com", 443, "/", "/" },
  { L("HTTPS://A.COM/"), 1, "a.com", 443, "/", "/" },
  { L("HtTp://a.com/x"), 0, "a.com", 80, "/x", "/x" },
  { L("hTTPs://a.com/x"), 1, "a.com", 443, "/x", "/x" },
  { L("http://A.COM./V1/"), 0, "a.com", 80, "/V1/", "/V1/" },   /* path case is significant */
  { L("http://a.com:8080/x?y=1"), 0, "a.com", 8080, "/x?y=1", "/x" },
  { L("http://a.com:80/"), 0, "a.com", 80, "/", "/" },
  { L("https://a.com:443/x"), 1, "a.com", 443, "/x", "/x" },
  { L("http://a.com:443/"), 0, "a.com", 443, "/", "/" },
  { L("https://a.com:80/"), 1, "a.com", 80, "/", "/" },
  { L("http://a.com:65535/"), 0, "a.com", 65535, "/", "/" },
  { L("http://a.com:1/"), 0, "a.com", 1, "/", "/" },
  { L("http://a.com:8080"), 0, "a.com", 8080, "/", "/" },
  { L("http://a.com:8080?q"), 0, "a.com", 8080, "/?q", "/" },
  { L("http://localhost/"), 0, "localhost", 80, "/", "/" },
  { L("http://a-b_c.Example.com/"), 0, "a-b_c.example.com", 80, "/", "/" },
  { L("http://xn--bcher-kva.example/"), 0, "xn--bcher-kva.example", 80, "/", "/" },
  { L("http://1.2.3.a/"), 0, "1.2.3.a", 80, "/", "/" },           /* last label not numeric */
  { L("http://0x.com/"), 0, "0x.com", 80, "/", "/" },
  { L("http://a.com./"), 0, "a.com", 80, "/", "/" },
  /* the delimiters that confuse other parsers: here the first of '/', '?', '#' ends the host */
  { L("http://a.com#@b.com/"), 0, "a.com", 80, "/", "/" },
  { L("http://a.com?@b.com/"), 0, "a.com", 80, "/?@b.com/", "/" },
  { L("http://a.com/@b.com/"), 0, "a.com", 80, "/@b.com/", "/@b.com/" },
  { L("http://a.com/x:y@z"), 0, "a.com", 80, "/x:y@z", "/x:y@z" },
  /* fragments are dropped, queries kept verbatim */
  { L("http://a.com/x#frag"), 0, "a.com", 80, "/x", "/x" },
  { L("http://a.com/x?q#frag"), 0, "a.com", 80, "/x?q", "/x" },
  { L("http://a.com/x#"), 0, "a.com", 80, "/x", "/x" },
  { L("http://a.com/x#a/b?c"), 0, "a.com", 80, "/x", "/x" },
  { L("http://a.com/?"), 0, "a.com", 80, "/?", "/" },
  { L("http://a.com/x?"), 0, "a.com", 80, "/x?", "/x" },
  { L("http://a.com/x?a=b/c?d"), 0, "a.com", 80, "/x?a=b/c?d", "/x" },
  { L("http://a.com/x?%2f..%5c%2e"), 0, "a.com", 80, "/x?%2f..%5c%2e", "/x" },
  { L("http://a.com/x?../.."), 0, "a.com", 80, "/x?../..", "/x" },
  { L("http://a.com/x?@:!$&'()*+,;=-._~"), 0, "a.com", 80, "/x?@:!$&'()*+,;=-._~", "/x" },
  /* IP literals */
  { L("http://[::1]:80/"), 0, "::1", 80, "/", "/" },
  { L("http://[::1]/"), 0, "::1", 80, "/", "/" },
  { L("https://[::1]"), 1, "::1", 443, "/", "/" },
  { L("http://[0:0:0:0:0:0:0:1]:8080/x"), 0, "::1", 8080, "/x", "/x" },
  { L("http://[::FFFF:1.2.3.4]/"), 0, "::ffff:1.2.3.4", 80, "/", "/" },
  { L("http://[2001:DB8::1]/"), 0, "2001:db8::1", 80, "/", "/" },
  { L("http://[2001:db8:0:0:1:0:0:1]/"), 0, "2001:db8::1:0:0:1", 80, "/", "/" },
  { L("http://127.0.0.1/"), 0, "127.0.0.1", 80, "/", "/" },
  { L("http://127.0.0.1:80/"), 0, "127.0.0.1", 80, "/", "/" },
  { L("http://0.0.0.0/"), 0, "0.0.0.0", 80, "/", "/" },
  { L("http://255.255.255.255/"), 0, "255.255.255.255", 80, "/", "/" },
  { L("http://10.0.0.1./x"), 0, "10.0.0.1", 80, "/x", "/x" },
  /* dot segments, plain and encoded */
  { L("http://a.com/v1/../admin"), 0, "a.com", 80, "/admin", "/admin" },
  { L("http://a.com/v1/%2e%2e/admin"), 0, "a.com", 80, "/admin", "/admin" },
  { L("http://a.com/v1/%2E%2E/admin"), 0, "a.com", 80, "/admin", "/admin" },
  { L("http://a.com/v1/.%2e/admin"), 0, "a.com", 80, "/admin", "/admin" },
  { L("http://a.com/v1/%2e./admin"), 0, "a.com", 80, "/admin", "/admin" },
  { L("http://a.com/v1/%2E./admin"), 0, "a.com", 80, "/admin", "/admin" },
  { L("http://a.com/v1/./x"), 0, "a.com", 80, "/v1/x", "/v1/x" },
  { L("http://a.com/v1/%2e/x"), 0, "a.com", 80, "/v1/x", "/v1/x" },
  { L("http://a.com/v1/%2E/x?y"), 0, "a.com", 80, "/v1/x?y", "/v1/x" },
  { L("http://a.com/../x"), 0, "a.com", 80, "/x", "/x" },
  { L("http://a.com/../../../x"), 0, "a.com", 80, "/x", "/x" },
  { L("http://a.com/%2e%2e/%2e%2e/x"), 0, "a.com", 80, "/x", "/x" },
  { L("http://a.com/.."), 0, "a.com", 80, "/", "/" },
  { L("http://a.com/."), 0, "a.com", 80, "/", "/" },
  { L("http://a.com/..?q"), 0, "a.com", 80, "/?q", "/" },
  { L("http://a.com/a/b/.."), 0, "a.com", 80, "/a/", "/a/" },
  { L("http://a.com/a/b/."), 0, "a.com", 80, "/a/b/", "/a/b/" },
  { L("http://a.com/a/b/%2e%2e"), 0, "a.com", 80, "/a/", "/a/" },
  { L("http://a.com/a/./b/../../c"), 0, "a.com", 80, "/c", "/c" },
  { L("http://a.com/v1/x/../../admin"), 0, "a.com", 80, "/admin", "/admin" },
  { L("http://a.com/admin/../v1/x"), 0, "a.com", 80, "/v1/x", "/v1/x" },
  /* "//" is kept; ".." after it removes the empty segment, per remove_dot_segments */
  { L("http://a.com/a//b"), 0, "a.com", 80, "/a//b", "/a//b" },
  { L("http://a.com//a"), 0, "a.com", 80, "//a", "//a" },
  { L("http://a.com/a//../b"), 0, "a.com", 80, "/a/b", "/a/b" },
  { L("http://a.com/a/"), 0, "a.com", 80, "/a/", "/a/" },
  /* not dot segments */
  { L("http://a.com/.../x"), 0, "a.com", 80, "/.../x", "/.../x" },
  { L("http://a.com/..a/"), 0, "a.com", 80, "/..a/", "/..a/" },
  { L("http://a.com/a../"), 0, "a.com", 80, "/a../", "/a../" },
  { L("http://a.com/.a"), 0, "a.com", 80, "/.a", "/.a" },
  { L("http://a.com/v1/..%3f"), 0, "a.com", 80, "/v1/..%3F", "/v1/..%3F" },
  { L("http://a.com/v1/..%2e"), 0, "a.com", 80, "/v1/...", "/v1/..." },
  /* unreserved escapes decoded, others uppercased */
  { L("http://a.com/%7Euser/%41"), 0, "a.com", 80, "/~user/A", "/~user/A" },
  { L("http://a.com/%7euser"), 0, "a.com", 80, "/~user", "/~user" },
  { L("http://a.com/%76%31/x"), 0, "a.com", 80, "/v1/x", "/v1/x" },
  { L("http://a.com/%2D%5F%2e%7E%30%39"), 0, "a.com", 80, "/-_.~09", "/-_.~09" },
  { L("http://a.com/a%3bb"), 0, "a.com", 80, "/a%3Bb", "/a%3Bb" },
  { L("http://a.com/a%20b"), 0, "a.com", 80, "/a%20b", "/a%20b" },
  { L("http://a.com/%e2%82%ac"), 0, "a.com", 80, "/%E2%82%AC", "/%E2%82%AC" },
  { L("http://a.com/%25"), 0, "a.com", 80, "/%25", "/%25" },
  { L("http://a.com/%252e%252e/x"), 0, "a.com", 80, "/%252e%252e/x", "/%252e%252e/x" },
  { L("http://a.com/%3F%23"), 0, "a.com", 80, "/%3F%23", "/%3F%23" },
  /* parameters that are not dot segments stay */
  { L("http://a.com/a;b=c/d"), 0, "a.com", 80, "/a;b=c/d", "/a;b=c/d" },
  { L("http://a.com/;/x"), 0, "a.com", 80, "/;/x", "/;/x" },
  { L("http://a.com/x;..;/y"), 0, "a.com", 80, "/x;..;/y", "/x;..;/y" },
  { L("http://a.com/@x:y!$&'()*+,;=-._~"), 0, "a.com", 80, "/@x:y!$&'()*+,;=-._~",
    "/@x:y!$&'()*+,;=-._~" },
};

TEST(test_parse_ok) {
  for (size_t i = 0; i < sizeof parse_ok / sizeof parse_ok[0]; i++) {
    const ok_case *c = &parse_ok[i];
    hc_url u;
    const char *code = "unset";
    char msg[128] = "";
    int ok = CHECK(hc_url_parse(c->in, c->n, &u, &code, msg, sizeof msg) == 0);
    if (ok) {
      ok &= CHECK(u.https == c->https);
      ok &= CHECK_STREQ(u.host, c->host);
      ok &= CHECK(u.port == c->port);
      ok &= CHECK_STREQ(u.target, c->target);
      ok &= CHECK_STREQ(u.path, c->path);
    }
    if (!ok) { show_input(c->in, c->n); fprintf(stderr, "  %s: %s\n", code, msg); }
    hc_url_free(&u);
  }
}

/* }===== */


/* {===== parse: refused ===== */

typedef struct err_case {
  const char *in;
  size_t n;
  const char *code;
  const char *why;    /* a substring of the message: which check refused it */
} err_case;

static const err_case parse_err[] = {
  /* empty */
  { L(""), "EINVAL", "empty URL" },
  /* userinfo */
  { L("http://user@evil/"), "EINVAL", "userinfo" },
  { L("http://good.com@evil.com/"), "EINVAL", "userinfo" },
  { L("http://user:pass@a.com/"), "EINVAL", "userinfo" },
  { L("http://@a.com/"), "EINVAL", "userinfo" },
  { L("http://127.0.0.1:80@evil/"), "EINVAL", "userinfo" },
  { L("https://a.com:443@evil.com:443/"), "EINVAL", "userinfo" },
  { L("http://[::1]@evil/"), "EINVAL", "userinfo" },
  /* backslashes anywhere */
  { L("http://a.com\\@b.com/"), "EINVAL", "backslash" },
  { L("http://a.com\\b/"), "EINVAL", "backslash" },
  { L("http://a.com/x\\y"), "EINVAL", "backslash" },
  { L("http://a.com/v1\\..\\admin"), "EINVAL", "backslash" },
  { L("http:\\\\a.com/"), "EINVAL", "backslash" },
  { L("http:/\\a.com/"), "EINVAL", "backslash" },
  { L("http://a.com/x?y\\z"), "EINVAL", "backslash" },
  { L("http://a.com/x#y\\z"), "EINVAL", "backslash" },
  /* spaces, controls, CR/LF, NUL, raw non-ASCII */
  { L("http://a .com/"), "EINVAL", "space" },
  { L("http://a.com/ x"), "EINVAL", "space" },
  { L("http://a.com/x "), "EINVAL", "space" },
  { L("http://a.com/x?a b"), "EINVAL", "space" },
  { L("http://a.com: 80/"), "EINVAL", "space" },
  { L("http://a.com/\t"), "EINVAL", "control character" },
  { L("http://a.com/\x01"), "EINVAL", "control character" },
  { L("http://a.com/\x7f"), "EINVAL", "control character" },
  { L("http://a.com/\x1b[0m"), "EINVAL", "control character" },
  { L("http://a.com\t/"), "EINVAL", "control character" },
  { L("http://a.com/\r\nHost: evil"), "EINVAL", "CR or LF" },
  { L("http://a.com/x\n"), "EINVAL", "CR or LF" },
  { L("http://a.com/x\r"), "EINVAL", "CR or LF" },
  { L("http://a.com/x?\r\nX-Injected: 1"), "EINVAL", "CR or LF" },
  { L("http://a.com/x#\r\n"), "EINVAL", "CR or LF" },
  { L("http://a.com\r\n/"), "EINVAL", "CR or LF" },
  { L("http://a.com/\0x"), "EINVAL", "NUL byte" },
  { L("http://a.com\0.evil.com/"), "EINVAL", "NUL byte" },
  { L("http://a.com/x?\0"), "EINVAL", "NUL byte" },
  { L("http://a.com/\0"), "EINVAL", "NUL byte" },
  { L("http://a.com/\xc3\xa9"), "EINVAL", "non-ASCII" },
  { L("http://\xc3\xa9.com/"), "EINVAL", "non-ASCII" },
  { L("http://a.com/x?\xff"), "EINVAL", "non-ASCII" },
  { L("http://a\xef\xbc\x8e" "com/"), "EINVAL", "non-ASCII" },     /* fullwidth full stop */
  /* scheme and "//" */
  { L("//a.com/"), "EINVAL", "not an absolute URL" },
  { L("/a.com/"), "EINVAL", "not an absolute URL" },
  { L("a.com"), "EINVAL", "not an absolute URL" },
  { L("://a.com/"), "EINVAL", "not an absolute URL" },
  { L("1http://a.com/"), "EINVAL", "not an absolute URL" },
  { L(" http://a.com/"), "EINVAL", "not an absolute URL" },
  { L("http ://a.com/"), "EINVAL", "not an absolute URL" },
  { L("ht\ntp://a.com/"), "EINVAL", "not an absolute URL" },
  { L("\0http://a.com/"), "EINVAL", "not an absolute URL" },
  { L("http"), "EINVAL", "not an absolute URL" },
  { L("http:/a.com/"), "EINVAL", "expected \"//\"" },
  { L("http:a.com"), "EINVAL", "expected \"//\"" },
  { L("http:"), "EINVAL", "expected \"//\"" },
  { L("http:/"), "EINVAL", "expected \"//\"" },
  { L("https:?x"), "EINVAL", "expected \"//\"" },
  /* empty host */
  { L("http://"), "EINVAL", "empty host" },
  { L("http:///x"), "EINVAL", "empty host" },
  { L("http://?x"), "EINVAL", "empty host" },
  { L("http://#x"), "EINVAL", "empty host" },
  { L("http://:80/"), "EINVAL", "empty host" },
  { L("http://./"), "EINVAL", "empty host" },
  { L("http://::1/"), "EINVAL", "empty host" },
  /* host names */
  { L("http://../"), "EINVAL", "empty label" },
  { L("http://a..com/"), "EINVAL", "empty label" },
  { L("http://.a.com/"), "EINVAL", "empty label" },
  { L("http://a.com../"), "EINVAL", "empty label" },
  { L("http://%61.com/"), "EINVAL", "percent-encoded host" },
  { L("http://a%2ecom/"), "EINVAL", "percent-encoded host" },
  { L("http://a!b.com/"), "EINVAL", "not allowed in host" },
  { L("http://a$b/"), "EINVAL", "not allowed in host" },
  { L("http://a,b/"), "EINVAL", "not allowed in host" },
  { L("http://a;b/"), "EINVAL", "not allowed in host" },
  { L("http://a=b/"), "EINVAL", "not allowed in host" },
  { L("http://a~b/"), "EINVAL", "not allowed in host" },
  { L("http://a*b/"), "EINVAL", "not allowed in host" },
  { L("http://a'b/"), "EINVAL", "not allowed in host" },
  { L("http://a[b]/"), "EINVAL", "not allowed in host" },
  { L("http://a[::1]/"), "EINVAL", "not allowed in host" },
  { L("http://a]/"), "EINVAL", "not allowed in host" },
  { L("http://a<b/"), "EINVAL", "not allowed in host" },
  { L("http://a{b/"), "EINVAL", "not allowed in host" },
  { L("http://a|b/"), "EINVAL", "not allowed in host" },
  { L("http://a\"b/"), "EINVAL", "not allowed in host" },
  /* numeric hosts that are not the canonical dotted quad */
  { L("http://127.1/"), "EINVAL", "numeric host" },
  { L("http://2130706433/"), "EINVAL", "numeric host" },
  { L("http://0x7f000001/"), "EINVAL", "numeric host" },
  { L("http://0x7f.0.0.1/"), "EINVAL", "numeric host" },
  { L("http://0177.0.0.1/"), "EINVAL", "numeric host" },
  { L("http://127.0.0.01/"), "EINVAL", "numeric host" },
  { L("http://127.000.000.001/"), "EINVAL", "numeric host" },
  { L("http://1.2.3.256/"), "EINVAL", "numeric host" },
  { L("http://1.2.3.4.5/"), "EINVAL", "numeric host" },
  { L("http://1.2.3/"), "EINVAL", "numeric host" },
  { L("http://a.1/"), "EINVAL", "numeric host" },
  { L("http://a.0x7f/"), "EINVAL", "numeric host" },
  { L("http://0x/"), "EINVAL", "numeric host" },
  { L("http://1/"), "EINVAL", "numeric host" },
  { L("http://1.2.3.0x4/"), "EINVAL", "numeric host" },
  { L("http://1.2.3.4294967300/"), "EINVAL", "numeric host" },
  /* ports */
  { L("http://a.com:0/"), "EINVAL", "port out of range" },
  { L("http://a.com:00000/"), "EINVAL", "port out of range" },
  { L("http://a.com:65536/"), "EINVAL", "port out of range" },
  { L("http://a.com:99999/"), "EINVAL", "port out of range" },
  { L("http://a.com:123456/"), "EINVAL", "port out of range" },
  { L("http://a.com:4294967376/"), "EINVAL", "port out of range" },
  { L("http://a.com:18446744073709551696/"), "EINVAL", "port out of range" },
  { L("http://a.com:-1/"), "EINVAL", "not a decimal" },
  { L("http://a.com:+80/"), "EINVAL", "not a decimal" },
  { L("http://a.com:8a/"), "EINVAL", "not a decimal" },
  { L("http://a.com:0x50/"), "EINVAL", "not a decimal" },
  { L("http://a.com:80:80/"), "EINVAL", "not a decimal" },
  { L("http://a.com:8%30/"), "EINVAL", "not a decimal" },
  { L("http://a.com:/"), "EINVAL", "empty port" },
  { L("http://a.com:"), "EINVAL", "empty port" },
  { L("http://a.com:?x"), "EINVAL", "empty port" },
  { L("http://a.com:080/"), "EINVAL", "leading zero" },
  { L("http://a.com:0443/"), "EINVAL", "leading zero" },
  /* IPv6 literals */
  { L("http://[::1/"), "EINVAL", "unterminated IPv6" },
  { L("http://[::1"), "EINVAL", "unterminated IPv6" },
  { L("http://[::1]x/"), "EINVAL", "junk after an IPv6" },
  { L("http://[::1]]/"), "EINVAL", "junk after an IPv6" },
  { L("http://[::1][::2]/"), "EINVAL", "junk after an IPv6" },
  { L("http://[]/"), "EINVAL", "empty IPv6" },
  { L("http://[::1%25eth0]/"), "EINVAL", "IPv6 zone" },
  { L("http://[fe80::1%eth0]/"), "EINVAL", "IPv6 zone" },
  { L("http://[v1.fe]/"), "EINVAL", "IPvFuture" },
  { L("http://[V7.x]/"), "EINVAL", "IPvFuture" },
  { L("http://[1.2.3.4]/"), "EINVAL", "bad IPv6" },
  { L("http://[::g]/"), "EINVAL", "bad IPv6" },
  { L("http://[1:2:3:4:5:6:7:8:9]/"), "EINVAL", "bad IPv6" },
  { L("http://[1::2::3]/"), "EINVAL", "bad IPv6" },
  { L("http://[12345::]/"), "EINVAL", "bad IPv6" },
  { L("http://[::ffff:01.2.3.4]/"), "EINVAL", "bad IPv6" },
  { L("http://[a.com]/"), "EINVAL", "bad IPv6" },
  { L("http://[:::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::1]/"),
    "EINVAL", "bad IPv6" },
  { L("http://[::1]:/"), "EINVAL", "empty port" },
  { L("http://[::1]:0/"), "EINVAL", "port out of range" },
  { L("http://[::1]:65536/"), "EINVAL", "port out of range" },
  /* path: encoded separators, controls, overlong UTF-8, bad escapes, dot-parameter tricks */
  { L("http://a.com/v1%2f..%2fadmin"), "EINVAL", "encoded slash" },
  { L("http://a.com/v1%2F"), "EINVAL", "encoded slash" },
  { L("http://a.com/v1/..%2Fadmin"), "EINVAL", "encoded slash" },
  { L("http://a.com/a%5cb"), "EINVAL", "encoded slash" },
  { L("http://a.com/v1/..%5C..%5Cadmin"), "EINVAL", "encoded slash" },
  { L("http://a.com/%00"), "EINVAL", "encoded control" },
  { L("http://a.com/x%00.json"), "EINVAL", "encoded control" },
  { L("http://a.com/%0d%0aX:1"), "EINVAL", "encoded control" },
  { L("http://a.com/%09"), "EINVAL", "encoded control" },
  { L("http://a.com/%1F"), "EINVAL", "encoded control" },
  { L("http://a.com/%7f"), "EINVAL", "encoded control" },
  { L("http://a.com/%c0%ae%c0%ae/"), "EINVAL", "overlong" },
  { L("http://a.com/v1/%C0%AF../admin"), "EINVAL", "overlong" },
  { L("http://a.com/%C1%9C"), "EINVAL", "overlong" },
  { L("http://a.com/%"), "EINVAL", "two hex digits" },
  { L("http://a.com/%2"), "EINVAL", "two hex digits" },
  { L("http://a.com/%zz"), "EINVAL", "two hex digits" },
  { L("http://a.com/%2g"), "EINVAL", "two hex digits" },
  { L("http://a.com/%%32%65"), "EINVAL", "two hex digits" },
  { L("http://a.com/%u002e%u002e/"), "EINVAL", "two hex digits" },
  { L("http://a.com/x?%zz"), "EINVAL", "two hex digits" },
  { L("http://a.com/x?a=%"), "EINVAL", "two hex digits" },
  { L("http://a.com/x#%4"), "EINVAL", "two hex digits" },
  { L("http://a.com/v1/..;/admin"), "EINVAL", "dot segment with parameters" },
  { L("http://a.com/v1/.;x/"), "EINVAL", "dot segment with parameters" },
  { L("http://a.com/v1/..;jsessionid=1/admin"), "EINVAL", "dot segment with parameters" },
  { L("http://a.com/v1/%2e%2e;/admin"), "EINVAL", "dot segment with parameters" },
  { L("http://a.com/v1/..%3b/admin"), "EINVAL", "dot segment with parameters" },
  { L("http://a.com/v1/..%3B/admin"), "EINVAL", "dot segment with parameters" },
  { L("http://a.com/v1/.%3B"), "EINVAL", "dot segment with parameters" },
  /* characters outside RFC 3986's grammar for their component */
  { L("http://a.com/<script>"), "EINVAL", "not allowed in path" },
  { L("http://a.com/a>b"), "EINVAL", "not allowed in path" },
  { L("http://a.com/a\"b"), "EINVAL", "not allowed in path" },
  { L("http://a.com/a{b}"), "EINVAL", "not allowed in path" },
  { L("http://a.com/a|b"), "EINVAL", "not allowed in path" },
  { L("http://a.com/a^b"), "EINVAL", "not allowed in path" },
  { L("http://a.com/a`b"), "EINVAL", "not allowed in path" },
  { L("http://a.com/[x]"), "EINVAL", "not allowed in path" },
  { L("http://a.com/x?a|b"), "EINVAL", "not allowed in query" },
  { L("http://a.com/x?a[]=1"), "EINVAL", "not allowed in query" },
  { L("http://a.com/x?{}"), "EINVAL", "not allowed in query" },
  { L("http://a.com/x#a#b"), "EINVAL", "not allowed in query" },
  { L("http://a.com/x#<"), "EINVAL", "not allowed in query" },
  { L("http://a.com/x?a#b#c"), "EINVAL", "not allowed in query" },
  /* other schemes: EACCES, whatever follows */
  { L("ftp://a.com/"), "EACCES", "scheme is not http" },
  { L("file:///etc/passwd"), "EACCES", "scheme is not http" },
  { L("FILE:///etc/passwd"), "EACCES", "scheme is not http" },
  { L("gopher://a.com:70/_GET%20/"), "EACCES", "scheme is not http" },
  { L("data:text/html,<script>alert(1)</script>"), "EACCES", "scheme is not http" },
  { L("javascript:alert(1)"), "EACCES", "scheme is not http" },
  { L("JavaScript:\r\nalert(1)"), "EACCES", "scheme is not http" },
  { L("ws://a.com/"), "EACCES", "scheme is not http" },
  { L("wss://a.com/"), "EACCES", "scheme is not http" },
  { L("httpx://a.com/"), "EACCES", "scheme is not http" },
  { L("htt://a.com/"), "EACCES", "scheme is not http" },
  { L("https+unix://a.com/"), "EACCES", "scheme is not http" },
  { L("http.s://a.com/"), "EACCES", "scheme is not http" },
  { L("mailto:a@b.com"), "EACCES", "scheme is not http" },
  { L("dict://a.com:11211/stat"), "EACCES", "scheme is not http" },
  { L("ldap://a.com/"), "EACCES", "scheme is not http" },
  { L("jar:http://a.com/x!/"), "EACCES", "scheme is not http" },
  { L("a.com:80/x"), "EACCES", "scheme is not http" },
  { L("localhost:8080"), "EACCES", "scheme is not http" },
};

TEST(test_parse_err) {
  for (size_t i = 0; i < sizeof parse_err / sizeof parse_err[0]; i++) {
    const err_case *c = &parse_err[i];
    hc_url u;
    const char *code = "unset";
    char msg[128] = "";
    memset(&u, 0x5a, sizeof u);   /* garbage in: the parser must not trust or free it */
    int ok = CHECK(hc_url_parse(c->in, c->n, &u, &code, msg, sizeof msg) == -1);
    ok &= CHECK_STREQ(code, c->code);
    ok &= CHECK(strstr(msg, c->why) != NULL);
    ok &= CHECK(is_zeroed(&u));
    if (!ok) {
      show_input(c->in, c->n);
      fprintf(stderr, "  got %s: \"%s\", want %s: \"%s\"\n", code, msg, c->code, c->why);
      if (u.target && !is_zeroed(&u)) fprintf(stderr, "  target: %s\n", u.target);
    }
    if (!is_zeroed(&u)) hc_url_free(&u);
  }
}

/* }===== */


/* {===== parse: limits, flags, error plumbing ===== */

static char *repeat (char c, size_t n) {
  char *s = malloc(n + 1);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

TEST(test_limits) {
  hc_url u;
  const char *code = NULL;
  char msg[128];
  size_t base = strlen("http://a.com/");
  char *url = malloc(HC_URL_MAX + 2);
  /* exactly HC_URL_MAX bytes is fine, one more is not; the same for a long query */
  memcpy(url, "http://a.com/", base);
  memset(url + base, 'x', HC_URL_MAX + 1 - base);
  CHECK(hc_url_parse(url, HC_URL_MAX, &u, &code, msg, sizeof msg) == 0);
  CHECK(u.target && strlen(u.target) == HC_URL_MAX - strlen("http://a.com"));
  hc_url_free(&u);
  CHECK(hc_url_parse(url, HC_URL_MAX + 1, &u, &code, msg, sizeof msg) == -1);
  CHECK_STREQ(code, "EINVAL");
  CHECK(strstr(msg, "too long") != NULL);
  url[base] = '?';
  CHECK(hc_url_parse(url, HC_URL_MAX, &u, &code, msg, sizeof msg) == 0);
  hc_url_free(&u);
  CHECK(hc_url_parse(url, HC_URL_MAX + 1, &u, &code, msg, sizeof msg) == -1);
  free(url);

  /* host names: 253 bytes (and a trailing dot) fine, 254 not; labels up to 63 */
  char host[300], in[400];
  char *l63 = repeat('a', 63), *l64 = repeat('b', 64), *d61 = repeat('d', 61);
  snprintf(host, sizeof host, "%s.%s.%s.%s", l63, l63, l63, d61);
  CHECK(strlen(host) == 253);
  snprintf(in, sizeof in, "http://%s/", host);
  CHECK(hc_url_parse(in, strlen(in), &u, &code, msg, sizeof msg) == 0);
  CHECK_STREQ(u.host, host);
  hc_url_free(&u);
  snprintf(in, sizeof in, "http://%s./", host);
  CHECK(hc_url_parse(in, strlen(in), &u, &code, msg, sizeof msg) == 0);
  CHECK_STREQ(u.host, host);
  hc_url_free(&u);
  snprintf(in, sizeof in, "http://%sd/", host);
  CHECK(hc_url_parse(in, strlen(in), &u, &code, msg, sizeof msg) == -1);
  CHECK(strstr(msg, "host name too long") != NULL);
  snprintf(in, sizeof in, "http://%s.com/", l64);
  CHECK(hc_url_parse(in, strlen(in), &u, &code, msg, sizeof msg) == -1);
  CHECK(strstr(msg, "label too long") != NULL);
  snprintf(in, sizeof in, "http://%s.com/", l63);
  CHECK(hc_url_parse(in, strlen(in), &u, &code, msg, sizeof msg) == 0);
  hc_url_free(&u);
  free(l63);
  free(l64);
  free(d61);
}

TEST(test_flags) {
  static const struct { const char *in; int ip4, ip6; } t[] = {
    { "http://1.2.3.4/", 1, 0 },   { "http://127.0.0.1:8080/", 1, 0 },
    { "http://a.com/", 0, 0 },     { "http://1.2.3.a/", 0, 0 },
    { "http://[::1]/", 0, 1 },     { "http://[::ffff:1.2.3.4]/", 0, 1 },
    { "http://10.0.0.1./", 1, 0 }, { "http://localhost/", 0, 0 },
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    hc_url u;
    if (!CHECK(hc_url_parse(t[i].in, strlen(t[i].in), &u, NULL, NULL, 0) == 0)) continue;
    int ok = CHECK(u.host_is_ip4 == t[i].ip4);
    ok &= CHECK(u.host_is_ip6 == t[i].ip6);
    if (!ok) fprintf(stderr, "  input: %s\n", t[i].in);
    hc_url_free(&u);
  }
}

TEST(test_error_plumbing) {
  hc_url u;
  const char *code = NULL;
  char tiny[4] = "zzz";
  /* NULL code and message are allowed; a short message buffer is truncated, terminated */
  CHECK(hc_url_parse("ftp://x/", 8, &u, NULL, NULL, 0) == -1);
  CHECK(hc_url_parse("ftp://x/", 8, &u, &code, tiny, sizeof tiny) == -1);
  CHECK_STREQ(code, "EACCES");
  CHECK(strlen(tiny) == 3);
  CHECK(hc_url_parse("ftp://x/", 8, &u, &code, tiny, 0) == -1);
  CHECK(hc_url_parse(NULL, 5, &u, &code, NULL, 0) == -1);
  CHECK_STREQ(code, "EINVAL");
  CHECK(is_zeroed(&u));
  /* freeing twice, or a zeroed or NULL url, is harmless */
  CHECK(hc_url_parse("http://a.com/x", 14, &u, NULL, NULL, 0) == 0);
  hc_url_free(&u);
  CHECK(u.target == NULL && u.path == NULL);
  hc_url_free(&u);
  hc_url_free(NULL);
  /* the message never echoes a control character from the input */
  char msg[128];
  CHECK(hc_url_parse("http://a.com/\r\nX", 16, &u, &code, msg, sizeof msg) == -1);
  CHECK(strchr(msg, '\r') == NULL && strchr(msg, '\n') == NULL);
}

TEST(test_method_valid) {
  static const char *const good[] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "M-SEARCH", "get", "X_Y.Z~1",
    "!#$%&'*+-.^_`|~", "A", "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
  };
  static const char *const bad[] = {
    "", "GET\r\n", "GET ", " GET", "G ET", "GET\n", "GE\tT", "GET/", "GET:", "(GET)", "GE\"T",
    "G,T", "G;T", "G=T", "G@T", "G[T]", "G{T}", "G\\T", "G?T", "\xc3\xa9", "G\x7f",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456",
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    if (!CHECK(hc_http_method_valid(good[i]))) fprintf(stderr, "  method: %s\n", good[i]);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (!CHECK(!hc_http_method_valid(bad[i]))) fprintf(stderr, "  method: %s\n", bad[i]);
  CHECK(!hc_http_method_valid(NULL));
}

/* }===== */


/* {===== rules ===== */

typedef struct check_case {
  const char *url;
  const char *method;
  int want;              /* 0 allowed, EACCES refused */
} check_case;

/* Parse each URL (which must parse) and check it against r. */
static void run_checks (const hc_httprules *r, const check_case *t, size_t n, const char *set) {
  for (size_t i = 0; i < n; i++) {
    hc_url u;
    char msg[128] = "";
    if (!CHECK(hc_url_parse(t[i].url, strlen(t[i].url), &u, NULL, msg, sizeof msg) == 0)) {
      fprintf(stderr, "  [%s] url does not parse: %s (%s)\n", set, t[i].url, msg);
      continue;
    }
    int got = hc_httprules_check(r, &u, t[i].method);
    if (!CHECK(got == t[i].want))
      fprintf(stderr, "  [%s] %s %s: got %d, want %d (path %s)\n", set,
              t[i].method ? t[i].method : "(null)", t[i].url, got, t[i].want, u.path);
    hc_url_free(&u);
  }
}

static hc_httprules *rules_of (const char *const *urls, size_t n) {
  hc_httprules *r = hc_httprules_new();
  char err[128];
  for (size_t i = 0; i < n; i++)
    if (!CHECK(hc_httprules_add(r, urls[i], NULL, 0, err, sizeof err) == 0))
      fprintf(stderr, "  rule %s: %s\n", urls[i], err);
  return r;
}

static const check_case v1_slash[] = {     /* rule https://api.example.com/v1/, GET (the default) */
  { "https://api.example.com/v1/", "GET", 0 },
  { "https://api.example.com/v1/x", "GET", 0 },
  { "https://api.example.com/v1/x/y/z", "GET", 0 },
  { "https://api.example.com/v1/x", "HEAD", EACCES },
  { "https://api.example.com/v1/x", "POST", EACCES },
  { "https://api.example.com/v1/x", "PUT", EACCES },
  { "https://api.example.com/v1/x", "DELETE", EACCES },
  { "https://api.example.com/v1/x", "OPTIONS", EACCES },
  { "https://api.example.com/v1/x", "get", EACCES },
  { "https://api.example.com/v1/x", "Get", EACCES },
  { "https://api.example.com/v1/x", "head", EACCES },
  { "https://api.example.com/v1/x", "GET\r\n", EACCES },
  { "https://api.example.com/v1/x", "GET ", EACCES },
  { "https://api.example.com/v1/x", "GET /admin HTTP/1.1\r\nX:", EACCES },
  { "https://api.example.com/v1/x", "", EACCES },
  { "https://api.example.com/v1/x", NULL, EACCES },
  { "https://api.example.com/v1/x", "GETGETGETGETGETGETGETGETGETGETGET", EACCES },
  /* the path on a segment boundary */
  { "https://api.example.com/v1", "GET", EACCES },
  { "https://api.example.com/v1x", "GET", EACCES },
  { "https://api.example.com/v1x/", "GET", EACCES },
  { "https://api.example.com/v1.json", "GET", EACCES },
  { "https://api.example.com/v", "GET", EACCES },
  { "https://api.example.com/", "GET", EACCES },
  { "https://api.example.com", "GET", EACCES },
  { "https://api.example.com/V1/x", "GET", EACCES },
  { "https://api.example.com/admin", "GET", EACCES },
  /* dot segments climbing out, plain and encoded */
  { "https://api.example.com/v1/../admin", "GET", EACCES },
  { "https://api.example.com/v1/%2e%2e/admin", "GET", EACCES },
  { "https://api.example.com/v1/%2E%2E/admin", "GET", EACCES },
  { "https://api.example.com/v1/.%2e/admin", "GET", EACCES },
  { "https://api.example.com/v1/%2e./admin", "GET", EACCES },
  { "https://api.example.com/v1/x/../../admin", "GET", EACCES },
  { "https://api.example.com/v1/..", "GET", EACCES },
  { "https://api.example.com/v1/%2e%2e", "GET", EACCES },
  { "https://api.example.com/v1/./../admin", "GET", EACCES },
  { "https://api.example.com/v1//../../admin", "GET", EACCES },
  /* ... and staying in */
  { "https://api.example.com/v1/x/../y", "GET", 0 },
  { "https://api.example.com/v1/./x", "GET", 0 },
  { "https://api.example.com/v1/.", "GET", 0 },
  { "https://api.example.com/v1/x/..", "GET", 0 },
  { "https://api.example.com/admin/../v1/x", "GET", 0 },
  { "https://api.example.com/../v1/x", "GET", 0 },
  { "https://api.example.com/v1/...", "GET", 0 },
  { "https://api.example.com/v1/..x", "GET", 0 },
  { "https://api.example.com/%76%31/x", "GET", 0 },
  { "https://api.example.com/v%31/", "GET", 0 },
  { "https://api.example.com/v1", "GET", EACCES },
  /* "//" is literal */
  { "https://api.example.com/v1//x", "GET", 0 },
  { "https://api.example.com//v1/x", "GET", EACCES },
  { "https://api.example.com/v1//", "GET", 0 },
  /* host: exact after lowercasing and the trailing dot */
  { "https://API.EXAMPLE.COM./v1/x", "GET", 0 },
  { "https://Api.Example.Com/v1/x", "GET", 0 },
  { "HTTPS://api.example.com/v1/x", "GET", 0 },
  { "https://evil.com/v1/", "GET", EACCES },
  { "https://api.example.com.evil.com/v1/", "GET", EACCES },
  { "https://evilapi.example.com/v1/", "GET", EACCES },
  { "https://example.com/v1/", "GET", EACCES },
  { "https://x.api.example.com/v1/", "GET", EACCES },
  { "https://api.example.co/v1/", "GET", EACCES },
  { "https://api-example.com/v1/", "GET", EACCES },
  { "https://api.example.com.a/v1/", "GET", EACCES },
  /* port: the default applied before comparing; scheme distinct */
  { "https://api.example.com:443/v1/x", "GET", 0 },
  { "https://api.example.com:8443/v1/x", "GET", EACCES },
  { "https://api.example.com:80/v1/x", "GET", EACCES },
  { "http://api.example.com/v1/x", "GET", EACCES },
  { "http://api.example.com:443/v1/x", "GET", EACCES },
  /* the query and fragment do not participate */
  { "https://api.example.com/v1/x?admin=1", "GET", 0 },
  { "https://api.example.com/v1/x?../../admin", "GET", 0 },
  { "https://api.example.com/x?/v1/", "GET", EACCES },
  { "https://api.example.com/?/v1/", "GET", EACCES },
  { "https://api.example.com/x#/v1/", "GET", EACCES },
  { "https://api.example.com/v1/x#../../admin", "GET", 0 },
  /* classic confusions that do parse, and their real host */
  { "https://api.example.com#@evil.com/v1/", "GET", EACCES },
  { "https://api.example.com?@evil.com/v1/", "GET", EACCES },
  { "https://evil.com#@api.example.com/v1/", "GET", EACCES },
  { "https://evil.com/v1/?@api.example.com/v1/", "GET", EACCES },
  { "https://evil.com/https://api.example.com/v1/", "GET", EACCES },
};

static const check_case v1_bare[] = {      /* rule http://a.com/v1, GET and POST */
  { "http://a.com/v1", "GET", 0 },
  { "http://a.com/v1/", "GET", 0 },
  { "http://a.com/v1/x", "GET", 0 },
  { "http://a.com/v1//x", "GET", 0 },
  { "http://a.com/v1?x", "GET", 0 },
  { "http://a.com/v1#x", "GET", 0 },
  { "http://a.com/v1x", "GET", EACCES },
  { "http://a.com/v1.json", "GET", EACCES },
  { "http://a.com/v1;x", "GET", EACCES },
  { "http://a.com/v1%2e", "GET", EACCES },
  { "http://a.com/v1%3B", "GET", EACCES },
  { "http://a.com/v", "GET", EACCES },
  { "http://a.com/", "GET", EACCES },
  { "http://a.com/V1", "GET", EACCES },
  { "http://a.com/x/../v1", "GET", 0 },
  { "http://a.com/v1/..", "GET", EACCES },
  { "http://a.com/v1/../v1x", "GET", EACCES },
  { "http://a.com/v1", "POST", 0 },
  { "http://a.com/v1", "post", EACCES },
  { "http://a.com/v1", "PUT", EACCES },
  { "http://a.com/v1", "HEAD", EACCES },      /* listing methods replaces the default */
  { "http://a.com:80/v1", "GET", 0 },
  { "http://a.com:8080/v1", "GET", EACCES },
  { "https://a.com/v1", "GET", EACCES },
  { "http://a.com./v1", "GET", 0 },
  { "http://b.a.com/v1", "GET", EACCES },
};

static const check_case literals[] = {     /* IP literal rules */
  { "http://127.0.0.1:8080/anything", "GET", 0 },
  { "http://127.0.0.1:8080/", "GET", 0 },
  { "http://127.0.0.1:8080", "HEAD", EACCES },   /* the default is GET only */
  { "http://127.0.0.1/", "GET", EACCES },
  { "http://127.0.0.1:8081/", "GET", EACCES },
  { "http://127.0.0.2:8080/", "GET", EACCES },
  { "https://127.0.0.1:8080/", "GET", EACCES },
  { "http://localhost:8080/", "GET", EACCES },
  { "http://[::ffff:127.0.0.1]:8080/", "GET", EACCES },
  { "http://[::1]:9000/api/x", "GET", 0 },
  { "http://[::1]:9000/api", "GET", 0 },
  { "http://[0:0::1]:9000/api/x", "GET", 0 },
  { "http://[0000:0000:0000:0000:0000:0000:0000:0001]:9000/api/", "GET", 0 },
  { "http://[::1]:9000/", "GET", EACCES },
  { "http://[::1]:9000/apix", "GET", EACCES },
  { "http://[::1]:9001/api/", "GET", EACCES },
  { "http://[::2]:9000/api/", "GET", EACCES },
  { "https://[2001:DB8:0::1]/x", "GET", 0 },
  { "https://[2001:db8::1]:443/", "GET", 0 },
  { "https://[2001:db8::1:0]/", "GET", EACCES },
  { "http://[2001:db8::1]/", "GET", EACCES },
};

static const check_case methods_set[] = {  /* rule https://a.com, five methods */
  { "https://a.com/anything", "PUT", 0 },
  { "https://a.com", "DELETE", 0 },
  { "https://a.com/x/y", "PATCH", 0 },
  { "https://a.com:443/", "M-SEARCH", 0 },
  { "https://a.com/", "GET", 0 },
  { "https://a.com/", "HEAD", EACCES },
  { "https://a.com/", "POST", EACCES },
  { "https://a.com/", "put", EACCES },
  { "https://a.com/", "PUT ", EACCES },
  { "https://a.com/", "PU", EACCES },
  { "https://a.com/", "PUTX", EACCES },
  { "https://a.com/", "M-SEARCH\r\n", EACCES },
};

static const check_case two_rules[] = {    /* v1 GET, v2 POST: a method never crosses rules */
  { "https://a.com/v1/x", "GET", 0 },
  { "https://a.com/v1/x", "POST", EACCES },
  { "https://a.com/v2/x", "POST", 0 },
  { "https://a.com/v2/x", "GET", EACCES },
  { "https://a.com/v3/x", "GET", EACCES },
  { "https://b.com/v2/x", "POST", 0 },
  { "https://b.com/v1/x", "GET", EACCES },
  { "https://a.com/v1/../v2/x", "POST", 0 },
  { "https://a.com/v2/../v1/x", "POST", EACCES },
};

TEST(test_rules_check) {
  char err[128];
  static const char *const v1s[] = { "https://api.example.com/v1/" };
  hc_httprules *r = rules_of(v1s, 1);
  run_checks(r, v1_slash, sizeof v1_slash / sizeof v1_slash[0], "v1/");
  hc_httprules_free(r);

  static const char *const gp[] = { "GET", "POST" };
  r = hc_httprules_new();
  CHECK(hc_httprules_add(r, "http://a.com/v1", gp, 2, err, sizeof err) == 0);
  run_checks(r, v1_bare, sizeof v1_bare / sizeof v1_bare[0], "v1");
  hc_httprules_free(r);

  static const char *const lits[] = { "http://127.0.0.1:8080/", "http://[::1]:9000/api",
                                      "https://[2001:db8::1]/" };
  r = rules_of(lits, 3);
  run_checks(r, literals, sizeof literals / sizeof literals[0], "literals");
  hc_httprules_free(r);

  static const char *const five[] = { "GET", "PUT", "DELETE", "PATCH", "M-SEARCH" };
  r = hc_httprules_new();
  CHECK(hc_httprules_add(r, "https://a.com", five, 5, err, sizeof err) == 0);
  run_checks(r, methods_set, sizeof methods_set / sizeof methods_set[0], "methods");
  hc_httprules_free(r);

  static const char *const get[] = { "GET" }, *const post[] = { "POST" };
  r = hc_httprules_new();
  CHECK(hc_httprules_add(r, "https://a.com/v1/", get, 1, err, sizeof err) == 0);
  CHECK(hc_httprules_add(r, "https://a.com/v2/", post, 1, err, sizeof err) == 0);
  CHECK(hc_httprules_add(r, "https://b.com/v2/", post, 1, err, sizeof err) == 0);
  CHECK(hc_httprules_count(r) == 3);
  run_checks(r, two_rules, sizeof two_rules / sizeof two_rules[0], "two");
  hc_httprules_free(r);
}

TEST(test_rules_empty) {
  hc_url u;
  hc_httprules *r = hc_httprules_new();
  CHECK(r != NULL);
  CHECK(hc_httprules_count(r) == 0);
  CHECK(hc_url_parse("https://a.com/", 14, &u, NULL, NULL, 0) == 0);
  CHECK(hc_httprules_check(r, &u, "GET") == EACCES);
  CHECK(hc_httprules_check(NULL, &u, "GET") == EACCES);
  CHECK(hc_httprules_check(r, NULL, "GET") == EACCES);
  CHECK(hc_httprules_add(r, "https://a.com/", NULL, 0, NULL, 0) == 0);
  CHECK(hc_httprules_check(r, &u, "GET") == 0);
  /* a struct not made by the parser is refused, not trusted */
  hc_url bad = u;
  bad.path = NULL;
  CHECK(hc_httprules_check(r, &bad, "GET") == EACCES);
  bad = u;
  bad.path = "v1";
  CHECK(hc_httprules_check(r, &bad, "GET") == EACCES);
  bad = u;
  memset(bad.host, 'a', sizeof bad.host);
  CHECK(hc_httprules_check(r, &bad, "GET") == EACCES);
  hc_url_free(&u);
  hc_httprules_free(r);
  hc_httprules_free(NULL);
  CHECK(hc_httprules_count(NULL) == 0);
}

typedef struct add_case {
  const char *url;
  const char *const *methods;
  size_t n;
  const char *why;     /* NULL: accepted */
} add_case;

static const char *const m_crlf[] = { "GET\r\n" };
static const char *const m_empty[] = { "" };
static const char *const m_null[] = { NULL };
static const char *const m_space[] = { "G ET" };
static const char *const m_mixed[] = { "GET", "bad method" };
static const char *const m_ok[] = { "GET", "POST" };
static const char *const m_33[33] = {
  "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q",
  "R", "S", "T", "U", "V", "W", "X", "Y", "Z", "A1", "B1", "C1", "D1", "E1", "F1", "G1",
};

static const add_case adds[] = {
  { "ftp://a.com/", NULL, 0, "scheme is not http" },
  { "file:///etc/", NULL, 0, "scheme is not http" },
  { "https://a.com/v1/?x", NULL, 0, "no query or fragment" },
  { "https://a.com/v1/?", NULL, 0, "no query or fragment" },
  { "https://a.com/v1/#x", NULL, 0, "no query or fragment" },
  { "https://a.com/v1/#", NULL, 0, "no query or fragment" },
  { "https://user@a.com/", NULL, 0, "userinfo" },
  { "a.com/v1/", NULL, 0, "not an absolute URL" },
  { "//a.com/v1/", NULL, 0, "not an absolute URL" },
  { "", NULL, 0, "empty URL" },
  { "https://a.com/%2f", NULL, 0, "encoded slash" },
  { "https://a.com/..;/", NULL, 0, "dot segment with parameters" },
  { "https://*.a.com/", NULL, 0, "not allowed in host" },
  { "https://a.com:0/", NULL, 0, "port out of range" },
  { "https://127.1/", NULL, 0, "numeric host" },
  { "https://a.com/ v1", NULL, 0, "space" },
  { "https://a.com/v1/", m_crlf, 1, "not an HTTP token" },
  { "https://a.com/v1/", m_empty, 1, "not an HTTP token" },
  { "https://a.com/v1/", m_null, 1, "not an HTTP token" },
  { "https://a.com/v1/", m_space, 1, "not an HTTP token" },
  { "https://a.com/v1/", m_mixed, 2, "not an HTTP token" },
  { "https://a.com/v1/", m_33, 33, "too many methods" },
  { "https://a.com/v1/", m_33, 32, NULL },
  { "https://a.com/v1/", m_ok, 2, NULL },
  { "https://a.com/v1/", NULL, 0, NULL },
  { "https://a.com/v1/", m_ok, 0, NULL },
  { "https://[::1]:8443/", NULL, 0, NULL },
};

TEST(test_rules_add) {
  hc_httprules *r = hc_httprules_new();
  size_t count = 0;
  for (size_t i = 0; i < sizeof adds / sizeof adds[0]; i++) {
    char err[128] = "";
    int rc = hc_httprules_add(r, adds[i].url, adds[i].methods, adds[i].n, err, sizeof err);
    int ok;
    if (adds[i].why) {
      ok = CHECK(rc == -1);
      ok &= CHECK(strstr(err, adds[i].why) != NULL);
      ok &= CHECK(strchr(err, '\r') == NULL);
    } else {
      ok = CHECK(rc == 0);
      count++;
    }
    ok &= CHECK(hc_httprules_count(r) == count);   /* a refused rule adds nothing */
    if (!ok) fprintf(stderr, "  rule %s: rc %d \"%s\"\n", adds[i].url, rc, err);
  }
  CHECK(hc_httprules_add(NULL, "https://a.com/", NULL, 0, NULL, 0) == -1);
  CHECK(hc_httprules_add(r, NULL, NULL, 0, NULL, 0) == -1);
  hc_httprules_free(r);
}

/* Rules are normalised like URLs: what an operator wrote is compared as the parser reads it. */
TEST(test_rules_normalised) {
  static const struct { const char *rule, *url; int want; } t[] = {
    { "https://a.com/v1/./x/", "https://a.com/v1/x/y", 0 },
    { "https://a.com/v1/./x/", "https://a.com/v1/y", EACCES },
    { "https://a.com/v1/../admin/", "https://a.com/admin/x", 0 },
    { "https://a.com/v1/../admin/", "https://a.com/v1/x", EACCES },
    { "https://a.com/%7Euser/", "https://a.com/~user/x", 0 },
    { "https://a.com/~user/", "https://a.com/%7euser/x", 0 },
    { "https://a.com/a%3bb/", "https://a.com/a%3Bb/x", 0 },
    { "https://a.com/a%3bb/", "https://a.com/a;b/x", EACCES },
    { "HTTPS://A.COM./V1/", "https://a.com/V1/x", 0 },
    { "HTTPS://A.COM./V1/", "https://a.com/v1/x", EACCES },
    { "https://a.com:8443/", "https://a.com:8443/x", 0 },
    { "https://a.com:8443/", "https://a.com/x", EACCES },
    { "https://a.com:443/", "https://a.com/x", 0 },
    { "http://a.com:443/", "http://a.com:443/x", 0 },
    { "http://a.com:443/", "https://a.com/x", EACCES },
    { "https://[0::1]/", "https://[::1]/x", 0 },
    { "https://a.com/v1//", "https://a.com/v1//x", 0 },
    { "https://a.com/v1//", "https://a.com/v1/x", EACCES },
    { "https://a.com/..", "https://a.com/x", 0 },
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    hc_httprules *r = hc_httprules_new();
    hc_url u;
    char err[128] = "";
    int ok = CHECK(hc_httprules_add(r, t[i].rule, NULL, 0, err, sizeof err) == 0);
    ok &= CHECK(hc_url_parse(t[i].url, strlen(t[i].url), &u, NULL, NULL, 0) == 0);
    if (ok) ok &= CHECK(hc_httprules_check(r, &u, "GET") == t[i].want);
    if (!ok) fprintf(stderr, "  rule %s, url %s: %s\n", t[i].rule, t[i].url, err);
    hc_url_free(&u);
    hc_httprules_free(r);
  }
}

/* }===== */


/* {===== redirects ===== */

typedef struct res_case {
  const char *loc;
  size_t n;
  const char *want;   /* the resolved URL as fmt_url spells it; NULL for a refusal */
  const char *code;
  const char *why;
} res_case;

/* RFC 3986 5.4, strict (5.2.2 without the "http:g" backward-compatibility branch). The empty
** reference is refused: a redirect to itself is a loop, not a URL. */
static const res_case rfc3986[] = {
  { L("g:h"), NULL, "EACCES", "scheme is not http" },
  { L("g"), "http://a/b/c/g", NULL, NULL },
  { L("./g"), "http://a/b/c/g", NULL, NULL },
  { L("g/"), "http://a/b/c/g/", NULL, NULL },
  { L("/g"), "http://a/g", NULL, NULL },
  { L("//g"), "http://g/", NULL, NULL },
  { L("?y"), "http://a/b/c/d;p?y", NULL, NULL },
  { L("g?y"), "http://a/b/c/g?y", NULL, NULL },
  { L("#s"), "http://a/b/c/d;p?q", NULL, NULL },
  { L("g#s"), "http://a/b/c/g", NULL, NULL },
  { L("g?y#s"), "http://a/b/c/g?y", NULL, NULL },
  { L(";x"), "http://a/b/c/;x", NULL, NULL },
  { L("g;x"), "http://a/b/c/g;x", NULL, NULL },
  { L("g;x?y#s"), "http://a/b/c/g;x?y", NULL, NULL },
  { L(""), NULL, "EINVAL", "empty Location" },
  { L("."), "http://a/b/c/", NULL, NULL },
  { L("./"), "http://a/b/c/", NULL, NULL },
  { L(".."), "http://a/b/", NULL, NULL },
  { L("../"), "http://a/b/", NULL, NULL },
  { L("../g"), "http://a/b/g", NULL, NULL },
  { L("../.."), "http://a/", NULL, NULL },
  { L("../../"), "http://a/", NULL, NULL },
  { L("../../g"), "http://a/g", NULL, NULL },
  { L("../../../g"), "http://a/g", NULL, NULL },
  { L("../../../../g"), "http://a/g", NULL, NULL },
  { L("/./g"), "http://a/g", NULL, NULL },
  { L("/../g"), "http://a/g", NULL, NULL },
  { L("g."), "http://a/b/c/g.", NULL, NULL },
  { L(".g"), "http://a/b/c/.g", NULL, NULL },
  { L("g.."), "http://a/b/c/g..", NULL, NULL },
  { L("..g"), "http://a/b/c/..g", NULL, NULL },
  { L("./../g"), "http://a/b/g", NULL, NULL },
  { L("./g/."), "http://a/b/c/g/", NULL, NULL },
  { L("g/./h"), "http://a/b/c/g/h", NULL, NULL },
  { L("g/../h"), "http://a/b/c/h", NULL, NULL },
  { L("g;x=1/./y"), "http://a/b/c/g;x=1/y", NULL, NULL },
  { L("g;x=1/../y"), "http://a/b/c/y", NULL, NULL },
  { L("g?y/./x"), "http://a/b/c/g?y/./x", NULL, NULL },
  { L("g?y/../x"), "http://a/b/c/g?y/../x", NULL, NULL },
  { L("g#s/./x"), "http://a/b/c/g", NULL, NULL },
  { L("g#s/../x"), "http://a/b/c/g", NULL, NULL },
  { L("http:g"), NULL, "EINVAL", "expected \"//\"" },
};

/* Hostile and everyday Locations against https://api.example.com:8443/v1/items?page=2. */
static const res_case hostile[] = {
  { L("https://other.com/x"), "https://other.com/x", NULL, NULL },
  { L("HTTP://Other.COM:8080/y"), "http://other.com:8080/y", NULL, NULL },
  { L("http://other.com"), "http://other.com/", NULL, NULL },
  { L("//cdn.example.com/z"), "https://cdn.example.com/z", NULL, NULL },
  { L("//cdn.example.com:8443"), "https://cdn.example.com:8443/", NULL, NULL },
  { L("//[::1]:9000/x"), "https://[::1]:9000/x", NULL, NULL },
  { L("/abs"), "https://api.example.com:8443/abs", NULL, NULL },
  { L("/"), "https://api.example.com:8443/", NULL, NULL },
  { L("rel"), "https://api.example.com:8443/v1/rel", NULL, NULL },
  { L("rel?x#y"), "https://api.example.com:8443/v1/rel?x", NULL, NULL },
  { L("?page=3"), "https://api.example.com:8443/v1/items?page=3", NULL, NULL },
  { L("?"), "https://api.example.com:8443/v1/items?", NULL, NULL },
  { L("#"), "https://api.example.com:8443/v1/items?page=2", NULL, NULL },
  { L("#frag"), "https://api.example.com:8443/v1/items?page=2", NULL, NULL },
  { L("../../../etc/passwd"), "https://api.example.com:8443/etc/passwd", NULL, NULL },
  { L("%2e%2e/admin"), "https://api.example.com:8443/admin", NULL, NULL },
  { L("/v1/%2E%2E/admin"), "https://api.example.com:8443/admin", NULL, NULL },
  { L("./a:b"), "https://api.example.com:8443/v1/a:b", NULL, NULL },
  { L("x/a:b"), "https://api.example.com:8443/v1/x/a:b", NULL, NULL },
  { L("/a:b"), "https://api.example.com:8443/a:b", NULL, NULL },
  { L("?a:b"), "https://api.example.com:8443/v1/items?a:b", NULL, NULL },
  /* other schemes: EACCES */
  { L("ftp://a.com/"), NULL, "EACCES", "scheme is not http" },
  { L("file:///etc/passwd"), NULL, "EACCES", "scheme is not http" },
  { L("javascript:alert(1)"), NULL, "EACCES", "scheme is not http" },
  { L("data:text/html,hi"), NULL, "EACCES", "scheme is not http" },
  { L("mailto:x@y.com"), NULL, "EACCES", "scheme is not http" },
  { L("gopher://127.0.0.1:6379/_FLUSHALL"), NULL, "EACCES", "scheme is not http" },
  { L("a:b"), NULL, "EACCES", "scheme is not http" },
  { L("localhost:8080/x"), NULL, "EACCES", "scheme is not http" },
  /* malformed */
  { L("1a:b"), NULL, "EINVAL", "first segment" },
  { L(":x"), NULL, "EINVAL", "first segment" },
  { L("a b:c"), NULL, "EINVAL", "first segment" },
  { L("\\\\evil.com/x"), NULL, "EINVAL", "backslash" },
  { L("/\\evil.com/"), NULL, "EINVAL", "backslash" },
  { L("\\/evil.com/"), NULL, "EINVAL", "backslash" },
  { L("//evil.com\\@api.example.com/"), NULL, "EINVAL", "backslash" },
  { L("//user@evil.com/"), NULL, "EINVAL", "userinfo" },
  { L("https://api.example.com@evil.com/"), NULL, "EINVAL", "userinfo" },
  { L("//api.example.com:8443@evil.com/"), NULL, "EINVAL", "userinfo" },
  { L(" //evil.com"), NULL, "EINVAL", "space" },
  { L("\t/x"), NULL, "EINVAL", "control character" },
  { L("/x\r\nSet-Cookie: a=b"), NULL, "EINVAL", "CR or LF" },
  { L("/x\0y"), NULL, "EINVAL", "NUL byte" },
  { L("/caf\xc3\xa9"), NULL, "EINVAL", "non-ASCII" },
  { L("///x"), NULL, "EINVAL", "empty host" },
  { L("//"), NULL, "EINVAL", "empty host" },
  { L("http:"), NULL, "EINVAL", "expected \"//\"" },
  { L("https:/x"), NULL, "EINVAL", "expected \"//\"" },
  { L("/%2f/"), NULL, "EINVAL", "encoded slash" },
  { L("..;/admin"), NULL, "EINVAL", "dot segment with parameters" },
  { L("//127.1/"), NULL, "EINVAL", "numeric host" },
  { L("//a.com:0/"), NULL, "EINVAL", "port out of range" },
  { L("/<x>"), NULL, "EINVAL", "not allowed in path" },
};

static void run_resolve (const char *base_url, const res_case *t, size_t n) {
  hc_url base;
  if (!CHECK(hc_url_parse(base_url, strlen(base_url), &base, NULL, NULL, 0) == 0)) return;
  for (size_t i = 0; i < n; i++) {
    hc_url out;
    const char *code = "unset";
    char msg[128] = "";
    int rc = hc_url_resolve(&base, t[i].loc, t[i].n, &out, &code, msg, sizeof msg);
    int ok;
    if (t[i].want) {
      ok = CHECK(rc == 0);
      if (ok) ok &= CHECK_STREQ(fmt_url(&out), t[i].want);
    } else {
      ok = CHECK(rc == -1);
      ok &= CHECK_STREQ(code, t[i].code);
      ok &= CHECK(strstr(msg, t[i].why) != NULL);
      ok &= CHECK(is_zeroed(&out));
    }
    if (!ok) {
      fprintf(stderr, "  base %s\n", base_url);
      show_input(t[i].loc, t[i].n);
      fprintf(stderr, "  rc %d %s: %s\n", rc, code, msg);
    }
    hc_url_free(&out);
  }
  hc_url_free(&base);
}

TEST(test_resolve) {
  run_resolve("http://a/b/c/d;p?q", rfc3986, sizeof rfc3986 / sizeof rfc3986[0]);
  run_resolve("https://api.example.com:8443/v1/items?page=2", hostile,
              sizeof hostile / sizeof hostile[0]);

  static const res_case v6[] = {
    { L("c"), "http://[::1]:9000/a/c", NULL, NULL },
    { L("/d"), "http://[::1]:9000/d", NULL, NULL },
    { L("?q"), "http://[::1]:9000/a/b?q", NULL, NULL },
    { L("//[::2]/"), "http://[::2]/", NULL, NULL },
  };
  run_resolve("http://[::1]:9000/a/b", v6, sizeof v6 / sizeof v6[0]);

  /* a redirect checked against the rules, hop by hop, as http.fetch does */
  hc_httprules *r = hc_httprules_new();
  hc_url base, out;
  CHECK(hc_httprules_add(r, "https://api.example.com/v1/", NULL, 0, NULL, 0) == 0);
  CHECK(hc_url_parse(L("https://api.example.com/v1/a/b"), &base, NULL, NULL, 0) == 0);
  CHECK(hc_httprules_check(r, &base, "GET") == 0);
  CHECK(hc_url_resolve(&base, L("../../admin"), &out, NULL, NULL, 0) == 0);
  CHECK(hc_httprules_check(r, &out, "GET") == EACCES);
  hc_url_free(&out);
  CHECK(hc_url_resolve(&base, L("../c"), &out, NULL, NULL, 0) == 0);
  CHECK(hc_httprules_check(r, &out, "GET") == 0);
  CHECK_STREQ(out.target, "/v1/c");
  hc_url_free(&out);
  CHECK(hc_url_resolve(&base, L("http://api.example.com/v1/a"), &out, NULL, NULL, 0) == 0);
  CHECK(hc_httprules_check(r, &out, "GET") == EACCES);   /* https -> http is another rule */
  hc_url_free(&out);
  CHECK(hc_url_resolve(&base, L("//api.example.com:8443/v1/"), &out, NULL, NULL, 0) == 0);
  CHECK(hc_httprules_check(r, &out, "GET") == EACCES);
  hc_url_free(&out);

  /* out may not be base; a missing base or Location is refused */
  const char *code = NULL;
  CHECK(hc_url_resolve(&base, L("/x"), &base, &code, NULL, 0) == -1);
  CHECK_STREQ(code, "EINVAL");
  CHECK_STREQ(base.target, "/v1/a/b");                  /* and left intact */
  CHECK(hc_url_resolve(NULL, L("/x"), &out, &code, NULL, 0) == -1);
  CHECK(is_zeroed(&out));
  CHECK(hc_url_resolve(&base, NULL, 3, &out, &code, NULL, 0) == -1);
  CHECK(is_zeroed(&out));
  hc_url zero;
  memset(&zero, 0, sizeof zero);
  CHECK(hc_url_resolve(&zero, L("/x"), &out, &code, NULL, 0) == -1);

  /* lengths: the Location alone, and the URL it resolves to */
  char *loc = malloc(HC_URL_MAX + 2);
  loc[0] = '/';
  memset(loc + 1, 'x', HC_URL_MAX + 1);
  char msg[128] = "";
  CHECK(hc_url_resolve(&base, loc, HC_URL_MAX + 1, &out, &code, msg, sizeof msg) == -1);
  CHECK_STREQ(code, "EINVAL");
  CHECK(strstr(msg, "Location too long") != NULL);
  /* a length no buffer has is refused before a byte is read or a size computed from it */
  CHECK(hc_url_resolve(&base, "/x", (size_t)-1 - 8, &out, &code, msg, sizeof msg) == -1);
  CHECK(strstr(msg, "Location too long") != NULL);
  CHECK(hc_url_parse("http://a.com/", (size_t)-1, &out, &code, msg, sizeof msg) == -1);
  CHECK(strstr(msg, "URL too long") != NULL);
  size_t room = HC_URL_MAX - strlen("https://api.example.com:443");
  CHECK(hc_url_resolve(&base, loc, room, &out, &code, NULL, 0) == 0);
  CHECK(out.target && strlen(out.target) == room);
  hc_url_free(&out);
  CHECK(hc_url_resolve(&base, loc, room + 1, &out, &code, NULL, 0) == -1);
  CHECK(is_zeroed(&out));
  free(loc);
  hc_url_free(&base);
  hc_httprules_free(r);
}

/* }===== */


/* {===== the request head ===== */

typedef struct head_case {
  const char *url;
  const char *method;
  const char *want;   /* NULL: -1 */
} head_case;

static const head_case heads[] = {
  { "http://a.com/", "GET", "GET / HTTP/1.1\r\nHost: a.com\r\n" },
  { "http://a.com", "HEAD", "HEAD / HTTP/1.1\r\nHost: a.com\r\n" },
  { "https://a.com/x?y=1#f", "POST", "POST /x?y=1 HTTP/1.1\r\nHost: a.com\r\n" },
  { "http://a.com:8080/", "GET", "GET / HTTP/1.1\r\nHost: a.com:8080\r\n" },
  { "https://a.com:443/", "GET", "GET / HTTP/1.1\r\nHost: a.com\r\n" },
  { "http://a.com:80/", "GET", "GET / HTTP/1.1\r\nHost: a.com\r\n" },
  { "http://a.com:443/", "GET", "GET / HTTP/1.1\r\nHost: a.com:443\r\n" },
  { "https://a.com:80/", "GET", "GET / HTTP/1.1\r\nHost: a.com:80\r\n" },
  { "https://a.com:8443/v1/", "PUT", "PUT /v1/ HTTP/1.1\r\nHost: a.com:8443\r\n" },
  { "http://[::1]/", "GET", "GET / HTTP/1.1\r\nHost: [::1]\r\n" },
  { "http://[::1]:8080/", "GET", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n" },
  { "https://[0:0::1]:443/", "GET", "GET / HTTP/1.1\r\nHost: [::1]\r\n" },
  { "http://127.0.0.1:9/x", "GET", "GET /x HTTP/1.1\r\nHost: 127.0.0.1:9\r\n" },
  { "http://A.COM./V1/../x", "GET", "GET /x HTTP/1.1\r\nHost: a.com\r\n" },
  { "http://a.com/v1/%2e%2e/admin", "GET", "GET /admin HTTP/1.1\r\nHost: a.com\r\n" },
  { "http://a.com/%7e%41%3b", "GET", "GET /~A%3B HTTP/1.1\r\nHost: a.com\r\n" },
  { "http://a.com/x?q=%0d%0a", "GET", "GET /x?q=%0d%0a HTTP/1.1\r\nHost: a.com\r\n" },
  { "http://a.com/", "M-SEARCH", "M-SEARCH / HTTP/1.1\r\nHost: a.com\r\n" },
  { "http://a.com/", "get", "get / HTTP/1.1\r\nHost: a.com\r\n" },
  { "http://a.com/", "GET\r\n", NULL },
  { "http://a.com/", "GET /admin HTTP/1.1\r\nHost: evil\r\n\r\nGET", NULL },
  { "http://a.com/", "", NULL },
  { "http://a.com/", NULL, NULL },
  { "http://a.com/", "G ET", NULL },
  { "http://a.com/", "GET\n", NULL },
};

static int count_crlf (const char *s) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, "\r\n")); p += 2) n++;
  return n;
}

TEST(test_request_head) {
  for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
    hc_url u;
    char out[512];
    if (!CHECK(hc_url_parse(heads[i].url, strlen(heads[i].url), &u, NULL, NULL, 0) == 0))
      continue;
    memset(out, 'Z', sizeof out);
    int n = hc_http_request_head(&u, heads[i].method, out, sizeof out);
    int ok;
    if (heads[i].want) {
      ok = CHECK(n == (int)strlen(heads[i].want));
      ok &= CHECK_STREQ(out, heads[i].want);
    } else {
      ok = CHECK(n == -1);
      ok &= CHECK(out[0] == '\0');
    }
    if (!ok) fprintf(stderr, "  %s %s\n", heads[i].method ? heads[i].method : "(null)",
                     heads[i].url);
    hc_url_free(&u);
  }

  /* capacity: exactly enough (with the NUL) fits; one byte less does not */
  hc_url u;
  char out[64];
  const char *want = "GET /abc HTTP/1.1\r\nHost: a.com:81\r\n";
  size_t wn = strlen(want);
  CHECK(hc_url_parse(L("http://a.com:81/abc"), &u, NULL, NULL, 0) == 0);
  CHECK(hc_http_request_head(&u, "GET", out, wn + 1) == (int)wn);
  CHECK_STREQ(out, want);
  memset(out, 'Z', sizeof out);
  CHECK(hc_http_request_head(&u, "GET", out, wn) == -1);
  CHECK(out[0] == '\0');
  CHECK(hc_http_request_head(&u, "GET", out, 1) == -1);
  CHECK(out[0] == '\0');
  CHECK(hc_http_request_head(&u, "GET", out, 0) == -1);
  CHECK(hc_http_request_head(&u, "GET", NULL, 64) == -1);
  CHECK(hc_http_request_head(NULL, "GET", out, sizeof out) == -1);

  /* a struct not made by the parser: refused rather than written */
  hc_url bad = u;
  bad.target = "/x\r\nHost: evil";
  CHECK(hc_http_request_head(&bad, "GET", out, sizeof out) == -1);
  bad.target = "/x y";
  CHECK(hc_http_request_head(&bad, "GET", out, sizeof out) == -1);
  bad.target = "x";
  CHECK(hc_http_request_head(&bad, "GET", out, sizeof out) == -1);
  bad.target = "/x#f";
  CHECK(hc_http_request_head(&bad, "GET", out, sizeof out) == -1);
  bad.target = NULL;
  CHECK(hc_http_request_head(&bad, "GET", out, sizeof out) == -1);
  bad = u;
  strcpy(bad.host, "a.com\r\nX: y");
  CHECK(hc_http_request_head(&bad, "GET", out, sizeof out) == -1);
  bad.host[0] = '\0';
  CHECK(hc_http_request_head(&bad, "GET", out, sizeof out) == -1);
  memset(bad.host, 'a', sizeof bad.host);
  CHECK(hc_http_request_head(&bad, "GET", out, sizeof out) == -1);
  bad = u;
  bad.port = 0;
  CHECK(hc_http_request_head(&bad, "GET", out, sizeof out) == -1);
  bad.port = 65536;
  CHECK(hc_http_request_head(&bad, "GET", out, sizeof out) == -1);
  bad = u;
  strcpy(bad.host, "a.com");
  bad.host_is_ip6 = 1;                                /* a v6 flag on a name */
  CHECK(hc_http_request_head(&bad, "GET", out, sizeof out) == -1);
  hc_url_free(&u);

  /* the longest URL still yields one well-formed head */
  size_t cap = HC_URL_MAX + 600;
  char *big = malloc(cap), *url = malloc(HC_URL_MAX + 1);
  memcpy(url, "http://a.com/", 13);
  memset(url + 13, 'y', HC_URL_MAX - 13);
  CHECK(hc_url_parse(url, HC_URL_MAX, &u, NULL, NULL, 0) == 0);
  int n = hc_http_request_head(&u, "GET", big, cap);
  CHECK(n > HC_URL_MAX && count_crlf(big) == 2);
  hc_url_free(&u);
  free(big);
  free(url);
}

/* }===== */


/* {===== mutations: invariants of whatever the parser accepts ===== */

static unsigned long long rng_state = 0x9e3779b97f4a7c15ULL;

static unsigned rnd (unsigned n) {
  rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (unsigned)((rng_state >> 33) % n);
}

static const char *const corpus[] = {
  "http://a.com/v1/x", "https://api.example.com:8443/v1/items?page=2#f",
  "http://[::1]:9000/api/x", "http://127.0.0.1:8080/a/b/c", "http://a.com/v1/%2e%2e/admin",
  "http://a.com/a/./b/../../c?x=y", "HTTPS://A.COM./V1/", "http://a.com/%7e%41/..;/x",
};

/* Characters the mutator splices in: delimiters, dots, escapes, and what must be refused. */
static const char splice[] = "/./..%2e%2E%2f%5c%3b%00%c0;@:#?[]\\ \r\n\t\x01\x7f\xc3.09aAZz-_~";

static int uhex (char c) {
  return (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

static int path_is_normal (const char *p) {
  if (p[0] != '/') return 0;
  for (const char *s = p; *s; s++) {
    if (*s == '/') {
      const char *e = s + 1;
      size_t n = strcspn(e, "/");
      if ((n == 1 && e[0] == '.') || (n == 2 && e[0] == '.' && e[1] == '.')) return 0;
    }
    if (*s == '%') {                 /* uppercase hex, never an escape the parser removes */
      int hi = uhex(s[1]), lo = hi < 0 ? -1 : uhex(s[2]);
      if (lo < 0) return 0;
      int v = hi * 16 + lo;
      if ((v >= 'a' && v <= 'z') || (v >= 'A' && v <= 'Z') || (v >= '0' && v <= '9') ||
          v == '-' || v == '.' || v == '_' || v == '~' || v == '/' || v == '\\' || v < 0x20 ||
          v == 0x7f || v == 0xc0 || v == 0xc1)
        return 0;
      s += 2;
    }
  }
  return 1;
}

static int visible (const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == '\\') return 0;
  return 1;
}

TEST(test_mutations) {
  int bad_shape = 0, bad_reparse = 0, bad_head = 0, bad_rule = 0, accepted = 0;
  char buf[512];
  for (int iter = 0; iter < 40000; iter++) {
    const char *seed = corpus[rnd(sizeof corpus / sizeof corpus[0])];
    size_t n = strlen(seed);
    memcpy(buf, seed, n);
    for (int k = 1 + (int)rnd(4); k > 0; k--) {
      size_t at = rnd((unsigned)n + 1);
      switch (rnd(3)) {
        case 0: {                                      /* insert a run from splice */
          size_t from = rnd(sizeof splice - 1), len = 1 + rnd(3);
          if (from + len > sizeof splice - 1) len = sizeof splice - 1 - from;
          if (n + len >= sizeof buf) break;
          memmove(buf + at + len, buf + at, n - at);
          memcpy(buf + at, splice + from, len);
          n += len;
          break;
        }
        case 1:                                        /* delete a byte */
          if (at < n) { memmove(buf + at, buf + at + 1, n - at - 1); n--; }
          break;
        default:                                       /* replace a byte */
          if (at < n) buf[at] = splice[rnd(sizeof splice - 1)];
          break;
      }
    }
    hc_url u;
    if (hc_url_parse(buf, n, &u, NULL, NULL, 0) != 0) continue;
    accepted++;
    /* shape: a normal path, the target is the path plus an optional query, visible ASCII */
    size_t pl = strlen(u.path);
    int shape = path_is_normal(u.path) && strncmp(u.target, u.path, pl) == 0 &&
                (u.target[pl] == '\0' || u.target[pl] == '?') && visible(u.target) &&
                !strchr(u.target, '#') && u.port >= 1 && u.port <= 65535 && u.host[0] &&
                visible(u.host);
    for (const char *h = u.host; *h; h++) if (*h >= 'A' && *h <= 'Z') shape = 0;
    if (!shape) {
      if (bad_shape++ < 5) { show_input(buf, n); fprintf(stderr, "  -> %s\n", fmt_url(&u)); }
    }
    /* idempotence: the parsed URL, spelled out again, parses to itself */
    char again[HC_URL_MAX + 512];
    snprintf(again, sizeof again, "%s", fmt_url(&u));
    hc_url v;
    if (hc_url_parse(again, strlen(again), &v, NULL, NULL, 0) != 0 ||
        strcmp(v.target, u.target) || strcmp(v.host, u.host) || v.port != u.port ||
        v.https != u.https || v.host_is_ip6 != u.host_is_ip6) {
      if (bad_reparse++ < 5) { show_input(buf, n); fprintf(stderr, "  -> %s\n", again); }
    }
    hc_url_free(&v);
    /* the head: one request line, one Host line, nothing else */
    char head[HC_URL_MAX + 600];
    int hn = hc_http_request_head(&u, "GET", head, sizeof head);
    if (hn < 0 || count_crlf(head) != 2 || strncmp(head + hn - 2, "\r\n", 2) != 0 ||
        strncmp(head + 4, u.target, strlen(u.target)) != 0) {
      if (bad_head++ < 5) show_input(buf, n);
    }
    /* a rule made from the URL's own origin and path allows it, and only under that path */
    char rule[HC_URL_MAX + 512];
    const char *t = u.target;
    u.target = u.path;
    snprintf(rule, sizeof rule, "%s", fmt_url(&u));
    u.target = (char *)t;
    hc_httprules *r = hc_httprules_new();
    if (hc_httprules_add(r, rule, NULL, 0, NULL, 0) != 0 || hc_httprules_check(r, &u, "GET") ||
        hc_httprules_check(r, &u, "POST") != EACCES) {
      if (bad_rule++ < 5) { show_input(buf, n); fprintf(stderr, "  rule %s\n", rule); }
    }
    hc_httprules_free(r);
    hc_url_free(&u);
  }
  CHECK(accepted > 1000);           /* the run exercises the accepting paths, not only refusals */
  CHECK(bad_shape == 0);
  CHECK(bad_reparse == 0);
  CHECK(bad_head == 0);
  CHECK(bad_rule == 0);
}

/* }===== */


int main (void) {
  RUN(test_parse_ok);
  RUN(test_parse_err);
  RUN(test_limits);
  RUN(test_flags);
  RUN(test_error_plumbing);
  RUN(test_method_valid);
  RUN(test_rules_check);
  RUN(test_rules_empty);
  RUN(test_rules_add);
  RUN(test_rules_normalised);
  RUN(test_resolve);
  RUN(test_request_head);
  RUN(test_mutations);
  return tu_summary();
}
