/*
** netpolicy.h: the network policy of a tenant: parsing guest host strings and policy rules,
** classifying addresses, and the one decision "may this call reach this address and port".
**
** Pure parsing and matching: nothing here resolves a name, opens a socket or allocates on the
** check path. The design (forms accepted, canonicalisation, special ranges, decision order, what
** is refused and why) is docs/network-policy.md; the contract is CONTRACT.md section 6.
*/
#ifndef HC_NETPOLICY_H
#define HC_NETPOLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HC_NET_NAME_MAX      253   /* bytes of a canonical host name (no trailing dot) */
#define HC_NET_LABEL_MAX     63    /* bytes of one label of a host name */
#define HC_NET_HOST_MAX      254   /* bytes of a guest host string: a name plus its trailing dot */
#define HC_NETADDR_STRLEN    46    /* hc_netaddr_format's longest text, NUL included */
#define HC_NETPOLICY_MAX_RULES 4096   /* rules in one policy, all kinds together */

typedef struct hc_netaddr {
  int family;                      /* AF_INET or AF_INET6 */
  uint8_t a[16];                   /* network order; IPv4 in a[0..3], the rest zero */
} hc_netaddr;

enum { HC_NETRULE_ALLOW, HC_NETRULE_DENY, HC_NETRULE_LISTEN };

/* Address classes, of the effective address (an embedded IPv4 is classified as that IPv4). */
enum { HC_ADDR_PUBLIC, HC_ADDR_LOOPBACK, HC_ADDR_PRIVATE, HC_ADDR_LINKLOCAL, HC_ADDR_RESERVED,
       HC_ADDR_NEVER };

enum { HC_HOST_IP = 1, HC_HOST_NAME = 2 };

/* Why hc_netpolicy_decide decided as it did (for audit lines and tests). */
enum {
  HC_NETWHY_OK = 0,      /* allowed by an allow/listen rule (verdict.index says which) */
  HC_NETWHY_ARG,         /* refused: bad argument (unknown kind or family, malformed via_name) */
  HC_NETWHY_PORT,        /* refused: port 0 or outside 1..65535 */
  HC_NETWHY_NEVER,       /* refused: unspecified, broadcast or multicast, whatever the rules */
  HC_NETWHY_DENY,        /* refused: a deny rule matches (verdict.index says which) */
  HC_NETWHY_SPECIAL,     /* refused: a rule matches but cannot unlock this loopback, private,
                            link-local or reserved address (a name rule, or a CIDR that also
                            covers public space) */
  HC_NETWHY_NORULE       /* refused: no rule matches (default deny) */
};

typedef struct hc_netverdict {
  int why;               /* HC_NETWHY_* */
  int index;             /* 1-based position of the deciding rule among the rules of its kind
                            (as added), for OK and DENY; else 0 */
} hc_netverdict;

typedef struct hc_netpolicy hc_netpolicy;

hc_netpolicy *hc_netpolicy_new(void);              /* NULL on ENOMEM */
void hc_netpolicy_free(hc_netpolicy *p);

/* Adds one rule "HOST:PORTS" of the given kind. 0, or -1 with a short specific message in err
** (the rule quoted, never a host path); errno ENOMEM when memory runs out, else EINVAL. */
int hc_netpolicy_add(hc_netpolicy *p, int kind, const char *rule, char *err, size_t errlen);

/* The canonical text of the i-th rule added (0-based), as the check reads it: "10.0.0.0/8:*",
** "127.0.0.1:80", "[fd00::/8]:8000-8999", "api.example.com:443". Returns its kind, or -1 when
** there is no such rule. */
int hc_netpolicy_rule_text(const hc_netpolicy *p, size_t i, char *out, size_t cap);

/* Classifies a guest-given host string: HC_HOST_IP (*ip filled; an IPv6 embedding an IPv4 is
** kept as given), HC_HOST_NAME (the canonical name in name: lowercase, no trailing dot; name may
** be NULL to only validate), or -1 with errno EINVAL (malformed), ERANGE (namecap too small:
** give HC_NET_NAME_MAX + 1). IPv4 in every inet_aton form; IPv6 with or without brackets, never
** with a zone id. A host whose last label looks numeric is an IP address or nothing. */
int hc_net_parse_host(const char *host, hc_netaddr *ip, char *name, size_t namecap);

/* The IPv4 an address stands for: a plain IPv4 is copied; an IPv6 embedding one (mapped
** ::ffff:0:0/96, compatible ::/96 but not :: or ::1, NAT64 64:ff9b::/96, 6to4 2002::/16) gives
** that IPv4. 1 when *v4 was written, else 0. */
int hc_netaddr_effective_v4(const hc_netaddr *a, hc_netaddr *v4);
/* HC_ADDR_* of the effective address; an unknown family is HC_ADDR_NEVER. */
int hc_netaddr_class(const hc_netaddr *a);
int hc_netaddr_equal(const hc_netaddr *x, const hc_netaddr *y);
/* inet_ntop text ("" for an unknown family), truncated to cap - 1 bytes; cap 0 writes nothing. */
void hc_netaddr_format(const hc_netaddr *a, char *out, size_t cap);
/* port 0..65535 (anything else is written as 0). *len 0 and AF_UNSPEC for an unknown family. */
void hc_netaddr_to_sockaddr(const hc_netaddr *a, int port, struct sockaddr_storage *ss,
                            socklen_t *len);
/* 0, or -1 for another family or a short length. port may be NULL. */
int hc_netaddr_from_sockaddr(const struct sockaddr *sa, socklen_t len, hc_netaddr *a, int *port);

/* May this name be sent to DNS for this kind (ALLOW or LISTEN)? 1 when some rule of `kind`
** names it by host name with `port` in its ports (port -1: any of its ports), and the deny rules
** naming it by host name do not cover every such port; else 0. name is canonicalised first. */
int hc_netpolicy_name_allowed(const hc_netpolicy *p, int kind, const char *name, int port);

#define HC_NET_ANY_PORT (-1)   /* as a port to check: "on some port" (what net.resolve asks) */

/* The decision on one concrete address (after resolution). via_name: the host name the address
** came from (NULL for an IP literal); it is canonicalised, and a malformed one refuses. port may
** be HC_NET_ANY_PORT: allowed when some port is. Returns 0 when allowed, else EACCES. */
int hc_netpolicy_check(const hc_netpolicy *p, int kind, const hc_netaddr *addr, int port,
                       const char *via_name);
/* Rules added of a kind (p may be NULL: 0). */
int hc_netpolicy_count(const hc_netpolicy *p, int kind);
/* Only the part every destination obeys, whatever unlocked it (an http rule): 1 when the address
** is never reachable (unspecified, broadcast, multicast, a bad port) or a deny rule matches it;
** p may be NULL (no rules: nothing denied). */
int hc_netpolicy_denied(const hc_netpolicy *p, const hc_netaddr *addr, int port, const char *via_name);
/* The same decision, saying why (v may be NULL). */
int hc_netpolicy_decide(const hc_netpolicy *p, int kind, const hc_netaddr *addr, int port,
                        const char *via_name, hc_netverdict *v);
/* A short English text for HC_NETWHY_* ("no rule allows it", ...). */
const char *hc_netpolicy_why_text(int why);

#endif
