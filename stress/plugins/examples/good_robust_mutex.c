/* good_robust_mutex.c - a correct robust lock plugin: a process-shared robust pthread mutex.
 *
 *     cc -shared -fPIC -O2 -I<ipcproof>/include good_robust_mutex.c -o good_robust_mutex.so
 *     ipcproof validate --plugin ./good_robust_mutex.so
 *
 * The mutex lives in a MAP_SHARED anonymous page made by create(), so forked workers and
 * threads all use the same one (threads through the same address, which ThreadSanitizer needs).
 * PTHREAD_MUTEX_ROBUST makes the kernel release the mutex of a holder that dies: the next
 * pthread_mutex_timedlock() returns EOWNERDEAD, the state is declared consistent again and lock()
 * returns 1, as IPCP_LOCK_ROBUST promises. `ipcproof validate` checks it by SIGKILLing a holder
 * inside the critical section. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, F_SETPIPE_SZ, MAP_ANONYMOUS */
#endif
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include <ipcproof/plugin.h>

static int create(const struct ipcp_lock_cfg *cfg, void **ctx)
{
    (void)cfg;
    pthread_mutex_t *m =
        mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return -errno;
    pthread_mutexattr_t a;
    int r = pthread_mutexattr_init(&a);
    if (r == 0) r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (r == 0) r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (r == 0) r = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    if (r != 0) {
        munmap(m, sizeof(*m));
        return -r;
    }
    *ctx = m;
    return 0;
}

static int open_h(void *ctx, uint32_t index, void **h)
{
    (void)index;
    *h = ctx;
    return 0;
}

/* ThreadSanitizer of LLVM 14 forgets that pthread_mutex_timedlock() returned the mutex locked
 * with EOWNERDEAD (its lock and trylock interceptors handle that case) and then reports our
 * unlock as "unlock of an unlocked mutex". In a TSan build, wait with trylock in a loop. */
#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_BUILD 1
#endif
#endif

#ifndef TSAN_BUILD
/* pthread_mutex_timedlock() with a relative timeout (it takes an absolute CLOCK_REALTIME). */
static int timed_lock(pthread_mutex_t *m, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_mutex_timedlock(m, &ts);
}
#else
static int timed_lock(pthread_mutex_t *m, int timeout_ms)
{
    struct timespec t0, now, pause = {0, 20000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int r = pthread_mutex_trylock(m);
        if (r != EBUSY) return r;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 >= timeout_ms)
            return ETIMEDOUT;
        nanosleep(&pause, NULL);
    }
}
#endif

static int lock(void *h, int timeout_ms)
{
    pthread_mutex_t *m = h;
    int r = timeout_ms < 0 ? pthread_mutex_lock(m) : timed_lock(m, timeout_ms);
    if (r == 0) return 0;
    if (r == EOWNERDEAD) { /* the holder died: we hold it now; repair and say so */
        r = pthread_mutex_consistent(m);
        return r == 0 ? 1 : -r;
    }
    return -r; /* -ETIMEDOUT, or -ENOTRECOVERABLE */
}

static int unlock(void *h)
{
    return -pthread_mutex_unlock(h);
}

static void close_h(void *h)
{
    (void)h;
}

static void destroy(void *ctx)
{
    pthread_mutex_destroy(ctx);
    munmap(ctx, sizeof(pthread_mutex_t));
}

static const struct ipcp_lock_ops ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "example-good-robust-mutex",
    .flags = IPCP_LOCK_ROBUST,
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
