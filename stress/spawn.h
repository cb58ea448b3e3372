/* spawn.h - the one way the ipcproof command starts, watches, reaps and sweeps processes.
 *
 * Every process ipcproof starts (protocol hosts, endpoints, validate's stress runs, compilers,
 * benchmark peers) goes through st_spawn_fn() or st_spawn_exec() and is waited for with a
 * deadline. A supervisor that runs untrusted code makes itself a child subreaper
 * (st_subreaper_enable), so that whatever that code forks, double-forks or setsid()s ends up as
 * its child once the intermediate parents are gone, and st_sweep() can find and kill it. */
#ifndef IPCP_STRESS_SPAWN_H
#define IPCP_STRESS_SPAWN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct st_child_opts {
    int out_fd;          /* >= 0: becomes the child's stdout and stderr; -1: inherited */
    int in_null;         /* stdin from /dev/null */
    int new_pgrp;        /* the child leads a process group of its own */
    int die_with_parent; /* SIGKILL when the parent dies (PR_SET_PDEATHSIG) */
    int pipe_io;         /* in_fd becomes stdin and stdout_fd (when >= 0) stdout */
    int in_fd, stdout_fd;
    int keep_fd; /* > 2: this fd (O_CLOEXEC in the parent) survives the exec; 0: none */
};

/* fork(); the child applies opts, then _exit(fn(arg)). Returns the pid or -errno. */
pid_t st_spawn_fn(const struct st_child_opts *opts, int (*fn)(void *), void *arg);

/* fork() + execvp(argv[0]); env, when not NULL, is a NULL-terminated list of "NAME=VALUE" to set
 * (or "NAME" to unset) in the child. A child that cannot exec exits 127 with a message on its
 * stderr. Returns the pid or -errno. */
pid_t st_spawn_exec(const struct st_child_opts *opts, char *const argv[], char *const env[]);

/* Waits for pid until deadline_ns (CLOCK_MONOTONIC; 0 = no deadline). Returns 1 when reaped
 * (*status is the wait status), 0 when the deadline passed, -errno on error (-ECHILD: not our
 * child). EINTR is retried, except when *stop (if not NULL) became non-zero: then 0. */
int st_wait_until(pid_t pid, int *status, int64_t deadline_ns, volatile int *stop);

/* Waits up to timeout_s, then SIGKILLs and reaps. Returns the exit code (0..255), 128 + the
 * signal, or -1 when the child had to be killed at the timeout (or could not be waited for). */
int st_wait_timeout(pid_t pid, double timeout_s);

/* SIGKILL + reap; for cleaning up after a failure. */
void st_kill_reap(pid_t pid);

/* Makes this process a child subreaper (PR_SET_CHILD_SUBREAPER). Returns 0 or -errno. */
int st_subreaper_enable(void);

/* The pids of this process's children (alive or zombie), at most cap. */
size_t st_children(pid_t *out, size_t cap);

/* The children of process pid (every thread's), at most cap; from /proc/PID/task/TID/children,
 * so 0 also when the kernel lacks it or pid is gone. */
size_t st_children_of(pid_t pid, pid_t *out, size_t cap);

/* Reaps every child that has exited and is not in keep[], without blocking. Returns how many. */
size_t st_reap_strays(const pid_t *keep, size_t nkeep);

/* Ends every child of this process that is not in keep[]: waits up to grace_ns for them to exit
 * on their own, then SIGKILLs them and reaps them, again and again as their own children are
 * handed to us, until none is left (or 5 s passed). Describes the ones that were still running
 * after the grace period ("pid 123 (name)") in desc. Returns how many had to be killed. */
size_t st_sweep(const pid_t *keep, size_t nkeep, int64_t grace_ns, char *desc, size_t cap);

/* What each thread of process pid is doing that is not a futex wait, from
 * /proc/PID/task/TID/syscall: "thread 123 is blocked in flock(); thread 124 is running". The
 * threads in futex waits are only counted ("2 others in futex waits"). */
void st_threads_doing(pid_t pid, char *buf, size_t cap);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t st_now_ns(void);

#endif
