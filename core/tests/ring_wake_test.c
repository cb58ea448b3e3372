/* ring_wake_test.c - how the ring's two sides wake each other.
 *
 * Verifies: a side whose process can use membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) announces it
 * in the state word when it attaches, a side that cannot (or is told not to) does not, and the
 * fence-less publish is chosen only when both announced; in each combination (both fence-less,
 * both fenced, one of each) a ping-pong whose every wait ends in FUTEX_WAIT is woken promptly
 * (a lost wake-up would wait for the 20 ms slice) and delivers every message. The interleavings
 * themselves are the scheduler fuzz target's (fuzz_ring_sched, with the barrier modelled). */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ring_impl.h"
#include "testutil.h"

/* What this kernel offers: the ring's own choice must follow it. */
static int kernel_has_membarrier(void)
{
    long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    int want = MEMBARRIER_CMD_GLOBAL_EXPEDITED | MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED;
    return q >= 0 && (q & want) == want;
}

/* A ring in plain memory; the producer attaches under membarrier mode pm, the consumer under cm
 * (ring_impl.h: 0 asks the kernel, -1 never). */
struct fpair {
    void *mem;
    size_t size;
    struct ipcp_ring p, c;
};

static void fpair_open(struct fpair *f, int pm, int cm)
{
    struct ipcp_ring_cfg cfg = {.capacity = 1024, .spin = 1};
    f->size = ipcp_ring_mem_size(cfg.capacity);
    f->mem = aligned_alloc(64, f->size);
    assert_non_null(f->mem);
    assert_int_equal(ipcp_ring_format(f->mem, f->size, &cfg), 0);
    ipcp__ring_membarrier_mode = pm;
    assert_int_equal(ipcp_ring_attach_mem(&f->p, f->mem, f->size, IPCP_RING_PRODUCER, &cfg), 0);
    ipcp__ring_membarrier_mode = cm;
    assert_int_equal(ipcp_ring_attach_mem(&f->c, f->mem, f->size, IPCP_RING_CONSUMER, &cfg), 0);
    ipcp__ring_membarrier_mode = 0;
}

static void fpair_close(struct fpair *f)
{
    ipcp_ring_close(&f->p);
    ipcp_ring_close(&f->c);
    free(f->mem);
}

static uint32_t asym_bits(const struct fpair *f)
{
    const struct ring_shared *s = f->mem;
    return atomic_load(&s->state) & ST_ASYM_BOTH;
}

static void test_sides_announce_membarrier(void **s)
{
    (void)s;
    uint32_t k = kernel_has_membarrier() ? ST_ASYM_BOTH : 0;
    static const struct {
        int pm, cm;
        uint32_t want;
    } cases[] = {{0, 0, ST_ASYM_BOTH}, {-1, -1, 0}, {-1, 0, ST_CONS_ASYM}, {0, -1, ST_PROD_ASYM}};
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(cases); i++) {
        struct fpair f;
        fpair_open(&f, cases[i].pm, cases[i].cm);
        if (asym_bits(&f) != (cases[i].want & k))
            fail_msg("case %zu: state bits 0x%x, want 0x%x", i, asym_bits(&f), cases[i].want & k);
        fpair_close(&f);
    }
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct echo {
    struct ipcp_ring *in, *out;
    int n, rc;
};

static void *echo_main(void *arg)
{
    struct echo *e = arg;
    uint8_t m[64];
    for (int i = 0; i < e->n && e->rc == 0; i++) {
        ssize_t n = ipcp_ring_recv(e->in, m, sizeof(m), 10000);
        if (n != 64) e->rc = n < 0 ? (int)n : -EBADMSG;
        if (e->rc == 0) e->rc = ipcp_ring_send(e->out, m, 64, 10000);
    }
    return NULL;
}

/* spin = 1: every wait sleeps on the futex, so every message needs its wake-up. While they run,
 * sleepers issue membarrier unless both sides were told never to (the fenced protocol alone). */
static void pingpong(int pm, int cm)
{
    struct fpair ab, ba;
    fpair_open(&ab, pm, cm);
    fpair_open(&ba, cm, pm);
    ipcp__ring_membarrier_mode = pm == cm ? pm : 0;
    enum { N = 2000 };
    struct echo e = {.in = &ab.c, .out = &ba.p, .n = N};
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, echo_main, &e), 0);
    static int64_t rtt[N];
    uint8_t m[64];
    for (int i = 0; i < N; i++) {
        memset(m, (uint8_t)i, sizeof(m));
        int64_t t0 = now_ns();
        assert_int_equal(ipcp_ring_send(&ab.p, m, 64, 10000), 0);
        assert_int_equal(ipcp_ring_recv(&ba.c, m, sizeof(m), 10000), 64);
        rtt[i] = now_ns() - t0;
        assert_int_equal(m[0], (uint8_t)i);
        assert_int_equal(m[63], (uint8_t)i);
    }
    pthread_join(th, NULL);
    getrusage(RUSAGE_SELF, &ru1);
    /* the sleeps happened (each one a voluntary context switch): the wake path was exercised */
    long sleeps = ru1.ru_nvcsw - ru0.ru_nvcsw;
    if (sleeps < N / 10) fail_msg("modes %d/%d: only %ld futex sleeps", pm, cm, sleeps);
    ipcp__ring_membarrier_mode = 0;
    assert_int_equal(e.rc, 0);
    stats_sort_i64(rtt, N);
    int64_t median = stats_pct_i64(rtt, N, 50);
    if (median > 5000000)
        fail_msg("modes %d/%d: median round trip %lld ns: wake-ups are late", pm, cm,
                 (long long)median);
    fpair_close(&ab);
    fpair_close(&ba);
}

static void test_wakeups_fenceless(void **s)
{
    (void)s;
    pingpong(0, 0);
}

static void test_wakeups_fenced(void **s)
{
    (void)s;
    pingpong(-1, -1);
}

static void test_wakeups_one_side_without_membarrier(void **s)
{
    (void)s;
    pingpong(0, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sides_announce_membarrier),
        cmocka_unit_test(test_wakeups_fenceless),
        cmocka_unit_test(test_wakeups_fenced),
        cmocka_unit_test(test_wakeups_one_side_without_membarrier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
