/* broken_robust_lie.c - DELIBERATELY BROKEN: a lock that claims IPCP_LOCK_ROBUST but loses its
 * token when the holder dies.
 *
 * The token lock of broken_two_tokens.c with its single token, which is a correct lock as long
 * as nobody dies. It sets IPCP_LOCK_ROBUST anyway. A holder that is killed inside the critical
 * section takes the token with it: nobody can ever lock again. `ipcproof stress --fault kill`
 * SIGKILLs a holder inside the critical section and its watchdog reports `deadlock`, with every
 * other worker waiting in lock():
 *     ipcproof stress --plugin ./broken_robust_lie.so --workers 4 --fault kill --duration 2
 * Fixes: do not claim robustness; or make the token recoverable (record the holder's pid next
 * to the token and let a waiter that times out check it, as core's mq-token lock does), or use
 * a robust pthread mutex (good_robust_mutex.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, F_SETPIPE_SZ, MAP_ANONYMOUS */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <ipcproof/plugin.h>

struct ctx {
    int fds[2]; /* the token pipe: a byte in it is a free token */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int create(const struct ipcp_lock_cfg *cfg, void **out)
{
    (void)cfg;
    struct ctx *x = calloc(1, sizeof(*x));
    if (x == NULL) return -ENOMEM;
    if (pipe2(x->fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        int e = errno;
        free(x);
        return -e;
    }
    if (write(x->fds[1], "T", 1) != 1) { /* one token: fine */
        int e = errno;
        close(x->fds[0]);
        close(x->fds[1]);
        free(x);
        return -e;
    }
    *out = x;
    return 0;
}

static int open_h(void *ctx, uint32_t index, void **h)
{
    (void)index;
    *h = ctx;
    return 0;
}

/* Takes a token: read one byte, waiting in poll() up to the timeout. */
static int lock(void *h, int timeout_ms)
{
    struct ctx *x = h;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        char t;
        ssize_t n = read(x->fds[0], &t, 1);
        if (n == 1) return 0;
        if (n < 0 && errno != EAGAIN && errno != EINTR) return -errno;
        int left = deadline < 0 ? -1 : (int)(deadline - now_ms());
        if (deadline >= 0 && left <= 0) return -ETIMEDOUT;
        struct pollfd p = {.fd = x->fds[0], .events = POLLIN};
        if (poll(&p, 1, left) < 0 && errno != EINTR) return -errno;
    }
}

/* Gives the token back (the pipe has room for it: at most one token is ever out). */
static int unlock(void *h)
{
    struct ctx *x = h;
    for (;;) {
        ssize_t n = write(x->fds[1], "T", 1);
        if (n == 1) return 0;
        if (n < 0 && errno != EINTR && errno != EAGAIN) return -errno;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = x->fds[1], .events = POLLOUT};
            poll(&p, 1, 10);
        }
    }
}

static void close_h(void *h)
{
    (void)h;
}

static void destroy(void *ctx)
{
    struct ctx *x = ctx;
    close(x->fds[0]);
    close(x->fds[1]);
    free(x);
}

static const struct ipcp_lock_ops ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "example-broken-robust-lie",
    .flags = IPCP_LOCK_ROBUST /* BUG: a claim it cannot keep */,
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
