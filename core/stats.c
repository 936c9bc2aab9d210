/*
** stats.c: counters and a log-scale latency histogram. Recording is a few integer operations
** per call (no floating point, no allocation), so it is always on.
*/
#include "stats.h"

#include "rpc.h"

/* floor(4 * log2(us + 1)), from the top bit and the two bits below it. */
static int bucket_of(uint64_t us) {
  uint64_t v = us + 1;
  int top = 63 - __builtin_clzll(v);
  int frac = top >= 2 ? (int)((v >> (top - 2)) & 3) : (int)((v << (2 - top)) & 3);
  int b = top * 4 + frac;
  return b < HC_STATS_BUCKETS ? b : HC_STATS_BUCKETS - 1;
}

/* The largest value that falls in bucket b. */
static uint64_t bucket_top(int b) {
  int top = b / 4, frac = b % 4;
  if (top >= 62) return UINT64_MAX;
  uint64_t base = (uint64_t)1 << top;
  uint64_t step = top >= 2 ? base >> 2 : 1;
  uint64_t hi = base + (uint64_t)(frac + 1) * step - 1;
  return hi ? hi - 1 : 0;   /* back from us + 1 */
}

void hc_stats_record(hc_counters *st, int code, uint64_t us) {
  st->calls++;
  if (code) st->errors++;
  if (code == HC_E_REFUSED) st->denied++;
  if (code == HC_E_LIMIT) st->limited++;
  uint32_t *c = &st->hist[bucket_of(us)];
  if (*c != UINT32_MAX) (*c)++;
}

uint64_t hc_stats_quantile(const hc_counters *st, double q) {
  uint64_t total = 0;
  for (int i = 0; i < HC_STATS_BUCKETS; i++) total += st->hist[i];
  if (!total) return 0;
  uint64_t rank = (uint64_t)((double)total * q);
  if (rank >= total) rank = total - 1;
  uint64_t seen = 0;
  for (int i = 0; i < HC_STATS_BUCKETS; i++) {
    seen += st->hist[i];
    if (seen > rank) return bucket_top(i);
  }
  return bucket_top(HC_STATS_BUCKETS - 1);
}
