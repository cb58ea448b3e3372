/* schedapi.h - the contract between `ipcproof stress --mode sched` and its scheduler runtime,
 * libipcproof-sched.so.
 *
 * In sched mode the stress command re-runs itself with the runtime preloaded (LD_PRELOAD, like
 * the short-io interposer). The runtime defines the callbacks that clang's -fsanitize=thread
 * instrumentation emits (__tsan_atomic..., __tsan_read..., __tsan_write...), so a plugin built
 * for ThreadSanitizer reports every atomic operation to it instead of to TSan, and it interposes
 * the blocking calls of libc (futex, pthread mutexes and condition variables, semaphores, sleeps,
 * sched_yield, the clocks). The endpoint threads of the case then run one at a time, and at every
 * scheduling point the runtime chooses who runs next, from a seeded strategy: the same seed and
 * schedule number give the same interleaving, the same results and the same trace.
 *
 * The harness finds the runtime's entry points with dlsym(RTLD_DEFAULT, ...) (struct st_schedrt
 * below); the runtime writes what the supervisor reports (steps, an exact deadlock, the last
 * scheduling decisions) into a struct st_sched_report that lives in the case's results area. */
#ifndef IPCP_STRESS_SCHEDAPI_H
#define IPCP_STRESS_SCHEDAPI_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#define ST_SCHED_MAX_THREADS 64
#define ST_SCHED_TRACE       192 /* decisions kept for the report (the last ones) */

enum st_sched_strategy { ST_SCHED_PCT = 0, ST_SCHED_RANDOM = 1, ST_SCHED_DFS = 2 };

/* How a schedule ended. */
enum st_sched_status {
    ST_SCHED_RUNNING = 0,
    ST_SCHED_FINISHED, /* every thread ended */
    ST_SCHED_DEADLOCK, /* every thread blocked, no timer pending */
    ST_SCHED_LIVELOCK, /* the step limit was reached */
    ST_SCHED_LOSTWAKE, /* a futex waiter sleeps on a word that changed, and nobody can run */
    ST_SCHED_RACE,     /* a data race (cfg.races): race below */
};

struct st_sched_cfg {
    uint32_t strategy; /* enum st_sched_strategy */
    uint32_t depth;    /* PCT: bug depth d (d - 1 priority change points) */
    uint64_t seed;     /* with the schedule number, every choice derives from it */
    uint64_t schedule;
    uint64_t steps_hint;   /* PCT: the expected number of scheduling points, k */
    uint64_t max_steps;    /* livelock limit */
    uint32_t plain_points; /* plain reads and writes are scheduling points too */
    uint32_t nthreads;
    uint32_t tso;          /* x86-TSO: atomic stores below seq_cst go through a store buffer */
    uint32_t lost_wakeups; /* a futex waiter asleep on a changed word is a violation */
    /* the choices themselves (a fuzzer's bytes): one byte per choice while they last, then the
     * seed's stream; NULL = the seed's stream from the start. dfs: the index of the alternative
     * taken at each branching point, in order (0 past the end: go on without a preemption) */
    const uint8_t *decisions;
    uint64_t ndecisions;
    /* leave the trace's code addresses raw at the end (a fuzz target runs thousands of schedules
     * and names the places of a failing one only: ipcproof_sched_place_trace) */
    uint32_t raw_trace;
    /* --fault signals: at a call of the protocol that is about to block, the scheduler may
     * deliver a signal (one of its choices); the call returns as if a handler installed without
     * SA_RESTART had run (EINTR, a spurious condvar wake-up, a sleep cut short) */
    uint32_t signals;
    /* happens-before race detection on the plain accesses (sched/hb.h): the first data race
     * ends the schedule (ST_SCHED_RACE) */
    uint32_t races;
};

#define ST_SCHED_MODULES 8

/* A place in the code: a module of the report's table and an offset in it. */
struct st_sched_pc {
    uint32_t module; /* index + 1 in modules[]; 0 = unknown */
    uint32_t unused;
    uint64_t offset;
};

/* One performed operation, in the order they happened. */
struct st_sched_event {
    uint64_t step;
    uint32_t thread;
    uint32_t op;           /* enum sr_op (schedrt.h) */
    uint64_t value;        /* stored / exchanged value, bytes copied, ns slept; ~0 for a pointer */
    uint32_t object;       /* the 4 KiB page the address is in, numbered in order of first use */
    uint32_t offset;       /* offset of the address in that page */
    uint64_t pc;           /* raw, in the process that ran the schedule */
    struct st_sched_pc at; /* the same, as module + offset (filled at the end) */
    char where[160];       /* "function file.c:12" (filled by the supervisor) */
};

/* A thread that was blocked when the schedule ended. */
struct st_sched_blocked {
    uint32_t blocked;
    uint32_t object, offset; /* what it waited on */
    char what[32];           /* "a futex wait", "pthread_mutex_lock"... */
    struct st_sched_pc at;
    char where[160];
};

/* One side of a data race. */
struct st_sched_access {
    uint32_t thread;
    uint32_t write;          /* 1: a write, 0: a read */
    uint32_t object, offset; /* its first byte, named as the trace names memory */
    uint64_t size;           /* bytes */
    uint64_t step;           /* the last scheduling point of its thread before it */
    uint32_t known;          /* the earlier access: 0 when only its thread and kind are known */
    uint32_t copy;           /* made by memcpy, memmove or memset */
    uint64_t pc;
    struct st_sched_pc at;
    char where[160];
};

/* The first data race of the schedule: access[1] was about to happen and races with access[0],
 * made earlier by another thread; neither happens before the other. */
struct st_sched_race {
    uint32_t object, offset; /* the first byte both touch */
    struct st_sched_access access[2];
};

/* dfs: one branching point of a schedule (a choice with two alternatives or more). Alternative 0
 * lets the running thread go on (or keeps a store buffered); the others are preemptions when
 * `preempt` is set, and free choices when it is not (the running thread cannot go on). */
#define ST_SCHED_CHOICES 8192
struct st_sched_choice {
    uint8_t taken, nalt, preempt, unused;
};

struct st_sched_report {
    uint32_t status; /* enum st_sched_status */
    uint32_t nthreads;
    uint64_t steps; /* scheduling points */
    uint64_t switches;
    uint64_t trace_hash; /* of every decision and operation: equal runs have equal hashes */
    int64_t vtime_ns;    /* virtual time at the end */
    uint64_t interrupts; /* --fault signals: blocking calls interrupted */
    char names[ST_SCHED_MAX_THREADS][24];
    char modules[ST_SCHED_MODULES][256]; /* paths of the modules code addresses are in */
    struct st_sched_blocked blocked[ST_SCHED_MAX_THREADS]; /* at a deadlock */
    char text[2048];                                       /* livelock: why */
    struct st_sched_race race;                             /* ST_SCHED_RACE */
    uint64_t accesses; /* plain accesses the race detector checked (0: it was off) */
    uint64_t nevents;  /* events ever recorded; the last ST_SCHED_TRACE are in trace[] */
    struct st_sched_event trace[ST_SCHED_TRACE];
    /* dfs: the branching points (how many there were; the first ST_SCHED_CHOICES are below), and
     * whether a prescribed choice did not exist (the run did not follow its prefix) */
    uint64_t nchoices;
    uint32_t diverged, unused2;
    struct st_sched_choice choices[ST_SCHED_CHOICES];
};

/* One line of a schedule's trace (schedfmt.c, in ipcproof and in the fuzz targets that run the
 * scheduler): "step 812  producer  store m2+0x40 = 5  at push+0x3c". */
void st_sched_event_line(const struct st_sched_report *sr, const struct st_sched_event *e,
                         char *buf, size_t cap);

/* The runtime's entry points (dlsym'd by name "ipcproof_sched_<field>"). */
struct st_schedrt {
    /* In the process that will run the threads, before they exist. */
    int (*begin)(const struct st_sched_cfg *cfg, struct st_sched_report *rep);
    /* First call of each endpoint thread: registers it and waits for its first turn. */
    void (*enter)(uint32_t index, const char *name);
    /* Last call of each endpoint thread. */
    void (*leave)(void);
    /* In the thread that created them: starts the schedule, returns when it ended (status). */
    int (*run)(void);
    /* A scheduling point of the harness itself (between two operations of an endpoint). */
    void (*point)(void);
};

/* The same entry points by name, for a program that links the runtime in (the fuzz targets that
 * run core code under the scheduler), and the naming of a raw trace (cfg.raw_trace). */
int ipcproof_sched_begin(const struct st_sched_cfg *cfg, struct st_sched_report *rep);
void ipcproof_sched_enter(uint32_t index, const char *name);
void ipcproof_sched_leave(void);
int ipcproof_sched_run(void);
void ipcproof_sched_point(void);
void ipcproof_sched_place_trace(struct st_sched_report *rep);

/* In-process deaths, for such a program: the calling scheduled thread dies at its n-th
 * scheduling point from now (1-based; 0 disarms), when it is chosen to perform that point's
 * operation, which never happens. Its buffered stores become visible (a killed process's retired
 * stores reach memory), a "harness" event with value 0xdead goes into the trace, died(arg) runs
 * with scheduling off (its atomics and calls are not points: it can look at shared memory as it
 * is at the death), and the thread longjmps to env (setjmp'd by the harness), abandoning the call
 * it was in, locals and all, as a SIGKILL would; what the process held in the kernel (queue
 * descriptors) the harness releases. It stays a scheduled thread: it may go on as a new process
 * or leave. */
void ipcproof_sched_die_at(uint64_t n, jmp_buf *env, void (*died)(void *), void *arg);

#endif
