/* interpose.h - what the libc interposers of libipcproof-sched.so share (interpose.c: time,
 * futex, pthread mutexes and condition variables, POSIX semaphores, copies, fd I/O;
 * interpose_ipc.c: message queues, SysV semaphores, rwlocks; interpose_lock.c: file locks,
 * spinlocks). */
#ifndef IPCP_SCHED_INTERPOSE_H
#define IPCP_SCHED_INTERPOSE_H

#include <dlfcn.h>
#include <stdint.h>
#include <time.h>

#include "schedrt.h"

#define PC           __builtin_return_address(0)
#define REALTIME_OFF SR_REALTIME_OFF

/* real_NAME: the next definition of NAME (libc's), found on first use by resolve_NAME(). */
#define REAL(ret, name, args)                                                                      \
    static ret(*real_##name) args;                                                                 \
    static void resolve_##name(void)                                                               \
    {                                                                                              \
        if (real_##name == NULL) *(void **)&real_##name = dlsym(RTLD_NEXT, #name);                 \
    }

static inline int64_t ts_ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* An absolute CLOCK_REALTIME deadline (pthread, sem, mq) as virtual monotonic time; one in the
 * past still waits a step, as the real call would return at once after trying. */
static inline int64_t abs_realtime(const struct timespec *t)
{
    return ts_ns(t) - REALTIME_OFF;
}

#endif
