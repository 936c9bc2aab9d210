/*
** stats.h: per-tenant counters for `hostcall stats`: calls, errors, denials and a latency
** histogram (quarter-octave buckets: p50/p99 within ~19 %), kept by the audit path.
*/
#ifndef HC_STATS_H
#define HC_STATS_H

#include <stdint.h>

#define HC_STATS_BUCKETS 160   /* 4 per power of two of microseconds: up to ~2^40 us */

typedef struct hc_counters {
  int refs;                /* tenants sharing them: every load of one tenant name */
  uint64_t calls, errors, denied, limited;
  uint32_t hist[HC_STATS_BUCKETS];
} hc_counters;

void hc_stats_record(hc_counters *st, int code, uint64_t us);
/* The latency (us) at quantile q (0..1): the upper edge of the bucket holding it; 0 if no call. */
uint64_t hc_stats_quantile(const hc_counters *st, double q);

#endif
