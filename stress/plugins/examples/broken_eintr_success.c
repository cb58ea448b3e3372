/* broken_eintr_success.c - DELIBERATELY BROKEN: EINTR treated as success.
 *
 * good_pipe.c's design (a pipe per producer, non-blocking fds, poll() for every wait), one
 * consumer, with a mistake seen in real code: when poll() is interrupted by a signal, the helper
 * that waits for the fd decides the operation is "done":
 *
 *     if (poll(...) < 0) return errno == EINTR ? 0 : -errno;   // "interrupted: fine"
 *
 * Without signals nothing happens, so ordinary tests pass. With a signal arriving while a
 * producer waits for room in a full pipe, send() returns 0 for a message it did not (completely)
 * write: `loss`, or `torn` when half of it was written; with a signal arriving while the consumer
 * waits for data, recv() returns 0 bytes as if an empty message had come: `torn`.
 *     ipcproof stress --plugin ./broken_eintr_success.so --fault signals --duration 2
 * The fix: retry poll() after EINTR with the time that is left (good_pipe.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, F_SETPIPE_SZ, MAP_ANONYMOUS */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ipcproof/plugin.h>

struct ctx {
    uint32_t producers;
    size_t max_msg;
    int (*fds)[2]; /* one pipe per producer */
};

struct ep {
    struct ctx *x;
    uint32_t index;
    uint8_t *buf;
    size_t have, need;
    uint32_t from; /* consumer: pipe of the message in progress, or UINT32_MAX */
    struct pollfd *pfd;
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

/* Waits for the fds; 1 ready, 0 (see below), -ETIMEDOUT, -errno. */
static int wait_fds(struct pollfd *p, nfds_t n, int64_t deadline)
{
    int left = left_ms(deadline);
    if (left == 0) return -ETIMEDOUT;
    int r = poll(p, n, left);
    if (r < 0) return errno == EINTR ? 0 : -errno; /* BUG: "interrupted: the I/O is done" */
    return r == 0 ? -ETIMEDOUT : 1;
}

static void destroy(void *ctx);

static int create(const struct ipcp_chan_cfg *cfg, void **out)
{
    if (cfg->consumers != 1) return -EINVAL;
    struct ctx *x = calloc(1, sizeof(*x));
    if (x == NULL) return -ENOMEM;
    x->producers = cfg->producers;
    x->max_msg = cfg->max_msg;
    x->fds = malloc(sizeof(*x->fds) * cfg->producers);
    if (x->fds == NULL) {
        free(x);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < cfg->producers; i++)
        x->fds[i][0] = x->fds[i][1] = -1;
    for (uint32_t i = 0; i < cfg->producers; i++)
        if (pipe2(x->fds[i], O_CLOEXEC | O_NONBLOCK) < 0) {
            int e = errno;
            destroy(x);
            return -e;
        }
    *out = x;
    return 0;
}

static void destroy(void *ctx)
{
    struct ctx *x = ctx;
    for (uint32_t i = 0; i < x->producers; i++) {
        if (x->fds[i][0] >= 0) close(x->fds[i][0]);
        if (x->fds[i][1] >= 0) close(x->fds[i][1]);
    }
    free(x->fds);
    free(x);
}

static void close_ep(void *ep)
{
    struct ep *e = ep;
    free(e->buf);
    free(e->pfd);
    free(e);
}

static int open_ep(void *ctx, int role, uint32_t index, void **out)
{
    struct ctx *x = ctx;
    struct ep *e = calloc(1, sizeof(*e));
    if (e == NULL) return -ENOMEM;
    e->x = x;
    e->index = index;
    e->need = 4;
    e->from = UINT32_MAX;
    if (role == IPCP_ROLE_CONSUMER) {
        e->buf = malloc(4 + x->max_msg);
        e->pfd = calloc(x->producers, sizeof(*e->pfd));
        if (e->buf == NULL || e->pfd == NULL) {
            close_ep(e);
            return -ENOMEM;
        }
        for (uint32_t i = 0; i < x->producers; i++) {
            e->pfd[i].fd = x->fds[i][0];
            e->pfd[i].events = POLLIN;
        }
    }
    *out = e;
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n, int64_t deadline, int *started)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            *started = 1;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno != EAGAIN) return -errno;
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        /* once started, finish (half a message would break the stream), but give up on a
         * reader that does not read for a second past the deadline */
        int64_t until = *started ? (deadline < 0 ? -1 : deadline + 1000) : deadline;
        int r = wait_fds(&pf, 1, until);
        if (r == 0) return 0; /* (the bug strikes here) */
        if (r == -ETIMEDOUT && *started) return -EIO;
        if (r < 0) return r;
    }
    return 0;
}

static int send_msg(void *ep, const void *msg, size_t len, int timeout_ms)
{
    struct ep *e = ep;
    int fd = e->x->fds[e->index][1];
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    uint32_t l32 = (uint32_t)len;
    int started = 0;
    int r = write_all(fd, (const uint8_t *)&l32, 4, deadline, &started);
    if (r == 0) r = write_all(fd, msg, len, deadline, &started);
    return r;
}

static ssize_t recv_msg(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct ep *e = ep;
    struct ctx *x = e->x;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        /* continue the message in progress, else look for a pipe with data */
        for (uint32_t k = 0; k < x->producers; k++) {
            uint32_t p = e->from != UINT32_MAX ? e->from : k;
            ssize_t n = read(x->fds[p][0], e->buf + e->have, e->need - e->have);
            if (n < 0 && errno != EAGAIN && errno != EINTR) return -errno;
            if (n <= 0) {
                if (e->from != UINT32_MAX) break;
                continue;
            }
            e->from = p;
            e->have += (size_t)n;
            if (e->have == 4 && e->need == 4) {
                uint32_t len;
                memcpy(&len, e->buf, 4);
                if (len > x->max_msg) return -EBADMSG;
                e->need = 4 + len;
            }
            if (e->have < e->need) {
                k--; /* same pipe again */
                continue;
            }
            size_t len = e->need - 4;
            e->have = 0;
            e->need = 4;
            e->from = UINT32_MAX;
            if (len > cap) return -EMSGSIZE;
            memcpy(buf, e->buf + 4, len);
            return (ssize_t)len;
        }
        int r = wait_fds(e->from != UINT32_MAX ? &e->pfd[e->from] : e->pfd,
                         e->from != UINT32_MAX ? 1 : x->producers, deadline);
        if (r == 0) return 0; /* (and here: an "empty message") */
        if (r < 0) return r;
    }
}

static const struct ipcp_channel_ops ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "example-broken-eintr-success",
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
