/* good_ring.c - a correct single-producer single-consumer ring in shared memory.
 *
 *     cc -shared -fPIC -O2 -I<ipcproof>/include good_ring.c -o good_ring.so
 *     ipcproof validate --plugin ./good_ring.so
 *
 * The reference for the two broken rings next to it (broken_ring_early_publish.c,
 * broken_ring_relaxed.c). A byte ring of 2^k bytes in a MAP_SHARED anonymous mapping made by
 * create() (so forked workers and threads share it, threads at the same address). Records are
 * a 4-byte length and the bytes, copied modulo the size. `head` and `tail` run freely and are
 * masked on use; each sits on its own cache line. The two rules that make it correct:
 *  - the producer copies the record first and only then publishes it with a store-release of
 *    head; the consumer reads head with a load-acquire before touching the bytes;
 *  - the consumer copies the record out first and only then frees the space with a
 *    store-release of tail; the producer reads tail with a load-acquire.
 * One producer and one consumer only: create() refuses other counts with -EINVAL (validate shows
 * those cases as not applicable). Waiting is polling with short sleeps, bounded by the timeout. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, F_SETPIPE_SZ, MAP_ANONYMOUS */
#endif
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <ipcproof/plugin.h>

struct ring {
    _Alignas(64) _Atomic uint64_t head; /* written by the producer */
    _Alignas(64) _Atomic uint64_t tail; /* written by the consumer */
    _Alignas(64) uint64_t size;         /* power of two; set by create() before any fork */
    size_t max_msg;
    uint8_t data[];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One step of waiting: spin a little, then sleep. Returns -ETIMEDOUT once the deadline passed. */
static int wait_step(int64_t deadline, unsigned *spins)
{
    if (deadline >= 0 && now_ns() >= deadline) return -ETIMEDOUT;
    if (++*spins < 64) {
        sched_yield();
    } else {
        struct timespec ts = {0, 20000}; /* EINTR only shortens it */
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void copy_in(struct ring *r, uint64_t pos, const void *src, size_t n)
{
    uint64_t off = pos & (r->size - 1), first = r->size - off;
    if (first > n) first = n;
    memcpy(r->data + off, src, first);
    memcpy(r->data, (const uint8_t *)src + first, n - first);
}

static void copy_out(const struct ring *r, uint64_t pos, void *dst, size_t n)
{
    uint64_t off = pos & (r->size - 1), first = r->size - off;
    if (first > n) first = n;
    memcpy(dst, r->data + off, first);
    memcpy((uint8_t *)dst + first, r->data, n - first);
}

static int create(const struct ipcp_chan_cfg *cfg, void **ctx)
{
    if (cfg->producers != 1 || cfg->consumers != 1) return -EINVAL;
    if (cfg->max_msg > (1u << 30)) return -EMSGSIZE;
    uint64_t want = 2 * (cfg->max_msg + 4), size = 4096;
    if (cfg->capacity > want) want = cfg->capacity;
    while (size < want)
        size <<= 1;
    struct ring *r =
        mmap(NULL, sizeof(*r) + size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) return -errno;
    r->size = size;
    r->max_msg = cfg->max_msg;
    *ctx = r;
    return 0;
}

static int open_ep(void *ctx, int role, uint32_t index, void **ep)
{
    (void)role;
    (void)index;
    *ep = ctx;
    return 0;
}

static int send_msg(void *ep, const void *msg, size_t len, int timeout_ms)
{
    struct ring *r = ep;
    if (len > r->max_msg) return -EMSGSIZE;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ns() + (int64_t)timeout_ms * 1000000;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed); /* ours alone */
    unsigned spins = 0;
    /* acquire: the consumer finished reading the space it released before we reuse it */
    while (head + 4 + len - atomic_load_explicit(&r->tail, memory_order_acquire) > r->size)
        if (wait_step(deadline, &spins) < 0) return -ETIMEDOUT;
    uint32_t l32 = (uint32_t)len;
    copy_in(r, head, &l32, 4);
    copy_in(r, head + 4, msg, len);
    /* release: the record's bytes are visible before the new head is */
    atomic_store_explicit(&r->head, head + 4 + len, memory_order_release);
    return 0;
}

static ssize_t recv_msg(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct ring *r = ep;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ns() + (int64_t)timeout_ms * 1000000;
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed); /* ours alone */
    unsigned spins = 0;
    /* acquire: pairs with the producer's release of head; the record's bytes are visible */
    while (atomic_load_explicit(&r->head, memory_order_acquire) == tail)
        if (wait_step(deadline, &spins) < 0) return -ETIMEDOUT;
    uint32_t len;
    copy_out(r, tail, &len, 4);
    if (len > r->max_msg) return -EBADMSG; /* shared memory is not trusted */
    if (len > cap) return -EMSGSIZE;
    copy_out(r, tail + 4, buf, len);
    /* release: we are done reading the record before the producer may overwrite it */
    atomic_store_explicit(&r->tail, tail + 4 + len, memory_order_release);
    return (ssize_t)len;
}

static void close_ep(void *ep)
{
    (void)ep;
}

static void destroy(void *ctx)
{
    struct ring *r = ctx;
    munmap(r, sizeof(*r) + r->size);
}

static const struct ipcp_channel_ops ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "example-good-ring",
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
