/*
** test_stats.c: the latency histogram's quantiles, and reloads through the C API (so ASan sees a
** replaced tenant retired and freed with its last session): a changed policy takes effect for
** hc_call, a broken file keeps the old policy, the counters survive, hc_stats reports them.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostcall.h"
#include "stats.h"
#include "testutil.h"

TEST(quantiles_within_a_quarter_octave) {
  hc_counters st;
  memset(&st, 0, sizeof st);
  CHECK(hc_stats_quantile(&st, 0.5) == 0);
  for (uint64_t us = 1; us <= 10000; us++) hc_stats_record(&st, 0, us);
  uint64_t p50 = hc_stats_quantile(&st, 0.50), p99 = hc_stats_quantile(&st, 0.99);
  if (!CHECK(p50 >= 5000 && p50 <= 5000 * 1.2)) fprintf(stderr, "  p50 %llu\n", (unsigned long long)p50);
  if (!CHECK(p99 >= 9900 && p99 <= 9900 * 1.2)) fprintf(stderr, "  p99 %llu\n", (unsigned long long)p99);
  CHECK(st.calls == 10000 && st.errors == 0);
  hc_stats_record(&st, -32001, 3);
  hc_stats_record(&st, -32002, 3);
  hc_stats_record(&st, -32000, 3);
  CHECK(st.errors == 3 && st.denied == 1 && st.limited == 1);
  hc_stats_record(&st, 0, UINT64_MAX - 1);   /* huge values land in the last bucket */
  CHECK(hc_stats_quantile(&st, 1.0) > 0);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f) { fputs(text, f); fclose(f); }
}

static char *call(hc_runtime *rt, const char *req) {
  char *resp = NULL;
  size_t n;
  if (hc_call(rt, req, strlen(req), &resp, &n) != 0) return NULL;
  return resp;
}

TEST(reload_through_the_api) {
  char dir[] = "/tmp/hc-stats-XXXXXX";
  if (!CHECK(mkdtemp(dir) != NULL)) return;
  char path[256];
  snprintf(path, sizeof path, "%s/acme.lua", dir);
  write_file(path, "return { methods = { 'sys.*' } }");
  hc_config cfg;
  hc_config_init(&cfg);
  char *err = NULL;
  hc_runtime *rt = hc_runtime_new_file(path, &cfg, &err);
  if (!CHECK(rt != NULL)) { fprintf(stderr, "  %s\n", err); hc_free(err); return; }
  const char *ping = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sys.ping\"}";
  char *r = call(rt, ping);
  CHECK(r && strstr(r, "\"result\":{}"));
  hc_free(r);
  write_file(path, "return { methods = { 'fs.*' } }");
  hc_reload_now(rt);
  r = call(rt, ping);
  CHECK(r && strstr(r, "-32001"));
  hc_free(r);
  write_file(path, "return { methods = {");
  hc_reload_now(rt);   /* fails: the last good policy stays */
  r = call(rt, ping);
  CHECK(r && strstr(r, "-32001"));
  hc_free(r);
  char *st = hc_stats(rt);
  CHECK(st && strstr(st, "\"tenant\":\"acme\",\"calls\":3,\"errors\":2,\"denied\":2"));
  if (st && !strstr(st, "\"calls\":3")) fprintf(stderr, "  %s\n", st);
  hc_free(st);
  hc_runtime_free(rt);
  unlink(path);
  rmdir(dir);
}

int main(void) {
  RUN(quantiles_within_a_quarter_octave);
  RUN(reload_through_the_api);
  return tu_summary();
}
