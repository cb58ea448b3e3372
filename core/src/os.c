/* os.c - the real syscalls behind struct ipcp_io_ops, converted once from -1/errno to -errno.
 * EINTR is returned, not retried, so that callers re-check their deadlines. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
#include "ipcproof/fdchan.h"

static ssize_t os_read(void *ctx, int fd, void *buf, size_t n)
{
    (void)ctx;
    ssize_t r = read(fd, buf, n);
    return r < 0 ? -errno : r;
}

static ssize_t os_writev(void *ctx, int fd, const struct iovec *iov, int iovcnt)
{
    (void)ctx;
    ssize_t r = writev(fd, iov, iovcnt);
    return r < 0 ? -errno : r;
}

static ssize_t os_recvmsg(void *ctx, int fd, struct msghdr *msg, int flags)
{
    (void)ctx;
    ssize_t r = recvmsg(fd, msg, flags);
    return r < 0 ? -errno : r;
}

static ssize_t os_sendmsg(void *ctx, int fd, const struct msghdr *msg, int flags)
{
    (void)ctx;
    ssize_t r = sendmsg(fd, msg, flags);
    return r < 0 ? -errno : r;
}

static int os_poll(void *ctx, struct pollfd *fds, nfds_t nfds, int timeout_ms)
{
    (void)ctx;
    int r = poll(fds, nfds, timeout_ms);
    return r < 0 ? -errno : r;
}

static const struct ipcp_io_ops ipcp_os_io = {
    .read = os_read,
    .writev = os_writev,
    .recvmsg = os_recvmsg,
    .sendmsg = os_sendmsg,
    .poll = os_poll,
    .ctx = NULL,
};

const struct ipcp_io_ops *ipcp_io_default(void)
{
    return &ipcp_os_io;
}

uint64_t ipcp__proc_u64(const char *path, uint64_t dflt)
{
    char buf[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dflt;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return dflt;
    buf[n] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    /* a value that makes no sense (empty, negative, garbage, overflow): the caller's default */
    if (end == buf || buf[0] == '-' || errno != 0 || (*end != '\n' && *end != '\0') || v == 0)
        return dflt;
    return (uint64_t)v;
}
