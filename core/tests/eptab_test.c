/* eptab_test.c - the endpoint table the message channels share (core/src/eptab.h).
 *
 * An index is claimed once (a second claim, also from another process, is -EBUSY); the first
 * free one is handed out until none is left; indices and sides out of range are -EINVAL; an
 * opener in another PID namespace than the creator's is refused; a word reads 0 while never
 * opened or alive, -EPIPE once closed, -IPCP_E_PEERDEAD once its process was SIGKILLed (a zombie
 * too, before it is reaped); "all gone" waits for every endpoint of a side, says PEERDEAD when
 * one of them died and EPIPE when all closed; a forged word is judged, not trusted. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eptab.h"
#include "proc.h"
#include "ipcproof/err.h"
#include "testutil.h"

enum { P = IPCP__EPTAB_PRODUCER, C = IPCP__EPTAB_CONSUMER };

static void test_claim_once(void **s)
{
    (void)s;
    struct ipcp__eptab t;
    assert_int_equal(ipcp__eptab_create(&t, 0, 1), -EINVAL);
    assert_int_equal(ipcp__eptab_create(&t, 1, IPCP__EPTAB_MAX_EP + 1), -EINVAL);
    assert_int_equal(ipcp__eptab_create(&t, 2, 3), 0);
    assert_int_equal(ipcp__eptab_claim(&t, P, 2), -EINVAL);
    assert_int_equal(ipcp__eptab_claim(&t, C, 3), -EINVAL);
    assert_int_equal(ipcp__eptab_claim(&t, 2, 0), -EINVAL);
    assert_int_equal(ipcp__eptab_state(&t, P, 2), -EINVAL);
    assert_int_equal(ipcp__eptab_claim(&t, P, 1), 0);
    assert_int_equal(ipcp__eptab_claim(&t, P, 1), -EBUSY);
    /* the sides are apart: consumer 1 is not producer 1 */
    assert_int_equal(ipcp__eptab_claim(&t, C, 1), 0);
    assert_int_equal(ipcp__eptab_claim_any(&t, C), 0);
    assert_int_equal(ipcp__eptab_claim_any(&t, C), 2);
    assert_int_equal(ipcp__eptab_claim_any(&t, C), -EBUSY);
    assert_int_equal(ipcp__eptab_claim_any(&t, P), 0);
    assert_int_equal(ipcp__eptab_claim_any(&t, P), -EBUSY);
    /* closed is not free again */
    ipcp__eptab_close(&t, P, 0);
    assert_int_equal(ipcp__eptab_state(&t, P, 0), -EPIPE);
    assert_int_equal(ipcp__eptab_claim(&t, P, 0), -EBUSY);
    assert_int_equal(ipcp__eptab_claim_any(&t, P), -EBUSY);
    ipcp__eptab_destroy(&t);
    ipcp__eptab_destroy(&t); /* twice is fine */
    assert_int_equal(ipcp__eptab_claim(&t, P, 0), -EINVAL);
    assert_int_equal(ipcp__eptab_gone(&t, P), -EINVAL);
}

static void test_other_pidns_refused(void **s)
{
    (void)s;
    uint64_t ns = ipcp__proc_ns();
    assert_true(ns != 0); /* /proc/self/ns/pid names this namespace on Linux */
    struct ipcp__eptab t;
    assert_int_equal(ipcp__eptab_create(&t, 1, 1), 0);
    assert_true(t.ns == ns);
    t.ns = ns + 1; /* as if created in another namespace */
    assert_int_equal(ipcp__eptab_claim(&t, P, 0), -IPCP_E_PIDNS);
    assert_int_equal(ipcp__eptab_claim_any(&t, C), -IPCP_E_PIDNS);
    t.ns = ns;
    assert_int_equal(ipcp__eptab_state(&t, P, 0), 0); /* the refusal took nothing */
    assert_int_equal(ipcp__eptab_claim(&t, P, 0), 0);
    ipcp__eptab_destroy(&t);
}

struct child_arg {
    struct ipcp__eptab *t;
    int side;
    uint32_t index;
    int ready_fd;
};

/* Claims its endpoint, says so, and waits to be killed (or the alarm ends it). */
static int claimer(void *p)
{
    struct child_arg *a = p;
    alarm(30);
    int rc = ipcp__eptab_claim(a->t, a->side, a->index);
    char c = rc == 0 ? 'y' : 'n';
    if (write(a->ready_fd, &c, 1) != 1) return 2;
    for (;;)
        pause();
}

static pid_t spawn_claimer(struct ipcp__eptab *t, int side, uint32_t index, int *ok)
{
    struct child_arg a = {t, side, index, -1};
    char c = 0;
    pid_t pid = tu_spawn_ready(claimer, &a, &a.ready_fd, &c);
    *ok = c == 'y';
    return pid;
}

static void test_dead_and_closed(void **s)
{
    (void)s;
    struct ipcp__eptab t;
    assert_int_equal(ipcp__eptab_create(&t, 3, 1), 0);
    assert_int_equal(ipcp__eptab_gone(&t, P), 0); /* none opened: they may still come */
    int ok;
    pid_t p0 = spawn_claimer(&t, P, 0, &ok);
    assert_true(ok);
    pid_t again = spawn_claimer(&t, P, 0, &ok); /* another process: taken */
    assert_false(ok);
    kill(again, SIGKILL);
    tu_wait(again, 5000);
    assert_int_equal(ipcp__eptab_state(&t, P, 0), 0); /* alive */
    assert_int_equal(ipcp__eptab_claim(&t, P, 1), 0);
    assert_int_equal(ipcp__eptab_claim(&t, P, 2), 0);
    ipcp__eptab_close(&t, P, 1);
    assert_int_equal(ipcp__eptab_gone(&t, P), 0); /* 0 and 2 still there */
    ipcp__eptab_close(&t, P, 2);
    assert_int_equal(ipcp__eptab_gone(&t, P), 0); /* 0 still there */

    assert_int_equal(kill(p0, SIGKILL), 0);
    siginfo_t si;
    assert_int_equal(waitid(P_PID, (id_t)p0, &si, WEXITED | WNOWAIT), 0); /* a zombie now */
    assert_int_equal(ipcp__eptab_state(&t, P, 0), -IPCP_E_PEERDEAD);
    assert_int_equal(ipcp__eptab_gone(&t, P), -IPCP_E_PEERDEAD);
    assert_true(WIFSIGNALED(tu_wait(p0, 5000)));
    assert_int_equal(ipcp__eptab_state(&t, P, 0), -IPCP_E_PEERDEAD); /* and reaped */
    assert_int_equal(ipcp__eptab_gone(&t, C), 0);                    /* the other side is apart */
    ipcp__eptab_destroy(&t);

    /* all closed: EPIPE */
    assert_int_equal(ipcp__eptab_create(&t, 2, 1), 0);
    assert_int_equal(ipcp__eptab_claim(&t, P, 0), 0);
    assert_int_equal(ipcp__eptab_claim(&t, P, 1), 0);
    ipcp__eptab_close(&t, P, 1);
    assert_int_equal(ipcp__eptab_gone(&t, P), 0);
    ipcp__eptab_close(&t, P, 0);
    assert_int_equal(ipcp__eptab_gone(&t, P), -EPIPE);
    ipcp__eptab_destroy(&t);
}

static void test_forged_word(void **s)
{
    (void)s;
    struct ipcp__eptab t;
    assert_int_equal(ipcp__eptab_create(&t, 1, 1), 0);
    assert_int_equal(ipcp__eptab_claim(&t, C, 0), 0);
    /* this process's pid with another start time: a reused pid, not this process */
    uint32_t pid;
    uint64_t start;
    assert_int_equal(ipcp__proc_self(&pid, &start), 0);
    uint64_t mine = atomic_load(&t.word[1]);
    assert_true(mine == (((start & 0xffffffffull) << 32) | pid));
    atomic_store(&t.word[1], (((start + 1) & 0xffffffffull) << 32) | pid);
    assert_int_equal(ipcp__eptab_state(&t, C, 0), -IPCP_E_PEERDEAD);
    atomic_store(&t.word[1], mine);
    assert_int_equal(ipcp__eptab_state(&t, C, 0), 0);
    ipcp__eptab_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_once),
        cmocka_unit_test(test_other_pidns_refused),
        cmocka_unit_test(test_dead_and_closed),
        cmocka_unit_test(test_forged_word),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
