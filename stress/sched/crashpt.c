/* crashpt.c - inside libipcproof-sched.so: the crash points of process mode (schedrt.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdint.h>

#include "schedrt.h"

/* ---- crash points (process mode) --------------------------------------------------------- */

/* Armed in the victim's thread: the number of scheduling points left before it dies. */
static SR_TLS volatile uint64_t crash_left, crash_seen;

void sr_crash_point(void)
{
    if (crash_left == 0) return;
    crash_seen++;
    if (--crash_left == 0) raise(SIGKILL); /* before the operation of this point */
}

/* Counts the scheduling points of this thread from now on, and SIGKILLs the process at the
 * n-th (1-based), before its operation happens. */
SR_EXPORT void ipcproof_sched_crash_arm(uint64_t n)
{
    sr_find_harness(); /* the harness's copies do not count */
    crash_seen = 0;
    crash_left = n;
}

/* Stops counting; returns how many points were seen (fewer than n: it never died). */
SR_EXPORT uint64_t ipcproof_sched_crash_disarm(void)
{
    crash_left = 0;
    return crash_seen;
}
