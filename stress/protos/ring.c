/* protos/ring.c - core's shared-memory SPSC ring (ring.h) as the stress protocols "ring" and
 * "ring-sysv".
 *
 * create() makes the region in the supervisor: a POSIX shm object named after the run id
 * (--opt backing=shm, the default, which also exercises the naming and unlinking that the leak
 * check watches) or a sealed memfd (--opt backing=memfd). Each endpoint opens its side with
 * ipcp_ring_attach_mem() on the supervisor's mapping, which forked workers inherit and threads
 * share: one mapping, so ThreadSanitizer sees both sides at the same addresses. One producer and
 * one consumer: other counts are refused with -EINVAL. The --capacity hint becomes the data area
 * (rounded up to a power of two); messages larger than the ring travel in chunks.
 *
 * "ring-sysv" is the same ring over a System V segment (IPC_PRIVATE) that the supervisor creates.
 * An endpoint in another process (process mode) attaches it by id with ipcp_ring_attach_sysv(),
 * as an unrelated peer would: the second side's attach marks the segment removed (IPC_RMID), so
 * nothing outlives the run even if every process is SIGKILLed. Endpoints in the supervisor's own
 * process (thread mode, --mode sched) share its mapping, so that ThreadSanitizer and the
 * scheduler see both sides at the same addresses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <unistd.h>

#include "ipcproof/plugin.h"
#include "ipcproof/ring.h"

struct ring_ctx {
    struct ipcp_ring owner; /* IPCP_RING_NONE: holds the mapping (and the name) */
    struct ipcp_ring_cfg cfg;
    void *mem;
    size_t size;
    int shmid;    /* ring-sysv: the segment, else -1 */
    pid_t holder; /* the process that holds `owner` */
};

enum { BACKING_SHM, BACKING_MEMFD, BACKING_SYSV };

static int ring_make(const struct ipcp_chan_cfg *cfg, int backing, void **out)
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
    int r = backing == BACKING_SYSV
                ? ipcp_ring_create_sysv(&x->owner, IPC_PRIVATE, IPCP_RING_NONE, &x->cfg)
            : backing == BACKING_MEMFD
                ? ipcp_ring_create_memfd(&x->owner, IPCP_RING_NONE, &x->cfg)
                : ipcp_ring_create(&x->owner, cfg->run_id, IPCP_RING_NONE, &x->cfg);
    if (r < 0) {
        free(x);
        return r;
    }
    x->mem = ipcp_ring_mem(&x->owner, &x->size);
    x->shmid = ipcp_ring_shmid(&x->owner);
    x->holder = getpid();
    *out = x;
    return 0;
}

static int ring_create(const struct ipcp_chan_cfg *cfg, void **out)
{
    return ring_make(
        cfg, strstr(cfg->options, "backing=memfd") != NULL ? BACKING_MEMFD : BACKING_SHM, out);
}

static int ring_sysv_create(const struct ipcp_chan_cfg *cfg, void **out)
{
    return ring_make(cfg, BACKING_SYSV, out);
}

static int ring_open(void *ctx, int role, uint32_t index, void **ep)
{
    (void)index;
    struct ring_ctx *x = ctx;
    struct ipcp_ring *r = calloc(1, sizeof(*r));
    if (r == NULL) return -ENOMEM;
    int side = role == IPCP_ROLE_PRODUCER ? IPCP_RING_PRODUCER : IPCP_RING_CONSUMER;
    int rc = x->shmid >= 0 && getpid() != x->holder
                 ? ipcp_ring_attach_sysv(r, x->shmid, side, &x->cfg)
                 : ipcp_ring_attach_mem(r, x->mem, x->size, side, &x->cfg);
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

const struct ipcp_channel_ops st_ring_sysv_ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "ring-sysv",
    .flags = IPCP_CHAN_FIFO,
    .create = ring_sysv_create,
    .open = ring_open,
    .send = ring_send,
    .recv = ring_recv,
    .close = ring_close,
    .destroy = ring_destroy,
};
