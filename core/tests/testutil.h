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

/* Open fds of this process (a test compares the count before and after). */
int tu_count_fds(void);
/* n scaled by IPCP_TEST_SCALE=<percent> (default 100), at least 1. */
int tu_scaled(int n);

/* Entries in /dev/shm whose name starts with prefix. */
int tu_shm_count(const char *prefix);

/* A unique name stem for this test process: "ipcp-test-<pid>-<n>". */
const char *tu_name(char *buf, size_t cap);

#endif
