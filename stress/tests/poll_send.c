/* poll_send.c - a correct channel that looks careless to a fault injector: every endpoint shares
 * one unix stream socketpair with an 8 MiB send buffer; a producer waits in poll() until the
 * socket is writable (a unix socket is writable while at most a quarter of its buffer is in use)
 * and then makes one blocking send() of the record (4-byte length, payload of at most 1024
 * bytes), treating EINTR from it as fatal. It installs a signal handler without SA_RESTART, as a
 * program with timers does, so a signal could interrupt a call of it that sleeps - but a send
 * with that much room does not sleep, and no kernel interrupts it. One producer: records never
 * interleave.
 *
 * `--fault short-io` must not fail it: it injects EINTR only where the call would sleep. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ipcproof/plugin.h>

#define MAX_MSG 1024

struct chan {
    int sv[2];
};

static void on_signal(int sig)
{
    (void)sig;
}

static int create(const struct ipcp_chan_cfg *cfg, void **ctx)
{
    if (cfg->max_msg > MAX_MSG) return -EMSGSIZE;
    if (cfg->producers != 1 || cfg->consumers != 1) return -EINVAL;
    struct chan *c = calloc(1, sizeof(*c));
    if (c == NULL) return -ENOMEM;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->sv) < 0) {
        int e = errno;
        free(c);
        return -e;
    }
    int sz = 4 << 20; /* the kernel doubles it */
    setsockopt(c->sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    *ctx = c;
    return 0;
}

static int open_ep(void *ctx, int role, uint32_t index, void **ep)
{
    (void)role;
    (void)index;
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART */
    if (sigaction(SIGUSR2, &sa, NULL) < 0) return -errno;
    *ep = ctx;
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* 0 once fd is ready for events, -ETIMEDOUT, -errno; EINTR retried until the deadline. */
static int wait_fd(int fd, short events, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        int left = deadline < 0 ? -1 : (int)(deadline - now_ms());
        if (deadline >= 0 && left < 0) left = 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left);
        if (r > 0) return 0;
        if (r == 0) return -ETIMEDOUT;
        if (errno != EINTR) return -errno;
    }
}

static int send_msg(void *ep, const void *msg, size_t len, int timeout_ms)
{
    struct chan *c = ep;
    uint8_t rec[4 + MAX_MSG];
    uint32_t n = (uint32_t)len;
    memcpy(rec, &n, 4);
    memcpy(rec + 4, msg, len);
    int w = wait_fd(c->sv[0], POLLOUT, timeout_ms);
    if (w < 0) return w;
    /* writable: room for far more than one record, so this send does not sleep */
    ssize_t r = send(c->sv[0], rec, 4 + len, MSG_NOSIGNAL);
    if (r < 0) return -errno; /* EINTR included: it cannot happen here */
    return r == (ssize_t)(4 + len) ? 0 : -EIO;
}

/* Reads exactly n bytes: the record is in the socket whole once its first byte is. */
static int read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r > 0) {
            got += (size_t)r;
        } else if (r == 0) {
            return -EPIPE;
        } else if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

static ssize_t recv_msg(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct chan *c = ep;
    int w = wait_fd(c->sv[1], POLLIN, timeout_ms);
    if (w < 0) return w;
    uint32_t n;
    int r = read_full(c->sv[1], &n, 4);
    if (r == 0 && (n > MAX_MSG || n > cap)) r = -EBADMSG;
    if (r == 0) r = read_full(c->sv[1], buf, n);
    return r < 0 ? r : (ssize_t)n;
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
    .name = "fixture-poll-send",
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
