/*
** bench_ping.c: the cost of one in-process call, against the JSON floor.
**
** In one process and one run, interleaved round by round so that machine noise hits all of
** them alike:
**   ping   hc_call() of {"jsonrpc":"2.0","id":1,"method":"sys.ping","params":{}} (the whole
**          path: envelope parse, call thread, params decode, glue dispatch, the handler,
**          result encode, response copy, hc_free)
**   floor  what a naive Lua runtime pays for the JSON alone: in a plain lua_State with
**          lua-cjson, cjson.encode({jsonrpc="2.0", id=req.id, result={}}) after
**          req = cjson.decode(s) on the same request text, in a Lua loop
**   batch  hc_call() of a batch of 10 such pings, reported per ping
** Each is measured `rounds` times for about `round_ms`; the medians are reported, and the
** ratio ping/floor (the target is <= 2.0).
**
** usage: bench_ping [--rounds N] [--round-ms MS] [--handlers DIR]
**                   [--only ping|floor|batch [--iters N]]
** --only runs that one workload, for rounds x round-ms or exactly N operations (for perf record,
** or for counting instructions: valgrind --tool=callgrind --toggle-collect=run_ping ...).
** The last line is machine-readable: RESULT ping_ns=.. floor_ns=.. ratio=.. batch_ns=..
*/
#include "hostcall.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ROUNDS 51

static const char POLICY[] = "return { methods = { \"sys.*\" } }";
static const char REQ[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sys.ping\",\"params\":{}}";
static const char WANT[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}";

/* The floor: the loop a naive runtime runs, compiled once, called with (n). */
static const char FLOOR_LUA[] =
  "local cjson = require 'cjson'\n"
  "local s = ...\n"
  "local decode, encode = cjson.decode, cjson.encode\n"
  "return function(n)\n"
  "  local out\n"
  "  for _ = 1, n do\n"
  "    local req = decode(s)\n"
  "    out = encode({ jsonrpc = '2.0', id = req.id, result = {} })\n"
  "  end\n"
  "  return out\n"
  "end\n";

static double now_s(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
    perror("clock_gettime");
    exit(1);
  }
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *detail) {
  fprintf(stderr, "bench_ping: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

/* {===== the three workloads: each runs n operations ===== */

typedef struct ctx {
  hc_runtime *rt;
  lua_State *L;
  int floor_ref;
  char batch[1024];
  size_t batch_len;
} ctx;

/* noinline: callgrind's --toggle-collect needs them as functions. */
__attribute__((noinline)) static void run_ping(ctx *c, long n) {
  for (long i = 0; i < n; i++) {
    char *resp;
    size_t len;
    if (hc_call(c->rt, REQ, sizeof REQ - 1, &resp, &len) != 0 || !resp) die("hc_call failed", NULL);
    hc_free(resp);
  }
}

__attribute__((noinline)) static void run_batch(ctx *c, long n) {
  for (long i = 0; i < n; i++) {
    char *resp;
    size_t len;
    if (hc_call(c->rt, c->batch, c->batch_len, &resp, &len) != 0 || !resp)
      die("hc_call (batch) failed", NULL);
    hc_free(resp);
  }
}

__attribute__((noinline)) static void run_floor(ctx *c, long n) {
  lua_rawgeti(c->L, LUA_REGISTRYINDEX, c->floor_ref);
  lua_pushinteger(c->L, (lua_Integer)n);
  if (lua_pcall(c->L, 1, 1, 0) != LUA_OK) die("floor loop", lua_tostring(c->L, -1));
  lua_pop(c->L, 1);
}

typedef void (*workload)(ctx *, long);

/* Operations needed for about `ms` milliseconds (at least 1). */
static long calibrate(ctx *c, workload w, double ms) {
  long n = 100;
  for (;;) {
    double t0 = now_s();
    w(c, n);
    double dt = now_s() - t0;
    if (dt > 0.02 || n > (1L << 30)) {
      double want = (double)n * (ms / 1000.0) / dt;
      return want < 1 ? 1 : (long)want;
    }
    n *= 4;
  }
}

static double time_ns_per_op(ctx *c, workload w, long n, long per_op) {
  double t0 = now_s();
  w(c, n);
  double dt = now_s() - t0;
  return dt * 1e9 / ((double)n * (double)per_op);
}

/* }===== */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void setup(ctx *c, const char *handlers) {
  hc_config cfg;
  char *err = NULL;
  hc_config_init(&cfg);
  if (handlers) cfg.system_handler_dir = handlers;
  c->rt = hc_runtime_new_string(POLICY, sizeof POLICY - 1, "bench.lua", &cfg, &err);
  if (!c->rt) die("runtime", err);

  /* Sanity: the exact answer, once, before timing anything. */
  char *resp;
  size_t len;
  if (hc_call(c->rt, REQ, sizeof REQ - 1, &resp, &len) != 0 || !resp) die("hc_call failed", NULL);
  if (len != sizeof WANT - 1 || memcmp(resp, WANT, len) != 0) die("unexpected ping answer", resp);
  hc_free(resp);

  size_t k = 0;
  c->batch[k++] = '[';
  for (int i = 0; i < 10; i++) {
    int m = snprintf(c->batch + k, sizeof c->batch - k,
                     "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"sys.ping\",\"params\":{}}",
                     i ? "," : "", i + 1);
    if (m < 0 || (size_t)m >= sizeof c->batch - k) die("batch too long", NULL);
    k += (size_t)m;
  }
  c->batch[k++] = ']';
  c->batch_len = k;
  if (hc_call(c->rt, c->batch, c->batch_len, &resp, &len) != 0 || !resp) die("batch failed", NULL);
  int answers = 0;
  for (const char *p = resp; (p = strstr(p, "\"result\":{}")); p++) answers++;
  if (answers != 10) die("unexpected batch answer", resp);
  hc_free(resp);

  c->L = luaL_newstate();
  if (!c->L) die("luaL_newstate", "out of memory");
  luaL_openlibs(c->L);
  if (luaL_loadbufferx(c->L, FLOOR_LUA, sizeof FLOOR_LUA - 1, "=floor", "t") != LUA_OK)
    die("floor chunk", lua_tostring(c->L, -1));
  lua_pushlstring(c->L, REQ, sizeof REQ - 1);
  if (lua_pcall(c->L, 1, 1, 0) != LUA_OK)
    die("require \"cjson\" (is lua-cjson installed?)", lua_tostring(c->L, -1));
  c->floor_ref = luaL_ref(c->L, LUA_REGISTRYINDEX);
  /* Same sanity for the floor's output (cjson may order keys differently: check the parts). */
  lua_rawgeti(c->L, LUA_REGISTRYINDEX, c->floor_ref);
  lua_pushinteger(c->L, 1);
  if (lua_pcall(c->L, 1, 1, 0) != LUA_OK) die("floor loop", lua_tostring(c->L, -1));
  const char *out = lua_tostring(c->L, -1);
  if (!out || !strstr(out, "\"result\":{}") || !strstr(out, "\"id\":1")) die("unexpected floor output", out);
  lua_pop(c->L, 1);
}

int main(int argc, char **argv) {
  int rounds = 5;
  double round_ms = 300;
  const char *handlers = NULL, *only = NULL;
  long iters = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--round-ms") == 0 && i + 1 < argc) round_ms = atof(argv[++i]);
    else if (strcmp(argv[i], "--handlers") == 0 && i + 1 < argc) handlers = argv[++i];
    else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
    else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) iters = atol(argv[++i]);
    else {
      fprintf(stderr, "usage: bench_ping [--rounds N] [--round-ms MS] [--handlers DIR] "
                      "[--only ping|floor|batch [--iters N]]\n");
      return 2;
    }
  }
  if (rounds < 1 || rounds > MAX_ROUNDS || !(round_ms > 0)) die("bad --rounds or --round-ms", NULL);

  ctx c;
  memset(&c, 0, sizeof c);
  setup(&c, handlers);

  if (only) {
    workload w = strcmp(only, "ping") == 0 ? run_ping : strcmp(only, "floor") == 0 ? run_floor
               : strcmp(only, "batch") == 0 ? run_batch : NULL;
    if (!w) die("--only takes ping, floor or batch", only);
    long per = w == run_batch ? 10 : 1;
    long n = iters > 0 ? iters : calibrate(&c, w, round_ms) * rounds;
    printf("%s: %.0f ns per %s (%ld calls)\n", only, time_ns_per_op(&c, w, n, per),
           per == 10 ? "ping" : "op", n);
    lua_close(c.L);
    hc_runtime_free(c.rt);
    return 0;
  }

  /* Warm up (caches, the call-thread pool, allocator) and size each round. */
  long n_ping = calibrate(&c, run_ping, round_ms);
  long n_floor = calibrate(&c, run_floor, round_ms);
  long n_batch = calibrate(&c, run_batch, round_ms);

  double ping[MAX_ROUNDS], floor_[MAX_ROUNDS], batch[MAX_ROUNDS];
  for (int r = 0; r < rounds; r++) {
    /* Alternate the order too, so neither always runs right after the other. */
    if (r % 2 == 0) {
      ping[r] = time_ns_per_op(&c, run_ping, n_ping, 1);
      floor_[r] = time_ns_per_op(&c, run_floor, n_floor, 1);
    } else {
      floor_[r] = time_ns_per_op(&c, run_floor, n_floor, 1);
      ping[r] = time_ns_per_op(&c, run_ping, n_ping, 1);
    }
    batch[r] = time_ns_per_op(&c, run_batch, n_batch, 10);
    fprintf(stderr, "  round %d: ping %.0f ns, floor %.0f ns, batch %.0f ns/ping\n", r + 1,
            ping[r], floor_[r], batch[r]);
  }
  double mp = median(ping, rounds), mf = median(floor_, rounds), mb = median(batch, rounds);
  printf("in-process sys.ping via hc_call   %8.0f ns/op   (median of %d rounds)\n", mp, rounds);
  printf("JSON floor (cjson decode+encode)  %8.0f ns/op\n", mf);
  printf("ratio ping/floor                  %8.2f       (target <= 2.0)\n", mp / mf);
  printf("batch of 10 pings per hc_call     %8.0f ns/ping (%.2fx the floor)\n", mb, mb / mf);
  printf("RESULT ping_ns=%.0f floor_ns=%.0f ratio=%.3f batch_ns=%.0f\n", mp, mf, mp / mf, mb);

  lua_close(c.L);
  hc_runtime_free(c.rt);
  return 0;
}
