/* err.h - error codes of libipcproof.
 *
 * Every fallible function returns >= 0 on success and a negative code on failure: either a
 * negated errno value (-ETIMEDOUT, -EPIPE, -EMSGSIZE, -EBADMSG, ...) or a negated IPCP_E_*
 * code below for failures errno has no word for. The IPCP_E_* values lie above any errno value,
 * so the two never collide. ipcp_strerror() names both. */
#ifndef IPCPROOF_ERR_H
#define IPCPROOF_ERR_H

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* the API of a -fvisibility=hidden build */

enum ipcp_error {
    IPCP_E_BASE = 4096,
    IPCP_E_BADMAGIC,   /* frame or shared object does not start with the expected magic */
    IPCP_E_BADVERSION, /* format version this build does not speak */
    IPCP_E_HDRSUM,     /* frame header checksum mismatch */
    IPCP_E_PAYSUM,     /* frame payload checksum mismatch */
    IPCP_E_TRUNCATED,  /* peer closed (EOF) in the middle of a frame */
    IPCP_E_TOOBIG,     /* declared length above the configured maximum (nothing allocated) */
    IPCP_E_FRAGMENT,   /* fragment/chunk sequence broken: missing FIRST, early LAST, lying total */
    IPCP_E_SEQUENCE,   /* sequence number gap or repeat on an ordered channel */
    IPCP_E_CORRUPT,    /* shared memory holds a value outside its valid range */
    IPCP_E_LAYOUT,     /* attach: layout, sizes or capacity of the shared object do not match */
    IPCP_E_PEERDEAD,   /* the peer process died */
    IPCP_E_BROKEN,     /* channel unusable after an earlier error left a partial frame */
    IPCP_E_MQ_MAXMSG,  /* mq_maxmsg above /proc/sys/fs/mqueue/msg_max (needs CAP_SYS_RESOURCE) */
    IPCP_E_MQ_MSGSIZE, /* mq_msgsize above /proc/sys/fs/mqueue/msgsize_max */
    IPCP_E_MQ_QUEUES,  /* queues_max or RLIMIT_MSGQUEUE reached */
    IPCP_E_TOKEN,      /* lock token invariant broken: a second token, or a foreign message */
    IPCP_E_STATE,      /* call not allowed in the object's current state */
    IPCP_E_MSGMNB,     /* SysV msg_qbytes above /proc/sys/kernel/msgmnb (needs CAP_SYS_RESOURCE) */
    IPCP_E_MSGMNI,     /* SysV message queue limit /proc/sys/kernel/msgmni reached (ENOSPC) */
    IPCP_E_SHMMAX,     /* SysV segment size above /proc/sys/kernel/shmmax */
    IPCP_E_SHMALL,     /* SysV shared memory total /proc/sys/kernel/shmall (pages) reached */
    IPCP_E_SHMMNI,     /* SysV segment count /proc/sys/kernel/shmmni reached */
    IPCP_E_NOSUM,      /* frame without the payload checksum this receiver requires */
    IPCP_E_PIDNS,      /* opener in another PID namespace than the object's creator: a peer's
                          liveness (judged by its pid) could not be told */
    IPCP_E_LAST
};

/* A static, human-readable string for a return code (negative or positive errno or IPCP_E_*).
 * Never NULL; thread-safe; never allocates. */
const char *ipcp_strerror(int err);

/* Name of the code ("EPIPE", "IPCP_E_PAYSUM"); "E?" for an unknown value. */
const char *ipcp_errname(int err);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
