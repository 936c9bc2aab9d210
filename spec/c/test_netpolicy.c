/*
** test_netpolicy.c: the network policy (core/netpolicy.h) under attack.
**
** Adversarial tables first: every numeric form of 127.0.0.1 and 169.254.169.254, every IPv6
** wrapping of them (mapped, compatible, NAT64, 6to4), rules that try to unlock special space by
** being broad or by being names, deny over allow, ports at their edges, malformed hosts and
** rules with their exact messages. Then differential runs against libc's own parsers (inet_aton,
** inet_pton, inet_ntop, getaddrinfo with AI_NUMERICHOST: what the rest of the runtime would
** see) and a reference classifier written independently as plain numeric ranges.
**
** Every table row is one exact expectation (class, text, message, verdict and rule index), so
** weakening any rule of the policy makes some row fail.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "netpolicy.h"
#include "testutil.h"

#define AL HC_NETRULE_ALLOW
#define DE HC_NETRULE_DENY
#define LI HC_NETRULE_LISTEN

#define PUB HC_ADDR_PUBLIC
#define LOOP HC_ADDR_LOOPBACK
#define PRIV HC_ADDR_PRIVATE
#define LL HC_ADDR_LINKLOCAL
#define RES HC_ADDR_RESERVED
#define NEVER HC_ADDR_NEVER

#define OK HC_NETWHY_OK
#define ARG HC_NETWHY_ARG
#define PORT HC_NETWHY_PORT
#define NVR HC_NETWHY_NEVER
#define DENY HC_NETWHY_DENY
#define SPEC HC_NETWHY_SPECIAL
#define NORULE HC_NETWHY_NORULE

#define COUNT(t) (sizeof(t) / sizeof((t)[0]))

/* {===== helpers ===== */

static const char *fmt(const hc_netaddr *a) {
  static char ring[8][HC_NETADDR_STRLEN];
  static int at;
  char *b = ring[at++ % 8];
  hc_netaddr_format(a, b, HC_NETADDR_STRLEN);
  return b;
}

static int parse_ip(const char *s, hc_netaddr *a) {
  memset(a, 0, sizeof *a);
  return hc_net_parse_host(s, a, NULL, 0) == HC_HOST_IP;
}

/* A policy from "a=RULE d=RULE l=RULE ..." (allow, deny, listen). A refused rule is a failure. */
static hc_netpolicy *mkpol(const char *spec) {
  hc_netpolicy *p = hc_netpolicy_new();
  char buf[4096], *save = NULL;
  if (!p) {
    CHECK(!"hc_netpolicy_new");
    exit(1);
  }
  snprintf(buf, sizeof buf, "%s", spec);
  for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
    char err[256] = "";
    int kind = tok[0] == 'a' ? AL : tok[0] == 'd' ? DE : tok[0] == 'l' ? LI : -1;
    if (kind < 0 || tok[1] != '=' || hc_netpolicy_add(p, kind, tok + 2, err, sizeof err) != 0) {
      CHECK(!"policy rule refused");
      fprintf(stderr, "  rule %s: %s\n", tok, err);
    }
  }
  return p;
}

/* One decision: policy, kind, address text (any accepted form), port, via name -> verdict. */
typedef struct drow {
  const char *pol;
  int kind;
  const char *addr;
  int port;
  const char *via;
  int why;
  int index;
} drow;

static int decide_one(hc_netpolicy *p, const drow *d) {
  hc_netaddr a;
  hc_netverdict v = { -1, -1 };
  if (!parse_ip(d->addr, &a)) {
    fprintf(stderr, "  not an IP: %s\n", d->addr);
    return 0;
  }
  int rc = hc_netpolicy_decide(p, d->kind, &a, d->port, d->via, &v);
  int rc2 = hc_netpolicy_check(p, d->kind, &a, d->port, d->via);
  int ok = v.why == d->why && v.index == d->index && rc == (d->why == OK ? 0 : EACCES) && rc2 == rc;
  if (!ok)
    fprintf(stderr, "  policy {%s} kind %d addr %s port %d via %s: why %d index %d rc %d "
            "(want why %d index %d)\n", d->pol, d->kind, d->addr, d->port,
            d->via ? d->via : "(null)", v.why, v.index, rc, d->why, d->index);
  return ok;
}

static void run_rows(const drow *rows, size_t n) {
  for (size_t i = 0; i < n; i++) {
    hc_netpolicy *p = mkpol(rows[i].pol);
    CHECK(decide_one(p, &rows[i]));
    hc_netpolicy_free(p);
  }
}

/* Every form in `forms` under one policy: the same verdict. */
static void run_forms(const char *const *forms, const char *pol, int kind, int port,
                      const char *via, int why, int index) {
  hc_netpolicy *p = mkpol(pol);
  for (size_t i = 0; forms[i]; i++) {
    drow d = { pol, kind, forms[i], port, via, why, index };
    CHECK(decide_one(p, &d));
  }
  hc_netpolicy_free(p);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t rnd(void) {   /* xorshift64*: fixed seed, the same run every time */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545f4914f6cdd1du) >> 32);
}

static hc_netaddr v4(uint32_t x) {
  hc_netaddr a;
  memset(&a, 0, sizeof a);
  a.family = AF_INET;
  a.a[0] = (uint8_t)(x >> 24);
  a.a[1] = (uint8_t)(x >> 16);
  a.a[2] = (uint8_t)(x >> 8);
  a.a[3] = (uint8_t)x;
  return a;
}

/* The IPv6 forms that embed x: mapped, compatible, NAT64, 6to4 (random subnet/interface). */
static hc_netaddr wrap(uint32_t x, int how) {
  static const uint8_t pre[3][12] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, {0}, {0x00, 0x64, 0xff, 0x9b} };
  hc_netaddr a;
  memset(&a, 0, sizeof a);
  a.family = AF_INET6;
  if (how < 3) {
    memcpy(a.a, pre[how], 12);
    a.a[12] = (uint8_t)(x >> 24);
    a.a[13] = (uint8_t)(x >> 16);
    a.a[14] = (uint8_t)(x >> 8);
    a.a[15] = (uint8_t)x;
  } else {
    a.a[0] = 0x20;
    a.a[1] = 0x02;
    a.a[2] = (uint8_t)(x >> 24);
    a.a[3] = (uint8_t)(x >> 16);
    a.a[4] = (uint8_t)(x >> 8);
    a.a[5] = (uint8_t)x;
    for (int i = 6; i < 16; i++) a.a[i] = (uint8_t)rnd();
  }
  return a;
}

/* }===== */


/* {===== the forms of 127.0.0.1, 169.254.169.254, 10.0.0.1 ===== */

static const char *const loop_v4_forms[] = {
  "127.0.0.1", "2130706433", "0x7f000001", "0X7F000001", "017700000001", "0177.0.0.1",
  "0x7f.0.0.1", "0x7f.1", "127.1", "127.0.1", "0177.1", "0x7f.0x0.0x0.0x1", "0177.0000.0.01",
  "127.000.000.001", "00000177.0.0.1", "0x0000007f.1", "127.0.0x1", "127.0x0.1", "0x7f.0.1",
  "0x7F.00.0X0.1", "0177.0x0.0.1", "127.0.0.01", "0177.0.0.0x1",
  "127.0.00000000000000000000001", "0x7f.0.0x0001", "127.0x000001", "0x7f.0x000001",
  "0000000000000000000000000000000017700000001", NULL
};

static const char *const loop_v6_forms[] = {
  "::ffff:127.0.0.1", "::ffff:7f00:1", "[::ffff:7f00:0001]", "::FFFF:127.0.0.1",
  "0:0:0:0:0:ffff:7f00:1", "0000:0000:0000:0000:0000:ffff:7f00:0001", "::127.0.0.1",
  "::7f00:1", "[::7f00:1]", "64:ff9b::7f00:1", "64:ff9b::127.0.0.1", "[64:ff9b:0:0:0:0:7f00:1]",
  "2002:7f00:1::", "2002:7f00:1:ffff::1", "[2002:7f00:0001:0:0:0:0:0]", "2002:7f00:1:0:1:2:3:4",
  NULL
};

static const char *const meta_v4_forms[] = {
  "169.254.169.254", "2852039166", "0xa9fea9fe", "0XA9FEA9FE", "025177524776",
  "0251.0376.0251.0376", "0xa9.0xfe.0xa9.0xfe", "169.254.43518", "169.16689662", "0xa9.16689662",
  "0251.0xfe.43518", "0xa9.0376.0xa9fe", "169.0xfea9fe", "0251.077524776", "169.254.0xa9fe",
  "00000000251.254.169.254", "169.254.0251.0376", "0xA9.0XFE.0251.254", NULL
};

static const char *const meta_v6_forms[] = {
  "::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "[::ffff:a9fe:a9fe]", "::169.254.169.254",
  "::a9fe:a9fe", "64:ff9b::a9fe:a9fe", "64:ff9b::169.254.169.254", "2002:a9fe:a9fe::",
  "2002:a9fe:a9fe:1::1", "[2002:A9FE:A9FE::]", NULL
};

static const char *const ten_forms[] = {
  "10.0.0.1", "167772161", "0xa000001", "012.0.0.1", "10.1", "0xa.1", "10.0.1", "012.1",
  "::ffff:10.0.0.1", "::ffff:a00:1", "::a00:1", "::10.0.0.1", "64:ff9b::a00:1",
  "64:ff9b::10.0.0.1", "2002:a00:1::", "2002:a00:1:1::", "[2002:a00:1:ffff:ffff:ffff:ffff:ffff]",
  NULL
};

static void check_forms_are(const char *const *forms, const char *v4text, int cls) {
  for (size_t i = 0; forms[i]; i++) {
    hc_netaddr a, e;
    int ok = parse_ip(forms[i], &a) && hc_netaddr_effective_v4(&a, &e)
             && strcmp(fmt(&e), v4text) == 0 && hc_netaddr_class(&a) == cls;
    if (!CHECK(ok)) fprintf(stderr, "  form %s (want %s, class %d)\n", forms[i], v4text, cls);
  }
}

TEST(forms_parse_and_classify) {
  check_forms_are(loop_v4_forms, "127.0.0.1", LOOP);
  check_forms_are(loop_v6_forms, "127.0.0.1", LOOP);
  check_forms_are(meta_v4_forms, "169.254.169.254", LL);
  check_forms_are(meta_v6_forms, "169.254.169.254", LL);
  check_forms_are(ten_forms, "10.0.0.1", PRIV);
  /* A plain IPv4 form is kept as IPv4; the IPv6 wrappings stay IPv6 until the check. */
  for (size_t i = 0; loop_v4_forms[i]; i++) {
    hc_netaddr a;
    CHECK(parse_ip(loop_v4_forms[i], &a) && a.family == AF_INET);
  }
  for (size_t i = 0; loop_v6_forms[i]; i++) {
    hc_netaddr a;
    CHECK(parse_ip(loop_v6_forms[i], &a) && a.family == AF_INET6);
  }
}

TEST(forms_refused_under_name_and_broad_rules) {
  const char *names = "a=api.example.com:* a=localhost:* a=metadata.google.internal:* "
                      "a=127.0.0.1.nip.io:*";
  const char *broad = "a=0.0.0.0/0:* a=[::/0]:*";
  const char *const *sets[] = { loop_v4_forms, loop_v6_forms, meta_v4_forms, meta_v6_forms,
                                ten_forms };
  for (size_t s = 0; s < COUNT(sets); s++) {
    run_forms(sets[s], names, AL, 80, "localhost", SPEC, 0);
    run_forms(sets[s], names, AL, 80, "api.example.com", SPEC, 0);
    run_forms(sets[s], names, AL, 80, "METADATA.google.internal.", SPEC, 0);
    run_forms(sets[s], names, AL, 80, "127.0.0.1.nip.io", SPEC, 0);
    run_forms(sets[s], broad, AL, 80, NULL, SPEC, 0);
    run_forms(sets[s], broad, AL, 80, "api.example.com", SPEC, 0);
    run_forms(sets[s], "", AL, 80, NULL, NORULE, 0);
    run_forms(sets[s], broad, LI, 80, NULL, NORULE, 0);       /* allow rules do not listen */
  }
}

TEST(forms_allowed_when_named_by_ip) {
  const char *const *loops[] = { loop_v4_forms, loop_v6_forms };
  const char *const *metas[] = { meta_v4_forms, meta_v6_forms };
  for (int s = 0; s < 2; s++) {
    run_forms(loops[s], "a=127.0.0.1:80", AL, 80, NULL, OK, 1);
    run_forms(loops[s], "a=127.0.0.1:80", AL, 80, "localhost", OK, 1);
    run_forms(loops[s], "a=127.0.0.1:80", AL, 81, NULL, NORULE, 0);
    run_forms(loops[s], "a=[::ffff:127.0.0.1]:80", AL, 80, NULL, OK, 1);   /* stored as IPv4 */
    run_forms(loops[s], "a=[64:ff9b::7f00:1]:80", AL, 80, NULL, OK, 1);
    run_forms(loops[s], "a=[2002:7f00:1::]:80", AL, 80, NULL, OK, 1);
    run_forms(loops[s], "a=127.0.0.0/8:*", AL, 80, NULL, OK, 1);
    run_forms(loops[s], "a=0.0.0.0/0:* a=127.0.0.1:80", AL, 80, NULL, OK, 2);
    run_forms(loops[s], "a=126.0.0.0/7:*", AL, 80, NULL, SPEC, 0);      /* 126/8 is public */
    run_forms(loops[s], "a=127.0.0.1:80 d=127.0.0.0/8:*", AL, 80, NULL, DENY, 1);
    run_forms(loops[s], "a=127.0.0.1:80 d=[::ffff:127.0.0.1]:80", AL, 80, NULL, DENY, 1);
    run_forms(loops[s], "a=[::1]:80", AL, 80, NULL, NORULE, 0);          /* ::1 is not 127/8 */
    run_forms(loops[s], "a=169.254.169.254:80", AL, 80, NULL, NORULE, 0);
    run_forms(loops[s], "l=127.0.0.1:80", LI, 80, NULL, OK, 1);
    run_forms(loops[s], "l=127.0.0.1:80", AL, 80, NULL, NORULE, 0);
    run_forms(metas[s], "a=169.254.169.254:80", AL, 80, NULL, OK, 1);
    run_forms(metas[s], "a=169.254.0.0/16:*", AL, 80, NULL, OK, 1);
    run_forms(metas[s], "a=169.0.0.0/8:*", AL, 80, NULL, SPEC, 0);
    run_forms(metas[s], "a=127.0.0.1:80", AL, 80, NULL, NORULE, 0);
    run_forms(metas[s], "a=169.254.169.254:80 d=169.254.169.254:*", AL, 80, NULL, DENY, 1);
  }
  run_forms(ten_forms, "a=10.0.0.0/8:5432", AL, 5432, NULL, OK, 1);
  run_forms(ten_forms, "a=10.0.0.1:5432", AL, 5432, NULL, OK, 1);
  run_forms(ten_forms, "a=[::ffff:10.0.0.0/104]:5432", AL, 5432, NULL, OK, 1);
  run_forms(ten_forms, "a=[2002:a00::/24]:5432", AL, 5432, NULL, OK, 1);
  run_forms(ten_forms, "a=10.0.0.0/7:5432", AL, 5432, NULL, SPEC, 0);
  run_forms(ten_forms, "a=8.0.0.0/5:*", AL, 5432, NULL, SPEC, 0);
  run_forms(ten_forms, "a=10.0.0.0/8:5432 d=10.0.0.0/24:*", AL, 5432, NULL, DENY, 1);
  run_forms(ten_forms, "a=10.0.0.2:5432", AL, 5432, NULL, NORULE, 0);
}

/* }===== */


/* {===== host strings ===== */

typedef struct hrow {
  const char *in;
  int rc;              /* HC_HOST_IP, HC_HOST_NAME or -1 */
  const char *out;     /* canonical address text or name */
} hrow;

static const hrow host_rows[] = {
  /* IPv4, every inet_aton form */
  {"127.0.0.1", HC_HOST_IP, "127.0.0.1"},
  {"0127.0.0.1", HC_HOST_IP, "87.0.0.1"},            /* octal, not decimal with a zero */
  {"0", HC_HOST_IP, "0.0.0.0"},
  {"0x0", HC_HOST_IP, "0.0.0.0"},
  {"00", HC_HOST_IP, "0.0.0.0"},
  {"4294967295", HC_HOST_IP, "255.255.255.255"},
  {"0xffffffff", HC_HOST_IP, "255.255.255.255"},
  {"037777777777", HC_HOST_IP, "255.255.255.255"},
  {"1.16777215", HC_HOST_IP, "1.255.255.255"},
  {"1.2.65535", HC_HOST_IP, "1.2.255.255"},
  {"10.1.1", HC_HOST_IP, "10.1.0.1"},
  {"10.1", HC_HOST_IP, "10.0.0.1"},
  {"192.168.257", HC_HOST_IP, "192.168.1.1"},
  {"1.0x00000000ff", HC_HOST_IP, "1.0.0.255"},
  {"8.8.8.8", HC_HOST_IP, "8.8.8.8"},
  {"255.255.255.255", HC_HOST_IP, "255.255.255.255"},
  {"0xff.0xff.0xff.0xff", HC_HOST_IP, "255.255.255.255"},
  {"0377.0377.0377.0377", HC_HOST_IP, "255.255.255.255"},
  /* IPv4, malformed: never a name either */
  {"1.2.3.4.5", -1, ""},
  {"256.0.0.1", -1, ""},
  {"1.2.3.256", -1, ""},
  {"0x100000000", -1, ""},
  {"4294967296", -1, ""},
  {"040000000000", -1, ""},
  {"1.16777216", -1, ""},
  {"1.2.65536", -1, ""},
  {"256.1", -1, ""},
  {"0x100.1", -1, ""},
  {"08", -1, ""},
  {"09.0.0.1", -1, ""},
  {"1.2.3.08", -1, ""},
  {"1.2.3.09", -1, ""},
  {"0x", -1, ""},
  {"0X", -1, ""},
  {"0x.0.0.1", -1, ""},
  {"1.2.3.0x", -1, ""},
  {"0xg.0.0.1", -1, ""},
  {"1..2.3", -1, ""},
  {".1.2.3", -1, ""},
  {"1.2.3.", -1, ""},
  {"127.0.0.1.", -1, ""},
  {"1.2.3.4 ", -1, ""},
  {" 1.2.3.4", -1, ""},
  {"1.2.3.4 junk", -1, ""},
  {"+1.2.3.4", -1, ""},
  {"-1.2.3.4", -1, ""},
  {"1.2.3.-4", -1, ""},
  {"1.2.3.+4", -1, ""},
  {"1.2.3.4\n", -1, ""},
  {"1.2.3.4\t", -1, ""},
  {"1,2,3,4", -1, ""},
  {"99999999999999999999999", -1, ""},
  {"0x7f.0.0.1x", HC_HOST_NAME, "0x7f.0.0.1x"},       /* last label "1x": a name */
  {"1.2.3.4:80", -1, ""},
  {"1.2.3.4/8", -1, ""},
  {"0x1.0x2.0x3.0x4.0x5", -1, ""},
  {"example.123", -1, ""},
  {"example.0x1f", -1, ""},
  {"example.0x", -1, ""},
  {"example.0X", -1, ""},
  {"a.1", -1, ""},
  {"localhost.0", -1, ""},
  {"1e3", HC_HOST_NAME, "1e3"},                      /* not numeric: a name */
  {"\xd9\xa1\xd9\xa2\xd9\xa7.0.0.1", -1, ""},         /* Arabic-Indic digits */
  {"\xef\xbc\x91\xef\xbc\x92\xef\xbc\x97.0.0.1", -1, ""},  /* fullwidth digits */
  {"127\xe3\x80\x82" "0.0.1", -1, ""},               /* ideographic full stop */
  {"127\xef\xbc\x8e" "0.0.1", -1, ""},               /* fullwidth full stop */
  /* IPv6 */
  {"::1", HC_HOST_IP, "::1"},
  {"[::1]", HC_HOST_IP, "::1"},
  {"0:0:0:0:0:0:0:1", HC_HOST_IP, "::1"},
  {"0000:0000:0000:0000:0000:0000:0000:0001", HC_HOST_IP, "::1"},
  {"::", HC_HOST_IP, "::"},
  {"[::]", HC_HOST_IP, "::"},
  {"::ffff:127.0.0.1", HC_HOST_IP, "::ffff:127.0.0.1"},
  {"::ffff:7f00:1", HC_HOST_IP, "::ffff:127.0.0.1"},
  {"::FFFF:7F00:0001", HC_HOST_IP, "::ffff:127.0.0.1"},
  {"[::ffff:169.254.169.254]", HC_HOST_IP, "::ffff:169.254.169.254"},
  {"::127.0.0.1", HC_HOST_IP, "::127.0.0.1"},
  {"64:ff9b::7f00:1", HC_HOST_IP, "64:ff9b::7f00:1"},
  {"64:ff9b::127.0.0.1", HC_HOST_IP, "64:ff9b::7f00:1"},
  {"2002:7f00:1::", HC_HOST_IP, "2002:7f00:1::"},
  {"fe80::1", HC_HOST_IP, "fe80::1"},
  {"FE80::1", HC_HOST_IP, "fe80::1"},
  {"1:2:3:4:5:6:7:8", HC_HOST_IP, "1:2:3:4:5:6:7:8"},
  {"1::", HC_HOST_IP, "1::"},
  {"1:2:3:4:5:6:7::", HC_HOST_IP, "1:2:3:4:5:6:7:0"},
  {"::2:3:4:5:6:7:8", HC_HOST_IP, "0:2:3:4:5:6:7:8"},
  {"1:0:0:2:0:0:0:3", HC_HOST_IP, "1:0:0:2::3"},
  {"1:0:0:0:2:0:0:3", HC_HOST_IP, "1::2:0:0:3"},
  {"2001:db8::1", HC_HOST_IP, "2001:db8::1"},
  {"2001:DB8:0:0:0:0:0:1", HC_HOST_IP, "2001:db8::1"},
  {"::ffff:0.0.0.0", HC_HOST_IP, "::ffff:0.0.0.0"},
  {"::0.0.0.2", HC_HOST_IP, "::2"},
  {"::1.2.3.4", HC_HOST_IP, "::1.2.3.4"},
  {"1:2:3:4:5:6:1.2.3.4", HC_HOST_IP, "1:2:3:4:5:6:102:304"},
  {"::1%lo", -1, ""},
  {"[::1%lo]", -1, ""},
  {"fe80::1%eth0", -1, ""},
  {"fe80::1%1", -1, ""},
  {"[::1", -1, ""},
  {"::1]", -1, ""},
  {"[[::1]]", -1, ""},
  {"[]", -1, ""},
  {"[", -1, ""},
  {"]", -1, ""},
  {"[1.2.3.4]", -1, ""},
  {"[localhost]", -1, ""},
  {":::", -1, ""},
  {"1:::2", -1, ""},
  {"1::2::3", -1, ""},
  {":1::", -1, ""},
  {":1", -1, ""},
  {"1::2:", -1, ""},
  {"1:", -1, ""},
  {":", -1, ""},
  {"1:2:3:4:5:6:7:8:9", -1, ""},
  {"1:2:3:4:5:6:7", -1, ""},
  {"1:2:3:4:5:6:7:8::", -1, ""},
  {"1:2:3:4::5:6:7:8", -1, ""},
  {"12345::", -1, ""},
  {"::ffff:1.2.3", -1, ""},
  {"::ffff:1.2.3.4.5", -1, ""},
  {"::ffff:01.2.3.4", -1, ""},
  {"::ffff:256.1.1.1", -1, ""},
  {"::ffff:0x7f.1", -1, ""},
  {"::ffff:127.1", -1, ""},
  {"1:2:3:4:5:6:7:1.2.3.4", -1, ""},
  {"1:2:3:4:5:6::1.2.3.4", -1, ""},
  {"::1.2.3.4:5", -1, ""},
  {"::1.2.3.4.", -1, ""},
  {"g::1", -1, ""},
  {"::1 ", -1, ""},
  {" ::1", -1, ""},
  {"[::1]:80", -1, ""},
  {"[::1] ", -1, ""},
  {"::-1", -1, ""},
  {"::+1", -1, ""},
  /* names */
  {"Example.COM.", HC_HOST_NAME, "example.com"},
  {"example.com", HC_HOST_NAME, "example.com"},
  {"LOCALHOST", HC_HOST_NAME, "localhost"},
  {"localhost.", HC_HOST_NAME, "localhost"},
  {"_srv._tcp.example", HC_HOST_NAME, "_srv._tcp.example"},
  {"a-b.c_d.example", HC_HOST_NAME, "a-b.c_d.example"},
  {"123.example", HC_HOST_NAME, "123.example"},
  {"0x7f.example", HC_HOST_NAME, "0x7f.example"},
  {"127.0.0.1.nip.io", HC_HOST_NAME, "127.0.0.1.nip.io"},
  {"xn--bcher-kva.example", HC_HOST_NAME, "xn--bcher-kva.example"},
  {"a", HC_HOST_NAME, "a"},
  {"x1", HC_HOST_NAME, "x1"},
  {"1x", HC_HOST_NAME, "1x"},
  {"ab.1a", HC_HOST_NAME, "ab.1a"},
  {"ab.0xg", -1, ""},                                /* "0x..." is numeric-looking */
  {"", -1, ""},
  {".", -1, ""},
  {"..", -1, ""},
  {"a..b", -1, ""},
  {".a", -1, ""},
  {"a..", -1, ""},
  {"-a.com", -1, ""},
  {"a-.com", -1, ""},
  {"a.-b.com", -1, ""},
  {"a.b-.com", -1, ""},
  {"a.com-", -1, ""},
  {"a b", -1, ""},
  {"a\tb", -1, ""},
  {"a.com ", -1, ""},
  {"b\xc3\xbc" "cher.example", -1, ""},
  {"\xff", -1, ""},
  {"*", -1, ""},
  {"*.example.com", -1, ""},
  {"a/b", -1, ""},
  {"a@b", -1, ""},
  {"a.com/8", -1, ""},
  {"a.com:80", -1, ""},
  {"a%2ecom", -1, ""},
  {"a\\.com", -1, ""},
  {"a\"b", -1, ""},
};

TEST(host_strings) {
  for (size_t i = 0; i < COUNT(host_rows); i++) {
    const hrow *r = &host_rows[i];
    hc_netaddr a;
    char name[HC_NET_NAME_MAX + 1] = "junk";
    memset(&a, 0xAB, sizeof a);
    errno = 0;
    int rc = hc_net_parse_host(r->in, &a, name, sizeof name);
    int ok = rc == r->rc;
    if (ok && rc == HC_HOST_IP) ok = strcmp(fmt(&a), r->out) == 0 && name[0] == '\0';
    if (ok && rc == HC_HOST_NAME) ok = strcmp(name, r->out) == 0;
    if (ok && rc == -1) ok = errno == EINVAL && name[0] == '\0';
    if (!CHECK(ok))
      fprintf(stderr, "  host \"%s\": rc %d \"%s\" / \"%s\" (want %d \"%s\")\n", r->in, rc,
              rc == HC_HOST_IP ? fmt(&a) : "", name, r->rc, r->out);
    /* Whatever we call an IPv4 address, libc reads as the same address. */
    if (rc == HC_HOST_IP && a.family == AF_INET) {
      struct in_addr ia;
      CHECK(inet_aton(r->in, &ia) == 1 && memcmp(&ia, a.a, 4) == 0);
    }
    /* Whatever we call a name or refuse, libc does not read as an address without junk. */
    if (rc != HC_HOST_IP && !strpbrk(r->in, " \t\n\v\f\r")) {
      struct in_addr ia;
      CHECK(inet_aton(r->in, &ia) == 0);
    }
  }
}

TEST(host_ipv4_padding_is_zero) {
  /* The bytes of an IPv4 result past a[3] are zero (so comparing whole structs is safe). */
  hc_netaddr a;
  memset(&a, 0xAB, sizeof a);
  CHECK(hc_net_parse_host("127.1", &a, NULL, 0) == HC_HOST_IP);
  int zero = 1;
  for (int i = 4; i < 16; i++) zero &= a.a[i] == 0;
  CHECK(zero);
  CHECK(a.family == AF_INET);
}

TEST(host_name_lengths) {
  char s[600], name[HC_NET_NAME_MAX + 1];
  /* a label of 63 is fine, 64 is not */
  memset(s, 'a', 63);
  strcpy(s + 63, ".example");
  CHECK(hc_net_parse_host(s, NULL, name, sizeof name) == HC_HOST_NAME && strlen(name) == 71);
  memset(s, 'a', 64);
  strcpy(s + 64, ".example");
  CHECK(hc_net_parse_host(s, NULL, name, sizeof name) == -1 && errno == EINVAL);
  memset(s, 'b', 64);
  s[64] = '\0';
  CHECK(hc_net_parse_host(s, NULL, name, sizeof name) == -1);
  /* 253 bytes in all is fine (with or without its trailing dot), 254 is not */
  for (int i = 0; i < 253; i++) s[i] = (i % 2) ? '.' : 'a';   /* a.a.a....a: 127 labels */
  s[253] = '\0';
  CHECK(hc_net_parse_host(s, NULL, name, sizeof name) == HC_HOST_NAME && strlen(name) == 253);
  s[253] = '.';
  s[254] = '\0';
  CHECK(hc_net_parse_host(s, NULL, name, sizeof name) == HC_HOST_NAME && strlen(name) == 253);
  s[253] = 'a';
  s[254] = '\0';
  CHECK(hc_net_parse_host(s, NULL, name, sizeof name) == -1);
  s[254] = '.';
  s[255] = '\0';
  CHECK(hc_net_parse_host(s, NULL, name, sizeof name) == -1);
  /* far longer: refused without reading it all */
  memset(s, 'a', 599);
  s[599] = '\0';
  CHECK(hc_net_parse_host(s, NULL, name, sizeof name) == -1);
  /* a long zero-padded IPv4 is over the length limit: refused, not misread */
  memset(s, '0', 300);
  strcpy(s + 300, "177.0.0.1");
  CHECK(hc_net_parse_host(s, NULL, name, sizeof name) == -1);
  /* the name buffer: too small is ERANGE, exact fits, NULL only validates */
  CHECK(hc_net_parse_host("example.com", NULL, name, 11) == -1 && errno == ERANGE);
  CHECK(hc_net_parse_host("example.com", NULL, name, 12) == HC_HOST_NAME
        && strcmp(name, "example.com") == 0);
  CHECK(hc_net_parse_host("example.com", NULL, NULL, 0) == HC_HOST_NAME);
  CHECK(hc_net_parse_host("1.2.3.4", NULL, NULL, 0) == HC_HOST_IP);
  CHECK(hc_net_parse_host(NULL, NULL, name, sizeof name) == -1 && errno == EINVAL);
}

/* }===== */


/* {===== classes ===== */

typedef struct crow {
  const char *addr;
  int cls;
  const char *eff;     /* the effective IPv4, or NULL when the address embeds none */
} crow;

static const crow class_rows[] = {
  {"0.0.0.0", NEVER, "0.0.0.0"}, {"0.255.255.255", NEVER, "0.255.255.255"},
  {"1.0.0.0", PUB, "1.0.0.0"}, {"8.8.8.8", PUB, "8.8.8.8"}, {"9.255.255.255", PUB, "9.255.255.255"},
  {"10.0.0.0", PRIV, "10.0.0.0"}, {"10.255.255.255", PRIV, "10.255.255.255"},
  {"11.0.0.0", PUB, "11.0.0.0"}, {"100.63.255.255", PUB, "100.63.255.255"},
  {"100.64.0.0", PRIV, "100.64.0.0"}, {"100.127.255.255", PRIV, "100.127.255.255"},
  {"100.128.0.0", PUB, "100.128.0.0"}, {"126.255.255.255", PUB, "126.255.255.255"},
  {"127.0.0.0", LOOP, "127.0.0.0"}, {"127.255.255.255", LOOP, "127.255.255.255"},
  {"128.0.0.0", PUB, "128.0.0.0"}, {"169.253.255.255", PUB, "169.253.255.255"},
  {"169.254.0.0", LL, "169.254.0.0"}, {"169.254.169.254", LL, "169.254.169.254"},
  {"169.254.255.255", LL, "169.254.255.255"}, {"169.255.0.0", PUB, "169.255.0.0"},
  {"172.15.255.255", PUB, "172.15.255.255"}, {"172.16.0.0", PRIV, "172.16.0.0"},
  {"172.31.255.255", PRIV, "172.31.255.255"}, {"172.32.0.0", PUB, "172.32.0.0"},
  {"191.255.255.255", PUB, "191.255.255.255"}, {"192.0.0.0", RES, "192.0.0.0"},
  {"192.0.0.255", RES, "192.0.0.255"}, {"192.0.1.0", PUB, "192.0.1.0"},
  {"192.0.2.1", RES, "192.0.2.1"}, {"192.0.3.0", PUB, "192.0.3.0"},
  {"192.88.99.1", RES, "192.88.99.1"}, {"192.88.98.255", PUB, "192.88.98.255"},
  {"192.167.255.255", PUB, "192.167.255.255"}, {"192.168.0.0", PRIV, "192.168.0.0"},
  {"192.168.255.255", PRIV, "192.168.255.255"}, {"192.169.0.0", PUB, "192.169.0.0"},
  {"198.17.255.255", PUB, "198.17.255.255"}, {"198.18.0.0", RES, "198.18.0.0"},
  {"198.19.255.255", RES, "198.19.255.255"}, {"198.20.0.0", PUB, "198.20.0.0"},
  {"198.51.100.7", RES, "198.51.100.7"}, {"203.0.113.9", RES, "203.0.113.9"},
  {"203.0.114.0", PUB, "203.0.114.0"}, {"223.255.255.255", PUB, "223.255.255.255"},
  {"224.0.0.0", NEVER, "224.0.0.0"}, {"224.0.0.1", NEVER, "224.0.0.1"},
  {"239.255.255.255", NEVER, "239.255.255.255"}, {"240.0.0.0", RES, "240.0.0.0"},
  {"255.255.255.254", RES, "255.255.255.254"}, {"255.255.255.255", NEVER, "255.255.255.255"},
  /* IPv6: embedded IPv4 classified as that IPv4 */
  {"::", NEVER, NULL}, {"::1", LOOP, NULL}, {"::2", NEVER, "0.0.0.2"},
  {"::ffff:0.0.0.0", NEVER, "0.0.0.0"}, {"::ffff:8.8.8.8", PUB, "8.8.8.8"},
  {"::8.8.8.8", PUB, "8.8.8.8"}, {"64:ff9b::808:808", PUB, "8.8.8.8"},
  {"2002:808:808::", PUB, "8.8.8.8"}, {"2002:808:808:1:2:3:4:5", PUB, "8.8.8.8"},
  {"::ffff:255.255.255.255", NEVER, "255.255.255.255"}, {"::ffff:224.0.0.1", NEVER, "224.0.0.1"},
  {"2002:e000:1::", NEVER, "224.0.0.1"}, {"64:ff9b::e000:1", NEVER, "224.0.0.1"},
  {"2002:c0a8:101::", PRIV, "192.168.1.1"}, {"64:ff9b::6440:1", PRIV, "100.64.0.1"},
  {"::ffff:192.0.2.1", RES, "192.0.2.1"}, {"::240.0.0.1", RES, "240.0.0.1"},
  /* IPv6 prefixes near the embedding ones embed nothing */
  {"64:ff9b:1::a00:1", RES, NULL}, {"64:ff9b::1:a00:1", RES, NULL},
  {"::ffff:0:7f00:1", RES, NULL}, {"::1:0:0:0", RES, NULL}, {"::fffe:7f00:1", RES, NULL},
  {"2003::1", PUB, NULL}, {"2001::1", RES, NULL},
  /* IPv6 special ranges */
  {"2001:0:4136:e378:8000:63bf:3fff:fdd2", RES, NULL},      /* Teredo */
  {"100::", RES, NULL}, {"100::ffff:ffff:ffff:ffff", RES, NULL}, {"100:0:0:1::", RES, NULL},
  {"2001:1ff:ffff::", RES, NULL}, {"2001:200::1", PUB, NULL}, {"2001:db8::1", RES, NULL},
  {"2001:db9::1", PUB, NULL}, {"2001:4860:4860::8888", PUB, NULL},
  {"2606:4700:4700::1111", PUB, NULL}, {"3fff::1", RES, NULL}, {"3fff:fff::1", RES, NULL},
  {"3fff:1000::", PUB, NULL}, {"3ffe::1", PUB, NULL}, {"4000::1", RES, NULL},
  {"1fff::1", RES, NULL}, {"5f00::1", RES, NULL}, {"fbff::1", RES, NULL},
  {"fc00::1", PRIV, NULL}, {"fd00::1", PRIV, NULL}, {"fdff:ffff::1", PRIV, NULL},
  {"fe00::1", RES, NULL}, {"fe80::1", LL, NULL}, {"febf:ffff::1", LL, NULL},
  {"fec0::1", PRIV, NULL}, {"feff::1", PRIV, NULL}, {"ff00::", NEVER, NULL},
  {"ff02::1", NEVER, NULL}, {"ff05::1:3", NEVER, NULL},
  {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NEVER, NULL},
};

TEST(classes) {
  for (size_t i = 0; i < COUNT(class_rows); i++) {
    const crow *r = &class_rows[i];
    hc_netaddr a, e;
    memset(&e, 0, sizeof e);
    int ok = parse_ip(r->addr, &a);
    int has = ok && hc_netaddr_effective_v4(&a, &e);
    ok = ok && hc_netaddr_class(&a) == r->cls && has == (r->eff != NULL)
         && (!has || strcmp(fmt(&e), r->eff) == 0);
    if (!CHECK(ok))
      fprintf(stderr, "  %s: class %d eff %s (want %d %s)\n", r->addr, hc_netaddr_class(&a),
              has ? fmt(&e) : "-", r->cls, r->eff ? r->eff : "-");
  }
  /* an address of no known family is never reachable */
  hc_netaddr bad;
  memset(&bad, 0, sizeof bad);
  bad.family = AF_UNIX;
  hc_netaddr e;
  CHECK(hc_netaddr_class(&bad) == NEVER);
  CHECK(hc_netaddr_effective_v4(&bad, &e) == 0);
  CHECK(hc_netaddr_class(NULL) == NEVER);
}

/* }===== */


/* {===== rules: accepted (canonical text) and refused (exact message) ===== */

typedef struct rrow {
  const char *rule;
  const char *want;    /* canonical text, or the message */
} rrow;

static const rrow rules_ok[] = {
  {"127.0.0.1:8080", "127.0.0.1:8080"},
  {"10.1.0.0/16:5432", "10.1.0.0/16:5432"},
  {"api.example.com:443", "api.example.com:443"},
  {"API.Example.COM.:443", "api.example.com:443"},
  {"[::1]:9000", "[::1]:9000"},
  {"[fd00::/8]:8000-8999", "[fd00::/8]:8000-8999"},
  {"10.1.9.0/24:*", "10.1.9.0/24:*"},
  {"0.0.0.0/0:443", "0.0.0.0/0:443"},
  {"[::]:1", "[::]:1"},
  {"[::/0]:65535", "[::/0]:65535"},
  {"[::ffff:10.0.0.1]:80", "10.0.0.1:80"},
  {"[::ffff:a00:1]:80", "10.0.0.1:80"},
  {"[::ffff:10.0.0.0/104]:*", "10.0.0.0/8:*"},
  {"[::ffff:0:0/96]:*", "0.0.0.0/0:*"},
  {"[64:ff9b::7f00:1]:80", "127.0.0.1:80"},
  {"[64:ff9b::/96]:80", "0.0.0.0/0:80"},
  {"[2002:7f00:1::]:80", "127.0.0.1:80"},
  {"[2002:a00::/24]:80", "10.0.0.0/8:80"},
  {"[2002::/16]:80", "0.0.0.0/0:80"},
  {"[2002:a00:1::/48]:80", "10.0.0.1:80"},
  {"[2002:a00:1::/64]:80", "10.0.0.1:80"},
  {"[::10.0.0.1]:80", "10.0.0.1:80"},
  {"[::a00:0/104]:80", "10.0.0.0/8:80"},
  {"[::/96]:80", "0.0.0.0/0:80"},
  {"[::/127]:80", "[::/127]:80"},
  {"[::/128]:80", "[::]:80"},
  {"[::1/128]:80", "[::1]:80"},
  {"[::2/127]:80", "0.0.0.2/31:80"},
  {"[::fffe:0:0/95]:80", "[::fffe:0:0/95]:80"},   /* holds the mapped /96: stays IPv6 */
  {"[2001:db8:0:0:0:0:0:1]:22", "[2001:db8::1]:22"},
  {"[2001:DB8::/32]:22", "[2001:db8::/32]:22"},
  {"localhost:80", "localhost:80"},
  {"_srv.example:1-1", "_srv.example:1"},
  {"a-b.c_d.example:1-65535", "a-b.c_d.example:*"},
  {"1.2.3.4:1", "1.2.3.4:1"},
  {"1.2.3.4:65535", "1.2.3.4:65535"},
  {"1.2.3.4:1-65535", "1.2.3.4:*"},
  {"1.2.3.4:80-80", "1.2.3.4:80"},
  {"1.2.3.4:80-81", "1.2.3.4:80-81"},
  {"224.0.0.1:*", "224.0.0.1:*"},
  {"255.255.255.255:*", "255.255.255.255:*"},
  {"0.0.0.0:*", "0.0.0.0:*"},
  {"0.0.0.0/32:80", "0.0.0.0:80"},
  {"[ff02::1]:*", "[ff02::1]:*"},
  {"123.example:80", "123.example:80"},
  {"0x7f.example:80", "0x7f.example:80"},
  {"xn--bcher-kva.example:80", "xn--bcher-kva.example:80"},
  {"1.2.3.4/32:80", "1.2.3.4:80"},
  {"128.0.0.0/1:80", "128.0.0.0/1:80"},
  {"[8000::/1]:80", "[8000::/1]:80"},
};

static const rrow rules_bad[] = {
  {"", "must not be empty"},
  {"a.example :80", "must not contain whitespace"},
  {" 1.2.3.4:80", "must not contain whitespace"},
  {"1.2.3.4:80\n", "must not contain whitespace"},
  {"1.2.3.4:80\r", "must not contain whitespace"},
  {"1.2.3.4\t:80", "must not contain whitespace"},
  {"a.example:80\x01", "must not contain control characters"},
  {"a.example:80\x7f", "must not contain control characters"},
  {"a\x1b.example:80", "must not contain control characters"},
  {"a.example", "\"a.example\": expected HOST:PORTS, e.g. \"api.example.com:443\""},
  {"1.2.3.4", "\"1.2.3.4\": expected HOST:PORTS, e.g. \"api.example.com:443\""},
  {":80", "\":80\": the host is empty"},
  {":", "\":\": the host is empty"},
  {"::1:80", "\"::1:80\": an IPv6 address must be in brackets, e.g. \"[::1]:443\""},
  {"fe80::1:80", "\"fe80::1:80\": an IPv6 address must be in brackets, e.g. \"[::1]:443\""},
  {"[::1:80", "\"[::1:80\": missing \"]\" after the IPv6 address"},
  {"[::1]80", "\"[::1]80\": expected \":PORTS\" after \"]\""},
  {"[::1]", "\"[::1]\": expected \":PORTS\" after \"]\""},
  {"[1:2:3]:80", "\"[1:2:3]\" is not an IPv6 address"},
  {"[1::2::3]:80", "\"[1::2::3]\" is not an IPv6 address"},
  {"[fe80::1%eth0]:80", "\"[fe80::1%eth0]\" is not an IPv6 address"},
  {"[1.2.3.4]:80", "\"[1.2.3.4]\" is not an IPv6 address"},
  {"[]:80", "\"[]\" is not an IPv6 address"},
  {"[a.example]:80", "\"[a.example]\" is not an IPv6 address"},
  {"[::ffff:127.1]:80", "\"[::ffff:127.1]\" is not an IPv6 address"},
  {"[::1/129]:80", "\"[::1/129]\": an IPv6 prefix length must be 0-128"},
  {"[::1/]:80", "\"[::1/]\": an IPv6 prefix length must be 0-128"},
  {"[::/01]:80", "\"[::/01]\": an IPv6 prefix length must be 0-128"},
  {"[::/0x8]:80", "\"[::/0x8]\": an IPv6 prefix length must be 0-128"},
  {"[::/-1]:80", "\"[::/-1]\": an IPv6 prefix length must be 0-128"},
  {"[::/8/8]:80", "\"[::/8/8]\": an IPv6 prefix length must be 0-128"},
  {"10.0.0.0/33:80", "host \"10.0.0.0/33\": an IPv4 prefix length must be 0-32"},
  {"10.0.0.0/:80", "host \"10.0.0.0/\": an IPv4 prefix length must be 0-32"},
  {"10.0.0.0/-1:80", "host \"10.0.0.0/-1\": an IPv4 prefix length must be 0-32"},
  {"10.0.0.0/08:80", "host \"10.0.0.0/08\": an IPv4 prefix length must be 0-32"},
  {"10.0.0.0/+8:80", "host \"10.0.0.0/+8\": an IPv4 prefix length must be 0-32"},
  {"a.example/8:80",
   "host \"a.example/8\": a CIDR prefix needs an IPv4 address (IPv6 goes in brackets)"},
  {"10.1/16:80", "host \"10.1/16\": a CIDR prefix needs an IPv4 address (IPv6 goes in brackets)"},
  {"/8:80", "host \"/8\": a CIDR prefix needs an IPv4 address (IPv6 goes in brackets)"},
  {"256.1.1.1:80", "host \"256.1.1.1\": write an IPv4 address as four decimal octets"},
  {"010.0.0.1:80", "host \"010.0.0.1\": write an IPv4 address as four decimal octets"},
  {"10.1:80", "host \"10.1\": write an IPv4 address as four decimal octets"},
  {"2130706433:80", "host \"2130706433\": write an IPv4 address as four decimal octets"},
  {"0x7f.1:80", "host \"0x7f.1\": write an IPv4 address as four decimal octets"},
  {"0x7f000001:80", "host \"0x7f000001\": write an IPv4 address as four decimal octets"},
  {"127.0.0.1.:80", "host \"127.0.0.1.\": write an IPv4 address as four decimal octets"},
  {"1.2.3.4.5:80", "host \"1.2.3.4.5\": write an IPv4 address as four decimal octets"},
  {"example.0x1f:80", "host \"example.0x1f\": write an IPv4 address as four decimal octets"},
  {"*:80", "host \"*\" is not an IP address, CIDR or host name"},
  {"*.example.com:80", "host \"*.example.com\" is not an IP address, CIDR or host name"},
  {"a..example:80", "host \"a..example\" is not an IP address, CIDR or host name"},
  {"-a.example:80", "host \"-a.example\" is not an IP address, CIDR or host name"},
  {"a-.example:80", "host \"a-.example\" is not an IP address, CIDR or host name"},
  {"a.example..:80", "host \"a.example..\" is not an IP address, CIDR or host name"},
  {".:80", "host \".\" is not an IP address, CIDR or host name"},
  {"a\"b:80", "host \"a\\\"b\" is not an IP address, CIDR or host name"},
  {"a\\b:80", "host \"a\\\\b\" is not an IP address, CIDR or host name"},
  {"b\xc3\xbc" "cher.example:80",
   "host \"b\\195\\188cher.example\" is not an IP address, CIDR or host name"},
  {"a.example:0", "ports \"0\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:65536", "ports \"65536\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:", "ports \"\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:080", "ports \"080\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:08", "ports \"08\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:+80", "ports \"+80\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:-1", "ports \"-1\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:1-", "ports \"1-\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:-", "ports \"-\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:1-2-3", "ports \"1-2-3\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:*-80", "ports \"*-80\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:**", "ports \"**\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:0-80", "ports \"0-80\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:80-65536", "ports \"80-65536\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:0x50", "ports \"0x50\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:99999999999", "ports \"99999999999\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:4294967376", "ports \"4294967376\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:80a", "ports \"80a\": expected a port 1-65535, LOW-HIGH, or *"},
  {"[::1]:", "ports \"\": expected a port 1-65535, LOW-HIGH, or *"},
  {"[::1]:[80]", "ports \"[80]\": expected a port 1-65535, LOW-HIGH, or *"},
  {"[::1]:80:80", "ports \"80:80\": expected a port 1-65535, LOW-HIGH, or *"},
  {"a.example:9-1", "port range \"9-1\": LOW must not exceed HIGH"},
  {"a.example:80-70", "port range \"80-70\": LOW must not exceed HIGH"},
  {"[::1]:65535-1", "port range \"65535-1\": LOW must not exceed HIGH"},
  {"10.1.0.1/16:80",
   "host \"10.1.0.1/16\": host bits are set after the prefix (the network is 10.1.0.0/16)"},
  {"0.0.0.1/0:*",
   "host \"0.0.0.1/0\": host bits are set after the prefix (the network is 0.0.0.0/0)"},
  {"10.0.0.1/31:80",
   "host \"10.0.0.1/31\": host bits are set after the prefix (the network is 10.0.0.0/31)"},
  {"[fd00::1/8]:80",
   "\"[fd00::1/8]\": host bits are set after the prefix (the network is [fd00::/8])"},
  {"[::1/127]:80", "\"[::1/127]\": host bits are set after the prefix (the network is [::/127])"},
  {"[::ffff:10.0.0.1/104]:80",
   "\"[::ffff:10.0.0.1/104]\": host bits are set after the prefix "
   "(the network is [::ffff:10.0.0.0/104])"},
};

TEST(rules_accepted) {
  hc_netpolicy *p = hc_netpolicy_new();
  char err[256], text[300];
  for (size_t i = 0; i < COUNT(rules_ok); i++) {
    err[0] = '\0';
    int kind = (int)(i % 3);
    int ok = hc_netpolicy_add(p, kind, rules_ok[i].rule, err, sizeof err) == 0 && err[0] == '\0';
    ok = ok && hc_netpolicy_rule_text(p, i, text, sizeof text) == kind
         && strcmp(text, rules_ok[i].want) == 0;
    if (!CHECK(ok))
      fprintf(stderr, "  rule \"%s\": err \"%s\" text \"%s\" (want \"%s\")\n", rules_ok[i].rule,
              err, text, rules_ok[i].want);
    /* the canonical text is a rule that reads back as itself */
    hc_netpolicy *q = hc_netpolicy_new();
    char again[300] = "";
    CHECK(hc_netpolicy_add(q, kind, text, err, sizeof err) == 0
          && hc_netpolicy_rule_text(q, 0, again, sizeof again) == kind
          && strcmp(again, text) == 0);
    hc_netpolicy_free(q);
  }
  CHECK(hc_netpolicy_rule_text(p, COUNT(rules_ok), text, sizeof text) == -1 && text[0] == '\0');
  hc_netpolicy_free(p);
}

TEST(rules_long_names) {
  hc_netpolicy *p = hc_netpolicy_new();
  char rule[600], err[256], want[600];
  memset(rule, 'a', 63);
  strcpy(rule + 63, ".Example:443");
  CHECK(hc_netpolicy_add(p, AL, rule, err, sizeof err) == 0);
  memset(rule, 'a', 64);
  strcpy(rule + 64, ".example:443");
  CHECK(hc_netpolicy_add(p, AL, rule, err, sizeof err) == -1);
  snprintf(want, sizeof want, "host \"%.64s.example\" is not an IP address, CIDR or host name",
           rule);
  CHECK_STREQ(err, want);
  for (int i = 0; i < 253; i++) rule[i] = (i % 2) ? '.' : 'a';
  strcpy(rule + 253, ":1");
  CHECK(hc_netpolicy_add(p, AL, rule, err, sizeof err) == 0);
  strcpy(rule + 253, ".:1");
  CHECK(hc_netpolicy_add(p, AL, rule, err, sizeof err) == 0);
  strcpy(rule + 253, "a:1");   /* 254 bytes: too long; shown cut at 100 bytes */
  CHECK(hc_netpolicy_add(p, AL, rule, err, sizeof err) == -1);
  snprintf(want, sizeof want, "host \"%.100s\"... is not an IP address, CIDR or host name", rule);
  CHECK_STREQ(err, want);
  hc_netpolicy_free(p);
}

TEST(rules_refused) {
  hc_netpolicy *p = hc_netpolicy_new();
  char err[512];
  for (size_t i = 0; i < COUNT(rules_bad); i++) {
    strcpy(err, "junk");
    errno = 0;
    int rc = hc_netpolicy_add(p, (int)(i % 3), rules_bad[i].rule, err, sizeof err);
    if (!CHECK(rc == -1 && errno == EINVAL && strcmp(err, rules_bad[i].want) == 0))
      fprintf(stderr, "  rule \"%s\": rc %d err \"%s\"\n  want \"%s\"\n", rules_bad[i].rule, rc,
              err, rules_bad[i].want);
  }
  /* a refused rule adds nothing */
  CHECK(hc_netpolicy_rule_text(p, 0, err, sizeof err) == -1);
  /* arguments */
  CHECK(hc_netpolicy_add(p, 7, "1.2.3.4:80", err, sizeof err) == -1);
  CHECK_STREQ(err, "unknown rule kind");
  CHECK(hc_netpolicy_add(p, -1, "1.2.3.4:80", err, sizeof err) == -1);
  CHECK_STREQ(err, "unknown rule kind");
  CHECK(hc_netpolicy_add(p, AL, NULL, err, sizeof err) == -1);
  CHECK_STREQ(err, "no policy or no rule");
  CHECK(hc_netpolicy_add(NULL, AL, "1.2.3.4:80", err, sizeof err) == -1);
  CHECK(hc_netpolicy_add(p, AL, "x:0", NULL, 0) == -1);
  CHECK(hc_netpolicy_add(p, AL, "x:0", err, 0) == -1);
  /* a short buffer truncates, always terminated */
  err[8] = 'Z';
  CHECK(hc_netpolicy_add(p, AL, "a.example:0", err, 8) == -1);
  CHECK_STREQ(err, "ports \"");
  CHECK(err[8] == 'Z');
  /* messages are ASCII whatever the rule holds */
  CHECK(hc_netpolicy_add(p, AL, "\xff\xfe:80", err, sizeof err) == -1);
  CHECK_STREQ(err, "host \"\\255\\254\" is not an IP address, CIDR or host name");
  hc_netpolicy_free(p);
}

TEST(rules_limit) {
  hc_netpolicy *p = hc_netpolicy_new();
  char err[128];
  int ok = 1;
  for (int i = 0; i < HC_NETPOLICY_MAX_RULES; i++)
    ok &= hc_netpolicy_add(p, AL, "a.b:1", err, sizeof err) == 0;
  CHECK(ok);
  CHECK(hc_netpolicy_add(p, DE, "a.b:1", err, sizeof err) == -1);
  CHECK_STREQ(err, "too many rules (at most 4096)");
  hc_netpolicy_free(p);
  hc_netpolicy_free(NULL);
}

/* }===== */


/* {===== decisions ===== */

static const drow never_rows[] = {
  /* Unspecified, broadcast, multicast: refused whatever names them. */
#define NEVER_POL "a=224.0.0.1:* a=255.255.255.255:* a=0.0.0.0:* a=0.0.0.0/8:* a=[ff02::1]:* " \
                  "a=[::]:* a=0.0.0.0/0:* a=[::/0]:* a=224.0.0.0/4:* a=[ff00::/8]:* " \
                  "a=[::ffff:224.0.0.1]:* l=0.0.0.0:* l=[::]:* l=224.0.0.1:* l=0.0.0.0/0:*"
  {NEVER_POL, AL, "224.0.0.1", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "239.1.2.3", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "255.255.255.255", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "4294967295", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "0xe0000001", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "0.0.0.0", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "0", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "0.1.2.3", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "::", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "ff02::1", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "ff05::2", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "::ffff:224.0.0.1", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "::ffff:255.255.255.255", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "64:ff9b::e000:1", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "2002:e000:1::", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "2002:ffff:ffff::", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "::ffff:0.0.0.0", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "::0.0.0.2", 80, NULL, NVR, 0},
  {NEVER_POL, AL, "224.0.0.1", 80, "mcast.example", NVR, 0},
  {NEVER_POL, LI, "0.0.0.0", 7000, NULL, NVR, 0},
  {NEVER_POL, LI, "::", 7000, NULL, NVR, 0},
  {NEVER_POL, LI, "224.0.0.1", 7000, NULL, NVR, 0},
  {NEVER_POL, LI, "::ffff:0.0.0.0", 7000, NULL, NVR, 0},
  {"a=mcast.example:*", AL, "224.0.0.1", 80, "mcast.example", NVR, 0},
  {"", AL, "224.0.0.1", 80, NULL, NVR, 0},
  /* port 0 comes first, even before NEVER */
  {NEVER_POL, AL, "224.0.0.1", 0, NULL, PORT, 0},
  /* deny does not turn NEVER into DENY: never is checked first */
  {"d=224.0.0.0/4:*", AL, "224.0.0.1", 80, NULL, NVR, 0},
};

static const drow port_rows[] = {
  {"a=8.8.8.8:*", AL, "8.8.8.8", 0, NULL, PORT, 0},
  {"a=8.8.8.8:*", AL, "8.8.8.8", -2, NULL, PORT, 0},
  {"a=8.8.8.8:*", AL, "8.8.8.8", 65536, NULL, PORT, 0},
  {"a=8.8.8.8:*", AL, "8.8.8.8", 70000, NULL, PORT, 0},
  {"a=8.8.8.8:*", AL, "8.8.8.8", INT_MIN, NULL, PORT, 0},
  {"a=8.8.8.8:*", AL, "8.8.8.8", INT_MAX, NULL, PORT, 0},
  {"a=8.8.8.8:*", AL, "8.8.8.8", 1, NULL, OK, 1},
  {"a=8.8.8.8:*", AL, "8.8.8.8", 65535, NULL, OK, 1},
  {"a=8.8.8.8:8000-8999", AL, "8.8.8.8", 7999, NULL, NORULE, 0},
  {"a=8.8.8.8:8000-8999", AL, "8.8.8.8", 8000, NULL, OK, 1},
  {"a=8.8.8.8:8000-8999", AL, "8.8.8.8", 8500, NULL, OK, 1},
  {"a=8.8.8.8:8000-8999", AL, "8.8.8.8", 8999, NULL, OK, 1},
  {"a=8.8.8.8:8000-8999", AL, "8.8.8.8", 9000, NULL, NORULE, 0},
  {"a=8.8.8.8:1", AL, "8.8.8.8", 1, NULL, OK, 1},
  {"a=8.8.8.8:1", AL, "8.8.8.8", 2, NULL, NORULE, 0},
  {"a=8.8.8.8:65535", AL, "8.8.8.8", 65535, NULL, OK, 1},
  {"a=8.8.8.8:65535", AL, "8.8.8.8", 65534, NULL, NORULE, 0},
  {"a=8.8.8.8:1-65535", AL, "8.8.8.8", 65535, NULL, OK, 1},
  {"a=8.8.8.8:80 a=8.8.8.8:443", AL, "8.8.8.8", 443, NULL, OK, 2},
  {"a=8.8.8.8:80 d=8.8.8.8:81-65535", AL, "8.8.8.8", 80, NULL, OK, 1},
  {"a=8.8.8.8:* d=8.8.8.8:1-79", AL, "8.8.8.8", 79, NULL, DENY, 1},
  {"a=8.8.8.8:* d=8.8.8.8:1-79", AL, "8.8.8.8", 80, NULL, OK, 1},
  {"a=api.example.com:443", AL, "8.8.8.8", 0, "api.example.com", PORT, 0},
  {"l=127.0.0.1:7000", LI, "127.0.0.1", 0, NULL, PORT, 0},
};

static const drow deny_rows[] = {
  /* IP and CIDR */
  {"a=10.1.0.0/16:5432 d=10.1.9.0/24:*", AL, "10.1.9.5", 5432, NULL, DENY, 1},
  {"a=10.1.0.0/16:5432 d=10.1.9.0/24:*", AL, "10.1.8.5", 5432, NULL, OK, 1},
  {"a=10.1.0.0/16:5432 d=10.1.9.0/24:*", AL, "10.1.9.5", 5433, NULL, DENY, 1},
  {"a=10.1.0.0/16:5432 d=10.1.9.0/24:*", AL, "::ffff:10.1.9.5", 5432, NULL, DENY, 1},
  {"a=10.1.0.0/16:5432 d=10.1.9.0/24:*", AL, "64:ff9b::a01:905", 5432, NULL, DENY, 1},
  {"a=10.1.0.0/16:5432 d=10.1.9.0/24:*", AL, "2002:a01:905::", 5432, NULL, DENY, 1},
  {"a=10.1.0.0/16:5432 d=10.1.9.0/24:*", AL, "10.1.2309", 5432, NULL, DENY, 1},
  {"a=8.8.8.8:53 d=8.8.8.8:53", AL, "8.8.8.8", 53, NULL, DENY, 1},
  {"d=8.8.8.8:53 a=8.8.8.8:53", AL, "8.8.8.8", 53, NULL, DENY, 1},
  {"a=8.8.8.8:* d=8.8.8.8:53", AL, "8.8.8.8", 443, NULL, OK, 1},
  {"a=0.0.0.0/0:* d=1.1.1.1:* d=8.8.8.0/24:*", AL, "8.8.8.8", 80, NULL, DENY, 2},
  {"a=0.0.0.0/0:* d=1.1.1.1:* d=8.8.8.0/24:*", AL, "1.1.1.1", 80, NULL, DENY, 1},
  {"a=0.0.0.0/0:* d=1.1.1.1:* d=8.8.8.0/24:*", AL, "9.9.9.9", 80, NULL, OK, 1},
  {"a=0.0.0.0/0:* d=8.8.8.8:*", AL, "8.8.8.8", 80, "dns.google", DENY, 1},
  {"a=[::/0]:* d=[2606:4700::/32]:*", AL, "2606:4700::1", 443, NULL, DENY, 1},
  {"a=[::/0]:* d=[2606:4700::/32]:*", AL, "2606:4800::1", 443, NULL, OK, 1},
  {"a=0.0.0.0/0:* d=[::ffff:1.2.3.0/120]:*", AL, "1.2.3.4", 80, NULL, DENY, 1},
  {"a=0.0.0.0/0:* d=[::ffff:1.2.3.0/120]:*", AL, "::ffff:1.2.3.4", 80, NULL, DENY, 1},
  {"a=0.0.0.0/0:* d=[::ffff:1.2.3.0/120]:*", AL, "2002:102:304::", 80, NULL, DENY, 1},
  {"a=0.0.0.0/0:* d=[::ffff:1.2.3.0/120]:*", AL, "1.2.4.4", 80, NULL, OK, 1},
  /* by name */
  {"a=0.0.0.0/0:443 d=evil.example:443", AL, "1.2.3.4", 443, "evil.example", DENY, 1},
  {"a=0.0.0.0/0:443 d=evil.example:443", AL, "1.2.3.4", 443, "EVIL.Example.", DENY, 1},
  {"a=0.0.0.0/0:443 d=EVIL.EXAMPLE.:443", AL, "1.2.3.4", 443, "evil.example", DENY, 1},
  {"a=0.0.0.0/0:443 d=evil.example:443", AL, "1.2.3.4", 443, NULL, OK, 1},
  {"a=0.0.0.0/0:443 d=evil.example:443", AL, "1.2.3.4", 443, "good.example", OK, 1},
  {"a=0.0.0.0/0:443 d=evil.example:443", AL, "1.2.3.4", 443, "sub.evil.example", OK, 1},
  {"a=api.example.com:443 d=api.example.com:*", AL, "8.8.8.8", 443, "api.example.com", DENY, 1},
  {"a=api.example.com:* d=api.example.com:80", AL, "8.8.8.8", 80, "api.example.com", DENY, 1},
  {"a=api.example.com:* d=api.example.com:80", AL, "8.8.8.8", 443, "api.example.com", OK, 1},
  {"a=127.0.0.1:80 d=localhost:*", AL, "127.0.0.1", 80, "localhost", DENY, 1},
  {"a=127.0.0.1:80 d=localhost:*", AL, "127.0.0.1", 80, NULL, OK, 1},
  /* deny applies to listen too */
  {"l=127.0.0.1:7000 d=127.0.0.1:7000", LI, "127.0.0.1", 7000, NULL, DENY, 1},
  {"l=127.0.0.1:7000 d=127.0.0.1:7001", LI, "127.0.0.1", 7000, NULL, OK, 1},
  /* a deny rule never allows */
  {"d=8.8.8.8:53", AL, "8.8.8.8", 443, NULL, NORULE, 0},
  {"d=8.8.8.8:53", LI, "8.8.8.8", 443, NULL, NORULE, 0},
};

static const drow special_rows[] = {
  /* IP rules inside special space unlock it */
  {"a=127.0.0.1:8080", AL, "127.0.0.1", 8080, NULL, OK, 1},
  {"a=10.1.0.0/16:5432", AL, "10.1.2.3", 5432, NULL, OK, 1},
  {"a=10.1.0.0/16:5432", AL, "10.2.0.1", 5432, NULL, NORULE, 0},
  {"a=[fd00::/8]:8000", AL, "fd12::1", 8000, NULL, OK, 1},
  {"a=[fd00::/8]:8000", AL, "fc00::1", 8000, NULL, NORULE, 0},
  {"a=172.16.0.0/12:*", AL, "172.31.255.255", 1, NULL, OK, 1},
  {"a=192.168.0.0/16:*", AL, "192.168.1.1", 1, NULL, OK, 1},
  {"a=100.64.0.0/10:*", AL, "100.100.100.100", 1, NULL, OK, 1},
  {"a=169.254.0.0/16:*", AL, "169.254.169.254", 80, NULL, OK, 1},
  {"a=127.0.0.0/8:*", AL, "127.1.2.3", 80, NULL, OK, 1},
  {"a=240.0.0.0/4:*", AL, "240.0.0.1", 80, NULL, OK, 1},
  {"a=240.0.0.0/4:*", AL, "255.255.255.254", 80, NULL, OK, 1},
  {"a=224.0.0.0/3:*", AL, "240.0.0.1", 80, NULL, OK, 1},     /* multicast + reserved: special */
  {"a=224.0.0.0/3:*", AL, "224.0.0.1", 80, NULL, NVR, 0},
  {"a=224.0.0.0/3:*", AL, "255.255.255.255", 80, NULL, NVR, 0},
  {"a=192.0.0.0/24:*", AL, "192.0.0.8", 80, NULL, OK, 1},
  {"a=198.18.0.0/15:*", AL, "198.19.0.1", 80, NULL, OK, 1},
  {"a=192.0.2.0/24:*", AL, "192.0.2.1", 80, NULL, OK, 1},
  {"a=0.0.0.0/8:* a=10.0.0.0/8:*", AL, "10.0.0.1", 80, NULL, OK, 2},
  /* ... but not when the rule also covers public space */
  {"a=0.0.0.0/0:*", AL, "127.0.0.1", 80, NULL, SPEC, 0},
  {"a=0.0.0.0/0:*", AL, "169.254.169.254", 80, NULL, SPEC, 0},
  {"a=0.0.0.0/0:*", AL, "10.0.0.1", 80, NULL, SPEC, 0},
  {"a=0.0.0.0/0:*", AL, "100.64.0.1", 80, NULL, SPEC, 0},
  {"a=0.0.0.0/0:*", AL, "192.168.1.1", 80, NULL, SPEC, 0},
  {"a=0.0.0.0/0:*", AL, "172.16.0.1", 80, NULL, SPEC, 0},
  {"a=0.0.0.0/0:*", AL, "192.0.2.1", 80, NULL, SPEC, 0},
  {"a=0.0.0.0/0:*", AL, "192.88.99.1", 80, NULL, SPEC, 0},
  {"a=0.0.0.0/0:*", AL, "198.18.0.1", 80, NULL, SPEC, 0},
  {"a=0.0.0.0/0:*", AL, "240.0.0.1", 80, NULL, SPEC, 0},
  {"a=0.0.0.0/0:*", AL, "8.8.8.8", 80, NULL, OK, 1},
  {"a=0.0.0.0/0:*", AL, "::ffff:8.8.8.8", 80, NULL, OK, 1},
  {"a=0.0.0.0/0:*", AL, "2002:808:808::", 80, NULL, OK, 1},
  {"a=0.0.0.0/0:*", AL, "64:ff9b::808:808", 80, NULL, OK, 1},
  {"a=0.0.0.0/0:*", AL, "2606:4700::1", 80, NULL, NORULE, 0},
  {"a=8.0.0.0/5:*", AL, "10.0.0.1", 80, NULL, SPEC, 0},
  {"a=8.0.0.0/5:*", AL, "8.8.8.8", 80, NULL, OK, 1},
  {"a=10.0.0.0/7:*", AL, "10.0.0.1", 80, NULL, SPEC, 0},
  {"a=10.0.0.0/7:*", AL, "11.0.0.1", 80, NULL, OK, 1},
  {"a=172.0.0.0/8:*", AL, "172.16.0.1", 80, NULL, SPEC, 0},
  {"a=172.0.0.0/11:*", AL, "172.16.0.1", 80, NULL, SPEC, 0},
  {"a=172.0.0.0/8:*", AL, "172.1.0.1", 80, NULL, OK, 1},
  {"a=192.168.0.0/15:*", AL, "192.168.1.1", 80, NULL, SPEC, 0},
  {"a=192.168.0.0/15:*", AL, "192.169.0.1", 80, NULL, OK, 1},
  {"a=100.0.0.0/8:*", AL, "100.64.0.1", 80, NULL, SPEC, 0},
  {"a=169.0.0.0/8:*", AL, "169.254.169.254", 80, NULL, SPEC, 0},
  {"a=126.0.0.0/7:*", AL, "127.0.0.1", 80, NULL, SPEC, 0},
  {"a=126.0.0.0/7:*", AL, "126.0.0.1", 80, NULL, OK, 1},
  {"a=192.0.0.0/23:*", AL, "192.0.0.8", 80, NULL, SPEC, 0},
  {"a=192.0.0.0/23:*", AL, "192.0.1.1", 80, NULL, OK, 1},
  {"a=198.16.0.0/13:*", AL, "198.18.0.1", 80, NULL, SPEC, 0},
  {"a=128.0.0.0/1:*", AL, "192.168.1.1", 80, NULL, SPEC, 0},
  {"a=0.0.0.0/0:* a=10.0.0.0/7:*", AL, "10.0.0.1", 80, NULL, SPEC, 0},
  /* host-name rules never unlock special space, whatever the name */
  {"a=api.example.com:443", AL, "8.8.8.8", 443, "api.example.com", OK, 1},
  {"a=api.example.com:443", AL, "10.0.0.1", 443, "api.example.com", SPEC, 0},
  {"a=api.example.com:443", AL, "100.64.0.1", 443, "api.example.com", SPEC, 0},
  {"a=api.example.com:443", AL, "192.0.2.1", 443, "api.example.com", SPEC, 0},
  {"a=api.example.com:443", AL, "240.0.0.1", 443, "api.example.com", SPEC, 0},
  {"a=api.example.com:443", AL, "fd00::1", 443, "api.example.com", SPEC, 0},
  {"a=api.example.com:443", AL, "fe80::1", 443, "api.example.com", SPEC, 0},
  {"a=api.example.com:443", AL, "::1", 443, "api.example.com", SPEC, 0},
  {"a=api.example.com:443", AL, "2001::1", 443, "api.example.com", SPEC, 0},
  {"a=api.example.com:443", AL, "2001:db8::1", 443, "api.example.com", SPEC, 0},
  {"a=api.example.com:443", AL, "64:ff9b:1::1", 443, "api.example.com", SPEC, 0},
  {"a=api.example.com:443", AL, "2606:4700::1", 443, "api.example.com", OK, 1},
  {"a=api.example.com:443", AL, "::ffff:8.8.8.8", 443, "api.example.com", OK, 1},
  {"a=api.example.com:443", AL, "64:ff9b::808:808", 443, "api.example.com", OK, 1},
  {"a=api.example.com:443", AL, "2002:808:808::", 443, "api.example.com", OK, 1},
  {"a=api.example.com:443", AL, "8.8.8.8", 443, NULL, NORULE, 0},
  {"a=api.example.com:443", AL, "8.8.8.8", 80, "api.example.com", NORULE, 0},
  {"a=api.example.com:443", AL, "10.0.0.1", 80, "api.example.com", NORULE, 0},
  {"a=localhost:* a=127.0.0.1:80", AL, "127.0.0.1", 80, "localhost", OK, 2},
  {"a=localhost:* a=127.0.0.1:80", AL, "127.0.0.1", 81, "localhost", SPEC, 0},
  /* IPv6 */
  {"a=[::/0]:*", AL, "::1", 80, NULL, SPEC, 0},
  {"a=[::/0]:*", AL, "fe80::1", 80, NULL, SPEC, 0},
  {"a=[::/0]:*", AL, "fd00::1", 80, NULL, SPEC, 0},
  {"a=[::/0]:*", AL, "fec0::1", 80, NULL, SPEC, 0},
  {"a=[::/0]:*", AL, "2001:db8::1", 80, NULL, SPEC, 0},
  {"a=[::/0]:*", AL, "100::1", 80, NULL, SPEC, 0},
  {"a=[::/0]:*", AL, "2001::1", 80, NULL, SPEC, 0},
  {"a=[::/0]:*", AL, "2001:0:4136:e378:8000:63bf:3fff:fdd2", 80, NULL, SPEC, 0},
  {"a=[::/0]:*", AL, "64:ff9b:1::a00:1", 80, NULL, SPEC, 0},
  {"a=[::/0]:*", AL, "2606:4700::1", 80, NULL, OK, 1},
  {"a=[::/0]:*", AL, "64:ff9b::808:808", 80, NULL, NORULE, 0},    /* checked as IPv4 */
  {"a=[::/0]:*", AL, "::ffff:8.8.8.8", 80, NULL, NORULE, 0},
  {"a=[::/0]:*", AL, "8.8.8.8", 80, NULL, NORULE, 0},
  {"a=[fe80::/10]:*", AL, "fe80::1", 80, NULL, OK, 1},
  {"a=[fe80::/9]:*", AL, "fec0::1", 80, NULL, OK, 1},
  {"a=[fc00::/7]:*", AL, "fd00::1", 80, NULL, OK, 1},
  {"a=[fc00::/6]:*", AL, "fe80::1", 80, NULL, OK, 1},
  {"a=[fc00::/6]:*", AL, "ff02::1", 80, NULL, NVR, 0},
  {"a=[f000::/4]:*", AL, "fd00::1", 80, NULL, OK, 1},
  {"a=[c000::/2]:*", AL, "fd00::1", 80, NULL, OK, 1},
  {"a=[8000::/1]:*", AL, "fd00::1", 80, NULL, OK, 1},
  {"a=[2001:db8::/32]:*", AL, "2001:db8::1", 80, NULL, OK, 1},
  {"a=[2001::/32]:*", AL, "2001::1", 80, NULL, OK, 1},
  {"a=[2001::/16]:*", AL, "2001::1", 80, NULL, SPEC, 0},
  {"a=[2001::/16]:*", AL, "2001:4860::1", 80, NULL, OK, 1},
  {"a=[::1]:9000", AL, "::1", 9000, NULL, OK, 1},
  {"a=[::1]:9000", AL, "::ffff:127.0.0.1", 9000, NULL, NORULE, 0},
  {"a=[::/127]:*", AL, "::1", 80, NULL, OK, 1},
  {"a=[::/8]:*", AL, "::1", 80, NULL, SPEC, 0},
  {"a=[::/1]:*", AL, "::1", 80, NULL, SPEC, 0},
  {"a=[::/1]:*", AL, "fd00::1", 80, NULL, NORULE, 0},
  {"a=[100::/64]:*", AL, "100::1", 80, NULL, OK, 1},
  {"a=[::ffff:0:0/96]:*", AL, "127.0.0.1", 80, NULL, SPEC, 0},
  {"a=[::ffff:0:0/96]:*", AL, "8.8.8.8", 80, NULL, OK, 1},
  {"a=[::ffff:0:0/96]:*", AL, "::ffff:8.8.8.8", 80, NULL, OK, 1},
  {"a=[2002::/16]:*", AL, "2002:a00:1::", 80, NULL, SPEC, 0},
  {"a=[2002::/16]:*", AL, "8.8.8.8", 80, NULL, OK, 1},
  {"a=[64:ff9b::/96]:*", AL, "64:ff9b::a00:1", 80, NULL, SPEC, 0},
  {"a=[64:ff9b::/96]:*", AL, "64:ff9b::808:808", 80, NULL, OK, 1},
  /* a rule holding an embedding prefix stands for every IPv4 address, public ones too */
  {"a=[64:ff9b::/95]:*", AL, "64:ff9b::1:0:1", 80, NULL, SPEC, 0},
  {"a=[::fffe:0:0/95]:*", AL, "::fffe:0:1", 80, NULL, SPEC, 0},
  {"a=[::fffe:0:0/96]:*", AL, "::fffe:0:1", 80, NULL, OK, 1},
  {"a=[2002::/15]:*", AL, "2003::1", 80, NULL, OK, 1},
  {"a=[2002::/15]:*", AL, "2002:a00:1::", 80, NULL, NORULE, 0},
  {"a=[2000::/3]:*", AL, "2606:4700::1", 80, NULL, OK, 1},
  {"a=[2000::/3]:*", AL, "2002:808:808::", 80, NULL, NORULE, 0},
  {"a=[2000::/3]:*", AL, "2001::1", 80, NULL, SPEC, 0},
  {"a=[2000::/3]:*", AL, "3fff::1", 80, NULL, SPEC, 0},
  /* listen rules follow the same rules as allow */
  {"l=127.0.0.1:7000", LI, "127.0.0.1", 7000, NULL, OK, 1},
  {"l=[::1]:7000", LI, "::1", 7000, NULL, OK, 1},
  {"l=localhost:7000", LI, "127.0.0.1", 7000, "localhost", SPEC, 0},
  {"l=0.0.0.0/0:7000", LI, "127.0.0.1", 7000, NULL, SPEC, 0},
  {"l=0.0.0.0/0:7000", LI, "8.8.8.8", 7000, NULL, OK, 1},
  {"l=127.0.0.1:7000", AL, "127.0.0.1", 7000, NULL, NORULE, 0},
  {"a=127.0.0.1:7000", LI, "127.0.0.1", 7000, NULL, NORULE, 0},
  {"a=1.1.1.1:1 l=1.1.1.1:2 a=1.1.1.1:* l=1.1.1.1:*", LI, "1.1.1.1", 3, NULL, OK, 2},
  {"a=1.1.1.1:1 l=1.1.1.1:2 a=1.1.1.1:* l=1.1.1.1:*", AL, "1.1.1.1", 3, NULL, OK, 2},
};

static const drow via_rows[] = {
  {"a=api.example.com:443", AL, "8.8.8.8", 443, "API.EXAMPLE.COM", OK, 1},
  {"a=api.example.com:443", AL, "8.8.8.8", 443, "api.example.com.", OK, 1},
  {"a=API.Example.Com.:443", AL, "8.8.8.8", 443, "api.example.com", OK, 1},
  {"a=api.example.com:443", AL, "8.8.8.8", 443, "api.example.com..", ARG, 0},
  {"a=api.example.com:443", AL, "8.8.8.8", 443, "api..example.com", ARG, 0},
  {"a=api.example.com:443", AL, "8.8.8.8", 443, "8.8.8.8", ARG, 0},
  {"a=api.example.com:443", AL, "8.8.8.8", 443, "::1", ARG, 0},
  {"a=api.example.com:443", AL, "8.8.8.8", 443, "", ARG, 0},
  {"a=api.example.com:443", AL, "8.8.8.8", 443, "api.example.com ", ARG, 0},
  {"a=api.example.com:443", AL, "8.8.8.8", 443, "*.example.com", ARG, 0},
  {"a=api.example.com:443", AL, "8.8.8.8", 443, "xapi.example.com", NORULE, 0},
  {"a=api.example.com:443", AL, "8.8.8.8", 443, "example.com", NORULE, 0},
  {"a=api.example.com:443", AL, "8.8.8.8", 443, "api.example.co", NORULE, 0},
  {"a=api.example.com:443", AL, "8.8.8.8", 443, "com", NORULE, 0},
  {"a=api.example.com:443", AL, "8.8.8.8", 443, "www.api.example.com", NORULE, 0},
  {"a=example.com:443", AL, "8.8.8.8", 443, "api.example.com", NORULE, 0},
  {"a=127.0.0.1.nip.io:80", AL, "127.0.0.1", 80, "127.0.0.1.nip.io", SPEC, 0},
  /* a malformed via_name refuses even where an IP rule would allow */
  {"a=0.0.0.0/0:*", AL, "8.8.8.8", 443, "bad..name", ARG, 0},
};

TEST(decisions_never) { run_rows(never_rows, COUNT(never_rows)); }
TEST(decisions_ports) { run_rows(port_rows, COUNT(port_rows)); }
TEST(decisions_deny) { run_rows(deny_rows, COUNT(deny_rows)); }
TEST(decisions_special) { run_rows(special_rows, COUNT(special_rows)); }
TEST(decisions_via) { run_rows(via_rows, COUNT(via_rows)); }

TEST(decisions_bad_arguments) {
  hc_netpolicy *p = mkpol("a=0.0.0.0/0:* d=1.1.1.1:*");
  hc_netaddr a, bad;
  hc_netverdict v = { -1, -1 };
  parse_ip("8.8.8.8", &a);
  CHECK(hc_netpolicy_decide(p, DE, &a, 80, NULL, &v) == EACCES && v.why == ARG);
  CHECK(hc_netpolicy_decide(p, 7, &a, 80, NULL, &v) == EACCES && v.why == ARG);
  CHECK(hc_netpolicy_decide(p, -1, &a, 80, NULL, &v) == EACCES && v.why == ARG);
  CHECK(hc_netpolicy_decide(NULL, AL, &a, 80, NULL, &v) == EACCES && v.why == ARG);
  CHECK(hc_netpolicy_decide(p, AL, NULL, 80, NULL, &v) == EACCES && v.why == ARG);
  CHECK(hc_netpolicy_check(NULL, AL, &a, 80, NULL) == EACCES);
  memset(&bad, 0, sizeof bad);
  bad.family = AF_UNIX;
  CHECK(hc_netpolicy_decide(p, AL, &bad, 80, NULL, &v) == EACCES && v.why == ARG);
  bad.family = 0;
  CHECK(hc_netpolicy_decide(p, AL, &bad, 80, NULL, &v) == EACCES && v.why == ARG);
  /* a too-long via name */
  char longname[400];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  CHECK(hc_netpolicy_decide(p, AL, &a, 80, longname, &v) == EACCES && v.why == ARG);
  /* an IPv4 address with junk past a[3] is still that IPv4 address */
  memset(&bad, 0xff, sizeof bad);
  bad.family = AF_INET;
  bad.a[0] = 8, bad.a[1] = 8, bad.a[2] = 8, bad.a[3] = 8;
  CHECK(hc_netpolicy_decide(p, AL, &bad, 80, NULL, &v) == 0 && v.why == OK);
  bad.a[0] = 1, bad.a[1] = 1, bad.a[2] = 1, bad.a[3] = 1;
  CHECK(hc_netpolicy_decide(p, AL, &bad, 80, NULL, &v) == EACCES && v.why == DENY);
  /* no verdict pointer */
  CHECK(hc_netpolicy_decide(p, AL, &a, 80, NULL, NULL) == 0);
  hc_netpolicy_free(p);
  /* the texts */
  CHECK_STREQ(hc_netpolicy_why_text(OK), "allowed");
  CHECK_STREQ(hc_netpolicy_why_text(NORULE), "no rule allows it");
  CHECK_STREQ(hc_netpolicy_why_text(DENY), "denied by a deny rule");
  CHECK_STREQ(hc_netpolicy_why_text(NVR), "unspecified, broadcast or multicast address");
  CHECK_STREQ(hc_netpolicy_why_text(PORT), "port 0 or out of range");
  CHECK_STREQ(hc_netpolicy_why_text(ARG), "bad argument");
  CHECK(strstr(hc_netpolicy_why_text(SPEC), "only an IP rule") != NULL);
  CHECK_STREQ(hc_netpolicy_why_text(99), "?");
  CHECK_STREQ(hc_netpolicy_why_text(-1), "?");
}

/* }===== */


/* {===== names sent to DNS ===== */

typedef struct nrow {
  int kind;
  const char *name;
  int port;
  int want;
} nrow;

#define NAME_POL                                                                           \
  "a=api.example.com:443 a=ws.example.com:8000-8999 a=all.example.com:* "                  \
  "d=bad.example.com:* a=bad.example.com:443 "                                             \
  "a=mixed.example.com:* d=mixed.example.com:1-79 d=mixed.example.com:81-65535 "          \
  "a=cover.example.com:80-90 d=cover.example.com:80-85 d=cover.example.com:84-90 "         \
  "a=part.example.com:80-90 d=part.example.com:80-85 d=part.example.com:87-90 "            \
  "l=svc.example.com:7000 d=svc2.example.com:* l=svc2.example.com:7000 "                   \
  "a=10.0.0.1:443 a=0.0.0.0/0:* a=[::/0]:* d=ipdenied.example.com:443 "                    \
  "a=ipdenied.example.com:443 a=localhost:80 d=10.0.0.0/8:*"

static const nrow name_rows[] = {
  {AL, "api.example.com", 443, 1}, {AL, "api.example.com", 80, 0}, {AL, "api.example.com", -1, 1},
  {AL, "API.Example.COM.", -1, 1}, {AL, "API.Example.COM.", 443, 1},
  {AL, "api.example.com..", -1, 0}, {AL, "api..example.com", -1, 0}, {AL, " api.example.com", -1, 0},
  {AL, "ws.example.com", 8000, 1}, {AL, "ws.example.com", 8999, 1}, {AL, "ws.example.com", 7999, 0},
  {AL, "ws.example.com", 9000, 0}, {AL, "ws.example.com", -1, 1},
  {AL, "all.example.com", 1, 1}, {AL, "all.example.com", 65535, 1}, {AL, "all.example.com", 0, 0},
  {AL, "all.example.com", 65536, 0}, {AL, "all.example.com", -2, 0},
  {AL, "all.example.com", INT_MIN, 0}, {AL, "all.example.com", INT_MAX, 0},
  {AL, "bad.example.com", 443, 0}, {AL, "bad.example.com", -1, 0}, {AL, "BAD.example.com.", -1, 0},
  {AL, "mixed.example.com", -1, 1}, {AL, "mixed.example.com", 80, 1},
  {AL, "mixed.example.com", 79, 0}, {AL, "mixed.example.com", 81, 0},
  {AL, "cover.example.com", -1, 0}, {AL, "cover.example.com", 86, 0},
  {AL, "cover.example.com", 80, 0}, {AL, "cover.example.com", 90, 0},
  {AL, "part.example.com", -1, 1}, {AL, "part.example.com", 86, 1},
  {AL, "part.example.com", 85, 0}, {AL, "part.example.com", 87, 0},
  {AL, "svc.example.com", -1, 0}, {LI, "svc.example.com", -1, 1}, {LI, "svc.example.com", 7000, 1},
  {LI, "svc.example.com", 7001, 0}, {LI, "svc2.example.com", -1, 0},
  {LI, "svc2.example.com", 7000, 0}, {LI, "api.example.com", -1, 0},
  {AL, "ipdenied.example.com", 443, 0}, {AL, "ipdenied.example.com", -1, 0},
  /* IP rules make no name resolvable; a deny by IP (10/8) is for the check, not for DNS */
  {AL, "unknown.example.com", -1, 0}, {AL, "unknown.example.com", 443, 0},
  {AL, "localhost", 80, 1}, {AL, "localhost", -1, 1},
  {AL, "example.com", -1, 0}, {AL, "com", -1, 0}, {AL, "www.api.example.com", -1, 0},
  /* not names */
  {AL, "10.0.0.1", 443, 0}, {AL, "10.0.0.1", -1, 0}, {AL, "::1", -1, 0}, {AL, "[::1]", -1, 0},
  {AL, "", -1, 0}, {AL, "*", -1, 0}, {AL, "*.example.com", -1, 0},
  /* kinds */
  {DE, "bad.example.com", -1, 0}, {DE, "api.example.com", -1, 0}, {7, "api.example.com", -1, 0},
};

TEST(names_allowed) {
  hc_netpolicy *p = mkpol(NAME_POL);
  for (size_t i = 0; i < COUNT(name_rows); i++) {
    const nrow *r = &name_rows[i];
    int got = hc_netpolicy_name_allowed(p, r->kind, r->name, r->port);
    if (!CHECK(got == r->want))
      fprintf(stderr, "  name_allowed(kind %d, \"%s\", %d) = %d, want %d\n", r->kind, r->name,
              r->port, got, r->want);
  }
  CHECK(hc_netpolicy_name_allowed(p, AL, NULL, -1) == 0);
  CHECK(hc_netpolicy_name_allowed(NULL, AL, "api.example.com", -1) == 0);
  hc_netpolicy *empty = hc_netpolicy_new();
  CHECK(hc_netpolicy_name_allowed(empty, AL, "api.example.com", -1) == 0);
  hc_netpolicy_free(empty);
  hc_netpolicy_free(p);
}

/* }===== */


/* {===== text and sockaddrs ===== */

TEST(format_and_sockaddr_round_trips) {
  static const char *const addrs[] = {
    "0.0.0.0", "127.0.0.1", "255.255.255.255", "8.8.8.8", "::", "::1", "::ffff:127.0.0.1",
    "::127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::", "fe80::1", "2001:db8::1",
    "1:2:3:4:5:6:7:8", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "1::2:0:0:3", "::2",
  };
  static const int ports[] = { 0, 1, 80, 443, 8080, 65535 };
  for (size_t i = 0; i < COUNT(addrs); i++) {
    hc_netaddr a, b;
    CHECK(parse_ip(addrs[i], &a) && strcmp(fmt(&a), addrs[i]) == 0);
    for (size_t k = 0; k < COUNT(ports); k++) {
      struct sockaddr_storage ss;
      socklen_t len = 12345;
      int port = -7;
      hc_netaddr_to_sockaddr(&a, ports[k], &ss, &len);
      int ok = ss.ss_family == a.family
               && len == (a.family == AF_INET ? sizeof(struct sockaddr_in)
                                              : sizeof(struct sockaddr_in6))
               && hc_netaddr_from_sockaddr((struct sockaddr *)&ss, len, &b, &port) == 0
               && hc_netaddr_equal(&a, &b) && port == ports[k];
      if (ok && a.family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, &ss, sizeof sin);
        char t[INET_ADDRSTRLEN];
        ok = ntohs(sin.sin_port) == ports[k]
             && inet_ntop(AF_INET, &sin.sin_addr, t, sizeof t) && strcmp(t, addrs[i]) == 0;
      } else if (ok) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, &ss, sizeof sin6);
        char t[INET6_ADDRSTRLEN];
        ok = ntohs(sin6.sin6_port) == ports[k] && sin6.sin6_scope_id == 0
             && sin6.sin6_flowinfo == 0
             && inet_ntop(AF_INET6, &sin6.sin6_addr, t, sizeof t) && strcmp(t, addrs[i]) == 0;
      }
      if (!CHECK(ok)) fprintf(stderr, "  %s port %d\n", addrs[i], ports[k]);
    }
  }
  /* out-of-range ports become 0; an unknown family gives an empty sockaddr */
  hc_netaddr a, b;
  struct sockaddr_storage ss;
  socklen_t len;
  int port;
  parse_ip("8.8.8.8", &a);
  hc_netaddr_to_sockaddr(&a, 70000, &ss, &len);
  CHECK(hc_netaddr_from_sockaddr((struct sockaddr *)&ss, len, &b, &port) == 0 && port == 0);
  hc_netaddr_to_sockaddr(&a, -1, &ss, &len);
  CHECK(hc_netaddr_from_sockaddr((struct sockaddr *)&ss, len, &b, &port) == 0 && port == 0);
  a.family = AF_UNIX;
  hc_netaddr_to_sockaddr(&a, 80, &ss, &len);
  CHECK(len == 0 && ss.ss_family == AF_UNSPEC);
  hc_netaddr_to_sockaddr(NULL, 80, &ss, &len);
  CHECK(len == 0 && ss.ss_family == AF_UNSPEC);
  /* from_sockaddr refuses short lengths and other families; port may be NULL */
  parse_ip("::1", &a);
  hc_netaddr_to_sockaddr(&a, 80, &ss, &len);
  CHECK(hc_netaddr_from_sockaddr((struct sockaddr *)&ss, len - 1, &b, &port) == -1);
  CHECK(hc_netaddr_from_sockaddr((struct sockaddr *)&ss, len, &b, NULL) == 0
        && hc_netaddr_equal(&a, &b));
  parse_ip("1.2.3.4", &a);
  hc_netaddr_to_sockaddr(&a, 80, &ss, &len);
  CHECK(hc_netaddr_from_sockaddr((struct sockaddr *)&ss, len - 1, &b, &port) == -1);
  CHECK(hc_netaddr_from_sockaddr((struct sockaddr *)&ss, 1, &b, &port) == -1);
  CHECK(hc_netaddr_from_sockaddr((struct sockaddr *)&ss, 0, &b, &port) == -1);
  CHECK(hc_netaddr_from_sockaddr(NULL, len, &b, &port) == -1);
  CHECK(hc_netaddr_from_sockaddr((struct sockaddr *)&ss, len, NULL, &port) == -1);
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  CHECK(hc_netaddr_from_sockaddr((struct sockaddr *)&sun, sizeof sun, &b, &port) == -1);
  /* format: truncation is terminated, cap 0 writes nothing, unknown family is "" */
  char t[64];
  parse_ip("127.0.0.1", &a);
  hc_netaddr_format(&a, t, 4);
  CHECK_STREQ(t, "127");
  hc_netaddr_format(&a, t, 1);
  CHECK_STREQ(t, "");
  t[0] = 'Z';
  hc_netaddr_format(&a, t, 0);
  CHECK(t[0] == 'Z');
  a.family = AF_UNIX;
  hc_netaddr_format(&a, t, sizeof t);
  CHECK_STREQ(t, "");
  hc_netaddr_format(NULL, t, sizeof t);
  CHECK_STREQ(t, "");
  /* the longest text fits HC_NETADDR_STRLEN */
  parse_ip("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", &a);
  hc_netaddr_format(&a, t, sizeof t);
  CHECK(strlen(t) < HC_NETADDR_STRLEN);
  parse_ip("::ffff:255.255.255.255", &a);
  hc_netaddr_format(&a, t, HC_NETADDR_STRLEN);
  CHECK_STREQ(t, "::ffff:255.255.255.255");
  /* equality */
  hc_netaddr x, y;
  parse_ip("1.2.3.4", &x);
  parse_ip("::ffff:1.2.3.4", &y);
  CHECK(!hc_netaddr_equal(&x, &y));
  parse_ip("0x01020304", &y);
  CHECK(hc_netaddr_equal(&x, &y));
}

/* }===== */


/* {===== differential: libc's parsers and a reference classifier ===== */

/* One in five strings gets one byte replaced, inserted or deleted, from `extra` or a digit. */
static void mutate(char *s, size_t cap, const char *extra) {
  size_t n = strlen(s), at;
  char c = (rnd() % 2) ? extra[rnd() % strlen(extra)] : (char)('0' + rnd() % 10);
  if (rnd() % 5 != 0 || n == 0) return;
  at = rnd() % n;
  switch (rnd() % 3) {
    case 0: s[at] = c; break;
    case 1:
      if (n + 2 <= cap) {
        memmove(s + at + 1, s + at, n - at + 1);
        s[at] = c;
      }
      break;
    default: memmove(s + at, s + at + 1, n - at); break;
  }
}

/* 1 to 4 parts, each decimal, octal or hex, of values at and around every limit. */
static void random_ipv4_text(char *s, size_t cap) {
  static const uint64_t edge[] = { 0, 1, 7, 8, 10, 127, 169, 254, 255, 256, 0xffff, 0x10000,
                                   0xffffff, 0x1000000, 0x7f000001, 0xa9fea9fe, 0xffffffffu,
                                   0x100000000u };
  int parts = 1 + (int)(rnd() % 4);
  size_t n = 0;
  s[0] = '\0';
  for (int i = 0; i < parts && n < cap; i++) {
    uint64_t v = (rnd() % 2) ? edge[rnd() % COUNT(edge)] : rnd() % (i == parts - 1 ? 70000 : 300);
    const char *zeros = (rnd() % 6 == 0) ? "000" : "";
    const char *dot = i + 1 < parts ? "." : "";
    int w;
    switch (rnd() % 4) {
      case 0: w = snprintf(s + n, cap - n, "0%s%llo%s", zeros, (unsigned long long)v, dot); break;
      case 1: w = snprintf(s + n, cap - n, "0x%s%llx%s", zeros, (unsigned long long)v, dot); break;
      case 2: w = snprintf(s + n, cap - n, "0X%s%llX%s", zeros, (unsigned long long)v, dot); break;
      default: w = snprintf(s + n, cap - n, "%llu%s", (unsigned long long)v, dot); break;
    }
    if (w < 0 || (size_t)w >= cap - n) break;
    n += (size_t)w;
  }
}

/* 0 to 9 groups of 1 to 5 hex digits, maybe one or two "::", maybe a dotted IPv4 tail. */
static void random_ipv6_text(char *s, size_t cap) {
  static const char hex[] = "0123456789abcdefABCDEF";
  int groups = (int)(rnd() % 10), gap = (rnd() % 3) ? (int)(rnd() % (groups + 1)) : -1;
  int gap2 = (rnd() % 20 == 0) ? (int)(rnd() % (groups + 1)) : -1;
  int dotted = rnd() % 4 == 0;
  size_t n = 0;
  s[0] = '\0';
  for (int i = 0; i <= groups && n + 48 < cap; i++) {
    if (i == gap || i == gap2) n += (size_t)snprintf(s + n, cap - n, "::");
    else if (i > 0 && (i < groups || dotted)) n += (size_t)snprintf(s + n, cap - n, ":");
    if (i == groups) {
      if (dotted) {
        static const int oct[] = { 0, 1, 10, 127, 255, 256 };
        const char *lead = (rnd() % 8 == 0) ? "0" : "";
        n += (size_t)snprintf(s + n, cap - n, "%s%d.%d.%d.%d", lead, oct[rnd() % 6],
                              oct[rnd() % 6], oct[rnd() % 6], oct[rnd() % 6]);
      }
      break;
    }
    int digits = 1 + (int)(rnd() % 4) + (rnd() % 16 == 0);
    for (int k = 0; k < digits; k++) s[n++] = hex[rnd() % (sizeof hex - 1)];
    s[n] = '\0';
  }
}

/* Random strings over the IPv4 alphabet: what we call IPv4 is exactly what inet_aton reads
** (when nothing follows a space, which inet_aton ignores and we refuse), and what we call a name
** no libc parser reads as an address. */
TEST(differential_ipv4_vs_inet_aton) {
  static const char alpha[] = "0123456789xXaAfF.......";
  int mismatch = 0, accepted = 0, names = 0;
  for (int n = 0; n < 60000; n++) {
    char s[96];
    if (rnd() % 2) {
      int len = 1 + (int)(rnd() % 18);
      for (int i = 0; i < len; i++) s[i] = alpha[rnd() % (sizeof alpha - 1)];
      s[len] = '\0';
    } else {
      random_ipv4_text(s, sizeof s);
    }
    mutate(s, sizeof s, " +-:g/%.0x9");
    hc_netaddr a;
    char name[HC_NET_NAME_MAX + 1];
    int rc = hc_net_parse_host(s, &a, name, sizeof name);
    struct in_addr ia;
    int aton = inet_aton(s, &ia);
    int mine = rc == HC_HOST_IP && a.family == AF_INET;
    int bad = 0;
    if (mine) bad = !aton || memcmp(&ia, a.a, 4) != 0;
    else if (aton && !strpbrk(s, " \t\n\v\f\r")) bad = 1;
    if (rc == HC_HOST_NAME) {
      struct addrinfo hints, *res = NULL;
      memset(&hints, 0, sizeof hints);
      hints.ai_flags = AI_NUMERICHOST;
      unsigned char b6[16];
      bad |= aton || inet_pton(AF_INET6, s, b6) == 1;
      if (getaddrinfo(s, NULL, &hints, &res) == 0) {
        bad = 1;
        freeaddrinfo(res);
      }
      names++;
    }
    accepted += mine;
    if (bad && mismatch++ < 10)
      fprintf(stderr, "  \"%s\": ours rc %d %s, inet_aton %d\n", s, rc, mine ? fmt(&a) : "",
              aton);
  }
  CHECK(mismatch == 0);
  CHECK(accepted > 10000);   /* the run is not vacuous */
  CHECK(names > 4000);
}

/* IPv6 text: ours and inet_pton agree on every string, byte for byte; brackets change nothing. */
TEST(differential_ipv6_vs_inet_pton) {
  int mismatch = 0, accepted = 0;
  for (int n = 0; n < 60000; n++) {
    char s[128], br[140];
    random_ipv6_text(s, sizeof s);
    mutate(s, sizeof s, ":.0fF%g ");
    hc_netaddr a, b;
    unsigned char b6[16];
    int rc = hc_net_parse_host(s, &a, NULL, 0);
    int mine = rc == HC_HOST_IP && a.family == AF_INET6;
    int pton = inet_pton(AF_INET6, s, b6) == 1;
    int bad = mine != pton || (mine && memcmp(a.a, b6, 16) != 0);
    snprintf(br, sizeof br, "[%s]", s);
    int rcb = hc_net_parse_host(br, &b, NULL, 0);
    bad |= mine ? !(rcb == HC_HOST_IP && hc_netaddr_equal(&a, &b)) : rcb != -1;
    accepted += mine;
    if (bad && mismatch++ < 10)
      fprintf(stderr, "  \"%s\": ours %d, inet_pton %d\n", s, mine, pton);
  }
  CHECK(mismatch == 0);
  CHECK(accepted > 15000);
}

/* Our text is inet_ntop's, and it parses back to the same address. */
TEST(differential_format_vs_inet_ntop) {
  int mismatch = 0;
  for (int n = 0; n < 60000; n++) {
    hc_netaddr a, b;
    char ours[HC_NETADDR_STRLEN], libc[INET6_ADDRSTRLEN];
    memset(&a, 0, sizeof a);
    a.family = (rnd() % 4) ? AF_INET6 : AF_INET;
    for (int i = 0; i < 8; i++) {
      uint32_t r = rnd() % 8, w = r < 4 ? 0 : r == 4 ? 1 : r == 5 ? 0xffff : rnd() & 0xffff;
      a.a[2 * i] = (uint8_t)(w >> 8);
      a.a[2 * i + 1] = (uint8_t)w;
    }
    if (a.family == AF_INET) memset(a.a + 4, 0, 12);
    hc_netaddr_format(&a, ours, sizeof ours);
    inet_ntop(a.family, a.a, libc, sizeof libc);
    int bad = strcmp(ours, libc) != 0 || !parse_ip(ours, &b) || !hc_netaddr_equal(&a, &b);
    if (bad && mismatch++ < 10) fprintf(stderr, "  ours \"%s\" libc \"%s\"\n", ours, libc);
  }
  CHECK(mismatch == 0);
}

/* The reference classifier: IPv4 special space as numeric ranges, written independently. */
typedef struct vrange {
  uint32_t lo, hi;
  int cls;
} vrange;

static const vrange ref_v4[] = {   /* sorted, disjoint; everything else is public */
  {0x00000000u, 0x00ffffffu, NEVER},    {0x0a000000u, 0x0affffffu, PRIV},
  {0x64400000u, 0x647fffffu, PRIV},     {0x7f000000u, 0x7fffffffu, LOOP},
  {0xa9fe0000u, 0xa9feffffu, LL},       {0xac100000u, 0xac1fffffu, PRIV},
  {0xc0000000u, 0xc00000ffu, RES},      {0xc0000200u, 0xc00002ffu, RES},
  {0xc0586300u, 0xc05863ffu, RES},      {0xc0a80000u, 0xc0a8ffffu, PRIV},
  {0xc6120000u, 0xc613ffffu, RES},      {0xc6336400u, 0xc63364ffu, RES},
  {0xcb007100u, 0xcb0071ffu, RES},      {0xe0000000u, 0xefffffffu, NEVER},
  {0xf0000000u, 0xfffffffeu, RES},      {0xffffffffu, 0xffffffffu, NEVER},
};

static int ref_class(uint32_t x) {
  for (size_t i = 0; i < COUNT(ref_v4); i++)
    if (x >= ref_v4[i].lo && x <= ref_v4[i].hi) return ref_v4[i].cls;
  return PUB;
}

/* Is every address of lo..hi special (covered by the union of the special ranges)? */
static int ref_all_special(uint32_t lo, uint32_t hi) {
  uint64_t at = lo;
  for (size_t i = 0; i < COUNT(ref_v4) && at <= hi; i++) {
    if (ref_v4[i].hi < at) continue;
    if (ref_v4[i].lo > at) return 0;
    at = (uint64_t)ref_v4[i].hi + 1;
  }
  return at > hi;
}

/* A random IPv4 address, half the time near the edge of a special range. */
static uint32_t rnd_v4(void) {
  if (rnd() % 2) return rnd();
  const vrange *r = &ref_v4[rnd() % COUNT(ref_v4)];
  uint32_t d = rnd() % 4;
  switch (rnd() % 4) {
    case 0: return r->lo + d;
    case 1: return r->lo - 1 - d;
    case 2: return r->hi - d;
    default: return r->hi + 1 + d;
  }
}

TEST(reference_classes) {
  int mismatch = 0;
  for (int n = 0; n < 200000; n++) {
    uint32_t x = rnd_v4();
    hc_netaddr a = v4(x), e;
    int want = ref_class(x);
    int bad = hc_netaddr_class(&a) != want;
    for (int how = 0; how < 4; how++) {
      hc_netaddr w = wrap(x, how);
      int has = hc_netaddr_effective_v4(&w, &e);
      /* ::0.0.0.0 and ::0.0.0.1 are :: and ::1, not IPv4-compatible */
      if (how == 1 && x <= 1) {
        bad |= has || hc_netaddr_class(&w) != (x == 0 ? NEVER : LOOP);
        continue;
      }
      bad |= !has || !hc_netaddr_equal(&e, &a) || hc_netaddr_class(&w) != want;
    }
    if (bad && mismatch++ < 10) fprintf(stderr, "  %s: want class %d\n", fmt(&a), want);
  }
  CHECK(mismatch == 0);
}

/* Random IPv4 CIDR rules: an address inside is allowed iff it is public or the whole rule lies
** in special space (by the reference), never if it is unspecified/broadcast/multicast; every
** IPv6 wrapping of it gets the same verdict. */
TEST(reference_cidr_unlocking) {
  int mismatch = 0, unlocked = 0, refused_special = 0;
  for (int n = 0; n < 4000; n++) {
    uint32_t base = rnd_v4();
    int len = (int)(rnd() % 33);
    if (rnd() % 2) len = 8 + (int)(rnd() % 25);
    uint32_t mask = len ? 0xffffffffu << (32 - len) : 0;
    uint32_t lo = base & mask, hi = lo | ~mask;
    char rule[64];
    snprintf(rule, sizeof rule, "%u.%u.%u.%u/%d:*", lo >> 24, (lo >> 16) & 255, (lo >> 8) & 255,
             lo & 255, len);
    hc_netpolicy *p = hc_netpolicy_new();
    char err[128];
    if (hc_netpolicy_add(p, AL, rule, err, sizeof err) != 0) {
      if (mismatch++ < 10) fprintf(stderr, "  rule %s refused: %s\n", rule, err);
      hc_netpolicy_free(p);
      continue;
    }
    int all = ref_all_special(lo, hi);
    for (int k = 0; k < 24; k++) {
      uint32_t x = k == 0 ? lo : k == 1 ? hi : lo + (uint32_t)(((uint64_t)rnd() << 32 | rnd()) %
                                                                ((uint64_t)hi - lo + 1));
      if (k >= 2 && k < 12) {          /* aim at special ranges inside the rule */
        const vrange *r = &ref_v4[rnd() % COUNT(ref_v4)];
        if (r->lo >= lo && r->lo <= hi) x = r->lo + (rnd() % 3 < 2 ? 0 : (rnd() % 256));
        if (x > hi || x < lo) x = lo;
      }
      int cls = ref_class(x);
      int want = cls == NEVER ? NVR : (cls == PUB || all) ? OK : SPEC;
      hc_netaddr a = v4(x);
      hc_netverdict v;
      hc_netpolicy_decide(p, AL, &a, 443, NULL, &v);
      int bad = v.why != want;
      for (int how = 0; how < 4; how++) {
        if (how == 1 && x <= 1) continue;
        hc_netaddr w = wrap(x, how);
        hc_netverdict vw;
        hc_netpolicy_decide(p, AL, &w, 443, NULL, &vw);
        bad |= vw.why != want;
      }
      unlocked += want == OK && cls != PUB;
      refused_special += want == SPEC;
      if (bad && mismatch++ < 10)
        fprintf(stderr, "  rule %s addr %s: why %d want %d\n", rule, fmt(&a), v.why, want);
    }
    hc_netpolicy_free(p);
  }
  CHECK(mismatch == 0);
  CHECK(unlocked > 1000);
  CHECK(refused_special > 1000);
}

/* Random names: ours accepts exactly the names a plain reference accepts, lowercased. */
static int ref_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n && s[n - 1] == '.') n--;
  if (n == 0 || n > 253) return 0;
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && s[i] != '.') continue;
    size_t len = i - start;
    if (len < 1 || len > 63 || s[start] == '-' || s[i - 1] == '-') return 0;
    for (size_t k = start; k < i; k++) {
      char c = s[k];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_'))
        return 0;
    }
    if (i == n) {   /* the last label: not numeric-looking */
      int digits = 1;
      for (size_t k = start; k < i; k++) digits &= s[k] >= '0' && s[k] <= '9';
      if (digits || (len >= 2 && s[start] == '0' && (s[start + 1] | 0x20) == 'x')) return 0;
    }
    start = i + 1;
  }
  return 1;
}

TEST(reference_names) {
  static const char alpha[] = "abZ09x-_..";
  int mismatch = 0, names = 0;
  for (int n = 0; n < 60000; n++) {
    char s[16], name[HC_NET_NAME_MAX + 1];
    int len = 1 + (int)(rnd() % 12);
    for (int i = 0; i < len; i++) s[i] = alpha[rnd() % (sizeof alpha - 1)];
    s[len] = '\0';
    int rc = hc_net_parse_host(s, NULL, name, sizeof name);
    int bad;
    if (rc == HC_HOST_IP) {
      struct in_addr ia;
      bad = inet_aton(s, &ia) != 1;
    } else {
      bad = (rc == HC_HOST_NAME) != ref_name_ok(s);
    }
    if (rc == HC_HOST_NAME) {
      names++;
      size_t k = strlen(s) - (s[strlen(s) - 1] == '.');
      bad |= strlen(name) != k;
      for (size_t i = 0; i < k && !bad; i++)
        bad |= name[i] != ((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
    }
    if (bad && mismatch++ < 10) fprintf(stderr, "  \"%s\": rc %d\n", s, rc);
  }
  CHECK(mismatch == 0);
  CHECK(names > 5000);
}

/* }===== */


/* HC_NET_ANY_PORT (net.resolve): allowed when some port is; deny only wins where it covers every
** port the allow rules give; special space still needs an IP rule inside it. */
TEST(decisions_any_port) {
  static const drow rows[] = {
    {"a=example.com:443", AL, "93.184.216.34", -1, "example.com", OK, 1},
    {"a=example.com:443", AL, "93.184.216.34", -1, NULL, NORULE, 0},
    {"a=example.com:443", AL, "127.0.0.1", -1, "example.com", SPEC, 0},
    {"a=example.com:443", AL, "::ffff:10.0.0.1", -1, "example.com", SPEC, 0},
    {"a=example.com:443 d=93.184.216.0/24:443", AL, "93.184.216.34", -1, "example.com", DENY, 0},
    {"a=example.com:80-443 d=93.184.216.0/24:80-442", AL, "93.184.216.34", -1, "example.com", OK, 1},
    {"a=example.com:80-443 d=93.184.216.0/24:80-200 d=example.com:201-443", AL, "93.184.216.34", -1,
     "example.com", DENY, 0},
    {"a=example.com:* d=example.com:*", AL, "93.184.216.34", -1, "example.com", DENY, 0},
    {"a=127.0.0.1:8080", AL, "127.0.0.1", -1, NULL, OK, 1},
    {"a=127.0.0.1:8080", AL, "127.0.0.1", -1, "localhost", OK, 1},
    {"a=localhost:*", AL, "127.0.0.1", -1, "localhost", SPEC, 0},
    {"a=0.0.0.0/0:*", AL, "169.254.169.254", -1, NULL, SPEC, 0},
    {"a=224.0.0.1:*", AL, "224.0.0.1", -1, NULL, NVR, 0},
    {"l=127.0.0.1:7000", AL, "127.0.0.1", -1, NULL, NORULE, 0},
    {"l=127.0.0.1:7000", LI, "127.0.0.1", -1, NULL, OK, 1},
  };
  run_rows(rows, sizeof rows / sizeof *rows);
  hc_netpolicy *p = mkpol("a=1.2.3.4:80");
  hc_netaddr a;
  CHECK(parse_ip("1.2.3.4", &a));
  CHECK(hc_netpolicy_check(p, AL, &a, -2, NULL) == EACCES);   /* only -1 means "any" */
  CHECK(hc_netpolicy_check(p, AL, &a, 0, NULL) == EACCES);
  hc_netpolicy_free(p);
}

/* What an http rule's reach still obeys: never-reachable addresses and net.deny, nothing else. */
TEST(denied_only) {
  hc_netpolicy *p = mkpol("d=10.1.0.0/16:* d=evil.example:443 a=8.8.8.8:53");
  hc_netaddr a;
  CHECK(parse_ip("10.1.2.3", &a) && hc_netpolicy_denied(p, &a, 80, NULL) == 1);
  CHECK(parse_ip("::ffff:10.1.2.3", &a) && hc_netpolicy_denied(p, &a, 80, NULL) == 1);
  CHECK(parse_ip("10.2.0.1", &a) && hc_netpolicy_denied(p, &a, 80, NULL) == 0);   /* no allow needed */
  CHECK(parse_ip("93.184.216.34", &a) && hc_netpolicy_denied(p, &a, 443, "EVIL.example.") == 1);
  CHECK(hc_netpolicy_denied(p, &a, 80, "evil.example") == 0);
  CHECK(parse_ip("224.0.0.1", &a) && hc_netpolicy_denied(p, &a, 80, NULL) == 1);
  CHECK(parse_ip("1.2.3.4", &a) && hc_netpolicy_denied(p, &a, 0, NULL) == 1);
  CHECK(hc_netpolicy_denied(NULL, &a, 80, NULL) == 0);
  CHECK(hc_netpolicy_count(p, DE) == 2 && hc_netpolicy_count(p, AL) == 1 && hc_netpolicy_count(NULL, AL) == 0);
  hc_netpolicy_free(p);
}

int main(void) {
  RUN(forms_parse_and_classify);
  RUN(forms_refused_under_name_and_broad_rules);
  RUN(forms_allowed_when_named_by_ip);
  RUN(host_strings);
  RUN(host_ipv4_padding_is_zero);
  RUN(host_name_lengths);
  RUN(classes);
  RUN(rules_accepted);
  RUN(rules_long_names);
  RUN(rules_refused);
  RUN(rules_limit);
  RUN(decisions_never);
  RUN(decisions_ports);
  RUN(decisions_deny);
  RUN(decisions_special);
  RUN(decisions_via);
  RUN(decisions_bad_arguments);
  RUN(decisions_any_port);
  RUN(denied_only);
  RUN(names_allowed);
  RUN(format_and_sockaddr_round_trips);
  RUN(differential_ipv4_vs_inet_aton);
  RUN(differential_ipv6_vs_inet_pton);
  RUN(differential_format_vs_inet_ntop);
  RUN(reference_classes);
  RUN(reference_cidr_unlocking);
  RUN(reference_names);
  return tu_summary();
}
