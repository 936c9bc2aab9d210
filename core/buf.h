/*
** buf.h: a growable byte buffer, the one output type of the core.
** Allocation failure is sticky (b->oom) so callers check once at the end.
*/
#ifndef HC_BUF_H
#define HC_BUF_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct hc_buf {
  char *p;      /* bytes; not NUL-terminated unless hc_buf_cstr is called */
  size_t n;     /* bytes used */
  size_t cap;   /* bytes allocated */
  int oom;      /* set once an allocation failed (2: the limit was hit); appends are no-ops */
  size_t limit; /* 0, or the most bytes this buffer may hold (host memory outside Lua's cap) */
} hc_buf;

#define HC_BUF_INIT {NULL, 0, 0, 0, 0}

/* Make room for `extra` more bytes; 0 on success, -1 (and b->oom) on failure. */
static inline int hc_buf_reserve(hc_buf *b, size_t extra) {
  if (b->oom) return -1;
  if (extra <= b->cap - b->n) return 0;
  if (b->limit && extra > b->limit - (b->n < b->limit ? b->n : b->limit)) { b->oom = 2; return -1; }
  if (extra > ((size_t)-1 >> 2) - b->n) { b->oom = 1; return -1; }
  size_t want = b->n + extra, cap = b->cap ? b->cap : 256;
  while (cap < want) cap *= 2;
  char *np = realloc(b->p, cap);
  if (!np) { b->oom = 1; return -1; }
  b->p = np;
  b->cap = cap;
  return 0;
}

static inline void hc_buf_add(hc_buf *b, const void *s, size_t len) {
  if (len == 0 || hc_buf_reserve(b, len)) return;
  memcpy(b->p + b->n, s, len);
  b->n += len;
}

static inline void hc_buf_addc(hc_buf *b, char c) {
  if (hc_buf_reserve(b, 1)) return;
  b->p[b->n++] = c;
}

static inline void hc_buf_adds(hc_buf *b, const char *s) { hc_buf_add(b, s, strlen(s)); }

/* Drop the first `len` bytes (after a partial write). */
static inline void hc_buf_consume(hc_buf *b, size_t len) {
  if (len >= b->n) { b->n = 0; return; }
  memmove(b->p, b->p + len, b->n - len);
  b->n -= len;
}

/* NUL-terminate without counting the NUL; returns NULL after an allocation failure. */
static inline const char *hc_buf_cstr(hc_buf *b) {
  if (hc_buf_reserve(b, 1)) return NULL;
  b->p[b->n] = '\0';
  return b->p;
}

static inline void hc_buf_reset(hc_buf *b) { b->n = 0; b->oom = 0; }
/* Note: the limit is checked when growing; a buffer already larger keeps its capacity. */

static inline void hc_buf_free(hc_buf *b) {
  free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
  b->oom = 0;
}

#endif
