/* interpose.c - the blocking calls of libc as scheduler waits, and time as virtual time.
 *
 * In a scheduled thread a call that would block (a futex wait, a locked mutex, a condition
 * variable, an empty semaphore, a sleep) must not block the whole world: it becomes a wait of
 * the scheduler, which runs another thread and wakes this one when the matching wake, unlock,
 * signal or post happens, or its (virtual) deadline passes. The real object is still used for
 * the state (a robust mutex keeps its owner and EOWNERDEAD), only through non-blocking calls.
 * Memory copies are scheduling points: a protocol that publishes a record before copying it in
 * is caught between the two. Each of these calls also tells the race detector (hb.h) what it
 * synchronises (an unlock with the next lock, a post with a wait, a write with a read), copies
 * are checked as accesses, and freed or unmapped memory is forgotten. Every other thread goes
 * straight to libc.
 *
 * Message queues, SysV semaphores and rwlocks: interpose_ipc.c. Not interposed (documented in
 * docs/sched.md): epoll/select, threads the protocol creates itself, calls glibc makes
 * internally. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <linux/futex.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "hb.h"
#include "interpose.h"

REAL(int, clock_gettime, (clockid_t, struct timespec *))
REAL(int, gettimeofday, (struct timeval *, void *))
REAL(int, nanosleep, (const struct timespec *, struct timespec *))
REAL(int, clock_nanosleep, (clockid_t, int, const struct timespec *, struct timespec *))
REAL(int, usleep, (useconds_t))
REAL(int, sched_yield, (void))
REAL(int, pause, (void))
REAL(int, pthread_mutex_lock, (pthread_mutex_t *))
REAL(int, pthread_mutex_trylock, (pthread_mutex_t *))
REAL(int, pthread_mutex_timedlock, (pthread_mutex_t *, const struct timespec *))
REAL(int, pthread_mutex_unlock, (pthread_mutex_t *))
REAL(int, pthread_cond_wait, (pthread_cond_t *, pthread_mutex_t *))
REAL(int, pthread_cond_timedwait, (pthread_cond_t *, pthread_mutex_t *, const struct timespec *))
REAL(int, pthread_cond_signal, (pthread_cond_t *))
REAL(int, pthread_cond_broadcast, (pthread_cond_t *))
REAL(int, sem_wait, (sem_t *))
REAL(int, sem_trywait, (sem_t *))
REAL(int, sem_timedwait, (sem_t *, const struct timespec *))
REAL(int, sem_post, (sem_t *))

/* ---- time ----------------------------------------------------------------------------------- */

SR_EXPORT int clock_gettime(clockid_t clk, struct timespec *ts)
{
    if (!sr_active() || clk == CLOCK_PROCESS_CPUTIME_ID || clk == CLOCK_THREAD_CPUTIME_ID) {
        resolve_clock_gettime();
        return real_clock_gettime(clk, ts);
    }
    int64_t t =
        sr_now() + (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE || clk == CLOCK_TAI
                        ? REALTIME_OFF
                        : 0);
    ts->tv_sec = t / 1000000000;
    ts->tv_nsec = t % 1000000000;
    return 0;
}

SR_EXPORT int gettimeofday(struct timeval *tv, void *tz)
{
    if (!sr_active()) {
        resolve_gettimeofday();
        return real_gettimeofday(tv, tz);
    }
    int64_t t = sr_now() + REALTIME_OFF;
    tv->tv_sec = t / 1000000000;
    tv->tv_usec = (t % 1000000000) / 1000;
    return 0;
}

/* A sleep until t. With --fault signals a signal may arrive halfway (the scheduler's choice):
 * returns the ns still to sleep then, 0 when the sleep was whole. */
static int64_t sleep_until(int64_t t, const void *pc)
{
    int64_t now = sr_now();
    if (t - now < 2 || !sr_signals()) {
        sr_sleep_until(t, pc);
        return 0;
    }
    int64_t half = now + (t - now) / 2;
    sr_sleep_until(half, pc);
    if (sr_interrupt(NULL, pc)) return t - half;
    sr_sleep_until(t, pc);
    return 0;
}

static void ns_ts(int64_t ns, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
}

SR_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
    if (!sr_active()) {
        sr_crash_point();
        resolve_nanosleep();
        return real_nanosleep(req, rem);
    }
    if (req->tv_nsec < 0 || req->tv_nsec >= 1000000000 || req->tv_sec < 0) {
        errno = EINVAL;
        return -1;
    }
    int64_t left = sleep_until(sr_now() + ts_ns(req), PC);
    if (rem) ns_ts(left, rem);
    if (left == 0) return 0;
    errno = EINTR; /* rem: the time that was left */
    return -1;
}

SR_EXPORT int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
                              struct timespec *rem)
{
    if (!sr_active()) {
        sr_crash_point();
        resolve_clock_nanosleep();
        return real_clock_nanosleep(clk, flags, req, rem);
    }
    int64_t t = ts_ns(req);
    if (flags & TIMER_ABSTIME)
        t = clk == CLOCK_REALTIME ? t - REALTIME_OFF : t;
    else
        t += sr_now();
    int64_t left = sleep_until(t, PC);
    if (left == 0) return 0;
    if (rem && !(flags & TIMER_ABSTIME)) ns_ts(left, rem);
    return EINTR; /* clock_nanosleep returns the error */
}

SR_EXPORT int usleep(useconds_t us)
{
    if (!sr_active()) {
        sr_crash_point();
        resolve_usleep();
        return real_usleep(us);
    }
    if (sleep_until(sr_now() + (int64_t)us * 1000, PC) == 0) return 0;
    errno = EINTR;
    return -1;
}

SR_EXPORT int sched_yield(void)
{
    if (!sr_active()) {
        sr_crash_point();
        resolve_sched_yield();
        return real_sched_yield();
    }
    sr_drain(); /* a system call */
    sr_point(SR_OP_YIELD, NULL, 0, PC);
    return 0;
}

SR_EXPORT int pause(void)
{
    if (!sr_active()) {
        resolve_pause();
        return real_pause();
    }
    static const char key = 0;
    sr_point(SR_OP_WAIT, NULL, 0, PC);
    /* nothing but a signal wakes it: a deadlock if everybody waits */
    if (!sr_interrupt(&key, PC)) sr_block(&key, 0, "pause()", PC);
    errno = EINTR;
    return -1;
}

/* ---- futex ---------------------------------------------------------------------------------- */

SR_EXPORT long syscall(long n, ...)
{
    va_list ap;
    va_start(ap, n);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
#ifdef SYS_membarrier
    if (n == SYS_membarrier && sr_active()) return sr_membarrier((int)a, (unsigned)b, (int)c, PC);
#endif
    if (n == SYS_futex && sr_active())
        return sr_futex((uint32_t *)a, (int)b, (uint32_t)c, (const struct timespec *)d, PC);
    if (n == SYS_futex) sr_crash_point();
    return sr_real_syscall6(n, a, b, c, d, e, f);
}

/* ---- mutexes, condition variables, semaphores ----------------------------------------------- */

static int mutex_lock(pthread_mutex_t *m, int64_t deadline, const void *pc)
{
    resolve_pthread_mutex_trylock();
    sr_drain(); /* a locked instruction */
    sr_point(SR_OP_WAIT, m, 0, pc);
    for (;;) {
        int r = real_pthread_mutex_trylock(m);
        if (r == 0 || r == EOWNERDEAD) sr_sync(SR_HB_ACQUIRE, m, HB_OBJ);
        if (r != EBUSY) return r; /* 0, EOWNERDEAD, ENOTRECOVERABLE, EDEADLK... */
        if (sr_block(m, deadline, "pthread_mutex_lock", pc) < 0) return ETIMEDOUT;
    }
}

SR_EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
    if (!sr_active()) {
        sr_crash_point();
        resolve_pthread_mutex_lock();
        return real_pthread_mutex_lock(m);
    }
    return mutex_lock(m, 0, PC);
}

SR_EXPORT int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abs)
{
    if (!sr_active()) {
        sr_crash_point();
        resolve_pthread_mutex_timedlock();
        return real_pthread_mutex_timedlock(m, abs);
    }
    int64_t d = abs_realtime(abs);
    return mutex_lock(m, d <= sr_now() ? sr_now() + 1 : d, PC);
}

SR_EXPORT int pthread_mutex_trylock(pthread_mutex_t *m)
{
    resolve_pthread_mutex_trylock();
    sr_point(SR_OP_CAS, m, 0, PC); /* a crash point too when not scheduled */
    int r = real_pthread_mutex_trylock(m);
    if (r == 0 || r == EOWNERDEAD) sr_sync(SR_HB_ACQUIRE, m, HB_OBJ);
    return r;
}

SR_EXPORT int pthread_mutex_unlock(pthread_mutex_t *m)
{
    resolve_pthread_mutex_unlock();
    if (!sr_active()) {
        sr_crash_point();
        return real_pthread_mutex_unlock(m);
    }
    sr_drain();
    sr_point(SR_OP_WAKE, m, 0, PC);
    sr_sync(SR_HB_RELEASE, m, HB_OBJ);
    int r = real_pthread_mutex_unlock(m);
    sr_wake(m, -1);
    return r;
}

static int cond_wait(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline, const void *pc)
{
    resolve_pthread_mutex_unlock();
    sr_drain();
    sr_point(SR_OP_WAKE, m, 0, pc);
    sr_sync(SR_HB_RELEASE, m, HB_OBJ);
    int r = real_pthread_mutex_unlock(m);
    if (r != 0) return r;
    sr_wake(m, -1);
    /* a signal: POSIX lets the wait return 0 (a spurious wake-up), never EINTR */
    int timed_out = !sr_interrupt(c, pc) && sr_block(c, deadline, "pthread_cond_wait", pc) < 0;
    r = mutex_lock(m, 0, pc);
    if (r != 0) return r;
    return timed_out ? ETIMEDOUT : 0;
}

SR_EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    if (!sr_active()) {
        sr_crash_point();
        resolve_pthread_cond_wait();
        return real_pthread_cond_wait(c, m);
    }
    return cond_wait(c, m, 0, PC);
}

SR_EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                     const struct timespec *abs)
{
    if (!sr_active()) {
        sr_crash_point();
        resolve_pthread_cond_timedwait();
        return real_pthread_cond_timedwait(c, m, abs);
    }
    /* A condvar made with pthread_condattr_setclock(CLOCK_MONOTONIC) takes a monotonic
     * deadline: virtual realtime never goes below REALTIME_OFF, so a smaller value is one. */
    int64_t d = ts_ns(abs) < REALTIME_OFF ? ts_ns(abs) : abs_realtime(abs);
    return cond_wait(c, m, d <= sr_now() ? sr_now() + 1 : d, PC);
}

SR_EXPORT int pthread_cond_signal(pthread_cond_t *c)
{
    if (!sr_active()) {
        sr_crash_point();
        resolve_pthread_cond_signal();
        return real_pthread_cond_signal(c);
    }
    sr_drain();
    sr_point(SR_OP_WAKE, c, 1, PC);
    sr_wake(c, 1);
    return 0;
}

SR_EXPORT int pthread_cond_broadcast(pthread_cond_t *c)
{
    if (!sr_active()) {
        sr_crash_point();
        resolve_pthread_cond_broadcast();
        return real_pthread_cond_broadcast(c);
    }
    sr_drain();
    sr_point(SR_OP_WAKE, c, 0, PC);
    sr_wake(c, -1);
    return 0;
}

static int sem_wait_until(sem_t *s, int64_t deadline, const void *pc)
{
    resolve_sem_trywait();
    sr_drain();
    sr_point(SR_OP_WAIT, s, 0, pc);
    for (;;) {
        if (real_sem_trywait(s) == 0) {
            sr_sync(SR_HB_ACQUIRE, s, HB_OBJ);
            return 0;
        }
        if (errno != EAGAIN) return -1;
        if (sr_interrupt(s, pc)) {
            errno = EINTR;
            return -1;
        }
        if (sr_block(s, deadline, "sem_wait", pc) < 0) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

SR_EXPORT int sem_wait(sem_t *s)
{
    if (!sr_active()) {
        sr_crash_point();
        resolve_sem_wait();
        return real_sem_wait(s);
    }
    return sem_wait_until(s, 0, PC);
}

SR_EXPORT int sem_timedwait(sem_t *s, const struct timespec *abs)
{
    if (!sr_active()) {
        sr_crash_point();
        resolve_sem_timedwait();
        return real_sem_timedwait(s, abs);
    }
    int64_t d = abs_realtime(abs);
    return sem_wait_until(s, d <= sr_now() ? sr_now() + 1 : d, PC);
}

REAL(int, sem_clockwait, (sem_t *, clockid_t, const struct timespec *))

SR_EXPORT int sem_clockwait(sem_t *s, clockid_t clk, const struct timespec *abs)
{
    if (!sr_active()) {
        sr_crash_point();
        resolve_sem_clockwait();
        return real_sem_clockwait(s, clk, abs);
    }
    int64_t d = clk == CLOCK_REALTIME ? abs_realtime(abs) : ts_ns(abs);
    return sem_wait_until(s, d <= sr_now() ? sr_now() + 1 : d, PC);
}

SR_EXPORT int sem_trywait(sem_t *s)
{
    resolve_sem_trywait();
    sr_point(SR_OP_CAS, s, 0, PC);
    int r = real_sem_trywait(s);
    if (r == 0) sr_sync(SR_HB_ACQUIRE, s, HB_OBJ);
    return r;
}

SR_EXPORT int sem_post(sem_t *s)
{
    resolve_sem_post();
    if (!sr_active()) {
        sr_crash_point();
        return real_sem_post(s);
    }
    sr_drain();
    sr_point(SR_OP_WAKE, s, 0, PC);
    sr_sync(SR_HB_RELEASE, s, HB_OBJ);
    int r = real_sem_post(s);
    sr_wake(s, 1);
    return r;
}

/* ---- copies --------------------------------------------------------------------------------- */

static void *(*real_memcpy)(void *, const void *, size_t);
static void *(*real_memmove)(void *, const void *, size_t);
static void *(*real_memset)(void *, int, size_t);

__attribute__((constructor)) static void resolve_copies(void)
{
    *(void **)&real_memcpy = dlsym(RTLD_NEXT, "memcpy");
    *(void **)&real_memmove = dlsym(RTLD_NEXT, "memmove");
    *(void **)&real_memset = dlsym(RTLD_NEXT, "memset");
}

/* A copy by the protocol: a scheduling point, then a read of the source and a write of the
 * destination for the race detector. The harness's own copies are neither. */
static void copy_point(void *d, const void *s, size_t n, const void *pc)
{
    sr_point(SR_OP_COPY, d, n, pc);
    if (s != NULL) sr_access(s, n, 0, SR_OP_COPY, pc);
    sr_access(d, n, 1, SR_OP_COPY, pc);
}

/* before the constructor ran (another library's constructor may copy): byte by byte, volatile so
 * that the compiler does not turn the loop back into a call of memcpy */
static void *slow_move(void *d, const void *s, size_t n)
{
    volatile unsigned char *dd = d;
    const volatile unsigned char *ss = s;
    if (dd < ss)
        for (size_t i = 0; i < n; i++)
            dd[i] = ss[i];
    else
        for (size_t i = n; i > 0; i--)
            dd[i - 1] = ss[i - 1];
    return d;
}

SR_EXPORT void *memcpy(void *d, const void *s, size_t n)
{
    if (n && sr_active()) {
        sr_drain_overlap(d, n);
        sr_drain_overlap(s, n);
        if (!sr_from_harness(PC)) copy_point(d, s, n, PC);
    } else if (n && !sr_from_harness(PC)) {
        sr_crash_point();
    }
    return real_memcpy ? real_memcpy(d, s, n) : slow_move(d, s, n);
}

SR_EXPORT void *memmove(void *d, const void *s, size_t n)
{
    if (n && sr_active()) {
        sr_drain_overlap(d, n);
        sr_drain_overlap(s, n);
        if (!sr_from_harness(PC)) copy_point(d, s, n, PC);
    } else if (n && !sr_from_harness(PC)) {
        sr_crash_point();
    }
    return real_memmove ? real_memmove(d, s, n) : slow_move(d, s, n);
}

SR_EXPORT void *memset(void *d, int c, size_t n)
{
    if (n && sr_active()) {
        sr_drain_overlap(d, n);
        if (!sr_from_harness(PC)) copy_point(d, NULL, n, PC);
    } else if (n && !sr_from_harness(PC)) {
        sr_crash_point();
    }
    if (real_memset) return real_memset(d, c, n);
    volatile unsigned char *dd = d;
    for (size_t i = 0; i < n; i++)
        dd[i] = (unsigned char)c;
    return d;
}

/* ---- memory that ends: what was done there is forgotten ------------------------------------- */

/* A new object in freed or unmapped memory has no history: a race detector that remembered the
 * old one's accesses would see a race between two objects. glibc's own entry points (exported
 * for this) free without a lookup that could itself allocate. */
void __libc_free(void *p);
void *__libc_realloc(void *p, size_t n);

SR_EXPORT void free(void *p)
{
    if (p != NULL && sr_active()) sr_forget(p, malloc_usable_size(p));
    __libc_free(p);
}

SR_EXPORT void *realloc(void *p, size_t n)
{
    if (p != NULL && sr_active()) sr_forget(p, malloc_usable_size(p)); /* it may move */
    return __libc_realloc(p, n);
}

REAL(void *, mmap, (void *, size_t, int, int, int, off_t))
REAL(int, munmap, (void *, size_t))
REAL(void *, mremap, (void *, size_t, size_t, int, ...))

SR_EXPORT void *mmap(void *a, size_t len, int prot, int flags, int fd, off_t off)
{
    resolve_mmap();
    void *r = real_mmap(a, len, prot, flags, fd, off);
    if (r != MAP_FAILED && sr_active()) sr_forget(r, len); /* whatever was mapped there before */
    return r;
}

SR_EXPORT int munmap(void *a, size_t len)
{
    resolve_munmap();
    if (sr_active()) sr_forget(a, len);
    return real_munmap(a, len);
}

SR_EXPORT void *mremap(void *a, size_t len, size_t nlen, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    void *want = (flags & MREMAP_FIXED) ? va_arg(ap, void *) : NULL;
    va_end(ap);
    resolve_mremap();
    if (sr_active()) sr_forget(a, len);
    void *r = real_mremap(a, len, nlen, flags, want);
    if (r != MAP_FAILED && sr_active()) sr_forget(r, nlen);
    return r;
}

SR_EXPORT unsigned int sleep(unsigned int s)
{
    if (!sr_active()) {
        struct timespec ts = {(time_t)s, 0};
        resolve_nanosleep();
        return real_nanosleep(&ts, NULL) == 0 ? 0 : s;
    }
    int64_t left = sleep_until(sr_now() + (int64_t)s * 1000000000, PC);
    return (unsigned)((left + 999999999) / 1000000000); /* the seconds left, after a signal */
}

/* ---- pipes and sockets: poll, read, write, readv, writev, send, recv, sendmsg, recvmsg ----- */

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

REAL(int, poll, (struct pollfd *, nfds_t, int))

static const char fd_key = 0; /* every fd wait: woken by any write (a spurious wake re-polls) */

SR_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    resolve_poll();
    if (!sr_active()) {
        sr_crash_point();
        return real_poll(fds, n, timeout);
    }
    sr_drain();
    sr_point(SR_OP_WAIT, fds, (uint64_t)timeout, PC);
    int64_t deadline = timeout > 0 ? sr_now() + (int64_t)timeout * 1000000 : 0;
    for (;;) {
        int r = real_poll(fds, n, 0);
        if (r > 0) sr_sync(SR_HB_ACQUIRE, &fd_key, HB_IO); /* readiness: after what made it */
        if (r != 0 || timeout == 0) return r;
        if (sr_interrupt(fds, PC)) {
            errno = EINTR;
            return -1;
        }
        if (sr_block(&fd_key, deadline, "poll()", PC) < 0) return 0;
    }
}

/* Before an I/O call of a scheduled thread: a point, and when the fd blocks and is not ready, a
 * scheduler wait until another thread's I/O may have changed that. 1: a signal interrupted the
 * wait (the call fails with EINTR, nothing transferred: no SA_RESTART). */
static int fd_before(int fd, short ev, int nonblock, size_t len, int op, const char *what,
                     const void *pc)
{
    sr_drain();
    sr_point(op, NULL, len, pc);
    int fl = nonblock ? O_NONBLOCK : fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK) && (ev == POLLIN || fd > 2)) {
        resolve_poll();
        for (;;) {
            struct pollfd p = {.fd = fd, .events = ev};
            if (real_poll(&p, 1, 0) != 0) break;
            if (sr_interrupt(NULL, pc)) return 1;
            sr_block(&fd_key, 0, what, pc);
        }
    }
    return 0;
}

/* After it: bytes taken make room for a writer, bytes given may wake a reader. What a write
 * gives, a read takes: one clock for every fd (a read is ordered after every earlier write, to
 * whichever fd: more order than the kernel gives, never less). */
static ssize_t fd_after(ssize_t r, short ev)
{
    if (r >= 0) sr_sync(ev == POLLOUT ? SR_HB_RELEASE : SR_HB_ACQUIRE, &fd_key, HB_IO);
    if (ev == POLLOUT || r > 0) sr_wake(&fd_key, -1);
    return r;
}

static size_t iov_len(const struct iovec *iov, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += iov[i].iov_len;
    return len;
}

/* The I/O calls: ret name(params), the fd, the direction, whether the call's own flags make it
 * non-blocking, its length (for the trace), and the real call's arguments. */
#define FD_CALL(ret, name, params, fdarg, ev, nonblock, len, args)                                 \
    REAL(ret, name, params)                                                                        \
    SR_EXPORT ret name params                                                                      \
    {                                                                                              \
        resolve_##name();                                                                          \
        if (!sr_active()) {                                                                        \
            sr_crash_point();                                                                      \
            return real_##name args;                                                               \
        }                                                                                          \
        if (fd_before(fdarg, ev, nonblock, len, ev == POLLIN ? SR_OP_READ : SR_OP_WRITE,           \
                      #name "()", PC)) {                                                           \
            errno = EINTR;                                                                         \
            return -1;                                                                             \
        }                                                                                          \
        return fd_after(real_##name args, ev);                                                     \
    }

FD_CALL(ssize_t, read, (int fd, void *buf, size_t len), fd, POLLIN, 0, len, (fd, buf, len))
FD_CALL(ssize_t, write, (int fd, const void *buf, size_t len), fd, POLLOUT, 0, len, (fd, buf, len))
FD_CALL(ssize_t, readv, (int fd, const struct iovec *iov, int n), fd, POLLIN, 0, iov_len(iov, n),
        (fd, iov, n))
FD_CALL(ssize_t, writev, (int fd, const struct iovec *iov, int n), fd, POLLOUT, 0, iov_len(iov, n),
        (fd, iov, n))
FD_CALL(ssize_t, recv, (int fd, void *buf, size_t len, int fl), fd, POLLIN,
        (fl & MSG_DONTWAIT) != 0, len, (fd, buf, len, fl))
FD_CALL(ssize_t, send, (int fd, const void *buf, size_t len, int fl), fd, POLLOUT,
        (fl & MSG_DONTWAIT) != 0, len, (fd, buf, len, fl))
FD_CALL(ssize_t, recvmsg, (int fd, struct msghdr *m, int fl), fd, POLLIN, (fl & MSG_DONTWAIT) != 0,
        iov_len(m->msg_iov, (int)m->msg_iovlen), (fd, m, fl))
FD_CALL(ssize_t, sendmsg, (int fd, const struct msghdr *m, int fl), fd, POLLOUT,
        (fl & MSG_DONTWAIT) != 0, iov_len(m->msg_iov, (int)m->msg_iovlen), (fd, m, fl))
