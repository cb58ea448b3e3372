/* protos/sysv_msg.c - core's System V message-queue channel (sysvmsg.h) as the stress protocol
 * "sysv-msg": frames over msgsnd/msgrcv, one message type per producer, chunked above msgmax.
 *
 * Any number of producers and consumers (up to IPCP_SYSVMSG_MAX_EP each): consumer j owns a
 * queue, producer i sends to consumer i % C. The --capacity hint becomes each queue's
 * msg_qbytes when it is at most /proc/sys/kernel/msgmnb (16384 in the private IPC namespace the
 * run has); --opt qbytes=N asks for N bytes whatever the limit (an unprivileged run then fails
 * with IPCP_E_MSGMNB). create() and destroy() run in the supervisor; the queues are private
 * (IPC_PRIVATE) and removed by destroy(). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipcproof/plugin.h"
#include "ipcproof/sysvmsg.h"

static int sm_create(const struct ipcp_chan_cfg *cfg, void **ctx)
{
    long msgmnb;
    ipcp_sysvmsg_limits(NULL, &msgmnb, NULL);
    const char *o = strstr(cfg->options, "qbytes=");
    struct ipcp_sysvmsg_cfg c = {
        .producers = cfg->producers,
        .consumers = cfg->consumers,
        .max_msg = cfg->max_msg ? cfg->max_msg : 1,
        .qbytes = o                                        ? strtoul(o + 7, NULL, 10)
                  : cfg->capacity <= (unsigned long)msgmnb ? cfg->capacity
                                                           : 0,
    };
    return ipcp_sysvmsg_create(&c, (struct ipcp_sysvmsg **)ctx);
}

static int sm_open(void *ctx, int role, uint32_t index, void **ep)
{
    return ipcp_sysvmsg_open(
        ctx, role == IPCP_ROLE_PRODUCER ? IPCP_SYSVMSG_PRODUCER : IPCP_SYSVMSG_CONSUMER, index,
        (struct ipcp_sysvmsg_ep **)ep);
}

static int sm_send(void *ep, const void *msg, size_t len, int timeout_ms)
{
    return ipcp_sysvmsg_send(ep, msg, len, timeout_ms);
}

static ssize_t sm_recv(void *ep, void *buf, size_t cap, int timeout_ms)
{
    return ipcp_sysvmsg_recv(ep, buf, cap, timeout_ms);
}

static void sm_close(void *ep)
{
    ipcp_sysvmsg_close(ep);
}

static void sm_destroy(void *ctx)
{
    ipcp_sysvmsg_destroy(ctx);
}

const struct ipcp_channel_ops st_sysv_msg_ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "sysv-msg",
    .flags = IPCP_CHAN_FIFO,
    .create = sm_create,
    .open = sm_open,
    .send = sm_send,
    .recv = sm_recv,
    .close = sm_close,
    .destroy = sm_destroy,
};
