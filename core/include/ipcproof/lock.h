/* lock.h - one inter-process lock interface, five implementations to compare.
 *
 *   mq-token      the mq token lock of mqlock.h (a token message in a POSIX queue)
 *   posix-sem     a POSIX named semaphore (sem_open), value 1
 *   robust-mutex  a PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST mutex in shared memory
 *   sysv-sem      a System V semaphore taken with SEM_UNDO
 *   ofd-lock      an fcntl open-file-description record lock (F_OFD_SETLK) on a shm file
 *
 * The calls map 1:1 onto the lock side of the stress plugin ABI (plugin.h): create in the
 * supervisor before forking, open in each worker (a forked child or a thread), lock/unlock,
 * close, and destroy in the supervisor afterwards, also after failures. Every kind works with
 * workers that are processes and with workers that are threads of one process (each thread
 * opens its own handle; all of them use the one mapping made by create, which is what
 * ThreadSanitizer needs to check them).
 *
 * lock() returns 0 acquired, 1 acquired and the previous holder died holding it (the protected
 * data may be half updated), -ETIMEDOUT, or another negative code; unlock() returns 0 or a
 * negative code. What happens when a holder dies differs per kind; ipcp_lock_info() says it and
 * docs/locks.md explains it:
 *
 *   kind          survives death  lock() after a holder died holding it
 *   mq-token      yes             1 within the recovery time (mqlock.h)
 *   posix-sem     no              -IPCP_E_PEERDEAD once the deadline passes (the recorded holder
 *                                 is dead; the semaphore stays taken until re-created)
 *   robust-mutex  yes             1 (EOWNERDEAD, then pthread_mutex_consistent)
 *   sysv-sem      yes             1: SEM_UNDO releases it at the holder's exit, and the owner
 *                                 word the holder left set tells the death (SEM_UNDO alone
 *                                 cannot: it would return 0)
 *   ofd-lock      yes             1: the kernel drops the lock when the dead holder's file
 *                                 description closes, and the owner word tells the death
 *
 * Except for mq-token (whose record is its own), the kinds share a small shared-memory record
 * holding an owner word ((start time << 32) | pid of the holder, 0 when free), written after
 * acquiring and cleared before releasing: a non-zero word found by the next acquirer means the
 * previous holder died between the two. */
#ifndef IPCPROOF_LOCK_H
#define IPCPROOF_LOCK_H

#include <stdint.h>

#include "ipcproof/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* the API of a -fvisibility=hidden build */

enum ipcp_lock_kind {
    IPCP_LOCK_MQ_TOKEN = 1,
    IPCP_LOCK_POSIX_SEM = 2,
    IPCP_LOCK_ROBUST_MUTEX = 3,
    IPCP_LOCK_SYSV_SEM = 4,
    IPCP_LOCK_OFD = 5,
};
#define IPCP_LOCK_KIND_FIRST IPCP_LOCK_MQ_TOKEN
#define IPCP_LOCK_KIND_LAST  IPCP_LOCK_OFD

struct ipcp_lock_info {
    enum ipcp_lock_kind kind;
    const char *name;        /* "mq-token", "posix-sem", "robust-mutex", "sysv-sem", "ofd-lock" */
    int survives_death;      /* a holder's death does not leave the lock taken for good */
    int reports_death;       /* the next lock() returns 1 after a holder died holding it */
    const char *after_death; /* one sentence: what lock() returns after such a death */
};

/* NULL for an unknown kind. */
const struct ipcp_lock_info *ipcp_lock_info(enum ipcp_lock_kind kind);
/* The kind for a name above, or -EINVAL. */
int ipcp_lock_kind_from_name(const char *name);
/* 1 or 0 as in the table above, -EINVAL for an unknown kind. */
int ipcp_lock_survives_death(enum ipcp_lock_kind kind);

struct ipcp_lock_ctx; /* the lock: OS objects, the shared mapping (process-local copy) */
struct ipcp_lock;     /* one worker's handle */

/* Creates the lock's OS objects, named "/ipcp.<kind>.<pid>.<run_id>" (run_id NULL or "": 16
 * random hex digits): the record "/ipcp.lock.*" (shm), plus "/ipcp.psem.*" (posix-sem), an
 * IPC_PRIVATE semaphore set (sysv-sem), or mqlock's "/ipcp.mqlock.*" queue and record
 * (mq-token, which has no "/ipcp.lock.*" record). cfg->workers >= 1 bounds the open() index.
 * cfg->options is "key=value,..." or "": mq-token takes recovery_ms=N and depth=N (mqlock.h),
 * ofd-lock takes poll_ms=N (how often a waiter retries besides being woken; default 20: the
 * bound on noticing a dead holder); any other key is -EINVAL. Returns 0, -EINVAL, -EEXIST
 * (run_id already used for this kind in this process), the mq limits' codes, or -errno;
 * nothing is left behind on failure. */
int ipcp_lock_create(enum ipcp_lock_kind kind, const struct ipcp_lock_cfg *cfg,
                     struct ipcp_lock_ctx **ctx);
/* Opens worker `index`'s handle in the calling process or thread (a handle is used by one
 * thread). Returns 0, -EINVAL (index >= workers), or -errno. */
int ipcp_lock_open(struct ipcp_lock_ctx *ctx, uint32_t index, struct ipcp_lock **h);
/* Waits up to timeout_ms (< 0: no limit): 0, 1 (previous holder died holding it), -ETIMEDOUT,
 * -IPCP_E_PEERDEAD (posix-sem: the holder died, the lock will never come back),
 * -IPCP_E_STATE (this handle holds it already, or was opened in another process), -IPCP_E_TOKEN
 * (mq-token, see mqlock.h), -ENOTRECOVERABLE (robust-mutex), or -errno. */
int ipcp_lock_lock(struct ipcp_lock *h, int timeout_ms);
/* Without waiting: 0, 1, -EBUSY, or lock's other errors. */
int ipcp_lock_trylock(struct ipcp_lock *h);
/* 0, -IPCP_E_STATE (not held by this handle), or -errno / mqlock's codes. */
int ipcp_lock_unlock(struct ipcp_lock *h);
/* Releases the handle. Closing a held handle leaves the lock as a death would (ofd-lock: the
 * kernel drops it at once; others: it stays taken / is recovered per kind). NULL is fine. */
void ipcp_lock_close(struct ipcp_lock *h);
/* Removes the OS objects (only in the creating process; elsewhere only frees local memory) and
 * frees ctx. Close this process's handles first. NULL is fine. */
void ipcp_lock_destroy(struct ipcp_lock_ctx *ctx);

/* The OS objects behind a lock, for diagnostics and leak checks ("" / -1 when unused). */
struct ipcp_lock_objects {
    char shm[96]; /* "/ipcp.lock.*" record, or mqlock's record for mq-token */
    char sem[96]; /* posix-sem: the semaphore name (in /dev/shm as "sem.ipcp.psem.*") */
    char mq[96];  /* mq-token: the queue */
    int semid;    /* sysv-sem */
};
void ipcp_lock_objects(const struct ipcp_lock_ctx *ctx, struct ipcp_lock_objects *o);
/* How many times lock() returned 1 on this lock, all processes together. */
uint64_t ipcp_lock_deaths(const struct ipcp_lock_ctx *ctx);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
