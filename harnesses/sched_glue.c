/* sched_glue.c - the two libc entry points a fuzz target needs to run core code under the
 * scheduler of `--mode sched` (stress/sched/schedrt.c) compiled into it: futex calls through
 * syscall() and the clocks. Defined in the executable, they come before libc's; outside a
 * scheduled thread they are libc's. (ipcproof stress preloads libipcproof-sched.so with the
 * whole set; a fuzz target with a sanitizer runtime cannot take the copies and the pthread
 * interposers, and the ring needs only these two.) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "schedrt.h"

long syscall(long n, ...)
{
    va_list ap;
    va_start(ap, n);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
    if (n == SYS_futex && sr_active())
        return sr_futex((uint32_t *)a, (int)b, (uint32_t)c, (const struct timespec *)d,
                        __builtin_return_address(0));
    return sr_real_syscall6(n, a, b, c, d, e, f);
}

int clock_gettime(clockid_t clk, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    if (!sr_active() || clk == CLOCK_PROCESS_CPUTIME_ID || clk == CLOCK_THREAD_CPUTIME_ID) {
        if (real == NULL) *(void **)&real = dlsym(RTLD_NEXT, "clock_gettime");
        return real(clk, ts);
    }
    int64_t t =
        sr_now() + (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE ? SR_REALTIME_OFF : 0);
    ts->tv_sec = t / 1000000000;
    ts->tv_nsec = t % 1000000000;
    return 0;
}
