/* tsanwrap.c - the happens-before ThreadSanitizer cannot see, told to it, in the TSan build of
 * ipcproof.
 *
 * Thread-mode runs load the user's plugin (built with -fsanitize=thread) into this binary. A
 * correct protocol whose only ordering goes through a call the TSan runtime does not intercept
 * would be reported as a data race: a false `race` verdict. LLVM 14's runtime (and gcc 12's
 * libtsan) miss sem_clockwait, pthread_mutex_clocklock and pthread_rwlock_clock{rd,wr}lock, lose
 * an EOWNERDEAD result of pthread_mutex_timedlock (clang's), and cannot see the kernel's ordering
 * through POSIX message queues, SysV semaphores and SysV message queues. The definitions below,
 * exported from the executable, come first in the dynamic symbol lookup of every plugin; each calls
 * the C library's own function and tells TSan what it synchronised:
 *   - the clock/timed locks: the TSan mutex annotations (pre_lock/post_lock), so that unlock()
 *     through the intercepted pthread_*_unlock pairs with them;
 *   - sem_clockwait: an acquire on the semaphore's address, which the intercepted sem_post
 *     releases;
 *   - mq_*send / mq_*receive, msgsnd / msgrcv and semop / semtimedop: a release before a message is
 * sent or a semaphore raised, an acquire after one is received or lowered, on a sync word chosen by
 *     the queue's inode, the SysV queue's id, or the semaphore set and number (the same for every
 * descriptor and process-local id of one object). This is what ThreadSanitizer does for sem_post /
 * sem_wait, so what it hides is what TSan hides there: ordering between two senders through the
 * queue itself. Outside a TSan build the file is empty. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#if defined(__SANITIZE_THREAD__)
#define IPCP_TSANWRAP 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IPCP_TSANWRAP 1
#endif
#endif

#ifdef IPCP_TSANWRAP
#include <dlfcn.h>
#include <errno.h>
#include <mqueue.h>
#include <pthread.h>
#include <sanitizer/tsan_interface.h>
#include <semaphore.h>
#include <stdint.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <time.h>

#define EXPORT __attribute__((visibility("default")))

/* The C library's definition itself: RTLD_NEXT could find a sanitizer runtime's interceptor
 * (gcc's libtsan.so is a library of its own), which would annotate a second time. */
static void *libc_sym(const char *name)
{
    static _Atomic(void *) handle; /* first calls may race: each finds the same handle */
    void *libc = handle;
    if (libc == NULL) handle = libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    void *f = libc ? dlsym(libc, name) : NULL;
    return f ? f : dlsym(RTLD_NEXT, name);
}

#define REAL(ret, name, args)                                                                      \
    typedef ret(*name##_fn) args;                                                                  \
    static name##_fn real_##name(void)                                                             \
    {                                                                                              \
        static _Atomic(name##_fn) f;                                                               \
        name##_fn r = f;                                                                           \
        if (r == NULL) f = r = (name##_fn)libc_sym(#name);                                         \
        return r;                                                                                  \
    }

/* ---- sync words for kernel objects -------------------------------------------------------- */

#define SYNC_WORDS 65536u
static char sync_words[SYNC_WORDS]; /* only their addresses are used, as TSan sync objects */

static void *sync_word(uint64_t a, uint64_t b)
{
    uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull);
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return &sync_words[h % SYNC_WORDS];
}

static void *mq_word(mqd_t q)
{
    struct stat st;
    if (fstat((int)q, &st) != 0) return NULL;
    return sync_word(st.st_dev, st.st_ino);
}

/* ---- locks -------------------------------------------------------------------------------- */

static int locked(int r)
{
    return r == 0 || r == EOWNERDEAD;
}

REAL(int, pthread_mutex_clocklock, (pthread_mutex_t *, clockid_t, const struct timespec *))
EXPORT int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clk, const struct timespec *abs)
{
    __tsan_mutex_pre_lock(m, __tsan_mutex_try_lock);
    int r = real_pthread_mutex_clocklock()(m, clk, abs);
    __tsan_mutex_post_lock(
        m, __tsan_mutex_try_lock | (locked(r) ? 0 : __tsan_mutex_try_lock_failed), 0);
    return r;
}

REAL(int, pthread_mutex_timedlock, (pthread_mutex_t *, const struct timespec *))
EXPORT int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abs)
{
    __tsan_mutex_pre_lock(m, __tsan_mutex_try_lock);
    int r = real_pthread_mutex_timedlock()(m, abs);
    __tsan_mutex_post_lock(
        m, __tsan_mutex_try_lock | (locked(r) ? 0 : __tsan_mutex_try_lock_failed), 0);
    return r;
}

static int rw_post(pthread_rwlock_t *l, unsigned read, int r)
{
    unsigned fl = read | __tsan_mutex_try_lock;
    __tsan_mutex_post_lock(l, fl | (r == 0 ? 0 : __tsan_mutex_try_lock_failed), 0);
    return r;
}

REAL(int, pthread_rwlock_clockrdlock, (pthread_rwlock_t *, clockid_t, const struct timespec *))
EXPORT int pthread_rwlock_clockrdlock(pthread_rwlock_t *l, clockid_t clk,
                                      const struct timespec *abs)
{
    __tsan_mutex_pre_lock(l, __tsan_mutex_read_lock | __tsan_mutex_try_lock);
    return rw_post(l, __tsan_mutex_read_lock, real_pthread_rwlock_clockrdlock()(l, clk, abs));
}

REAL(int, pthread_rwlock_clockwrlock, (pthread_rwlock_t *, clockid_t, const struct timespec *))
EXPORT int pthread_rwlock_clockwrlock(pthread_rwlock_t *l, clockid_t clk,
                                      const struct timespec *abs)
{
    __tsan_mutex_pre_lock(l, __tsan_mutex_try_lock);
    return rw_post(l, 0, real_pthread_rwlock_clockwrlock()(l, clk, abs));
}

REAL(int, sem_clockwait, (sem_t *, clockid_t, const struct timespec *))
EXPORT int sem_clockwait(sem_t *s, clockid_t clk, const struct timespec *abs)
{
    int r = real_sem_clockwait()(s, clk, abs);
    if (r == 0) __tsan_acquire(s);
    return r;
}

/* ---- POSIX message queues ------------------------------------------------------------------ */

static void mq_release(mqd_t q)
{
    void *w = mq_word(q);
    if (w) __tsan_release(w);
}

static ssize_t mq_acquired(mqd_t q, ssize_t r)
{
    if (r >= 0) {
        void *w = mq_word(q);
        if (w) __tsan_acquire(w);
    }
    return r;
}

REAL(int, mq_send, (mqd_t, const char *, size_t, unsigned))
EXPORT int mq_send(mqd_t q, const char *m, size_t n, unsigned prio)
{
    mq_release(q);
    return real_mq_send()(q, m, n, prio);
}

REAL(int, mq_timedsend, (mqd_t, const char *, size_t, unsigned, const struct timespec *))
EXPORT int mq_timedsend(mqd_t q, const char *m, size_t n, unsigned prio, const struct timespec *abs)
{
    mq_release(q);
    return real_mq_timedsend()(q, m, n, prio, abs);
}

REAL(ssize_t, mq_receive, (mqd_t, char *, size_t, unsigned *))
EXPORT ssize_t mq_receive(mqd_t q, char *m, size_t n, unsigned *prio)
{
    return mq_acquired(q, real_mq_receive()(q, m, n, prio));
}

REAL(ssize_t, mq_timedreceive, (mqd_t, char *, size_t, unsigned *, const struct timespec *))
EXPORT ssize_t mq_timedreceive(mqd_t q, char *m, size_t n, unsigned *prio,
                               const struct timespec *abs)
{
    return mq_acquired(q, real_mq_timedreceive()(q, m, n, prio, abs));
}

/* ---- SysV semaphores ------------------------------------------------------------------------ */

static void sem_ops_release(int id, const struct sembuf *ops, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ops[i].sem_op > 0) __tsan_release(sync_word((uint64_t)id | 1ull << 40, ops[i].sem_num));
}

static int sem_ops_acquire(int id, const struct sembuf *ops, size_t n, int r)
{
    if (r == 0)
        for (size_t i = 0; i < n; i++)
            if (ops[i].sem_op <= 0)
                __tsan_acquire(sync_word((uint64_t)id | 1ull << 40, ops[i].sem_num));
    return r;
}

REAL(int, semop, (int, struct sembuf *, size_t))
EXPORT int semop(int id, struct sembuf *ops, size_t n)
{
    sem_ops_release(id, ops, n);
    return sem_ops_acquire(id, ops, n, real_semop()(id, ops, n));
}

REAL(int, semtimedop, (int, struct sembuf *, size_t, const struct timespec *))
EXPORT int semtimedop(int id, struct sembuf *ops, size_t n, const struct timespec *t)
{
    sem_ops_release(id, ops, n);
    return sem_ops_acquire(id, ops, n, real_semtimedop()(id, ops, n, t));
}

/* ---- SysV message queues -------------------------------------------------------------------- */

REAL(int, msgsnd, (int, const void *, size_t, int))
EXPORT int msgsnd(int id, const void *m, size_t n, int flags)
{
    __tsan_release(sync_word((uint64_t)id | 2ull << 40, 0));
    return real_msgsnd()(id, m, n, flags);
}

REAL(ssize_t, msgrcv, (int, void *, size_t, long, int))
EXPORT ssize_t msgrcv(int id, void *m, size_t n, long type, int flags)
{
    ssize_t r = real_msgrcv()(id, m, n, type, flags);
    if (r >= 0) __tsan_acquire(sync_word((uint64_t)id | 2ull << 40, 0));
    return r;
}

#else
typedef int ipcp_tsanwrap_empty; /* ISO C: a translation unit is not empty */
#endif
