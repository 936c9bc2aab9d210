/*
** test_chunk.c: the process-wide cache of compiled chunks (core/chunk.c). A cached load must be
** indistinguishable from a parse: the same function (results, line numbers in errors, the first
** upvalue), the same errors for bad text, text-only (a binary chunk is refused as by mode "t"),
** keyed by name and exact text, bounded, and safe from several threads at once.
*/
#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "testutil.h"

static const char SRC[] =
  "local a, b = ...\n"
  "local function f(x) return x * 2 end\n"
  "if a == 'boom' then error('line three') end\n"
  "return f(a or 21), b, _ENV == _G\n";

/* Load SRC in a fresh state through the cache and run it with args; the results as text. */
static void run(const char *src, const char *name, const char *arg, char *out, size_t outsz) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  int st = hc_chunk_load(L, src, strlen(src), name);
  if (st != LUA_OK) {
    snprintf(out, outsz, "load error %d: %s", st, lua_tostring(L, -1));
    lua_close(L);
    return;
  }
  lua_pushstring(L, arg);
  lua_pushliteral(L, "second");
  if (lua_pcall(L, 2, 3, 0) != LUA_OK) snprintf(out, outsz, "run error: %s", lua_tostring(L, -1));
  else snprintf(out, outsz, "%s %s %s", lua_tostring(L, -3), lua_tostring(L, -2),
                lua_toboolean(L, -1) ? "env" : "noenv");
  lua_close(L);
}

/* The same through a plain parse, for reference. */
static void parse_only(const char *src, const char *name, char *out, size_t outsz) {
  lua_State *L = luaL_newstate();
  int st = luaL_loadbufferx(L, src, strlen(src), name, "t");
  snprintf(out, outsz, "load error %d: %s", st, st == LUA_OK ? "" : lua_tostring(L, -1));
  lua_close(L);
}

TEST(a_cached_load_is_the_parsed_function) {
  hc_chunk_clear();
  char a[256], b[256];
  size_t hits, misses, bytes;
  run(SRC, "=t.lua", "21", a, sizeof a);
  CHECK_STREQ(a, "42 second env");
  hc_chunk_stats(&hits, &misses, &bytes);
  CHECK(hits == 0 && misses == 1 && bytes > strlen(SRC));
  run(SRC, "=t.lua", "5", b, sizeof b);
  CHECK_STREQ(b, "10 second env");
  hc_chunk_stats(&hits, &misses, NULL);
  CHECK(hits == 1 && misses == 1);
  /* debug information is kept: the error names the file and the line */
  run(SRC, "=t.lua", "boom", a, sizeof a);
  CHECK_STREQ(a, "run error: t.lua:3: line three");
  hc_chunk_stats(&hits, NULL, NULL);
  CHECK(hits == 2);
}

TEST(keyed_by_name_and_exact_text) {
  hc_chunk_clear();
  char a[256];
  size_t hits, misses;
  run(SRC, "=t.lua", "1", a, sizeof a);
  run(SRC, "=u.lua", "boom", a, sizeof a);   /* another name: its own entry, its own name */
  CHECK_STREQ(a, "run error: u.lua:3: line three");
  char other[sizeof SRC];
  memcpy(other, SRC, sizeof SRC);
  *strchr(other, '*') = '+';                 /* "x + 2": one byte differs */
  run(other, "=t.lua", "1", a, sizeof a);
  CHECK_STREQ(a, "3 second env");
  hc_chunk_stats(&hits, &misses, NULL);
  CHECK(hits == 0 && misses == 3);
}

TEST(bad_text_gives_the_parsers_errors_and_is_not_kept) {
  hc_chunk_clear();
  const char *bad[] = {"return +", "local x = 'unfinished", "\x1bLua\x54\x00 binary", "goto nowhere"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char a[256], b[256];
    run(bad[i], "=bad.lua", "", a, sizeof a);
    parse_only(bad[i], "=bad.lua", b, sizeof b);
    if (!CHECK(strcmp(a, b) == 0)) fprintf(stderr, "  cached: %s\n  parsed: %s\n", a, b);
    run(bad[i], "=bad.lua", "", a, sizeof a);   /* still an error: nothing was kept */
    CHECK(strcmp(a, b) == 0);
  }
  size_t hits, bytes;
  hc_chunk_stats(&hits, NULL, &bytes);
  CHECK(hits == 0 && bytes == 0);
  /* a binary chunk is refused like mode "t" refuses it, cached text or not */
  char a[256];
  run("\x1bLua", "=b.lua", "", a, sizeof a);
  CHECK(strstr(a, "attempt to load a binary chunk") != NULL);
}

TEST(bounded) {
  hc_chunk_clear();
  /* 40 distinct texts of ~512 KiB: 20 MiB, past the 16 MiB bound */
  size_t n = 512 * 1024;
  char *src = malloc(n + 64);
  for (int k = 0; k < 40; k++) {
    int off = snprintf(src, 64, "return %d --", k);
    memset(src + off, 'x', n - (size_t)off);
    src[n] = '\0';
    lua_State *L = luaL_newstate();
    CHECK(hc_chunk_load(L, src, n, "=big.lua") == LUA_OK);
    lua_close(L);
  }
  size_t bytes;
  hc_chunk_stats(NULL, NULL, &bytes);
  if (!CHECK(bytes <= (16u << 20) && bytes > (8u << 20))) fprintf(stderr, "  %zu bytes held\n", bytes);
  free(src);
  hc_chunk_clear();
}

static void *loader(void *arg) {
  (void)arg;
  for (int i = 0; i < 200; i++) {
    char a[256];
    run(SRC, (i % 2) ? "=t.lua" : "=v.lua", "21", a, sizeof a);
    if (strcmp(a, "42 second env") != 0) return (void *)1;
  }
  return NULL;
}

TEST(shared_by_threads) {
  hc_chunk_clear();
  pthread_t th[4];
  for (int i = 0; i < 4; i++) CHECK(pthread_create(&th[i], NULL, loader, NULL) == 0);
  for (int i = 0; i < 4; i++) {
    void *r = NULL;
    pthread_join(th[i], &r);
    CHECK(r == NULL);
  }
  size_t hits, misses;
  hc_chunk_stats(&hits, &misses, NULL);
  CHECK(hits + misses == 800 && misses >= 2 && misses <= 8);
  hc_chunk_clear();
}

int main(void) {
  RUN(a_cached_load_is_the_parsed_function);
  RUN(keyed_by_name_and_exact_text);
  RUN(bad_text_gives_the_parsers_errors_and_is_not_kept);
  RUN(bounded);
  RUN(shared_by_threads);
  return tu_summary();
}
