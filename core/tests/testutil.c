/* testutil.c - see testutil.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcproof/fdchan.h"
#include "ipcproof/xport.h"
#include "testutil.h"

void tu_fill(void *buf, size_t len, uint64_t seed)
{
    uint8_t *p = buf;
    uint64_t st = seed;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = splitmix64_next(&st);
        memcpy(p + i, &v, 8);
    }
    if (i < len) {
        uint64_t v = splitmix64_next(&st);
        memcpy(p + i, &v, len - i);
    }
}

int tu_check(const void *buf, size_t len, uint64_t seed)
{
    const uint8_t *p = buf;
    uint64_t st = seed;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = splitmix64_next(&st);
        if (memcmp(p + i, &v, 8) != 0) return 0;
    }
    if (i < len) {
        uint64_t v = splitmix64_next(&st);
        if (memcmp(p + i, &v, len - i) != 0) return 0;
    }
    return 1;
}

pid_t tu_spawn(int (*fn)(void *), void *arg)
{
    pid_t pid = fork();
    if (pid == 0) _exit(fn(arg) & 0xff);
    return pid;
}

int tu_wait(pid_t pid, int timeout_ms)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return st;
        if (r < 0 && errno != EINTR) return -1;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (ms > timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

void tu_wait_ok(pid_t pid, int timeout_ms)
{
    int st = tu_wait(pid, timeout_ms);
    if (st == -1) fail_msg("child %d timed out after %d ms", (int)pid, timeout_ms);
    if (WIFSIGNALED(st)) fail_msg("child %d killed by signal %d", (int)pid, WTERMSIG(st));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("child %d exited with %d", (int)pid, WEXITSTATUS(st));
}

pid_t tu_spawn_ready(int (*fn)(void *), void *arg, int *ready_fd, char *said)
{
    int fd[2];
    assert_int_equal(pipe2(fd, O_CLOEXEC), 0);
    *ready_fd = fd[1];
    pid_t pid = tu_spawn(fn, arg);
    assert_true(pid > 0);
    char c = 0;
    ssize_t n = read(fd[0], &c, 1);
    close(fd[0]);
    close(fd[1]);
    if (n != 1) fail_msg("child %d ended before it was ready", (int)pid);
    if (said != NULL) *said = c;
    return pid;
}

int tu_shm_count(const char *prefix)
{
    DIR *d = opendir("/dev/shm");
    if (d == NULL) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    closedir(d);
    return n;
}

const char *tu_name(char *buf, size_t cap)
{
    static unsigned n;
    snprintf(buf, cap, "ipcp-test-%ld-%u", (long)getpid(), n++);
    return buf;
}

int tu_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    if (d != NULL) closedir(d);
    return n - 1; /* the directory's own fd */
}

int tu_scaled(int n)
{
    const char *e = getenv("IPCP_TEST_SCALE");
    long pct = e != NULL ? strtol(e, NULL, 10) : 100;
    if (pct <= 0) pct = 100;
    long v = (long)n * pct / 100;
    return v < 1 ? 1 : (int)v;
}

void tu_xpair_make(enum tu_xkind k, struct tu_xpair *x)
{
    const int wait_ms = 20000;
    int fds[2];
    memset(x, 0, sizeof(*x));
    x->kind = IPCP_FDCHAN_STREAM;
    switch (k) {
    case TU_PIPE:
        assert_int_equal(ipcp_xport_pipe(fds, 1 << 20), 0);
        x->rfd = fds[0];
        x->wfd = fds[1];
        break;
    case TU_FIFO:
        tu_name(x->path + 5, sizeof(x->path) - 5);
        memcpy(x->path, "/tmp/", 5);
        assert_int_equal(ipcp_xport_fifo_create(x->path), 0);
        x->rfd = ipcp_xport_fifo_open_reader(x->path);
        assert_true(x->rfd >= 0);
        x->wfd = ipcp_xport_fifo_open_writer(x->path, wait_ms);
        assert_true(x->wfd >= 0);
        x->kind = IPCP_FDCHAN_FIFO;
        break;
    case TU_UNIX:
        assert_int_equal(ipcp_xport_unix_pair(SOCK_STREAM, fds, 0), 0);
        x->rfd = fds[0];
        x->wfd = fds[1];
        break;
    case TU_SEQPACKET:
        assert_int_equal(ipcp_xport_unix_pair(SOCK_SEQPACKET, fds, 1 << 20), 0);
        x->rfd = fds[0];
        x->wfd = fds[1];
        x->kind = IPCP_FDCHAN_SEQPACKET;
        break;
    case TU_TCP: {
        uint16_t port = 0;
        int l = ipcp_xport_tcp_listen(&port);
        assert_true(l >= 0);
        x->wfd = ipcp_xport_tcp_connect(port, wait_ms);
        assert_true(x->wfd >= 0);
        x->rfd = ipcp_xport_accept(l, wait_ms);
        assert_true(x->rfd >= 0);
        close(l);
        break;
    }
    default:
        fail_msg("no transport %d", (int)k);
    }
}

void tu_xpair_drop(struct tu_xpair *x)
{
    if (x->rfd >= 0) close(x->rfd);
    if (x->wfd >= 0) close(x->wfd);
    x->rfd = x->wfd = -1;
    if (x->path[0]) assert_int_equal(unlink(x->path), 0);
    x->path[0] = 0;
}

static ssize_t real_read(void *ctx, int fd, void *buf, size_t n)
{
    (void)ctx;
    return ipcp_io_default()->read(ipcp_io_default()->ctx, fd, buf, n);
}
static ssize_t real_writev(void *ctx, int fd, const struct iovec *iov, int cnt)
{
    (void)ctx;
    return ipcp_io_default()->writev(ipcp_io_default()->ctx, fd, iov, cnt);
}
static ssize_t real_recvmsg(void *ctx, int fd, struct msghdr *m, int flags)
{
    (void)ctx;
    return ipcp_io_default()->recvmsg(ipcp_io_default()->ctx, fd, m, flags);
}
static ssize_t real_sendmsg(void *ctx, int fd, const struct msghdr *m, int flags)
{
    (void)ctx;
    return ipcp_io_default()->sendmsg(ipcp_io_default()->ctx, fd, m, flags);
}
static int real_poll(void *ctx, struct pollfd *p, nfds_t n, int timeout)
{
    (void)ctx;
    return ipcp_io_default()->poll(ipcp_io_default()->ctx, p, n, timeout);
}

struct ipcp_io_ops tu_io_real(void *ctx)
{
    return (struct ipcp_io_ops){real_read, real_writev, real_recvmsg, real_sendmsg, real_poll, ctx};
}

ssize_t tu_io_no_recvmsg(void *ctx, int fd, struct msghdr *m, int flags)
{
    (void)ctx, (void)fd, (void)m, (void)flags;
    return -ENOSYS;
}

ssize_t tu_io_no_sendmsg(void *ctx, int fd, const struct msghdr *m, int flags)
{
    (void)ctx, (void)fd, (void)m, (void)flags;
    return -ENOSYS;
}

size_t tu_iov_gather(void *dst, const struct iovec *iov, int cnt, size_t n)
{
    size_t done = 0;
    for (int i = 0; i < cnt && done < n; i++) {
        size_t l = iov[i].iov_len < n - done ? iov[i].iov_len : n - done;
        memcpy((uint8_t *)dst + done, iov[i].iov_base, l);
        done += l;
    }
    return done;
}
