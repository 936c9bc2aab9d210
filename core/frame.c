/*
** frame.c: ndjson and lsp framing over a bounded buffer.
*/
#include "frame.h"

#include <string.h>
#include <strings.h>

#define FRAME_COMPACT_MIN 65536   /* move unconsumed bytes down once this much is consumed */

void hc_framer_init(hc_framer *f, hc_framing mode, size_t max) {
  memset(f, 0, sizeof *f);
  f->mode = mode;
  f->max = max;
}

void hc_framer_free(hc_framer *f) { hc_buf_free(&f->in); }

size_t hc_framer_pending(const hc_framer *f) { return f->in.n - f->pos; }

static void compact(hc_framer *f) {
  if (f->pos == 0) return;
  hc_buf_consume(&f->in, f->pos);
  f->pos = 0;
}

char *hc_framer_space(hc_framer *f, size_t want) {
  if (f->pos && (f->pos >= FRAME_COMPACT_MIN || f->pos == f->in.n)) compact(f);
  if (hc_buf_reserve(&f->in, want)) return NULL;
  return f->in.p + f->in.n;
}

void hc_framer_commit(hc_framer *f, size_t n) { f->in.n += n; }

int hc_framer_feed(hc_framer *f, const char *data, size_t n) {
  char *dst = hc_framer_space(f, n);
  if (!dst) return -1;
  memcpy(dst, data, n);
  hc_framer_commit(f, n);
  return 0;
}

static int all_space(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
  return 1;
}

/* {===== ndjson ===== */

static hc_frame_event next_ndjson(hc_framer *f, const char **frame, size_t *len) {
  for (;;) {
    char *base = f->in.p + f->pos;
    size_t avail = f->in.n - f->pos;
    if (f->discarding) {
      char *nl = avail ? memchr(base, '\n', avail) : NULL;
      if (!nl) { f->pos = f->in.n; compact(f); return HC_FRAME_NONE; }
      f->pos += (size_t)(nl - base) + 1;
      f->discarding = 0;
      continue;
    }
    char *nl = avail > f->scan ? memchr(base + f->scan, '\n', avail - f->scan) : NULL;
    if (!nl) {
      f->scan = avail;
      if (avail > f->max + 1) {   /* + 1: the CR of a CRLF may still be here */
        /* The line is already over the cap: drop what we have and the rest of it. */
        f->event_bytes = avail;
        f->pos = f->in.n;
        f->scan = 0;
        f->discarding = 1;
        compact(f);
        return HC_FRAME_OVERSIZE;
      }
      return HC_FRAME_NONE;
    }
    size_t n = (size_t)(nl - base);
    f->pos += n + 1;
    f->scan = 0;
    if (n && base[n - 1] == '\r') n--;
    f->event_bytes = n;
    if (n > f->max) return HC_FRAME_OVERSIZE;
    if (all_space(base, n)) continue;   /* empty lines are keep-alives, not frames */
    *frame = base;
    *len = n;
    return HC_FRAME_OK;
  }
}

/* }===== */

/* {===== lsp ===== */

static int header_is(const char *line, size_t n, const char *name, const char **value,
                     size_t *vlen) {
  size_t k = strlen(name);
  if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':') return 0;
  const char *v = line + k + 1, *e = line + n;
  while (v < e && (*v == ' ' || *v == '\t')) v++;
  while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
  *value = v;
  *vlen = (size_t)(e - v);
  return 1;
}

static hc_frame_event next_lsp(hc_framer *f, const char **frame, size_t *len) {
  for (;;) {
    size_t avail = f->in.n - f->pos;
    if (f->skip) {
      size_t k = f->skip < avail ? f->skip : avail;
      f->pos += k;
      f->skip -= k;
      if (f->skip) { compact(f); return HC_FRAME_NONE; }
      continue;
    }
    char *base = f->in.p + f->pos;
    /* Stray CRLFs between messages are tolerated. */
    if (avail >= 2 && base[0] == '\r' && base[1] == '\n') { f->pos += 2; continue; }
    char *end = avail >= 4 ? memmem(base, avail, "\r\n\r\n", 4) : NULL;
    if (!end) {
      if (avail > HC_LSP_MAX_HEADER + 3) {   /* + 3: a terminator may be arriving */
        f->msg = "lsp header block too long or unterminated";
        f->pos = f->in.n;
        return HC_FRAME_FATAL;
      }
      return HC_FRAME_NONE;
    }
    size_t hlen = (size_t)(end - base);
    if (hlen > HC_LSP_MAX_HEADER) {
      f->msg = "lsp header block too long";
      f->pos = f->in.n;
      return HC_FRAME_FATAL;
    }
    /* Parse the header lines. */
    int have_len = 0;
    unsigned long long clen = 0;
    const char *bad = NULL;
    for (const char *line = base; line < end;) {
      const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
      if (!eol) eol = end;
      size_t n = (size_t)(eol - line);
      const char *v;
      size_t vlen;
      if (header_is(line, n, "Content-Length", &v, &vlen)) {
        if (have_len || vlen == 0 || vlen > 19) { f->msg = "invalid Content-Length"; goto fatal; }
        clen = 0;
        for (size_t i = 0; i < vlen; i++) {
          if (v[i] < '0' || v[i] > '9') { f->msg = "invalid Content-Length"; goto fatal; }
          clen = clen * 10 + (unsigned long long)(v[i] - '0');
        }
        have_len = 1;
      } else if (header_is(line, n, "Content-Type", &v, &vlen)) {
        /* accepted and ignored: the body is always UTF-8 JSON */
      } else if (!bad) {
        bad = memchr(line, ':', n) ? "unknown lsp header" : "malformed lsp header line";
      }
      line = eol + 2;
    }
    if (!have_len) { f->msg = "missing Content-Length"; goto fatal; }
    size_t body = hlen + 4;
    if (bad || clen > f->max) {
      f->pos += body;
      f->skip = (size_t)clen;
      f->msg = bad;
      f->event_bytes = body + (size_t)clen;
      return bad ? HC_FRAME_BAD : HC_FRAME_OVERSIZE;
    }
    if (avail - body < clen) return HC_FRAME_NONE;
    *frame = base + body;
    *len = (size_t)clen;
    f->pos += body + (size_t)clen;
    return HC_FRAME_OK;
  fatal:
    f->pos = f->in.n;
    return HC_FRAME_FATAL;
  }
}

/* }===== */

hc_frame_event hc_framer_eof(hc_framer *f, const char **frame, size_t *len) {
  if (f->mode != HC_FRAMING_NDJSON || f->discarding) return HC_FRAME_NONE;
  const char *base = f->in.p + f->pos;
  size_t n = f->in.n - f->pos;
  f->pos = f->in.n;
  f->scan = 0;
  if (n && base[n - 1] == '\r') n--;
  f->event_bytes = n;
  if (n > f->max) return HC_FRAME_OVERSIZE;
  if (all_space(base, n)) return HC_FRAME_NONE;
  *frame = base;
  *len = n;
  return HC_FRAME_OK;
}

hc_frame_event hc_framer_next(hc_framer *f, const char **frame, size_t *len) {
  return f->mode == HC_FRAMING_LSP ? next_lsp(f, frame, len) : next_ndjson(f, frame, len);
}
