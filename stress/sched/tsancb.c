/* tsancb.c - the callbacks clang's -fsanitize=thread instrumentation calls, as scheduling points.
 *
 * A plugin built with clang-14 -fsanitize=thread leaves these symbols undefined; with this
 * library preloaded they resolve here instead of in the TSan runtime. Every atomic operation and
 * fence is a scheduling point: the scheduler may let another thread run before it happens. The
 * operation itself is performed here: sequentially consistent, or under --memory tso (x86-TSO)
 * an atomic store below seq_cst goes into the thread's store buffer, its own later loads see it,
 * and locked read-modify-writes and seq_cst fences drain the buffer first (schedrt.h). Each
 * atomic operation also tells the race detector (hb.h) what it synchronises, by its memory order.
 * Plain reads and writes are notifications (the compiled code does the access itself): they
 * drain the thread's buffered stores they overlap (program order), are checked for data races,
 * and are scheduling points only with plain_points. The whole set clang-14 emits is defined, so
 * that dlopen() of any TSan plugin succeeds; the ones only ThreadSanitizer's reports need (vptr,
 * func entry/exit) do nothing. Outside a scheduled thread every callback is the bare operation. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>

#include "hb.h"
#include "schedrt.h"

#ifdef __clang__ /* the 128-bit callbacks are what the instrumentation calls, lock-free or not */
#pragma clang diagnostic ignored "-Watomic-alignment"
#endif

typedef int tsan_mo; /* relaxed 0, consume, acquire, release, acq_rel, seq_cst 5 (enum hb_mo) */

static int plain_points;

SR_EXPORT void ipcproof_sched_plain_points(int on)
{
    plain_points = on;
}

#define PC __builtin_return_address(0)
#define SC __ATOMIC_SEQ_CST

/* ---- plain accesses ------------------------------------------------------------------------- */

static inline void plain(int op, void *a, unsigned long n, const void *pc)
{
    if (!sr_active()) return;
    sr_drain_overlap(a, n);
    if (plain_points) sr_point(op, a, n, pc);
    sr_access(a, n, op == SR_OP_WRITE, op, pc);
}

/* clang-format off */
#define PLAIN(kind, op, n)                                                                         \
    SR_EXPORT void __tsan_##kind##n(void *a) { plain(op, a, n, PC); }                              \
    SR_EXPORT void __tsan_unaligned_##kind##n(void *a) { plain(op, a, n, PC); }                    \
    SR_EXPORT void __tsan_volatile_##kind##n(void *a) { plain(op, a, n, PC); }
/* clang-format on */

PLAIN(read, SR_OP_READ, 1)
PLAIN(read, SR_OP_READ, 2)
PLAIN(read, SR_OP_READ, 4)
PLAIN(read, SR_OP_READ, 8)
PLAIN(read, SR_OP_READ, 16)
PLAIN(write, SR_OP_WRITE, 1)
PLAIN(write, SR_OP_WRITE, 2)
PLAIN(write, SR_OP_WRITE, 4)
PLAIN(write, SR_OP_WRITE, 8)
PLAIN(write, SR_OP_WRITE, 16)

SR_EXPORT void __tsan_read_range(void *a, unsigned long n)
{
    plain(SR_OP_READ, a, n, PC);
}

SR_EXPORT void __tsan_write_range(void *a, unsigned long n)
{
    plain(SR_OP_WRITE, a, n, PC);
}

/* what only race detection needs */
SR_EXPORT void __tsan_init(void) {}
SR_EXPORT void __tsan_func_entry(void *pc)
{
    (void)pc;
}
SR_EXPORT void __tsan_func_exit(void) {}
SR_EXPORT void __tsan_vptr_read(void **p)
{
    (void)p;
}
SR_EXPORT void __tsan_vptr_update(void **p, void *v)
{
    (void)p;
    (void)v;
}
SR_EXPORT void __tsan_ignore_thread_begin(void) {}
SR_EXPORT void __tsan_ignore_thread_end(void) {}

/* hand-written happens-before annotations (docs/plugins.md) mark synchronisation the compiler
 * cannot see (inline assembly): scheduling points, like the atomics they stand for */
SR_EXPORT void __tsan_acquire(void *a)
{
    sr_point(SR_OP_LOAD, a, 0, PC);
    sr_sync(SR_HB_ACQUIRE, a, HB_ATOMIC);
}
SR_EXPORT void __tsan_release(void *a)
{
    sr_point(SR_OP_STORE, a, 0, PC);
    sr_drain(); /* what the annotated instruction published is published */
    sr_sync(SR_HB_RELEASE, a, HB_ATOMIC);
}

/* ---- atomics -----------------------------------------------------------------------------------
 */

/* clang-format off */
#define RMW(n, T, name, builtin)                                                                   \
    SR_EXPORT T __tsan_atomic##n##_##name(volatile T *a, T v, tsan_mo mo)                          \
    {                                                                                              \
        sr_point(SR_OP_RMW, a, (uint64_t)v, PC);                                                   \
        sr_drain(); /* a locked instruction drains the store buffer */                             \
        sr_sync(SR_HB_RMW, a, mo);                                                                 \
        return builtin(a, v, SC);                                                                  \
    }

#define CAS(n, T, name)                                                                            \
    SR_EXPORT int __tsan_atomic##n##_##name(volatile T *a, T *c, T v, tsan_mo mo, tsan_mo fmo)     \
    {                                                                                              \
        sr_point(SR_OP_CAS, a, (uint64_t)v, PC);                                                   \
        sr_drain();                                                                                \
        int ok = __atomic_compare_exchange_n(a, c, v, 0, SC, SC); /* never fails spuriously */    \
        sr_sync(ok ? SR_HB_RMW : SR_HB_LOAD, a, ok ? mo : fmo);                                    \
        return ok;                                                                                 \
    }

#define ATOMICS(n, T)                                                                              \
    SR_EXPORT T __tsan_atomic##n##_load(const volatile T *a, tsan_mo mo)                           \
    {                                                                                              \
        (void)mo;                                                                                  \
        sr_point(SR_OP_LOAD, a, 0, PC);                                                            \
        uint64_t fwd;                                                                              \
        if (sizeof(T) <= 8 && sr_forward(a, (int)sizeof(T), &fwd)) return (T)fwd; /* its own */  \
        sr_sync(SR_HB_LOAD, a, mo);                                                                \
        return __atomic_load_n(a, SC);                                                             \
    }                                                                                              \
    SR_EXPORT void __tsan_atomic##n##_store(volatile T *a, T v, tsan_mo mo)                        \
    {                                                                                              \
        sr_point(SR_OP_STORE, a, (uint64_t)v, PC);                                                 \
        if (sizeof(T) <= 8) {                                                                      \
            sr_store((volatile void *)a, (int)sizeof(T), (uint64_t)v, mo);                         \
        } else {                                                                                   \
            sr_drain();                                                                            \
            __atomic_store_n(a, v, SC);                                                            \
            sr_sync(SR_HB_STORE, a, mo);                                                           \
        }                                                                                          \
    }                                                                                              \
    SR_EXPORT T __tsan_atomic##n##_exchange(volatile T *a, T v, tsan_mo mo)                        \
    {                                                                                              \
        sr_point(SR_OP_RMW, a, (uint64_t)v, PC);                                                   \
        sr_drain();                                                                                \
        sr_sync(SR_HB_RMW, a, mo);                                                                 \
        return __atomic_exchange_n(a, v, SC);                                                      \
    }                                                                                              \
    RMW(n, T, fetch_add, __atomic_fetch_add)                                                       \
    RMW(n, T, fetch_sub, __atomic_fetch_sub)                                                       \
    RMW(n, T, fetch_and, __atomic_fetch_and)                                                       \
    RMW(n, T, fetch_or, __atomic_fetch_or)                                                         \
    RMW(n, T, fetch_xor, __atomic_fetch_xor)                                                       \
    RMW(n, T, fetch_nand, __atomic_fetch_nand)                                                     \
    CAS(n, T, compare_exchange_strong)                                                             \
    CAS(n, T, compare_exchange_weak)                                                               \
    SR_EXPORT T __tsan_atomic##n##_compare_exchange_val(volatile T *a, T c, T v, tsan_mo mo,       \
                                                        tsan_mo fmo)                               \
    {                                                                                              \
        sr_point(SR_OP_CAS, a, (uint64_t)v, PC);                                                   \
        sr_drain();                                                                                \
        int ok = __atomic_compare_exchange_n(a, &c, v, 0, SC, SC);                                 \
        sr_sync(ok ? SR_HB_RMW : SR_HB_LOAD, a, ok ? mo : fmo);                                    \
        return c;                                                                                  \
    }
/* clang-format on */

ATOMICS(8, int8_t)
ATOMICS(16, int16_t)
ATOMICS(32, int32_t)
ATOMICS(64, int64_t)
#ifdef __SIZEOF_INT128__
ATOMICS(128, __int128)
#endif

SR_EXPORT void __tsan_atomic_thread_fence(tsan_mo mo)
{
    sr_point(SR_OP_FENCE, NULL, 0, PC);
    if (mo == HB_SEQ_CST) sr_drain(); /* under TSO only mfence orders a store before a load */
    sr_sync(SR_HB_FENCE, NULL, mo);
    __atomic_thread_fence(SC);
}

SR_EXPORT void __tsan_atomic_signal_fence(tsan_mo mo)
{
    (void)mo;
    __atomic_signal_fence(SC);
}
