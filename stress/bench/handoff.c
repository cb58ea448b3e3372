/* handoff.c - the handoff family of `ipcproof bench` (bench.h): ipcp_handoff (shm slots, POSIX
 * queues, checksums) against the same mechanism without the protocol (rawchan.c) and memcpy. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "atomics.h"
#include "ipcproof/err.h"
#include "ipcproof/handoff.h"

struct hostate {
    struct ipcp_handoff *h1, *h2;     /* throughput: h1; round trips: h1 out, h2 back */
    struct ipcp_handoff_ep *out, *in; /* the parent's endpoints */
    uint8_t *buf;
};

static int ho_setup(struct bench_side *s)
{
    struct hostate *t = s->st;
    int rtt = s->c->kind == K_RTT;
    size_t size = rtt ? B_SMALL : s->c->size;
    struct ipcp_handoff_cfg cfg = {.stem = NULL,
                                   .nslots = rtt ? 2 : HO_SLOTS,
                                   .slot_size = size,
                                   .flags = s->c->variant ? IPCP_HANDOFF_NO_CHECKSUM : 0};
    int rc = ipcp_handoff_create(&cfg, &t->h1);
    if (rc == 0 && rtt) rc = ipcp_handoff_create(&cfg, &t->h2);
    if (rc < 0) return bench_fail(s->err, s->cap, "handoff_create: %s", ipcp_strerror(rc));
    t->buf = bench_alloc(size);
    if (t->buf == NULL) return bench_fail(s->err, s->cap, "out of memory");
    memset(t->buf, 0x5a, size);
    return 0;
}

/* After the fork: the parent's endpoints (receiver; or sender out, receiver back). */
static int ho_started(struct bench_side *s)
{
    struct hostate *t = s->st;
    int rc;
    if (s->c->kind == K_RTT) {
        if ((rc = ipcp_handoff_open(t->h1, IPCP_HANDOFF_SENDER, &t->out)) == 0)
            rc = ipcp_handoff_open(t->h2, IPCP_HANDOFF_RECEIVER, &t->in);
    } else {
        rc = ipcp_handoff_open(t->h1, IPCP_HANDOFF_RECEIVER, &t->in);
    }
    return rc < 0 ? bench_fail(s->err, s->cap, "handoff_open: %s", ipcp_strerror(rc)) : 0;
}

static void ho_teardown(struct bench_side *s)
{
    struct hostate *t = s->st;
    if (t->out) ipcp_handoff_close(t->out);
    if (t->in) ipcp_handoff_close(t->in);
    ipcp_handoff_destroy(t->h1);
    ipcp_handoff_destroy(t->h2);
    free(t->buf);
}

static int ho_sender(struct bench_side *s)
{
    struct hostate *t = s->st;
    struct ipcp_handoff_ep *ep = NULL;
    if (ipcp_handoff_open(t->h1, IPCP_HANDOFF_SENDER, &ep) < 0) return 11;
    int rc = bench_child_ready(s) < 0 ? 12 : 0;
    for (long i = 0; i < s->n && rc == 0; i++)
        rc = ipcp_handoff_send(ep, t->buf, s->c->size, B_OP_MS) < 0 ? 13 : 0;
    if (rc == 0 && ipcp_handoff_flush(ep, B_OP_MS) < 0) rc = 15;
    ipcp_handoff_close(ep);
    return rc;
}

static int ho_recv_step(struct bench_side *s, long i)
{
    struct hostate *t = s->st;
    ssize_t n = ipcp_handoff_recv(t->in, t->buf, s->c->size, B_OP_MS);
    if (n == (ssize_t)s->c->size) return 0;
    return bench_fail(s->err, s->cap, "receive of message %ld: %s", i,
                      n < 0 ? ipcp_strerror((int)n) : "failed");
}

/* Echo child of a round-trip run: a 1-byte message ends it. */
static int ho_echo(struct bench_side *s)
{
    struct hostate *t = s->st;
    uint8_t buf[B_SMALL];
    struct ipcp_handoff_ep *in = NULL, *out = NULL;
    if (ipcp_handoff_open(t->h1, IPCP_HANDOFF_RECEIVER, &in) < 0 ||
        ipcp_handoff_open(t->h2, IPCP_HANDOFF_SENDER, &out) < 0)
        return 11;
    int rc = bench_child_ready(s) < 0 ? 12 : 0;
    while (rc == 0) {
        ssize_t n = ipcp_handoff_recv(in, buf, sizeof(buf), B_OP_MS);
        if (n == 1) break;
        if (n != (ssize_t)sizeof(buf))
            rc = 13;
        else
            rc = ipcp_handoff_send(out, buf, sizeof(buf), B_OP_MS) < 0 ? 14 : 0;
    }
    ipcp_handoff_close(in);
    ipcp_handoff_close(out);
    return rc;
}

static int ho_rtt_step(struct bench_side *s, long i)
{
    struct hostate *t = s->st;
    int rc = ipcp_handoff_send(t->out, t->buf, B_SMALL, B_OP_MS);
    ssize_t n = rc < 0 ? rc : ipcp_handoff_recv(t->in, t->buf, B_SMALL, B_OP_MS);
    if (n == (ssize_t)B_SMALL) return 0;
    return bench_fail(s->err, s->cap, "round trip %ld: %s", i,
                      n < 0 ? ipcp_strerror((int)n) : "failed");
}

/* A 1-byte message ends the echo process. */
static int ho_rtt_stop(struct bench_side *s)
{
    return ipcp_handoff_send(((struct hostate *)s->st)->out, ((struct hostate *)s->st)->buf, 1,
                             B_OP_MS);
}

static const struct bench_pair ho_tput = {
    .state_size = sizeof(struct hostate),
    .setup = ho_setup,
    .child = ho_sender,
    .started = ho_started,
    .step = ho_recv_step,
    .teardown = ho_teardown,
};

static const struct bench_pair ho_rtt = {
    .state_size = sizeof(struct hostate),
    .setup = ho_setup,
    .child = ho_echo,
    .started = ho_started,
    .step = ho_rtt_step,
    .stop = ho_rtt_stop,
    .teardown = ho_teardown,
};

/* aim: >= 0.8 of the raw mechanism at every size; the default configuration checksums every
 * message (a pass on each side, more than the copy from 64 KiB on), handoff-nosum does not
 * (variant 1: IPCP_HANDOFF_NO_CHECKSUM) */
static const struct bench_def ho_defs[] = {
    {.stem = "handoff/%s",
     .kind = K_TPUT,
     .sizes = B_ALL_SIZES,
     .count = B_TPUT_COUNTS,
     .floor = 20,
     .how = {{.name = "mq handoff", .pair = &ho_tput},
             {.name = "raw shm slots + mq READY/OK", .tag = "raw", .pair = &bench_rawho_tput},
             {.name = "memcpy 1 thread", .tag = "memcpy", .run = bench_run_memcpy}},
     .aim_op = AIM_GE,
     .aim = {0.8, 0.8, 0.8, 0.8}},
    {.stem = "handoff-nosum/%s",
     .kind = K_TPUT,
     .variant = 1,
     .sizes = B_ALL_SIZES,
     .count = B_TPUT_COUNTS,
     .floor = 20,
     .how = {{.name = "mq handoff without checksum", .pair = &ho_tput},
             {.name = "raw shm slots + mq READY/OK", .pair = &bench_rawho_tput}},
     .aim_op = AIM_GE,
     .aim = {0.8, 0.8, 0.8, 0.8}},
    {.stem = "handoff/64B",
     .kind = K_RTT,
     .size = B_SMALL,
     .count = {20000},
     .floor = 200,
     .how = {{.name = "mq handoff", .pair = &ho_rtt},
             {.name = "raw shm slot + mq READY", .pair = &bench_rawho_rtt}}},
};

const struct bench_family bench_handoff = {"handoff", ho_defs, IPCP_ARRAY_SIZE(ho_defs)};
