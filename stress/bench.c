/* bench.c - `ipcproof bench`: every protocol of libipcproof against its raw mechanism and the
 * physical limit, in one run.
 *
 * Each row compares a protocol (side 0) with one baseline doing the same bytes without the
 * protocol: plain write/read on the same kind of fd, memcpy bandwidth of one thread (the limit of
 * any shared-memory transfer), a raw shared-memory spin ping-pong, a raw POSIX message queue
 * token, a raw futex mutex, the stress checker with --no-verify. The sides of a row are run
 * alternately (protocol, baseline, baseline, protocol, ...) so that the noise of a shared machine
 * hits both alike, and the ratio protocol/baseline is taken per repetition: the table shows the
 * median ratio with its min and max, and the median of each side's figure.
 *
 * Every measurement is between two processes (fork) over fresh OS objects, except the single-
 * thread baselines (memcpy, uncontended locks). Nothing can hang: every protocol call has a
 * timeout, the parent arms an alarm around each run, each child dies with its parent
 * (PR_SET_PDEATHSIG) or when its own alarm fires, and children are reaped with a deadline.
 * The bench's own message queues are unlinked right after mq_open, so no name outlives a crash;
 * the protocols' named objects are destroyed after each run (`ipcproof clean` removes those of a
 * crashed one).
 *
 * A benchmark, not a test: it prints figures and exits 0 when every row was measured, whether or
 * not the aims were met. --smoke (tiny counts, one repetition) exists so that ctest can check the
 * structure of the JSON quickly; its figures mean nothing. docs/bench.md has the current table. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "bench.h"
#include "spawn.h"
#include "internal.h"
#include "ipcproof/err.h"
#include "ipcproof/fdchan.h"
#include "ipcproof/ring.h"
#include "ipcproof/xport.h"

/* Protocols added after this file appear in the table once their header exists. */
#if __has_include("ipcproof/lock.h")
#include "ipcproof/lock.h"
#define IPCP_BENCH_HAVE_LOCK 1
#else
#define IPCP_BENCH_HAVE_LOCK 0
#endif
#if __has_include("ipcproof/handoff.h")
#include "ipcproof/handoff.h"
#define IPCP_BENCH_HAVE_HANDOFF 1
#else
#define IPCP_BENCH_HAVE_HANDOFF 0
#endif

/* ---- limits ------------------------------------------------------------------------------ */

#define B_MAX_REPS    31
#define B_MAX_SIDES   3
#define B_MAX_CASES   96
#define B_MAX_ROWS    192
#define B_OP_MS       10000 /* timeout of each protocol call: a stuck run fails, never hangs */
#define B_RUN_LIMIT_S 120   /* alarm around one run in the parent */
#define B_CHILD_S     180   /* a child still alive after this is killed by its own alarm */
#define B_REAP_MS     20000 /* how long a finished run waits for its children to exit */
#define B_MAX_MSG     (1u << 20)
#define B_RING_CAP    (256u << 10)
#define B_PIECE       (64u << 10) /* raw seqpacket packet size = fdchan's fragment size */
#define B_SMALL       64u

enum bmode { M_FULL = 0, M_QUICK, M_SMOKE };
static const char *const mode_name[] = {"full", "quick", "smoke"};

struct bopts {
    enum bmode mode;
    int reps;
    const char *json;
    const char *only;
};
static struct bopts g_opt;

/* ---- time, watchdog, children ------------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static volatile sig_atomic_t g_expired;

static void on_alarm(int sig)
{
    (void)sig;
    g_expired = 1;
}

/* The parent's watchdog: SIGALRM without SA_RESTART interrupts a blocked read or write (EINTR)
 * and every loop checks g_expired. */
static void watchdog_arm(void)
{
    g_expired = 0;
    alarm(B_RUN_LIMIT_S);
}

static void watchdog_disarm(void)
{
    alarm(0);
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
static int spin_pause(unsigned *n)
{
    if (*n < B_SPIN) {
        ++*n;
        cpu_relax();
        return 0;
    }
    if (g_expired) return -1;
    sched_yield();
    return 0;
}

/* Makes the compiler believe p's bytes are used: a baseline's copies cannot be optimised away. */
static inline void escape(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

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

static pid_t spawn(int (*fn)(void *), void *arg)
{
    child_job.fn = fn; /* read by the child, in its copy of our memory */
    child_job.arg = arg;
    struct st_child_opts o = {.out_fd = -1, .die_with_parent = 1};
    pid_t pid = st_spawn_fn(&o, child_main, NULL);
    return pid < 0 ? -1 : pid;
}

/* Waits for pid up to timeout_ms (SIGKILL after that). Returns its exit code (0..255), 128 +
 * signal, or -1 when it had to be killed. */
static int reap(pid_t pid, int timeout_ms)
{
    return st_wait_timeout(pid, timeout_ms / 1000.0);
}

static void kill_reap(pid_t pid)
{
    st_kill_reap(pid);
}

/* Start and end gate between the parent and its children: each child writes 'r' when set up,
 * waits for one 'g', and may write 'd' when done. */
struct gate {
    int c2p[2];
    int p2c[2];
};

static int gate_open(struct gate *g)
{
    g->c2p[0] = g->c2p[1] = g->p2c[0] = g->p2c[1] = -1;
    if (pipe2(g->c2p, O_CLOEXEC) < 0) return -errno;
    if (pipe2(g->p2c, O_CLOEXEC) < 0) {
        int rc = -errno;
        close(g->c2p[0]);
        close(g->c2p[1]);
        g->c2p[0] = g->c2p[1] = -1;
        return rc;
    }
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static void gate_close(struct gate *g)
{
    close_fd(&g->c2p[0]);
    close_fd(&g->c2p[1]);
    close_fd(&g->p2c[0]);
    close_fd(&g->p2c[1]);
}

/* In the parent after the fork(s): keep only the parent's ends. */
static void gate_parent(struct gate *g)
{
    close_fd(&g->c2p[1]);
    close_fd(&g->p2c[0]);
}

/* In a child: announce readiness, then wait for the go. 0 or -1. */
static int gate_child_ready(struct gate *g)
{
    close_fd(&g->c2p[0]);
    close_fd(&g->p2c[1]);
    char ch = 'r';
    if (write(g->c2p[1], &ch, 1) != 1) return -1;
    for (;;) {
        ssize_t n = read(g->p2c[0], &ch, 1);
        if (n == 1) return ch == 'g' ? 0 : -1;
        if (n < 0 && errno == EINTR) continue;
        return -1;
    }
}

static int gate_child_done(struct gate *g)
{
    char ch = 'd';
    return write(g->c2p[1], &ch, 1) == 1 ? 0 : -1;
}

/* In the parent: wait for n bytes from the children (each 'r' or each 'd'). */
static int gate_wait(struct gate *g, int n, int timeout_ms)
{
    int64_t end = now_ns() + (int64_t)timeout_ms * 1000000;
    while (n > 0) {
        int left = (int)((end - now_ns()) / 1000000);
        if (left <= 0 || g_expired) return -ETIMEDOUT;
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

static int gate_go(struct gate *g, int n)
{
    char buf[4] = {'g', 'g', 'g', 'g'};
    return write(g->p2c[1], buf, (size_t)n) == n ? 0 : -EPIPE;
}

static int full_write(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR && !g_expired) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int full_read(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR && !g_expired) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int packet_send(int fd, const uint8_t *p, size_t n)
{
    for (;;) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR && !g_expired) continue;
        return r == (ssize_t)n ? 0 : -1;
    }
}

static int packet_recv(int fd, uint8_t *p, size_t n)
{
    for (;;) {
        ssize_t r = recv(fd, p, n, MSG_TRUNC);
        if (r < 0 && errno == EINTR && !g_expired) continue;
        return r == (ssize_t)n ? 0 : -1;
    }
}

/* Buffers start on a cache line: glibc's memcpy can be many times slower when source and
 * destination are misaligned relative to each other (rep movsb on some AMD CPUs), and the
 * benchmark should not add that penalty itself. */
static void *balloc(size_t n)
{
    return aligned_alloc(IPCP_CACHELINE, (n + IPCP_CACHELINE - 1) & ~(size_t)(IPCP_CACHELINE - 1));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double s[B_MAX_REPS];
    memcpy(s, v, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* p50 and p99 (microseconds) of n round-trip times in ns; sorts lat. */
static void percentiles(int64_t *lat, long n, double v[2])
{
    qsort(lat, (size_t)n, sizeof(int64_t), cmp_i64);
    v[0] = (double)lat[n / 2] / 1000.0;
    v[1] = (double)lat[(n * 99) / 100] / 1000.0;
}

/* ---- cases and rows ----------------------------------------------------------------------- */

enum bkind {
    K_TPUT,  /* v[0] MB/s, v[1] msgs/s: one row per baseline */
    K_RTT,   /* v[0] p50 us, v[1] p99 us: a p50 and a p99 row per baseline */
    K_SCALAR /* v[0] only */
};
enum aimop { AIM_NONE = 0, AIM_GE, AIM_LE };

struct bcase;
typedef int (*run_fn)(const struct bcase *c, int side, double v[2], char *err, size_t cap);

struct bcase {
    char stem[64];     /* row name stem, "frame-pipe/64B" */
    const char *group; /* "frame", "ring", "chan", "handoff", "lock", "stress" */
    enum bkind kind;
    const char *unit; /* of v[0] for K_SCALAR */
    int lower_better; /* K_SCALAR: a time per operation */
    int nsides;
    const char *side_name[B_MAX_SIDES]; /* [0] the protocol, [1..] the baselines */
    const char *side_tag[B_MAX_SIDES];  /* row suffix of each baseline when there are several */
    run_fn run;
    int xk; /* transport */
    size_t size;
    long count;
    int variant; /* case-specific: zero-copy, contended, ... */
    enum aimop aim_op;
    double aim;        /* applies to the throughput / p50 / scalar row of the first baseline */
    const char *na;    /* not measurable here: the reason (the row prints "n/a (...)") */
    const char *extra; /* JSON key of v[1] when it is reported beside v[0] (not K_RTT) */
    int calibrate;     /* scale count to the run time target before measuring */
};

struct brow {
    char name[96];
    const char *unit;
    double value, baseline; /* medians of each side's figure */
    const char *baseline_name;
    double ratio, rmin, rmax; /* protocol / baseline per repetition: median, min, max */
    int reps;
    long count;         /* messages, round trips (at most) or operations per run */
    double seconds;     /* wall time of the case the row belongs to */
    const char *extra;  /* a second figure of the same runs (JSON key), or NULL */
    double xval, xbase; /* its medians */
    enum aimop aim_op;
    double aim;
    const char *na;
    char error[200];
    char noisy[96]; /* why its aim can be judged neither met nor missed (row_noise), or "" */
};

static struct bcase g_cases[B_MAX_CASES];
static int g_ncases;
static struct brow g_rows[B_MAX_ROWS];
static int g_nrows;

static long scaled(long full, long floor)
{
    long n = full;
    if (g_opt.mode == M_QUICK) n = full / 4;
    if (g_opt.mode == M_SMOKE) n = full / 100;
    return n < floor ? floor : n;
}

static double calib_target_s(void)
{
    return g_opt.mode == M_FULL ? 0.25 : 0.05;
}

static struct bcase *add_case(const char *group, enum bkind kind, run_fn run, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static struct bcase *add_case(const char *group, enum bkind kind, run_fn run, const char *fmt, ...)
{
    if (g_ncases >= B_MAX_CASES) return NULL;
    struct bcase *c = &g_cases[g_ncases++];
    memset(c, 0, sizeof(*c));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->stem, sizeof(c->stem), fmt, ap);
    va_end(ap);
    c->group = group;
    c->kind = kind;
    c->run = run;
    c->nsides = 2;
    c->calibrate = kind != K_RTT;
    c->extra = kind == K_TPUT ? "msgs_per_s" : NULL;
    return c;
}

static const char *size_label(size_t size)
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

/* ---- fd channels: frame over pipe, unix stream, seqpacket, TCP against write/read ----------- */

enum xkind { XK_PIPE, XK_UNIX, XK_SEQPACKET, XK_TCP, XK_N };
static const char *const xk_name[XK_N] = {"pipe", "unix", "seqpacket", "tcp"};
static const char *const xk_raw[XK_N] = {"raw pipe write/read", "raw unix write/read",
                                         "raw seqpacket send/recv", "raw tcp write/read"};

/* One end of a transport: the fd to read and the fd to write (equal for a socket). */
struct ends {
    int r, w;
};

static void ends_close(struct ends *e)
{
    if (e->w >= 0 && e->w != e->r) close(e->w);
    if (e->r >= 0) close(e->r);
    e->r = e->w = -1;
}

/* Fresh fds of kind xk. duplex = 0: the parent reads what the child writes; 1: both ways. */
static int xopen(int xk, int duplex, struct ends *par, struct ends *chi)
{
    int fds[2], rc;
    par->r = par->w = chi->r = chi->w = -1;
    switch (xk) {
    case XK_PIPE:
        if ((rc = ipcp_xport_pipe(fds, 1u << 20)) < 0) return rc;
        par->r = fds[0];
        chi->w = fds[1];
        if (duplex) {
            if ((rc = ipcp_xport_pipe(fds, 1u << 20)) < 0) {
                ends_close(par);
                ends_close(chi);
                return rc;
            }
            chi->r = fds[0];
            par->w = fds[1];
        }
        return 0;
    case XK_UNIX:
    case XK_SEQPACKET:
        rc = ipcp_xport_unix_pair(xk == XK_UNIX ? SOCK_STREAM : SOCK_SEQPACKET, fds,
                                  xk == XK_UNIX ? 0 : 1 << 20);
        if (rc < 0) return rc;
        par->r = par->w = fds[0];
        chi->r = chi->w = fds[1];
        return 0;
    case XK_TCP: {
        uint16_t port = 0;
        int l = ipcp_xport_tcp_listen(&port);
        if (l < 0) return l;
        int c = ipcp_xport_tcp_connect(port, B_OP_MS);
        if (c < 0) {
            close(l);
            return c;
        }
        int a = ipcp_xport_accept(l, B_OP_MS);
        close(l);
        if (a < 0) {
            close(c);
            return a;
        }
        par->r = par->w = a;
        chi->r = chi->w = c;
        return 0;
    }
    default:
        return -EINVAL;
    }
}

static struct ipcp_fdchan_cfg fd_cfg(int xk)
{
    struct ipcp_fdchan_cfg cfg = {
        .kind = xk == XK_SEQPACKET ? IPCP_FDCHAN_SEQPACKET : IPCP_FDCHAN_STREAM,
        .max_msg = B_MAX_MSG,
    };
    return cfg;
}

/* Raw message of size bytes: one write/read on a stream, 64 KiB packets on seqpacket. */
static int raw_send(int xk, int fd, const uint8_t *buf, size_t size)
{
    if (xk != XK_SEQPACKET) return full_write(fd, buf, size);
    for (size_t off = 0; off < size; off += B_PIECE) {
        size_t n = size - off < B_PIECE ? size - off : B_PIECE;
        if (packet_send(fd, buf + off, n) < 0) return -1;
    }
    return 0;
}

static int raw_recv(int xk, int fd, uint8_t *buf, size_t size)
{
    if (xk != XK_SEQPACKET) return full_read(fd, buf, size);
    for (size_t off = 0; off < size; off += B_PIECE) {
        size_t n = size - off < B_PIECE ? size - off : B_PIECE;
        if (packet_recv(fd, buf + off, n) < 0) return -1;
    }
    return 0;
}

struct fdjob {
    const struct bcase *c;
    int side;
    struct gate *g;
    struct ends par, chi;
    long n; /* messages (throughput runs) */
};

/* Child of a throughput run: sends n messages once the parent says go. */
static int fd_sender(void *arg)
{
    struct fdjob *j = arg;
    const struct bcase *c = j->c;
    ends_close(&j->par);
    uint8_t *buf = balloc(c->size);
    if (buf == NULL) return 10;
    memset(buf, 0x5a, c->size);
    int rc = 0;
    if (j->side == 0) {
        struct ipcp_fdchan_cfg cfg = fd_cfg(c->xk);
        struct ipcp_fdchan *ch = NULL;
        if (ipcp_fdchan_open(&ch, -1, j->chi.w, &cfg) < 0) return 11;
        if (gate_child_ready(j->g) < 0) return 12;
        for (long i = 0; i < j->n && rc == 0; i++)
            if (ipcp_fdchan_send(ch, 1, buf, c->size, B_OP_MS) < 0) rc = 13;
        if (ipcp_fdchan_close(ch, B_OP_MS) < 0 && rc == 0) rc = 14;
    } else {
        if (gate_child_ready(j->g) < 0) return 12;
        for (long i = 0; i < j->n && rc == 0; i++)
            if (raw_send(c->xk, j->chi.w, buf, c->size) < 0) rc = 15;
    }
    free(buf);
    return rc;
}

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* Throughput: the child sends count messages of size bytes, the parent receives them (frames
 * with the zero-copy receive: one copy from the kernel, as read() makes). */
static int run_fd_tput(const struct bcase *c, int side, double v[2], char *err, size_t cap)
{
    struct gate g;
    struct fdjob j = {.c = c, .side = side, .g = &g, .n = c->count};
    int rc = gate_open(&g);
    if (rc < 0) return fail(err, cap, "pipe: %s", ipcp_strerror(rc));
    if ((rc = xopen(c->xk, 0, &j.par, &j.chi)) < 0) {
        gate_close(&g);
        return fail(err, cap, "%s transport: %s", xk_name[c->xk], ipcp_strerror(rc));
    }
    uint8_t *buf = balloc(c->size);
    struct ipcp_fdchan *ch = NULL;
    pid_t pid = -1;
    int ok = 0;
    if (buf == NULL) {
        fail(err, cap, "out of memory");
        goto out;
    }
    if (side == 0) {
        struct ipcp_fdchan_cfg cfg = fd_cfg(c->xk);
        if ((rc = ipcp_fdchan_open(&ch, j.par.r, -1, &cfg)) < 0) {
            fail(err, cap, "fdchan_open: %s", ipcp_strerror(rc));
            goto out;
        }
    }
    pid = spawn(fd_sender, &j);
    if (pid < 0) {
        fail(err, cap, "fork: %s", strerror(errno));
        goto out;
    }
    gate_parent(&g);
    ends_close(&j.chi);
    if ((rc = gate_wait(&g, 1, B_OP_MS)) < 0) {
        fail(err, cap, "sender did not start: %s", ipcp_strerror(rc));
        goto out;
    }
    watchdog_arm();
    int64_t t0 = now_ns();
    if (gate_go(&g, 1) < 0) {
        fail(err, cap, "sender gone");
        goto out;
    }
    for (long i = 0; i < c->count; i++) {
        if (side == 0) {
            const void *m;
            ssize_t r = ipcp_fdchan_recv_zc(ch, NULL, &m, B_OP_MS);
            if (r != (ssize_t)c->size) {
                fail(err, cap, "fdchan_recv message %ld: %s", i,
                     r < 0 ? ipcp_strerror((int)r) : "wrong length");
                goto out;
            }
        } else if (raw_recv(c->xk, j.par.r, buf, c->size) < 0) {
            fail(err, cap, "raw receive of message %ld failed", i);
            goto out;
        }
    }
    int64_t dt = now_ns() - t0;
    int st = reap(pid, B_REAP_MS);
    pid = -1;
    if (st != 0) {
        fail(err, cap, "sender exited with status %d", st);
        goto out;
    }
    v[0] = (double)c->size * (double)c->count / ((double)dt / 1e9) / 1e6;
    v[1] = (double)c->count / ((double)dt / 1e9);
    ok = 1;
out:
    watchdog_disarm();
    if (ch) ipcp_fdchan_close(ch, 0);
    ends_close(&j.par);
    ends_close(&j.chi);
    gate_close(&g);
    kill_reap(pid);
    free(buf);
    return ok ? 0 : -1;
}

/* Child of a round-trip run: echoes 64-byte messages until the parent closes its end (the
 * parent checks every reply itself). */
static int fd_echo(void *arg)
{
    struct fdjob *j = arg;
    const struct bcase *c = j->c;
    ends_close(&j->par);
    uint8_t buf[B_SMALL];
    int rc = 0;
    if (j->side == 0) {
        struct ipcp_fdchan_cfg cfg = fd_cfg(c->xk);
        struct ipcp_fdchan *ch = NULL;
        if (ipcp_fdchan_open(&ch, j->chi.r, j->chi.w, &cfg) < 0) return 11;
        if (gate_child_ready(j->g) < 0) return 12;
        for (;;) {
            ssize_t r = ipcp_fdchan_recv(ch, NULL, buf, sizeof(buf), B_OP_MS);
            if (r == -EPIPE) break; /* the parent is done */
            if (r != (ssize_t)sizeof(buf)) {
                rc = 13;
                break;
            }
            if (ipcp_fdchan_send(ch, 1, buf, sizeof(buf), B_OP_MS) < 0) {
                rc = 14;
                break;
            }
        }
        ipcp_fdchan_close(ch, 0);
    } else {
        if (gate_child_ready(j->g) < 0) return 12;
        for (;;) {
            if (raw_recv(c->xk, j->chi.r, buf, sizeof(buf)) < 0) break; /* EOF: done */
            if (raw_send(c->xk, j->chi.w, buf, sizeof(buf)) < 0) {
                rc = 16;
                break;
            }
        }
    }
    return rc;
}

/* Round trips: c->count at most, the first 5% as warm-up, and no longer than this (a loaded
 * machine can make a spinning round trip take a scheduler tick). */
static long warmup_of(long n)
{
    long w = n / 20;
    return w < 10 ? 10 : w;
}

static int64_t rtt_budget_ns(void)
{
    return g_opt.mode == M_FULL ? 1000000000LL : g_opt.mode == M_QUICK ? 150000000LL : 50000000LL;
}

/* When a round-trip run stops: after the budget, but not before it has min samples (the
 * watchdog still bounds it); warm-up ends after warm round trips or a tenth of the budget. */
struct rtt_clock {
    int64_t end, warm_end;
    long min;
};

static struct rtt_clock rtt_start(long count)
{
    int64_t now = now_ns(), b = rtt_budget_ns();
    struct rtt_clock k = {
        .end = now + b, .warm_end = now + b / 10, .min = count < 100 ? count : 100};
    return k;
}

static int rtt_done(const struct rtt_clock *k, int64_t now, long got)
{
    return now > k->end && got >= k->min;
}

/* p50/p99 of the samples taken. */
static int rtt_result(int64_t *lat, long got, double v[2], char *err, size_t cap)
{
    if (got < 1) return fail(err, cap, "no round trip measured");
    percentiles(lat, got, v);
    return 0;
}

/* Round trip of 64-byte messages between two processes. */
static int run_fd_rtt(const struct bcase *c, int side, double v[2], char *err, size_t cap)
{
    long warm = warmup_of(c->count), got = 0;
    struct gate g;
    struct fdjob j = {.c = c, .side = side, .g = &g};
    int rc = gate_open(&g);
    if (rc < 0) return fail(err, cap, "pipe: %s", ipcp_strerror(rc));
    if ((rc = xopen(c->xk, 1, &j.par, &j.chi)) < 0) {
        gate_close(&g);
        return fail(err, cap, "%s transport: %s", xk_name[c->xk], ipcp_strerror(rc));
    }
    int64_t *lat = malloc(sizeof(int64_t) * (size_t)c->count);
    struct ipcp_fdchan *ch = NULL;
    pid_t pid = -1;
    int ok = 0;
    uint8_t buf[B_SMALL];
    memset(buf, 0x5a, sizeof(buf));
    if (lat == NULL) {
        fail(err, cap, "out of memory");
        goto out;
    }
    if (side == 0) {
        struct ipcp_fdchan_cfg cfg = fd_cfg(c->xk);
        if ((rc = ipcp_fdchan_open(&ch, j.par.r, j.par.w, &cfg)) < 0) {
            fail(err, cap, "fdchan_open: %s", ipcp_strerror(rc));
            goto out;
        }
    }
    pid = spawn(fd_echo, &j);
    if (pid < 0) {
        fail(err, cap, "fork: %s", strerror(errno));
        goto out;
    }
    gate_parent(&g);
    ends_close(&j.chi);
    if ((rc = gate_wait(&g, 1, B_OP_MS)) < 0 || gate_go(&g, 1) < 0) {
        fail(err, cap, "echo process did not start");
        goto out;
    }
    watchdog_arm();
    struct rtt_clock rc_ = rtt_start(c->count);
    for (long i = 0; got < c->count; i++) {
        int64_t t0 = now_ns();
        if (rtt_done(&rc_, t0, got)) break;
        if (side == 0) {
            rc = ipcp_fdchan_send(ch, 1, buf, sizeof(buf), B_OP_MS);
            ssize_t r = rc < 0 ? rc : ipcp_fdchan_recv(ch, NULL, buf, sizeof(buf), B_OP_MS);
            if (r != (ssize_t)sizeof(buf)) {
                fail(err, cap, "round trip %ld: %s", i,
                     r < 0 ? ipcp_strerror((int)r) : "wrong length");
                goto out;
            }
        } else if (raw_send(c->xk, j.par.w, buf, sizeof(buf)) < 0 ||
                   raw_recv(c->xk, j.par.r, buf, sizeof(buf)) < 0) {
            fail(err, cap, "raw round trip %ld failed", i);
            goto out;
        }
        if (i >= warm || t0 > rc_.warm_end) lat[got++] = now_ns() - t0;
    }
    if (ch) ipcp_fdchan_close(ch, 0);
    ch = NULL;
    ends_close(&j.par); /* the echo process sees EOF and ends */
    int st = reap(pid, B_REAP_MS);
    pid = -1;
    if (st != 0) {
        fail(err, cap, "echo process exited with status %d", st);
        goto out;
    }
    ok = rtt_result(lat, got, v, err, cap) == 0;
out:
    watchdog_disarm();
    if (ch) ipcp_fdchan_close(ch, 0);
    ends_close(&j.par);
    ends_close(&j.chi);
    gate_close(&g);
    kill_reap(pid);
    free(lat);
    return ok ? 0 : -1;
}

/* ---- the real limit of a queue between two processes: a minimal SPSC ring ------------------ */

/* What any ring between two processes must do, and nothing more: the producer's and the
 * consumer's positions (free-running byte counts) each on its own cache line, a data area of
 * B_RING_CAP bytes, length-prefixed records copied in and out. A record is a 16-byte header (the
 * payload length in its first 8 bytes) and the payload padded to 16 bytes - the footprint of an
 * ipcp_ring record - and a record that crosses the end of the area is copied in two pieces (no
 * padding). A message above MR_CHUNK bytes travels as consecutive records of at most MR_CHUNK
 * payload bytes, the size of ipcp_ring's default chunk (a quarter of the ring less a header), so
 * producer and consumer overlap on a 1 MiB message as they do in the ring; the consumer copies
 * them one after the other into its buffer: like the raw fd baselines, it knows the message size.
 * No magic, sequence numbers, liveness checks or sleeping: a side that must wait spins
 * (spin_pause); each re-reads the other's
 * position only when the one it cached says wait. The one check left keeps the consumer's copy
 * inside its buffer. */
#define MR_HDR   16u
#define MR_CHUNK (B_RING_CAP / 4 - MR_HDR)

struct minring {
    _Alignas(64) _Atomic uint64_t tail; /* bytes published by the producer */
    _Alignas(64) _Atomic uint64_t head; /* bytes released by the consumer */
    _Alignas(64) uint8_t data[B_RING_CAP];
};

/* One side: its own position and its cached copy of the other's. */
struct mr_end {
    struct minring *m;
    uint64_t pos, peer;
};

static uint64_t mr_rec(uint64_t n)
{
    return MR_HDR + ((n + MR_HDR - 1) & ~(uint64_t)(MR_HDR - 1));
}

/* Refreshes e->peer from w until there is room for need bytes (room) or need bytes to read;
 * -1 when the watchdog fired. */
static int mr_wait(struct mr_end *e, _Atomic uint64_t *w, int room, uint64_t need)
{
    unsigned n = 0;
    for (;;) {
        /* Acquire: the records (or the free space) the peer published are visible. */
        e->peer = ipcp_load_acquire64(w);
        if (room ? B_RING_CAP - (e->pos - e->peer) >= need : e->peer - e->pos >= need) return 0;
        if (spin_pause(&n) < 0) return -1;
    }
}

static void mr_copy_in(struct minring *m, uint64_t pos, const uint8_t *src, size_t n)
{
    size_t off = (size_t)(pos & (B_RING_CAP - 1)), first = B_RING_CAP - off;
    if (first >= n) {
        memcpy(m->data + off, src, n);
    } else {
        memcpy(m->data + off, src, first);
        memcpy(m->data, src + first, n - first);
    }
}

static void mr_copy_out(const struct minring *m, uint64_t pos, uint8_t *dst, size_t n)
{
    size_t off = (size_t)(pos & (B_RING_CAP - 1)), first = B_RING_CAP - off;
    if (first >= n) {
        memcpy(dst, m->data + off, n);
    } else {
        memcpy(dst, m->data + off, first);
        memcpy(dst + first, m->data, n - first);
    }
}

static int mr_send(struct mr_end *e, const uint8_t *p, size_t size)
{
    size_t done = 0;
    do {
        size_t n = size - done < MR_CHUNK ? size - done : MR_CHUNK;
        uint64_t rec = mr_rec(n);
        if (B_RING_CAP - (e->pos - e->peer) < rec && mr_wait(e, &e->m->head, 1, rec) < 0) return -1;
        uint64_t len = n; /* a header never wraps: positions and the area are 16-aligned */
        memcpy(e->m->data + (e->pos & (B_RING_CAP - 1)), &len, sizeof(len));
        mr_copy_in(e->m, e->pos + MR_HDR, p + done, n);
        e->pos += rec;
        /* Release: the record's bytes before the position that publishes them. */
        ipcp_store_release64(&e->m->tail, e->pos);
        done += n;
    } while (done < size);
    return 0;
}

static int mr_recv(struct mr_end *e, uint8_t *dst, size_t size)
{
    size_t done = 0;
    do {
        if (e->peer - e->pos < MR_HDR && mr_wait(e, &e->m->tail, 0, MR_HDR) < 0) return -1;
        uint64_t len;
        memcpy(&len, e->m->data + (e->pos & (B_RING_CAP - 1)), sizeof(len));
        if (len > size - done) return -1; /* keeps the copy inside dst */
        /* the producer publishes whole records: the payload is there with its header */
        mr_copy_out(e->m, e->pos + MR_HDR, dst + done, (size_t)len);
        e->pos += mr_rec(len);
        /* Release: our reads of the record before the producer may overwrite it. */
        ipcp_store_release64(&e->m->head, e->pos);
        done += (size_t)len;
    } while (done < size);
    return 0;
}

struct mrjob {
    const struct bcase *c;
    struct gate *g;
    struct minring *m;
    long n;
};

static int minring_producer(void *arg)
{
    struct mrjob *j = arg;
    uint8_t *src = balloc(j->c->size);
    if (src == NULL) return 10;
    memset(src, 0x5a, j->c->size);
    struct mr_end e = {.m = j->m};
    int rc = gate_child_ready(j->g) < 0 ? 12 : 0;
    for (long i = 0; i < j->n && rc == 0; i++)
        if (mr_send(&e, src, j->c->size) < 0) rc = 13;
    free(src);
    return rc;
}

/* Throughput of the minimal ring: the same messages, capacity and processes as the ring rows. */
static int run_minring_tput(const struct bcase *c, double v[2], char *err, size_t cap)
{
    struct minring *m =
        mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return fail(err, cap, "mmap: %s", strerror(errno));
    struct gate g;
    int rc = gate_open(&g);
    if (rc < 0) {
        munmap(m, sizeof(*m));
        return fail(err, cap, "pipe: %s", ipcp_strerror(rc));
    }
    struct mrjob j = {.c = c, .g = &g, .m = m, .n = c->count};
    struct mr_end e = {.m = m};
    uint8_t *buf = balloc(c->size);
    pid_t pid = -1;
    int ok = 0;
    if (buf == NULL) {
        fail(err, cap, "out of memory");
        goto out;
    }
    pid = spawn(minring_producer, &j);
    if (pid < 0) {
        fail(err, cap, "fork: %s", strerror(errno));
        goto out;
    }
    gate_parent(&g);
    if (gate_wait(&g, 1, B_OP_MS) < 0) {
        fail(err, cap, "producer did not start (status %d)", reap(pid, B_REAP_MS));
        pid = -1;
        goto out;
    }
    watchdog_arm();
    int64_t t0 = now_ns();
    if (gate_go(&g, 1) < 0) {
        fail(err, cap, "producer gone");
        goto out;
    }
    for (long i = 0; i < c->count; i++) {
        if (mr_recv(&e, buf, c->size) < 0) {
            fail(err, cap, "minimal ring: receive of message %ld failed", i);
            goto out;
        }
    }
    int64_t dt = now_ns() - t0;
    int st = reap(pid, B_REAP_MS);
    pid = -1;
    if (st != 0) {
        fail(err, cap, "producer exited with status %d", st);
        goto out;
    }
    escape(buf);
    v[0] = (double)c->size * (double)c->count / ((double)dt / 1e9) / 1e6;
    v[1] = (double)c->count / ((double)dt / 1e9);
    ok = 1;
out:
    watchdog_disarm();
    kill_reap(pid);
    munmap(m, sizeof(*m));
    gate_close(&g);
    free(buf);
    return ok ? 0 : -1;
}

/* ---- ring: against memcpy bandwidth and a raw shared-memory spin ping-pong ----------------- */

static struct ipcp_ring_cfg ring_cfg(void)
{
    struct ipcp_ring_cfg cfg = {.capacity = B_RING_CAP, .max_msg = B_MAX_MSG};
    return cfg;
}

/* The physical limit of a shared-memory transfer: one thread copying the same bytes from a
 * private buffer into a region the size of the ring, at the offsets a ring would use (a message
 * larger than the region in region-sized pieces). */
static int run_memcpy(const struct bcase *c, double v[2], char *err, size_t cap)
{
    uint8_t *src = balloc(c->size), *dst = balloc(B_RING_CAP);
    if (src == NULL || dst == NULL) {
        free(src);
        free(dst);
        return fail(err, cap, "out of memory");
    }
    memset(src, 0x5a, c->size);
    memset(dst, 0, B_RING_CAP);
    size_t off = 0;
    int64_t t0 = now_ns();
    for (long i = 0; i < c->count; i++) {
        for (size_t done = 0; done < c->size;) {
            size_t n = c->size - done;
            if (n > B_RING_CAP - off) n = B_RING_CAP - off;
            memcpy(dst + off, src + done, n);
            off = (off + ((n + IPCP_CACHELINE - 1) & ~(size_t)(IPCP_CACHELINE - 1))) % B_RING_CAP;
            done += n;
        }
        escape(dst);
    }
    int64_t dt = now_ns() - t0;
    free(src);
    free(dst);
    if (dt <= 0) dt = 1;
    v[0] = (double)c->size * (double)c->count / ((double)dt / 1e9) / 1e6;
    v[1] = (double)c->count / ((double)dt / 1e9);
    return 0;
}

struct ringjob {
    const struct bcase *c;
    struct gate *g;
    struct ipcp_ring *mine; /* the parent's handle (inherited memory: never closed here) */
    long n;
};

/* Producer child: opens its side over the inherited memfd, sends n messages. */
static int ring_producer(void *arg)
{
    struct ringjob *j = arg;
    const struct bcase *c = j->c;
    struct ipcp_ring_cfg cfg = ring_cfg();
    struct ipcp_ring p;
    if (ipcp_ring_attach_fd(&p, ipcp_ring_fd(j->mine), IPCP_RING_PRODUCER, &cfg) < 0) return 11;
    uint8_t *src = balloc(c->size);
    if (src == NULL) return 10;
    memset(src, 0x5a, c->size);
    int rc = gate_child_ready(j->g) < 0 ? 12 : 0;
    for (long i = 0; i < j->n && rc == 0; i++) {
        if (c->variant) { /* zero copy: the producer writes the message in place */
            void *ptr;
            if (ipcp_ring_reserve(&p, c->size, &ptr, B_OP_MS) < 0) {
                rc = 13;
                break;
            }
            memcpy(ptr, src, c->size);
            if (ipcp_ring_commit(&p, c->size) < 0) rc = 14;
        } else if (ipcp_ring_send(&p, src, c->size, B_OP_MS) < 0) {
            rc = 15;
        }
    }
    ipcp_ring_close(&p);
    free(src);
    return rc;
}

/* Throughput through a 256 KiB ring between two processes: send/recv (a copy on each side) or
 * reserve/commit + peek/release (the producer writes in place, the consumer reads every cache
 * line in place). Side 1 is the minimal ring, side 2 memcpy. */
static int run_ring_tput(const struct bcase *c, int side, double v[2], char *err, size_t cap)
{
    if (side == 1) return run_minring_tput(c, v, err, cap);
    if (side == 2) return run_memcpy(c, v, err, cap);
    struct ipcp_ring_cfg cfg = ring_cfg();
    struct ipcp_ring r;
    int rc = ipcp_ring_create_memfd(&r, IPCP_RING_CONSUMER, &cfg);
    if (rc < 0) return fail(err, cap, "ring_create_memfd: %s", ipcp_strerror(rc));
    struct gate g;
    if ((rc = gate_open(&g)) < 0) {
        ipcp_ring_close(&r);
        return fail(err, cap, "pipe: %s", ipcp_strerror(rc));
    }
    struct ringjob j = {.c = c, .g = &g, .mine = &r, .n = c->count};
    uint8_t *buf = balloc(c->size);
    pid_t pid = -1;
    int ok = 0;
    uint64_t sink = 0;
    if (buf == NULL) {
        fail(err, cap, "out of memory");
        goto out;
    }
    pid = spawn(ring_producer, &j);
    if (pid < 0) {
        fail(err, cap, "fork: %s", strerror(errno));
        goto out;
    }
    gate_parent(&g);
    if ((rc = gate_wait(&g, 1, B_OP_MS)) < 0) {
        fail(err, cap, "producer did not start (status %d)", reap(pid, B_REAP_MS));
        pid = -1;
        goto out;
    }
    watchdog_arm();
    int64_t t0 = now_ns();
    if (gate_go(&g, 1) < 0) {
        fail(err, cap, "producer gone");
        goto out;
    }
    for (long i = 0; i < c->count; i++) {
        ssize_t n;
        if (c->variant) {
            const void *ptr;
            n = ipcp_ring_peek(&r, &ptr, B_OP_MS);
            if (n == (ssize_t)c->size) {
                const volatile uint64_t *w = ptr;
                for (size_t k = 0; k < c->size / 8; k += IPCP_CACHELINE / 8)
                    sink += w[k];
                int e = ipcp_ring_release(&r);
                if (e < 0) n = e;
            }
        } else {
            n = ipcp_ring_recv(&r, buf, c->size, B_OP_MS);
        }
        if (n != (ssize_t)c->size) {
            fail(err, cap, "ring receive of message %ld: %s", i,
                 n < 0 ? ipcp_strerror((int)n) : "wrong length");
            goto out;
        }
    }
    int64_t dt = now_ns() - t0;
    int st = reap(pid, B_REAP_MS);
    pid = -1;
    if (st != 0) {
        fail(err, cap, "producer exited with status %d", st);
        goto out;
    }
    escape(&sink);
    v[0] = (double)c->size * (double)c->count / ((double)dt / 1e9) / 1e6;
    v[1] = (double)c->count / ((double)dt / 1e9);
    ok = 1;
out:
    watchdog_disarm();
    kill_reap(pid);
    ipcp_ring_close(&r);
    gate_close(&g);
    free(buf);
    return ok ? 0 : -1;
}

/* ---- channels through the plugin ABI (bench_chan.c) ------------------------------------------ */

struct chanjob {
    const struct bcase *c;
    const struct ipcp_channel_ops *ops;
    void *ctx;
    struct gate *g;
};

/* Producer child: opens its endpoint of the inherited channel, sends count messages. */
static int chan_producer(void *arg)
{
    struct chanjob *j = arg;
    void *ep;
    if (j->ops->open(j->ctx, IPCP_ROLE_PRODUCER, 0, &ep) < 0) return 11;
    uint8_t *src = balloc(j->c->size + 1);
    int rc = src == NULL ? 10 : gate_child_ready(j->g) < 0 ? 12 : 0;
    if (src != NULL) memset(src, 0x5a, j->c->size);
    for (long i = 0; i < j->c->count && rc == 0; i++)
        if (j->ops->send(ep, src, j->c->size, B_OP_MS) < 0) rc = 15;
    j->ops->close(ep);
    free(src);
    return rc;
}

/* Throughput of a channel of bench_chan.c from a producer process to the consumer (this one):
 * side 0 the built-in protocol, side 1 its raw mechanism; fresh objects for each run. */
static int run_chan_tput(const struct bcase *c, int side, double v[2], char *err, size_t cap)
{
    static unsigned seq;
    const struct st_bench_chan *ch = &st_bench_chans[c->xk];
    const struct ipcp_channel_ops *ops = side == 0 ? ch->proto : ch->raw;
    char run_id[32];
    snprintf(run_id, sizeof(run_id), "bench-%ld-%u", (long)getpid(), seq++);
    struct ipcp_chan_cfg cfg = {.run_id = run_id,
                                .producers = 1,
                                .consumers = 1,
                                .max_msg = c->size,
                                .capacity = ch->slots * c->size,
                                .options = ""};
    void *ctx = NULL, *ep = NULL;
    int rc = ops->create(&cfg, &ctx);
    if (rc < 0) return fail(err, cap, "%s: create: %s", ops->name, ipcp_strerror(rc));
    struct gate g;
    if ((rc = gate_open(&g)) < 0) {
        ops->destroy(ctx);
        return fail(err, cap, "pipe: %s", ipcp_strerror(rc));
    }
    struct chanjob j = {.c = c, .ops = ops, .ctx = ctx, .g = &g};
    uint8_t *buf = balloc(c->size + 1);
    pid_t pid = -1;
    int ok = 0;
    if (buf == NULL) {
        fail(err, cap, "out of memory");
        goto out;
    }
    if ((rc = ops->open(ctx, IPCP_ROLE_CONSUMER, 0, &ep)) < 0) {
        ep = NULL;
        fail(err, cap, "%s: open: %s", ops->name, ipcp_strerror(rc));
        goto out;
    }
    pid = spawn(chan_producer, &j);
    if (pid < 0) {
        fail(err, cap, "fork: %s", strerror(errno));
        goto out;
    }
    gate_parent(&g);
    if (gate_wait(&g, 1, B_OP_MS) < 0) {
        fail(err, cap, "%s: producer did not start (status %d)", ops->name, reap(pid, B_REAP_MS));
        pid = -1;
        goto out;
    }
    watchdog_arm();
    int64_t t0 = now_ns();
    if (gate_go(&g, 1) < 0) {
        fail(err, cap, "producer gone");
        goto out;
    }
    for (long i = 0; i < c->count; i++) {
        ssize_t n = ops->recv(ep, buf, c->size, B_OP_MS);
        if (n != (ssize_t)c->size) {
            fail(err, cap, "%s: receive of message %ld: %s", ops->name, i,
                 n < 0 ? ipcp_strerror((int)n) : "wrong length");
            goto out;
        }
    }
    int64_t dt = now_ns() - t0;
    int st = reap(pid, B_REAP_MS);
    pid = -1;
    if (st != 0) {
        fail(err, cap, "%s: producer exited with status %d", ops->name, st);
        goto out;
    }
    v[0] = (double)c->size * (double)c->count / ((double)dt / 1e9) / 1e6;
    v[1] = (double)c->count / ((double)dt / 1e9);
    ok = 1;
out:
    watchdog_disarm();
    kill_reap(pid);
    if (ep != NULL) ops->close(ep);
    ops->destroy(ctx);
    gate_close(&g);
    free(buf);
    return ok ? 0 : -1;
}

/* The raw baseline of a round trip in shared memory: a counter and 64 payload bytes each way,
 * each on its own cache line, both sides spinning. */
struct spinpp {
    _Alignas(64) _Atomic uint64_t ping;
    _Alignas(64) uint8_t ping_data[B_SMALL];
    _Alignas(64) _Atomic uint64_t pong;
    _Alignas(64) uint8_t pong_data[B_SMALL];
};

#define SPIN_STOP UINT64_MAX /* ping value that ends the echo process */

/* Spins until *w is v (or SPIN_STOP); returns what it saw, 0 when the watchdog fired. On a
 * loaded machine the peer may not be running: yield now and then. */
static uint64_t spin_until(_Atomic uint64_t *w, uint64_t v)
{
    unsigned n = 0;
    for (;;) {
        /* Acquire: the payload the peer wrote before publishing v is visible once v is. */
        uint64_t x = ipcp_load_acquire64(w);
        if (x == v || x == SPIN_STOP) return x;
        if (spin_pause(&n) < 0) return 0;
    }
}

struct spinjob {
    struct gate *g;
    struct spinpp *s;
    struct ipcp_ring *a, *b; /* ring round trips: a parent->child, b child->parent */
};

static int spin_echo(void *arg)
{
    struct spinjob *j = arg;
    uint8_t buf[B_SMALL];
    if (gate_child_ready(j->g) < 0) return 12;
    for (uint64_t i = 1;; i++) {
        uint64_t x = spin_until(&j->s->ping, i);
        if (x == SPIN_STOP) return 0;
        if (x != i) return 13;
        memcpy(buf, j->s->ping_data, sizeof(buf));
        memcpy(j->s->pong_data, buf, sizeof(buf));
        escape(buf);
        /* Release: the reply's bytes are written before its counter. */
        ipcp_store_release64(&j->s->pong, i);
    }
}

/* Echoes through two rings until the parent closes its producer side (-EPIPE). */
static int ring_echo(void *arg)
{
    struct spinjob *j = arg;
    struct ipcp_ring_cfg cfg = ring_cfg();
    struct ipcp_ring in, out;
    if (ipcp_ring_attach_fd(&in, ipcp_ring_fd(j->a), IPCP_RING_CONSUMER, &cfg) < 0) return 11;
    if (ipcp_ring_attach_fd(&out, ipcp_ring_fd(j->b), IPCP_RING_PRODUCER, &cfg) < 0) return 11;
    uint8_t buf[B_SMALL];
    int rc = gate_child_ready(j->g) < 0 ? 12 : 0;
    while (rc == 0) {
        ssize_t r = ipcp_ring_recv(&in, buf, sizeof(buf), B_OP_MS);
        if (r == -EPIPE) break;
        if (r != (ssize_t)sizeof(buf))
            rc = 13;
        else if (ipcp_ring_send(&out, buf, sizeof(buf), B_OP_MS) < 0)
            rc = 14;
    }
    ipcp_ring_close(&in);
    ipcp_ring_close(&out);
    return rc;
}

/* 64-byte round trip between two processes: two rings (side 0) or the raw spin ping-pong. */
static int run_ring_rtt(const struct bcase *c, int side, double v[2], char *err, size_t cap)
{
    long warm = warmup_of(c->count), got = 0;
    struct gate g;
    int rc = gate_open(&g);
    if (rc < 0) return fail(err, cap, "pipe: %s", ipcp_strerror(rc));
    struct ipcp_ring_cfg cfg = ring_cfg();
    struct ipcp_ring a, b;
    int have_a = 0, have_b = 0, ok = 0;
    pid_t pid = -1;
    struct spinpp *s = MAP_FAILED;
    int64_t *lat = malloc(sizeof(int64_t) * (size_t)c->count);
    struct spinjob j = {.g = &g};
    uint8_t buf[B_SMALL];
    memset(buf, 0x5a, sizeof(buf));
    if (lat == NULL) {
        fail(err, cap, "out of memory");
        goto out;
    }
    if (side == 0) {
        if ((rc = ipcp_ring_create_memfd(&a, IPCP_RING_PRODUCER, &cfg)) < 0) {
            fail(err, cap, "ring_create_memfd: %s", ipcp_strerror(rc));
            goto out;
        }
        have_a = 1;
        if ((rc = ipcp_ring_create_memfd(&b, IPCP_RING_CONSUMER, &cfg)) < 0) {
            fail(err, cap, "ring_create_memfd: %s", ipcp_strerror(rc));
            goto out;
        }
        have_b = 1;
        j.a = &a;
        j.b = &b;
        pid = spawn(ring_echo, &j);
    } else {
        s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (s == MAP_FAILED) {
            fail(err, cap, "mmap: %s", strerror(errno));
            goto out;
        }
        j.s = s;
        pid = spawn(spin_echo, &j);
    }
    if (pid < 0) {
        fail(err, cap, "fork: %s", strerror(errno));
        goto out;
    }
    gate_parent(&g);
    if ((rc = gate_wait(&g, 1, B_OP_MS)) < 0 || gate_go(&g, 1) < 0) {
        fail(err, cap, "echo process did not start");
        goto out;
    }
    watchdog_arm();
    struct rtt_clock rc_ = rtt_start(c->count);
    for (long i = 1; got < c->count; i++) {
        int64_t t0 = now_ns();
        if (rtt_done(&rc_, t0, got)) break;
        if (side == 0) {
            rc = ipcp_ring_send(&a, buf, sizeof(buf), B_OP_MS);
            ssize_t r = rc < 0 ? rc : ipcp_ring_recv(&b, buf, sizeof(buf), B_OP_MS);
            if (r != (ssize_t)sizeof(buf)) {
                fail(err, cap, "ring round trip %ld: %s", i,
                     r < 0 ? ipcp_strerror((int)r) : "wrong length");
                goto out;
            }
        } else {
            memcpy(s->ping_data, buf, sizeof(buf));
            /* Release: the request's bytes are written before its counter. */
            ipcp_store_release64(&s->ping, (uint64_t)i);
            if (spin_until(&s->pong, (uint64_t)i) != (uint64_t)i) {
                fail(err, cap, "spin round trip %ld timed out", i);
                goto out;
            }
            memcpy(buf, s->pong_data, sizeof(buf));
        }
        if (i > warm || t0 > rc_.warm_end) lat[got++] = now_ns() - t0;
    }
    /* Tell the echo process to end: close our producer side, or the stop value. */
    if (side == 0) {
        ipcp_ring_close(&a);
        have_a = 0;
    } else {
        ipcp_store_release64(&s->ping, SPIN_STOP); /* release: orders nothing, just publishes */
    }
    int st = reap(pid, B_REAP_MS);
    pid = -1;
    if (st != 0) {
        fail(err, cap, "echo process exited with status %d", st);
        goto out;
    }
    ok = rtt_result(lat, got, v, err, cap) == 0;
out:
    watchdog_disarm();
    kill_reap(pid);
    if (have_a) ipcp_ring_close(&a);
    if (have_b) ipcp_ring_close(&b);
    if (s != MAP_FAILED) munmap(s, sizeof(*s));
    gate_close(&g);
    free(lat);
    return ok ? 0 : -1;
}

/* ---- lock baselines: a raw futex mutex and a raw POSIX mq token ----------------------------- */

/* A plain futex mutex (0 free, 1 held, 2 held with waiters), shared between processes. */
static void futex_wait_word(_Atomic uint32_t *w, uint32_t val)
{
    struct timespec ts = {1, 0}; /* bounded: the caller rechecks the word */
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, val, &ts, NULL, 0);
}

static void futex_wake_one(_Atomic uint32_t *w)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static int rawfutex_lock(_Atomic uint32_t *w)
{
    uint32_t c = 0;
    /* Acquire on success (ipcp_cas32): the critical section starts after the owner's release. */
    if (ipcp_cas32(w, &c, 1)) return 0;
    for (;;) {
        if (g_expired) return -ETIMEDOUT;
        if (c == 0) { /* free again: take it as "held with waiters", others may sleep */
            if (ipcp_cas32(w, &c, 2)) return 0;
            continue;
        }
        if (c == 1 && !ipcp_cas32(w, &c, 2)) continue; /* announce a waiter */
        futex_wait_word(w, 2);
        c = ipcp_load_relaxed32(w); /* only a hint: the next CAS decides */
    }
}

static void rawfutex_unlock(_Atomic uint32_t *w)
{
    uint32_t c = 1;
    /* Release (ipcp_cas32 / ipcp_store_release32): the critical section's writes before the
     * word says free. */
    if (ipcp_cas32(w, &c, 0)) return; /* nobody waits */
    ipcp_store_release32(w, 0);
    futex_wake_one(w);
}

/* The shared page of a lock run: the futex word, and the critical section's probe. */
struct lockshm {
    _Alignas(64) _Atomic uint32_t futex;
    _Alignas(64) volatile uint64_t counter; /* not atomic on purpose: lost updates would show */
    _Alignas(64) _Atomic uint32_t stop;     /* contended runs: the parent ends the run */
    _Alignas(64) uint64_t acq[2];           /* acquisitions of each contended worker */
};

static unsigned g_mq_seq;

/* A queue of one 8-byte token, unlinked at once (the descriptor stays valid; no name can be
 * left behind). */
static mqd_t mq_token_open(char *err, size_t cap)
{
    char name[64];
    snprintf(name, sizeof(name), "/ipcp.bench.%ld.%u", (long)getpid(), ++g_mq_seq);
    struct mq_attr at = {.mq_maxmsg = 1, .mq_msgsize = 8};
    mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &at);
    if (q == (mqd_t)-1) {
        fail(err, cap, "mq_open: %s", strerror(errno));
        return q;
    }
    mq_unlink(name);
    uint64_t tok = 1;
    if (mq_send(q, (const char *)&tok, sizeof(tok), 0) < 0) {
        fail(err, cap, "mq_send: %s", strerror(errno));
        mq_close(q);
        return (mqd_t)-1;
    }
    return q;
}

static int mq_token_lock(mqd_t q)
{
    uint64_t tok;
    for (;;) {
        ssize_t n = mq_receive(q, (char *)&tok, sizeof(tok), NULL);
        if (n == (ssize_t)sizeof(tok)) return 0;
        if (n < 0 && errno == EINTR && !g_expired) continue;
        return -1;
    }
}

static int mq_token_unlock(mqd_t q)
{
    uint64_t tok = 1;
    return mq_send(q, (const char *)&tok, sizeof(tok), 0) == 0 ? 0 : -1;
}

/* The kinds a lock row can measure: the two raw baselines, and from LK_PROTO on the kinds of
 * lock.h (LK_PROTO + n is enum ipcp_lock_kind IPCP_LOCK_KIND_FIRST + n). */
enum { LK_RAWMQ = 0, LK_RAWFUTEX = 1, LK_PROTO = 2 };

static const char *lk_name(int kind)
{
    if (kind == LK_RAWMQ) return "raw mq token";
    if (kind == LK_RAWFUTEX) return "raw futex mutex";
#if IPCP_BENCH_HAVE_LOCK
    const struct ipcp_lock_info *i = ipcp_lock_info(IPCP_LOCK_KIND_FIRST + (kind - LK_PROTO));
    if (i) return i->name;
#endif
    return "?";
}

struct lockrun {
    int kind;
    struct lockshm *sh;
    mqd_t q;
#if IPCP_BENCH_HAVE_LOCK
    struct ipcp_lock_ctx *ctx; /* created before the fork */
    struct ipcp_lock *h;       /* opened in each process (lockrun_attach) */
#endif
};

/* Creates the lock (before any fork). */
static int lockrun_open(struct lockrun *l, int kind, char *err, size_t cap)
{
    memset(l, 0, sizeof(*l));
    l->kind = kind;
    l->q = (mqd_t)-1;
    l->sh = mmap(NULL, sizeof(*l->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (l->sh == MAP_FAILED) {
        l->sh = NULL;
        return fail(err, cap, "mmap: %s", strerror(errno));
    }
    int rc = 0;
    if (kind == LK_RAWMQ) {
        l->q = mq_token_open(err, cap);
        if (l->q == (mqd_t)-1) rc = -1;
    }
#if IPCP_BENCH_HAVE_LOCK
    if (kind >= LK_PROTO) {
        struct ipcp_lock_cfg cfg = {.run_id = NULL, .workers = 2, .options = ""};
        int e = ipcp_lock_create(IPCP_LOCK_KIND_FIRST + (kind - LK_PROTO), &cfg, &l->ctx);
        if (e < 0) rc = fail(err, cap, "%s: lock_create: %s", lk_name(kind), ipcp_strerror(e));
    }
#endif
    if (rc < 0) {
        munmap(l->sh, sizeof(*l->sh));
        l->sh = NULL;
    }
    return rc;
}

/* Opens worker `index`'s endpoint in this process (after the fork). */
static int lockrun_attach(struct lockrun *l, uint32_t index)
{
#if IPCP_BENCH_HAVE_LOCK
    if (l->kind >= LK_PROTO) return ipcp_lock_open(l->ctx, index, &l->h);
#endif
    (void)l;
    (void)index;
    return 0;
}

static void lockrun_detach(struct lockrun *l)
{
#if IPCP_BENCH_HAVE_LOCK
    if (l->h) ipcp_lock_close(l->h);
    l->h = NULL;
#endif
    (void)l;
}

static void lockrun_close(struct lockrun *l)
{
    lockrun_detach(l);
#if IPCP_BENCH_HAVE_LOCK
    if (l->ctx) ipcp_lock_destroy(l->ctx);
    l->ctx = NULL;
#endif
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
        if (mq_token_lock(l->q) < 0) return -1;
        l->sh->counter++;
        return mq_token_unlock(l->q);
    case LK_RAWFUTEX:
        if (rawfutex_lock(&l->sh->futex) < 0) return -1;
        l->sh->counter++;
        rawfutex_unlock(&l->sh->futex);
        return 0;
    default:
#if IPCP_BENCH_HAVE_LOCK
        if (ipcp_lock_lock(l->h, B_OP_MS) != 0) return -1; /* 1 (a death) is a failure here */
        l->sh->counter++;
        return ipcp_lock_unlock(l->h) == 0 ? 0 : -1;
#else
        return -1;
#endif
    }
}

/* Uncontended: ns per lock + unlock in one process. */
static int lock_uncontended(int kind, long n, double v[2], char *err, size_t cap)
{
    struct lockrun l;
    if (lockrun_open(&l, kind, err, cap) < 0) return -1;
    int rc = lockrun_attach(&l, 0);
    if (rc < 0) {
        lockrun_close(&l);
        return fail(err, cap, "%s: open: %s", lk_name(kind), ipcp_strerror(rc));
    }
    watchdog_arm();
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (lockrun_cycle(&l) < 0) {
            watchdog_disarm();
            lockrun_close(&l);
            return fail(err, cap, "%s: lock/unlock %ld failed", lk_name(kind), i);
        }
    }
    int64_t dt = now_ns() - t0;
    watchdog_disarm();
    lockrun_close(&l);
    v[0] = (double)dt / (double)n;
    return 0;
}

struct lockjob {
    struct lockrun *l;
    struct gate *g;
    int k;
};

static int lock_worker(void *arg)
{
    struct lockjob *j = arg;
    if (lockrun_attach(j->l, (uint32_t)j->k) < 0) return 11;
    if (gate_child_ready(j->g) < 0) return 12;
    uint64_t n = 0;
    /* Acquire: pairs with the parent's release of stop (nothing else is ordered by it). */
    while (!ipcp_load_acquire32(&j->l->sh->stop)) {
        if (lockrun_cycle(j->l) < 0) return 13;
        n++;
    }
    j->l->sh->acq[j->k] = n; /* read by the parent after our 'd' through the gate pipe */
    lockrun_detach(j->l);
    return gate_child_done(j->g) < 0 ? 14 : 0;
}

/* Contended: two processes take the lock in a loop for the same time; acquisitions per second
 * in total. Both must be running for the lock to be contended: on an overloaded machine one of
 * them often is not (see docs/bench.md). The unprotected counter must come out exact, or the
 * lock is broken. */
static int lock_contended(int kind, double v[2], char *err, size_t cap)
{
    struct lockrun l;
    if (lockrun_open(&l, kind, err, cap) < 0) return -1;
    struct gate g;
    int rc = gate_open(&g), ok = 0;
    pid_t pid[2] = {-1, -1};
    if (rc < 0) {
        lockrun_close(&l);
        return fail(err, cap, "pipe: %s", ipcp_strerror(rc));
    }
    struct lockjob j[2] = {{.l = &l, .g = &g, .k = 0}, {.l = &l, .g = &g, .k = 1}};
    for (int k = 0; k < 2; k++) {
        pid[k] = spawn(lock_worker, &j[k]);
        if (pid[k] < 0) {
            fail(err, cap, "fork: %s", strerror(errno));
            goto out;
        }
    }
    gate_parent(&g);
    if (gate_wait(&g, 2, B_OP_MS) < 0) {
        fail(err, cap, "lock workers did not start");
        goto out;
    }
    watchdog_arm();
    int64_t t0 = now_ns();
    if (gate_go(&g, 2) < 0) {
        fail(err, cap, "lock workers gone");
        goto out;
    }
    double run_s = g_opt.mode == M_SMOKE ? 0.02 : calib_target_s();
    struct timespec ts = {0, (long)(run_s * 1e9)}; /* the length of the run, not a sync */
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !g_expired) {
    }
    /* Release: publishes the stop flag (the workers' loads acquire it). */
    ipcp_store_release32(&l.sh->stop, 1);
    if ((rc = gate_wait(&g, 2, B_RUN_LIMIT_S * 1000)) < 0) {
        fail(err, cap, "lock workers did not finish: %s", ipcp_strerror(rc));
        goto out;
    }
    int64_t dt = now_ns() - t0;
    for (int k = 0; k < 2; k++) {
        int st = reap(pid[k], B_REAP_MS);
        pid[k] = -1;
        if (st != 0) {
            fail(err, cap, "lock worker exited with status %d", st);
            goto out;
        }
    }
    uint64_t total = l.sh->acq[0] + l.sh->acq[1];
    if (l.sh->counter != total) {
        fail(err, cap, "%s: mutual exclusion broken (counter %" PRIu64 ", expected %" PRIu64 ")",
             lk_name(kind), (uint64_t)l.sh->counter, total);
        goto out;
    }
    v[0] = (double)total / ((double)dt / 1e9);
    v[1] = (double)(l.sh->acq[0] < l.sh->acq[1] ? l.sh->acq[0] : l.sh->acq[1]) /
           (double)(total ? total : 1); /* the smaller worker's share */
    ok = 1;
out:
    watchdog_disarm();
    kill_reap(pid[0]);
    kill_reap(pid[1]);
    gate_close(&g);
    lockrun_close(&l);
    return ok ? 0 : -1;
}

/* Side s of a lock case: 0 the protocol kind (c->xk), 1 raw mq token, 2 raw futex. */
static int run_lock(const struct bcase *c, int side, double v[2], char *err, size_t cap)
{
    int kind = side == 0 ? c->xk : side == 1 ? LK_RAWMQ : LK_RAWFUTEX;
    return c->variant ? lock_contended(kind, v, err, cap)
                      : lock_uncontended(kind, c->count, v, err, cap);
}

/* ---- mq handoff: against the same shm slots + READY/OK queues without the protocol -------- */

#if IPCP_BENCH_HAVE_HANDOFF
#define HO_SLOTS 4u /* pipelined slots (mq_maxmsg of each queue; <= msg_max 10) */

/* The raw mechanism: slots in a shared mapping, a READY and an OK queue of 32-byte messages
 * carrying (slot, len), no checksum, no validation. Queues are unlinked at once. */
struct rawho {
    uint8_t *slots;
    size_t slot_size, map_len;
    uint32_t nslots;
    mqd_t ready, ok;
};

struct rawho_msg {
    uint32_t slot, len;
    uint64_t pad[3];
};

static mqd_t raw_queue(uint32_t maxmsg)
{
    char name[64];
    snprintf(name, sizeof(name), "/ipcp.bench.%ld.%u", (long)getpid(), ++g_mq_seq);
    struct mq_attr at = {.mq_maxmsg = maxmsg, .mq_msgsize = sizeof(struct rawho_msg)};
    mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &at);
    if (q != (mqd_t)-1) mq_unlink(name);
    return q;
}

static void rawho_close(struct rawho *h)
{
    if (h->ready != (mqd_t)-1) mq_close(h->ready);
    if (h->ok != (mqd_t)-1) mq_close(h->ok);
    if (h->slots) munmap(h->slots, h->map_len);
    h->ready = h->ok = (mqd_t)-1;
    h->slots = NULL;
}

static int rawho_open(struct rawho *h, uint32_t nslots, size_t slot_size, char *err, size_t cap)
{
    memset(h, 0, sizeof(*h));
    h->ready = h->ok = (mqd_t)-1;
    h->nslots = nslots;
    h->slot_size = (slot_size + IPCP_CACHELINE - 1) & ~(size_t)(IPCP_CACHELINE - 1);
    h->map_len = h->slot_size * nslots;
    h->slots = mmap(NULL, h->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (h->slots == MAP_FAILED) {
        h->slots = NULL;
        return fail(err, cap, "mmap: %s", strerror(errno));
    }
    h->ready = raw_queue(nslots);
    h->ok = raw_queue(nslots);
    if (h->ready == (mqd_t)-1 || h->ok == (mqd_t)-1) {
        int e = errno;
        rawho_close(h);
        return fail(err, cap, "mq_open: %s", strerror(e));
    }
    return 0;
}

static int mq_put(mqd_t q, uint32_t slot, uint32_t len)
{
    struct rawho_msg m = {.slot = slot, .len = len};
    for (;;) {
        if (mq_send(q, (const char *)&m, sizeof(m), 0) == 0) return 0;
        if (errno != EINTR || g_expired) return -1;
    }
}

static int mq_get(mqd_t q, struct rawho_msg *m)
{
    for (;;) {
        ssize_t n = mq_receive(q, (char *)m, sizeof(*m), NULL);
        if (n == (ssize_t)sizeof(*m)) return m->slot < HO_SLOTS ? 0 : -1;
        if (n >= 0 || errno != EINTR || g_expired) return -1;
    }
}

/* Raw sender: waits for the slot's OK once all slots are in flight, copies, sends READY. */
static int rawho_send(struct rawho *h, uint64_t i, const void *src, size_t len)
{
    uint32_t slot = (uint32_t)(i % h->nslots);
    struct rawho_msg m;
    if (i >= h->nslots && mq_get(h->ok, &m) < 0) return -1;
    memcpy(h->slots + (size_t)slot * h->slot_size, src, len);
    return mq_put(h->ready, slot, (uint32_t)len);
}

/* Raw receiver: READY, copy out, OK (round trips send none: the reply is the flow control).
 * Returns the length. */
static ssize_t rawho_recv(struct rawho *h, void *dst, size_t cap, int send_ok)
{
    struct rawho_msg m;
    if (mq_get(h->ready, &m) < 0 || m.len > cap) return -1;
    memcpy(dst, h->slots + (size_t)m.slot * h->slot_size, m.len);
    if (send_ok && mq_put(h->ok, m.slot, 0) < 0) return -1;
    return (ssize_t)m.len;
}

struct hojob {
    const struct bcase *c;
    int side;
    struct gate *g;
    struct ipcp_handoff *ho, *back; /* side 0 (back: round trips, child -> parent) */
    struct rawho *raw, *rawback;    /* side 1 */
};

static int ho_sender(void *arg)
{
    struct hojob *j = arg;
    const struct bcase *c = j->c;
    uint8_t *src = balloc(c->size);
    if (src == NULL) return 10;
    memset(src, 0x5a, c->size);
    struct ipcp_handoff_ep *ep = NULL;
    if (j->side == 0 && ipcp_handoff_open(j->ho, IPCP_HANDOFF_SENDER, &ep) < 0) return 11;
    int rc = gate_child_ready(j->g) < 0 ? 12 : 0;
    for (long i = 0; i < c->count && rc == 0; i++) {
        if (j->side == 0)
            rc = ipcp_handoff_send(ep, src, c->size, B_OP_MS) < 0 ? 13 : 0;
        else
            rc = rawho_send(j->raw, (uint64_t)i, src, c->size) < 0 ? 14 : 0;
    }
    if (j->side == 0) {
        if (rc == 0 && ipcp_handoff_flush(ep, B_OP_MS) < 0) rc = 15;
        ipcp_handoff_close(ep);
    } else {
        struct rawho_msg m; /* the OKs still in flight */
        for (long i = 0; rc == 0 && i < (c->count < HO_SLOTS ? c->count : (long)HO_SLOTS); i++)
            if (mq_get(j->raw->ok, &m) < 0) rc = 16;
    }
    free(src);
    return rc;
}

/* Throughput: the child sends count messages through HO_SLOTS slots of the message size; side 1
 * is the raw slots + queues, side 2 memcpy. */
static int run_ho_tput(const struct bcase *c, int side, double v[2], char *err, size_t cap)
{
    if (side == 2) return run_memcpy(c, v, err, cap);
    struct gate g;
    struct ipcp_handoff *ho = NULL;
    struct ipcp_handoff_ep *ep = NULL;
    struct rawho raw = {.ready = (mqd_t)-1, .ok = (mqd_t)-1};
    struct hojob j = {.c = c, .side = side, .g = &g, .raw = &raw};
    int rc = gate_open(&g), ok = 0;
    pid_t pid = -1;
    uint8_t *buf = balloc(c->size);
    if (rc < 0 || buf == NULL) {
        if (rc == 0) gate_close(&g);
        free(buf);
        return fail(err, cap, "pipe or memory: %s", ipcp_strerror(rc < 0 ? rc : -ENOMEM));
    }
    if (side == 0) {
        struct ipcp_handoff_cfg cfg = {.stem = NULL, .nslots = HO_SLOTS, .slot_size = c->size};
        if ((rc = ipcp_handoff_create(&cfg, &ho)) < 0) {
            fail(err, cap, "handoff_create: %s", ipcp_strerror(rc));
            goto out;
        }
        j.ho = ho;
    } else if (rawho_open(&raw, HO_SLOTS, c->size, err, cap) < 0) {
        goto out;
    }
    pid = spawn(ho_sender, &j);
    if (pid < 0) {
        fail(err, cap, "fork: %s", strerror(errno));
        goto out;
    }
    gate_parent(&g);
    if (side == 0 && (rc = ipcp_handoff_open(ho, IPCP_HANDOFF_RECEIVER, &ep)) < 0) {
        fail(err, cap, "handoff_open: %s", ipcp_strerror(rc));
        goto out;
    }
    if (gate_wait(&g, 1, B_OP_MS) < 0) {
        fail(err, cap, "sender did not start (status %d)", reap(pid, B_REAP_MS));
        pid = -1;
        goto out;
    }
    watchdog_arm();
    int64_t t0 = now_ns();
    if (gate_go(&g, 1) < 0) {
        fail(err, cap, "sender gone");
        goto out;
    }
    for (long i = 0; i < c->count; i++) {
        ssize_t n = side == 0 ? ipcp_handoff_recv(ep, buf, c->size, B_OP_MS)
                              : rawho_recv(&raw, buf, c->size, 1);
        if (n != (ssize_t)c->size) {
            fail(err, cap, "receive of message %ld: %s", i,
                 n < 0 && side == 0 ? ipcp_strerror((int)n) : "failed");
            goto out;
        }
    }
    int64_t dt = now_ns() - t0;
    int st = reap(pid, B_REAP_MS);
    pid = -1;
    if (st != 0) {
        fail(err, cap, "sender exited with status %d", st);
        goto out;
    }
    v[0] = (double)c->size * (double)c->count / ((double)dt / 1e9) / 1e6;
    v[1] = (double)c->count / ((double)dt / 1e9);
    ok = 1;
out:
    watchdog_disarm();
    kill_reap(pid);
    if (ep) ipcp_handoff_close(ep);
    ipcp_handoff_destroy(ho);
    rawho_close(&raw);
    gate_close(&g);
    free(buf);
    return ok ? 0 : -1;
}

/* Echo child of a round-trip run: a 1-byte message ends it. */
static int ho_echo(void *arg)
{
    struct hojob *j = arg;
    uint8_t buf[B_SMALL];
    struct ipcp_handoff_ep *in = NULL, *out = NULL;
    if (j->side == 0 && (ipcp_handoff_open(j->ho, IPCP_HANDOFF_RECEIVER, &in) < 0 ||
                         ipcp_handoff_open(j->back, IPCP_HANDOFF_SENDER, &out) < 0))
        return 11;
    int rc = gate_child_ready(j->g) < 0 ? 12 : 0;
    for (uint64_t i = 0; rc == 0; i++) {
        ssize_t n = j->side == 0 ? ipcp_handoff_recv(in, buf, sizeof(buf), B_OP_MS)
                                 : rawho_recv(j->raw, buf, sizeof(buf), 0);
        if (n == 1) break;
        if (n != (ssize_t)sizeof(buf)) {
            rc = 13;
        } else if (j->side == 0) {
            rc = ipcp_handoff_send(out, buf, sizeof(buf), B_OP_MS) < 0 ? 14 : 0;
        } else {
            /* one message in flight each way: the round trip is the flow control */
            uint32_t slot = (uint32_t)(i % j->rawback->nslots);
            memcpy(j->rawback->slots + (size_t)slot * j->rawback->slot_size, buf, sizeof(buf));
            rc = mq_put(j->rawback->ready, slot, sizeof(buf)) < 0 ? 15 : 0;
        }
    }
    if (in) ipcp_handoff_close(in);
    if (out) ipcp_handoff_close(out);
    return rc;
}

/* 64-byte round trip: two handoffs (one each way), or the raw slots + READY queues each way
 * (the raw side needs no OK: one message in flight each way). */
static int run_ho_rtt(const struct bcase *c, int side, double v[2], char *err, size_t cap)
{
    long warm = warmup_of(c->count), got = 0;
    struct gate g;
    struct ipcp_handoff *h1 = NULL, *h2 = NULL;
    struct ipcp_handoff_ep *out = NULL, *in = NULL;
    struct rawho r1 = {.ready = (mqd_t)-1, .ok = (mqd_t)-1}, r2 = r1;
    struct hojob j = {.c = c, .side = side, .g = &g, .raw = &r1, .rawback = &r2};
    int rc = gate_open(&g), ok = 0;
    pid_t pid = -1;
    int64_t *lat = malloc(sizeof(int64_t) * (size_t)c->count);
    uint8_t buf[B_SMALL];
    memset(buf, 0x5a, sizeof(buf));
    if (rc < 0 || lat == NULL) {
        if (rc == 0) gate_close(&g);
        free(lat);
        return fail(err, cap, "pipe or memory: %s", ipcp_strerror(rc < 0 ? rc : -ENOMEM));
    }
    if (side == 0) {
        struct ipcp_handoff_cfg cfg = {.stem = NULL, .nslots = 2, .slot_size = B_SMALL};
        if ((rc = ipcp_handoff_create(&cfg, &h1)) < 0 ||
            (rc = ipcp_handoff_create(&cfg, &h2)) < 0) {
            fail(err, cap, "handoff_create: %s", ipcp_strerror(rc));
            goto out;
        }
        j.ho = h1;
        j.back = h2;
    } else if (rawho_open(&r1, 2, B_SMALL, err, cap) < 0 ||
               rawho_open(&r2, 2, B_SMALL, err, cap) < 0) {
        goto out;
    }
    pid = spawn(ho_echo, &j);
    if (pid < 0) {
        fail(err, cap, "fork: %s", strerror(errno));
        goto out;
    }
    gate_parent(&g);
    if (side == 0 && ((rc = ipcp_handoff_open(h1, IPCP_HANDOFF_SENDER, &out)) < 0 ||
                      (rc = ipcp_handoff_open(h2, IPCP_HANDOFF_RECEIVER, &in)) < 0)) {
        fail(err, cap, "handoff_open: %s", ipcp_strerror(rc));
        goto out;
    }
    if (gate_wait(&g, 1, B_OP_MS) < 0 || gate_go(&g, 1) < 0) {
        fail(err, cap, "echo process did not start");
        goto out;
    }
    watchdog_arm();
    struct rtt_clock rc_ = rtt_start(c->count);
    for (long i = 0; got < c->count; i++) {
        int64_t t0 = now_ns();
        if (rtt_done(&rc_, t0, got)) break;
        ssize_t n;
        if (side == 0) {
            rc = ipcp_handoff_send(out, buf, sizeof(buf), B_OP_MS);
            n = rc < 0 ? rc : ipcp_handoff_recv(in, buf, sizeof(buf), B_OP_MS);
        } else {
            uint32_t slot = (uint32_t)((uint64_t)i % r1.nslots);
            memcpy(r1.slots + (size_t)slot * r1.slot_size, buf, sizeof(buf));
            struct rawho_msg m = {0};
            n = mq_put(r1.ready, slot, sizeof(buf)) < 0 ? -1 : 0;
            if (n == 0) n = mq_get(r2.ready, &m) < 0 || m.len != sizeof(buf) ? -1 : (ssize_t)m.len;
            if (n > 0) memcpy(buf, r2.slots + (size_t)m.slot * r2.slot_size, sizeof(buf));
        }
        if (n != (ssize_t)sizeof(buf)) {
            fail(err, cap, "round trip %ld: %s", i,
                 n < 0 && side == 0 ? ipcp_strerror((int)n) : "failed");
            goto out;
        }
        if (i >= warm || t0 > rc_.warm_end) lat[got++] = now_ns() - t0;
    }
    /* A 1-byte message ends the echo process. */
    if (side == 0) {
        rc = ipcp_handoff_send(out, buf, 1, B_OP_MS);
    } else {
        rc = mq_put(r1.ready, 0, 1);
    }
    int st = rc < 0 ? -1 : reap(pid, B_REAP_MS);
    pid = -1;
    if (st != 0) {
        fail(err, cap, "echo process exited with status %d", st);
        goto out;
    }
    ok = rtt_result(lat, got, v, err, cap) == 0;
out:
    watchdog_disarm();
    kill_reap(pid);
    if (out) ipcp_handoff_close(out);
    if (in) ipcp_handoff_close(in);
    ipcp_handoff_destroy(h1);
    ipcp_handoff_destroy(h2);
    rawho_close(&r1);
    rawho_close(&r2);
    gate_close(&g);
    free(lat);
    return ok ? 0 : -1;
}
#endif

/* ---- the stress checker's overhead: verified against --no-verify ---------------------------- */

static const char *self_exe(void)
{
    static char path[PATH_MAX];
    if (path[0] == '\0') {
        ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
        if (n <= 0) return NULL;
        path[n] = '\0';
    }
    return path;
}

static const char *tmp_dir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

/* Runs `ipcproof ARGS --json F --quiet` (args[0] is "stress"), within the run limit; returns its
 * report (to json_decref) and the wall time, or NULL with err set (and the first line of its
 * output). */
static json_t *spawn_stress(const char *const *args, double *secs, char *err, size_t cap)
{
    const char *exe = self_exe();
    if (exe == NULL) return fail(err, cap, "cannot read /proc/self/exe"), NULL;
    char json[PATH_MAX - 16], log[PATH_MAX];
    snprintf(json, sizeof(json), "%s/ipcp-bench-%ld-XXXXXX", tmp_dir(), (long)getpid());
    int fd = mkstemp(json);
    if (fd < 0) return fail(err, cap, "mkstemp: %s", strerror(errno)), NULL;
    close(fd);
    snprintf(log, sizeof(log), "%s.log", json);
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)exe;
    for (int i = 0; args[i] != NULL && n < 36; i++)
        argv[n++] = (char *)args[i];
    argv[n++] = "--json";
    argv[n++] = json;
    argv[n++] = "--quiet";
    argv[n] = NULL;
    int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    struct st_child_opts o = {.out_fd = lf, .in_null = 1, .die_with_parent = 1};
    int64_t t0 = now_ns();
    pid_t pid = lf < 0 ? -errno : st_spawn_exec(&o, argv, NULL);
    if (lf >= 0) close(lf);
    json_t *root = NULL;
    if (pid < 0) {
        fail(err, cap, "fork: %s", strerror((int)-pid));
    } else {
        int st = reap(pid, B_RUN_LIMIT_S * 1000);
        *secs = (double)(now_ns() - t0) / 1e9;
        json_error_t je;
        root = json_load_file(json, 0, &je);
        const char *res = root ? json_string_value(json_object_get(root, "result")) : NULL;
        if (st != 0 || res == NULL || strcmp(res, "pass") != 0) {
            char line[120] = "";
            FILE *f = fopen(log, "r");
            if (f) {
                if (fgets(line, sizeof(line), f) == NULL) line[0] = '\0';
                line[strcspn(line, "\n")] = '\0';
                fclose(f);
            }
            fail(err, cap, "ipcproof %s exited with %d, result %s%s%s", args[0], st,
                 res ? res : "?", line[0] ? ": " : "", line);
            json_decref(root);
            root = NULL;
        }
    }
    unlink(json);
    unlink(log);
    return root;
}

/* stats.msgs_per_s of `ipcproof ARGS` (a stress run) into v[0]; 0 or -1 with err set. */
static int stress_mps(const char *const *args, double v[2], char *err, size_t cap)
{
    double secs;
    json_t *root = spawn_stress(args, &secs, err, cap);
    if (root == NULL) return -1;
    json_t *mps = json_object_get(json_object_get(root, "stats"), "msgs_per_s");
    int ok = json_is_number(mps) && json_number_value(mps) > 0;
    if (ok)
        v[0] = json_number_value(mps);
    else
        fail(err, cap, "stress reported no msgs/s");
    json_decref(root);
    return ok ? 0 : -1;
}

/* `ipcproof stress --proto frame-unix --messages N [--no-verify]`. */
static int run_stress(const struct bcase *c, int side, double v[2], char *err, size_t cap)
{
    char count[32];
    snprintf(count, sizeof(count), "%ld", c->count);
    const char *args[] = {
        "stress", "--proto", "frame-unix", "--messages", count, side ? "--no-verify" : NULL, NULL};
    return stress_mps(args, v, err, cap);
}

static const char *sanitizers(void);

/* ---- the black box's cost: programs as endpoints against a plugin on the same transport ------ */

/* The shell pair of stress/exec/examples (cat into a FIFO, cat out of it: the framing passes
 * through unchanged) against the built-in frame-fifo, both through `ipcproof stress`, so the
 * ratio is what a user pays for checking programs instead of a plugin. */
static const char *exec_examples(void)
{
#ifdef IPCP_SOURCE_DIR
    static char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/stress/exec/examples", IPCP_SOURCE_DIR);
    char probe[PATH_MAX + 32];
    snprintf(probe, sizeof(probe), "%s/shell_producer.sh", dir);
    if (access(probe, X_OK) == 0) return dir;
#endif
    return NULL;
}

static int run_exec(const struct bcase *c, int side, double v[2], char *err, size_t cap)
{
    char count[32], p[4][PATH_MAX + 32];
    snprintf(count, sizeof(count), "%ld", c->count);
    const char *dir = exec_examples();
    if (dir == NULL) return fail(err, cap, "no stress/exec/examples");
    static const char *const files[] = {"shell_producer.sh", "shell_consumer.sh", "shell_setup.sh",
                                        "fifo_teardown.sh"};
    for (int i = 0; i < 4; i++)
        snprintf(p[i], sizeof(p[i]), "%s/%s", dir, files[i]);
    const char *exec_args[] = {"stress", "--exec-producer",
                               p[0],     "--exec-consumer",
                               p[1],     "--exec-setup",
                               p[2],     "--exec-teardown",
                               p[3],     "--messages",
                               count,    "--seed",
                               "1",      NULL};
    const char *plugin_args[] = {"stress", "--proto", "frame-fifo", "--messages",
                                 count,    "--seed",  "1",          NULL};
    return stress_mps(side == 0 ? exec_args : plugin_args, v, err, cap);
}

/* ---- the scheduler's cost: a schedule against the same work on the OS's scheduler ---------- */

/* The workloads of issue 12: the example ring, 2 threads and 16 messages; the example robust
 * mutex, 3 contenders and 20 acquisitions each. Side 0 runs c->count schedules in one `--mode
 * sched` run (the TSan build of the plugin); side 1 runs the same workload in `--mode thread`
 * (the plain build), one run per process, SCHED_B_UNSCHED times. Both figures are runs of the
 * workload per second of wall time, process start included (side 1 pays it every run). */
#define SCHED_B_UNSCHED 10
static const struct {
    const char *plugin, *args[8];
} sched_work[] = {
    {"good_ring",
     {"--kind", "channel", "--producers", "1", "--consumers", "1", "--messages", "16"}},
    {"good_robust_mutex", {"--kind", "lock", "--workers", "3", "--messages", "20", NULL, NULL}},
};

static const char *sched_plugin(int w, int tsan)
{
    static char path[2][2][PATH_MAX];
    const char *exe = self_exe();
    if (exe == NULL) return NULL;
    const char *slash = strrchr(exe, '/');
    snprintf(path[w][tsan], sizeof(path[w][tsan]), "%.*s/plugins/%s%s.so",
             (int)(slash ? slash - exe : 1), slash ? exe : ".", tsan ? "tsan/" : "",
             sched_work[w].plugin);
    return access(path[w][tsan], R_OK) == 0 ? path[w][tsan] : NULL;
}

static int run_sched(const struct bcase *c, int side, double v[2], char *err, size_t cap)
{
    const char *plugin = sched_plugin(c->variant, side == 0);
    if (plugin == NULL) return fail(err, cap, "no example plugin next to ipcproof");
    char count[32];
    snprintf(count, sizeof(count), "%ld", c->count);
    const char *args[24] = {"stress", "--plugin", plugin, "--mode", side ? "thread" : "sched",
                            "--seed", "1"};
    int n = 7;
    for (int i = 0; i < 8 && sched_work[c->variant].args[i]; i++)
        args[n++] = sched_work[c->variant].args[i];
    if (side == 0) args[n++] = "--schedules", args[n++] = count;
    args[n] = NULL;
    int runs = side == 0 ? 1 : SCHED_B_UNSCHED;
    double total = 0;
    for (int r = 0; r < runs; r++) {
        double secs;
        json_t *root = spawn_stress(args, &secs, err, cap);
        if (root == NULL) return -1;
        json_decref(root);
        total += secs;
    }
    v[0] = (side == 0 ? (double)c->count : (double)runs) / total;
    return 0;
}

/* ---- the driver ------------------------------------------------------------------------------ */

static int case_selected(const struct bcase *c)
{
    return g_opt.only == NULL || strstr(c->stem, g_opt.only) != NULL ||
           strcmp(c->group, g_opt.only) == 0;
}

static void build_cases(void)
{
    static const size_t sizes[] = {64, 4096, 65536, 1u << 20};
    static const long tput_count[] = {200000, 40000, 4000, 250};
    static const long ring_count[] = {2000000, 200000, 12000, 800};
    struct bcase *c;

    for (int xk = 0; xk < XK_N; xk++) {
        for (size_t k = 0; k < IPCP_ARRAY_SIZE(sizes); k++) {
            c = add_case("frame", K_TPUT, run_fd_tput, "frame-%s/%s", xk_name[xk],
                         size_label(sizes[k]));
            c->xk = xk;
            c->size = sizes[k];
            c->count = scaled(tput_count[k], 20);
            c->side_name[0] = "frame";
            c->side_name[1] = xk_raw[xk];
            if (sizes[k] == 64) c->aim_op = AIM_GE, c->aim = 0.75;
            if (sizes[k] == 65536) c->aim_op = AIM_GE, c->aim = 0.90;
        }
        c = add_case("frame", K_RTT, run_fd_rtt, "frame-%s/64B", xk_name[xk]);
        c->xk = xk;
        c->size = 64;
        c->count = scaled(20000, 200);
        c->side_name[0] = "frame";
        c->side_name[1] = xk_raw[xk];
    }

    for (int zc = 0; zc < 2; zc++) {
        for (size_t k = 0; k < IPCP_ARRAY_SIZE(sizes); k++) {
            if (zc && sizes[k] > B_RING_CAP - IPCP_RING_REC_HDR) continue; /* one record only */
            c = add_case("ring", K_TPUT, run_ring_tput, "%s/%s", zc ? "ring-zc" : "ring",
                         size_label(sizes[k]));
            c->size = sizes[k];
            c->count = scaled(ring_count[k], 20);
            c->variant = zc;
            c->side_name[0] = zc ? "ring reserve/commit+peek/release" : "ring send/recv";
            c->nsides = 3;
            c->side_name[1] = "minimal shm SPSC ring";
            c->side_name[2] = "memcpy 1 thread";
            c->side_tag[2] = "memcpy"; /* ring/<size>/throughput/vs-memcpy: the limit, no aim */
            c->aim_op = AIM_GE;
            c->aim = zc ? 1.0 : 0.90;
        }
    }
    c = add_case("ring", K_RTT, run_ring_rtt, "ring/64B");
    c->size = 64;
    c->count = scaled(50000, 200);
    c->side_name[0] = "ring send/recv";
    c->side_name[1] = "raw shm spin ping-pong";
    c->aim_op = AIM_LE;
    c->aim = 1.5;

    /* sysv-msg, mq-chan, condvar-queue against their raw mechanisms, ring-sysv against ring */
    for (size_t ch = 0; ch < st_bench_nchans; ch++) {
        for (size_t k = 0; k < IPCP_ARRAY_SIZE(sizes); k++) {
            c = add_case("chan", K_TPUT, run_chan_tput, "%s/%s", st_bench_chans[ch].stem,
                         size_label(sizes[k]));
            c->xk = (int)ch;
            c->size = sizes[k];
            c->count = scaled(tput_count[k], 20);
            c->side_name[0] = st_bench_chans[ch].proto->name;
            c->side_name[1] = st_bench_chans[ch].raw->name;
        }
    }

#if IPCP_BENCH_HAVE_HANDOFF
    for (size_t k = 0; k < IPCP_ARRAY_SIZE(sizes); k++) {
        c = add_case("handoff", K_TPUT, run_ho_tput, "handoff/%s", size_label(sizes[k]));
        c->size = sizes[k];
        c->count = scaled(tput_count[k], 20);
        c->nsides = 3;
        c->side_name[0] = "mq handoff";
        c->side_name[1] = "raw shm slots + mq READY/OK";
        c->side_name[2] = "memcpy 1 thread";
        c->side_tag[1] = "raw";
        c->side_tag[2] = "memcpy";
    }
    c = add_case("handoff", K_RTT, run_ho_rtt, "handoff/64B");
    c->size = 64;
    c->count = scaled(20000, 200);
    c->side_name[0] = "mq handoff";
    c->side_name[1] = "raw shm slot + mq READY";
#endif

    /* Locks: each kind of lock.h against a raw mq token and a raw futex mutex. */
#if IPCP_BENCH_HAVE_LOCK
    for (int k = LK_PROTO; k <= LK_PROTO + (IPCP_LOCK_KIND_LAST - IPCP_LOCK_KIND_FIRST); k++) {
        for (int contended = 0; contended < 2; contended++) {
            c = add_case("lock", K_SCALAR, run_lock, "lock-%s/%s", lk_name(k),
                         contended ? "contended" : "uncontended");
            c->xk = k;
            c->variant = contended;
            c->unit = contended ? "acq/s" : "ns";
            c->lower_better = !contended;
            c->count = contended ? 0 : scaled(200000, 200); /* contended: a fixed time */
            c->calibrate = !contended;
            c->extra = contended ? "min_share" : NULL;
            c->nsides = 3;
            c->side_name[0] = lk_name(k);
            c->side_name[1] = lk_name(LK_RAWMQ);
            c->side_name[2] = lk_name(LK_RAWFUTEX);
            c->side_tag[1] = "mq";
            c->side_tag[2] = "futex";
        }
    }
#endif

    for (int w = 0; w < (int)IPCP_ARRAY_SIZE(sched_work); w++) {
        c = add_case("sched", K_SCALAR, run_sched, "sched/%s",
                     w == 0 ? "ring-2t-16msg" : "lock-3w-20acq");
        c->variant = w;
        c->unit = "runs/s";
        c->count = scaled(400, 4); /* schedules in the sched run */
        c->calibrate = 0;
        c->side_name[0] = "one schedule (--mode sched)";
        c->side_name[1] = "one run on the OS scheduler (--mode thread)";
        if (strcmp(sanitizers(), "none") != 0)
            c->na = "--mode sched needs a build of ipcproof without sanitizers";
        else if (sched_plugin(w, 1) == NULL || sched_plugin(w, 0) == NULL)
            c->na = "the example plugins are not next to ipcproof (a build tree's stress/)";
#ifdef IPCP_BENCH_STANDALONE
        c->na = "stress not available";
#endif
    }

    c = add_case("stress", K_SCALAR, run_exec, "exec/fifo-shell-pair");
    c->unit = "msgs/s";
    c->count = scaled(100000, 2000);
    c->side_name[0] = "programs (--exec-*: cat into a FIFO, cat out)";
    c->side_name[1] = "plugin (--proto frame-fifo)";
    if (exec_examples() == NULL) c->na = "stress/exec/examples is not at hand (a source checkout)";
#ifdef IPCP_BENCH_STANDALONE
    c->na = "stress not available";
#endif

    c = add_case("stress", K_SCALAR, run_stress, "stress-verify/frame-unix");
    c->unit = "msgs/s";
    c->count = scaled(200000, 2000);
    c->side_name[0] = "stress (verified)";
    c->side_name[1] = "stress --no-verify";
    c->aim_op = AIM_GE;
    c->aim = 0.85;
    c->calibrate = 0; /* each run is a whole stress case; its count is fixed */
#ifdef IPCP_BENCH_STANDALONE
    c->na = "stress not available";
#endif
}

static const char *row_unit(const struct bcase *c)
{
    return c->kind == K_TPUT ? "MB/s" : c->kind == K_RTT ? "us" : c->unit;
}

static struct brow *new_row(const struct bcase *c, int base, const char *suffix)
{
    if (g_nrows >= B_MAX_ROWS) return NULL;
    struct brow *r = &g_rows[g_nrows++];
    memset(r, 0, sizeof(*r));
    const char *tag = c->nsides > 2 && c->side_tag[base] ? c->side_tag[base] : NULL;
    snprintf(r->name, sizeof(r->name), "%.63s%s%.12s%s%.12s", c->stem, suffix[0] ? "/" : "", suffix,
             tag ? "/vs-" : "", tag ? tag : "");
    r->unit = row_unit(c);
    r->baseline_name = c->side_name[base];
    r->reps = g_opt.reps;
    r->count = c->count;
    r->na = c->na;
    return r;
}

/* Runs the sides of one case alternately, reps times, and appends its rows. */
static int run_case(const struct bcase *c)
{
    int reps = g_opt.reps;
    double val[B_MAX_SIDES][B_MAX_REPS][2];
    char err[200] = "";
    int failed = 0;
    struct bcase cc = *c;
    if (c->na == NULL && c->calibrate && g_opt.mode != M_SMOKE) {
        /* One run of each side, discarded: warms up, and scales the count so that a run of the
         * slowest side lasts about the target time (short runs are all noise on a shared
         * machine, long ones make the whole bench slow). */
        double slowest = 0;
        for (int k = 0; k < c->nsides && !failed; k++) {
            double v[2];
            int64_t t0 = now_ns();
            if (c->run(&cc, k, v, err, sizeof(err)) < 0) failed = 1;
            double dt = (double)(now_ns() - t0) / 1e9;
            if (dt > slowest) slowest = dt;
        }
        double f = slowest > 0 ? calib_target_s() / slowest : 64;
        f = f > 64 ? 64 : f < 1.0 / 16 ? 1.0 / 16 : f;
        cc.count = (long)((double)cc.count * f);
        if (cc.count < 20) cc.count = 20;
    }
    c = &cc;
    if (c->na == NULL && !failed) {
        for (int r = 0; r < reps && !failed; r++) {
            for (int k = 0; k < c->nsides && !failed; k++) {
                int side = r % 2 == 0 ? k : c->nsides - 1 - k; /* ABBA: drift cancels */
                double v[2] = {0, 0};
                if (c->run(c, side, v, err, sizeof(err)) < 0) {
                    failed = 1;
                    break;
                }
                val[side][r][0] = v[0];
                val[side][r][1] = v[1];
            }
        }
    }
    int nmetric = c->kind == K_RTT ? 2 : 1;
    for (int m = 0; m < nmetric; m++) {
        for (int b = 1; b < c->nsides; b++) {
            const char *suffix = c->kind == K_TPUT  ? "throughput"
                                 : c->kind == K_RTT ? (m == 0 ? "rtt-p50" : "rtt-p99")
                                                    : "";
            struct brow *row = new_row(c, b, suffix);
            if (row == NULL) return -1;
            if (m == 0 && b == 1) { /* an aim is against the first baseline */
                row->aim_op = c->aim_op;
                row->aim = c->aim;
            }
            if (c->na) continue;
            if (failed) {
                snprintf(row->error, sizeof(row->error), "%s", err);
                continue;
            }
            double p[B_MAX_REPS], q[B_MAX_REPS], ratio[B_MAX_REPS];
            for (int r = 0; r < reps; r++) {
                p[r] = val[0][r][m];
                q[r] = val[b][r][m];
                ratio[r] = q[r] > 0 ? p[r] / q[r] : 0;
            }
            row->value = median(p, reps);
            row->baseline = median(q, reps);
            row->ratio = median(ratio, reps);
            row->rmin = row->rmax = ratio[0];
            for (int r = 1; r < reps; r++) {
                if (ratio[r] < row->rmin) row->rmin = ratio[r];
                if (ratio[r] > row->rmax) row->rmax = ratio[r];
            }
            if (c->extra) {
                for (int r = 0; r < reps; r++) {
                    p[r] = val[0][r][1];
                    q[r] = val[b][r][1];
                }
                row->extra = c->extra;
                row->xval = median(p, reps);
                row->xbase = median(q, reps);
            }
        }
    }
    return failed ? -1 : 0;
}

/* ---- output ------------------------------------------------------------------------------- */

static void human(double v, char *buf, size_t cap)
{
    if (v >= 1e9)
        snprintf(buf, cap, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, cap, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, cap, "%.1fk", v / 1e3);
    else
        snprintf(buf, cap, "%.1f", v);
}

static void figure(const char *unit, double v, char *buf, size_t cap)
{
    if (strcmp(unit, "us") == 0)
        snprintf(buf, cap, "%.2f", v);
    else if (strcmp(unit, "MB/s") == 0 || strcmp(unit, "ns") == 0)
        snprintf(buf, cap, "%.1f", v);
    else
        human(v, buf, cap);
}

static int aim_met(const struct brow *r)
{
    return r->aim_op == AIM_GE ? r->ratio >= r->aim : r->ratio <= r->aim;
}

#define NOISY_SPREAD 1.5 /* the best repetition's ratio this many times the worst's */

/* A row cannot say met or missed when its repetitions disagree about the aim (some meet it,
 * others miss it, the best ratio NOISY_SPREAD times the worst), or when it was measured while
 * the machine had more runnable work than CPUs and its median is within NOISY_SPREAD of the
 * aim: a baseline that collapsed under load once made a round trip "met". A row far from its
 * aim in every repetition keeps its verdict. Fills r->noisy with why. */
static void row_noise(struct brow *r)
{
    r->noisy[0] = '\0';
    if (r->aim_op == AIM_NONE || r->na || r->error[0] || r->reps < 2 || r->rmin <= 0) return;
    int straddle = r->aim_op == AIM_GE ? r->rmin < r->aim && r->aim <= r->rmax
                                       : r->rmin <= r->aim && r->aim < r->rmax;
    if (straddle && r->rmax / r->rmin >= NOISY_SPREAD) {
        snprintf(r->noisy, sizeof(r->noisy),
                 "repetitions disagree: ratios %.3g to %.3g about the aim", r->rmin, r->rmax);
        return;
    }
    double load = 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    FILE *f = fopen("/proc/loadavg", "re");
    if (f != NULL) {
        if (fscanf(f, "%lf", &load) != 1) load = 0;
        fclose(f);
    }
    if (ncpu > 0 && load > (double)ncpu && r->ratio * NOISY_SPREAD >= r->aim &&
        r->ratio <= r->aim * NOISY_SPREAD)
        snprintf(r->noisy, sizeof(r->noisy), "load %.2f on %ld CPUs, ratio near the aim", load,
                 ncpu);
}

static void print_header(void)
{
    printf("%-38s %-6s %10s %10s %6s %6s %6s %7s %-6s %s\n", "row", "unit", "protocol", "baseline",
           "ratio", "min", "max", "aim", "", "baseline is");
}

static void print_row(const struct brow *r)
{
    char a[32], b[32], aim[16] = "";
    if (r->aim_op != AIM_NONE)
        snprintf(aim, sizeof(aim), "%s%.2f", r->aim_op == AIM_GE ? ">=" : "<=", r->aim);
    if (r->na) {
        printf("%-38s %-6s n/a (%s)\n", r->name, r->unit, r->na);
    } else if (r->error[0]) {
        printf("%-38s %-6s FAILED: %s\n", r->name, r->unit, r->error);
    } else {
        figure(r->unit, r->value, a, sizeof(a));
        figure(r->unit, r->baseline, b, sizeof(b));
        printf("%-38s %-6s %10s %10s %6.2f %6.2f %6.2f %7s %-6s %s%s%s%s\n", r->name, r->unit, a, b,
               r->ratio, r->rmin, r->rmax, aim,
               r->aim_op == AIM_NONE ? ""
               : r->noisy[0]         ? "noisy"
               : aim_met(r)          ? "met"
                                     : "MISSED",
               r->baseline_name, r->noisy[0] ? " (" : "", r->noisy, r->noisy[0] ? ")" : "");
        if (r->extra && strcmp(r->extra, "msgs_per_s") == 0) {
            human(r->xval, a, sizeof(a));
            human(r->xbase, b, sizeof(b));
            printf("%-38s %-6s %10s %10s\n", "", "msg/s", a, b);
        } else if (r->extra) {
            printf("%-38s %-6s %10.2f %10.2f\n", "", "share", r->xval, r->xbase);
        }
    }
    fflush(stdout);
}

static void read_line(const char *path, const char *key, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL) return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        if (key == NULL || strncmp(line, key, strlen(key)) == 0) {
            char *p = key ? strchr(line, ':') : line;
            p = p ? (key ? p + 1 : p) : line;
            while (*p == ' ' || *p == '\t')
                p++;
            p[strcspn(p, "\n")] = '\0';
            snprintf(buf, cap, "%.*s", (int)(cap - 1), p);
            break;
        }
    }
    fclose(f);
}

struct machine {
    long ncpu;
    char cpu[256], kernel[128], load0[128], load1[128];
};

static const char *sanitizers(void)
{
#if defined(IPCP_TSAN)
    return "thread";
#elif defined(IPCP_ASAN)
    return "address";
#else
    return "none";
#endif
}

#ifdef __clang__
#define B_COMPILER "clang " __clang_version__
#else
#define B_COMPILER "gcc " __VERSION__
#endif

static int optimized(void)
{
#ifdef __OPTIMIZE__
    return 1;
#else
    return 0;
#endif
}

static int write_json(const char *path, const struct machine *m, double seconds)
{
    json_t *root = json_object();
    json_object_set_new(root, "tool", json_string("ipcproof bench"));
    json_object_set_new(root, "mode", json_string(mode_name[g_opt.mode]));
    json_object_set_new(root, "reps", json_integer(g_opt.reps));
    json_object_set_new(root, "seconds", json_real(seconds));
    json_t *mj = json_object();
    json_object_set_new(mj, "cpus", json_integer(m->ncpu));
    json_object_set_new(mj, "cpu", json_string(m->cpu));
    json_object_set_new(mj, "kernel", json_string(m->kernel));
    json_object_set_new(mj, "loadavg_start", json_string(m->load0));
    json_object_set_new(mj, "loadavg_end", json_string(m->load1));
    json_object_set_new(mj, "compiler", json_string(B_COMPILER));
    json_object_set_new(mj, "optimized", json_boolean(optimized()));
    json_object_set_new(mj, "sanitizers", json_string(sanitizers()));
    json_object_set_new(root, "machine", mj);
    json_t *rows = json_array();
    for (int i = 0; i < g_nrows; i++) {
        const struct brow *r = &g_rows[i];
        json_t *o = json_object();
        int have = r->na == NULL && r->error[0] == '\0';
        json_object_set_new(o, "name", json_string(r->name));
        json_object_set_new(o, "unit", json_string(r->unit));
        json_object_set_new(o, "value", have ? json_real(r->value) : json_null());
        json_object_set_new(o, "baseline_name", json_string(r->baseline_name));
        json_object_set_new(o, "baseline", have ? json_real(r->baseline) : json_null());
        json_object_set_new(o, "ratio", have ? json_real(r->ratio) : json_null());
        json_object_set_new(o, "min_ratio", have ? json_real(r->rmin) : json_null());
        json_object_set_new(o, "max_ratio", have ? json_real(r->rmax) : json_null());
        json_object_set_new(o, "reps", json_integer(r->reps));
        if (r->count > 0) json_object_set_new(o, "count", json_integer(r->count));
        json_object_set_new(o, "case_seconds", json_real(r->seconds));
        if (r->extra && have) {
            char key[64];
            snprintf(key, sizeof(key), "baseline_%s", r->extra);
            json_object_set_new(o, r->extra, json_real(r->xval));
            json_object_set_new(o, key, json_real(r->xbase));
        }
        if (r->aim_op != AIM_NONE) {
            char aim[16];
            snprintf(aim, sizeof(aim), "%s%.2f", r->aim_op == AIM_GE ? ">=" : "<=", r->aim);
            json_object_set_new(o, "aim", json_string(aim));
            if (have) json_object_set_new(o, "aim_met", json_boolean(aim_met(r)));
            if (have)
                json_object_set_new(o, "verdict",
                                    json_string(r->noisy[0]  ? "noisy"
                                                : aim_met(r) ? "met"
                                                             : "missed"));
            if (r->noisy[0]) json_object_set_new(o, "noisy", json_string(r->noisy));
        }
        if (r->na) json_object_set_new(o, "na", json_string(r->na));
        if (r->error[0]) json_object_set_new(o, "error", json_string(r->error));
        json_array_append_new(rows, o);
    }
    json_object_set_new(root, "rows", rows);
    int rc = json_dump_file(root, path, JSON_INDENT(1) | JSON_REAL_PRECISION(6));
    json_decref(root);
    if (rc != 0) fprintf(stderr, "ipcproof bench: cannot write %s\n", path);
    return rc == 0 ? 0 : -1;
}

static const char usage_text[] =
    "usage: ipcproof bench [--quick | --smoke] [--reps N] [--only TEXT] [--json FILE]\n"
    "  every protocol against its raw mechanism, sides interleaved; ratio = protocol/baseline,\n"
    "  median of N repetitions (default 5) with min and max\n"
    "  --quick      smaller counts (under a minute on 2 cores)\n"
    "  --smoke      tiny counts, 1 repetition: checks that every row runs (figures meaningless)\n"
    "  --reps N     repetitions of each side (1..31)\n"
    "  --only TEXT  rows whose name contains TEXT, or a group: frame ring chan lock handoff "
    "stress\n"
    "  --json FILE  the rows as JSON: {\"machine\":{...},\"rows\":[{\"name\",\"unit\",\"value\",\n"
    "               "
    "\"baseline_name\",\"baseline\",\"ratio\",\"min_ratio\",\"max_ratio\",\"reps\",...}]}\n";

int st_bench_main(int argc, char **argv)
{
    enum { O_QUICK = 1, O_SMOKE, O_REPS, O_ONLY, O_JSON, O_HELP };
    static const struct option opts[] = {{"quick", no_argument, NULL, O_QUICK},
                                         {"smoke", no_argument, NULL, O_SMOKE},
                                         {"reps", required_argument, NULL, O_REPS},
                                         {"only", required_argument, NULL, O_ONLY},
                                         {"json", required_argument, NULL, O_JSON},
                                         {"help", no_argument, NULL, O_HELP},
                                         {NULL, 0, NULL, 0}};
    memset(&g_opt, 0, sizeof(g_opt));
    g_opt.reps = -1;
    optind = 1;
    opterr = 0;
    for (;;) {
        int o = getopt_long(argc, argv, "", opts, NULL);
        if (o == -1) break;
        switch (o) {
        case O_QUICK:
            g_opt.mode = M_QUICK;
            break;
        case O_SMOKE:
            g_opt.mode = M_SMOKE;
            break;
        case O_REPS: {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end != '\0' || n < 1 || n > B_MAX_REPS) {
                fprintf(stderr, "ipcproof bench: --reps must be 1..%d\n", B_MAX_REPS);
                return 2;
            }
            g_opt.reps = (int)n;
            break;
        }
        case O_ONLY:
            g_opt.only = optarg;
            break;
        case O_JSON:
            g_opt.json = optarg;
            break;
        case O_HELP:
            fputs(usage_text, stdout);
            return 0;
        default:
            fprintf(stderr, "ipcproof bench: bad option '%s'\n", argv[optind - 1]);
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ipcproof bench: unexpected argument '%s'\n", argv[optind]);
        fputs(usage_text, stderr);
        return 2;
    }
    if (g_opt.reps < 0) g_opt.reps = g_opt.mode == M_SMOKE ? 1 : 5;

    /* A reader gone is an error return, never a signal; a pipe channel then also skips its
     * per-write SIGPIPE mask (fdchan.h), as a server that ignores SIGPIPE would. */
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm; /* no SA_RESTART: a blocked call returns EINTR */
    sigemptyset(&sa.sa_mask);
    struct sigaction old_alarm;
    sigaction(SIGALRM, &sa, &old_alarm);

    struct machine m;
    memset(&m, 0, sizeof(m));
    m.ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    read_line("/proc/cpuinfo", "model name", m.cpu, sizeof(m.cpu));
    struct utsname u;
    if (uname(&u) == 0) snprintf(m.kernel, sizeof(m.kernel), "%s", u.release);
    read_line("/proc/loadavg", NULL, m.load0, sizeof(m.load0));

    g_ncases = g_nrows = 0;
    build_cases();
    printf("ipcproof bench (%s): %d alternating repetition%s per row; ratio = protocol / "
           "baseline, median with min and max\n",
           mode_name[g_opt.mode], g_opt.reps, g_opt.reps == 1 ? "" : "s");
    printf("machine: %ld CPUs, %s, Linux %s, load %s\n", m.ncpu, m.cpu[0] ? m.cpu : "?", m.kernel,
           m.load0);
    printf("build: %s, %s, sanitizers: %s\n", B_COMPILER,
           optimized() ? "optimized" : "NOT optimized", sanitizers());
    if (!optimized() || strcmp(sanitizers(), "none") != 0)
        printf("warning: figures of an unoptimized or sanitized build say little about a "
               "release build\n");
    if (g_opt.mode == M_SMOKE) printf("smoke mode: the figures mean nothing\n");
    printf("\n");
    print_header();

    int64_t t0 = now_ns();
    int failures = 0, selected = 0;
    for (int i = 0; i < g_ncases; i++) {
        if (!case_selected(&g_cases[i])) continue;
        selected++;
        int first = g_nrows;
        int64_t c0 = now_ns();
        if (run_case(&g_cases[i]) < 0) failures++;
        for (int k = first; k < g_nrows; k++)
            g_rows[k].seconds = (double)(now_ns() - c0) / 1e9;
        for (int k = first; k < g_nrows; k++) {
            row_noise(&g_rows[k]);
            print_row(&g_rows[k]);
        }
    }
    double seconds = (double)(now_ns() - t0) / 1e9;
    read_line("/proc/loadavg", NULL, m.load1, sizeof(m.load1));
    printf("\n%d row%s in %.1f s; load at the end %s\n", g_nrows, g_nrows == 1 ? "" : "s", seconds,
           m.load1);
    sigaction(SIGALRM, &old_alarm, NULL);
    if (selected == 0) {
        fprintf(stderr, "ipcproof bench: no row matches --only %s\n", g_opt.only);
        return 2;
    }
    if (g_opt.json && write_json(g_opt.json, &m, seconds) < 0) return 1;
    return failures ? 1 : 0;
}

#ifdef IPCP_BENCH_STANDALONE
/* A bench-only binary: `bench-standalone [bench] [options]`. */
int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "bench") == 0) return st_bench_main(argc - 1, argv + 1);
    return st_bench_main(argc, argv);
}
#endif
