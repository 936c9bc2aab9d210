/*
** json.h: the strict JSON codec of the wire (RFC 8259), straight between text and Lua values.
**
** Why not lua-cjson: it decodes every number as a float (ids and mtime_ns lose digits), accepts
** invalid UTF-8, mallocs outside the Lua allocator and aborts on failure, and cannot tell [] from {}.
**
** Decoding: integers that fit in int64 become Lua integers, other numbers floats (an overflow to
** infinity is an error); NaN/Infinity/hex/leading zeros/leading '+' are refused; strings must be valid
** UTF-8 (no overlongs, no surrogates, <= U+10FFFF; \u escapes combine surrogate pairs, a lone
** surrogate is an error); raw control characters in strings are refused; duplicate keys in an
** object are an error; nesting deeper than max_depth is an error. JSON arrays become Lua sequences
** whose metatable is the shared array marker (hc_json_push_array_mt), so [] and {} survive a round trip.
**
** Encoding (raw access only, never metamethods): nil/null sentinel -> null, booleans, integers
** exactly, floats with the shortest of 15-17 digits that round-trips (NaN/inf refused), strings validated as UTF-8 and
** escaped, tables: an array if it carries the array marker or is a non-empty sequence 1..n, an empty
** table is {} unless the marker or the schema hint says array; other keys must be strings.
*/
#ifndef HC_JSON_H
#define HC_JSON_H

#include <stddef.h>
#include <lua.h>
#include "buf.h"

#define HC_JSON_MAX_DEPTH 128   /* default nesting limit, both ways */

/* A cursor over JSON text. On error, err is set (non-NULL, static string), pos is its offset. */
typedef struct hc_jcur {
  const char *start, *p, *end;
  int depth, max_depth;
  const char *err;
} hc_jcur;

void hc_jcur_init(hc_jcur *c, const char *s, size_t n, int max_depth);
/* Skip whitespace (space, tab, CR, LF); return the next byte or -1 at the end. */
int hc_jcur_ws(hc_jcur *c);
/* Parse a string at the cursor (which must be at '"'), appending its decoded bytes to out.
** Returns 0, or -1 with c->err set. */
int hc_jcur_string(hc_jcur *c, hc_buf *out);
/* Parse any value and push it on L (needs lua_checkstack room: it checks itself).
** Returns 0, or -1 with c->err set and nothing pushed. Raises only on Lua memory errors. */
int hc_jcur_value_lua(hc_jcur *c, lua_State *L);
/* Validate and skip any value. Returns 0 or -1 with c->err set. */
int hc_jcur_skip(hc_jcur *c);

/* Push the shared array-marker metatable (created on first use, kept in the registry). */
void hc_json_push_array_mt(lua_State *L);
/* Push the null sentinel (a light userdata) used for JSON null inside arrays/objects. */
void hc_json_push_null(lua_State *L);

/* A string value held in C memory that needs no escaping (base64 text): the encoder copies its
** bytes between quotes without a scan, and it never becomes a Lua string (a 1 MiB read is not
** copied into one). Only the core makes them, and only of printable ASCII other than '"' and
** '\\'. Lua sees a userdata named hostcall.text: #t is its length, tostring(t) a string copy. */
typedef struct hc_json_text {
  size_t n, cap;   /* the text's length; the room in p */
  size_t raw;      /* base64 texts: the bytes held in p, whose base64 the text is */
  int b64;
  char p[];
} hc_json_text;
/* Push a new text with room for cap bytes and length 0 (memory from the state's allocator). */
hc_json_text *hc_json_push_text(lua_State *L, size_t cap);
/* Push a text that is the base64 of up to cap bytes the caller puts in p, then names with
** hc_json_text_set_bytes. The bytes are encoded where the text is used: the JSON encoder writes
** their base64 straight into its output (one pass, no copy); tostring makes a string of it. */
hc_json_text *hc_json_push_base64(lua_State *L, size_t cap);
static inline void hc_json_text_set_bytes(hc_json_text *t, size_t n) {
  t->raw = n;
  t->n = (n + 2) / 3 * 4;
}

/* Encode the value at idx into out. schema_idx (0 = none) is a JSON-Schema table used only as a
** hint: an empty table whose schema says type "array" encodes as []. Returns 0, or -1 with a static
** message in *err (cycle/depth, NaN, invalid UTF-8, bad key, unsupported type). Raw access only. */
int hc_json_encode(lua_State *L, int idx, int schema_idx, hc_buf *out, int max_depth,
                   const char **err);

/* Append s as a JSON string literal (quotes included); -1 if s is not valid UTF-8. */
int hc_json_add_string(hc_buf *out, const char *s, size_t n);
/* The length of s[0..n) up to its last whole UTF-8 character, when what follows is one character
** cut short (at most 3 bytes); -1 when s is not UTF-8 apart from such a cut. */
long hc_utf8_whole_len(const char *s, size_t n);
/* 1 if s[0..n) is valid UTF-8 (strict). */
int hc_utf8_valid(const char *s, size_t n);

/* The most bytes json.encode (the Lua function) may produce in this state (0: no limit). */
void hc_json_set_encode_limit(lua_State *L, size_t limit);
size_t hc_json_encode_limit(lua_State *L);

/* Lua-facing: decode(text) -> value | nil, msg ; encode(value [, schema]) -> text | nil, msg */
int hc_json_l_decode(lua_State *L);
int hc_json_l_encode(lua_State *L);

#endif
