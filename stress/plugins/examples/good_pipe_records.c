/* good_pipe_records.c - the lecture's pipe protocol done right: fixed-size records.
 *
 * Every message is padded to one record of REC = PIPE_BUF bytes (a 4-byte length, then the
 * bytes), written with one write(2), which POSIX makes atomic at that size: records of several
 * producers never mix. Every read(2) asks for exactly one record, and POSIX returns fewer bytes
 * than asked from a pipe only when fewer are there - the pipe only ever holds whole records, so
 * a read returns one whole record or nothing. No loop over partial reads or writes is needed,
 * and `--fault short-io` rightly finds nothing to cut short (only what a kernel could do is
 * injected: docs/stress.md). What does need care:
 *   - both ends are non-blocking: with several consumers, poll() may say "readable" to two of
 *     them and only one gets the record (the other must not sleep in read() for good), and with
 *     several producers "writable" to two when only one record fits; the loser returns -EAGAIN
 *     and the harness calls again. Waits are in poll() only, bounded by the timeout; a signal
 *     that interrupts it (--fault signals) makes it -EINTR, also called again;
 *   - messages above REC - 4 bytes are refused (-EMSGSIZE): `validate` then runs its cases with
 *     smaller messages, and the cases about big messages are not applicable.
 * Any number of producers and consumers. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ipcproof/plugin.h>

#define REC PIPE_BUF
struct ctx {
    int fd[2];
};
struct ep {
    struct ctx *c;
    char rec[REC];
};

static int create(const struct ipcp_chan_cfg *cfg, void **out)
{
    if (cfg->max_msg > REC - 4) return -EMSGSIZE;
    struct ctx *c = malloc(sizeof(*c));
    if (!c) return -ENOMEM;
    if (pipe2(c->fd, O_CLOEXEC | O_NONBLOCK) < 0) {
        free(c);
        return -errno;
    }
    *out = c;
    return 0;
}
static int open_(void *ctx, int role, uint32_t i, void **out)
{
    (void)role;
    (void)i;
    struct ep *e = malloc(sizeof(*e));
    if (!e) return -ENOMEM;
    e->c = ctx;
    *out = e;
    return 0;
}
static int wait_fd(int fd, short ev, int timeout_ms)
{
    struct pollfd p = {fd, ev, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r == 0) return -ETIMEDOUT;
    if (r < 0) return -errno;
    return 0;
}
static int send_(void *ep, const void *msg, size_t len, int timeout_ms)
{
    struct ep *e = ep;
    int r = wait_fd(e->c->fd[1], POLLOUT, timeout_ms);
    if (r < 0) return r;
    uint32_t l = (uint32_t)len;
    memcpy(e->rec, &l, 4);
    memcpy(e->rec + 4, msg, len);
    /* all or nothing (atomic); EAGAIN: another producer filled the pipe since poll() */
    ssize_t w = write(e->c->fd[1], e->rec, REC);
    if (w == REC) return 0;
    if (w < 0) return -errno; /* -EAGAIN: nothing written, the harness sends it again */
    return -EIO;              /* cannot happen for an atomic write */
}
static ssize_t recv_(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct ep *e = ep;
    int r = wait_fd(e->c->fd[0], POLLIN, timeout_ms);
    if (r < 0) return r;
    ssize_t n = read(e->c->fd[0], e->rec, REC);
    if (n < 0) return -errno; /* EAGAIN: another consumer took it; EINTR: nothing read */
    if (n == 0) return -EPIPE;
    if (n != REC) return -EIO; /* POSIX says it cannot happen: whole records only */
    uint32_t l;
    memcpy(&l, e->rec, 4);
    if (l > cap || l > REC - 4) return -EMSGSIZE;
    memcpy(buf, e->rec + 4, l);
    return l;
}
static void close_(void *ep)
{
    free(ep);
}
static void destroy(void *ctx)
{
    struct ctx *c = ctx;
    close(c->fd[0]);
    close(c->fd[1]);
    free(c);
}
static const struct ipcp_channel_ops ops = {
    IPCP_PLUGIN_ABI_VERSION, "pipe-records", 0, create, open_, send_, recv_, close_, destroy};
const struct ipcp_channel_ops *ipcp_plugin_channel(void)
{
    return &ops;
}
