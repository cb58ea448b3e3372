/* schedrt.c - the scheduler of `--mode sched`: one scheduled thread runs at a time, and at every
 * scheduling point a seeded strategy chooses who runs next.
 *
 * Handing over: each thread has a futex word (its baton: 0 wait, 1 run, 2 asleep on it). The
 * running thread gives the chosen thread the baton (waking it only if it sleeps) and polls its
 * own for a moment, then sleeps on it until it is chosen again, so exactly one scheduled thread
 * is ever running, and the scheduler's state is only touched by it.
 *
 * Strategies. random: uniform among the threads that can run. pct (Burckhardt et al., ASPLOS
 * 2010): distinct random priorities for the n threads, the highest runnable one runs; at d - 1
 * random steps out of the expected k the running thread drops below every other. A bug that needs
 * d ordering constraints is found by one schedule with probability >= 1 / (n k^(d-1)).
 *
 * Spinning and time. A thread that calls sched_yield(), or keeps reading memory nobody writes
 * (SPIN_LIMIT loads in a row), is "yielding": the others run first until somebody writes. Time is
 * virtual: it starts at a fixed value, moves 10 ns per scheduling point, and jumps to the next
 * deadline when every thread sleeps or waits with a timeout; when every runnable thread yields,
 * it moves YIELD_NS. So timeouts and sleeps are deterministic and no wall-clock time is spent
 * waiting.
 *
 * Signals (--fault signals). Where a call of the protocol is about to block, delivering a signal
 * is one more choice (sr_interrupt; 1 in SIGNAL_ODDS with pct and random, a branching point with
 * dfs): the interposer returns as the interrupted call does, and the trace shows the signal.
 *
 * Ends. Every thread ended: finished. Every thread blocked without a deadline: an exact deadlock,
 * reported with what each thread was blocked in. More than max_steps points: livelock. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "hb.h"
#include "schedapi.h"
#include "schedrt.h"
#include "splitmix.h"

#define VTIME_START 1000000000000LL /* 1000 s: far from 0, the same in every run */
#define STEP_NS     10
#define YIELD_NS    1000
#define SPIN_LIMIT  16
/* Waiting for the baton: polls, then sched_yield() (a thread waiting for the baton on the CPU
 * the chosen one needs lets it run: on one CPU a hand-over costs a yield, not a futex sleep and
 * wake-up plus a spin of the whole time slice), then a futex sleep. */
#define HANDOFF_SPIN   64
#define HANDOFF_YIELDS 200
#define SIGNAL_ODDS    4 /* pct, random: a blocking call is interrupted 1 time in 4 */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
#define SB_MAX 16 /* store buffer entries per thread */
_Static_assert(SB_MAX <= HB_PENDING, "the race detector follows every buffered store");

enum tstate { T_NONE = 0, T_RUNNABLE, T_BLOCKED, T_DONE };

struct sthread {
    _Alignas(64) _Atomic uint32_t baton; /* 1: this thread runs; 2: it sleeps on the word */
    int state;
    const void *key; /* blocked on */
    int64_t wake_at; /* deadline of a block or sleep (0: none) */
    int timed_out;
    int yielded;
    unsigned spin;
    uint64_t prio;    /* pct */
    const char *what; /* the call it is blocked in */
    const void *pc;
    const volatile uint32_t *fword; /* a futex wait: the word, and the value it slept on */
    uint32_t fval;
    struct {
        volatile void *addr;
        int size;
        uint64_t value;
        const void *pc;
    } sb[SB_MAX]; /* --memory tso: stores not yet visible to the others, oldest first */
    int sb_n;
};

static struct {
    int active;
    struct st_sched_cfg cfg;
    struct st_sched_report *rep;
    uint32_t n;
    _Atomic uint32_t registered;
    _Atomic uint32_t status; /* enum st_sched_status; futex word for the thread in run() */
    struct sthread t[ST_SCHED_MAX_THREADS];
    int cur;
    uint64_t steps, switches, rng, hash;
    uint64_t accesses; /* checked by the race detector */
    int64_t vtime;
    uint64_t change[16]; /* pct change points, ascending */
    uint32_t nchange, next_change;
    uint64_t dpos;    /* decisions used */
    uint64_t nbranch; /* branching points met */
    /* address -> (object, offset): the 4 KiB pages in order of first use */
    uintptr_t pages[512];
    uint32_t npages;
} S;

/* volatile: the runtime's own calls of memcpy/memset (made by the compiler too) come back to
 * this library's interposers, which read these; a compiler that takes those calls for libc's
 * may not drop or move a store around them */
static SR_TLS volatile int me = -1;
static SR_TLS volatile int busy; /* inside the runtime: its own copies are not points */

/* ---- small helpers -------------------------------------------------------------------------- */

long sr_real_syscall6(long n, long a, long b, long c, long d, long e, long f)
{
    static long (*real)(long, ...);
    if (real == NULL) *(void **)&real = dlsym(RTLD_NEXT, "syscall");
    return real(n, a, b, c, d, e, f);
}

static void futex_wait(_Atomic uint32_t *w, uint32_t val)
{
    sr_real_syscall6(SYS_futex, (long)w, FUTEX_WAIT_PRIVATE, (long)val, 0, 0, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
    sr_real_syscall6(SYS_futex, (long)w, FUTEX_WAKE_PRIVATE, INT_MAX, 0, 0, 0);
}

/* The next choice: a byte of cfg.decisions while they last (a fuzzer steers the schedule), then
 * the seed's stream. */
static uint64_t rnd(void)
{
    if (S.dpos < S.cfg.ndecisions) return S.cfg.decisions[S.dpos++];
    S.rng += SPLITMIX64_GAMMA;
    return splitmix64_mix(S.rng);
}

int sr_active(void)
{
    return me >= 0 && S.active && !busy;
}

int64_t sr_now(void)
{
    return S.vtime;
}

static void locate(const volatile void *addr, uint32_t *obj, uint32_t *off)
{
    uintptr_t a = (uintptr_t)addr, page = a & ~(uintptr_t)4095;
    *off = (uint32_t)(a - page);
    for (uint32_t i = 0; i < S.npages; i++)
        if (S.pages[i] == page) {
            *obj = i + 1;
            return;
        }
    if (S.npages < sizeof(S.pages) / sizeof(S.pages[0])) S.pages[S.npages++] = page;
    *obj = S.npages;
}

static void record(int op, const volatile void *addr, uint64_t value, const void *pc)
{
    struct st_sched_report *r = S.rep;
    uint32_t obj = 0, off = 0;
    if (addr != NULL) locate(addr, &obj, &off);
    if (value >= (1ull << 40)) value = UINT64_MAX; /* a pointer: differs from run to run */
    S.hash = splitmix64_mix(S.hash ^ ((uint64_t)me << 56) ^ ((uint64_t)op << 48) ^
                            ((uint64_t)obj << 32) ^ off ^ splitmix64_mix(value));
    if (r == NULL) return;
    struct st_sched_event *e = &r->trace[r->nevents % ST_SCHED_TRACE];
    e->step = S.steps;
    e->thread = (uint32_t)me;
    e->op = (uint32_t)op;
    e->value = value;
    e->object = obj;
    e->offset = off;
    e->pc = (uint64_t)(uintptr_t)pc;
    memset(&e->at, 0, sizeof(e->at));
    e->where[0] = '\0';
    r->nevents++;
}

/* ---- the store buffer (--memory tso) ------------------------------------------------------ */

static void mem_store(volatile void *a, int size, uint64_t v)
{
    switch (size) {
    case 1:
        __atomic_store_n((volatile uint8_t *)a, (uint8_t)v, __ATOMIC_SEQ_CST);
        break;
    case 2:
        __atomic_store_n((volatile uint16_t *)a, (uint16_t)v, __ATOMIC_SEQ_CST);
        break;
    case 4:
        __atomic_store_n((volatile uint32_t *)a, (uint32_t)v, __ATOMIC_SEQ_CST);
        break;
    default:
        __atomic_store_n((volatile uint64_t *)a, v, __ATOMIC_SEQ_CST);
    }
}

/* The oldest buffered store of thread i becomes visible. */
static void flush_one(int i)
{
    struct sthread *t = &S.t[i];
    if (t->sb_n == 0) return;
    mem_store(t->sb[0].addr, t->sb[0].size, t->sb[0].value);
    if (S.cfg.races) hb_store_flushed((uint32_t)i); /* what it releases, released now */
    int self = me;
    me = i; /* the event is the flushed thread's */
    record(SR_OP_FLUSH, t->sb[0].addr, t->sb[0].value, t->sb[0].pc);
    me = self;
    t->sb_n--;
    for (int k = 0; k < t->sb_n; k++)
        t->sb[k] = t->sb[k + 1];
}

static void drain_thread(int i)
{
    while (S.t[i].sb_n > 0)
        flush_one(i);
}

int sr_tso(void)
{
    return sr_active() && S.cfg.tso;
}

void sr_drain(void)
{
    if (me >= 0 && S.active) {
        int was = busy;
        busy = 1;
        drain_thread(me);
        busy = was;
    }
}

void sr_store(volatile void *a, int size, uint64_t v, int mo)
{
    if (!sr_tso() || mo == HB_SEQ_CST) {
        sr_drain();
        mem_store(a, size, v);
        sr_sync(SR_HB_STORE, a, mo);
        return;
    }
    struct sthread *t = &S.t[me];
    busy = 1;
    if (t->sb_n == SB_MAX) flush_one(me);
    t->sb[t->sb_n].addr = a;
    t->sb[t->sb_n].size = size;
    t->sb[t->sb_n].value = v;
    t->sb[t->sb_n].pc = __builtin_return_address(0);
    t->sb_n++;
    if (S.cfg.races) hb_store_buffered((uint32_t)me, (const void *)a, mo);
    busy = 0;
}

int sr_forward(const volatile void *a, int size, uint64_t *v)
{
    if (!sr_tso()) return 0;
    struct sthread *t = &S.t[me];
    for (int k = t->sb_n - 1; k >= 0; k--)
        if (t->sb[k].addr == a && t->sb[k].size == size) {
            *v = t->sb[k].value;
            return 1;
        }
    return 0;
}

void sr_drain_overlap(const volatile void *a, size_t n)
{
    if (!sr_tso() || S.t[me].sb_n == 0) return;
    uintptr_t lo = (uintptr_t)a, hi = lo + n;
    struct sthread *t = &S.t[me];
    for (int k = 0; k < t->sb_n; k++) {
        uintptr_t b = (uintptr_t)t->sb[k].addr;
        if (b < hi && b + (uintptr_t)t->sb[k].size > lo) {
            sr_drain();
            return;
        }
    }
}

/* The alternative taken at the next branching point, recorded for the supervisor (every
 * strategy: dfs derives the next schedule's prefix from it, and a failing pct or random schedule
 * is rerun and minimised as the dfs path of its choices). */
static void note_choice(uint32_t idx, uint32_t nalt, int preempt)
{
    uint64_t k = S.nbranch++;
    if (S.rep == NULL) return;
    if (k < ST_SCHED_CHOICES)
        S.rep->choices[k] = (struct st_sched_choice){
            .taken = (uint8_t)idx, .nalt = (uint8_t)nalt, .preempt = (uint8_t)preempt};
    S.rep->nchoices = k + 1;
}

/* dfs: the alternative taken at the next branching point (nalt >= 2): the prescribed one, else
 * 0. */
static uint32_t dfs_choice(uint32_t nalt, int preempt)
{
    uint64_t k = S.nbranch;
    uint32_t idx = k < S.cfg.ndecisions ? S.cfg.decisions[k] : 0;
    if (idx >= nalt) { /* the run is not the one the prefix was taken from */
        idx = 0;
        if (S.rep != NULL) S.rep->diverged = 1;
    }
    note_choice(idx, nalt, preempt);
    return idx;
}

/* pct, random: a binary choice (a flush, a signal) of the seed's stream, 1 time in `odds`,
 * recorded as dfs would see it. */
static int coin(uint64_t odds)
{
    if (S.cfg.strategy == ST_SCHED_DFS) return dfs_choice(2, 1) == 1;
    int yes = rnd() % odds == 0;
    note_choice((uint32_t)yes, 2, 1);
    return yes;
}

/* A choice of the scheduler: now and then, a buffered store of some thread becomes visible
 * (dfs: a branching point per thread with buffered stores, keeping them buffered first). */
static void maybe_flush(void)
{
    for (uint32_t i = 0; i < S.n; i++) {
        if (S.t[i].sb_n == 0) continue;
        if (coin(4)) flush_one((int)i);
    }
}

/* ---- choosing ------------------------------------------------------------------------------- */

static void wake_due(void)
{
    for (uint32_t i = 0; i < S.n; i++) {
        struct sthread *t = &S.t[i];
        if (t->state == T_BLOCKED && t->wake_at && t->wake_at <= S.vtime) {
            t->state = T_RUNNABLE;
            t->timed_out = 1;
            t->key = NULL;
        }
    }
}

static void finish(uint32_t status);

/* The next thread to run, or -1 when none can (the schedule ended: status set). */
static int choose(void)
{
    for (;;) {
        wake_due();
        int cand[ST_SCHED_MAX_THREADS], nc = 0, ny = 0;
        for (uint32_t i = 0; i < S.n; i++)
            if (S.t[i].state == T_RUNNABLE) {
                cand[nc++] = (int)i;
                ny += S.t[i].yielded != 0;
            }
        if (nc == 0) {
            /* nobody can run: what is still buffered becomes visible first */
            for (uint32_t i = 0; i < S.n; i++)
                drain_thread((int)i);
            /* a futex waiter whose word changed while nobody woke it: its wake-up was lost, and
             * only its timeout will get it going */
            for (uint32_t i = 0; S.cfg.lost_wakeups && i < S.n; i++)
                if (S.t[i].state == T_BLOCKED && S.t[i].fword != NULL &&
                    __atomic_load_n(S.t[i].fword, __ATOMIC_SEQ_CST) != S.t[i].fval) {
                    finish(ST_SCHED_LOSTWAKE);
                    return -1;
                }
            int64_t next = 0, done = 0;
            for (uint32_t i = 0; i < S.n; i++) {
                if (S.t[i].state == T_DONE) done++;
                if (S.t[i].state == T_BLOCKED && S.t[i].wake_at &&
                    (next == 0 || S.t[i].wake_at < next))
                    next = S.t[i].wake_at;
            }
            if (done == S.n) {
                finish(ST_SCHED_FINISHED);
                return -1;
            }
            if (next == 0) {
                finish(ST_SCHED_DEADLOCK);
                return -1;
            }
            S.vtime = next; /* everybody waits: time jumps to the first deadline */
            continue;
        }
        if (ny == nc) { /* every runnable thread spins: let time pass, try them all again */
            if (S.cfg.strategy == ST_SCHED_DFS) /* dfs keeps stores buffered: real ones drain */
                for (uint32_t i = 0; i < S.n; i++)
                    drain_thread((int)i);
            for (int k = 0; k < nc; k++) {
                S.t[cand[k]].yielded = 0;
                S.t[cand[k]].spin = 0;
            }
            S.vtime += YIELD_NS;
            wake_due();
            continue;
        }
        int pick = -1;
        /* the alternatives as dfs numbers them: the running thread first (going on is not a
         * preemption), then by index */
        int alt[ST_SCHED_MAX_THREADS], na = 0;
        int goes_on = me >= 0 && S.t[me].state == T_RUNNABLE && !S.t[me].yielded;
        if (goes_on) alt[na++] = me;
        for (int k = 0; k < nc; k++)
            if (!S.t[cand[k]].yielded && cand[k] != me) alt[na++] = cand[k];
        if (S.cfg.strategy == ST_SCHED_DFS) {
            return alt[na == 1 ? 0 : dfs_choice((uint32_t)na, goes_on)];
        } else if (S.cfg.strategy == ST_SCHED_RANDOM) {
            uint64_t r = rnd() % (uint64_t)(nc - ny);
            for (int k = 0; k < nc; k++)
                if (!S.t[cand[k]].yielded && r-- == 0) {
                    pick = cand[k];
                    break;
                }
        } else {
            for (int k = 0; k < nc; k++)
                if (!S.t[cand[k]].yielded && (pick < 0 || S.t[cand[k]].prio > S.t[pick].prio))
                    pick = cand[k];
        }
        for (int k = 0; na > 1 && k < na; k++)
            if (alt[k] == pick) note_choice((uint32_t)k, (uint32_t)na, goes_on);
        return pick;
    }
}

/* Thread i runs next. */
static void baton_give(int i)
{
    if (atomic_exchange(&S.t[i].baton, 1) == 2) futex_wake(&S.t[i].baton);
}

/* Waits until this thread (i) has the baton: polls it for a while, then yields the CPU for a
 * while (it often comes back within microseconds, and then no futex call is made on either
 * side), then sleeps on it. */
static void baton_take(int i)
{
    for (int k = 0; k < HANDOFF_SPIN; k++) {
        if (atomic_load_explicit(&S.t[i].baton, memory_order_acquire) == 1) return;
        cpu_relax();
    }
    for (int k = 0; k < HANDOFF_YIELDS; k++) {
        if (atomic_load_explicit(&S.t[i].baton, memory_order_acquire) == 1) return;
        sr_real_syscall6(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
    }
    uint32_t zero = 0;
    if (atomic_compare_exchange_strong(&S.t[i].baton, &zero, 2) || zero == 2)
        while (atomic_load(&S.t[i].baton) == 2)
            futex_wait(&S.t[i].baton, 2);
}

/* Runs `next` and waits until this thread is chosen again. */
static void hand_over(int next)
{
    int self = me;
    if (next == self) return;
    S.switches++;
    S.cur = next;
    atomic_store_explicit(&S.t[self].baton, 0, memory_order_relaxed);
    baton_give(next);
    baton_take(self);
}

/* The schedule ended and this thread cannot go on: park it for good (the process exits). */
static void park(void)
{
    atomic_store(&S.t[me].baton, 0);
    for (;;)
        futex_wait(&S.t[me].baton, 0);
}

static void pct_step(void)
{
    while (S.next_change < S.nchange && S.change[S.next_change] <= S.steps) {
        /* below every initial priority, and below the previous change points */
        S.t[me].prio = S.nchange - S.next_change;
        S.next_change++;
    }
}

/* ---- in-process deaths (schedapi.h: ipcproof_sched_die_at) --------------------------------- */

static SR_TLS uint64_t die_left; /* points left */
static SR_TLS jmp_buf *die_env;
static SR_TLS void (*die_fn)(void *);
static SR_TLS void *die_arg;

SR_EXPORT void ipcproof_sched_die_at(uint64_t n, jmp_buf *env, void (*died)(void *), void *arg)
{
    die_left = n;
    die_env = env;
    die_fn = died;
    die_arg = arg;
}

static _Noreturn void die(const void *pc) /* chosen for the armed point's operation: busy */
{
    drain_thread(me);
    record(SR_OP_HARNESS, NULL, 0xdead, pc);
    if (die_fn != NULL) die_fn(die_arg);
    busy = 0;
    longjmp(*die_env, 1);
}

void sr_point(int op, const volatile void *addr, uint64_t value, const void *pc)
{
    sr_crash_point();
    if (!sr_active()) return;
    busy = 1;
    struct sthread *t = &S.t[me];
    S.steps++;
    S.vtime += STEP_NS;
    if (S.cfg.max_steps && S.steps > S.cfg.max_steps) {
        finish(ST_SCHED_LIVELOCK);
        park();
    }
    if (op == SR_OP_LOAD || op == SR_OP_READ || op == SR_OP_FENCE) {
        if (++t->spin >= SPIN_LIMIT) t->yielded = 1;
    } else if (op == SR_OP_YIELD) {
        t->yielded = 1;
    } else if (op != SR_OP_SLEEP && op != SR_OP_WAIT) { /* a write: others may move now */
        for (uint32_t i = 0; i < S.n; i++) {
            S.t[i].yielded = 0;
            S.t[i].spin = 0;
        }
    }
    if (S.cfg.strategy == ST_SCHED_PCT) pct_step();
    if (S.cfg.tso) maybe_flush();
    int next = choose();
    if (next < 0) park();
    hand_over(next);
    if (die_left && --die_left == 0) die(pc);
    record(op, addr, value, pc);
    busy = 0;
}

int sr_block(const void *key, int64_t deadline_ns, const char *what, const void *pc)
{
    busy = 1;
    struct sthread *t = &S.t[me];
    drain_thread(me); /* a system call: the store buffer drains */
    S.steps++;
    t->state = T_BLOCKED;
    t->key = key;
    t->wake_at = deadline_ns;
    t->timed_out = 0;
    t->what = what;
    t->pc = pc;
    t->yielded = 0;
    t->spin = 0;
    int next = choose();
    if (next < 0) park();
    hand_over(next);
    if (S.cfg.races && !t->timed_out) hb_acquire((uint32_t)me, key, HB_WAKE); /* its waker's */
    t->wake_at = 0;
    t->what = NULL;
    t->fword = NULL;
    record(SR_OP_WOKE, key, t->timed_out ? 1 : 0, pc);
    busy = 0;
    return t->timed_out ? -1 : 0;
}

int sr_wake(const void *key, int n)
{
    int woken = 0;
    if (S.cfg.races && me >= 0 && S.active) hb_release((uint32_t)me, key, HB_WAKE);
    for (uint32_t i = 0; i < S.n && (n < 0 || woken < n); i++) {
        struct sthread *t = &S.t[i];
        if (t->state == T_BLOCKED && t->key == key) {
            t->state = T_RUNNABLE;
            t->key = NULL;
            t->timed_out = 0;
            woken++;
        }
    }
    return woken;
}

int sr_signals(void)
{
    return S.cfg.signals != 0;
}

int sr_interrupt(const void *key, const void *pc)
{
    if (!S.cfg.signals || !sr_active() || sr_from_harness(pc)) return 0;
    busy = 1;
    int yes = coin(SIGNAL_ODDS);
    if (yes) {
        record(SR_OP_SIGNAL, key, 0, pc);
        if (S.rep != NULL) S.rep->interrupts++;
    }
    busy = 0;
    return yes;
}

static int64_t ts_ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

long sr_futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts, const void *pc)
{
    int cmd = op & FUTEX_CMD_MASK;
    if (cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET) {
        sr_drain();
        sr_point(SR_OP_WAIT, uaddr, val, pc);
        if (__atomic_load_n(uaddr, __ATOMIC_SEQ_CST) != val) {
            /* the word changed: as if loaded with acquire, and after a wake that may be why */
            sr_sync(SR_HB_ACQUIRE, uaddr, HB_WAKE);
            sr_sync(SR_HB_LOAD, uaddr, HB_ACQUIRE);
            errno = EAGAIN;
            return -1;
        }
        int64_t deadline = 0;
        if (ts != NULL) {
            if (cmd == FUTEX_WAIT)
                deadline = sr_now() + ts_ns(ts);
            else
                deadline = (op & FUTEX_CLOCK_REALTIME) ? ts_ns(ts) - SR_REALTIME_OFF : ts_ns(ts);
            if (deadline <= sr_now()) deadline = sr_now() + 1;
        }
        if (sr_interrupt(uaddr, pc)) {
            errno = EINTR;
            return -1;
        }
        S.t[me].fword = uaddr;
        S.t[me].fval = val;
        if (sr_block(uaddr, deadline, "a futex wait", pc) < 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        return 0;
    }
    if (cmd == FUTEX_WAKE || cmd == FUTEX_WAKE_BITSET) {
        sr_drain();
        sr_point(SR_OP_WAKE, uaddr, val, pc);
        return sr_wake(uaddr, val > (uint32_t)INT32_MAX ? -1 : (int)val);
    }
    errno = ENOSYS; /* requeue, PI futexes: not modelled */
    return -1;
}

long sr_membarrier(int cmd, unsigned flags, int cpu, const void *pc)
{
    if (cmd == MEMBARRIER_CMD_GLOBAL || cmd == MEMBARRIER_CMD_GLOBAL_EXPEDITED ||
        cmd == MEMBARRIER_CMD_PRIVATE_EXPEDITED) {
        sr_point(SR_OP_FENCE, NULL, 0, pc);
        busy = 1;
        for (uint32_t i = 0; i < S.n; i++) /* each thread ran a full barrier */
            drain_thread((int)i);
        busy = 0;
        return 0;
    }
    return sr_real_syscall6(SYS_membarrier, cmd, (long)flags, cpu, 0, 0, 0); /* query, register */
}

void sr_sleep_until(int64_t when, const void *pc)
{
    if (when <= S.vtime) {
        sr_point(SR_OP_YIELD, NULL, 0, pc);
        return;
    }
    static const char sleep_key = 0;
    sr_block(&sleep_key, when, "a sleep", pc);
}

/* ---- the report ----------------------------------------------------------------------------- */

static void finish(uint32_t status)
{
    struct st_sched_report *r = S.rep;
    if (r != NULL) {
        r->steps = S.steps;
        r->switches = S.switches;
        r->trace_hash = S.hash;
        r->vtime_ns = S.vtime - VTIME_START;
        r->accesses = S.accesses;
        if (!S.cfg.raw_trace) ipcproof_sched_place_trace(r);
        if (status == ST_SCHED_DEADLOCK || status == ST_SCHED_LOSTWAKE) {
            for (uint32_t i = 0; i < S.n; i++) {
                struct sthread *t = &S.t[i];
                struct st_sched_blocked *b = &r->blocked[i];
                if (t->state != T_BLOCKED) continue;
                b->blocked = 1;
                snprintf(b->what, sizeof(b->what), "%s", t->what ? t->what : "?");
                if (t->key) locate(t->key, &b->object, &b->offset);
                sr_place(r, t->pc, &b->at, b->where, sizeof(b->where));
            }
        } else if (status == ST_SCHED_LIVELOCK) {
            static const char *const st[] = {"?", "runnable", "blocked", "done"};
            size_t len = (size_t)snprintf(r->text, sizeof(r->text),
                                          "the schedule did not end within %llu scheduling "
                                          "points (a livelock, or raise the limit):",
                                          (unsigned long long)S.cfg.max_steps);
            for (uint32_t i = 0; i < S.n && len < sizeof(r->text); i++)
                len += (size_t)snprintf(r->text + len, sizeof(r->text) - len,
                                        " %s %s%s, %d buffered store%s;", r->names[i],
                                        st[S.t[i].state & 3], S.t[i].yielded ? " (spinning)" : "",
                                        S.t[i].sb_n, S.t[i].sb_n == 1 ? "" : "s");
        }
        r->status = status;
    }
    S.active = 0;
    atomic_store(&S.status, status);
    futex_wake(&S.status);
}

/* ---- data races (cfg.races; hb.h) ----------------------------------------------------------- */

void sr_sync(int what, const volatile void *a, int arg)
{
    /* by what: the detector's entry for it (SR_HB_FENCE: hb_fence, which has no address) */
    static void (*const op[])(uint32_t, const void *, int) = {
        [SR_HB_ACQUIRE] = hb_acquire, [SR_HB_RELEASE] = hb_release, [SR_HB_LOAD] = hb_load,
        [SR_HB_STORE] = hb_store,     [SR_HB_RMW] = hb_rmw,
    };
    if (!S.cfg.races || !sr_active()) return;
    busy = 1;
    if (what == SR_HB_FENCE)
        hb_fence((uint32_t)me, arg);
    else
        op[what]((uint32_t)me, (const void *)a, arg);
    busy = 0;
}

static void race_side(struct st_sched_access *s, const struct hb_access *a)
{
    s->thread = a->thread;
    s->write = a->write;
    locate((const void *)a->addr, &s->object, &s->offset);
    s->size = a->size;
    s->step = a->step;
    s->known = a->known;
    s->pc = (uint64_t)(uintptr_t)a->pc;
    sr_place(S.rep, a->pc, &s->at, s->where, sizeof(s->where));
}

void sr_access(const volatile void *a, size_t n, int write, int op, const void *pc)
{
    if (!S.cfg.races || !sr_active()) return;
    busy = 1;
    S.accesses += hb_on() != 0;
    struct hb_race rc;
    if (hb_access((uint32_t)me, (const void *)a, n, write, pc, S.steps, &rc)) {
        record(op, a, n, pc); /* the trace ends with it */
        if (S.rep != NULL) {
            locate((const void *)rc.at, &S.rep->race.object, &S.rep->race.offset);
            race_side(&S.rep->race.access[0], &rc.prev);
            race_side(&S.rep->race.access[1], &rc.cur);
        }
        finish(ST_SCHED_RACE);
        park();
    }
    busy = 0;
}

void sr_forget(const volatile void *a, size_t n)
{
    if (!S.cfg.races || !sr_active()) return;
    busy = 1;
    hb_forget((const void *)a, n);
    busy = 0;
}

/* ---- the entry points of the harness -------------------------------------------------------- */

SR_EXPORT int ipcproof_sched_begin(const struct st_sched_cfg *cfg, struct st_sched_report *rep)
{
    if (cfg->nthreads == 0 || cfg->nthreads > ST_SCHED_MAX_THREADS) return -EINVAL;
    memset(&S, 0, sizeof(S));
    S.cfg = *cfg;
    S.rep = rep;
    S.n = cfg->nthreads;
    S.vtime = VTIME_START;
    S.rng = splitmix64_mix(cfg->seed ^ splitmix64_mix(cfg->schedule ^ 0x7363686564ull));
    S.hash = splitmix64_mix(cfg->seed ^ cfg->schedule);
    S.cur = -1;
    if (rep != NULL) {
        memset(rep, 0, sizeof(*rep));
        rep->nthreads = S.n;
    }
    /* pct: a random permutation of the priorities d .. d + n - 1, and d - 1 change points (not
     * for dfs: its decisions are the alternatives of the branching points alone) */
    uint32_t d = cfg->depth && cfg->strategy != ST_SCHED_DFS ? cfg->depth : 1;
    if (d > 16) d = 16;
    uint64_t order[ST_SCHED_MAX_THREADS];
    for (uint32_t i = 0; i < S.n; i++)
        order[i] = d + i;
    for (uint32_t i = S.n; i > 1 && cfg->strategy != ST_SCHED_DFS; i--) {
        uint32_t j = (uint32_t)(rnd() % i);
        uint64_t x = order[i - 1];
        order[i - 1] = order[j];
        order[j] = x;
    }
    for (uint32_t i = 0; i < S.n; i++)
        S.t[i].prio = order[i];
    uint64_t k = cfg->steps_hint ? cfg->steps_hint : 1000;
    S.nchange = d - 1;
    for (uint32_t i = 0; i < S.nchange; i++)
        S.change[i] = 1 + rnd() % k;
    for (uint32_t i = 1; i < S.nchange; i++) /* ascending */
        for (uint32_t j = i; j > 0 && S.change[j] < S.change[j - 1]; j--) {
            uint64_t x = S.change[j];
            S.change[j] = S.change[j - 1];
            S.change[j - 1] = x;
        }
    sr_find_harness();
    if (S.cfg.races && hb_begin(S.n) < 0) S.cfg.races = 0;
    S.active = 1;
    return 0;
}

SR_EXPORT void ipcproof_sched_enter(uint32_t index, const char *name)
{
    if (index >= S.n) return;
    busy = 1;
    me = (int)index;
    S.t[index].state = T_RUNNABLE;
    if (S.rep != NULL) snprintf(S.rep->names[index], sizeof(S.rep->names[index]), "%s", name);
    atomic_fetch_add(&S.registered, 1);
    futex_wake(&S.registered);
    baton_take((int)index);
    record(SR_OP_HARNESS, NULL, 0, __builtin_return_address(0));
    busy = 0;
}

SR_EXPORT void ipcproof_sched_leave(void)
{
    if (!sr_active()) return;
    busy = 1;
    drain_thread(me);
    S.t[me].state = T_DONE;
    S.steps++;
    int next = choose();
    if (next >= 0) {
        S.switches++;
        S.cur = next;
        baton_give(next);
    }
    me = -1;
    busy = 0;
}

SR_EXPORT int ipcproof_sched_run(void)
{
    uint32_t r;
    while ((r = atomic_load(&S.registered)) < S.n)
        sr_real_syscall6(SYS_futex, (long)&S.registered, FUTEX_WAIT_PRIVATE, (long)r, 0, 0, 0);
    int first = choose();
    if (first >= 0) {
        S.cur = first;
        baton_give(first);
    }
    uint32_t st;
    while ((st = atomic_load(&S.status)) == ST_SCHED_RUNNING)
        sr_real_syscall6(SYS_futex, (long)&S.status, FUTEX_WAIT_PRIVATE, (long)st, 0, 0, 0);
    return (int)st;
}

/* A point of the harness's own (entering and inside a critical section): it does not drain the
 * store buffer, so another thread may run while this one's stores are still invisible, as on a
 * real machine between the last load of lock() and what follows. */
SR_EXPORT void ipcproof_sched_point(void)
{
    sr_point(SR_OP_HARNESS, NULL, 0, __builtin_return_address(0));
}
