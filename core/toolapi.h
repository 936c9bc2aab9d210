/*
** toolapi.h: the policy's tools as a core primitive (ctx.tools.run): a handler names a tool and
** gives its stdin; the program, argv, environment, working directory and caps come from the
** policy only. The process runs under core/proc.c; waiting never blocks the loop.
*/
#ifndef HC_TOOLAPI_H
#define HC_TOOLAPI_H

#include <lua.h>

typedef struct hc_tenant hc_tenant;

void hc_toolapi_open(lua_State *L);   /* set_tools and tool_run into the host table on top */
void hc_toolapi_free(hc_tenant *t);
/* Every tool's program (core/confine.c's Landlock rules). */
void hc_toolapi_each_program(hc_tenant *t, void (*fn)(void *ud, const char *path), void *ud);

#endif
