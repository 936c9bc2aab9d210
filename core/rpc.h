/*
** rpc.h: the JSON-RPC 2.0 envelope, parsed in C without building Lua values: the id stays raw
** text (so it round-trips exactly), params stay a validated span decoded only when a call starts.
*/
#ifndef HC_RPC_H
#define HC_RPC_H

#include <stddef.h>
#include "buf.h"

#define HC_METHOD_MAX 256   /* longer method names are invalid requests */

/* JSON-RPC 2.0 and contract error codes */
#define HC_E_PARSE      (-32700)
#define HC_E_INVALID    (-32600)
#define HC_E_NOMETHOD   (-32601)
#define HC_E_PARAMS     (-32602)
#define HC_E_INTERNAL   (-32603)
#define HC_E_OS         (-32000)
#define HC_E_REFUSED    (-32001)
#define HC_E_LIMIT      (-32002)
#define HC_E_CANCELLED  (-32800)

typedef struct hc_rpc_req {
  const char *span;          /* the whole request object (for bytes_in) */
  size_t span_len;
  int invalid;               /* 1: answer -32600 with `why` */
  const char *why;
  int has_id;                /* an id member was present and valid (string, number or null) */
  const char *id;            /* raw JSON text of the id; "null" when absent or invalid */
  size_t id_len;
  int method_unknown;        /* a string no method can be named (too long, NUL): -32601 */
  char method[HC_METHOD_MAX + 1];
  size_t method_len;
  const char *params;        /* raw JSON span of params, NULL when absent */
  size_t params_len;
} hc_rpc_req;

typedef enum { HC_RPC_SINGLE, HC_RPC_BATCH, HC_RPC_PARSE_ERROR, HC_RPC_NOMEM } hc_rpc_kind;

/* Parse one frame. For a single request, fills *one. For a batch, *many is a malloc'd array of
** *count requests (free it); an empty batch gives count 0. On HC_RPC_PARSE_ERROR, *err says why. */
hc_rpc_kind hc_rpc_parse(const char *s, size_t n, hc_rpc_req *one, hc_rpc_req **many,
                         size_t *count, const char **err);

/* The same, decoding member names into a caller's reusable scratch buffer (no malloc per frame). */
hc_rpc_kind hc_rpc_parse_with(const char *s, size_t n, hc_buf *scratch, hc_rpc_req *one,
                              hc_rpc_req **many, size_t *count, const char **err);

/* Find params.id of a $/cancelRequest: its raw JSON span. 0 found, -1 not. */
int hc_rpc_params_id(const char *params, size_t len, const char **id, size_t *id_len);

/* Response prefixes and whole error responses, appended to out. */
void hc_rpc_result_open(hc_buf *out, const char *id, size_t id_len);   /* then the value, then '}' */
void hc_rpc_error(hc_buf *out, const char *id, size_t id_len, int code, const char *message,
                  const char *errno_name, const char *limit);

#endif
