/* interpose_lock.c - file locks (flock, lockf, fcntl F_SETLKW / F_OFD_SETLKW) and pthread
 * spinlocks as scheduler waits.
 *
 * A blocking file lock or a spinlock's busy loop inside libc is invisible to the scheduler: the
 * thread that calls it never comes back to a scheduling point, the holder it waits for is never
 * chosen to run, and the whole schedule stops (a correct lock would look deadlocked). Here a
 * blocking file lock becomes its non-blocking try, retried as a scheduler wait: woken by an
 * unlock made through these calls, and every FILE_POLL_NS of virtual time anyway (close() also
 * releases a file lock, and nobody wakes its waiters then). A spinlock's lock becomes a try
 * followed by a yield. Outside a scheduled thread every call is the real one. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/file.h>
#include <unistd.h>

#include "hb.h"
#include "interpose.h"

#define FILE_POLL_NS 1000000 /* 1 ms of virtual time */

REAL(int, flock, (int, int))
REAL(int, lockf64, (int, int, off64_t))
REAL(int, fcntl, (int, int, ...))
REAL(int, fcntl64, (int, int, ...))
REAL(int, pthread_spin_lock, (pthread_spinlock_t *))
REAL(int, pthread_spin_trylock, (pthread_spinlock_t *))
REAL(int, pthread_spin_unlock, (pthread_spinlock_t *))

static const char file_key = 0; /* every file-lock wait: woken by any unlock made here */

/* A lock taken: what its last holder did before unlocking happens before what follows (one
 * clock for every file lock: it may hide a race between two files' holders, never invent one). */
static int acquired(int r)
{
    if (r == 0) sr_sync(SR_HB_ACQUIRE, &file_key, HB_OBJ);
    return r;
}

/* An unlock about to be made (the release is published first, as the holder's last act). */
static void releasing(void)
{
    sr_sync(SR_HB_RELEASE, &file_key, HB_OBJ);
}

/* try(arg): the non-blocking form of the call, 0 or -1 with errno */
static int file_wait(int (*try)(int, long, long), int fd, long a, long b, const char *what,
                     const void *pc)
{
    sr_drain(); /* a system call */
    sr_point(SR_OP_WAIT, NULL, 0, pc);
    for (;;) {
        if (try(fd, a, b) == 0) return acquired(0);
        if (errno != EWOULDBLOCK && errno != EAGAIN && errno != EACCES) return -1;
        if (sr_interrupt(NULL, pc)) {
            errno = EINTR; /* none of these is restarted after a handler */
            return -1;
        }
        (void)sr_block(&file_key, sr_now() + FILE_POLL_NS, what, pc); /* woken, or poll again */
    }
}

static int unlocked(int r)
{
    if (r == 0) sr_wake(&file_key, -1);
    return r;
}

/* ---- flock ---------------------------------------------------------------------------------- */

static int try_flock(int fd, long op, long unused)
{
    (void)unused;
    return real_flock(fd, (int)op | LOCK_NB);
}

SR_EXPORT int flock(int fd, int op)
{
    resolve_flock();
    if (!sr_active()) return real_flock(fd, op);
    if (op & LOCK_UN) {
        releasing();
        return unlocked(real_flock(fd, op));
    }
    if (op & LOCK_NB) return acquired(real_flock(fd, op));
    return file_wait(try_flock, fd, op, 0, "flock()", PC);
}

/* ---- fcntl record locks ----------------------------------------------------------------------
 */

static int try_setlk(int fd, long cmd, long fl)
{
    return real_fcntl(fd, (int)cmd, (struct flock *)fl);
}

static int record_lock(int fd, int cmd, void *arg, const void *pc)
{
    struct flock *fl = arg;
    if (cmd == F_SETLKW || cmd == F_OFD_SETLKW) {
        int nb = cmd == F_SETLKW ? F_SETLK : F_OFD_SETLK;
        if (fl->l_type == F_UNLCK) {
            releasing();
            return unlocked(real_fcntl(fd, nb, fl));
        }
        return file_wait(try_setlk, fd, nb, (long)fl, "fcntl(F_SETLKW)", pc);
    }
    if (fl->l_type == F_UNLCK) { /* F_SETLK / F_OFD_SETLK */
        releasing();
        return unlocked(real_fcntl(fd, cmd, arg));
    }
    return acquired(real_fcntl(fd, cmd, arg));
}

static int is_lock_cmd(int cmd)
{
    return cmd == F_SETLK || cmd == F_SETLKW || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW;
}

/* Every fcntl command takes one argument or none; as with glibc, it is read as a pointer. */
SR_EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    resolve_fcntl();
    if (sr_active() && is_lock_cmd(cmd)) return record_lock(fd, cmd, arg, PC);
    return real_fcntl(fd, cmd, arg);
}

SR_EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    resolve_fcntl();
    resolve_fcntl64();
    if (sr_active() && is_lock_cmd(cmd)) return record_lock(fd, cmd, arg, PC);
    return real_fcntl64(fd, cmd, arg);
}

/* ---- lockf (glibc implements it with fcntl, internally: not through the functions above) ----
 */

static int try_lockf(int fd, long unused, long len)
{
    (void)unused;
    return real_lockf64(fd, F_TLOCK, (off64_t)len);
}

static int lockf_common(int fd, int cmd, off64_t len, const void *pc)
{
    resolve_lockf64();
    if (!sr_active() || cmd == F_TEST) return real_lockf64(fd, cmd, len);
    if (cmd == F_TLOCK) return acquired(real_lockf64(fd, cmd, len));
    if (cmd == F_ULOCK) {
        releasing();
        return unlocked(real_lockf64(fd, cmd, len));
    }
    return file_wait(try_lockf, fd, 0, (long)len, "lockf()", pc);
}

SR_EXPORT int lockf(int fd, int cmd, off_t len)
{
    return lockf_common(fd, cmd, (off64_t)len, PC);
}

SR_EXPORT int lockf64(int fd, int cmd, off64_t len)
{
    return lockf_common(fd, cmd, len, PC);
}

/* ---- pthread spinlocks ---------------------------------------------------------------------- */

SR_EXPORT int pthread_spin_lock(pthread_spinlock_t *l)
{
    resolve_pthread_spin_lock();
    resolve_pthread_spin_trylock();
    if (!sr_active()) return real_pthread_spin_lock(l);
    for (;;) {
        sr_point(SR_OP_CAS, l, 0, PC);
        if (real_pthread_spin_trylock(l) == 0) {
            sr_sync(SR_HB_ACQUIRE, l, HB_OBJ);
            return 0;
        }
        sr_point(SR_OP_YIELD, l, 0, PC); /* spinning: the holder must run */
    }
}

SR_EXPORT int pthread_spin_trylock(pthread_spinlock_t *l)
{
    resolve_pthread_spin_trylock();
    if (!sr_active()) return real_pthread_spin_trylock(l);
    sr_point(SR_OP_CAS, l, 0, PC);
    int r = real_pthread_spin_trylock(l);
    if (r == 0) sr_sync(SR_HB_ACQUIRE, l, HB_OBJ);
    return r;
}

SR_EXPORT int pthread_spin_unlock(pthread_spinlock_t *l)
{
    resolve_pthread_spin_unlock();
    if (sr_active()) {
        sr_point(SR_OP_STORE, l, 0, PC);
        sr_drain(); /* a release */
        sr_sync(SR_HB_RELEASE, l, HB_OBJ);
    }
    return real_pthread_spin_unlock(l);
}
