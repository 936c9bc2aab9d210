/*
** rpc.c: JSON-RPC 2.0 envelopes (https://www.jsonrpc.org/specification), to the letter.
*/
#include "rpc.h"
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RPC_MAX_DEPTH HC_JSON_MAX_DEPTH

static const char NULL_ID[] = "null";

static void req_init(hc_rpc_req *r) {
  memset(r, 0, sizeof *r);
  r->id = NULL_ID;
  r->id_len = 4;
}

static void invalid(hc_rpc_req *r, const char *why) {
  if (!r->invalid) { r->invalid = 1; r->why = why; }
}

/* Parse a request object at the cursor (which is at '{'). Returns -1 on a JSON syntax error;
** envelope errors only mark the request invalid. */
static int parse_object(hc_jcur *c, hc_rpc_req *r, hc_buf *scratch) {
  enum { SEEN_JSONRPC = 1, SEEN_METHOD = 2, SEEN_ID = 4, SEEN_PARAMS = 8 };
  int seen = 0;
  const char *id = NULL, *id_end = NULL;
  int id_ok = 0;
  r->span = c->p;
  c->p++;  /* '{' */
  int ch = hc_jcur_ws(c);
  if (ch == '}') { c->p++; goto done; }
  for (;;) {
    if (ch != '"') { c->err = "expected a member name"; return -1; }
    hc_buf_reset(scratch);
    if (hc_jcur_string(c, scratch)) return -1;
    if (hc_jcur_ws(c) != ':') { c->err = "expected ':'"; return -1; }
    c->p++;
    ch = hc_jcur_ws(c);
    const char *vstart = c->p;
    int which = 0;
    if (scratch->n == 7 && memcmp(scratch->p, "jsonrpc", 7) == 0) which = SEEN_JSONRPC;
    else if (scratch->n == 6 && memcmp(scratch->p, "method", 6) == 0) which = SEEN_METHOD;
    else if (scratch->n == 2 && memcmp(scratch->p, "id", 2) == 0) which = SEEN_ID;
    else if (scratch->n == 6 && memcmp(scratch->p, "params", 6) == 0) which = SEEN_PARAMS;
    if (which & seen) invalid(r, "duplicate member");
    seen |= which;
    if ((which == SEEN_JSONRPC || which == SEEN_METHOD) && ch == '"') {
      hc_buf_reset(scratch);
      if (hc_jcur_string(c, scratch)) return -1;
      if (which == SEEN_JSONRPC) {
        if (scratch->n != 3 || memcmp(scratch->p, "2.0", 3) != 0) invalid(r, "jsonrpc must be \"2.0\"");
      } else if (scratch->n > HC_METHOD_MAX || memchr(scratch->p, '\0', scratch->n)) {
        r->method_unknown = 1;
      } else {
        memcpy(r->method, scratch->p, scratch->n);
        r->method[scratch->n] = '\0';
        r->method_len = scratch->n;
      }
    } else {
      if (hc_jcur_skip(c)) return -1;
      switch (which) {
        case SEEN_JSONRPC: invalid(r, "jsonrpc must be \"2.0\""); break;
        case SEEN_METHOD: invalid(r, "method must be a string"); break;
        case SEEN_ID:
          id = vstart;
          id_end = c->p;
          id_ok = ch == '"' || ch == '-' || (ch >= '0' && ch <= '9') || ch == 'n';
          if (!id_ok) invalid(r, "id must be a string, a number or null");
          break;
        case SEEN_PARAMS:
          if (ch != '{' && ch != '[') invalid(r, "params must be an object or an array");
          r->params = vstart;
          r->params_len = (size_t)(c->p - vstart);
          break;
        default: break;
      }
    }
    ch = hc_jcur_ws(c);
    if (ch == ',') { c->p++; ch = hc_jcur_ws(c); continue; }
    if (ch == '}') { c->p++; break; }
    c->err = ch < 0 ? "unexpected end of input" : "expected ',' or '}'";
    return -1;
  }
done:
  r->span_len = (size_t)(c->p - r->span);
  if (id && id_ok) {
    r->has_id = 1;
    r->id = id;
    r->id_len = (size_t)(id_end - id);
  }
  if (!(seen & SEEN_JSONRPC)) invalid(r, "missing jsonrpc \"2.0\"");
  if (!(seen & SEEN_METHOD)) invalid(r, "missing method");
  return 0;
}

hc_rpc_kind hc_rpc_parse(const char *s, size_t n, hc_rpc_req *one, hc_rpc_req **many,
                         size_t *count, const char **err) {
  hc_buf scratch = HC_BUF_INIT;
  hc_rpc_kind k = hc_rpc_parse_with(s, n, &scratch, one, many, count, err);
  hc_buf_free(&scratch);
  return k;
}

hc_rpc_kind hc_rpc_parse_with(const char *s, size_t n, hc_buf *scratchp, hc_rpc_req *one,
                              hc_rpc_req **many, size_t *count, const char **err) {
  hc_jcur c;
  hc_buf_reset(scratchp);
#define scratch (*scratchp)
  hc_rpc_kind kind = HC_RPC_SINGLE;
  *many = NULL;
  *count = 0;
  hc_jcur_init(&c, s, n, RPC_MAX_DEPTH);
  int ch = hc_jcur_ws(&c);
  req_init(one);
  if (ch == '{') {
    if (parse_object(&c, one, &scratch)) goto parse_error;
    if (hc_jcur_ws(&c) >= 0) { c.err = "trailing characters after the JSON text"; goto parse_error; }
  } else if (ch == '[') {
    /* Validate the whole batch first: any syntax error makes it one parse error. */
    if (hc_jcur_skip(&c)) goto parse_error;
    if (hc_jcur_ws(&c) >= 0) { c.err = "trailing characters after the JSON text"; goto parse_error; }
    kind = HC_RPC_BATCH;
    size_t cap = 0;
    hc_jcur_init(&c, s, n, RPC_MAX_DEPTH);
    hc_jcur_ws(&c);
    c.p++;
    ch = hc_jcur_ws(&c);
    while (ch >= 0 && ch != ']') {
      if (*count == cap) {
        size_t ncap = cap ? cap * 2 : 8;
        hc_rpc_req *nm = realloc(*many, ncap * sizeof *nm);
        if (!nm) { free(*many); *many = NULL; return HC_RPC_NOMEM; }
        *many = nm;
        cap = ncap;
      }
      hc_rpc_req *r = &(*many)[(*count)++];
      req_init(r);
      if (ch == '{') {
        if (parse_object(&c, r, &scratch)) goto parse_error;  /* cannot happen: validated */
      } else {
        r->span = c.p;
        if (hc_jcur_skip(&c)) goto parse_error;
        r->span_len = (size_t)(c.p - r->span);
        invalid(r, "a request must be an object");
      }
      ch = hc_jcur_ws(&c);
      if (ch == ',') { c.p++; ch = hc_jcur_ws(&c); }
    }
  } else {
    one->span = c.p;
    if (ch < 0) { c.err = "empty frame"; goto parse_error; }
    if (hc_jcur_skip(&c)) goto parse_error;
    if (hc_jcur_ws(&c) >= 0) { c.err = "trailing characters after the JSON text"; goto parse_error; }
    one->span_len = (size_t)(c.p - one->span);
    invalid(one, "a request must be an object or an array");
  }
  int oom = scratch.oom;
  if (scratch.cap > 65536) hc_buf_free(&scratch);
  return oom ? HC_RPC_NOMEM : kind;
parse_error:
  free(*many);
  *many = NULL;
  *count = 0;
  *err = c.err ? c.err : "invalid JSON";
  if (scratch.cap > 65536) hc_buf_free(&scratch);
  return HC_RPC_PARSE_ERROR;
#undef scratch
}

int hc_rpc_params_id(const char *params, size_t len, const char **id, size_t *id_len) {
  hc_jcur c;
  hc_buf key = HC_BUF_INIT;
  int found = -1;
  if (!params) return -1;
  hc_jcur_init(&c, params, len, RPC_MAX_DEPTH);
  if (hc_jcur_ws(&c) != '{') return -1;
  c.p++;
  int ch = hc_jcur_ws(&c);
  while (ch == '"') {
    hc_buf_reset(&key);
    if (hc_jcur_string(&c, &key) || hc_jcur_ws(&c) != ':') break;
    c.p++;
    hc_jcur_ws(&c);
    const char *v = c.p;
    if (hc_jcur_skip(&c)) break;
    if (key.n == 2 && memcmp(key.p, "id", 2) == 0) {
      *id = v;
      *id_len = (size_t)(c.p - v);
      found = 0;
      break;
    }
    ch = hc_jcur_ws(&c);
    if (ch != ',') break;
    c.p++;
    ch = hc_jcur_ws(&c);
  }
  hc_buf_free(&key);
  return found;
}

static void open_envelope(hc_buf *out, const char *id, size_t id_len) {
  hc_buf_add(out, "{\"jsonrpc\":\"2.0\",\"id\":", 22);
  hc_buf_add(out, id, id_len);
}

void hc_rpc_result_open(hc_buf *out, const char *id, size_t id_len) {
  open_envelope(out, id, id_len);
  hc_buf_add(out, ",\"result\":", 10);
}

void hc_rpc_error(hc_buf *out, const char *id, size_t id_len, int code, const char *message,
                  const char *errno_name, const char *limit) {
  char num[64];
  open_envelope(out, id, id_len);
  int k = snprintf(num, sizeof num, ",\"error\":{\"code\":%d,\"message\":", code);
  hc_buf_add(out, num, (size_t)k);
  if (hc_json_add_string(out, message, strlen(message)))
    hc_json_add_string(out, "(message not valid UTF-8)", 25);
  if (errno_name || limit) {
    hc_buf_adds(out, errno_name ? ",\"data\":{\"errno\":" : ",\"data\":{\"limit\":");
    const char *v = errno_name ? errno_name : limit;
    hc_json_add_string(out, v, strlen(v));
    hc_buf_addc(out, '}');
  }
  hc_buf_add(out, "}}", 2);
}
