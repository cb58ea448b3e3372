/* host.h - the protocol host: the one process that runs a protocol's setup code.
 *
 * The supervisor never runs plugin code. For each case it forks a host, which loads the
 * protocol (dlopen of a plugin and its constructors, or the built-in table), reports what it
 * found, calls create() when told to, forks the endpoints through a short-lived spawner (which
 * exits at once, so that the endpoints become children of the supervisor, a child subreaper,
 * and their wait statuses are the supervisor's own), then waits to be told to call destroy().
 * create() and destroy() run in the same process, as protocols that compare getpid() with
 * their creator expect.
 *
 * The host talks to the supervisor through two pipes: fixed-size records (struct st_hmsg, each
 * one atomic write) towards the supervisor, one-byte commands back. The supervisor treats every
 * record as untrusted: the host's memory is the plugin's memory. It watches the host with a
 * deadline at every step, so a constructor, create() or destroy() that crashes, exits or hangs
 * becomes a verdict, not a dead or hung supervisor. */
#ifndef IPCP_STRESS_HOST_H
#define IPCP_STRESS_HOST_H

#include <stdint.h>
#include <sys/types.h>

#include "capture.h"
#include "stress.h"

#define ST_HM_MAGIC 0x49504853u /* "SHPI" */

enum st_hm_type {
    ST_HM_LOADED = 1,  /* the protocol loaded: what it exports */
    ST_HM_LOAD_FAILED, /* text says why (missing file, wrong ABI, ...) */
    ST_HM_CREATED,     /* rc = create()'s return */
    ST_HM_SPAWNED,     /* npids endpoint processes were forked: pids[] */
    ST_HM_DESTROYED,   /* destroy() returned */
};

/* Host -> supervisor. Smaller than PIPE_BUF: every record is one atomic write. */
struct st_hmsg {
    uint32_t magic, type;
    int32_t rc;
    uint32_t has_chan, has_lock;
    uint32_t chan_flags, lock_flags;
    uint32_t npids;
    int32_t pids[ST_MAX_ENDPOINTS];
    char chan_name[64], lock_name[64];
    char text[400];
};

/* Supervisor -> host commands. */
#define ST_HC_CREATE_CHAN 'C'
#define ST_HC_CREATE_LOCK 'L'
#define ST_HC_DESTROY     'D'
#define ST_HC_QUIT        'Q'

/* The supervisor's end of one host. */
struct st_hostconn {
    pid_t pid;
    int ctl_rd, cmd_wr;
    int exited; /* reaped: status is valid */
    int status;
    struct st_capture out; /* stdout + stderr of the host and of everything it forks */
    char rbuf[sizeof(struct st_hmsg)];
    size_t rlen;
};

/* What the host needs: the protocol to load and, for a case, the case itself (its results
 * area, workers, configuration), inherited through fork. cs may be NULL for a probe. */
struct st_hostargs {
    const char *proto, *plugin;
    int instrumented;   /* a built-in protocol's instrumented copy (sched mode, crash points) */
    struct st_case *cs; /* the plan: filled in before the spawn command, not before the load */
    pid_t supervisor;
    int ctl_wr, cmd_rd;
};

/* Forks the host (own process group, output captured, dies with the supervisor). The
 * supervisor must be a child subreaper. Returns 0 or -errno. */
int st_host_start(struct st_hostconn *h, struct st_hostargs *a);

/* Waits until the host sends a record of type `want` (1, *m filled), the host exits (-1:
 * h->exited, h->status), it sends something else or garbage (-2, text in *m), the deadline
 * passes (0), or *stop becomes non-zero (0). Output is captured meanwhile. */
int st_host_await(struct st_hostconn *h, int want, struct st_hmsg *m, int64_t deadline_ns,
                  volatile int *stop);

/* Sends a one-byte command; 0 or -errno (the host is gone). */
int st_host_cmd(struct st_hostconn *h, char cmd);

/* Non-blocking: reaps the host if it has exited (then returns 1). */
int st_host_poll_exit(struct st_hostconn *h);

/* Kills the host's process group and the host, reaps it, closes the pipes (keeps out). */
void st_host_kill(struct st_hostconn *h);
void st_host_fini(struct st_hostconn *h);

/* Loads the protocol in a host and asks what it exports (*m, type ST_HM_LOADED). Returns 0,
 * 1 when loading it crashed, exited or hung (a verdict about the plugin: text in err), 2 when
 * it could not be loaded (missing file, wrong ABI: text in err). */
int st_host_probe(const char *proto, const char *plugin, double timeout_s, struct st_hmsg *m,
                  char *err, size_t cap);

/* Describes how the host ended ("exited with status 0", "killed by signal 11 (...)"). */
void st_host_describe_exit(int status, char *buf, size_t cap);

#endif
