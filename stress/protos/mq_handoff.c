/* protos/mq_handoff.c - core's shared-memory READY/OK handoff (handoff.h) as the stress
 * protocol "mq-handoff": data in shm slots, READY and OK messages over two POSIX queues.
 *
 * One sender and one receiver (other counts: -EINVAL). Slots are max_msg bytes; --opt slots=N
 * sets how many messages are in flight (default 4; at most the IPC namespace's mq msg_max,
 * which is 10 in the private namespace `ipcproof stress` runs in); --opt checksum=0 turns off
 * the XXH3 checksum of every message (IPCP_HANDOFF_NO_CHECKSUM). Objects are named after the
 * run id; create() and destroy() run in the supervisor, each side opens its endpoint in its
 * worker. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipcproof/handoff.h"
#include "ipcproof/plugin.h"

static int ho_create(const struct ipcp_chan_cfg *cfg, void **ctx)
{
    if (cfg->producers != 1 || cfg->consumers != 1) return -EINVAL;
    if (cfg->max_msg > IPCP_HANDOFF_MAX_SLOT) return -EMSGSIZE;
    const char *s = strstr(cfg->options, "slots=");
    const char *k = strstr(cfg->options, "checksum=");
    struct ipcp_handoff_cfg c = {
        .stem = cfg->run_id,
        .nslots = s ? (uint32_t)strtoul(s + 6, NULL, 10) : 4,
        .slot_size = cfg->max_msg,
        .flags = k && k[9] == '0' ? IPCP_HANDOFF_NO_CHECKSUM : 0,
    };
    struct ipcp_handoff *ho;
    int r = ipcp_handoff_create(&c, &ho);
    if (r < 0) return r;
    *ctx = ho;
    return 0;
}

static int ho_open(void *ctx, int role, uint32_t index, void **ep)
{
    (void)index;
    return ipcp_handoff_open(
        ctx, role == IPCP_ROLE_PRODUCER ? IPCP_HANDOFF_SENDER : IPCP_HANDOFF_RECEIVER,
        (struct ipcp_handoff_ep **)ep);
}

static int ho_send(void *ep, const void *msg, size_t len, int timeout_ms)
{
    return ipcp_handoff_send(ep, msg, len, timeout_ms);
}

static ssize_t ho_recv(void *ep, void *buf, size_t cap, int timeout_ms)
{
    return ipcp_handoff_recv(ep, buf, cap, timeout_ms);
}

static void ho_close(void *ep)
{
    ipcp_handoff_close(ep);
}

static void ho_destroy(void *ctx)
{
    ipcp_handoff_destroy(ctx);
}

const struct ipcp_channel_ops st_mq_handoff_ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "mq-handoff",
    .flags = IPCP_CHAN_FIFO,
    .create = ho_create,
    .open = ho_open,
    .send = ho_send,
    .recv = ho_recv,
    .close = ho_close,
    .destroy = ho_destroy,
};
