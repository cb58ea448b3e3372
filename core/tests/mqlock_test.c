/* mqlock_test.c - the mq token lock on real queues.
 *
 * Verifies: lock/trylock/unlock and their state errors, the names a stem gives, timeouts that
 * neither return early nor overshoot, contention between 8 processes and between threads (a
 * non-atomic counter and an owner word in the critical section), the mq limits named in the
 * errors (refused before anything is created), a handle inherited over fork refused, and
 * nothing left in /dev/shm or the mq namespace. Guards against: bare EINVAL for the limits,
 * leaked queues. The pure pieces: mqlock_decide_test; holder death and lost, stale, forged
 * tokens: mqlock_recovery_test. */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "atomics.h"
#include "deadline.h"
#include "os.h"
#include "ipcproof/err.h"
#include "ipcproof/mqlock.h"
#include "mqlock_tu.h"
#include "testutil.h"

/* ---- real queues ------------------------------------------------------------------------ */

static void test_basic_and_states(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqlock_cfg cfg = {.stem = "t-basic_1", .recovery_ms = 0, .depth = 0};
    struct ipcp_mqlock *l = NULL;
    assert_int_equal(ipcp_mqlock_create(&cfg, &l), 0);
    snprintf(name, sizeof(name), "%s", ipcp_mqlock_name(l));
    char want[96];
    snprintf(want, sizeof(want), "/ipcp.mqlock.%ld.t-basic_1", (long)getpid());
    assert_string_equal(name, want);
    /* the same stem again: the name is taken, nothing else is touched */
    struct ipcp_mqlock *l2 = NULL;
    assert_int_equal(ipcp_mqlock_create(&cfg, &l2), -EEXIST);
    assert_null(l2);
    cfg.stem = "bad/stem";
    assert_int_equal(ipcp_mqlock_create(&cfg, &l2), -EINVAL);

    struct ipcp_mqlock_handle *a, *b;
    assert_int_equal(ipcp_mqlock_open(l, &a), 0);
    assert_int_equal(ipcp_mqlock_open(l, &b), 0);
    assert_int_equal(ipcp_mqlock_unlock(a), -IPCP_E_STATE);
    assert_int_equal(ipcp_mqlock_lock(a, 1000), 0);
    /* the stats' owner word names the holder while it holds, and says released afterwards */
    struct ipcp_mqlock_stats held;
    struct ipcp_mqlock_owner who;
    ipcp_mqlock_stats(l, &held);
    ipcp_mqlock_word_unpack(held.word, &who);
    assert_int_equal(who.released, 0);
    assert_int_equal(who.pid, (uint32_t)getpid() & ((1u << IPCP_MQLOCK_PID_BITS) - 1));
    assert_int_equal(who.epoch, 1);
    assert_int_equal(ipcp_mqlock_lock(a, 0), -IPCP_E_STATE);
    assert_int_equal(ipcp_mqlock_trylock(b), -EBUSY);
    assert_int_equal(ipcp_mqlock_lock(b, 0), -ETIMEDOUT);
    assert_int_equal(ipcp_mqlock_unlock(a), 0);
    assert_int_equal(ipcp_mqlock_unlock(a), -IPCP_E_STATE);
    assert_int_equal(ipcp_mqlock_trylock(b), 0);
    assert_int_equal(ipcp_mqlock_trylock(a), -EBUSY);
    assert_int_equal(ipcp_mqlock_unlock(b), 0);
    assert_int_equal(ipcp_mqlock_lock(a, 0), 0); /* the token is back: no wait needed */
    assert_int_equal(ipcp_mqlock_unlock(a), 0);
    struct ipcp_mqlock_stats st;
    ipcp_mqlock_stats(l, &st);
    assert_int_equal(st.acquisitions, 3);
    assert_int_equal(st.recoveries, 0);
    assert_int_equal(st.stale + st.duplicates + st.foreign, 0);
    assert_int_equal(st.epoch, 1);
    ipcp_mqlock_word_unpack(st.word, &who);
    assert_int_equal(who.released, 1);
    ipcp_mqlock_close(a);
    ipcp_mqlock_close(b);
    mqtu_destroy_and_check(l, name);
}

static void test_timeout_bounds(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqlock *l = mqtu_make_lock(0, name, sizeof(name));
    struct ipcp_mqlock_handle *a, *b;
    assert_int_equal(ipcp_mqlock_open(l, &a), 0);
    assert_int_equal(ipcp_mqlock_open(l, &b), 0);
    assert_int_equal(ipcp_mqlock_lock(a, 1000), 0);
    const int cases[] = {1, 30, 120};
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(cases); i++) {
        int64_t t0 = ipcp__now_ns();
        assert_int_equal(ipcp_mqlock_lock(b, cases[i]), -ETIMEDOUT);
        int64_t el = mqtu_ms_since(t0);
        assert_true(el >= cases[i]);
        assert_true(el < cases[i] + 500);
    }
    assert_int_equal(ipcp_mqlock_unlock(a), 0);
    ipcp_mqlock_close(a);
    ipcp_mqlock_close(b);
    mqtu_destroy_and_check(l, name);
}

/* Shared by the contention tests: lives in a MAP_SHARED|MAP_ANONYMOUS page made before fork. */
struct cs_shared {
    volatile uint64_t counter; /* plain read-modify-write: only the lock protects it */
    volatile uint32_t owner;
    _Atomic uint64_t violations;
    _Atomic uint64_t died_reports;
};

static void critical_section(struct cs_shared *sh, uint32_t me, uint64_t iter)
{
    if (sh->owner != 0) ipcp_fetch_add_relaxed64(&sh->violations, 1);
    sh->owner = me;
    uint64_t c = sh->counter;
    if (iter % 512 == 0) sched_yield(); /* now and then, be preempted inside */
    sh->counter = c + 1;
    if (sh->owner != me) ipcp_fetch_add_relaxed64(&sh->violations, 1);
    sh->owner = 0;
}

struct worker_arg {
    struct ipcp_mqlock *l;
    struct cs_shared *sh;
    int go_fd;  /* read end: EOF = start */
    int go_wfd; /* write end, closed in the worker so that EOF can come */
    uint32_t id;
    uint64_t iters;
};

static int worker(void *p)
{
    struct worker_arg *a = p;
    close(a->go_wfd);
    char c;
    while (read(a->go_fd, &c, 1) < 0 && errno == EINTR) {
    }
    struct ipcp_mqlock_handle *h;
    if (ipcp_mqlock_open(a->l, &h) != 0) return 10;
    for (uint64_t i = 0; i < a->iters; i++) {
        int rc = ipcp_mqlock_lock(h, 20000);
        if (rc < 0) return 11;
        if (rc == 1) ipcp_fetch_add_relaxed64(&a->sh->died_reports, 1);
        critical_section(a->sh, a->id, i);
        if (ipcp_mqlock_unlock(h) != 0) return 12;
    }
    ipcp_mqlock_close(h);
    return 0;
}

static void test_processes_contend(void **s)
{
    (void)s;
    enum { NPROC = 8, ITERS = 2500 };
    char name[96];
    struct ipcp_mqlock *l = mqtu_make_lock(0, name, sizeof(name));
    struct cs_shared *sh =
        mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(sh != MAP_FAILED);
    memset((void *)sh, 0, sizeof(*sh));
    int go[2];
    assert_int_equal(pipe2(go, O_CLOEXEC), 0);
    pid_t pids[NPROC];
    struct worker_arg args[NPROC];
    for (int i = 0; i < NPROC; i++) {
        args[i] = (struct worker_arg){l, sh, go[0], go[1], (uint32_t)i + 1, ITERS};
        pids[i] = tu_spawn(worker, &args[i]);
        assert_true(pids[i] > 0);
    }
    close(go[1]); /* start barrier */
    for (int i = 0; i < NPROC; i++)
        tu_wait_ok(pids[i], 120000);
    close(go[0]);
    assert_int_equal(sh->counter, NPROC * ITERS);
    assert_int_equal(ipcp_load_relaxed64(&sh->violations), 0);
    assert_int_equal(ipcp_load_relaxed64(&sh->died_reports), 0);
    struct ipcp_mqlock_stats st;
    ipcp_mqlock_stats(l, &st);
    assert_int_equal(st.acquisitions, NPROC * ITERS);
    assert_int_equal(st.deaths + st.duplicates + st.foreign, 0);
    munmap(sh, sizeof(*sh));
    mqtu_destroy_and_check(l, name);
}

struct thread_arg {
    struct ipcp_mqlock *l;
    struct cs_shared *sh;
    uint32_t id;
    int rc;
};

static void *thread_worker(void *p)
{
    struct thread_arg *a = p;
    struct ipcp_mqlock_handle *h;
    a->rc = ipcp_mqlock_open(a->l, &h);
    if (a->rc != 0) return NULL;
    for (uint64_t i = 0; i < 3000 && a->rc == 0; i++) {
        int rc = ipcp_mqlock_lock(h, 20000);
        if (rc != 0) {
            a->rc = rc < 0 ? rc : -1000;
            break;
        }
        critical_section(a->sh, a->id, i);
        a->rc = ipcp_mqlock_unlock(h);
    }
    ipcp_mqlock_close(h);
    return NULL;
}

/* Threads of one process share one mapping: under TSan this is the case it checks (the plain
 * counter is ordered only by the annotated token handoff and the word's CAS). */
static void test_threads_contend(void **s)
{
    (void)s;
    enum { NT = 4 };
    char name[96];
    struct ipcp_mqlock *l = mqtu_make_lock(0, name, sizeof(name));
    struct cs_shared *sh = calloc(1, sizeof(*sh));
    assert_non_null(sh);
    pthread_t t[NT];
    struct thread_arg args[NT];
    for (int i = 0; i < NT; i++) {
        args[i] = (struct thread_arg){l, sh, (uint32_t)i + 1, 0};
        assert_int_equal(pthread_create(&t[i], NULL, thread_worker, &args[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].rc, 0);
    }
    assert_int_equal(sh->counter, NT * 3000);
    assert_int_equal(ipcp_load_relaxed64(&sh->violations), 0);
    free(sh);
    mqtu_destroy_and_check(l, name);
}

/* ---- limits ----------------------------------------------------------------------------- */

static void test_limits(void **s)
{
    (void)s;
    struct ipcp_mq_limits lim;
    assert_int_equal(ipcp_mq_limits_read(&lim), 0);
    assert_true(lim.msg_max > 0);
    assert_true(lim.msgsize_max > 0);
    struct ipcp_mq_limits unpriv = lim;
    unpriv.privileged = 0;
    assert_int_equal(ipcp_mq_limits_check(&unpriv, lim.msg_max, lim.msgsize_max), 0);
    assert_int_equal(ipcp_mq_limits_check(&unpriv, lim.msg_max + 1, 16), -IPCP_E_MQ_MAXMSG);
    assert_int_equal(ipcp_mq_limits_check(&unpriv, 1, lim.msgsize_max + 1), -IPCP_E_MQ_MSGSIZE);
    assert_int_equal(ipcp_mq_limits_check(&unpriv, 0, 16), -EINVAL);
    assert_int_equal(ipcp_mq_limits_check(&unpriv, 1, 0), -EINVAL);
    struct ipcp_mq_limits priv = lim;
    priv.privileged = 1;
    assert_int_equal(ipcp_mq_limits_check(&priv, lim.msg_max + 1, 16), 0);
    assert_int_equal(ipcp_mq_limits_check(&priv, 65537, 16), -IPCP_E_MQ_MAXMSG);
    assert_non_null(strstr(ipcp_strerror(-IPCP_E_MQ_MAXMSG), "/proc/sys/fs/mqueue/msg_max"));
    assert_non_null(strstr(ipcp_strerror(-IPCP_E_MQ_MSGSIZE), "/proc/sys/fs/mqueue/msgsize_max"));
    assert_non_null(strstr(ipcp_strerror(-IPCP_E_MQ_QUEUES), "RLIMIT_MSGQUEUE"));

    if (lim.privileged) {
        print_message("CAP_SYS_RESOURCE is effective: the real-queue limit checks are skipped\n");
        return;
    }
    /* through real creation: refused before mq_open, nothing created */
    char name[96];
    assert_int_equal(ipcp__os_objname(name, sizeof(name), "mqlock", "limits"), 0);
    assert_int_equal(ipcp__os_mq_create(name, lim.msg_max + 1, 16), -IPCP_E_MQ_MAXMSG);
    assert_int_equal(ipcp__os_mq_create(name, 1, lim.msgsize_max + 1), -IPCP_E_MQ_MSGSIZE);
    assert_true(mqtu_mq_gone(name));
    struct ipcp_mqlock_cfg cfg = {
        .stem = "limits", .recovery_ms = 0, .depth = (unsigned)lim.msg_max + 1};
    struct ipcp_mqlock *l = NULL;
    assert_int_equal(ipcp_mqlock_create(&cfg, &l), -IPCP_E_MQ_MAXMSG);
    assert_true(mqtu_mq_gone(name));
    assert_int_equal(mqtu_shm_left(), 0);
}

static int queues_child(void *p)
{
    (void)p;
    struct rlimit rl = {0, 0};
    if (setrlimit(RLIMIT_MSGQUEUE, &rl) != 0) return 20;
    struct ipcp_mqlock_cfg cfg = {.stem = "rlimit", .recovery_ms = 0, .depth = 0};
    struct ipcp_mqlock *l = NULL;
    int rc = ipcp_mqlock_create(&cfg, &l);
    if (l != NULL) ipcp_mqlock_destroy(l);
    if (rc != -IPCP_E_MQ_QUEUES) return 21;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "ipcp.mqlock.%ld.", (long)getpid());
    return tu_shm_count(prefix) == 0 ? 0 : 22;
}

/* RLIMIT_MSGQUEUE exhausted: mq_open's EMFILE becomes IPCP_E_MQ_QUEUES (in a child, whose
 * lowered limit does not touch the rest of the run). */
static void test_queue_limit(void **s)
{
    (void)s;
    tu_wait_ok(tu_spawn(queues_child, NULL), 10000);
}

static int inherited_child(void *p)
{
    struct ipcp_mqlock_handle *h = p;
    return ipcp_mqlock_lock(h, 100) == -IPCP_E_STATE ? 0 : 1;
}

static void test_inherited_handle_refused(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqlock *l = mqtu_make_lock(0, name, sizeof(name));
    struct ipcp_mqlock_handle *h;
    assert_int_equal(ipcp_mqlock_open(l, &h), 0);
    tu_wait_ok(tu_spawn(inherited_child, h), 10000);
    assert_int_equal(ipcp_mqlock_trylock(h), 0); /* the child did not take the token */
    assert_int_equal(ipcp_mqlock_unlock(h), 0);
    ipcp_mqlock_close(h);
    mqtu_destroy_and_check(l, name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_and_states),  cmocka_unit_test(test_timeout_bounds),
        cmocka_unit_test(test_processes_contend), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_queue_limit),       cmocka_unit_test(test_inherited_handle_refused),
        cmocka_unit_test(test_threads_contend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
