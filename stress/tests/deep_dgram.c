/* deep_dgram.c - a correct channel with a deep buffer: every endpoint shares one unix datagram
 * socketpair (one message = one datagram, atomic and reliable on Linux), producers send on
 * sv[0] with a 4 MiB send buffer, consumers receive on sv[1].
 *
 * With a slow consumer the producers fill the buffer, and a unix socket is writable again only
 * once half of it has drained: a producer's send() then times out for a few hundred milliseconds
 * while the consumer keeps receiving. That is back-pressure, not a channel that stopped
 * accepting: ipcproof must not call it starvation. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ipcproof/plugin.h>

struct chan {
    int sv[2];
};

static int create(const struct ipcp_chan_cfg *cfg, void **ctx)
{
    if (cfg->max_msg > 200000) return -EMSGSIZE; /* the datagram size limit */
    struct chan *c = calloc(1, sizeof(*c));
    if (c == NULL) return -ENOMEM;
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, c->sv) < 0) {
        int e = errno;
        free(c);
        return -e;
    }
    int sz = 4 << 20;
    setsockopt(c->sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    setsockopt(c->sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    *ctx = c;
    return 0;
}

static int open_ep(void *ctx, int role, uint32_t index, void **ep)
{
    (void)role;
    (void)index;
    *ep = ctx;
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int wait_fd(int fd, short events, int64_t deadline)
{
    int left = deadline < 0 ? -1 : (int)(deadline - now_ms());
    if (deadline >= 0 && left <= 0) return -ETIMEDOUT;
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, left);
    if (r < 0 && errno != EINTR) return -errno;
    return r == 0 ? -ETIMEDOUT : 0;
}

static int send_msg(void *ep, const void *msg, size_t len, int timeout_ms)
{
    struct chan *c = ep;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        ssize_t r = send(c->sv[0], msg, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r == (ssize_t)len) return 0;
        if (r >= 0) return -EIO;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != ENOBUFS) return -errno;
        int w = wait_fd(c->sv[0], POLLOUT, deadline);
        if (w < 0) return w;
    }
}

static ssize_t recv_msg(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct chan *c = ep;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        ssize_t r = recv(c->sv[1], buf, cap, MSG_DONTWAIT | MSG_TRUNC);
        if (r > (ssize_t)cap) return -EMSGSIZE;
        if (r >= 0) return r;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return -errno;
        int w = wait_fd(c->sv[1], POLLIN, deadline);
        if (w < 0) return w;
    }
}

static void close_ep(void *ep)
{
    (void)ep;
}

static void destroy(void *ctx)
{
    struct chan *c = ctx;
    close(c->sv[0]);
    close(c->sv[1]);
    free(c);
}

static const struct ipcp_channel_ops ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "fixture-deep-dgram",
    .flags = IPCP_CHAN_FIFO,
    .create = create,
    .open = open_ep,
    .send = send_msg,
    .recv = recv_msg,
    .close = close_ep,
    .destroy = destroy,
};

const struct ipcp_channel_ops *ipcp_plugin_channel(void)
{
    return &ops;
}
