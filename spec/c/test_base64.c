/*
** test_base64.c: the encoder against RFC 4648's vectors and against a bit-by-bit reference on
** every length up to 1 KiB and random data (the SIMD path, its tail and the scalar path must give
** the same bytes); the decoder's round trip and its refusals.
*/
#include "base64.h"
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char ALPHA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The definition, one bit at a time. */
static size_t reference(const unsigned char *in, size_t n, char *out) {
  size_t k = 0, bits = n * 8;
  for (size_t b = 0; b < bits; b += 6) {
    unsigned v = 0;
    for (size_t j = 0; j < 6; j++) {
      size_t bit = b + j;
      unsigned one = bit < bits ? (in[bit / 8] >> (7 - bit % 8)) & 1 : 0;
      v = v << 1 | one;
    }
    out[k++] = ALPHA[v];
  }
  while (k % 4) out[k++] = '=';
  return k;
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static unsigned char rnd(void) {
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return (unsigned char)(rng >> 24);
}

TEST(rfc4648_vectors) {
  static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; i++) {
    char out[16];
    size_t n = hc_base64_encode((const unsigned char *)in[i], strlen(in[i]), out);
    out[n] = '\0';
    CHECK_STREQ(out, want[i]);
    unsigned char back[16];
    long m = hc_base64_decode(want[i], strlen(want[i]), back);
    CHECK(m == (long)strlen(in[i]) && memcmp(back, in[i], (size_t)m) == 0);
  }
}

TEST(every_length_matches_the_reference) {
  enum { MAX = 1030 };
  static unsigned char in[MAX + 16], back[MAX];
  static char a[MAX * 2], b[MAX * 2], c[MAX * 2];
  int bad = 0;
  for (int round = 0; round < 4; round++) {
    for (size_t i = 0; i < sizeof in; i++) in[i] = round == 0 ? 0xff : round == 1 ? 0 : rnd();
    for (size_t n = 0; n <= MAX; n++) {
      /* Any start alignment: the SIMD loop loads unaligned. */
      const unsigned char *src = in + (n % 7);
      size_t la = reference(src, n, a), lb = hc_base64_encode(src, n, b),
             lc = hc_base64_encode_scalar(src, n, c);
      if (la != HC_BASE64_ENCODED_LEN(n) || la != lb || la != lc || memcmp(a, b, la) ||
          memcmp(a, c, la)) {
        if (bad++ < 5) fprintf(stderr, "  mismatch at length %zu (round %d)\n", n, round);
        continue;
      }
      long m = hc_base64_decode(b, lb, back);
      if (m != (long)n || memcmp(back, src, n)) {
        if (bad++ < 5) fprintf(stderr, "  round trip failed at length %zu\n", n);
      }
    }
  }
  CHECK(bad == 0);
}

TEST(no_write_past_the_encoded_length) {
  unsigned char in[100];
  for (size_t i = 0; i < sizeof in; i++) in[i] = rnd();
  for (size_t n = 0; n <= sizeof in; n++) {
    char out[200];
    memset(out, '#', sizeof out);
    size_t k = hc_base64_encode(in, n, out);
    CHECK(k == HC_BASE64_ENCODED_LEN(n));
    CHECK(out[k] == '#');
  }
}

/* core/fsapi.c reads into the tail of a buffer and encodes it forwards into the same buffer. */
TEST(in_place_from_the_tail) {
  enum { MAX = 1030 };
  static unsigned char in[MAX];
  static char want[MAX * 2], buf[HC_BASE64_INPLACE_CAP(MAX)];
  int bad = 0;
  for (size_t i = 0; i < sizeof in; i++) in[i] = rnd();
  for (size_t len = 0; len <= MAX; len++) {
    /* a short read: got of len bytes, still placed where the full len would start */
    size_t gots[2] = {len, len / 2};
    for (int g = 0; g < 2; g++) {
      size_t cap = HC_BASE64_INPLACE_CAP(len), got = gots[g];
      char *p = buf + cap - len;
      memcpy(p, in, got);
      size_t k = hc_base64_encode((const unsigned char *)p, got, buf);
      size_t w = reference(in, got, want);
      if (k != w || memcmp(buf, want, w)) {
        if (bad++ < 5) fprintf(stderr, "  in-place mismatch: len %zu got %zu\n", len, got);
      }
    }
  }
  CHECK(bad == 0);
}

TEST(decoder_refusals) {
  static const char *bad[] = {
    "Zg=", "Zg", "Z", "Zg==Zg==", "Zm9v\n", " Zm9v", "Zm9-", "Zm9_", "Z===", "====", "Zm=v",
    "Zm9vYg=A", "\xc3\xa9\xc3\xa9", "Zm9\x00",
  };
  unsigned char out[32];
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    size_t n = strlen(bad[i]);
    if (i == sizeof bad / sizeof *bad - 1) n = 4;   /* the NUL inside */
    if (!CHECK(hc_base64_decode(bad[i], n, out) == -1)) fprintf(stderr, "  accepted: %s\n", bad[i]);
  }
  CHECK(hc_base64_decode("", 0, out) == 0);
}

int main(void) {
  /* every path the CPU has: scalar, SSSE3, AVX2 */
  for (int level = 0; level <= 2; level++) {
    if (hc_base64_testing_force(level) != 0) {
      printf("SKIP: level %d (%s) not on this CPU\n", level, level == 1 ? "SSSE3" : "AVX2");
      continue;
    }
    RUN(rfc4648_vectors);
    RUN(every_length_matches_the_reference);
    RUN(no_write_past_the_encoded_length);
    RUN(in_place_from_the_tail);
  }
  RUN(decoder_refusals);
  return tu_summary();
}
