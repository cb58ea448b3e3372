/* lock_test.c - the five lock kinds behind one interface (lock.h).
 *
 * For every kind: the state errors; trylock and lock timeouts against a holder in another
 * process (never early, never far late); mutual exclusion between 8 processes over 100 000
 * acquisitions and between threads of one process (a non-atomic counter and an owner word in
 * the critical section: zero violations); a holder SIGKILLed inside the critical section (the
 * robust kinds: a blocked waiter gets 1 within 1 s; posix-sem: IPCP_E_PEERDEAD, as documented);
 * a handle inherited over fork refused; options and limits; every OS object gone after destroy.
 * Under ThreadSanitizer two more tests run each kind in a re-executed child: threads on one
 * lock must be quiet (the annotations make the kernel's ordering visible), and threads that
 * each use a different lock of the same kind must be reported (the annotations do not hide a
 * real race).
 *
 * IPCP_LOCK_TEST_ACQ=N changes the 100 000 acquisitions per kind (for slow tools such as
 * valgrind); nothing sets it, the sanitizer builds included. */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomics.h"
#include "deadline.h"
#include "ipcproof/err.h"
#include "ipcproof/lock.h"
#include "ipcproof/mqlock.h"
#include "testutil.h"

#define NKINDS (IPCP_LOCK_KIND_LAST - IPCP_LOCK_KIND_FIRST + 1)

/* ---- helpers ---------------------------------------------------------------------------- */

static const char *kname(int kind)
{
    return ipcp_lock_info((enum ipcp_lock_kind)kind)->name;
}

static struct ipcp_lock_ctx *make(int kind, uint32_t workers, const char *options)
{
    struct ipcp_lock_cfg cfg = {.run_id = NULL, .workers = workers, .options = options};
    struct ipcp_lock_ctx *ctx = NULL;
    int rc = ipcp_lock_create((enum ipcp_lock_kind)kind, &cfg, &ctx);
    if (rc != 0) fail_msg("%s: create: %s", kname(kind), ipcp_strerror(rc));
    return ctx;
}

static int shm_entry_exists(const char *entry)
{
    char path[320];
    snprintf(path, sizeof(path), "/dev/shm/%s", entry);
    return access(path, F_OK) == 0;
}

/* Destroys ctx and checks that each of its OS objects is gone. */
static void destroy_and_check(struct ipcp_lock_ctx *ctx)
{
    struct ipcp_lock_objects o;
    ipcp_lock_objects(ctx, &o);
    ipcp_lock_destroy(ctx);
    if (o.shm[0] != '\0') assert_false(shm_entry_exists(o.shm + 1));
    if (o.sem[0] != '\0') {
        char e[256];
        snprintf(e, sizeof(e), "sem.%s", o.sem + 1);
        assert_false(shm_entry_exists(e));
    }
    if (o.mq[0] != '\0') {
        mqd_t q = mq_open(o.mq, O_RDONLY);
        if (q != (mqd_t)-1) mq_close(q);
        assert_true(q == (mqd_t)-1 && errno == ENOENT);
    }
    if (o.semid >= 0) {
        struct semid_ds ds;
        assert_int_equal(semctl(o.semid, 0, IPC_STAT, &ds), -1);
        assert_true(errno == EINVAL || errno == EIDRM);
    }
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "ipcp.lock.%ld.", (long)getpid());
    assert_int_equal(tu_shm_count(prefix), 0);
    snprintf(prefix, sizeof(prefix), "sem.ipcp.psem.%ld.", (long)getpid());
    assert_int_equal(tu_shm_count(prefix), 0);
}

static int64_t ms_since(int64_t t0)
{
    return (ipcp__now_ns() - t0) / 1000000;
}

static uint64_t acq_total(void)
{
    const char *e = getenv("IPCP_LOCK_TEST_ACQ");
    long v = e != NULL ? atol(e) : 0;
    return v > 0 ? (uint64_t)v : 100000;
}

/* ---- info, options, states -------------------------------------------------------------- */

static void test_info(void **s)
{
    (void)s;
    const char *names[] = {"mq-token", "posix-sem", "robust-mutex", "sysv-sem", "ofd-lock"};
    const int survives[] = {1, 0, 1, 1, 1};
    for (int k = IPCP_LOCK_KIND_FIRST; k <= IPCP_LOCK_KIND_LAST; k++) {
        const struct ipcp_lock_info *i = ipcp_lock_info((enum ipcp_lock_kind)k);
        assert_non_null(i);
        assert_string_equal(i->name, names[k - 1]);
        assert_int_equal(ipcp_lock_kind_from_name(names[k - 1]), k);
        assert_int_equal(ipcp_lock_survives_death((enum ipcp_lock_kind)k), survives[k - 1]);
        assert_int_equal(i->reports_death, survives[k - 1]);
        assert_non_null(i->after_death);
    }
    assert_null(ipcp_lock_info((enum ipcp_lock_kind)0));
    assert_null(ipcp_lock_info((enum ipcp_lock_kind)6));
    assert_int_equal(ipcp_lock_kind_from_name("futex"), -EINVAL);
    assert_int_equal(ipcp_lock_kind_from_name(NULL), -EINVAL);
    assert_int_equal(ipcp_lock_survives_death((enum ipcp_lock_kind)9), -EINVAL);
}

static void test_create_errors(void **s)
{
    (void)s;
    struct ipcp_lock_ctx *ctx = NULL;
    struct ipcp_lock_cfg cfg = {.run_id = "lk-err", .workers = 0, .options = ""};
    assert_int_equal(ipcp_lock_create(IPCP_LOCK_SYSV_SEM, &cfg, &ctx), -EINVAL);
    cfg.workers = 2;
    assert_int_equal(ipcp_lock_create((enum ipcp_lock_kind)0, &cfg, &ctx), -EINVAL);
    const struct {
        int kind;
        const char *opt;
    } bad[] = {
        {IPCP_LOCK_SYSV_SEM, "depth=2"},     {IPCP_LOCK_MQ_TOKEN, "poll_ms=5"},
        {IPCP_LOCK_MQ_TOKEN, "depth"},       {IPCP_LOCK_MQ_TOKEN, "depth=x"},
        {IPCP_LOCK_MQ_TOKEN, "depth=-1"},    {IPCP_LOCK_OFD, "poll_ms=0"},
        {IPCP_LOCK_POSIX_SEM, "anything=1"}, {IPCP_LOCK_MQ_TOKEN, "recovery_ms=5x"},
    };
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(bad); i++) {
        cfg.options = bad[i].opt;
        assert_int_equal(ipcp_lock_create((enum ipcp_lock_kind)bad[i].kind, &cfg, &ctx), -EINVAL);
        assert_null(ctx);
    }
    cfg.options = "recovery_ms=100,depth=3";
    assert_int_equal(ipcp_lock_create(IPCP_LOCK_MQ_TOKEN, &cfg, &ctx), 0);
    destroy_and_check(ctx);
    struct ipcp_mq_limits lim;
    ipcp_mq_limits_read(&lim);
    if (!lim.privileged && lim.msg_max > 0 && lim.msg_max < 64) {
        char opt[64];
        snprintf(opt, sizeof(opt), "depth=%ld", lim.msg_max + 1);
        cfg.options = opt;
        assert_int_equal(ipcp_lock_create(IPCP_LOCK_MQ_TOKEN, &cfg, &ctx), -IPCP_E_MQ_MAXMSG);
    }
    /* the same run id twice for one kind: the second is refused, the first is untouched */
    cfg.options = "";
    for (int k = IPCP_LOCK_KIND_FIRST; k <= IPCP_LOCK_KIND_LAST; k++) {
        if (k == IPCP_LOCK_SYSV_SEM) continue; /* IPC_PRIVATE: no name to collide */
        struct ipcp_lock_ctx *a = NULL, *b = NULL;
        assert_int_equal(ipcp_lock_create((enum ipcp_lock_kind)k, &cfg, &a), 0);
        assert_int_equal(ipcp_lock_create((enum ipcp_lock_kind)k, &cfg, &b), -EEXIST);
        assert_null(b);
        struct ipcp_lock *h;
        assert_int_equal(ipcp_lock_open(a, 1, &h), 0);
        assert_int_equal(ipcp_lock_lock(h, 1000), 0);
        assert_int_equal(ipcp_lock_unlock(h), 0);
        ipcp_lock_close(h);
        destroy_and_check(a);
    }
    ipcp_lock_destroy(NULL);
    ipcp_lock_close(NULL);
}

static void test_states(void **s)
{
    (void)s;
    for (int k = IPCP_LOCK_KIND_FIRST; k <= IPCP_LOCK_KIND_LAST; k++) {
        struct ipcp_lock_ctx *ctx = make(k, 2, "");
        struct ipcp_lock *h;
        assert_int_equal(ipcp_lock_open(ctx, 2, &h), -EINVAL);
        assert_int_equal(ipcp_lock_open(ctx, 0, &h), 0);
        assert_int_equal(ipcp_lock_unlock(h), -IPCP_E_STATE);
        assert_int_equal(ipcp_lock_trylock(h), 0);
        assert_int_equal(ipcp_lock_lock(h, 10), -IPCP_E_STATE);
        assert_int_equal(ipcp_lock_trylock(h), -IPCP_E_STATE);
        assert_int_equal(ipcp_lock_unlock(h), 0);
        assert_int_equal(ipcp_lock_unlock(h), -IPCP_E_STATE);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(ipcp_lock_lock(h, 1000), 0);
            assert_int_equal(ipcp_lock_unlock(h), 0);
        }
        assert_int_equal(ipcp_lock_deaths(ctx), 0);
        ipcp_lock_close(h);
        destroy_and_check(ctx);
    }
}

/* ---- a holder in another process -------------------------------------------------------- */

struct holder_arg {
    struct ipcp_lock_ctx *ctx;
    int ready_fd;          /* 'L' once holding */
    int hold_fd, hold_wfd; /* a byte (or EOF) = unlock and exit */
};

static int holder(void *p)
{
    struct holder_arg *a = p;
    close(a->hold_wfd);
    struct ipcp_lock *h;
    if (ipcp_lock_open(a->ctx, 1, &h) != 0) return 10;
    if (ipcp_lock_lock(h, 5000) != 0) return 11;
    if (write(a->ready_fd, "L", 1) != 1) return 12;
    char c;
    while (read(a->hold_fd, &c, 1) < 0 && errno == EINTR) {
    }
    if (ipcp_lock_unlock(h) != 0) return 13;
    ipcp_lock_close(h);
    return 0;
}

struct pipes {
    int ready[2], hold[2];
};

static pid_t start_holder(struct ipcp_lock_ctx *ctx, struct pipes *pp, struct holder_arg *ha)
{
    assert_int_equal(pipe2(pp->ready, O_CLOEXEC), 0);
    assert_int_equal(pipe2(pp->hold, O_CLOEXEC), 0);
    *ha = (struct holder_arg){ctx, pp->ready[1], pp->hold[0], pp->hold[1]};
    pid_t pid = tu_spawn(holder, ha);
    assert_true(pid > 0);
    char c;
    assert_int_equal(read(pp->ready[0], &c, 1), 1);
    assert_int_equal(c, 'L');
    return pid;
}

static void close_pipes(struct pipes *pp)
{
    close(pp->ready[0]);
    close(pp->ready[1]);
    close(pp->hold[0]);
    close(pp->hold[1]);
}

static void test_timeouts(void **s)
{
    (void)s;
    for (int k = IPCP_LOCK_KIND_FIRST; k <= IPCP_LOCK_KIND_LAST; k++) {
        struct ipcp_lock_ctx *ctx = make(k, 2, "");
        struct pipes pp;
        struct holder_arg ha;
        pid_t pid = start_holder(ctx, &pp, &ha);
        struct ipcp_lock *h;
        assert_int_equal(ipcp_lock_open(ctx, 0, &h), 0);
        assert_int_equal(ipcp_lock_trylock(h), -EBUSY);
        const int cases[] = {0, 1, 60};
        for (size_t i = 0; i < IPCP_ARRAY_SIZE(cases); i++) {
            int64_t t0 = ipcp__now_ns();
            int rc = ipcp_lock_lock(h, cases[i]);
            int64_t el = ms_since(t0);
            if (rc != -ETIMEDOUT) fail_msg("%s: lock(%d) = %d", kname(k), cases[i], rc);
            assert_true(el >= cases[i]);
            assert_true(el < cases[i] + 500);
        }
        assert_int_equal(write(pp.hold[1], "U", 1), 1);
        int64_t t0 = ipcp__now_ns();
        assert_int_equal(ipcp_lock_lock(h, 5000), 0); /* handed over when the holder lets go */
        assert_true(ms_since(t0) < 1000);
        tu_wait_ok(pid, 10000);
        assert_int_equal(ipcp_lock_unlock(h), 0);
        ipcp_lock_close(h);
        close_pipes(&pp);
        destroy_and_check(ctx);
    }
}

static int inherited_child(void *p)
{
    return ipcp_lock_lock(p, 100) == -IPCP_E_STATE ? 0 : 1;
}

static void test_inherited_handle(void **s)
{
    (void)s;
    for (int k = IPCP_LOCK_KIND_FIRST; k <= IPCP_LOCK_KIND_LAST; k++) {
        struct ipcp_lock_ctx *ctx = make(k, 1, "");
        struct ipcp_lock *h;
        assert_int_equal(ipcp_lock_open(ctx, 0, &h), 0);
        tu_wait_ok(tu_spawn(inherited_child, h), 10000);
        assert_int_equal(ipcp_lock_trylock(h), 0);
        assert_int_equal(ipcp_lock_unlock(h), 0);
        ipcp_lock_close(h);
        destroy_and_check(ctx);
    }
}

/* ---- mutual exclusion ------------------------------------------------------------------- */

struct cs_shared {
    volatile uint64_t counter; /* plain read-modify-write: only the lock protects it */
    volatile uint32_t owner;   /* who is inside: must be 0 on entry, ours on exit */
    _Atomic uint64_t violations;
    _Atomic uint64_t died_reports;
};

static void critical_section(struct cs_shared *sh, uint32_t me, uint64_t iter)
{
    if (sh->owner != 0) ipcp_fetch_add_relaxed64(&sh->violations, 1);
    sh->owner = me;
    uint64_t c = sh->counter;
    if (iter % 1024 == 0) sched_yield(); /* now and then, be preempted inside */
    sh->counter = c + 1;
    if (sh->owner != me) ipcp_fetch_add_relaxed64(&sh->violations, 1);
    sh->owner = 0;
}

struct worker_arg {
    struct ipcp_lock_ctx *ctx;
    struct cs_shared *sh;
    int go_fd, go_wfd;
    uint32_t index;
    uint64_t iters;
    int rc; /* threads */
};

static int worker(void *p)
{
    struct worker_arg *a = p;
    if (a->go_wfd >= 0) {
        close(a->go_wfd);
        char c;
        while (read(a->go_fd, &c, 1) < 0 && errno == EINTR) {
        }
    }
    struct ipcp_lock *h;
    if (ipcp_lock_open(a->ctx, a->index, &h) != 0) return 10;
    for (uint64_t i = 0; i < a->iters; i++) {
        int rc = ipcp_lock_lock(h, 30000);
        if (rc < 0) return 11;
        if (rc == 1) ipcp_fetch_add_relaxed64(&a->sh->died_reports, 1);
        critical_section(a->sh, a->index + 1, i);
        if (ipcp_lock_unlock(h) != 0) return 12;
    }
    ipcp_lock_close(h);
    return 0;
}

static void test_mutex_processes(void **s)
{
    (void)s;
    enum { NPROC = 8 };
    const uint64_t per = (acq_total() + NPROC - 1) / NPROC;
    for (int k = IPCP_LOCK_KIND_FIRST; k <= IPCP_LOCK_KIND_LAST; k++) {
        struct ipcp_lock_ctx *ctx = make(k, NPROC, "");
        struct cs_shared *sh =
            mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(sh != MAP_FAILED);
        int go[2];
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        pid_t pids[NPROC];
        struct worker_arg args[NPROC];
        int64_t t0 = ipcp__now_ns();
        for (int i = 0; i < NPROC; i++) {
            args[i] = (struct worker_arg){ctx, sh, go[0], go[1], (uint32_t)i, per, 0};
            pids[i] = tu_spawn(worker, &args[i]);
            assert_true(pids[i] > 0);
        }
        close(go[1]); /* start barrier: EOF */
        for (int i = 0; i < NPROC; i++)
            tu_wait_ok(pids[i], 120000);
        close(go[0]);
        print_message("%-13s %d processes: %llu acquisitions in %lld ms\n", kname(k), NPROC,
                      (unsigned long long)(per * NPROC), (long long)ms_since(t0));
        assert_int_equal(sh->counter, per * NPROC);
        assert_int_equal(ipcp_load_relaxed64(&sh->violations), 0);
        assert_int_equal(ipcp_load_relaxed64(&sh->died_reports), 0);
        assert_int_equal(ipcp_lock_deaths(ctx), 0);
        munmap(sh, sizeof(*sh));
        destroy_and_check(ctx);
    }
}

static void *thread_main(void *p)
{
    struct worker_arg *a = p;
    a->rc = worker(a);
    return NULL;
}

/* Threads of one process share the one mapping: the TSan-visible case. */
static int run_threads(struct ipcp_lock_ctx *ctx0, struct ipcp_lock_ctx *ctx1, int nthreads,
                       uint64_t iters, struct cs_shared *sh)
{
    pthread_t t[8];
    struct worker_arg args[8];
    for (int i = 0; i < nthreads; i++) {
        args[i] = (struct worker_arg){i % 2 ? ctx1 : ctx0, sh, -1, -1, (uint32_t)i, iters, -1};
        if (pthread_create(&t[i], NULL, thread_main, &args[i]) != 0) return -1;
    }
    int bad = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
        if (args[i].rc != 0) bad = args[i].rc;
    }
    return bad;
}

static void test_mutex_threads(void **s)
{
    (void)s;
    enum { NT = 4, ITERS = 5000 };
    for (int k = IPCP_LOCK_KIND_FIRST; k <= IPCP_LOCK_KIND_LAST; k++) {
        struct ipcp_lock_ctx *ctx = make(k, NT, "");
        struct cs_shared *sh = calloc(1, sizeof(*sh));
        assert_non_null(sh);
        int rc = run_threads(ctx, ctx, NT, ITERS, sh);
        if (rc != 0) fail_msg("%s: a thread failed with %d", kname(k), rc);
        assert_int_equal(sh->counter, NT * ITERS);
        assert_int_equal(ipcp_load_relaxed64(&sh->violations), 0);
        free(sh);
        destroy_and_check(ctx);
    }
}

/* ---- holder death ----------------------------------------------------------------------- */

struct death_shared {
    _Atomic int64_t rc_plus; /* waiter's lock() result + 1000, 0 until it returned */
    _Atomic int64_t done_ns;
};

struct waiter_arg {
    struct ipcp_lock_ctx *ctx;
    struct death_shared *ds;
    int ready_fd;
};

static int waiter(void *p)
{
    struct waiter_arg *a = p;
    struct ipcp_lock *h;
    if (ipcp_lock_open(a->ctx, 0, &h) != 0) return 10;
    if (write(a->ready_fd, "W", 1) != 1) return 11;
    int rc = ipcp_lock_lock(h, 10000);
    atomic_store(&a->ds->done_ns, ipcp__now_ns());
    atomic_store(&a->ds->rc_plus, rc + 1000);
    if (rc >= 0 && ipcp_lock_unlock(h) != 0) return 12;
    ipcp_lock_close(h);
    return 0;
}

static void test_holder_killed(void **s)
{
    (void)s;
    struct death_shared *ds =
        mmap(NULL, sizeof(*ds), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(ds != MAP_FAILED);
    for (int k = IPCP_LOCK_KIND_FIRST; k <= IPCP_LOCK_KIND_LAST; k++) {
        const struct ipcp_lock_info *info = ipcp_lock_info((enum ipcp_lock_kind)k);
        struct ipcp_lock_ctx *ctx = make(k, 3, "");
        memset(ds, 0, sizeof(*ds));
        struct pipes pp;
        struct holder_arg ha;
        pid_t hp = start_holder(ctx, &pp, &ha);
        struct ipcp_lock *h;
        assert_int_equal(ipcp_lock_open(ctx, 2, &h), 0);
        if (info->survives_death) {
            /* a waiter already blocked in lock() when the holder is killed */
            struct waiter_arg wa = {ctx, ds, pp.ready[1]};
            pid_t wp = tu_spawn(waiter, &wa);
            char c;
            assert_int_equal(read(pp.ready[0], &c, 1), 1);
            assert_int_equal(c, 'W');
            int64_t kill_ns = ipcp__now_ns();
            assert_int_equal(kill(hp, SIGKILL), 0);
            tu_wait_ok(wp, 15000);
            int64_t rc = atomic_load(&ds->rc_plus) - 1000;
            int64_t took = (atomic_load(&ds->done_ns) - kill_ns) / 1000000;
            print_message("%-13s holder killed: waiter got %lld after %lld ms\n", kname(k),
                          (long long)rc, (long long)took);
            assert_int_equal(rc, 1);
            assert_true(took < 1000);
            assert_int_equal(ipcp_lock_deaths(ctx), 1);
            /* afterwards a plain lock */
            assert_int_equal(ipcp_lock_lock(h, 1000), 0);
            assert_int_equal(ipcp_lock_unlock(h), 0);
        } else {
            assert_int_equal(ipcp_lock_lock(h, 50), -ETIMEDOUT); /* alive: a plain timeout */
            assert_int_equal(kill(hp, SIGKILL), 0);
            int st = tu_wait(hp, 5000);
            assert_true(WIFSIGNALED(st));
            assert_int_equal(ipcp_lock_lock(h, 100), -IPCP_E_PEERDEAD);
            assert_int_equal(ipcp_lock_trylock(h), -EBUSY);
        }
        tu_wait(hp, 5000);
        ipcp_lock_close(h);
        close_pipes(&pp);
        destroy_and_check(ctx);
    }
    munmap(ds, sizeof(*ds));
}

/* ---- ThreadSanitizer, in a re-executed child -------------------------------------------- */

/* Child mode: "--tsan-child good|broken <kind>". good: 4 threads on one lock; broken: threads
 * alternate between two locks of the same kind, so pairs of them race on the counter. */
static int tsan_child(const char *mode, const char *kind_name)
{
    int k = ipcp_lock_kind_from_name(kind_name);
    if (k < 0) return 2;
    int broken = strcmp(mode, "broken") == 0;
    struct ipcp_lock_cfg cfg = {.run_id = NULL, .workers = 8, .options = ""};
    struct ipcp_lock_ctx *a = NULL, *b = NULL;
    if (ipcp_lock_create((enum ipcp_lock_kind)k, &cfg, &a) != 0) return 3;
    if (broken && ipcp_lock_create((enum ipcp_lock_kind)k, &cfg, &b) != 0) return 3;
    struct cs_shared *sh = calloc(1, sizeof(*sh));
    int rc = run_threads(a, broken ? b : a, 4, broken ? 2000 : 3000, sh);
    int lost = sh->counter != (broken ? 8000u : 12000u);
    free(sh);
    ipcp_lock_destroy(a);
    ipcp_lock_destroy(b);
    if (rc != 0) return 4;
    return broken || !lost ? 0 : 5;
}

#ifdef IPCP_TSAN
/* Runs this binary as a tsan child; returns its exit status and collects its stderr. The
 * child runs with halt_on_error=0 so that it still destroys its locks after a report (TSan
 * then exits with exitcode at the end); nothing of it may be left. */
static int run_child(const char *mode, const char *kind, char *out, size_t cap)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 2);
        char *argv[] = {"lock_test", "--tsan-child", (char *)mode, (char *)kind, NULL};
        char *envp[] = {"TSAN_OPTIONS=halt_on_error=0:exitcode=66:history_size=7", NULL};
        execve("/proc/self/exe", argv, envp);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    int64_t t0 = ipcp__now_ns();
    while (ms_since(t0) < 60000 && poll(&pfd, 1, 1000) >= 0) {
        char tmp[4096];
        ssize_t n = read(p[0], tmp, sizeof(tmp));
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            break;
        }
        size_t take = (size_t)n < cap - 1 - len ? (size_t)n : cap - 1 - len;
        memcpy(out + len, tmp, take);
        len += take;
    }
    out[len] = '\0';
    close(p[0]);
    int st = tu_wait(pid, 60000);
    const char *fmt[] = {"ipcp.lock.%ld.", "ipcp.mqlock.%ld.", "sem.ipcp.psem.%ld."};
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(fmt); i++) {
        char prefix[64];
        snprintf(prefix, sizeof(prefix), fmt[i], (long)pid);
        if (tu_shm_count(prefix) != 0) fail_msg("the %s child left %s* behind", kind, prefix);
    }
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

static void test_tsan_correct_lock_is_quiet(void **s)
{
    (void)s;
    static char out[1 << 16];
    for (int k = IPCP_LOCK_KIND_FIRST; k <= IPCP_LOCK_KIND_LAST; k++) {
        int st = run_child("good", kname(k), out, sizeof(out));
        if (st != 0 || strstr(out, "ThreadSanitizer") != NULL)
            fail_msg("%s: exit %d, TSan said:\n%s", kname(k), st, out);
    }
}

static void test_tsan_wrong_lock_is_reported(void **s)
{
    (void)s;
    static char out[1 << 16];
    for (int k = IPCP_LOCK_KIND_FIRST; k <= IPCP_LOCK_KIND_LAST; k++) {
        int st = run_child("broken", kname(k), out, sizeof(out));
        if (st != 66 || strstr(out, "WARNING: ThreadSanitizer: data race") == NULL)
            fail_msg("%s: a race between two locks went unreported (exit %d):\n%s", kname(k), st,
                     out);
    }
}
#endif

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--tsan-child") == 0) return tsan_child(argv[2], argv[3]);
    const struct CMUnitTest tests[] = {
#ifdef IPCP_TSAN
        cmocka_unit_test(test_tsan_correct_lock_is_quiet),
        cmocka_unit_test(test_tsan_wrong_lock_is_reported),
#endif
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_states),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_inherited_handle),
        cmocka_unit_test(test_mutex_processes),
        cmocka_unit_test(test_holder_killed),
        cmocka_unit_test(test_mutex_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
