/* deadline.c - monotonic deadlines and the CLOCK_REALTIME conversion that POSIX timed waits
 * (mq_timedreceive, sem_timedwait) require. */
#include <limits.h>
#include <time.h>

#include "deadline.h"

int64_t ipcp__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ipcp__deadline_init(struct ipcp_deadline *d, int timeout_ms)
{
    d->at_ns = timeout_ms < 0 ? INT64_MAX : ipcp__now_ns() + (int64_t)timeout_ms * 1000000;
}

int ipcp__deadline_left_ms(const struct ipcp_deadline *d)
{
    if (d->at_ns == INT64_MAX) return -1;
    int64_t left = d->at_ns - ipcp__now_ns();
    if (left <= 0) return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static struct timespec after_ms(clockid_t clock, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    if (timeout_ms < 0) timeout_ms = 0;
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) { /* normalise: tv_nsec must stay below one second */
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

struct timespec ipcp__realtime_after_ms(int timeout_ms)
{
    return after_ms(CLOCK_REALTIME, timeout_ms);
}

struct timespec ipcp__mono_after_ms(int timeout_ms)
{
    return after_ms(CLOCK_MONOTONIC, timeout_ms);
}
