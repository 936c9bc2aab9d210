/*
** base64.c: standard padded base64. Every byte a guest reads crosses this encoder, so it is the
** hot loop of fs.read and io.read: SSSE3 where the CPU has it (12 bytes in, 16 characters out
** per step, the shuffle-and-multiply method), a two-characters-per-lookup scalar loop otherwise
** and for the tail. Decoding is scalar and strict.
*/
#include "base64.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HC_B64_SSSE3 1
#include <immintrin.h>
#endif

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* {===== encoding ===== */

/* Two output characters per 12 input bits: one table lookup instead of two. */
static char pairs[4096][2];
static signed char rev[256];
static int have_ssse3, have_avx2;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_init(void) {
  for (int i = 0; i < 4096; i++) {
    pairs[i][0] = B64[i >> 6];
    pairs[i][1] = B64[i & 63];
  }
  memset(rev, -1, sizeof rev);
  for (int i = 0; i < 64; i++) rev[(unsigned char)B64[i]] = (signed char)i;
#ifdef HC_B64_SSSE3
  __builtin_cpu_init();
  have_ssse3 = __builtin_cpu_supports("ssse3");
  have_avx2 = __builtin_cpu_supports("avx2");
#endif
}

static size_t encode_tail(const unsigned char *s, size_t n, char *o) {
  size_t k = 0, i = 0;
  for (; i + 2 < n; i += 3) {
    unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
    memcpy(o + k, pairs[v >> 12], 2);
    memcpy(o + k + 2, pairs[v & 4095], 2);
    k += 4;
  }
  if (i < n) {
    unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0);
    o[k++] = B64[v >> 18];
    o[k++] = B64[(v >> 12) & 63];
    o[k++] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
    o[k++] = '=';
  }
  return k;
}

#ifdef HC_B64_SSSE3
/* Each 32-bit lane takes 3 input bytes (s1 s0 s2 s1 after the shuffle); two multiplies move the
** four 6-bit fields to the lane's four bytes; a 16-entry table maps each field's range to the
** offset that turns it into its character. Consumes 12 bytes per step, reads 16. */
__attribute__((target("ssse3")))
static size_t encode_ssse3(const unsigned char *s, size_t n, char *o, size_t *consumed) {
  const __m128i shuf = _mm_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1);
  const __m128i offsets = _mm_setr_epi8('a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                                        '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                                        '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0);
  const __m128i mask_ac = _mm_set1_epi32(0x0fc0fc00), mul_ac = _mm_set1_epi32(0x04000040);
  const __m128i mask_bd = _mm_set1_epi32(0x003f03f0), mul_bd = _mm_set1_epi32(0x01000010);
  const __m128i k51 = _mm_set1_epi8(51), k26 = _mm_set1_epi8(26), k13 = _mm_set1_epi8(13);
  size_t i = 0, k = 0;
  for (; i + 16 <= n; i += 12, k += 16) {
    __m128i in = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(s + i)), shuf);
    __m128i ac = _mm_mulhi_epu16(_mm_and_si128(in, mask_ac), mul_ac);
    __m128i bd = _mm_mullo_epi16(_mm_and_si128(in, mask_bd), mul_bd);
    __m128i idx = _mm_or_si128(ac, bd);
    __m128i sel = _mm_subs_epu8(idx, k51);   /* 52..63 -> 1..12, the rest -> 0 */
    sel = _mm_or_si128(sel, _mm_and_si128(_mm_cmpgt_epi8(k26, idx), k13));   /* 0..25 -> 13 */
    __m128i out = _mm_add_epi8(idx, _mm_shuffle_epi8(offsets, sel));
    _mm_storeu_si128((__m128i *)(void *)(o + k), out);
  }
  *consumed = i;
  return k;
}

/* The same in two 128-bit lanes: 24 bytes in, 32 characters out per step. The load starts 4
** bytes early so each lane's 12 input bytes sit where the in-lane shuffle can reach them. */
__attribute__((target("avx2")))
static size_t encode_avx2(const unsigned char *s, size_t n, char *o, size_t *consumed) {
  const __m256i shuf = _mm256_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1,
                                       14, 15, 13, 14, 11, 12, 10, 11, 8, 9, 7, 8, 5, 6, 4, 5);
  const __m256i offsets = _mm256_setr_epi8('a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                                           '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                                           '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0,
                                           'a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                                           '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                                           '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0);
  const __m256i mask_ac = _mm256_set1_epi32(0x0fc0fc00), mul_ac = _mm256_set1_epi32(0x04000040);
  const __m256i mask_bd = _mm256_set1_epi32(0x003f03f0), mul_bd = _mm256_set1_epi32(0x01000010);
  const __m256i k51 = _mm256_set1_epi8(51), k26 = _mm256_set1_epi8(26), k13 = _mm256_set1_epi8(13);
  size_t i = 0, k = 0;
  if (n < 28) { *consumed = 0; return 0; }
  /* the first 12 bytes cannot be loaded 4 early: one SSSE3-sized step by hand */
  {
    size_t c0;
    k = encode_ssse3(s, 16, o, &c0);   /* exactly one step: 12 bytes in, 16 out */
    i = c0;
  }
  for (; i + 28 <= n; i += 24, k += 32) {
    __m256i in = _mm256_loadu_si256((const __m256i *)(const void *)(s + i - 4));
    in = _mm256_shuffle_epi8(in, shuf);
    __m256i ac = _mm256_mulhi_epu16(_mm256_and_si256(in, mask_ac), mul_ac);
    __m256i bd = _mm256_mullo_epi16(_mm256_and_si256(in, mask_bd), mul_bd);
    __m256i idx = _mm256_or_si256(ac, bd);
    __m256i sel = _mm256_subs_epu8(idx, k51);
    sel = _mm256_or_si256(sel, _mm256_and_si256(_mm256_cmpgt_epi8(k26, idx), k13));
    __m256i out = _mm256_add_epi8(idx, _mm256_shuffle_epi8(offsets, sel));
    _mm256_storeu_si256((__m256i *)(void *)(o + k), out);
  }
  *consumed = i;
  return k;
}

#endif

int hc_base64_testing_force(int level) {
  pthread_once(&tables_once, tables_init);
  static int saved_ssse3 = -1, saved_avx2 = -1;
  if (saved_ssse3 < 0) { saved_ssse3 = have_ssse3; saved_avx2 = have_avx2; }
  if ((level >= 1 && !saved_ssse3) || (level >= 2 && !saved_avx2)) return -1;
  have_ssse3 = level >= 1;
  have_avx2 = level >= 2;
  return 0;
}

size_t hc_base64_encode_scalar(const unsigned char *in, size_t n, char *out) {
  pthread_once(&tables_once, tables_init);
  return encode_tail(in, n, out);
}

size_t hc_base64_encode(const unsigned char *in, size_t n, char *out) {
  pthread_once(&tables_once, tables_init);
  size_t k = 0, used = 0;
#ifdef HC_B64_SSSE3
  if (have_avx2 && n >= 28) k = encode_avx2(in, n, out, &used);
  else if (have_ssse3 && n >= 16) k = encode_ssse3(in, n, out, &used);
#endif
  return k + encode_tail(in + used, n - used, out + k);
}

/* }===== */

/* {===== decoding ===== */

long hc_base64_decode(const char *in, size_t n, unsigned char *out) {
  pthread_once(&tables_once, tables_init);
  const unsigned char *s = (const unsigned char *)in;
  if (n % 4) return -1;
  size_t k = 0;
  for (size_t i = 0; i < n; i += 4) {
    int pad = (s[i + 3] == '=') + (s[i + 2] == '=' && s[i + 3] == '=');
    if (pad && i + 4 != n) return -1;   /* padding only at the very end */
    int a = rev[s[i]], b = rev[s[i + 1]], c = pad >= 2 ? 0 : rev[s[i + 2]],
        d = pad >= 1 ? 0 : rev[s[i + 3]];
    if ((a | b | c | d) < 0) return -1;
    unsigned v = (unsigned)a << 18 | (unsigned)b << 12 | (unsigned)c << 6 | (unsigned)d;
    out[k++] = (unsigned char)(v >> 16);
    if (pad < 2) out[k++] = (unsigned char)(v >> 8);
    if (pad < 1) out[k++] = (unsigned char)v;
  }
  return (long)k;
}

/* }===== */
