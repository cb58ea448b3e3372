/* engine.h - what the supervisor's two files share: engine.c (the case from load to leak
 * check: results area, fault choices, the protocol host, one run) and runloop.c (reaping, the
 * watchdog and the run loop). Not used outside them. */
#ifndef IPCP_STRESS_ENGINE_H
#define IPCP_STRESS_ENGINE_H

#include <stdint.h>

#include "host.h"
#include "stress.h"

/* ---- the supervisor's view of one case ------------------------------------------------------ */

struct st_sup {
    struct st_case cs;    /* the supervisor's private copy of the case */
    struct st_case *plan; /* the copy the host reads (shared mapping) */
    struct st_report *rep;
    struct st_outcome o;
    struct st_hostconn host;
    int host_started;
    int64_t setup_ns;
    int64_t last_stray_reap;
};

/* A setup error (exit status 2): r->status and r->error. */
void st_setup_error(struct st_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- runloop.c ------------------------------------------------------------------------------ */

/* Tells the workers that endpoint pi's process died (in thread modes, every endpoint's). */
void st_sup_mark_dead(struct st_sup *S, uint32_t pi);
/* Whether endpoint pi's process ended as the harness ends it (wait status st). */
int st_sup_ended_ok(const struct st_sup *S, uint32_t pi, int st);
/* SIGKILLs every endpoint not yet reaped, and an exec endpoint's program group. */
void st_sup_kill_all(struct st_sup *S);
/* The run: start barrier, stop, faults, watchdog, progress; returns with every endpoint reaped. */
void st_sup_run_loop(struct st_sup *S);

#endif
