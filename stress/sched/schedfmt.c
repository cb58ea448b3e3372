/* schedfmt.c - a schedule's trace as text (schedapi.h), for the report of `ipcproof stress
 * --mode sched` and for the fuzz targets that run core code under the scheduler. */
#include <stdio.h>
#include <string.h>

#include "schedapi.h"
#include "schedrt.h"

_Static_assert(SR_OP_N == 16, "every op has a name below");

void st_sched_event_line(const struct st_sched_report *sr, const struct st_sched_event *e,
                         char *buf, size_t cap)
{
    const char *who = e->thread < ST_SCHED_MAX_THREADS ? sr->names[e->thread] : "?";
    static const char *const ops[] = {"load",    "store", "rmw",   "cas",   "fence", "read",
                                      "write",   "copy",  "yield", "sleep", "wait",  "wake",
                                      "harness", "flush", "woke",  "signal"};
    const char *op = e->op < sizeof(ops) / sizeof(ops[0]) ? ops[e->op] : "?";
    char obj[48] = "", val[40] = "";
    if (e->object) snprintf(obj, sizeof(obj), " m%u+0x%x", e->object, e->offset);
    if (e->value == UINT64_MAX)
        snprintf(val, sizeof(val), " = (pointer)");
    else if (e->op == SR_OP_STORE || e->op == SR_OP_RMW || e->op == SR_OP_CAS ||
             e->op == SR_OP_COPY || e->op == SR_OP_SLEEP || e->op == SR_OP_WOKE ||
             e->op == SR_OP_FLUSH || (e->op == SR_OP_WAIT && e->value != 0))
        snprintf(val, sizeof(val), " %s %llu",
                 e->op == SR_OP_COPY    ? "bytes"
                 : e->op == SR_OP_SLEEP ? "ns"
                 : e->op == SR_OP_WOKE  ? "timed-out"
                 : e->op == SR_OP_WAIT  ? "while ="
                                        : "=",
                 (unsigned long long)e->value);
    char at[200]; /* the symbolized place, or module+offset for addr2line */
    if (e->where[0] != '\0') {
        snprintf(at, sizeof(at), "%s", e->where);
    } else if (e->at.module >= 1 && e->at.module <= ST_SCHED_MODULES) {
        const char *m = sr->modules[e->at.module - 1], *slash = strrchr(m, '/');
        snprintf(at, sizeof(at), "%s+0x%llx", slash ? slash + 1 : m,
                 (unsigned long long)e->at.offset);
    } else {
        snprintf(at, sizeof(at), "?");
    }
    snprintf(buf, cap, "step %-7llu %-12.24s %-7s%s%s  at %s", (unsigned long long)e->step, who, op,
             obj, val, at);
}
