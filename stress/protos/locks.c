/* protos/locks.c - the five lock kinds of core's lock.h as stress protocols: mq-token,
 * posix-sem, robust-mutex, sysv-sem, ofd-lock.
 *
 * lock.h maps 1:1 onto the lock side of the plugin ABI, so each protocol is the same five
 * wrappers around one kind. IPCP_LOCK_ROBUST is set for the kinds whose next lock() returns 1
 * after a holder died holding the lock (lock.h's table; `ipcproof list` shows it), so
 * `validate` kills a holder inside the critical section for those and checks the hand-over;
 * posix-sem does not survive a holder's death and claims nothing. --opt is passed to
 * ipcp_lock_create() (mq-token: recovery_ms=N,depth=N; ofd-lock: poll_ms=N). */
#include "ipcproof/lock.h"
#include "ipcproof/plugin.h"

static int lk_open(void *ctx, uint32_t index, void **h)
{
    return ipcp_lock_open(ctx, index, (struct ipcp_lock **)h);
}

static int lk_lock(void *h, int timeout_ms)
{
    return ipcp_lock_lock(h, timeout_ms);
}

static int lk_unlock(void *h)
{
    return ipcp_lock_unlock(h);
}

static void lk_close(void *h)
{
    ipcp_lock_close(h);
}

static void lk_destroy(void *ctx)
{
    ipcp_lock_destroy(ctx);
}

#define LOCK_PROTO(sym, kind, pname, pflags)                                                       \
    static int sym##_create(const struct ipcp_lock_cfg *cfg, void **ctx)                           \
    {                                                                                              \
        return ipcp_lock_create(kind, cfg, (struct ipcp_lock_ctx **)ctx);                          \
    }                                                                                              \
    const struct ipcp_lock_ops sym = {                                                             \
        .abi_version = IPCP_PLUGIN_ABI_VERSION,                                                    \
        .name = pname,                                                                             \
        .flags = pflags,                                                                           \
        .create = sym##_create,                                                                    \
        .open = lk_open,                                                                           \
        .lock = lk_lock,                                                                           \
        .unlock = lk_unlock,                                                                       \
        .close = lk_close,                                                                         \
        .destroy = lk_destroy,                                                                     \
    };

LOCK_PROTO(st_mq_token_ops, IPCP_LOCK_MQ_TOKEN, "mq-token", IPCP_LOCK_ROBUST)
LOCK_PROTO(st_posix_sem_ops, IPCP_LOCK_POSIX_SEM, "posix-sem", 0)
LOCK_PROTO(st_robust_mutex_ops, IPCP_LOCK_ROBUST_MUTEX, "robust-mutex", IPCP_LOCK_ROBUST)
LOCK_PROTO(st_sysv_sem_ops, IPCP_LOCK_SYSV_SEM, "sysv-sem", IPCP_LOCK_ROBUST)
LOCK_PROTO(st_ofd_lock_ops, IPCP_LOCK_OFD, "ofd-lock", IPCP_LOCK_ROBUST)
