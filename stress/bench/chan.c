/* chan.c - the channel family of `ipcproof bench` (bench.h): built-in protocols that run through
 * the plugin ABI (stress/protos/), each against its raw mechanism (rawchan.c) or, for ring-sysv,
 * against the POSIX ring: one producer process, one consumer, fresh objects for each run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "atomics.h"
#include "ipcproof/err.h"

extern const struct ipcp_channel_ops st_sysv_msg_ops, st_mq_chan_ops, st_condvar_queue_ops,
    st_ring_ops, st_ring_sysv_ops;

/* id, row stem, protocol, baseline, capacity hint in messages (0: the default) */
#define CHANS(X)                                                                                   \
    X(CH_SYSV_MSG, "sysv-msg", st_sysv_msg_ops, bench_raw_msg_ops, 0)                              \
    X(CH_MQ_CHAN, "mq-chan", st_mq_chan_ops, bench_raw_mq_ops, 0)                                  \
    X(CH_CVQ, "condvar-queue", st_condvar_queue_ops, bench_plain_cvq_ops, 8)                       \
    X(CH_RING_SYSV, "ring-sysv", st_ring_sysv_ops, st_ring_ops, 0)

#define CH_ID(id, stem, proto, raw, slots) id,
enum { CHANS(CH_ID) CH_N };

static const struct {
    const struct ipcp_channel_ops *ops[2]; /* the protocol, the baseline */
    unsigned slots;
} chans[CH_N] = {
#define CH_OPS(id, stem, proto, raw, slots) [id] = {{&proto, &raw}, slots},
    CHANS(CH_OPS)};

struct chanstate {
    const struct ipcp_channel_ops *ops;
    void *ctx, *ep;
    uint8_t *buf;
};

static int chan_setup(struct bench_side *s)
{
    static unsigned seq;
    struct chanstate *t = s->st;
    const struct bench_case *c = s->c;
    t->ops = chans[c->xk].ops[s->side == 0 ? 0 : 1];
    char run_id[32];
    snprintf(run_id, sizeof(run_id), "bench-%ld-%u", (long)getpid(), seq++);
    struct ipcp_chan_cfg cfg = {.run_id = run_id,
                                .producers = 1,
                                .consumers = 1,
                                .max_msg = c->size,
                                .capacity = chans[c->xk].slots * c->size,
                                .options = ""};
    int rc = t->ops->create(&cfg, &t->ctx);
    if (rc < 0) {
        t->ctx = NULL;
        return bench_fail(s->err, s->cap, "%s: create: %s", t->ops->name, ipcp_strerror(rc));
    }
    t->buf = bench_alloc(c->size + 1);
    if (t->buf == NULL) return bench_fail(s->err, s->cap, "out of memory");
    memset(t->buf, 0x5a, c->size);
    if ((rc = t->ops->open(t->ctx, IPCP_ROLE_CONSUMER, 0, &t->ep)) < 0) {
        t->ep = NULL;
        return bench_fail(s->err, s->cap, "%s: open: %s", t->ops->name, ipcp_strerror(rc));
    }
    return 0;
}

/* Producer child: opens its endpoint of the inherited channel, sends n messages. */
static int chan_producer(struct bench_side *s)
{
    struct chanstate *t = s->st;
    void *ep;
    if (t->ops->open(t->ctx, IPCP_ROLE_PRODUCER, 0, &ep) < 0) return 11;
    int rc = bench_child_ready(s) < 0 ? 12 : 0;
    for (long i = 0; i < s->n && rc == 0; i++)
        if (t->ops->send(ep, t->buf, s->c->size, B_OP_MS) < 0) rc = 15;
    t->ops->close(ep);
    return rc;
}

static int chan_step(struct bench_side *s, long i)
{
    struct chanstate *t = s->st;
    ssize_t n = t->ops->recv(t->ep, t->buf, s->c->size, B_OP_MS);
    if (n == (ssize_t)s->c->size) return 0;
    return bench_fail(s->err, s->cap, "%s: receive of message %ld: %s", t->ops->name, i,
                      n < 0 ? ipcp_strerror((int)n) : "wrong length");
}

static void chan_teardown(struct bench_side *s)
{
    struct chanstate *t = s->st;
    if (t->ep != NULL) t->ops->close(t->ep);
    if (t->ctx != NULL) t->ops->destroy(t->ctx);
    free(t->buf);
}

static const struct bench_pair chan_tput = {
    .state_size = sizeof(struct chanstate),
    .setup = chan_setup,
    .child = chan_producer,
    .step = chan_step,
    .teardown = chan_teardown,
};

static const char *chan_names(const struct bench_def *d, int side)
{
    return chans[d->xk].ops[side == 0 ? 0 : 1]->name;
}

#define CH_DEF(id, stem_, proto, raw, slots)                                                       \
    {.stem = stem_ "/%s",                                                                          \
     .kind = K_TPUT,                                                                               \
     .xk = id,                                                                                     \
     .sizes = B_ALL_SIZES,                                                                         \
     .count = B_TPUT_COUNTS,                                                                       \
     .floor = 20,                                                                                  \
     .how = {{.pair = &chan_tput}, {.pair = &chan_tput}},                                          \
     .names = chan_names},

static const struct bench_def chan_defs[] = {CHANS(CH_DEF)};

const struct bench_family bench_chan = {"chan", chan_defs, IPCP_ARRAY_SIZE(chan_defs)};
