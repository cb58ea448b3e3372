/* schedrt.h - inside libipcproof-sched.so: the scheduler core (schedrt.c) as the instrumentation
 * callbacks (tsancb.c) and the libc interposers (interpose.c) use it.
 *
 * Only a thread registered with ipcproof_sched_enter() is scheduled ("a scheduled thread");
 * every other thread, and every process not running a schedule, goes straight through. */
#ifndef IPCP_SCHED_SCHEDRT_H
#define IPCP_SCHED_SCHEDRT_H

#include <stddef.h>
#include <stdint.h>

#define SR_EXPORT __attribute__((visibility("default")))
/* the runtime's thread-locals: static TLS (the library is preloaded, or linked in), read on
 * every scheduling point and interposed call without a __tls_get_addr call */
#define SR_TLS _Thread_local __attribute__((tls_model("initial-exec")))

enum sr_op {
    SR_OP_LOAD,    /* atomic load */
    SR_OP_STORE,   /* atomic store */
    SR_OP_RMW,     /* atomic exchange / fetch_op */
    SR_OP_CAS,     /* atomic compare-exchange */
    SR_OP_FENCE,   /* atomic_thread_fence */
    SR_OP_READ,    /* plain read (--plain-points) */
    SR_OP_WRITE,   /* plain write (--plain-points) */
    SR_OP_COPY,    /* memcpy / memmove / memset */
    SR_OP_YIELD,   /* sched_yield, or a spin that read the same memory again and again */
    SR_OP_SLEEP,   /* nanosleep & co: value = ns */
    SR_OP_WAIT,    /* a blocking wait (futex, mutex, condvar, semaphore): value = timeout ns */
    SR_OP_WAKE,    /* futex wake, unlock, post, signal: value = how many were woken */
    SR_OP_HARNESS, /* a point the harness itself asked for (inside a critical section) */
    SR_OP_FLUSH,   /* a buffered store became visible to the other threads */
    SR_OP_WOKE,    /* the end of a blocking wait: value = 1 when its timeout expired */
    SR_OP_SIGNAL,  /* --fault signals: a signal interrupted the blocking call */
    SR_OP_N
};

/* pc is in the main executable (the ipcproof harness), not in the protocol's code; where that
 * is, is found by sr_find_harness() (once, before the first call). places.c */
int sr_from_harness(const void *pc);
void sr_find_harness(void);
/* pc as a module of r's table + offset (at), and where = its dynamic symbol, if any. places.c */
struct st_sched_report;
struct st_sched_pc;
void sr_place(struct st_sched_report *r, const void *pc, struct st_sched_pc *at, char *where,
              size_t cap);

/* --crash-point in process mode: counts a scheduling point of this thread when armed, and dies
 * at the chosen one. Called where a scheduled thread would have a point, scheduled or not. */
void sr_crash_point(void);

/* This thread is scheduled. */
int sr_active(void);

/* A scheduling point before an operation: returns when this thread may perform it. */
void sr_point(int op, const volatile void *addr, uint64_t value, const void *pc);

/* Blocks this thread on key until sr_wake(key) or the virtual deadline (0 = none). Returns 0
 * when woken, -1 when the deadline passed. `what` names the call for a deadlock report. */
int sr_block(const void *key, int64_t deadline_ns, const char *what, const void *pc);

/* --fault signals: called where a call of the protocol is about to block (on key, NULL for an
 * fd). A choice of the scheduler (a dfs branching point, counted as a preemption): 1 when a
 * signal arrives now, recorded as an event; the caller then returns as the interrupted call does.
 * Always 0 without signals, outside a scheduled thread and in the harness's own calls. */
int sr_interrupt(const void *key, const void *pc);
int sr_signals(void); /* --fault signals is on */

/* Wakes up to n threads blocked on key (n < 0: all), lowest index first. Returns how many. */
int sr_wake(const void *key, int n);

/* The virtual epoch of CLOCK_REALTIME. */
#define SR_REALTIME_OFF 1700000000000000000LL

/* A futex call of a scheduled thread (FUTEX_WAIT[_BITSET], FUTEX_WAKE[_BITSET]): the syscall's
 * return value, -1 with errno. Other operations: -1, ENOSYS. */
struct timespec;
long sr_futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts, const void *pc);
/* A membarrier(2) call of a scheduled thread: MEMBARRIER_CMD_GLOBAL[_EXPEDITED] and
 * PRIVATE_EXPEDITED make every thread run a full barrier, so every store buffer drains (after a
 * scheduling point); 0. The other commands (query, register) go to the kernel. */
long sr_membarrier(int cmd, unsigned flags, int cpu, const void *pc);

/* Virtual sleep until t (virtual ns). */
void sr_sleep_until(int64_t t, const void *pc);

/* The store buffer of --memory tso (x86-TSO): an atomic store below seq_cst is buffered, and
 * becomes visible to the other threads when the scheduler flushes it (one of its choices), or at
 * a fence, a locked read-modify-write, a blocking call or the thread's end. The thread's own
 * loads see its buffered stores. */
int sr_tso(void); /* this thread is scheduled and the memory model is TSO */
/* Stores v (size 1, 2, 4 or 8 bytes) at a with memory order mo (TSan's enum): buffered under
 * TSO below seq_cst, else directly; what it releases is released when it becomes visible. */
void sr_store(volatile void *a, int size, uint64_t v, int mo);
/* The value of this thread's newest buffered store to exactly a (1), or 0 when none. */
int sr_forward(const volatile void *a, int size, uint64_t *v);
/* Makes every buffered store of this thread visible, oldest first. */
void sr_drain(void);
/* Drains when a buffered store overlaps [a, a + n): the thread's own plain accesses see them. */
void sr_drain_overlap(const volatile void *a, size_t n);

/* Happens-before for the race detector (cfg.races; hb.h), for the running scheduled thread:
 * SR_HB_ACQUIRE / SR_HB_RELEASE of (a, arg = enum hb_kind); the atomic operations SR_HB_LOAD,
 * SR_HB_STORE, SR_HB_RMW and SR_HB_FENCE on a with arg = the memory order. */
enum { SR_HB_ACQUIRE, SR_HB_RELEASE, SR_HB_LOAD, SR_HB_STORE, SR_HB_RMW, SR_HB_FENCE };
void sr_sync(int what, const volatile void *a, int arg);
/* A plain access (op: SR_OP_READ, SR_OP_WRITE or SR_OP_COPY) of [a, a + n) about to happen: the
 * first one that races ends the schedule (ST_SCHED_RACE) and never returns. */
void sr_access(const volatile void *a, size_t n, int write, int op, const void *pc);
/* [a, a + n) was freed or unmapped by a scheduled thread: its accesses are forgotten. */
void sr_forget(const volatile void *a, size_t n);

/* Virtual time in ns (CLOCK_MONOTONIC of the scheduled threads). */
int64_t sr_now(void);

/* The real libc functions (resolved with dlsym(RTLD_NEXT) once). */
long sr_real_syscall6(long n, long a, long b, long c, long d, long e, long f);

#endif
