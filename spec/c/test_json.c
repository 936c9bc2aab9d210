/*
** test_json.c: the strict JSON codec (core/json.c) against its contract in json.h.
*/
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "json.h"
#include "testutil.h"

static lua_State *L;
static int stack_errors;  /* unbalanced stacks seen by the helpers; checked once in main */

#define S(lit)  lit, sizeof(lit) - 1   /* a literal with its length (may hold NULs) */

/* ---------- helpers ---------- */

/* Run json.decode (the Lua-facing function) on s[0..n). 1: value left on the stack; 0: error
** message copied to msg, stack unchanged. Checks the stack balance either way. */
static int ldecode (const char *s, size_t n, char *msg, size_t msgsz) {
  int top = lua_gettop(L), ok;
  lua_pushcfunction(L, hc_json_l_decode);
  lua_pushlstring(L, s, n);
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
    snprintf(msg, msgsz, "raised: %s", lua_tostring(L, -1));
    lua_settop(L, top);
    return 0;
  }
  ok = !lua_isnil(L, -2);
  if (lua_gettop(L) != top + 2) stack_errors++;
  if (ok) {
    if (!lua_isnil(L, -1)) stack_errors++;
    lua_pop(L, 1);
    return 1;
  }
  snprintf(msg, msgsz, "%s", lua_tostring(L, -1));
  lua_settop(L, top);
  return 0;
}

/* Run json.encode on the value at idx (schema at sidx or 0) through the Lua function.
** Returns the text (static buffer) or NULL with the message in msg. Stack balanced. */
static char encbuf[1 << 16];
static const char *lencode (int idx, int sidx, char *msg, size_t msgsz) {
  int top = lua_gettop(L);
  const char *r = NULL;
  idx = lua_absindex(L, idx);
  if (sidx) sidx = lua_absindex(L, sidx);
  lua_pushcfunction(L, hc_json_l_encode);
  lua_pushvalue(L, idx);
  if (sidx) lua_pushvalue(L, sidx);
  if (lua_pcall(L, sidx ? 2 : 1, 2, 0) != LUA_OK)
    snprintf(msg, msgsz, "raised: %s", lua_tostring(L, -1));
  else if (lua_isstring(L, -2)) {
    size_t n;
    const char *s = lua_tolstring(L, -2, &n);
    if (lua_gettop(L) != top + 2 || !lua_isnil(L, -1)) stack_errors++;
    if (n < sizeof(encbuf)) {
      memcpy(encbuf, s, n + 1);
      r = encbuf;
    }
  }
  else
    snprintf(msg, msgsz, "%s", lua_tostring(L, -1));
  lua_settop(L, top);
  return r;
}

/* Evaluate a Lua chunk returning one value and leave it on the stack. */
static void eval (const char *code) {
  if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "lua error in test chunk: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_pushnil(L);
    CHECK(0);
  }
}

/* Encode "return <expr>" with an optional schema "return <expr>"; result or "ERR:<msg>". */
static char encres[1 << 16];
static const char *enc_lua (const char *expr, const char *schema) {
  char code[4096], msg[256];
  int top = lua_gettop(L);
  const char *r;
  snprintf(code, sizeof(code), "return %s", expr);
  eval(code);
  if (schema) {
    snprintf(code, sizeof(code), "return %s", schema);
    eval(code);
  }
  r = lencode(top + 1, schema ? top + 2 : 0, msg, sizeof(msg));
  if (r) snprintf(encres, sizeof(encres), "%s", r);
  else snprintf(encres, sizeof(encres), "ERR:%s", msg);
  lua_settop(L, top);
  return encres;
}

/* decode then encode; result text or "ERR:<msg>". */
static const char *roundtrip (const char *s, size_t n) {
  char msg[256];
  int top = lua_gettop(L);
  const char *r;
  if (!ldecode(s, n, msg, sizeof(msg))) {
    snprintf(encres, sizeof(encres), "ERR:%s", msg);
    return encres;
  }
  r = lencode(-1, 0, msg, sizeof(msg));
  if (r) snprintf(encres, sizeof(encres), "%s", r);
  else snprintf(encres, sizeof(encres), "ERR:%s", msg);
  lua_settop(L, top);
  return encres;
}

/* Run a Lua boolean expression (with the test globals) and CHECK it. */
#define LUA_TRUE(expr)  do { \
    int top_ = lua_gettop(L); \
    eval("return " expr); \
    if (!CHECK(lua_toboolean(L, -1))) fprintf(stderr, "  lua: %s\n", expr); \
    lua_settop(L, top_); \
  } while (0)

/* ---------- accept / refuse table (in the spirit of JSONTestSuite y_ / n_) ---------- */

typedef struct Case {
  const char *in;
  size_t len;
  const char *err;   /* NULL: must be accepted; "": any error; else the message */
  int skip_ok;       /* hc_jcur_skip accepts it anyway (duplicate keys) */
} Case;

#define Y(lit)        { S(lit), NULL, 0 }
#define N(lit, e)     { S(lit), e, 0 }
#define NDUP(lit)     { S(lit), "duplicate key", 1 }

static const Case cases[] = {
  /* literals and structure */
  Y("true"), Y("false"), Y("null"), Y(" \t\r\n1 \t\r\n"), Y("[]"), Y("{}"), Y("[ ]"), Y("{ }"),
  Y("[1,[2,[3]],{\"a\":{\"b\":[]}}]"), Y("{\"\":0}"), Y("[null,true,false]"),
  Y("{\"a\" : 1 , \"b\" : [ 1 , 2 ] }"),
  N("", "unexpected end of input"), N("   ", "unexpected end of input"),
  N("tru", "unexpected end of input"), N("nul", "unexpected end of input"),
  N("True", "unexpected character"), N("nulL", "unexpected character"),
  N("[", "unexpected end of input"), N("{", "unexpected end of input"),
  N("[1", "unexpected end of input"), N("[1,", "unexpected end of input"),
  N("{\"a\"", "unexpected end of input"), N("{\"a\":", "unexpected end of input"),
  N("{\"a\":1", "unexpected end of input"),
  N("[1,]", "unexpected character"), N("[,1]", "unexpected character"),
  N("[1 2]", "unexpected character"), N("{\"a\":1,}", "unexpected character"),
  N("{,}", "unexpected character"), N("{\"a\" 1}", "unexpected character"),
  N("{a:1}", "unexpected character"), N("{1:1}", "unexpected character"),
  N("{\"a\":1 \"b\":2}", "unexpected character"), N("[1}", "unexpected character"),
  N("{\"a\":1]", "unexpected character"), N("'a'", "unexpected character"),
  N("/*c*/1", "unexpected character"), N("[1/*c*/]", "unexpected character"),
  N("[1]//c", "trailing garbage"), N("1 2", "trailing garbage"), N("[1]x", "trailing garbage"),
  N("[]]", "trailing garbage"), N("\xEF\xBB\xBF" "1", "unexpected character"),  /* BOM */
  N("[\f1]", "unexpected character"), N("\x00", "unexpected character"),
  N("[1]\x00", "trailing garbage"),
  N("NaN", "unexpected character"), N("Infinity", "unexpected character"),
  N("-Infinity", "unexpected character"), N("[NaN]", "unexpected character"),
  /* numbers */
  Y("0"), Y("-0"), Y("-0.0"), Y("0e0"), Y("0.0e-0"), Y("1E+2"), Y("1e2"), Y("1E-2"), Y("1.5"),
  Y("-1.5e-3"), Y("123456789"), Y("9223372036854775807"), Y("9223372036854775808"),
  Y("-9223372036854775808"), Y("-9223372036854775809"), Y("1e308"), Y("1e-400"),
  Y("123e-10000000"), Y("0.00000000000000000000000000000000000001"),
  Y("100000000000000000000000000000000000000000000000000"),
  N("01", "leading zero"), N("-01", "leading zero"), N("00", "leading zero"),
  N("[00]", "leading zero"), N("-", "unexpected end of input"), N("--1", "unexpected character"),
  N("+1", "unexpected character"), N(".5", "unexpected character"),
  N("-.5", "unexpected character"), N("1.", "unexpected end of input"),
  N("[1.]", "unexpected character"), N("1.e1", "unexpected character"),
  N("1e", "unexpected end of input"), N("1e+", "unexpected end of input"),
  N("[1e]", "unexpected character"), N("[1e+]", "unexpected character"),
  N("-a", "unexpected character"), N("0x10", "trailing garbage"), N("1a", "trailing garbage"),
  N("1e400", "number out of range"), N("-1e400", "number out of range"),
  N("[1e309]", "number out of range"), N("1e99999999999999999999", "number out of range"),
  N("[1,2,1.7976931348623159e308]", "number out of range"),
  /* strings */
  Y("\"\""), Y("\"abc\""), Y("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), Y("\"\\u0041\\u00e9\\u20AC\""),
  Y("\"\\ud83d\\ude00\""), Y("\"\\uDBFF\\uDFFF\""), Y("\"\\u0000\""), Y("\"\x7f\""),
  Y("\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\""), Y("\"\xF4\x8F\xBF\xBF\""),
  Y("\"\xEF\xBF\xBF\""), Y("\"\xEE\x80\x80\""), Y("\"\xED\x9F\xBF\""),
  N("\"abc", "unexpected end of input"), N("\"", "unexpected end of input"),
  N("\"\\", "unexpected end of input"), N("\"\\x\"", "invalid escape"),
  N("\"\\a\"", "invalid escape"), N("\"\\'\"", "invalid escape"), N("\"\\U0041\"", "invalid escape"),
  N("\"\\u12\"", "invalid escape"), N("\"\\uZZZZ\"", "invalid escape"), N("\"\\u12", "invalid escape"),
  N("\"\\ud800\"", "lone surrogate"), N("\"\\udc00\"", "lone surrogate"),
  N("\"\\udfff\\ud800\"", "lone surrogate"), N("\"\\ud800\\u0041\"", "lone surrogate"),
  N("\"\\ud800\\ud800\"", "lone surrogate"), N("\"\\ud800x\"", "lone surrogate"),
  N("\"\\ud800\\\"", "lone surrogate"),
  N("\"\t\"", "control character in string"), N("\"\n\"", "control character in string"),
  N("\"a\x01\"", "control character in string"), N("\"\x1f\"", "control character in string"),
  N("\"\x00\"", "control character in string"),
  N("\"\xC0\x80\"", "invalid UTF-8 in string"), N("\"\xC1\xBF\"", "invalid UTF-8 in string"),
  N("\"\xE0\x80\x80\"", "invalid UTF-8 in string"), N("\"\xE0\x9F\xBF\"", "invalid UTF-8 in string"),
  N("\"\xF0\x8F\xBF\xBF\"", "invalid UTF-8 in string"),
  N("\"\xED\xA0\x80\"", "invalid UTF-8 in string"), N("\"\xED\xBF\xBF\"", "invalid UTF-8 in string"),
  N("\"\xF4\x90\x80\x80\"", "invalid UTF-8 in string"),
  N("\"\xF5\x80\x80\x80\"", "invalid UTF-8 in string"), N("\"\xFF\"", "invalid UTF-8 in string"),
  N("\"\x80\"", "invalid UTF-8 in string"), N("\"\xBF\"", "invalid UTF-8 in string"),
  N("\"\xE2\x82\"", "invalid UTF-8 in string"), N("\"\xC3\"", "invalid UTF-8 in string"),
  N("\"\xF0\x9F\x98\"", "invalid UTF-8 in string"), N("\"\xC3", "invalid UTF-8 in string"),
  N("\"\xC3\x28\"", "invalid UTF-8 in string"), N("\"\xF8\x88\x80\x80\x80\"", "invalid UTF-8 in string"),
  N("\"abcdefgh\xC3\x28 long enough for the word loop\"", "invalid UTF-8 in string"),
  N("\"abcdefghijklmnop\tq\"", "control character in string"),
  N("[\"a\",\"\xC0\x80\"]", "invalid UTF-8 in string"),
  N("{\"\xC0\x80\":1}", "invalid UTF-8 in string"),
  /* objects */
  NDUP("{\"a\":1,\"a\":2}"), NDUP("{\"a\":1,\"b\":2,\"a\":null}"), NDUP("{\"\":1,\"\":1}"),
  NDUP("{\"x\":{\"a\":[],\"a\":{}}}"), NDUP("{\"\\u0061\":1,\"a\":2}"),
  NDUP("{\"a\":1,\"\\u0061\":2}"), NDUP("{\"b\":0,\"\\u0062\":1,\"c\":2,\"b\":3}"),
  NDUP("{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k3\":0}"),
  NDUP("{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k9\":0}"),
  NDUP("{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k8\":0}"),
  NDUP("{\"a\\n\":1,\"b\":2,\"a\\u000a\":3}"),
  Y("{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k10\":0}"),
  NDUP("{\"ab\":1,\"ba\":2,\"a\":3,\"b\":4,\"\\u0061b\":5}"), Y("{\"method\":1,\"params\":2,\"\":3}"),
  Y("{\"a\":1,\"A\":2}"), Y("{\"a\":{\"a\":{\"a\":null}}}"),
};

static int find_err (const char *msg, const char *err) {
  char want[128];
  snprintf(want, sizeof(want), "json: %s at byte ", err);
  return strncmp(msg, want, strlen(want)) == 0;
}

TEST(test_table) {
  size_t i;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const Case *k = &cases[i];
    char msg[256];
    int ok, sk;
    hc_jcur c;
    ok = ldecode(k->in, k->len, msg, sizeof(msg));
    if (ok) lua_pop(L, 1);
    if (k->err == NULL) {
      if (!CHECK(ok)) fprintf(stderr, "  must accept case %zu: %.*s -> %s\n", i, (int)k->len, k->in, msg);
    }
    else if (!CHECK(!ok)) fprintf(stderr, "  must refuse case %zu: %.*s\n", i, (int)k->len, k->in);
    else if (k->err[0] && !CHECK(find_err(msg, k->err)))
      fprintf(stderr, "  case %zu: %.*s: got \"%s\", want \"%s\"\n", i, (int)k->len, k->in, msg, k->err);
    /* hc_jcur_skip must agree (it does not see duplicate keys; trailing checked here) */
    hc_jcur_init(&c, k->in, k->len, HC_JSON_MAX_DEPTH);
    sk = hc_jcur_skip(&c) == 0 && hc_jcur_ws(&c) < 0;
    if (!CHECK(sk == (k->err == NULL || k->skip_ok)))
      fprintf(stderr, "  skip disagrees on case %zu: %.*s (%s)\n", i, (int)k->len, k->in, c.err ? c.err : "ok");
    CHECK(c.depth == 0);
  }
}

/* Error positions ("at byte N" is the 0-based offset of the offending byte). */
TEST(test_positions) {
  static const struct { const char *in; const char *msg; } pos[] = {
    {"[", "json: unexpected end of input at byte 1"},
    {"", "json: unexpected end of input at byte 0"},
    {"[1,2,]", "json: unexpected character at byte 5"},
    {"{\"a\":1,\"a\":2}", "json: duplicate key at byte 7"},
    {"\"ab\\x\"", "json: invalid escape at byte 3"},
    {"01", "json: leading zero at byte 0"},
    {"[-01]", "json: leading zero at byte 2"},
    {"[1e400]", "json: number out of range at byte 1"},
    {"\"\xC0\x80\"", "json: invalid UTF-8 in string at byte 1"},
    {"[\"abcdefghij\xED\xA0\x80\"]", "json: invalid UTF-8 in string at byte 12"},
    {"\"\\ud800\"", "json: lone surrogate at byte 1"},
    {"\"a\x01\"", "json: control character in string at byte 2"},
    {"[1]x", "json: trailing garbage at byte 3"},
    {"[1] \n x", "json: trailing garbage at byte 6"},
    {"[tru]", "json: unexpected character at byte 4"},
  };
  size_t i;
  for (i = 0; i < sizeof(pos) / sizeof(pos[0]); i++) {
    char msg[256] = "";
    int ok = ldecode(pos[i].in, strlen(pos[i].in), msg, sizeof(msg));
    if (ok) lua_pop(L, 1);
    CHECK(!ok);
    CHECK_STREQ(msg, pos[i].msg);
  }
}

/* ---------- decoded values ---------- */

static int dec_top (const char *s) {
  char msg[256];
  if (!ldecode(s, strlen(s), msg, sizeof(msg))) {
    fprintf(stderr, "  unexpected decode error for %s: %s\n", s, msg);
    lua_newtable(L);  /* keeps the following checks failing, not crashing */
    return 0;
  }
  return 1;
}

TEST(test_numbers) {
  int top = lua_gettop(L);
  dec_top("-0");
  CHECK(lua_isinteger(L, -1) && lua_tointeger(L, -1) == 0);
  dec_top("-0.0");
  CHECK(!lua_isinteger(L, -1) && lua_tonumber(L, -1) == 0.0 && signbit(lua_tonumber(L, -1)));
  dec_top("0.0");
  CHECK(!lua_isinteger(L, -1) && !signbit(lua_tonumber(L, -1)));
  dec_top("1E+2");
  CHECK(!lua_isinteger(L, -1) && lua_tonumber(L, -1) == 100.0);
  dec_top("9223372036854775807");
  CHECK(lua_isinteger(L, -1) && lua_tointeger(L, -1) == LUA_MAXINTEGER);
  dec_top("-9223372036854775808");
  CHECK(lua_isinteger(L, -1) && lua_tointeger(L, -1) == LUA_MININTEGER);
  dec_top("9223372036854775808");
  CHECK(!lua_isinteger(L, -1) && lua_tonumber(L, -1) == 9223372036854775808.0);
  dec_top("-9223372036854775809");
  CHECK(!lua_isinteger(L, -1) && lua_tonumber(L, -1) == -9223372036854775808.0);
  dec_top("18446744073709551616");  /* 2^64: 20 digits */
  CHECK(!lua_isinteger(L, -1) && lua_tonumber(L, -1) == 18446744073709551616.0);
  dec_top("9999999999999999999");   /* 19 digits, above int64 */
  CHECK(!lua_isinteger(L, -1) && lua_tonumber(L, -1) == 1e19);
  dec_top("9007199254740993");
  CHECK(lua_isinteger(L, -1) && lua_tointeger(L, -1) == 9007199254740993LL);
  dec_top("-42");
  CHECK(lua_isinteger(L, -1) && lua_tointeger(L, -1) == -42);
  dec_top("1e-400");
  CHECK(!lua_isinteger(L, -1) && lua_tonumber(L, -1) == 0.0);
  dec_top("0.1");
  CHECK(lua_tonumber(L, -1) == 0.1);
  dec_top("1e23");
  CHECK(lua_tonumber(L, -1) == 1e23);
  dec_top("2.2250738585072014e-308");
  CHECK(lua_tonumber(L, -1) == DBL_MIN);
  dec_top("4.9406564584124654e-324");
  CHECK(lua_tonumber(L, -1) == 4.9406564584124654e-324);
  dec_top("1.7976931348623157e308");
  CHECK(lua_tonumber(L, -1) == DBL_MAX);
  dec_top("0.30000000000000004");
  CHECK(lua_tonumber(L, -1) == 0.30000000000000004);
  dec_top("9007199254740993.0");  /* not exactly representable: nearest even */
  CHECK(lua_tonumber(L, -1) == 9007199254740992.0);
  dec_top("-1.5e-3");
  CHECK(lua_tonumber(L, -1) == -1.5e-3);
  dec_top("1.00000000000000000000000000000000000000000000001");
  CHECK(lua_tonumber(L, -1) == 1.0);
  lua_settop(L, top);
}

/* Fast path (exact decimal) against strtod on many generated inputs, bit for bit. */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t rng (void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

TEST(test_number_conversion) {
  int i, bad = 0, top = lua_gettop(L);
  for (i = 0; i < 20000 && bad < 5; i++) {
    char txt[64];
    double want, got;
    uint64_t m = rng() % ((i & 1) ? 10000000000000000000u : 100000u);
    int ex = (int)(rng() % 70) - 35;
    int frac = (int)(rng() % 8);
    hc_jcur c;
    if (frac && (i & 2))
      snprintf(txt, sizeof(txt), "%llu.%0*llue%d", (unsigned long long)m, frac,
               (unsigned long long)(rng() % 10), ex);
    else if (i % 3 == 0) {  /* random bit pattern, printed with 17 digits */
      uint64_t bits = rng();
      memcpy(&want, &bits, 8);
      if (!isfinite(want)) continue;
      snprintf(txt, sizeof(txt), "%.17g", want);
    }
    else
      snprintf(txt, sizeof(txt), "%llue%d", (unsigned long long)m, ex);
    want = strtod(txt, NULL);  /* the test runs in the C locale */
    hc_jcur_init(&c, txt, strlen(txt), 8);
    if (hc_jcur_value_lua(&c, L) != 0) {
      bad++;
      CHECK(0);
      fprintf(stderr, "  failed to decode %s: %s\n", txt, c.err);
      continue;
    }
    got = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (memcmp(&got, &want, 8) != 0) {
      bad++;
      fprintf(stderr, "  %s: got %.17g want %.17g\n", txt, got, want);
    }
  }
  CHECK(bad == 0);
  CHECK(lua_gettop(L) == top);
}

TEST(test_strings) {
  static const struct { const char *in; size_t inlen; const char *out; size_t outlen; } ss[] = {
    {S("\"\""), S("")},
    {S("\"abc\""), S("abc")},
    {S("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), S("\"\\/\b\f\n\r\t")},
    {S("\"\\u0041\\u00e9\\u20AC\\u0000z\""), S("A\xC3\xA9\xE2\x82\xAC\x00z")},
    {S("\"\\ud83d\\ude00\""), S("\xF0\x9F\x98\x80")},
    {S("\"\\uD800\\uDC00\""), S("\xF0\x90\x80\x80")},
    {S("\"\\uDBFF\\uDFFF\""), S("\xF4\x8F\xBF\xBF")},
    {S("\"\\u007f\\u0080\\u07ff\\u0800\\uffff\""), S("\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF")},
    {S("\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\""), S("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80")},
    {S("\"a very long plain string crossing word boundaries \xC3\xA9 and more text\""),
     S("a very long plain string crossing word boundaries \xC3\xA9 and more text")},
    {S("\"/input/a.txt\""), S("/input/a.txt")},
  };
  size_t i;
  int top = lua_gettop(L);
  for (i = 0; i < sizeof(ss) / sizeof(ss[0]); i++) {
    char msg[256];
    size_t n;
    const char *s;
    hc_buf b = HC_BUF_INIT;
    hc_jcur c;
    if (!CHECK(ldecode(ss[i].in, ss[i].inlen, msg, sizeof(msg)))) continue;
    s = lua_tolstring(L, -1, &n);
    if (!CHECK(n == ss[i].outlen && memcmp(s, ss[i].out, n) == 0))
      fprintf(stderr, "  string case %zu\n", i);
    lua_pop(L, 1);
    /* the same through hc_jcur_string into a buffer, appending */
    hc_buf_add(&b, "<", 1);
    hc_jcur_init(&c, ss[i].in, ss[i].inlen, 4);
    CHECK(hc_jcur_string(&c, &b) == 0);
    CHECK(c.p == ss[i].in + ss[i].inlen);
    CHECK(b.n == n + 1 && memcmp(b.p + 1, ss[i].out, n) == 0);
    hc_buf_free(&b);
  }
  {  /* a long string with escapes spread through it (scratch userdata path) */
    char in[5100], out[2600];
    size_t k, ni = 0, no = 0, n;
    const char *s;
    char msg[256];
    in[ni++] = '"';
    for (k = 0; k < 500; k++) {
      memcpy(in + ni, "ab\\n\\u00e9", 10);
      ni += 10;
      memcpy(out + no, "ab\n\xC3\xA9", 5);
      no += 5;
    }
    in[ni++] = '"';
    if (CHECK(ldecode(in, ni, msg, sizeof(msg)))) {
      s = lua_tolstring(L, -1, &n);
      CHECK(n == no && memcmp(s, out, n) == 0);
      lua_pop(L, 1);
    }
  }
  {  /* hc_jcur_string wants the cursor at '"' */
    hc_buf b = HC_BUF_INIT;
    hc_jcur c;
    hc_jcur_init(&c, S(" \"a\""), 4);
    CHECK(hc_jcur_string(&c, &b) == -1);
    CHECK_STREQ(c.err, "unexpected character");
    hc_jcur_init(&c, S(""), 4);
    CHECK(hc_jcur_string(&c, &b) == -1);
    CHECK_STREQ(c.err, "unexpected end of input");
    hc_jcur_init(&c, S("\"a\\ud800\""), 4);
    CHECK(hc_jcur_string(&c, &b) == -1);
    CHECK_STREQ(c.err, "lone surrogate");
    CHECK(c.p == c.start + 2);
    hc_buf_free(&b);
  }
  CHECK(lua_gettop(L) == top);
}

TEST(test_null_and_marker) {
  int top = lua_gettop(L);
  hc_json_push_null(L);
  dec_top("null");
  CHECK(lua_type(L, -1) == LUA_TLIGHTUSERDATA && lua_rawequal(L, -1, -2));
  lua_pop(L, 1);
  dec_top("[null, 1]");
  CHECK(lua_rawlen(L, -1) == 2);
  lua_rawgeti(L, -1, 1);
  CHECK(lua_rawequal(L, -1, -3));
  lua_pop(L, 2);
  dec_top("{\"a\":null}");
  lua_getfield(L, -1, "a");
  CHECK(lua_rawequal(L, -1, -3));
  lua_pop(L, 3);
  /* arrays carry the shared marker, objects nothing */
  hc_json_push_array_mt(L);
  CHECK(lua_istable(L, -1));
  CHECK(lua_getfield(L, -1, "__name") == LUA_TSTRING && strcmp(lua_tostring(L, -1), "json.array") == 0);
  lua_pop(L, 1);
  dec_top("[[]]");
  CHECK(lua_getmetatable(L, -1) && lua_rawequal(L, -1, -3));
  lua_pop(L, 1);
  lua_rawgeti(L, -1, 1);
  CHECK(lua_getmetatable(L, -1) && lua_rawequal(L, -1, -4));
  lua_pop(L, 3);
  dec_top("{}");
  CHECK(!lua_getmetatable(L, -1));
  lua_pop(L, 2);
  CHECK(lua_gettop(L) == top);
  LUA_TRUE("json_decode('[]') ~= nil and debug.getmetatable(json_decode('[]')) == array_mt");
  LUA_TRUE("getmetatable(json_decode('[]')) == false");   /* locked against tenant code */
  LUA_TRUE("json_decode('{\"a\":[1,2,3]}').a[3] == 3 and #json_decode('[1,2,3]') == 3");
  LUA_TRUE("json_decode('null') == null and json_decode('[null]')[1] == null");
}

/* ---------- depth ---------- */

static char *repeat (const char *open, int n, const char *mid, const char *close) {
  size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close);
  char *s = malloc(n * (lo + lc) + lm + 1), *p = s;
  int i;
  for (i = 0; i < n; i++) { memcpy(p, open, lo); p += lo; }
  memcpy(p, mid, lm); p += lm;
  for (i = 0; i < n; i++) { memcpy(p, close, lc); p += lc; }
  *p = '\0';
  return s;
}

static double now_ms (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

TEST(test_depth) {
  char msg[256];
  int top = lua_gettop(L);
  char *s = repeat("[", HC_JSON_MAX_DEPTH, "", "]");
  hc_jcur c;
  double t0;
  if (CHECK(ldecode(s, strlen(s), msg, sizeof(msg)))) lua_pop(L, 1);
  free(s);
  s = repeat("[", HC_JSON_MAX_DEPTH + 1, "", "]");
  CHECK(!ldecode(s, strlen(s), msg, sizeof(msg)));
  CHECK_STREQ(msg, "json: too deep at byte 128");
  hc_jcur_init(&c, s, strlen(s), HC_JSON_MAX_DEPTH);
  CHECK(hc_jcur_skip(&c) == -1);
  CHECK_STREQ(c.err, "too deep");
  free(s);
  s = repeat("{\"a\":", HC_JSON_MAX_DEPTH, "1", "}");
  if (CHECK(ldecode(s, strlen(s), msg, sizeof(msg)))) lua_pop(L, 1);
  free(s);
  s = repeat("{\"a\":[", HC_JSON_MAX_DEPTH / 2, "[]", "]}");  /* 129 levels, mixed */
  CHECK(!ldecode(s, strlen(s), msg, sizeof(msg)));
  CHECK(find_err(msg, "too deep"));
  free(s);
  /* a small explicit limit: exactly max_depth ok, one more refused */
  hc_jcur_init(&c, S("[{\"a\":[]}]"), 3);
  if (CHECK(hc_jcur_value_lua(&c, L) == 0)) lua_pop(L, 1);
  hc_jcur_init(&c, S("[{\"a\":[[]]}]"), 3);
  CHECK(hc_jcur_value_lua(&c, L) == -1);
  CHECK_STREQ(c.err, "too deep");
  CHECK(c.p == c.start + 7);
  hc_jcur_init(&c, S("[{\"a\":[[]]}]"), 3);
  CHECK(hc_jcur_skip(&c) == -1);
  hc_jcur_init(&c, S("1"), 0);
  if (CHECK(hc_jcur_value_lua(&c, L) == 0)) lua_pop(L, 1);
  hc_jcur_init(&c, S("[]"), 0);
  CHECK(hc_jcur_value_lua(&c, L) == -1);
  /* 100,000 levels fail fast, without recursing that deep */
  s = repeat("[", 100000, "", "");
  t0 = now_ms();
  CHECK(!ldecode(s, strlen(s), msg, sizeof(msg)));
  CHECK_STREQ(msg, "json: too deep at byte 128");
  hc_jcur_init(&c, s, strlen(s), HC_JSON_MAX_DEPTH);
  CHECK(hc_jcur_skip(&c) == -1);
  free(s);
  s = repeat("{\"a\":", 100000, "", "");
  CHECK(!ldecode(s, strlen(s), msg, sizeof(msg)));
  CHECK(find_err(msg, "too deep"));
  free(s);
  CHECK(now_ms() - t0 < 100.0);
  CHECK(lua_gettop(L) == top);
}

/* hc_jcur_value_lua leaves nothing behind on failure, whatever depth it failed at */
TEST(test_partial_cleanup) {
  static const char *bad[] = {
    "[1,{\"a\":[2,3", "{\"a\":{\"b\":[1,2,\"\xC0\"]}}", "[[[[[[1,2,3]]]]],x]",
    "{\"k\":\"v\",\"k\":1}", "[\"abc\\q\"]", "[1e999]",
  };
  size_t i;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    hc_jcur c;
    int top;
    lua_pushinteger(L, 7);  /* something of the caller's below */
    top = lua_gettop(L);
    hc_jcur_init(&c, bad[i], strlen(bad[i]), HC_JSON_MAX_DEPTH);
    CHECK(hc_jcur_value_lua(&c, L) == -1);
    CHECK(c.err != NULL);
    CHECK(c.depth == 0);
    CHECK(lua_gettop(L) == top && lua_tointeger(L, -1) == 7);
    lua_pop(L, 1);
  }
  {  /* a cursor walk as the dispatcher does it: value after value, then trailing check */
    hc_jcur c;
    int top = lua_gettop(L);
    hc_jcur_init(&c, S(" 1 \"two\" [3] "), 4);
    CHECK(hc_jcur_value_lua(&c, L) == 0 && lua_tointeger(L, -1) == 1);
    CHECK(hc_jcur_value_lua(&c, L) == 0 && strcmp(lua_tostring(L, -1), "two") == 0);
    CHECK(hc_jcur_skip(&c) == 0);
    CHECK(hc_jcur_ws(&c) == -1);
    CHECK(lua_gettop(L) == top + 2);
    lua_settop(L, top);
  }
}

/* ---------- encoder ---------- */

TEST(test_encode_scalars) {
  CHECK_STREQ(enc_lua("nil", NULL), "null");
  CHECK_STREQ(enc_lua("null", NULL), "null");
  CHECK_STREQ(enc_lua("true", NULL), "true");
  CHECK_STREQ(enc_lua("false", NULL), "false");
  CHECK_STREQ(enc_lua("0", NULL), "0");
  CHECK_STREQ(enc_lua("-1", NULL), "-1");
  CHECK_STREQ(enc_lua("math.maxinteger", NULL), "9223372036854775807");
  CHECK_STREQ(enc_lua("math.mininteger", NULL), "-9223372036854775808");
  CHECK_STREQ(enc_lua("0.1", NULL), "0.1");
  CHECK_STREQ(enc_lua("1/3", NULL), "0.3333333333333333");
  CHECK_STREQ(enc_lua("1.5", NULL), "1.5");
  CHECK_STREQ(enc_lua("-123.456", NULL), "-123.456");
  CHECK_STREQ(enc_lua("3.0", NULL), "3");
  CHECK_STREQ(enc_lua("2.0^53", NULL), "9007199254740992");
  CHECK_STREQ(enc_lua("1e300", NULL), "1e+300");
  CHECK_STREQ(enc_lua("1e21", NULL), "1e+21");
  CHECK_STREQ(enc_lua("1.5e-7", NULL), "1.5e-07");
  CHECK_STREQ(enc_lua("-0.0", NULL), "-0");
  CHECK_STREQ(enc_lua("0.1 + 0.2", NULL), "0.30000000000000004");
  CHECK_STREQ(enc_lua("1.7976931348623157e308", NULL), "1.7976931348623157e+308");
  CHECK_STREQ(enc_lua("4.9406564584124654e-324", NULL), "4.94065645841247e-324");
  CHECK_STREQ(enc_lua("0/0", NULL), "ERR:json: NaN or infinity");
  CHECK_STREQ(enc_lua("-(0/0)", NULL), "ERR:json: NaN or infinity");
  CHECK_STREQ(enc_lua("math.huge", NULL), "ERR:json: NaN or infinity");
  CHECK_STREQ(enc_lua("-math.huge", NULL), "ERR:json: NaN or infinity");
  CHECK_STREQ(enc_lua("{1, 0/0}", NULL), "ERR:json: NaN or infinity");
}

/* Every finite double survives encode -> decode with the same value. */
TEST(test_float_roundtrip) {
  int i, bad = 0, top = lua_gettop(L);
  for (i = 0; i < 20000 && bad < 5; i++) {
    uint64_t bits = rng();
    double d, got;
    char msg[256];
    const char *txt;
    memcpy(&d, &bits, 8);
    if (i % 4 == 0) d = (double)(int64_t)(rng() % 2000000) / 1000.0;  /* "human" numbers */
    if (!isfinite(d)) continue;
    lua_pushnumber(L, d);
    txt = lencode(-1, 0, msg, sizeof(msg));
    lua_pop(L, 1);
    if (!txt || !ldecode(txt, strlen(txt), msg, sizeof(msg))) {
      bad++;
      fprintf(stderr, "  %.17g: %s\n", d, msg);
      continue;
    }
    got = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (got != d) {
      bad++;
      fprintf(stderr, "  %.17g came back as %.17g via %s\n", d, got, txt);
    }
    if (strlen(txt) > 24) {
      bad++;
      fprintf(stderr, "  %.17g: too long: %s\n", d, txt);
    }
  }
  CHECK(bad == 0);
  CHECK(lua_gettop(L) == top);
}

/* printf and strtod follow LC_NUMERIC; the codec must not. */
TEST(test_locale) {
  static const char *locs[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "de_DE", NULL};
  int i;
  for (i = 0; locs[i]; i++)
    if (setlocale(LC_NUMERIC, locs[i])) break;
  if (!locs[i]) {
    fprintf(stderr, "note: no comma-decimal locale installed, locale test skipped\n");
    return;
  }
  CHECK_STREQ(enc_lua("1.5", NULL), "1.5");
  CHECK_STREQ(enc_lua("-0.001", NULL), "-0.001");
  CHECK_STREQ(enc_lua("1/3", NULL), "0.3333333333333333");
  CHECK_STREQ(roundtrip(S("[1.5,2.25e-10,123456789.123]")), "[1.5,2.25e-10,123456789.123]");
  CHECK_STREQ(roundtrip(S("[0.1000000000000000000000000000001]")), "[0.1]");
  setlocale(LC_NUMERIC, "C");
}

TEST(test_encode_strings) {
  CHECK_STREQ(enc_lua("''", NULL), "\"\"");
  CHECK_STREQ(enc_lua("'a/b'", NULL), "\"a/b\"");
  CHECK_STREQ(enc_lua("'\"\\\\'", NULL), "\"\\\"\\\\\"");
  CHECK_STREQ(enc_lua("'\\n\\r\\t\\b\\f'", NULL), "\"\\n\\r\\t\\b\\f\"");
  CHECK_STREQ(enc_lua("'a\\0b\\1\\31\\127'", NULL), "\"a\\u0000b\\u0001\\u001f\x7f\"");
  CHECK_STREQ(enc_lua("'\\u{e9}\\u{20ac}\\u{1f600}'", NULL), "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"");
  CHECK_STREQ(enc_lua("'0123456789abcdef\\n0123456789abcdef\\u{e9}0123456789abcdef\"'", NULL),
              "\"0123456789abcdef\\n0123456789abcdef\xC3\xA9" "0123456789abcdef\\\"\"");
  CHECK_STREQ(enc_lua("'\\xff'", NULL), "ERR:json: invalid UTF-8 in string");
  CHECK_STREQ(enc_lua("'abc\\xC0\\x80'", NULL), "ERR:json: invalid UTF-8 in string");
  CHECK_STREQ(enc_lua("'\\xED\\xA0\\x80'", NULL), "ERR:json: invalid UTF-8 in string");
  CHECK_STREQ(enc_lua("'\\xF4\\x90\\x80\\x80'", NULL), "ERR:json: invalid UTF-8 in string");
  CHECK_STREQ(enc_lua("'0123456789abcdef0123\\xE2\\x82'", NULL), "ERR:json: invalid UTF-8 in string");
  CHECK_STREQ(enc_lua("{['\\xff']=1}", NULL), "ERR:json: invalid UTF-8 in string");
  CHECK_STREQ(enc_lua("{a={'ok','\\xff'}}", NULL), "ERR:json: invalid UTF-8 in string");
  {  /* the C helpers directly */
    hc_buf b = HC_BUF_INIT;
    hc_buf_add(&b, "x", 1);
    CHECK(hc_json_add_string(&b, S("a\x01\"")) == 0);
    CHECK(b.n == 12 && memcmp(b.p, "x\"a\\u0001\\\"\"", 12) == 0);
    CHECK(hc_json_add_string(&b, S("ok\xC3")) == -1);
    CHECK(b.n == 12);  /* restored after the failure */
    hc_buf_free(&b);
    CHECK(hc_utf8_valid(S("")));
    CHECK(hc_utf8_valid(S("plain ascii, longer than one word")));
    CHECK(hc_utf8_valid(S("\x00\x7f\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xF0\x90\x80\x80\xF4\x8F\xBF\xBF")));
    CHECK(!hc_utf8_valid(S("\xC0\x80")));
    CHECK(!hc_utf8_valid(S("\xE0\x80\x80")));
    CHECK(!hc_utf8_valid(S("\xED\xA0\x80")));
    CHECK(!hc_utf8_valid(S("\xF4\x90\x80\x80")));
    CHECK(!hc_utf8_valid(S("\xF0\x9F\x98")));
    CHECK(!hc_utf8_valid(S("abcdefgh\x80" "abcdefgh")));
    CHECK(!hc_utf8_valid(S("abcdefghabcdefg\xC3")));
  }
}

TEST(test_encode_tables) {
  CHECK_STREQ(enc_lua("{}", NULL), "{}");
  CHECK_STREQ(enc_lua("setmetatable({}, array_mt)", NULL), "[]");
  CHECK_STREQ(enc_lua("{1, 2, 3}", NULL), "[1,2,3]");
  CHECK_STREQ(enc_lua("{'a', {}, {{}}, true, null}", NULL), "[\"a\",{},[{}],true,null]");
  CHECK_STREQ(enc_lua("{a = 1}", NULL), "{\"a\":1}");
  CHECK_STREQ(enc_lua("{a = {b = {c = 'd'}}}", NULL), "{\"a\":{\"b\":{\"c\":\"d\"}}}");
  CHECK_STREQ(enc_lua("{[1] = 'x', [2] = 'y'}", NULL), "[\"x\",\"y\"]");  /* hash-part sequence */
  CHECK_STREQ(enc_lua("{[2] = 'y', [1] = 'x'}", NULL), "[\"x\",\"y\"]");
  CHECK_STREQ(enc_lua("setmetatable({1, null, 3}, array_mt)", NULL), "[1,null,3]");
  /* raw access: metamethods of values are never called */
  CHECK_STREQ(enc_lua("setmetatable({1, 2}, {__index = error, __len = error, __pairs = error,"
                      " __newindex = error, __metatable = 'locked'})", NULL), "[1,2]");
  CHECK_STREQ(enc_lua("setmetatable({}, {__index = function() return 1 end})", NULL), "{}");
  CHECK_STREQ(enc_lua("setmetatable({k = 'v'}, {__pairs = error, __tostring = error})", NULL),
              "{\"k\":\"v\"}");
  /* errors */
  CHECK_STREQ(enc_lua("{1, nil, 3}", NULL), "ERR:json: sparse array");
  CHECK_STREQ(enc_lua("{[2] = 'x'}", NULL), "ERR:json: sparse array");
  CHECK_STREQ(enc_lua("{[1] = 1, [3] = 3}", NULL), "ERR:json: sparse array");
  CHECK_STREQ(enc_lua("{1, 2, x = 3}", NULL), "ERR:json: non-string key");
  CHECK_STREQ(enc_lua("{x = 1, [1] = 2}", NULL), "ERR:json: non-string key");
  CHECK_STREQ(enc_lua("{[0] = 1}", NULL), "ERR:json: non-string key");
  CHECK_STREQ(enc_lua("{[-1] = 1}", NULL), "ERR:json: non-string key");
  CHECK_STREQ(enc_lua("{[1.5] = 1}", NULL), "ERR:json: non-string key");
  CHECK_STREQ(enc_lua("{[true] = 1}", NULL), "ERR:json: non-string key");
  CHECK_STREQ(enc_lua("{[{}] = 1}", NULL), "ERR:json: non-string key");
  CHECK_STREQ(enc_lua("print", NULL), "ERR:json: unsupported type function");
  CHECK_STREQ(enc_lua("{f = print}", NULL), "ERR:json: unsupported type function");
  CHECK_STREQ(enc_lua("coroutine.create(print)", NULL), "ERR:json: unsupported type thread");
  CHECK_STREQ(enc_lua("{io.stdout}", NULL), "ERR:json: unsupported type userdata");
  CHECK_STREQ(enc_lua("(function() local t = {} t.self = t return t end)()", NULL),
              "ERR:json: too deep or cyclic");
  CHECK_STREQ(enc_lua("(function() local t = {} t[1] = {t} return t end)()", NULL),
              "ERR:json: too deep or cyclic");
  {  /* 128 levels (the innermost {} is one) encode, 129 do not */
    char *want = repeat("[", 127, "{}", "]");
    CHECK_STREQ(enc_lua("(function() local t = {} for i = 1, 127 do t = {t} end return t end)()", NULL),
                want);
    free(want);
  }
  CHECK_STREQ(enc_lua("(function() local t = {} for i = 1, 128 do t = {t} end return t end)()", NULL),
              "ERR:json: too deep or cyclic");
  {  /* a light userdata other than null; a non-table schema is ignored */
    char msg[256];
    static int other;
    int top = lua_gettop(L);
    lua_pushlightuserdata(L, &other);
    CHECK(lencode(-1, 0, msg, sizeof(msg)) == NULL);
    CHECK_STREQ(msg, "json: unsupported type lightuserdata");
    lua_settop(L, top);
  }
}

TEST(test_encode_schema) {
  CHECK_STREQ(enc_lua("{}", "{type = 'array'}"), "[]");
  CHECK_STREQ(enc_lua("{}", "{type = 'object'}"), "{}");
  CHECK_STREQ(enc_lua("{}", "{type = {'null', 'array'}}"), "[]");
  CHECK_STREQ(enc_lua("{}", "{type = {'array', 'object'}}"), "{}");
  CHECK_STREQ(enc_lua("{}", "{type = 'string'}"), "{}");
  CHECK_STREQ(enc_lua("{}", "{}"), "{}");
  CHECK_STREQ(enc_lua("{1}", "{type = 'object'}"), "[1]");  /* only a hint for empty tables */
  CHECK_STREQ(enc_lua("{a = {}}", "{type = 'object', properties = {a = {type = 'array'}}}"),
              "{\"a\":[]}");
  CHECK_STREQ(enc_lua("{a = {}}", "{properties = {b = {type = 'array'}}}"), "{\"a\":{}}");
  CHECK_STREQ(enc_lua("{a = {}}", "{additionalProperties = {type = 'array'}}"), "{\"a\":[]}");
  CHECK_STREQ(enc_lua("{a = {}}", "{properties = {a = {type = 'object'}}, "
                      "additionalProperties = {type = 'array'}}"), "{\"a\":{}}");
  CHECK_STREQ(enc_lua("{a = {}}", "{additionalProperties = true}"), "{\"a\":{}}");
  CHECK_STREQ(enc_lua("{{}, {}}", "{type = 'array', items = {type = 'array'}}"), "[[],[]]");
  CHECK_STREQ(enc_lua("{x = {{}, {y = {}}}}",
                      "{properties = {x = {items = {properties = {y = {type = 'array'}}}}}}"),
              "{\"x\":[{},{\"y\":[]}]}");
  /* the schema is read raw too */
  CHECK_STREQ(enc_lua("{}", "setmetatable({}, {__index = function() error('no') end})"), "{}");
  CHECK_STREQ(enc_lua("{}", "setmetatable({}, {__index = {type = 'array'}})"), "{}");
  CHECK_STREQ(enc_lua("{a = {}}", "{properties = setmetatable({}, {__index = error})}"),
              "{\"a\":{}}");
  {  /* hc_json_encode directly: balanced stack, prefix kept, restored on error */
    hc_buf b = HC_BUF_INIT;
    const char *err = "unset";
    int top;
    hc_buf_add(&b, "P:", 2);
    eval("return {}");
    eval("return {type = 'array'}");
    top = lua_gettop(L);
    CHECK(hc_json_encode(L, -2, -1, &b, HC_JSON_MAX_DEPTH, &err) == 0);
    CHECK(lua_gettop(L) == top);
    CHECK(b.n == 4 && memcmp(b.p, "P:[]", 4) == 0);
    CHECK(hc_json_encode(L, -2, 0, &b, HC_JSON_MAX_DEPTH, &err) == 0);
    CHECK(b.n == 6 && memcmp(b.p, "P:[]{}", 6) == 0);
    lua_settop(L, top - 2);
    eval("return {a = {1, 2, {b = {c = print}}}}");
    top = lua_gettop(L);
    CHECK(hc_json_encode(L, -1, 0, &b, HC_JSON_MAX_DEPTH, &err) == -1);
    CHECK_STREQ(err, "unsupported type function");
    CHECK(lua_gettop(L) == top);
    CHECK(b.n == 6);
    CHECK(hc_json_encode(L, -1, 0, &b, 2, &err) == -1);
    CHECK_STREQ(err, "too deep or cyclic");
    lua_settop(L, top - 1);
    hc_buf_free(&b);
  }
}

/* ---------- round trips ---------- */

TEST(test_roundtrip) {
  static const char *same[] = {
    "{\"id\":9007199254740993}", "[]", "{}", "[[],{}]", "{\"a\":[]}", "{\"a\":{}}", "[[[]]]",
    "{\"jsonrpc\":\"2.0\"}", "[1,-2,3.5,true,false,null,\"s\"]",
    "[9223372036854775807,-9223372036854775808,9.223372036854776e+18]",
    "{\"a\":[1,2,{\"b\":null}]}", "\"\\u0000\\u001f\\\"\\\\\\n\"", "\"\xC3\xA9/\x7f\"",
    "[1e+300,0.1,-0.25,4.94065645841247e-324]", "null", "0", "\"\"", "[{\"x\":[[{}]]}]",
  };
  size_t i;
  int top = lua_gettop(L);
  for (i = 0; i < sizeof(same) / sizeof(same[0]); i++)
    CHECK_STREQ(roundtrip(same[i], strlen(same[i])), same[i]);
  /* not byte-identical, but canonical after one pass */
  CHECK_STREQ(roundtrip(S(" [ 1 , 2 ] ")), "[1,2]");
  CHECK_STREQ(roundtrip(S("\"\\/\\u0041\\ud83d\\ude00\"")), "\"/A\xF0\x9F\x98\x80\"");
  CHECK_STREQ(roundtrip(S("[1E+2,1.0,-0.0,1e-400]")), "[100,1,-0,0]");
  CHECK_STREQ(roundtrip(S("[-0]")), "[0]");
  CHECK_STREQ(roundtrip(S("9223372036854775808")), "9.223372036854776e+18");
  /* multi-key objects come back in lua_next order: compare structurally */
  LUA_TRUE("deq(json_decode(json_encode(json_decode('{\"a\":1,\"b\":[1,{\"c\":[]}],\"d\":{\"e\":null,\"f\":\"g\"}}'))),"
           " json_decode('{\"a\":1,\"b\":[1,{\"c\":[]}],\"d\":{\"e\":null,\"f\":\"g\"}}'))");
  LUA_TRUE("json_encode(json_decode('{\"method\":\"x\",\"params\":{\"list\":[],\"map\":{}}}'))"
           ":find('\"list\":[]', 1, true) ~= nil");
  LUA_TRUE("math.type(json_decode('{\"id\":9007199254740993}').id) == 'integer'");
  LUA_TRUE("select(2, json_encode(function() end)) == 'json: unsupported type function'");
  LUA_TRUE("select(2, json_decode('[1,')) == 'json: unexpected end of input at byte 3'");
  LUA_TRUE("json_encode({}, nil) == '{}' and json_encode({}, {type='array'}) == '[]'");
  LUA_TRUE("not pcall(json_encode) and not pcall(json_encode, {}, 5) and not pcall(json_decode)");
  {  /* a large string through both directions */
    char *big = malloc(5600 + 3);
    size_t k;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    big[0] = '"';
    for (k = 0; k < 5600; k++) big[k + 1] = b64[(k * 7 + k / 64) % 64];
    big[5601] = '"';
    big[5602] = '\0';
    CHECK_STREQ(roundtrip(big, 5602), big);
    free(big);
  }
  CHECK(lua_gettop(L) == top);
}

/* Random mutations of valid documents: no crash (the sanitizers watch), decode and skip agree
** except on duplicate keys, the stack stays balanced, and accepted input re-encodes. */
TEST(test_mutations) {
  static const char *seeds[] = {
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sys.ping\",\"params\":{\"path\":\"/input/a.txt\",\"offset\":0}}",
    "[1,-2.5e+10,\"\\u00e9\\ud83d\\ude00\\n\",true,false,null,{\"a\":[[],{}]}]",
    "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80 plain ascii text \\\" \\\\ \\/\"",
    "[0.000123,123456789012345678901234567890,-9223372036854775808,1E5]",
  };
  static const char pool[] = "{}[]\",:\\-+.eE0123456789 \t\nuUtrfalsn\x80\xC3\xED\xF4\xFF\x01";
  int i, bad = 0, top = lua_gettop(L);
  for (i = 0; i < 30000; i++) {
    char buf[512], msg[256];
    const char *seed = seeds[i % 4];
    size_t n = strlen(seed);
    int k, muts = 1 + (int)(rng() % 4), dec, sk;
    hc_jcur c;
    memcpy(buf, seed, n);
    for (k = 0; k < muts; k++) {
      size_t at = rng() % n;
      switch (rng() % 3) {
        case 0: buf[at] = pool[rng() % (sizeof(pool) - 1)]; break;
        case 1: if (n > 1) { memmove(buf + at, buf + at + 1, n - at - 1); n--; } break;
        default:
          if (n < sizeof(buf) - 1) {
            memmove(buf + at + 1, buf + at, n - at);
            buf[at] = pool[rng() % (sizeof(pool) - 1)];
            n++;
          }
      }
    }
    dec = ldecode(buf, n, msg, sizeof(msg));
    if (dec) {
      const char *txt = lencode(-1, 0, msg, sizeof(msg));
      if (!txt) { bad++; fprintf(stderr, "  accepted but cannot re-encode: %.*s: %s\n", (int)n, buf, msg); }
      lua_pop(L, 1);
    }
    else if (strncmp(msg, "json: ", 6) != 0) {
      bad++;
      fprintf(stderr, "  odd failure: %s\n", msg);
    }
    hc_jcur_init(&c, buf, n, HC_JSON_MAX_DEPTH);
    sk = hc_jcur_skip(&c) == 0 && hc_jcur_ws(&c) < 0;
    if (sk != dec && !(sk && strstr(msg, "duplicate key"))) {
      bad++;
      fprintf(stderr, "  decode %d / skip %d disagree on %.*s (%s)\n", dec, sk, (int)n, buf, msg);
    }
    if (bad > 5) break;
  }
  CHECK(bad == 0);
  CHECK(lua_gettop(L) == top);
}

static const char prelude[] =
  "function deq(a, b)\n"
  "  if type(a) ~= type(b) then return false end\n"
  "  if type(a) ~= 'table' then return a == b and math.type(a) == math.type(b) end\n"
  "  if getmetatable(a) ~= getmetatable(b) then return false end\n"
  "  for k, v in pairs(a) do if not deq(v, b[k]) then return false end end\n"
  "  for k in pairs(b) do if a[k] == nil then return false end end\n"
  "  return true\n"
  "end\n";

int main (void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  lua_pushcfunction(L, hc_json_l_decode);
  lua_setglobal(L, "json_decode");
  lua_pushcfunction(L, hc_json_l_encode);
  lua_setglobal(L, "json_encode");
  hc_json_push_null(L);
  lua_setglobal(L, "null");
  hc_json_push_array_mt(L);
  lua_setglobal(L, "array_mt");
  if (luaL_dostring(L, prelude) != LUA_OK) {
    fprintf(stderr, "prelude: %s\n", lua_tostring(L, -1));
    return 1;
  }
  RUN(test_table);
  RUN(test_positions);
  RUN(test_numbers);
  RUN(test_number_conversion);
  RUN(test_strings);
  RUN(test_null_and_marker);
  RUN(test_depth);
  RUN(test_partial_cleanup);
  RUN(test_encode_scalars);
  RUN(test_float_roundtrip);
  RUN(test_locale);
  RUN(test_encode_strings);
  RUN(test_encode_tables);
  RUN(test_encode_schema);
  RUN(test_roundtrip);
  RUN(test_mutations);
  CHECK(stack_errors == 0);
  CHECK(lua_gettop(L) == 0);
  lua_close(L);
  return tu_summary();
}
