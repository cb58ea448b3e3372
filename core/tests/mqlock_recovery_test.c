/* mqlock_recovery_test.c - the mq token lock: recovery.
 *
 * Verifies: a SIGKILLed holder (a blocked waiter and a fresh locker both get 1 within 1 s,
 * trylock recovers at once); a token lost on its way (re-created after the recovery time, also
 * for a caller whose timeouts are shorter than it; the late stale token is discarded later); a
 * second valid token and a foreign message (destroyed, reported). Guards against: two tokens
 * after a recovery, recovery that never comes. */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomics.h"
#include "deadline.h"
#include "ipcproof/err.h"
#include "ipcproof/mqlock.h"
#include "mqlock_tu.h"
#include "testutil.h"

/* ---- holder death ----------------------------------------------------------------------- */

struct death_shared {
    _Atomic uint64_t waiter_rc_plus; /* rc + 100 once the waiter returned */
    _Atomic uint64_t waiter_done_ns;
};

struct holder_arg {
    struct ipcp_mqlock *l;
    int ready_fd; /* write 'L' once holding */
    int hold_fd;  /* block on it until killed (or EOF when the test process is gone) */
    int hold_wfd; /* closed in the child, so that EOF can come */
};

static int holder(void *p)
{
    struct holder_arg *a = p;
    close(a->hold_wfd);
    struct ipcp_mqlock_handle *h;
    if (ipcp_mqlock_open(a->l, &h) != 0) return 10;
    if (ipcp_mqlock_lock(h, 5000) != 0) return 11;
    if (write(a->ready_fd, "L", 1) != 1) return 12;
    char c;
    while (read(a->hold_fd, &c, 1) < 0 && errno == EINTR) {
    }
    return 13; /* not reached in the test: it is SIGKILLed while holding */
}

struct waiter_arg {
    struct ipcp_mqlock *l;
    struct death_shared *ds;
    int ready_fd;
};

static int waiter(void *p)
{
    struct waiter_arg *a = p;
    struct ipcp_mqlock_handle *h;
    if (ipcp_mqlock_open(a->l, &h) != 0) return 10;
    if (write(a->ready_fd, "W", 1) != 1) return 12;
    int rc = ipcp_mqlock_lock(h, 10000);
    atomic_store(&a->ds->waiter_done_ns, (uint64_t)ipcp__now_ns());
    atomic_store(&a->ds->waiter_rc_plus, (uint64_t)(rc + 100));
    if (rc == 1 && ipcp_mqlock_unlock(h) != 0) return 14;
    ipcp_mqlock_close(h);
    return 0;
}

static void test_holder_killed(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqlock *l = mqtu_make_lock(0, name, sizeof(name));
    struct death_shared *ds =
        mmap(NULL, sizeof(*ds), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(ds != MAP_FAILED);
    memset(ds, 0, sizeof(*ds));
    int ready[2], hold[2];
    assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
    assert_int_equal(pipe2(hold, O_CLOEXEC), 0);

    /* 1: a waiter blocked in lock() when the holder is killed */
    struct holder_arg ha = {l, ready[1], hold[0], hold[1]};
    pid_t hp = tu_spawn(holder, &ha);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'L');
    struct waiter_arg wa = {l, ds, ready[1]};
    pid_t wp = tu_spawn(waiter, &wa);
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'W');
    int64_t kill_ns = ipcp__now_ns();
    assert_int_equal(kill(hp, SIGKILL), 0);
    tu_wait_ok(wp, 15000); /* the holder stays an unreaped zombie meanwhile */
    assert_int_equal(atomic_load(&ds->waiter_rc_plus), 101);
    int64_t took_ms = ((int64_t)atomic_load(&ds->waiter_done_ns) - kill_ns) / 1000000;
    assert_true(took_ms < 1000);
    int st = tu_wait(hp, 5000);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    /* 2: a fresh lock() right after the kill, before the holder is reaped */
    hp = tu_spawn(holder, &ha);
    assert_int_equal(read(ready[0], &c, 1), 1);
    struct ipcp_mqlock_handle *h;
    assert_int_equal(ipcp_mqlock_open(l, &h), 0);
    assert_int_equal(ipcp_mqlock_trylock(h), -EBUSY); /* the holder is alive */
    assert_int_equal(kill(hp, SIGKILL), 0);
    int64_t t0 = ipcp__now_ns();
    assert_int_equal(ipcp_mqlock_lock(h, 5000), 1);
    assert_true(mqtu_ms_since(t0) < 1000);
    assert_int_equal(ipcp_mqlock_unlock(h), 0);
    /* afterwards: one token, plain acquisitions */
    assert_int_equal(ipcp_mqlock_lock(h, 1000), 0);
    assert_int_equal(ipcp_mqlock_unlock(h), 0);
    st = tu_wait(hp, 5000);
    assert_true(WIFSIGNALED(st));

    /* 3: trylock recovers a dead holder at once */
    hp = tu_spawn(holder, &ha);
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(kill(hp, SIGKILL), 0);
    tu_wait(hp, 5000); /* reaped: the pid is gone */
    assert_int_equal(ipcp_mqlock_trylock(h), 1);
    struct ipcp_mqlock_handle *h2;
    assert_int_equal(ipcp_mqlock_open(l, &h2), 0);
    assert_int_equal(ipcp_mqlock_trylock(h2), -EBUSY);
    assert_int_equal(ipcp_mqlock_unlock(h), 0);
    assert_int_equal(ipcp_mqlock_trylock(h2), 0);
    assert_int_equal(ipcp_mqlock_unlock(h2), 0);

    struct ipcp_mqlock_stats stats;
    ipcp_mqlock_stats(l, &stats);
    assert_int_equal(stats.deaths, 3);
    assert_int_equal(stats.recoveries, 3);
    assert_int_equal(stats.epoch, 4);
    assert_int_equal(stats.duplicates, 0);
    ipcp_mqlock_close(h);
    ipcp_mqlock_close(h2);
    close(ready[0]);
    close(ready[1]);
    close(hold[0]);
    close(hold[1]);
    munmap(ds, sizeof(*ds));
    mqtu_destroy_and_check(l, name);
}

/* A token that vanished between a releaser and the queue (as if a process died right after
 * receiving it) is re-created after the recovery time; when the "lost" token turns up again
 * (the slow process was alive after all) it is stale and discarded: still one token. */
static void test_lost_token_and_stale_return(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqlock *l = mqtu_make_lock(100, name, sizeof(name));
    struct ipcp_mqlock_handle *a, *b;
    assert_int_equal(ipcp_mqlock_open(l, &a), 0);
    assert_int_equal(ipcp_mqlock_open(l, &b), 0);
    assert_int_equal(ipcp_mqlock_lock(a, 1000), 0);
    assert_int_equal(ipcp_mqlock_unlock(a), 0);

    mqd_t raw = mq_open(name, O_RDWR);
    assert_true(raw != (mqd_t)-1);
    uint8_t stolen[IPCP_MQLOCK_TOKEN_SIZE];
    assert_int_equal(mq_receive(raw, (char *)stolen, sizeof(stolen), NULL), sizeof(stolen));

    int64_t t0 = ipcp__now_ns();
    assert_int_equal(ipcp_mqlock_lock(b, 5000), 0); /* released, not died: 0 */
    int64_t el = mqtu_ms_since(t0);
    assert_true(el >= 100);
    assert_true(el < 1000);
    struct ipcp_mqlock_stats st;
    ipcp_mqlock_stats(l, &st);
    assert_int_equal(st.recoveries, 1);
    assert_int_equal(st.deaths, 0);
    assert_int_equal(st.epoch, 2);

    /* the slow process sends its token after all */
    assert_int_equal(mq_send(raw, (const char *)stolen, sizeof(stolen), 0), 0);
    assert_int_equal(ipcp_mqlock_trylock(a), -EBUSY); /* stale token dropped, b holds */
    assert_int_equal(ipcp_mqlock_unlock(b), 0);
    assert_int_equal(ipcp_mqlock_lock(a, 1000), 0);
    assert_int_equal(ipcp_mqlock_trylock(b), -EBUSY);
    assert_int_equal(ipcp_mqlock_unlock(a), 0);
    ipcp_mqlock_stats(l, &st);
    assert_int_equal(st.stale, 1);
    assert_int_equal(st.duplicates, 0);
    /* a stale token queued behind the valid one is dropped by whoever meets it */
    assert_int_equal(mq_send(raw, (const char *)stolen, sizeof(stolen), 0), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ipcp_mqlock_lock(b, 1000), 0);
        assert_int_equal(ipcp_mqlock_trylock(a), -EBUSY);
        assert_int_equal(ipcp_mqlock_unlock(b), 0);
    }
    ipcp_mqlock_stats(l, &st);
    assert_int_equal(st.stale, 2);
    mq_close(raw);
    ipcp_mqlock_close(a);
    ipcp_mqlock_close(b);
    mqtu_destroy_and_check(l, name);
}

/* The same loss, met by a caller that retries with timeouts shorter than the recovery time:
 * the standstill is counted across its calls, so the token is re-created all the same. Found by
 * `ipcproof stress --proto mq-token --crash-points` (a holder that died right after receiving
 * the token): with a fresh count per call, every call timed out first and nobody ever got the
 * lock again. */
static void test_lost_token_short_timeouts(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqlock *l = mqtu_make_lock(200, name, sizeof(name));
    struct ipcp_mqlock_handle *a, *b;
    assert_int_equal(ipcp_mqlock_open(l, &a), 0);
    assert_int_equal(ipcp_mqlock_open(l, &b), 0);
    assert_int_equal(ipcp_mqlock_lock(a, 1000), 0);
    assert_int_equal(ipcp_mqlock_unlock(a), 0);
    mqd_t raw = mq_open(name, O_RDWR);
    assert_true(raw != (mqd_t)-1);
    uint8_t stolen[IPCP_MQLOCK_TOKEN_SIZE];
    assert_int_equal(mq_receive(raw, (char *)stolen, sizeof(stolen), NULL), sizeof(stolen));
    int rc = -ETIMEDOUT, calls = 0;
    int64_t t0 = ipcp__now_ns();
    while (rc == -ETIMEDOUT && mqtu_ms_since(t0) < 5000) { /* 50 ms each, a quarter of recovery */
        rc = ipcp_mqlock_lock(b, 50);
        calls++;
    }
    assert_int_equal(rc, 0);
    assert_true(calls >= 4); /* it did take several short calls */
    struct ipcp_mqlock_stats st;
    ipcp_mqlock_stats(l, &st);
    assert_int_equal(st.recoveries, 1);
    assert_int_equal(ipcp_mqlock_unlock(b), 0);
    mq_close(raw);
    ipcp_mqlock_close(a);
    ipcp_mqlock_close(b);
    mqtu_destroy_and_check(l, name);
}

static void test_second_token_and_foreign(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqlock *l = mqtu_make_lock(0, name, sizeof(name));
    struct ipcp_mqlock_handle *a, *b;
    assert_int_equal(ipcp_mqlock_open(l, &a), 0);
    assert_int_equal(ipcp_mqlock_open(l, &b), 0);
    assert_int_equal(ipcp_mqlock_lock(a, 1000), 0);
    mqd_t raw = mq_open(name, O_RDWR);
    assert_true(raw != (mqd_t)-1);
    uint8_t tok[IPCP_MQLOCK_TOKEN_SIZE];
    ipcp_mqlock_token_encode(tok, 1, 999); /* a forged token of the current epoch */
    assert_int_equal(mq_send(raw, (const char *)tok, sizeof(tok), 0), 0);
    assert_int_equal(ipcp_mqlock_lock(b, 1000), -IPCP_E_TOKEN);
    assert_int_equal(ipcp_mqlock_lock(b, 50), -ETIMEDOUT); /* it was destroyed; a holds */
    const char junk[IPCP_MQLOCK_TOKEN_SIZE] = "not a token!!!!";
    assert_int_equal(mq_send(raw, junk, sizeof(junk), 0), 0);
    assert_int_equal(ipcp_mqlock_trylock(b), -IPCP_E_TOKEN);
    /* a forged token already queued when the holder unlocks: the unlock goes through, the
     * next locker takes one of the two and the other is destroyed by the first to meet it */
    assert_int_equal(mq_send(raw, (const char *)tok, sizeof(tok), 0), 0);
    assert_int_equal(ipcp_mqlock_unlock(a), 0);
    assert_int_equal(ipcp_mqlock_lock(b, 1000), 0);
    assert_int_equal(ipcp_mqlock_trylock(a), -IPCP_E_TOKEN);
    assert_int_equal(ipcp_mqlock_trylock(a), -EBUSY);
    /* the queue full of forged tokens at unlock: one is destroyed to make room, reported */
    for (int i = 0; i < 4; i++)
        assert_int_equal(mq_send(raw, (const char *)tok, sizeof(tok), 0), 0);
    assert_int_equal(ipcp_mqlock_unlock(b), -IPCP_E_TOKEN);
    assert_int_equal(ipcp_mqlock_lock(a, 1000), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ipcp_mqlock_trylock(b), -IPCP_E_TOKEN);
    assert_int_equal(ipcp_mqlock_trylock(b), -EBUSY);
    assert_int_equal(ipcp_mqlock_unlock(a), 0);
    assert_int_equal(ipcp_mqlock_trylock(b), 0);
    assert_int_equal(ipcp_mqlock_unlock(b), 0);
    struct ipcp_mqlock_stats st;
    ipcp_mqlock_stats(l, &st);
    assert_int_equal(st.duplicates, 1 + 1 + 1 + 3);
    assert_int_equal(st.foreign, 1);
    mq_close(raw);
    ipcp_mqlock_close(a);
    ipcp_mqlock_close(b);
    mqtu_destroy_and_check(l, name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_holder_killed),
        cmocka_unit_test(test_lost_token_and_stale_return),
        cmocka_unit_test(test_lost_token_short_timeouts),
        cmocka_unit_test(test_second_token_and_foreign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
