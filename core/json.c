/*
** json.c: the strict JSON codec of the wire (contract in json.h).
**
** Decoding walks the text once with a cursor and pushes values straight onto the Lua stack;
** strings without escapes are pushed from the input without an intermediate copy. Encoding
** writes into an hc_buf with raw table access only. Neither direction ever runs Lua code (no
** metamethods), so neither can be re-entered or observe a half-built value.
**
** Errors are reported through return codes and static messages. The only other way out is a
** Lua memory error (longjmp) raised by an API call that allocates (decoding: lua_pushlstring,
** lua_createtable, lua_newuserdatauv; the registry setup on first use); callers that cannot
** tolerate that must run in protected mode. The encoder itself allocates no Lua objects.
*/

#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#define HC_JSON_SSE2  1
#endif

#include <lua.h>
#include <lauxlib.h>

#include "base64.h"
#include "json.h"


#define HC_JSON_MAX_NUMLEN  512         /* longest number text accepted ("number too long") */
#define HC_JSON_SMALL_STR   256         /* escaped strings up to this size unescape on the C stack */
#define HC_JSON_SIZE_HINT   4           /* initial slots for a non-empty array or object */
#define HC_JSON_SLOTS       8           /* Lua stack slots one nesting level may use */
#define HC_JSON_DUP_KEYS    8           /* keys per object checked for duplicates by their text */
#define HC_JSON_MAX_EXP     100000      /* exponent digits saturate here (only the fast path reads it) */
#define HC_JSON_KEEP_BUF    (64 * 1024) /* l_encode keeps its buffer between calls up to this size */

#if defined(__GNUC__)
#define l_noinline  __attribute__((noinline))
#else
#define l_noinline  /* empty */
#endif

_Static_assert(sizeof(lua_Integer) == 8, "hostcall needs 64-bit Lua integers");
_Static_assert(sizeof(lua_Number) == 8, "hostcall needs double Lua numbers");


#define ERR_EOF     "unexpected end of input"
#define ERR_CHAR    "unexpected character"
#define ERR_UTF8    "invalid UTF-8 in string"

/* Distinct addresses are all that matter: the null value and two registry keys. */
static char null_sentinel;
static char array_mt_key;
static char encbuf_key;
static char text_mt_key;


/*
** {======================================================
** Bytes, UTF-8 and numbers (shared by both directions)
** =======================================================
*/

/* String byte classes: what a scanner must stop at. Same set for decoding and encoding. */
#define SC_PLAIN  0
#define SC_QUOTE  1
#define SC_BSLASH 2
#define SC_CTRL   3
#define SC_HIGH   4

#define R16(v)  v,v,v,v,v,v,v,v,v,v,v,v,v,v,v,v
static const unsigned char strclass[256] = {
  R16(SC_CTRL), R16(SC_CTRL),                                 /* 0x00-0x1f */
  0,0,SC_QUOTE,0,0,0,0,0,0,0,0,0,0,0,0,0,                     /* 0x20-0x2f */
  R16(0), R16(0),                                             /* 0x30-0x4f */
  0,0,0,0,0,0,0,0,0,0,0,0,SC_BSLASH,0,0,0,                    /* 0x50-0x5f */
  R16(0), R16(0),                                             /* 0x60-0x7f (DEL is plain) */
  R16(SC_HIGH), R16(SC_HIGH), R16(SC_HIGH), R16(SC_HIGH),     /* 0x80-0xbf */
  R16(SC_HIGH), R16(SC_HIGH), R16(SC_HIGH), R16(SC_HIGH)      /* 0xc0-0xff */
};
#undef R16

#define ONES   ((uint64_t)0x0101010101010101u)
#define HIGHS  ((uint64_t)0x8080808080808080u)

/*
** SWAR test of the 8 bytes at p for '"', '\\', < 0x20 or >= 0x80: the high bit of each such
** byte is set in the result. Exact for the first (lowest-addressed) such byte; bytes after it
** may be flagged spuriously by borrows, which is harmless since only the first one is used.
*/
static inline uint64_t special8 (const unsigned char *p) {
  uint64_t w, q, b;
  memcpy(&w, p, 8);  /* unaligned load without aliasing trouble */
  q = w ^ (ONES * '"');
  b = w ^ (ONES * '\\');
  return (((w - ONES * 0x20) & ~w) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | w) & HIGHS;
}

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define first_special(m)  ((size_t)__builtin_ctzll(m) >> 3)
#endif

/* The first byte in [p, e) that is not SC_PLAIN, or e. The hot loop of both directions. */
static inline const unsigned char *skip_plain (const unsigned char *p,
                                               const unsigned char *e) {
#if defined(HC_JSON_SSE2)
  /* as signed bytes, "< 0x20" covers both control bytes and bytes >= 0x80 */
  const __m128i vq = _mm_set1_epi8('"'), vb = _mm_set1_epi8('\\'), vs = _mm_set1_epi8(0x20);
  while (e - p >= 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    int m = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, vq),
                                                        _mm_cmpeq_epi8(v, vb)),
                                           _mm_cmplt_epi8(v, vs)));
    if (m != 0)
      return p + __builtin_ctz((unsigned)m);
    p += 16;
  }
#endif
  while (e - p >= 8) {
    uint64_t m = special8(p);
    if (m != 0) {
#if defined(first_special)
      return p + first_special(m);
#else
      break;
#endif
    }
    p += 8;
  }
  while (p < e && strclass[*p] == SC_PLAIN)
    p++;
  return p;
}

/*
** Length (2..4) of the strict UTF-8 sequence at p (p[0] >= 0x80), or 0 if invalid: no
** overlongs, no surrogates, nothing above U+10FFFF, no truncation (Unicode table 3-7).
*/
static inline int utf8_seq (const unsigned char *p, const unsigned char *e) {
  unsigned c = p[0], lo = 0x80, hi = 0xBF;
  size_t avail = (size_t)(e - p);
  if (c < 0xC2)
    return 0;  /* continuation byte, or overlong 2-byte lead */
  if (c < 0xE0)
    return (avail >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
  if (c < 0xF0) {
    if (c == 0xE0) lo = 0xA0;        /* overlong */
    else if (c == 0xED) hi = 0x9F;   /* surrogates */
    return (avail >= 3 && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80) ? 3 : 0;
  }
  if (c < 0xF5) {
    if (c == 0xF0) lo = 0x90;        /* overlong */
    else if (c == 0xF4) hi = 0x8F;   /* above U+10FFFF */
    return (avail >= 4 && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 &&
            (p[3] & 0xC0) == 0x80) ? 4 : 0;
  }
  return 0;
}

int hc_utf8_valid (const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *e;
  if (n == 0)
    return 1;
  e = p + n;
  while (p < e) {
    if (e - p >= 8) {  /* skip ASCII a word at a time */
      uint64_t w;
      memcpy(&w, p, 8);
      if ((w & HIGHS) == 0) { p += 8; continue; }
    }
    if (*p < 0x80) p++;
    else {
      int len = utf8_seq(p, e);
      if (len == 0) return 0;
      p += len;
    }
  }
  return 1;
}

/* The "C" locale, so that strtod never sees a ',' decimal point whatever setlocale did. */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init (void) {
  c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static locale_t get_c_locale (void) {
  pthread_once(&c_locale_once, c_locale_init);
  return c_locale;
}

#if FLT_EVAL_METHOD == 0
/* Exact powers of ten for the fast path (10^22 is the largest exactly representable). */
static const double pow10tab[] = {
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};
#endif

/* }====================================================== */


/*
** {======================================================
** Decoder
** =======================================================
*/

#define isdig(ch)  ((unsigned)((ch) - '0') < 10u)

static int fail (hc_jcur *c, const void *at, const char *msg) {
  c->p = (const char *)at;
  c->err = msg;
  return -1;
}

void hc_jcur_init (hc_jcur *c, const char *s, size_t n, int max_depth) {
  c->start = c->p = s;
  c->end = (n > 0) ? s + n : s;  /* (NULL, 0) is a valid empty text; NULL + 0 is not valid C */
  c->depth = 0;
  c->max_depth = max_depth;
  c->err = NULL;
}

/* Skip whitespace; the next byte or -1. Inlined in the loops, exported as hc_jcur_ws. */
static inline int skipws (hc_jcur *c) {
  const char *p = c->p, *e = c->end;
  while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  c->p = p;
  return (p < e) ? (unsigned char)*p : -1;
}

int hc_jcur_ws (hc_jcur *c) {
  return skipws(c);
}

static int hexval (int ch) {
  if (isdig(ch)) return ch - '0';
  ch |= 0x20;  /* fold to lower case */
  return (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10 : -1;
}

/* The 4 hex digits at p as a code unit, or -1 (bad digit or not enough input). */
static long hex4 (const unsigned char *p, const unsigned char *e) {
  long u = 0;
  int i;
  if (e - p < 4) return -1;
  for (i = 0; i < 4; i++) {
    int v = hexval(p[i]);
    if (v < 0) return -1;
    u = (u << 4) | v;
  }
  return u;
}

/*
** Validate the string at c->p (which is at '"'). On success c->p is past the closing quote,
** [*s, *s + *n) is the raw body and *esc tells whether it holds escapes (if not, the body is
** the decoded value). On error c->p is at the offending byte.
*/
static int scan_string (hc_jcur *c, const char **s, size_t *n, int *esc) {
  const unsigned char *b = (const unsigned char *)c->p + 1;
  const unsigned char *p = b, *e = (const unsigned char *)c->end;
  int hasesc = 0;
  for (;;) {
    p = skip_plain(p, e);
    if (p >= e)
      return fail(c, p, ERR_EOF);
    switch (strclass[*p]) {
      case SC_QUOTE:
        *s = (const char *)b;
        *n = (size_t)(p - b);
        *esc = hasesc;
        c->p = (const char *)p + 1;
        return 0;
      case SC_BSLASH:
        hasesc = 1;
        if (e - p < 2)
          return fail(c, e, ERR_EOF);
        switch (p[1]) {
          case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p += 2;
            break;
          case 'u': {
            long u = hex4(p + 2, e);
            if (u < 0)
              return fail(c, p, "invalid escape");
            if (u >= 0xD800 && u <= 0xDBFF) {  /* high surrogate: a low one must follow */
              long lo = (e - p >= 12 && p[6] == '\\' && p[7] == 'u') ? hex4(p + 8, e) : -1;
              if (lo < 0xDC00 || lo > 0xDFFF)
                return fail(c, p, "lone surrogate");
              p += 12;
            }
            else if (u >= 0xDC00 && u <= 0xDFFF)
              return fail(c, p, "lone surrogate");
            else
              p += 6;
            break;
          }
          default:
            return fail(c, p, "invalid escape");
        }
        break;
      case SC_CTRL:
        return fail(c, p, "control character in string");
      default: {  /* SC_HIGH */
        int len = utf8_seq(p, e);
        if (len == 0)
          return fail(c, p, ERR_UTF8);
        p += len;
        break;
      }
    }
  }
}

/* Append the UTF-8 encoding of cp (<= 0x10FFFF, not a surrogate) at d; returns its length. */
static size_t utf8_put (char *d, unsigned long cp) {
  if (cp < 0x80) {
    d[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    d[0] = (char)(0xC0 | (cp >> 6));
    d[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    d[0] = (char)(0xE0 | (cp >> 12));
    d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    d[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  d[0] = (char)(0xF0 | (cp >> 18));
  d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  d[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/*
** Decode a body that scan_string accepted into d (room for e - s bytes is enough: every
** escape is longer than what it stands for). Returns the decoded length.
*/
static size_t unescape (const char *s, const char *e, char *d) {
  char *d0 = d;
  while (s < e) {
    const char *bs = memchr(s, '\\', (size_t)(e - s));
    size_t run = (size_t)((bs ? bs : e) - s);
    memcpy(d, s, run);
    d += run;
    if (bs == NULL)
      break;
    s = bs + 2;
    switch (bs[1]) {
      case 'b': *d++ = '\b'; break;
      case 'f': *d++ = '\f'; break;
      case 'n': *d++ = '\n'; break;
      case 'r': *d++ = '\r'; break;
      case 't': *d++ = '\t'; break;
      case 'u': {
        const unsigned char *u = (const unsigned char *)s;
        unsigned long cp = (unsigned long)hex4(u, u + 4);
        s += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {  /* validated: "\uDCxx" follows */
          unsigned long lo = (unsigned long)hex4(u + 6, u + 10);
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          s += 6;
        }
        d += utf8_put(d, cp);
        break;
      }
      default: *d++ = bs[1]; break;  /* '"', '\\', '/' */
    }
  }
  return (size_t)(d - d0);
}

int hc_jcur_string (hc_jcur *c, hc_buf *out) {
  const char *s;
  size_t n;
  int esc;
  c->err = NULL;
  if (c->p >= c->end)
    return fail(c, c->p, ERR_EOF);
  if (*c->p != '"')
    return fail(c, c->p, ERR_CHAR);
  if (scan_string(c, &s, &n, &esc))
    return -1;
  if (!esc)
    hc_buf_add(out, s, n);
  else if (hc_buf_reserve(out, n) == 0)
    out->n += unescape(s, s + n, out->p + out->n);
  if (out->oom)
    return fail(c, s - 1, "out of memory");
  return 0;
}

/* Kept out of line so the recursive parser's frames do not carry the scratch buffer. */
l_noinline static void push_unescaped (lua_State *L, const char *s, size_t n) {
  char tmp[HC_JSON_SMALL_STR];
  if (n <= sizeof(tmp))
    lua_pushlstring(L, tmp, unescape(s, s + n, tmp));
  else {  /* scratch space owned by the GC, so a memory error cannot leak it */
    char *d = (char *)lua_newuserdatauv(L, n, 0);
    lua_pushlstring(L, d, unescape(s, s + n, d));
    lua_remove(L, -2);
  }
}

/* Push the string at c->p; *s, *n, *esc describe its raw body (see scan_string). */
static int push_string (hc_jcur *c, lua_State *L, const char **s, size_t *n, int *esc) {
  if (scan_string(c, s, n, esc))
    return -1;
  if (!*esc)
    lua_pushlstring(L, *s, *n);
  else
    push_unescaped(L, *s, *n);
  return 0;
}

/* Correctly rounded conversion of a validated number text by strtod, in the "C" locale. */
l_noinline static int slow_number (hc_jcur *c, const char *s, size_t len, double *dp) {
  char tmp[HC_JSON_MAX_NUMLEN + 1];
  locale_t loc;
  char *endp;
  if ((loc = get_c_locale()) == (locale_t)0)
    return fail(c, s, "out of memory");
  memcpy(tmp, s, len);  /* the input is not NUL-terminated */
  tmp[len] = '\0';
  *dp = strtod_l(tmp, &endp, loc);
  if (endp != tmp + len)  /* cannot happen for text the grammar accepted */
    return fail(c, s, ERR_CHAR);
  if (isinf(*dp))
    return fail(c, s, "number out of range");
  return 0;  /* underflow to 0 or a subnormal is accepted */
}

#define NUM_INT    0
#define NUM_FLOAT  1

/*
** Parse the number at c->p (at '-' or a digit): NUM_INT with *ip, NUM_FLOAT with *dp, or -1.
** m collects up to 19 significant digits (exact in uint64); integers are checked against the
** int64 range on that exact value, so there is no signed overflow anywhere.
*/
static int read_number (hc_jcur *c, lua_Integer *ip, double *dp) {
  const char *s = c->p;
  const unsigned char *p = (const unsigned char *)s, *e = (const unsigned char *)c->end;
  uint64_t m = 0;
  size_t nsig = 0, nfrac = 0, len;  /* bounded by the input size: cannot overflow */
  int neg = 0, isflt = 0;
  long ex = 0;
  if (*p == '-') {
    neg = 1;
    p++;
  }
  if (p >= e)
    return fail(c, p, ERR_EOF);
  if (*p == '0') {
    p++;
    if (p < e && isdig(*p))
      return fail(c, p - 1, "leading zero");
  }
  else if (isdig(*p)) {
    do {
      if (++nsig <= 19) m = m * 10 + (unsigned)(*p - '0');
      p++;
    } while (p < e && isdig(*p));
  }
  else
    return fail(c, p, ERR_CHAR);
  if (p < e && *p == '.') {
    isflt = 1;
    p++;
    if (p >= e) return fail(c, p, ERR_EOF);
    if (!isdig(*p)) return fail(c, p, ERR_CHAR);
    do {
      unsigned d = (unsigned)(*p - '0');
      nfrac++;
      if (m != 0 || d != 0) {  /* leading zeros of "0.00x" are not significant */
        if (++nsig <= 19) m = m * 10 + d;
      }
      p++;
    } while (p < e && isdig(*p));
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    int eneg = 0;
    isflt = 1;
    p++;
    if (p < e && (*p == '+' || *p == '-')) {
      eneg = (*p == '-');
      p++;
    }
    if (p >= e) return fail(c, p, ERR_EOF);
    if (!isdig(*p)) return fail(c, p, ERR_CHAR);
    do {
      if (ex < HC_JSON_MAX_EXP) ex = ex * 10 + (*p - '0');
      p++;
    } while (p < e && isdig(*p));
    if (eneg) ex = -ex;
  }
  c->p = (const char *)p;
  len = (size_t)((const char *)p - s);
  if (!isflt && nsig <= 19) {
    if (m <= (uint64_t)LUA_MAXINTEGER) {
      *ip = neg ? -(lua_Integer)m : (lua_Integer)m;  /* "-0" is the integer 0 */
      return NUM_INT;
    }
    if (neg && m == (uint64_t)LUA_MAXINTEGER + 1) {
      *ip = LUA_MININTEGER;
      return NUM_INT;
    }
  }
  if (len > HC_JSON_MAX_NUMLEN)  /* also keeps nfrac small, so e10 below is meaningful */
    return fail(c, s, "number too long");
#if FLT_EVAL_METHOD == 0
  /* Clinger's fast path: an exact significand times an exact power of ten is one correctly
  ** rounded operation. Skipped when FLT_EVAL_METHOD says intermediates may be wider. */
  if (nsig <= 19 && m <= ((uint64_t)1 << 53)) {
    long e10 = ex - (long)nfrac;
    if (m == 0) {
      *dp = neg ? -0.0 : 0.0;
      return NUM_FLOAT;
    }
    if (e10 >= -22 && e10 <= 22) {
      double d = (double)m;
      d = (e10 >= 0) ? d * pow10tab[e10] : d / pow10tab[-e10];
      *dp = neg ? -d : d;
      return NUM_FLOAT;
    }
  }
#endif
  return slow_number(c, s, len, dp) ? -1 : NUM_FLOAT;
}

/* Match the literal lit (length n) at c->p, whose first byte already matched. */
static int read_literal (hc_jcur *c, const char *lit, size_t n) {
  const char *p = c->p;
  size_t i;
  for (i = 1; i < n; i++) {
    if (p + i >= c->end)
      return fail(c, c->end, ERR_EOF);
    if (p[i] != lit[i])
      return fail(c, p + i, ERR_CHAR);
  }
  c->p = p + n;
  return 0;
}

static int parse_value (hc_jcur *c, lua_State *L);

static int parse_array (hc_jcur *c, lua_State *L) {
  lua_Integer i = 0;
  int ch;
  if (++c->depth > c->max_depth)
    return fail(c, c->p, "too deep");
  if (!lua_checkstack(L, HC_JSON_SLOTS))
    return fail(c, c->p, "too deep");
  c->p++;
  ch = skipws(c);
  lua_createtable(L, (ch == ']') ? 0 : HC_JSON_SIZE_HINT, 0);
  hc_json_push_array_mt(L);
  lua_setmetatable(L, -2);
  if (ch != ']') {
    for (;;) {
      if (parse_value(c, L))
        return -1;
      lua_rawseti(L, -2, ++i);
      ch = skipws(c);
      if (ch == ']')
        break;
      if (ch != ',')
        return fail(c, c->p, (ch < 0) ? ERR_EOF : ERR_CHAR);
      c->p++;
    }
  }
  c->p++;  /* ']' */
  c->depth--;
  return 0;
}

/*
** Duplicate keys: the first HC_JSON_DUP_KEYS keys of an object, while none has escapes, are
** compared by their raw text (equal text <=> equal key when there are no escapes); after
** that every key is looked up in the table, which by then holds all earlier keys. This saves
** three API calls per key on the typical small object.
*/
static int parse_object (hc_jcur *c, lua_State *L) {
  const char *kp[HC_JSON_DUP_KEYS];
  size_t kl[HC_JSON_DUP_KEYS];
  int ch, nk = 0;  /* keys in kp/kl; -1 once the table must be asked */
  if (++c->depth > c->max_depth)
    return fail(c, c->p, "too deep");
  if (!lua_checkstack(L, HC_JSON_SLOTS))
    return fail(c, c->p, "too deep");
  c->p++;
  ch = skipws(c);
  lua_createtable(L, 0, (ch == '}') ? 0 : HC_JSON_SIZE_HINT);
  if (ch != '}') {
    for (;;) {
      const char *kpos = c->p, *s;
      size_t n;
      int esc, i;
      if (ch != '"')
        return fail(c, c->p, (ch < 0) ? ERR_EOF : ERR_CHAR);
      if (push_string(c, L, &s, &n, &esc))
        return -1;
      if (nk >= 0 && !esc && nk < HC_JSON_DUP_KEYS) {
        for (i = 0; i < nk; i++) {
          if (kl[i] == n && memcmp(kp[i], s, n) == 0)
            return fail(c, kpos, "duplicate key");
        }
        kp[nk] = s;
        kl[nk++] = n;
      }
      else {
        /* every stored value is non-nil (null is a light userdata): presence = duplicate */
        nk = -1;
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) != LUA_TNIL)
          return fail(c, kpos, "duplicate key");
        lua_pop(L, 1);
      }
      ch = skipws(c);
      if (ch != ':')
        return fail(c, c->p, (ch < 0) ? ERR_EOF : ERR_CHAR);
      c->p++;
      if (parse_value(c, L))
        return -1;
      lua_rawset(L, -3);
      ch = skipws(c);
      if (ch == '}')
        break;
      if (ch != ',')
        return fail(c, c->p, (ch < 0) ? ERR_EOF : ERR_CHAR);
      c->p++;
      ch = skipws(c);
    }
  }
  c->p++;  /* '}' */
  c->depth--;
  return 0;
}

/* Push one value; on error the caller (hc_jcur_value_lua) drops whatever was pushed. */
static int parse_value (hc_jcur *c, lua_State *L) {
  int ch = skipws(c);
  switch (ch) {
    case '{':
      return parse_object(c, L);
    case '[':
      return parse_array(c, L);
    case '"': {
      const char *s;
      size_t n;
      int esc;
      return push_string(c, L, &s, &n, &esc);
    }
    case 't':
      if (read_literal(c, "true", 4)) return -1;
      lua_pushboolean(L, 1);
      return 0;
    case 'f':
      if (read_literal(c, "false", 5)) return -1;
      lua_pushboolean(L, 0);
      return 0;
    case 'n':
      if (read_literal(c, "null", 4)) return -1;
      hc_json_push_null(L);
      return 0;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9': {
      lua_Integer i;
      double d;
      switch (read_number(c, &i, &d)) {
        case NUM_INT: lua_pushinteger(L, i); return 0;
        case NUM_FLOAT: lua_pushnumber(L, d); return 0;
        default: return -1;
      }
    }
    case -1:
      return fail(c, c->p, ERR_EOF);
    default:
      return fail(c, c->p, ERR_CHAR);
  }
}

int hc_jcur_value_lua (hc_jcur *c, lua_State *L) {
  int top = lua_gettop(L), depth = c->depth;
  c->err = NULL;
  if (!lua_checkstack(L, HC_JSON_SLOTS))
    return fail(c, c->p, "too deep");
  if (parse_value(c, L) == 0)
    return 0;
  lua_settop(L, top);
  c->depth = depth;
  return -1;
}

/*
** Validate without building anything: the same grammar, UTF-8 and number-range checks as
** hc_jcur_value_lua, except that duplicate keys are NOT detected (that needs a key set).
*/
static int skip_value (hc_jcur *c) {
  int ch = skipws(c);
  switch (ch) {
    case '{': case '[': {
      int close = (ch == '{') ? '}' : ']';
      if (++c->depth > c->max_depth)
        return fail(c, c->p, "too deep");
      c->p++;
      ch = skipws(c);
      if (ch != close) {
        for (;;) {
          if (close == '}') {
            const char *s;
            size_t n;
            int esc;
            if (ch != '"')
              return fail(c, c->p, (ch < 0) ? ERR_EOF : ERR_CHAR);
            if (scan_string(c, &s, &n, &esc))
              return -1;
            ch = skipws(c);
            if (ch != ':')
              return fail(c, c->p, (ch < 0) ? ERR_EOF : ERR_CHAR);
            c->p++;
          }
          if (skip_value(c))
            return -1;
          ch = skipws(c);
          if (ch == close)
            break;
          if (ch != ',')
            return fail(c, c->p, (ch < 0) ? ERR_EOF : ERR_CHAR);
          c->p++;
          ch = skipws(c);
        }
      }
      c->p++;
      c->depth--;
      return 0;
    }
    case '"': {
      const char *s;
      size_t n;
      int esc;
      return scan_string(c, &s, &n, &esc);
    }
    case 't': return read_literal(c, "true", 4);
    case 'f': return read_literal(c, "false", 5);
    case 'n': return read_literal(c, "null", 4);
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9': {
      lua_Integer i;
      double d;
      return (read_number(c, &i, &d) < 0) ? -1 : 0;
    }
    case -1:
      return fail(c, c->p, ERR_EOF);
    default:
      return fail(c, c->p, ERR_CHAR);
  }
}

int hc_jcur_skip (hc_jcur *c) {
  int depth = c->depth;
  c->err = NULL;
  if (skip_value(c) == 0)
    return 0;
  c->depth = depth;
  return -1;
}

/* }====================================================== */


void hc_json_push_null (lua_State *L) {
  lua_pushlightuserdata(L, &null_sentinel);
}

void hc_json_push_array_mt (lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key) != LUA_TNIL)
    return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 2);
  lua_pushliteral(L, "json.array");
  lua_setfield(L, -2, "__name");  /* a fresh table: no metamethods to trigger */
  /* Locked: tenant code sees getmetatable(array) == false, so it can never add __gc, __len or
  ** __index to the one metatable every JSON array (and the policy's view of params) shares. */
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &array_mt_key);
}

/* {===== texts: strings held in C memory ===== */

static int text_len (lua_State *L) {
  hc_json_text *t = lua_touserdata(L, 1);
  lua_pushinteger(L, (lua_Integer)t->n);
  return 1;
}

static int text_tostring (lua_State *L) {
  hc_json_text *t = lua_touserdata(L, 1);
  if (t->b64) {
    luaL_Buffer b;
    char *d = luaL_buffinitsize(L, &b, t->n);
    luaL_pushresultsize(&b, hc_base64_encode((const unsigned char *)t->p, t->raw, d));
  } else {
    lua_pushlstring(L, t->p, t->n);
  }
  return 1;
}

hc_json_text *hc_json_push_base64 (lua_State *L, size_t cap) {
  hc_json_text *t = hc_json_push_text(L, cap);
  t->b64 = 1;
  return t;
}

hc_json_text *hc_json_push_text (lua_State *L, size_t cap) {
  hc_json_text *t = lua_newuserdatauv(L, sizeof *t + cap, 0);
  t->n = 0;
  t->cap = cap;
  t->raw = 0;
  t->b64 = 0;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &text_mt_key) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 4);
    lua_pushcfunction(L, text_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, text_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "hostcall.text");
    lua_setfield(L, -2, "__name");
    lua_pushboolean(L, 0);   /* locked, like the array marker */
    lua_setfield(L, -2, "__metatable");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &text_mt_key);
  }
  lua_setmetatable(L, -2);
  return t;
}

/* The text at idx, or NULL when it is some other userdata. */
static hc_json_text *to_text (lua_State *L, int idx) {
  hc_json_text *t = NULL;
  if (!lua_getmetatable(L, idx))
    return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &text_mt_key);
  if (lua_rawequal(L, -1, -2))
    t = lua_touserdata(L, idx);
  lua_pop(L, 2);
  return t;
}

/* }===== */


/*
** {======================================================
** Encoder
** =======================================================
*/

static const char hexdigits[] = "0123456789abcdef";

/* The escape for a byte of class SC_QUOTE, SC_BSLASH or SC_CTRL; returns its length. */
static size_t escape_byte (char *d, unsigned char ch) {
  d[0] = '\\';
  switch (ch) {
    case '"': d[1] = '"'; return 2;
    case '\\': d[1] = '\\'; return 2;
    case '\b': d[1] = 'b'; return 2;
    case '\f': d[1] = 'f'; return 2;
    case '\n': d[1] = 'n'; return 2;
    case '\r': d[1] = 'r'; return 2;
    case '\t': d[1] = 't'; return 2;
    default:
      memcpy(d + 1, "u00", 3);
      d[4] = hexdigits[ch >> 4];
      d[5] = hexdigits[ch & 15];
      return 6;
  }
}

long hc_utf8_whole_len (const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  for (size_t k = 0; k <= 3 && k <= n; k++) {
    if (k) {   /* the last k bytes: a lead byte announcing more than k, then continuations */
      unsigned char lead = s[n - k];
      size_t want = lead >= 0xF0 && lead <= 0xF4 ? 4 : lead >= 0xE0 && lead < 0xF0 ? 3
                  : lead >= 0xC2 && lead < 0xE0 ? 2 : 0;
      if (want <= k) continue;
      int cont = 1;
      for (size_t i = n - k + 1; i < n; i++) cont &= (s[i] & 0xC0) == 0x80;
      if (!cont) continue;
    }
    if (hc_utf8_valid((const char *)s, n - k)) return (long)(n - k);
    if (k == 0 && n >= 1 && (s[n - 1] & 0x80) == 0) break;   /* ends in ASCII: plainly invalid */
  }
  return -1;
}

int hc_json_add_string (hc_buf *out, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *e, *run = p;
  size_t n0 = out->n;
  if (n == 0) {
    hc_buf_add(out, "\"\"", 2);
    return 0;
  }
  e = p + n;
  hc_buf_reserve(out, n + 2);  /* the common case needs no further growth */
  hc_buf_addc(out, '"');
  for (;;) {
    p = skip_plain(p, e);
    if (p >= e)
      break;
    if (strclass[*p] == SC_HIGH) {  /* valid UTF-8 stays in the run, unescaped */
      int len = utf8_seq(p, e);
      if (len == 0) {
        if (!out->oom) out->n = n0;
        return -1;
      }
      p += len;
    }
    else {
      char esc[6];
      hc_buf_add(out, run, (size_t)(p - run));
      hc_buf_add(out, esc, escape_byte(esc, *p));
      run = ++p;
    }
  }
  hc_buf_add(out, run, (size_t)(p - run));
  hc_buf_addc(out, '"');
  return 0;
}

static void add_integer (hc_buf *b, lua_Integer v) {
  char tmp[24];
  char *p = tmp + sizeof(tmp);
  /* negate in unsigned arithmetic: well defined for LUA_MININTEGER too */
  uint64_t u = (v < 0) ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    *--p = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u != 0);
  if (v < 0)
    *--p = '-';
  hc_buf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/*
** The shortest of %.15g, %.16g, %.17g that reads back as the same double (%.17g always does).
** printf follows LC_NUMERIC, so whatever it used as a decimal point (possibly several bytes)
** is rewritten to '.'; the read-back uses the "C" locale.
*/
static int add_float (hc_buf *b, double d) {
  locale_t loc = get_c_locale();
  char raw[64], txt[64];
  size_t n = 0;
  int prec;
  if (!isfinite(d))
    return -1;
  for (prec = 15; prec <= 17; prec++) {
    int len = snprintf(raw, sizeof(raw), "%.*g", prec, d);
    int i;
    if (len < 0 || (size_t)len >= sizeof(raw))
      return -1;  /* cannot happen for a finite double */
    for (i = 0, n = 0; i < len; i++) {
      char ch = raw[i];
      if (isdig(ch) || ch == '-' || ch == '+' || ch == 'e')
        txt[n++] = ch;
      else if (n == 0 || txt[n - 1] != '.')
        txt[n++] = '.';
    }
    txt[n] = '\0';
    if (prec == 17 || (loc != (locale_t)0 && strtod_l(txt, NULL, loc) == d))
      break;
  }
  hc_buf_add(b, txt, n);
  return 0;
}

typedef struct Enc {
  lua_State *L;
  hc_buf *b;
  int maxdepth;
  int mt;           /* stack index of the array marker (or nil if none was ever created) */
  const char *err;
} Enc;

static int enc_fail (Enc *E, const char *msg) {
  E->err = msg;
  return -1;
}

/*
** Push schema[name] by scanning the schema's own keys: a raw lookup that creates no string
** (pushing the key would allocate, and an allocation may run finalizers, i.e. Lua code).
*/
static int push_field (lua_State *L, int sch, const char *name) {
  size_t len = strlen(name);
  lua_pushnil(L);
  while (lua_next(L, sch)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      size_t kl;
      const char *k = lua_tolstring(L, -2, &kl);
      if (kl == len && memcmp(k, name, len) == 0) {
        lua_remove(L, -2);
        return lua_type(L, -1);
      }
    }
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  return LUA_TNIL;
}

static int is_str (lua_State *L, int idx, const char *lit) {
  size_t n;
  const char *s;
  if (lua_type(L, idx) != LUA_TSTRING) return 0;
  s = lua_tolstring(L, idx, &n);
  return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* 1 if the schema's type is "array", or a list holding "array" but not "object". */
static int schema_is_array (lua_State *L, int sch) {
  int r = 0;
  if (sch == 0)
    return 0;
  switch (push_field(L, sch, "type")) {
    case LUA_TSTRING:
      r = is_str(L, -1, "array");
      break;
    case LUA_TTABLE: {
      int t = lua_gettop(L), arr = 0, obj = 0;
      lua_Integer i, n = (lua_Integer)lua_rawlen(L, t);
      for (i = 1; i <= n; i++) {
        lua_rawgeti(L, t, i);
        arr |= is_str(L, -1, "array");
        obj |= is_str(L, -1, "object");
        lua_pop(L, 1);
      }
      r = arr && !obj;
      break;
    }
    default:
      break;
  }
  lua_pop(L, 1);
  return r;
}

/* Schema field `name` pushed and its index returned if it is a table; else nothing, 0. */
static int sub_schema (lua_State *L, int sch, const char *name) {
  if (sch == 0)
    return 0;
  if (push_field(L, sch, name) == LUA_TTABLE)
    return lua_gettop(L);
  lua_pop(L, 1);
  return 0;
}

static int enc_value (Enc *E, int idx, int sch, int depth);

static int enc_array (Enc *E, int idx, int sch, int depth, lua_Integer n) {
  lua_State *L = E->L;
  int items = sub_schema(L, sch, "items");
  lua_Integer i;
  hc_buf_addc(E->b, '[');
  for (i = 1; i <= n; i++) {
    if (i > 1)
      hc_buf_addc(E->b, ',');
    lua_rawgeti(L, idx, i);  /* nil (a hole in a marked array) encodes as null */
    if (enc_value(E, lua_gettop(L), items, depth))
      return -1;
    lua_pop(L, 1);
    if (E->b->oom)
      return enc_fail(E, "out of memory");
  }
  hc_buf_addc(E->b, ']');
  if (items)
    lua_pop(L, 1);
  return 0;
}

/* The schema only tells an empty table's kind ([] or {}): it is looked at for values that are
** tables, so an answer of strings and numbers costs no schema walk. */
static void object_subschemas (lua_State *L, int sch, int slot, int *props, int *addl) {
  int p = sub_schema(L, sch, "properties"), a;
  if (p) lua_replace(L, slot);
  a = sub_schema(L, sch, "additionalProperties");
  if (a) lua_replace(L, slot + 1);
  *props = p ? slot : 0;
  *addl = a ? slot + 1 : 0;
}

static int enc_object (Enc *E, int idx, int sch, int depth) {
  lua_State *L = E->L;
  int base = lua_gettop(L);
  int props = 0, addl = 0, looked = sch == 0;
  int first = 1;
  lua_pushnil(L);  /* slots for the properties and additionalProperties schemas */
  lua_pushnil(L);
  hc_buf_addc(E->b, '{');
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int v = lua_gettop(L), sub = 0;  /* value at v, key at v - 1 */
    size_t kl;
    const char *k;
    if (lua_type(L, v - 1) != LUA_TSTRING)
      return enc_fail(E, "non-string key");
    k = lua_tolstring(L, v - 1, &kl);
    if (!first)
      hc_buf_addc(E->b, ',');
    first = 0;
    if (hc_json_add_string(E->b, k, kl))
      return enc_fail(E, ERR_UTF8);
    hc_buf_addc(E->b, ':');
    if (lua_type(L, v) == LUA_TTABLE && !looked) {
      object_subschemas(L, sch, base + 1, &props, &addl);
      looked = 1;
    }
    if (props && lua_type(L, v) == LUA_TTABLE) {
      lua_pushvalue(L, v - 1);
      if (lua_rawget(L, props) == LUA_TTABLE) sub = v + 1;
      else lua_pop(L, 1);
    }
    if (sub == 0 && addl && lua_type(L, v) == LUA_TTABLE) {
      lua_pushvalue(L, addl);
      sub = v + 1;
    }
    if (enc_value(E, v, sub, depth))
      return -1;
    lua_settop(L, v - 1);  /* keep the key for lua_next */
    if (E->b->oom)
      return enc_fail(E, "out of memory");
  }
  hc_buf_addc(E->b, '}');
  lua_settop(L, base);
  return 0;
}

/*
** A table at nesting level depth. Array if it carries the marker; otherwise the first key
** decides: a string starts an object (any later non-string key is an error), anything else
** must be part of a sequence: all keys positive integers, and as many keys as the largest
** one, i.e. exactly 1..n (lua_rawlen alone cannot tell {1, nil, 3} from a sequence).
*/
static int enc_table (Enc *E, int idx, int sch, int depth) {
  lua_State *L = E->L;
  lua_Integer count = 0, max = 0;
  if (depth > E->maxdepth || !lua_checkstack(L, HC_JSON_SLOTS))
    return enc_fail(E, "too deep or cyclic");
  if (lua_getmetatable(L, idx)) {  /* the raw metatable: __metatable is not consulted */
    int isarr = lua_rawequal(L, -1, E->mt);
    lua_pop(L, 1);
    if (isarr)
      return enc_array(E, idx, sch, depth, (lua_Integer)lua_rawlen(L, idx));
  }
  lua_pushnil(L);
  if (!lua_next(L, idx)) {
    hc_buf_add(E->b, schema_is_array(L, sch) ? "[]" : "{}", 2);
    return 0;
  }
  if (lua_type(L, -2) == LUA_TSTRING) {
    lua_pop(L, 2);
    return enc_object(E, idx, sch, depth);
  }
  do {
    lua_Integer k;
    if (!lua_isinteger(L, -2) || (k = lua_tointeger(L, -2)) < 1)
      return enc_fail(E, "non-string key");
    count++;
    if (k > max) max = k;
    lua_pop(L, 1);
  } while (lua_next(L, idx));
  if (max != count)
    return enc_fail(E, "sparse array");
  return enc_array(E, idx, sch, depth, count);
}

static int enc_value (Enc *E, int idx, int sch, int depth) {
  lua_State *L = E->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      hc_buf_add(E->b, "null", 4);
      return 0;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx)) hc_buf_add(E->b, "true", 4);
      else hc_buf_add(E->b, "false", 5);
      return 0;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx))
        add_integer(E->b, lua_tointeger(L, idx));
      else if (add_float(E->b, lua_tonumber(L, idx)))
        return enc_fail(E, "NaN or infinity");
      return 0;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);  /* already a string: no conversion */
      return hc_json_add_string(E->b, s, n) ? enc_fail(E, ERR_UTF8) : 0;
    }
    case LUA_TTABLE:
      return enc_table(E, idx, sch, depth + 1);
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == (void *)&null_sentinel) {
        hc_buf_add(E->b, "null", 4);
        return 0;
      }
      return enc_fail(E, "unsupported type lightuserdata");
    case LUA_TFUNCTION: return enc_fail(E, "unsupported type function");
    case LUA_TUSERDATA: {
      hc_json_text *t = to_text(L, idx);
      if (!t)
        return enc_fail(E, "unsupported type userdata");
      if (hc_buf_reserve(E->b, t->n + 2))
        return 0;  /* out of memory: the caller looks at E->b->oom */
      E->b->p[E->b->n++] = '"';
      if (t->b64)
        E->b->n += hc_base64_encode((const unsigned char *)t->p, t->raw, E->b->p + E->b->n);
      else {
        memcpy(E->b->p + E->b->n, t->p, t->n);
        E->b->n += t->n;
      }
      E->b->p[E->b->n++] = '"';
      return 0;
    }
    case LUA_TTHREAD: return enc_fail(E, "unsupported type thread");
    default: return enc_fail(E, "unsupported type");
  }
}

/* On error out is restored to its length on entry (unless it ran out of memory). */
int hc_json_encode (lua_State *L, int idx, int schema_idx, hc_buf *out, int max_depth,
                    const char **err) {
  Enc E;
  int top = lua_gettop(L), r;
  size_t n0 = out->n;
  idx = lua_absindex(L, idx);
  if (schema_idx != 0) {
    schema_idx = lua_absindex(L, schema_idx);
    if (lua_type(L, schema_idx) != LUA_TTABLE)
      schema_idx = 0;  /* only a hint */
  }
  E.L = L;
  E.b = out;
  E.maxdepth = max_depth;
  E.err = NULL;
  if (!lua_checkstack(L, HC_JSON_SLOTS))
    r = enc_fail(&E, "too deep or cyclic");
  else {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);  /* nil if never created: matches nothing */
    E.mt = lua_gettop(L);
    r = enc_value(&E, idx, schema_idx, 0);
    if (r == 0 && out->oom)
      r = enc_fail(&E, "out of memory");
  }
  lua_settop(L, top);
  if (r != 0 && !out->oom)
    out->n = n0;
  if (err)
    *err = E.err;
  return r;
}

/* }====================================================== */


/*
** {======================================================
** Lua functions
** =======================================================
*/

int hc_json_l_decode (lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  hc_jcur c;
  hc_jcur_init(&c, s, n, HC_JSON_MAX_DEPTH);
  if (hc_jcur_value_lua(&c, L) == 0) {
    if (hc_jcur_ws(&c) < 0)
      return 1;
    lua_pop(L, 1);
    c.err = "trailing garbage";
  }
  luaL_pushfail(L);
  lua_pushfstring(L, "json: %s at byte %I", c.err, (lua_Integer)(c.p - c.start));
  return 2;
}

static int encbuf_gc (lua_State *L) {
  hc_buf_free((hc_buf *)lua_touserdata(L, 1));
  return 0;
}

/*
** The encode buffer, kept per state in a userdata so that its memory is freed by the GC even
** if a memory error unwinds through l_encode. Reuse is safe: encoding runs no Lua code.
*/
static const char limit_key = 0;

void hc_json_set_encode_limit (lua_State *L, size_t limit) {
  lua_pushinteger(L, (lua_Integer)limit);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &limit_key);
}

size_t hc_json_encode_limit (lua_State *L) {
  lua_Integer v = lua_rawgetp(L, LUA_REGISTRYINDEX, &limit_key) == LUA_TNUMBER ? lua_tointeger(L, -1) : 0;
  lua_pop(L, 1);
  return v > 0 ? (size_t)v : 0;
}

static hc_buf *enc_buffer (lua_State *L) {
  hc_buf *b;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &encbuf_key) == LUA_TUSERDATA) {
    b = (hc_buf *)lua_touserdata(L, -1);
    lua_pop(L, 1);  /* still referenced by the registry */
    return b;
  }
  lua_pop(L, 1);
  b = (hc_buf *)lua_newuserdatauv(L, sizeof(hc_buf), 0);
  memset(b, 0, sizeof(*b));
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, encbuf_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &encbuf_key);
  return b;
}

int hc_json_l_encode (lua_State *L) {
  const char *err;
  int sch = 0;
  hc_buf *b;
  luaL_checkany(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    sch = 2;
  }
  b = enc_buffer(L);
  hc_buf_reset(b);
  b->limit = hc_json_encode_limit(L);
  if (hc_json_encode(L, 1, sch, b, HC_JSON_MAX_DEPTH, &err)) {
    if (b->oom == 2) {
      /* Over the tenant's memory cap, host-side: charge it to the tenant's allocator, which
      ** refuses it, so this is the tenant's memory error (uncatchable), not a quiet failure. */
      size_t want = b->limit + 1;
      hc_buf_free(b);
      lua_newuserdatauv(L, want, 0);
      lua_pop(L, 1);
      err = "result too large";
    }
    if (b->cap > HC_JSON_KEEP_BUF) hc_buf_free(b);
    luaL_pushfail(L);
    lua_pushfstring(L, "json: %s", err);
    return 2;
  }
  /* copies before it may collect (and so run finalizers that could encode again) */
  lua_pushlstring(L, b->p, b->n);
  if (b->cap > HC_JSON_KEEP_BUF) hc_buf_free(b);
  return 1;
}

/* }====================================================== */
