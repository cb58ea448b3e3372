/* atomics.h - what every part of ipcproof that touches shared memory shares: sanitizer detection
 * (IPCP_TSAN, IPCP_ASAN), ThreadSanitizer annotations for ordering made by the kernel, named
 * atomics (each call site says what it orders), the cache-line size. Header only; not part of the
 * installed API. */
#ifndef IPCP_ATOMICS_H
#define IPCP_ATOMICS_H

#include <stdatomic.h>
#include <stdint.h>

/* gcc defines __SANITIZE_*__; clang-14 only answers __has_feature (nested #if: gcc's
 * preprocessor rejects __has_feature in the same expression as defined()). */
#if defined(__SANITIZE_THREAD__)
#define IPCP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IPCP_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define IPCP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IPCP_ASAN 1
#endif
#endif

/* ThreadSanitizer cannot see the happens-before that the kernel creates (mq_send ->
 * mq_receive, futex wake -> wait across a syscall). Under TSan these make it visible; otherwise
 * they compile to nothing. */
#ifdef IPCP_TSAN
#include <sanitizer/tsan_interface.h>
#define ipcp_tsan_release(addr) __tsan_release((void *)(addr))
#define ipcp_tsan_acquire(addr) __tsan_acquire((void *)(addr))
#else
#define ipcp_tsan_release(addr) ((void)(addr))
#define ipcp_tsan_acquire(addr) ((void)(addr))
#endif

/* Named atomics on shared-memory words. Each call site says what it orders. */
static inline uint64_t ipcp_load_acquire64(const _Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_acquire);
}
static inline void ipcp_store_release64(_Atomic uint64_t *p, uint64_t v)
{
    atomic_store_explicit(p, v, memory_order_release);
}
static inline uint64_t ipcp_load_relaxed64(const _Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}
static inline uint32_t ipcp_load_acquire32(const _Atomic uint32_t *p)
{
    return atomic_load_explicit(p, memory_order_acquire);
}
static inline void ipcp_store_release32(_Atomic uint32_t *p, uint32_t v)
{
    atomic_store_explicit(p, v, memory_order_release);
}
static inline uint32_t ipcp_load_relaxed32(const _Atomic uint32_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

/* Sequentially consistent store/load, for the store-buffering handshake "publish my index, then
 * look whether the other side announced that it sleeps" (and its mirror "announce that I sleep,
 * then look at the index"): with release/acquire alone both sides may miss each other's store. */
static inline void ipcp_store_seqcst32(_Atomic uint32_t *p, uint32_t v)
{
    atomic_store_explicit(p, v, memory_order_seq_cst);
}
static inline uint32_t ipcp_load_seqcst32(const _Atomic uint32_t *p)
{
    return atomic_load_explicit(p, memory_order_seq_cst);
}
static inline void ipcp_store_relaxed32(_Atomic uint32_t *p, uint32_t v)
{
    atomic_store_explicit(p, v, memory_order_relaxed);
}
/* Read-modify-write with acquire+release: state words that several parties update. */
static inline uint32_t ipcp_fetch_or32(_Atomic uint32_t *p, uint32_t v)
{
    return atomic_fetch_or_explicit(p, v, memory_order_acq_rel);
}
static inline int ipcp_cas32(_Atomic uint32_t *p, uint32_t *expected, uint32_t desired)
{
    return atomic_compare_exchange_strong_explicit(p, expected, desired, memory_order_acq_rel,
                                                   memory_order_acquire);
}
/* Compiler barrier: after copying untrusted shared bytes into a local, the compiler may not
 * re-read the shared copy instead of the local one (no double fetch). Emits no instruction. */
static inline void ipcp_compiler_barrier(void)
{
    atomic_signal_fence(memory_order_seq_cst);
}

/* Read-modify-write helpers (mqlock, lock, handoff). */
/* Compare-and-swap that, on success, publishes the caller's earlier writes (release) and makes
 * the previous owner's writes visible (acquire); on failure it reloads *expected (acquire). */
static inline int ipcp_cas_acq_rel64(_Atomic uint64_t *p, uint64_t *expected, uint64_t desired)
{
    return atomic_compare_exchange_strong_explicit(p, expected, desired, memory_order_acq_rel,
                                                   memory_order_acquire);
}
static inline uint64_t ipcp_exchange_acq_rel64(_Atomic uint64_t *p, uint64_t v)
{
    return atomic_exchange_explicit(p, v, memory_order_acq_rel);
}
/* Statistics counters: no ordering. */
static inline uint64_t ipcp_fetch_add_relaxed64(_Atomic uint64_t *p, uint64_t v)
{
    return atomic_fetch_add_explicit(p, v, memory_order_relaxed);
}
/* Sequentially consistent, for Dekker-style "announce then check" pairs (futex waiters). */
static inline uint32_t ipcp_fetch_add_seqcst32(_Atomic uint32_t *p, uint32_t v)
{
    return atomic_fetch_add_explicit(p, v, memory_order_seq_cst);
}
static inline uint32_t ipcp_fetch_sub_seqcst32(_Atomic uint32_t *p, uint32_t v)
{
    return atomic_fetch_sub_explicit(p, v, memory_order_seq_cst);
}

#define IPCP_CACHELINE     64
#define IPCP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
