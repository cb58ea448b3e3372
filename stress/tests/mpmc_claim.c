/* mpmc_claim.c - a bounded multi-producer multi-consumer queue in shared memory (per-cell
 * sequence numbers, after Vyukov) that is correct between live endpoints and not crash-safe: a
 * producer claims a cell with a compare-exchange on the enqueue index and publishes it with a
 * store to the cell's sequence a few instructions later. One that dies in between leaves a cell
 * claimed for ever; the consumers wait at it and every later message is lost. A kill at a random
 * moment (--fault kill) almost never lands there; --crash-points finds it (validate's crash
 * cases). Waits poll with 20 us naps up to the deadline. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <ipcproof/plugin.h>

#define NCELL 64

struct cell {
    _Atomic uint64_t seq;
    uint32_t len;
    unsigned char data[];
};

struct shared {
    _Atomic uint64_t enq __attribute__((aligned(64)));
    _Atomic uint64_t deq __attribute__((aligned(64)));
    _Atomic uint32_t closed;
    uint32_t producers;
    size_t stride;
    unsigned char cells[] __attribute__((aligned(64)));
};

struct ctx {
    struct shared *s;
    size_t len;
};

struct ep {
    struct ctx *c;
    int role;
};

static struct cell *cell_at(struct shared *s, uint64_t i)
{
    return (struct cell *)(s->cells + (i % NCELL) * s->stride);
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void nap(void)
{
    struct timespec t = {0, 20000};
    nanosleep(&t, NULL);
}

static int create(const struct ipcp_chan_cfg *cfg, void **out)
{
    struct ctx *c = calloc(1, sizeof(*c));
    if (c == NULL) return -ENOMEM;
    size_t stride = (sizeof(struct cell) + cfg->max_msg + 63) & ~(size_t)63;
    c->len = sizeof(struct shared) + NCELL * stride;
    c->s = mmap(NULL, c->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (c->s == MAP_FAILED) {
        free(c);
        return -ENOMEM;
    }
    c->s->stride = stride;
    c->s->producers = cfg->producers;
    for (uint64_t i = 0; i < NCELL; i++)
        atomic_store(&cell_at(c->s, i)->seq, i);
    *out = c;
    return 0;
}

static int open_ep(void *ctx, int role, uint32_t index, void **ep)
{
    (void)index;
    struct ep *e = calloc(1, sizeof(*e));
    if (e == NULL) return -ENOMEM;
    e->c = ctx;
    e->role = role;
    *ep = e;
    return 0;
}

static int send_msg(void *ep, const void *msg, size_t len, int timeout_ms)
{
    struct shared *s = ((struct ep *)ep)->c->s;
    int64_t end = now_ms() + timeout_ms;
    uint64_t pos = atomic_load_explicit(&s->enq, memory_order_relaxed);
    for (;;) {
        struct cell *c = cell_at(s, pos);
        int64_t dif = (int64_t)(atomic_load_explicit(&c->seq, memory_order_acquire) - pos);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&s->enq, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                /* claimed: a death from here to the store below loses the cell for good */
                c->len = (uint32_t)len;
                memcpy(c->data, msg, len);
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return 0;
            }
        } else if (dif < 0) {
            if (now_ms() >= end) return -ETIMEDOUT;
            nap();
            pos = atomic_load_explicit(&s->enq, memory_order_relaxed);
        } else {
            pos = atomic_load_explicit(&s->enq, memory_order_relaxed);
        }
    }
}

static ssize_t recv_msg(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct shared *s = ((struct ep *)ep)->c->s;
    int64_t end = now_ms() + timeout_ms;
    uint64_t pos = atomic_load_explicit(&s->deq, memory_order_relaxed);
    for (;;) {
        struct cell *c = cell_at(s, pos);
        int64_t dif = (int64_t)(atomic_load_explicit(&c->seq, memory_order_acquire) - (pos + 1));
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&s->deq, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                uint32_t l = c->len;
                if (l > cap) return -EMSGSIZE;
                memcpy(buf, c->data, l);
                atomic_store_explicit(&c->seq, pos + NCELL, memory_order_release);
                return l;
            }
        } else if (dif < 0) {
            if (atomic_load(&s->closed) == s->producers && atomic_load(&s->enq) == pos)
                return -EPIPE;
            if (now_ms() >= end) return -ETIMEDOUT;
            nap();
            pos = atomic_load_explicit(&s->deq, memory_order_relaxed);
        } else {
            pos = atomic_load_explicit(&s->deq, memory_order_relaxed);
        }
    }
}

static void close_ep(void *ep)
{
    struct ep *e = ep;
    if (e->role == IPCP_ROLE_PRODUCER) atomic_fetch_add(&e->c->s->closed, 1);
    free(e);
}

static void destroy(void *ctx)
{
    struct ctx *c = ctx;
    munmap(c->s, c->len);
    free(c);
}

static const struct ipcp_channel_ops ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "mpmc-claim",
    .flags = 0,
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
