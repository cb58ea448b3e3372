/* protos/condvar_queue.c - core's robust mutex + condvar bounded queue (cvq.h) as the stress
 * protocol "condvar-queue": any number of producers and consumers (up to 64 each), one message
 * per slot; slots of max_msg bytes, max(2, --capacity / max_msg) of them (default capacity
 * 64 KiB). create() makes the shm region, named after the run id, in the supervisor; forked
 * workers inherit its mapping and threads share it (one mapping: what ThreadSanitizer needs).
 * Each producer's messages leave in the order it put them (the queue is FIFO), so per-producer
 * order is promised. Consumers get -EPIPE once every producer closed and the queue is empty. */
#include <errno.h>
#include <stdlib.h>

#include "ipcproof/cvq.h"
#include "ipcproof/plugin.h"

static int cq_create(const struct ipcp_chan_cfg *cfg, void **ctx)
{
    if (cfg->max_msg > IPCP_CVQ_MAX_MSG) return -EMSGSIZE;
    struct ipcp_cvq_cfg c = {
        .stem = cfg->run_id,
        .producers = cfg->producers,
        .consumers = cfg->consumers,
        .max_msg = cfg->max_msg ? cfg->max_msg : 1,
        .capacity = cfg->capacity,
    };
    return ipcp_cvq_create(&c, (struct ipcp_cvq **)ctx);
}

static int cq_open(void *ctx, int role, uint32_t index, void **ep)
{
    return ipcp_cvq_open(ctx, role == IPCP_ROLE_PRODUCER ? IPCP_CVQ_PRODUCER : IPCP_CVQ_CONSUMER,
                         index, (struct ipcp_cvq_ep **)ep);
}

static int cq_send(void *ep, const void *msg, size_t len, int timeout_ms)
{
    return ipcp_cvq_put(ep, msg, len, timeout_ms);
}

static ssize_t cq_recv(void *ep, void *buf, size_t cap, int timeout_ms)
{
    return ipcp_cvq_get(ep, buf, cap, timeout_ms);
}

static void cq_close(void *ep)
{
    ipcp_cvq_close(ep);
}

static void cq_destroy(void *ctx)
{
    ipcp_cvq_destroy(ctx);
}

const struct ipcp_channel_ops st_condvar_queue_ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "condvar-queue",
    .flags = IPCP_CHAN_FIFO,
    .create = cq_create,
    .open = cq_open,
    .send = cq_send,
    .recv = cq_recv,
    .close = cq_close,
    .destroy = cq_destroy,
};
