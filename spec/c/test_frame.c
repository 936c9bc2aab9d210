/*
** test_frame.c: the framer (core/frame.h), ndjson and lsp, against its contract.
**
** Most cases run one stream through the framer fed whole, one byte at a time, and split in two
** at every position (fed through both hc_framer_feed and hc_framer_space/commit), and assert
** that the same sequence of events (frames byte for byte, OVERSIZE, BAD, FATAL) comes out.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "testutil.h"

#define S(lit)  lit, sizeof(lit) - 1

/* ---------- helpers ---------- */

/* Events are logged as text: "OK<len>:<bytes>\n", "OVERSIZE\n", "BAD:<msg>\n", "FATAL\n". */
static void log_event(hc_buf *log, hc_frame_event ev, const char *frame, size_t len,
                      const char *msg) {
  char tmp[64];
  switch (ev) {
    case HC_FRAME_OK:
      snprintf(tmp, sizeof tmp, "OK%zu:", len);
      hc_buf_adds(log, tmp);
      hc_buf_add(log, frame, len);
      break;
    case HC_FRAME_OVERSIZE: hc_buf_adds(log, "OVERSIZE"); break;
    case HC_FRAME_BAD: hc_buf_adds(log, "BAD:"); hc_buf_adds(log, msg ? msg : "(null)"); break;
    case HC_FRAME_FATAL: hc_buf_adds(log, "FATAL"); break;
    default: hc_buf_adds(log, "NONE?"); break;
  }
  hc_buf_addc(log, '\n');
}

/* Drain events; returns 1 after FATAL (the stream is given up, as a session would). */
static int drain(hc_framer *f, hc_buf *log) {
  for (;;) {
    const char *fr = NULL;
    size_t len = 0;
    hc_frame_event ev = hc_framer_next(f, &fr, &len);
    if (ev == HC_FRAME_NONE) return 0;
    log_event(log, ev, fr, len, f->msg);
    if (ev == HC_FRAME_FATAL) return 1;
  }
}

static size_t max_pending;   /* the largest hc_framer_pending seen right after a feed */

/* Feed s[0..n) in pieces ending at cuts[0..ncuts) (then the rest); events into log. */
static void run_split(hc_framing mode, size_t cap, const char *s, size_t n, const size_t *cuts,
                      size_t ncuts, int use_space, hc_buf *log) {
  hc_framer f;
  size_t at = 0;
  hc_framer_init(&f, mode, cap);
  hc_buf_reset(log);
  max_pending = 0;
  for (size_t i = 0; i <= ncuts; i++) {
    size_t end = i < ncuts ? cuts[i] : n;
    if (end < at) end = at;
    size_t k = end - at;
    if (use_space) {
      char *dst = hc_framer_space(&f, k ? k : 1);
      if (!dst) { hc_buf_adds(log, "NOMEM\n"); break; }
      memcpy(dst, s + at, k);
      hc_framer_commit(&f, k);
    } else if (hc_framer_feed(&f, s + at, k)) {
      hc_buf_adds(log, "NOMEM\n");
      break;
    }
    if (hc_framer_pending(&f) > max_pending) max_pending = hc_framer_pending(&f);
    at = end;
    if (drain(&f, log)) break;
  }
  hc_framer_free(&f);
}

static void show(const char *label, const hc_buf *b) {
  fprintf(stderr, "  %s: \"", label);
  for (size_t i = 0; i < b->n; i++) {
    unsigned char c = (unsigned char)b->p[i];
    if (c == '\n') fputs("\\n", stderr);
    else if (c == '\r') fputs("\\r", stderr);
    else if (c < 32 || c > 126) fprintf(stderr, "\\x%02x", c);
    else fputc(c, stderr);
    if (i > 400) { fputs("...", stderr); break; }
  }
  fputs("\"\n", stderr);
}

static int same(const hc_buf *a, const hc_buf *b) {
  return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0);
}

/*
** Check the stream against the expected event log: fed whole, one byte at a time, and in every
** 2-split (both feeding styles). Reports the first split that differs, once per case.
*/
static void check_stream(const char *name, hc_framing mode, size_t cap, const char *s, size_t n,
                         const char *expect) {
  hc_buf want = HC_BUF_INIT, got = HC_BUF_INIT;
  size_t *cuts = malloc((n + 1) * sizeof *cuts);
  hc_buf_adds(&want, expect);

  run_split(mode, cap, s, n, NULL, 0, 0, &got);
  if (!CHECK(same(&got, &want))) {
    fprintf(stderr, "  case %s, fed whole\n", name);
    show("expected", &want);
    show("got     ", &got);
  }

  for (size_t i = 0; i < n; i++) cuts[i] = i + 1;
  run_split(mode, cap, s, n, cuts, n, 1, &got);
  if (!CHECK(same(&got, &want))) {
    fprintf(stderr, "  case %s, fed one byte at a time\n", name);
    show("expected", &want);
    show("got     ", &got);
  }

  int split_ok = 1;
  for (size_t i = 1; i < n && split_ok; i++) {
    for (int style = 0; style < 2 && split_ok; style++) {
      run_split(mode, cap, s, n, &i, 1, style, &got);
      if (!same(&got, &want)) {
        split_ok = 0;
        fprintf(stderr, "  case %s, split at %zu of %zu (%s)\n", name, i, n,
                style ? "space/commit" : "feed");
        show("expected", &want);
        show("got     ", &got);
      }
    }
  }
  if (!CHECK(split_ok)) fprintf(stderr, "  case %s: 2-splits differ\n", name);
  hc_buf_free(&want);
  hc_buf_free(&got);
  free(cuts);
}

#define CHECK_STREAM(mode, cap, lit, expect) \
  check_stream(#lit, (mode), (cap), S(lit), (expect))

static char *repeat(char c, size_t n) {
  char *p = malloc(n + 1);
  memset(p, c, n);
  p[n] = '\0';
  return p;
}

/* ---------- ndjson ---------- */

TEST(ndjson_basic_frames) {
  CHECK_STREAM(HC_FRAMING_NDJSON, 1024, "{\"a\":1}\n[1,2]\n\"x\"\n",
               "OK7:{\"a\":1}\nOK5:[1,2]\nOK3:\"x\"\n");
  /* a line without its newline is not a frame yet */
  CHECK_STREAM(HC_FRAMING_NDJSON, 1024, "{}\n{\"partial\"", "OK2:{}\n");
  /* bytes are passed through untouched, including inner CRs, tabs and high bytes */
  CHECK_STREAM(HC_FRAMING_NDJSON, 1024, "a\rb\tc \xc3\xa9 d\n", "OK10:a\rb\tc \xc3\xa9 d\n");
}

TEST(ndjson_blank_lines_skipped) {
  CHECK_STREAM(HC_FRAMING_NDJSON, 1024, "\n\n  \t \n\r\n \r\n{}\n\n", "OK2:{}\n");
  CHECK_STREAM(HC_FRAMING_NDJSON, 1024, "\n", "");
  CHECK_STREAM(HC_FRAMING_NDJSON, 1024, "   \n\t\n", "");
  /* surrounding whitespace on a real line is kept (the JSON parser skips it) */
  CHECK_STREAM(HC_FRAMING_NDJSON, 1024, "  {} \n", "OK5:  {} \n");
}

TEST(ndjson_crlf_stripped) {
  CHECK_STREAM(HC_FRAMING_NDJSON, 1024, "{}\r\n[]\r\n", "OK2:{}\nOK2:[]\n");
  CHECK_STREAM(HC_FRAMING_NDJSON, 1024, "{}\r\n\r\n[]\n", "OK2:{}\nOK2:[]\n");
}

TEST(ndjson_cap_boundary) {
  enum { CAP = 64 };
  char in[512], ex[512];
  char *l64 = repeat('a', CAP), *l65 = repeat('b', CAP + 1);
  /* exactly at the cap: accepted */
  snprintf(in, sizeof in, "%s\n{}\n", l64);
  snprintf(ex, sizeof ex, "OK%d:%s\nOK2:{}\n", CAP, l64);
  check_stream("line == cap", HC_FRAMING_NDJSON, CAP, in, strlen(in), ex);
  /* cap + 1: refused, and the next line still arrives */
  snprintf(in, sizeof in, "%s\n{}\n", l65);
  check_stream("line == cap+1", HC_FRAMING_NDJSON, CAP, in, strlen(in), "OVERSIZE\nOK2:{}\n");
  /* oversized in the middle of good lines, twice in a row */
  snprintf(in, sizeof in, "[1]\n%s\n%s\n[2]\n", l65, l65);
  check_stream("two oversized", HC_FRAMING_NDJSON, CAP, in, strlen(in),
               "OK3:[1]\nOVERSIZE\nOVERSIZE\nOK3:[2]\n");
  /* an oversized line whose end has not arrived yet is already reported */
  snprintf(in, sizeof in, "%s%s", l65, l65);
  check_stream("oversized, unterminated", HC_FRAMING_NDJSON, CAP, in, strlen(in), "OVERSIZE\n");
  free(l64);
  free(l65);
}

/* A line of exactly cap bytes ended by CRLF is a line of cap bytes: whether the CR and the LF
** arrive in the same read or not must not change the answer. */
TEST(ndjson_cap_boundary_crlf) {
  enum { CAP = 64 };
  char in[512], ex[512];
  char *l64 = repeat('a', CAP);
  snprintf(in, sizeof in, "%s\r\n{}\r\n", l64);
  snprintf(ex, sizeof ex, "OK%d:%s\nOK2:{}\n", CAP, l64);
  check_stream("line == cap, CRLF", HC_FRAMING_NDJSON, CAP, in, strlen(in), ex);
  free(l64);
}

/* A whitespace-only line longer than the cap: skipped as a keep-alive or refused as oversized
** (either is defensible), but the same answer however the bytes are split. */
TEST(ndjson_long_blank_line) {
  enum { CAP = 16 };
  char in[256];
  char *sp = repeat(' ', CAP + 8);
  hc_buf whole = HC_BUF_INIT;
  snprintf(in, sizeof in, "%s\n{}\n", sp);
  run_split(HC_FRAMING_NDJSON, CAP, in, strlen(in), NULL, 0, 0, &whole);
  const char *w = hc_buf_cstr(&whole);
  CHECK(w && (strcmp(w, "OK2:{}\n") == 0 || strcmp(w, "OVERSIZE\nOK2:{}\n") == 0));
  if (w) check_stream("blank line > cap", HC_FRAMING_NDJSON, CAP, in, strlen(in), w);
  hc_buf_free(&whole);
  free(sp);
}

TEST(ndjson_oversize_streamed_bounded) {
  enum { CAP = 4096, CHUNK = 1000 };
  const size_t total = 8u << 20;   /* 8 MiB of one line */
  char chunk[CHUNK];
  hc_framer f;
  hc_framer_init(&f, HC_FRAMING_NDJSON, CAP);
  memset(chunk, 'x', sizeof chunk);
  int oversize = 0, other = 0, feed_errors = 0;
  size_t worst = 0, worst_cap = 0;
  for (size_t sent = 0; sent < total; sent += CHUNK) {
    if (hc_framer_feed(&f, chunk, CHUNK)) feed_errors++;
    if (hc_framer_pending(&f) > worst) worst = hc_framer_pending(&f);
    const char *fr;
    size_t len;
    hc_frame_event ev;
    while ((ev = hc_framer_next(&f, &fr, &len)) != HC_FRAME_NONE) {
      if (ev == HC_FRAME_OVERSIZE) oversize++;
      else other++;
    }
    if (f.in.cap > worst_cap) worst_cap = f.in.cap;
  }
  /* the end of the line, then a good frame */
  CHECK(hc_framer_feed(&f, S("tail\n{\"ok\":1}\n")) == 0);
  const char *fr = NULL;
  size_t len = 0;
  hc_frame_event ev = hc_framer_next(&f, &fr, &len);
  CHECK(ev == HC_FRAME_OK);
  CHECK(ev == HC_FRAME_OK && len == 8 && memcmp(fr, "{\"ok\":1}", 8) == 0);
  CHECK(hc_framer_next(&f, &fr, &len) == HC_FRAME_NONE);
  CHECK(feed_errors == 0);
  CHECK(oversize == 1);
  CHECK(other == 0);
  /* cap + chunk, plus one byte of slack for a CR that may end a line exactly at the cap */
  if (!CHECK(worst <= CAP + 1 + CHUNK)) fprintf(stderr, "  pending peaked at %zu\n", worst);
  /* the buffer itself stays small too (a constant, not a function of the line's length) */
  if (!CHECK(worst_cap <= 64 * 1024)) fprintf(stderr, "  buffer capacity peaked at %zu\n", worst_cap);
  hc_framer_free(&f);
}

TEST(ndjson_pending_bounded_in_split_runs) {
  enum { CAP = 32 };
  char in[1024];
  char *big = repeat('z', 300);
  snprintf(in, sizeof in, "{}\n%s\n[]\n", big);
  hc_buf log = HC_BUF_INIT;
  size_t cuts[400] = {0};
  size_t n = strlen(in);
  for (size_t i = 0; i < n; i++) cuts[i] = i + 1;
  /* cap + chunk (+1: a CR that may end a line exactly at the cap) */
  run_split(HC_FRAMING_NDJSON, CAP, in, n, cuts, n, 0, &log);
  CHECK(max_pending <= CAP + 1 + 1);
  for (size_t i = 0; i * 7 < n; i++) cuts[i] = i * 7;
  run_split(HC_FRAMING_NDJSON, CAP, in, n, cuts, (n + 6) / 7, 0, &log);
  CHECK(max_pending <= CAP + 1 + 7);
  hc_buf_free(&log);
  free(big);
}

TEST(ndjson_many_frames_in_one_feed) {
  /* thousands of frames in one buffer, then the consumed prefix is compacted away */
  hc_buf in = HC_BUF_INIT;
  for (int i = 0; i < 20000; i++) {
    char line[32];
    snprintf(line, sizeof line, "[%d]\n", i);
    hc_buf_adds(&in, line);
  }
  hc_framer f;
  hc_framer_init(&f, HC_FRAMING_NDJSON, 64);
  CHECK(hc_framer_feed(&f, in.p, in.n) == 0);
  int count = 0, bad = 0;
  const char *fr;
  size_t len;
  hc_frame_event ev;
  while ((ev = hc_framer_next(&f, &fr, &len)) == HC_FRAME_OK) {
    char want[32];
    int k = snprintf(want, sizeof want, "[%d]", count);
    if ((size_t)k != len || memcmp(fr, want, len) != 0) bad++;
    count++;
  }
  CHECK(ev == HC_FRAME_NONE);
  CHECK(count == 20000);
  CHECK(bad == 0);
  CHECK(hc_framer_pending(&f) == 0);
  /* more input after everything was consumed */
  CHECK(hc_framer_feed(&f, S("{}\n")) == 0);
  CHECK(hc_framer_next(&f, &fr, &len) == HC_FRAME_OK && len == 2);
  hc_framer_free(&f);
  hc_buf_free(&in);
}

/* ---------- lsp ---------- */

#define CL(n) "Content-Length: " #n "\r\n\r\n"

TEST(lsp_basic_frames) {
  CHECK_STREAM(HC_FRAMING_LSP, 1024, CL(2) "{}" CL(5) "[1,2]", "OK2:{}\nOK5:[1,2]\n");
  /* the body is taken by length: newlines and CRLFs inside it are data */
  CHECK_STREAM(HC_FRAMING_LSP, 1024, CL(6) "[\r\n1\n]" CL(2) "{}", "OK6:[\r\n1\n]\nOK2:{}\n");
  /* a body not complete yet is not a frame */
  CHECK_STREAM(HC_FRAMING_LSP, 1024, CL(2) "{}" CL(10) "[1,", "OK2:{}\n");
  /* spaces and tabs around the value */
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "Content-Length:\t 2 \t\r\n\r\n{}", "OK2:{}\n");
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "Content-Length:2\r\n\r\n{}", "OK2:{}\n");
}

TEST(lsp_header_names_case_insensitive) {
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "content-length: 2\r\n\r\n{}", "OK2:{}\n");
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "CONTENT-LENGTH: 2\r\n\r\n{}", "OK2:{}\n");
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "cOnTeNt-LeNgTh: 2\r\n\r\n{}", "OK2:{}\n");
}

TEST(lsp_content_type_accepted) {
  CHECK_STREAM(HC_FRAMING_LSP, 1024,
               "Content-Length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}",
               "OK2:{}\n");
  CHECK_STREAM(HC_FRAMING_LSP, 1024,
               "content-type: application/json\r\nContent-Length: 3\r\n\r\n[1]", "OK3:[1]\n");
}

TEST(lsp_stray_crlf_between_messages) {
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "\r\n" CL(2) "{}\r\n\r\n" CL(2) "[]", "OK2:{}\nOK2:[]\n");
}

TEST(lsp_zero_length_body) {
  CHECK_STREAM(HC_FRAMING_LSP, 1024, CL(0) CL(2) "{}", "OK0:\nOK2:{}\n");
}

TEST(lsp_unknown_header_bad_then_next) {
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "Content-Length: 2\r\nX-Foo: bar\r\n\r\n{}" CL(3) "[1]",
               "BAD:unknown lsp header\nOK3:[1]\n");
  /* the unknown header first, and a body that would be a valid frame */
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "X-Foo: bar\r\nContent-Length: 7\r\n\r\n{\"a\":1}" CL(2) "{}",
               "BAD:unknown lsp header\nOK2:{}\n");
  /* a header line without a colon */
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "Content-Length: 2\r\ngarbage\r\n\r\n{}" CL(2) "[]",
               "BAD:malformed lsp header line\nOK2:[]\n");
  /* "Content-Length" with a space before the colon is not the Content-Length header */
  CHECK_STREAM(HC_FRAMING_LSP, 1024,
               "Content-Length: 2\r\nContent-Length : 9\r\n\r\n{}" CL(2) "[]",
               "BAD:unknown lsp header\nOK2:[]\n");
}

TEST(lsp_fatal_headers) {
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "Content-Type: application/json\r\n\r\n{}", "FATAL\n");
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "X-Foo: 1\r\n\r\n{}", "FATAL\n");
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "Content-Length: 1a\r\n\r\n{}", "FATAL\n");
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "Content-Length: -2\r\n\r\n{}", "FATAL\n");
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "Content-Length: +2\r\n\r\n{}", "FATAL\n");
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "Content-Length: 0x2\r\n\r\n{}", "FATAL\n");
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "Content-Length: 2 2\r\n\r\n{}", "FATAL\n");
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "Content-Length:\r\n\r\n{}", "FATAL\n");
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", "FATAL\n");
  /* 20 digits is refused even when the value is small; 19 digits is a (huge) number */
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "Content-Length: 00000000000000000002\r\n\r\n{}", "FATAL\n");
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "Content-Length: 99999999999999999999\r\n\r\n{}", "FATAL\n");
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "Content-Length: 0000000000000000002\r\n\r\n{}", "OK2:{}\n");
  CHECK_STREAM(HC_FRAMING_LSP, 1024, "Content-Length: 9999999999999999999\r\n\r\n{}", "OVERSIZE\n");
  /* a good frame before the broken one still comes out */
  CHECK_STREAM(HC_FRAMING_LSP, 1024, CL(2) "{}" "Content-Length: x\r\n\r\n", "OK2:{}\nFATAL\n");
}

TEST(lsp_fatal_messages) {
  struct { const char *in, *msg; } cases[] = {
    { "Content-Type: a\r\n\r\n", "missing Content-Length" },
    { "Content-Length: z\r\n\r\n", "invalid Content-Length" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    hc_framer f;
    const char *fr;
    size_t len;
    hc_framer_init(&f, HC_FRAMING_LSP, 100);
    hc_framer_feed(&f, cases[i].in, strlen(cases[i].in));
    CHECK(hc_framer_next(&f, &fr, &len) == HC_FRAME_FATAL);
    CHECK_STREQ(f.msg, cases[i].msg);
    hc_framer_free(&f);
  }
}

TEST(lsp_body_over_cap) {
  enum { CAP = 16 };
  char in[512], ex[512];
  char *b16 = repeat('a', CAP), *b17 = repeat('b', CAP + 1), *b200 = repeat('c', 200);
  snprintf(in, sizeof in, "Content-Length: %d\r\n\r\n%s" CL(2) "{}", CAP, b16);
  snprintf(ex, sizeof ex, "OK%d:%s\nOK2:{}\n", CAP, b16);
  check_stream("lsp body == cap", HC_FRAMING_LSP, CAP, in, strlen(in), ex);
  snprintf(in, sizeof in, "Content-Length: %d\r\n\r\n%s" CL(2) "{}", CAP + 1, b17);
  check_stream("lsp body == cap+1", HC_FRAMING_LSP, CAP, in, strlen(in), "OVERSIZE\nOK2:{}\n");
  /* the body (which looks like headers) is skipped, not parsed */
  snprintf(in, sizeof in, "Content-Length: 200\r\n\r\n%s" CL(2) "{}" CL(2) "[]", b200);
  check_stream("lsp body 200", HC_FRAMING_LSP, CAP, in, strlen(in), "OVERSIZE\nOK2:{}\nOK2:[]\n");
  snprintf(in, sizeof in, "Content-Length: 46\r\n\r\n" CL(2) "{}" CL(2) "[]" CL(1) "1");
  check_stream("lsp body holding headers", HC_FRAMING_LSP, CAP, in, strlen(in), "OVERSIZE\nOK1:1\n");
  free(b16);
  free(b17);
  free(b200);
}

TEST(lsp_body_over_cap_streamed) {
  enum { CAP = 1024, PIECE = 7 };
  const size_t body = 1u << 20;
  hc_framer f;
  char piece[PIECE];
  const char *fr;
  size_t len;
  char hdr[64];
  int k = snprintf(hdr, sizeof hdr, "Content-Length: %zu\r\n\r\n", body);
  hc_framer_init(&f, HC_FRAMING_LSP, CAP);
  memset(piece, '{', sizeof piece);
  CHECK(hc_framer_feed(&f, hdr, (size_t)k) == 0);
  CHECK(hc_framer_next(&f, &fr, &len) == HC_FRAME_OVERSIZE);
  size_t sent = 0, worst = 0;
  int events = 0;
  while (sent < body) {
    size_t n = body - sent < PIECE ? body - sent : PIECE;
    hc_framer_feed(&f, piece, n);
    sent += n;
    if (hc_framer_pending(&f) > worst) worst = hc_framer_pending(&f);
    while (hc_framer_next(&f, &fr, &len) != HC_FRAME_NONE) events++;
  }
  CHECK(events == 0);
  if (!CHECK(worst <= PIECE)) fprintf(stderr, "  pending peaked at %zu\n", worst);
  CHECK(f.in.cap <= 64 * 1024);
  hc_framer_feed(&f, S(CL(2) "{}"));
  CHECK(hc_framer_next(&f, &fr, &len) == HC_FRAME_OK && len == 2 && memcmp(fr, "{}", 2) == 0);
  CHECK(hc_framer_next(&f, &fr, &len) == HC_FRAME_NONE);
  hc_framer_free(&f);
}

/* A header block of `hlen` bytes (before the blank line) with a valid Content-Length. */
static char *lsp_header_of(size_t hlen, const char *body) {
  const char *first = "Content-Length: ";
  char cl[64];
  snprintf(cl, sizeof cl, "%s%zu\r\nContent-Type: ", first, strlen(body));
  size_t pad = hlen - strlen(cl);
  size_t total = hlen + 4 + strlen(body);
  char *p = malloc(total + 1);
  memcpy(p, cl, strlen(cl));
  memset(p + strlen(cl), 'x', pad);
  memcpy(p + hlen, "\r\n\r\n", 4);
  memcpy(p + hlen + 4, body, strlen(body));
  p[total] = '\0';
  return p;
}

TEST(lsp_header_block_limit) {
  char *h;
  h = lsp_header_of(1000, "{}");
  check_stream("header 1000", HC_FRAMING_LSP, 64, h, strlen(h), "OK2:{}\n");
  free(h);
  h = lsp_header_of(HC_LSP_MAX_HEADER + 1, "{}");
  check_stream("header max+1", HC_FRAMING_LSP, 64, h, strlen(h), "FATAL\n");
  free(h);
  h = lsp_header_of(3 * HC_LSP_MAX_HEADER, "{}");
  check_stream("header 3*max", HC_FRAMING_LSP, 64, h, strlen(h), "FATAL\n");
  free(h);
  /* never terminated: refused once more than the limit has arrived, not buffered forever */
  hc_framer f;
  const char *fr;
  size_t len;
  hc_framer_init(&f, HC_FRAMING_LSP, 64);
  hc_frame_event ev = HC_FRAME_NONE;
  size_t fed = 0;
  while (ev == HC_FRAME_NONE && fed < 10 * HC_LSP_MAX_HEADER) {
    hc_framer_feed(&f, "X-Pad: aaaaaaaa", 15);
    fed += 15;
    ev = hc_framer_next(&f, &fr, &len);
  }
  CHECK(ev == HC_FRAME_FATAL);
  CHECK(fed <= HC_LSP_MAX_HEADER + 4 + 15);
  hc_framer_free(&f);
}

/* A header block of exactly HC_LSP_MAX_HEADER bytes is within the limit, however it arrives. */
TEST(lsp_header_block_at_limit) {
  char *h = lsp_header_of(HC_LSP_MAX_HEADER, "{}");
  check_stream("header == max", HC_FRAMING_LSP, 64, h, strlen(h), "OK2:{}\n");
  free(h);
}

TEST(lsp_pending_bounded) {
  /* frames at the cap, fed in 7-byte pieces: never more than one message plus a piece pending */
  enum { CAP = 100, PIECE = 7, NMSG = 20 };
  char *body = repeat('q', CAP);
  hc_buf in = HC_BUF_INIT, want = HC_BUF_INIT, log = HC_BUF_INIT;
  char hdr[64], ok[24];
  int hlen = snprintf(hdr, sizeof hdr, "Content-Length: %d\r\n\r\n", CAP);
  snprintf(ok, sizeof ok, "OK%d:", CAP);
  for (int i = 0; i < NMSG; i++) {
    hc_buf_add(&in, hdr, (size_t)hlen);
    hc_buf_adds(&in, body);
    hc_buf_adds(&want, ok);
    hc_buf_adds(&want, body);
    hc_buf_addc(&want, '\n');
  }
  size_t cuts[NMSG * 130 / PIECE + 2] = {0}, ncuts = 0;
  for (size_t at = PIECE; at < in.n; at += PIECE) cuts[ncuts++] = at;
  run_split(HC_FRAMING_LSP, CAP, in.p, in.n, cuts, ncuts, 0, &log);
  CHECK(same(&log, &want));
  if (!CHECK(max_pending <= (size_t)hlen + CAP + PIECE))
    fprintf(stderr, "  pending peaked at %zu\n", max_pending);
  hc_buf_free(&in);
  hc_buf_free(&want);
  hc_buf_free(&log);
  free(body);
}

int main(void) {
  RUN(ndjson_basic_frames);
  RUN(ndjson_blank_lines_skipped);
  RUN(ndjson_crlf_stripped);
  RUN(ndjson_cap_boundary);
  RUN(ndjson_cap_boundary_crlf);
  RUN(ndjson_long_blank_line);
  RUN(ndjson_oversize_streamed_bounded);
  RUN(ndjson_pending_bounded_in_split_runs);
  RUN(ndjson_many_frames_in_one_feed);
  RUN(lsp_basic_frames);
  RUN(lsp_header_names_case_insensitive);
  RUN(lsp_content_type_accepted);
  RUN(lsp_stray_crlf_between_messages);
  RUN(lsp_zero_length_body);
  RUN(lsp_unknown_header_bad_then_next);
  RUN(lsp_fatal_headers);
  RUN(lsp_fatal_messages);
  RUN(lsp_body_over_cap);
  RUN(lsp_body_over_cap_streamed);
  RUN(lsp_header_block_limit);
  RUN(lsp_header_block_at_limit);
  RUN(lsp_pending_bounded);
  return tu_summary();
}
