/* unsched.h - the built-in protocols that do not run under the scheduler yet, and why: they block
 * in calls the runtime does not interpose, which would stop every scheduled thread until they
 * return. One table for libipcproof-protos-sched.so (builtins.c), which refuses them, and for
 * `validate`, which shows their sched cases as not applicable with the reason. */
#ifndef IPCP_SCHED_UNSCHED_H
#define IPCP_SCHED_UNSCHED_H

#include <stddef.h>
#include <string.h>

static const struct {
    const char *name, *why;
} st_unscheduled[] = {
    {"mq-handoff", "POSIX message queues"},
    {"mq-token", "POSIX message queues"},
    {"sysv-sem", "SysV semaphores"},
    {"ofd-lock", "fcntl file locks"},
};

/* Why `name` cannot run under the scheduler, or NULL when it can. */
static inline const char *st_unscheduled_why(const char *name)
{
    for (size_t i = 0; i < sizeof(st_unscheduled) / sizeof(st_unscheduled[0]); i++)
        if (strcmp(name, st_unscheduled[i].name) == 0) return st_unscheduled[i].why;
    return NULL;
}

#endif
