/* checker_test.c - the verdict of a case from a results area and wait statuses made by hand:
 * each check fires on exactly what it should, and values a plugin could have scribbled over are
 * bounded, never trusted (checker.c). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "checker.h"
#include "unitutil.h"

#define NW 4

struct fixture {
    struct st_config cfg;
    struct st_case cs;
    struct st_shared sh;
    struct st_slot slots[NW];
    _Atomic uint64_t bitmaps[NW * 4]; /* producers x 4 words: seqs 0..255 */
    struct st_outcome o;
    struct st_report rep;
};

/* A channel case of 2 producers and 2 consumers that ended well: each producer sent n
 * messages, all delivered once, every process exited 0 after marking its slot done. */
static struct fixture *channel(uint64_t n)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    st_config_defaults(&f->cfg);
    f->cfg.producers = 2;
    f->cfg.consumers = 2;
    f->cfg.messages = n;
    struct st_case *cs = &f->cs;
    cs->cfg = &f->cfg;
    cs->is_chan = 1;
    cs->verify = 1;
    cs->producers = 2;
    cs->consumers = 2;
    cs->nworkers = 4;
    cs->sh = &f->sh;
    cs->slots = f->slots;
    cs->bitmaps = f->bitmaps;
    cs->bitmap_words = 4;
    cs->seq_cap = 256;
    for (uint32_t i = 0; i < 4; i++) {
        cs->w[i].cs = cs;
        cs->w[i].index = i;
        cs->w[i].role = i < 2 ? ST_ROLE_PRODUCER : ST_ROLE_CONSUMER;
        cs->w[i].rindex = i < 2 ? i : i - 2;
        f->slots[i].done = 1;
        f->o.pids[i] = 1000 + (pid_t)i;
        f->o.reaped[i] = 1;
        f->o.status[i] = 0; /* exited 0 */
    }
    f->o.nproc = 4;
    f->o.start_ns = 1000000000;
    f->o.race_trusted = 1;
    for (uint32_t p = 0; p < 2; p++) {
        f->slots[p].ops = n;
        f->slots[p].quota_met = 1;
        f->slots[p].last_ns = f->o.start_ns + 500000000;
        for (uint64_t s = 0; s < n; s++)
            f->bitmaps[p * 4 + s / 64] |= 1ull << (s % 64);
    }
    f->slots[2].ops = f->slots[2].unique = n; /* each consumer got one producer's share */
    f->slots[3].ops = f->slots[3].unique = n;
    return f;
}

static int has(const struct st_report *r, int kind, const char *text)
{
    for (int i = 0; i < r->nv; i++)
        if (r->v[i].kind == kind && (text == NULL || strstr(r->v[i].detail, text))) return 1;
    return 0;
}

static void check(struct fixture *f)
{
    st_check_case(&f->cs, &f->o, &f->rep);
}

static void test_clean_run_passes(void **state)
{
    (void)state;
    struct fixture *f = channel(100);
    check(f);
    assert_int_equal(f->rep.nv, 0);
    assert_int_equal(f->rep.sent, 200);
    assert_int_equal(f->rep.received, 200);
    assert_int_equal(f->rep.nep, 4);
    free(f);
}

static void test_loss_names_first_missing(void **state)
{
    (void)state;
    struct fixture *f = channel(100);
    f->bitmaps[1 * 4 + 0] &= ~(1ull << 7); /* producer 1, seq 7 never arrived */
    f->slots[3].unique--;
    check(f);
    assert_true(has(&f->rep, ST_V_LOSS, "producer 1: 1 of 100"));
    assert_true(has(&f->rep, ST_V_LOSS, "first seq 7"));
    free(f);
}

static void test_whole_message_or_nothing(void **state)
{
    (void)state;
    struct fixture *f = channel(100);
    f->bitmaps[0 * 4 + 1] |= 1ull << (100 - 64); /* seq 100 arrived, send() never returned 0 */
    f->slots[2].unique++;
    check(f);
    assert_true(has(&f->rep, ST_V_ERROR, "seq 100 arrived although send() did not return 0"));
    free(f);
}

static void test_exit0_without_done_is_crash(void **state)
{
    (void)state;
    struct fixture *f = channel(100);
    f->slots[2].done = 0; /* the protocol called exit(0) inside recv() */
    f->slots[2].phase = ST_PH_RECV;
    f->slots[2].cur_seq = 42;
    check(f);
    assert_true(
        has(&f->rep, ST_V_CRASH, "consumer 0 (pid 1002) exited with status 0 inside recv() #42"));
    free(f);
}

static void test_exit3_is_fine_only_after_done(void **state)
{
    (void)state;
    struct fixture *f = channel(100);
    f->o.status[3] = ST_EXIT_SETUP << 8; /* the harness's own exit after a failed open() */
    check(f);
    assert_false(has(&f->rep, ST_V_CRASH, NULL));
    f->slots[3].done = 0;
    memset(&f->rep, 0, sizeof(f->rep));
    check(f);
    assert_true(has(&f->rep, ST_V_CRASH, "exited with status 3"));
    free(f);
}

static void test_race_only_when_trusted(void **state)
{
    (void)state;
    struct fixture *f = channel(100);
    f->o.status[0] = 66 << 8;
    check(f);
    assert_true(has(&f->rep, ST_V_RACE, NULL));
    memset(&f->rep, 0, sizeof(f->rep));
    f->o.race_trusted = 0;
    snprintf(f->o.race_why, sizeof(f->o.race_why), "x.so is not a TSan build");
    check(f);
    assert_false(has(&f->rep, ST_V_RACE, NULL));
    assert_int_equal(f->rep.nv, 0);
    assert_non_null(strstr(f->rep.notes, "x.so is not a TSan build"));
    free(f);
}

static void test_signals(void **state)
{
    (void)state;
    struct fixture *f = channel(100);
    f->o.status[1] = SIGSEGV; /* killed by a signal */
    f->slots[1].dead = 1;
    check(f);
    assert_true(has(&f->rep, ST_V_CRASH, "producer 1 (pid 1001) killed by signal 11"));
    /* a SIGKILL of the watchdog is not a crash */
    memset(&f->rep, 0, sizeof(f->rep));
    f->o.status[1] = SIGKILL;
    f->o.watchdog_killed = 1;
    check(f);
    assert_false(has(&f->rep, ST_V_CRASH, NULL));
    free(f);
}

static void test_starvation(void **state)
{
    (void)state;
    struct fixture *f = channel(100);
    f->slots[0].quota_met = 0; /* producer 0 gave up at the end of a 1 s case, timing out */
    f->slots[0].end_ns = f->o.start_ns + 1000000000;
    f->slots[0].max_gap_ns = 800000000;
    f->slots[0].gap_at = 100;
    f->slots[0].timeouts = 4;
    check(f);
    assert_true(has(&f->rep, ST_V_STARVATION, "producer 0 waited 0.80 s (of a 1.00 s case)"));
    /* msgs/s over the whole case, not up to the last completed operation */
    assert_true(f->rep.seconds > 0.99 && f->rep.seconds < 1.01);
    /* a wait shorter than a fifth of the case is not starvation */
    memset(&f->rep, 0, sizeof(f->rep));
    f->slots[0].max_gap_ns = 150000000;
    check(f);
    assert_false(has(&f->rep, ST_V_STARVATION, NULL));
    /* nor is waiting on a consumer that crashed */
    memset(&f->rep, 0, sizeof(f->rep));
    f->slots[0].max_gap_ns = 800000000;
    f->slots[2].dead = f->slots[3].dead = 1;
    f->o.crash_ns = f->o.start_ns + 1;
    check(f);
    assert_false(has(&f->rep, ST_V_STARVATION, NULL));
    free(f);
}

/* a lock contender's long wait is a violation only for a lock that claims to be fair */
static void test_lock_starvation_needs_fair(void **state)
{
    (void)state;
    struct fixture *f = channel(100);
    f->cs.is_chan = 0;
    f->cs.producers = f->cs.consumers = 0;
    for (uint32_t i = 0; i < 4; i++) {
        f->cs.w[i].role = ST_ROLE_LOCKER;
        f->cs.w[i].rindex = i;
        f->slots[i].ops = 10;
        f->slots[i].quota_met = 1;
        f->slots[i].unique = 0;
    }
    f->sh.counter = 40;
    f->slots[1].max_gap_ns = 900000000;
    f->slots[1].gap_at = 3;
    f->slots[0].last_ns = f->o.start_ns + 1000000000;
    check(f);
    assert_false(has(&f->rep, ST_V_STARVATION, NULL));
    assert_non_null(strstr(f->rep.notes, "worker 1 waited 0.90 s for lock() #3"));
    memset(&f->rep, 0, sizeof(f->rep));
    f->cs.proto_flags = IPCP_LOCK_FAIR;
    check(f);
    assert_true(has(&f->rep, ST_V_STARVATION, "worker 1 waited 0.90 s"));
    free(f);
}

/* a consumer's death excuses the producers: a channel need not reroute to the survivors */
static void test_no_starvation_after_consumer_killed(void **state)
{
    (void)state;
    struct fixture *f = channel(100);
    f->slots[0].max_gap_ns = 800000000;
    f->slots[0].quota_met = 0;
    f->slots[0].end_ns = f->o.start_ns + 1000000000;
    f->cs.kill_victim = 3;
    f->o.killed_by_fault = 3;
    f->o.status[2] = SIGKILL;
    f->slots[2].dead = 1;
    check(f);
    assert_false(has(&f->rep, ST_V_STARVATION, NULL));
    free(f);
}

static void test_consistency(void **state)
{
    (void)state;
    struct fixture *f = channel(100);
    f->slots[2].unique += 5; /* counted first deliveries that no bitmap records */
    check(f);
    assert_true(has(&f->rep, ST_V_CRASH, "results area is inconsistent"));
    free(f);
}

/* A plugin may have written anything into the results area: nothing is followed or indexed. */
static void test_scribbled_values_are_bounded(void **state)
{
    (void)state;
    struct fixture *f = channel(100);
    f->slots[2].vcount[ST_V_TORN] = 1;
    f->slots[2].vfirst[ST_V_TORN].b = 0xdeadbeefcafeull; /* was a pointer once: an index now */
    f->slots[2].crash_sig = 12345;                       /* not a signal */
    f->slots[0].ops = UINT64_MAX;                        /* past the bitmap */
    f->sh.killed = 999;                                  /* no such endpoint */
    f->slots[3].phase = 77;
    check(f);
    assert_true(has(&f->rep, ST_V_TORN, ": corrupt"));
    assert_false(has(&f->rep, ST_V_CRASH, "signal 12345"));
    free(f);
}

static void test_errors(void **state)
{
    (void)state;
    struct fixture *f = channel(100);
    f->slots[0].err = -12345;
    f->slots[0].err_op = ST_PH_SEND;
    f->slots[0].err_seq = 9;
    check(f);
    assert_true(has(&f->rep, ST_V_ERROR, "send() #9 returned -12345 (not an errno value"));
    memset(&f->rep, 0, sizeof(f->rep));
    f->slots[0].err = -EPIPE;
    check(f);
    assert_true(has(&f->rep, ST_V_ERROR, "-EPIPE (Broken pipe)"));
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_run_passes),
        cmocka_unit_test(test_loss_names_first_missing),
        cmocka_unit_test(test_whole_message_or_nothing),
        cmocka_unit_test(test_exit0_without_done_is_crash),
        cmocka_unit_test(test_exit3_is_fine_only_after_done),
        cmocka_unit_test(test_race_only_when_trusted),
        cmocka_unit_test(test_signals),
        cmocka_unit_test(test_starvation),
        cmocka_unit_test(test_lock_starvation_needs_fair),
        cmocka_unit_test(test_no_starvation_after_consumer_killed),
        cmocka_unit_test(test_consistency),
        cmocka_unit_test(test_scribbled_values_are_bounded),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
