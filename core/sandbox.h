/*
** sandbox.h: budgets for tenant code. A call's instructions and time are metered by a count hook
** that is installed only when a call runs long (a watchdog timer arms it), so short calls pay
** nothing; a tripped budget is sticky and cannot be caught by pcall, xpcall or a coroutine.
*/
#ifndef HC_SANDBOX_H
#define HC_SANDBOX_H

#include <lua.h>

#define HC_HOOK_COUNT 1000          /* instructions between hook calls once armed */
#define HC_SLICE_US 10000           /* a resume running this long is hooked, then yields */
#define HC_HARD_SLICE_US 100000     /* a resume that cannot yield is killed past this */
#define HC_EXACT_INSTRUCTIONS 1000000 /* below this limit, meter every call from its start */
#define HC_SAMPLE_INSTRUCTIONS 20000  /* counted exactly at each slice, to learn the call's rate */

enum { HC_TRIP_NONE = 0, HC_TRIP_TIME, HC_TRIP_INSTRUCTIONS, HC_TRIP_MEMORY };

typedef struct hc_runtime hc_runtime;
typedef struct hc_tenant hc_tenant;
typedef struct hc_task hc_task;

int hc_sandbox_init(hc_runtime *rt);        /* the watchdog timer; 0, or -1 (then hooks always) */
void hc_sandbox_free(hc_runtime *rt);
void hc_sandbox_bind_thread(hc_runtime *rt); /* the calling thread receives the watchdog */
void hc_sandbox_enter(hc_tenant *t, hc_task *k, lua_State *co);   /* around each resume */
void hc_sandbox_leave(hc_tenant *t);
void hc_sandbox_reset(lua_State *co);        /* a pooled thread goes back unhooked */
/* End a call's coroutine (errored, cancelled, out of time): its pending __close handlers run
** metered, under the call's budget (already tripped when the call was cut short). */
void hc_sandbox_end_call(hc_tenant *t, hc_task *k, lua_State *co);
/* Charge n instructions of C work to the running call (or the load budget); raises when a
** budget is over. For C loops no hook can see (pattern matching, table.move, string.rep). */
void hc_sandbox_charge(lua_State *L, int64_t n);
void hc_sandbox_trip(hc_tenant *t, int kind);
const char *hc_trip_limit(int kind);
double hc_sandbox_rate(void);               /* calibrated VM instructions per microsecond */         /* "time", "instructions", "memory" */
/* Register pcall, xpcall, co_resume, co_close, view, protected_run into the table on top. */
void hc_sandbox_open(lua_State *L);
/* Push the table whose keys are the call threads (tenant code may not resume or close them). */
void hc_sandbox_push_call_threads(lua_State *L);
/* pattern.c: budgeted find/match/gmatch/gsub into the string table on top of the stack. */
void hc_pattern_open(lua_State *L);

#endif
