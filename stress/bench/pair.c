/* pair.c - the skeleton every two-process measurement of `ipcproof bench` shares (bench.h):
 * start gate, fork, watchdog, go, the loop, reap, the rate; and the helpers of every family.
 *
 * Nothing can hang: every protocol call has a timeout, the parent arms an alarm around each run
 * (SIGALRM without SA_RESTART: a blocked call returns EINTR, and every loop checks
 * bench_expired), each child dies with its parent (PR_SET_PDEATHSIG) or when its own alarm
 * fires, and children are reaped with a deadline. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "atomics.h"
#include "ipcproof/err.h"
#include "spawn.h"
#include "stats.h"

volatile sig_atomic_t bench_expired;

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_on_alarm(int sig)
{
    (void)sig;
    bench_expired = 1;
}

void bench_watchdog_arm(void)
{
    bench_expired = 0;
    alarm(B_RUN_LIMIT_S);
}

void bench_watchdog_disarm(void)
{
    alarm(0);
}

int bench_fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* Buffers start on a cache line: glibc's memcpy can be many times slower when source and
 * destination are misaligned relative to each other (rep movsb on some AMD CPUs), and the
 * benchmark should not add that penalty itself. */
void *bench_alloc(size_t n)
{
    return aligned_alloc(IPCP_CACHELINE, (n + IPCP_CACHELINE - 1) & ~(size_t)(IPCP_CACHELINE - 1));
}

/* Makes the compiler believe p's bytes are used. */
void bench_escape(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* One look of a spinning wait that found nothing: a pause for the first B_SPIN looks, then a
 * yield of the CPU at each look (on a loaded machine the peer may not be running until we let
 * it). -1 when the watchdog fired. */
#define B_SPIN 1024u /* ipcp_ring's default spin before it sleeps */
int bench_spin_pause(unsigned *n)
{
    if (*n < B_SPIN) {
        ++*n;
        cpu_relax();
        return 0;
    }
    if (bench_expired) return -1;
    sched_yield();
    return 0;
}

long bench_scaled(long full, long floor)
{
    long n = full;
    if (bench_mode == BENCH_QUICK) n = full / 4;
    if (bench_mode == BENCH_SMOKE) n = full / 100;
    return n < floor ? floor : n;
}

double bench_calib_target_s(void)
{
    return bench_mode == BENCH_FULL ? 0.25 : 0.05;
}

const char *bench_size_label(size_t size)
{
    switch (size) {
    case 64:
        return "64B";
    case 4096:
        return "4KiB";
    case 65536:
        return "64KiB";
    case 1u << 20:
        return "1MiB";
    default:
        return "?";
    }
}

/* ---- children ------------------------------------------------------------------------------ */

/* fork() + fn(arg) in the child, which exits with fn's value (spawn.h). The child dies with its
 * parent and after B_CHILD_S seconds in any case (default SIGALRM action). */
static struct {
    int (*fn)(void *);
    void *arg;
} child_job;

static int child_main(void *unused)
{
    (void)unused;
    signal(SIGALRM, SIG_DFL);
    alarm(B_CHILD_S);
    return child_job.fn(child_job.arg);
}

pid_t bench_spawn(int (*fn)(void *), void *arg)
{
    child_job.fn = fn; /* read by the child, in its copy of our memory */
    child_job.arg = arg;
    struct st_child_opts o = {.out_fd = -1, .die_with_parent = 1};
    pid_t pid = st_spawn_fn(&o, child_main, NULL);
    return pid < 0 ? -1 : pid;
}

/* Waits for pid up to timeout_ms (SIGKILL after that). Returns its exit code (0..255), 128 +
 * signal, or -1 when it had to be killed. */
int bench_reap(pid_t pid, int timeout_ms)
{
    return st_wait_timeout(pid, timeout_ms / 1000.0);
}

void bench_kill_reap(pid_t pid)
{
    st_kill_reap(pid);
}

/* ---- the gate: each child writes 'r' when set up, waits for one 'g', may write 'd' ---------- */

void bench_close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

int bench_gate_open(struct bench_gate *g)
{
    g->c2p[0] = g->c2p[1] = g->p2c[0] = g->p2c[1] = -1;
    if (pipe2(g->c2p, O_CLOEXEC) < 0) return -errno;
    if (pipe2(g->p2c, O_CLOEXEC) < 0) {
        int rc = -errno;
        bench_gate_close(g);
        return rc;
    }
    return 0;
}

void bench_gate_close(struct bench_gate *g)
{
    bench_close_fd(&g->c2p[0]);
    bench_close_fd(&g->c2p[1]);
    bench_close_fd(&g->p2c[0]);
    bench_close_fd(&g->p2c[1]);
}

/* In the parent after the fork(s): keep only the parent's ends. */
void bench_gate_parent(struct bench_gate *g)
{
    bench_close_fd(&g->c2p[1]);
    bench_close_fd(&g->p2c[0]);
}

int bench_gate_child_ready(struct bench_gate *g)
{
    bench_close_fd(&g->c2p[0]);
    bench_close_fd(&g->p2c[1]);
    char ch = 'r';
    if (write(g->c2p[1], &ch, 1) != 1) return -1;
    for (;;) {
        ssize_t n = read(g->p2c[0], &ch, 1);
        if (n == 1) return ch == 'g' ? 0 : -1;
        if (n < 0 && errno == EINTR) continue;
        return -1;
    }
}

int bench_gate_child_done(struct bench_gate *g)
{
    char ch = 'd';
    return write(g->c2p[1], &ch, 1) == 1 ? 0 : -1;
}

/* In the parent: wait for n bytes from the children (each 'r' or each 'd'). */
int bench_gate_wait(struct bench_gate *g, int n, int timeout_ms)
{
    int64_t end = bench_now_ns() + (int64_t)timeout_ms * 1000000;
    while (n > 0) {
        int left = (int)((end - bench_now_ns()) / 1000000);
        if (left <= 0 || bench_expired) return -ETIMEDOUT;
        struct pollfd p = {.fd = g->c2p[0], .events = POLLIN};
        int pr = poll(&p, 1, left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) return -errno;
        if (pr == 0) continue;
        char buf[8];
        ssize_t r = read(g->c2p[0], buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -EPIPE; /* a child exited before its byte */
        n -= (int)r;
    }
    return 0;
}

int bench_gate_go(struct bench_gate *g, int n)
{
    char buf[16];
    if (n < 0 || n > (int)sizeof(buf)) return -EINVAL;
    memset(buf, 'g', sizeof(buf));
    return write(g->p2c[1], buf, (size_t)n) == n ? 0 : -EPIPE;
}

int bench_child_ready(struct bench_side *s)
{
    return bench_gate_child_ready(&s->g);
}

/* ---- the pair runner ------------------------------------------------------------------------ */

/* Round trips: c->count at most, the first 5% as warm-up, and no longer than the budget (a
 * loaded machine can make a spinning round trip take a scheduler tick), but not before min
 * samples (the watchdog still bounds it); warm-up ends after warm round trips or a tenth of the
 * budget. */
static long warmup_of(long n)
{
    long w = n / 20;
    return w < 10 ? 10 : w;
}

static int64_t rtt_budget_ns(void)
{
    return bench_mode == BENCH_FULL    ? 1000000000LL
           : bench_mode == BENCH_QUICK ? 150000000LL
                                       : 50000000LL;
}

static const struct bench_pair *child_pair;

static int pair_child(void *arg)
{
    return child_pair->child(arg);
}

/* The measured loop: the rate of c->count messages (v[0] MB/s, v[1] msgs/s), or the p50 and
 * p99 in us of the round trips (lat has room for c->count). */
static int pair_loop(const struct bench_case *c, const struct bench_pair *p, struct bench_side *s,
                     int64_t *lat, double v[2])
{
    if (c->kind == K_TPUT) {
        int64_t t0 = bench_now_ns();
        if (bench_gate_go(&s->g, 1) < 0) return bench_fail(s->err, s->cap, "child gone");
        for (long i = 0; i < c->count; i++)
            if (p->step(s, i) < 0) return -1;
        int64_t dt = bench_now_ns() - t0;
        if (dt <= 0) dt = 1;
        v[0] = (double)c->size * (double)c->count / ((double)dt / 1e9) / 1e6;
        v[1] = (double)c->count / ((double)dt / 1e9);
        return 0;
    }
    if (bench_gate_go(&s->g, 1) < 0) return bench_fail(s->err, s->cap, "echo process gone");
    long warm = warmup_of(c->count), got = 0;
    int64_t now = bench_now_ns(), b = rtt_budget_ns();
    int64_t end = now + b, warm_end = now + b / 10;
    long min = c->count < 100 ? c->count : 100;
    for (long i = 0; got < c->count; i++) {
        int64_t t0 = bench_now_ns();
        if (t0 > end && got >= min) break;
        if (p->step(s, i) < 0) return -1;
        if (i >= warm || t0 > warm_end) lat[got++] = bench_now_ns() - t0;
    }
    if (got < 1) return bench_fail(s->err, s->cap, "no round trip measured");
    stats_percentiles_ns_us(lat, (size_t)got, v);
    return 0;
}

int bench_pair_run(const struct bench_case *c, int side, const struct bench_pair *p, double v[2],
                   char *err, size_t cap)
{
    struct bench_side s = {.c = c, .side = side, .n = c->count, .err = err, .cap = cap};
    const char *who = c->kind == K_RTT ? "echo process" : "child";
    int rc = bench_gate_open(&s.g);
    if (rc < 0) return bench_fail(err, cap, "pipe: %s", ipcp_strerror(rc));
    s.st = calloc(1, p->state_size ? p->state_size : 1);
    int64_t *lat = c->kind == K_RTT ? malloc(sizeof(int64_t) * (size_t)c->count) : NULL;
    pid_t pid = -1;
    int ok = 0, have = 0;
    double res[2] = {0, 0};
    if (s.st == NULL || (c->kind == K_RTT && lat == NULL)) {
        bench_fail(err, cap, "out of memory");
        goto out;
    }
    have = 1;
    if (p->setup(&s) < 0) goto out;
    child_pair = p; /* read by the child, in its copy of our memory */
    pid = bench_spawn(pair_child, &s);
    if (pid < 0) {
        bench_fail(err, cap, "fork: %s", strerror(errno));
        goto out;
    }
    bench_gate_parent(&s.g);
    if (p->started && p->started(&s) < 0) goto out;
    if ((rc = bench_gate_wait(&s.g, 1, B_OP_MS)) < 0) {
        bench_fail(err, cap, "%s did not start (status %d)", who, bench_reap(pid, B_REAP_MS));
        pid = -1;
        goto out;
    }
    bench_watchdog_arm();
    if (pair_loop(c, p, &s, lat, res) < 0) goto out;
    if (p->stop && p->stop(&s) < 0) {
        bench_fail(err, cap, "cannot tell the %s to end", who);
        goto out;
    }
    int st = bench_reap(pid, B_REAP_MS);
    pid = -1;
    if (st != 0) {
        bench_fail(err, cap, "%s exited with status %d", who, st);
        goto out;
    }
    v[0] = res[0];
    v[1] = res[1];
    ok = 1;
out:
    bench_watchdog_disarm();
    bench_kill_reap(pid);
    if (have) p->teardown(&s);
    bench_gate_close(&s.g);
    free(s.st);
    free(lat);
    return ok ? 0 : -1;
}
