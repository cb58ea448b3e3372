/* testutil.h - small helpers shared by the core unit tests (cmocka): deterministic payloads,
 * child processes with a bounded wait, and leak checks of /dev/shm. */
#ifndef IPCP_TESTUTIL_H
#define IPCP_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "ipcproof/fdchan.h"
#include "splitmix.h"
#include "stats.h"

/* Fill / check len bytes derived from seed (splitmix64 stream). check returns 1 when equal. */
void tu_fill(void *buf, size_t len, uint64_t seed);
int tu_check(const void *buf, size_t len, uint64_t seed);

/* fork() and run fn(arg) in the child; the child exits with fn's return value (0..255). */
pid_t tu_spawn(int (*fn)(void *), void *arg);
/* Wait for pid up to timeout_ms; kills it (SIGKILL) on timeout and returns -1. Otherwise the raw
 * wait status. */
int tu_wait(pid_t pid, int timeout_ms);
/* Asserts the child exited normally with status 0. */
void tu_wait_ok(pid_t pid, int timeout_ms);
/* tu_spawn(fn, arg) with a pipe whose write end is put in *ready_fd first (a field of arg): the
 * child writes one byte there once it is ready; returns when it did (*said, may be NULL, = the
 * byte) and fails the test when the child ended without. */
pid_t tu_spawn_ready(int (*fn)(void *), void *arg, int *ready_fd, char *said);

/* Open fds of this process (a test compares the count before and after). */
int tu_count_fds(void);
/* n scaled by IPCP_TEST_SCALE=<percent> (default 100), at least 1. */
int tu_scaled(int n);

/* Entries in /dev/shm whose name starts with prefix. */
int tu_shm_count(const char *prefix);

/* A unique name stem for this test process: "ipcp-test-<pid>-<n>". */
const char *tu_name(char *buf, size_t cap);

/* A connected pair of fds for each transport fdchan carries: pipe (1 MiB), FIFO in /tmp, AF_UNIX
 * stream, AF_UNIX seqpacket (1 MiB send buffer), TCP on loopback. */
enum tu_xkind { TU_PIPE, TU_FIFO, TU_UNIX, TU_SEQPACKET, TU_TCP, TU_XKINDS };
struct tu_xpair {
    int rfd, wfd;               /* reader's fd, writer's fd (-1 once closed) */
    enum ipcp_fdchan_kind kind; /* to open channels with */
    char path[64];
};
void tu_xpair_make(enum tu_xkind k, struct tu_xpair *x);
/* Closes what is still open and removes the FIFO. */
void tu_xpair_drop(struct tu_xpair *x);

/* Hook tables for fdchan tests. tu_io_real: every hook calls the real syscall
 * (ipcp_io_default()) and ignores ctx, for a test to replace one or two of them with its own. */
struct ipcp_io_ops tu_io_real(void *ctx);
/* The socket hooks of an in-memory fake that is no socket: -ENOSYS. */
ssize_t tu_io_no_recvmsg(void *ctx, int fd, struct msghdr *m, int flags);
ssize_t tu_io_no_sendmsg(void *ctx, int fd, const struct msghdr *m, int flags);
/* Copies the first n bytes of iov[0..cnt) (or all it holds, if fewer) to dst; returns how many. */
size_t tu_iov_gather(void *dst, const struct iovec *iov, int cnt, size_t n);

#endif
