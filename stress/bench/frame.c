/* frame.c - the frame family of `ipcproof bench` (bench.h): ipcp_fdchan over a pipe, a unix
 * stream socket, a seqpacket socket and TCP, against plain write/read of the same bytes on the
 * same kind of fd (raw.c). */
#include <errno.h>
#include <string.h>

#include "bench.h"
#include "atomics.h"
#include "ipcproof/err.h"
#include "ipcproof/fdchan.h"

/* variant 1: the frame-nosum rows, without the payload checksum (IPCP_FDCHAN_NO_PAYSUM) */
static struct ipcp_fdchan_cfg fd_cfg(const struct bench_case *c)
{
    struct ipcp_fdchan_cfg cfg = {
        .kind = c->xk == XK_SEQPACKET ? IPCP_FDCHAN_SEQPACKET : IPCP_FDCHAN_STREAM,
        .max_msg = B_MAX_MSG,
        .flags = c->variant ? IPCP_FDCHAN_NO_PAYSUM : 0,
    };
    return cfg;
}

/* The transport, then the parent's channel over its ends (before the fork, as a server that
 * forks its workers would). */
static int frame_setup(struct bench_side *s)
{
    if (bench_rawfd_setup(s, s->c->kind == K_RTT) < 0) return -1;
    struct bench_fdstate *f = s->st;
    struct ipcp_fdchan_cfg cfg = fd_cfg(s->c);
    int rc = ipcp_fdchan_open(&f->ch, f->par.r, s->c->kind == K_RTT ? f->par.w : -1, &cfg);
    if (rc < 0) {
        f->ch = NULL;
        return bench_fail(s->err, s->cap, "fdchan_open: %s", ipcp_strerror(rc));
    }
    return 0;
}

/* Child of a throughput run: sends n messages once the parent says go. */
static int fd_sender(struct bench_side *s)
{
    struct bench_fdstate *f = s->st;
    bench_ends_close(&f->par);
    struct ipcp_fdchan_cfg cfg = fd_cfg(s->c);
    struct ipcp_fdchan *ch = NULL;
    if (ipcp_fdchan_open(&ch, -1, f->chi.w, &cfg) < 0) return 11;
    if (bench_child_ready(s) < 0) return 12;
    /* Batches of up to FRAME_BATCH messages (ipcp_fdchan_sendv), as a producer with a queue of
     * them sends: small frames share one write. */
    enum { FRAME_BATCH = 256 };
    struct ipcp_fdchan_msg msgs[FRAME_BATCH];
    for (int i = 0; i < FRAME_BATCH; i++)
        msgs[i] = (struct ipcp_fdchan_msg){.data = f->buf, .len = s->c->size, .type = 1};
    int rc = 0;
    for (long i = 0; i < s->n && rc == 0;) {
        long k = s->n - i < FRAME_BATCH ? s->n - i : FRAME_BATCH;
        ssize_t r = ipcp_fdchan_sendv(ch, msgs, (size_t)k, B_OP_MS);
        if (r <= 0) rc = 13;
        i += r > 0 ? r : 0;
    }
    if (ipcp_fdchan_close(ch, B_OP_MS) < 0 && rc == 0) rc = 14;
    return rc;
}

/* The zero-copy receive: one copy from the kernel, as read() makes. */
static int frame_recv_step(struct bench_side *s, long i)
{
    const void *m;
    ssize_t r = ipcp_fdchan_recv_zc(((struct bench_fdstate *)s->st)->ch, NULL, &m, B_OP_MS);
    if (r == (ssize_t)s->c->size) return 0;
    return bench_fail(s->err, s->cap, "fdchan_recv message %ld: %s", i,
                      r < 0 ? ipcp_strerror((int)r) : "wrong length");
}

/* Child of a round-trip run: echoes 64-byte messages until the parent closes its end (the
 * parent checks every reply itself). */
static int fd_echo(struct bench_side *s)
{
    struct bench_fdstate *f = s->st;
    bench_ends_close(&f->par);
    struct ipcp_fdchan_cfg cfg = fd_cfg(s->c);
    struct ipcp_fdchan *ch = NULL;
    uint8_t buf[B_SMALL];
    if (ipcp_fdchan_open(&ch, f->chi.r, f->chi.w, &cfg) < 0) return 11;
    if (bench_child_ready(s) < 0) return 12;
    int rc = 0;
    for (;;) {
        ssize_t r = ipcp_fdchan_recv(ch, NULL, buf, sizeof(buf), B_OP_MS);
        if (r == -EPIPE) break; /* the parent is done */
        if (r != (ssize_t)sizeof(buf)) {
            rc = 13;
            break;
        }
        if (ipcp_fdchan_send(ch, 1, buf, sizeof(buf), B_OP_MS) < 0) {
            rc = 14;
            break;
        }
    }
    ipcp_fdchan_close(ch, 0);
    return rc;
}

static int frame_rtt_step(struct bench_side *s, long i)
{
    struct bench_fdstate *f = s->st;
    int rc = ipcp_fdchan_send(f->ch, 1, f->buf, B_SMALL, B_OP_MS);
    ssize_t r = rc < 0 ? rc : ipcp_fdchan_recv(f->ch, NULL, f->buf, B_SMALL, B_OP_MS);
    if (r == (ssize_t)B_SMALL) return 0;
    return bench_fail(s->err, s->cap, "round trip %ld: %s", i,
                      r < 0 ? ipcp_strerror((int)r) : "wrong length");
}

static const struct bench_pair frame_tput = {
    .state_size = sizeof(struct bench_fdstate),
    .setup = frame_setup,
    .child = fd_sender,
    .started = bench_rawfd_started,
    .step = frame_recv_step,
    .teardown = bench_rawfd_teardown,
};

static const struct bench_pair frame_rtt = {
    .state_size = sizeof(struct bench_fdstate),
    .setup = frame_setup,
    .child = fd_echo,
    .started = bench_rawfd_started,
    .step = frame_rtt_step,
    .stop = bench_rawfd_stop,
    .teardown = bench_rawfd_teardown,
};

static const char *const xk_name[XK_N] = {"pipe", "unix", "seqpacket", "tcp"};
static const char *const xk_raw[XK_N] = {"raw pipe write/read", "raw unix write/read",
                                         "raw seqpacket send/recv", "raw tcp write/read"};

static const char *frame_inst(int xk)
{
    return xk_name[xk];
}

static const char *frame_names(const struct bench_def *d, int side)
{
    return side != 0 ? xk_raw[d->xk] : d->variant ? "frame without payload checksum" : "frame";
}

/* 64 B: batched frames must beat a raw write per message (seqpacket keeps one packet, one
 * sendmsg, per frame: 0.75); frame-nosum: 64 KiB and 1 MiB, where the checksum costs most */
#define FRAME_ROWS(X)                                                                              \
    {.stem = "frame-%s/%s",                                                                        \
     .kind = K_TPUT,                                                                               \
     .xk = X,                                                                                      \
     .sizes = B_ALL_SIZES,                                                                         \
     .count = B_TPUT_COUNTS,                                                                       \
     .floor = 20,                                                                                  \
     .how = {{.pair = &frame_tput}, {.pair = &bench_rawfd_tput}},                                  \
     .aim_op = AIM_GE,                                                                             \
     .aim = {X == XK_SEQPACKET ? 0.75 : 1.0, 0, 0.90, 0},                                          \
     .inst = frame_inst,                                                                           \
     .names = frame_names},                                                                        \
        {.stem = "frame-nosum-%s/%s",                                                              \
         .kind = K_TPUT,                                                                           \
         .xk = X,                                                                                  \
         .variant = 1,                                                                             \
         .sizes = 0xcu,                                                                            \
         .count = B_TPUT_COUNTS,                                                                   \
         .floor = 20,                                                                              \
         .how = {{.pair = &frame_tput}, {.pair = &bench_rawfd_tput}},                              \
         .inst = frame_inst,                                                                       \
         .names = frame_names},                                                                    \
    {                                                                                              \
        .stem = "frame-%s/64B", .kind = K_RTT, .xk = X, .size = B_SMALL, .count = {20000},         \
        .floor = 200, .how = {{.pair = &frame_rtt}, {.pair = &bench_rawfd_rtt}},                   \
        .inst = frame_inst, .names = frame_names                                                   \
    }

static const struct bench_def frame_defs[] = {
    FRAME_ROWS(XK_PIPE),
    FRAME_ROWS(XK_UNIX),
    FRAME_ROWS(XK_SEQPACKET),
    FRAME_ROWS(XK_TCP),
};

const struct bench_family bench_frame = {"frame", frame_defs, IPCP_ARRAY_SIZE(frame_defs)};
