/* proc_test.c - the liveness rule (proc.h) across PID namespaces.
 *
 * A pid names a process only in the PID namespace it was read in. These tests put a process
 * in a PID namespace of its own (an unprivileged user namespace makes that possible without
 * privileges) and check that
 *   - liveness is still right there although /proc is still the parent namespace's mount (a
 *     pid read in the new namespace is somebody else in that /proc), and
 *   - every object whose peers judge each other by pid refuses an opener from another PID
 *     namespace than its creator's with -IPCP_E_PIDNS, while the kinds the kernel watches
 *     (robust mutex, SysV semaphore, OFD lock) keep working there.
 * The machine must allow unprivileged user namespaces (kernel.unprivileged_userns_clone=1, the
 * Debian default): the test fails, naming that, where it cannot make one. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "ipcproof/cvq.h"
#include "ipcproof/err.h"
#include "ipcproof/handoff.h"
#include "ipcproof/lock.h"
#include "ipcproof/mqchan.h"
#include "ipcproof/mqlock.h"
#include "ipcproof/ring.h"
#include "ipcproof/sysvmsg.h"
#include "testutil.h"

/* Runs fn(arg) in a child that is pid 1 of a new PID namespace (and user namespace): its raw
 * wait status. clone() rather than fork() + unshare(): unshare(CLONE_NEWUSER) refuses a process
 * of several threads, which a ThreadSanitizer build is (its runtime's own thread). */
static int run_in_new_pidns(int (*fn)(void *), void *arg)
{
    pid_t c =
        (pid_t)syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, NULL);
    if (c < 0)
        fail_msg("clone(CLONE_NEWUSER|CLONE_NEWPID): %s (unprivileged user namespaces "
                 "disabled? kernel.unprivileged_userns_clone)",
                 strerror(errno));
    if (c == 0) {
        alarm(60);
        _exit(fn(arg));
    }
    return tu_wait(c, 90000);
}

static void assert_child_ok(int st, const char *what)
{
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("%s: child status 0x%x (exit %d)", what, st, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* ---- liveness inside the new namespace ---------------------------------------------------- */

static int liveness_child(void *arg)
{
    (void)arg;
    uint32_t pid;
    uint64_t start;
    if (getpid() != 1) return 10; /* not in a new namespace: the test proves nothing */
    if (ipcp__proc_self(&pid, &start) < 0 || pid != 1) return 11;
    /* /proc is the parent namespace's: its /proc/1 is that namespace's init, started long
     * before this process. Reading it would call this live process dead. */
    if (ipcp__proc_alive(pid, start, ~0ull) != 1) return 12;
    /* A pid no process has here is dead (kill answers in this namespace). */
    if (ipcp__proc_alive(4000000, start, ~0ull) != 0) return 13;
    pid_t z = fork();
    if (z == 0) _exit(0);
    int st;
    if (z < 0 || waitpid(z, &st, 0) != z) return 14;
    if (ipcp__proc_alive((uint32_t)z, start, 0) != 0) return 15; /* reaped: gone */
    if (ipcp__proc_ns() == 0) return 16;
    return 0;
}

static void test_liveness_in_new_pidns(void **state)
{
    (void)state;
    assert_child_ok(run_in_new_pidns(liveness_child, NULL), "liveness in a new PID namespace");
}

static void test_ns_check_same(void **state)
{
    (void)state;
    uint64_t ns = ipcp__proc_ns();
    assert_true(ns != 0);
    assert_int_equal(ipcp__proc_ns_check(ns), 0);
    assert_int_equal(ipcp__proc_ns_check(0), 0); /* unknown: cannot tell, not refused */
    assert_int_equal(ipcp__proc_ns_check(ns + 1), -IPCP_E_PIDNS);
    assert_string_equal(ipcp_errname(-IPCP_E_PIDNS), "IPCP_E_PIDNS");
}

/* ---- every protocol: refused (or working) from another namespace ---------------------------- */

struct objs {
    struct ipcp_mqlock *mq;
    struct ipcp_handoff *ho;
    struct ipcp_cvq *cvq;
    struct ipcp_lock_ctx *lk[IPCP_LOCK_KIND_LAST + 1];
    struct ipcp_ring ring;
    struct ipcp_sysvmsg *sm;
    struct ipcp_mqchan *mc;
};

/* What an opener gets: a table, so that a new protocol is one row. want: the return code
 * expected from another PID namespace (the same namespace always gets 0). */
struct opener {
    const char *name;
    int (*open)(struct objs *o, const void *arg);
    const void *arg;
    int want;
};

static int open_mqlock(struct objs *o, const void *arg)
{
    (void)arg;
    struct ipcp_mqlock_handle *h;
    int rc = ipcp_mqlock_open(o->mq, &h);
    if (rc == 0) ipcp_mqlock_close(h);
    return rc;
}

static int open_handoff(struct objs *o, const void *arg)
{
    struct ipcp_handoff_ep *ep;
    int rc = ipcp_handoff_open(o->ho, *(const int *)arg, &ep);
    if (rc == 0) ipcp_handoff_close(ep);
    return rc;
}

static int open_cvq(struct objs *o, const void *arg)
{
    struct ipcp_cvq_ep *ep;
    int rc = ipcp_cvq_open(o->cvq, *(const int *)arg, 0, &ep);
    if (rc == 0) ipcp_cvq_close(ep);
    return rc;
}

static int open_lock(struct objs *o, const void *arg)
{
    struct ipcp_lock *h;
    int rc = ipcp_lock_open(o->lk[*(const int *)arg], 0, &h);
    if (rc < 0) return rc;
    rc = ipcp_lock_lock(h, 5000);
    if (rc == 0) rc = ipcp_lock_unlock(h);
    ipcp_lock_close(h);
    return rc;
}

static int open_ring(struct objs *o, const void *arg)
{
    struct ipcp_ring r;
    int rc = ipcp_ring_attach(&r, ipcp_ring_name(&o->ring), *(const int *)arg, NULL);
    if (rc == 0) ipcp_ring_close(&r);
    return rc;
}

static int open_sysvmsg(struct objs *o, const void *arg)
{
    struct ipcp_sysvmsg_ep *ep;
    int rc = ipcp_sysvmsg_open(o->sm, *(const int *)arg, 0, &ep);
    if (rc == 0) ipcp_sysvmsg_close(ep);
    return rc;
}

static int open_mqchan(struct objs *o, const void *arg)
{
    struct ipcp_mqchan_ep *ep;
    int rc = ipcp_mqchan_open(o->mc, *(const int *)arg, 0, &ep);
    if (rc == 0) ipcp_mqchan_close(ep);
    return rc;
}

static const int HO_TX = IPCP_HANDOFF_SENDER, HO_RX = IPCP_HANDOFF_RECEIVER;
static const int CVQ_P = IPCP_CVQ_PRODUCER, CVQ_C = IPCP_CVQ_CONSUMER;
static const int K_MQ = IPCP_LOCK_MQ_TOKEN, K_PSEM = IPCP_LOCK_POSIX_SEM,
                 K_ROBUST = IPCP_LOCK_ROBUST_MUTEX, K_SYSV = IPCP_LOCK_SYSV_SEM,
                 K_OFD = IPCP_LOCK_OFD;
static const int R_NONE = IPCP_RING_NONE, R_CONS = IPCP_RING_CONSUMER;
static const int SM_P = IPCP_SYSVMSG_PRODUCER, SM_C = IPCP_SYSVMSG_CONSUMER;
static const int MC_S = IPCP_MQCHAN_SENDER, MC_R = IPCP_MQCHAN_RECEIVER;

static const struct opener OPENERS[] = {
    {"mqlock", open_mqlock, NULL, -IPCP_E_PIDNS},
    {"handoff sender", open_handoff, &HO_TX, -IPCP_E_PIDNS},
    {"handoff receiver", open_handoff, &HO_RX, -IPCP_E_PIDNS},
    {"cvq producer", open_cvq, &CVQ_P, -IPCP_E_PIDNS},
    {"cvq consumer", open_cvq, &CVQ_C, -IPCP_E_PIDNS},
    {"lock mq-token", open_lock, &K_MQ, -IPCP_E_PIDNS},
    {"lock posix-sem", open_lock, &K_PSEM, -IPCP_E_PIDNS},
    /* the kernel tells these a holder died, not a pid: they work across namespaces */
    {"lock robust-mutex", open_lock, &K_ROBUST, 0},
    {"lock sysv-sem", open_lock, &K_SYSV, 0},
    {"lock ofd-lock", open_lock, &K_OFD, 0},
    {"ring consumer", open_ring, &R_CONS, -IPCP_E_PIDNS},
    {"ring observer", open_ring, &R_NONE, 0},
    {"sysv-msg producer", open_sysvmsg, &SM_P, -IPCP_E_PIDNS},
    {"sysv-msg consumer", open_sysvmsg, &SM_C, -IPCP_E_PIDNS},
    {"mq-chan sender", open_mqchan, &MC_S, -IPCP_E_PIDNS},
    {"mq-chan receiver", open_mqchan, &MC_R, -IPCP_E_PIDNS},
};

static struct objs O;

static void objs_create(void)
{
    char stem[64];
    struct ipcp_mqlock_cfg mc = {.stem = tu_name(stem, sizeof(stem))};
    assert_int_equal(ipcp_mqlock_create(&mc, &O.mq), 0);
    struct ipcp_handoff_cfg hc = {
        .stem = tu_name(stem, sizeof(stem)), .nslots = 2, .slot_size = 64};
    assert_int_equal(ipcp_handoff_create(&hc, &O.ho), 0);
    struct ipcp_cvq_cfg qc = {
        .stem = tu_name(stem, sizeof(stem)), .producers = 1, .consumers = 1, .max_msg = 64};
    assert_int_equal(ipcp_cvq_create(&qc, &O.cvq), 0);
    for (int k = IPCP_LOCK_KIND_FIRST; k <= IPCP_LOCK_KIND_LAST; k++) {
        struct ipcp_lock_cfg lc = {
            .workers = 1, .run_id = tu_name(stem, sizeof(stem)), .options = ""};
        assert_int_equal(ipcp_lock_create((enum ipcp_lock_kind)k, &lc, &O.lk[k]), 0);
    }
    struct ipcp_sysvmsg_cfg sc = {.producers = 1, .consumers = 1, .max_msg = 64};
    assert_int_equal(ipcp_sysvmsg_create(&sc, &O.sm), 0);
    struct ipcp_mqchan_cfg cc = {.stem = tu_name(stem, sizeof(stem)),
                                 .producers = 1,
                                 .consumers = 1,
                                 .max_msg = 64,
                                 .maxmsg = 2,
                                 .msgsize = 256};
    assert_int_equal(ipcp_mqchan_create(&cc, &O.mc), 0);
    assert_int_equal(ipcp_ring_create(&O.ring, tu_name(stem, sizeof(stem)), IPCP_RING_NONE, NULL),
                     0);
}

static void objs_destroy(void)
{
    ipcp_ring_close(&O.ring);
    ipcp_mqchan_destroy(O.mc);
    ipcp_sysvmsg_destroy(O.sm);
    for (int k = IPCP_LOCK_KIND_FIRST; k <= IPCP_LOCK_KIND_LAST; k++)
        ipcp_lock_destroy(O.lk[k]);
    ipcp_cvq_destroy(O.cvq);
    ipcp_handoff_destroy(O.ho);
    ipcp_mqlock_destroy(O.mq);
    memset(&O, 0, sizeof(O));
}

/* Tries every opener; arg: 1 in another namespace (expects each row's want), 0 in the same
 * one (expects 0). Exit status: 0, or 20 + the first row that differed. */
static int openers_child(void *arg)
{
    int other = *(int *)arg;
    if (other && getpid() != 1) return 10;
    for (size_t i = 0; i < sizeof(OPENERS) / sizeof(OPENERS[0]); i++) {
        const struct opener *op = &OPENERS[i];
        int want = other ? op->want : 0;
        int rc = op->open(&O, op->arg);
        if (rc != want) {
            fprintf(stderr, "%s from %s PID namespace: %s, expected %s\n", op->name,
                    other ? "another" : "the creator's", ipcp_errname(rc), ipcp_errname(want));
            return 20 + (int)i;
        }
    }
    return 0;
}

static void test_openers_other_pidns(void **state)
{
    (void)state;
    objs_create();
    int other = 1;
    int st = run_in_new_pidns(openers_child, &other);
    int same = 0;
    pid_t c = tu_spawn(openers_child, &same); /* control: the same rows open in a plain child */
    int st2 = tu_wait(c, 60000);
    objs_destroy();
    assert_child_ok(st, "openers from another PID namespace");
    assert_child_ok(st2, "openers from the creator's PID namespace");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ns_check_same),
        cmocka_unit_test(test_liveness_in_new_pidns),
        cmocka_unit_test(test_openers_other_pidns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
