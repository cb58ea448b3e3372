/* protos/mq_token.c - core's message-queue token lock (mqlock.h) as the stress protocol
 * "mq-token", a robust lock: a holder that dies is recovered and the next lock() returns 1.
 *
 * create() makes the queue and its shared record in the supervisor, named after the run id;
 * every endpoint (forked worker or thread) opens its own queue descriptor. --opt recovery_ms=N
 * and depth=N are passed to ipcp_mqlock_create(). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipcproof/mqlock.h"
#include "ipcproof/plugin.h"

static int opt_int(const char *options, const char *key, int dflt)
{
    const char *p = strstr(options, key);
    if (p == NULL || p[strlen(key)] != '=') return dflt;
    return atoi(p + strlen(key) + 1);
}

static int mqt_create(const struct ipcp_lock_cfg *cfg, void **ctx)
{
    struct ipcp_mqlock_cfg c = {
        .stem = cfg->run_id,
        .recovery_ms = opt_int(cfg->options, "recovery_ms", 0),
        .depth = (unsigned)opt_int(cfg->options, "depth", 0),
    };
    struct ipcp_mqlock *l;
    int r = ipcp_mqlock_create(&c, &l);
    if (r < 0) return r;
    *ctx = l;
    return 0;
}

static int mqt_open(void *ctx, uint32_t index, void **h)
{
    (void)index;
    return ipcp_mqlock_open(ctx, (struct ipcp_mqlock_handle **)h);
}

static int mqt_lock(void *h, int timeout_ms)
{
    return ipcp_mqlock_lock(h, timeout_ms);
}

static int mqt_unlock(void *h)
{
    return ipcp_mqlock_unlock(h);
}

static void mqt_close(void *h)
{
    ipcp_mqlock_close(h);
}

static void mqt_destroy(void *ctx)
{
    ipcp_mqlock_destroy(ctx);
}

const struct ipcp_lock_ops st_mq_token_ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "mq-token",
    .flags = IPCP_LOCK_ROBUST,
    .create = mqt_create,
    .open = mqt_open,
    .lock = mqt_lock,
    .unlock = mqt_unlock,
    .close = mqt_close,
    .destroy = mqt_destroy,
};
