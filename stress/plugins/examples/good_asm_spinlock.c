/* good_asm_spinlock.c - a correct spinlock written in inline assembly, annotated for
 * ThreadSanitizer.
 *
 *     cc -shared -fPIC -O2 -I<ipcproof>/include good_asm_spinlock.c -o good_asm_spinlock.so
 *     ipcproof validate --plugin-src good_asm_spinlock.c        # plain and TSan builds
 *
 * A ticket lock: two 32-bit words in a MAP_SHARED anonymous page made by create() (so forked
 * workers and the threads of thread mode share them, threads at the same address). lock() takes
 * a ticket with `lock xadd` on `next` and spins (`pause`, then sched_yield()) until `serving`
 * shows it; unlock() stores ticket + 1 into `serving` with a plain `mov`, which is a release store
 * on x86. Tickets are served in order, so no contender starves (a test-and-set lock taken with
 * `lock xchg` or `lock cmpxchg` is just as correct but unfair: `ipcproof validate` reports its
 * waiters as `starvation`). A lock() that times out keeps its ticket in the handle and the retry
 * waits for the same turn; close() passes on a turn its handle still holds. On other
 * architectures the same operations are __atomic builtins.
 *
 * ThreadSanitizer does not see inside inline assembly: the `lock xadd` and the releasing `mov`
 * are invisible to it, so it sees no happens-before from one holder to the next, and every
 * access the critical section makes (here: the harness's non-atomic counter) is reported as a
 * data race - a false `race` on a correct lock. The fix is to tell it what the assembly does:
 * __tsan_acquire(&serving) once our turn came, __tsan_release(&serving) before the store that
 * passes the turn on. Both exist only in a -fsanitize=thread build and are compiled in only
 * there. docs/plugins.md ("Atomics in inline assembly") walks through it.
 *
 * `--opt annotate=0` leaves the annotations out, to see the false race TSan reports without them
 * (in the TSan build of ipcproof, with the plugin built with clang-14 -fsanitize=thread):
 *     ipcproof stress --plugin ./good_asm_spinlock-tsan.so --kind lock --mode thread --workers 4 \
 *         --opt annotate=0
 * Not robust: a holder that dies, or a waiter that dies holding a ticket, stops the queue for
 * good. Flags 0, so `--fault kill` only kills contenders between two acquisitions. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MAP_ANONYMOUS */
#endif
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <ipcproof/plugin.h>

/* ---- the ThreadSanitizer annotations --------------------------------------------------------- */

/* gcc defines __SANITIZE_THREAD__; clang 14 does not, it has __has_feature(thread_sanitizer)
 * (nested #if: __has_feature does not exist in gcc 12's preprocessor). */
#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_BUILD 1
#endif
#endif

#ifdef TSAN_BUILD
/* From <sanitizer/tsan_interface.h>, declared here so the plugin builds without it. */
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define TSAN_ACQUIRE(on, addr) ((on) ? __tsan_acquire(addr) : (void)0)
#define TSAN_RELEASE(on, addr) ((on) ? __tsan_release(addr) : (void)0)
#else
#define TSAN_ACQUIRE(on, addr) ((void)(on), (void)(addr))
#define TSAN_RELEASE(on, addr) ((void)(on), (void)(addr))
#endif

/* ---- the lock words -------------------------------------------------------------------------- */

#if defined(__x86_64__)
/* A plain load is an acquire load on x86 (later loads and stores are not moved before it); the
 * "memory" clobber keeps the compiler from moving the critical section before it. */
static inline uint32_t word_load(const uint32_t *w)
{
    uint32_t v;
    __asm__ __volatile__("movl %1, %0" : "=r"(v) : "m"(*w) : "memory");
    return v;
}

/* A plain store is a release store on x86 (it is not reordered with earlier loads and stores);
 * the "memory" clobber keeps the compiler from moving the critical section past it. */
static inline void word_store(uint32_t *w, uint32_t v)
{
    __asm__ __volatile__("movl %1, %0" : "=m"(*w) : "r"(v) : "memory");
}

/* *w += 1, returning the old value: `lock xadd`, a full barrier. */
static inline uint32_t word_fetch_inc(uint32_t *w)
{
    uint32_t v = 1;
    __asm__ __volatile__("lock xaddl %0, %1" : "+r"(v), "+m"(*w) : : "memory", "cc");
    return v;
}

static inline void cpu_relax(void)
{
    __asm__ __volatile__("pause" ::: "memory");
}
#else
/* Portable fallback: the same lock with __atomic builtins. ThreadSanitizer sees these, so here
 * the annotations are redundant (and annotate=0 shows no race). */
static inline uint32_t word_load(const uint32_t *w)
{
    return __atomic_load_n(w, __ATOMIC_ACQUIRE);
}

static inline void word_store(uint32_t *w, uint32_t v)
{
    __atomic_store_n(w, v, __ATOMIC_RELEASE);
}

static inline uint32_t word_fetch_inc(uint32_t *w)
{
    return __atomic_fetch_add(w, 1, __ATOMIC_ACQ_REL);
}

static inline void cpu_relax(void)
{
#if defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}
#endif

/* ---- the plugin ------------------------------------------------------------------------------ */

struct shared {
    _Alignas(64) uint32_t next; /* the next ticket to hand out */
    uint32_t serving;           /* the ticket that may enter; only its holder changes it */
    int annotate;               /* set by create() before any worker exists */
};

struct handle {
    struct shared *sh;
    uint32_t ticket;
    int waiting; /* holds a ticket that has not been served yet (lock() timed out) */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* "annotate=0|1" (default 1); anything else is refused. */
static int parse_options(const char *opt, int *annotate)
{
    *annotate = 1;
    while (opt != NULL && *opt != '\0') {
        size_t n = strcspn(opt, ",");
        if (n == 10 && memcmp(opt, "annotate=0", 10) == 0)
            *annotate = 0;
        else if (n == 10 && memcmp(opt, "annotate=1", 10) == 0)
            *annotate = 1;
        else if (n != 0)
            return -EINVAL;
        opt += n;
        if (*opt == ',') opt++;
    }
    return 0;
}

static int create(const struct ipcp_lock_cfg *cfg, void **ctx)
{
    int annotate;
    if (parse_options(cfg->options, &annotate) != 0) return -EINVAL;
    struct shared *sh =
        mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) return -errno;
    sh->annotate = annotate; /* next = serving = 0 already */
    *ctx = sh;
    return 0;
}

static int open_h(void *ctx, uint32_t index, void **h)
{
    (void)index;
    struct handle *x = calloc(1, sizeof(*x));
    if (x == NULL) return -ENOMEM;
    x->sh = ctx;
    *h = x;
    return 0;
}

/* Waits until our ticket is served, or the deadline (-1: none) passes. */
static int wait_turn(struct handle *x, int64_t deadline)
{
    for (unsigned spins = 0;; spins++) {
        if (word_load(&x->sh->serving) == x->ticket) return 0;
        if (spins < 100) {
            cpu_relax();
            continue;
        }
        if (deadline >= 0 && now_ns() >= deadline) return -ETIMEDOUT;
        /* The holder, or the next in line, may be waiting for a CPU (more contenders than
         * cores): give it ours. */
        sched_yield();
    }
}

static int lock(void *h, int timeout_ms)
{
    struct handle *x = h;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ns() + (int64_t)timeout_ms * 1000000;
    if (!x->waiting) { /* a lock() that timed out keeps its place in the queue */
        x->ticket = word_fetch_inc(&x->sh->next);
        x->waiting = 1;
    }
    int r = wait_turn(x, deadline);
    if (r != 0) return r;
    x->waiting = 0;
    /* Tell TSan what the assembly did: everything the previous holder did before its
     * __tsan_release() on this address happens before what we do from here on. */
    TSAN_ACQUIRE(x->sh->annotate, &x->sh->serving);
    return 0;
}

static int unlock(void *h)
{
    struct handle *x = h;
    /* Before the store that lets the next holder in, never after it: once it is done the next
     * holder may already run, and its __tsan_acquire() must find our release. */
    TSAN_RELEASE(x->sh->annotate, &x->sh->serving);
    word_store(&x->sh->serving, x->ticket + 1);
    return 0;
}

/* A handle that still holds an unserved ticket (its last lock() timed out and was not retried)
 * must pass its turn on, or everybody behind it would wait forever. */
static void close_h(void *h)
{
    struct handle *x = h;
    if (x->waiting && wait_turn(x, now_ns() + 2000000000) == 0) {
        TSAN_ACQUIRE(x->sh->annotate, &x->sh->serving);
        TSAN_RELEASE(x->sh->annotate, &x->sh->serving);
        word_store(&x->sh->serving, x->ticket + 1);
    }
    free(x);
}

static void destroy(void *ctx)
{
    munmap(ctx, sizeof(struct shared));
}

static const struct ipcp_lock_ops ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "example-good-asm-spinlock",
    .flags = IPCP_LOCK_FAIR, /* a ticket lock: first come, first served */
    .create = create,
    .open = open_h,
    .lock = lock,
    .unlock = unlock,
    .close = close_h,
    .destroy = destroy,
};

const struct ipcp_lock_ops *ipcp_plugin_lock(void)
{
    return &ops;
}
