/* broken_ring_relaxed.c - DELIBERATELY BROKEN: a ring whose indices use relaxed atomics.
 *
 * good_ring.c with every acquire and release on head and tail replaced by relaxed. The order of
 * the statements is right, and on x86 the hardware keeps stores in order, so process-mode runs
 * pass: the bug is in the memory model, not in the code you read. ThreadSanitizer sees it: run
 * the thread-mode cases in a TSan build with the plugin built with -fsanitize=thread, and it
 * reports a data race on the record bytes (`race`):
 *     clang-14 -shared -fPIC -O1 -fsanitize=thread -I<ipcproof>/include \
 *         broken_ring_relaxed.c -o broken_ring_relaxed-tsan.so
 *     ipcproof validate --plugin ./broken_ring_relaxed.so --plugin-tsan
 * ./broken_ring_relaxed-tsan.so or simply `ipcproof validate --plugin-src broken_ring_relaxed.c`.
 * The fix is good_ring.c. */
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
    /* BUG: relaxed. Nothing orders the consumer's reads of the old record before our writes */
    while (head + 4 + len - atomic_load_explicit(&r->tail, memory_order_relaxed) > r->size)
        if (wait_step(deadline, &spins) < 0) return -ETIMEDOUT;
    uint32_t l32 = (uint32_t)len;
    copy_in(r, head, &l32, 4);
    copy_in(r, head + 4, msg, len);
    /* BUG: relaxed instead of release. The signal fence keeps the compiler from moving the
     * copy below the store, so on x86 (whose stores are not reordered with each other) this
     * "works"; on ARM or POWER the consumer can see head before the bytes. Only a tool that
     * checks the memory model finds it: ThreadSanitizer in thread mode reports the data race. */
    atomic_signal_fence(memory_order_seq_cst);
    atomic_store_explicit(&r->head, head + 4 + len, memory_order_relaxed);
    return 0;
}

static ssize_t recv_msg(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct ring *r = ep;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ns() + (int64_t)timeout_ms * 1000000;
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed); /* ours alone */
    unsigned spins = 0;
    /* BUG: relaxed instead of acquire (see send_msg) */
    while (atomic_load_explicit(&r->head, memory_order_relaxed) == tail)
        if (wait_step(deadline, &spins) < 0) return -ETIMEDOUT;
    uint32_t len;
    copy_out(r, tail, &len, 4);
    if (len > r->max_msg) return -EBADMSG; /* shared memory is not trusted */
    if (len > cap) return -EMSGSIZE;
    copy_out(r, tail + 4, buf, len);
    atomic_signal_fence(memory_order_seq_cst);
    /* BUG: relaxed instead of release */
    atomic_store_explicit(&r->tail, tail + 4 + len, memory_order_relaxed);
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
    .name = "example-broken-ring-relaxed",
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
