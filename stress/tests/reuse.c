/* reuse.c - a correct channel whose endpoints reuse each other's freed memory, for the race
 * detector of --mode sched (sched.cmake).
 *
 * A one-slot mailbox between two process-shared semaphores. After each send() and recv(), past
 * the post (so unordered with what the other endpoint does meanwhile), the endpoint takes a block,
 * writes it and gives it back: with --opt reuse=heap a malloc() above the mmap threshold (glibc
 * maps it, and its free() unmaps it), with reuse=map an anonymous mmap(). The kernel hands the hole
 * just unmapped to the next mapping, so the other endpoint's next block is often the same memory. A
 * detector that remembered the first block's writes would call the second block's a race: it
 * must not. --opt reuse=none skips the blocks. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <malloc.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <ipcproof/plugin.h>

#define BLOCK (256u * 1024) /* above glibc's mmap threshold: a mapping of its own */

enum { REUSE_HEAP, REUSE_MAP, REUSE_NONE };

struct box {
    sem_t empty, full;
    int reuse;
    size_t len, max_msg;
    uint8_t data[];
};

/* A block written and given back, outside any synchronisation. */
static void churn(const struct box *b, int byte)
{
    if (b->reuse == REUSE_HEAP) {
        mallopt(M_MMAP_THRESHOLD, BLOCK / 2); /* fixed: glibc would raise it after a free */
        uint8_t *p = malloc(BLOCK);
        if (p == NULL) return;
        memset(p, byte, 4096);
        __asm__ __volatile__("" : : "r"(p) : "memory"); /* or the compiler drops the block */
        free(p);
    } else if (b->reuse == REUSE_MAP) {
        uint8_t *p = mmap(NULL, BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return;
        memset(p, byte, 4096);
        munmap(p, BLOCK);
    }
}

static int create(const struct ipcp_chan_cfg *cfg, void **ctx)
{
    if (cfg->producers != 1 || cfg->consumers != 1) return -EINVAL;
    struct box *b = mmap(NULL, sizeof(*b) + cfg->max_msg, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) return -errno;
    sem_init(&b->empty, 1, 1);
    sem_init(&b->full, 1, 0);
    b->max_msg = cfg->max_msg;
    const char *o = cfg->options ? strstr(cfg->options, "reuse=") : NULL;
    b->reuse = o == NULL || strncmp(o + 6, "heap", 4) == 0 ? REUSE_HEAP
               : strncmp(o + 6, "map", 3) == 0             ? REUSE_MAP
                                                           : REUSE_NONE;
    *ctx = b;
    return 0;
}

static int open_ep(void *ctx, int role, uint32_t index, void **ep)
{
    (void)role;
    (void)index;
    *ep = ctx;
    return 0;
}

/* Waits for the semaphore until timeout_ms (-1: for ever). */
static int take(sem_t *s, int timeout_ms)
{
    if (timeout_ms < 0) return sem_wait(s) == 0 ? 0 : -errno;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + (int64_t)timeout_ms * 1000000;
    ts.tv_sec = t / 1000000000;
    ts.tv_nsec = t % 1000000000;
    return sem_timedwait(s, &ts) == 0 ? 0 : -errno;
}

static int send_msg(void *ep, const void *msg, size_t len, int timeout_ms)
{
    struct box *b = ep;
    if (len > b->max_msg) return -EMSGSIZE;
    int r = take(&b->empty, timeout_ms);
    if (r < 0) return r;
    memcpy(b->data, msg, len);
    b->len = len;
    sem_post(&b->full);
    churn(b, 0x50);
    return 0;
}

static ssize_t recv_msg(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct box *b = ep;
    int r = take(&b->full, timeout_ms);
    if (r < 0) return r;
    size_t len = b->len;
    if (len > cap) len = cap; /* the harness's buffer holds max_msg: never */
    memcpy(buf, b->data, len);
    sem_post(&b->empty);
    churn(b, 0xc0);
    return (ssize_t)len;
}

static void close_ep(void *ep)
{
    (void)ep;
}

static void destroy(void *ctx)
{
    struct box *b = ctx;
    sem_destroy(&b->empty);
    sem_destroy(&b->full);
    munmap(b, sizeof(*b) + b->max_msg);
}

static const struct ipcp_channel_ops ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "fixture-reuse",
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
