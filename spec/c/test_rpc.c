/*
** test_rpc.c: the JSON-RPC 2.0 envelope (core/rpc.h): parsing single requests and batches,
** every invalid-request case, raw id and params spans, and the exact response texts.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "testutil.h"

#define S(lit)  lit, sizeof(lit) - 1

/* ---------- helpers ---------- */

static int span_is(const char *p, size_t n, const char *want) {
  int ok = p && n == strlen(want) && memcmp(p, want, n) == 0;
  if (!ok)
    fprintf(stderr, "  span: \"%.*s\" (len %zu), want \"%s\"\n", p ? (int)n : 6,
            p ? p : "(null)", n, want);
  return ok;
}
#define CHECK_SPAN(p, n, want)  CHECK(span_is((p), (n), (want)))

/* Parse text as one single request; returns the kind, *r filled. */
static hc_rpc_kind parse1(const char *text, hc_rpc_req *r) {
  hc_rpc_req *many = NULL;
  size_t count = 99;
  const char *err = NULL;
  hc_rpc_kind k = hc_rpc_parse(text, strlen(text), r, &many, &count, &err);
  if (k != HC_RPC_BATCH) {
    if (many) fprintf(stderr, "  many set for a non-batch: %s\n", text);
    free(many);
  }
  else free(many);
  return k;
}

/* A valid single request: its id, method and params as expected. */
static void check_valid(const char *text, int has_id, const char *id, const char *method,
                        const char *params) {
  hc_rpc_req r;
  hc_rpc_kind k = parse1(text, &r);
  int ok = CHECK(k == HC_RPC_SINGLE);
  ok &= CHECK(!r.invalid);
  if (r.invalid) fprintf(stderr, "  why: %s\n", r.why);
  ok &= CHECK(r.has_id == has_id);
  ok &= CHECK_SPAN(r.id, r.id_len, id);
  ok &= CHECK_STREQ(r.method, method);
  ok &= CHECK(r.method_len == strlen(method));
  if (params) ok &= CHECK_SPAN(r.params, r.params_len, params);
  else ok &= CHECK(r.params == NULL);
  if (!ok) fprintf(stderr, "  input: %s\n", text);
}

/* An invalid request (-32600): kind SINGLE, invalid, the id as given (or null), the reason. */
static void check_invalid(const char *text, int has_id, const char *id, const char *why) {
  hc_rpc_req r;
  hc_rpc_kind k = parse1(text, &r);
  int ok = CHECK(k == HC_RPC_SINGLE);
  ok &= CHECK(r.invalid);
  ok &= CHECK(r.has_id == has_id);
  ok &= CHECK_SPAN(r.id, r.id_len, id);
  if (why) ok &= CHECK_STREQ(r.invalid ? r.why : NULL, why);
  else ok &= CHECK(r.why != NULL);
  if (!ok) fprintf(stderr, "  input: %s\n", text);
}

/* A valid envelope whose method no handler can have (too long, NUL): answered -32601. */
static void check_unknown_method(const char *text) {
  hc_rpc_req r;
  hc_rpc_kind k = parse1(text, &r);
  int ok = CHECK(k == HC_RPC_SINGLE);
  ok &= CHECK(!r.invalid);
  ok &= CHECK(r.method_unknown);
  ok &= CHECK(r.method_len == 0);
  if (!ok) fprintf(stderr, "  input: %.80s\n", text);
}

static void check_parse_error(const char *text, size_t n) {
  hc_rpc_req r, *many = (hc_rpc_req *)&r;
  size_t count = 99;
  const char *err = NULL;
  hc_rpc_kind k = hc_rpc_parse(text, n, &r, &many, &count, &err);
  int ok = CHECK(k == HC_RPC_PARSE_ERROR);
  ok &= CHECK(err != NULL && *err);
  ok &= CHECK(many == NULL);
  ok &= CHECK(count == 0);
  if (!ok) fprintf(stderr, "  input: %.*s\n", (int)n, text);
  if (k == HC_RPC_BATCH) free(many);
}
#define CHECK_PARSE_ERROR(lit)  check_parse_error(S(lit))

/* ---------- single requests ---------- */

TEST(single_valid) {
  check_valid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sys.ping\"}", 1, "1", "sys.ping", NULL);
  check_valid("{\"method\":\"a.b\",\"id\":\"x\",\"jsonrpc\":\"2.0\"}", 1, "\"x\"", "a.b", NULL);
  /* a notification: no id member */
  check_valid("{\"jsonrpc\":\"2.0\",\"method\":\"n\"}", 0, "null", "n", NULL);
  /* id null is an id (a request, answered with id null) */
  check_valid("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"m\"}", 1, "null", "m", NULL);
  /* whitespace everywhere JSON allows it */
  check_valid(" \t\r\n{ \"jsonrpc\" : \"2.0\" ,\n \"id\" :\t7 , \"method\" : \"m\" , "
              "\"params\" : [ 1 , 2 ] }\n ", 1, "7", "m", "[ 1 , 2 ]");
  /* unknown members are ignored */
  check_valid("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"x\":{\"id\":[1]},\"id\":2}", 1, "2", "m", NULL);
  /* an empty method name is a string: the dispatcher answers -32601 for it */
  check_valid("{\"jsonrpc\":\"2.0\",\"method\":\"\",\"id\":3}", 1, "3", "", NULL);
}

TEST(single_span) {
  const char *text = "  {\"jsonrpc\":\"2.0\",\"method\":\"m\"}  \n";
  hc_rpc_req r;
  CHECK(parse1(text, &r) == HC_RPC_SINGLE);
  CHECK(r.span == text + 2);
  CHECK_SPAN(r.span, r.span_len, "{\"jsonrpc\":\"2.0\",\"method\":\"m\"}");
}

TEST(raw_ids_exact) {
  static const char *ids[] = {
    "1e3", "-0", "\"a\\u00e9\"", "0", "-1", "1.5", "-1.5E+10", "2E-3", "0.0",
    "9007199254740993", "123456789012345678901234567890", "-9223372036854775808",
    "\"\"", "\"x\\\"y\"", "\"\\ud83d\\ude00\"", "\"\xc3\xa9\"", "\"a\\/b\"", "null",
  };
  for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
    char text[256];
    snprintf(text, sizeof text, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"m\"}", ids[i]);
    check_valid(text, 1, ids[i], "m", NULL);
    /* with whitespace around the id: the span is the value only */
    snprintf(text, sizeof text, "{\"id\" :  %s \n,\"jsonrpc\":\"2.0\",\"method\":\"m\"}", ids[i]);
    check_valid(text, 1, ids[i], "m", NULL);
  }
}

TEST(bad_ids) {
  /* object, array, boolean ids: has_id 0 (answered with id null), invalid */
  static const char *ids[] = { "{}", "{\"a\":1}", "[]", "[1]", "true", "false" };
  for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
    char text[256];
    snprintf(text, sizeof text, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"m\"}", ids[i]);
    check_invalid(text, 0, "null", "id must be a string, a number or null");
  }
}

TEST(jsonrpc_member) {
  check_invalid("{\"id\":1,\"method\":\"m\"}", 1, "1", "missing jsonrpc \"2.0\"");
  check_invalid("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"m\"}", 1, "1", "jsonrpc must be \"2.0\"");
  check_invalid("{\"jsonrpc\":\"2.00\",\"id\":1,\"method\":\"m\"}", 1, "1", "jsonrpc must be \"2.0\"");
  check_invalid("{\"jsonrpc\":\"2.0 \",\"id\":1,\"method\":\"m\"}", 1, "1", "jsonrpc must be \"2.0\"");
  check_invalid("{\"jsonrpc\":\"\",\"id\":1,\"method\":\"m\"}", 1, "1", "jsonrpc must be \"2.0\"");
  check_invalid("{\"jsonrpc\":2.0,\"id\":1,\"method\":\"m\"}", 1, "1", "jsonrpc must be \"2.0\"");
  check_invalid("{\"jsonrpc\":2,\"id\":1,\"method\":\"m\"}", 1, "1", "jsonrpc must be \"2.0\"");
  check_invalid("{\"jsonrpc\":null,\"id\":1,\"method\":\"m\"}", 1, "1", "jsonrpc must be \"2.0\"");
  check_invalid("{\"jsonrpc\":[\"2.0\"],\"id\":1,\"method\":\"m\"}", 1, "1", "jsonrpc must be \"2.0\"");
  /* the member name is compared decoded, as JSON says; a differently-cased name is not it */
  check_valid("{\"json\\u0072pc\":\"2\\u002e0\",\"id\":1,\"method\":\"m\"}", 1, "1", "m", NULL);
  check_invalid("{\"JSONRPC\":\"2.0\",\"id\":1,\"method\":\"m\"}", 1, "1", "missing jsonrpc \"2.0\"");
}

TEST(method_member) {
  check_invalid("{\"jsonrpc\":\"2.0\",\"id\":1}", 1, "1", "missing method");
  check_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", 1, "1", "method must be a string");
  check_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":null}", 1, "1", "method must be a string");
  check_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":true}", 1, "1", "method must be a string");
  check_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":[\"m\"]}", 1, "1", "method must be a string");
  check_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":{\"m\":1}}", 1, "1", "method must be a string");
  check_unknown_method("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\\u0000b\"}");
  check_invalid("{}", 0, "null", NULL);
  /* both missing: a reason is given either way */
  check_invalid("{\"id\":\"q\"}", 1, "\"q\"", NULL);
}

TEST(method_escapes_decoded) {
  check_valid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sys\\u002eping\"}", 1, "1", "sys.ping", NULL);
  check_valid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\\/b\"}", 1, "1", "a/b", NULL);
  check_valid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\\u00e9t\\u00E9\"}", 1, "1",
              "\xc3\xa9t\xc3\xa9", NULL);
  check_valid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\\ud83d\\ude00\"}", 1, "1",
              "\xf0\x9f\x98\x80", NULL);
  check_valid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$/cancel\\u0052equest\"}", 1, "1",
              "$/cancelRequest", NULL);
  check_valid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"t\\\"q\\\\\\n\"}", 1, "1", "t\"q\\\n", NULL);
}

static void method_of_length(size_t n, int escaped, char *text, size_t cap) {
  size_t k = (size_t)snprintf(text, cap, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"");
  for (size_t i = 0; i < n; i++) {
    if (escaped) { memcpy(text + k, "\\u0061", 6); k += 6; }
    else text[k++] = 'a';
  }
  snprintf(text + k, cap - k, "\"}");
}

TEST(method_length_limit) {
  static char text[8192];
  char want[HC_METHOD_MAX + 2];
  memset(want, 'a', sizeof want);
  want[HC_METHOD_MAX] = '\0';
  method_of_length(HC_METHOD_MAX, 0, text, sizeof text);
  check_valid(text, 1, "1", want, NULL);
  /* the limit counts decoded bytes: 256 escapes are 256 bytes */
  method_of_length(HC_METHOD_MAX, 1, text, sizeof text);
  check_valid(text, 1, "1", want, NULL);
  method_of_length(HC_METHOD_MAX + 1, 0, text, sizeof text);
  check_unknown_method(text);
  method_of_length(HC_METHOD_MAX + 1, 1, text, sizeof text);
  check_unknown_method(text);
  method_of_length(5000, 0, text, sizeof text);
  check_unknown_method(text);
  /* a multi-byte character straddling the limit: 255 'a' + "é" = 257 bytes */
  size_t k = (size_t)snprintf(text, sizeof text, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"");
  memset(text + k, 'a', HC_METHOD_MAX - 1);
  k += HC_METHOD_MAX - 1;
  snprintf(text + k, sizeof text - k, "\xc3\xa9\"}");
  check_unknown_method(text);
}

TEST(params_member) {
  check_valid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{}}", 1, "1", "m", "{}");
  check_valid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":[]}", 1, "1", "m", "[]");
  check_valid("{\"jsonrpc\":\"2.0\",\"params\":{\"a\":[1,{\"b\":\"}\"}],\"c\":\"\\\"]\"},"
              "\"id\":1,\"method\":\"m\"}", 1, "1", "m",
              "{\"a\":[1,{\"b\":\"}\"}],\"c\":\"\\\"]\"}");
  check_valid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\": \n[ \"x\" ,{ } ] \n}", 1,
              "1", "m", "[ \"x\" ,{ } ]");
  static const char *bad[] = { "1", "\"x\"", "null", "true", "false", "-2.5" };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char text[256];
    snprintf(text, sizeof text, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":%s}", bad[i]);
    check_invalid(text, 1, "1", "params must be an object or an array");
  }
}

TEST(duplicate_members) {
  check_invalid("{\"jsonrpc\":\"2.0\",\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"}", 1, "1",
                "duplicate member");
  check_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"method\":\"m\"}", 1, "1",
                "duplicate member");
  check_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":[],\"params\":{}}", 1, "1",
                "duplicate member");
  /* a duplicate id: invalid whatever the values (which one is echoed is not specified) */
  hc_rpc_req r;
  CHECK(parse1("{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":1,\"method\":\"m\"}", &r) == HC_RPC_SINGLE);
  CHECK(r.invalid);
  CHECK_STREQ(r.why, "duplicate member");
  /* the name written with an escape is the same member */
  check_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"m\\u0065thod\":\"m\"}", 1, "1",
                "duplicate member");
}

TEST(non_object_single) {
  static const char *texts[] = { "1", "\"x\"", "null", "true", " 3.5 " };
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
    check_invalid(texts[i], 0, "null", NULL);
}

TEST(parse_errors) {
  CHECK_PARSE_ERROR("");
  CHECK_PARSE_ERROR("   \r\n\t");
  CHECK_PARSE_ERROR("{");
  CHECK_PARSE_ERROR("{bad");
  CHECK_PARSE_ERROR("{\"jsonrpc\":\"2.0\",}");
  CHECK_PARSE_ERROR("{\"jsonrpc\":\"2.0\" \"method\":\"m\"}");
  CHECK_PARSE_ERROR("{\"jsonrpc\":\"2.0\",\"method\":\"m\"} x");
  CHECK_PARSE_ERROR("{\"jsonrpc\":\"2.0\",\"method\":\"m\"}{}");
  CHECK_PARSE_ERROR("{'jsonrpc':'2.0'}");
  CHECK_PARSE_ERROR("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":01}");
  CHECK_PARSE_ERROR("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":NaN}");
  CHECK_PARSE_ERROR("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":+1}");
  CHECK_PARSE_ERROR("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":1e999}");
  CHECK_PARSE_ERROR("{\"jsonrpc\":\"2.0\",\"method\":\"\\ud800\"}");
  CHECK_PARSE_ERROR("{\"jsonrpc\":\"2.0\",\"method\":\"\xff\"}");
  CHECK_PARSE_ERROR("{\"jsonrpc\":\"2.0\",\"method\":\"a\nb\"}");
  CHECK_PARSE_ERROR("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[1,]}");
  CHECK_PARSE_ERROR("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{\"a\"}}");
  CHECK_PARSE_ERROR("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"x\":tru}");
  CHECK_PARSE_ERROR("[");
  CHECK_PARSE_ERROR("[1,]");
  CHECK_PARSE_ERROR("[{\"jsonrpc\":\"2.0\",\"method\":\"m\"}");
  CHECK_PARSE_ERROR("[{\"jsonrpc\":\"2.0\",\"method\":\"m\"}]]");
  CHECK_PARSE_ERROR("[{\"jsonrpc\":\"2.0\",\"method\":\"m\"},{\"jsonrpc\":}]");
  CHECK_PARSE_ERROR("]");
  CHECK_PARSE_ERROR("nul");
  CHECK_PARSE_ERROR("\xef\xbb\xbf{\"jsonrpc\":\"2.0\",\"method\":\"m\"}");   /* a BOM is not JSON */
  /* an embedded NUL ends nothing: it is a stray byte */
  CHECK_PARSE_ERROR("{\"jsonrpc\":\"2.0\",\"method\":\"m\"}\0");
  /* too deep */
  static char deep[1024];
  size_t k = (size_t)snprintf(deep, sizeof deep, "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":");
  for (int i = 0; i < 200; i++) deep[k++] = '[';
  for (int i = 0; i < 200; i++) deep[k++] = ']';
  deep[k++] = '}';
  check_parse_error(deep, k);
}

/* ---------- batches ---------- */

TEST(batch_basic) {
  const char *text = " [ {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"} ,1,"
                     "{\"jsonrpc\":\"2.0\",\"method\":\"b\",\"params\":[2]}, [] ,\"x\",null,"
                     "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"c\"},"
                     "{\"jsonrpc\":\"2.0\",\"id\":\"z\",\"method\":\"d\",\"method\":\"d\"} ] ";
  hc_rpc_req one, *many = NULL;
  size_t count = 0;
  const char *err = NULL;
  hc_rpc_kind k = hc_rpc_parse(text, strlen(text), &one, &many, &count, &err);
  CHECK(k == HC_RPC_BATCH);
  if (!CHECK(count == 8) || !many) { free(many); return; }
  CHECK(!many[0].invalid);
  CHECK(many[0].has_id == 1);
  CHECK_SPAN(many[0].id, many[0].id_len, "1");
  CHECK_STREQ(many[0].method, "a");
  CHECK_SPAN(many[0].span, many[0].span_len, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}");
  /* non-object elements: invalid, id null, span exactly the element */
  static const char *elems[] = { "1", NULL, "[]", "\"x\"", "null" };
  for (size_t i = 1; i <= 5; i++) {
    if (i == 2) continue;
    CHECK(many[i].invalid);
    CHECK(many[i].has_id == 0);
    CHECK_SPAN(many[i].id, many[i].id_len, "null");
    CHECK_STREQ(many[i].why, "a request must be an object");
    CHECK_SPAN(many[i].span, many[i].span_len, elems[i - 1]);
  }
  CHECK(!many[2].invalid);
  CHECK(many[2].has_id == 0);
  CHECK_STREQ(many[2].method, "b");
  CHECK_SPAN(many[2].params, many[2].params_len, "[2]");
  CHECK(many[6].invalid);
  CHECK(many[6].has_id == 0);
  CHECK_SPAN(many[6].id, many[6].id_len, "null");
  CHECK(many[7].invalid);
  CHECK(many[7].has_id == 1);
  CHECK_SPAN(many[7].id, many[7].id_len, "\"z\"");
  CHECK_STREQ(many[7].why, "duplicate member");
  free(many);
}

TEST(batch_empty) {
  static const char *texts[] = { "[]", "[ ]", " \n[\t]\r\n" };
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    hc_rpc_req one, *many = NULL;
    size_t count = 99;
    const char *err = NULL;
    CHECK(hc_rpc_parse(texts[i], strlen(texts[i]), &one, &many, &count, &err) == HC_RPC_BATCH);
    CHECK(count == 0);
    free(many);
  }
}

TEST(batch_nested_and_large) {
  hc_rpc_req one, *many = NULL;
  size_t count = 0;
  const char *err = NULL;
  CHECK(hc_rpc_parse(S("[[{\"jsonrpc\":\"2.0\",\"method\":\"m\"}]]"), &one, &many, &count, &err) ==
        HC_RPC_BATCH);
  CHECK(count == 1);
  if (count == 1 && many) {
    CHECK(many[0].invalid);
    CHECK_SPAN(many[0].span, many[0].span_len, "[{\"jsonrpc\":\"2.0\",\"method\":\"m\"}]");
  }
  free(many);
  /* a big batch: every element parsed, ids in order */
  hc_buf b = HC_BUF_INIT;
  hc_buf_addc(&b, '[');
  for (int i = 0; i < 1000; i++) {
    char el[96];
    snprintf(el, sizeof el, "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"m%d\"}", i ? "," : "", i, i);
    hc_buf_adds(&b, el);
  }
  hc_buf_addc(&b, ']');
  many = NULL;
  CHECK(hc_rpc_parse(b.p, b.n, &one, &many, &count, &err) == HC_RPC_BATCH);
  CHECK(count == 1000);
  int bad = 0;
  for (size_t i = 0; many && i < count; i++) {
    char id[32], m[32];
    snprintf(id, sizeof id, "%zu", i);
    snprintf(m, sizeof m, "m%zu", i);
    if (many[i].invalid || !many[i].has_id || many[i].id_len != strlen(id) ||
        memcmp(many[i].id, id, strlen(id)) != 0 || strcmp(many[i].method, m) != 0)
      bad++;
  }
  CHECK(bad == 0);
  free(many);
  hc_buf_free(&b);
}

/* ---------- params id ($/cancelRequest) ---------- */

TEST(params_id) {
  struct { const char *params, *want; } cases[] = {
    { "{\"id\":5}", "5" },
    { "{ \"id\" : \"abc\" }", "\"abc\"" },
    { "{\"x\":[1,{\"id\":2}],\"id\":-0}", "-0" },
    { "{\"i\\u0064\":7}", "7" },
    { "{\"id\":1e3}", "1e3" },
    { "{\"id\":{\"a\":[1]}}", "{\"a\":[1]}" },
    { "{\"id\":null}", "null" },
    { " \n{\"a\":\"id\",\"id\":\"\\u00e9\"}", "\"\\u00e9\"" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const char *id = NULL;
    size_t n = 0;
    if (!CHECK(hc_rpc_params_id(cases[i].params, strlen(cases[i].params), &id, &n) == 0))
      fprintf(stderr, "  params: %s\n", cases[i].params);
    else
      CHECK_SPAN(id, n, cases[i].want);
  }
  static const char *none[] = { "{}", "[5]", "{\"ID\":1}", "{\"x\":{\"id\":1}}", "5", "", "{\"a\":1,", "{\"id\"" };
  for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
    const char *id = NULL;
    size_t n = 0;
    if (!CHECK(hc_rpc_params_id(none[i], strlen(none[i]), &id, &n) == -1))
      fprintf(stderr, "  params: %s\n", none[i]);
  }
  const char *id = NULL;
  size_t n = 0;
  CHECK(hc_rpc_params_id(NULL, 0, &id, &n) == -1);
}

/* ---------- response texts ---------- */

static void check_buf(hc_buf *b, const char *want) {
  const char *got = hc_buf_cstr(b);
  CHECK_STREQ(got, want);
}

TEST(response_texts) {
  hc_buf b = HC_BUF_INIT;
  hc_rpc_result_open(&b, S("1"));
  hc_buf_adds(&b, "{}}");
  check_buf(&b, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}");

  hc_buf_reset(&b);
  hc_rpc_result_open(&b, S("\"a\\u00e9\""));
  hc_buf_adds(&b, "[1,2]}");
  check_buf(&b, "{\"jsonrpc\":\"2.0\",\"id\":\"a\\u00e9\",\"result\":[1,2]}");

  hc_buf_reset(&b);
  hc_rpc_error(&b, S("null"), HC_E_PARSE, "parse error", NULL, NULL);
  check_buf(&b, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"parse error\"}}");

  hc_buf_reset(&b);
  hc_rpc_error(&b, S("1e3"), HC_E_NOMETHOD, "method not found", NULL, NULL);
  check_buf(&b, "{\"jsonrpc\":\"2.0\",\"id\":1e3,\"error\":{\"code\":-32601,\"message\":\"method not found\"}}");

  hc_buf_reset(&b);
  hc_rpc_error(&b, S("\"q\""), HC_E_OS, "no such file", "ENOENT", NULL);
  check_buf(&b, "{\"jsonrpc\":\"2.0\",\"id\":\"q\",\"error\":{\"code\":-32000,\"message\":\"no such file\","
                "\"data\":{\"errno\":\"ENOENT\"}}}");

  hc_buf_reset(&b);
  hc_rpc_error(&b, S("-0"), HC_E_REFUSED, "refused", "EACCES", NULL);
  check_buf(&b, "{\"jsonrpc\":\"2.0\",\"id\":-0,\"error\":{\"code\":-32001,\"message\":\"refused\","
                "\"data\":{\"errno\":\"EACCES\"}}}");

  hc_buf_reset(&b);
  hc_rpc_error(&b, S("null"), HC_E_LIMIT, "request larger than limits.request_bytes", NULL, "size");
  check_buf(&b, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32002,"
                "\"message\":\"request larger than limits.request_bytes\",\"data\":{\"limit\":\"size\"}}}");

  hc_buf_reset(&b);
  hc_rpc_error(&b, S("7"), HC_E_CANCELLED, "request cancelled", NULL, NULL);
  check_buf(&b, "{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-32800,\"message\":\"request cancelled\"}}");

  /* the message is escaped as a JSON string */
  hc_buf_reset(&b);
  hc_rpc_error(&b, S("2"), HC_E_INTERNAL, "a \"q\" \\ \n\t\x01 \xc3\xa9", NULL, NULL);
  check_buf(&b, "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32603,"
                "\"message\":\"a \\\"q\\\" \\\\ \\n\\t\\u0001 \xc3\xa9\"}}");

  /* a message that is not UTF-8 is replaced, never copied raw */
  hc_buf_reset(&b);
  hc_rpc_error(&b, S("3"), HC_E_INTERNAL, "bad \xff byte", NULL, NULL);
  check_buf(&b, "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32603,"
                "\"message\":\"(message not valid UTF-8)\"}}");

  /* appends: two responses in one buffer */
  hc_buf_reset(&b);
  hc_rpc_error(&b, S("1"), HC_E_INVALID, "x", NULL, NULL);
  hc_buf_addc(&b, ',');
  hc_rpc_error(&b, S("2"), HC_E_PARAMS, "y", NULL, NULL);
  check_buf(&b, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32600,\"message\":\"x\"}},"
                "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32602,\"message\":\"y\"}}");
  hc_buf_free(&b);
}

int main(void) {
  RUN(single_valid);
  RUN(single_span);
  RUN(raw_ids_exact);
  RUN(bad_ids);
  RUN(jsonrpc_member);
  RUN(method_member);
  RUN(method_escapes_decoded);
  RUN(method_length_limit);
  RUN(params_member);
  RUN(duplicate_members);
  RUN(non_object_single);
  RUN(parse_errors);
  RUN(batch_basic);
  RUN(batch_empty);
  RUN(batch_nested_and_large);
  RUN(params_id);
  RUN(response_texts);
  return tu_summary();
}
