/* protos/frame.c - the framed-message channels of core/ (fdchan.h) as stress protocols:
 * frame-pipe, frame-fifo, frame-unix, frame-seqpacket, frame-tcp.
 *
 * Topology: with C consumers, consumer j reads its own link(s) and producer i writes to a link of
 * consumer i % C.
 * - frame-pipe, frame-fifo: one pipe / FIFO per consumer, shared by its producers. With several
 *   producers on one pipe every producer writes in IPCP_FDCHAN_MULTIWRITER mode (fragments of at
 *   most PIPE_BUF, reassembled per writer id), the configuration POSIX pipes need.
 * - frame-unix, frame-seqpacket, frame-tcp: one connection per producer (a socket stream has one
 *   writer); a consumer multiplexes the connections of its producers with poll().
 * All fds are made by create() in the supervisor and inherited (forked children) or shared
 * (threads); endpoints never close them, destroy() does. A FIFO is opened by path in open(); its
 * reader also holds a write end, so that the reader never sees EOF between two producers. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ipcproof/err.h"
#include "ipcproof/fdchan.h"
#include "ipcproof/frame.h"
#include "ipcproof/plugin.h"
#include "ipcproof/xport.h"

enum fkind { F_PIPE, F_FIFO, F_UNIX, F_SEQPACKET, F_TCP };

struct fctx {
    enum fkind kind;
    uint32_t producers, consumers;
    size_t max_msg;
    uint32_t nlinks;
    int (*fds)[2]; /* [link] = {read end, write end} */
    char (*paths)[108];
};

struct fep {
    struct fctx *x;
    int role;
    uint32_t index;
    uint32_t n; /* channels: 1 for a producer, its links for a consumer */
    struct ipcp_fdchan **ch;
    int *own_fds;  /* fds this endpoint opened (FIFOs), -1 otherwise */
    uint32_t next; /* round-robin start for fairness */
};

static int per_producer_links(const struct fctx *x)
{
    return x->kind == F_UNIX || x->kind == F_SEQPACKET || x->kind == F_TCP;
}

static void fctx_free(struct fctx *x)
{
    if (x == NULL) return;
    for (uint32_t i = 0; i < x->nlinks; i++) {
        if (x->fds[i][0] >= 0) close(x->fds[i][0]);
        if (x->fds[i][1] >= 0) close(x->fds[i][1]);
        if (x->paths && x->paths[i][0]) ipcp_xport_remove(x->paths[i]);
    }
    free(x->fds);
    free(x->paths);
    free(x);
}

static int make_link(struct fctx *x, uint32_t i, const char *run_id)
{
    int fds[2];
    int rc;
    switch (x->kind) {
    case F_PIPE:
        rc = ipcp_xport_pipe(fds, 1 << 20);
        break;
    case F_FIFO:
        snprintf(x->paths[i], sizeof(x->paths[i]), "/tmp/ipcp.fifo.%s.%u", run_id, i);
        return ipcp_xport_fifo_create(x->paths[i]);
    case F_UNIX:
        rc = ipcp_xport_unix_pair(SOCK_STREAM, fds, 0);
        break;
    case F_SEQPACKET:
        rc = ipcp_xport_unix_pair(SOCK_SEQPACKET, fds, 1 << 20);
        break;
    case F_TCP: {
        uint16_t port = 0;
        int l = ipcp_xport_tcp_listen(&port);
        if (l < 0) return l;
        fds[1] = ipcp_xport_tcp_connect(port, 10000);
        if (fds[1] < 0) {
            close(l);
            return fds[1];
        }
        fds[0] = ipcp_xport_accept(l, 10000);
        close(l);
        if (fds[0] < 0) {
            close(fds[1]);
            return fds[0];
        }
        rc = 0;
        break;
    }
    default:
        return -EINVAL;
    }
    if (rc < 0) return rc;
    x->fds[i][0] = fds[0];
    x->fds[i][1] = fds[1];
    return 0;
}

static int fcreate(enum fkind kind, const struct ipcp_chan_cfg *cfg, void **ctx)
{
    *ctx = NULL;
    if (cfg->producers == 0 || cfg->consumers == 0) return -EINVAL;
    if (cfg->max_msg > IPCP_FRAME_MAX_HARD) return -IPCP_E_TOOBIG;
    struct fctx *x = calloc(1, sizeof(*x));
    if (x == NULL) return -ENOMEM;
    x->kind = kind;
    x->producers = cfg->producers;
    x->consumers = cfg->consumers;
    x->max_msg = cfg->max_msg ? cfg->max_msg : 1;
    x->nlinks = per_producer_links(x) ? cfg->producers : cfg->consumers;
    x->fds = malloc(x->nlinks * sizeof(*x->fds));
    x->paths = calloc(x->nlinks, sizeof(*x->paths));
    if (x->fds == NULL || x->paths == NULL) {
        free(x->fds);
        free(x->paths);
        free(x);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < x->nlinks; i++)
        x->fds[i][0] = x->fds[i][1] = -1;
    for (uint32_t i = 0; i < x->nlinks; i++) {
        int rc = make_link(x, i, cfg->run_id);
        if (rc < 0) {
            fctx_free(x);
            return rc;
        }
    }
    *ctx = x;
    return 0;
}

static enum ipcp_fdchan_kind chan_kind(const struct fctx *x)
{
    if (x->kind == F_SEQPACKET) return IPCP_FDCHAN_SEQPACKET;
    if (x->kind == F_FIFO) return IPCP_FDCHAN_FIFO;
    return IPCP_FDCHAN_STREAM;
}

/* Producers that share consumer j's pipe. */
static uint32_t producers_of(const struct fctx *x, uint32_t j)
{
    return x->producers / x->consumers + (j < x->producers % x->consumers ? 1 : 0);
}

static void fep_free(struct fep *e)
{
    for (uint32_t k = 0; k < e->n; k++) {
        if (e->ch[k]) ipcp_fdchan_close(e->ch[k], 1000);
        if (e->own_fds[2 * k] >= 0) close(e->own_fds[2 * k]);
        if (e->own_fds[2 * k + 1] >= 0) close(e->own_fds[2 * k + 1]);
    }
    free(e->ch);
    free(e->own_fds);
    free(e);
}

static int fopen_ep(void *ctx, int role, uint32_t index, void **out)
{
    struct fctx *x = ctx;
    *out = NULL;
    if ((role == IPCP_ROLE_PRODUCER && index >= x->producers) ||
        (role == IPCP_ROLE_CONSUMER && index >= x->consumers) ||
        (role != IPCP_ROLE_PRODUCER && role != IPCP_ROLE_CONSUMER))
        return -EINVAL;
    struct fep *e = calloc(1, sizeof(*e));
    if (e == NULL) return -ENOMEM;
    e->x = x;
    e->role = role;
    e->index = index;
    uint32_t links[x->nlinks];
    if (role == IPCP_ROLE_PRODUCER) {
        links[0] = per_producer_links(x) ? index : index % x->consumers;
        e->n = 1;
    } else if (per_producer_links(x)) {
        for (uint32_t i = index; i < x->producers; i += x->consumers)
            links[e->n++] = i;
    } else {
        links[0] = index;
        e->n = 1;
    }
    e->ch = calloc(e->n ? e->n : 1, sizeof(*e->ch));
    e->own_fds = malloc(2 * (e->n ? e->n : 1) * sizeof(int));
    if (e->ch == NULL || e->own_fds == NULL) {
        free(e->ch);
        free(e->own_fds);
        free(e);
        return -ENOMEM;
    }
    for (uint32_t k = 0; k < 2 * e->n; k++)
        e->own_fds[k] = -1;
    int rc = 0;
    for (uint32_t k = 0; k < e->n && rc == 0; k++) {
        uint32_t l = links[k];
        int rfd = -1, wfd = -1;
        if (x->kind == F_FIFO) {
            if (role == IPCP_ROLE_CONSUMER) {
                rfd = ipcp_xport_fifo_open_reader(x->paths[l]);
                e->own_fds[2 * k] = rfd;
                /* the keep-alive write end: no EOF while producers come and go */
                if (rfd >= 0) e->own_fds[2 * k + 1] = ipcp_xport_fifo_open_writer(x->paths[l], 0);
                if (rfd >= 0 && e->own_fds[2 * k + 1] < 0) rc = e->own_fds[2 * k + 1];
            } else {
                wfd = ipcp_xport_fifo_open_writer(x->paths[l], 10000);
                e->own_fds[2 * k + 1] = wfd;
            }
            if (rc == 0 && rfd < 0 && wfd < 0) rc = role == IPCP_ROLE_CONSUMER ? rfd : wfd;
        } else if (role == IPCP_ROLE_CONSUMER) {
            rfd = x->fds[l][0];
        } else {
            wfd = x->fds[l][1];
        }
        if (rc < 0) break;
        struct ipcp_fdchan_cfg cfg = {.kind = chan_kind(x), .max_msg = x->max_msg};
        if (!per_producer_links(x)) {
            /* A shared pipe: its reader accepts any producer's writer id; its producers write
             * fragments of at most PIPE_BUF when they are several. */
            if (x->producers > IPCP_FDCHAN_MAX_WRITERS) rc = -EINVAL;
            cfg.max_writers = x->producers;
            if (role == IPCP_ROLE_PRODUCER && producers_of(x, l) > 1) {
                cfg.flags |= IPCP_FDCHAN_MULTIWRITER;
                cfg.writer_id = index;
            }
        }
        if (rc == 0) rc = ipcp_fdchan_open(&e->ch[k], rfd, wfd, &cfg);
    }
    if (rc < 0) {
        fep_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

static int fsend(void *ep, const void *msg, size_t len, int timeout_ms)
{
    struct fep *e = ep;
    return ipcp_fdchan_send(e->ch[0], 1, msg, len, timeout_ms);
}

static int read_fd(const struct fep *e, uint32_t k)
{
    if (e->x->kind == F_FIFO) return e->own_fds[2 * k];
    uint32_t link = per_producer_links(e->x) ? e->index + k * e->x->consumers : e->index;
    return e->x->fds[link][0];
}

static ssize_t frecv(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct fep *e = ep;
    if (e->n == 0) { /* more consumers than producers: this one never gets a message */
        if (timeout_ms > 0) poll(NULL, 0, timeout_ms);
        return -ETIMEDOUT;
    }
    if (e->n == 1) return ipcp_fdchan_recv(e->ch[0], NULL, buf, cap, timeout_ms);
    int64_t end_ms = -1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (timeout_ms >= 0) end_ms = now_ms + timeout_ms;
    struct pollfd p[e->n];
    for (;;) {
        /* A channel may hold a whole message in its buffer with nothing left on its fd: try
         * each without waiting before sleeping in poll. */
        for (uint32_t i = 0; i < e->n; i++) {
            uint32_t k = (e->next + i) % e->n;
            ssize_t r = ipcp_fdchan_recv(e->ch[k], NULL, buf, cap, 0);
            if (r != -ETIMEDOUT) {
                e->next = k + 1;
                return r;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (end_ms >= 0 && now_ms >= end_ms) return -ETIMEDOUT;
        for (uint32_t k = 0; k < e->n; k++)
            p[k] = (struct pollfd){.fd = read_fd(e, k), .events = POLLIN};
        int left = end_ms < 0 ? -1 : (int)(end_ms - now_ms);
        int pr = poll(p, e->n, left);
        if (pr < 0 && errno != EINTR) return -errno;
    }
}

static void fclose_ep(void *ep)
{
    if (ep) fep_free(ep);
}

static void fdestroy(void *ctx)
{
    fctx_free(ctx);
}

#define FRAME_PROTO(fn, id, pname)                                                                 \
    static int fn##_create(const struct ipcp_chan_cfg *cfg, void **ctx)                            \
    {                                                                                              \
        return fcreate(id, cfg, ctx);                                                              \
    }                                                                                              \
    const struct ipcp_channel_ops fn##_ops = {                                                     \
        .abi_version = IPCP_PLUGIN_ABI_VERSION,                                                    \
        .name = pname,                                                                             \
        .flags = IPCP_CHAN_FIFO,                                                                   \
        .create = fn##_create,                                                                     \
        .open = fopen_ep,                                                                          \
        .send = fsend,                                                                             \
        .recv = frecv,                                                                             \
        .close = fclose_ep,                                                                        \
        .destroy = fdestroy,                                                                       \
    };

FRAME_PROTO(st_frame_pipe, F_PIPE, "frame-pipe")
FRAME_PROTO(st_frame_fifo, F_FIFO, "frame-fifo")
FRAME_PROTO(st_frame_unix, F_UNIX, "frame-unix")
FRAME_PROTO(st_frame_seqpacket, F_SEQPACKET, "frame-seqpacket")
FRAME_PROTO(st_frame_tcp, F_TCP, "frame-tcp")
