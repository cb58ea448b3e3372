/* stats.h - the statistics every part of ipcproof reports with: medians of repetitions,
 * percentiles of samples, latency histograms. Plain functions over caller memory (no I/O, no
 * allocation); shared by the stress command, the bench and the tests (not part of libipcproof). */
#ifndef IPCP_STATS_H
#define IPCP_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Median of n values (n >= 1), sorting v in place: the middle value, or the mean of the two
 * middle values when n is even. 0 when n is 0. */
double stats_median(double *v, size_t n);

/* Sorts n samples in ascending order. */
void stats_sort_i64(int64_t *v, size_t n);

/* The pct-th percentile (0..100) of n sorted samples: v[n * pct / 100], clamped to the last.
 * 0 when n is 0. */
int64_t stats_pct_i64(const int64_t *sorted, size_t n, double pct);

/* p50 and p99 of n samples in nanoseconds, in microseconds (v[0], v[1]); sorts lat. */
void stats_percentiles_ns_us(int64_t *lat, size_t n, double v[2]);

/* A latency histogram in nanoseconds: log2 buckets with 4 sub-buckets each (exact below 4 ns),
 * STATS_HIST_BUCKETS counters that a worker adds to and a report sums. */
#define STATS_HIST_BUCKETS 256u

static inline unsigned stats_hist_bucket(uint64_t ns)
{
    if (ns < 4) return (unsigned)ns;
    unsigned msb = 63u - (unsigned)__builtin_clzll(ns);
    unsigned sub = (unsigned)(ns >> (msb - 2)) & 3u;
    unsigned b = msb * 4u + sub;
    return b < STATS_HIST_BUCKETS ? b : STATS_HIST_BUCKETS - 1;
}

/* Upper bound in ns of bucket b. */
uint64_t stats_hist_upper(unsigned b);

/* Percentile (0..100) of a histogram of STATS_HIST_BUCKETS counters, in ns; 0 when empty. */
uint64_t stats_hist_pct(const uint64_t *h, double pct);

#endif
