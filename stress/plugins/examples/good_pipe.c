/* good_pipe.c - a correct channel plugin: length-prefixed messages over pipes.
 *
 * The example of docs/plugins.md. Build and validate it with:
 *     cc -shared -fPIC -O2 -I<ipcproof>/include good_pipe.c -o good_pipe.so
 *     ipcproof validate --plugin ./good_pipe.so
 *
 * Design: one pipe per (producer, consumer) pair, so every pipe has exactly one writer and one
 * reader and a message never has to be atomic on the pipe; a producer hands its messages to the
 * consumers in turn. Each message is a 4-byte length followed by the bytes. What makes it correct
 * (each point is a bug class `ipcproof validate` catches in the broken examples):
 *  - every fd is non-blocking and every wait is a poll() bounded by the caller's timeout;
 *  - EINTR is retried (with the time left), never taken as success;
 *  - short reads and writes are continued: a message is complete only when all bytes moved;
 *  - "the whole message or nothing": once part of a message is in the pipe, send() cannot report
 *    a failure any more (the caller would send it again, and the reader would see half a message
 *    followed by the whole one). If the deadline passes half-way, the rest is kept in the
 *    endpoint, written first by the next send() or by close(), and send() returns 0;
 *  - a reader keeps a partial message between recv() calls, per pipe, instead of dropping it;
 *  - a length above the configured maximum is refused before anything is read into a buffer.
 * The per-producer order is kept (each pipe is FIFO), so the plugin sets IPCP_CHAN_FIFO. */
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

#define HDR 4u /* little-endian uint32 length */

struct ctx {
    uint32_t producers, consumers;
    size_t max_msg;
    int (*fds)[2]; /* pipe of producer p to consumer c at [p * consumers + c] */
};

struct inbuf { /* a consumer's partial message on one pipe */
    uint8_t *buf;
    size_t have, need;
};

struct ep {
    struct ctx *x;
    int role;
    uint32_t index;
    uint32_t next; /* producer: consumer of the next message; consumer: pipe to look at first */
    /* producer: the unwritten tail of a message accepted after its deadline */
    uint8_t *tail;
    size_t tail_len, tail_off;
    int tail_fd;
    /* consumer: one partial message per producer */
    struct inbuf *in;
    struct pollfd *pfd;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline for poll(): -1 = no deadline, 0 = passed. */
static int left_ms(int64_t deadline)
{
    if (deadline < 0) return -1;
    int64_t l = deadline - now_ms();
    return l <= 0 ? 0 : l > 60000 ? 60000 : (int)l;
}

static void destroy(void *ctx);

static int create(const struct ipcp_chan_cfg *cfg, void **out)
{
    if (cfg->max_msg > UINT32_MAX) return -EMSGSIZE;
    struct ctx *x = calloc(1, sizeof(*x));
    if (x == NULL) return -ENOMEM;
    x->producers = cfg->producers;
    x->consumers = cfg->consumers;
    x->max_msg = cfg->max_msg;
    uint32_t n = cfg->producers * cfg->consumers;
    x->fds = malloc(sizeof(*x->fds) * n);
    if (x->fds == NULL) {
        free(x);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        x->fds[i][0] = x->fds[i][1] = -1;
    for (uint32_t i = 0; i < n; i++) {
        if (pipe2(x->fds[i], O_CLOEXEC | O_NONBLOCK) < 0) {
            int e = errno;
            destroy(x);
            return -e;
        }
        if (cfg->capacity) fcntl(x->fds[i][1], F_SETPIPE_SZ, (int)cfg->capacity); /* a hint */
    }
    *out = x;
    return 0;
}

static void destroy(void *ctx)
{
    struct ctx *x = ctx;
    for (uint32_t i = 0; i < x->producers * x->consumers; i++) {
        if (x->fds[i][0] >= 0) close(x->fds[i][0]);
        if (x->fds[i][1] >= 0) close(x->fds[i][1]);
    }
    free(x->fds);
    free(x);
}

static void close_ep(void *ep);

static int open_ep(void *ctx, int role, uint32_t index, void **out)
{
    struct ctx *x = ctx;
    struct ep *e = calloc(1, sizeof(*e));
    if (e == NULL) return -ENOMEM;
    e->x = x;
    e->role = role;
    e->index = index;
    if (role == IPCP_ROLE_CONSUMER) {
        e->in = calloc(x->producers, sizeof(*e->in));
        e->pfd = calloc(x->producers, sizeof(*e->pfd));
        if (e->in == NULL || e->pfd == NULL) {
            close_ep(e);
            return -ENOMEM;
        }
        for (uint32_t p = 0; p < x->producers; p++) {
            e->in[p].need = HDR;
            e->in[p].buf = malloc(HDR + x->max_msg);
            if (e->in[p].buf == NULL) {
                close_ep(e);
                return -ENOMEM;
            }
            e->pfd[p].fd = x->fds[p * x->consumers + index][0];
            e->pfd[p].events = POLLIN;
        }
    }
    *out = e;
    return 0;
}

/* Writes iov until done. Returns bytes written before the deadline passed (all of them on
 * success), or -errno. */
static ssize_t write_until(int fd, struct iovec *iov, int cnt, size_t total, int64_t deadline)
{
    size_t done = 0;
    while (done < total) {
        ssize_t n = writev(fd, iov, cnt);
        if (n > 0) {
            done += (size_t)n;
            for (int i = 0; i < cnt && n > 0; i++) { /* skip what was written */
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
        if (left == 0) break;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, left) < 0 && errno != EINTR) return -errno;
    }
    return (ssize_t)done;
}

/* Writes the tail of an earlier message. 0 when nothing is left, -ETIMEDOUT, or -errno. */
static int flush_tail(struct ep *e, int64_t deadline)
{
    if (e->tail_len == 0) return 0;
    struct iovec iov = {e->tail + e->tail_off, e->tail_len - e->tail_off};
    ssize_t n = write_until(e->tail_fd, &iov, 1, iov.iov_len, deadline);
    if (n < 0) return (int)n;
    e->tail_off += (size_t)n;
    if (e->tail_off < e->tail_len) return -ETIMEDOUT;
    free(e->tail);
    e->tail = NULL;
    e->tail_len = e->tail_off = 0;
    return 0;
}

static int send_msg(void *ep, const void *msg, size_t len, int timeout_ms)
{
    struct ep *e = ep;
    struct ctx *x = e->x;
    if (len > x->max_msg) return -EMSGSIZE;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    int r = flush_tail(e, deadline); /* nothing of this message is written before that */
    if (r < 0) return r;
    int fd = x->fds[e->index * x->consumers + e->next][1];
    uint8_t hdr[HDR] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                        (uint8_t)(len >> 24)};
    struct iovec iov[2] = {{hdr, HDR}, {(void *)msg, len}};
    size_t total = HDR + len;
    ssize_t n = write_until(fd, iov, 2, total, deadline);
    if (n < 0) return (int)n;
    if (n == 0) return -ETIMEDOUT; /* nothing written: the caller may send it again */
    e->next = (e->next + 1) % x->consumers;
    if ((size_t)n == total) return 0;
    /* part of it is in the pipe: it is ours to finish (see the top of the file) */
    e->tail = malloc(total - (size_t)n);
    if (e->tail == NULL) return -ENOMEM; /* the stream is broken now; nothing better to do */
    e->tail_len = total - (size_t)n;
    e->tail_off = 0;
    e->tail_fd = fd;
    size_t k = 0;
    for (int i = 0; i < 2; i++) { /* write_until advanced the iovecs past the written part */
        memcpy(e->tail + k, iov[i].iov_base, iov[i].iov_len);
        k += iov[i].iov_len;
    }
    return 0;
}

/* Reads what is available into one partial message. 1: complete; 0: needs more; -errno. */
static int fill(struct inbuf *in, int fd, size_t max_msg)
{
    while (in->have < in->need) {
        ssize_t n = read(fd, in->buf + in->have, in->need - in->have);
        if (n > 0) {
            in->have += (size_t)n;
            if (in->have == HDR && in->need == HDR) {
                uint32_t len = (uint32_t)in->buf[0] | (uint32_t)in->buf[1] << 8 |
                               (uint32_t)in->buf[2] << 16 | (uint32_t)in->buf[3] << 24;
                if (len > max_msg) return -EBADMSG; /* never trust a length */
                in->need = HDR + len;
            }
            continue;
        }
        if (n == 0) return in->have ? -EPIPE : 0; /* writer gone */
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return 0;
        return -errno;
    }
    return 1;
}

static ssize_t recv_msg(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct ep *e = ep;
    struct ctx *x = e->x;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        for (uint32_t k = 0; k < x->producers; k++) {
            uint32_t p = (e->next + k) % x->producers; /* fairness: start after the last one */
            struct inbuf *in = &e->in[p];
            int r = fill(in, e->pfd[p].fd, x->max_msg);
            if (r < 0) return r;
            if (r == 0) continue;
            size_t len = in->need - HDR;
            if (len > cap) return -EMSGSIZE; /* stays queued for a larger buffer */
            memcpy(buf, in->buf + HDR, len);
            in->have = 0;
            in->need = HDR;
            e->next = p + 1;
            return (ssize_t)len;
        }
        int left = left_ms(deadline);
        if (left == 0) return -ETIMEDOUT;
        if (poll(e->pfd, x->producers, left) < 0 && errno != EINTR) return -errno;
    }
}

static void close_ep(void *ep)
{
    struct ep *e = ep;
    if (e->role == IPCP_ROLE_PRODUCER) flush_tail(e, now_ms() + 1000);
    free(e->tail);
    if (e->in)
        for (uint32_t p = 0; p < e->x->producers; p++)
            free(e->in[p].buf);
    free(e->in);
    free(e->pfd);
    free(e);
}

static const struct ipcp_channel_ops ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "example-good-pipe",
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
