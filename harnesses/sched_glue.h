/* sched_glue.h - what the fuzz targets running core code under the scheduler share besides the
 * libc entry points of sched_glue.c: naming how a schedule ended and printing its last points. */
#ifndef IPCP_HARNESS_SCHED_GLUE_H
#define IPCP_HARNESS_SCHED_GLUE_H

#include "schedapi.h"

/* "a deadlock (every thread blocked, no timer)" and so on, for enum st_sched_status. */
const char *fz_sched_status_text(int status);

/* Names the code places of rep's trace and prints its last `last` scheduling points, oldest
 * first, to stderr, under a line "<what>: N scheduling points, M switches...". */
void fz_sched_print_trace(struct st_sched_report *rep, const char *what, unsigned last);

#endif
