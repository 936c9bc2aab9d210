/*
** base64.h: standard padded base64 (RFC 4648 section 4), the encoding of every `data` field.
*/
#ifndef HC_BASE64_H
#define HC_BASE64_H

#include <stddef.h>

#define HC_BASE64_ENCODED_LEN(n) (((n) + 2) / 3 * 4)

/* A buffer that can hold n bytes at its end and their encoding from its start: reads go into the
** tail and are encoded forwards in place, with no second buffer and no copy. */
#define HC_BASE64_INPLACE_CAP(n) (HC_BASE64_ENCODED_LEN(n) + 16)

/* Encodes n bytes into out (HC_BASE64_ENCODED_LEN(n) bytes, not NUL-terminated); returns that
** length. Uses SSSE3 when the CPU has it; the scalar path gives the same bytes. in and out may
** overlap when in - out >= n / 3 + 16: every output block is written after the input it covers
** was loaded (as with input at buf + HC_BASE64_INPLACE_CAP(n) - n and out = buf). */
size_t hc_base64_encode(const unsigned char *in, size_t n, char *out);
/* Tests: use only the paths up to level (0 scalar, 1 SSSE3, 2 AVX2); -1 if the CPU lacks it. */
int hc_base64_testing_force(int level);
/* The scalar path alone (for tests and benchmarks). */
size_t hc_base64_encode_scalar(const unsigned char *in, size_t n, char *out);
/* Decodes n characters into out (at least n / 4 * 3 bytes); returns the byte count, or -1 when
** the text is not padded base64 of the standard alphabet (no whitespace, no missing padding). */
long hc_base64_decode(const char *in, size_t n, unsigned char *out);

#endif
