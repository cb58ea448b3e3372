/* broken_robust_owner_after_cas.c - DELIBERATELY BROKEN: a robust lock that records its owner one
 * step after taking the lock.
 *
 * lock() takes a `locked` word with a compare-exchange and then writes its pid into `owner`; a
 * contender that finds the lock taken by a pid that is no longer alive takes it over and returns
 * 1 (the previous holder died), as IPCP_LOCK_ROBUST promises. But a holder that dies between the
 * compare-exchange and the owner store leaves the lock taken with no owner: nobody can tell it is
 * dead, and everybody waits for ever. Only a death between those two instructions shows it, which
 * a kill at a random moment almost never hits. The crash points of `ipcproof stress` kill the
 * holder at every scheduling point of its lock() and unlock() in turn, and find it every time:
 *     ipcproof stress --plugin ./broken_robust_owner_after_cas-tsan.so --kind lock --workers 3 \
 *                     --crash-points          -> deadlock at crash point 2
 * The fix (`--opt fixed=1`): one word that holds the owner's pid, taken with one compare-exchange,
 * so the lock is never taken without an owner. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <ipcproof/plugin.h>

struct shared {
    _Atomic uint32_t locked; /* broken variant: 1 while held */
    _Atomic int32_t owner;   /* the holder's pid (the fixed variant: the lock itself) */
    int fixed;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int dead(int32_t pid)
{
    return pid > 0 && kill(pid, 0) < 0 && errno == ESRCH;
}

static int create(const struct ipcp_lock_cfg *cfg, void **ctx)
{
    struct shared *sh =
        mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) return -errno;
    sh->fixed = strstr(cfg->options, "fixed=1") != NULL;
    *ctx = sh;
    return 0;
}

static int open_h(void *ctx, uint32_t index, void **h)
{
    (void)index;
    *h = ctx;
    return 0;
}

static int lock_fixed(struct shared *sh, int32_t me, int64_t deadline)
{
    for (;;) {
        int32_t cur = 0;
        if (atomic_compare_exchange_strong(&sh->owner, &cur, me)) return 0;
        if (dead(cur) && atomic_compare_exchange_strong(&sh->owner, &cur, me)) return 1;
        if (now_ns() >= deadline) return -ETIMEDOUT;
        sched_yield();
    }
}

static int lock(void *h, int timeout_ms)
{
    struct shared *sh = h;
    int32_t me = (int32_t)getpid();
    int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;
    if (sh->fixed) return lock_fixed(sh, me, deadline);
    for (;;) {
        uint32_t free_ = 0;
        if (atomic_compare_exchange_strong(&sh->locked, &free_, 1)) {
            atomic_store(&sh->owner, me); /* a death just before this line: nobody owns it */
            return 0;
        }
        int32_t cur = atomic_load(&sh->owner);
        if (dead(cur) && atomic_compare_exchange_strong(&sh->owner, &cur, me)) return 1;
        if (now_ns() >= deadline) return -ETIMEDOUT;
        sched_yield();
    }
}

static int unlock(void *h)
{
    struct shared *sh = h;
    if (sh->fixed) {
        atomic_store(&sh->owner, 0);
        return 0;
    }
    atomic_store(&sh->owner, 0);
    atomic_store(&sh->locked, 0);
    return 0;
}

static void close_h(void *h)
{
    (void)h;
}

static void destroy(void *ctx)
{
    munmap(ctx, sizeof(struct shared));
}

static const struct ipcp_lock_ops ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "example-robust-owner-after-cas",
    .flags = IPCP_LOCK_ROBUST,
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
