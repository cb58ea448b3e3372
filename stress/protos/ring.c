/* protos/ring.c - core's shared-memory SPSC ring (ring.h) as the stress protocol "ring".
 *
 * create() makes the region in the supervisor: a POSIX shm object named after the run id
 * (--opt backing=shm, the default, which also exercises the naming and unlinking that the leak
 * check watches) or a sealed memfd (--opt backing=memfd). Each endpoint opens its side with
 * ipcp_ring_attach_mem() on the supervisor's mapping, which forked workers inherit and threads
 * share: one mapping, so ThreadSanitizer sees both sides at the same addresses. One producer and
 * one consumer: other counts are refused with -EINVAL. The --capacity hint becomes the data area
 * (rounded up to a power of two); messages larger than the ring travel in chunks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipcproof/plugin.h"
#include "ipcproof/ring.h"

struct ring_ctx {
    struct ipcp_ring owner; /* IPCP_RING_NONE: holds the mapping (and the name) */
    struct ipcp_ring_cfg cfg;
    void *mem;
    size_t size;
};

static int ring_create(const struct ipcp_chan_cfg *cfg, void **out)
{
    if (cfg->producers != 1 || cfg->consumers != 1) return -EINVAL;
    if (cfg->max_msg > IPCP_RING_MAX_MSG_LIMIT) return -EMSGSIZE;
    struct ring_ctx *x = calloc(1, sizeof(*x));
    if (x == NULL) return -ENOMEM;
    size_t cap = IPCP_RING_MIN_CAP;
    size_t want = cfg->capacity ? cfg->capacity : IPCP_RING_DEFAULT_CAP;
    if (want > IPCP_RING_MAX_CAP) want = IPCP_RING_MAX_CAP;
    while (cap < want)
        cap <<= 1;
    x->cfg.capacity = cap;
    x->cfg.max_msg = cfg->max_msg;
    int r = strstr(cfg->options, "backing=memfd") != NULL
                ? ipcp_ring_create_memfd(&x->owner, IPCP_RING_NONE, &x->cfg)
                : ipcp_ring_create(&x->owner, cfg->run_id, IPCP_RING_NONE, &x->cfg);
    if (r < 0) {
        free(x);
        return r;
    }
    x->mem = ipcp_ring_mem(&x->owner, &x->size);
    *out = x;
    return 0;
}

static int ring_open(void *ctx, int role, uint32_t index, void **ep)
{
    (void)index;
    struct ring_ctx *x = ctx;
    struct ipcp_ring *r = calloc(1, sizeof(*r));
    if (r == NULL) return -ENOMEM;
    int rc = ipcp_ring_attach_mem(
        r, x->mem, x->size, role == IPCP_ROLE_PRODUCER ? IPCP_RING_PRODUCER : IPCP_RING_CONSUMER,
        &x->cfg);
    if (rc < 0) {
        free(r);
        return rc;
    }
    *ep = r;
    return 0;
}

static int ring_send(void *ep, const void *msg, size_t len, int timeout_ms)
{
    return ipcp_ring_send(ep, msg, len, timeout_ms);
}

static ssize_t ring_recv(void *ep, void *buf, size_t cap, int timeout_ms)
{
    return ipcp_ring_recv(ep, buf, cap, timeout_ms);
}

static void ring_close(void *ep)
{
    ipcp_ring_close(ep);
    free(ep);
}

static void ring_destroy(void *ctx)
{
    struct ring_ctx *x = ctx;
    ipcp_ring_close(&x->owner);
    free(x);
}

const struct ipcp_channel_ops st_ring_ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "ring",
    .flags = IPCP_CHAN_FIFO,
    .create = ring_create,
    .open = ring_open,
    .send = ring_send,
    .recv = ring_recv,
    .close = ring_close,
    .destroy = ring_destroy,
};
