/* internal.h - helpers shared by libipcproof's modules: sanitizer detection, named atomics,
 * ThreadSanitizer annotations, deadlines. Not installed. */
#ifndef IPCP_INTERNAL_H
#define IPCP_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

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

#define IPCP_CACHELINE     64
#define IPCP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic deadlines for "every blocking call has a timeout". timeout_ms < 0 = forever. */
struct ipcp_deadline {
    int64_t at_ns; /* CLOCK_MONOTONIC; INT64_MAX = none */
};
void ipcp__deadline_init(struct ipcp_deadline *d, int timeout_ms);
/* Milliseconds left, rounded up, for poll(); 0 if passed; -1 if none. */
int ipcp__deadline_left_ms(const struct ipcp_deadline *d);
int64_t ipcp__now_ns(void);
/* Absolute CLOCK_REALTIME timespec for POSIX timed waits (mq_timedreceive, sem_timedwait). */
struct timespec ipcp__realtime_after_ms(int timeout_ms);

#endif
