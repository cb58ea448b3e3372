/* bench.h - `ipcproof bench`: every protocol of libipcproof measured against its raw mechanism
 * and the physical limit in one interleaved run (figures in docs/bench.md).
 *
 * The module, one prefix (bench_) across its files:
 *   driver.c     options, the cases of every family, the interleaved repetitions, the table and
 *                the JSON (report.c: verdicts, table rows, JSON)
 *   pair.c       the skeleton of every two-process measurement (gate, fork, watchdog, go, loop,
 *                reap, rate) and the helpers every family shares
 *   raw.c        the raw baselines: plain fd transfers, memcpy, the minimal SPSC ring, the spin
 *                ping-pong, the futex mutex and mq token, raw handoff slots
 *   rawchan.c    the raw baselines that run through the plugin ABI (msgsnd, mq_send, a plain
 *                mutex + condvar queue)
 *   <family>.c   one file per family exporting its case table: frame, ring, chan, handoff, lock,
 *                sched, exec, stress
 * A family supplies, for each side of a row, either pair operations (setup / child / step /
 * teardown, run by the pair runner) or a run function of its own (single-thread baselines, the
 * two-worker lock runs, whole `ipcproof stress` runs). Adding a row is adding a table entry. */
#ifndef IPCP_BENCH_H
#define IPCP_BENCH_H

#include <mqueue.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipcproof/fdchan.h"
#include "ipcproof/plugin.h"

/* Entry of the subcommand; argv[0] is "bench". Prints the table on stdout (and the rows as JSON
 * with --json FILE). Returns 0 when every row was measured (missed aims included: a benchmark
 * reports, it does not judge), 1 when a measurement failed, 2 on a usage error. */
int st_bench_main(int argc, char **argv);

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
#define B_NSIZES      4 /* 64 B, 4 KiB, 64 KiB, 1 MiB: bench_sizes[] */
#define B_ALL_SIZES   0xfu
#define B_TPUT_COUNTS                                                                              \
    {                                                                                              \
        200000, 40000, 4000, 250                                                                   \
    } /* full-mode messages per size */

enum bench_mode { BENCH_FULL = 0, BENCH_QUICK, BENCH_SMOKE };
extern enum bench_mode bench_mode;
extern const size_t bench_sizes[B_NSIZES];

/* ---- cases -------------------------------------------------------------------------------- */

enum bench_kind {
    K_TPUT,  /* v[0] MB/s, v[1] msgs/s: one row per baseline */
    K_RTT,   /* v[0] p50 us, v[1] p99 us: a p50 and a p99 row per baseline */
    K_SCALAR /* v[0] only (v[1]: the `extra` figure when there is one) */
};
enum bench_aimop { AIM_NONE = 0, AIM_GE, AIM_LE };

struct bench_case;
struct bench_side;

/* One side of a two-process run (pair.c): st is the family's state (state_size bytes, zeroed),
 * n the messages the child sends. */
struct bench_pair {
    size_t state_size;
    int (*setup)(struct bench_side *s);        /* parent, before the fork: objects, buffers */
    int (*child)(struct bench_side *s);        /* the child's body: calls bench_child_ready() */
    int (*started)(struct bench_side *s);      /* parent, after the fork (optional) */
    int (*step)(struct bench_side *s, long i); /* message i received / round trip i made */
    int (*stop)(struct bench_side *s);         /* round trips: tell the echo process to end */
    void (*teardown)(struct bench_side *s);    /* parent, always: release everything */
};

struct bench_gate {
    int c2p[2];
    int p2c[2];
};

struct bench_side {
    const struct bench_case *c;
    int side;
    long n;
    struct bench_gate g;
    void *st;
    char *err;
    size_t cap;
};

typedef int (*bench_run_fn)(const struct bench_case *c, int side, double v[2], char *err,
                            size_t cap);

/* How one side of a row is measured: pair operations (K_TPUT, K_RTT) or a run function. */
struct bench_how {
    const char *name; /* "baseline is" in the table (NULL: the case's names hook) */
    const char *tag;  /* row suffix "vs-<tag>" when a case has several baselines (NULL: none) */
    const struct bench_pair *pair;
    bench_run_fn run;
};

/* A table entry: one case, or one per size in `sizes` (bit k: bench_sizes[k]). */
struct bench_def {
    const char *stem; /* row name stem; "%s" stands for the instance name, then the size label */
    enum bench_kind kind;
    int xk;      /* family-specific: transport, channel, lock kind, workload */
    int variant; /* family-specific: zero-copy, contended */
    unsigned sizes;
    size_t size;          /* when unsized */
    long count[B_NSIZES]; /* full-mode count per size (count[0] when unsized) */
    long floor;           /* the least count of any mode */
    const char *unit;     /* K_SCALAR */
    const char *extra;    /* JSON key of v[1] beside v[0] ("msgs_per_s" for K_TPUT by default) */
    int fixed;            /* no calibration: each run is a fixed amount of work or time */
    struct bench_how how[B_MAX_SIDES]; /* [0] the protocol, [1..] the baselines */
    enum bench_aimop aim_op;
    double aim[B_NSIZES];        /* per size (aim[0] when unsized); 0: none */
    const char *(*inst)(int xk); /* "%s" in the stem */
    const char *(*names)(const struct bench_def *d, int side); /* side names (optional) */
    const char *(*na)(const struct bench_def *d);              /* why not measurable */
};

struct bench_family {
    const char *group; /* --only GROUP selects the family */
    const struct bench_def *defs;
    size_t ndefs;
};

extern const struct bench_family bench_frame, bench_ring, bench_chan, bench_handoff, bench_lock,
    bench_sched, bench_exec, bench_stress;

/* A case as run: a def expanded for one size, its count scaled to the mode. */
struct bench_case {
    char stem[64];
    const char *group;
    const struct bench_def *def;
    enum bench_kind kind;
    int nsides;
    const char *side_name[B_MAX_SIDES];
    size_t size;
    long count;
    int xk, variant;
    enum bench_aimop aim_op;
    double aim; /* applies to the throughput / p50 / scalar row of the first baseline */
    const char *na;
};

/* ---- driver.c and report.c: the rows ---------------------------------------------------- */

struct bench_row {
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
    enum bench_aimop aim_op;
    double aim;
    const char *na;
    char error[200];
    char noisy[96]; /* why its aim can be judged neither met nor missed (bench_row_noise), or "" */
};

struct bench_machine {
    long ncpu;
    char cpu[256], kernel[128], load0[128], load1[128];
};

extern const char *const bench_mode_name[];
extern int bench_reps;
extern struct bench_row bench_rows[B_MAX_ROWS];
extern int bench_nrows;

const char *bench_compiler(void);
int bench_optimized(void);
void bench_row_noise(struct bench_row *r);
void bench_print_header(void);
void bench_print_row(const struct bench_row *r);
void bench_read_line(const char *path, const char *key, char *buf, size_t cap);
int bench_write_json(const char *path, const struct bench_machine *m, double seconds);

/* ---- pair.c: time, children, the gate, the pair runner ------------------------------------ */

extern volatile sig_atomic_t bench_expired; /* the parent's watchdog fired */

int64_t bench_now_ns(void);
void bench_watchdog_arm(void);
void bench_watchdog_disarm(void);
void bench_on_alarm(int sig);
int bench_fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void *bench_alloc(size_t n); /* starts on a cache line */
void bench_escape(void *p);  /* a baseline's copies cannot be optimised away */
int bench_spin_pause(unsigned *n);
long bench_scaled(long full, long floor);
double bench_calib_target_s(void);
const char *bench_size_label(size_t size);

pid_t bench_spawn(int (*fn)(void *), void *arg);
int bench_reap(pid_t pid, int timeout_ms);
void bench_kill_reap(pid_t pid);
int bench_gate_open(struct bench_gate *g);
void bench_gate_close(struct bench_gate *g);
void bench_gate_parent(struct bench_gate *g);
int bench_gate_child_ready(struct bench_gate *g);
int bench_gate_child_done(struct bench_gate *g);
int bench_gate_wait(struct bench_gate *g, int n, int timeout_ms);
int bench_gate_go(struct bench_gate *g, int n);
void bench_close_fd(int *fd);

/* In a pair's child: announce readiness, wait for the go. 0 or -1. */
int bench_child_ready(struct bench_side *s);

/* The skeleton: K_TPUT (rate of c->count messages) or K_RTT (p50/p99 of round trips). */
int bench_pair_run(const struct bench_case *c, int side, const struct bench_pair *p, double v[2],
                   char *err, size_t cap);

/* ---- raw.c: the raw baselines ------------------------------------------------------------- */

enum bench_xk { XK_PIPE, XK_UNIX, XK_SEQPACKET, XK_TCP, XK_N };
struct bench_ends {
    int r, w;
};
void bench_ends_close(struct bench_ends *e);
int bench_xopen(int xk, int duplex, struct bench_ends *par, struct bench_ends *chi);
int bench_raw_send(int xk, int fd, const uint8_t *buf, size_t size);
int bench_raw_recv(int xk, int fd, uint8_t *buf, size_t size);

/* State of the fd pairs (frame rows and their raw baselines). */
struct bench_fdstate {
    struct bench_ends par, chi;
    uint8_t *buf;
    struct ipcp_fdchan *ch; /* the protocol side */
};
extern const struct bench_pair bench_rawfd_tput, bench_rawfd_rtt;
/* Their parts the frame rows share (the same fds): duplex 1 for round trips. */
int bench_rawfd_setup(struct bench_side *s, int duplex);
int bench_rawfd_started(struct bench_side *s);
int bench_rawfd_stop(struct bench_side *s); /* closes the parent's channel and ends: EOF */
void bench_rawfd_teardown(struct bench_side *s);

int bench_run_memcpy(const struct bench_case *c, int side, double v[2], char *err, size_t cap);
extern const struct bench_pair bench_minring_tput, bench_spin_rtt;

/* A plain futex mutex and an mq token: the lock rows' baselines. */
int bench_rawfutex_lock(_Atomic uint32_t *w);
void bench_rawfutex_unlock(_Atomic uint32_t *w);
mqd_t bench_mq_open(long maxmsg, long msgsize); /* unlinked at once: no name left behind */
mqd_t bench_mq_token_open(char *err, size_t cap);
int bench_mq_token_lock(mqd_t q);
int bench_mq_token_unlock(mqd_t q);

/* The handoff's mechanism without the protocol: slots + READY/OK queues. */
#define HO_SLOTS 4u
extern const struct bench_pair bench_rawho_tput, bench_rawho_rtt;

/* ---- rawchan.c: baselines through the plugin ABI ------------------------------------------ */

extern const struct ipcp_channel_ops bench_raw_msg_ops, bench_raw_mq_ops, bench_plain_cvq_ops;

/* ---- stress.c: whole `ipcproof stress` runs (stress, exec and sched rows) ----------------- */

const char *bench_self_exe(void);
const char *bench_sanitizers(void);
struct json_t;
struct json_t *bench_spawn_stress(const char *const *args, double *secs, char *err, size_t cap);
int bench_stress_mps(const char *const *args, double v[2], char *err, size_t cap);

#endif
