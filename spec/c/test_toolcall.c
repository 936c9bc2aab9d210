/*
** test_toolcall.c: tool.call through hc_call, many times over, so that AddressSanitizer watches
** the loop while a tool's run ends: its pidfd, stdout and stderr watches often become ready in the
** same turn, and the run (which holds all of them) is freed from the first one's callback. An
** event of that turn must never reach a freed watch (core/loop.c); before that was fixed, this
** crashed bench_tool and is a heap-use-after-free under ASan.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostcall.h"
#include "testutil.h"

static const char POLICY[] =
  "return { methods = { 'tool.*' }, limits = { time_ms = 3000 }, tools = {\n"
  "  echo = { argv = { '/bin/cat' } },\n"
  "  both = { argv = { '/bin/sh', '-c', 'cat; echo noise >&2' } },\n"
  "  fail = { argv = { '/bin/sh', '-c', 'echo oops >&2; exit 3' } },\n"
  "  junk = { argv = { '/bin/sh', '-c', 'echo not-json' } },\n"
  "  slow = { argv = { '/bin/sh', '-c', 'sleep 5' }, timeout_ms = 50 } } }";

static void call(hc_runtime *rt, const char *name, const char *want) {
  char req[256];
  snprintf(req, sizeof req,
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tool.call\",\"params\":{\"name\":\"%s\",\"args\":{\"k\":[1,2,3]}}}",
           name);
  char *resp = NULL;
  size_t n;
  int r = hc_call(rt, req, strlen(req), &resp, &n);
  if (!CHECK(r == 0 && resp && strstr(resp, want))) fprintf(stderr, "  %s: %s\n", name, resp ? resp : "(none)");
  hc_free(resp);
}

TEST(tool_runs_end_cleanly) {
  hc_config cfg;
  hc_config_init(&cfg);
  char *err = NULL;
  hc_runtime *rt = hc_runtime_new_string(POLICY, strlen(POLICY), "t.lua", &cfg, &err);
  if (!CHECK(rt != NULL)) { fprintf(stderr, "  %s\n", err ? err : "?"); return; }
  for (int i = 0; i < 60; i++) {
    call(rt, "echo", "\"result\":{\"k\":[1,2,3]}");
    call(rt, "both", "\"result\":{\"k\":[1,2,3]}");
    call(rt, "fail", "\"EIO\"");
    call(rt, "junk", "\"EBADMSG\"");
  }
  call(rt, "slow", "\"time\"");
  hc_runtime_free(rt);
}

int main(void) {
  RUN(tool_runs_end_cleanly);
  return tu_summary();
}
