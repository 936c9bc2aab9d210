/*
** netapi.h: the network primitives handlers reach as ctx.net (net.resolve so far), under the
** tenant's network policy (core/netpolicy.c).
*/
#ifndef HC_NETAPI_H
#define HC_NETAPI_H

#include <lua.h>

typedef struct hc_tenant hc_tenant;
typedef struct hc_runtime hc_runtime;

void hc_netapi_open(lua_State *L);          /* adds set_net and net_* to the host table on top */
void hc_netapi_free(hc_tenant *t);          /* the tenant's network policy */
void hc_netapi_runtime_free(hc_runtime *rt);   /* the resolver's threads */

#endif
