/* vtime.c - virtual time for a fuzz target in one thread (vtime.h): syscall() and
 * clock_gettime() defined in the executable, so they come before libc's; outside a thread that
 * turned virtual time on they are libc's. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>

#include "fuzz_util.h"
#include "vtime.h"

#define VT_START  1000000000000LL /* 1000 s: far from 0, the same in every run */
#define VT_REALTM 1700000000000000000LL

static _Thread_local int on;
static _Thread_local int64_t vnow = VT_START;

void fz_vtime_on(int restart)
{
    on = 1;
    if (restart) vnow = VT_START;
}

void fz_vtime_off(void)
{
    on = 0;
}

/* The C library's definition, looked up once; threads may race to it: each finds the same one
 * (an atomic, so that ThreadSanitizer and the C11 memory model agree). */
static void *real_fn(_Atomic(void *) *slot, const char *name)
{
    void *f = atomic_load_explicit(slot, memory_order_acquire);
    if (f == NULL) {
        f = dlsym(RTLD_NEXT, name);
        atomic_store_explicit(slot, f, memory_order_release);
    }
    return f;
}

static long real_syscall(long n, long a, long b, long c, long d, long e, long f)
{
    static _Atomic(void *) slot;
    long (*real)(long, ...);
    *(void **)&real = real_fn(&slot, "syscall");
    return real(n, a, b, c, d, e, f);
}

FZ_NO_COVERAGE static long vfutex(uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
    int cmd = op & FUTEX_CMD_MASK;
    if (cmd == FUTEX_WAKE || cmd == FUTEX_WAKE_BITSET) return 0; /* nobody else waits */
    if (cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET) {
        errno = ENOSYS;
        return -1;
    }
    if (__atomic_load_n(word, __ATOMIC_SEQ_CST) != val) {
        errno = EAGAIN;
        return -1;
    }
    FZ_CHECK(ts != NULL, "a futex wait without a timeout in one thread: it would never end");
    int64_t t = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
    if (cmd == FUTEX_WAIT_BITSET) { /* an absolute time */
        t -= (op & FUTEX_CLOCK_REALTIME) ? VT_REALTM : 0;
        if (t > vnow) vnow = t;
    } else {
        vnow += t;
    }
    errno = ETIMEDOUT;
    return -1;
}

/* Like libc's, it reads six arguments whatever the call takes: the ones a caller did not pass
 * are stack slots of its frame (ASan would call that an underflow), forwarded unused. */
__attribute__((no_sanitize("address"))) long syscall(long n, ...)
{
    va_list ap;
    va_start(ap, n);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
    if (n == SYS_futex && on)
        return vfutex((uint32_t *)a, (int)b, (uint32_t)c, (const struct timespec *)d);
    return real_syscall(n, a, b, c, d, e, f);
}

int clock_gettime(clockid_t clk, struct timespec *ts)
{
    static _Atomic(void *) slot;
    if (!on || clk == CLOCK_PROCESS_CPUTIME_ID || clk == CLOCK_THREAD_CPUTIME_ID) {
        int (*real)(clockid_t, struct timespec *);
        *(void **)&real = real_fn(&slot, "clock_gettime");
        return real(clk, ts);
    }
    int64_t t = vnow + (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE ? VT_REALTM : 0);
    ts->tv_sec = t / 1000000000;
    ts->tv_nsec = t % 1000000000;
    return 0;
}
