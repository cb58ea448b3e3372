/* broken_pipe_bigwrites.c - DELIBERATELY BROKEN: several writers on one pipe, messages above
 * PIPE_BUF.
 *
 * All producers write their length-prefixed messages into one shared pipe, each with a correct
 * loop that handles EINTR, EAGAIN and short writes. The bug is the design: POSIX makes a pipe
 * write atomic only up to PIPE_BUF (4096 bytes on Linux); a larger write can be split, and the
 * pieces of two writers interleave. The reader then takes the middle of one message for the
 * length of the next. `ipcproof validate` finds it in the "sizes above PIPE_BUF" case (`torn`):
 *     ipcproof stress --plugin ./broken_pipe_bigwrites.so --producers 4 \
 *         --min-size 4097 --max-size 32768 --duration 2
 * With messages of at most PIPE_BUF bytes it passes, which is what makes the bug survive review.
 * Fixes: one pipe per writer (good_pipe.c), or fragments of at most PIPE_BUF bytes that carry a
 * writer id and are reassembled per writer (core's fdchan IPCP_FDCHAN_MULTIWRITER). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, F_SETPIPE_SZ, MAP_ANONYMOUS */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <ipcproof/plugin.h>

struct ctx {
    int fds[2];
    size_t max_msg;
};

struct ep {
    struct ctx *x;
    uint8_t *buf; /* consumer: partial message */
    size_t have, need;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(int64_t deadline)
{
    if (deadline < 0) return -1;
    int64_t l = deadline - now_ms();
    return l <= 0 ? 0 : (int)l;
}

static int create(const struct ipcp_chan_cfg *cfg, void **out)
{
    if (cfg->consumers != 1) return -EINVAL; /* one reader */
    struct ctx *x = calloc(1, sizeof(*x));
    if (x == NULL) return -ENOMEM;
    if (pipe2(x->fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        int e = errno;
        free(x);
        return -e;
    }
    x->max_msg = cfg->max_msg;
    *out = x;
    return 0;
}

static void destroy(void *ctx)
{
    struct ctx *x = ctx;
    close(x->fds[0]);
    close(x->fds[1]);
    free(x);
}

static int open_ep(void *ctx, int role, uint32_t index, void **out)
{
    (void)index;
    struct ctx *x = ctx;
    struct ep *e = calloc(1, sizeof(*e));
    if (e == NULL) return -ENOMEM;
    e->x = x;
    e->need = 4;
    if (role == IPCP_ROLE_CONSUMER && (e->buf = malloc(4 + x->max_msg)) == NULL) {
        free(e);
        return -ENOMEM;
    }
    *out = e;
    return 0;
}

static int send_msg(void *ep, const void *msg, size_t len, int timeout_ms)
{
    struct ep *e = ep;
    int fd = e->x->fds[1];
    uint32_t l32 = (uint32_t)len;
    struct iovec iov[2] = {{&l32, 4}, {(void *)msg, len}};
    size_t total = 4 + len, done = 0;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    while (done < total) {
        /* BUG (by design): with several writers, this writev is not atomic above PIPE_BUF */
        ssize_t n = writev(fd, iov, 2);
        if (n > 0) {
            done += (size_t)n;
            for (int i = 0; i < 2 && n > 0; i++) {
                size_t k = (size_t)n < iov[i].iov_len ? (size_t)n : iov[i].iov_len;
                iov[i].iov_base = (uint8_t *)iov[i].iov_base + k;
                iov[i].iov_len -= k;
                n -= (ssize_t)k;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN) return -errno;
        int left = left_ms(deadline);
        if (left == 0 && done == 0) return -ETIMEDOUT;
        if (left == 0 && now_ms() > deadline + 1000) return -EIO; /* stuck half-way: broken */
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        poll(&p, 1, left == 0 ? 100 : left); /* once started, finish: half a message is worse */
    }
    return 0;
}

static ssize_t recv_msg(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct ep *e = ep;
    int fd = e->x->fds[0];
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        while (e->have < e->need) {
            ssize_t n = read(fd, e->buf + e->have, e->need - e->have);
            if (n > 0) {
                e->have += (size_t)n;
                if (e->have == 4 && e->need == 4) {
                    uint32_t len;
                    memcpy(&len, e->buf, 4);
                    if (len > e->x->max_msg) { /* garbage: hand out what we have */
                        e->have = e->need = 4;
                        return -EMSGSIZE;
                    }
                    e->need = 4 + len;
                }
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n == 0) return -EPIPE;
            if (errno != EAGAIN) return -errno;
            int left = left_ms(deadline);
            if (left == 0) return -ETIMEDOUT;
            struct pollfd p = {.fd = fd, .events = POLLIN};
            poll(&p, 1, left);
        }
        size_t len = e->need - 4;
        e->have = 0;
        e->need = 4;
        if (len > cap) return -EMSGSIZE;
        memcpy(buf, e->buf + 4, len);
        return (ssize_t)len;
    }
}

static void close_ep(void *ep)
{
    struct ep *e = ep;
    free(e->buf);
    free(e);
}

static const struct ipcp_channel_ops ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "example-broken-pipe-bigwrites",
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
