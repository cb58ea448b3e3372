/* vtime_test.c - harnesses/vtime.c: while a thread has virtual time on, its clocks read the
 * virtual time and a futex wait nobody can end returns ETIMEDOUT at once, the clock moved to its
 * end (a real wait of an hour would hit ctest's timeout); a changed word is EAGAIN; a wake wakes
 * nobody; other threads, and the thread after fz_vtime_off(), see the real clock. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vtime.h"

#define SEC 1000000000LL

static int64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    assert_int_equal(clock_gettime(clk, &ts), 0);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* the kernel's clock, past any interposer */
static int64_t kernel_ns(void)
{
    struct timespec ts;
    assert_int_equal(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts), 0);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static void test_wait_times_out_in_virtual_time(void **s)
{
    (void)s;
    uint32_t word = 7;
    fz_vtime_on(1);
    assert_int_equal(now_ns(CLOCK_MONOTONIC), 1000 * SEC);
    struct timespec hour = {3600, 500000000};
    errno = 0;
    assert_int_equal(syscall(SYS_futex, &word, FUTEX_WAIT, 7, &hour, NULL, 0), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(now_ns(CLOCK_MONOTONIC), 4600 * SEC + SEC / 2);
    /* a changed word: at once, no time passes */
    assert_int_equal(syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 8, &hour, NULL, 0), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(now_ns(CLOCK_MONOTONIC), 4600 * SEC + SEC / 2);
    /* an absolute deadline (FUTEX_WAIT_BITSET): the clock moves to it */
    struct timespec at = {4700, 0};
    assert_int_equal(
        syscall(SYS_futex, &word, FUTEX_WAIT_BITSET, 7, &at, NULL, FUTEX_BITSET_MATCH_ANY), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(now_ns(CLOCK_MONOTONIC), 4700 * SEC);
    assert_int_equal(syscall(SYS_futex, &word, FUTEX_WAKE, 1, NULL, NULL, 0), 0);
    /* not restarted: goes on; restarted: from the start */
    fz_vtime_on(0);
    assert_int_equal(now_ns(CLOCK_MONOTONIC), 4700 * SEC);
    fz_vtime_on(1);
    assert_int_equal(now_ns(CLOCK_MONOTONIC), 1000 * SEC);
    fz_vtime_off();
}

static void *other_thread(void *arg)
{
    int64_t *t = arg;
    t[0] = kernel_ns();
    t[1] = now_ns(CLOCK_MONOTONIC);
    t[2] = kernel_ns();
    return NULL;
}

static void test_others_see_real_time(void **s)
{
    (void)s;
    fz_vtime_on(1);
    int64_t t[3];
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, other_thread, t), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(t[0] <= t[1] && t[1] <= t[2]);
    fz_vtime_off();
    int64_t a = kernel_ns(), b = now_ns(CLOCK_MONOTONIC), c = kernel_ns();
    assert_true(a <= b && b <= c);
    /* off: a real wait with a changed word still returns EAGAIN from the kernel */
    uint32_t word = 1;
    struct timespec ms = {0, 1000000};
    assert_int_equal(syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 2, &ms, NULL, 0), -1);
    assert_int_equal(errno, EAGAIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_times_out_in_virtual_time),
        cmocka_unit_test(test_others_see_real_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
