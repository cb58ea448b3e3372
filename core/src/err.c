/* err.c - names and descriptions of libipcproof's return codes. */
#include <errno.h>
#include <string.h>

#include "ipcproof/err.h"

struct ipcp_errdesc {
    const char *name;
    const char *text;
};

static const struct ipcp_errdesc ipcp_own[] = {
    [IPCP_E_BADMAGIC - IPCP_E_BASE] = {"IPCP_E_BADMAGIC",
                                       "bad magic: not an ipcproof frame or object"},
    [IPCP_E_BADVERSION - IPCP_E_BASE] = {"IPCP_E_BADVERSION", "unsupported format version"},
    [IPCP_E_HDRSUM - IPCP_E_BASE] = {"IPCP_E_HDRSUM", "frame header checksum mismatch"},
    [IPCP_E_PAYSUM - IPCP_E_BASE] = {"IPCP_E_PAYSUM", "frame payload checksum mismatch"},
    [IPCP_E_TRUNCATED - IPCP_E_BASE] = {"IPCP_E_TRUNCATED", "peer closed in the middle of a frame"},
    [IPCP_E_TOOBIG -
        IPCP_E_BASE] = {"IPCP_E_TOOBIG", "declared length above the configured maximum"},
    [IPCP_E_FRAGMENT - IPCP_E_BASE] = {"IPCP_E_FRAGMENT", "broken fragment or chunk sequence"},
    [IPCP_E_SEQUENCE - IPCP_E_BASE] = {"IPCP_E_SEQUENCE", "sequence number gap or repeat"},
    [IPCP_E_CORRUPT - IPCP_E_BASE] = {"IPCP_E_CORRUPT", "shared memory holds an invalid value"},
    [IPCP_E_LAYOUT - IPCP_E_BASE] = {"IPCP_E_LAYOUT", "shared object layout or size mismatch"},
    [IPCP_E_PEERDEAD - IPCP_E_BASE] = {"IPCP_E_PEERDEAD", "peer process died"},
    [IPCP_E_BROKEN -
        IPCP_E_BASE] = {"IPCP_E_BROKEN", "channel broken by an earlier partial transfer"},
    [IPCP_E_MQ_MAXMSG - IPCP_E_BASE] = {"IPCP_E_MQ_MAXMSG",
                                        "mq_maxmsg above /proc/sys/fs/mqueue/msg_max "
                                        "(raising it needs CAP_SYS_RESOURCE)"},
    [IPCP_E_MQ_MSGSIZE - IPCP_E_BASE] = {"IPCP_E_MQ_MSGSIZE",
                                         "mq_msgsize above /proc/sys/fs/mqueue/msgsize_max "
                                         "(raising it needs CAP_SYS_RESOURCE)"},
    [IPCP_E_MQ_QUEUES - IPCP_E_BASE] = {"IPCP_E_MQ_QUEUES",
                                        "message queue limit reached "
                                        "(/proc/sys/fs/mqueue/queues_max or RLIMIT_MSGQUEUE)"},
    [IPCP_E_TOKEN - IPCP_E_BASE] = {"IPCP_E_TOKEN", "lock token invariant broken"},
    [IPCP_E_STATE - IPCP_E_BASE] = {"IPCP_E_STATE", "operation not allowed in this state"},
    [IPCP_E_MSGMNB - IPCP_E_BASE] = {"IPCP_E_MSGMNB",
                                     "SysV queue size above /proc/sys/kernel/msgmnb "
                                     "(raising it needs CAP_SYS_RESOURCE)"},
    [IPCP_E_MSGMNI - IPCP_E_BASE] = {"IPCP_E_MSGMNI", "SysV message queue limit reached "
                                                      "(/proc/sys/kernel/msgmni)"},
    [IPCP_E_SHMMAX - IPCP_E_BASE] = {"IPCP_E_SHMMAX", "SysV segment size above "
                                                      "/proc/sys/kernel/shmmax"},
    [IPCP_E_SHMALL - IPCP_E_BASE] = {"IPCP_E_SHMALL", "SysV shared memory limit reached "
                                                      "(/proc/sys/kernel/shmall pages in all)"},
    [IPCP_E_SHMMNI - IPCP_E_BASE] = {"IPCP_E_SHMMNI", "SysV segment limit reached "
                                                      "(/proc/sys/kernel/shmmni)"},
    [IPCP_E_NOSUM - IPCP_E_BASE] = {"IPCP_E_NOSUM", "frame without the payload checksum this "
                                                    "receiver requires"},
    [IPCP_E_PIDNS - IPCP_E_BASE] = {"IPCP_E_PIDNS",
                                    "opener in another PID namespace than the object's creator "
                                    "(a peer's liveness cannot be judged by its pid; share the "
                                    "PID namespace, e.g. shareProcessNamespace in a pod)"},
};

const char *ipcp_strerror(int err)
{
    if (err < 0) err = -err;
    if (err == 0) return "success";
    if (err > IPCP_E_BASE && err < IPCP_E_LAST) return ipcp_own[err - IPCP_E_BASE].text;
    const char *s = strerrordesc_np(err);
    return s != NULL ? s : "unknown error";
}

const char *ipcp_errname(int err)
{
    if (err < 0) err = -err;
    if (err == 0) return "OK";
    if (err > IPCP_E_BASE && err < IPCP_E_LAST) return ipcp_own[err - IPCP_E_BASE].name;
    const char *s = strerrorname_np(err);
    return s != NULL ? s : "E?";
}
