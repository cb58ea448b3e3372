/* plugin.h - the public, stable ABI between `ipcproof stress|validate` and a protocol.
 *
 * A protocol is a shared object exporting ipcp_plugin_channel() and/or ipcp_plugin_lock().
 * The built-in protocols of libipcproof go through this same ABI. See
 * stress/plugins/examples/ for a walkthrough. */
#ifndef IPCPROOF_PLUGIN_H
#define IPCPROOF_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* the API of a -fvisibility=hidden build */

#define IPCP_PLUGIN_ABI_VERSION 1

enum { IPCP_ROLE_PRODUCER = 1, IPCP_ROLE_CONSUMER = 2 };

/* channel flags */
/* the comments below are aligned by hand */
/* clang-format off */
#define IPCP_CHAN_FIFO      0x1u /* per-producer order is promised: the checker enforces it */
#define IPCP_CHAN_PROCESSES 0x2u /* works between processes only, not between the threads of one
                                    (endpoints named by pid, ...): thread and sched runs are n/a */

/* lock flags */
#define IPCP_LOCK_ROBUST    0x1u /* survives the death of a holder: checked under --fault kill */
#define IPCP_LOCK_FAIR      0x2u /* starvation-free: no contender waits long while others get in
                                    (a ticket or queue lock); checked as `starvation` */
#define IPCP_LOCK_PROCESSES 0x4u /* excludes processes only, not the threads of one (POSIX record
                                    locks: fcntl F_SETLKW, lockf): thread and sched runs are n/a */
/* clang-format on */

struct ipcp_chan_cfg {
    const char *run_id;  /* unique per run, [A-Za-z0-9_-]{1,32}: stem for shm / mq names */
    uint32_t producers;  /* producer endpoints that will be opened, >= 1 */
    uint32_t consumers;  /* consumer endpoints that will be opened, >= 1 */
    size_t max_msg;      /* largest message the run sends, in bytes */
    size_t capacity;     /* buffer size hint in bytes; 0 = the plugin's default */
    const char *options; /* "key=value,..." from --opt; "" when none */
};

struct ipcp_channel_ops {
    uint32_t abi_version; /* IPCP_PLUGIN_ABI_VERSION */
    const char *name;
    uint32_t flags;
    /* In the supervisor, before any worker starts. *ctx must stay valid in forked
       children (plain memory, fds, MAP_SHARED mappings) and be usable by threads. */
    int (*create)(const struct ipcp_chan_cfg *cfg, void **ctx);
    /* In the worker (a forked child, or a thread): open one endpoint. */
    int (*open)(void *ctx, int role, uint32_t index, void **ep);
    /* Deliver the whole message or nothing: 0, or -errno (-ETIMEDOUT, -EPIPE, ...). */
    int (*send)(void *ep, const void *msg, size_t len, int timeout_ms);
    /* One whole message: its length (>= 0), or -errno (-ETIMEDOUT, -EMSGSIZE, ...). */
    ssize_t (*recv)(void *ep, void *buf, size_t cap, int timeout_ms);
    void (*close)(void *ep);
    /* In the supervisor after every worker ended, also after a failure: release every OS object. */
    void (*destroy)(void *ctx);
};

struct ipcp_lock_cfg {
    const char *run_id;
    uint32_t workers;
    const char *options;
};

struct ipcp_lock_ops {
    uint32_t abi_version;
    const char *name;
    uint32_t flags;
    int (*create)(const struct ipcp_lock_cfg *cfg, void **ctx);
    int (*open)(void *ctx, uint32_t index, void **h);
    /* 0: acquired. 1: acquired, and the previous holder died holding it.
       -ETIMEDOUT, or another -errno. */
    int (*lock)(void *h, int timeout_ms);
    int (*unlock)(void *h);
    void (*close)(void *h);
    void (*destroy)(void *ctx);
};

/* A plugin exports either or both: */
const struct ipcp_channel_ops *ipcp_plugin_channel(void);
const struct ipcp_lock_ops *ipcp_plugin_lock(void);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
