/* execfx.h - --fault short-io and --fault signals for exec endpoints (docs/exec.md).
 *
 * The program gets the interposer (stress/faults/faults.h) through LD_PRELOAD in its
 * environment, with a counters page of its own. Whether the interposer really is in the program
 * is not guessed from the command: while the program runs, its worker looks at every process of
 * its tree in /proc (the interposer mapped? an ELF interpreter at all, or a static binary?
 * setuid? the handler of IPCP_FX_SIGNAL in place?). A process it did not reach makes the case
 * n/a, never a pass: the faults could not be applied to it. */
#ifndef IPCP_STRESS_EXECFX_H
#define IPCP_STRESS_EXECFX_H

#include <stdint.h>
#include <sys/types.h>

#include "stress.h"

enum st_exfx_state {
    ST_EXFX_OFF = 0,   /* no fault of this kind asked */
    ST_EXFX_UNSEEN,    /* the program was never seen running */
    ST_EXFX_OK,        /* every process seen had the interposer (and its handler) */
    ST_EXFX_MISSING,   /* a process without the interposer (who says which and why) */
    ST_EXFX_NOHANDLER, /* a process where the handler was replaced or the signal blocked */
};

#define ST_EXFX_ENV     6  /* environment entries st_exfx_open() adds */
#define ST_EXFX_PENDING 16 /* processes in their grace time at once */

struct st_exfx {
    int on, signals; /* a fault asked; signals among them */
    int fd;          /* the counters page (a memfd), -1 */
    struct ipcp_fx_page *page;
    int state;
    char who[ST_EXFX_WHO];
    int64_t next_ns;                /* the next look at /proc */
    pid_t pending[ST_EXFX_PENDING]; /* processes not (yet) showing the interposer (pid) or
                                       its signal handler (-pid), in their grace time */
    int64_t pending_since[ST_EXFX_PENDING];
};

/* What the program's faults came to (st_exec_close() hands it to the worker). */
struct st_exfx_out {
    int state;
    uint64_t injected, signals;
    char who[ST_EXFX_WHO];
};

/* Before the program starts: when c asks for short-io or signals, creates the counters page and
 * appends the environment that loads the interposer to env at *n (room for ST_EXFX_ENV more
 * entries; env[*n] = NULL after). contract[] are the fds given to the program as its stdin,
 * stdout and stderr: never faulted. seed_salt tells endpoints apart. 0, or -errno. */
int st_exfx_open(struct st_exfx *x, const struct st_config *c, uint64_t seed_salt,
                 const int *contract, int ncontract, char **env, size_t *n);

/* The fd the program must inherit (-1: none). */
int st_exfx_fd(const struct st_exfx *x);

/* Looks at the program's processes (leader: its process group leader) in /proc, at most every
 * 50 ms unless force. */
void st_exfx_check(struct st_exfx *x, pid_t leader, int force);

/* Reads the counters (untrusted numbers), releases the page; out may be NULL. */
void st_exfx_close(struct st_exfx *x, struct st_exfx_out *out);

/* Supervisor, after the run: the notes, and n/a when a program was not reached or nothing was
 * injected or handled. started: the run got past its start barrier. */
void st_exfx_judge(const struct st_case *cs, struct st_report *rep, int started);

#endif
