/* protos/mq_chan.c - core's POSIX message queue data channel (mqchan.h) as the stress protocols
 * "mq-chan" and "mq-chan-prio": messages in chunks of mq_msgsize through one queue named after
 * the run id.
 *
 *   mq-chan       every message at one priority, --opt prio=N (0..3, default 0): the queue is
 *                 FIFO within a priority, so per-producer order is promised (IPCP_CHAN_FIFO).
 *   mq-chan-prio  a producer's message i at priority i % 4: later messages overtake earlier
 *                 ones (also a chunked one half-way), so no order is promised; every message
 *                 must still arrive once and whole.
 *
 * Any number of producers; several consumers only when every message fits in one chunk
 * (max_msg <= mq_msgsize - 32), else -EINVAL (the chunks of one message must reach one
 * receiver). --opt msgsize=B and maxmsg=N set the queue's geometry (default 8192 and 10, lowered
 * to /proc/sys/fs/mqueue/msgsize_max and msg_max). create() and destroy() run in the supervisor,
 * each endpoint opens its own queue descriptor in its worker. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipcproof/mqchan.h"
#include "ipcproof/plugin.h"

struct mc_ctx {
    struct ipcp_mqchan *ch;
    int cycle; /* mq-chan-prio */
    unsigned prio;
};

struct mc_ep {
    struct ipcp_mqchan_ep *ep;
    const struct mc_ctx *x;
    uint64_t sent;
};

/* The value of "key=" in a "k=v,..." string, or def. */
static long opt_long(const char *opts, const char *key, long def)
{
    size_t kl = strlen(key);
    for (const char *p = opts; p != NULL && *p != '\0';) {
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') return strtol(p + kl + 1, NULL, 10);
        p = strchr(p, ',');
        if (p != NULL) p++;
    }
    return def;
}

static int mc_create_common(const struct ipcp_chan_cfg *cfg, void **ctx, int cycle)
{
    long prio = opt_long(cfg->options, "prio", 0);
    if (prio < 0 || prio >= (long)IPCP_MQCHAN_PRIOS) return -EINVAL;
    if (cfg->max_msg > IPCP_MQCHAN_MAX_MSG) return -EMSGSIZE;
    struct mc_ctx *x = calloc(1, sizeof(*x));
    if (x == NULL) return -ENOMEM;
    x->cycle = cycle;
    x->prio = (unsigned)prio;
    struct ipcp_mqchan_cfg c = {
        .stem = cfg->run_id,
        .producers = cfg->producers,
        .consumers = cfg->consumers,
        .max_msg = cfg->max_msg ? cfg->max_msg : 1,
        .maxmsg = opt_long(cfg->options, "maxmsg", 0),
        .msgsize = opt_long(cfg->options, "msgsize", 0),
    };
    int r = ipcp_mqchan_create(&c, &x->ch);
    if (r < 0) {
        free(x);
        return r;
    }
    *ctx = x;
    return 0;
}

static int mc_create(const struct ipcp_chan_cfg *cfg, void **ctx)
{
    return mc_create_common(cfg, ctx, 0);
}

static int mc_create_prio(const struct ipcp_chan_cfg *cfg, void **ctx)
{
    return mc_create_common(cfg, ctx, 1);
}

static int mc_open(void *ctx, int role, uint32_t index, void **out)
{
    struct mc_ctx *x = ctx;
    struct mc_ep *e = calloc(1, sizeof(*e));
    if (e == NULL) return -ENOMEM;
    e->x = x;
    int r = ipcp_mqchan_open(x->ch,
                             role == IPCP_ROLE_PRODUCER ? IPCP_MQCHAN_SENDER : IPCP_MQCHAN_RECEIVER,
                             index, &e->ep);
    if (r < 0) {
        free(e);
        return r;
    }
    *out = e;
    return 0;
}

static int mc_send(void *ep, const void *msg, size_t len, int timeout_ms)
{
    struct mc_ep *e = ep;
    unsigned prio = e->x->cycle ? (unsigned)(e->sent % IPCP_MQCHAN_PRIOS) : e->x->prio;
    int r = ipcp_mqchan_send(e->ep, msg, len, prio, timeout_ms);
    if (r == 0) e->sent++;
    return r;
}

static ssize_t mc_recv(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct mc_ep *e = ep;
    return ipcp_mqchan_recv(e->ep, buf, cap, timeout_ms, NULL, NULL);
}

static void mc_close(void *ep)
{
    struct mc_ep *e = ep;
    ipcp_mqchan_close(e->ep);
    free(e);
}

static void mc_destroy(void *ctx)
{
    struct mc_ctx *x = ctx;
    ipcp_mqchan_destroy(x->ch);
    free(x);
}

const struct ipcp_channel_ops st_mq_chan_ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "mq-chan",
    .flags = IPCP_CHAN_FIFO,
    .create = mc_create,
    .open = mc_open,
    .send = mc_send,
    .recv = mc_recv,
    .close = mc_close,
    .destroy = mc_destroy,
};

const struct ipcp_channel_ops st_mq_chan_prio_ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "mq-chan-prio",
    .flags = 0,
    .create = mc_create_prio,
    .open = mc_open,
    .send = mc_send,
    .recv = mc_recv,
    .close = mc_close,
    .destroy = mc_destroy,
};
