/* deadline.h - deadlines for "every blocking call has a timeout" (deadline.c). Not installed. */
#ifndef IPCP_DEADLINE_H
#define IPCP_DEADLINE_H

#include <stdint.h>
#include <time.h>

/* Monotonic deadlines for "every blocking call has a timeout". timeout_ms < 0 = forever. */
struct ipcp_deadline {
    int64_t at_ns; /* CLOCK_MONOTONIC; INT64_MAX = none */
};
void ipcp__deadline_init(struct ipcp_deadline *d, int timeout_ms);
/* Milliseconds left, rounded up, for poll(); 0 if passed; -1 if none. */
int ipcp__deadline_left_ms(const struct ipcp_deadline *d);
int64_t ipcp__now_ns(void);
/* Absolute CLOCK_REALTIME timespec for POSIX timed waits (mq_timedreceive, sem_timedwait). */
struct timespec ipcp__realtime_after_ms(int timeout_ms);
/* The same on CLOCK_MONOTONIC (pthread_mutex_clocklock, condvars made with
 * pthread_condattr_setclock(CLOCK_MONOTONIC)): immune to realtime clock jumps. */
struct timespec ipcp__mono_after_ms(int timeout_ms);

#endif
