/* stats_test.c - the shared helpers of core/common/: splitmix64 gives the reference stream (seeds in
 * repro lines depend on it), medians and percentiles pick the documented element, and a latency
 * histogram's buckets bound what they hold. */
#include <stdint.h>
#include <string.h>

#include "splitmix.h"
#include "stats.h"
#include "unitutil.h"

/* The published splitmix64 outputs for seed 0. */
static void test_splitmix_reference(void **state)
{
    (void)state;
    uint64_t s = 0;
    assert_int_equal(splitmix64_next(&s), 0xe220a8397b1dcdafull);
    assert_int_equal(splitmix64_next(&s), 0x6e789e6aa1b965f4ull);
    assert_int_equal(splitmix64_next(&s), 0x06c45d188009454full);
    assert_int_equal(s, 3 * SPLITMIX64_GAMMA);
    /* next is the output for the state before it moves */
    for (uint64_t x = 1; x < 1000000; x = x * 3 + 7) {
        uint64_t st = x;
        assert_int_equal(splitmix64_next(&st), splitmix64_mix(x));
        assert_int_equal(st, x + SPLITMIX64_GAMMA);
    }
}

static void test_median(void **state)
{
    (void)state;
    double odd[] = {5, 1, 4, 2, 3};
    assert_true(stats_median(odd, 5) == 3);
    double even[] = {10, 40, 20, 30};
    assert_true(stats_median(even, 4) == 25);
    double one[] = {7};
    assert_true(stats_median(one, 1) == 7);
    assert_true(stats_median(NULL, 0) == 0);
}

static void test_percentiles(void **state)
{
    (void)state;
    int64_t v[100];
    for (int i = 0; i < 100; i++)
        v[i] = (int64_t)(100 - i) * 1000; /* 100 us .. 1 us, reversed */
    double p[2];
    stats_percentiles_ns_us(v, 100, p);
    assert_true(p[0] == 51.0); /* v[50] once sorted */
    assert_true(p[1] == 100.0);
    assert_int_equal(stats_pct_i64(v, 100, 0), 1000);
    assert_int_equal(stats_pct_i64(v, 100, 100), 100000); /* clamped to the last */
    assert_int_equal(stats_pct_i64(v, 0, 50), 0);
}

static void test_histogram(void **state)
{
    (void)state;
    for (uint64_t ns = 0; ns < 4; ns++) {
        assert_int_equal(stats_hist_bucket(ns), ns);
        assert_int_equal(stats_hist_upper((unsigned)ns), ns);
    }
    /* every value lies in (upper of the bucket before, upper of its bucket] */
    for (uint64_t ns = 4; ns < (1ull << 40); ns = ns * 5 / 4 + 1) {
        unsigned b = stats_hist_bucket(ns);
        assert_true(b > 0 && b < STATS_HIST_BUCKETS);
        assert_true(stats_hist_upper(b) >= ns);
        assert_true(stats_hist_upper(b - 1) < ns);
    }
    assert_int_equal(stats_hist_bucket(UINT64_MAX), STATS_HIST_BUCKETS - 1);

    uint64_t h[STATS_HIST_BUCKETS];
    memset(h, 0, sizeof(h));
    assert_int_equal(stats_hist_pct(h, 50), 0); /* empty */
    h[stats_hist_bucket(100)] = 90;             /* 90 samples of 100 ns, 10 of 10 us */
    h[stats_hist_bucket(10000)] = 10;
    assert_int_equal(stats_hist_pct(h, 50), stats_hist_upper(stats_hist_bucket(100)));
    assert_int_equal(stats_hist_pct(h, 89), stats_hist_upper(stats_hist_bucket(100)));
    assert_int_equal(stats_hist_pct(h, 95), stats_hist_upper(stats_hist_bucket(10000)));
    assert_int_equal(stats_hist_pct(h, 100), stats_hist_upper(stats_hist_bucket(10000)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_splitmix_reference),
        cmocka_unit_test(test_median),
        cmocka_unit_test(test_percentiles),
        cmocka_unit_test(test_histogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
