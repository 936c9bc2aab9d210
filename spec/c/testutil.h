/*
** testutil.h: a minimal single-header test harness for the C specs.
**
**   TEST(name) { CHECK(x == 1); CHECK_STREQ(s, "abc"); }
**   int main(void) { RUN(name); return tu_summary(); }
**
** CHECK and CHECK_STREQ count every check, print file:line for each failure and evaluate to
** 1/0 so a test can add context: if (!CHECK(ok)) fprintf(stderr, "  input: %s\n", in);
** tu_summary prints "N passed, N failed" (checks) and returns the exit status.
*/
#ifndef HC_TESTUTIL_H
#define HC_TESTUTIL_H

#include <stdio.h>
#include <string.h>

static int tu_passed, tu_failed;
static const char *tu_current = "?";

static inline int tu_check (int ok, const char *expr, const char *file, int line) {
  if (ok) tu_passed++;
  else {
    tu_failed++;
    fprintf(stderr, "%s:%d: [%s] CHECK failed: %s\n", file, line, tu_current, expr);
  }
  return ok;
}

static inline int tu_check_streq (const char *a, const char *b, const char *ea, const char *eb,
                                  const char *file, int line) {
  int ok = (a && b) ? strcmp(a, b) == 0 : a == b;
  if (ok) tu_passed++;
  else {
    tu_failed++;
    fprintf(stderr, "%s:%d: [%s] CHECK_STREQ failed: %s == %s\n  got:      \"%s\"\n"
            "  expected: \"%s\"\n", file, line, tu_current, ea, eb,
            a ? a : "(null)", b ? b : "(null)");
  }
  return ok;
}

#define CHECK(cond)        tu_check(!!(cond), #cond, __FILE__, __LINE__)
#define CHECK_STREQ(a, b)  tu_check_streq((a), (b), #a, #b, __FILE__, __LINE__)

#define TEST(name)  static void name(void)
#define RUN(name)   (tu_current = #name, name())

static inline int tu_summary (void) {
  printf("%d passed, %d failed\n", tu_passed, tu_failed);
  return tu_failed ? 1 : 0;
}

#endif
