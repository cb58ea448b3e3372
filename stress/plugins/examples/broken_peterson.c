/* broken_peterson.c - DELIBERATELY BROKEN: Peterson's lock with release stores and acquire loads.
 *
 * Peterson's algorithm needs each contender's "I want in" store to be visible before it reads the
 * other's flag: a store followed by a load of another location. Release/acquire does not order
 * those (nor does x86: its store buffer lets the load pass the store), so both contenders can
 * read the other's flag as 0 and enter together. The fix is seq_cst (an mfence on x86):
 * `--opt seq_cst=1` makes the same lock correct.
 *
 * Real hardware shows the bug rarely; `--mode sched` with its x86-TSO store buffer (the default
 * memory model there) shows it in the first schedules, and with `--memory sc` never:
 *     ipcproof stress --plugin ./broken_peterson-tsan.so --kind lock --mode sched   -> exclusion
 *     ipcproof stress --plugin ./broken_peterson-tsan.so --kind lock --mode sched --opt seq_cst=1
 * Two contenders only (create() refuses more). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <ipcproof/plugin.h>

struct shared {
    _Atomic uint32_t flag[2];
    _Atomic uint32_t turn;
    int seq_cst; /* set by create() before any fork */
};

struct handle {
    struct shared *sh;
    uint32_t me;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int create(const struct ipcp_lock_cfg *cfg, void **ctx)
{
    if (cfg->workers != 2) return -EINVAL;
    struct shared *sh =
        mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) return -errno;
    sh->seq_cst = strstr(cfg->options, "seq_cst=1") != NULL;
    *ctx = sh;
    return 0;
}

static int open_h(void *ctx, uint32_t index, void **out)
{
    struct handle *h = malloc(sizeof(*h));
    if (h == NULL) return -ENOMEM;
    h->sh = ctx;
    h->me = index;
    *out = h;
    return 0;
}

static int lock(void *hp, int timeout_ms)
{
    struct handle *h = hp;
    struct shared *sh = h->sh;
    uint32_t other = 1 - h->me;
    memory_order st = sh->seq_cst ? memory_order_seq_cst : memory_order_release;
    memory_order ld = sh->seq_cst ? memory_order_seq_cst : memory_order_acquire;
    atomic_store_explicit(&sh->flag[h->me], 1, st);
    atomic_store_explicit(&sh->turn, other, st);
    int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;
    while (atomic_load_explicit(&sh->flag[other], ld) &&
           atomic_load_explicit(&sh->turn, ld) == other) {
        if (now_ns() >= deadline) { /* withdraw, so that the other is not blocked by us */
            atomic_store_explicit(&sh->flag[h->me], 0, st);
            return -ETIMEDOUT;
        }
        sched_yield();
    }
    return 0;
}

static int unlock(void *hp)
{
    struct handle *h = hp;
    atomic_store_explicit(&h->sh->flag[h->me], 0,
                          h->sh->seq_cst ? memory_order_seq_cst : memory_order_release);
    return 0;
}

static void close_h(void *hp)
{
    free(hp);
}

static void destroy(void *ctx)
{
    munmap(ctx, sizeof(struct shared));
}

static const struct ipcp_lock_ops ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "example-peterson",
    .flags = 0,
    .create = create,
    .open = open_h,
    .lock = lock,
    .unlock = unlock,
    .close = close_h,
    .destroy = destroy,
};

const struct ipcp_lock_ops *ipcp_plugin_lock(void)
{
    return &ops;
}
