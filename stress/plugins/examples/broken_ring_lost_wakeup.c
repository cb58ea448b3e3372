/* broken_ring_lost_wakeup.c - a ring whose sleeping consumer can miss its wake-up.
 *
 *     clang-14 -shared -fPIC -O1 -fsanitize=thread -I<ipcproof>/include \
 *         broken_ring_lost_wakeup.c -o broken_ring_lost_wakeup.so
 *     ipcproof stress --plugin ./broken_ring_lost_wakeup.so --mode sched --lost-wakeups
 *
 * good_ring.c with futex sleeps instead of short naps: a consumer that finds the ring empty
 * announces itself (sleeps = 1), checks head again and sleeps in FUTEX_WAIT on head for at most
 * a 20 ms slice; the producer, after publishing head, wakes it when the flag is set. The bug (the
 * one core/src/ring.c once had): the producer clears the flag itself, after loading it. If the
 * consumer woke meanwhile (head had changed), took the record and announced its next sleep, the
 * producer's store wipes that announcement, and the next publish sees no sleeper and does not
 * wake it: the consumer sleeps out the whole slice. Nothing is lost or reordered, so every other
 * check passes, and in real time it is only latency; under the scheduler, `--lost-wakeups`
 * reports the moment nobody can run while the consumer sleeps on a word that changed. The fix:
 * only the sleeper clears its flag (when its wait ends). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <ipcproof/plugin.h>

#define SLICE_NS 20000000 /* a sleep is never longer: a lost wake-up costs one slice */

struct ring {
    _Alignas(64) _Atomic uint32_t head; /* written by the producer; the consumer sleeps on it */
    _Atomic uint32_t sleeps;            /* the consumer announces its sleep here */
    _Alignas(64) _Atomic uint32_t tail; /* written by the consumer */
    _Alignas(64) uint32_t size;         /* power of two; set by create() before any fork */
    uint32_t max_msg;
    uint8_t data[];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void copy_in(struct ring *r, uint32_t pos, const void *src, size_t n)
{
    uint32_t off = pos & (r->size - 1), first = r->size - off;
    if (first > n) first = (uint32_t)n;
    memcpy(r->data + off, src, first);
    memcpy(r->data, (const uint8_t *)src + first, n - first);
}

static void copy_out(const struct ring *r, uint32_t pos, void *dst, size_t n)
{
    uint32_t off = pos & (r->size - 1), first = r->size - off;
    if (first > n) first = (uint32_t)n;
    memcpy(dst, r->data + off, first);
    memcpy((uint8_t *)dst + first, r->data, n - first);
}

static int create(const struct ipcp_chan_cfg *cfg, void **ctx)
{
    if (cfg->producers != 1 || cfg->consumers != 1) return -EINVAL;
    if (cfg->max_msg > (1u << 24)) return -EMSGSIZE;
    uint64_t want = 2 * (cfg->max_msg + 4), size = 4096;
    if (cfg->capacity > want) want = cfg->capacity;
    while (size < want)
        size <<= 1;
    struct ring *r =
        mmap(NULL, sizeof(*r) + size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) return -errno;
    r->size = (uint32_t)size;
    r->max_msg = (uint32_t)cfg->max_msg;
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
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed); /* ours alone */
    while (head + 4 + len - atomic_load_explicit(&r->tail, memory_order_acquire) > r->size) {
        if (deadline >= 0 && now_ns() >= deadline) return -ETIMEDOUT;
        struct timespec ts = {0, 20000}; /* a full ring: the producer naps (not the point here) */
        nanosleep(&ts, NULL);
    }
    uint32_t l32 = (uint32_t)len;
    copy_in(r, head, &l32, 4);
    copy_in(r, head + 4, msg, len);
    atomic_store(&r->head, head + 4 + (uint32_t)len); /* seq_cst: before the load of sleeps */
    if (atomic_load(&r->sleeps)) {
        atomic_store_explicit(&r->sleeps, 0, memory_order_relaxed); /* THE BUG: not ours */
        syscall(SYS_futex, &r->head, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
    return 0;
}

static ssize_t recv_msg(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct ring *r = ep;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ns() + (int64_t)timeout_ms * 1000000;
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed); /* ours alone */
    uint32_t head;
    while ((head = atomic_load_explicit(&r->head, memory_order_acquire)) == tail) {
        int64_t now = now_ns(), left = deadline < 0 ? SLICE_NS : deadline - now;
        if (left <= 0) return -ETIMEDOUT;
        atomic_store(&r->sleeps, 1); /* seq_cst: before the second look at head */
        if (atomic_load(&r->head) == head) {
            struct timespec ts = {0, left < SLICE_NS ? left : SLICE_NS};
            syscall(SYS_futex, &r->head, FUTEX_WAIT, head, &ts, NULL, 0);
        }
    }
    uint32_t len;
    copy_out(r, tail, &len, 4);
    if (head - tail < 4 || len > head - tail - 4 || len > r->max_msg) return -EBADMSG;
    if (len > cap) return -EMSGSIZE;
    copy_out(r, tail + 4, buf, len);
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
    .name = "example-broken-ring-lost-wakeup",
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
