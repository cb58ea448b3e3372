/* stress.h - the ipcproof command's engine: configuration of one stress case, the results area
 * that workers share with the supervisor, the protocol registry, and the report.
 *
 * One case runs in fixed phases (engine.c): load -> create -> spawn -> start barrier -> run
 * (bounded by a message count and a duration) -> stop -> reap and decode every wait status ->
 * check -> destroy -> sweep. The supervisor runs no protocol code at all: a protocol host
 * (host.c) loads it and calls create() and destroy(); endpoints run in forked workers (process
 * mode) or as threads of one forked child (thread mode), children of the supervisor. Workers
 * publish everything the checker needs in a MAP_SHARED|MAP_ANONYMOUS results area created before
 * the fork, so a worker that is SIGKILLed cannot take its accounting with it. */
#ifndef IPCP_STRESS_H
#define IPCP_STRESS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "ipcproof/plugin.h"
#include "splitmix.h"
#include "stats.h"
#include "sched/schedapi.h"

/* ---- limits and defaults -------------------------------------------------------------------- */

#define ST_MAX_ENDPOINTS  64u /* producers + consumers, or lock workers */
#define ST_HDR_SIZE       40u /* message header, see payload.c */
#define ST_MAX_MSG        (64u << 20)
#define ST_DEFAULT_MSGS   10000u     /* per producer (channels) or per worker (locks) */
#define ST_SCHED_MSGS     20u        /* the same in sched mode: many short schedules */
#define ST_DURATION_CAP   (1u << 24) /* per producer, when only --duration bounds the run */
#define ST_OP_TIMEOUT_MS  200        /* timeout of each send/recv/lock call; workers loop */
#define ST_DRAIN_MS       2000 /* consumers wait this long for stragglers once producers end */
#define ST_STALL_MS       5000 /* no progress at all for this long = deadlock */
#define ST_DEFAULT_FRATE  0.05 /* short-io: share of wrapped calls that get a fault */
#define ST_RUN_ID_MAX     32u
#define ST_STARVE_MIN_MS  250  /* an endpoint idle this long (and a fifth of the case) starves */
#define ST_SCHED_STALL_MS 10   /* sched: a receive this long (virtual) with messages waiting */
#define ST_SETUP_MS       5000 /* default limit of the plugin's load, create() and destroy() */

/* ---- violation kinds (JSON violations[].kind) ----------------------------------------------- */

enum st_vkind {
    ST_V_LOSS,
    ST_V_DUPLICATE,
    ST_V_REORDER,
    ST_V_TORN,
    ST_V_EXCLUSION,
    ST_V_DEADLOCK,
    ST_V_CRASH,
    ST_V_RACE,
    ST_V_LEAK,
    ST_V_ERROR,
    ST_V_STARVATION,
    ST_V_NKINDS
};
const char *st_vkind_name(int kind);

/* ---- configuration of one case -------------------------------------------------------------- */

enum st_kind { ST_KIND_AUTO = 0, ST_KIND_CHANNEL = 1, ST_KIND_LOCK = 2 };
/* sched: threads of one process, one running at a time, interleaved by the scheduler runtime
 * (stress/sched/): every run of a seed and schedule number is the same run */
enum st_mode { ST_MODE_PROCESS = 0, ST_MODE_THREAD = 1, ST_MODE_SCHED = 2 };

#define ST_FAULT_KILL    0x1u
#define ST_FAULT_SIGNALS 0x2u
#define ST_FAULT_SHORTIO 0x4u
#define ST_FAULT_STOP    0x8u /* SIGSTOP one endpoint (an exec endpoint's program) a while */

/* where --fault kill strikes a channel endpoint */
enum st_kill_point {
    ST_KP_ANY = 0,      /* an endpoint and a moment chosen from the seed */
    ST_KP_SEND_BLOCKED, /* a producer that waits in send(): the channel is full */
    ST_KP_RECV_BLOCKED, /* a consumer that waits in recv(): the channel is empty */
};

struct st_config {
    const char *proto;       /* --proto NAME, or NULL */
    const char *plugin;      /* --plugin FILE.so, or NULL */
    enum st_kind kind;       /* --kind; AUTO = what the protocol exports (channel first) */
    enum st_kind repro_kind; /* the kind that ran, for the repro line (AUTO = unknown) */
    enum st_mode mode;
    uint32_t producers, consumers, workers;
    uint64_t messages; /* per producer / per lock worker; 0 = bounded by duration only */
    double duration;   /* seconds; 0 = bounded by messages only */
    size_t min_size, max_size;
    size_t capacity; /* --capacity, passed as ipcp_chan_cfg.capacity */
    uint64_t seed;
    unsigned faults;   /* ST_FAULT_* */
    double fault_rate; /* short-io */
    const char *opt;   /* --opt, "" when none */
    const char *json;  /* --json FILE or NULL */
    const char *sarif; /* --sarif FILE or NULL: the violations for code scanning */
    int progress;      /* 1 always, 0 never, -1 when stderr is a tty */
    int quiet;         /* no human summary (validate runs cases with it) */
    int no_verify;     /* --no-verify: checks off, to measure their cost */
    int overhead;      /* --overhead: run verified then unverified, report both */
    unsigned consumer_delay_us, producer_delay_us;
    double watchdog; /* seconds; 0 = derived */
    double stall;    /* seconds without any progress = deadlock; 0 = ST_STALL_MS */
    int no_sandbox;  /* --no-sandbox: no private IPC/mount namespace for the leak check */
    enum st_kill_point kill_point;
    unsigned signal_us;     /* --signal-period: storm period in us; 0 = from the seed */
    unsigned lock_pause_us; /* --lock-pause: longest random pause between two acquisitions */
    double setup;           /* --setup-timeout: load, create(), destroy() each; 0 = default */
    /* --mode sched */
    unsigned strategy;       /* enum st_sched_strategy */
    unsigned depth;          /* --depth: pct's bug depth */
    uint64_t schedules;      /* --schedules: how many */
    uint64_t first_schedule; /* --schedule I: only this one (then schedules = 1) */
    int one_schedule;        /* --schedule was given */
    uint64_t sched_steps;    /* --sched-steps: pct's k; 0 = estimated */
    int plain_points;        /* --plain-points */
    int memory_sc;           /* --memory sc (default tso: a store buffer per thread) */
    int lost_wakeups;        /* --lost-wakeups: a futex waiter asleep on a changed word fails */
    int no_races;            /* --races off: no happens-before race detection */
    unsigned preemptions;    /* --preemptions: dfs's bound */
    const uint8_t *choices;  /* dfs: the prefix of the schedule (--choices, or the search's) */
    uint32_t nchoices;
    const char *choices_arg; /* --choices as given: one schedule, this one */
    uint32_t shard, nshards; /* --shard I/N: this job's part of the schedules (nshards 0: all) */
    /* --crash-point N / --crash-points (process mode, the scheduler runtime preloaded) */
    uint64_t crash_point;  /* the victim dies at the N-th scheduling point of one operation */
    int crash_points;      /* try every point of that operation, one run each */
    int crash_role;        /* channels: the victim is a producer (1) or a consumer (2); 0 any */
    const char *sched_out; /* --sched-out FILE: where a failing schedule is saved */
    uint64_t minimise;     /* --minimise N: candidate schedules to make a failing one small */
    /* --exec-*: the endpoints are the user's programs (exec.h); proto is then ST_EXEC_PROTO */
    const char *exec_producer, *exec_consumer, *exec_setup, *exec_teardown;
    const char *exec_worker; /* --exec-worker: the programs are lock contenders */
    int exec_fifo;           /* --fifo: the programs promise per-producer order */
    int exec_robust;         /* --robust: their lock survives a holder's death */
};

#define ST_DFS_SCHEDULES 10000 /* --strategy dfs without --schedules: at most this many */
#define ST_DFS_PATH_MAX  2048  /* the longest --choices text of a rerun line */
#define ST_MINIMISE_RUNS 500   /* --minimise: candidate schedules tried, by default */

void st_config_defaults(struct st_config *c);
const char *st_mode_name(int mode);              /* "process", "thread", "sched" */
const char *st_strategy_name(unsigned strategy); /* "pct", "random", "dfs" */
/* The one-line `ipcproof stress ...` command that reruns the case. */
void st_config_repro(const struct st_config *c, char *buf, size_t cap);
/* "kill,stop", ..., or "none": the ST_FAULT_* bits as --fault takes them. */
const char *st_faults_str(unsigned faults, char *buf, size_t cap);

/* ---- protocols: built-in table and plugins -------------------------------------------------- */

struct st_proto {
    char label[128]; /* "ring" or the plugin's path */
    const struct ipcp_channel_ops *chan;
    const struct ipcp_lock_ops *lock;
    void *dl; /* dlopen handle of a plugin */
};

/* Resolves --proto or --plugin. Returns 0, or -1 with a message in err. With `instrumented`, a
 * built-in protocol comes from libipcproof-protos-sched.so (--mode sched, crash points). */
int st_proto_load(const char *proto, const char *plugin, int instrumented, struct st_proto *p,
                  char *err, size_t errcap);
void st_proto_unload(struct st_proto *p);
/* Built-in protocols: count, and the i-th (exactly one of chan/lock is set; table_name is the
 * name protos.def gives it, which must equal the ops' .name). */
size_t st_builtin_count(void);
void st_builtin_get(size_t i, const struct ipcp_channel_ops **chan,
                    const struct ipcp_lock_ops **lock, const char **table_name);

/* ---- the results area shared by supervisor and workers -------------------------------------- */

enum st_phase {
    ST_PH_START = 0,
    ST_PH_OPEN,
    ST_PH_BARRIER,
    ST_PH_SEND,
    ST_PH_RECV,
    ST_PH_LOCK,
    ST_PH_CS,
    ST_PH_UNLOCK,
    ST_PH_CLOSE,
    ST_PH_DONE,
    ST_PH_QUIET, /* waiting while a crash-point victim runs its operation alone */
    ST_PH_NPHASES
};
const char *st_phase_name(int phase);

enum st_role { ST_ROLE_PRODUCER = 1, ST_ROLE_CONSUMER = 2, ST_ROLE_LOCKER = 3 };

/* The first example of one violation kind seen by a worker: written once by that worker before
 * it publishes the count with a release store. */
struct st_vfirst {
    uint32_t producer;
    uint32_t aux32;
    uint64_t seq;
    uint64_t a, b;
};

#define ST_EXFX_WHO 160 /* st_slot.exfx_who */

/* One per endpoint, each on its own cache lines. Written by its worker only (except `dead`,
 * set by the supervisor once the worker is reaped abnormally). */
struct st_slot {
    _Alignas(64) _Atomic uint32_t phase; /* enum st_phase: what the worker is doing now */
    _Atomic uint32_t done;               /* finished its loop and closed its endpoint */
    _Atomic uint32_t dead;               /* killed or crashed (set by the supervisor) */
    _Atomic uint32_t opened;             /* open() succeeded */
    _Atomic int64_t since_ns;            /* CLOCK_MONOTONIC when `phase` was entered */
    _Atomic uint64_t cur_seq;            /* message seq / acquisition number of the current op */
    /* producer: sends that returned 0, i.e. seqs [0, ops) are recorded as sent;
     * consumer: messages received; locker: acquisitions */
    _Atomic uint64_t ops;
    _Atomic uint64_t unique; /* consumer: messages that were new (first delivery) */
    _Atomic uint64_t bytes;
    _Atomic uint64_t retries;     /* -ETIMEDOUT / -EINTR / -EAGAIN returns that were retried */
    _Atomic int64_t last_ns;      /* when the last op completed */
    _Atomic int32_t err;          /* first unexpected error (negative), 0 = none */
    _Atomic uint32_t err_op;      /* phase of that error */
    _Atomic uint64_t err_seq;     /* seq / acquisition of that error */
    _Atomic int64_t err_ns;       /* when it happened */
    _Atomic uint64_t recovered;   /* locker: lock() returned 1 */
    _Atomic uint32_t crash_sig;   /* a fatal signal (SIGSEGV, ...) hit this worker */
    _Atomic uint64_t timeouts;    /* retried returns that were -ETIMEDOUT or -EAGAIN */
    _Atomic int64_t max_gap_ns;   /* longest wait for one op that ended in timeouts (starvation) */
    _Atomic uint64_t gap_at;      /* the op count at which it ended */
    _Atomic uint64_t gap_others;  /* producer: messages that moved meanwhile (others, consumers) */
    _Atomic uint64_t cpu_wait_ns; /* time runnable but without a CPU during its loop (schedstat
                                     run_delay); ST_CPU_WAIT_UNKNOWN: not measured */
    _Atomic uint32_t quota_met;   /* the endpoint finished its own quota */
    _Atomic int64_t end_ns;       /* when it left its loop */
    _Atomic int32_t pid;          /* the worker's process */
    _Atomic uint64_t crash_seen;  /* --crash-point: the victim lived through its operation, which
                                     had this many points (0: it died, or was not the victim) */
    _Atomic int32_t exec_pgid;    /* --exec: the program's process group (the kill fault's aim) */
    _Atomic uint32_t exec_why; /* --exec: how the program broke the contract (enum st_exec_why) */
    _Atomic int64_t exec_val;  /* ... and the detail (a status, a signal, a length) */
    /* --exec with --fault short-io/signals (execfx.h): what the interposer did in the program */
    _Atomic uint64_t exfx_injected; /* faults it injected */
    _Atomic uint64_t exfx_signals;  /* signals its handler took */
    _Atomic uint32_t exfx_state;    /* enum st_exfx_state, written before `done` */
    char exfx_who[ST_EXFX_WHO];     /* the process it did not reach, and why */
    _Atomic uint64_t vcount[ST_V_NKINDS];
    struct st_vfirst vfirst[ST_V_NKINDS];
    uint64_t hist[STATS_HIST_BUCKETS]; /* latency, written by this worker only */
};

struct st_shared {
    _Alignas(64) _Atomic uint32_t go; /* start barrier (futex word): 1 = run */
    _Atomic uint32_t stop;            /* producers / lockers: stop starting new ops */
    _Atomic uint32_t abort_run;       /* everybody: leave now (supervisor gave up) */
    _Atomic uint32_t producers_ended; /* producers done or dead */
    _Atomic int64_t start_ns;
    _Atomic uint32_t killed;       /* index + 1 of the endpoint killed by --fault kill */
    _Atomic uint32_t cs_victim;    /* locks: index + 1 of a worker that died inside the CS */
    _Atomic uint32_t crash_victim; /* --crash-point: index + 1 of the worker armed to die */
    _Atomic uint32_t quiet;        /* locks, --crash-point: index + 1 of the victim the others wait
                                      for, outside lock(), so that its operation takes one path */
    _Atomic uint32_t quiet_late;   /* the others were still inside lock() when the victim went */
    _Atomic int64_t kill_ns;
    _Atomic uint64_t signals;       /* --fault signals: SIGALRMs handled by workers */
    _Atomic uint64_t io_faults;     /* --fault short-io: faults the interposer injected */
    _Atomic uint32_t violated;      /* sched mode: a worker saw a violation; the schedule stops */
    _Atomic uint32_t stopped_fault; /* --fault stop: index + 1 of the endpoint that was stopped */
    _Atomic uint32_t stop_over;     /* --fault stop: the victim was resumed (or never stopped) */
    /* locks: the critical-section probe */
    _Alignas(64) _Atomic uint32_t owner;    /* index + 1 of the holder; relaxed on purpose */
    _Alignas(64) volatile uint64_t counter; /* deliberately NOT atomic: lost updates show */
    /* followed by the slots and the receive bitmaps */
};

/* ---- payload (payload.c) -------------------------------------------------------------------- */

struct st_payload {
    uint64_t seed;
    uint32_t run_tag;
    size_t min_size, max_size;
    uint8_t *pool; /* random bytes the bodies are cut from; read-only after init */
    size_t pool_span;
    size_t pool_len; /* bytes in pool (a producer's arena is a copy of it) */
};
struct st_restore {
    uint8_t *at;
    uint8_t saved[ST_HDR_SIZE];
};
int st_payload_init(struct st_payload *pl, uint64_t seed, size_t min_size, size_t max_size);
void st_payload_fini(struct st_payload *pl);
size_t st_payload_size(const struct st_payload *pl, uint32_t producer, uint64_t seq);
/* Writes message (producer, seq) into buf (cap >= max_size); returns its length. With
 * verify == 0 only the header is written (the body is left as it is). */
size_t st_payload_make(const struct st_payload *pl, uint32_t producer, uint64_t seq, void *buf,
                       int verify, int64_t now_ns);
/* Zero-copy variant: arena is the producer's private copy of pl->pool. Writes the header of
 * (producer, seq) just before its body inside the arena and returns the message's start; the
 * 40 bytes it overwrote are kept in undo until st_payload_restore(). */
const void *st_payload_prepare(const struct st_payload *pl, uint8_t *arena, uint32_t producer,
                               uint64_t seq, size_t *len, int verify, int64_t now_ns,
                               struct st_restore *undo);
void st_payload_restore(struct st_restore *undo);

/* ---- worker description (plain memory inherited by fork / shared by threads) ---------------- */

struct st_case;

struct st_worker {
    struct st_case *cs;
    uint32_t index;  /* slot index */
    int role;        /* ST_ROLE_* */
    uint32_t rindex; /* index within the role */
    pid_t pid;       /* process mode */
};

/* Everything the workers need, set up by the supervisor before the fork. */
struct st_case {
    const struct st_config *cfg;
    /* set in the protocol host (and so in the workers), never in the supervisor */
    const struct ipcp_channel_ops *chan;
    const struct ipcp_lock_ops *lock;
    void *ctx; /* from create() */
    /* what the supervisor knows of the protocol */
    int is_chan;          /* 1 channel, 0 lock */
    int exec;             /* the endpoints are programs (--exec-*) */
    uint32_t proto_flags; /* IPCP_CHAN_* or IPCP_LOCK_* */
    char run_id[ST_RUN_ID_MAX + 1];
    struct st_shared *sh;
    struct st_slot *slots;
    _Atomic uint64_t *bitmaps; /* producers x bitmap_words: delivered seqs */
    size_t bitmap_words;
    uint64_t seq_cap; /* seqs per producer the bitmaps can hold */
    size_t map_len;
    uint32_t nworkers, producers, consumers;
    struct st_worker w[ST_MAX_ENDPOINTS];
    struct st_payload pl;
    int verify;
    int fifo;
    /* faults */
    uint32_t kill_victim; /* slot index + 1; 0 = none */
    uint64_t kill_at;     /* ops count of the victim at which it is killed */
    int kill_in_cs;       /* locks: the victim dies inside the critical section */
    int64_t kill_time_ns; /* channels in duration mode: kill at this time after start */
    uint32_t stop_victim; /* --fault stop: slot index + 1; 0 = none */
    uint64_t stop_at;     /* ops count of the victim at which it is stopped */
    unsigned stop_ms;     /* for how long */
    unsigned signal_us;   /* signal storm period, 0 = none */
    enum st_kill_point kill_point;
    void (*faults_arm)(uint64_t seed, unsigned rate_ppm);
    uint64_t (*faults_count)(void); /* faults injected into the calling thread so far */
    unsigned fault_rate_ppm;
    /* sched mode */
    uint64_t schedule;                 /* this schedule's number */
    struct st_sched_report *sched_rep; /* shared mapping: what the runtime reports */
};

/* What the supervisor saw of the endpoint processes (engine.c fills it, checker.c reads it). */
struct st_outcome {
    uint32_t nproc; /* process mode: one per endpoint; thread mode: the one child */
    pid_t pids[ST_MAX_ENDPOINTS];
    int status[ST_MAX_ENDPOINTS]; /* wait status */
    int reaped[ST_MAX_ENDPOINTS];
    int watchdog_killed;
    uint32_t killed_by_fault; /* channels: endpoint index + 1 killed by --fault kill */
    int64_t crash_ns;         /* when the first endpoint died that was not killed on purpose */
    int64_t start_ns;         /* the start barrier opened */
    int64_t stop_ns;          /* the stop flag was raised (0: never) */
    int64_t end_ns;           /* every endpoint process had ended */
    int race_trusted;         /* a ThreadSanitizer report (exit 66) is a `race` verdict */
    char race_why[256];       /* ... and when it is not, why */
};

/* Worker entry (worker.c): runs the endpoint, returns the exit code for process mode
 * (0, or ST_EXIT_SETUP when open() failed). */
#define ST_EXIT_SETUP 3
#define ST_EXIT_SCHED 5 /* sched mode: the schedule ended in a deadlock or livelock (sched_rep) */
int st_worker_main(struct st_worker *w);
/* Thread mode: the one child runs every worker as a thread; returns its exit code. */
int st_thread_child(struct st_case *cs);
/* Sched mode: the one child runs every worker as a thread under the scheduler runtime. */
int st_sched_child(struct st_case *cs);
/* Per-process setup done in each forked child before any protocol code. */
void st_child_setup(struct st_case *cs);

/* What the workers share (worker.c): the producer and the consumer are chanworker.c. */
void st_run_producer(struct st_worker *w, void *ep);
void st_run_consumer(struct st_worker *w, void *ep);
/* The worker's phase in its slot, as the watchdog reads it (seq: the operation's number). */
void st_set_phase(struct st_slot *s, int phase, uint64_t seq);
/* The slot's first error (err < 0), with the phase and operation it happened in. */
void st_record_err(struct st_slot *s, int err, int phase, uint64_t seq);
/* One violation of kind ST_V_* seen by this worker (the first one's details are kept). */
void st_add_violation(struct st_slot *s, int kind, uint32_t producer, uint64_t seq, uint64_t a,
                      uint64_t b);
/* -ETIMEDOUT, -EINTR, -EAGAIN: the operation is tried again (counted by st_count_retry). */
int st_retryable(int r);
void st_count_retry(struct st_slot *s, int r);
/* How long one operation took to complete, counted when the protocol timed out meanwhile: the
 * checker's starvation test. An endpoint that is merely descheduled never shows up here. */
struct st_waitmark {
    int64_t since;
    uint64_t timeouts_at;
    uint64_t others_at; /* producer: others_moved() at its first timeout */
    int others_set;
};

void st_wait_begin(struct st_slot *s, struct st_waitmark *m);
/* Ends one operation's wait; returns 1 when it was the longest that timed out so far. */
int st_wait_end(struct st_slot *s, struct st_waitmark *m, uint64_t at);
/* The run was aborted (the supervisor, or the first violation in sched mode). */
int st_aborted(const struct st_case *cs);
/* The run was told to stop (or aborted). */
int st_stopped(const struct st_case *cs);
int st_sched_mode(const struct st_case *cs);
/* --crash-point: whether worker index is the victim; arm and disarm around its operation. */
int st_crash_victim(const struct st_case *cs, uint32_t index);
void st_crash_begin(struct st_case *cs, struct st_slot *s, uint32_t index);
void st_crash_end(struct st_case *cs, struct st_slot *s);
/* Sleeps us microseconds (a signal may shorten it). */
void st_delay_us(unsigned us);

enum st_verdict { ST_MSG_OK = 0, ST_MSG_TORN = 1 };
/* Why a message is torn: an index (a worker's memory is not the supervisor's: no pointers). */
enum st_torn_why {
    ST_TW_NONE = 0,
    ST_TW_SHORT,
    ST_TW_RANGE,
    ST_TW_MAGIC,
    ST_TW_RUNTAG,
    ST_TW_PRODUCER,
    ST_TW_SEQ,
    ST_TW_HDRLEN,
    ST_TW_LEN,
    ST_TW_SUM,
    ST_TW_EMSGSIZE,
    ST_TW_N
};
const char *st_torn_why_text(uint64_t why);
struct st_msginfo {
    uint32_t producer;
    uint64_t seq;
    int64_t send_ns;
    int why; /* enum st_torn_why */
};
/* Checks one received message. With verify == 0 only reads producer/seq/time (bounded). */
int st_payload_check(const struct st_payload *pl, const void *msg, size_t len, uint32_t producers,
                     uint64_t seq_cap, int verify, struct st_msginfo *mi);

/* ---- report --------------------------------------------------------------------------------- */

#define ST_MAX_VIOLATIONS 24
struct st_violation {
    int kind;
    uint64_t count;
    char detail[1024];
    char frames[768]; /* a sanitizer report's top frames, one per line ("" when none) */
};

#define ST_CPU_WAIT_UNKNOWN UINT64_MAX

/* What the report says of each endpoint. */
struct st_epstat {
    int role; /* ST_ROLE_* */
    uint32_t index;
    uint64_t ops, retries, timeouts;
    double max_wait_s; /* longest wait for one operation that ended in timeouts */
    double cpu_wait_s; /* time it was runnable but had no CPU during its loop; -1: unknown */
};

struct st_report {
    int status; /* 0 pass, 1 violations, 2 setup error */
    char error[512];
    int create_err; /* create() failed with this -errno (status 2) */
    int chan;       /* 1 channel, 0 lock */
    int kind_known; /* the protocol loaded and chan says which kind ran */
    char proto_name[96];
    uint32_t proto_flags;
    char run_id[ST_RUN_ID_MAX + 1];
    struct st_violation v[ST_MAX_VIOLATIONS];
    int nv;
    char notes[1024];
    uint64_t sent, received, bytes, retries;
    double seconds, msgs_per_s;
    uint64_t hist[STATS_HIST_BUCKETS];
    uint64_t counter, recovered;
    int sandboxed;
    uint64_t signals, io_faults;
    /* --overhead */
    int has_overhead;
    double verified_mps, unverified_mps;
    char na[768];           /* the case does not apply, and why (a fault with nothing to hit) */
    char setup_failure[64]; /* the protocol's load, create() or destroy() failed: which */
    struct st_epstat ep[ST_MAX_ENDPOINTS];
    uint32_t nep;
    unsigned signal_us; /* the signal storm's period */
    char *output;       /* the protocol processes' output (failing cases), malloc()ed */
    uint64_t output_dropped;
    /* sched mode */
    uint64_t schedules_run;     /* schedules that ran */
    uint64_t schedule;          /* the one reported: the first that failed, or the last */
    uint64_t sched_steps_total; /* scheduling points over every schedule */
    uint64_t sched_k;           /* pct's k as used */
    int dfs_exhausted;          /* dfs: every schedule within the bound ran */
    int dfs_truncated;          /* dfs: a schedule had more branching points than it explores */
    int dfs_diverged;           /* dfs: a run did not follow its prefix (not deterministic) */
    char *dfs_path;             /* dfs: the reported schedule's choices (--choices), malloc()ed */
    int dfs_complete;           /* dfs: every schedule with at most this many preemptions ran */
    uint64_t dfs_distinct;      /* dfs: schedules run, not counting a pass's reruns */
    /* the failing schedule was minimised (minimise.c): from / to, and the candidates run */
    int minimised;
    unsigned min_from_preemptions, min_preemptions;
    uint64_t min_from_messages, min_messages, min_runs;
    /* --crash-point(s) */
    uint64_t crash_point;          /* the last point tried */
    uint64_t crash_points_all;     /* the victim's operation had this many (known once past them) */
    int crash_not_alone;           /* the others were in lock() when it went: another path */
    struct st_sched_report *sched; /* a copy of the reported schedule's runtime report */
};

/* engine.c: one run of the case (one schedule in sched mode: its number); 0, 1 (violations) or
 * 2 (the run could not be judged), as rep->status. Whether SIGINT or SIGTERM came. */
int st_run_once(const struct st_config *c, struct st_report *rep, int verify, uint64_t schedule);

/* schedout.c: the end of a schedule (sr) as violations of rep: a deadlock, a lost wake-up, a
 * livelock or a data race; ran: endpoints ran and no watchdog ended them (a schedule without an
 * end is then worth a note). */
void st_sched_outcome(struct st_sched_report *sr, uint64_t schedule, int ran,
                      struct st_report *rep);
int st_interrupted(void);

/* dfs.c: the depth-first search of --strategy dfs. The next schedule's prefix after the run
 * that reported sr (1), or 0 when every schedule within `bound` preemptions ran; a prefix as the
 * --choices text ("POINT:ALT,..." of its non-zero choices, "none"), and back (-1: err says why). */
int st_dfs_next(const struct st_sched_report *sr, unsigned bound, uint8_t *prefix, uint32_t *plen);
unsigned st_dfs_cost(const struct st_sched_report *sr); /* its preemptions */
/* minimise.c: a failing sched schedule (rep) made small, at most `budget` candidate runs: 1 when
 * rep and c are now those of the minimised schedule (a dfs path), 0 when it stays as found. */
int st_minimise(struct st_config *c, struct st_report *rep, uint64_t budget);
/* --shard I/N: whether the schedules of a prefix are shard I's (1), another's (0), or not known
 * yet (-1: shorter than the shard depth, its subtree spans shards: run it to learn more). After
 * the run that reported sr, st_dfs_skip() moves a prefix that is not ours (known from sr) to the
 * next subtree (1), or says the pass is over (0). */
uint32_t st_dfs_shard_depth(uint32_t nshards);
/* The next prefix shard I of N runs after the run that reported sr (1), or none (0): the next of
 * the search, moved past the subtrees that are other shards'. A run owned by nobody yet (its
 * prefix is shorter than the shard depth) is run by every shard that meets it; its schedule is
 * st_dfs_run_owner()'s. The shards' owned schedules are the whole tree, each once. */
int st_dfs_advance(const struct st_sched_report *sr, unsigned bound, uint32_t shard,
                   uint32_t nshards, uint8_t *prefix, uint32_t *plen);
int st_dfs_run_owner(const struct st_sched_report *sr, uint32_t shard, uint32_t nshards);
int st_dfs_owner(const uint8_t *prefix, uint32_t plen, uint32_t shard, uint32_t nshards);
int st_dfs_skip(const struct st_sched_report *sr, unsigned bound, uint32_t nshards, uint8_t *prefix,
                uint32_t *plen);
int st_dfs_path(const uint8_t *prefix, uint32_t plen, char *buf, size_t cap); /* -1: too long */
int st_dfs_parse(const char *s, uint8_t *prefix, uint32_t *plen, char *err, size_t errcap);

void st_report_add(struct st_report *r, int kind, uint64_t count, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void st_report_note(struct st_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void st_report_print(const struct st_config *c, const struct st_report *r, const char *repro);
/* The JSON report as an object (a new reference), which --json and --sarif write. */
struct json_t *st_report_json_obj(const struct st_config *c, const struct st_report *r,
                                  const char *repro);
/* Writes the JSON report to out (opened before the run); returns 0 or -1 (message on stderr). */
int st_report_json(const struct st_config *c, const struct st_report *r, const char *repro,
                   FILE *out);

/* ---- one case ------------------------------------------------------------------------------- */

/* Runs one case of c->proto or c->plugin (loaded in a protocol host, never here); fills rep.
 * Returns the exit status (0, 1, 2). */
int st_run_case(const struct st_config *c, struct st_report *rep);
void st_report_free(struct st_report *rep);

/* ---- sandbox and leak check (sandbox.c) ----------------------------------------------------- */

/* Moves this process into a private mount + IPC namespace with an empty tmpfs on /dev/shm and
 * an mqueue fs mounted inside it, when allowed (root). Returns 1 when sandboxed, 0 when not. */
int st_sandbox_enter(char *why, size_t cap);
struct st_snapshot {
    char **names;
    size_t n;
};
/* Lists the IPC objects visible now: /dev/shm, the mqueue fs when one is mounted, SysV IPC,
 * and entries of the temp dir containing run_id. */
void st_snapshot_take(struct st_snapshot *s, const char *run_id);
void st_snapshot_free(struct st_snapshot *s);
/* Objects in `after` but not in `before` that belong to this run (all of them in the sandbox;
 * outside it only those named with run_id: another run's objects are never this run's leak).
 * Appends to buf; returns how many; *foreign counts the new objects that are not this run's. */
size_t st_snapshot_diff(const struct st_snapshot *before, const struct st_snapshot *after,
                        const char *run_id, int sandboxed, char *buf, size_t cap, size_t *foreign);
/* Removes what st_snapshot_diff() counted as this run's leak. */
void st_snapshot_remove(const struct st_snapshot *before, const struct st_snapshot *after,
                        const char *run_id, int sandboxed);

/* ---- validate (validate.c) and misc --------------------------------------------------------- */

int st_validate_main(int argc, char **argv);
int st_stress_main(int argc, char **argv);
int st_describe_main(int argc, char **argv);
int st_replay_main(int argc, char **argv);
int st_clean_main(int argc, char **argv);
void st_usage(FILE *out); /* every command, the exit codes, the docs */
/* One command's usage and options (stress, validate, repro, ...; bench prints its own): 0, or -1
 * when cmd is not one of them. */
int st_usage_cmd(FILE *out, const char *cmd);
const char *st_self_exe(void);
/* Sanitizers this binary was built with ("" when none) and the compiler that built it. */
const char *st_build_sanitizers(void);
const char *st_build_cc(void);
int st_is_tsan_build(void);
/* The short-io interposer library next to this binary or installed; NULL when not found. */
const char *st_faults_lib(void);
/* The scheduler runtime of --mode sched, found the same way; NULL when not found. */
const char *st_sched_lib(void);
/* libipcproof-protos-sched.so: the built-in protocols instrumented for the scheduler */
const char *st_protos_sched_lib(void);

#endif
