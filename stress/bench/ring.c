/* ring.c - the ring family of `ipcproof bench` (bench.h): ipcp_ring between two processes over a
 * memfd, copy (send/recv) and zero-copy (reserve/commit + peek/release), against the minimal
 * SPSC ring (the real limit of a queue between two processes) and memcpy (the physical limit,
 * no aim); its 64-byte round trip against a raw spin ping-pong (raw.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "atomics.h"
#include "ipcproof/err.h"
#include "ipcproof/ring.h"

static struct ipcp_ring_cfg ring_cfg(void)
{
    struct ipcp_ring_cfg cfg = {.capacity = B_RING_CAP, .max_msg = B_MAX_MSG};
    return cfg;
}

struct ringstate {
    struct ipcp_ring a, b; /* throughput: a (the consumer's); round trips: a out, b back */
    int have_a, have_b;
    uint8_t *buf;
    uint64_t sink;
};

/* Throughput: the consumer's ring; round trips: a (parent -> child) and b (child -> parent). */
static int ring_setup(struct bench_side *s)
{
    struct ringstate *t = s->st;
    struct ipcp_ring_cfg cfg = ring_cfg();
    int rtt = s->c->kind == K_RTT;
    int rc = ipcp_ring_create_memfd(&t->a, rtt ? IPCP_RING_PRODUCER : IPCP_RING_CONSUMER, &cfg);
    if (rc < 0) return bench_fail(s->err, s->cap, "ring_create_memfd: %s", ipcp_strerror(rc));
    t->have_a = 1;
    if (rtt) {
        if ((rc = ipcp_ring_create_memfd(&t->b, IPCP_RING_CONSUMER, &cfg)) < 0)
            return bench_fail(s->err, s->cap, "ring_create_memfd: %s", ipcp_strerror(rc));
        t->have_b = 1;
    }
    size_t size = rtt ? B_SMALL : s->c->size;
    t->buf = bench_alloc(size);
    if (t->buf == NULL) return bench_fail(s->err, s->cap, "out of memory");
    memset(t->buf, 0x5a, size);
    return 0;
}

static void ring_teardown(struct bench_side *s)
{
    struct ringstate *t = s->st;
    if (t->have_a) ipcp_ring_close(&t->a);
    if (t->have_b) ipcp_ring_close(&t->b);
    bench_escape(&t->sink);
    free(t->buf);
}

/* Producer child: opens its side over the inherited memfd, sends n messages (zero copy: the
 * producer writes each message in place). */
static int ring_producer(struct bench_side *s)
{
    struct ringstate *t = s->st;
    const struct bench_case *c = s->c;
    struct ipcp_ring_cfg cfg = ring_cfg();
    struct ipcp_ring p;
    if (ipcp_ring_attach_fd(&p, ipcp_ring_fd(&t->a), IPCP_RING_PRODUCER, &cfg) < 0) return 11;
    int rc = bench_child_ready(s) < 0 ? 12 : 0;
    for (long i = 0; i < s->n && rc == 0; i++) {
        if (c->variant) {
            void *ptr;
            if (ipcp_ring_reserve(&p, c->size, &ptr, B_OP_MS) < 0) {
                rc = 13;
                break;
            }
            memcpy(ptr, t->buf, c->size);
            if (ipcp_ring_commit(&p, c->size) < 0) rc = 14;
        } else if (ipcp_ring_send(&p, t->buf, c->size, B_OP_MS) < 0) {
            rc = 15;
        }
    }
    ipcp_ring_close(&p);
    return rc;
}

/* recv (a copy out), or peek + release reading every cache line in place. */
static int ring_recv_step(struct bench_side *s, long i)
{
    struct ringstate *t = s->st;
    const struct bench_case *c = s->c;
    ssize_t n;
    if (c->variant) {
        const void *ptr;
        n = ipcp_ring_peek(&t->a, &ptr, B_OP_MS);
        if (n == (ssize_t)c->size) {
            const volatile uint64_t *w = ptr;
            for (size_t k = 0; k < c->size / 8; k += IPCP_CACHELINE / 8)
                t->sink += w[k];
            int e = ipcp_ring_release(&t->a);
            if (e < 0) n = e;
        }
    } else {
        n = ipcp_ring_recv(&t->a, t->buf, c->size, B_OP_MS);
    }
    if (n == (ssize_t)c->size) return 0;
    return bench_fail(s->err, s->cap, "ring receive of message %ld: %s", i,
                      n < 0 ? ipcp_strerror((int)n) : "wrong length");
}

/* Echoes through two rings until the parent closes its producer side (-EPIPE). */
static int ring_echo(struct bench_side *s)
{
    struct ringstate *t = s->st;
    struct ipcp_ring_cfg cfg = ring_cfg();
    struct ipcp_ring in, out;
    if (ipcp_ring_attach_fd(&in, ipcp_ring_fd(&t->a), IPCP_RING_CONSUMER, &cfg) < 0) return 11;
    if (ipcp_ring_attach_fd(&out, ipcp_ring_fd(&t->b), IPCP_RING_PRODUCER, &cfg) < 0) return 11;
    uint8_t buf[B_SMALL];
    int rc = bench_child_ready(s) < 0 ? 12 : 0;
    while (rc == 0) {
        ssize_t r = ipcp_ring_recv(&in, buf, sizeof(buf), B_OP_MS);
        if (r == -EPIPE) break;
        if (r != (ssize_t)sizeof(buf))
            rc = 13;
        else if (ipcp_ring_send(&out, buf, sizeof(buf), B_OP_MS) < 0)
            rc = 14;
    }
    ipcp_ring_close(&in);
    ipcp_ring_close(&out);
    return rc;
}

static int ring_rtt_step(struct bench_side *s, long i)
{
    struct ringstate *t = s->st;
    int rc = ipcp_ring_send(&t->a, t->buf, B_SMALL, B_OP_MS);
    ssize_t r = rc < 0 ? rc : ipcp_ring_recv(&t->b, t->buf, B_SMALL, B_OP_MS);
    if (r == (ssize_t)B_SMALL) return 0;
    return bench_fail(s->err, s->cap, "ring round trip %ld: %s", i,
                      r < 0 ? ipcp_strerror((int)r) : "wrong length");
}

/* Closing our producer side ends the echo process. */
static int ring_rtt_stop(struct bench_side *s)
{
    struct ringstate *t = s->st;
    ipcp_ring_close(&t->a);
    t->have_a = 0;
    return 0;
}

static const struct bench_pair ring_tput = {
    .state_size = sizeof(struct ringstate),
    .setup = ring_setup,
    .child = ring_producer,
    .step = ring_recv_step,
    .teardown = ring_teardown,
};

static const struct bench_pair ring_rtt = {
    .state_size = sizeof(struct ringstate),
    .setup = ring_setup,
    .child = ring_echo,
    .step = ring_rtt_step,
    .stop = ring_rtt_stop,
    .teardown = ring_teardown,
};

#define RING_COUNTS                                                                                \
    {                                                                                              \
        2000000, 200000, 12000, 800                                                                \
    }
#define MINRING                                                                                    \
    {                                                                                              \
        .name = "minimal shm SPSC ring", .pair = &bench_minring_tput                               \
    }
#define MEMCPY                                                                                     \
    {                                                                                              \
        .name = "memcpy 1 thread", .tag = "memcpy", .run = bench_run_memcpy                        \
    }

/* The aims are against the minimal ring (the first baseline); memcpy is a row without one. A
 * zero-copy message must fit one record: not 1 MiB. */
static const struct bench_def ring_defs[] = {
    {.stem = "ring/%s",
     .kind = K_TPUT,
     .sizes = B_ALL_SIZES,
     .count = RING_COUNTS,
     .floor = 20,
     .how = {{.name = "ring send/recv", .pair = &ring_tput}, MINRING, MEMCPY},
     .aim_op = AIM_GE,
     .aim = {0.90, 0.90, 0.90, 0.90}},
    {.stem = "ring-zc/%s",
     .kind = K_TPUT,
     .variant = 1,
     .sizes = 0x7,
     .count = RING_COUNTS,
     .floor = 20,
     .how = {{.name = "ring reserve/commit+peek/release", .pair = &ring_tput}, MINRING, MEMCPY},
     .aim_op = AIM_GE,
     .aim = {1.0, 1.0, 1.0}},
    {.stem = "ring/64B",
     .kind = K_RTT,
     .size = B_SMALL,
     .count = {50000},
     .floor = 200,
     .how = {{.name = "ring send/recv", .pair = &ring_rtt},
             {.name = "raw shm spin ping-pong", .pair = &bench_spin_rtt}},
     .aim_op = AIM_LE,
     .aim = {1.5}},
};

const struct bench_family bench_ring = {"ring", ring_defs, IPCP_ARRAY_SIZE(ring_defs)};
