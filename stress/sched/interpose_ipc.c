/* interpose_ipc.c - message queues, SysV semaphores and rwlocks as scheduler waits (interpose.h).
 *
 * As for the calls of interpose.c, a scheduled thread never blocks in the kernel: each call is
 * made without blocking (a deadline already past, IPC_NOWAIT, trylock) and, when it would have
 * blocked, the thread waits in the scheduler until another thread's call on the same kind of
 * object may have changed things (a spurious wake tries again), or its virtual deadline passes.
 * The real objects keep all the state; a queue opened O_NONBLOCK or an operation given
 * IPC_NOWAIT behaves as it always does. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <mqueue.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/sem.h>

#include "hb.h"
#include "interpose.h"

/* ---- POSIX message queues ---------------------------------------------------------------------
 */

REAL(int, mq_timedsend, (mqd_t, const char *, size_t, unsigned, const struct timespec *))
REAL(ssize_t, mq_timedreceive, (mqd_t, char *, size_t, unsigned *, const struct timespec *))

static const char mq_key = 0; /* every queue wait: woken by any send or receive */

/* One send (msg != NULL as const) or receive, until `abs` (CLOCK_REALTIME; NULL: none). */
static ssize_t mq_io(int send, mqd_t q, char *msg, size_t len, unsigned prio, unsigned *prio_out,
                     const struct timespec *abs, const void *pc)
{
    static const struct timespec past = {0, 0};
    if (abs != NULL && (abs->tv_nsec < 0 || abs->tv_nsec >= 1000000000)) {
        errno = EINVAL;
        return -1;
    }
    int64_t deadline = abs != NULL ? abs_realtime(abs) : 0;
    if (abs != NULL && deadline <= sr_now()) deadline = sr_now() + 1;
    sr_drain();
    sr_point(send ? SR_OP_WRITE : SR_OP_READ, NULL, len, pc);
    for (;;) {
        ssize_t r = send ? real_mq_timedsend(q, msg, len, prio, &past)
                         : real_mq_timedreceive(q, msg, len, prio_out, &past);
        if (r >= 0) {
            /* a receive is ordered after every send before it (to any queue: more order than
             * the kernel gives, never less) */
            sr_sync(send ? SR_HB_RELEASE : SR_HB_ACQUIRE, &mq_key, HB_IO);
            sr_wake(&mq_key, -1); /* room for a sender, or a message for a receiver */
            return r;
        }
        if (errno != ETIMEDOUT) return -1; /* EAGAIN of an O_NONBLOCK queue, EMSGSIZE, ... */
        if (sr_interrupt(NULL, pc)) {
            errno = EINTR;
            return -1;
        }
        if (sr_block(&mq_key, deadline, send ? "mq_send()" : "mq_receive()", pc) < 0) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

SR_EXPORT int mq_timedsend(mqd_t q, const char *msg, size_t len, unsigned prio,
                           const struct timespec *abs)
{
    resolve_mq_timedsend();
    resolve_mq_timedreceive();
    if (!sr_active()) {
        sr_crash_point();
        return real_mq_timedsend(q, msg, len, prio, abs);
    }
    return (int)mq_io(1, q, (char *)msg, len, prio, NULL, abs, PC);
}

SR_EXPORT int mq_send(mqd_t q, const char *msg, size_t len, unsigned prio)
{
    resolve_mq_timedsend();
    resolve_mq_timedreceive();
    if (!sr_active()) {
        sr_crash_point();
        return real_mq_timedsend(q, msg, len, prio, NULL);
    }
    return (int)mq_io(1, q, (char *)msg, len, prio, NULL, NULL, PC);
}

SR_EXPORT ssize_t mq_timedreceive(mqd_t q, char *msg, size_t len, unsigned *prio,
                                  const struct timespec *abs)
{
    resolve_mq_timedsend();
    resolve_mq_timedreceive();
    if (!sr_active()) {
        sr_crash_point();
        return real_mq_timedreceive(q, msg, len, prio, abs);
    }
    return mq_io(0, q, msg, len, 0, prio, abs, PC);
}

SR_EXPORT ssize_t mq_receive(mqd_t q, char *msg, size_t len, unsigned *prio)
{
    resolve_mq_timedsend();
    resolve_mq_timedreceive();
    if (!sr_active()) {
        sr_crash_point();
        return real_mq_timedreceive(q, msg, len, prio, NULL);
    }
    return mq_io(0, q, msg, len, 0, prio, NULL, PC);
}

/* ---- SysV semaphores --------------------------------------------------------------------------
 */

REAL(int, semop, (int, struct sembuf *, size_t))
REAL(int, semtimedop, (int, struct sembuf *, size_t, const struct timespec *))

static const char sysv_key = 0; /* every semaphore wait: woken by any operation that succeeds */

#define SEM_OPS_MAX 64

static int sem_ops(int id, struct sembuf *sops, size_t n, const struct timespec *rel,
                   const void *pc)
{
    if (n > SEM_OPS_MAX) { /* not seen in practice: the real call, which may block */
        resolve_semtimedop();
        return real_semtimedop(id, sops, n, rel);
    }
    struct sembuf mine[SEM_OPS_MAX];
    int nowait = 1;
    for (size_t i = 0; i < n; i++) {
        mine[i] = sops[i];
        nowait &= (mine[i].sem_flg & IPC_NOWAIT) != 0;
        mine[i].sem_flg |= IPC_NOWAIT;
    }
    int64_t deadline = rel != NULL ? sr_now() + (ts_ns(rel) > 0 ? ts_ns(rel) : 1) : 0;
    sr_drain();
    sr_point(SR_OP_WAIT, NULL, n, pc);
    for (;;) {
        if (real_semop(id, mine, n) == 0) {
            /* a wait after every post before it, whatever the operations: one clock */
            sr_sync(SR_HB_ACQUIRE, &sysv_key, HB_IO);
            sr_sync(SR_HB_RELEASE, &sysv_key, HB_IO);
            sr_wake(&sysv_key, -1);
            return 0;
        }
        if (errno != EAGAIN || nowait) return -1;
        if (sr_interrupt(NULL, pc)) {
            errno = EINTR; /* semop is never restarted */
            return -1;
        }
        if (sr_block(&sysv_key, deadline, "semop()", pc) < 0) {
            errno = EAGAIN; /* semtimedop's word for a timeout */
            return -1;
        }
    }
}

SR_EXPORT int semop(int id, struct sembuf *sops, size_t n)
{
    resolve_semop();
    if (!sr_active()) {
        sr_crash_point();
        return real_semop(id, sops, n);
    }
    return sem_ops(id, sops, n, NULL, PC);
}

SR_EXPORT int semtimedop(int id, struct sembuf *sops, size_t n, const struct timespec *rel)
{
    resolve_semop();
    resolve_semtimedop();
    if (!sr_active()) {
        sr_crash_point();
        return real_semtimedop(id, sops, n, rel);
    }
    return sem_ops(id, sops, n, rel, PC);
}

/* ---- rwlocks ----------------------------------------------------------------------------------
 */

REAL(int, pthread_rwlock_tryrdlock, (pthread_rwlock_t *))
REAL(int, pthread_rwlock_trywrlock, (pthread_rwlock_t *))
REAL(int, pthread_rwlock_rdlock, (pthread_rwlock_t *))
REAL(int, pthread_rwlock_wrlock, (pthread_rwlock_t *))
REAL(int, pthread_rwlock_timedrdlock, (pthread_rwlock_t *, const struct timespec *))
REAL(int, pthread_rwlock_timedwrlock, (pthread_rwlock_t *, const struct timespec *))
REAL(int, pthread_rwlock_unlock, (pthread_rwlock_t *))

static int rw_lock(pthread_rwlock_t *l, int wr, int64_t deadline, const void *pc)
{
    resolve_pthread_rwlock_tryrdlock();
    resolve_pthread_rwlock_trywrlock();
    sr_drain();
    sr_point(SR_OP_WAIT, l, 0, pc);
    for (;;) {
        int r = wr ? real_pthread_rwlock_trywrlock(l) : real_pthread_rwlock_tryrdlock(l);
        if (r == 0) sr_sync(SR_HB_ACQUIRE, l, HB_OBJ);
        if (r != EBUSY) return r;
        if (sr_block(l, deadline, wr ? "pthread_rwlock_wrlock" : "pthread_rwlock_rdlock", pc) < 0)
            return ETIMEDOUT;
    }
}

/* the blocking rwlock calls: the real one outside a scheduled thread, rw_lock inside */
#define RWLOCK_CALL(name, wr, params, args, deadline)                                              \
    SR_EXPORT int name params                                                                      \
    {                                                                                              \
        if (!sr_active()) {                                                                        \
            sr_crash_point();                                                                      \
            resolve_##name();                                                                      \
            return real_##name args;                                                               \
        }                                                                                          \
        return rw_lock(l, wr, deadline, PC);                                                       \
    }

static int64_t rw_deadline(const struct timespec *abs)
{
    int64_t d = abs_realtime(abs);
    return d <= sr_now() ? sr_now() + 1 : d;
}

RWLOCK_CALL(pthread_rwlock_rdlock, 0, (pthread_rwlock_t * l), (l), 0)
RWLOCK_CALL(pthread_rwlock_wrlock, 1, (pthread_rwlock_t * l), (l), 0)
RWLOCK_CALL(pthread_rwlock_timedrdlock, 0, (pthread_rwlock_t * l, const struct timespec *abs),
            (l, abs), rw_deadline(abs))
RWLOCK_CALL(pthread_rwlock_timedwrlock, 1, (pthread_rwlock_t * l, const struct timespec *abs),
            (l, abs), rw_deadline(abs))

/* the non-blocking ones: a point, and a lock taken is ordered after the unlocks before it */
#define RWLOCK_TRY(name)                                                                           \
    SR_EXPORT int name(pthread_rwlock_t *l)                                                        \
    {                                                                                              \
        resolve_##name();                                                                          \
        sr_point(SR_OP_CAS, l, 0, PC);                                                             \
        int r = real_##name(l);                                                                    \
        if (r == 0) sr_sync(SR_HB_ACQUIRE, l, HB_OBJ);                                             \
        return r;                                                                                  \
    }

RWLOCK_TRY(pthread_rwlock_tryrdlock)
RWLOCK_TRY(pthread_rwlock_trywrlock)

SR_EXPORT int pthread_rwlock_unlock(pthread_rwlock_t *l)
{
    resolve_pthread_rwlock_unlock();
    if (!sr_active()) {
        sr_crash_point();
        return real_pthread_rwlock_unlock(l);
    }
    sr_drain();
    sr_point(SR_OP_WAKE, l, 0, PC);
    sr_sync(SR_HB_RELEASE, l, HB_OBJ);
    int r = real_pthread_rwlock_unlock(l);
    sr_wake(l, -1);
    return r;
}
