/* internal.h - helpers shared by libipcproof's modules: sanitizer detection, named atomics,
 * ThreadSanitizer annotations, deadlines. Not installed. */
#ifndef IPCP_INTERNAL_H
#define IPCP_INTERNAL_H

#include <pthread.h>
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
/* The same on CLOCK_MONOTONIC (pthread_mutex_clocklock, condvars made with
 * pthread_condattr_setclock(CLOCK_MONOTONIC)): immune to realtime clock jumps. */
struct timespec ipcp__mono_after_ms(int timeout_ms);

/* os.c: a positive decimal number from a /proc file (a limit such as /proc/sys/kernel/shmmax,
 * which may exceed LONG_MAX); dflt when the file is missing or holds no such number. */
uint64_t ipcp__proc_u64(const char *path, uint64_t dflt);

/* os.c: named OS objects for every protocol (mqlock.c, handoff.c, lock.c, mqchan.c, cvq.c).
 * Names are "/ipcp.<kind>.<creator pid>.<suffix>", suffix = the caller's stem or 16 hex
 * digits from getrandom(): shm.h's rule (ipcp_shm_name, ipcp_shm_name_stem). */
int ipcp__os_objname(char *buf, unsigned long cap, const char *kind, const char *stem);
/* shm_open(O_CREAT|O_EXCL, 0600) + ftruncate + mmap(MAP_SHARED); the name is unlinked again on
 * failure. */
int ipcp__os_shm_create(const char *name, unsigned long size, void **map);
/* mq_open(O_CREAT|O_EXCL|O_RDWR|O_CLOEXEC, 0600) after checking the limits: the mqd (>= 0), or
 * -IPCP_E_MQ_MAXMSG / -IPCP_E_MQ_MSGSIZE / -IPCP_E_MQ_QUEUES / -errno. */
int ipcp__os_mq_create(const char *name, long maxmsg, long msgsize);
/* mq_open(O_RDWR|O_CLOEXEC) of an existing queue whose attributes must be maxmsg/msgsize
 * (-IPCP_E_LAYOUT otherwise). */
int ipcp__os_mq_open(const char *name, long maxmsg, long msgsize);
/* Bumped in the child at every fork() (pthread_atfork): a handle remembers it to refuse use
 * after being inherited, without a getpid() syscall per call. */
uint32_t ipcp__os_forkgen(void);

/* proc.c: process identity and liveness from /proc (a program running the library as threads
 * of one process may define both itself: harnesses/fuzz_lock_sched.c).
 * This process: pid and start time (clock ticks after boot, /proc/self/stat field 22). */
int ipcp__proc_self(uint32_t *pid, uint64_t *start);
/* 1 while the process pid whose start time, masked with start_mask, equals start exists and is
 * not a zombie; 0 once it is gone (or its pid was reused). Unknown cases count as alive. */
int ipcp__proc_alive(uint32_t pid, uint64_t start, uint64_t start_mask);

/* lock.c: pthread_mutex_init of a PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST mutex (the robust
 * lock and the condvar queue); 0 or -errno. */
int ipcp__robust_mutex_init(pthread_mutex_t *m);

/* cvq.c test hooks: a put (get) of this process does only the first N steps of its locked part
 * (0 .. IPCP_CVQ_STEPS - 1) and then SIGKILLs the process, holding the mutex; -1: off. */
extern int ipcp__cvq_die_put;
extern int ipcp__cvq_die_get;
/* cvq.c, for tests: the queue's mutex (pthread_mutex_t *), endpoint i's condvar
 * (pthread_cond_t *), and the view of the region. */
struct ipcp_cvq;
struct ipcp_cvq_view;
void *ipcp__cvq_mutex(struct ipcp_cvq *q);
void *ipcp__cvq_cond(struct ipcp_cvq *q, uint32_t i);
const struct ipcp_cvq_view *ipcp__cvq_view(const struct ipcp_cvq *q);

#endif
