/* mqlock_tu.h - helpers shared by the mq token lock's unit tests on real queues (mqlock_test.c,
 * mqlock_recovery_test.c): a lock made for the test, its destruction checked to leave nothing
 * in the mq namespace or /dev/shm, and elapsed time. Prefix mqtu_. */
#ifndef IPCP_MQLOCK_TU_H
#define IPCP_MQLOCK_TU_H

#include <stddef.h>
#include <stdint.h>

#include "ipcproof/mqlock.h"

/* 1 when no queue of that name exists. */
int mqtu_mq_gone(const char *name);
/* Entries in /dev/shm named for an mq lock of this process ("ipcp.mqlock.<pid>."). */
int mqtu_shm_left(void);
/* A lock with a generated name (copied to name) and this recovery time; fails the test if it
 * cannot be made. */
struct ipcp_mqlock *mqtu_make_lock(int recovery_ms, char *name, size_t cap);
/* Destroys the lock and asserts that neither its queue nor its shared memory is left. */
void mqtu_destroy_and_check(struct ipcp_mqlock *l, const char *name);
/* Milliseconds since t0 (ipcp__now_ns()). */
int64_t mqtu_ms_since(int64_t t0);

#endif
