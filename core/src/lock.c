/* lock.c - the lock interface of lock.h over five mechanisms.
 *
 * Each kind supplies acquire / try / release; the common code around them keeps the owner word
 * (death reporting for the kinds whose kernel releases a dead holder without telling anybody),
 * the per-handle state checks, and the ThreadSanitizer annotations: TSan does not know that a
 * SysV semop or an fcntl lock orders two critical sections, and its LLVM 14 runtime does not
 * intercept sem_clockwait / pthread_mutex_clocklock, so the handoff is annotated on the shared
 * record's address (one mapping for every thread of a process). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "deadline.h"
#include "os.h"
#include "proc.h"
#include "ipcproof/err.h"
#include "ipcproof/lock.h"
#include "ipcproof/mqlock.h"
#include "ipcproof/registry.h"

/* ==== kinds ================================================================================= */

static const struct ipcp_lock_info infos[] = {
    {IPCP_LOCK_MQ_TOKEN, "mq-token", 1, 1,
     "1 once the waiter finds the holder dead (checked every recovery_ms/5, at most 50 ms); a "
     "token lost while being released is re-created after recovery_ms and lock() returns 0"},
    {IPCP_LOCK_POSIX_SEM, "posix-sem", 0, 0,
     "-IPCP_E_PEERDEAD once the deadline passes and the recorded holder is dead; the semaphore "
     "stays taken until the lock is destroyed and created again"},
    {IPCP_LOCK_ROBUST_MUTEX, "robust-mutex", 1, 1,
     "1: the kernel hands the mutex on with EOWNERDEAD and it is made consistent"},
    {IPCP_LOCK_SYSV_SEM, "sysv-sem", 1, 1,
     "1: SEM_UNDO gives the semaphore back at the holder's exit and the owner word it left set "
     "tells the death (with SEM_UNDO alone lock() would return 0)"},
    {IPCP_LOCK_OFD, "ofd-lock", 1, 1,
     "1 within poll_ms: the kernel drops the lock when the dead holder's file description "
     "closes and the owner word it left set tells the death"},
};

const struct ipcp_lock_info *ipcp_lock_info(enum ipcp_lock_kind kind)
{
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(infos); i++)
        if (infos[i].kind == kind) return &infos[i];
    return NULL;
}

int ipcp_lock_kind_from_name(const char *name)
{
    for (size_t i = 0; name != NULL && i < IPCP_ARRAY_SIZE(infos); i++)
        if (strcmp(infos[i].name, name) == 0) return (int)infos[i].kind;
    return -EINVAL;
}

int ipcp_lock_survives_death(enum ipcp_lock_kind kind)
{
    const struct ipcp_lock_info *i = ipcp_lock_info(kind);
    return i == NULL ? -EINVAL : i->survives_death;
}

/* ==== shared record, context, handle ======================================================== */

#define LOCK_MAGIC      0x4b434f4cu /* "LOCK" */
#define DEFAULT_POLL_MS 20
#define SLICE_MS        1000 /* longest single wait when the caller gave no deadline */

struct lock_shared {
    uint32_t magic;
    uint32_t kind;
    uint8_t pad0[IPCP_CACHELINE - 8];
    _Atomic uint64_t owner;  /* (start << 32) | pid of the holder; 0 = free */
    _Atomic uint64_t deaths; /* lock() calls that returned 1 */
    uint8_t pad1[IPCP_CACHELINE - 16];
    _Atomic uint32_t wake_seq; /* ofd-lock: bumped by every unlock (futex word) */
    _Atomic uint32_t waiters;  /* ofd-lock: handles about to sleep or sleeping on it */
    uint8_t pad2[IPCP_CACHELINE - 8];
    pthread_mutex_t mutex; /* robust-mutex */
};

struct ipcp_lock_ctx {
    enum ipcp_lock_kind kind;
    uint32_t workers;
    int poll_ms;
    pid_t creator;
    uint64_t pidns; /* the creator's PID namespace (proc.h) */
    char shm[96];
    char sem[96];
    struct lock_shared *sh;
    int semid;
    struct ipcp_mqlock *mq;
};

struct ipcp_lock {
    struct ipcp_lock_ctx *ctx;
    uint32_t pid;
    uint32_t forkgen; /* ipcp__os_forkgen() at open: another value = inherited over fork */
    uint64_t tag;     /* our owner-word value */
    int held;
    sem_t *sem;
    int fd;
    struct ipcp_mqlock_handle *mqh;
};

static int parse_options(const char *opts, enum ipcp_lock_kind kind, struct ipcp_mqlock_cfg *mq,
                         int *poll_ms)
{
    if (opts == NULL || opts[0] == '\0') return 0;
    char buf[256];
    if (strlen(opts) >= sizeof(buf)) return -EINVAL;
    strcpy(buf, opts);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL) return -EINVAL;
        *eq = '\0';
        char *end;
        errno = 0;
        long v = strtol(eq + 1, &end, 10);
        if (errno != 0 || end == eq + 1 || *end != '\0' || v < 0 || v > 1000000) return -EINVAL;
        if (kind == IPCP_LOCK_MQ_TOKEN && strcmp(tok, "recovery_ms") == 0)
            mq->recovery_ms = (int)v;
        else if (kind == IPCP_LOCK_MQ_TOKEN && strcmp(tok, "depth") == 0)
            mq->depth = (unsigned)v;
        else if (kind == IPCP_LOCK_OFD && strcmp(tok, "poll_ms") == 0 && v > 0)
            *poll_ms = (int)v;
        else
            return -EINVAL;
    }
    return 0;
}

void ipcp_lock_destroy(struct ipcp_lock_ctx *ctx)
{
    if (ctx == NULL) return;
    int creator = getpid() == ctx->creator;
    if (ctx->mq != NULL) ipcp_mqlock_destroy(ctx->mq);
    if (creator && ctx->sem[0] != '\0') {
        sem_unlink(ctx->sem);
        (void)ipcp_registry_remove("sem", ctx->sem);
    }
    if (creator && ctx->semid >= 0) {
        semctl(ctx->semid, 0, IPC_RMID);
        char id[16];
        snprintf(id, sizeof(id), "%d", ctx->semid);
        (void)ipcp_registry_remove("sysv-sem", id);
    }
    if (ctx->sh != NULL) {
        /* The robust mutex is not pthread_mutex_destroy()ed: a dead holder may still own it,
           and the memory goes away with the mapping anyway. */
        munmap(ctx->sh, sizeof(struct lock_shared));
        if (creator) {
            shm_unlink(ctx->shm);
            (void)ipcp_registry_remove("shm", ctx->shm);
        }
    }
    free(ctx);
}

int ipcp_lock_create(enum ipcp_lock_kind kind, const struct ipcp_lock_cfg *cfg,
                     struct ipcp_lock_ctx **out)
{
    *out = NULL;
    if (ipcp_lock_info(kind) == NULL || cfg == NULL || cfg->workers == 0) return -EINVAL;
    struct ipcp_mqlock_cfg mcfg = {.stem = cfg->run_id, .recovery_ms = 0, .depth = 0};
    int poll_ms = DEFAULT_POLL_MS;
    int rc = parse_options(cfg->options, kind, &mcfg, &poll_ms);
    if (rc < 0) return rc;
    struct ipcp_lock_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) return -ENOMEM;
    ctx->kind = kind;
    ctx->workers = cfg->workers;
    ctx->poll_ms = poll_ms;
    ctx->creator = getpid();
    ctx->pidns = ipcp__proc_ns();
    ctx->semid = -1;

    if (kind == IPCP_LOCK_MQ_TOKEN) {
        rc = ipcp_mqlock_create(&mcfg, &ctx->mq);
        if (rc < 0) goto fail;
        *out = ctx;
        return 0;
    }
    rc = ipcp__os_objname(ctx->shm, sizeof(ctx->shm), "lock", cfg->run_id);
    if (rc < 0) goto fail;
    void *map;
    rc = ipcp__os_shm_create(ctx->shm, sizeof(struct lock_shared), &map);
    if (rc < 0) {
        ctx->shm[0] = '\0';
        goto fail;
    }
    ctx->sh = map;
    ctx->sh->magic = LOCK_MAGIC;
    ctx->sh->kind = (uint32_t)kind;

    switch (kind) {
    case IPCP_LOCK_POSIX_SEM: {
        snprintf(ctx->sem, sizeof(ctx->sem), "/ipcp.psem%s", ctx->shm + strlen("/ipcp.lock"));
        sem_t *s = sem_open(ctx->sem, O_CREAT | O_EXCL, 0600, 1);
        if (s == SEM_FAILED) {
            rc = -errno;
            ctx->sem[0] = '\0';
            goto fail;
        }
        sem_close(s); /* every handle opens its own; the name keeps it */
        (void)ipcp_registry_add("sem", ctx->sem); /* best effort */
        break;
    }
    case IPCP_LOCK_ROBUST_MUTEX:
        rc = ipcp__robust_mutex_init(&ctx->sh->mutex);
        if (rc < 0) goto fail;
        break;
    case IPCP_LOCK_SYSV_SEM:
        ctx->semid = semget(IPC_PRIVATE, 1, IPC_CREAT | IPC_EXCL | 0600);
        if (ctx->semid >= 0) {
            char id[16];
            snprintf(id, sizeof(id), "%d", ctx->semid);
            (void)ipcp_registry_add("sysv-sem", id); /* best effort */
        }
        if (ctx->semid < 0 || semctl(ctx->semid, 0, SETVAL, 1) < 0) {
            rc = -errno;
            goto fail;
        }
        break;
    default: /* ofd-lock: the record's shm file is the locked file */
        break;
    }
    *out = ctx;
    return 0;
fail:
    ipcp_lock_destroy(ctx);
    return rc;
}

int ipcp_lock_open(struct ipcp_lock_ctx *ctx, uint32_t index, struct ipcp_lock **out)
{
    *out = NULL;
    if (index >= ctx->workers) return -EINVAL;
    struct ipcp_lock *h = calloc(1, sizeof(*h));
    if (h == NULL) return -ENOMEM;
    h->ctx = ctx;
    h->fd = -1;
    h->forkgen = ipcp__os_forkgen();
    uint64_t start;
    /* posix-sem tells a dead holder by its pid (mq-token: mqlock.c checks): one PID namespace.
     * The other kinds leave deaths to the kernel and work across namespaces. */
    int rc = ctx->kind == IPCP_LOCK_POSIX_SEM ? ipcp__proc_ns_check(ctx->pidns) : 0;
    if (rc == 0) rc = ipcp__proc_self(&h->pid, &start);
    if (rc < 0) goto fail;
    h->tag = ((start & 0xffffffffull) << 32) | h->pid;
    switch (ctx->kind) {
    case IPCP_LOCK_MQ_TOKEN:
        rc = ipcp_mqlock_open(ctx->mq, &h->mqh);
        break;
    case IPCP_LOCK_POSIX_SEM:
        h->sem = sem_open(ctx->sem, 0);
        if (h->sem == SEM_FAILED) {
            h->sem = NULL;
            rc = -errno;
        }
        break;
    case IPCP_LOCK_OFD:
        /* A file description of our own: OFD locks conflict between descriptions, also
           between threads of one process. */
        h->fd = shm_open(ctx->shm, O_RDWR | O_CLOEXEC, 0);
        if (h->fd < 0) rc = -errno;
        break;
    default:
        break;
    }
    if (rc < 0) goto fail;
    *out = h;
    return 0;
fail:
    free(h);
    return rc;
}

void ipcp_lock_close(struct ipcp_lock *h)
{
    if (h == NULL) return;
    if (h->mqh != NULL) ipcp_mqlock_close(h->mqh);
    if (h->sem != NULL) sem_close(h->sem);
    if (h->fd >= 0) close(h->fd);
    free(h);
}

void ipcp_lock_objects(const struct ipcp_lock_ctx *ctx, struct ipcp_lock_objects *o)
{
    memset(o, 0, sizeof(*o));
    o->semid = ctx->semid;
    snprintf(o->sem, sizeof(o->sem), "%s", ctx->sem);
    if (ctx->mq != NULL) {
        snprintf(o->shm, sizeof(o->shm), "%s", ipcp_mqlock_name(ctx->mq));
        snprintf(o->mq, sizeof(o->mq), "%s", ipcp_mqlock_name(ctx->mq));
    } else {
        snprintf(o->shm, sizeof(o->shm), "%s", ctx->shm);
    }
}

uint64_t ipcp_lock_deaths(const struct ipcp_lock_ctx *ctx)
{
    if (ctx->mq != NULL) {
        struct ipcp_mqlock_stats s;
        ipcp_mqlock_stats(ctx->mq, &s);
        return s.deaths;
    }
    return ipcp_load_relaxed64(&ctx->sh->deaths);
}

/* ==== waiting helpers ======================================================================= */

/* The next wait's length: what is left of the deadline, at most SLICE_MS (no deadline) or
 * cap_ms. 0 means the deadline has passed. */
static int slice_ms(const struct ipcp_deadline *dl, int cap_ms)
{
    int left = ipcp__deadline_left_ms(dl);
    if (left < 0 || left > cap_ms) return cap_ms;
    return left;
}

/* ==== posix-sem ============================================================================= */

static int psem_acquire(struct ipcp_lock *h, const struct ipcp_deadline *dl)
{
    for (;;) {
        int ms = slice_ms(dl, SLICE_MS);
#ifdef IPCP_TSAN
        /* TSan intercepts sem_timedwait (realtime) but not sem_clockwait. */
        struct timespec ts = ipcp__realtime_after_ms(ms);
        int r = sem_timedwait(h->sem, &ts);
#else
        struct timespec ts = ipcp__mono_after_ms(ms); /* immune to realtime clock jumps */
        int r = sem_clockwait(h->sem, CLOCK_MONOTONIC, &ts);
#endif
        if (r == 0) return 0;
        if (errno == EINTR) continue;
        if (errno != ETIMEDOUT) return -errno;
        if (ipcp__deadline_left_ms(dl) == 0) return -ETIMEDOUT;
    }
}

static int psem_try(struct ipcp_lock *h)
{
    for (;;) {
        if (sem_trywait(h->sem) == 0) return 0;
        if (errno == EINTR) continue;
        return errno == EAGAIN ? -EBUSY : -errno;
    }
}

static int psem_release(struct ipcp_lock *h)
{
    return sem_post(h->sem) == 0 ? 0 : -errno;
}

/* ==== robust-mutex ========================================================================== */

static int robust_result(struct ipcp_lock *h, int r)
{
    if (r == 0) return 0;
    if (r == EOWNERDEAD) {
        /* The holder died holding it: we own it now; declare the state usable again. */
        int c = pthread_mutex_consistent(&h->ctx->sh->mutex);
        if (c != 0) {
            pthread_mutex_unlock(&h->ctx->sh->mutex);
            return -c;
        }
        return 1;
    }
    return -r;
}

static int robust_try(struct ipcp_lock *h)
{
    int r = pthread_mutex_trylock(&h->ctx->sh->mutex);
    return r == EBUSY ? -EBUSY : robust_result(h, r);
}

static int robust_acquire(struct ipcp_lock *h, const struct ipcp_deadline *dl)
{
#ifdef IPCP_TSAN
    /* LLVM 14's TSan does not intercept pthread_mutex_clocklock, and its timedlock interceptor
     * loses an EOWNERDEAD result (the unlock is then reported as "unlock of an unlocked
     * mutex"); its trylock interceptor handles both. So TSan builds poll with trylock. */
    long pause_ns = 1000;
    for (;;) {
        int r = robust_try(h);
        if (r != -EBUSY) return r;
        if (ipcp__deadline_left_ms(dl) == 0) return -ETIMEDOUT;
        struct timespec ts = {0, pause_ns};
        nanosleep(&ts, NULL);
        if (pause_ns < 1000000) pause_ns *= 2;
    }
#else
    for (;;) {
        struct timespec ts = ipcp__mono_after_ms(slice_ms(dl, SLICE_MS));
        int r = pthread_mutex_clocklock(&h->ctx->sh->mutex, CLOCK_MONOTONIC, &ts);
        if (r != ETIMEDOUT) return robust_result(h, r);
        if (ipcp__deadline_left_ms(dl) == 0) return -ETIMEDOUT;
    }
#endif
}

static int robust_release(struct ipcp_lock *h)
{
    return -pthread_mutex_unlock(&h->ctx->sh->mutex);
}

/* ==== sysv-sem ============================================================================== */

static int sysv_acquire(struct ipcp_lock *h, const struct ipcp_deadline *dl, int nowait)
{
    struct sembuf op = {.sem_num = 0, .sem_op = -1, .sem_flg = SEM_UNDO};
    if (nowait) op.sem_flg |= IPC_NOWAIT;
    for (;;) {
        int ms = nowait ? 0 : slice_ms(dl, SLICE_MS);
        struct timespec rel = {ms / 1000, (long)(ms % 1000) * 1000000L}; /* relative */
        int r = nowait ? semop(h->ctx->semid, &op, 1) : semtimedop(h->ctx->semid, &op, 1, &rel);
        if (r == 0) return 0;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return -errno;
        if (nowait) return -EBUSY;
        if (ipcp__deadline_left_ms(dl) == 0) return -ETIMEDOUT;
    }
}

static int sysv_release(struct ipcp_lock *h)
{
    struct sembuf op = {.sem_num = 0, .sem_op = 1, .sem_flg = SEM_UNDO};
    for (;;) {
        if (semop(h->ctx->semid, &op, 1) == 0) return 0;
        if (errno != EINTR) return -errno;
    }
}

/* ==== ofd-lock ============================================================================== */

static int ofd_try(struct ipcp_lock *h)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    for (;;) {
        if (fcntl(h->fd, F_OFD_SETLK, &fl) == 0) return 0;
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
    }
}

/* F_OFD_SETLKW has no timeout, so waiters sleep on a futex that unlock bumps, and retry every
 * poll_ms anyway: a holder that dies releases the lock in the kernel but wakes nobody. */
static int ofd_acquire(struct ipcp_lock *h, const struct ipcp_deadline *dl)
{
    struct lock_shared *sh = h->ctx->sh;
    for (;;) {
        int r = ofd_try(h);
        if (r != -EBUSY) return r;
        int ms = slice_ms(dl, h->ctx->poll_ms);
        if (ms == 0) return -ETIMEDOUT;
        /* seq_cst pair with unlock: we announce ourselves, then read the sequence and try
           again; unlock bumps the sequence, then reads the waiter count. Either it sees us and
           wakes us, or we see its bump (the futex wait returns at once) or its release. */
        ipcp_fetch_add_seqcst32(&sh->waiters, 1);
        uint32_t seq = ipcp_load_seqcst32(&sh->wake_seq);
        r = ofd_try(h);
        if (r == -EBUSY) {
            (void)ipcp__os_futex_wait(&sh->wake_seq, seq, ms); /* any result: try again */
        }
        ipcp_fetch_sub_seqcst32(&sh->waiters, 1);
        if (r != -EBUSY) return r;
    }
}

static int ofd_release(struct ipcp_lock *h)
{
    struct lock_shared *sh = h->ctx->sh;
    struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    int rc = 0;
    while (fcntl(h->fd, F_OFD_SETLK, &fl) < 0) {
        if (errno != EINTR) {
            rc = -errno;
            break;
        }
    }
    ipcp_fetch_add_seqcst32(&sh->wake_seq, 1); /* seq_cst: see ofd_acquire */
    if (ipcp_load_seqcst32(&sh->waiters) > 0) ipcp__os_futex_wake(&sh->wake_seq, 1);
    return rc;
}

/* ==== common ================================================================================ */

static int check_handle(const struct ipcp_lock *h)
{
    if (h->held) return -IPCP_E_STATE;
    if (ipcp__os_forkgen() != h->forkgen) return -IPCP_E_STATE; /* inherited over fork */
    return 0;
}

/* The kind's acquire returned r (0, 1 for EOWNERDEAD, or < 0). */
static int acquired(struct ipcp_lock *h, int r)
{
    struct lock_shared *sh = h->ctx->sh;
    if (r < 0) {
        if (r == -ETIMEDOUT && h->ctx->kind == IPCP_LOCK_POSIX_SEM) {
            /* relaxed: the holder's identity, only to tell a death from a slow holder */
            uint64_t o = ipcp_load_relaxed64(&sh->owner);
            if (o != 0 && !ipcp__proc_alive((uint32_t)o, o >> 32, 0xffffffffull))
                return -IPCP_E_PEERDEAD;
        }
        return r;
    }
    /* The kernel (semop, fcntl) ordered the previous holder's release before our acquire. */
    ipcp_tsan_acquire(sh);
    /* acq_rel: reads the previous holder's mark after the lock was handed over. */
    uint64_t prev = ipcp_exchange_acq_rel64(&sh->owner, h->tag);
    int died = r == 1;
    if (prev != 0 && (h->ctx->kind == IPCP_LOCK_SYSV_SEM || h->ctx->kind == IPCP_LOCK_OFD))
        died = 1; /* released by the kernel, not by an unlock (which clears the word first) */
    if (died) ipcp_fetch_add_relaxed64(&sh->deaths, 1);
    h->held = 1;
    return died;
}

int ipcp_lock_lock(struct ipcp_lock *h, int timeout_ms)
{
    int rc = check_handle(h);
    if (rc < 0) return rc;
    if (h->ctx->kind == IPCP_LOCK_MQ_TOKEN) {
        rc = ipcp_mqlock_lock(h->mqh, timeout_ms);
        if (rc >= 0) h->held = 1;
        return rc;
    }
    struct ipcp_deadline dl;
    ipcp__deadline_init(&dl, timeout_ms);
    switch (h->ctx->kind) {
    case IPCP_LOCK_POSIX_SEM:
        return acquired(h, psem_acquire(h, &dl));
    case IPCP_LOCK_ROBUST_MUTEX:
        return acquired(h, robust_acquire(h, &dl));
    case IPCP_LOCK_SYSV_SEM:
        return acquired(h, sysv_acquire(h, &dl, 0));
    default:
        return acquired(h, ofd_acquire(h, &dl));
    }
}

int ipcp_lock_trylock(struct ipcp_lock *h)
{
    int rc = check_handle(h);
    if (rc < 0) return rc;
    switch (h->ctx->kind) {
    case IPCP_LOCK_MQ_TOKEN:
        rc = ipcp_mqlock_trylock(h->mqh);
        if (rc >= 0) h->held = 1;
        return rc;
    case IPCP_LOCK_POSIX_SEM:
        return acquired(h, psem_try(h));
    case IPCP_LOCK_ROBUST_MUTEX:
        return acquired(h, robust_try(h));
    case IPCP_LOCK_SYSV_SEM:
        return acquired(h, sysv_acquire(h, NULL, 1));
    default:
        return acquired(h, ofd_try(h));
    }
}

int ipcp_lock_unlock(struct ipcp_lock *h)
{
    if (!h->held || ipcp__os_forkgen() != h->forkgen) return -IPCP_E_STATE;
    h->held = 0;
    if (h->ctx->kind == IPCP_LOCK_MQ_TOKEN) return ipcp_mqlock_unlock(h->mqh);
    struct lock_shared *sh = h->ctx->sh;
    /* release: cleared before the lock is handed on; a death after this point left the
       critical section complete and is not reported. */
    ipcp_store_release64(&sh->owner, 0);
    /* Our critical section happens before the next holder's (kernel-ordered; TSan). */
    ipcp_tsan_release(sh);
    switch (h->ctx->kind) {
    case IPCP_LOCK_POSIX_SEM:
        return psem_release(h);
    case IPCP_LOCK_ROBUST_MUTEX:
        return robust_release(h);
    case IPCP_LOCK_SYSV_SEM:
        return sysv_release(h);
    default:
        return ofd_release(h);
    }
}
