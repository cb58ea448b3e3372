/* lock_bench.c - every lock kind of lock.h side by side, against a raw POSIX mq token.
 *
 *   lock_bench [--quick] [--procs N] [--seconds S] [--reps R]
 *
 * Uncontended: ns per lock + unlock in one process. Contended: N processes (default 8) lock,
 * bump a shared counter and unlock for S seconds (default 0.5); acquisitions per second of all
 * of them, and the smallest process's share of the fair share (1.00 = perfectly even). Each
 * figure is the median of R rounds (default 5) that interleave the kinds. The baseline
 * is the same loop with a bare token in a queue: mq_timedreceive + mq_send, no record, no
 * recovery. Figures, not a test: it prints, it never fails on a number. */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "ipcproof/err.h"
#include "ipcproof/lock.h"

#define MAX_PROCS 64
#define OP_MS     10000 /* every wait is bounded: a stuck run fails, never hangs */

struct shared {
    _Atomic uint32_t stop;
    volatile uint64_t counter;
    uint64_t count[MAX_PROCS];
};

/* The baseline: a token in a queue, nothing else. */
struct rawmq {
    char name[64];
    mqd_t q;
};

static int rawmq_create(struct rawmq *r)
{
    snprintf(r->name, sizeof(r->name), "/ipcp.bench.%ld.rawmq", (long)getpid());
    struct mq_attr a = {.mq_maxmsg = 1, .mq_msgsize = 8};
    r->q = mq_open(r->name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, &a);
    if (r->q == (mqd_t)-1) return -errno;
    uint64_t tok = 1;
    if (mq_send(r->q, (const char *)&tok, sizeof(tok), 0) < 0) {
        int e = errno;
        mq_close(r->q);
        mq_unlink(r->name);
        return -e;
    }
    return 0;
}

static int rawmq_lock(struct rawmq *r)
{
    uint64_t tok;
    struct timespec ts = ipcp__realtime_after_ms(OP_MS);
    return mq_timedreceive(r->q, (char *)&tok, sizeof(tok), NULL, &ts) == sizeof(tok) ? 0 : -1;
}

static int rawmq_unlock(struct rawmq *r)
{
    uint64_t tok = 1;
    return mq_send(r->q, (const char *)&tok, sizeof(tok), 0) == 0 ? 0 : -1;
}

/* kind 0 = the raw baseline, else an ipcp_lock_kind */
struct subject {
    int kind;
    struct rawmq raw;
    struct ipcp_lock_ctx *ctx;
    struct ipcp_lock *h;
};

static const char *subject_name(int kind)
{
    return kind == 0 ? "raw mq token" : ipcp_lock_info((enum ipcp_lock_kind)kind)->name;
}

static int subject_create(struct subject *s, int kind, uint32_t workers)
{
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    if (kind == 0) return rawmq_create(&s->raw);
    struct ipcp_lock_cfg cfg = {.run_id = NULL, .workers = workers, .options = ""};
    return ipcp_lock_create((enum ipcp_lock_kind)kind, &cfg, &s->ctx);
}

static int subject_open(struct subject *s, uint32_t index)
{
    return s->kind == 0 ? 0 : ipcp_lock_open(s->ctx, index, &s->h);
}

static int subject_cycle(struct subject *s, struct shared *sh)
{
    if (s->kind == 0) {
        if (rawmq_lock(&s->raw) < 0) return -1;
        sh->counter++;
        return rawmq_unlock(&s->raw);
    }
    if (ipcp_lock_lock(s->h, OP_MS) != 0) return -1;
    sh->counter++;
    return ipcp_lock_unlock(s->h) == 0 ? 0 : -1;
}

static void subject_destroy(struct subject *s)
{
    if (s->kind == 0) {
        mq_close(s->raw.q);
        mq_unlink(s->raw.name);
        return;
    }
    ipcp_lock_close(s->h);
    ipcp_lock_destroy(s->ctx);
}

static double uncontended_ns(int kind, long n)
{
    struct subject s;
    struct shared sh;
    memset(&sh, 0, sizeof(sh));
    if (subject_create(&s, kind, 1) < 0 || subject_open(&s, 0) < 0) return -1;
    for (long i = 0; i < n / 10; i++) /* warm up */
        if (subject_cycle(&s, &sh) < 0) return -1;
    int64_t t0 = ipcp__now_ns();
    for (long i = 0; i < n; i++)
        if (subject_cycle(&s, &sh) < 0) return -1;
    int64_t dt = ipcp__now_ns() - t0;
    subject_destroy(&s);
    return (double)dt / (double)n;
}

/* Contended: total acquisitions per second, *min_share = smallest count / mean count. */
static double contended(int kind, int procs, double seconds, double *min_share)
{
    struct shared *sh =
        mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) return -1;
    struct subject s;
    if (subject_create(&s, kind, (uint32_t)procs) < 0) {
        munmap(sh, sizeof(*sh));
        return -1;
    }
    int go[2];
    if (pipe2(go, O_CLOEXEC) < 0) {
        subject_destroy(&s);
        munmap(sh, sizeof(*sh));
        return -1;
    }
    pid_t pids[MAX_PROCS];
    for (int i = 0; i < procs; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            close(go[1]);
            char c;
            while (read(go[0], &c, 1) < 0 && errno == EINTR) {
            }
            if (subject_open(&s, (uint32_t)i) < 0) _exit(2);
            uint64_t n = 0;
            /* acquire: pairs with the parent's release store of stop */
            while (!ipcp_load_acquire32(&sh->stop)) {
                if (subject_cycle(&s, sh) < 0) _exit(3);
                n++;
            }
            sh->count[i] = n;
            _exit(0);
        }
    }
    close(go[1]);
    int64_t t0 = ipcp__now_ns();
    struct timespec d = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&d, NULL);
    ipcp_store_release32(&sh->stop, 1);
    int ok = 1;
    for (int i = 0; i < procs; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) ok = 0;
    }
    int64_t dt = ipcp__now_ns() - t0;
    close(go[0]);
    uint64_t total = 0, min = UINT64_MAX;
    for (int i = 0; i < procs; i++) {
        total += sh->count[i];
        if (sh->count[i] < min) min = sh->count[i];
    }
    *min_share = total ? (double)min * procs / (double)total : 0;
    if (s.kind != 0) s.h = NULL; /* opened in the children only */
    subject_destroy(&s);
    munmap(sh, sizeof(*sh));
    return ok ? (double)total / ((double)dt / 1e9) : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define NSUBJ   (IPCP_LOCK_KIND_LAST + 1)
#define MAXREPS 15

int main(int argc, char **argv)
{
    long n = 100000;
    int procs = 8, reps = 5;
    double seconds = 0.5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            n = 20000;
            seconds = 0.2;
            reps = 1;
        } else if (strcmp(argv[i], "--procs") == 0 && i + 1 < argc) {
            procs = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--quick] [--procs N] [--seconds S] [--reps R]\n", argv[0]);
            return 2;
        }
    }
    if (procs < 1 || procs > MAX_PROCS || seconds <= 0 || reps < 1 || reps > MAXREPS) return 2;
    printf("lock_bench: %d x (%ld uncontended cycles; %d processes contending for %.1f s), %ld "
           "CPUs, medians\n",
           reps, n, procs, seconds, sysconf(_SC_NPROCESSORS_ONLN));
    /* Rounds interleave the kinds so that a change of machine load hits all of them alike. */
    static double ns[NSUBJ][MAXREPS], tp[NSUBJ][MAXREPS], share[NSUBJ][MAXREPS];
    int failed[NSUBJ] = {0};
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < NSUBJ; k++) {
            ns[k][r] = uncontended_ns(k, n);
            tp[k][r] = contended(k, procs, seconds, &share[k][r]);
            if (ns[k][r] < 0 || tp[k][r] < 0) failed[k] = 1;
        }
    printf("%-14s %12s %9s %14s %9s %10s\n", "kind", "uncont. ns", "x raw", "contended/s", "x raw",
           "min share");
    double base_ns = median(ns[0], reps), base_tp = median(tp[0], reps);
    int rc = 0;
    for (int k = 0; k < NSUBJ; k++) {
        if (failed[k]) {
            printf("%-14s failed\n", subject_name(k));
            rc = 1;
            continue;
        }
        double u = median(ns[k], reps), t = median(tp[k], reps);
        printf("%-14s %12.0f %9.2f %14.0f %9.2f %10.2f\n", subject_name(k), u, u / base_ns, t,
               t / base_tp, median(share[k], reps));
    }
    return rc;
}
