/* lock.c - the lock family of `ipcproof bench` (bench.h): each kind of lock.h, uncontended (ns
 * per lock + unlock in one process) and contended (two processes for the same time,
 * acquisitions per second), against a raw POSIX mq token and a raw futex mutex (raw.c). Every
 * critical section increments a counter that is deliberately not atomic; a run fails when the
 * counter does not match the acquisitions. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench.h"
#include "atomics.h"
#include "ipcproof/err.h"
#include "ipcproof/lock.h"

#define LOCK_MAXW 8 /* contending processes at most */

/* The kinds a lock row measures: the two raw baselines, or a kind of lock.h. */
enum { LK_RAWMQ = -1, LK_RAWFUTEX = -2 };

static const char *lk_name(int kind)
{
    if (kind == LK_RAWMQ) return "raw mq token";
    if (kind == LK_RAWFUTEX) return "raw futex mutex";
    const struct ipcp_lock_info *i = ipcp_lock_info((enum ipcp_lock_kind)kind);
    return i ? i->name : "?";
}

/* The shared page of a lock run: the futex word, and the critical section's probe. */
struct lockshm {
    _Alignas(64) _Atomic uint32_t futex;
    _Alignas(64) volatile uint64_t counter; /* not atomic on purpose: lost updates would show */
    _Alignas(64) _Atomic uint32_t stop;     /* contended runs: the parent ends the run */
    _Alignas(64) uint64_t acq[LOCK_MAXW];   /* acquisitions of each contended worker */
};

struct lockrun {
    int kind;
    struct lockshm *sh;
    mqd_t q;
    struct ipcp_lock_ctx *ctx; /* created before the fork */
    struct ipcp_lock *h;       /* opened in each process (lockrun_attach) */
};

/* Creates the lock (before any fork). */
static int lockrun_open(struct lockrun *l, int kind, uint32_t workers, char *err, size_t cap)
{
    memset(l, 0, sizeof(*l));
    l->kind = kind;
    l->q = (mqd_t)-1;
    l->sh = mmap(NULL, sizeof(*l->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (l->sh == MAP_FAILED) {
        l->sh = NULL;
        return bench_fail(err, cap, "mmap: %s", strerror(errno));
    }
    int rc = 0;
    if (kind == LK_RAWMQ) {
        l->q = bench_mq_token_open(err, cap);
        if (l->q == (mqd_t)-1) rc = -1;
    } else if (kind > 0) {
        struct ipcp_lock_cfg cfg = {.run_id = NULL, .workers = workers, .options = ""};
        int e = ipcp_lock_create((enum ipcp_lock_kind)kind, &cfg, &l->ctx);
        if (e < 0)
            rc = bench_fail(err, cap, "%s: lock_create: %s", lk_name(kind), ipcp_strerror(e));
    }
    if (rc < 0) {
        munmap(l->sh, sizeof(*l->sh));
        l->sh = NULL;
    }
    return rc;
}

/* Opens worker `index`'s endpoint in this process (after the fork). */
static int lockrun_attach(struct lockrun *l, uint32_t index)
{
    return l->kind > 0 ? ipcp_lock_open(l->ctx, index, &l->h) : 0;
}

static void lockrun_detach(struct lockrun *l)
{
    if (l->h) ipcp_lock_close(l->h);
    l->h = NULL;
}

static void lockrun_close(struct lockrun *l)
{
    lockrun_detach(l);
    if (l->ctx) ipcp_lock_destroy(l->ctx);
    l->ctx = NULL;
    if (l->q != (mqd_t)-1) mq_close(l->q);
    if (l->sh) munmap(l->sh, sizeof(*l->sh));
    l->q = (mqd_t)-1;
    l->sh = NULL;
}

/* One lock + critical section + unlock. */
static int lockrun_cycle(struct lockrun *l)
{
    switch (l->kind) {
    case LK_RAWMQ:
        if (bench_mq_token_lock(l->q) < 0) return -1;
        l->sh->counter++;
        return bench_mq_token_unlock(l->q);
    case LK_RAWFUTEX:
        if (bench_rawfutex_lock(&l->sh->futex) < 0) return -1;
        l->sh->counter++;
        bench_rawfutex_unlock(&l->sh->futex);
        return 0;
    default:
        if (ipcp_lock_lock(l->h, B_OP_MS) != 0) return -1; /* 1 (a death) is a failure here */
        l->sh->counter++;
        return ipcp_lock_unlock(l->h) == 0 ? 0 : -1;
    }
}

/* Uncontended: ns per lock + unlock in one process. */
static int lock_uncontended(int kind, long n, double v[2], char *err, size_t cap)
{
    struct lockrun l;
    if (lockrun_open(&l, kind, 2, err, cap) < 0) return -1;
    int rc = lockrun_attach(&l, 0);
    if (rc < 0) {
        lockrun_close(&l);
        return bench_fail(err, cap, "%s: open: %s", lk_name(kind), ipcp_strerror(rc));
    }
    bench_watchdog_arm();
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        if (lockrun_cycle(&l) < 0) {
            bench_watchdog_disarm();
            lockrun_close(&l);
            return bench_fail(err, cap, "%s: lock/unlock %ld failed", lk_name(kind), i);
        }
    }
    int64_t dt = bench_now_ns() - t0;
    bench_watchdog_disarm();
    lockrun_close(&l);
    v[0] = (double)dt / (double)n;
    return 0;
}

struct lockjob {
    struct lockrun *l;
    struct bench_gate *g;
    int k;
};

static int lock_worker(void *arg)
{
    struct lockjob *j = arg;
    if (lockrun_attach(j->l, (uint32_t)j->k) < 0) return 11;
    if (bench_gate_child_ready(j->g) < 0) return 12;
    uint64_t n = 0;
    /* Acquire: pairs with the parent's release of stop (nothing else is ordered by it). */
    while (!ipcp_load_acquire32(&j->l->sh->stop)) {
        if (lockrun_cycle(j->l) < 0) return 13;
        n++;
    }
    j->l->sh->acq[j->k] = n; /* read by the parent after our 'd' through the gate pipe */
    lockrun_detach(j->l);
    return bench_gate_child_done(j->g) < 0 ? 14 : 0;
}

/* Contended: nw processes take the lock in a loop for the same time; acquisitions per second
 * in total, and the smallest worker's share of them (fair: 1/nw). All must be running for the
 * lock to be contended: on an overloaded machine some often are not (see docs/bench.md). Not a
 * pair: nw workers, a fixed time. */
static int lock_contended(int kind, int nw, double v[2], char *err, size_t cap)
{
    struct lockrun l;
    if (nw < 2 || nw > LOCK_MAXW) return bench_fail(err, cap, "%d contending workers", nw);
    if (lockrun_open(&l, kind, (uint32_t)nw, err, cap) < 0) return -1;
    struct bench_gate g;
    int rc = bench_gate_open(&g), ok = 0;
    pid_t pid[LOCK_MAXW];
    struct lockjob j[LOCK_MAXW];
    for (int k = 0; k < LOCK_MAXW; k++) {
        pid[k] = -1;
        j[k] = (struct lockjob){.l = &l, .g = &g, .k = k};
    }
    if (rc < 0) {
        lockrun_close(&l);
        return bench_fail(err, cap, "pipe: %s", ipcp_strerror(rc));
    }
    for (int k = 0; k < nw; k++) {
        pid[k] = bench_spawn(lock_worker, &j[k]);
        if (pid[k] < 0) {
            bench_fail(err, cap, "fork: %s", strerror(errno));
            goto out;
        }
    }
    bench_gate_parent(&g);
    if (bench_gate_wait(&g, nw, B_OP_MS) < 0) {
        bench_fail(err, cap, "lock workers did not start");
        goto out;
    }
    bench_watchdog_arm();
    int64_t t0 = bench_now_ns();
    if (bench_gate_go(&g, nw) < 0) {
        bench_fail(err, cap, "lock workers gone");
        goto out;
    }
    double run_s = bench_mode == BENCH_SMOKE ? 0.02 : bench_calib_target_s();
    struct timespec ts = {0, (long)(run_s * 1e9)}; /* the length of the run, not a sync */
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !bench_expired) {
    }
    /* Release: publishes the stop flag (the workers' loads acquire it). */
    ipcp_store_release32(&l.sh->stop, 1);
    if ((rc = bench_gate_wait(&g, nw, B_RUN_LIMIT_S * 1000)) < 0) {
        bench_fail(err, cap, "lock workers did not finish: %s", ipcp_strerror(rc));
        goto out;
    }
    int64_t dt = bench_now_ns() - t0;
    for (int k = 0; k < nw; k++) {
        int st = bench_reap(pid[k], B_REAP_MS);
        pid[k] = -1;
        if (st != 0) {
            bench_fail(err, cap, "lock worker exited with status %d", st);
            goto out;
        }
    }
    uint64_t total = 0, least = UINT64_MAX;
    for (int k = 0; k < nw; k++) {
        total += l.sh->acq[k];
        if (l.sh->acq[k] < least) least = l.sh->acq[k];
    }
    if (l.sh->counter != total) {
        bench_fail(err, cap,
                   "%s: mutual exclusion broken (counter %" PRIu64 ", expected %" PRIu64 ")",
                   lk_name(kind), (uint64_t)l.sh->counter, total);
        goto out;
    }
    v[0] = (double)total / ((double)dt / 1e9);
    v[1] = (double)least / (double)(total ? total : 1); /* the smallest worker's share */
    ok = 1;
out:
    bench_watchdog_disarm();
    for (int k = 0; k < LOCK_MAXW; k++)
        bench_kill_reap(pid[k]);
    bench_gate_close(&g);
    lockrun_close(&l);
    return ok ? 0 : -1;
}

static int lock_measure(const struct bench_case *c, int kind, double v[2], char *err, size_t cap)
{
    return c->variant ? lock_contended(kind, c->variant, v, err, cap)
                      : lock_uncontended(kind, c->count, v, err, cap);
}

static int run_proto(const struct bench_case *c, int side, double v[2], char *err, size_t cap)
{
    (void)side;
    return lock_measure(c, c->xk, v, err, cap);
}

static int run_rawmq(const struct bench_case *c, int side, double v[2], char *err, size_t cap)
{
    (void)side;
    return lock_measure(c, LK_RAWMQ, v, err, cap);
}

static int run_rawfutex(const struct bench_case *c, int side, double v[2], char *err, size_t cap)
{
    (void)side;
    return lock_measure(c, LK_RAWFUTEX, v, err, cap);
}

static const char *lock_inst(int xk)
{
    return lk_name(xk);
}

static const char *lock_names(const struct bench_def *d, int side)
{
    return lk_name(side == 0 ? d->xk : side == 1 ? LK_RAWMQ : LK_RAWFUTEX);
}

#define LOCK_HOW                                                                                   \
    {                                                                                              \
        {.run = run_proto}, {.tag = "mq", .run = run_rawmq},                                       \
        {                                                                                          \
            .tag = "futex", .run = run_rawfutex                                                    \
        }                                                                                          \
    }
/* Uncontended: a count of lock + unlock pairs; contended (variant: the processes): a fixed
 * time. */
#define LOCK_CONTENDED(lk, stem_, nw)                                                              \
    {                                                                                              \
        .stem = stem_, .kind = K_SCALAR, .xk = lk, .variant = nw, .unit = "acq/s",                 \
        .extra = "min_share", .fixed = 1, .how = LOCK_HOW, .inst = lock_inst, .names = lock_names  \
    }
#define LOCK_ROWS(lk)                                                                              \
    {.stem = "lock-%s/uncontended",                                                                \
     .kind = K_SCALAR,                                                                             \
     .xk = lk,                                                                                     \
     .count = {200000},                                                                            \
     .floor = 200,                                                                                 \
     .unit = "ns",                                                                                 \
     .how = LOCK_HOW,                                                                              \
     .inst = lock_inst,                                                                            \
     .names = lock_names},                                                                         \
        LOCK_CONTENDED(lk, "lock-%s/contended", 2), LOCK_CONTENDED(lk, "lock-%s/contended-8", 8)

static const struct bench_def lock_defs[] = {
    LOCK_ROWS(IPCP_LOCK_MQ_TOKEN),     LOCK_ROWS(IPCP_LOCK_POSIX_SEM),
    LOCK_ROWS(IPCP_LOCK_ROBUST_MUTEX), LOCK_ROWS(IPCP_LOCK_SYSV_SEM),
    LOCK_ROWS(IPCP_LOCK_OFD),
};

const struct bench_family bench_lock = {"lock", lock_defs, IPCP_ARRAY_SIZE(lock_defs)};
