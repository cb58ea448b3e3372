/* stats.c - medians and percentiles; see stats.h. */
#include "stats.h"

#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

double stats_median(double *v, size_t n)
{
    if (n == 0) return 0;
    qsort(v, n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void stats_sort_i64(int64_t *v, size_t n)
{
    qsort(v, n, sizeof(int64_t), cmp_i64);
}

int64_t stats_pct_i64(const int64_t *sorted, size_t n, double pct)
{
    if (n == 0) return 0;
    size_t i = (size_t)((double)n * pct / 100.0);
    return sorted[i < n ? i : n - 1];
}

void stats_percentiles_ns_us(int64_t *lat, size_t n, double v[2])
{
    stats_sort_i64(lat, n);
    v[0] = (double)stats_pct_i64(lat, n, 50) / 1000.0;
    v[1] = (double)stats_pct_i64(lat, n, 99) / 1000.0;
}

uint64_t stats_hist_upper(unsigned b)
{
    if (b < 4) return b;
    unsigned msb = b / 4u, sub = b % 4u;
    if (msb >= 63) return UINT64_MAX;
    uint64_t base = 1ull << msb;
    return base + (base >> 2) * (sub + 1) - 1;
}

uint64_t stats_hist_pct(const uint64_t *h, double pct)
{
    uint64_t total = 0;
    for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++)
        total += h[b];
    if (total == 0) return 0;
    uint64_t want = (uint64_t)((double)total * pct / 100.0);
    if (want >= total) want = total - 1;
    uint64_t acc = 0;
    for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++) {
        acc += h[b];
        if (acc > want) return stats_hist_upper(b);
    }
    return stats_hist_upper(STATS_HIST_BUCKETS - 1);
}
