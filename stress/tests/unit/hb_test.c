/* hb_test.c - the happens-before race detector of --mode sched (sched/hb.c), driven as the
 * scheduler drives it: one thread index at a time, accesses of real memory, and the
 * synchronisation of each kind in between. A race is found exactly when the C11 rules leave two
 * accesses unordered, on the bytes both touched, with the earlier access found again. */
#include <stdlib.h>
#include <string.h>

#include "sched/hb.h"
#include "unitutil.h"

static unsigned char mem[3 * 4096];
static int flag;
static const char *const PC0 = "pc of thread 0", *const PC1 = "pc of thread 1";

static int setup(void **state)
{
    (void)state;
    return hb_begin(3);
}

static int teardown(void **state)
{
    (void)state;
    hb_end();
    return 0;
}

static int acc(uint32_t t, size_t off, size_t n, int write)
{
    struct hb_race r;
    return hb_access(t, mem + off, n, write, t ? PC1 : PC0, 7, &r);
}

static void test_unordered_writes_race(void **state)
{
    (void)state;
    assert_int_equal(acc(0, 100, 8, 1), 0);
    struct hb_race r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(hb_access(1, mem + 104, 2, 1, PC1, 9, &r), 1);
    assert_ptr_equal((void *)r.at, mem + 104);
    assert_int_equal(r.cur.thread, 1);
    assert_int_equal(r.cur.write, 1);
    assert_ptr_equal((void *)r.cur.addr, mem + 104);
    assert_int_equal(r.cur.size, 2);
    assert_int_equal(r.cur.step, 9);
    /* the earlier one, found again in thread 0's log */
    assert_int_equal(r.prev.known, 1);
    assert_int_equal(r.prev.thread, 0);
    assert_int_equal(r.prev.write, 1);
    assert_ptr_equal((void *)r.prev.addr, mem + 100);
    assert_int_equal(r.prev.size, 8);
    assert_int_equal(r.prev.step, 7);
    assert_ptr_equal(r.prev.pc, PC0);
}

static void test_bytes_not_shared_do_not_race(void **state)
{
    (void)state;
    assert_int_equal(acc(0, 100, 4, 1), 0);
    assert_int_equal(acc(1, 104, 4, 1), 0); /* the next bytes of the same word */
    assert_int_equal(acc(1, 96, 4, 0), 0);
    assert_int_equal(acc(2, 0, 100, 0), 0);
    /* reads of the same bytes by every thread: no race */
    assert_int_equal(acc(0, 200, 16, 0), 0);
    assert_int_equal(acc(1, 200, 16, 0), 0);
    assert_int_equal(acc(2, 200, 16, 0), 0);
    /* the same thread, again and again */
    assert_int_equal(acc(0, 100, 4, 0), 0);
    assert_int_equal(acc(0, 100, 4, 1), 0);
    /* a range across a page boundary */
    assert_int_equal(acc(0, 4090, 20, 1), 0);
    assert_int_equal(acc(1, 4110, 4, 1), 0);
    assert_int_equal(acc(1, 4109, 4, 1), 1);
}

static void test_read_write_races_both_ways(void **state)
{
    (void)state;
    assert_int_equal(acc(0, 0, 4, 0), 0);
    assert_int_equal(acc(1, 2, 1, 1), 1); /* a write after an unordered read */
    assert_int_equal(acc(0, 50, 4, 1), 0);
    struct hb_race r;
    assert_int_equal(hb_access(1, mem + 48, 8, 0, PC1, 3, &r), 1); /* a read after a write */
    assert_int_equal(r.cur.write, 0);
    assert_int_equal(r.prev.write, 1);
    assert_ptr_equal((void *)r.at, mem + 50);
}

static void test_release_acquire_orders(void **state)
{
    (void)state;
    assert_int_equal(acc(0, 0, 64, 1), 0);
    hb_store(0, &flag, HB_RELEASE);
    hb_load(1, &flag, HB_ACQUIRE);
    assert_int_equal(acc(1, 0, 64, 0), 0);
    assert_int_equal(acc(1, 0, 64, 1), 0);
    /* thread 2 never synchronised with either */
    assert_int_equal(acc(2, 10, 1, 0), 1);
}

static void test_relaxed_gives_no_edge(void **state)
{
    (void)state;
    assert_int_equal(acc(0, 0, 64, 1), 0);
    hb_store(0, &flag, HB_RELAXED);
    hb_load(1, &flag, HB_ACQUIRE);
    assert_int_equal(acc(1, 0, 4, 0), 1);
    hb_begin(3);
    assert_int_equal(acc(0, 0, 64, 1), 0);
    hb_store(0, &flag, HB_RELEASE);
    hb_load(1, &flag, HB_RELAXED);
    assert_int_equal(acc(1, 0, 4, 0), 1);
}

static void test_fences(void **state)
{
    (void)state;
    /* release fence + relaxed store, relaxed load + acquire fence: synchronised */
    assert_int_equal(acc(0, 0, 64, 1), 0);
    hb_fence(0, HB_RELEASE);
    hb_store(0, &flag, HB_RELAXED);
    hb_load(1, &flag, HB_RELAXED);
    assert_int_equal(acc(1, 0, 4, 0), 1); /* not before the acquire fence */
    hb_begin(3);
    assert_int_equal(acc(0, 0, 64, 1), 0);
    hb_fence(0, HB_RELEASE);
    hb_store(0, &flag, HB_RELAXED);
    hb_load(1, &flag, HB_RELAXED);
    hb_fence(1, HB_ACQUIRE);
    assert_int_equal(acc(1, 0, 4, 0), 0);
    /* a write after the release fence is not covered by it */
    assert_int_equal(acc(0, 100, 4, 1), 0);
    hb_store(0, &flag, HB_RELAXED);
    hb_load(1, &flag, HB_RELAXED);
    hb_fence(1, HB_SEQ_CST);
    assert_int_equal(acc(1, 100, 4, 0), 1);
}

static void test_release_sequence_through_rmw(void **state)
{
    (void)state;
    assert_int_equal(acc(0, 0, 8, 1), 0);
    hb_store(0, &flag, HB_RELEASE);
    hb_rmw(1, &flag, HB_RELAXED); /* continues thread 0's release sequence */
    hb_load(2, &flag, HB_ACQUIRE);
    assert_int_equal(acc(2, 0, 8, 1), 0);
    /* thread 1's own writes before its relaxed RMW are not released by it */
    hb_begin(3);
    assert_int_equal(acc(1, 0, 8, 1), 0);
    hb_rmw(1, &flag, HB_RELAXED);
    hb_load(2, &flag, HB_ACQUIRE);
    assert_int_equal(acc(2, 0, 8, 1), 1);
    /* an acq_rel RMW both takes and gives */
    hb_begin(3);
    assert_int_equal(acc(0, 0, 8, 1), 0);
    hb_store(0, &flag, HB_RELEASE);
    assert_int_equal(acc(1, 100, 8, 1), 0);
    hb_rmw(1, &flag, HB_ACQ_REL);
    assert_int_equal(acc(1, 0, 8, 0), 0); /* ordered after thread 0's write */
    assert_int_equal(acc(1, 200, 8, 1), 0);
    hb_load(2, &flag, HB_SEQ_CST);
    assert_int_equal(acc(2, 100, 8, 0), 0);
    assert_int_equal(acc(2, 0, 8, 0), 0);   /* a write would race with that read */
    assert_int_equal(acc(2, 200, 8, 0), 1); /* after thread 1's RMW: not released by it */
    assert_int_equal(acc(2, 0, 8, 1), 1);   /* against thread 1's read after its RMW */
}

static void test_objects_and_kinds(void **state)
{
    (void)state;
    static int m;
    assert_int_equal(acc(0, 0, 8, 1), 0);
    hb_release(0, &m, HB_OBJ);  /* unlock */
    hb_acquire(1, &m, HB_WAKE); /* another namespace: nothing */
    assert_int_equal(acc(1, 0, 8, 0), 1);
    hb_acquire(1, &m, HB_OBJ); /* lock */
    assert_int_equal(acc(1, 0, 8, 0), 0);
    /* transitive: 0 -> 1 -> 2 */
    hb_release(1, &flag, HB_WAKE);
    hb_acquire(2, &flag, HB_WAKE);
    assert_int_equal(acc(2, 0, 8, 1), 0);
    /* an acquire of an object never released: nothing */
    assert_int_equal(acc(0, 500, 1, 1), 0);
    hb_acquire(1, mem + 500, HB_OBJ);
    assert_int_equal(acc(1, 500, 1, 1), 1);
}

static void test_shared_reads_then_write(void **state)
{
    (void)state;
    static int m;
    /* reads by 0 and 1, unordered; 2 synchronises with 1 only, then writes: races with 0 */
    assert_int_equal(acc(0, 300, 4, 0), 0);
    assert_int_equal(acc(1, 300, 4, 0), 0);
    hb_release(1, &m, HB_OBJ);
    hb_acquire(2, &m, HB_OBJ);
    struct hb_race r;
    assert_int_equal(hb_access(2, mem + 300, 4, 1, PC1, 1, &r), 1);
    assert_int_equal(r.prev.thread, 0);
    assert_int_equal(r.prev.write, 0);
    assert_int_equal(r.prev.known, 1);
    /* once 2 is ordered after both, its write is fine */
    hb_release(0, &m, HB_OBJ);
    hb_acquire(2, &m, HB_OBJ);
    assert_int_equal(acc(2, 300, 4, 1), 0);
    /* and a read of 0 now races with that write */
    assert_int_equal(acc(0, 302, 1, 0), 1);
}

static void test_forget_is_a_new_object(void **state)
{
    (void)state;
    assert_int_equal(acc(0, 4096, 4096, 1), 0);
    assert_int_equal(acc(0, 100, 300, 1), 0);
    hb_forget(mem + 4096, 4096); /* a whole page */
    hb_forget(mem + 100, 200);   /* part of one */
    assert_int_equal(acc(1, 4096, 4096, 1), 0);
    assert_int_equal(acc(1, 100, 200, 1), 0);
    assert_int_equal(acc(1, 300, 1, 1), 1); /* what was not forgotten still races */
    /* the recycled page keeps no trace of before */
    hb_begin(3);
    assert_int_equal(acc(0, 4096, 10, 1), 0);
    hb_forget(mem + 4096, 4096);
    assert_int_equal(acc(1, 8192, 10, 1), 0);
    assert_int_equal(acc(2, 4096, 10, 0), 0);
}

static void test_buffered_store_releases_when_visible(void **state)
{
    (void)state;
    assert_int_equal(acc(0, 0, 8, 1), 0);
    hb_store_buffered(0, &flag, HB_RELEASE);
    assert_int_equal(acc(0, 8, 8, 1), 0); /* after the store: not released by it */
    hb_load(1, &flag, HB_ACQUIRE);        /* reads the old value: nothing yet */
    assert_int_equal(acc(1, 0, 8, 0), 1);
    hb_begin(3);
    assert_int_equal(acc(0, 0, 8, 1), 0);
    hb_store_buffered(0, &flag, HB_RELEASE);
    assert_int_equal(acc(0, 8, 8, 1), 0);
    hb_store_flushed(0);
    hb_load(1, &flag, HB_ACQUIRE);
    assert_int_equal(acc(1, 0, 8, 0), 0);
    assert_int_equal(acc(1, 8, 8, 0), 1);
}

static void test_log_keeps_the_newest(void **state)
{
    (void)state;
    /* many accesses of thread 0 between: the earlier access is still found, or said unknown */
    assert_int_equal(acc(0, 0, 1, 1), 0);
    for (int i = 0; i < 20000; i++) {
        hb_release(0, &flag, HB_OBJ); /* a new epoch each time: each access is logged */
        assert_int_equal(acc(0, 1000 + (size_t)(i % 2000), 1, i % 2), 0);
    }
    struct hb_race r;
    assert_int_equal(hb_access(1, mem, 1, 0, PC1, 1, &r), 1);
    assert_int_equal(r.prev.known, 0);
    assert_int_equal(r.prev.thread, 0);
    assert_ptr_equal((void *)r.prev.addr, mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unordered_writes_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_not_shared_do_not_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_write_races_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_acquire_orders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relaxed_gives_no_edge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fences, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_sequence_through_rmw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_objects_and_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_reads_then_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_is_a_new_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffered_store_releases_when_visible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_keeps_the_newest, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
