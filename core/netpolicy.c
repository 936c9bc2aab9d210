/*
** netpolicy.c: a tenant's network policy: host strings, rules, address classes, the decision.
**
** Everything here is parsing and matching on bytes: no resolver, no locale (ctype is not used,
** so a tenant's locale cannot change what a letter is), no allocation on the check path. The
** rules a decision needs (special-only ranges, canonical names) are computed once, when a rule is
** added. docs/network-policy.md is the design; CONTRACT.md section 6 the contract.
*/
#include "netpolicy.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PORT_MAX        65535
#define DEC_DIGITS_MAX  10        /* a decimal field longer than this is refused, not overflowed */
#define SHOW_MAX        100       /* bytes of a rule quoted in a message (as the policy loader) */
#define RULES_INITIAL   8

typedef struct netrule {
  int kind;                       /* HC_NETRULE_* */
  int index;                      /* 1-based among the rules of its kind, in the order added */
  int is_name;                    /* a host-name rule (name), else an IP/CIDR rule */
  int family;                     /* IP rules: AF_INET or AF_INET6, after canonicalisation */
  int prefix;                     /* IP rules: 0..32 or 0..128 */
  int special_only;               /* IP rules: the range holds no public address */
  int lo, hi;                     /* ports, 1 <= lo <= hi <= 65535 */
  uint8_t a[16];                  /* IP rules: the network, host bits zero */
  char name[HC_NET_NAME_MAX + 1]; /* name rules: canonical */
} netrule;

struct hc_netpolicy {
  netrule *r;
  size_t n, cap;
  int count[3];                   /* rules added per kind, for netrule.index */
};


/* {===== bytes and prefixes ===== */

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static int hex_value(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int to_lower(int c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }

static int family_bits(int family) { return family == AF_INET ? 32 : 128; }

/* Do the first `bits` bits of x equal those of net? */
static int in_prefix(const uint8_t *x, const uint8_t *net, int bits) {
  int full = bits / 8, rest = bits % 8;
  if (full > 0 && memcmp(x, net, (size_t)full) != 0) return 0;
  if (rest == 0) return 1;
  unsigned mask = (0xffu << (8 - rest)) & 0xffu;
  return ((x[full] ^ net[full]) & mask) == 0;
}

static int bit_at(const uint8_t *a, int i) { return (a[i / 8] >> (7 - i % 8)) & 1; }

static int host_bits_zero(const uint8_t *a, int bits, int total) {
  for (int i = bits; i < total; i++)
    if (bit_at(a, i)) return 0;
  return 1;
}

static void clear_host_bits(uint8_t *a, int bits, int total) {
  for (int i = bits; i < total; i++)
    a[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
}

/* A strict decimal: 1..DEC_DIGITS_MAX digits, no sign, no leading zero (but "0"), <= max. */
static int parse_dec(const char *s, size_t n, uint32_t max, uint32_t *out) {
  uint64_t v = 0;
  if (n == 0 || n > DEC_DIGITS_MAX || (n > 1 && s[0] == '0')) return -1;
  for (size_t i = 0; i < n; i++) {
    if (!is_digit((unsigned char)s[i])) return -1;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (v > max) return -1;
  *out = (uint32_t)v;
  return 0;
}

/* }===== */


/* {===== special ranges =====
** One table per family; an address's class is that of the longest prefix containing it. The
** /0 entries say what nothing else names: IPv4 is public by default; IPv6 is public only inside
** 2000::/3 (global unicast), the rest of its space being unassigned or special.
*/

typedef struct special {
  uint8_t a[16];
  uint8_t len;
  uint8_t cls;
} special;

static const special v4_special[] = {
  { {0, 0, 0, 0}, 0, HC_ADDR_PUBLIC },
  { {0, 0, 0, 0}, 8, HC_ADDR_NEVER },          /* "this network": 0.0.0.0 reaches the host */
  { {10, 0, 0, 0}, 8, HC_ADDR_PRIVATE },
  { {100, 64, 0, 0}, 10, HC_ADDR_PRIVATE },    /* CGNAT shared space */
  { {127, 0, 0, 0}, 8, HC_ADDR_LOOPBACK },
  { {169, 254, 0, 0}, 16, HC_ADDR_LINKLOCAL }, /* cloud metadata 169.254.169.254 included */
  { {172, 16, 0, 0}, 12, HC_ADDR_PRIVATE },
  { {192, 0, 0, 0}, 24, HC_ADDR_RESERVED },    /* IETF protocol assignments */
  { {192, 0, 2, 0}, 24, HC_ADDR_RESERVED },    /* TEST-NET-1 */
  { {192, 88, 99, 0}, 24, HC_ADDR_RESERVED },  /* deprecated 6to4 relay anycast */
  { {192, 168, 0, 0}, 16, HC_ADDR_PRIVATE },
  { {198, 18, 0, 0}, 15, HC_ADDR_RESERVED },   /* benchmarking */
  { {198, 51, 100, 0}, 24, HC_ADDR_RESERVED }, /* TEST-NET-2 */
  { {203, 0, 113, 0}, 24, HC_ADDR_RESERVED },  /* TEST-NET-3 */
  { {224, 0, 0, 0}, 4, HC_ADDR_NEVER },        /* multicast */
  { {240, 0, 0, 0}, 4, HC_ADDR_RESERVED },     /* future use */
  { {255, 255, 255, 255}, 32, HC_ADDR_NEVER }, /* limited broadcast */
};

static const special v6_special[] = {
  { {0}, 0, HC_ADDR_RESERVED },
  { {0x20}, 3, HC_ADDR_PUBLIC },               /* 2000::/3 global unicast */
  { {0}, 128, HC_ADDR_NEVER },                 /* :: */
  { {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, HC_ADDR_LOOPBACK },
  { {0x01, 0x00}, 64, HC_ADDR_RESERVED },      /* 100::/64 discard-only */
  { {0x20, 0x01, 0x00, 0x00}, 23, HC_ADDR_RESERVED },  /* IETF protocol assignments, Teredo
                                                          2001::/32 (an obfuscated IPv4) too */
  { {0x20, 0x01, 0x0d, 0xb8}, 32, HC_ADDR_RESERVED },  /* documentation */
  { {0x3f, 0xff}, 20, HC_ADDR_RESERVED },      /* documentation (RFC 9637) */
  { {0xfc}, 7, HC_ADDR_PRIVATE },              /* unique local */
  { {0xfe, 0x80}, 10, HC_ADDR_LINKLOCAL },
  { {0xfe, 0xc0}, 10, HC_ADDR_PRIVATE },       /* deprecated site-local */
  { {0xff}, 8, HC_ADDR_NEVER },                /* multicast */
};

#define N_V4_SPECIAL (sizeof v4_special / sizeof v4_special[0])
#define N_V6_SPECIAL (sizeof v6_special / sizeof v6_special[0])

/* Prefixes that embed an IPv4 address right after them (byte len / 8): the address is checked
** as that IPv4, because that is where the packets end up (the kernel for mapped, a translator
** or relay for the others). */
typedef struct embedding {
  uint8_t a[16];
  uint8_t len;
} embedding;

#define EMBED_COMPAT 1            /* index of ::/96, which excludes :: and ::1 */

static const embedding embeddings[] = {
  { {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96 },  /* IPv4-mapped */
  { {0}, 96 },                                         /* IPv4-compatible (deprecated) */
  { {0x00, 0x64, 0xff, 0x9b}, 96 },                    /* NAT64 well-known prefix */
  { {0x20, 0x02}, 16 },                                /* 6to4 */
};

#define N_EMBEDDINGS (sizeof embeddings / sizeof embeddings[0])

static int table_class(const special *t, size_t n, const uint8_t *a) {
  int best = -1, cls = HC_ADDR_NEVER;
  for (size_t i = 0; i < n; i++)
    if ((int)t[i].len > best && in_prefix(a, t[i].a, t[i].len)) {
      best = t[i].len;
      cls = t[i].cls;
    }
  return cls;
}

/* Does the IPv6 range a/p lie within {::, ::1}? Those two are not IPv4-compatible addresses. */
static int within_any_or_loopback(const uint8_t *a, int p) {
  for (int i = 0; i < 15; i++)
    if (a[i]) return 0;
  return p >= 127 && a[15] <= 1;
}

/* Does the IPv6 range a/p lie inside a prefix embedding an IPv4? Then v4[0..3] / *p4 is the
** IPv4 range it stands for (a 6to4 range longer than /48 stands for one whole IPv4 address). */
static int embedded_range(const uint8_t *a, int p, uint8_t v4[4], int *p4) {
  for (size_t i = 0; i < N_EMBEDDINGS; i++) {
    const embedding *e = &embeddings[i];
    if (p < e->len || !in_prefix(a, e->a, e->len)) continue;
    if (i == EMBED_COMPAT && within_any_or_loopback(a, p)) continue;
    memcpy(v4, a + e->len / 8, 4);
    *p4 = p - e->len > 32 ? 32 : p - e->len;
    return 1;
  }
  return 0;
}

/* Does the IPv6 range a/p contain a whole embedding prefix (so every IPv4, public ones too)? */
static int covers_embedding(const uint8_t *a, int p) {
  for (size_t i = 0; i < N_EMBEDDINGS; i++)
    if (p <= embeddings[i].len && in_prefix(embeddings[i].a, a, p)) return 1;
  return 0;
}

/* Is every address of the range a/p (host bits zero) non-public? The range is split in halves
** only where a more specific entry lies inside it, so this visits a few nodes per table entry;
** it runs once per rule, when the rule is added. */
static int all_special(int family, const uint8_t *a, int p) {
  const special *t = family == AF_INET ? v4_special : v6_special;
  size_t nt = family == AF_INET ? N_V4_SPECIAL : N_V6_SPECIAL;
  int best = -1, cls = HC_ADDR_NEVER, inner = 0;
  if (family == AF_INET6) {
    uint8_t v4[16] = {0};
    int p4;
    if (covers_embedding(a, p)) return 0;
    if (embedded_range(a, p, v4, &p4)) return all_special(AF_INET, v4, p4);
  }
  for (size_t i = 0; i < nt; i++) {
    if (t[i].len <= p) {
      if ((int)t[i].len > best && in_prefix(a, t[i].a, t[i].len)) {
        best = t[i].len;
        cls = t[i].cls;
      }
    } else if (in_prefix(t[i].a, a, p)) {
      inner = 1;
    }
  }
  if (!inner) return cls != HC_ADDR_PUBLIC;
  uint8_t b[16];
  memcpy(b, a, 16);
  b[p / 8] |= (uint8_t)(0x80u >> (p % 8));
  return all_special(family, a, p + 1) && all_special(family, b, p + 1);
}

int hc_netaddr_effective_v4(const hc_netaddr *a, hc_netaddr *v4) {
  hc_netaddr out;
  int p4;
  if (!a || !v4) return 0;
  memset(&out, 0, sizeof out);
  out.family = AF_INET;
  if (a->family == AF_INET) memcpy(out.a, a->a, 4);
  else if (a->family != AF_INET6 || !embedded_range(a->a, 128, out.a, &p4)) return 0;
  *v4 = out;
  return 1;
}

/* The class of an address that is already effective (no embedded IPv4 left to extract). */
static int effective_class(const hc_netaddr *e) {
  if (e->family == AF_INET) return table_class(v4_special, N_V4_SPECIAL, e->a);
  if (e->family == AF_INET6) return table_class(v6_special, N_V6_SPECIAL, e->a);
  return HC_ADDR_NEVER;
}

/* The address a check is made on: the embedded IPv4 if any, else the address. -1: no family. */
static int effective(const hc_netaddr *a, hc_netaddr *e) {
  if (hc_netaddr_effective_v4(a, e)) return 0;
  if (a->family != AF_INET6) return -1;
  *e = *a;
  return 0;
}

int hc_netaddr_class(const hc_netaddr *a) {
  hc_netaddr e;
  if (!a || effective(a, &e) != 0) return HC_ADDR_NEVER;
  return effective_class(&e);
}

int hc_netaddr_equal(const hc_netaddr *x, const hc_netaddr *y) {
  if (x->family != y->family) return 0;
  if (x->family == AF_INET) return memcmp(x->a, y->a, 4) == 0;
  return x->family == AF_INET6 && memcmp(x->a, y->a, 16) == 0;
}

/* }===== */


/* {===== parsing addresses and names ===== */

/* IPv4 as inet_aton reads it: 1 to 4 parts separated by dots, each decimal, octal (leading 0)
** or hex (0x); the last part fills the remaining bytes. Nothing may follow (inet_aton ignores
** what comes after a space; we refuse it), no part may be empty, "0x" needs a hex digit. */
static int parse_ipv4_any(const char *s, size_t n, uint8_t out[4]) {
  uint32_t part[4];
  int np = 0;
  size_t i = 0;
  for (;;) {
    uint64_t v = 0;
    unsigned base = 10;
    size_t start;
    if (np == 4 || i >= n || !is_digit((unsigned char)s[i])) return -1;
    if (s[i] == '0' && i + 1 < n && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
      base = 16;
      i += 2;
    } else if (s[i] == '0') {
      base = 8;
    }
    start = i;
    for (; i < n && s[i] != '.'; i++) {
      int d = hex_value((unsigned char)s[i]);
      if (d < 0 || (unsigned)d >= base) return -1;
      v = v * base + (unsigned)d;
      if (v > 0xffffffffu) return -1;   /* checked at each digit: never overflows */
    }
    if (i == start) return -1;
    part[np++] = (uint32_t)v;
    if (i == n) break;
    i++;                                 /* the dot; a trailing one leaves an empty part */
  }
  uint32_t v = part[np - 1];
  static const uint32_t last_max[4] = { 0xffffffffu, 0xffffffu, 0xffffu, 0xffu };
  if (v > last_max[np - 1]) return -1;
  for (int k = 0; k < np - 1; k++) {
    if (part[k] > 0xff) return -1;
    v |= part[k] << (24 - 8 * k);
  }
  out[0] = (uint8_t)(v >> 24);
  out[1] = (uint8_t)(v >> 16);
  out[2] = (uint8_t)(v >> 8);
  out[3] = (uint8_t)v;
  return 0;
}

/* IPv4 as a rule, or inside IPv6 text, must write it: four decimal octets, no leading zeros. */
static int parse_ipv4_strict(const char *s, size_t n, uint8_t out[4]) {
  size_t i = 0;
  for (int k = 0; k < 4; k++) {
    size_t j = i;
    uint32_t v;
    while (j < n && s[j] != '.') j++;
    if ((k < 3) != (j < n)) return -1;   /* three dots, the last octet ends the text */
    if (parse_dec(s + i, j - i, 255, &v) != 0) return -1;
    out[k] = (uint8_t)v;
    i = j + 1;
  }
  return 0;
}

/* IPv6 text as inet_pton reads it: 8 groups of 1-4 hex digits, one "::" standing for at least
** one zero group, an optional dotted IPv4 for the last two groups. No zone id, no brackets. */
static int parse_ipv6(const char *s, size_t n, uint8_t out[16]) {
  uint16_t w[8];
  int nw = 0, gap = -1;
  size_t i = 0;
  if (n >= 2 && s[0] == ':' && s[1] == ':') {
    gap = 0;
    i = 2;
  }
  while (i < n) {
    size_t j = i;
    uint32_t v = 0;
    while (j < n && hex_value((unsigned char)s[j]) >= 0) j++;
    if (j < n && s[j] == '.') {          /* a dotted IPv4 ends the address */
      uint8_t v4[4];
      if (nw > 6 || parse_ipv4_strict(s + i, n - i, v4) != 0) return -1;
      w[nw++] = (uint16_t)(v4[0] << 8 | v4[1]);
      w[nw++] = (uint16_t)(v4[2] << 8 | v4[3]);
      i = n;
      break;
    }
    if (j == i || j - i > 4 || nw == 8) return -1;
    for (size_t k = i; k < j; k++) v = v << 4 | (uint32_t)hex_value((unsigned char)s[k]);
    w[nw++] = (uint16_t)v;
    i = j;
    if (i == n) break;
    if (s[i] != ':') return -1;
    i++;
    if (i < n && s[i] == ':') {
      if (gap >= 0) return -1;
      gap = nw;
      i++;
    } else if (i == n) {
      return -1;                         /* a single trailing colon */
    }
  }
  if (gap >= 0) {
    if (nw > 7) return -1;
    int tail = nw - gap;
    memmove(w + 8 - tail, w + gap, (size_t)tail * sizeof w[0]);
    for (int k = gap; k < 8 - tail; k++) w[k] = 0;
  } else if (nw != 8) {
    return -1;
  }
  for (int k = 0; k < 8; k++) {
    out[2 * k] = (uint8_t)(w[k] >> 8);
    out[2 * k + 1] = (uint8_t)w[k];
  }
  return 0;
}

#define NAME_BAD      (-1)        /* not a host name */
#define NAME_NUMERIC  (-2)        /* a host name in form, but its last label reads as a number */

/* A host name: one optional trailing dot, then at most 253 bytes of labels of 1-63 bytes from
** [A-Za-z0-9_-], none starting or ending with '-'. Its last label must not look numeric (all
** digits, or "0x..."): resolvers read such a string as an IPv4 address, so it is one or it is
** nothing. 0 with the lowercase form in out (room for HC_NET_NAME_MAX + 1, or NULL). */
static int canon_name(const char *s, size_t n, char *out) {
  size_t label = 0, last = 0;
  if (n > 0 && s[n - 1] == '.') n--;
  if (n == 0 || n > HC_NET_NAME_MAX) return NAME_BAD;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == '.') {
      if (label == 0 || s[i - 1] == '-') return NAME_BAD;
      label = 0;
      last = i + 1;
    } else {
      if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_') return NAME_BAD;
      if (c == '-' && label == 0) return NAME_BAD;
      if (++label > HC_NET_LABEL_MAX) return NAME_BAD;
    }
  }
  if (label == 0 || s[n - 1] == '-') return NAME_BAD;
  int numeric = 1;
  for (size_t i = last; i < n; i++)
    if (!is_digit((unsigned char)s[i])) numeric = 0;
  if (numeric || (n - last >= 2 && s[last] == '0' && (s[last + 1] == 'x' || s[last + 1] == 'X')))
    return NAME_NUMERIC;
  if (out) {
    for (size_t i = 0; i < n; i++) out[i] = (char)to_lower((unsigned char)s[i]);
    out[n] = '\0';
  }
  return 0;
}

int hc_net_parse_host(const char *host, hc_netaddr *ip, char *name, size_t namecap) {
  hc_netaddr tmp;
  char buf[HC_NET_NAME_MAX + 1];
  size_t n;
  if (name && namecap > 0) name[0] = '\0';
  if (!host || (n = strnlen(host, HC_NET_HOST_MAX + 1)) == 0 || n > HC_NET_HOST_MAX) goto bad;
  memset(&tmp, 0, sizeof tmp);
  if (host[0] == '[') {                  /* brackets hold IPv6 and nothing else */
    if (n < 3 || host[n - 1] != ']' || parse_ipv6(host + 1, n - 2, tmp.a) != 0) goto bad;
    tmp.family = AF_INET6;
  } else if (memchr(host, ':', n)) {
    if (parse_ipv6(host, n, tmp.a) != 0) goto bad;
    tmp.family = AF_INET6;
  } else if (parse_ipv4_any(host, n, tmp.a) == 0) {
    tmp.family = AF_INET;
  } else {
    if (canon_name(host, n, buf) != 0) goto bad;
    if (name) {
      size_t len = strlen(buf);
      if (namecap < len + 1) {
        errno = ERANGE;
        return -1;
      }
      memcpy(name, buf, len + 1);
    }
    return HC_HOST_NAME;
  }
  if (ip) *ip = tmp;
  return HC_HOST_IP;
bad:
  errno = EINVAL;
  return -1;
}

/* }===== */


/* {===== text and sockaddrs ===== */

/* As glibc's inet_ntop: lowercase hex without leading zeros; the longest run (first of equals)
** of two or more zero groups is "::"; ::a.b.c.d and ::ffff:a.b.c.d end in dotted IPv4. */
static void format_v6(const uint8_t *a, char *out, size_t cap) {
  unsigned w[8];
  int best = -1, bestlen = 0, cur = -1, curlen = 0;
  size_t n = 0;
  for (int i = 0; i < 8; i++) {
    w[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
    if (w[i] == 0) {
      if (cur < 0) { cur = i; curlen = 0; }
      if (++curlen > bestlen) { best = cur; bestlen = curlen; }
    } else {
      cur = -1;
    }
  }
  if (bestlen < 2) best = -1;
  for (int i = 0; i < 8; i++) {
    if (best >= 0 && i >= best && i < best + bestlen) {
      if (i == best) n += (size_t)snprintf(out + n, cap - n, ":");
      continue;
    }
    if (i != 0) n += (size_t)snprintf(out + n, cap - n, ":");
    if (i == 6 && best == 0 && (bestlen == 6 || (bestlen == 5 && w[5] == 0xffff))) {
      snprintf(out + n, cap - n, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
      return;
    }
    n += (size_t)snprintf(out + n, cap - n, "%x", w[i]);
  }
  if (best >= 0 && best + bestlen == 8) snprintf(out + n, cap - n, ":");
}

void hc_netaddr_format(const hc_netaddr *a, char *out, size_t cap) {
  char buf[64];                          /* > HC_NETADDR_STRLEN: every snprintf above fits */
  size_t len;
  if (cap == 0) return;
  buf[0] = '\0';
  if (a && a->family == AF_INET)
    snprintf(buf, sizeof buf, "%u.%u.%u.%u", a->a[0], a->a[1], a->a[2], a->a[3]);
  else if (a && a->family == AF_INET6)
    format_v6(a->a, buf, sizeof buf);
  len = strlen(buf);
  if (len >= cap) len = cap - 1;
  memcpy(out, buf, len);
  out[len] = '\0';
}

void hc_netaddr_to_sockaddr(const hc_netaddr *a, int port, struct sockaddr_storage *ss,
                            socklen_t *len) {
  uint16_t p = (port >= 0 && port <= PORT_MAX) ? (uint16_t)port : 0;
  memset(ss, 0, sizeof *ss);
  if (a && a->family == AF_INET) {
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(p);
    memcpy(&sin.sin_addr, a->a, 4);
    memcpy(ss, &sin, sizeof sin);
    *len = (socklen_t)sizeof sin;
  } else if (a && a->family == AF_INET6) {
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(p);
    memcpy(&sin6.sin6_addr, a->a, 16);
    memcpy(ss, &sin6, sizeof sin6);
    *len = (socklen_t)sizeof sin6;
  } else {
    ss->ss_family = AF_UNSPEC;
    *len = 0;
  }
}

int hc_netaddr_from_sockaddr(const struct sockaddr *sa, socklen_t len, hc_netaddr *a, int *port) {
  sa_family_t family;
  if (!sa || !a || len < (socklen_t)sizeof family) return -1;
  memcpy(&family, (const char *)sa + offsetof(struct sockaddr, sa_family), sizeof family);
  memset(a, 0, sizeof *a);
  if (family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
    struct sockaddr_in sin;
    memcpy(&sin, sa, sizeof sin);
    a->family = AF_INET;
    memcpy(a->a, &sin.sin_addr, 4);
    if (port) *port = ntohs(sin.sin_port);
    return 0;
  }
  if (family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
    struct sockaddr_in6 sin6;
    memcpy(&sin6, sa, sizeof sin6);
    a->family = AF_INET6;
    memcpy(a->a, &sin6.sin6_addr, 16);
    if (port) *port = ntohs(sin6.sin6_port);
    return 0;
  }
  return -1;
}

/* }===== */


/* {===== rules ===== */

/* A message under construction in the caller's err buffer (always NUL-terminated). */
typedef struct msg {
  char *p;
  size_t cap, n;
} msg;

static void msg_add(msg *m, const char *s, size_t k) {
  for (size_t i = 0; i < k && m->n + 1 < m->cap; i++) m->p[m->n++] = s[i];
  if (m->cap) m->p[m->n] = '\0';
}

static void msg_str(msg *m, const char *s) { msg_add(m, s, strlen(s)); }

/* s[0..k) quoted as the policy loader shows it: at most SHOW_MAX bytes, then "..."; quotes and
** backslashes escaped, control and non-ASCII bytes as \ddd so the message is always ASCII. */
static void msg_show(msg *m, const char *s, size_t k) {
  char esc[8];
  msg_add(m, "\"", 1);
  for (size_t i = 0; i < k && i < SHOW_MAX; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      msg_add(m, esc, 2);
    } else if (c < 0x20 || c >= 0x7f) {
      snprintf(esc, sizeof esc, "\\%u", c);
      msg_str(m, esc);
    } else {
      msg_add(m, (const char *)&c, 1);
    }
  }
  msg_add(m, "\"", 1);
  if (k > SHOW_MAX) msg_add(m, "...", 3);
}

/* `host "H"` as the loader says it. */
static void msg_host(msg *m, const char *h, size_t k) {
  msg_str(m, "host ");
  msg_show(m, h, k);
}

static int is_space(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* "[NET/LEN]" or "NET/LEN" of a range whose host bits are set, for the message. */
static void msg_network(msg *m, int family, const uint8_t *a, int prefix) {
  hc_netaddr net;
  char text[HC_NETADDR_STRLEN], len[16];
  memset(&net, 0, sizeof net);
  net.family = family;
  memcpy(net.a, a, 16);
  clear_host_bits(net.a, prefix, family_bits(family));
  hc_netaddr_format(&net, text, sizeof text);
  snprintf(len, sizeof len, "/%d", prefix);
  if (family == AF_INET6) msg_str(m, "[");
  msg_str(m, text);
  msg_str(m, len);
  if (family == AF_INET6) msg_str(m, "]");
}

static int parse_ports(const char *s, netrule *r, msg *m) {
  size_t n = strlen(s);
  const char *dash = memchr(s, '-', n);
  uint32_t lo, hi;
  if (n == 1 && s[0] == '*') {
    lo = 1;
    hi = PORT_MAX;
  } else if (!dash && parse_dec(s, n, PORT_MAX, &lo) == 0 && lo >= 1) {
    hi = lo;
  } else if (dash && !memchr(dash + 1, '-', n - (size_t)(dash - s) - 1)
             && parse_dec(s, (size_t)(dash - s), PORT_MAX, &lo) == 0 && lo >= 1
             && parse_dec(dash + 1, n - (size_t)(dash - s) - 1, PORT_MAX, &hi) == 0 && hi >= 1) {
    if (lo > hi) {
      msg_str(m, "port range ");
      msg_show(m, s, n);
      msg_str(m, ": LOW must not exceed HIGH");
      return -1;
    }
  } else {
    msg_str(m, "ports ");
    msg_show(m, s, n);
    msg_str(m, ": expected a port 1-65535, LOW-HIGH, or *");
    return -1;
  }
  r->lo = (int)lo;
  r->hi = (int)hi;
  return 0;
}

static int set_range(netrule *r, int family, const uint8_t *a, int prefix, msg *m,
                     const char *shown, size_t shownlen) {
  if (!host_bits_zero(a, prefix, family_bits(family))) {
    if (family == AF_INET) msg_host(m, shown, shownlen);
    else msg_show(m, shown, shownlen);
    msg_str(m, ": host bits are set after the prefix (the network is ");
    msg_network(m, family, a, prefix);
    msg_str(m, ")");
    return -1;
  }
  r->family = family;
  r->prefix = prefix;
  memset(r->a, 0, sizeof r->a);
  memcpy(r->a, a, family == AF_INET ? 4 : 16);
  if (family == AF_INET6) {              /* checked as the IPv4 it embeds: store it as such */
    uint8_t v4[4];
    int p4;
    if (embedded_range(a, prefix, v4, &p4)) {
      r->family = AF_INET;
      r->prefix = p4;
      memset(r->a, 0, sizeof r->a);
      memcpy(r->a, v4, 4);
    }
  }
  r->special_only = all_special(r->family, r->a, r->prefix);
  return 0;
}

/* "[IPv6]:PORTS" or "[IPv6/LEN]:PORTS". */
static int parse_bracketed(const char *s, size_t n, netrule *r, msg *m) {
  const char *close = memchr(s + 1, ']', n - 1);
  uint8_t a[16];
  uint32_t prefix = 128;
  if (!close) {
    msg_show(m, s, n);
    msg_str(m, ": missing \"]\" after the IPv6 address");
    return -1;
  }
  if (close[1] != ':') {
    msg_show(m, s, n);
    msg_str(m, ": expected \":PORTS\" after \"]\"");
    return -1;
  }
  const char *in = s + 1;
  size_t inlen = (size_t)(close - in), shown = inlen + 2;
  const char *slash = memchr(in, '/', inlen);
  size_t alen = slash ? (size_t)(slash - in) : inlen;
  if (parse_ipv6(in, alen, a) != 0) {
    msg_show(m, s, shown);
    msg_str(m, " is not an IPv6 address");
    return -1;
  }
  if (slash && parse_dec(slash + 1, inlen - alen - 1, 128, &prefix) != 0) {
    msg_show(m, s, shown);
    msg_str(m, ": an IPv6 prefix length must be 0-128");
    return -1;
  }
  if (set_range(r, AF_INET6, a, (int)prefix, m, s, shown) != 0) return -1;
  return parse_ports(close + 2, r, m);
}

/* "HOST:PORTS" with HOST an IPv4 address, an IPv4 CIDR or a host name. */
static int parse_plain(const char *s, size_t n, netrule *r, msg *m) {
  const char *colon = strrchr(s, ':');
  uint8_t a[16] = {0};
  uint32_t prefix = 32;
  if (!colon) {
    msg_show(m, s, n);
    msg_str(m, ": expected HOST:PORTS, e.g. \"api.example.com:443\"");
    return -1;
  }
  size_t hlen = (size_t)(colon - s);
  if (hlen == 0) {
    msg_show(m, s, n);
    msg_str(m, ": the host is empty");
    return -1;
  }
  if (memchr(s, ':', hlen)) {
    msg_show(m, s, n);
    msg_str(m, ": an IPv6 address must be in brackets, e.g. \"[::1]:443\"");
    return -1;
  }
  const char *slash = memchr(s, '/', hlen);
  if (slash) {
    if (parse_ipv4_strict(s, (size_t)(slash - s), a) != 0) {
      msg_host(m, s, hlen);
      msg_str(m, ": a CIDR prefix needs an IPv4 address (IPv6 goes in brackets)");
      return -1;
    }
    if (parse_dec(slash + 1, hlen - (size_t)(slash - s) - 1, 32, &prefix) != 0) {
      msg_host(m, s, hlen);
      msg_str(m, ": an IPv4 prefix length must be 0-32");
      return -1;
    }
    if (set_range(r, AF_INET, a, (int)prefix, m, s, hlen) != 0) return -1;
  } else if (parse_ipv4_strict(s, hlen, a) == 0) {
    if (set_range(r, AF_INET, a, 32, m, s, hlen) != 0) return -1;
  } else {
    int rc = canon_name(s, hlen, r->name);
    if (rc == NAME_NUMERIC) {
      msg_host(m, s, hlen);
      msg_str(m, ": write an IPv4 address as four decimal octets");
      return -1;
    }
    if (rc != 0) {
      msg_host(m, s, hlen);
      msg_str(m, " is not an IP address, CIDR or host name");
      return -1;
    }
    r->is_name = 1;
  }
  return parse_ports(colon + 1, r, m);
}

static int parse_rule(const char *s, netrule *r, msg *m) {
  size_t n = strlen(s);
  if (n == 0) {
    msg_str(m, "must not be empty");
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    if (is_space((unsigned char)s[i])) {
      msg_str(m, "must not contain whitespace");
      return -1;
    }
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f) {
      msg_str(m, "must not contain control characters");
      return -1;
    }
  return s[0] == '[' ? parse_bracketed(s, n, r, m) : parse_plain(s, n, r, m);
}

static int valid_kind(int kind) {
  return kind == HC_NETRULE_ALLOW || kind == HC_NETRULE_DENY || kind == HC_NETRULE_LISTEN;
}

hc_netpolicy *hc_netpolicy_new(void) { return calloc(1, sizeof(hc_netpolicy)); }

void hc_netpolicy_free(hc_netpolicy *p) {
  if (!p) return;
  free(p->r);
  free(p);
}

int hc_netpolicy_add(hc_netpolicy *p, int kind, const char *rule, char *err, size_t errlen) {
  msg m = { err, err ? errlen : 0, 0 };
  netrule r;
  if (m.cap) err[0] = '\0';
  if (!p || !rule) {
    msg_str(&m, "no policy or no rule");
    goto invalid;
  }
  if (!valid_kind(kind)) {
    msg_str(&m, "unknown rule kind");
    goto invalid;
  }
  if (p->n >= HC_NETPOLICY_MAX_RULES) {
    char t[80];
    snprintf(t, sizeof t, "too many rules (at most %d)", HC_NETPOLICY_MAX_RULES);
    msg_str(&m, t);
    goto invalid;
  }
  memset(&r, 0, sizeof r);
  if (parse_rule(rule, &r, &m) != 0) goto invalid;
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : RULES_INITIAL;
    netrule *nr = realloc(p->r, cap * sizeof *nr);
    if (!nr) {
      msg_str(&m, "out of memory");
      errno = ENOMEM;
      return -1;
    }
    p->r = nr;
    p->cap = cap;
  }
  r.kind = kind;
  r.index = ++p->count[kind];
  p->r[p->n++] = r;
  return 0;
invalid:
  errno = EINVAL;
  return -1;
}

int hc_netpolicy_rule_text(const hc_netpolicy *p, size_t i, char *out, size_t cap) {
  char host[HC_NET_NAME_MAX + 8], ports[16];
  if (!p || i >= p->n) {
    if (out && cap) out[0] = '\0';
    return -1;
  }
  const netrule *r = &p->r[i];
  if (r->is_name) {
    snprintf(host, sizeof host, "%s", r->name);
  } else {
    hc_netaddr a;
    char text[HC_NETADDR_STRLEN];
    memset(&a, 0, sizeof a);
    a.family = r->family;
    memcpy(a.a, r->a, 16);
    hc_netaddr_format(&a, text, sizeof text);
    int v6 = r->family == AF_INET6;
    if (r->prefix == family_bits(r->family))
      snprintf(host, sizeof host, "%s%s%s", v6 ? "[" : "", text, v6 ? "]" : "");
    else
      snprintf(host, sizeof host, "%s%s/%d%s", v6 ? "[" : "", text, r->prefix, v6 ? "]" : "");
  }
  if (r->lo == 1 && r->hi == PORT_MAX) snprintf(ports, sizeof ports, "*");
  else if (r->lo == r->hi) snprintf(ports, sizeof ports, "%d", r->lo);
  else snprintf(ports, sizeof ports, "%d-%d", r->lo, r->hi);
  if (out && cap) snprintf(out, cap, "%s:%s", host, ports);
  return r->kind;
}

/* }===== */


/* {===== decisions ===== */

static const char *const why_text[] = {
  "allowed",
  "bad argument",
  "port 0 or out of range",
  "unspecified, broadcast or multicast address",
  "denied by a deny rule",
  ("loopback, private, link-local or reserved address: only an IP rule inside that space "
   "unlocks it"),
  "no rule allows it",
};

const char *hc_netpolicy_why_text(int why) {
  if (why < 0 || (size_t)why >= sizeof why_text / sizeof why_text[0]) return "?";
  return why_text[why];
}

static int ip_match(const netrule *r, const hc_netaddr *e) {
  return !r->is_name && r->family == e->family && in_prefix(e->a, r->a, r->prefix);
}

static int name_match(const netrule *r, const char *via) {
  return r->is_name && via && strcmp(r->name, via) == 0;
}

static int refuse(hc_netverdict *v, int why, int index) {
  v->why = why;
  v->index = index;
  return EACCES;
}

/* The first deny rule matching the effective address (or the name it came from) on this port. */
static const netrule *deny_rule(const hc_netpolicy *p, const hc_netaddr *e, int port, const char *vn) {
  for (size_t i = 0; i < p->n; i++) {
    const netrule *r = &p->r[i];
    if (r->kind == HC_NETRULE_DENY && port >= r->lo && port <= r->hi && (ip_match(r, e) || name_match(r, vn)))
      return r;
  }
  return NULL;
}

/* The first port of lo..hi that no deny rule matching (e, vn) covers, or 0. */
static int undenied_port(const hc_netpolicy *p, const hc_netaddr *e, const char *vn, int lo, int hi) {
  int at = lo;
  while (at <= hi) {
    int next = at;
    for (size_t i = 0; i < p->n; i++) {
      const netrule *r = &p->r[i];
      if (r->kind == HC_NETRULE_DENY && r->lo <= at && at <= r->hi && r->hi + 1 > next
          && (ip_match(r, e) || name_match(r, vn)))
        next = r->hi + 1;
    }
    if (next == at) return at;
    at = next;
  }
  return 0;
}

/* Is some port of this address allowed (net.resolve: the addresses worth returning)? The same
** order as one port: an allow rule that may unlock the address, minus what deny rules cover. */
static int decide_any_port(const hc_netpolicy *p, int kind, const hc_netaddr *e, int cls,
                           const char *vn, hc_netverdict *v) {
  int blocked = 0, denied = 0;
  for (size_t i = 0; i < p->n; i++) {
    const netrule *r = &p->r[i];
    if (r->kind != kind || (!ip_match(r, e) && !name_match(r, vn))) continue;
    if (cls != HC_ADDR_PUBLIC && (r->is_name || !r->special_only)) { blocked = 1; continue; }
    if (undenied_port(p, e, vn, r->lo, r->hi)) {
      v->why = HC_NETWHY_OK;
      v->index = r->index;
      return 0;
    }
    denied = 1;
  }
  return refuse(v, denied ? HC_NETWHY_DENY : blocked ? HC_NETWHY_SPECIAL : HC_NETWHY_NORULE, 0);
}

int hc_netpolicy_decide(const hc_netpolicy *p, int kind, const hc_netaddr *addr, int port,
                        const char *via_name, hc_netverdict *v) {
  hc_netverdict dummy;
  hc_netaddr e;
  char via[HC_NET_NAME_MAX + 1];
  const char *vn = NULL;
  int cls, blocked = 0;
  if (!v) v = &dummy;
  if (!p || !addr || (kind != HC_NETRULE_ALLOW && kind != HC_NETRULE_LISTEN))
    return refuse(v, HC_NETWHY_ARG, 0);
  /* 1. what is never reachable */
  if (port != HC_NET_ANY_PORT && (port < 1 || port > PORT_MAX)) return refuse(v, HC_NETWHY_PORT, 0);
  if (effective(addr, &e) != 0) return refuse(v, HC_NETWHY_ARG, 0);
  cls = effective_class(&e);
  if (cls == HC_ADDR_NEVER) return refuse(v, HC_NETWHY_NEVER, 0);
  if (via_name) {
    size_t n = strnlen(via_name, HC_NET_HOST_MAX + 1);
    if (n > HC_NET_HOST_MAX || canon_name(via_name, n, via) != 0)
      return refuse(v, HC_NETWHY_ARG, 0);
    vn = via;
  }
  if (port == HC_NET_ANY_PORT) return decide_any_port(p, kind, &e, cls, vn, v);
  /* 2. deny wins */
  const netrule *deny = deny_rule(p, &e, port, vn);
  if (deny) return refuse(v, HC_NETWHY_DENY, deny->index);
  /* 3. an allow rule of this kind; special space only through an IP rule inside it */
  for (size_t i = 0; i < p->n; i++) {
    const netrule *r = &p->r[i];
    if (r->kind != kind || port < r->lo || port > r->hi) continue;
    if (!ip_match(r, &e) && !name_match(r, vn)) continue;
    if (cls == HC_ADDR_PUBLIC || (!r->is_name && r->special_only)) {
      v->why = HC_NETWHY_OK;
      v->index = r->index;
      return 0;
    }
    blocked = 1;
  }
  /* 4. default deny */
  return refuse(v, blocked ? HC_NETWHY_SPECIAL : HC_NETWHY_NORULE, 0);
}

int hc_netpolicy_count(const hc_netpolicy *p, int kind) {
  return p && kind >= 0 && kind < 3 ? p->count[kind] : 0;
}

int hc_netpolicy_denied(const hc_netpolicy *p, const hc_netaddr *addr, int port, const char *via_name) {
  hc_netaddr e;
  char via[HC_NET_NAME_MAX + 1];
  const char *vn = NULL;
  if (!addr || port < 1 || port > PORT_MAX || effective(addr, &e) != 0) return 1;
  if (effective_class(&e) == HC_ADDR_NEVER) return 1;
  if (via_name) {
    size_t n = strnlen(via_name, HC_NET_HOST_MAX + 1);
    if (n > HC_NET_HOST_MAX || canon_name(via_name, n, via) != 0) return 1;
    vn = via;
  }
  return p && deny_rule(p, &e, port, vn) != NULL;
}

int hc_netpolicy_check(const hc_netpolicy *p, int kind, const hc_netaddr *addr, int port,
                       const char *via_name) {
  return hc_netpolicy_decide(p, kind, addr, port, via_name, NULL);
}

/* Do the deny rules naming `name` cover every port of lo..hi? */
static int denied_ports(const hc_netpolicy *p, const char *name, int lo, int hi) {
  int at = lo;
  while (at <= hi) {
    int next = at;
    for (size_t i = 0; i < p->n; i++) {
      const netrule *r = &p->r[i];
      if (r->kind == HC_NETRULE_DENY && name_match(r, name) && r->lo <= at && at <= r->hi
          && r->hi + 1 > next)
        next = r->hi + 1;
    }
    if (next == at) return 0;            /* `at` is a port no deny rule covers */
    at = next;
  }
  return 1;
}

int hc_netpolicy_name_allowed(const hc_netpolicy *p, int kind, const char *name, int port) {
  char canon[HC_NET_NAME_MAX + 1];
  size_t n;
  if (!p || !name || (kind != HC_NETRULE_ALLOW && kind != HC_NETRULE_LISTEN)) return 0;
  if (port != -1 && (port < 1 || port > PORT_MAX)) return 0;
  n = strnlen(name, HC_NET_HOST_MAX + 1);
  if (n > HC_NET_HOST_MAX || canon_name(name, n, canon) != 0) return 0;
  for (size_t i = 0; i < p->n; i++) {
    const netrule *r = &p->r[i];
    if (r->kind != kind || !name_match(r, canon)) continue;
    if (port == -1 ? !denied_ports(p, canon, r->lo, r->hi)
                   : (port >= r->lo && port <= r->hi && !denied_ports(p, canon, port, port)))
      return 1;
  }
  return 0;
}

/* }===== */
