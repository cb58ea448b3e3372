/* sched_glue.c - the two libc entry points a fuzz target needs to run core code under the
 * scheduler of `--mode sched` (stress/sched/schedrt.c) compiled into it: futex and membarrier
 * calls through syscall() and the clocks; and the trace printing of sched_glue.h. Defined in the
 * executable, they come before libc's; outside a scheduled thread they are libc's. (ipcproof stress
 * preloads libipcproof-sched.so with the whole set; a fuzz target with a sanitizer runtime cannot
 * take the copies and the pthread interposers, and the ring needs only these two.) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sched_glue.h"
#include "schedrt.h"

long syscall(long n, ...)
{
    va_list ap;
    va_start(ap, n);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
#ifdef SYS_membarrier
    if (n == SYS_membarrier && sr_active())
        return sr_membarrier((int)a, (unsigned)b, (int)c, __builtin_return_address(0));
#endif
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

const char *fz_sched_status_text(int st)
{
    return st == ST_SCHED_DEADLOCK   ? "a deadlock (every thread blocked, no timer)"
           : st == ST_SCHED_LIVELOCK ? "a livelock (no end within the step limit)"
           : st == ST_SCHED_LOSTWAKE ? "a lost wake-up (nobody can run, and a futex waiter "
                                       "sleeps on a word that changed)"
           : st == ST_SCHED_FINISHED ? "the end of every thread"
                                     : "?";
}

void fz_sched_print_trace(struct st_sched_report *r, const char *what, unsigned last)
{
    ipcproof_sched_place_trace(r);
    uint64_t n = r->nevents < last ? r->nevents : last;
    fprintf(stderr,
            "%s: %llu scheduling points, %llu switches; the last %llu (an offset in the "
            "executable: addr2line -f -e EXE OFFSET):\n",
            what, (unsigned long long)r->steps, (unsigned long long)r->switches,
            (unsigned long long)n);
    for (uint64_t i = r->nevents - n; i < r->nevents; i++) {
        char line[320];
        st_sched_event_line(r, &r->trace[i % ST_SCHED_TRACE], line, sizeof(line));
        fprintf(stderr, "  %s\n", line);
    }
}
